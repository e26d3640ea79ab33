//! lldb against `kvmdbg run --backend model --gdb ... -S`: a breakpoint, an instruction step
//! and register reads (core and system, named by our target.xml).
//!
//! Needs lldb: a failure when CI=true, otherwise skipped with a message.

mod common;

use std::process::Command;
use std::time::Duration;

use common::gdb::Stub;

#[test]
fn lldb_breaks_steps_and_reads_registers() {
    if !common::require_tool("lldb") {
        return;
    }
    let elf = common::repo_root().join("firmware/prebuilt/demo.elf");
    let fib = {
        use object::{Object, ObjectSymbol};
        let bytes = std::fs::read(&elf).unwrap();
        let file = object::File::parse(&*bytes).unwrap();
        let sym = file.symbols().find(|s| s.name() == Ok("fib")).unwrap();
        sym.address()
    };
    let stub = Stub::start(&elf, &[]);
    let mut cmd = Command::new("lldb");
    cmd.arg("--batch")
        .args(["-o", &format!("gdb-remote 127.0.0.1:{}", stub.port)])
        .args(["-o", "breakpoint set --name fib"])
        .args(["-o", "continue"])
        .args(["-o", "register read pc x0"])
        .args(["-o", "thread step-inst"])
        .args(["-o", "register read pc"])
        .args(["-o", "register read sctlr_el1 vbar_el1"])
        .args(["-o", "kill"])
        .arg(&elf);
    let out = common::run_with_timeout(&mut cmd, Duration::from_secs(60));
    let all = out.describe();
    // lldb puts the breakpoint after fib's first instruction (fib + 4, `b.lo`); fib(0) returns
    // at once, so the step lands on `ret` (fib + 60).
    assert!(all.contains("stop reason = breakpoint 1.1"), "{all}");
    assert!(all.contains(&format!("pc = {:#018x}", fib + 4)), "{all}");
    assert!(all.contains("x0 = 0x0000000000000000"), "{all}");
    assert!(all.contains("stop reason = instruction step into"), "{all}");
    assert!(all.contains(&format!("pc = {:#018x}", fib + 60)), "{all}");
    assert!(all.contains("sctlr_el1 = 0x0000000000c50078"), "{all}");
    assert!(all.contains("vbar_el1 = 0x0000000040000800"), "{all}");
    let (status, _) = stub.wait_exit(Duration::from_secs(20));
    assert!(
        status.is_some_and(|s| s.success()),
        "kvmdbg ends after kill"
    );
}
