//! A recording bounded in memory (`--record-limit`, docs/user-guide.md "Going backwards"):
//! once it holds more than its limit, its oldest history is dropped; reverse execution then
//! stops at the new start ("no more reverse-execution history"), and every state reached in
//! the history kept still equals the plain forward run's at the same clock (registers of
//! every vCPU and RAM, as tests/record_reverse.rs compares them). On the library with
//! `firmware/cdemo.c` (many pages written; and with debugger writes logged as inputs, those
//! before the new start forgotten, the later ones replayed), and through gdb-multiarch with
//! `firmware/longrun.S`.
//!
//! Needs the firmware assembler (and gdb-multiarch for the gdb session): failures when
//! CI=true, otherwise skipped.

mod common;

use common::gdb::{gdb_batch, printed_u64, text, Stub};
use kvmdbg::a64::Reg;
use kvmdbg::backend::BackendKind;
use kvmdbg::machine::control::{Resume, StopKind, StopReason};
use kvmdbg::machine::session::{Session, Stop};
use kvmdbg::machine::{Machine, MachineConfig};

/// Clock ticks between snapshots in the library test: short, for many snapshots in a short
/// firmware run.
const INTERVAL: u64 = 5_000;

fn session(image: &[u8]) -> Session {
    let cfg = MachineConfig {
        backend: BackendKind::Model,
        vcpus: 1,
        ram_size: 8 << 20,
        uart_out: Box::new(std::io::sink()),
        trace: None,
        test_hooks: Default::default(),
        icount: true,
        jit: true,
    };
    Session::new(Machine::new(cfg, image).unwrap()).unwrap()
}

/// A recorded session (with `limit`, if any) stopped at the hardware breakpoint on `pass`,
/// the end of the firmware, with one on `main` too (before any snapshot but the first).
fn recorded_to_the_end(image: &[u8], limit: Option<u64>) -> Session {
    let mut s = session(image);
    for f in ["main", "pass"] {
        let a = s.image().symbol(f).unwrap().addr;
        s.insert_hw_breakpoint(a).unwrap();
    }
    if let Some(l) = limit {
        s.set_record_limit(l).unwrap();
    }
    s.start_recording().unwrap();
    s.set_snapshot_interval(INTERVAL).unwrap();
    assert!(is_hw_break(&cont(&mut s)), "stops at main");
    let stop = cont(&mut s);
    assert!(is_hw_break(&stop), "stops at pass: {stop:?}");
    assert_eq!(
        s.read_reg(0, Reg::Pc).unwrap() as u64,
        s.image().symbol("pass").unwrap().addr
    );
    s
}

fn cont(s: &mut Session) -> Stop {
    s.resume(&[(0, Resume::Continue)]).unwrap();
    s.wait_stop().unwrap()
}

fn is_hw_break(stop: &Stop) -> bool {
    matches!(
        stop.reason,
        StopReason::Debug {
            verdict: StopKind::HwBreak,
            ..
        }
    )
}

/// (clock, PC, hash of every register and RAM).
type Point = (u64, u128, u64);

fn point(s: &mut Session) -> Point {
    (
        s.clock().unwrap(),
        s.read_reg(0, Reg::Pc).unwrap(),
        s.state_hash().unwrap(),
    )
}

/// The plain forward run's point at clock `t`.
fn forward(image: &[u8], t: u64) -> Point {
    let mut s = session(image);
    assert!(s.run_to(t).unwrap().is_none(), "the run ended before {t}");
    point(&mut s)
}

fn cdemo() -> Option<Vec<u8>> {
    if !common::require_firmware_tools() {
        return None;
    }
    Some(std::fs::read(common::firmware_elf("cdemo")).unwrap())
}

