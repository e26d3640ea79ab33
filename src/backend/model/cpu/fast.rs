//! Handlers for the decoded-instruction cache (`decode.rs`): integer data processing and
//! branches, with the operand the decoder pre-computed in `aux`.
//!
//! Each handler is the reference interpreter's semantics (`alu.rs`, `muldiv.rs`,
//! `branch.rs`) for encodings the decoder has already validated, so it has no encoding
//! checks and no UNDEFINED paths; `decode_tests.rs` runs both on the same random words and
//! states and requires identical results. Const generic parameters are the encoding bits the
//! decoder fixed (SF = 64-bit, the op bits).

use super::alu::{extend, nzcv_of, ones, shift};
use super::{Cpu, Stop};

/// For each condition code, bit `f` set when the condition holds with NZCV = `f` (N = bit
/// 3): Arm ARM C1.2.4 "Condition code", the same rules as `CpuState::cond_holds` (checked
/// against it by a test).
pub const COND_TABLE: [u16; 16] = cond_table();

const fn cond_table() -> [u16; 16] {
    let mut t = [0u16; 16];
    let mut cond = 0;
    while cond < 16 {
        let mut f = 0;
        while f < 16 {
            if cond_eval(cond as u32, f) {
                t[cond] |= 1 << f;
            }
            f += 1;
        }
        cond += 1;
    }
    t
}

/// Evaluates A64 condition code `cond` against the flags `nzcv` (N in bit 3 ... V in bit 0;
/// Arm ARM C1.2.4 "Condition code"). The one evaluator: the table above and
/// `CpuState::cond_holds` both use it.
pub const fn cond_eval(cond: u32, nzcv: u64) -> bool {
    let (n, z, c, v) = (nzcv & 8 != 0, nzcv & 4 != 0, nzcv & 2 != 0, nzcv & 1 != 0);
    let r = match cond >> 1 {
        0 => z,
        1 => c,
        2 => n,
        3 => v,
        4 => c && !z,
        5 => n == v,
        6 => n == v && !z,
        _ => true,
    };
    if cond & 1 == 1 && cond != 15 {
        !r
    } else {
        r
    }
}

/// Whether condition `cond` holds for the current flags (a table lookup, no branches).
#[inline(always)]
fn holds(c: &Cpu, cond: u32) -> bool {
    (COND_TABLE[(cond & 15) as usize] >> c.st.nzcv()) & 1 == 1
}

#[inline(always)]
fn trunc<const SF: bool>(v: u64) -> u64 {
    if SF {
        v
    } else {
        v & 0xffff_ffff
    }
}

/// `x + y` (or `x - y` when SUB) and its NZCV: `AddWithCarry(x, y, 0)` (or
/// `AddWithCarry(x, NOT(y), 1)`) of Arm ARM J1 "shared/functions/integer/AddWithCarry",
/// computed in the operand width without the general carry-in (the same results as
/// `alu::add_with_carry`, checked by `decode_tests.rs`).
#[inline(always)]
fn add_sub_flags<const SF: bool, const SUB: bool>(x: u64, y: u64) -> (u64, u64) {
    let (top, x, y) = if SF {
        (63, x, y)
    } else {
        (31, x & 0xffff_ffff, y & 0xffff_ffff)
    };
    let (r, c, v) = if SUB {
        let r = x.wrapping_sub(y) & trunc_mask::<SF>();
        // No borrow: C set; overflow: the operands' signs differ and the result's differs
        // from x's.
        (r, x >= y, ((x ^ y) & (x ^ r)) >> top & 1)
    } else {
        let r = x.wrapping_add(y);
        let (r, c) = if SF {
            (r, r < x)
        } else {
            (r & 0xffff_ffff, r >> 32 != 0)
        };
        (r, c, ((x ^ r) & (y ^ r)) >> top & 1)
    };
    let n = r >> top;
    (r, n << 3 | ((r == 0) as u64) << 2 | (c as u64) << 1 | v)
}

#[inline(always)]
const fn trunc_mask<const SF: bool>() -> u64 {
    if SF {
        u64::MAX
    } else {
        0xffff_ffff
    }
}

/// ADR: Xd = PC + imm.
pub fn adr(c: &mut Cpu, i: u32, imm: u64) -> Result<(), Stop> {
    c.st.set_x(i & 31, c.st.pc.wrapping_add(imm));
    Ok(())
}

/// ADRP: Xd = PC with the low 12 bits cleared + imm (already shifted).
pub fn adrp(c: &mut Cpu, i: u32, imm: u64) -> Result<(), Stop> {
    c.st.set_x(i & 31, (c.st.pc & !0xfff).wrapping_add(imm));
    Ok(())
}

