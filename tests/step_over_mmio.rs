//! The step-over-MMIO regression suite: each corner of single-stepping over emulated
//! instructions is a block of `firmware/stepmmio.S` (from `c_<corner>` to `c_<corner>_end`).
//! kvmdbg stops at the block (hardware breakpoint), single-steps to its end and the test
//! asserts the exact PC sequence (one stop per instruction, none skipped, none repeated) and
//! the registers. The sequence must equal what QEMU TCG's gdbstub reports for the same ELF
//! (on the host), and real KVM's must equal the model's (inside the nested CI machine), on
//! every corner, except where KVM and QEMU legitimately differ (SMC: KVM 6.1 answers it, QEMU
//! without EL3 raises UNDEFINED; `step_over_smc` asserts each side's sequence).

mod backends;
mod common;
mod corners;

use backends::{kinds, kvm_usable};
use corners::{run_to, session_with, symbol, Output};

use std::path::Path;

use kvmdbg::a64::Reg;
use kvmdbg::backend::BackendKind;
use kvmdbg::debug::hwplan::{Watch, WatchKind};
use kvmdbg::machine::control::{Resume, StopReason};
use kvmdbg::machine::session::Session;

/// Registers compared at the end of every corner.
const REGS: [u8; 11] = [0, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11];
/// No corner is longer than this many steps (vectors included).
const MAX_STEPS: usize = 64;

/// What one stepped corner did.
#[derive(Debug, PartialEq, Eq)]
struct Run {
    pcs: Vec<u64>,
    regs: Vec<(u8, u64)>,
}

fn elf() -> Option<std::path::PathBuf> {
    common::require_firmware_tools().then(|| common::firmware_elf("stepmmio"))
}

/// A session stopped at `c_<corner>` (reached through a hardware breakpoint, removed again).
fn at_corner(kind: BackendKind, elf: &Path, corner: &str) -> Session {
    at_corner_with(kind, elf, corner, 1)
}

/// [`at_corner`] on a machine with `vcpus` vCPUs (vCPU 0 runs the corners).
fn at_corner_with(kind: BackendKind, elf: &Path, corner: &str, vcpus: usize) -> Session {
    let start = symbol(elf, &format!("c_{corner}"));
    let mut s = session_with(kind, elf, vcpus, Output::default());
    run_to(&mut s, start, corner);
    s
}

/// Runs to `c_<corner>` and steps to its end on kvmdbg.
fn kvmdbg_run(kind: BackendKind, elf: &Path, corner: &str) -> Run {
    let start = symbol(elf, &format!("c_{corner}"));
    let end = symbol(elf, &format!("c_{corner}_end"));
    let mut s = at_corner(kind, elf, corner);
    step_to(&mut s, start, end, corner)
}

fn step_to(s: &mut Session, start: u64, end: u64, corner: &str) -> Run {
    step_to_with(s, start, end, corner, &[])
}

/// Steps vCPU 0 from `start` to `end` while the vCPUs in `others` continue (scheduler locking
/// off, as gdb's default `stepi` does); every stop must be vCPU 0's step.
fn step_to_with(s: &mut Session, start: u64, end: u64, corner: &str, others: &[usize]) -> Run {
    let mut pcs = vec![start];
    while *pcs.last().unwrap() != end {
        assert!(
            pcs.len() < MAX_STEPS,
            "{corner}: no end after {MAX_STEPS} steps: {pcs:x?}"
        );
        let mut actions = vec![(0, Resume::Step)];
        actions.extend(others.iter().map(|&v| (v, Resume::Continue)));
        s.resume(&actions).unwrap();
        let stop = s.wait_stop().unwrap();
        assert_eq!(stop.reason, StopReason::Step, "{corner}: {pcs:x?}");
        assert_eq!(stop.vcpu, 0, "{corner}: another vCPU stopped: {stop:?}");
        pcs.push(s.read_reg(0, Reg::Pc).unwrap() as u64);
    }
    let regs = REGS
        .iter()
        .map(|&n| (n, s.read_reg(0, Reg::X(n)).unwrap() as u64))
        .collect();
    Run { pcs, regs }
}

/// The same on QEMU's gdbstub (None when QEMU is unavailable outside CI).
fn qemu_run(elf: &Path, corner: &str) -> Option<Run> {
    if !common::qemu::available(corner) {
        return None;
    }
    let start = symbol(elf, &format!("c_{corner}"));
    let end = symbol(elf, &format!("c_{corner}_end"));
    let mut q = common::qemu::Qemu::start_halted(elf).unwrap();
    let mut rsp = q.connect().unwrap();
    use common::rsp::BpKind;
    rsp.insert(BpKind::Hardware, start, 4).unwrap();
    rsp.cont().unwrap();
    rsp.remove(BpKind::Hardware, start, 4).unwrap();
    let reg = |rsp: &mut common::rsp::Rsp, n: usize| {
        let g = rsp.read_registers().unwrap();
        u64::from_le_bytes(g[n * 8..n * 8 + 8].try_into().unwrap())
    };
    let mut pcs = vec![reg(&mut rsp, 32)];
    assert_eq!(pcs[0], start, "QEMU did not stop at the corner");
    while *pcs.last().unwrap() != end {
        assert!(pcs.len() < MAX_STEPS, "QEMU {corner}: {pcs:x?}");
        rsp.step().unwrap();
        pcs.push(reg(&mut rsp, 32));
    }
    let regs = REGS
        .iter()
        .map(|&n| (n, reg(&mut rsp, n as usize)))
        .collect();
    let _ = rsp.kill();
    Some(Run { pcs, regs })
}

