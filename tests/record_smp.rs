//! PSCI CPU_ON under the deterministic clock (docs/architecture.md, "Deterministic clock"):
//! a CPU_ON takes effect where the turn first reaches the target after the caller's HVC
//! (the reset is one tick of the target's, taken before its first instruction), never when
//! the target's host thread happens to wake. Checked on the `smp` firmware (4 vCPUs): the
//! targets read as before their reset until then, whatever the host threads do; the state
//! at every clock around the switch-on is the same reached by a breakpoint, by running to
//! the clock, and by restoring a snapshot taken while the targets were starting.

mod common;

use kvmdbg::a64::Reg;
use kvmdbg::backend::BackendKind;
use kvmdbg::machine::control::{Resume, StopReason};
use kvmdbg::machine::session::{Session, Stop};
use kvmdbg::machine::{Machine, MachineConfig};

const CPUS: usize = 4;

fn session(image: &[u8]) -> Session {
    let cfg = MachineConfig {
        backend: BackendKind::Model,
        vcpus: CPUS,
        ram_size: 8 << 20,
        uart_out: Box::new(std::io::sink()),
        trace: None,
        test_hooks: Default::default(),
        icount: true,
    };
    Session::new(Machine::new(cfg, image).unwrap()).unwrap()
}

fn smp_image() -> Option<Vec<u8>> {
    if !common::require_firmware_tools() {
        return None;
    }
    Some(std::fs::read(common::firmware_elf("smp")).unwrap())
}

fn continue_all(s: &mut Session) -> Stop {
    let all: Vec<_> = (0..s.vcpu_count()).map(|v| (v, Resume::Continue)).collect();
    s.resume(&all).unwrap();
    s.wait_stop().unwrap()
}

/// Continues every vCPU to the hardware breakpoint at `symbol`; the stop's vCPU and clock.
fn continue_to(s: &mut Session, symbol: &str) -> (usize, u64) {
    let a = s.image().symbol(symbol).unwrap().addr;
    s.insert_hw_breakpoint(a).unwrap();
    let stop = continue_all(s);
    assert!(
        matches!(stop.reason, StopReason::Debug { .. }),
        "stopped for {:?}, not at {symbol}",
        stop.reason
    );
    assert!(s.remove_hw_breakpoint(a));
    assert_eq!(s.read_reg(stop.vcpu, Reg::Pc).unwrap(), u128::from(a));
    (stop.vcpu, s.clock().unwrap())
}

/// (PC, x0) of every vCPU.
fn pcs(s: &mut Session) -> Vec<(u128, u128)> {
    (0..CPUS)
        .map(|v| {
            (
                s.read_reg(v, Reg::Pc).unwrap(),
                s.read_reg(v, Reg::X(0)).unwrap(),
            )
        })
        .collect()
}

/// State hash of a fresh, unrecorded session run straight to clock `t`.
fn forward_hash(image: &[u8], t: u64) -> (u64, Vec<(u128, u128)>) {
    let mut s = session(image);
    assert!(s.run_to(t).unwrap().is_none(), "the run ended before {t}");
    assert_eq!(s.clock(), Some(t));
    (s.state_hash().unwrap(), pcs(&mut s))
}

#[test]
fn cpu_on_takes_effect_when_the_turn_reaches_the_target() {
    let Some(image) = smp_image() else {
        return;
    };
    let mut s = session(&image);
    let entry = u128::from(s.image().symbol("secondary_entry").unwrap().addr);
    // vCPU 0 has called CPU_ON for vCPUs 1..3 and waits for them, still in its first quantum.
    let (v, asked) = continue_to(&mut s, "wait_alive");
    assert_eq!(v, 0);
    let before = pcs(&mut s);
    for (t, (pc, _)) in before.iter().enumerate().skip(1) {
        assert!(!s.powered_off(t).unwrap(), "vCPU {t}: CPU_ON accepted");
        assert_ne!(
            *pc, entry,
            "vCPU {t} was reset at clock {asked}, before the turn reached it"
        );
    }
    // The first secondary to run: its reset is the tick before its first instruction.
    let (first, started) = continue_to(&mut s, "secondary_entry");
    assert_ne!(first, 0);
    assert_eq!(
        s.read_reg(first, Reg::X(0)).unwrap(),
        first as u128,
        "x0 = context id"
    );
    for t in (1..CPUS).filter(|&t| t != first) {
        assert_eq!(
            s.read_reg(t, Reg::Pc).unwrap(),
            before[t].0,
            "vCPU {t} not reset yet"
        );
    }
    let (at_start, regs) = forward_hash(&image, started);
    assert_eq!(at_start, s.state_hash().unwrap(), "clock {started}");
    assert_eq!(regs[first], (entry, first as u128));
    let (_, regs) = forward_hash(&image, started - 1);
    assert_eq!(
        regs[first],
        before[first],
        "clock {}: one tick before, vCPU {first} is not reset",
        started - 1
    );
}

#[test]
fn a_snapshot_taken_while_cpus_start_restores_the_same_history() {
    let Some(image) = smp_image() else {
        return;
    };
    let mut s = session(&image);
    let (_, asked) = continue_to(&mut s, "wait_alive");
    s.start_recording().unwrap();
    let k = s.take_snapshot().unwrap();
    assert_eq!(s.snapshot_clock(k), Some(asked));
    let hash_asked = s.state_hash().unwrap();
    // Forward past every secondary's switch-on (each reports in, then calls CPU_OFF).
    let (_, started) = continue_to(&mut s, "secondary_entry");
    let (_, reported) = continue_to(&mut s, "report");
    assert!(reported > started);
    // Back to the snapshot taken while vCPUs 1..3 were starting, then forward again.
    assert_eq!(s.restore_snapshot(k).unwrap(), asked);
    assert_eq!(s.state_hash().unwrap(), hash_asked, "restored at {asked}");
    let mut clocks = vec![started - 1, started, started + 1, started + 224, reported];
    clocks.extend((1..=4).map(|q| asked + q * (reported - asked) / 5));
    clocks.sort();
    clocks.dedup();
    for t in clocks.into_iter().filter(|&t| t > asked) {
        s.run_to(t).unwrap();
        assert_eq!(s.clock(), Some(t));
        let (want, _) = forward_hash(&image, t);
        assert_eq!(
            s.state_hash().unwrap(),
            want,
            "replayed from the snapshot to {t}"
        );
    }
}
