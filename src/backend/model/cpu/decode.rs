//! Decode once per instruction word: the decoded-instruction cache and the decoder that fills
//! it.
//!
//! Owns [`DecodeCache`], a direct-mapped table indexed by the instruction's physical address,
//! and [`decode`], which turns a word into a handler plus one pre-computed operand (a branch
//! offset, an immediate, a logical-immediate or bitfield mask). Each entry also keeps the raw
//! word it was decoded from, and every fetch of `Cpu::step` compares it with the word just
//! read from guest RAM: a word changed by the guest (self-modifying code), by another vCPU or
//! by the VMM (a BRK planted through the shared `GuestMemoryMmap`) never matches a stale
//! entry, so it is decoded afresh at once, and nothing has to be invalidated. Decoding depends
//! on the word alone (every state-dependent check is in the handlers), so the cache is a pure
//! memoisation and needs no tags or flushes. Batches use the same [`decode`] for their
//! pre-decoded blocks (`block.rs`), which keep the words the same way.
//!
//! Coverage: the integer forms compilers emit most (add/sub, logical, move wide, ADR/ADRP,
//! bitfield, shifted-register ALU, multiply-add, conditional select, every branch but ERET,
//! general-register loads and stores with immediate, register and pre/post-index
//! addressing, the Advanced SIMD integer ADD/SUB/MUL/MLA/MLS vectors) get their own handlers
//! (`fast.rs`, `fast_mem.rs`, `fast_simd.rs`); general-register pairs go
//! straight to their reference implementation; every other word, and every reserved or
//! UNDEFINED variant of the covered groups, gets the reference interpreter (`Cpu::exec`),
//! so a fast handler never has to reproduce an encoding check. The table is allocated once
//! per vCPU, on its first instruction; nothing is allocated per instruction.

use super::alu::decode_bit_masks;
use super::branch::sext;
use super::debug::kvm_traps_sysreg;
use super::{fast, fast_mem, fast_simd, Cpu, Stop};
use crate::a64::SysReg;

/// An instruction handler: the CPU, the instruction word and its pre-computed operand.
pub type Handler = fn(&mut Cpu, u32, u64) -> Result<(), Stop>;

/// Number of entries (a power of two): 16 KiB of code map without conflicts; a conflict
/// costs a re-decode, never a wrong result.
const ENTRIES: usize = 4096;

/// One decoded instruction.
#[derive(Clone, Copy)]
pub struct Decoded {
    pub word: u32,
    /// A system-class word (MSR, SYS/TLBI, ERET, ISB, WFI/WFE, exception generation, MRS of
    /// trapped or GIC registers; not the words of [`in_line`]): it may change the
    /// translation regime, the EL, PSTATE.DAIF or `Cpu::emulated`, so a batch of
    /// instructions (`batch.rs`) ends after it.
    pub sync: bool,
    pub handler: Handler,
    pub aux: u64,
}

impl Decoded {
    /// Whether a pre-decoded block (`block.rs`) ends after this word: every word of the
    /// branch, exception-generation and system group (Arm ARM C4.1.87; op0 = 101x), the only
    /// words whose handlers may set `Cpu::next_pc` to anything but the next instruction,
    /// except the system words that go on like data processing ([`in_line`]).
    pub fn ends_block(&self) -> bool {
        (self.word >> 26) & 7 == 0b101 && !in_line(self.word)
    }
}

/// The per-vCPU decoded-instruction cache (allocated on first use).
#[derive(Default)]
pub struct DecodeCache {
    entries: Vec<Decoded>,
    /// Words decoded so far (misses), for tests and statistics.
    decodes: u64,
}

impl DecodeCache {
    /// The handler, operand and sync flag (see `Decoded`) for `word`, fetched from physical
    /// address `pa`.
    #[inline(always)]
    pub fn lookup(&mut self, pa: u64, word: u32) -> (Handler, u64, bool) {
        let idx = (pa >> 2) as usize & (ENTRIES - 1);
        match self.entries.get(idx) {
            Some(e) if e.word == word => (e.handler, e.aux, e.sync),
            _ => self.fill(idx, word),
        }
    }

