//! The instructions the JIT compiles inline (`jit_gen.rs`): which words they are
//! ([`classify`]); their host code is `jit_emit.rs`.
//!
//! The forms are the integer data processing and branches of `fast.rs`, with exactly the
//! encodings `decode.rs` routes to those handlers (the same reserved-encoding checks, so a
//! word the interpreter treats as UNDEFINED is never compiled inline): add/sub (immediate,
//! shifted register) with and without flags, logical (immediate, shifted register), move
//! wide, ADR/ADRP, bitfield moves, conditional select, multiply-add, B, BL, B.cond,
//! CBZ/CBNZ, TBZ/TBNZ, BR, BLR, RET. Forms that read or write the stack pointer (whose bank
//! depends on PSTATE) are left to the handlers. The JIT's differential tests
//! (`jit_tests.rs`) run random words of these groups through both. Pure decoding: no code
//! generation here. The Advanced SIMD forms compiled inline are `jit_simd.rs`'s, the
//! general-register loads and stores `jit_ldst.rs`'s.

use super::alu::decode_bit_masks;
use super::branch::sext;

/// One inline instruction, its fields decoded.
#[derive(Clone, Copy, Debug)]
pub enum Inline {
    /// ADR (`page` false) or ADRP: Xd = PC (page) + imm.
    Adr {
        rd: u32,
        imm: u64,
        page: bool,
    },
    /// ADD/SUB/ADDS/SUBS (immediate), Rn and Rd not SP.
    AddSubImm {
        sf: bool,
        sub: bool,
        s: bool,
        rd: u32,
        rn: u32,
        imm: u64,
    },
    /// ADD/SUB/ADDS/SUBS (shifted register).
    AddSubReg {
        sf: bool,
        sub: bool,
        s: bool,
        ty: u32,
        amount: u32,
        rd: u32,
        rn: u32,
        rm: u32,
    },
    /// AND/ORR/EOR/ANDS (immediate; opc 0-3), Rd not SP unless ANDS.
    LogicImm {
        sf: bool,
        opc: u32,
        rd: u32,
        rn: u32,
        mask: u64,
    },
    /// AND/BIC/ORR/ORN/EOR/EON/ANDS/BICS (shifted register).
    LogicReg {
        sf: bool,
        opc: u32,
        not: bool,
        ty: u32,
        amount: u32,
        rd: u32,
        rn: u32,
        rm: u32,
    },
    /// MOVZ/MOVN (the value), MOVK (`keep`: insert imm at `pos`).
    Mov {
        sf: bool,
        rd: u32,
        imm: u64,
        keep: Option<u32>,
    },
    /// SBFM/BFM/UBFM (opc 0-2).
    Bitfield {
        sf: bool,
        opc: u32,
        rd: u32,
        rn: u32,
        immr: u32,
        imms: u32,
        wmask: u64,
    },
    /// CSEL/CSINC/CSINV/CSNEG.
    CondSel {
        sf: bool,
        op: u32,
        o2: u32,
        cond: u32,
        rd: u32,
        rn: u32,
        rm: u32,
    },
    /// MADD/MSUB.
    Madd {
        sf: bool,
        sub: bool,
        rd: u32,
        rn: u32,
        rm: u32,
        ra: u32,
    },
    Branch(Br),
}

/// The branches (always the last op of a block).
#[derive(Clone, Copy, Debug)]
pub enum Br {
    B {
        off: u64,
        link: bool,
    },
    Cond {
        cond: u32,
        off: u64,
    },
    Cbz {
        sf: bool,
        nz: bool,
        rt: u32,
        off: u64,
    },
    Tbz {
        nz: bool,
        rt: u32,
        bit: u32,
        off: u64,
    },
    Reg {
        rn: u32,
        link: bool,
    },
}

/// The inline form of `i` (decoded operand `aux` from `decode.rs`), if it has one.
pub fn classify(i: u32, aux: u64) -> Option<Inline> {
    match (i >> 25) & 0xf {
        0b1000 | 0b1001 => dp_imm(i, aux),
        0b1010 | 0b1011 => branch(i).map(Inline::Branch),
        0b0101 | 0b1101 => dp_reg(i),
        _ => None,
    }
}

fn fields(i: u32) -> (bool, u32, u32) {
    (i >> 31 == 1, i & 31, (i >> 5) & 31)
}

