//! Recording on the model (docs/architecture.md "Recording and reverse execution"): a
//! snapshot restored and run forward again reaches exactly the state the first run reached
//! at the same clock (the `--state-hash` of every vCPU's registers and RAM), on one vCPU
//! with breakpoint stops in between, and with 4 vCPUs (GIC, PSCI power states, turns).

mod common;

use kvmdbg::a64::Reg;
use kvmdbg::backend::BackendKind;
use kvmdbg::machine::control::{Resume, StopKind, StopReason};
use kvmdbg::machine::session::{Session, Stop};
use kvmdbg::machine::{Machine, MachineConfig};

const DEMO: &[u8] = include_bytes!("../firmware/prebuilt/demo.elf");

fn session(image: &[u8], cpus: usize, icount: bool) -> Session {
    let cfg = MachineConfig {
        backend: BackendKind::Model,
        vcpus: cpus,
        ram_size: 64 << 20,
        uart_out: Box::new(std::io::sink()),
        trace: None,
        test_hooks: Default::default(),
        icount,
        jit: true,
    };
    Session::new(Machine::new(cfg, image).unwrap()).unwrap()
}

fn cont_all(s: &mut Session) -> Stop {
    let all: Vec<_> = (0..s.vcpu_count()).map(|i| (i, Resume::Continue)).collect();
    s.resume(&all).unwrap();
    s.wait_stop().unwrap()
}

fn is_sw_break(stop: &Stop) -> bool {
    matches!(
        stop.reason,
        StopReason::Debug {
            verdict: StopKind::SwBreak,
            ..
        }
    )
}

/// (clock, x0, state hash) at the current stop.
fn state(s: &mut Session) -> (u64, u128, u64) {
    let clock = s.clock().unwrap();
    let x0 = s.read_reg(0, Reg::X(0)).unwrap();
    (clock, x0, s.state_hash().unwrap())
}

#[test]
fn a_restored_snapshot_runs_forward_to_the_same_state() {
    let mut s = session(DEMO, 1, true);
    let fib = s.image().symbol("fib").unwrap().addr;
    s.insert_sw_breakpoint(0, fib).unwrap();
    assert!(is_sw_break(&cont_all(&mut s)));
    s.start_recording().unwrap();
    let t0 = state(&mut s);
    // Forward, with a snapshot at every stop: the states at each stop.
    let mut forward = Vec::new();
    for _ in 0..6 {
        assert!(is_sw_break(&cont_all(&mut s)));
        forward.push(state(&mut s));
        s.take_snapshot().unwrap();
    }
    let info = s.recording().unwrap();
    assert_eq!(info.snapshots, 7);
    assert_eq!((info.first, info.last), (t0.0, forward[5].0));
    assert!(forward.windows(2).all(|w| w[0].0 < w[1].0), "{forward:?}");
    // Back to the first snapshot: the same state as then, and the same stops forward.
    assert_eq!(s.restore_snapshot(0).unwrap(), t0.0);
    assert_eq!(state(&mut s), t0);
    for want in &forward {
        assert!(is_sw_break(&cont_all(&mut s)));
        assert_eq!(&state(&mut s), want);
    }
    // From a snapshot in the middle, after having been at the end.
    assert_eq!(s.restore_snapshot(2).unwrap(), forward[1].0);
    assert_eq!(state(&mut s), forward[1]);
    assert!(is_sw_break(&cont_all(&mut s)));
    assert_eq!(state(&mut s), forward[2]);
    // The breakpoint stayed planted through the restores, invisible to reads.
    let mut word = [0u8; 4];
    s.read_virt(0, fib, &mut word).unwrap();
    assert_ne!(u32::from_le_bytes(word), 0xd420_0000);
}

#[test]
fn a_restored_smp_snapshot_reaches_the_same_end() {
    if !common::require_firmware_tools() {
        return;
    }
    let bytes = std::fs::read(common::firmware_elf("smp")).unwrap();
    let mut s = session(&bytes, 4, true);
    let report = s.image().symbol("report").unwrap().addr;
    s.start_recording().unwrap();
    s.insert_sw_breakpoint(0, report).unwrap();
    assert!(is_sw_break(&cont_all(&mut s)));
    let end = s.clock().unwrap();
    let hash = s.state_hash().unwrap();
    assert!(end > 0);
    s.take_snapshot().unwrap();
    assert_eq!(s.restore_snapshot(0).unwrap(), 0);
    assert!(is_sw_break(&cont_all(&mut s)));
    assert_eq!(s.clock().unwrap(), end);
    assert_eq!(s.state_hash().unwrap(), hash);
}

#[test]
fn recording_needs_the_deterministic_clock() {
    let mut s = session(DEMO, 1, false);
    let e = s.start_recording().unwrap_err().to_string();
    assert!(e.contains("deterministic clock"), "{e}");
}
