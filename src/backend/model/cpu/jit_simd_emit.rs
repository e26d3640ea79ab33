//! Host code for the Advanced SIMD forms `jit_simd.rs` classifies: [`emit`] builds each
//! one's Cranelift IR (vector types I8X16 ... I64X2: SSE on x86-64, NEON on AArch64) with
//! the semantics of the interpreter's handlers. Vector registers stay in `CpuState::v`
//! (loaded at use, stored at definition); a 64-bit form clears the upper half. Each op
//! first checks CPACR_EL1.FPEN as `Cpu::fp_check`; loads and stores take the plain data-TLB
//! path (`jit_simd_mem.rs`); when a check fails nothing has changed and the op's handler
//! runs from scratch (`Gen::call`). Knows nothing about blocks or exits beyond `Gen`'s
//! interface.

use std::mem::offset_of;

use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{types, InstBuilder, MemFlagsData, SigRef, Type, Value};

use super::block::Op;
use super::fast_mem::{OFFSET, PRE};
use super::jit_gen::Gen;
use super::jit_simd::{Sh, Simd, Vop};
use super::jit_simd_mem::plain_host;
use super::state::{CpuState, SysRegs};
use super::Cpu;

/// Byte offsets into `Cpu` of V0 and CPACR_EL1.
const OFF_V: i32 = (offset_of!(Cpu, st) + offset_of!(CpuState, v)) as i32;
const OFF_CPACR: i32 =
    (offset_of!(Cpu, st) + offset_of!(CpuState, sys) + offset_of!(SysRegs, cpacr)) as i32;