/// Data Processing -- Immediate (Arm ARM C4.1.86), as `decode::dp_imm`.
fn dp_imm(i: u32, aux: u64) -> Option<Inline> {
    let (sf, rd, rn) = fields(i);
    match (i >> 23) & 7 {
        0 | 1 => Some(Inline::Adr {
            rd,
            imm: aux,
            page: sf,
        }),
        2 => {
            let s = (i >> 29) & 1 == 1;
            if rn == 31 || (!s && rd == 31) {
                return None; // SP
            }
            let sub = (i >> 30) & 1 == 1;
            Some(Inline::AddSubImm {
                sf,
                sub,
                s,
                rd,
                rn,
                imm: aux,
            })
        }
        4 => {
            let n = (i >> 22) & 1;
            let opc = (i >> 29) & 3;
            if (!sf && n == 1) || (rd == 31 && opc != 3) {
                return None;
            }
            let mask = decode_bit_masks(n, (i >> 10) & 63, (i >> 16) & 63, sf, true)?;
            Some(Inline::LogicImm {
                sf,
                opc,
                rd,
                rn,
                mask,
            })
        }
        5 => {
            let (opc, hw) = ((i >> 29) & 3, (i >> 21) & 3);
            if opc == 1 || (!sf && hw > 1) {
                return None;
            }
            let keep = (opc == 3).then_some(hw * 16);
            Some(Inline::Mov {
                sf,
                rd,
                imm: aux,
                keep,
            })
        }
        6 => {
            let (opc, n) = ((i >> 29) & 3, (i >> 22) & 1);
            let (immr, imms) = ((i >> 16) & 63, (i >> 10) & 63);
            if opc == 3 || n != sf as u32 || (!sf && (immr > 31 || imms > 31)) {
                return None;
            }
            let wmask = decode_bit_masks(n, imms, immr, sf, false)?;
            Some(Inline::Bitfield {
                sf,
                opc,
                rd,
                rn,
                immr,
                imms,
                wmask,
            })
        }
        _ => None,
    }
}

/// Branches (Arm ARM C4.1.87), as `decode::branch`.
fn branch(i: u32) -> Option<Br> {
    if (i >> 26) & 0x1f == 0b00101 {
        let off = sext((i & 0x03ff_ffff) as u64, 26) << 2;
        return Some(Br::B {
            off,
            link: i >> 31 == 1,
        });
    }
    let off19 = sext(((i >> 5) & 0x7ffff) as u64, 19) << 2;
    let nz = (i >> 24) & 1 == 1;
    match (i >> 25) & 0x3f {
        0b011010 => {
            return Some(Br::Cbz {
                sf: i >> 31 == 1,
                nz,
                rt: i & 31,
                off: off19,
            })
        }
        0b011011 => {
            let off = sext(((i >> 5) & 0x3fff) as u64, 14) << 2;
            let bit = (i >> 31) << 5 | (i >> 19) & 31;
            return Some(Br::Tbz {
                nz,
                rt: i & 31,
                bit,
                off,
            });
        }
        _ => {}
    }
    if i >> 24 == 0x54 && (i >> 4) & 1 == 0 {
        return Some(Br::Cond {
            cond: i & 15,
            off: off19,
        });
    }
    if i >> 25 == 0b110_1011 && (i >> 16) & 31 == 31 && (i >> 10) & 63 == 0 && i & 31 == 0 {
        let rn = (i >> 5) & 31;
        return match (i >> 21) & 15 {
            0 | 2 => Some(Br::Reg { rn, link: false }),
            1 => Some(Br::Reg { rn, link: true }),
            _ => None,
        };
    }
    None
}

/// Data Processing -- Register (Arm ARM C4.1.88), as `decode::dp_reg` (without the
/// extended-register form).
fn dp_reg(i: u32) -> Option<Inline> {
    let (sf, rd, rn) = fields(i);
    let rm = (i >> 16) & 31;
    let (ty, amount) = ((i >> 22) & 3, (i >> 10) & 63);
    if (i >> 28) & 1 == 0 {
        if !sf && amount > 31 {
            return None;
        }
        if (i >> 24) & 1 == 0 {
            let (opc, not) = ((i >> 29) & 3, (i >> 21) & 1 == 1);
            return Some(Inline::LogicReg {
                sf,
                opc,
                not,
                ty,
                amount,
                rd,
                rn,
                rm,
            });
        }
        if (i >> 21) & 1 == 1 || ty == 3 {
            return None;
        }
        let (sub, s) = ((i >> 30) & 1 == 1, (i >> 29) & 1 == 1);
        return Some(Inline::AddSubReg {
            sf,
            sub,
            s,
            ty,
            amount,
            rd,
            rn,
            rm,
        });
    }
    match (i >> 21) & 15 {
        4 if (i >> 29) & 1 == 0 && (i >> 11) & 1 == 0 => Some(Inline::CondSel {
            sf,
            op: (i >> 30) & 1,
            o2: (i >> 10) & 1,
            cond: (i >> 12) & 15,
            rd,
            rn,
            rm,
        }),
        8 if (i >> 29) & 3 == 0 => Some(Inline::Madd {
            sf,
            sub: (i >> 15) & 1 == 1,
            rd,
            rn,
            rm,
            ra: (i >> 10) & 31,
        }),
        _ => None,
    }
}