    #[cold]
    #[inline(never)]
    fn fill(&mut self, idx: usize, word: u32) -> (Handler, u64, bool) {
        if self.entries.len() != ENTRIES {
            // Every entry starts as the decoding of word 0, so no entry is ever invalid.
            self.entries = vec![decode(0); ENTRIES];
        }
        self.decodes += 1;
        let d = decode(word);
        self.entries[idx] = d;
        (d.handler, d.aux, d.sync)
    }

    /// How many words have been decoded (cache misses) since the vCPU was created.
    #[cfg(test)]
    pub fn decodes(&self) -> u64 {
        self.decodes
    }
}

/// System words that neither end a block nor a batch: they change nothing a batch keeps
/// (translation regime, EL, PSTATE.DAIF, `Cpu::emulated`, the GIC) and never branch
/// (Arm ARM C5.2-C5.3):
/// - the hints this CPU executes as NOP (it has neither FEAT_PAuth nor FEAT_BTI, so the PAC
///   and BTI hints are NOPs too: `Cpu::hint`), all but YIELD, WFE, WFI, SEV and SEVL
///   (CRm = 0, op2 = 1-5), which end batches so that the run loop looks at events;
/// - DMB and DSB (no-ops in the model; ISB ends batches: it is the context synchronization
///   the JIT's view of code written by other vCPUs relies on, `jit.rs`);
/// - MRS of an op0 = 3 register that KVM does not trap (`debug::kvm_traps_sysreg`, which
///   sets `Cpu::emulated`) outside CRn = 12 (the GIC's CPU interface and ISR_EL1);
/// - the data-cache operations by VA (DC ZVA, which zeroes a block like a store, and DC
///   CVAC/CVAU/CVAP/CIVAC, no-ops on the model's cacheless memory once translated).
///
/// In the Linux kernel these are PACIASP/AUTIASP in every function prologue and epilogue,
/// BTI, the NOPs of ftrace and alternatives, barriers, and reads of SP_EL0 (`current`) and
/// TPIDR_EL1 (per-CPU data), and `clear_page`'s DC ZVA loop: as batch ends they cut its
/// batches to about 30 instructions (docs/benchmarks.md).
pub fn in_line(i: u32) -> bool {
    const HINT: (u32, u32) = (0xffff_f01f, 0xd503_201f);
    const DSB_DMB: (u32, u32) = (0xffff_f0df, 0xd503_309f);
    const MRS: (u32, u32) = (0xfff0_0000, 0xd530_0000);
    // SYS #3, C7, Cm, #1, Xt: DC ZVA (Cm = 4), CVAC (10), CVAU (11), CVAP (12), CIVAC (14).
    const DC_VA: (u32, u32) = (0xffff_f0e0, 0xd50b_7020);
    if i & DC_VA.0 == DC_VA.1 {
        return matches!((i >> 8) & 15, 4 | 10 | 11 | 12 | 14);
    }
    if i & HINT.0 == HINT.1 {
        let (crm, op2) = ((i >> 8) & 15, (i >> 5) & 7);
        return !(crm == 0 && (1..=5).contains(&op2));
    }
    if i & DSB_DMB.0 == DSB_DMB.1 {
        return true;
    }
    if i & MRS.0 == MRS.1 && (i >> 19) & 3 == 3 {
        let reg = SysReg::new(
            3,
            ((i >> 16) & 7) as u8,
            ((i >> 12) & 15) as u8,
            ((i >> 8) & 15) as u8,
            ((i >> 5) & 7) as u8,
        );
        return reg.crn() != 12 && !kvm_traps_sysreg(reg);
    }
    false
}

/// The hints and barriers of [`in_line`]: nothing to do.
fn nop(_: &mut Cpu, _: u32, _: u64) -> Result<(), Stop> {
    Ok(())
}

/// The reference interpreter: full decode and execute of any word.
fn generic(c: &mut Cpu, i: u32, _: u64) -> Result<(), Stop> {
    c.exec(i)
}

const GENERIC: (Handler, u64) = (generic, 0);

