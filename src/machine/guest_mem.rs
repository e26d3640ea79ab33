//! Guest memory as a vCPU sees it: virtual addresses translated through that vCPU's stage-1
//! tables, then RAM. Used for fetching instructions to emulate.
//!
//! Owns virtual-to-physical translation for VMM accesses (the stage-1 walker itself lives in
//! `a64::walk`); must not depend on gdb.

use vm_memory::GuestMemoryMmap;

use crate::backend::Vcpu;
use crate::debug::translate;

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

    /// Translates a virtual address through `vcpu`'s stage-1 tables (flat when SCTLR_EL1.M
    /// is 0), with the debug-access rules of [`translate`].
    pub fn translate(&self, vcpu: &mut dyn Vcpu, va: u64) -> Result<u64, String> {
        translate::translate(vcpu, &self.mem, va)
            .map(|t| t.pa)
            .map_err(|e| e.to_string())
    }

    /// Reads the 32-bit instruction word at virtual address `va`.
    pub fn fetch_insn(&self, vcpu: &mut dyn Vcpu, va: u64) -> Result<u32, String> {
        if va & 3 != 0 {
            return Err(format!("misaligned pc {va:#x}"));
        }
        let pa = self.translate(vcpu, va)?;
        crate::debug::guest_ram::read_u32(&self.mem, pa)
            .map_err(|e| format!("pc {va:#x} (pa {pa:#x}) is not in RAM: {e}"))
    }
}
