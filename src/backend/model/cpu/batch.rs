//! Batches of instructions for the run loop: pre-decoded blocks run back to back, the fetch
//! translation done once per code page instead of once per instruction.
//!
//! Owns [`Cpu::run_batch`]. A batch is only run when the run loop needs nothing between two
//! instructions (`Cpu::debug_quiet`: no live breakpoint or watchpoint, the VMM's or the
//! guest's, no single-step); it ends at the first stop, after a system-class instruction
//! (which may change the translation regime, the EL, DAIF or `Cpu::emulated`: see
//! `decode.rs`; not the hints, barriers and register reads of `decode::in_line`), when an attention bit is raised (a kick, a power change, anything another
//! thread wants this vCPU to see; checked after every block), or after `limit` (at most
//! [`BATCH`]) instructions. Within a batch nothing else can change the fetch translation,
//! so it is reused for every fetch from the same page.
//!
//! Instructions in the first RAM window run as pre-decoded blocks (`block.rs`): per
//! instruction only the word's re-validation against RAM, the handler, the PC and the
//! instruction count, with no cache lookup and no page check. Before each op runs, its word
//! is read from RAM and compared with the word it was decoded from, so self-modifying code
//! and words written by another vCPU or by the VMM take effect at their very next fetch,
//! exactly as in [`Cpu::step`]. `Cpu::insns` is counted per instruction, so a handler or the
//! VMM that reads it (the deterministic clock) always sees the exact count.

use std::sync::atomic::{AtomicU32, Ordering};

use super::block::{Block, BlockCache};
use super::jit::{Jit, Outcome};
use super::jit_mem::Entry;
use super::ram::CodePage;
use super::{mmu, Cpu, Stop};
use crate::a64::pstate;

/// Most instructions per batch, so the run loop's own checks still run regularly.
pub const BATCH: u32 = 256;

/// How a block's run ended, when no instruction stopped.
enum BlockEnd {
    /// Every op ran (or `budget` of them); the batch may go on.
    Ran(u32),
    /// Every op ran and the last one was system-class: the batch ends.
    Sync,
    /// The op at the PC no longer matches RAM: `n` ops ran, the block is dropped.
    Stale(u32),
}

impl Cpu {
    /// Runs one instruction, or a batch of them when nothing needs per-instruction attention
    /// (see the module docs). Like [`Cpu::step`], an error leaves the PC at the instruction
    /// that stopped, after the earlier ones of the batch completed.
    /// At most `limit` (at least 1) instructions run: the deterministic clock ends batches
    /// at its quantum and timer deadlines (`model::icount`); otherwise it is [`BATCH`].
    #[inline]
    pub fn run_batch(&mut self, attention: &AtomicU32, limit: u32) -> Result<(), Stop> {
        if !self.debug_quiet() {
            return self.step();
        }
        self.emulated = false;
        let mut blocks = match self.blocks.take() {
            Some(b) => b,
            None => {
                let mut b = BlockCache::new(self.bus.ram(), self.bus.jit());
                if let Some(jit) = b.jit.as_deref_mut() {
                    jit.background = self.bus.jit_background();
                }
                b
            }
        };
        if let Some(jit) = blocks.jit.as_deref_mut() {
            jit.poll();
        }
        let r = self.run_blocks(&mut blocks, attention, limit.clamp(1, BATCH));
        self.blocks = Some(blocks);
        r
    }

    /// The batch proper: up to `budget` instructions.
    fn run_blocks(
        &mut self,
        blocks: &mut BlockCache,
        attention: &AtomicU32,
        mut budget: u32,
    ) -> Result<(), Stop> {
        // PSTATE.BTYPE is cleared after every instruction, and only ERET (which ends a batch)
        // or the VMM sets it: when it is set, the first instruction runs on its own.
        if self.st.pstate & pstate::BTYPE_MASK != 0 {
            let (pa, _) = self.fetch_pa()?;
            if self.step_at(pa)? || attention.load(Ordering::Relaxed) != 0 {
                return Ok(());
            }
            budget -= 1;
        }
        let BlockCache { ram, table, jit } = blocks;
        // The code page the last fetch translated: VA page, PA page, and its words in RAM
        // (empty: not wholly in the first RAM window, fetch through `Bus::read`).
        // `u64::MAX` has its low bits set, so no PC matches it.
        let mut page_va = u64::MAX;
        let mut page_pa = 0;
        let mut words: &[AtomicU32] = &[];
        while budget > 0 {
            let pc = self.st.pc;
            // Same page and 4-byte aligned (bits 1:0 are kept by the mask).
            if pc & !0xffc != page_va {
                let (pa, page) = self.fetch_pa()?;
                page_va = pc & !0xfff;
                page_pa = pa & !0xfff;
                words = page.and_then(|p| ram.code_words(p)).unwrap_or(&[]);
            }
            let pa = page_pa | (pc & 0xffc);
            let off = (pc as usize & 0xffc) / 4;
            let Some(from_pc) = words.get(off..).filter(|_| off < words.len()) else {
                // Outside the first RAM window: one instruction, as `Cpu::step` runs it.
                let sync = self.step_at(pa)?;
                budget -= 1;
                if sync || attention.load(Ordering::Relaxed) != 0 {
                    break;
                }
                continue;
            };
            let block = table.get(pa, from_pc);
            let index = block.index;
            let end = match jit.as_deref_mut() {
                Some(jit) => match jit.entry(pa, &block, budget) {
                    Some(entry) => self.compiled_end(jit, entry, &block, budget, attention)?,
                    None => self.run_block(&block, budget)?,
                },
                None => self.run_block(&block, budget)?,
            };
            match end {
                BlockEnd::Ran(n) => budget -= n,
                BlockEnd::Sync => break,
                BlockEnd::Stale(n) => {
                    table.drop_block(index);
                    if let Some(jit) = jit.as_deref_mut() {
                        jit.forget(index);
                    }
                    budget -= n;
                    continue;
                }
            }
            if attention.load(Ordering::Relaxed) != 0 {
                break;
            }
        }
        Ok(())
    }

