//! The vCPU side of the debugger's costs (issue 13 item 5), printed, never asserted: a
//! benchmark in a test binary so that the nested machine's cross-build stages it (every
//! `kvm*` test is). Ignored by default; run it with
//!
//! ```text
//! cargo test --release --test kvm_costs -- --ignored --nocapture        (model, this host)
//! scripts/nested/run.sh --no-tests \
//!   --guest-cmd '/tests/kvm_costs --ignored --nocapture --test-threads=1'  (real KVM)
//! ```
//!
//! On the backend `backend::auto_kind` picks (KVM where `/dev/kvm` exists), it prints:
//! - the bare single-step rate: `Vcpu::run` + `Vcpu::get(Pc)` in a loop with
//!   `KVM_GUESTDBG_SINGLESTEP` (on KVM: one `KVM_RUN` and one `KVM_GET_ONE_REG` per step,
//!   nothing of kvmdbg's machine around them), on a two-instruction loop;
//! - kvmdbg's session stepping the same loop (`Session::resume` Step + `wait_stop`: the vCPU
//!   thread, the step state machine, the debug policy), and its cost relative to the bare loop;
//! - the range-step rate (one `RangeStep` resume over a counted loop of 2 x 20,000 steps);
//! - the compute firmware (`compute.elf`, from `KVMDBG_FIRMWARE_DIR` or target/firmware) run
//!   plain and under a session with nothing set (as with gdb attached and continuing), best
//!   of five each, both timed from the built machine to the ended threads, and their ratio
//!   (goal 1.00: no trapping cost while nothing is set).

use std::path::PathBuf;
use std::time::Instant;

use kvmdbg::a64::Reg;
use kvmdbg::backend::{self, BackendKind, GuestDebug, VcpuExit, VmConfig};
use kvmdbg::machine::control::{Resume, StopReason};
use kvmdbg::machine::layout::{self, RAM_BASE};
use kvmdbg::machine::session::Session;
use kvmdbg::machine::{memory, Machine, MachineConfig, Outcome};
use vm_memory::{Bytes, GuestAddress};

const STEPS: usize = 20_000;
/// Iterations of the range-stepped loop (two instructions each).
const RANGE_ITERATIONS: u64 = 20_000;

/// The step loop at RAM_BASE.
const STEP_LOOP: [u32; 2] = [
    0x9100_0421, // add x1, x1, #1 (Arm ARM C6.2.4 ADD (immediate))
    0x17ff_ffff, // b .-4 (C6.2.26 B, imm26 = -1)
];

/// The range-stepped loop at RAM_BASE: x0 counts down from RANGE_ITERATIONS.
const COUNTED_LOOP: [u32; 4] = [
    0xd289_c400, // movz x0, #0x4e20 (20,000; Arm ARM C6.2.191 MOVZ)
    0xf100_0400, // subs x0, x0, #1 (C6.2.362 SUBS (immediate))
    0x54ff_ffe1, // b.ne .-4 (C6.2.27 B.cond, cond NE, imm19 = -1)
    0x1400_0000, // b . (C6.2.26 B, imm26 = 0)
];

fn words(w: &[u32]) -> Vec<u8> {
    w.iter().flat_map(|w| w.to_le_bytes()).collect()
}

fn kind() -> BackendKind {
    backend::auto_kind()
}

fn config() -> MachineConfig {
    MachineConfig {
        backend: kind(),
        vcpus: 1,
        ram_size: 16 << 20,
        uart_out: Box::new(std::io::sink()),
        trace: None,
        test_hooks: Default::default(),
        icount: false,
        jit: true,
    }
}

/// Steps per second of the bare loop.
fn bare_step_rate() -> f64 {
    let mem = memory::allocate(1 << 20).expect("RAM");
    mem.write_slice(&words(&STEP_LOOP), GuestAddress(RAM_BASE))
        .unwrap();
    let vm = backend::create_vm(
        kind(),
        &mem,
        &VmConfig {
            vcpus: 1,
            gic: layout::gic_layout(1),
            nisv_to_user: true,
            model_keep_ss_bug: false,
            icount: false,
            jit: true,
        },
    )
    .expect("VM");
    let mut vcpu = vm.create_vcpu(0).expect("vCPU");
    vm.finalize().expect("finalize");
    vcpu.set(Reg::Pc, RAM_BASE).unwrap();
    vcpu.set_guest_debug(&GuestDebug {
        enable: true,
        single_step: true,
        ..GuestDebug::default()
    })
    .unwrap();
    let t0 = Instant::now();
    let mut pcs = 0u64;
    for _ in 0..STEPS {
        match vcpu.run().expect("run") {
            VcpuExit::Debug { .. } => {}
            other => panic!("expected a step exit, got {other:?}"),
        }
        pcs ^= vcpu.get(Reg::Pc).unwrap();
    }
    let rate = STEPS as f64 / t0.elapsed().as_secs_f64();
    assert!(
        pcs == 0 || pcs == RAM_BASE ^ (RAM_BASE + 4),
        "the loop ran: {pcs:#x}"
    );
    rate
}

