//! Advanced SIMD compiled inline by the JIT (`jit_gen.rs`): which words ([`classify`]) and
//! their host code ([`emit`]), with Cranelift's vector types (I8X16 ... I64X2: SSE on
//! x86-64, NEON on AArch64).
//!
//! The forms: LDR/STR/LDUR/STUR (immediate, SIMD&FP; B, H, S, D, Q) exactly as `decode.rs`
//! routes them to `fast_mem::vector`, LD1R (no offset, post-index immediate or register),
//! the integer three-same ADD/SUB (any lane size), MUL/MLA/MLS (16- and 32-bit lanes: x86-64
//! has no byte multiply), AND/BIC/ORR/ORN/EOR/BSL/BIT/BIF, the vector immediates
//! (MOVI/MVNI/ORR/BIC/FMOV), DUP (general), SHL/SSHR/USHR/SSRA/USRA (immediate), NEG and NOT
//! (vector), each with exactly the encodings the reference interpreter (`simd.rs`,
//! `simd_int.rs`, `simd_shift_imm.rs`, `simd_ldst.rs`) executes, so that a word it treats
//! as UNDEFINED is never compiled inline. Vector registers stay in `CpuState::v` (loaded at
//! use, stored at definition: generated code keeps none across ops); a 64-bit form clears
//! the upper half (Arm ARM C2.1.3 "Vector registers": writes of 64 bits zero bits 127:64).
//!
//! Each op first checks CPACR_EL1.FPEN for the current EL as `Cpu::fp_check`; loads and
//! stores then take the plain data-TLB path of `fast_mem::vector` (`jit_simd_mem.rs`). When
//! a check fails, nothing has changed and the op's own handler runs from scratch through
//! the trampoline (`Gen::call`), raising the trap or taking the full path exactly as the
//! interpreter. `jit_simd_tests.rs` runs random words of every form through both.

use std::mem::offset_of;

use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{types, InstBuilder, MemFlagsData, SigRef, Type, Value};

use super::block::Op;
use super::fast_mem::{OFFSET, POST, PRE};
use super::jit_gen::Gen;
use super::jit_simd_mem::plain_host;
use super::state::{CpuState, SysRegs};
use super::Cpu;

/// Byte offsets into `Cpu` of V0 and CPACR_EL1.
const OFF_V: i32 = (offset_of!(Cpu, st) + offset_of!(CpuState, v)) as i32;
const OFF_CPACR: i32 =
    (offset_of!(Cpu, st) + offset_of!(CpuState, sys) + offset_of!(SysRegs, cpacr)) as i32;

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
    /// LD1R {Vt.T}, [Xn]: `post` None (no writeback), Some(31) (the element size), Some(m)
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
    // DUP (general): 0 Q 0 01110000 imm5 0 0001 1 Rn Rd (`simd_copy`).
    if i & 0xbfe0_fc00 == 0x0e00_0c00 {
        let imm5 = (i >> 16) & 31;
        let lsb = imm5.trailing_zeros();
        if lsb > 3 || (lsb == 3 && !q) {
            return None;
        }
        return Some(Simd::Dup {
            q,
            esize: 8 << lsb,
            rd,
            rn,
        });
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

/// Emits op `k` (at `pc`) `s`: inline when SIMD&FP is enabled (and, for an access, the
/// plain path applies), else the op's handler (`Gen::call` with trampoline signature
/// `tramp` and handler index `id`).
pub fn emit(g: &mut Gen, tramp: SigRef, k: usize, pc: Value, id: u32, op: &Op, s: &Simd) {
    let before = g.snapshot();
    // Every general register the op reads, before the first branch.
    let p = g.pstate();
    let (base, index) = match *s {
        Simd::LdSt { rn, .. } => (Some(g.x(rn)), None),
        Simd::Ld1r { rn, post, .. } => (Some(g.x(rn)), post.filter(|&m| m != 31).map(|m| g.x(m))),
        Simd::Dup { rn, .. } => (Some(g.x(rn)), None),
        _ => (None, None),
    };
    let (miss, go) = (g.b.create_block(), g.b.create_block());
    let on = fp_enabled(g, p);
    g.b.ins().brif(on, go, &[], miss, &[]);
    g.b.switch_to_block(go);
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
                let hit = g.hits_block(host, 1 << scale);
                let (check, on) = (g.b.create_block(), g.b.create_block());
                g.b.ins().brif(hit, check, &[], on, &[]);
                g.b.switch_to_block(check);
                g.check_words(k + 1);
                g.b.ins().jump(on, &[]);
                g.b.switch_to_block(on);
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
    let after = g.snapshot();
    let join = g.b.create_block();
    g.b.ins().jump(join, &[]);
    g.b.switch_to_block(miss);
    g.restore(before);
    g.call(tramp, k, pc, id, op);
    g.rejoin(after);
    g.b.ins().jump(join, &[]);
    g.b.switch_to_block(join);
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

#[cfg(test)]
#[path = "jit_simd_tests.rs"]
mod tests;