/// Asserts a corner: one stop per instruction (each PC differs from the last), and the model
/// equal to QEMU (host) and KVM equal to the model (where KVM runs).
fn corner(name: &str, expected_steps: usize) {
    corner_except(name, expected_steps, &[]);
}

/// [`corner`], leaving registers `not_vs_qemu` out of the comparison with QEMU.
fn corner_except(name: &str, expected_steps: usize, not_vs_qemu: &[u8]) {
    let Some(elf) = elf() else { return };
    let model = kvmdbg_run(BackendKind::Model, &elf, name);
    assert_eq!(
        model.pcs.len(),
        expected_steps + 1,
        "{name}: wrong number of stops: {:x?}",
        model.pcs
    );
    for w in model.pcs.windows(2) {
        assert_ne!(w[0], w[1], "{name}: a stop repeated: {:x?}", model.pcs);
    }
    if let Some(mut qemu) = qemu_run(&elf, name) {
        let mut m = Run {
            pcs: model.pcs.clone(),
            regs: model.regs.clone(),
        };
        m.regs.retain(|(n, _)| !not_vs_qemu.contains(n));
        qemu.regs.retain(|(n, _)| !not_vs_qemu.contains(n));
        assert_eq!(m, qemu, "{name}: the model differs from QEMU");
    }
    if kvm_usable() {
        let kvm = kvmdbg_run(BackendKind::Kvm, &elf, name);
        assert_eq!(kvm, model, "{name}: KVM differs from the model");
    }
}

#[test]
fn mmio_loads_and_stores_of_every_size_with_sign_extension() {
    corner("sizes", 11);
}

#[test]
fn ldp_stp_to_mmio_emulated_by_kvmdbg() {
    corner("pairs", 4);
}

#[test]
fn pre_and_post_index_writeback_to_mmio() {
    corner("writeback", 4);
}

#[test]
fn a_load_into_its_own_base_register() {
    corner("own_base", 2);
}

#[test]
fn two_mmio_instructions_back_to_back() {
    corner("back_to_back", 3);
}

#[test]
fn mmio_right_after_a_taken_branch() {
    corner("after_branch", 2);
}

#[test]
fn mmio_as_the_last_instruction_before_a_breakpoint() {
    corner("before_bp", 2);
    // With a breakpoint on the next instruction: continuing from the MMIO load stops there,
    // once, with the load done; stepping onto it reports the step, not the breakpoint.
    let Some(elf) = elf() else { return };
    let target = symbol(&elf, "c_bp_target");
    for kind in kinds() {
        let mut s = at_corner(kind, &elf, "before_bp");
        s.insert_sw_breakpoint(0, target).unwrap();
        s.resume(&[(0, Resume::Step)]).unwrap();
        assert_eq!(s.wait_stop().unwrap().reason, StopReason::Step);
        assert_eq!(s.read_reg(0, Reg::Pc).unwrap() as u64, target);
        assert_eq!(
            s.read_reg(0, Reg::X(5)).unwrap(),
            0x0d,
            "the load completed"
        );
    }
}

#[test]
fn mmio_under_a_watchpoint_on_a_ram_neighbour() {
    corner("watch_neighbour", 5);
    let Some(elf) = elf() else { return };
    let start = symbol(&elf, "c_watch_neighbour");
    let end = symbol(&elf, "c_watch_neighbour_end");
    let watched = symbol(&elf, "watched_word");
    for kind in kinds() {
        let mut s = at_corner(kind, &elf, "watch_neighbour");
        let w = Watch {
            addr: watched,
            len: 8,
            kind: WatchKind::Write,
        };
        s.insert_watchpoint(w).unwrap();
        // Stepping through the block with the watchpoint armed: no watch stop (only the
        // neighbour is written), one step per instruction.
        let run = step_to(&mut s, start, end, "watch_neighbour (armed)");
        assert_eq!(run.pcs.len(), 6, "{kind:?}: {:x?}", run.pcs);
    }
}

#[test]
fn step_over_hvc_psci_handled_by_the_hypervisor() {
    // KVM answers every HVC with smccc_set_retval(val, 0, 0, 0): x1-x3 zeroed; QEMU's PSCI
    // leaves them. A legitimate difference: x2 and x3 are not compared with QEMU here.
    corner_except("hvc", 2, &[2, 3]);
}

#[test]
fn step_into_svc_stops_at_the_vector() {
    // svc, the 8 handler instructions (the BRK skip not taken), eret back: 10 stops.
    corner("svc", 9);
}

