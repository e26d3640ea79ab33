//! Pre-decoded basic blocks for instruction batches (`batch.rs`).
//!
//! Owns [`BlockCache`]: a direct-mapped table, indexed by the physical address of a block's
//! first instruction, of straight-line runs of decoded instructions ([`Op`]: handler,
//! pre-computed operand, raw word). A block starts wherever a batch fetches an instruction
//! that no cached block starts at, and ends after a branch or a system-class instruction
//! (`decode.rs`: `Decoded::ends_block`), at the end of its 4 KiB page, or after [`MAX_OPS`]
//! instructions, so every instruction of a block but the last falls through to the next
//! one, and the whole block lies in one code page whose translation the batch already holds.
//!
//! Nothing is ever invalidated from outside: the batch compares each op's raw word with the
//! word it reads from guest RAM just before running the op (`Cpu::run_block`), as the
//! single-instruction path does with `decode::DecodeCache`. So a word changed by the guest
//! itself (even a later instruction of the running block), by another vCPU or by the VMM (a
//! software breakpoint, a gdb memory write, `debug::guest_ram`) is seen at its very next
//! fetch, with no write tracking on any write path. A mismatch drops the block; the batch
//! then builds a new one from the changed instruction on.
//!
//! Decoding depends on the words alone (every state-dependent check stays in the handlers),
//! so a block is a pure memoisation: no translation regime, EL or ASID in the tag. The table
//! is allocated on a vCPU's first batch; nothing is allocated per block or per instruction.
//! Knows nothing about translation, exits or threads.

use std::sync::atomic::{AtomicU32, Ordering};

use super::decode::{decode, Handler};
use super::jit::Jit;
use super::ram::Ram;

/// Most instructions in one block (a longer straight run continues in the next block).
pub const MAX_OPS: usize = 16;

/// Number of blocks (a power of two). A conflict costs a rebuild (and the JIT's run count
/// of the evicted block), never a wrong result. Debian's arm64 kernel booting to a busybox
/// `/init` (893 M instructions) built 7.0 M blocks with 2,048 entries, 1.85 M with 16,384
/// and 0.34 M with 65,536 (docs/benchmarks.md); a row of [`MAX_OPS`] ops takes 384 bytes,
/// so the table takes 12 MiB per vCPU (allocated on its first batch).
pub const BLOCKS: usize = 32768;

/// One decoded instruction of a block.
#[derive(Clone, Copy)]
pub struct Op {
    pub handler: Handler,
    pub aux: u64,
    /// The word it was decoded from, compared with RAM before every run of the op.
    pub word: u32,
}

/// One block: where it starts and how many of its ops are valid.
#[derive(Clone, Copy)]
struct Tag {
    /// Physical address of the first instruction; `u64::MAX` (never 4-byte aligned): empty.
    pa: u64,
    len: u8,
    /// The last op is a system-class instruction: a batch ends after it (`batch.rs`).
    sync: bool,
}

const EMPTY: Tag = Tag {
    pa: u64::MAX,
    len: 0,
    sync: false,
};

/// A built block, borrowed from the cache for one run.
pub struct Block<'a> {
    pub ops: &'a [Op],
    /// The words in RAM from the block's first instruction to the end of its page: op `k`
    /// runs only while `words[k]` still holds its word.
    pub words: &'a [AtomicU32],
    /// Its last op is a system-class instruction (see `Tag::sync`).
    pub sync: bool,
    /// Its index in the cache, for [`Table::drop_block`].
    pub index: usize,
}

/// The per-vCPU block cache (see the module docs): RAM, where blocks are decoded from and
/// re-validated against, the table of blocks, and the JIT tier's state for them (`jit.rs`;
/// None: the JIT is off). Separate fields, so that a batch can hold the words of its code
/// page (`Ram::code_words`) while it looks blocks up.
pub struct BlockCache {
    pub ram: Ram,
    pub table: Table,
    pub jit: Option<Box<Jit>>,
}

impl BlockCache {
    pub fn new(ram: Ram, jit: bool) -> Self {
        BlockCache {
            jit: jit.then(|| Box::new(Jit::new(ram.data_window(), ram.dirty().clone()))),
            ram,
            table: Table::new(),
        }
    }
}

/// The direct-mapped table of blocks.
pub struct Table {
    tags: Box<[Tag; BLOCKS]>,
    ops: Box<[[Op; MAX_OPS]; BLOCKS]>,
    /// Blocks built so far (tests, statistics).
    builds: u64,
}

impl Table {
    fn new() -> Self {
        let filler = decode(0);
        let op = Op {
            handler: filler.handler,
            aux: filler.aux,
            word: 0,
        };
        Table {
            tags: Box::new([EMPTY; BLOCKS]),
            ops: vec![[op; MAX_OPS]; BLOCKS]
                .into_boxed_slice()
                .try_into()
                .unwrap_or_else(|_| unreachable!("BLOCKS rows were allocated")),
            builds: 0,
        }
    }

    /// The block starting at physical address `pa` (4-byte aligned), whose words from there
    /// to the end of its page are `words` (at least one), built from them if no cached block
    /// starts there.
    #[inline(always)]
    pub fn get<'a>(&'a mut self, pa: u64, words: &'a [AtomicU32]) -> Block<'a> {
        let index = index_of(pa);
        if self.tags[index].pa != pa {
            build(&mut self.tags[index], &mut self.ops[index], pa, words);
            self.builds += 1;
        }
        let tag = self.tags[index];
        Block {
            ops: &self.ops[index][..tag.len as usize],
            words,
            sync: tag.sync,
            index,
        }
    }

    /// Forgets block `index` (one of its words changed in RAM).
    pub fn drop_block(&mut self, index: usize) {
        self.tags[index] = EMPTY;
    }

    /// How many blocks have been built since the vCPU was created (tests, statistics).
    pub fn builds(&self) -> u64 {
        self.builds
    }
}

/// The table index of a block starting at physical address `pa` (direct-mapped).
#[inline(always)]
pub fn index_of(pa: u64) -> usize {
    (pa >> 2) as usize & (BLOCKS - 1)
}

/// Decodes the block starting at `pa`, whose words from there to the end of the page are
/// `words`, into `tag` and `row` (an empty block if `words` is).
#[cold]
#[inline(never)]
fn build(tag: &mut Tag, row: &mut [Op; MAX_OPS], pa: u64, words: &[AtomicU32]) {
    let mut len = 0;
    let mut sync = false;
    for w in words.iter().take(MAX_OPS) {
        let word = w.load(Ordering::Relaxed);
        let d = decode(word);
        row[len] = Op {
            handler: d.handler,
            aux: d.aux,
            word,
        };
        len += 1;
        if d.ends_block() {
            sync = d.sync;
            break;
        }
    }
    *tag = Tag {
        pa,
        len: len as u8,
        sync,
    };
}

#[cfg(test)]
#[path = "block_tests.rs"]
mod tests;
