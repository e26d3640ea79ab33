//! DebugState tests: bookkeeping, the plan's generation, and debug-exit classification on a
//! scripted vCPU over real guest memory (MMU off: VA = PA).

use vm_memory::{Bytes, GuestAddress};

use super::*;
use crate::a64::pstate;
use crate::a64::sys;
use crate::backend::fake::FakeVcpu;
use crate::debug::hwplan::WatchKind;
use crate::debug::policy::DebugPolicy;
use crate::debug::swbp::BRK0;

const RAM: u64 = 0x4000_0000;
const NOP: u32 = 0xd503_201f;

fn state() -> DebugState {
    let mem = GuestMemoryMmap::from_ranges(&[(GuestAddress(RAM), 1 << 20)]).unwrap();
    for i in 0..64u64 {
        mem.write_obj(NOP, GuestAddress(RAM + 4 * i)).unwrap();
    }
    let caps = Caps {
        hw_breakpoints: 6,
        hw_watchpoints: 4,
        ..Caps::default()
    };
    DebugState::new(mem, &caps)
}

fn word(s: &DebugState, pa: u64) -> u32 {
    s.mem.read_obj(GuestAddress(pa)).unwrap()
}

/// A vCPU at `pc`, EL1h, with VBAR at RAM + 0x800 (for re-injection).
fn vcpu_at(pc: u64) -> FakeVcpu {
    let mut v = FakeVcpu::new(0);
    v.set(Reg::Pc, pc).unwrap();
    v.set(Reg::Pstate, pstate::RESET_EL1H_DAIF).unwrap();
    v.set(Reg::Sys(sys::VBAR_EL1), RAM + 0x800).unwrap();
    v
}

#[test]
fn sw_breakpoints_are_counted_per_va_and_restored_on_last_remove() {
    let s = state();
    s.insert_sw(RAM + 8, RAM + 8).unwrap();
    s.insert_sw(RAM + 8, RAM + 8).unwrap();
    assert_eq!(word(&s, RAM + 8), BRK0);
    let mut buf = [0u8; 4];
    s.mem.read_slice(&mut buf, GuestAddress(RAM + 8)).unwrap();
    s.shadow(RAM + 8, &mut buf);
    assert_eq!(u32::from_le_bytes(buf), NOP, "reads show the original");
    assert!(s.remove_sw(RAM + 8).unwrap());
    assert_eq!(word(&s, RAM + 8), BRK0, "one insert left");
    assert!(s.remove_sw(RAM + 8).unwrap());
    assert_eq!(word(&s, RAM + 8), NOP);
    assert!(!s.remove_sw(RAM + 8).unwrap());
}

#[test]
fn plan_changes_bump_the_generation_and_fill_the_registers() {
    let s = state();
    let (g0, d0) = s.guest_debug(None);
    assert!(d0.enable && d0.sw_breakpoints && !d0.hw);
    s.insert_hw_bp(RAM + 0x10).unwrap();
    let w = Watch {
        addr: RAM + 0x100,
        len: 4,
        kind: WatchKind::Write,
    };
    s.insert_watch(w).unwrap();
    let (g1, d1) = s.guest_debug(None);
    assert!(g1 > g0);
    assert!(d1.hw);
    assert_eq!(d1.bvr[0], RAM + 0x10);
    assert_eq!(d1.bcr[0], 0x1e7);
    assert_eq!(d1.wvr[0], RAM + 0x100);
    assert!(s.remove_watch(w));
    assert!(s.remove_hw_bp(RAM + 0x10));
    assert!(!s.guest_debug(None).1.hw);
}

#[test]
fn out_of_slots_is_an_error_and_changes_nothing() {
    let s = state();
    for i in 0..6 {
        s.insert_hw_bp(RAM + 4 * i).unwrap();
    }
    let before = s.guest_debug(None);
    assert!(matches!(
        s.insert_hw_bp(RAM + 0x40),
        Err(DebugError::Plan(_))
    ));
    assert_eq!(s.guest_debug(None), before);
    assert_eq!(s.counts().1, 6);
}