#[test]
fn a_bounded_recording_drops_its_oldest_history_and_keeps_the_rest_exact() {
    let Some(image) = cdemo() else {
        return;
    };
    // Unbounded: what the whole recording holds, and reverse-continue reaches main.
    let mut whole = recorded_to_the_end(&image, None);
    let all = whole.recording().unwrap();
    let end = point(&mut whole);
    assert_eq!(all.dropped.snapshots, 0);
    whole.reverse_continue(0).unwrap();
    assert!(is_hw_break(&whole.wait_stop().unwrap()), "main, unbounded");
    drop(whole);

    // Bounded by half of that: the oldest history goes.
    let limit = (all.memory() / 2) as u64;
    let mut s = recorded_to_the_end(&image, Some(limit));
    let kept = s.recording().unwrap();
    assert!(kept.dropped.snapshots > 0, "{kept:?}");
    assert!(kept.memory() as u64 <= limit, "{kept:?}");
    assert!(kept.snapshots < all.snapshots, "{kept:?} / {all:?}");
    assert_eq!(kept.dropped.from, all.first);
    assert!(kept.first > all.first, "{kept:?}");
    assert_eq!(kept.horizon, all.horizon);
    assert_eq!(
        point(&mut s),
        end,
        "the live run is not changed by dropping"
    );

    // reverse-continue: main is in the dropped part; the new start is where it stops.
    s.reverse_continue(0).unwrap();
    let stop = s.wait_stop().unwrap();
    assert_eq!(stop.reason, StopReason::HistoryStart, "{stop:?}");
    let start = point(&mut s);
    assert_eq!(start.0, kept.first);
    assert_eq!(start, forward(&image, kept.first), "the new start");
    // No further back, by steps either.
    s.reverse_step(0).unwrap();
    assert_eq!(s.wait_stop().unwrap().reason, StopReason::HistoryStart);
    assert_eq!(point(&mut s), start);

    // Points in the history kept, reached backwards from the end.
    let span = kept.horizon - kept.first;
    for t in [kept.horizon - 1, kept.first + span / 2 + 7, kept.first + 1] {
        s.seek(t).unwrap();
        assert_eq!(point(&mut s), forward(&image, t), "clock {t}");
    }
    // Reverse steps from the middle, and forward again to the end.
    s.seek(kept.first + span / 3).unwrap();
    for _ in 0..3 {
        s.reverse_step(0).unwrap();
        s.wait_stop().unwrap();
    }
    let back = point(&mut s);
    assert_eq!(back, forward(&image, back.0), "after reverse steps");
    let main = s.image().symbol("main").unwrap().addr;
    assert!(s.remove_hw_breakpoint(main));
    assert!(is_hw_break(&cont(&mut s)));
    assert_eq!(
        point(&mut s),
        end,
        "forward again to the end of the recording"
    );
}

/// Where the debugger writes in `cdemo`'s RAM: 6 MiB in, far above the image, its .bss
/// stacks and below the DTB at the top of the 8 MiB.
const SCRATCH: u64 = 0x4060_0000;

/// The plain forward run's point at clock `t`, with the debugger's `writes` (clock, bytes at
/// [`SCRATCH`]) made at their clocks as in the recorded run.
fn forward_with(image: &[u8], writes: &[(u64, Vec<u8>)], t: u64) -> Point {
    let mut s = session(image);
    for (at, data) in writes.iter().filter(|(at, _)| *at <= t) {
        assert!(s.run_to(*at).unwrap().is_none());
        s.write_virt(0, SCRATCH, data).unwrap();
    }
    assert!(s.run_to(t).unwrap().is_none(), "the run ended before {t}");
    point(&mut s)
}

/// Runs a recorded session forward to clock `at`, with a snapshot every [`INTERVAL`] on the
/// way (where the limit is enforced), as a resume would take them.
fn recording_run_to(s: &mut Session, at: u64) {
    while s.clock().unwrap() < at {
        let t = (s.clock().unwrap() + INTERVAL).min(at);
        assert!(s.run_to(t).unwrap().is_none());
        s.take_snapshot().unwrap();
    }
}

