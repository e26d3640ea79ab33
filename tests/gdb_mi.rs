//! gdb-multiarch's machine interface (MI) against kvmdbg: the command sequence an editor's
//! debug adapter (VS Code's `cppdbg` with `miDebuggerServerAddress`, the launch configuration
//! in the user guide) sends: connect to a halted stub, insert a breakpoint, continue, list the
//! frames, evaluate a register, step a source line and an instruction, read memory, detach.
//!
//! Runs on the model locally and on KVM in remote mode (see `common::gdb`). Needs
//! gdb-multiarch and the firmware assembler: failures when CI=true, otherwise skipped.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::gdb::{require_gdb, Stub, GDB};

/// Runs gdb-multiarch in MI mode on `elf`, feeding `cmds` (MI commands) on its standard
/// input; returns everything it printed. gdb reads the next command only once the previous
/// one is done (MI's synchronous mode), so a continue completes before the next command.
fn gdb_mi(elf: &std::path::Path, cmds: &[String]) -> String {
    let mut child = Command::new(GDB)
        .current_dir(common::repo_root())
        .args(["--interpreter=mi2", "-nx", "-q"])
        .arg(elf)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {GDB}: {e}"));
    let mut input = child.stdin.take().expect("gdb's stdin");
    for c in cmds {
        writeln!(input, "{c}").expect("write an MI command");
    }
    drop(input);
    // A watchdog kills gdb if the session hangs; it stands down once gdb has been reaped.
    let pid = child.id();
    let (done, finished) = std::sync::mpsc::channel::<()>();
    let watchdog = std::thread::spawn(move || {
        if finished.recv_timeout(Duration::from_secs(600)).is_err() {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
        }
    });
    let out = child.wait_with_output().expect("gdb's output");
    let _ = done.send(());
    let _ = watchdog.join();
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The `^done` (or `^error`) record that answers the n-th command of the session (0-based),
/// counting only result records (`^...`).
fn result(all: &str, n: usize) -> &str {
    all.lines()
        .filter(|l| l.starts_with('^'))
        .nth(n)
        .unwrap_or_else(|| panic!("no result record {n} in:\n{all}"))
}

#[test]
fn an_mi_session_as_an_editor_drives_it() {
    if !(require_gdb() && common::require_firmware_tools()) {
        return;
    }
    let elf = common::firmware_elf("demo");
    let fib = common::elf::symbol(&elf, "fib");
    let stub = Stub::start(&elf, &[]);
    let cmds: Vec<String> = [
        "-gdb-set architecture aarch64".to_string(),
        format!("-target-select remote 127.0.0.1:{}", stub.port),
        "-break-insert fib".to_string(),
        "-exec-continue".to_string(),
        "-stack-list-frames".to_string(),
        "-data-evaluate-expression $pc".to_string(),
        "-exec-step-instruction".to_string(),
        "-data-evaluate-expression $pc".to_string(),
        "-break-delete 1".to_string(),
        "-exec-finish".to_string(),
        "-data-read-memory-bytes fib 8".to_string(),
        "-gdb-exit".to_string(),
    ]
    .into();
    let all = gdb_mi(&elf, &cmds);
    assert!(result(&all, 1).starts_with("^connected"), "{all}");
    assert!(
        result(&all, 2).contains(&format!("addr=\"0x{fib:016x}\"")),
        "{all}"
    );
    assert!(
        all.contains("*stopped,reason=\"breakpoint-hit\""),
        "continue stops at the breakpoint:\n{all}"
    );
    let frames = result(&all, 4);
    assert!(
        frames.contains("func=\"fib\"") && frames.contains("func=\"main\""),
        "backtrace fib <- main:\n{all}"
    );
    assert_eq!(
        result(&all, 5),
        format!("^done,value=\"0x{fib:x} <fib>\""),
        "{all}"
    );
    assert!(
        all.contains("*stopped,reason=\"end-stepping-range\""),
        "stepi completes:\n{all}"
    );
    assert_eq!(
        result(&all, 7),
        format!("^done,value=\"0x{:x} <fib+4>\"", fib + 4),
        "{all}"
    );
    assert!(
        all.contains("*stopped,reason=\"function-finished\""),
        "finish returns to main:\n{all}"
    );
    // The first word of fib as the ELF holds it: no breakpoint instruction left in memory.
    let words = common::elf::read_words(&elf, fib, 2);
    let bytes: String = words
        .iter()
        .flat_map(|w| w.to_le_bytes())
        .map(|b| format!("{b:02x}"))
        .collect();
    assert!(
        result(&all, 10).contains(&format!("contents=\"{bytes}\"")),
        "memory read back as in the ELF ({bytes}):\n{all}"
    );
    assert!(result(&all, 11).starts_with("^exit"), "{all}");
    let (status, stderr) = stub.wait_exit(Duration::from_secs(120));
    assert!(
        status.is_some_and(|s| s.success()),
        "the guest runs to its end after gdb detaches: {status:?}\n{stderr}"
    );
}
