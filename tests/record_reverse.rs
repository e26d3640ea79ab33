//! Reverse execution on the model against the plain forward run (docs/architecture.md,
//! "Recording and reverse execution"): a random walk of forward steps and continues,
//! reverse steps and reverse continues (hardware breakpoints and a watchpoint, so RAM holds
//! no planted BRK) on a recorded session; every stop's clock, registers of every vCPU and
//! RAM (the `--state-hash`) must equal those of a second, unrecorded session run straight
//! forward to the same clock. Firmware: `timer` (timer interrupts, WFI skips, MMIO to the
//! UART), `exceptions` (synchronous exceptions, SVC from EL0 and ERET), `smp` (4 vCPUs).
//! And named tests of PSCI CPU_ON under the deterministic clock (below).

mod common;

use kvmdbg::a64::Reg;
use kvmdbg::backend::BackendKind;
use kvmdbg::debug::hwplan::{Watch, WatchKind};
use kvmdbg::machine::control::{Resume, StopKind, StopReason};
use kvmdbg::machine::session::{Session, Stop};
use kvmdbg::machine::{Machine, MachineConfig};

fn session(image: &[u8], cpus: usize) -> Session {
    let cfg = MachineConfig {
        backend: BackendKind::Model,
        vcpus: cpus,
        ram_size: 8 << 20,
        uart_out: Box::new(std::io::sink()),
        trace: None,
        test_hooks: Default::default(),
        icount: true,
        jit: true,
    };
    Session::new(Machine::new(cfg, image).unwrap()).unwrap()
}

/// xorshift64* (Marsaglia, Vigna): the walk is the same for the same seed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    }
}

/// What is compared at a stop: (clock, PC of vCPU 0, hash of every register and RAM).
type Point = (u64, u128, u64);

fn point(s: &mut Session) -> Point {
    (
        s.clock().unwrap(),
        s.read_reg(0, Reg::Pc).unwrap(),
        s.state_hash().unwrap(),
    )
}

fn resume_all(s: &mut Session, first: (usize, Resume)) -> Stop {
    let mut actions = vec![first];
    actions.extend(
        (0..s.vcpu_count())
            .filter(|v| *v != first.0)
            .map(|v| (v, Resume::Continue)),
    );
    s.resume(&actions).unwrap();
    s.wait_stop().unwrap()
}

fn ended(stop: &Stop) -> bool {
    matches!(stop.reason, StopReason::PowerOff | StopReason::Reset)
}

/// One random walk of `steps` operations; returns every stop's point.
fn walk(
    image: &[u8],
    cpus: usize,
    marks: &[&str],
    watch: &str,
    seed: u64,
    steps: usize,
) -> Vec<Point> {
    let mut s = session(image, cpus);
    let mut rng = Rng(seed | 1);
    for m in marks {
        let a = s.image().symbol(m).unwrap().addr;
        s.insert_hw_breakpoint(a).unwrap();
    }
    let w = s.image().symbol(watch).unwrap().addr;
    s.insert_watchpoint(Watch {
        addr: w,
        len: 4,
        kind: WatchKind::Write,
    })
    .unwrap();
    let is_watch = |stop: &Stop| {
        matches!(
            stop.reason,
            StopReason::Debug {
                verdict: StopKind::Watch { .. },
                ..
            }
        )
    };
    s.start_recording().unwrap();
    let watch = Watch {
        addr: w,
        len: 4,
        kind: WatchKind::Write,
    };
    let mut points = vec![point(&mut s)];
    let mut at_end = false;
    let mut on_watch: Option<usize> = None;
    for _ in 0..steps {
        // A random vCPU that is powered on (a powered-off one cannot step).
        let first = rng.below(cpus as u64) as usize;
        let vcpu = (0..cpus)
            .map(|k| (first + k) % cpus)
            .find(|&v| !s.powered_off(v).unwrap())
            .unwrap_or(0);
        let op = rng.below(20);
        // As gdb after a watchpoint stop (aarch64 reports it before the access): one step
        // in the direction of travel with the watchpoint removed.
        if let Some(v) = on_watch.take() {
            s.remove_watchpoint(watch);
            if op < 15 && !at_end {
                resume_all(&mut s, (v, Resume::Step));
            } else {
                s.reverse_step(v).unwrap();
                s.wait_stop().unwrap();
            }
            s.insert_watchpoint(watch).unwrap();
            points.push(point(&mut s));
        }
        match op {
            0..=9 if !at_end => {
                let stop = resume_all(&mut s, (vcpu, Resume::Step));
                at_end = ended(&stop);
                on_watch = is_watch(&stop).then_some(stop.vcpu);
            }
            10..=14 if !at_end => {
                let stop = resume_all(&mut s, (vcpu, Resume::Continue));
                at_end = ended(&stop);
                on_watch = is_watch(&stop).then_some(stop.vcpu);
            }
            0..=17 => {
                s.reverse_step(vcpu).unwrap();
                s.wait_stop().unwrap();
                at_end = false;
            }
            _ => {
                s.reverse_continue(vcpu).unwrap();
                let stop = s.wait_stop().unwrap();
                at_end = false;
                on_watch = is_watch(&stop).then_some(stop.vcpu);
            }
        }
        points.push(point(&mut s));
    }
    points
}

