use super::*;
use crate::backend::fake::FakeVcpu;

const PC: u64 = 0x4000_1000;
const VBAR: u64 = 0x4000_0800;
/// EL1h, D and A masked, I and F clear, Z set: a guest running with interrupts enabled.
const GUEST_PSTATE: u64 = pstate::Z | pstate::D | pstate::A | 0b0101;
/// The same at EL0t.
const EL0_PSTATE: u64 = pstate::Z | pstate::D | pstate::A;

// Instruction words (Arm ARM C6.2), one per test case.
const MRS_X3_DAIF: u32 = 0xd53b_4223; // mrs x3, daif
const MRS_XZR_DAIF: u32 = 0xd53b_423f; // mrs xzr, daif
const MSR_DAIF_X4: u32 = 0xd51b_4224; // msr daif, x4
const DAIFSET_I: u32 = 0xd503_42df; // msr daifset, #2
const DAIFCLR_IF: u32 = 0xd503_43ff; // msr daifclr, #3
const DAIFSET_D: u32 = 0xd503_48df; // msr daifset, #8
const ERET: u32 = 0xd69f_03e0; // eret
const ERETAA: u32 = 0xd69f_0bff; // eretaa
const MRS_X0_NZCV: u32 = 0xd53b_4200; // mrs x0, nzcv (same op1/CRn, CRm 2 op2 0)
const MRS_X0_SPSEL: u32 = 0xd538_4200; // mrs x0, spsel (op1 0)
const NOP: u32 = 0xd503_201f; // nop

fn vcpu(pstate_value: u64) -> FakeVcpu {
    let mut v = FakeVcpu::new(0);
    v.set(Reg::Pc, PC).unwrap();
    v.set(Reg::Pstate, pstate_value).unwrap();
    v.set(Reg::Sys(sys::VBAR_EL1), VBAR).unwrap();
    v
}

fn pstate_of(v: &mut FakeVcpu) -> u64 {
    v.get(Reg::Pstate).unwrap()
}

/// Plans a masked step of `insn` and checks the mask is on.
fn begin(v: &mut FakeVcpu, insn: u32) -> MaskedStep {
    let before = pstate_of(v);
    let Plan::Masked(m) = plan(v, Some(insn)).unwrap() else {
        panic!("{insn:#x}: not a masked step");
    };
    assert_eq!(pstate_of(v), before | HELD_OFF, "mask on during the step");
    m
}

/// Plans a step of `insn` that kvmdbg emulates; nothing may have been written yet.
fn emulated(v: &mut FakeVcpu, insn: u32) -> (u64, Option<(u8, u64)>) {
    let before = v.regs.clone();
    let Plan::Emulate { pstate, xt } = plan(v, Some(insn)).unwrap() else {
        panic!("{insn:#x}: not emulated");
    };
    assert_eq!(v.regs, before, "planning an emulation writes nothing");
    (pstate, xt)
}

#[test]
fn classifies_daif_accesses_and_exception_returns() {
    assert_eq!(classify(MRS_X3_DAIF), DaifEffect::Read { rt: 3 });
    assert_eq!(classify(MRS_XZR_DAIF), DaifEffect::Read { rt: 31 });
    assert_eq!(classify(MSR_DAIF_X4), DaifEffect::WriteAll { rt: 4 });
    let write = |bits, set| DaifEffect::Write { bits, set };
    assert_eq!(classify(DAIFSET_I), write(pstate::I, true));
    assert_eq!(classify(DAIFCLR_IF), write(pstate::I | pstate::F, false));
    assert_eq!(classify(DAIFSET_D), write(pstate::D, true));
    assert_eq!(classify(ERET), DaifEffect::ExceptionReturn);
    assert_eq!(classify(ERETAA), DaifEffect::ExceptionReturn);
    assert_eq!(classify(MRS_X0_NZCV), DaifEffect::None);
    assert_eq!(classify(MRS_X0_SPSEL), DaifEffect::None);
    assert_eq!(classify(NOP), DaifEffect::None);
}

#[test]
fn nothing_to_do_when_the_guest_masks_both() {
    let mut v = vcpu(GUEST_PSTATE | HELD_OFF);
    assert_eq!(plan(&mut v, Some(NOP)).unwrap(), Plan::AsIs);
    assert_eq!(pstate_of(&mut v), GUEST_PSTATE | HELD_OFF);
}

#[test]
fn only_the_bits_the_guest_left_clear_are_added_and_removed() {
    let guest = GUEST_PSTATE | pstate::F;
    let mut v = vcpu(guest);
    let Plan::Masked(m) = plan(&mut v, Some(NOP)).unwrap() else {
        panic!("not masked")
    };
    assert_eq!(pstate_of(&mut v), guest | pstate::I);
    v.set(Reg::Pc, PC + 4).unwrap();
    m.finish(&mut v).unwrap();
    assert_eq!(pstate_of(&mut v), guest, "F stays the guest's");
}

