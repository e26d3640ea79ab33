//! The Advanced SIMD instructions the JIT compiles inline (`jit_gen.rs`): which words they
//! are ([`classify`]); their host code is `jit_simd_emit.rs` (vector registers in
//! `CpuState::v`, Cranelift's vector types), the plain data-TLB path of their loads and
//! stores `jit_simd_mem.rs`.
//!
//! The forms: LDR/STR/LDUR/STUR (immediate, SIMD&FP; B, H, S, D, Q) exactly as `decode.rs`
//! routes them to `fast_mem::vector`, LD1R (no offset, post-index immediate or register),
//! the integer three-same ADD/SUB (any lane size), MUL/MLA/MLS (16- and 32-bit lanes: x86-64
//! has no byte multiply), AND/BIC/ORR/ORN/EOR/BSL/BIT/BIF, the vector immediates
//! (MOVI/MVNI/ORR/BIC/FMOV), DUP (element, general), INS (general), UMOV, SMOV,
//! SHL/SSHR/USHR/SSRA/USRA (immediate), NEG and NOT (vector), each with exactly the encodings the reference interpreter (`simd.rs`,
//! `simd_int.rs`, `simd_shift_imm.rs`, `simd_ldst.rs`) executes, so that a word it treats
//! as UNDEFINED is never compiled inline; loads and stores with an SP base stay with the
//! handlers (the SP alignment check). `jit_simd_tests.rs` runs random words of every form,
//! and their neighbours, through the JIT and the interpreter. Pure decoding: no code
//! generation here.

use super::fast_mem::{OFFSET, POST, PRE};

/// The lane-wise operations of [`Simd::Three`] (Arm ARM C4.1.95 "Advanced SIMD three same").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Vop {
    Add,
    Sub,
    Mul,
    Mla,
    Mls,
    And,
    Bic,
    Orr,
    Orn,
    Eor,
    Bsl,
    Bit,
    Bif,
}

/// The shifts by immediate of [`Simd::Shift`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sh {
    Shl,
    Ushr,
    Sshr,
    Usra,
    Ssra,
}

/// One inline Advanced SIMD instruction, its fields decoded.
#[derive(Clone, Copy, Debug)]
pub enum Simd {
    /// LDR/STR (immediate, SIMD&FP) of 2^`scale` bytes in `mode`, `off` the offset that
    /// `decode.rs` computed; Rn not SP.
    LdSt {
        load: bool,
        scale: u32,
        mode: u8,
        rt: u32,
        rn: u32,
        off: u64,
    },
    /// `LD1R {Vt.T}, [Xn]`: `post` None (no writeback), Some(31) (the element size), Some(m)
    /// (Xm); Rn not SP.
    Ld1r {
        q: bool,
        size: u32,
        rt: u32,
        rn: u32,
        post: Option<u32>,
    },
    Three {
        op: Vop,
        q: bool,
        esize: u32,
        rd: u32,
        rn: u32,
        rm: u32,
    },
    /// The vector immediates: Vd = `imm` (in each 64-bit half), or Vd ORR `imm` (`bic`
    /// false) or Vd AND NOT `imm` (`bic` true) when `logic`.
    Imm {
        q: bool,
        rd: u32,
        imm: u64,
        logic: bool,
        bic: bool,
    },
    /// DUP Vd.T, Wn/Xn.
    Dup {
        q: bool,
        esize: u32,
        rd: u32,
        rn: u32,
    },
    /// `DUP Vd.T, Vn.Ts[index]`.
    DupElem {
        q: bool,
        esize: u32,
        index: u32,
        rd: u32,
        rn: u32,
    },
    /// `INS Vd.Ts[index], Wn/Xn`.
    Ins {
        esize: u32,
        index: u32,
        rd: u32,
        rn: u32,
    },
    /// UMOV (`signed` false) or SMOV: `Wd/Xd, Vn.Ts[index]`; `wide`: SMOV to 64 bits.
    Mov {
        signed: bool,
        wide: bool,
        esize: u32,
        index: u32,
        rd: u32,
        rn: u32,
    },
    Shift {
        sh: Sh,
        q: bool,
        esize: u32,
        amount: u32,
        rd: u32,
        rn: u32,
    },
    /// NEG (`not` false) or NOT (vector).
    Neg {
        not: bool,
        q: bool,
        esize: u32,
        rd: u32,
        rn: u32,
    },
}