/// ADD/ADDS/SUB/SUBS (immediate): SUB = bit 30, S = bit 29; Rd and Rn may be SP unless S.
pub fn add_sub_imm<const SF: bool, const SUB: bool, const S: bool>(
    c: &mut Cpu,
    i: u32,
    imm: u64,
) -> Result<(), Stop> {
    let x = c.st.xsp((i >> 5) & 31);
    let rd = i & 31;
    if S {
        let (r, flags) = add_sub_flags::<SF, SUB>(x, imm);
        c.st.set_nzcv(flags);
        c.st.set_x(rd, r);
    } else {
        let r = if SUB {
            x.wrapping_sub(imm)
        } else {
            x.wrapping_add(imm)
        };
        c.st.set_xsp(rd, trunc::<SF>(r));
    }
    Ok(())
}

/// The AND/ORR/EOR/ANDS result (opc = bits 30:29) and whether it sets flags.
#[inline(always)]
fn logic<const SF: bool, const O1: bool, const O0: bool>(x: u64, y: u64) -> u64 {
    trunc::<SF>(match (O1, O0) {
        (false, true) => x | y,
        (true, false) => x ^ y,
        _ => x & y,
    })
}

/// AND/ORR/EOR/ANDS (immediate) with the decoded mask; Rd may be SP unless ANDS.
pub fn logical_imm<const SF: bool, const O1: bool, const O0: bool>(
    c: &mut Cpu,
    i: u32,
    mask: u64,
) -> Result<(), Stop> {
    let r = logic::<SF, O1, O0>(c.st.xr((i >> 5) & 31), mask);
    if O1 && O0 {
        c.st.set_nzcv(nzcv_of(r, SF));
        c.st.set_x(i & 31, r);
    } else {
        c.st.set_xsp(i & 31, r);
    }
    Ok(())
}

/// AND/BIC/ORR/ORN/EOR/EON/ANDS/BICS (shifted register); N = bit 21 inverts the operand.
pub fn logical_reg<const SF: bool, const O1: bool, const O0: bool>(
    c: &mut Cpu,
    i: u32,
    _: u64,
) -> Result<(), Stop> {
    let mut y = shift(c.st.xr((i >> 16) & 31), (i >> 22) & 3, (i >> 10) & 63, SF);
    if (i >> 21) & 1 == 1 {
        y = !y;
    }
    let r = logic::<SF, O1, O0>(c.st.xr((i >> 5) & 31), y);
    if O1 && O0 {
        c.st.set_nzcv(nzcv_of(r, SF));
    }
    c.st.set_x(i & 31, r);
    Ok(())
}

/// MOV (register), the alias of ORR Rd, ZR, Rm.
pub fn mov_reg<const SF: bool>(c: &mut Cpu, i: u32, _: u64) -> Result<(), Stop> {
    let v = trunc::<SF>(c.st.xr((i >> 16) & 31));
    c.st.set_x(i & 31, v);
    Ok(())
}

/// ADD/ADDS/SUB/SUBS (shifted register).
pub fn add_sub_reg<const SF: bool, const SUB: bool, const S: bool>(
    c: &mut Cpu,
    i: u32,
    _: u64,
) -> Result<(), Stop> {
    let m = c.st.xr((i >> 16) & 31);
    let amount = (i >> 10) & 63;
    let y = if amount == 0 {
        m
    } else {
        shift(m, (i >> 22) & 3, amount, SF)
    };
    let x = c.st.xr((i >> 5) & 31);
    let r = if S {
        let (r, flags) = add_sub_flags::<SF, SUB>(x, y);
        c.st.set_nzcv(flags);
        r
    } else if SUB {
        x.wrapping_sub(y)
    } else {
        x.wrapping_add(y)
    };
    c.st.set_x(i & 31, trunc::<SF>(r));
    Ok(())
}

/// ADD/ADDS/SUB/SUBS (extended register).
pub fn add_sub_ext(c: &mut Cpu, i: u32, _: u64) -> Result<(), Stop> {
    let y = extend(c.st.xr((i >> 16) & 31), (i >> 13) & 7, (i >> 10) & 7);
    let x = c.st.xsp((i >> 5) & 31);
    c.add_sub(i, x, y, true);
    Ok(())
}

/// MOVZ/MOVN: the decoder computed the whole value.
pub fn mov_const(c: &mut Cpu, i: u32, v: u64) -> Result<(), Stop> {
    c.st.set_x(i & 31, v);
    Ok(())
}

/// MOVK: `imm` is the 16-bit field already at its position (hw = bits 22:21).
pub fn movk<const SF: bool>(c: &mut Cpu, i: u32, imm: u64) -> Result<(), Stop> {
    let pos = ((i >> 21) & 3) * 16;
    let rd = i & 31;
    let r = (c.st.xr(rd) & !(0xffffu64 << pos)) | imm;
    c.st.set_xw(rd, r, SF);
    Ok(())
}