/// Emits op `k` (at `pc`) `s`: inline when SIMD&FP is enabled (checked unless `Gen::fp_ok`) (and, for an access, the
/// plain path applies), else the op's handler (`Gen::call` with trampoline signature
/// `tramp` and handler index `id`).
pub fn emit(g: &mut Gen, tramp: SigRef, k: usize, pc: Value, id: u32, op: &Op, s: &Simd) {
    let before = g.snapshot();
    // Every general register the op reads, before the first branch.
    let p = g.pstate();
    let (base, index) = match *s {
        Simd::LdSt { rn, .. } => (Some(g.x(rn)), None),
        Simd::Ld1r { rn, post, .. } => (Some(g.x(rn)), post.filter(|&m| m != 31).map(|m| g.x(m))),
        Simd::Dup { rn, .. } | Simd::Ins { rn, .. } => (Some(g.x(rn)), None),
        _ => (None, None),
    };
    // The handler's path: for a load or store, or while SIMD&FP is not known to be on.
    let access = matches!(*s, Simd::LdSt { .. } | Simd::Ld1r { .. });
    let can_miss = access || !g.fp_ok;
    let miss = g.b.create_block();
    if !g.fp_ok {
        let go = g.b.create_block();
        let on = fp_enabled(g, p);
        g.b.ins().brif(on, go, &[], miss, &[]);
        g.b.switch_to_block(go);
    }
    let zero = g.b.ins().iconst(types::I64, 0);
    match *s {
        Simd::LdSt {
            load,
            scale,
            mode,
            rt,
            rn,
            off,
        } => {
            let base = base.unwrap_or(zero);
            let (addr, wb) = match mode {
                OFFSET => (g.b.ins().iadd_imm_s(base, off as i64), None),
                PRE => {
                    let a = g.b.ins().iadd_imm_s(base, off as i64);
                    (a, Some(a))
                }
                _ => (base, Some(g.b.ins().iadd_imm_s(base, off as i64))),
            };
            let host = plain_host(g, p, addr, 1 << scale, !load, miss);
            ldst_plain(g, load, scale, rt, host);
            if let Some(wb) = wb {
                g.set_x(rn, wb);
            }
            if !load {
                // A store into the block's own words leaves it before the next op if a
                // word changed.
                g.check_store_into_block(host, 1 << scale, k + 1);
            }
        }
        Simd::Ld1r {
            q,
            size,
            rt,
            rn,
            post,
        } => {
            let base = base.unwrap_or(zero);
            let host = plain_host(g, p, base, 1 << size, false, miss);
            let lane = lane_type(8 << size);
            let flags = MemFlagsData::trusted();
            let e = g.b.ins().load(lane, flags, host, 0);
            let v = g.b.ins().splat(vector_type(8 << size), e);
            store_v(g, v, rt, q);
            if let Some(m) = post {
                let wb = match index {
                    Some(x) if m != 31 => g.b.ins().iadd(base, x),
                    _ => g.b.ins().iadd_imm_s(base, 1 << size),
                };
                g.set_x(rn, wb);
            }
        }
        Simd::Three {
            op,
            q,
            esize,
            rd,
            rn,
            rm,
        } => {
            let ty = vector_type(esize);
            let (n, m) = (load_v(g, ty, rn), load_v(g, ty, rm));
            let d = matches!(op, Vop::Mla | Vop::Mls | Vop::Bsl | Vop::Bit | Vop::Bif)
                .then(|| load_v(g, ty, rd));
            let r = three(g, op, n, m, d);
            store_v(g, r, rd, q);
        }
        Simd::Imm {
            q,
            rd,
            imm,
            logic,
            bic,
        } => {
            let flags = MemFlagsData::trusted();
            let at = OFF_V + 16 * rd as i32;
            for half in 0..2 {
                let r = if half == 1 && !q {
                    zero
                } else if logic {
                    let v = g.b.ins().load(types::I64, flags, g.cpu, at + 8 * half);
                    if bic {
                        g.b.ins().band_imm_s(v, !imm as i64)
                    } else {
                        g.b.ins().bor_imm_s(v, imm as i64)
                    }
                } else {
                    g.b.ins().iconst(types::I64, imm as i64)
                };
                g.b.ins().store(flags, r, g.cpu, at + 8 * half);
            }
        }
        Simd::Dup { q, esize, rd, .. } => {
            let x = base.unwrap_or(zero);
            let e = if esize < 64 {
                g.b.ins().ireduce(lane_type(esize), x)
            } else {
                x
            };
            let v = g.b.ins().splat(vector_type(esize), e);
            store_v(g, v, rd, q);
        }
        Simd::DupElem {
            q,
            esize,
            index,
            rd,
            rn,
        } => {
            let n = load_v(g, vector_type(esize), rn);
            let e = g.b.ins().extractlane(n, index as u8);
            let v = g.b.ins().splat(vector_type(esize), e);
            store_v(g, v, rd, q);
        }
        Simd::Ins {
            esize, index, rd, ..
        } => {
            let x = base.unwrap_or(zero);
            let e = if esize < 64 {
                g.b.ins().ireduce(lane_type(esize), x)
            } else {
                x
            };
            let d = load_v(g, vector_type(esize), rd);
            let v = g.b.ins().insertlane(d, e, index as u8);
            store_v(g, v, rd, true);
        }
        Simd::Mov {
            signed,
            wide,
            esize,
            index,
            rd,
            rn,
        } => {
            let n = load_v(g, vector_type(esize), rn);
            let e = g.b.ins().extractlane(n, index as u8);
            let x = match (esize, signed, wide) {
                (64, ..) => e,
                (_, false, _) => g.b.ins().uextend(types::I64, e),
                (_, true, true) => g.b.ins().sextend(types::I64, e),
                (32, true, false) => g.b.ins().uextend(types::I64, e),
                (_, true, false) => {
                    let w = g.b.ins().sextend(types::I32, e);
                    g.b.ins().uextend(types::I64, w)
                }
            };
            g.set_x(rd, x);
        }
        Simd::Shift {
            sh,
            q,
            esize,
            amount,
            rd,
            rn,
        } => {
            let ty = vector_type(esize);
            let n = load_v(g, ty, rn);
            let v = shift(g, sh, esize, amount, n);
            let r = if matches!(sh, Sh::Ssra | Sh::Usra) {
                let d = load_v(g, ty, rd);
                g.b.ins().iadd(d, v)
            } else {
                v
            };
            store_v(g, r, rd, q);
        }
        Simd::Neg {
            not,
            q,
            esize,
            rd,
            rn,
        } => {
            let n = load_v(g, vector_type(esize), rn);
            let r = if not {
                g.b.ins().bnot(n)
            } else {
                g.b.ins().ineg(n)
            };
            store_v(g, r, rd, q);
        }
    }
    if can_miss {
        g.join_handler_fallback(miss, before, tramp, k, pc, id, op);
    }
    // Both paths ran this op: SIMD&FP is enabled (the handler returned only after its
    // `Cpu::fp_check` passed, and changes neither CPACR_EL1 nor the EL), until the next
    // handler call (`Gen::call`) or the loop head.
    g.fp_ok = true;
}

/// Whether SIMD&FP instructions run at the current EL (PSTATE `p`), as `Cpu::fp_check`:
/// CPACR_EL1.FPEN (bits 21:20) 0b11, or 0b01 at EL1 (Arm ARM D19.2.30 "CPACR_EL1").
fn fp_enabled(g: &mut Gen, p: Value) -> Value {
    let flags = MemFlagsData::trusted();
    let cpacr = g.b.ins().load(types::I64, flags, g.cpu, OFF_CPACR);
    let fpen = g.b.ins().ushr_imm_u(cpacr, 20);
    let fpen = g.b.ins().band_imm_u(fpen, 3);
    let all = g.b.ins().icmp_imm_s(IntCC::Equal, fpen, 3);
    let el1_only = g.b.ins().icmp_imm_s(IntCC::Equal, fpen, 1);
    // PSTATE.EL = bits 3:2 (SPSR layout: Arm ARM C5.2.19 "SPSR_EL1").
    let el = g.b.ins().band_imm_u(p, 0b1100);
    let at_el1 = g.b.ins().icmp_imm_s(IntCC::Equal, el, 0b0100);
    let el1 = g.b.ins().band(el1_only, at_el1);
    g.b.ins().bor(all, el1)
}