#[test]
fn an_ordinary_instruction_gets_the_guest_pstate_back() {
    let mut v = vcpu(GUEST_PSTATE);
    let m = begin(&mut v, NOP);
    v.set(Reg::Pc, PC + 4).unwrap();
    // Flags changed by the instruction stay.
    v.set(Reg::Pstate, (GUEST_PSTATE | HELD_OFF) ^ pstate::N)
        .unwrap();
    m.finish(&mut v).unwrap();
    assert_eq!(pstate_of(&mut v), GUEST_PSTATE ^ pstate::N);
}

#[test]
fn an_instruction_that_did_not_run_gets_the_guest_pstate_back() {
    // Stopped by a watchpoint before the access: PC unchanged. Even an ERET that did not run
    // must not keep the mask.
    for (insn, el) in [
        (NOP, GUEST_PSTATE),
        (ERET, GUEST_PSTATE),
        (MSR_DAIF_X4, EL0_PSTATE),
        (MRS_X3_DAIF, EL0_PSTATE),
    ] {
        let mut v = vcpu(el);
        v.set(Reg::X(3), 0x1234).unwrap();
        v.set(Reg::SpsrEl1, 0x5).unwrap();
        let m = begin(&mut v, insn);
        m.finish(&mut v).unwrap();
        assert_eq!(pstate_of(&mut v), el, "{insn:#x}");
        assert_eq!(v.get(Reg::X(3)).unwrap(), 0x1234, "{insn:#x}: x3 untouched");
        assert_eq!(v.get(Reg::SpsrEl1).unwrap(), 0x5, "{insn:#x}");
    }
}

#[test]
fn at_el1_daif_accesses_are_emulated_on_the_guest_pstate() {
    let mut v = vcpu(GUEST_PSTATE);
    assert_eq!(
        emulated(&mut v, MRS_X3_DAIF),
        (GUEST_PSTATE, Some((3, pstate::D | pstate::A)))
    );
    assert_eq!(emulated(&mut v, MRS_XZR_DAIF), (GUEST_PSTATE, None));
    v.set(Reg::X(4), pstate::I | 0xffff_0000_0000_0001).unwrap();
    let daif_i = (GUEST_PSTATE & !pstate::DAIF_MASK) | pstate::I;
    assert_eq!(emulated(&mut v, MSR_DAIF_X4), (daif_i, None));
    assert_eq!(
        emulated(&mut v, 0xd51b_423f), // msr daif, xzr
        (GUEST_PSTATE & !pstate::DAIF_MASK, None)
    );
    assert_eq!(
        emulated(&mut v, DAIFSET_I),
        (GUEST_PSTATE | pstate::I, None)
    );
    assert_eq!(
        emulated(&mut v, DAIFSET_D),
        (GUEST_PSTATE, None),
        "D already set"
    );
    let mut v = vcpu(GUEST_PSTATE | pstate::I);
    assert_eq!(emulated(&mut v, DAIFCLR_IF), (GUEST_PSTATE, None));
}

#[test]
fn at_el0_mrs_daif_reads_the_guest_mask() {
    let mut v = vcpu(EL0_PSTATE);
    let m = begin(&mut v, MRS_X3_DAIF);
    // The hardware read the masked DAIF (SCTLR_EL1.UMA set).
    v.set(Reg::X(3), (EL0_PSTATE | HELD_OFF) & pstate::DAIF_MASK)
        .unwrap();
    v.set(Reg::Pc, PC + 4).unwrap();
    m.finish(&mut v).unwrap();
    assert_eq!(v.get(Reg::X(3)).unwrap(), EL0_PSTATE & pstate::DAIF_MASK);
    assert_eq!(pstate_of(&mut v), EL0_PSTATE);
}

#[test]
fn at_el0_mrs_into_xzr_touches_no_register() {
    let mut v = vcpu(EL0_PSTATE);
    let m = begin(&mut v, MRS_XZR_DAIF);
    v.set(Reg::Pc, PC + 4).unwrap();
    m.finish(&mut v).unwrap();
    assert_eq!(pstate_of(&mut v), EL0_PSTATE);
    assert!(
        !v.regs.contains_key(&Reg::X(31)),
        "no write to a register 31"
    );
}

#[test]
fn at_el0_msr_daif_keeps_what_the_guest_wrote() {
    let mut v = vcpu(EL0_PSTATE);
    let m = begin(&mut v, MSR_DAIF_X4);
    let written = (EL0_PSTATE & !pstate::DAIF_MASK) | pstate::I; // msr daif, x4 (x4 = I)
    v.set(Reg::Pstate, written).unwrap();
    v.set(Reg::Pc, PC + 4).unwrap();
    m.finish(&mut v).unwrap();
    assert_eq!(pstate_of(&mut v), written);
}

#[test]
fn at_el0_daifset_keeps_its_bits_and_restores_the_others() {
    let mut v = vcpu(EL0_PSTATE);
    let m = begin(&mut v, DAIFSET_I);
    v.set(Reg::Pc, PC + 4).unwrap();
    m.finish(&mut v).unwrap();
    assert_eq!(pstate_of(&mut v), EL0_PSTATE | pstate::I);

    let mut v = vcpu(EL0_PSTATE & !pstate::D);
    let m = begin(&mut v, DAIFSET_D);
    v.set(Reg::Pstate, EL0_PSTATE | HELD_OFF).unwrap();
    v.set(Reg::Pc, PC + 4).unwrap();
    m.finish(&mut v).unwrap();
    assert_eq!(
        pstate_of(&mut v),
        EL0_PSTATE,
        "D set by the guest, I and F back"
    );
}

