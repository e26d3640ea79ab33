//! gdb-multiarch (batch mode) against `kvmdbg run --backend model --gdb ... -S`: breakpoints,
//! backtraces, registers (core, FP status, system), stepping, range stepping, watchpoints,
//! hardware breakpoints, monitor commands, detach and re-attach.
//!
//! Needs gdb-multiarch: a failure when CI=true, otherwise skipped with a message.

mod common;

use std::time::Duration;

use common::gdb::{backend_name, gdb_batch, printed_u64, require_gdb, text, Stub};

use common::elf::demo;

/// Address of `name` in the demo, from kvmdbg's own ELF reader (independent of gdb).
fn sym(name: &str) -> u64 {
    common::elf::symbol(&demo(), name)
}

#[test]
fn break_at_fib_continue_and_backtrace_through_the_recursion() {
    if !require_gdb() {
        return;
    }
    let stub = Stub::start(&demo(), &[]);
    // Hits: fib(0), fib(1), fib(2) from main, then fib(1) called by fib(2).
    let out = gdb_batch(
        stub.port,
        &demo(),
        &[
            "break fib",
            "continue",
            "p $x0",
            "continue",
            "continue",
            "continue",
            "p $x0",
            "bt",
            "p/x $pc",
            "delete",
            "continue",
        ],
    );
    let all = text(&out);
    assert_eq!(printed_u64(&out, 1), 0, "{all}");
    assert_eq!(printed_u64(&out, 2), 1, "{all}");
    assert_eq!(printed_u64(&out, 3), sym("fib"), "{all}");
    let bt: Vec<&str> = out.stdout.lines().filter(|l| l.starts_with('#')).collect();
    assert_eq!(bt.len(), 3, "fib <- fib <- main:\n{all}");
    assert!(bt[0].contains("fib"), "{all}");
    assert!(bt[1].contains("in fib"), "{all}");
    assert!(bt[2].contains("in main"), "{all}");
    assert!(all.contains("exited normally"), "{all}");
    let (status, uart) = stub.wait_exit(Duration::from_secs(30));
    assert!(status.is_some_and(|s| s.success()), "{uart}");
    assert!(uart.contains("PASS demo"), "{uart}");
}

#[test]
fn registers_core_fp_status_and_system() {
    if !require_gdb() {
        return;
    }
    let stub = Stub::start(&demo(), &[]);
    let out = gdb_batch(
        stub.port,
        &demo(),
        &[
            "break fib",
            "continue",
            "info registers",
            "p/x $sctlr_el1",
            "p/x $vbar_el1",
            "p/x $sp",
            "p/x $sp_el1",
            "set $fpsr = 0x8000000",
            "set $fpcr = 0x400000",
            "set $x7 = 0x1122334455667788",
            "set $v3.d.u[1] = 0xabcdef",
            "maintenance flush register-cache",
            "p/x $fpsr",
            "p/x $fpcr",
            "p/x $x7",
            "p/x $v3.d.u[1]",
            "monitor sysregs",
            "kill",
        ],
    );
    let all = text(&out);
    // info registers lists core and system registers.
    for name in [
        "x0 ",
        "pc ",
        "cpsr ",
        "fpsr ",
        "sctlr_el1 ",
        "ttbr0_el1 ",
        "mpidr_el1 ",
    ] {
        assert!(
            out.stdout.lines().any(|l| l.starts_with(name)),
            "no {name:?} line:\n{all}"
        );
    }
    // start.S enables no MMU: SCTLR_EL1.M = 0; VBAR points at the firmware's vectors.
    assert_eq!(printed_u64(&out, 1) & 1, 0, "{all}");
    assert_eq!(printed_u64(&out, 2), sym("default_vectors"), "{all}");
    // At EL1h the SP gdb sees is SP_EL1.
    assert_eq!(printed_u64(&out, 3), printed_u64(&out, 4), "{all}");
    assert_eq!(printed_u64(&out, 5), 0x800_0000, "{all}");
    assert_eq!(printed_u64(&out, 6), 0x40_0000, "{all}");
    assert_eq!(printed_u64(&out, 7), 0x1122_3344_5566_7788, "{all}");
    assert_eq!(printed_u64(&out, 8), 0xab_cdef, "{all}");
    // The vCPU itself holds them in the right registers (read by kvmdbg, not through gdb's
    // register layout): catches a swapped FPSR/FPCR in the g packet.
    let line = |name: &str| {
        all.lines()
            .rev()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("no {name} in monitor sysregs:\n{all}"))
            .to_string()
    };
    assert!(line("fpsr").contains("0x0000000008000000"), "{all}");
    assert!(line("fpcr").contains("0x0000000000400000"), "{all}");
}

