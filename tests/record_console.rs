//! Console input in a recording (docs/architecture.md, "Recording and reverse execution"):
//! the `echo` firmware waits idle in WFI for bytes the host delivers late; the recording logs
//! them with the clock at which they were admitted; reverse continues back before the input
//! land on the same states as the forward run; going forward again replays the recorded
//! bytes at their clock (new host input meanwhile waits) and reaches the same states and the
//! same sum.

mod common;

use std::sync::Arc;
use std::time::Duration;

use kvmdbg::a64::Reg;
use kvmdbg::backend::icount::{Input, Recorder};
use kvmdbg::backend::BackendKind;
use kvmdbg::machine::control::{Resume, StopReason};
use kvmdbg::machine::pl011::SerialInput;
use kvmdbg::machine::session::{Session, Stop};
use kvmdbg::machine::{Machine, MachineConfig};

/// (clock, PC, x19 = the firmware's running sum, hash of registers and RAM).
type Point = (u64, u128, u128, u64);

fn point(s: &mut Session) -> Point {
    (
        s.clock().unwrap(),
        s.read_reg(0, Reg::Pc).unwrap(),
        s.read_reg(0, Reg::X(19)).unwrap(),
        s.state_hash().unwrap(),
    )
}

fn session() -> Option<(Session, Arc<SerialInput>, Arc<dyn Recorder>)> {
    session_of("echo", 1)
}

/// A recorded-to-be session of firmware `name` on `vcpus` vCPUs, with hardware breakpoints
/// where a byte is read (`got_byte`) and at the report.
fn session_of(name: &str, vcpus: usize) -> Option<(Session, Arc<SerialInput>, Arc<dyn Recorder>)> {
    if !common::require_firmware_tools() {
        return None;
    }
    let image = std::fs::read(common::firmware_elf(name)).unwrap();
    let cfg = MachineConfig {
        backend: BackendKind::Model,
        vcpus,
        ram_size: 8 << 20,
        uart_out: Box::new(std::io::sink()),
        trace: None,
        test_hooks: Default::default(),
        icount: true,
        jit: true,
    };
    let m = Machine::new(cfg, &image).unwrap();
    let (input, rec) = (m.serial_input(), m.recorder().unwrap());
    let mut s = Session::new(m).unwrap();
    for sym in ["got_byte", "report"] {
        let a = s.image().symbol(sym).unwrap().addr;
        s.insert_hw_breakpoint(a).unwrap();
    }
    Some((s, input, rec))
}

fn cont(s: &mut Session) -> Stop {
    let all: Vec<_> = (0..s.vcpu_count()).map(|v| (v, Resume::Continue)).collect();
    s.resume(&all).unwrap();
    s.wait_stop().unwrap()
}

/// The console inputs of the log: (clock, bytes).
fn console_inputs(rec: &dyn Recorder) -> Vec<(u64, Vec<u8>)> {
    rec.inputs()
        .into_iter()
        .filter_map(|ev| match ev.input {
            Input::Console { bytes, .. } => Some((ev.at, bytes)),
            _ => None,
        })
        .collect()
}

fn is_break(stop: &Stop) -> bool {
    matches!(stop.reason, StopReason::Debug { .. })
}

#[test]
fn console_input_replays_at_its_clock_after_going_back() {
    let Some((mut s, input, rec)) = session() else {
        return;
    };
    s.start_recording().unwrap();
    let start = point(&mut s);
    // The host types late: the guest is idle in WFI when each chunk arrives.
    input.set_open(true);
    let host = input.clone();
    let feeder = std::thread::spawn(move || {
        for chunk in [&b"ab"[..], b"c\n"] {
            std::thread::sleep(Duration::from_millis(150));
            host.push(chunk);
        }
    });
    // Forward: a stop at each byte read (4) and at the report.
    let mut forward = Vec::new();
    for _ in 0..5 {
        let stop = cont(&mut s);
        assert!(is_break(&stop), "{stop:?}");
        forward.push(point(&mut s));
    }
    feeder.join().unwrap();
    let report = s.image().symbol("report").unwrap().addr;
    assert_eq!(forward[4].1, report as u128);
    // 'a' + 'b' + 'c' + '\n'
    assert_eq!(forward[4].2, 97 + 98 + 99 + 10);

    let console = console_inputs(rec.as_ref());
    assert_eq!(console.len(), 2, "{console:?}");
    assert_eq!(console[0].1, b"ab");
    assert_eq!(console[1].1, b"c\n");
    assert!(
        console[0].0 < forward[0].0,
        "admitted before the first read"
    );
    assert!(console[1].0 > forward[1].0 && console[1].0 < forward[2].0);

    back_to_start(&mut s, &start, &forward[..4]);
    // Host input typed while in the past waits for the end of the recording.
    input.push(b"zz");
    input.set_open(false);
    forward_again(&mut s, &forward);
    assert_eq!(rec.inputs().len(), 2, "a replay records nothing new");
    assert_eq!(
        input.pending(),
        2,
        "the bytes typed in the past are not taken"
    );
}