/// The plain access of LDR/STR (SIMD&FP) of 2^`scale` bytes at host address `host`, as
/// `Cpu::vector_plain`: the low 2^min(scale, 3) bytes, then for Q the upper eight; a load
/// zeroes the rest of Vt.
fn ldst_plain(g: &mut Gen, load: bool, scale: u32, rt: u32, host: Value) {
    let flags = MemFlagsData::trusted();
    let at = OFF_V + 16 * rt as i32;
    if load {
        let lo = match scale {
            0 => g.b.ins().uload8(types::I64, flags, host, 0),
            1 => g.b.ins().uload16(types::I64, flags, host, 0),
            2 => g.b.ins().uload32(flags, host, 0),
            _ => g.b.ins().load(types::I64, flags, host, 0),
        };
        let hi = if scale == 4 {
            g.b.ins().load(types::I64, flags, host, 8)
        } else {
            g.b.ins().iconst(types::I64, 0)
        };
        g.b.ins().store(flags, lo, g.cpu, at);
        g.b.ins().store(flags, hi, g.cpu, at + 8);
    } else {
        let lo = g.b.ins().load(types::I64, flags, g.cpu, at);
        match scale {
            0 => g.b.ins().istore8(flags, lo, host, 0),
            1 => g.b.ins().istore16(flags, lo, host, 0),
            2 => g.b.ins().istore32(flags, lo, host, 0),
            _ => g.b.ins().store(flags, lo, host, 0),
        };
        if scale == 4 {
            let hi = g.b.ins().load(types::I64, flags, g.cpu, at + 8);
            g.b.ins().store(flags, hi, host, 8);
        }
    }
}

/// The three-same operation `op` on `n`, `m` (and Vd's value `d` for the accumulating and
/// bit-select forms).
fn three(g: &mut Gen, op: Vop, n: Value, m: Value, d: Option<Value>) -> Value {
    let d = d.unwrap_or(n);
    let ins = g.b.ins();
    match op {
        Vop::Add => ins.iadd(n, m),
        Vop::Sub => ins.isub(n, m),
        Vop::Mul => ins.imul(n, m),
        Vop::Mla => {
            let p = ins.imul(n, m);
            g.b.ins().iadd(d, p)
        }
        Vop::Mls => {
            let p = ins.imul(n, m);
            g.b.ins().isub(d, p)
        }
        Vop::And => ins.band(n, m),
        Vop::Bic => ins.band_not(n, m),
        Vop::Orr => ins.bor(n, m),
        Vop::Orn => ins.bor_not(n, m),
        Vop::Eor => ins.bxor(n, m),
        // BSL: (d & n) | (!d & m); BIT: (d & !m) | (n & m); BIF: (d & m) | (n & !m).
        Vop::Bsl => ins.bitselect(d, n, m),
        Vop::Bit => ins.bitselect(m, n, d),
        Vop::Bif => ins.bitselect(m, d, n),
    }
}

/// `n` shifted by `amount` (SHL: 0 to esize - 1; the right shifts: 1 to esize, where
/// Cranelift's shifts, taken modulo the lane size, cannot go: USHR by esize is zero, SSHR
/// by esize the sign, as by esize - 1).
fn shift(g: &mut Gen, sh: Sh, esize: u32, amount: u32, n: Value) -> Value {
    match sh {
        Sh::Shl => {
            let a = g.b.ins().iconst(types::I32, amount as i64);
            g.b.ins().ishl(n, a)
        }
        Sh::Ushr | Sh::Usra if amount >= esize => g.b.ins().bxor(n, n),
        Sh::Ushr | Sh::Usra => {
            let a = g.b.ins().iconst(types::I32, amount as i64);
            g.b.ins().ushr(n, a)
        }
        Sh::Sshr | Sh::Ssra => {
            let a = g.b.ins().iconst(types::I32, amount.min(esize - 1) as i64);
            g.b.ins().sshr(n, a)
        }
    }
}

/// The vector type of `esize`-bit lanes.
fn vector_type(esize: u32) -> Type {
    match esize {
        8 => types::I8X16,
        16 => types::I16X8,
        32 => types::I32X4,
        _ => types::I64X2,
    }
}

/// The integer type of an `esize`-bit lane.
fn lane_type(esize: u32) -> Type {
    match esize {
        8 => types::I8,
        16 => types::I16,
        32 => types::I32,
        _ => types::I64,
    }
}

/// V`n` as a vector of type `ty`.
fn load_v(g: &mut Gen, ty: Type, n: u32) -> Value {
    let flags = MemFlagsData::trusted();
    g.b.ins().load(ty, flags, g.cpu, OFF_V + 16 * n as i32)
}

/// Writes V`n`: the whole vector `v`, or (`q` false) its low half and zeros above.
fn store_v(g: &mut Gen, v: Value, n: u32, q: bool) {
    let flags = MemFlagsData::trusted();
    let at = OFF_V + 16 * n as i32;
    g.b.ins().store(flags, v, g.cpu, at);
    if !q {
        let z = g.b.ins().iconst(types::I64, 0);
        g.b.ins().store(flags, z, g.cpu, at + 8);
    }
}