#[test]
fn our_brk_stops_and_a_guest_brk_is_reinjected_to_the_vector() {
    let s = state();
    s.insert_sw(RAM + 4, RAM + 4).unwrap();
    let mut v = vcpu_at(RAM + 4);
    assert_eq!(
        s.on_debug_exit(&mut v, 0xf200_0000, 0, false),
        Verdict::Stop(StopKind::SwBreak)
    );
    // brk #7 at RAM + 8 is the guest's own.
    let mut v = vcpu_at(RAM + 8);
    let verdict = s.on_debug_exit(&mut v, 0xf200_0007, 0, true);
    assert_eq!(
        verdict,
        Verdict::Handled {
            step_complete: true
        }
    );
    assert_eq!(v.reg(Reg::Pc) as u64, RAM + 0x800 + 0x200);
    assert_eq!(v.reg(Reg::ElrEl1) as u64, RAM + 8);
    assert_eq!(v.reg(Reg::Sys(sys::ESR_EL1)) as u64, 0xf200_0007);
}

#[test]
fn watch_hits_are_attributed_and_foreign_ones_reinjected() {
    let s = state();
    s.insert_watch(Watch {
        addr: RAM + 0x104,
        len: 12,
        kind: WatchKind::Write,
    })
    .unwrap();
    let mut v = vcpu_at(RAM);
    assert_eq!(
        s.on_debug_exit(&mut v, 0xd200_0062, RAM + 0x10c, false),
        Verdict::Stop(StopKind::Watch {
            index: 0,
            addr: RAM + 0x10c
        })
    );
    let mut v = vcpu_at(RAM);
    let foreign = s.on_debug_exit(&mut v, 0xd200_0062, RAM + 0x400, false);
    assert!(matches!(foreign, Verdict::Handled { .. }));
    assert_eq!(v.reg(Reg::Sys(sys::FAR_EL1)) as u64, RAM + 0x400);
    // From EL1 the guest sees the current-EL watchpoint class 0x35.
    assert_eq!(
        esr::class(v.reg(Reg::Sys(sys::ESR_EL1)) as u64),
        ec::WATCHPT_CUR
    );
}

#[test]
fn steps_stop_only_when_requested() {
    let s = state();
    let mut v = vcpu_at(RAM);
    assert_eq!(
        s.on_debug_exit(&mut v, 0xcb00_0022, 0, true),
        Verdict::Stop(StopKind::Step)
    );
}

#[test]
fn lift_and_replant_step_off_a_breakpoint() {
    let s = state();
    s.insert_sw(RAM + 12, RAM + 12).unwrap();
    assert!(s.lift(RAM + 12).unwrap());
    assert_eq!(word(&s, RAM + 12), NOP);
    s.replant(RAM + 12).unwrap();
    assert_eq!(word(&s, RAM + 12), BRK0);
    assert!(!s.lift(RAM + 16).unwrap());
    s.clear().unwrap();
    assert_eq!(word(&s, RAM + 12), NOP);
    assert_eq!(s.counts(), (0, 0, 0));
}

/// A catch set of synchronous exceptions from `sources`.
fn sync_catch(sources: &[CatchSource]) -> VectorCatch {
    sources
        .iter()
        .fold(VectorCatch::NONE, |c, s| c.with(VectorKind::Sync, *s))
}

#[test]
fn vector_catch_plants_entries_of_each_vcpus_vbar_beside_user_hbreaks() {
    let s = state();
    s.insert_hw_bp(RAM + 0x10).unwrap();
    s.set_catch(sync_catch(&[CatchSource::El0, CatchSource::El1]))
        .unwrap();
    assert!(s.needs_vbar());
    assert_eq!(s.catch_slots(), 3);
    let (_, d) = s.guest_debug(Some(RAM + 0x800));
    assert_eq!(
        d.bvr[..4],
        [RAM + 0x10, RAM + 0x800, RAM + 0xa00, RAM + 0xc00]
    );
    assert!(d.bcr[..4].iter().all(|b| *b == 0x1e7) && d.hw);
    // Another VBAR_EL1 moves the entries, not the user's breakpoint.
    let (_, d) = s.guest_debug(Some(RAM + 0x1000));
    assert_eq!(d.bvr[1], RAM + 0x1000);
    assert!(s.hw_bp_at(RAM + 0xa00, RAM + 0x800));
    assert!(!s.hw_bp_at(RAM + 0xa00, RAM + 0x1000));
    // Stepping off a catch entry lifts it for every vCPU on that VBAR.
    s.suspend_hw_bp(Some(RAM + 0xa00)).unwrap();
    let (_, d) = s.guest_debug(Some(RAM + 0x800));
    assert!(!d.bvr.contains(&(RAM + 0xa00)));
    s.suspend_hw_bp(None).unwrap();
    s.clear().unwrap();
    assert!(!s.needs_vbar() && s.catch().is_empty());
}