/// From the stop after `stops`: reverse continues back through each of them (the forward
/// run's states) to the start of the recording (`start`).
fn back_to_start(s: &mut Session, start: &Point, stops: &[Point]) {
    for want in stops.iter().rev() {
        s.reverse_continue(0).unwrap();
        let stop = s.wait_stop().unwrap();
        assert!(is_break(&stop), "{stop:?}");
        assert_eq!(&point(s), want);
    }
    s.reverse_continue(0).unwrap();
    assert_eq!(s.wait_stop().unwrap().reason, StopReason::HistoryStart);
    assert_eq!(&point(s), start);
}

/// Continues through `stops` again: each gives its recorded state.
fn forward_again(s: &mut Session, stops: &[Point]) {
    for want in stops {
        let stop = cont(s);
        assert!(is_break(&stop), "{stop:?}");
        assert_eq!(&point(s), want, "replayed input gives the recorded states");
    }
}

#[test]
fn a_machine_waiting_for_input_stops_on_interrupt_and_takes_input_after() {
    let Some((mut s, input, rec)) = session() else {
        return;
    };
    input.set_open(true);
    s.resume(&[(0, Resume::Continue)]).unwrap();
    // Every vCPU idle in WFI with no timer: the machine waits for the host; Ctrl-C stops it.
    std::thread::sleep(Duration::from_millis(200));
    assert!(s.poll_stop().unwrap().is_none(), "waiting, not stopped");
    let idle_clock = rec.now();
    s.interrupt();
    let stop = s.wait_stop().unwrap();
    assert_eq!(stop.reason, StopReason::Paused, "{stop:?}");
    assert_eq!(
        s.clock().unwrap(),
        idle_clock,
        "the clock stood still while waiting"
    );
    // Input after the stop reaches the guest once it runs again.
    input.push(b"A\n");
    let stop = cont(&mut s);
    assert!(is_break(&stop), "{stop:?}");
    assert_eq!(
        s.read_reg(0, Reg::X(19)).unwrap(),
        0,
        "stopped before adding 'A'"
    );
    let stop = cont(&mut s);
    assert!(is_break(&stop), "{stop:?}");
    assert_eq!(s.read_reg(0, Reg::X(19)).unwrap(), u128::from(b'A'));
}

/// Console input on 4 vCPUs (`echosmp`): vCPU 0 echoes while the secondaries count and then
/// power off. Bytes typed while a secondary holds the turn are admitted at a quantum start
/// and logged; the last ones arrive late (the machine may be idle by then). Going back
/// through every read to the start and forward again gives the forward run's states
/// (every vCPU's registers and RAM) and replays the bytes at their clock.
#[test]
fn console_input_on_smp_replays_at_its_clock_after_going_back() {
    let Some((mut s, input, rec)) = session_of("echosmp", 4) else {
        return;
    };
    s.start_recording().unwrap();
    let start = point(&mut s);
    input.set_open(true);
    // Stopped while a secondary counts: the first bytes come while it runs.
    let spin = s.image().symbol("spin_loop").unwrap().addr;
    s.insert_hw_breakpoint(spin).unwrap();
    let stop = cont(&mut s);
    assert!(is_break(&stop) && stop.vcpu != 0, "{stop:?}");
    assert!(s.remove_hw_breakpoint(spin));
    let mut forward = vec![point(&mut s)];
    input.push(b"ab");
    let host = input.clone();
    let feeder = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(150));
        host.push(b"c\n");
    });
    // A stop at each byte read (4) and at the report.
    for k in 0..5 {
        let stop = cont(&mut s);
        assert!(is_break(&stop) && stop.vcpu == 0, "{stop:?}");
        if k == 0 {
            let running = (1..4).filter(|&v| !s.powered_off(v).unwrap()).count();
            assert!(running > 0, "a secondary still runs at the first read");
        }
        forward.push(point(&mut s));
    }
    feeder.join().unwrap();
    let report = s.image().symbol("report").unwrap().addr;
    assert_eq!(forward[5].1, report as u128);
    assert_eq!(forward[5].2, 97 + 98 + 99 + 10);
    let console = console_inputs(rec.as_ref());
    assert_eq!(console.len(), 2, "{console:?}");
    assert_eq!(
        (&console[0].1[..], &console[1].1[..]),
        (&b"ab"[..], &b"c\n"[..])
    );
    assert!(console[0].0 > forward[0].0 && console[0].0 < forward[1].0);

    back_to_start(&mut s, &start, &forward[1..5]);
    // Forward again: the recorded bytes at their clock, nothing new taken or logged.
    input.push(b"zz");
    input.set_open(false);
    s.run_to(forward[0].0).unwrap();
    assert_eq!(point(&mut s), forward[0], "where the bytes were typed");
    forward_again(&mut s, &forward[1..]);
    assert_eq!(
        console_inputs(rec.as_ref()),
        console,
        "a replay records nothing new"
    );
    assert_eq!(
        input.pending(),
        2,
        "the bytes typed in the past are not taken"
    );
}
