use super::*;
use crate::a64::SysReg;
use crate::backend::fake::FakeVcpu;

const PC: u64 = 0x4000_1000;
const VBAR: u64 = 0x4000_8000;
/// Observed KVM syndromes: BRK #0, hardware breakpoint, software step (ISV=1), watchpoint.
const ESR_BRK: u64 = 0xf200_0000;
const ESR_HWBP_LOW: u64 = 0xc200_0022;
const ESR_STEP_LOW: u64 = 0xcb00_0022;
const ESR_WP_LOW: u64 = 0xd200_0062;
/// A FAR_EL1 value that must survive when no FAR is given.
const FAR_SENTINEL: u64 = 0xdead_beef;

/// A vCPU at `pstate` with PC, VBAR_EL1 and a sentinel FAR_EL1 set.
fn vcpu_at(pstate_value: u64) -> FakeVcpu {
    let mut v = FakeVcpu::new(0);
    v.regs.insert(Reg::Pstate, pstate_value as u128);
    v.regs.insert(Reg::Pc, PC as u128);
    v.regs.insert(Reg::Sys(sys::VBAR_EL1), VBAR as u128);
    v.regs.insert(Reg::Sys(sys::FAR_EL1), FAR_SENTINEL as u128);
    v
}

fn set(v: &mut FakeVcpu, r: SysReg, value: u64) {
    v.regs.insert(Reg::Sys(r), value as u128);
}

fn get(v: &FakeVcpu, r: Reg) -> u64 {
    v.reg(r) as u64
}

/// EL1h with NZCV = 0b0110 and interrupts unmasked.
const EL1H: u64 = pstate::Z | pstate::C | pstate::MODE_EL1H;

#[test]
fn brk_from_el1h_enters_current_el_spx_vector() {
    let mut v = vcpu_at(EL1H);
    let at = inject_sync_exception(&mut v, ESR_BRK, None).unwrap();
    assert_eq!(
        at,
        InjectedAt {
            vector: VBAR + 0x200,
            esr: ESR_BRK,
            return_addr: PC,
            from_el: 1,
            guest_step: false
        }
    );
    assert_eq!(get(&v, Reg::Pc), VBAR + 0x200);
    assert_eq!(get(&v, Reg::ElrEl1), PC);
    assert_eq!(get(&v, Reg::SpsrEl1), EL1H);
    assert_eq!(get(&v, Reg::Sys(sys::ESR_EL1)), ESR_BRK);
    assert_eq!(get(&v, Reg::Sys(sys::FAR_EL1)), FAR_SENTINEL);
    assert_eq!(
        get(&v, Reg::Pstate),
        pstate::Z | pstate::C | pstate::DAIF_MASK | pstate::MODE_EL1H
    );
}

#[test]
fn debug_classes_become_current_el_from_el1() {
    let cases = [
        (ESR_HWBP_LOW, 0xc600_0022),
        (ESR_STEP_LOW, 0xcf00_0022),
        (ESR_WP_LOW, 0xd600_0062),
        (0x9200_0045, 0x9600_0045), // data abort
        (0x8200_000f, 0x8600_000f), // instruction abort
        (ESR_BRK, ESR_BRK),
        (0x5600_0000, 0x5600_0000), // HVC: no pair
    ];
    for (from, want) in cases {
        assert_eq!(esr_for_el1(from, 1), want, "{from:#x} from EL1");
        assert_eq!(esr_for_el1(want, 0), from, "{want:#x} from EL0");
        assert_eq!(esr_for_el1(from, 0), from, "{from:#x} from EL0");
    }
    // ISS2 (bits 63:32) and IL are kept.
    assert_eq!(
        esr_for_el1((7 << 32) | ESR_WP_LOW, 1),
        (7 << 32) | 0xd600_0062
    );
}

#[test]
fn watchpoint_from_el1t_uses_sp0_vector_and_sets_far() {
    let mut v = vcpu_at(pstate::MODE_EL1T);
    let at = inject_sync_exception(&mut v, ESR_WP_LOW, Some(0x4010_0004)).unwrap();
    assert_eq!(at.vector, VBAR);
    assert_eq!(get(&v, Reg::Sys(sys::ESR_EL1)), 0xd600_0062);
    assert_eq!(get(&v, Reg::Sys(sys::FAR_EL1)), 0x4010_0004);
    assert_eq!(pstate::el(get(&v, Reg::Pstate)), 1);
    assert!(pstate::uses_sp_elx(get(&v, Reg::Pstate)));
}

#[test]
fn from_el0_uses_lower_vector_and_lower_class() {
    let mut v = vcpu_at(pstate::MODE_EL0T | pstate::N);
    let at = inject_sync_exception(&mut v, 0xc600_0022, None).unwrap();
    assert_eq!((at.vector, at.from_el), (VBAR + 0x400, 0));
    assert_eq!(get(&v, Reg::Sys(sys::ESR_EL1)), ESR_HWBP_LOW);
    assert_eq!(get(&v, Reg::SpsrEl1), pstate::MODE_EL0T | pstate::N);
    assert_eq!(
        get(&v, Reg::Pstate),
        pstate::N | pstate::DAIF_MASK | pstate::MODE_EL1H
    );
}

