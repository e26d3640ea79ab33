//! Console input replayed through a gdb-multiarch session on a recording
//! (`kvmdbg run --backend model --record`, docs/user-guide.md "Going backwards"): the echo
//! firmware (`firmware/echo.S`) reads a line from the UART, fed on kvmdbg's stdin in chunks
//! arriving at different moments. gdb stops at every read of a byte going forward (the
//! clock and the running sum there), then goes back over every read with reverse-continue,
//! executes each read again in the past (the byte it gets) and steps back over it, and
//! finally runs forward to the end. Every stop going backwards must be at the clock and
//! state of the forward stop, every byte read in the past the one read forward, and the
//! guest's output the plain forward run's: replay neither loses nor moves a byte, and the
//! UART's output is not printed again while history replays.
//!
//! Needs gdb-multiarch and the firmware assembler: failures when CI=true, otherwise skipped.

mod common;

use std::process::Command;
use std::time::Duration;

use common::gdb::{gdb_batch, text, Stub};

/// The line typed, in three chunks 1.5 s apart: gdb has run the guest to its first reads
/// before the second arrives, and the guest waits in WFI for each (three inputs logged,
/// unless the host is so slow that they arrive together).
const CHUNKS: [(Duration, &[u8]); 3] = [
    (Duration::from_millis(0), b"he"),
    (Duration::from_millis(1500), b"llo"),
    (Duration::from_millis(1500), b"\n"),
];
const LINE: &[u8] = b"hello\n";

/// Breakpoint 1 is on `got_byte` (the UART read), breakpoint 2 on `report`.
const READS: usize = LINE.len();

/// The clock `monitor record` gives for each of its reports in `all`, in order.
fn positions(all: &str) -> Vec<u64> {
    all.lines()
        .filter_map(|l| l.strip_prefix("position: clock "))
        .map(|r| r.split_whitespace().next().unwrap().parse().unwrap())
        .collect()
}

/// Every value gdb printed (`$n = v`), in order, as numbers.
fn values(all: &str) -> Vec<u64> {
    all.lines()
        .filter_map(|l| l.strip_prefix('$'))
        .filter_map(|l| l.split_once(" = "))
        .map(|(_, v)| v.trim().parse().unwrap())
        .collect()
}

/// The general registers of each `info registers` in `all` (lines `x0` to `cpsr`), in order.
fn register_dumps(all: &str) -> Vec<Vec<&str>> {
    let mut dumps: Vec<Vec<&str>> = Vec::new();
    for l in all.lines() {
        let name = l.split_whitespace().next().unwrap_or("");
        if name == "x0" {
            dumps.push(Vec::new());
        }
        let general = (name.starts_with('x') && name[1..].parse::<u8>().is_ok())
            || ["sp", "pc", "cpsr"].contains(&name);
        if let (true, Some(d)) = (general, dumps.last_mut()) {
            d.push(l);
        }
    }
    dumps
}

/// The plain forward run's output for the same input (no gdb, no recording).
fn forward_output(elf: &std::path::Path) -> String {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kvmdbg"));
    cmd.args(["run", "--backend", "model", "--icount"]).arg(elf);
    let out = common::run_with_input(&mut cmd, &CHUNKS, Duration::from_secs(60));
    assert!(out.success(), "{}", out.describe());
    out.stdout
}

#[test]
fn console_input_replays_exactly_through_gdb() {
    if !common::gdb::can_record() {
        return;
    }
    let elf = common::firmware_elf("echo");
    let Some(stub) = Stub::start_with_input(&elf, &["--record"], &CHUNKS) else {
        return;
    };
    let mut cmds = vec!["break got_byte"];
    // Forward: each read, before it executes: the clock and the sum of the bytes before.
    for _ in 0..READS {
        cmds.extend(["continue", "monitor record", "p $x19"]);
    }
    cmds.extend([
        "break report",
        "continue",
        "monitor record",
        "p $x19",
        "info registers",
    ]);
    // Backward over every read: the same stops; each read executed again in the past
    // gives its byte (x0), and is stepped back over.
    for _ in 0..READS {
        cmds.extend([
            "reverse-continue",
            "monitor record",
            "p $x19",
            "stepi",
            "p $x0",
            "reverse-stepi",
        ]);
    }
    // Forward to the end of the recording, and on live to the end of the run.
    cmds.extend([
        "delete 1",
        "continue",
        "monitor record",
        "p $x19",
        "info registers",
        "delete",
        "continue",
    ]);
    let out = gdb_batch(stub.port, &elf, &cmds);
    let all = text(&out);

    let logged = all
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("inputs logged: "))
        .unwrap_or("?");
    eprintln!(
        "console inputs logged: {logged} (of {} chunks)",
        CHUNKS.len()
    );
    let clocks = positions(&all);
    let vals = values(&all);
    assert_eq!(clocks.len(), 2 * READS + 2, "{all}");
    assert_eq!(vals.len(), 3 * READS + 2, "{all}");
    let (fwd_clocks, rest) = clocks.split_at(READS);
    let (end, rest) = rest.split_first().unwrap();
    let (back_clocks, again) = rest.split_at(READS);
    let fwd_sums = &vals[..READS];
    let total = vals[READS];
    let back = &vals[READS + 1..READS + 1 + 2 * READS];
    // Forward: one read per byte, the sum growing by each.
    let mut sum = 0;
    for (i, &b) in LINE.iter().enumerate() {
        assert_eq!(fwd_sums[i], sum, "sum before byte {i}:\n{all}");
        sum += u64::from(b);
    }
    assert_eq!(total, sum, "{all}");
    // Backward: the forward stops, newest first, each reading its byte again.
    for k in 0..READS {
        let i = READS - 1 - k;
        assert_eq!(back_clocks[k], fwd_clocks[i], "read {i}'s clock:\n{all}");
        assert_eq!(back[2 * k], fwd_sums[i], "sum before read {i}:\n{all}");
        assert_eq!(back[2 * k + 1], u64::from(LINE[i]), "byte {i}:\n{all}");
    }
    // Forward again: the end of the recording, same clock and state.
    assert_eq!(again, [*end], "{all}");
    assert_eq!(vals[vals.len() - 1], total, "{all}");
    assert!(all.contains("at the end (live)"), "{all}");
    let regs = register_dumps(&all);
    assert_eq!(regs.len(), 2, "{all}");
    assert_eq!(regs[0].len(), 34, "x0-x30, sp, pc, cpsr:\n{all}");
    assert_eq!(
        regs[0], regs[1],
        "registers at the end, forward and after replay"
    );
    assert!(all.contains("exited normally"), "{all}");
    let (status, stdout) = stub.wait_exit(Duration::from_secs(30));
    assert!(status.is_some_and(|s| s.success()), "{status:?}\n{all}");
    // The guest's output is the forward run's: nothing lost, nothing printed twice.
    assert_eq!(stdout, forward_output(&elf), "{all}");
    assert!(stdout.contains("sum=542"), "{stdout}");
}
