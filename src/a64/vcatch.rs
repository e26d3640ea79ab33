//! Vector catch: which exception vectors a debugger stops on, where their entries lie, and
//! whether a vCPU sitting at an entry looks as if it just took the exception.
//!
//! AArch64 has no vector catch of its own (AArch32 has DBGVCR, Arm ARM G8.3 "DBGVCR"); a
//! debugger builds it from the vector table layout (Arm ARM D1.10.2 "Exception vectors":
//! VBAR_EL1 + 0x000 current EL with SP_EL0, + 0x200 current EL with SP_ELx, + 0x400 lower EL
//! using AArch64; inside each group sync + 0x000, IRQ + 0x080, FIQ + 0x100, SError + 0x180)
//! and the state exception entry leaves behind (D1.10 "Exception entry": PSTATE = EL1h with
//! D, A, I, F set, SPSR_EL1 = the PSTATE before entry).
//!
//! Pure values and functions; no I/O. Exceptions from a lower EL using AArch32 (group
//! + 0x600) are not part of a catch set.

use super::exception::{VectorKind, VBAR_MASK, VECTOR_CUR_SP0, VECTOR_CUR_SPX, VECTOR_LOWER_A64};
use super::pstate;

/// Where an exception came from, as `monitor catch exceptions ... el0|el1` names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CatchSource {
    /// From EL0 (AArch64): the lower-EL group.
    El0,
    /// From EL1 itself: both current-EL groups (SP_EL0 and SP_EL1 in use).
    El1,
}

impl CatchSource {
    pub const ALL: [CatchSource; 2] = [CatchSource::El0, CatchSource::El1];

    pub const fn name(self) -> &'static str {
        match self {
            CatchSource::El0 => "el0",
            CatchSource::El1 => "el1",
        }
    }

    /// The source of an exception taken from PSTATE `old`.
    pub fn of(old: u64) -> CatchSource {
        if pstate::el(old) == 0 {
            CatchSource::El0
        } else {
            CatchSource::El1
        }
    }

    /// The vector groups exceptions from this source use.
    pub fn groups(self) -> &'static [VectorGroup] {
        match self {
            CatchSource::El0 => &[VectorGroup::LowerA64],
            CatchSource::El1 => &[VectorGroup::CurSp0, VectorGroup::CurSpx],
        }
    }
}

/// One group of four vector entries (Arm ARM D1.10.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum VectorGroup {
    /// Current EL with SP_EL0 (taken from EL1t).
    CurSp0,
    /// Current EL with SP_ELx (taken from EL1h).
    CurSpx,
    /// Lower EL using AArch64 (taken from EL0).
    LowerA64,
}

impl VectorGroup {
    const ALL: [VectorGroup; 3] = [
        VectorGroup::CurSp0,
        VectorGroup::CurSpx,
        VectorGroup::LowerA64,
    ];

    /// Offset of the group from VBAR_EL1.
    pub const fn base(self) -> u64 {
        match self {
            VectorGroup::CurSp0 => VECTOR_CUR_SP0,
            VectorGroup::CurSpx => VECTOR_CUR_SPX,
            VectorGroup::LowerA64 => VECTOR_LOWER_A64,
        }
    }

    /// SPSR_EL1.M\[3:0\] of an exception taken through this group: the mode it came from.
    const fn taken_from_mode(self) -> u64 {
        match self {
            VectorGroup::CurSp0 => pstate::MODE_EL1T,
            VectorGroup::CurSpx => pstate::MODE_EL1H,
            VectorGroup::LowerA64 => pstate::MODE_EL0T,
        }
    }

    pub const fn source(self) -> CatchSource {
        match self {
            VectorGroup::LowerA64 => CatchSource::El0,
            _ => CatchSource::El1,
        }
    }
}

/// A set of (kind, source) pairs to stop on. Bit `kind` for EL0, bit `4 + kind` for EL1.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct VectorCatch(u8);