#[test]
fn vbar_low_bits_are_ignored() {
    let mut v = vcpu_at(EL1H);
    set(&mut v, sys::VBAR_EL1, VBAR | 0x7fc);
    assert_eq!(
        inject_sync_exception(&mut v, ESR_BRK, None).unwrap().vector,
        VBAR + 0x200
    );
}

#[test]
fn entry_clears_ss_il_btype_uao_and_keeps_dit() {
    const DIT: u64 = 1 << 24;
    let old = EL1H | pstate::SS | pstate::IL | pstate::BTYPE_MASK | pstate::UAO | DIT;
    let mut v = vcpu_at(old);
    inject_sync_exception(&mut v, ESR_BRK, None).unwrap();
    assert_eq!(
        get(&v, Reg::Pstate),
        pstate::Z | pstate::C | DIT | pstate::DAIF_MASK | pstate::MODE_EL1H
    );
}

#[test]
fn pan_is_set_only_with_feat_pan_and_span_clear() {
    // (ID_AA64MMFR1_EL1.PAN, SCTLR_EL1.SPAN, old PSTATE.PAN) -> new PSTATE.PAN
    let cases = [
        (1, false, false, true),
        (1, true, false, false),
        (1, true, true, true),
        (0, false, false, false),
        (3, false, false, true),
    ];
    for (pan, span, old_pan, want) in cases {
        let old = EL1H | if old_pan { pstate::PAN } else { 0 };
        let mut v = vcpu_at(old);
        set(&mut v, sys::ID_AA64MMFR1_EL1, pan << 20);
        set(&mut v, sys::SCTLR_EL1, if span { 1 << 23 } else { 0 });
        inject_sync_exception(&mut v, ESR_BRK, None).unwrap();
        let got = get(&v, Reg::Pstate) & pstate::PAN != 0;
        assert_eq!(got, want, "PAN feat {pan} SPAN {span} old {old_pan}");
    }
}

#[test]
fn ssbs_follows_dssbs_and_tco_is_set_with_mte() {
    for (ssbs_feat, dssbs, old_ssbs, want) in [
        (true, true, false, true),
        (true, false, true, false),
        (false, false, true, true),
    ] {
        let mut v = vcpu_at(EL1H | if old_ssbs { pstate::SSBS } else { 0 });
        set(
            &mut v,
            sys::ID_AA64PFR1_EL1,
            if ssbs_feat { 1 << 4 } else { 0 },
        );
        set(
            &mut v,
            sys::SCTLR_EL1,
            if dssbs { 1 << 44 } else { 1 << 23 },
        );
        inject_sync_exception(&mut v, ESR_BRK, None).unwrap();
        let got = get(&v, Reg::Pstate) & pstate::SSBS != 0;
        assert_eq!(got, want, "feat {ssbs_feat} DSSBS {dssbs} old {old_ssbs}");
        assert_eq!(get(&v, Reg::Pstate) & pstate::TCO, 0);
    }
    let mut v = vcpu_at(EL1H);
    set(&mut v, sys::ID_AA64PFR1_EL1, 2 << 8);
    inject_sync_exception(&mut v, ESR_BRK, None).unwrap();
    assert_ne!(get(&v, Reg::Pstate) & pstate::TCO, 0);
}

#[test]
fn guest_step_state_is_preserved_only_when_the_guest_steps() {
    // (MDSCR_EL1.SS, PSTATE.SS, esr) -> SPSR_EL1.SS
    let cases = [
        (1, true, ESR_BRK, true),
        (1, true, ESR_WP_LOW, true),
        (1, true, ESR_STEP_LOW, false),
        (0, true, ESR_BRK, false),
        (1, false, ESR_BRK, false),
    ];
    for (mdscr, ss, e, want) in cases {
        let mut v = vcpu_at(pstate::MODE_EL0T | if ss { pstate::SS } else { 0 });
        set(&mut v, sys::MDSCR_EL1, mdscr | (1 << 13));
        let at = inject_sync_exception(&mut v, e, None).unwrap();
        assert_eq!(at.guest_step, mdscr == 1);
        let spsr_ss = get(&v, Reg::SpsrEl1) & pstate::SS != 0;
        assert_eq!(spsr_ss, want, "MDSCR.SS {mdscr} PSTATE.SS {ss} esr {e:#x}");
        assert_eq!(get(&v, Reg::Pstate) & pstate::SS, 0);
    }
}

#[test]
fn unsupported_sources_are_refused_without_writes() {
    for ps in [0x10 /* AArch32 User */, 0x9 /* EL2h */] {
        let mut v = vcpu_at(ps);
        let err = inject_sync_exception(&mut v, ESR_BRK, Some(1)).unwrap_err();
        assert!(matches!(err, BackendError::Unsupported(_)), "{err}");
        assert_eq!(get(&v, Reg::Pc), PC);
        assert_eq!(get(&v, Reg::Pstate), ps);
        assert_eq!(get(&v, Reg::Sys(sys::FAR_EL1)), FAR_SENTINEL);
        assert_eq!(get(&v, Reg::ElrEl1), 0);
    }
}
