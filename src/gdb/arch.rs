//! The gdbstub architecture: gdbstub_arch's AArch64 with a register id that also covers fpsr
//! (66) and fpcr (67). gdbstub_arch 0.3.3 decodes those numbers to ids without a size, so
//! gdbstub acknowledges `P42=...` with OK and writes nothing (seen with gdb-multiarch 13:
//! `set $fpsr = ...` was lost). The target description is always ours (`target_xml`).

use std::num::NonZeroUsize;

use gdbstub::arch::{Arch, RegId};
use gdbstub_arch::aarch64::reg::id::AArch64RegId;
use gdbstub_arch::aarch64::reg::AArch64CoreRegs;

/// gdb's register numbers for fpsr and fpcr (gdb/features/aarch64-fpu.xml order).
pub const FPSR_REGNUM: usize = 66;
pub const FPCR_REGNUM: usize = 67;

pub enum KvmdbgAArch64 {}

/// A register gdb names by number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GdbReg {
    Fpsr,
    Fpcr,
    Other(AArch64RegId),
}

impl RegId for GdbReg {
    fn from_raw_id(id: usize) -> Option<(Self, Option<NonZeroUsize>)> {
        let four = NonZeroUsize::new(4);
        match id {
            FPSR_REGNUM => Some((GdbReg::Fpsr, four)),
            FPCR_REGNUM => Some((GdbReg::Fpcr, four)),
            _ => AArch64RegId::from_raw_id(id).map(|(r, size)| (GdbReg::Other(r), size)),
        }
    }
}

impl Arch for KvmdbgAArch64 {
    type Usize = u64;
    type Registers = AArch64CoreRegs;
    type BreakpointKind = usize;
    type RegId = GdbReg;

    fn target_description_xml() -> Option<&'static str> {
        None
    }
}
