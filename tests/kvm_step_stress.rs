//! Step stress, in the style of the kernel selftest `debug-exceptions.c`
//! (`test_single_step_from_userspace`): 10,000 steps driven by kvmdbg over MMIO-heavy code (an
//! MMIO store, an MMIO load and a pair store that kvmdbg emulates itself, in a loop), each
//! stop asserted to be exactly the next instruction: the previous PC + 4 or the branch target.
//! Runs on the model everywhere and on real KVM where it is usable (the nested CI machine).
//!
//! `the_suite_bites_without_vmm_step_completion_*` prove the check can fail: with kvmdbg's own
//! step completion disabled (test hook `TestHooks::no_step_completion`), the step over the
//! emulated pair reports the stop after the following instruction — the classic symptom; and
//! on the model, `TestHooks::model_keep_ss` (the pre-fix kernel bug: the PC advance after MMIO
//! leaves PSTATE.SS set) fails the same way one instruction earlier.

mod backends;
mod common;

use backends::kvm_usable;
use kvmdbg::a64::Reg;
use kvmdbg::backend::BackendKind;
use kvmdbg::machine::control::{Resume, StopReason};
use kvmdbg::machine::layout::RAM_BASE;
use kvmdbg::machine::session::Session;
use kvmdbg::machine::{Machine, MachineConfig, TestHooks};

/// The loop (hand-assembled; offsets from the start of RAM).
const STRESS: &[u32] = &[
    0xd2a1_2001, // +0x00 movz x1, #0x900, lsl #16  MMIO: the PL011
    0xd280_0003, // +0x04 mov  x3, #0
    0xb900_3820, // +0x08 str  w0, [x1, #0x38]      loop: MMIO store (UARTIMSC)
    0x9100_0463, // +0x0c add  x3, x3, #1
    0xb940_1822, // +0x10 ldr  w2, [x1, #0x18]      MMIO load (UARTFR)
    0x2904_0020, // +0x14 stp  w0, w0, [x1, #0x20]  MMIO pair: emulated by kvmdbg (NISV)
    0xf13f_fc7f, // +0x18 cmp  x3, #4095
    0x54ff_ff61, // +0x1c b.ne .-20                 back to the store
    0x5280_0100, // +0x20 mov  w0, #0x8
    0x72b0_8000, // +0x24 movk w0, #0x8400, lsl #16 w0 = 0x8400_0008 SYSTEM_OFF
    0xd400_0002, // +0x28 hvc  #0
];
const LOOP_START: u64 = 0x08;
const LOOP_BRANCH: u64 = 0x1c;
const STEPS: usize = 10_000;

fn session(kind: BackendKind, test_hooks: TestHooks) -> Session {
    let image: Vec<u8> = STRESS.iter().flat_map(|w| w.to_le_bytes()).collect();
    let cfg = MachineConfig {
        backend: kind,
        vcpus: 1,
        ram_size: 16 << 20,
        uart_out: Box::new(std::io::sink()),
        trace: None,
        test_hooks,
        icount: false,
        jit: true,
    };
    Session::new(Machine::new(cfg, &image).expect("machine")).expect("session")
}

/// The PC that must follow `pc` (offsets from RAM): +4, or the loop start after the branch
/// (the loop runs 4095 times, more than the steps taken).
fn next(pc: u64) -> u64 {
    if pc == LOOP_BRANCH {
        LOOP_START
    } else {
        pc + 4
    }
}

/// Steps `STEPS` times; returns the first wrong stop as "after +a expected +b, stopped at +c".
fn stress(kind: BackendKind, hooks: TestHooks) -> Result<(), String> {
    let mut s = session(kind, hooks);
    let mut pc = s.read_reg(0, Reg::Pc).map_err(|e| e.to_string())? as u64 - RAM_BASE;
    for i in 0..STEPS {
        s.resume(&[(0, Resume::Step)]).map_err(|e| e.to_string())?;
        let stop = s.wait_stop().map_err(|e| e.to_string())?;
        if stop.reason != StopReason::Step {
            return Err(format!(
                "step {i} from +{pc:#x}: stopped for {:?}",
                stop.reason
            ));
        }
        let now = s.read_reg(0, Reg::Pc).map_err(|e| e.to_string())? as u64 - RAM_BASE;
        let want = next(pc);
        if now != want {
            let symptom = if now == next(want) {
                "stopped after the following instruction"
            } else {
                "stopped at the wrong place"
            };
            return Err(format!(
                "{}: step {i} from +{pc:#x}: expected +{want:#x}, {symptom} (+{now:#x})",
                kind.name()
            ));
        }
        pc = now;
    }
    let iterations = s.read_reg(0, Reg::X(3)).map_err(|e| e.to_string())?;
    let expected = ((STEPS - 2) / 6) as u128;
    if iterations != expected && iterations != expected + 1 {
        return Err(format!("x3 = {iterations}, expected about {expected}"));
    }
    Ok(())
}

#[test]
fn ten_thousand_steps_over_mmio_on_the_model() {
    stress(BackendKind::Model, TestHooks::default()).unwrap();
}

#[test]
fn ten_thousand_steps_over_mmio_on_kvm() {
    if kvm_usable() {
        stress(BackendKind::Kvm, TestHooks::default()).unwrap();
    }
}

/// Runs the stress test on `kind` with `hooks` and expects it to fail with `symptom`.
fn bites(kind: BackendKind, hooks: TestHooks, symptom: &str) {
    match stress(kind, hooks) {
        Ok(()) => panic!("{kind:?}: the suite passed with {hooks:?}"),
        Err(e) => assert!(e.contains(symptom), "{kind:?}: unexpected failure: {e}"),
    }
}

const NO_STEP_COMPLETION: TestHooks = TestHooks {
    no_irq_mask: false,
    no_step_completion: true,
    model_keep_ss: false,
};

/// Stepping over the emulated pair at +0x14 without completing the step: KVM (and the model)
/// run the cmp at +0x18 before the step exception.
const NISV_SYMPTOM: &str =
    "from +0x14: expected +0x18, stopped after the following instruction (+0x1c)";

#[test]
fn the_suite_bites_without_vmm_step_completion_on_the_model() {
    bites(BackendKind::Model, NO_STEP_COMPLETION, NISV_SYMPTOM);
}

#[test]
fn the_suite_bites_with_the_pre_fix_kernel_ss_bug_on_the_model() {
    // The PC advance after the MMIO store at +0x08 leaves PSTATE.SS set: the add at +0x0c
    // runs before the step exception.
    let hooks = TestHooks {
        model_keep_ss: true,
        ..TestHooks::default()
    };
    bites(
        BackendKind::Model,
        hooks,
        "from +0x8: expected +0xc, stopped after the following instruction (+0x10)",
    );
}

#[test]
fn the_suite_bites_without_vmm_step_completion_on_kvm() {
    if kvm_usable() {
        bites(BackendKind::Kvm, NO_STEP_COMPLETION, NISV_SYMPTOM);
    }
}
