//! Guest memory as a vCPU sees it: virtual addresses translated through that vCPU's stage-1
//! tables, then RAM. Used for fetching instructions to emulate.
//!
//! Owns virtual-to-physical translation for VMM accesses (the stage-1 walker itself lives in
//! `a64::walk`); must not depend on gdb.

use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use crate::a64::{sys, Reg};
use crate::backend::Vcpu;

/// SCTLR_EL1.M (bit 0): stage-1 MMU enable (Arm ARM D19.2.118 "SCTLR_EL1").
const SCTLR_M: u64 = 1;

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

    /// Translates a virtual address for an instruction fetch by `vcpu`.
    pub fn translate_fetch(&self, vcpu: &mut dyn Vcpu, va: u64) -> Result<u64, String> {
        let sctlr = vcpu
            .get(Reg::Sys(sys::SCTLR_EL1))
            .map_err(|e| e.to_string())?;
        if sctlr & SCTLR_M == 0 {
            return Ok(va);
        }
        Err(format!(
            "stage-1 translation of {va:#x} with the MMU on is not supported yet"
        ))
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