#[test]
fn stepi_follows_the_known_instruction_sequence_of_fib() {
    if !require_gdb() {
        return;
    }
    let stub = Stub::start(&demo(), &[]);
    let fib = sym("fib");
    // fib(2) (third hit): cmp; b.lo not taken; stp; mov x29; str x19; mov x19; sub x0; bl.
    let out = gdb_batch(
        stub.port,
        &demo(),
        &[
            "break fib",
            "continue",
            "continue",
            "continue",
            "p $x0",
            "delete",
            "stepi",
            "p/x $pc",
            "stepi 4",
            "p/x $pc",
            "x/i $pc",
            "stepi 3",
            "p/x $pc",
            "p $x0",
            "kill",
        ],
    );
    let all = text(&out);
    assert_eq!(printed_u64(&out, 1), 2, "{all}");
    assert_eq!(printed_u64(&out, 2), fib + 4, "{all}");
    assert_eq!(printed_u64(&out, 3), fib + 20, "{all}");
    assert!(all.contains("mov\tx19, x0"), "{all}");
    // mov x19, x0; sub x0, x19, #1; bl fib: into fib(1).
    assert_eq!(printed_u64(&out, 4), fib, "{all}");
    assert_eq!(printed_u64(&out, 5), 1, "{all}");
}

#[test]
fn next_over_a_line_uses_range_stepping() {
    if !require_gdb() {
        return;
    }
    let stub = Stub::start(&demo(), &[]);
    // demo.S:41 is `1: say " "`: adrp, add, bl puts (a loop over the string).
    let out = gdb_batch(
        stub.port,
        &demo(),
        &[
            "break demo.S:41",
            "continue",
            "set debug remote 1",
            "next",
            "set debug remote 0",
            "p/x $pc",
            "info line *$pc",
            "kill",
        ],
    );
    let all = text(&out);
    assert!(
        all.contains("vCont;r"),
        "gdb did not range-step (no vCont;r in the packet log):\n{all}"
    );
    let pc = printed_u64(&out, 1);
    assert!(
        all.contains("Line 42 of"),
        "next stopped on the next line:\n{all}"
    );
    assert_eq!(pc, sym("main") + 0x60, "{all}");
}

#[test]
fn write_read_and_access_watchpoints_report_values() {
    if !require_gdb() {
        return;
    }
    let stub = Stub::start(&demo(), &[]);
    let out = gdb_batch(
        stub.port,
        &demo(),
        &[
            "watch *(long*)&demo_counter",
            "continue",
            "continue",
            "delete",
            "rwatch *(long*)&demo_counter",
            "continue",
            "p/x $pc",
            "delete",
            "awatch *(long*)&demo_counter",
            "continue",
            "continue",
            "delete",
            "kill",
        ],
    );
    let all = text(&out);
    let want = [
        "Old value = 0\nNew value = 1",
        "Old value = 1\nNew value = 2",
        "Value = 2",
        "Old value = 2\nNew value = 3",
        "Value = 3",
    ];
    let mut at = 0;
    for w in want {
        let found = out.stdout[at..]
            .find(w)
            .unwrap_or_else(|| panic!("missing {w:?} in order:\n{all}"));
        at += found + w.len();
    }
    // The read watchpoint stops after the load `ldr x9, [x20]` (main+108).
    assert_eq!(printed_u64(&out, 1), sym("main") + 112, "{all}");
}

