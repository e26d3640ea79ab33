//! Guest memory as a vCPU sees it: virtual addresses translated through that vCPU's stage-1
//! tables, then RAM. Used for fetching instructions to emulate.
//!
//! Owns virtual-to-physical translation for VMM accesses (the stage-1 walker itself lives in
//! `a64::walk`); must not depend on gdb.

use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use crate::a64::walk::{self, Access, PhysMem, TranslationRegs};
use crate::a64::{pstate, sys, Reg};
use crate::backend::{BackendError, Vcpu};

/// Guest RAM plus translation.
#[derive(Clone)]
pub struct GuestView {
    mem: GuestMemoryMmap,
}

impl GuestView {
    pub fn new(mem: GuestMemoryMmap) -> Self {
        GuestView { mem }
    }

    pub fn mem(&self) -> &GuestMemoryMmap {
        &self.mem
    }

    /// Translates a virtual address for an instruction fetch by `vcpu` at its current
    /// exception level, through its stage-1 tables (flat when SCTLR_EL1.M is 0).
    pub fn translate_fetch(&self, vcpu: &mut dyn Vcpu, va: u64) -> Result<u64, String> {
        let regs = translation_regs(vcpu).map_err(|e| e.to_string())?;
        let el0 = pstate::el(vcpu.get(Reg::Pstate).map_err(|e| e.to_string())?) == 0;
        walk::translate(&regs, va, Access::Fetch, el0, self)
            .map(|t| t.pa)
            .map_err(|f| format!("translating {va:#x}: {f}"))
    }

    /// Reads the 32-bit instruction word at virtual address `va`.
    pub fn fetch_insn(&self, vcpu: &mut dyn Vcpu, va: u64) -> Result<u32, String> {
        if va & 3 != 0 {
            return Err(format!("misaligned pc {va:#x}"));
        }
        let pa = self.translate_fetch(vcpu, va)?;
        self.mem
            .read_obj::<u32>(GuestAddress(pa))
            .map_err(|e| format!("pc {va:#x} (pa {pa:#x}) is not in RAM: {e}"))
    }
}

impl PhysMem for GuestView {
    fn read_u64(&self, pa: u64) -> Option<u64> {
        self.mem.read_obj::<u64>(GuestAddress(pa)).ok()
    }
}

/// The registers that control a vCPU's stage-1 translation.
pub fn translation_regs(vcpu: &mut dyn Vcpu) -> Result<TranslationRegs, BackendError> {
    Ok(TranslationRegs {
        sctlr: vcpu.get(Reg::Sys(sys::SCTLR_EL1))?,
        tcr: vcpu.get(Reg::Sys(sys::TCR_EL1))?,
        ttbr0: vcpu.get(Reg::Sys(sys::TTBR0_EL1))?,
        ttbr1: vcpu.get(Reg::Sys(sys::TTBR1_EL1))?,
        mair: vcpu.get(Reg::Sys(sys::MAIR_EL1))?,
    })
}