/// The inline form of `i` (operand `aux` from `decode.rs`), if it has one.
pub fn classify(i: u32, aux: u64) -> Option<Simd> {
    let q = (i >> 30) & 1 == 1;
    let u = (i >> 29) & 1 == 1;
    let size = (i >> 22) & 3;
    let (rd, rn, rm) = (i & 31, (i >> 5) & 31, (i >> 16) & 31);
    // LDR/STR (SIMD&FP): `decode::ldst_vector`'s encodings (bits 29:25 = 11110).
    if (i >> 25) & 31 == 0b11110 {
        return ldst(i, aux);
    }
    // LD1R: 0 Q 0011010 L=1 R=0 00000 110 S=0 size Rn Rt, post-index 0 Q 0011011 1 0 Rm ...
    // (Arm ARM C4.1.89 "Advanced SIMD load/store single structure (post-indexed)").
    if i & 0xbf60_f000 == 0x0d40_c000 {
        let post = (i >> 23) & 1 == 1;
        if (!post && rm != 0) || rn == 31 {
            return None;
        }
        let size = (i >> 10) & 3;
        return Some(Simd::Ld1r {
            q,
            size,
            rt: rd,
            rn,
            post: post.then_some(rm),
        });
    }
    let esize = 8 << size;
    // Three same (0 Q U 01110 size 1 Rm opcode 1 Rn Rd): `Cpu::simd_three_same`.
    if i & 0x9f20_0400 == 0x0e20_0400 {
        let op = match ((i >> 11) & 31, u, size) {
            (0b00011, false, 0) => Vop::And,
            (0b00011, false, 1) => Vop::Bic,
            (0b00011, false, 2) => Vop::Orr,
            (0b00011, false, _) => Vop::Orn,
            (0b00011, true, 0) => Vop::Eor,
            (0b00011, true, 1) => Vop::Bsl,
            (0b00011, true, 2) => Vop::Bit,
            (0b00011, true, _) => Vop::Bif,
            (0b10000, _, 3) if !q => return None,
            (0b10000, false, _) => Vop::Add,
            (0b10000, true, _) => Vop::Sub,
            // No byte lanes (no x86-64 instruction) nor 64-bit ones (unallocated); U = 1 of
            // MUL is PMUL.
            (0b10010 | 0b10011, _, 0 | 3) => return None,
            (0b10010, false, _) => Vop::Mla,
            (0b10010, true, _) => Vop::Mls,
            (0b10011, false, _) => Vop::Mul,
            _ => return None,
        };
        return Some(Simd::Three {
            op,
            q,
            esize,
            rd,
            rn,
            rm,
        });
    }
    // Modified immediate (0 Q op 0111100000 a b c cmode o2 1 d e f g h Rd): `simd_mod_imm`.
    if i & 0x9ff8_0400 == 0x0f00_0400 {
        let (op, cmode) = ((i >> 29) & 1, (i >> 12) & 15);
        if (op == 1 && cmode == 15 && !q) || (i >> 11) & 1 == 1 {
            return None;
        }
        let imm8 = ((i >> 16) & 7) << 5 | ((i >> 5) & 31);
        let imm = super::simd::simd_expand(op, cmode, imm8);
        let logic = cmode < 12 && cmode & 1 == 1;
        let imm = if !logic && op == 1 && cmode < 14 {
            !imm // MVNI
        } else {
            imm
        };
        return Some(Simd::Imm {
            q,
            rd,
            imm,
            logic,
            bic: op == 1,
        });
    }
    // Shift by immediate (0 Q U 011110 immh immb opcode 1 Rn Rd, immh != 0): the vector
    // forms of `simd_shift_imm`, no 64-bit lanes in a 64-bit vector.
    if i & 0x9f80_0400 == 0x0f00_0400 {
        let immh = (i >> 19) & 15;
        if immh == 0 {
            return None;
        }
        let esize = 8u32 << (31 - immh.leading_zeros());
        let immhb = (i >> 16) & 127;
        if esize == 64 && !q {
            return None;
        }
        let (sh, amount) = match ((i >> 11) & 31, u) {
            (0b00000, false) => (Sh::Sshr, 2 * esize - immhb),
            (0b00000, true) => (Sh::Ushr, 2 * esize - immhb),
            (0b00010, false) => (Sh::Ssra, 2 * esize - immhb),
            (0b00010, true) => (Sh::Usra, 2 * esize - immhb),
            (0b01010, false) => (Sh::Shl, immhb - esize),
            _ => return None,
        };
        return Some(Simd::Shift {
            sh,
            q,
            esize,
            amount,
            rd,
            rn,
        });
    }
    // Copy (0 Q op 01110000 imm5 0 imm4 1 Rn Rd): DUP (element, general), INS (general),
    // SMOV, UMOV, with `simd_copy`'s checks; INS (element) stays with the handler.
    if i & 0x9fe0_8400 == 0x0e00_0400 {
        let imm5 = (i >> 16) & 31;
        let lsb = imm5.trailing_zeros();
        if lsb > 3 || u {
            return None;
        }
        let (esize, index) = (8 << lsb, imm5 >> (lsb + 1));
        return match (i >> 11) & 15 {
            0 if lsb < 3 || q => Some(Simd::DupElem {
                q,
                esize,
                index,
                rd,
                rn,
            }),
            1 if lsb < 3 || q => Some(Simd::Dup { q, esize, rd, rn }),
            3 if q => Some(Simd::Ins {
                esize,
                index,
                rd,
                rn,
            }),
            5 if lsb < 2 || (lsb == 2 && q) => Some(Simd::Mov {
                signed: true,
                wide: q,
                esize,
                index,
                rd,
                rn,
            }),
            7 if (lsb == 3) == q => Some(Simd::Mov {
                signed: false,
                wide: q,
                esize,
                index,
                rd,
                rn,
            }),
            _ => None,
        };
    }
    // NEG (vector): 0 Q 1 01110 size 10000 01011 10 Rn Rd; NOT: 0 Q 1 01110 00 10000 00101
    // 10 Rn Rd (`simd_two_misc`).
    if i & 0xbf3f_fc00 == 0x2e20_b800 && (size < 3 || q) {
        return Some(Simd::Neg {
            not: false,
            q,
            esize,
            rd,
            rn,
        });
    }
    if i & 0xbfff_fc00 == 0x2e20_5800 {
        return Some(Simd::Neg {
            not: true,
            q,
            esize: 8,
            rd,
            rn,
        });
    }
    None
}

/// LDR/STR/LDUR/STUR (immediate, SIMD&FP) as `decode::ldst_vector` routes them, Rn not SP.
fn ldst(i: u32, off: u64) -> Option<Simd> {
    let (size, opc) = (i >> 30, (i >> 22) & 3);
    let scale = match (size, opc >> 1) {
        (_, 0) => size,
        (0, _) => 4,
        _ => return None,
    };
    let mode = if (i >> 24) & 3 == 1 {
        OFFSET
    } else if (i >> 24) & 3 != 0 || (i >> 21) & 1 != 0 {
        return None;
    } else {
        match (i >> 10) & 3 {
            0 => OFFSET,
            1 => POST,
            3 => PRE,
            _ => return None,
        }
    };
    let rn = (i >> 5) & 31;
    if rn == 31 {
        return None; // SP: its alignment check stays with the handler
    }
    Some(Simd::LdSt {
        load: opc & 1 == 1,
        scale,
        mode,
        rt: i & 31,
        rn,
        off,
    })
}

#[cfg(test)]
#[path = "jit_simd_tests.rs"]
mod tests;