#[test]
fn unaligned_twelve_byte_watch() {
    if !require_gdb() {
        return;
    }
    let stub = Stub::start(&demo(), &[]);
    // 6 bytes before demo_counter to 6 bytes into it: two doublewords, neither aligned.
    let out = gdb_batch(
        stub.port,
        &demo(),
        &[
            "set debug remote 1",
            "watch *(char(*)[12])((char*)&demo_counter - 6)",
            "continue",
            "set debug remote 0",
            "p *(long*)&demo_counter",
            "kill",
        ],
    );
    let all = text(&out);
    let z2 = format!("Z2,{:x},c", sym("demo_counter") - 6);
    assert!(all.contains(&z2), "one 12-byte Z2 packet {z2:?}:\n{all}");
    assert!(
        all.contains(r#"New value = "\000\000\000\000\000\000\001"#),
        "{all}"
    );
    assert_eq!(printed_u64(&out, 1), 1, "{all}");
}

#[test]
fn hardware_breakpoint_and_caps() {
    if !require_gdb() {
        return;
    }
    let stub = Stub::start(&demo(), &[]);
    let out = gdb_batch(
        stub.port,
        &demo(),
        &[
            "set breakpoint always-inserted on",
            "hbreak fib",
            "continue",
            "p/x $pc",
            "monitor caps",
            "continue",
            "p $x0",
            "monitor help",
            "kill",
        ],
    );
    let all = text(&out);
    assert!(all.contains("Hardware assisted breakpoint 1"), "{all}");
    assert_eq!(printed_u64(&out, 1), sym("fib"), "{all}");
    assert_eq!(printed_u64(&out, 2), 1, "second call fib(1):\n{all}");
    assert!(
        all.contains(&format!("backend: {}", backend_name())),
        "{all}"
    );
    assert!(all.contains("hardware breakpoints: 1 in use of"), "{all}");
    for cmd in [
        "translate VA",
        "pagetable",
        "sysregs",
        "caps",
        "mmio-reads on|off",
        "reset",
    ] {
        assert!(all.contains(cmd), "monitor help lacks {cmd}:\n{all}");
    }
}

#[test]
fn monitor_reset_restarts_the_firmware_with_breakpoints_kept() {
    if !require_gdb() {
        return;
    }
    let stub = Stub::start(&demo(), &[]);
    let out = gdb_batch(
        stub.port,
        &demo(),
        &[
            "set breakpoint always-inserted on",
            "hbreak fib",
            "continue",
            "set var *(long*)&demo_counter = 99",
            "set var $x19 = 77",
            "monitor reset",
            "maintenance flush register-cache",
            "p/x $pc",
            "p *(long*)&demo_counter",
            "p $x19",
            "continue",
            "p/x $pc",
            "kill",
        ],
    );
    let all = text(&out);
    assert!(all.contains("machine reset"), "{all}");
    assert!(
        all.contains("1 breakpoint(s)/watchpoint(s) set again"),
        "{all}"
    );
    assert_eq!(printed_u64(&out, 1), sym("_start"), "at the entry:\n{all}");
    assert_eq!(printed_u64(&out, 2), 0, "data reloaded:\n{all}");
    assert_eq!(printed_u64(&out, 3), 0, "registers at reset:\n{all}");
    assert_eq!(printed_u64(&out, 4), sym("fib"), "breakpoint kept:\n{all}");
}

#[test]
fn detach_lets_the_guest_run_and_a_new_gdb_attaches() {
    if !require_gdb() {
        return;
    }
    let mut stub = Stub::start(&demo(), &[]);
    let fib = sym("fib");
    // First gdb: a breakpoint inside fib, patch fib into `b .` (0x14000000, Arm ARM C6.2.26
    // B: imm26 = 0), detach with the breakpoint set: it must be removed, the guest spins.
    let first = gdb_batch(
        stub.port,
        &demo(),
        &[
            "break *((char*)fib + 8)",
            "set *(unsigned int*)fib = 0x14000000",
            "detach",
        ],
    );
    assert!(text(&first).contains("detached"), "{}", text(&first));
    std::thread::sleep(Duration::from_millis(300));
    assert!(stub.running(), "the guest keeps running after detach");
    let second = gdb_batch(
        stub.port,
        &demo(),
        &[
            "p/x $pc",
            "x/wx fib",
            "x/wx (char*)fib + 8",
            "info breakpoints",
            "kill",
        ],
    );
    let all = text(&second);
    assert_eq!(printed_u64(&second, 1), fib, "stopped in the spin:\n{all}");
    assert!(all.contains("0x14000000"), "{all}");
    // The first gdb's BRK (0xd4200000) is gone from memory.
    assert!(!all.contains("0xd4200000"), "{all}");
    assert!(all.contains("No breakpoints"), "{all}");
}

#[test]
fn the_guest_runs_without_wait_and_is_stopped_when_gdb_connects() {
    if !require_gdb() {
        return;
    }
    let stub = Stub::start_with(&demo(), &[], false);
    // Without -S the demo runs to completion and kvmdbg ends by itself.
    let (status, uart) = stub.wait_exit(Duration::from_secs(30));
    assert!(status.is_some_and(|s| s.success()), "{uart}");
    assert!(uart.contains("PASS demo"), "{uart}");
}
