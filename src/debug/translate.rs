//! Virtual-to-physical translation for accesses made on a vCPU's behalf (the debugger's memory
//! reads and writes, breakpoint placement, fetching an instruction to emulate): the vCPU's
//! stage-1 registers fed to the one walker, `a64::walk`, over guest RAM.
//!
//! Debug accesses translate with EL1 read permission (which the stage-1 permission model always
//! grants, Arm ARM D8.4 "Memory access control"), so the debugger reaches read-only and
//! execute-only pages, including when the vCPU stopped at EL0.

use vm_memory::GuestMemoryMmap;

use crate::a64::walk::{self, Access, Fault, PhysMem, Translation, TranslationRegs, WalkTrace};
use crate::a64::{sys, Reg};
use crate::backend::{BackendError, Vcpu};

/// Guest RAM as the walker's physical memory.
pub struct Ram<'a>(pub &'a GuestMemoryMmap);

impl PhysMem for Ram<'_> {
    fn read_u64(&self, pa: u64) -> Option<u64> {
        super::guest_ram::read_u64(self.0, pa).ok()
    }
}

/// Why a translation failed.
#[derive(Debug, thiserror::Error)]
pub enum TranslateError {
    #[error("reading the vCPU's translation registers: {0}")]
    Registers(#[from] BackendError),
    #[error("{va:#x} is not mapped: {fault}")]
    Fault { va: u64, fault: Fault },
}

/// The registers that control a vCPU's stage-1 translation of the EL1&0 regime, in the order
/// [`regs_from_values`] takes their values.
pub const TRANSLATION_REGS: [Reg; 5] = [
    Reg::Sys(sys::SCTLR_EL1),
    Reg::Sys(sys::TCR_EL1),
    Reg::Sys(sys::TTBR0_EL1),
    Reg::Sys(sys::TTBR1_EL1),
    Reg::Sys(sys::MAIR_EL1),
];

/// The translation registers from the values of [`TRANSLATION_REGS`] (read elsewhere, e.g.
/// from a register cache); values are the 64-bit registers' low bits.
pub fn regs_from_values(v: [u128; 5]) -> TranslationRegs {
    TranslationRegs {
        sctlr: v[0] as u64,
        tcr: v[1] as u64,
        ttbr0: v[2] as u64,
        ttbr1: v[3] as u64,
        mair: v[4] as u64,
    }
}

/// The registers that control a vCPU's stage-1 translation of the EL1&0 regime.
pub fn translation_regs(vcpu: &mut dyn Vcpu) -> Result<TranslationRegs, BackendError> {
    let mut v = [0u128; 5];
    for (value, reg) in v.iter_mut().zip(TRANSLATION_REGS) {
        *value = vcpu.get_reg(reg)?;
    }
    Ok(regs_from_values(v))
}

/// Translates `va` for a debug access through `regs`.
pub fn translate_with(
    regs: &TranslationRegs,
    mem: &GuestMemoryMmap,
    va: u64,
) -> Result<Translation, TranslateError> {
    walk::translate(regs, va, Access::Read, false, &Ram(mem))
        .map_err(|fault| TranslateError::Fault { va, fault })
}

/// Translates `va` for a debug access by `vcpu`.
pub fn translate(
    vcpu: &mut dyn Vcpu,
    mem: &GuestMemoryMmap,
    va: u64,
) -> Result<Translation, TranslateError> {
    let regs = translation_regs(vcpu)?;
    translate_with(&regs, mem, va)
}

/// [`translate`] recording every descriptor read (`monitor translate`).
pub fn translate_traced(
    vcpu: &mut dyn Vcpu,
    mem: &GuestMemoryMmap,
    va: u64,
    trace: &mut WalkTrace,
) -> Result<Translation, TranslateError> {
    let regs = translation_regs(vcpu)?;
    walk::translate_traced(&regs, va, Access::Read, false, &Ram(mem), trace)
        .map_err(|fault| TranslateError::Fault { va, fault })
}