#[test]
fn step_over_a_guest_owned_brk_handled_by_the_guest() {
    corner("guest_brk", 10);
}

#[test]
fn step_over_smc() {
    // A legitimate KVM/QEMU difference: KVM 6.1 (no SMCCC filter) answers an SMC from EL1
    // with x0 = -1 and advances the PC (one stop); QEMU without EL3 makes it UNDEFINED, so
    // the step lands in the guest's vector, whose handler records EC 0 and skips it.
    let Some(elf) = elf() else { return };
    let start = symbol(&elf, "c_smc");
    let end = symbol(&elf, "c_smc_end");
    let model = kvmdbg_run(BackendKind::Model, &elf, "smc");
    assert_eq!(model.pcs, vec![start, end], "SMC is one step on the model");
    assert_eq!(reg_of(&model, 0), u64::MAX, "x0 = NOT_SUPPORTED");
    assert_eq!(reg_of(&model, 10), 0, "no exception reached the guest");
    if let Some(qemu) = qemu_run(&elf, "smc") {
        let vector = symbol(&elf, "step_sync");
        assert_eq!(
            qemu.pcs[1], vector,
            "QEMU: SMC is UNDEFINED: {:x?}",
            qemu.pcs
        );
        assert_eq!(qemu.pcs.last(), Some(&end));
        assert_eq!(reg_of(&qemu, 10), 0x0200_0000, "QEMU: ESR EC 0, IL 1");
        assert_eq!(reg_of(&qemu, 0), 0x7777, "QEMU: x0 untouched");
    }
    if kvm_usable() {
        let kvm = kvmdbg_run(BackendKind::Kvm, &elf, "smc");
        assert_eq!(kvm, model, "SMC: KVM differs from the model");
    }
}

fn reg_of(run: &Run, n: u8) -> u64 {
    run.regs.iter().find(|(r, _)| *r == n).unwrap().1
}

/// vCPU 1's round counter, read through vCPU 0's view of memory.
fn spin_count(s: &mut Session, elf: &Path) -> u64 {
    let mut buf = [0u8; 8];
    s.read_virt(0, symbol(elf, "spin_count"), &mut buf).unwrap();
    u64::from_le_bytes(buf)
}

/// Passes of the two-vCPU corner allowed until vCPU 1 was seen running during one.
const MAX_PASSES: usize = 50;

#[test]
fn step_one_vcpu_while_another_does_mmio() {
    // Alone (vCPU 1 absent): the block itself, model = QEMU, KVM = model.
    corner("smp", 5);
    let Some(elf) = elf() else { return };
    let start = symbol(&elf, "c_smp");
    let end = symbol(&elf, "c_smp_end");
    let alone = kvmdbg_run(BackendKind::Model, &elf, "smp");
    for kind in kinds() {
        // vCPU 1 runs its MMIO loop during each of vCPU 0's steps: same stops, same results.
        // Whether vCPU 1's thread gets a CPU before a step ends is up to the host scheduler:
        // repeat until it has run during one pass (every pass must give the same stops).
        let mut ran = false;
        for _ in 0..MAX_PASSES {
            let mut s = at_corner_with(kind, &elf, "smp", 2);
            let before = spin_count(&mut s, &elf);
            let run = step_to_with(&mut s, start, end, "smp", &[1]);
            assert_eq!(run, alone, "{kind:?}: stepping beside a running vCPU");
            if spin_count(&mut s, &elf) > before {
                ran = true;
                break;
            }
        }
        assert!(ran, "{kind:?}: vCPU 1 never ran in {MAX_PASSES} passes");

        // Scheduler locking: vCPU 1 stays stopped while vCPU 0 steps.
        let mut s = at_corner_with(kind, &elf, "smp", 2);
        let before = spin_count(&mut s, &elf);
        let run = step_to(&mut s, start, end, "smp (locked)");
        assert_eq!(run, alone, "{kind:?}: stepping with vCPU 1 stopped");
        assert_eq!(
            spin_count(&mut s, &elf),
            before,
            "{kind:?}: vCPU 1 stayed put"
        );

        // The other way round: vCPU 1 stepped through its MMIO loop while vCPU 0 stays put.
        let spin = symbol(&elf, "spin_loop");
        let mut pcs = Vec::new();
        for _ in 0..13 {
            s.resume(&[(1, Resume::Step)]).unwrap();
            let stop = s.wait_stop().unwrap();
            assert_eq!((stop.vcpu, stop.reason), (1, StopReason::Step), "{kind:?}");
            pcs.push(s.read_reg(1, Reg::Pc).unwrap() as u64);
        }
        let first = pcs.iter().position(|&pc| pc == spin).expect("vCPU 1 loops");
        for (k, pc) in pcs[first..].iter().enumerate() {
            assert_eq!(
                *pc,
                spin + 4 * (k as u64 % 6),
                "{kind:?}: vCPU 1 stops {pcs:x?}"
            );
        }
        assert_eq!(
            s.read_reg(0, Reg::Pc).unwrap() as u64,
            end,
            "{kind:?}: vCPU 0 stayed"
        );
    }
}
