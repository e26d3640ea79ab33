//! Exception entry to AArch64 EL1, as both the debugger's re-injection (`debug::inject`) and
//! the model's CPU (`backend::model::cpu::exception`) apply it (Arm ARM D1.10 "Exception
//! entry"; pseudocode AArch64.TakeException).
//!
//! Owns the vector offsets and the VBAR_EL1 mask, the lower-EL/current-EL exception class
//! conversion, SPSR_EL1 and PSTATE on entry. Pure functions of register values; no I/O and no
//! register access (callers read and write the registers).

use super::esr::{self, ec};
use super::fields::{id_aa64mmfr1, id_aa64pfr1, id_field_nonzero, sctlr};
use super::pstate;

/// Vector group offsets from VBAR_EL1 (Arm ARM D1.10.2 "Exception vectors", table of vector
/// offsets): current EL with SP_EL0, current EL with SP_ELx, lower EL using AArch64.
pub const VECTOR_CUR_SP0: u64 = 0x000;
pub const VECTOR_CUR_SPX: u64 = 0x200;
pub const VECTOR_LOWER_A64: u64 = 0x400;
/// VBAR_EL1 bits 10:0 are RES0 (Arm ARM D19.2 "VBAR_EL1").
pub const VBAR_MASK: u64 = !0x7ff;

/// The entry of a vector group an exception uses (Arm ARM D1.10.2: synchronous at +0x000,
/// IRQ at +0x080, FIQ at +0x100, SError at +0x180 of each group).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum VectorKind {
    Sync,
    Irq,
    Fiq,
    SError,
}

impl VectorKind {
    /// Every kind, in vector order.
    pub const ALL: [VectorKind; 4] = [
        VectorKind::Sync,
        VectorKind::Irq,
        VectorKind::Fiq,
        VectorKind::SError,
    ];

    /// The entry's offset inside its group.
    pub const fn offset(self) -> u64 {
        self as u64 * 0x080
    }

    /// The kind whose entry is at `offset` inside a group.
    pub fn at_offset(offset: u64) -> Option<VectorKind> {
        VectorKind::ALL.into_iter().find(|k| k.offset() == offset)
    }

    /// The name used in `monitor catch`: sync, irq, fiq, serror.
    pub const fn name(self) -> &'static str {
        match self {
            VectorKind::Sync => "sync",
            VectorKind::Irq => "irq",
            VectorKind::Fiq => "fiq",
            VectorKind::SError => "serror",
        }
    }
}

/// The new PC for an exception of `kind` taken to EL1 from the state `old` (PSTATE before
/// entry): the group for EL0 (lower EL, AArch64), EL1 with SP_EL0 (EL1t) or EL1 with SP_EL1
/// (EL1h), plus the entry within the group.
pub fn vector(vbar: u64, old: u64, kind: VectorKind) -> u64 {
    let group = match (pstate::el(old), pstate::uses_sp_elx(old)) {
        (0, _) => VECTOR_LOWER_A64,
        (_, false) => VECTOR_CUR_SP0,
        (_, true) => VECTOR_CUR_SPX,
    };
    (vbar & VBAR_MASK).wrapping_add(group + kind.offset())
}

/// The exception classes that come as a (lower EL, current EL) pair (Arm ARM D19.2.37
/// "ESR_EL1", EC table): instruction abort, data abort, breakpoint, software step, watchpoint.
const CLASS_PAIRS: [(u8, u8); 5] = [
    (ec::IABT_LOW, ec::IABT_CUR),
    (ec::DABT_LOW, ec::DABT_CUR),
    (ec::BREAKPT_LOW, ec::BREAKPT_CUR),
    (ec::SOFTSTP_LOW, ec::SOFTSTP_CUR),
    (ec::WATCHPT_LOW, ec::WATCHPT_CUR),
];

/// `class` (either member of a lower/current pair) as reported for an exception taken from
/// `from_el` to EL1: the current-EL class when taken from EL1 itself, else the lower-EL class.
/// Classes outside the pairs (BRK, SVC, ...) are returned unchanged.
pub fn class_for_el(class: u8, from_el: u8) -> u8 {
    match CLASS_PAIRS
        .into_iter()
        .find(|&(lo, cur)| class == lo || class == cur)
    {
        Some((_, cur)) if from_el == 1 => cur,
        Some((lo, _)) => lo,
        None => class,
    }
}

/// `esr` with its class converted by [`class_for_el`] for an exception taken from `from_el`
/// to EL1; every other bit is kept.
pub fn esr_for_el1(esr_value: u64, from_el: u8) -> u64 {
    let new = class_for_el(esr::class(esr_value), from_el);
    (esr_value & !(0x3f << 26)) | ((new as u64) << 26)
}