    /// The physical address of the PC, after the PC alignment and PSTATE.IL checks and the
    /// fetch translation.
    #[inline(always)]
    pub(super) fn fetch_phys(&mut self) -> Result<u64, Stop> {
        let pc = self.st.pc;
        if self.st.pstate & pstate::IL != 0 || pc & 3 != 0 {
            return Err(self.fetch_state_fault(pc));
        }
        Ok(self.translate_attr(pc, mmu::Access::Fetch)?.0)
    }

    /// [`Cpu::fetch_phys`] and the PC's code page (None: not wholly in the first RAM window).
    fn fetch_pa(&mut self) -> Result<(u64, Option<CodePage>), Stop> {
        let pa = self.fetch_phys()?;
        Ok((pa, self.bus.code_page(pa & !0xfff)))
    }

    /// Runs the ops of one block from the PC (at most `budget` of them), each after checking
    /// its word against RAM. PSTATE.BTYPE is clear (see `run_blocks`) and no op but the last
    /// of a block (ERET, system-class) can set it.
    #[inline(always)]
    fn run_block(&mut self, block: &Block, budget: u32) -> Result<BlockEnd, Stop> {
        let n = (budget as usize).min(block.ops.len());
        for (k, (op, word)) in block.ops[..n].iter().zip(block.words).enumerate() {
            if word.load(Ordering::Relaxed) != op.word {
                return Ok(BlockEnd::Stale(k as u32));
            }
            self.next_pc = self.st.pc.wrapping_add(4);
            (op.handler)(self, op.word, op.aux)?;
            self.st.pc = self.next_pc;
            self.insns += 1;
        }
        if block.sync && n == block.ops.len() {
            // ERET may have set BTYPE; as after every instruction, it is cleared.
            self.st.clear_btype();
            return Ok(BlockEnd::Sync);
        }
        Ok(BlockEnd::Ran(n as u32))
    }

    /// Runs compiled `entry` of `block` (`jit.rs`), ending as `run_block` would.
    #[inline(always)]
    fn compiled_end(
        &mut self,
        jit: &Jit,
        entry: Entry,
        block: &Block,
        budget: u32,
        attention: &AtomicU32,
    ) -> Result<BlockEnd, Stop> {
        Ok(
            match self.run_compiled(jit, entry, block, budget, attention)? {
                Outcome::Ran(n) if block.sync => {
                    // A block ending in a system instruction never loops on itself.
                    debug_assert_eq!(n as usize, block.ops.len());
                    self.st.clear_btype();
                    BlockEnd::Sync
                }
                Outcome::Ran(n) => BlockEnd::Ran(n),
                Outcome::Stale(n) => BlockEnd::Stale(n),
            },
        )
    }

    /// Fetches and runs the one instruction at the PC, at physical address `pa`, through the
    /// decoded-instruction cache; whether it was system-class. `Cpu::step` and batches
    /// outside the first RAM window.
    #[inline(never)]
    pub(super) fn step_at(&mut self, pa: u64) -> Result<bool, Stop> {
        let pc = self.st.pc;
        let Some(word) = self.bus.read(pa, 4) else {
            return Err(self.fetch_outside_ram(pc));
        };
        let word = word as u32;
        let (handler, aux, sync) = self.icache.lookup(pa, word);
        self.next_pc = pc.wrapping_add(4);
        handler(self, word, aux)?;
        self.st.pc = self.next_pc;
        self.st.clear_btype();
        self.insns += 1;
        Ok(sync)
    }
}