/// Steps per second of the session stepping the same loop.
fn session_step_rate() -> f64 {
    let mut s = Session::new(Machine::new(config(), &words(&STEP_LOOP)).unwrap()).unwrap();
    let t0 = Instant::now();
    for _ in 0..STEPS {
        s.resume(&[(0, Resume::Step)]).unwrap();
        let stop = s.wait_stop().unwrap();
        assert_eq!(stop.reason, StopReason::Step, "{stop:?}");
    }
    let rate = STEPS as f64 / t0.elapsed().as_secs_f64();
    assert_eq!(
        s.read_reg(0, Reg::X(1)).unwrap() as usize,
        STEPS.div_ceil(2)
    );
    rate
}

/// Steps per second of one range step over the counted loop.
fn range_step_rate() -> f64 {
    let code = words(&COUNTED_LOOP);
    let mut s = Session::new(Machine::new(config(), &code).unwrap()).unwrap();
    s.resume(&[(0, Resume::Step)]).unwrap();
    s.wait_stop().unwrap();
    assert_eq!(s.read_reg(0, Reg::X(0)).unwrap() as u64, RANGE_ITERATIONS);
    let t0 = Instant::now();
    let range = Resume::RangeStep {
        start: RAM_BASE + 4,
        end: RAM_BASE + 12,
    };
    s.resume(&[(0, range)]).unwrap();
    s.wait_stop().unwrap();
    let secs = t0.elapsed().as_secs_f64();
    assert_eq!(s.read_reg(0, Reg::Pc).unwrap() as u64, RAM_BASE + 12);
    (2 * RANGE_ITERATIONS) as f64 / secs
}

fn compute_elf() -> Option<Vec<u8>> {
    let dir = std::env::var_os("KVMDBG_FIRMWARE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/firmware"));
    std::fs::read(dir.join("compute.elf")).ok()
}

/// Seconds of the compute firmware: (plain, under a session with nothing set), best of 5.
fn compute_seconds(fw: &[u8]) -> (f64, f64) {
    let (mut plain, mut session) = (f64::MAX, f64::MAX);
    for _ in 0..5 {
        let m = Machine::new(config(), fw).unwrap();
        let t0 = Instant::now();
        assert_eq!(m.run().unwrap(), Outcome::PowerOff);
        plain = plain.min(t0.elapsed().as_secs_f64());

        // Both timings include starting and ending the vCPU threads, as `Machine::run` does.
        let m = Machine::new(config(), fw).unwrap();
        let t0 = Instant::now();
        let mut s = Session::new(m).unwrap();
        s.resume(&[(0, Resume::Continue)]).unwrap();
        let stop = s.wait_stop().unwrap();
        drop(s);
        session = session.min(t0.elapsed().as_secs_f64());
        assert_eq!(stop.reason, StopReason::PowerOff, "{stop:?}");
    }
    (plain, session)
}

#[test]
#[ignore = "a benchmark: run with --ignored --nocapture"]
fn vcpu_side_costs() {
    println!("backend: {:?}", kind());
    let bare = bare_step_rate();
    let session = session_step_rate();
    println!("bare run + get(PC) steps/s            {bare:12.0}");
    println!(
        "session steps/s                       {session:12.0}   cost per step {:.2}x the bare loop",
        bare / session
    );
    println!(
        "range-step steps/s                    {:12.0}",
        range_step_rate()
    );
    match compute_elf() {
        Some(fw) => {
            let (plain, sess) = compute_seconds(&fw);
            println!(
                "compute.elf plain / session (s)       {plain:12.4} {sess:12.4}   ratio {:.3}",
                sess / plain
            );
        }
        None => println!("compute.elf not found (firmware/build.sh target/firmware)"),
    }
}