/// SBFM/BFM/UBFM with the decoded wmask (Arm ARM C6.2 "SBFM", shared pseudocode).
pub fn bitfield(c: &mut Cpu, i: u32, wmask: u64) -> Result<(), Stop> {
    let sf = i >> 31 == 1;
    let opc = (i >> 29) & 3;
    let immr = (i >> 16) & 63;
    let imms = (i >> 10) & 63;
    let bits = if sf { 64 } else { 32 };
    let tmask = ones((imms.wrapping_sub(immr) & (bits - 1)) + 1);
    let rd = i & 31;
    let src = c.st.xr((i >> 5) & 31);
    let rot = shift(src, 3, immr, sf);
    let r = match opc {
        0 => {
            let top = if (src >> imms) & 1 == 1 {
                ones(bits)
            } else {
                0
            };
            (top & !tmask) | (rot & wmask & tmask)
        }
        1 => {
            let dst = c.st.xr(rd);
            (dst & !tmask) | (((dst & !wmask) | (rot & wmask)) & tmask)
        }
        _ => rot & wmask & tmask,
    };
    c.st.set_xw(rd, r, sf);
    Ok(())
}

/// CSEL/CSINC/CSINV/CSNEG (op = bit 30, o2 = bit 10).
pub fn cond_select(c: &mut Cpu, i: u32, _: u64) -> Result<(), Stop> {
    let r = if holds(c, i >> 12) {
        c.st.xr((i >> 5) & 31)
    } else {
        let m = c.st.xr((i >> 16) & 31);
        match ((i >> 30) & 1, (i >> 10) & 1) {
            (0, 0) => m,
            (0, _) => m.wrapping_add(1),
            (_, 0) => !m,
            _ => m.wrapping_neg(),
        }
    };
    c.st.set_xw(i & 31, r, i >> 31 == 1);
    Ok(())
}

/// MADD/MSUB (o0 = bit 15).
pub fn madd<const SF: bool>(c: &mut Cpu, i: u32, _: u64) -> Result<(), Stop> {
    let p = c.st.xr((i >> 5) & 31).wrapping_mul(c.st.xr((i >> 16) & 31));
    let a = c.st.xr((i >> 10) & 31);
    let r = if (i >> 15) & 1 == 0 {
        a.wrapping_add(p)
    } else {
        a.wrapping_sub(p)
    };
    c.st.set_xw(i & 31, r, SF);
    Ok(())
}

/// B: PC-relative, offset pre-computed.
pub fn b(c: &mut Cpu, _: u32, off: u64) -> Result<(), Stop> {
    c.next_pc = c.st.pc.wrapping_add(off);
    Ok(())
}

/// BL: X30 = PC + 4.
pub fn bl(c: &mut Cpu, _: u32, off: u64) -> Result<(), Stop> {
    let pc = c.st.pc;
    c.st.x[30] = pc.wrapping_add(4);
    c.next_pc = pc.wrapping_add(off);
    Ok(())
}

/// B.cond.
pub fn b_cond(c: &mut Cpu, i: u32, off: u64) -> Result<(), Stop> {
    if holds(c, i) {
        c.next_pc = c.st.pc.wrapping_add(off);
    }
    Ok(())
}

/// CBZ/CBNZ (NZ = bit 24).
pub fn cbz<const SF: bool, const NZ: bool>(c: &mut Cpu, i: u32, off: u64) -> Result<(), Stop> {
    let v = trunc::<SF>(c.st.xr(i & 31));
    if (v == 0) != NZ {
        c.next_pc = c.st.pc.wrapping_add(off);
    }
    Ok(())
}

/// TBZ/TBNZ (NZ = bit 24), bit number b5:b40.
pub fn tbz<const NZ: bool>(c: &mut Cpu, i: u32, off: u64) -> Result<(), Stop> {
    let bit = (i >> 31) << 5 | (i >> 19) & 31;
    if ((c.st.xr(i & 31) >> bit) & 1 == 1) == NZ {
        c.next_pc = c.st.pc.wrapping_add(off);
    }
    Ok(())
}

/// BR and RET.
pub fn br(c: &mut Cpu, i: u32, _: u64) -> Result<(), Stop> {
    c.next_pc = c.st.xr((i >> 5) & 31);
    Ok(())
}

/// BLR.
pub fn blr(c: &mut Cpu, i: u32, _: u64) -> Result<(), Stop> {
    let target = c.st.xr((i >> 5) & 31);
    c.st.x[30] = c.st.pc.wrapping_add(4);
    c.next_pc = target;
    Ok(())
}