/// The plain forward run's point at each clock of `points`.
fn check_against_forward(image: &[u8], cpus: usize, points: &[Point]) {
    let mut sorted = points.to_vec();
    sorted.sort();
    sorted.dedup();
    let mut fwd = session(image, cpus);
    for want in sorted {
        if fwd.clock().unwrap() > want.0 {
            fwd = session(image, cpus);
        }
        fwd.run_to(want.0).unwrap();
        assert_eq!(point(&mut fwd), want, "state at clock {}", want.0);
    }
}

/// `depth`: a clock some walk must pass (past snapshot points, the first timer interrupt).
fn differential(name: &str, cpus: usize, marks: &[&str], watch: &str, depth: u64) {
    if !common::require_firmware_tools() {
        return;
    }
    let image = std::fs::read(common::firmware_elf(name)).unwrap();
    let mut deepest_of_all = 0;
    for seed in [0x9e37_79b9_7f4a_7c15u64, 12345, 777] {
        let points = walk(&image, cpus, marks, watch, seed, 30);
        let mut clocks: Vec<u64> = points.iter().map(|p| p.0).collect();
        let backwards = clocks.windows(2).filter(|w| w[1] < w[0]).count();
        clocks.sort();
        clocks.dedup();
        let deepest = clocks.last().copied().unwrap_or(0);
        eprintln!(
            "{name} seed {seed:#x}: {} points, {} clocks, {backwards} moves back, deepest {deepest}",
            points.len(),
            clocks.len()
        );
        assert!(
            backwards >= 5 && clocks.len() >= 10,
            "{name}: a walk that hardly moves"
        );
        deepest_of_all = deepest_of_all.max(deepest);
        check_against_forward(&image, cpus, &points);
    }
    assert!(
        deepest_of_all > depth,
        "{name}: no walk got past clock {depth}"
    );
}

#[test]
fn timer_interrupts_reverse_like_the_forward_run() {
    // The first timer interrupt comes 1 ms (62 500 ticks) after the timer is armed.
    differential("timer", 1, &["irq_handler"], "irq_count", 62_500);
}

#[test]
fn exceptions_reverse_like_the_forward_run() {
    differential(
        "exceptions",
        1,
        &["sync_handler", "el0_back"],
        "trap_count",
        5000,
    );
}

/// Four vCPUs, switched on by PSCI CPU_ON just before the first quantum ends: the switch-on
/// happens at a clock fixed by the turn, also on a loaded host (the CPU_ON tests below).
#[test]
fn smp_reverses_like_the_forward_run() {
    differential(
        "smp",
        4,
        &["secondary_entry", "report"],
        "alive_count",
        10_000,
    );
}

// PSCI CPU_ON under the deterministic clock (docs/architecture.md, "Deterministic clock"): a
// CPU_ON takes effect where the turn first reaches the target after the caller's HVC (the
// reset is one tick of the target's, taken before its first instruction), never when the
// target's host thread happens to wake. On `smp` (4 vCPUs): the targets read as before their
// reset until then, whatever the host threads do; the state at every clock around the
// switch-on is the same reached by a breakpoint, by running to the clock, and by restoring a
// snapshot taken while the targets were starting.

/// The `smp` firmware's vCPUs in the CPU_ON tests.
const CPUS: usize = 4;

fn smp_image() -> Option<Vec<u8>> {
    if !common::require_firmware_tools() {
        return None;
    }
    Some(std::fs::read(common::firmware_elf("smp")).unwrap())
}

/// Continues every vCPU to the hardware breakpoint at `symbol`; the stop's vCPU and clock.
fn continue_to(s: &mut Session, symbol: &str) -> (usize, u64) {
    let a = s.image().symbol(symbol).unwrap().addr;
    s.insert_hw_breakpoint(a).unwrap();
    let stop = resume_all(s, (0, Resume::Continue));
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
    let mut s = session(image, CPUS);
    assert!(s.run_to(t).unwrap().is_none(), "the run ended before {t}");
    assert_eq!(s.clock(), Some(t));
    (s.state_hash().unwrap(), pcs(&mut s))
}

#[test]
fn cpu_on_takes_effect_when_the_turn_reaches_the_target() {
    let Some(image) = smp_image() else {
        return;
    };
    let mut s = session(&image, CPUS);
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
    let mut s = session(&image, CPUS);
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
