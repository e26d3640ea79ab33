//! Batches of instructions for the run loop: the fetch translation done once per code page
//! instead of once per instruction.
//!
//! Owns [`Cpu::run_batch`]. A batch is only run when the run loop needs nothing between two
//! instructions (`Cpu::debug_quiet`: no live breakpoint or watchpoint, the VMM's or the
//! guest's, no single-step); it ends at the
//! first stop, after a system-class instruction (which may change the translation regime,
//! the EL, DAIF or `Cpu::emulated`: see `decode.rs`), when an attention bit is raised (a
//! kick, a power change, anything another thread wants this vCPU to see), or after
//! [`BATCH`] instructions. Within a batch nothing else can change the fetch translation, so
//! it is reused for every fetch from the same page; the instruction word is still read from
//! RAM and checked against the decoded entry on every fetch, exactly as in [`Cpu::step`].

use std::sync::atomic::{AtomicU32, Ordering};

use super::{mmu, Cpu, Stop};
use crate::a64::pstate;

/// Most instructions per batch, so the run loop's own checks still run regularly.
pub const BATCH: u32 = 256;

impl Cpu {
    /// Runs one instruction, or a batch of them when nothing needs per-instruction attention
    /// (see the module docs). Like [`Cpu::step`], an error leaves the PC at the instruction
    /// that stopped, after the earlier ones of the batch completed.
    #[inline]
    /// At most `limit` (at least 1) instructions run: the deterministic clock ends batches
    /// at its quantum and timer deadlines (`model::icount`); otherwise it is [`BATCH`].
    pub fn run_batch(&mut self, attention: &AtomicU32, limit: u32) -> Result<(), Stop> {
        if !self.debug_quiet() {
            return self.step();
        }
        self.emulated = false;
        // The code page the last fetch translated: VA page, PA page, and its RAM (None: not
        // wholly in the first RAM window, fetch through `Bus::read`). `u64::MAX` has its low
        // bits set, so no PC matches it.
        let mut page_va = u64::MAX;
        let mut page_pa = 0;
        let mut page_ram = None;
        for _ in 0..limit.clamp(1, BATCH) {
            let pc = self.st.pc;
            // Same page and 4-byte aligned (bits 1:0 are kept by the mask).
            let pa = if pc & !0xffc == page_va {
                page_pa | (pc & 0xffc)
            } else {
                if self.st.pstate & pstate::IL != 0 || pc & 3 != 0 {
                    return Err(self.fetch_state_fault(pc));
                }
                let (pa, _) = self.translate_attr(pc, mmu::Access::Fetch)?;
                page_va = pc & !0xfff;
                page_pa = pa & !0xfff;
                page_ram = self.bus.code_page(page_pa);
                pa
            };
            let fetched = match page_ram.and_then(|page| self.bus.fetch(page, pc)) {
                Some(w) => Some(w),
                None => self.bus.read(pa, 4).map(|w| w as u32),
            };
            let Some(word) = fetched else {
                return Err(self.fetch_outside_ram(pc));
            };
            let (handler, aux, sync) = self.icache.lookup(pa, word);
            self.next_pc = pc.wrapping_add(4);
            handler(self, word, aux)?;
            self.st.pc = self.next_pc;
            self.st.clear_btype();
            self.insns += 1;
            if sync || attention.load(Ordering::Relaxed) != 0 {
                break;
            }
        }
        Ok(())
    }
}
