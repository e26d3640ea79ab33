//! Vector catch classification on a scripted vCPU, and `monitor catch` argument parsing.

use super::*;
use crate::a64::pstate;
use crate::backend::fake::FakeVcpu;

const VBAR: u64 = 0x4000_8000;
const EL1H_MASKED: u64 = pstate::MODE_EL1H | pstate::DAIF_MASK;

/// A vCPU at `pc` with PSTATE `ps`, SPSR_EL1 `spsr` and syndrome registers set.
fn vcpu(pc: u64, ps: u64, spsr: u64) -> FakeVcpu {
    let mut v = FakeVcpu::new(1);
    for (r, val) in [
        (Reg::Pc, pc),
        (Reg::Pstate, ps),
        (Reg::SpsrEl1, spsr),
        (Reg::ElrEl1, 0x4000_1234),
        (Reg::Sys(sys::VBAR_EL1), VBAR),
        (Reg::Sys(sys::ESR_EL1), 0x5600_0000),
        (Reg::Sys(sys::FAR_EL1), 0xdead_0000),
    ] {
        v.set(r, val).unwrap();
    }
    v
}

fn set(pairs: &[(VectorKind, CatchSource)]) -> VectorCatch {
    pairs
        .iter()
        .fold(VectorCatch::NONE, |c, (k, s)| c.with(*k, *s))
}

#[test]
fn an_entry_in_the_set_is_caught_with_its_syndrome() {
    let c = set(&[(VectorKind::Sync, CatchSource::El0)]);
    let mut v = vcpu(VBAR + 0x400, EL1H_MASKED, pstate::MODE_EL0T);
    let AtVector::Caught(rec) = classify(&mut v, c, VBAR + 0x400).unwrap() else {
        panic!("not caught");
    };
    assert_eq!(
        rec,
        CatchRecord {
            vcpu: 1,
            kind: VectorKind::Sync,
            source: CatchSource::El0,
            vector: VBAR + 0x400,
            esr: 0x5600_0000,
            far: 0xdead_0000,
            elr: 0x4000_1234,
            spsr: pstate::MODE_EL0T,
        }
    );
    let text = rec.describe();
    assert!(text.contains("(SVC)"), "{text}");
    assert!(text.contains("ESR_EL1=0x56000000"), "{text}");
    assert!(text.contains("ELR_EL1=0x40001234"), "{text}");
}

#[test]
fn other_entries_and_other_addresses_are_not_catches() {
    let c = set(&[(VectorKind::Irq, CatchSource::El1)]);
    // An IRQ from EL0 (lower group) is not in the set; nor is the sync entry.
    for pc in [VBAR + 0x480, VBAR + 0x200, VBAR + 0x284, 0x4000_0000] {
        let mut v = vcpu(pc, EL1H_MASKED, pstate::MODE_EL1H);
        assert_eq!(classify(&mut v, c, pc).unwrap(), AtVector::No, "{pc:#x}");
    }
    let mut v = vcpu(VBAR + 0x280, EL1H_MASKED, pstate::MODE_EL1H);
    assert_eq!(
        classify(&mut v, VectorCatch::NONE, VBAR + 0x280).unwrap(),
        AtVector::No
    );
    assert!(matches!(
        classify(&mut v, c, VBAR + 0x280).unwrap(),
        AtVector::Caught(CatchRecord {
            kind: VectorKind::Irq,
            ..
        })
    ));
}

#[test]
fn a_branch_to_an_entry_is_told_apart_by_the_entry_state() {
    let c = set(&[(VectorKind::Irq, CatchSource::El1)]);
    // IRQs unmasked at the vector: no exception entry.
    let mut v = vcpu(VBAR + 0x280, pstate::MODE_EL1H, pstate::MODE_EL1H);
    assert_eq!(classify(&mut v, c, VBAR + 0x280).unwrap(), AtVector::Branch);
    // SPSR says IRQs were masked: an IRQ could not have been taken.
    let mut v = vcpu(VBAR + 0x280, EL1H_MASKED, EL1H_MASKED);
    assert_eq!(classify(&mut v, c, VBAR + 0x280).unwrap(), AtVector::Branch);
}

#[test]
fn classify_reports_unreadable_registers() {
    let c = set(&[(VectorKind::Sync, CatchSource::El1)]);
    let mut v = vcpu(VBAR + 0x200, EL1H_MASKED, pstate::MODE_EL1H);
    v.fail_get.insert(Reg::Sys(sys::VBAR_EL1));
    assert!(classify(&mut v, c, VBAR + 0x200).is_err());
}

#[test]
fn interrupt_catches_do_not_claim_a_syndrome() {
    let rec = CatchRecord {
        vcpu: 0,
        kind: VectorKind::Irq,
        source: CatchSource::El1,
        vector: VBAR + 0x280,
        esr: 0x5600_0000,
        far: 0,
        elr: 0x4000_0010,
        spsr: pstate::MODE_EL1H,
    };
    let text = rec.describe();
    assert!(!text.contains("ESR_EL1"), "{text}");
    assert!(text.contains("an IRQ from EL1"), "{text}");
}

#[test]
fn parse_catch_arguments() {
    let all = parse_catch([]).unwrap();
    assert_eq!(all.slot_count(), 12);
    assert_eq!(parse_catch(["all"]).unwrap(), all);
    assert_eq!(
        parse_catch(["sync", "EL0"]).unwrap(),
        set(&[(VectorKind::Sync, CatchSource::El0)])
    );
    assert_eq!(
        parse_catch(["el1", "irq", "fiq"]).unwrap(),
        set(&[
            (VectorKind::Irq, CatchSource::El1),
            (VectorKind::Fiq, CatchSource::El1)
        ])
    );
    assert_eq!(
        parse_catch(["serror"]).unwrap(),
        set(&[
            (VectorKind::SError, CatchSource::El0),
            (VectorKind::SError, CatchSource::El1)
        ])
    );
    assert!(parse_catch(["sync", "el2"]).is_err());
}