/// Decodes `i` (Arm ARM C4.1 "A64 instruction set encoding", op0 = bits 28:25).
pub fn decode(i: u32) -> Decoded {
    let mut sync = false;
    let (handler, aux) = match (i >> 25) & 0xf {
        0b1000 | 0b1001 => dp_imm(i),
        0b1010 | 0b1011 => branch(i).unwrap_or_else(|| {
            if !in_line(i) {
                sync = true;
                GENERIC
            } else if (i >> 21) & 1 == 1 || (i >> 19) & 3 == 1 {
                GENERIC // MRS, DC
            } else {
                (nop, 0)
            }
        }),
        0b0100 | 0b0110 | 0b1100 | 0b1110 => ldst(i),
        0b0101 | 0b1101 => dp_reg(i),
        0b0111 => simd(i),
        _ => GENERIC,
    };
    Decoded {
        word: i,
        sync,
        handler,
        aux,
    }
}

/// Picks `$m::$f::<SF, A, B>` from three runtime bits (sf, a, b).
macro_rules! pick3 {
    ($m:ident :: $f:ident, $sf:expr, $a:expr, $b:expr) => {
        match ($sf, $a, $b) {
            (false, false, false) => $m::$f::<false, false, false> as Handler,
            (false, false, true) => $m::$f::<false, false, true>,
            (false, true, false) => $m::$f::<false, true, false>,
            (false, true, true) => $m::$f::<false, true, true>,
            (true, false, false) => $m::$f::<true, false, false>,
            (true, false, true) => $m::$f::<true, false, true>,
            (true, true, false) => $m::$f::<true, true, false>,
            (true, true, true) => $m::$f::<true, true, true>,
        }
    };
}

/// Data Processing -- Immediate (Arm ARM C4.1.86).
fn dp_imm(i: u32) -> (Handler, u64) {
    let sf = i >> 31 == 1;
    let (b30, b29) = ((i >> 30) & 1 == 1, (i >> 29) & 1 == 1);
    match (i >> 23) & 7 {
        0 | 1 => {
            let imm = sext((((i >> 5) & 0x7ffff) << 2 | (i >> 29) & 3) as u64, 21);
            if sf {
                (fast::adrp, imm << 12)
            } else {
                (fast::adr, imm)
            }
        }
        2 => {
            let imm = ((i >> 10) & 0xfff) as u64;
            let imm = if (i >> 22) & 1 == 1 { imm << 12 } else { imm };
            (pick3!(fast::add_sub_imm, sf, b30, b29), imm)
        }
        4 => {
            let n = (i >> 22) & 1;
            if !sf && n == 1 {
                return GENERIC;
            }
            match decode_bit_masks(n, (i >> 10) & 63, (i >> 16) & 63, sf, true) {
                Some(mask) => (pick3!(fast::logical_imm, sf, b30, b29), mask),
                None => GENERIC,
            }
        }
        5 => {
            let opc = (i >> 29) & 3;
            let hw = (i >> 21) & 3;
            if opc == 1 || (!sf && hw > 1) {
                return GENERIC;
            }
            let imm = (((i >> 5) & 0xffff) as u64) << (hw * 16);
            match opc {
                0 if sf => (fast::mov_const, !imm),
                0 => (fast::mov_const, !imm & 0xffff_ffff),
                2 => (fast::mov_const, imm),
                _ if sf => (fast::movk::<true>, imm),
                _ => (fast::movk::<false>, imm),
            }
        }
        6 => {
            let opc = (i >> 29) & 3;
            let n = (i >> 22) & 1;
            let (immr, imms) = ((i >> 16) & 63, (i >> 10) & 63);
            if opc == 3 || n != sf as u32 || (!sf && (immr > 31 || imms > 31)) {
                return GENERIC;
            }
            match decode_bit_masks(n, imms, immr, sf, false) {
                Some(wmask) => (fast::bitfield, wmask),
                None => GENERIC,
            }
        }
        _ => GENERIC,
    }
}

