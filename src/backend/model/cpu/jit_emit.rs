//! Host code for the instructions `jit_ops.rs` classifies: [`emit`] builds each one's
//! Cranelift IR on the register cache of `jit_regs.rs`, with the semantics of the `fast.rs`
//! handlers (operand widths as 32- or 64-bit IR types, the flags of `AddWithCarry` (Arm ARM
//! J1), the flags and conditions through `jit_flags.rs`). Knows nothing about blocks, exits or calls.

use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{types, InstBuilder, Type, Value};

use super::alu::ones;
use super::jit_flags::Kind;
use super::jit_gen::Gen;
use super::jit_ops::{Br, Inline};

/// Emits `inl` at PC value `pc`; for a branch, the next PC.
pub fn emit(g: &mut Gen, inl: &Inline, pc: Value) -> Option<Value> {
    match *inl {
        Inline::Adr { rd, imm, page } => {
            let base = if page {
                g.b.ins().band_imm_s(pc, !0xfff_i64)
            } else {
                pc
            };
            let v = g.b.ins().iadd_imm_s(base, imm as i64);
            g.set_x(rd, v);
        }
        Inline::AddSubImm {
            sf,
            sub,
            s,
            rd,
            rn,
            imm,
        } => {
            let x = g.x(rn);
            let ty = width(sf);
            let (x, y) = (narrow(g, x, sf), konst(g, ty, imm));
            add_sub(g, sf, sub, s, rd, x, y);
        }
        Inline::AddSubReg {
            sf,
            sub,
            s,
            ty,
            amount,
            rd,
            rn,
            rm,
        } => {
            let (x, m) = (g.x(rn), g.x(rm));
            let (x, m) = (narrow(g, x, sf), narrow(g, m, sf));
            let y = shift(g, m, ty, amount, sf);
            add_sub(g, sf, sub, s, rd, x, y);
        }
        Inline::LogicImm {
            sf,
            opc,
            rd,
            rn,
            mask,
        } => {
            let x = g.x(rn);
            let x = narrow(g, x, sf);
            let y = konst(g, width(sf), mask);
            logic(g, sf, opc, rd, x, y);
        }
        Inline::LogicReg {
            sf,
            opc,
            not,
            ty,
            amount,
            rd,
            rn,
            rm,
        } => {
            let (x, m) = (g.x(rn), g.x(rm));
            let (x, m) = (narrow(g, x, sf), narrow(g, m, sf));
            let mut y = shift(g, m, ty, amount, sf);
            if not {
                y = g.b.ins().bnot(y);
            }
            logic(g, sf, opc, rd, x, y);
        }
        Inline::Mov { sf, rd, imm, keep } => {
            let v = match keep {
                None => g.b.ins().iconst(types::I64, imm as i64),
                Some(pos) => {
                    let old = g.x(rd);
                    let cleared = g.b.ins().band_imm_s(old, !(0xffff_i64 << pos));
                    let v = g.b.ins().bor_imm_s(cleared, imm as i64);
                    truncate(g, v, sf)
                }
            };
            g.set_x(rd, v);
        }
        Inline::Bitfield {
            sf,
            opc,
            rd,
            rn,
            immr,
            imms,
            wmask,
        } => bitfield(g, sf, opc, rd, rn, immr, imms, wmask),
        Inline::CondSel {
            sf,
            op,
            o2,
            cond,
            rd,
            rn,
            rm,
        } => {
            let (n, m) = (g.x(rn), g.x(rm));
            let alt = match (op, o2) {
                (0, 0) => m,
                (0, _) => g.b.ins().iadd_imm_s(m, 1),
                (_, 0) => g.b.ins().bnot(m),
                _ => g.b.ins().ineg(m),
            };
            let c = g.holds(cond);
            let v = g.b.ins().select(c, n, alt);
            let v = truncate(g, v, sf);
            g.set_x(rd, v);
        }
        Inline::Madd {
            sf,
            sub,
            rd,
            rn,
            rm,
            ra,
        } => {
            let (n, m, a) = (g.x(rn), g.x(rm), g.x(ra));
            let p = g.b.ins().imul(n, m);
            let v = if sub {
                g.b.ins().isub(a, p)
            } else {
                g.b.ins().iadd(a, p)
            };
            let v = truncate(g, v, sf);
            g.set_x(rd, v);
        }
        Inline::Branch(br) => return Some(branch_target(g, br, pc)),
    }
    None
}

/// The next PC of branch `br` at `pc` (and the link register written).
fn branch_target(g: &mut Gen, br: Br, pc: Value) -> Value {
    let next = g.b.ins().iadd_imm_s(pc, 4);
    match br {
        Br::B { off, link } => {
            if link {
                g.set_x(30, next);
            }
            g.b.ins().iadd_imm_s(pc, off as i64)
        }
        Br::Cond { cond, off } => {
            let c = g.holds(cond);
            let t = g.b.ins().iadd_imm_s(pc, off as i64);
            g.b.ins().select(c, t, next)
        }
        Br::Cbz { sf, nz, rt, off } => {
            let v = g.x(rt);
            let v = narrow(g, v, sf);
            let cc = if nz { IntCC::NotEqual } else { IntCC::Equal };
            let c = g.b.ins().icmp_imm_s(cc, v, 0);
            let t = g.b.ins().iadd_imm_s(pc, off as i64);
            g.b.ins().select(c, t, next)
        }
        Br::Tbz { nz, rt, bit, off } => {
            let v = g.x(rt);
            let b = g.b.ins().band_imm_s(v, (1u64 << bit) as i64);
            let cc = if nz { IntCC::NotEqual } else { IntCC::Equal };
            let c = g.b.ins().icmp_imm_s(cc, b, 0);
            let t = g.b.ins().iadd_imm_s(pc, off as i64);
            g.b.ins().select(c, t, next)
        }
        Br::Reg { rn, link } => {
            let t = g.x(rn);
            if link {
                g.set_x(30, next);
            }
            t
        }
    }
}