impl VectorCatch {
    pub const NONE: VectorCatch = VectorCatch(0);

    const fn bit(kind: VectorKind, src: CatchSource) -> u8 {
        let shift = kind as u8
            + match src {
                CatchSource::El0 => 0,
                CatchSource::El1 => 4,
            };
        1 << shift
    }

    /// This set plus (`kind`, `src`).
    pub const fn with(self, kind: VectorKind, src: CatchSource) -> VectorCatch {
        VectorCatch(self.0 | Self::bit(kind, src))
    }

    /// Every pair in either set.
    pub const fn union(self, other: VectorCatch) -> VectorCatch {
        VectorCatch(self.0 | other.0)
    }

    pub const fn catches(self, kind: VectorKind, src: CatchSource) -> bool {
        self.0 & Self::bit(kind, src) != 0
    }

    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The pairs in the set, kinds in vector order, EL0 before EL1.
    pub fn entries(self) -> impl Iterator<Item = (VectorKind, CatchSource)> {
        VectorKind::ALL.into_iter().flat_map(move |k| {
            CatchSource::ALL
                .into_iter()
                .filter(move |s| self.catches(k, *s))
                .map(move |s| (k, s))
        })
    }

    /// The vector entries to watch for VBAR_EL1 = `vbar`: one per (kind, group) in the set,
    /// in ascending address order.
    pub fn slots(self, vbar: u64) -> Vec<u64> {
        let base = vbar & VBAR_MASK;
        let mut out: Vec<u64> = self
            .entries()
            .flat_map(|(k, s)| {
                s.groups()
                    .iter()
                    .map(move |g| base.wrapping_add(g.base() + k.offset()))
            })
            .collect();
        out.sort_unstable();
        out
    }

    /// How many vector entries (hardware breakpoints, when planted) the set needs.
    pub fn slot_count(self) -> usize {
        self.slots(0).len()
    }

    /// A readable list, e.g. `sync el0, sync el1, irq el1`, or `none`.
    pub fn describe(self) -> String {
        let parts: Vec<String> = self
            .entries()
            .map(|(k, s)| format!("{} {}", k.name(), s.name()))
            .collect();
        if parts.is_empty() {
            "none".into()
        } else {
            parts.join(", ")
        }
    }
}

/// The vector entry `pc` is, for VBAR_EL1 = `vbar`: its kind and group; `None` when `pc` is
/// not the first instruction of an AArch64 entry.
pub fn decode_slot(vbar: u64, pc: u64) -> Option<(VectorKind, VectorGroup)> {
    let off = pc.wrapping_sub(vbar & VBAR_MASK);
    let group = VectorGroup::ALL
        .into_iter()
        .find(|g| off.wrapping_sub(g.base()) < 0x200)?;
    let kind = VectorKind::at_offset(off - group.base())?;
    Some((kind, group))
}