#[test]
fn vector_catch_out_of_slots_is_an_error_and_keeps_the_old_set() {
    let s = state();
    for i in 0..4 {
        s.insert_hw_bp(RAM + 4 * i).unwrap();
    }
    let el0 = sync_catch(&[CatchSource::El0]);
    s.set_catch(el0).unwrap();
    let all = VectorKind::ALL
        .into_iter()
        .fold(VectorCatch::NONE, |c, k| c.with(k, CatchSource::El1));
    assert!(matches!(s.set_catch(all), Err(DebugError::Plan(_))));
    assert_eq!(s.catch(), el0);
    // The catch's slot counts against user hbreaks too.
    s.insert_hw_bp(RAM + 0x20).unwrap();
    assert!(s.insert_hw_bp(RAM + 0x24).is_err());
}

#[test]
fn exact_backends_get_the_set_in_the_configuration_and_no_slots() {
    let mem = GuestMemoryMmap::from_ranges(&[(GuestAddress(RAM), 1 << 20)]).unwrap();
    let caps = Caps {
        hw_breakpoints: 2,
        hw_watchpoints: 2,
        exact_vector_catch: true,
        ..Caps::default()
    };
    let s = DebugState::new(mem, &caps);
    let all = crate::debug::vcatch::parse_catch([]).unwrap();
    s.set_catch(all).unwrap();
    assert!(!s.needs_vbar());
    assert_eq!(s.catch_slots(), 0);
    let (_, d) = s.guest_debug(None);
    assert_eq!(d.vector_catch, all);
    assert!(!d.hw);
}

/// A vCPU at the vector entry `off` from VBAR (RAM + 0x800) in the state `ps`, `spsr`.
fn vcpu_at_vector(off: u64, ps: u64, spsr: u64) -> FakeVcpu {
    let mut v = vcpu_at(RAM + 0x800 + off);
    v.set(Reg::Pstate, ps).unwrap();
    v.set(Reg::SpsrEl1, spsr).unwrap();
    v.set(Reg::Sys(sys::ESR_EL1), 0x9200_0046).unwrap();
    v.set(Reg::Sys(sys::FAR_EL1), 0x1234).unwrap();
    v
}

#[test]
fn a_breakpoint_exit_at_a_caught_entry_stops_a_branch_passes_over() {
    let s = state();
    s.set_catch(sync_catch(&[CatchSource::El0])).unwrap();
    let entry = pstate::MODE_EL1H | pstate::DAIF_MASK;
    let mut v = vcpu_at_vector(0x400, entry, pstate::MODE_EL0T);
    assert_eq!(
        s.on_debug_exit(&mut v, 0xc200_0022, 0, false),
        Verdict::Stop(StopKind::VectorCatch {
            kind: VectorKind::Sync,
            source: CatchSource::El0
        })
    );
    let rec = s.last_catch().unwrap();
    assert_eq!((rec.esr, rec.far), (0x9200_0046, 0x1234));
    // The same entry reached by a branch from EL1 with SPSR_EL1 left from EL1.
    let mut v = vcpu_at_vector(0x400, entry, pstate::MODE_EL1H);
    assert_eq!(
        s.on_debug_exit(&mut v, 0xc200_0022, 0, false),
        Verdict::PassOver
    );
    // ... unless the user has an hbreak there.
    s.insert_hw_bp(RAM + 0xc00).unwrap();
    assert_eq!(
        s.on_debug_exit(&mut v, 0xc200_0022, 0, false),
        Verdict::Stop(StopKind::HwBreak)
    );
}

#[test]
fn a_reinjected_exception_in_the_set_is_caught_at_the_vector() {
    let s = state();
    s.set_catch(sync_catch(&[CatchSource::El1])).unwrap();
    let mut v = vcpu_at(RAM + 8);
    let verdict = s.on_debug_exit(&mut v, 0xf200_0007, 0, false);
    assert_eq!(
        verdict,
        Verdict::Stop(StopKind::VectorCatch {
            kind: VectorKind::Sync,
            source: CatchSource::El1
        })
    );
    let rec = s.last_catch().unwrap();
    assert_eq!(rec.vector, RAM + 0x800 + 0x200);
    assert_eq!((rec.esr, rec.elr), (0xf200_0007, RAM + 8));
}
