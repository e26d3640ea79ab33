//! gdb-multiarch going backwards on a recording (`kvmdbg run --backend model --record`):
//! reverse-continue to the last write of a watched variable, reverse-finish out of a
//! function, reverse-stepi across an MMIO access and across an exception entry and return,
//! "no more reverse-execution history" at the start of the recording, and the clear answer
//! without a recording. Each session checks the values seen going backwards against the ones
//! seen going forward over the same instructions.
//!
//! Needs gdb-multiarch and the firmware assembler: failures when CI=true, otherwise skipped.

mod common;

use common::gdb::{backend_name, gdb_batch, printed_u64, require_gdb, text, Stub};
use common::RunOutput;

fn tools() -> bool {
    require_gdb() && common::require_firmware_tools()
}

/// gdb's output for `cmds` on `kvmdbg run --record` of firmware `name`; `None` when the
/// tools are missing or the stubs run on KVM (remote mode), which cannot record
/// (`without_a_recording_gdb_is_told_why` covers it there).
fn recorded(name: &str, cmds: &[&str]) -> Option<(RunOutput, String)> {
    if !tools() {
        return None;
    }
    if backend_name() != "model" {
        eprintln!("skipping: recording needs the model backend, the stubs run on KVM");
        return None;
    }
    let elf = common::firmware_elf(name);
    let stub = Stub::start(&elf, &["--record"]);
    let out = gdb_batch(stub.port, &elf, cmds);
    let all = text(&out);
    Some((out, all))
}

#[test]
fn reverse_continue_stops_before_the_last_write_of_a_watched_variable() {
    let Some((out, all)) = recorded(
        "cdemo",
        &[
            "break loop_1000",
            "continue",
            "p keys[0]",
            "watch keys[0]",
            "reverse-continue",
            "x/i $pc",
            "p keys[0]",
            "p $x3",
            "stepi",
            "p keys[0]",
            "monitor record",
            "kill",
        ],
    ) else {
        return;
    };
    let sorted = printed_u64(&out, 1);
    assert!(all.contains("Hardware watchpoint 2: keys[0]"), "{all}");
    // Stopped at the store that wrote the final value, before it executed.
    let store = all
        .lines()
        .find(|l| l.starts_with("=> 0x"))
        .unwrap_or_else(|| panic!("no x/i line:\n{all}"));
    assert!(store.contains("str\tw3"), "{store}\n{all}");
    let before = printed_u64(&out, 2);
    assert_ne!(before, sorted, "keys[0] before the write:\n{all}");
    assert_eq!(
        printed_u64(&out, 3),
        sorted,
        "the value being stored:\n{all}"
    );
    // One instruction forward: the write happens again.
    assert_eq!(printed_u64(&out, 4), sorted, "{all}");
    assert!(all.contains("snapshots: 1"), "{all}");
    assert!(all.contains("in the past"), "{all}");
}

#[test]
fn reverse_finish_goes_back_to_the_call() {
    let Some((out, all)) = recorded(
        "cdemo",
        &[
            "break puts",
            "continue",
            "p/x $lr",
            "reverse-finish",
            "p/x $pc",
            "x/i $pc",
            "kill",
        ],
    ) else {
        return;
    };
    let lr = printed_u64(&out, 1);
    assert!(all.contains(" in report ("), "back in the caller:\n{all}");
    // The instruction before the return address: the call itself.
    assert_eq!(printed_u64(&out, 2), lr - 4, "{all}");
    let call = all.lines().find(|l| l.starts_with("=> 0x")).unwrap_or("");
    assert!(
        call.contains("bl\t") && call.contains("<puts>"),
        "{call}\n{all}"
    );
}