/// Branches (Arm ARM C4.1.87); None for exception generation, system instructions and every
/// other word of the group, which go to the reference interpreter.
fn branch(i: u32) -> Option<(Handler, u64)> {
    if (i >> 26) & 0x1f == 0b00101 {
        let off = sext((i & 0x03ff_ffff) as u64, 26) << 2;
        return Some(if i >> 31 == 1 {
            (fast::bl, off)
        } else {
            (fast::b, off)
        });
    }
    let off19 = sext(((i >> 5) & 0x7ffff) as u64, 19) << 2;
    let nz = (i >> 24) & 1 == 1;
    match (i >> 25) & 0x3f {
        0b011010 => {
            let h = match (i >> 31 == 1, nz) {
                (false, false) => fast::cbz::<false, false> as Handler,
                (false, true) => fast::cbz::<false, true>,
                (true, false) => fast::cbz::<true, false>,
                (true, true) => fast::cbz::<true, true>,
            };
            return Some((h, off19));
        }
        0b011011 => {
            let off14 = sext(((i >> 5) & 0x3fff) as u64, 14) << 2;
            let h = if nz {
                fast::tbz::<true> as Handler
            } else {
                fast::tbz::<false>
            };
            return Some((h, off14));
        }
        _ => {}
    }
    if i >> 24 == 0x54 && (i >> 4) & 1 == 0 {
        return Some((fast::b_cond, off19));
    }
    if i >> 25 == 0b110_1011 && (i >> 16) & 31 == 31 && (i >> 10) & 63 == 0 && i & 31 == 0 {
        return match (i >> 21) & 15 {
            0 | 2 => Some((fast::br, 0)),
            1 => Some((fast::blr, 0)),
            _ => None,
        };
    }
    None
}

/// Loads and stores (Arm ARM C4.1.89): general registers, single and pair.
fn ldst(i: u32) -> (Handler, u64) {
    if (i >> 26) & 1 == 1 {
        return ldst_vector(i);
    }
    match (i >> 27) & 7 {
        0b101 => (fast_mem::pair, 0),
        0b111 => {
            let (size, opc) = (i >> 30, (i >> 22) & 3);
            let load = match (size, opc) {
                (_, 0) => false,
                (_, 1) | (0..=2, 2) | (0 | 1, 3) => true,
                _ => return GENERIC, // PRFM, UNDEFINED
            };
            macro_rules! mode {
                ($m:expr) => {
                    match (load, size) {
                        (true, 0) => fast_mem::load::<{ $m }, 0> as Handler,
                        (true, 1) => fast_mem::load::<{ $m }, 1>,
                        (true, 2) => fast_mem::load::<{ $m }, 2>,
                        (true, _) => fast_mem::load::<{ $m }, 3>,
                        (false, 0) => fast_mem::store::<{ $m }, 0>,
                        (false, 1) => fast_mem::store::<{ $m }, 1>,
                        (false, 2) => fast_mem::store::<{ $m }, 2>,
                        (false, _) => fast_mem::store::<{ $m }, 3>,
                    }
                };
            }
            if (i >> 24) & 3 == 1 {
                let off = ((i >> 10) & 0xfff) as u64;
                return (mode!(fast_mem::OFFSET), off << size);
            }
            if (i >> 24) & 3 != 0 {
                return GENERIC;
            }
            let imm9 = sext(((i >> 12) & 0x1ff) as u64, 9);
            match ((i >> 21) & 1, (i >> 10) & 3) {
                (0, 0) => (mode!(fast_mem::OFFSET), imm9),
                (0, 1) => (mode!(fast_mem::POST), imm9),
                (0, 3) => (mode!(fast_mem::PRE), imm9),
                (1, 2) if (i >> 13) & 2 != 0 => {
                    (mode!(fast_mem::REGISTER), fast_mem::reg_offset_aux(i))
                }
                _ => GENERIC,
            }
        }
        _ => GENERIC,
    }
}

/// SIMD&FP loads and stores: LDR/STR/LDUR/STUR (immediate) of B, H, S, D, Q registers with an
/// unsigned, unscaled, pre- or post-index offset (Arm ARM C4.1.89 "Load/store register"; V
/// = 1). Every other form (pairs, structures, register offset, literal, the unallocated
/// sizes) goes to the reference interpreter.
fn ldst_vector(i: u32) -> (Handler, u64) {
    if (i >> 27) & 7 != 0b111 {
        return GENERIC;
    }
    let (size, opc) = (i >> 30, (i >> 22) & 3);
    let scale = match (size, opc >> 1) {
        (_, 0) => size,
        (0, _) => 4,
        _ => return GENERIC,
    };
    let load = opc & 1 == 1;
    macro_rules! pick {
        ($m:expr) => {
            match (load, scale) {
                (true, 0) => fast_mem::vector::<true, { $m }, 0> as Handler,
                (true, 1) => fast_mem::vector::<true, { $m }, 1>,
                (true, 2) => fast_mem::vector::<true, { $m }, 2>,
                (true, 3) => fast_mem::vector::<true, { $m }, 3>,
                (true, _) => fast_mem::vector::<true, { $m }, 4>,
                (false, 0) => fast_mem::vector::<false, { $m }, 0>,
                (false, 1) => fast_mem::vector::<false, { $m }, 1>,
                (false, 2) => fast_mem::vector::<false, { $m }, 2>,
                (false, 3) => fast_mem::vector::<false, { $m }, 3>,
                (false, _) => fast_mem::vector::<false, { $m }, 4>,
            }
        };
    }
    if (i >> 24) & 3 == 1 {
        let off = ((i >> 10) & 0xfff) as u64;
        return (pick!(fast_mem::OFFSET), off << scale);
    }
    if (i >> 24) & 3 != 0 || (i >> 21) & 1 != 0 {
        return GENERIC;
    }
    let imm9 = sext(((i >> 12) & 0x1ff) as u64, 9);
    match (i >> 10) & 3 {
        0 => (pick!(fast_mem::OFFSET), imm9),
        1 => (pick!(fast_mem::POST), imm9),
        3 => (pick!(fast_mem::PRE), imm9),
        _ => GENERIC,
    }
}