/// Whether a vCPU at the entry of (`kind`, `group`) with these PSTATE and SPSR_EL1 values is
/// consistent with having just taken that exception: PSTATE is EL1h (AArch64) with D, A, I
/// and F all set; SPSR_EL1.M is the mode the group is taken from; for an IRQ, FIQ or SError
/// SPSR_EL1's I, F or A bit is clear (the exception is masked by it at EL0 and EL1, Arm ARM
/// D1.3.6 "Asynchronous exception masking"; FEAT_NMI superpriority is not considered). A
/// branch to the entry in that very state cannot be told apart from an exception entry.
pub fn looks_like_entry(kind: VectorKind, group: VectorGroup, pstate: u64, spsr: u64) -> bool {
    let mode = pstate::NRW | pstate::M_MASK;
    let masked = match kind {
        VectorKind::Sync => 0,
        VectorKind::Irq => pstate::I,
        VectorKind::Fiq => pstate::F,
        VectorKind::SError => pstate::A,
    };
    pstate & mode == pstate::MODE_EL1H
        && pstate & pstate::DAIF_MASK == pstate::DAIF_MASK
        && spsr & mode == group.taken_from_mode()
        && spsr & masked == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    const VBAR: u64 = 0x4000_8000;

    #[test]
    fn slots_follow_the_vector_table() {
        let c = VectorCatch::NONE
            .with(VectorKind::Sync, CatchSource::El1)
            .with(VectorKind::Irq, CatchSource::El0)
            .with(VectorKind::SError, CatchSource::El0);
        let off: Vec<u64> = c.slots(VBAR | 0x7ff).iter().map(|a| a - VBAR).collect();
        assert_eq!(off, [0x000, 0x200, 0x480, 0x580]);
        assert_eq!(c.slot_count(), 4);
        assert_eq!(c.describe(), "sync el1, irq el0, serror el0");
        assert_eq!(VectorCatch::NONE.describe(), "none");
        let all = VectorKind::ALL.into_iter().fold(VectorCatch::NONE, |c, k| {
            c.with(k, CatchSource::El0).with(k, CatchSource::El1)
        });
        assert_eq!(all.slot_count(), 12);
    }

    #[test]
    fn decode_slot_finds_entries_only() {
        assert_eq!(
            decode_slot(VBAR, VBAR + 0x280),
            Some((VectorKind::Irq, VectorGroup::CurSpx))
        );
        assert_eq!(
            decode_slot(VBAR, VBAR + 0x400),
            Some((VectorKind::Sync, VectorGroup::LowerA64))
        );
        assert_eq!(
            decode_slot(VBAR, VBAR + 0x180),
            Some((VectorKind::SError, VectorGroup::CurSp0))
        );
        for pc in [VBAR + 4, VBAR + 0x284, VBAR + 0x600, VBAR - 0x80, 0] {
            assert_eq!(decode_slot(VBAR, pc), None, "{pc:#x}");
        }
    }

    #[test]
    fn entry_state_is_checked_per_group_and_kind() {
        let el1h = pstate::MODE_EL1H | pstate::DAIF_MASK;
        let sync = |g, ps, spsr| looks_like_entry(VectorKind::Sync, g, ps, spsr);
        assert!(sync(VectorGroup::LowerA64, el1h, pstate::MODE_EL0T));
        assert!(sync(VectorGroup::CurSpx, el1h | pstate::N, el1h));
        assert!(sync(VectorGroup::CurSp0, el1h, pstate::MODE_EL1T));
        // SPSR from another mode, PSTATE not masked, PSTATE not EL1h.
        assert!(!sync(VectorGroup::LowerA64, el1h, pstate::MODE_EL1H));
        assert!(!sync(VectorGroup::CurSpx, pstate::MODE_EL1H, el1h));
        assert!(!sync(
            VectorGroup::CurSpx,
            pstate::MODE_EL1T | pstate::DAIF_MASK,
            el1h
        ));
        // An IRQ cannot be taken with SPSR.I set; a synchronous exception can.
        let irq = |spsr| looks_like_entry(VectorKind::Irq, VectorGroup::CurSpx, el1h, spsr);
        assert!(irq(pstate::MODE_EL1H));
        assert!(!irq(pstate::MODE_EL1H | pstate::I));
        assert!(!looks_like_entry(
            VectorKind::Fiq,
            VectorGroup::LowerA64,
            el1h,
            pstate::F
        ));
        assert!(!looks_like_entry(
            VectorKind::SError,
            VectorGroup::LowerA64,
            el1h,
            pstate::A
        ));
    }

    #[test]
    fn source_of_pstate() {
        assert_eq!(CatchSource::of(pstate::MODE_EL0T), CatchSource::El0);
        assert_eq!(CatchSource::of(pstate::MODE_EL1T), CatchSource::El1);
        assert_eq!(VectorGroup::CurSp0.source(), CatchSource::El1);
        assert_eq!(VectorGroup::LowerA64.source(), CatchSource::El0);
    }
}