fn width(sf: bool) -> Type {
    if sf {
        types::I64
    } else {
        types::I32
    }
}

/// A constant of type `ty` (I32: the low 32 bits).
fn konst(g: &mut Gen, ty: Type, v: u64) -> Value {
    let v = if ty == types::I32 {
        v as u32 as i64
    } else {
        v as i64
    };
    g.b.ins().iconst(ty, v)
}

/// The operand width's view of a 64-bit register value.
fn narrow(g: &mut Gen, v: Value, sf: bool) -> Value {
    if sf {
        v
    } else {
        g.b.ins().ireduce(types::I32, v)
    }
}

/// A result of the operand width as the 64-bit register value (W writes zero the top).
fn widen(g: &mut Gen, v: Value, sf: bool) -> Value {
    if sf {
        v
    } else {
        g.b.ins().uextend(types::I64, v)
    }
}

/// The low 32 bits of a 64-bit value unless `sf`.
fn truncate(g: &mut Gen, v: Value, sf: bool) -> Value {
    if sf {
        v
    } else {
        g.b.ins().band_imm_s(v, 0xffff_ffff)
    }
}

/// `alu::shift` in the operand width: LSL, LSR, ASR, ROR by a constant.
fn shift(g: &mut Gen, v: Value, ty: u32, amount: u32, sf: bool) -> Value {
    let amount = (amount % if sf { 64 } else { 32 }) as i64;
    if amount == 0 {
        return v;
    }
    match ty {
        0 => g.b.ins().ishl_imm_u(v, amount),
        1 => g.b.ins().ushr_imm_u(v, amount),
        2 => g.b.ins().sshr_imm_u(v, amount),
        _ => g.b.ins().rotr_imm_u(v, amount),
    }
}

/// ADD/SUB of `x` and `y` (operand width) into Rd (XZR discards), with the flags of
/// `AddWithCarry` (Arm ARM J1) when `s`, held lazily (`jit_flags.rs`).
fn add_sub(g: &mut Gen, sf: bool, sub: bool, s: bool, rd: u32, x: Value, y: Value) {
    let r = if sub {
        g.b.ins().isub(x, y)
    } else {
        g.b.ins().iadd(x, y)
    };
    if s {
        let kind = if sub {
            Kind::Sub { sf }
        } else {
            Kind::Add { sf }
        };
        g.set_flags(kind, x, y);
    }
    let r = widen(g, r, sf);
    g.set_x(rd, r);
}

/// AND/ORR/EOR/ANDS (opc 0-3) of `x` and `y` (operand width) into Rd; ANDS sets N and Z
/// and clears C and V (held lazily: `jit_flags.rs`).
fn logic(g: &mut Gen, sf: bool, opc: u32, rd: u32, x: Value, y: Value) {
    let r = match opc {
        1 => g.b.ins().bor(x, y),
        2 => g.b.ins().bxor(x, y),
        _ => g.b.ins().band(x, y),
    };
    if opc == 3 {
        g.set_flags(Kind::Logic { sf }, r, r);
    }
    let r = widen(g, r, sf);
    g.set_x(rd, r);
}

/// SBFM/BFM/UBFM, as `fast::bitfield` with the masks computed here.
#[allow(clippy::too_many_arguments)]
fn bitfield(g: &mut Gen, sf: bool, opc: u32, rd: u32, rn: u32, immr: u32, imms: u32, wmask: u64) {
    let bits = if sf { 64 } else { 32 };
    let tmask = ones((imms.wrapping_sub(immr) & (bits - 1)) + 1);
    let src = g.x(rn);
    let s = narrow(g, src, sf);
    let rot = if immr == 0 {
        s
    } else {
        g.b.ins().rotr_imm_u(s, immr as i64)
    };
    let rot = widen(g, rot, sf);
    let r = match opc {
        0 => {
            // Bit `imms` of the source replicated: shifted to the top, then arithmetically
            // back down over the whole width.
            let top = g.b.ins().ishl_imm_u(s, (bits - 1 - imms) as i64);
            let top = g.b.ins().sshr_imm_u(top, (bits - 1) as i64);
            let top = widen(g, top, sf);
            let hi = g.b.ins().band_imm_s(top, !tmask as i64);
            let lo = g.b.ins().band_imm_s(rot, (wmask & tmask) as i64);
            g.b.ins().bor(hi, lo)
        }
        1 => {
            let dst = g.x(rd);
            let keep = g.b.ins().band_imm_s(dst, !tmask as i64);
            let d = g.b.ins().band_imm_s(dst, !wmask as i64);
            let ins = g.b.ins().band_imm_s(rot, wmask as i64);
            let mid = g.b.ins().bor(d, ins);
            let mid = g.b.ins().band_imm_s(mid, tmask as i64);
            g.b.ins().bor(keep, mid)
        }
        _ => g.b.ins().band_imm_s(rot, (wmask & tmask) as i64),
    };
    let r = truncate(g, r, sf);
    g.set_x(rd, r);
}
