//! Stage-1 address translation for the model vCPU: the flat map with SCTLR_EL1.M = 0 and a
//! small TLB in front of the shared table walker for M = 1.
//!
//! Owns the TLB and the conversion of walker faults into guest aborts; the walk itself is
//! `crate::a64::walk` (shared with the debugger).

use super::{Cpu, Stop};

/// The kind of access being translated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    Read,
    Write,
    Fetch,
}

/// The model's physical address size: 48 bits (ID_AA64MMFR0_EL1.PARange = 0b0101).
pub const PA_BITS: u32 = 48;

/// Translation lookaside buffer (flushed on TLBI and on writes to SCTLR/TCR/TTBRx/MAIR).
#[derive(Clone, Debug, Default)]
pub struct Tlb {
    entries: Vec<TlbEntry>,
}

#[derive(Clone, Copy, Debug)]
struct TlbEntry {
    /// VA page (4 KiB granule of the lookup), EL0 flag.
    va_page: u64,
    el0: bool,
    pa_page: u64,
    write_ok: bool,
    exec_ok: bool,
}

const TLB_SIZE: usize = 256;

impl Tlb {
    pub fn flush(&mut self) {
        self.entries.clear();
    }

    fn slot(va_page: u64) -> usize {
        ((va_page >> 12) as usize) % TLB_SIZE
    }

    fn lookup(&self, va: u64, el0: bool, access: Access) -> Option<u64> {
        let page = va & !0xfff;
        let e = self.entries.get(Self::slot(page))?;
        let allowed = match access {
            Access::Read => true,
            Access::Write => e.write_ok,
            Access::Fetch => e.exec_ok,
        };
        (e.va_page == page && e.el0 == el0 && allowed).then_some(e.pa_page | (va & 0xfff))
    }

    fn insert(&mut self, e: TlbEntry) {
        if self.entries.is_empty() {
            self.entries = vec![
                TlbEntry {
                    va_page: u64::MAX,
                    el0: false,
                    pa_page: 0,
                    write_ok: false,
                    exec_ok: false,
                };
                TLB_SIZE
            ];
        }
        let s = Self::slot(e.va_page);
        self.entries[s] = e;
    }
}

impl Cpu {
    /// Translates `va` for `access` at the current EL, or the abort the guest takes.
    pub fn translate(&mut self, va: u64, access: Access) -> Result<u64, Stop> {
        if self.st.sys.sctlr & super::state::SCTLR_M == 0 {
            // Stage 1 off: VA = PA; bits above the PA size give an address size fault at
            // level 0 (Arm ARM D8.2 "Translation process when stage 1 is disabled").
            if va >> PA_BITS != 0 {
                return Err(self.translation_abort(va, access, 0x00));
            }
            return Ok(va);
        }
        let el0 = self.st.el() == 0;
        if let Some(pa) = self.tlb.lookup(va, el0, access) {
            return Ok(pa);
        }
        self.walk(va, access, el0)
    }

    /// The abort for a failed translation with fault status `fsc`.
    pub fn translation_abort(&self, va: u64, access: Access, fsc: u8) -> Stop {
        Stop::Exception(match access {
            Access::Fetch => self.iabt(va, fsc),
            Access::Read => self.dabt(va, false, fsc),
            Access::Write => self.dabt(va, true, fsc),
        })
    }

    /// Stage-1 walk with SCTLR_EL1.M = 1. The shared walker (`a64::walk`) is not merged yet:
    /// until it is, the model reports a level-0 translation fault so the guest sees an abort
    /// rather than a silently wrong flat mapping.
    fn walk(&mut self, va: u64, access: Access, el0: bool) -> Result<u64, Stop> {
        let _ = el0;
        log::warn!("model: stage-1 translation (SCTLR_EL1.M=1) is not available yet (va {va:#x})");
        let _ = TlbEntry {
            va_page: 0,
            el0: false,
            pa_page: 0,
            write_ok: false,
            exec_ok: false,
        };
        Err(self.translation_abort(va, access, 0x04))
    }
}