#[test]
fn reverse_stepi_undoes_mmio_accesses() {
    let Some((out, all)) = recorded(
        "stepmmio",
        &[
            "break c_sizes",
            "continue",
            "stepi 6",
            "p/x $pc",
            "p/x $x4",
            "stepi",
            "p/x $x4",
            "reverse-stepi",
            "p/x $pc",
            "p/x $x4",
            "reverse-stepi 3",
            "p/x $pc",
            "stepi 4",
            "p/x $pc",
            "p/x $x4",
            "kill",
        ],
    ) else {
        return;
    };
    let at_load = printed_u64(&out, 1);
    let before = printed_u64(&out, 2);
    // ldr w4, [x1, #UARTIMSC] reads back the 0x2d the stores left (stepmmio.S c_sizes).
    assert_eq!(printed_u64(&out, 3), 0x2d, "{all}");
    assert_eq!(printed_u64(&out, 4), at_load, "{all}");
    assert_eq!(printed_u64(&out, 5), before, "the load undone:\n{all}");
    assert_eq!(printed_u64(&out, 6), at_load - 12, "{all}");
    assert_eq!(printed_u64(&out, 7), at_load + 4, "{all}");
    assert_eq!(printed_u64(&out, 8), 0x2d, "the load replayed:\n{all}");
}

#[test]
fn reverse_stepi_crosses_an_exception_entry_and_return() {
    let Some((out, all)) = recorded(
        "exceptions",
        &[
            "break svc_insn",
            "continue",
            "p/x $pc",
            "p/x $cpsr",
            "stepi",
            "p/x $pc",
            "p/x $esr_el1",
            "reverse-stepi",
            "p/x $pc",
            "p/x $cpsr",
            "break svc_return",
            "continue",
            "reverse-stepi",
            "x/i $pc",
            "stepi",
            "p/x $pc",
            "p/x &svc_return",
            "kill",
        ],
    ) else {
        return;
    };
    let svc = printed_u64(&out, 1);
    let pstate = printed_u64(&out, 2);
    let vector = printed_u64(&out, 3);
    assert_ne!(vector, svc + 4, "stepi over SVC ends at the vector:\n{all}");
    // ESR_EL1: EC 0x15 (SVC from AArch64), IL, imm16 0x42 (Arm ARM D17.2.37).
    assert_eq!(printed_u64(&out, 4), 0x5600_0042, "{all}");
    assert_eq!(printed_u64(&out, 5), svc, "back before the SVC:\n{all}");
    assert_eq!(printed_u64(&out, 6), pstate, "{all}");
    let eret = all.lines().find(|l| l.starts_with("=> 0x")).unwrap_or("");
    assert!(
        eret.contains("eret"),
        "back inside the handler, at its ERET:\n{all}"
    );
    assert_eq!(printed_u64(&out, 7), printed_u64(&out, 8), "{all}");
}

#[test]
fn the_start_of_the_recording_is_the_end_of_history() {
    let Some((out, all)) = recorded(
        "stepmmio",
        &[
            "p/x $pc",
            "reverse-stepi",
            "stepi 5",
            "reverse-continue",
            "p/x $pc",
            "kill",
        ],
    ) else {
        return;
    };
    let n = all.matches("No more reverse-execution history.").count();
    assert_eq!(n, 2, "{all}");
    assert_eq!(printed_u64(&out, 1), printed_u64(&out, 2), "{all}");
}

#[test]
fn without_a_recording_gdb_is_told_why() {
    if !tools() {
        return;
    }
    let elf = common::firmware_elf("stepmmio");
    let stub = Stub::start(&elf, &[]);
    let out = gdb_batch(stub.port, &elf, &["stepi", "reverse-stepi", "kill"]);
    let all = text(&out);
    assert!(all.contains("reverse execution needs a recording"), "{all}");
    assert!(all.contains("No more reverse-execution history."), "{all}");
}

#[test]
fn reverse_next_steps_back_over_a_call_and_reverse_step_enters_it() {
    let Some((_, all)) = recorded(
        "cdemo",
        &[
            "break loop_1000",
            "continue",
            "finish",
            "delete",
            "reverse-next",
            "info line *$pc",
            "reverse-step",
            "bt 2",
            "kill",
        ],
    ) else {
        return;
    };
    // Back over `loop_1000();` (line 98) without stopping inside it...
    assert!(all.contains("Line 98 of \"./firmware/cdemo.c\""), "{all}");
    // ...then into the end of the call before it, `fib(20)` on line 97.
    assert!(all.contains("#0  ") && all.contains(" in fib ("), "{all}");
    assert!(all.contains("in main () at ./firmware/cdemo.c:97"), "{all}");
}
