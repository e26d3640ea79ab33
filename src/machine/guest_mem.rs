//! Guest memory as a vCPU sees it: virtual addresses translated through that vCPU's stage-1
//! tables, then RAM. Used for fetching instructions to emulate.
//!
//! Owns virtual-to-physical translation for VMM accesses (the stage-1 walker itself lives in
//! `a64::walk`); must not depend on gdb.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

use vm_memory::{GuestMemoryError, GuestMemoryMmap};

use crate::backend::Vcpu;
use crate::debug::translate::{self, TranslateError};

/// Why an instruction could not be fetched.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("misaligned pc {va:#x}")]
    Misaligned { va: u64 },
    #[error("translating pc {va:#x}: {source}")]
    Translate {
        va: u64,
        #[source]
        source: TranslateError,
    },
    #[error("pc {va:#x} (pa {pa:#x}) is not in RAM: {source}")]
    NotRam {
        va: u64,
        pa: u64,
        #[source]
        source: GuestMemoryError,
    },
}

/// Guest RAM plus translation, and what the vCPU threads learned about the host (shared by
/// every clone: one machine, one host).
#[derive(Clone)]
pub struct GuestView {
    mem: GuestMemoryMmap,
    /// Whether the host sign-extends MMIO loads itself: [`SSE_UNKNOWN`], [`SSE_REPORTED`] or
    /// [`SSE_OMITTED`].
    sse: Arc<AtomicU8>,
}

const SSE_UNKNOWN: u8 = 0;
const SSE_REPORTED: u8 = 1;
const SSE_OMITTED: u8 = 2;

impl GuestView {
    pub fn new(mem: GuestMemoryMmap) -> Self {
        GuestView {
            mem,
            sse: Arc::new(AtomicU8::new(SSE_UNKNOWN)),
        }
    }

    /// Whether the host was seen to sign-extend a sign-extending MMIO load itself (Some(true))
    /// or to leave it zero-extended (Some(false)); None until such a load was seen.
    pub fn host_sign_extends(&self) -> Option<bool> {
        match self.sse.load(Ordering::Relaxed) {
            SSE_REPORTED => Some(true),
            SSE_OMITTED => Some(false),
            _ => None,
        }
    }

    /// Records what a sign-extending MMIO load showed about the host.
    pub fn note_host_sign_extends(&self, yes: bool) {
        let v = if yes { SSE_REPORTED } else { SSE_OMITTED };
        self.sse.store(v, Ordering::Relaxed);
    }

    pub fn mem(&self) -> &GuestMemoryMmap {
        &self.mem
    }

    /// Translates a virtual address through `vcpu`'s stage-1 tables (flat when SCTLR_EL1.M
    /// is 0), with the debug-access rules of [`translate`].
    pub fn translate(&self, vcpu: &mut dyn Vcpu, va: u64) -> Result<u64, TranslateError> {
        translate::translate(vcpu, &self.mem, va).map(|t| t.pa)
    }

    /// Reads the 32-bit instruction word at virtual address `va`.
    pub fn fetch_insn(&self, vcpu: &mut dyn Vcpu, va: u64) -> Result<u32, FetchError> {
        if va & 3 != 0 {
            return Err(FetchError::Misaligned { va });
        }
        let pa = self
            .translate(vcpu, va)
            .map_err(|source| FetchError::Translate { va, source })?;
        crate::debug::guest_ram::read_u32(&self.mem, pa).map_err(|source| FetchError::NotRam {
            va,
            pa,
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::a64::Reg;
    use crate::backend::fake::FakeVcpu;
    use crate::machine::layout::RAM_BASE;
    use crate::machine::memory::allocate;
    use vm_memory::{Bytes, GuestAddress};

    fn view() -> GuestView {
        let mem = allocate(1 << 20).unwrap();
        mem.write_obj(0xd503_201fu32, GuestAddress(RAM_BASE))
            .unwrap(); // nop
        GuestView::new(mem)
    }

    #[test]
    fn fetches_through_the_flat_map_with_the_mmu_off() {
        assert_eq!(
            view().fetch_insn(&mut FakeVcpu::new(0), RAM_BASE).unwrap(),
            0xd503_201f
        );
    }

    #[test]
    fn each_failure_is_its_own_variant() {
        let v = view();
        let mut cpu = FakeVcpu::new(0);
        let err = v.fetch_insn(&mut cpu, RAM_BASE + 2).unwrap_err();
        assert!(matches!(err, FetchError::Misaligned { va } if va == RAM_BASE + 2));
        let err = v.fetch_insn(&mut cpu, 0x1000).unwrap_err();
        assert!(
            matches!(err, FetchError::NotRam { pa: 0x1000, .. }),
            "{err}"
        );
        cpu.fail_get.insert(Reg::Sys(crate::a64::sys::SCTLR_EL1));
        let err = v.fetch_insn(&mut cpu, RAM_BASE).unwrap_err();
        assert!(matches!(err, FetchError::Translate { .. }), "{err}");
    }
}