/// Data Processing -- Register (Arm ARM C4.1.88).
fn dp_reg(i: u32) -> (Handler, u64) {
    let sf = i >> 31 == 1;
    let (b30, b29) = ((i >> 30) & 1 == 1, (i >> 29) & 1 == 1);
    if (i >> 28) & 1 == 0 {
        let amount = (i >> 10) & 63;
        if (i >> 24) & 1 == 0 {
            if !sf && amount > 31 {
                return GENERIC;
            }
            // ORR Rd, ZR, Rm with no shift: MOV (register).
            if (i >> 29) & 3 == 1 && (i >> 21) & 1 == 0 && amount == 0 && (i >> 5) & 31 == 31 {
                return if sf {
                    (fast::mov_reg::<true>, 0)
                } else {
                    (fast::mov_reg::<false>, 0)
                };
            }
            return (pick3!(fast::logical_reg, sf, b30, b29), 0);
        }
        if (i >> 21) & 1 == 0 {
            if (i >> 22) & 3 == 3 || (!sf && amount > 31) {
                return GENERIC;
            }
            return (pick3!(fast::add_sub_reg, sf, b30, b29), 0);
        }
        if (i >> 10) & 7 > 4 || (i >> 22) & 3 != 0 {
            return GENERIC;
        }
        return (fast::add_sub_ext, 0);
    }
    match (i >> 21) & 15 {
        4 if (i >> 29) & 1 == 0 && (i >> 11) & 1 == 0 => (fast::cond_select, 0),
        8 if (i >> 29) & 3 == 0 => {
            if sf {
                (fast::madd::<true>, 0)
            } else {
                (fast::madd::<false>, 0)
            }
        }
        _ => GENERIC,
    }
}

/// Advanced SIMD (Arm ARM C4.1.90, op0 = 0111): the integer three-same arithmetic of
/// vectorised loops (C4.1.95 "Advanced SIMD three same": 0 Q U 01110 size 1 Rm opcode 1 Rn
/// Rd) for the encodings that are allocated; everything else to the reference.
fn simd(i: u32) -> (Handler, u64) {
    if i & 0x9f20_0400 != 0x0e20_0400 {
        return GENERIC;
    }
    let (q, u, size) = ((i >> 30) & 1 == 1, (i >> 29) & 1 == 1, (i >> 22) & 3);
    let aux = fast_simd::aux(8 << size, q);
    let h: Handler = match ((i >> 11) & 31, u) {
        (0b10000, _) if size == 3 && !q => return GENERIC,
        (0b10000, false) => fast_simd::three_same::<{ fast_simd::ADD }>,
        (0b10000, true) => fast_simd::three_same::<{ fast_simd::SUB }>,
        (0b10010 | 0b10011, _) if size == 3 => return GENERIC,
        (0b10010, false) => fast_simd::three_same::<{ fast_simd::MLA }>,
        (0b10010, true) => fast_simd::three_same::<{ fast_simd::MLS }>,
        (0b10011, false) => fast_simd::three_same::<{ fast_simd::MUL }>,
        _ => return GENERIC,
    };
    (h, aux)
}

#[cfg(test)]
#[path = "decode_tests.rs"]
pub(super) mod tests;