#[test]
fn at_el0_daifclr_keeps_the_cleared_bits_clear() {
    let mut v = vcpu(EL0_PSTATE | pstate::I);
    // The guest has I set and F clear: kvmdbg adds F; daifclr #3 clears both.
    let Plan::Masked(m) = plan(&mut v, Some(DAIFCLR_IF)).unwrap() else {
        panic!("not masked")
    };
    v.set(Reg::Pstate, EL0_PSTATE).unwrap();
    v.set(Reg::Pc, PC + 4).unwrap();
    m.finish(&mut v).unwrap();
    assert_eq!(pstate_of(&mut v), EL0_PSTATE);
}

#[test]
fn eret_returns_with_the_mask_and_the_guest_sees_its_spsr() {
    let mut v = vcpu(GUEST_PSTATE);
    let guest_spsr = pstate::Z; // EL0t, interrupts unmasked
    v.set(Reg::SpsrEl1, guest_spsr).unwrap();
    let m = begin(&mut v, ERET);
    assert_eq!(
        v.get(Reg::SpsrEl1).unwrap(),
        guest_spsr | HELD_OFF,
        "the return target starts masked"
    );
    // The ERET: PSTATE from SPSR_EL1, PC from ELR_EL1.
    v.set(Reg::Pstate, guest_spsr | HELD_OFF).unwrap();
    v.set(Reg::Pc, 0x8000).unwrap();
    m.finish(&mut v).unwrap();
    assert_eq!(pstate_of(&mut v), guest_spsr);
    assert_eq!(v.get(Reg::SpsrEl1).unwrap(), guest_spsr);
}

#[test]
fn eret_to_a_masked_state_stays_masked() {
    let mut v = vcpu(GUEST_PSTATE);
    let guest_spsr = pstate::I | pstate::F; // EL0t, interrupts masked
    v.set(Reg::SpsrEl1, guest_spsr).unwrap();
    let m = begin(&mut v, ERET);
    v.set(Reg::Pstate, guest_spsr).unwrap();
    v.set(Reg::Pc, 0x8000).unwrap();
    m.finish(&mut v).unwrap();
    assert_eq!(pstate_of(&mut v), guest_spsr);
    assert_eq!(v.get(Reg::SpsrEl1).unwrap(), guest_spsr);
}

/// The state after the stepped instruction at PC took an exception to VBAR + `offset`.
fn exception_entry(v: &mut FakeVcpu, offset: u64, elr: u64) {
    v.set(Reg::Pc, VBAR + offset).unwrap();
    v.set(Reg::ElrEl1, elr).unwrap();
    v.set(Reg::SpsrEl1, GUEST_PSTATE | HELD_OFF).unwrap();
    v.set(Reg::Pstate, pstate::DAIF_MASK | 0b0101).unwrap();
}

#[test]
fn an_exception_entry_saves_the_guest_mask_in_spsr() {
    // SVC (ELR past it) and a data abort (ELR at it), to the current-EL SPx sync vector.
    for elr in [PC + 4, PC] {
        let mut v = vcpu(GUEST_PSTATE);
        let m = begin(&mut v, 0xd400_0221); // svc #0x11
        exception_entry(&mut v, 0x200, elr);
        m.finish(&mut v).unwrap();
        assert_eq!(
            v.get(Reg::SpsrEl1).unwrap(),
            GUEST_PSTATE,
            "SPSR as the hardware would have saved it"
        );
        assert_eq!(
            pstate_of(&mut v),
            pstate::DAIF_MASK | 0b0101,
            "PSTATE at the vector is masked by the architecture"
        );
    }
}

#[test]
fn a_branch_into_the_vector_table_is_not_an_exception() {
    let mut v = vcpu(GUEST_PSTATE);
    let m = begin(&mut v, 0x1400_0000); // b (somewhere)
    v.set(Reg::ElrEl1, 0x5555).unwrap();
    v.set(Reg::SpsrEl1, 0x3c5).unwrap();
    v.set(Reg::Pc, VBAR + 0x200).unwrap();
    m.finish(&mut v).unwrap();
    assert_eq!(v.get(Reg::SpsrEl1).unwrap(), 0x3c5, "untouched");
    assert_eq!(pstate_of(&mut v), GUEST_PSTATE);
}

#[test]
fn an_unreadable_instruction_is_treated_as_ordinary() {
    let mut v = vcpu(GUEST_PSTATE);
    let Plan::Masked(m) = plan(&mut v, None).unwrap() else {
        panic!("not masked")
    };
    v.set(Reg::Pc, PC + 4).unwrap();
    m.finish(&mut v).unwrap();
    assert_eq!(pstate_of(&mut v), GUEST_PSTATE);
}