/// SPSR_EL1 on entry: PSTATE before entry with SS = `ss` (the caller applies the software
/// step rules, Arm ARM D2.12).
pub fn entry_spsr(old: u64, ss: bool) -> u64 {
    (old & !pstate::SS) | if ss { pstate::SS } else { 0 }
}

/// Implemented features that change PSTATE on exception entry.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EntryFeatures {
    pub pan: bool,
    pub ssbs: bool,
    pub mte: bool,
}

impl EntryFeatures {
    /// From ID_AA64MMFR1_EL1.PAN and ID_AA64PFR1_EL1.SSBS and MTE.
    pub fn from_id(mmfr1: u64, pfr1: u64) -> Self {
        EntryFeatures {
            pan: id_field_nonzero(mmfr1, id_aa64mmfr1::PAN_SHIFT),
            ssbs: id_field_nonzero(pfr1, id_aa64pfr1::SSBS_SHIFT),
            mte: id_field_nonzero(pfr1, id_aa64pfr1::MTE_SHIFT),
        }
    }
}

/// PSTATE after entry to EL1h from `old`, with SCTLR_EL1 = `sctlr`: EL1h (M = 0b0101,
/// nRW = 0); D, A, I, F set; SS, IL, BTYPE and UAO cleared; PAN set when FEAT_PAN is
/// implemented and SCTLR_EL1.SPAN is 0, else unchanged; SSBS = SCTLR_EL1.DSSBS with
/// FEAT_SSBS; TCO set with FEAT_MTE. NZCV, DIT and every other field are kept.
pub fn entry_pstate(old: u64, feats: EntryFeatures, sctlr_value: u64) -> u64 {
    let mut p = old
        & !(pstate::M_MASK
            | pstate::NRW
            | pstate::SS
            | pstate::IL
            | pstate::BTYPE_MASK
            | pstate::UAO);
    p |= pstate::MODE_EL1H | pstate::DAIF_MASK;
    if feats.pan && sctlr_value & sctlr::SPAN == 0 {
        p |= pstate::PAN;
    }
    if feats.ssbs {
        p &= !pstate::SSBS;
        if sctlr_value & sctlr::DSSBS != 0 {
            p |= pstate::SSBS;
        }
    }
    if feats.mte {
        p |= pstate::TCO;
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vectors_by_source_state() {
        let vbar = 0x4000_8000 | 0x7ff;
        let at = |old, kind| vector(vbar, old, kind) - 0x4000_8000;
        assert_eq!(at(pstate::MODE_EL0T, VectorKind::Sync), 0x400);
        assert_eq!(at(pstate::MODE_EL1T, VectorKind::Sync), 0x000);
        assert_eq!(at(pstate::MODE_EL1H, VectorKind::Sync), 0x200);
        assert_eq!(at(pstate::MODE_EL0T, VectorKind::Irq), 0x480);
        assert_eq!(at(pstate::MODE_EL1T, VectorKind::Irq), 0x080);
        assert_eq!(at(pstate::MODE_EL1H, VectorKind::Irq), 0x280);
    }

    #[test]
    fn classes_convert_both_ways_and_others_stay() {
        for (lo, cur) in CLASS_PAIRS {
            assert_eq!(class_for_el(lo, 1), cur);
            assert_eq!(class_for_el(cur, 0), lo);
            assert_eq!(class_for_el(lo, 0), lo);
            assert_eq!(class_for_el(cur, 1), cur);
        }
        assert_eq!(class_for_el(ec::BRK64, 0), ec::BRK64);
        assert_eq!(class_for_el(ec::SVC64, 1), ec::SVC64);
    }

    #[test]
    fn entry_pstate_without_features_keeps_nzcv_and_other_fields() {
        let old = pstate::N | pstate::SS | pstate::IL | pstate::MODE_EL0T | (1 << 24);
        let p = entry_pstate(old, EntryFeatures::default(), sctlr::DSSBS);
        assert_eq!(
            p,
            pstate::N | pstate::DAIF_MASK | pstate::MODE_EL1H | (1 << 24)
        );
        assert_eq!(entry_spsr(old, false), old & !pstate::SS);
        assert_eq!(
            entry_spsr(pstate::MODE_EL1H, true),
            pstate::MODE_EL1H | pstate::SS
        );
    }

    #[test]
    fn entry_features_from_id_registers() {
        let f = EntryFeatures::from_id(1 << 20, (1 << 4) | (2 << 8));
        assert_eq!(
            f,
            EntryFeatures {
                pan: true,
                ssbs: true,
                mte: true
            }
        );
        let p = entry_pstate(pstate::SSBS, f, sctlr::SPAN);
        assert_eq!(p & (pstate::PAN | pstate::SSBS | pstate::TCO), pstate::TCO);
    }
}