#[test]
fn the_inputs_before_the_new_start_are_forgotten_and_the_later_ones_replayed() {
    let Some(image) = cdemo() else {
        return;
    };
    let end = recorded_to_the_end(&image, None).recording().unwrap();
    let mut s = session(&image);
    let pass = s.image().symbol("pass").unwrap().addr;
    s.insert_hw_breakpoint(pass).unwrap();
    // A third of what the whole run holds: most of the history goes.
    s.set_record_limit((end.memory() / 3) as u64).unwrap();
    s.start_recording().unwrap();
    s.set_snapshot_interval(INTERVAL).unwrap();
    // Debugger writes at five points spread over the run, each logged as an input.
    let mut writes = Vec::new();
    for k in 1..=5u64 {
        let at = end.horizon * k / 6;
        recording_run_to(&mut s, at);
        let data = (k * 0x0101_0101).to_le_bytes().to_vec();
        s.write_virt(0, SCRATCH, &data).unwrap();
        writes.push((at, data));
    }
    assert!(is_hw_break(&cont(&mut s)), "stops at pass");
    assert_eq!(s.read_reg(0, Reg::Pc).unwrap() as u64, pass);
    let kept = s.recording().unwrap();
    let live = point(&mut s);
    assert!(kept.dropped.inputs > 0, "some writes forgotten: {kept:?}");
    assert!(kept.inputs > 0, "some writes kept: {kept:?}");
    assert_eq!(kept.dropped.inputs + kept.inputs, writes.len(), "{kept:?}");
    let forgotten = writes.iter().filter(|(at, _)| *at < kept.first).count();
    assert_eq!(
        kept.dropped.inputs, forgotten,
        "exactly those before the start"
    );
    assert_eq!(live, forward_with(&image, &writes, live.0), "the live end");

    // Back to the start, then points across the writes kept, then forward to the end.
    s.reverse_continue(0).unwrap();
    assert_eq!(s.wait_stop().unwrap().reason, StopReason::HistoryStart);
    let start = point(&mut s);
    assert_eq!(start.0, kept.first);
    assert_eq!(
        start,
        forward_with(&image, &writes, kept.first),
        "the start"
    );
    for (at, _) in writes.iter().filter(|(at, _)| *at >= kept.first) {
        for t in [*at - 1, *at, *at + 1] {
            s.seek(t).unwrap();
            assert_eq!(point(&mut s), forward_with(&image, &writes, t), "clock {t}");
        }
    }
    s.seek(kept.first).unwrap();
    assert!(is_hw_break(&cont(&mut s)));
    assert_eq!(point(&mut s), live, "forward again to the end");
}

/// 2^24 iterations of `total += n` (firmware/longrun.S): the total at `loop_end`.
const LONGRUN_TOTAL: u64 = (1 << 24) * ((1 << 24) + 1) / 2;

#[test]
fn gdb_stops_at_the_moved_start_of_a_bounded_recording() {
    if !common::gdb::can_record() {
        return;
    }
    let elf = common::firmware_elf("longrun");
    // About half of what the whole run holds (docs/benchmarks.md: about 190 KiB).
    let stub = Stub::start(&elf, &["--record", "--record-limit", "100K"]);
    let out = gdb_batch(
        stub.port,
        &elf,
        &[
            "break loop_end",
            "continue",
            "p $x0",
            "break loop_start",
            "reverse-continue",
            "p $pc == &loop_start",
            "p $x2",
            "p $x0",
            "p *(unsigned long *)&counter",
            "reverse-stepi",
            "monitor record",
            "continue",
            "p $x0",
            "p *(unsigned long *)&counter",
            "kill",
        ],
    );
    let all = text(&out);
    assert_eq!(printed_u64(&out, 1), LONGRUN_TOTAL, "{all}");
    // The loop_start breakpoint ran before the history kept: no stop there.
    assert_eq!(
        all.matches("No more reverse-execution history.").count(),
        2,
        "{all}"
    );
    assert!(all.contains("was dropped to keep it within the recording limit of 100 KiB"));
    assert_eq!(printed_u64(&out, 2), 0, "stopped at loop_start:\n{all}");
    // In the loop, at the state of the forward run: with x2 iterations left, x0 holds the
    // total of those done (x2 + 1 to 2^24), plus x2 after the `add` of the current one; the
    // counter in RAM (a page folded into the new first snapshot) lags x0 by that `add`
    // until the `str`.
    let left = printed_u64(&out, 3);
    assert!(left > 0 && left < 1 << 24, "{all}");
    let done = LONGRUN_TOTAL - left * (left + 1) / 2;
    let x0 = printed_u64(&out, 4);
    let counter = printed_u64(&out, 5);
    assert!(
        x0 == done || x0 == done + left,
        "x0 {x0}, x2 {left}:\n{all}"
    );
    assert!(counter == x0 || counter + left == x0, "{all}");
    let report = all
        .lines()
        .skip_while(|l| !l.starts_with("recording: clock"))
        .take(6)
        .collect::<Vec<_>>()
        .join("\n");
    assert!(!report.contains("recording: clock 0 "), "{report}");
    assert!(report.contains("history dropped: clock 0 to "), "{report}");
    assert!(report.contains("KiB of a 100 KiB limit"), "{report}");
    // Forward again: the same end as the forward run.
    assert_eq!(printed_u64(&out, 6), LONGRUN_TOTAL, "{all}");
    assert_eq!(printed_u64(&out, 7), LONGRUN_TOTAL, "{all}");
}
