//! Advanced SIMD floating-point operations, vector and scalar forms (Arm ARM C4.1.90): the
//! FP opcodes of "three same" and "two-register miscellaneous", FP across lanes and scalar
//! pairwise, FP by element and the fixed-point conversions of "shift by immediate". Single
//! and double precision (half precision needs FEAT_FP16, not implemented, so UNDEFINED),
//! except FCVTN/FCVTL, which convert to and from half precision in ARMv8.0.

use super::alu::ones;
use super::fp::{Fmt, Fp, Rounding};
use super::fp_conv::{urecpe, ursqrte};
use super::fp_scalar::{fp_binary, two as bin};
use super::simd_elem::{all, el, int, put};
use super::simd_indexed::index_and_rm;
use super::{Cpu, Stop};

/// FP three same, keyed by (U, a = bit 23, opcode bits 15:11).
mod three {
    type K = (bool, bool, u32);
    pub const FMAXNM: K = (false, false, 0b11000);
    pub const FMLA: K = (false, false, 0b11001);
    pub const FADD: K = (false, false, 0b11010);
    pub const FMULX: K = (false, false, 0b11011);
    pub const FCMEQ: K = (false, false, 0b11100);
    pub const FMAX: K = (false, false, 0b11110);
    pub const FRECPS: K = (false, false, 0b11111);
    pub const FMINNM: K = (false, true, 0b11000);
    pub const FMLS: K = (false, true, 0b11001);
    pub const FSUB: K = (false, true, 0b11010);
    pub const FMIN: K = (false, true, 0b11110);
    pub const FRSQRTS: K = (false, true, 0b11111);
    pub const FMAXNMP: K = (true, false, 0b11000);
    pub const FADDP: K = (true, false, 0b11010);
    pub const FMUL: K = (true, false, 0b11011);
    pub const FCMGE: K = (true, false, 0b11100);
    pub const FACGE: K = (true, false, 0b11101);
    pub const FMAXP: K = (true, false, 0b11110);
    pub const FDIV: K = (true, false, 0b11111);
    pub const FMINNMP: K = (true, true, 0b11000);
    pub const FABD: K = (true, true, 0b11010);
    pub const FCMGT: K = (true, true, 0b11100);
    pub const FACGT: K = (true, true, 0b11101);
    pub const FMINP: K = (true, true, 0b11110);
}

/// FP two-register miscellaneous, keyed by (U, a = bit 23, opcode bits 16:12).
mod misc {
    type K = (bool, bool, u32);
    pub const FCVTN: K = (false, false, 0b10110);
    pub const FCVTL: K = (false, false, 0b10111);
    pub const FRINTN: K = (false, false, 0b11000);
    pub const FRINTM: K = (false, false, 0b11001);
    pub const FCVTNS: K = (false, false, 0b11010);
    pub const FCVTMS: K = (false, false, 0b11011);
    pub const FCVTAS: K = (false, false, 0b11100);
    pub const SCVTF: K = (false, false, 0b11101);
    pub const FCMGT0: K = (false, true, 0b01100);
    pub const FCMEQ0: K = (false, true, 0b01101);
    pub const FCMLT0: K = (false, true, 0b01110);
    pub const FABS: K = (false, true, 0b01111);
    pub const FRINTP: K = (false, true, 0b11000);
    pub const FRINTZ: K = (false, true, 0b11001);
    pub const FCVTPS: K = (false, true, 0b11010);
    pub const FCVTZS: K = (false, true, 0b11011);
    pub const URECPE: K = (false, true, 0b11100);
    pub const FRECPE: K = (false, true, 0b11101);
    pub const FRECPX: K = (false, true, 0b11111);
    pub const FCVTXN: K = (true, false, 0b10110);
    pub const FRINTA: K = (true, false, 0b11000);
    pub const FRINTX: K = (true, false, 0b11001);
    pub const FCVTNU: K = (true, false, 0b11010);
    pub const FCVTMU: K = (true, false, 0b11011);
    pub const FCVTAU: K = (true, false, 0b11100);
    pub const UCVTF: K = (true, false, 0b11101);
    pub const FCMGE0: K = (true, true, 0b01100);
    pub const FCMLE0: K = (true, true, 0b01101);
    pub const FNEG: K = (true, true, 0b01111);
    pub const FRINTI: K = (true, true, 0b11001);
    pub const FCVTPU: K = (true, true, 0b11010);
    pub const FCVTZU: K = (true, true, 0b11011);
    pub const URSQRTE: K = (true, true, 0b11100);
    pub const FRSQRTE: K = (true, true, 0b11101);
    pub const FSQRT: K = (true, true, 0b11111);
}

/// Element geometry of an FP vector or scalar form with precision bit `sz` (bit 22).
struct Lanes {
    fmt: Fmt,
    esize: u32,
    count: u32,
    q: bool,
}

impl Lanes {
    /// `None` for the reserved 64-bit-element, 64-bit-vector arrangement.
    fn of(i: u32) -> Option<Lanes> {
        let (q, scalar, sz) = ((i >> 30) & 1 == 1, (i >> 28) & 1 == 1, (i >> 22) & 1);
        let esize = 32 << sz;
        if !scalar && sz == 1 && !q {
            return None;
        }
        let count = if scalar {
            1
        } else {
            (if q { 128 } else { 64 }) / esize
        };
        Some(Lanes {
            fmt: Fmt::of_bits(esize),
            esize,
            count,
            q: q && !scalar,
        })
    }
}

/// The three-same op on one pair of elements (`d`: the destination's element).
fn three_op(f: &mut Fp, key: (bool, bool, u32), a: u64, b: u64, d: u64, fmt: Fmt) -> u64 {
    use three::*;
    let sign = 1u64 << (fmt.bits() - 1);
    let abs = |x: u64| x & !sign;
    let cmp = |f: &mut Fp, x, y, signal| {
        let (vx, vy) = (f.unpack(x, fmt), f.unpack(y, fmt));
        f.cmp_signal(&vx, &vy, signal)
    };
    use std::cmp::Ordering::*;
    match key {
        FMAXNM | FMAXNMP => fp_binary(f, bin::FMAXNM, a, b, fmt),
        FMINNM | FMINNMP => fp_binary(f, bin::FMINNM, a, b, fmt),
        FMAX | FMAXP => fp_binary(f, bin::FMAX, a, b, fmt),
        FMIN | FMINP => fp_binary(f, bin::FMIN, a, b, fmt),
        FADD | FADDP => fp_binary(f, bin::FADD, a, b, fmt),
        FSUB => fp_binary(f, bin::FSUB, a, b, fmt),
        FMUL => fp_binary(f, bin::FMUL, a, b, fmt),
        FDIV => fp_binary(f, bin::FDIV, a, b, fmt),
        FMULX => f.mul(a, b, fmt, true),
        FMLA => f.mul_add(d, a, b, fmt),
        FMLS => f.mul_add(d, a ^ sign, b, fmt),
        FABD => abs(fp_binary(f, bin::FSUB, a, b, fmt)),
        FRECPS => f.step_fused(a, b, fmt, false),
        FRSQRTS => f.step_fused(a, b, fmt, true),
        FCMEQ => all(cmp(f, a, b, false) == Some(Equal)),
        FCMGE => all(matches!(cmp(f, a, b, true), Some(Greater | Equal))),
        FCMGT => all(cmp(f, a, b, true) == Some(Greater)),
        FACGE => all(matches!(
            cmp(f, abs(a), abs(b), true),
            Some(Greater | Equal)
        )),
        _ => all(cmp(f, abs(a), abs(b), true) == Some(Greater)), // FACGT
    }
}

impl Cpu {
    /// FP three same (vector: all of `three`; scalar: FMULX, FCMxx, FACxx, FABD, FRECPS,
    /// FRSQRTS).
    pub(super) fn simd_three_same_fp(&mut self, i: u32) -> Result<(), Stop> {
        use three::*;
        let key = ((i >> 29) & 1 == 1, (i >> 23) & 1 == 1, (i >> 11) & 31);
        let scalar = (i >> 28) & 1 == 1;
        let vector_ops = [
            FMAXNM, FMLA, FADD, FMULX, FCMEQ, FMAX, FRECPS, FMINNM, FMLS, FSUB, FMIN, FRSQRTS,
            FMAXNMP, FADDP, FMUL, FCMGE, FACGE, FMAXP, FDIV, FMINNMP, FABD, FCMGT, FACGT, FMINP,
        ];
        let scalar_ops = [
            FMULX, FCMEQ, FRECPS, FRSQRTS, FCMGE, FACGE, FABD, FCMGT, FACGT,
        ];
        let ok = if scalar {
            scalar_ops.contains(&key)
        } else {
            vector_ops.contains(&key)
        };
        let Some(l) = Lanes::of(i).filter(|_| ok) else {
            return Err(self.undef(i));
        };
        let pairwise = matches!(key, FMAXNMP | FADDP | FMAXP | FMINNMP | FMINP);
        let (n, m, d) = (self.vreg(i >> 5), self.vreg(i >> 16), self.vreg(i));
        let mut f = self.fp();
        let mut r = 0u128;
        for k in 0..l.count {
            let (a, b) = if pairwise {
                let cat = |j: u32| {
                    if j < l.count {
                        el(n, j, l.esize)
                    } else {
                        el(m, j - l.count, l.esize)
                    }
                };
                (cat(2 * k), cat(2 * k + 1))
            } else {
                (el(n, k, l.esize), el(m, k, l.esize))
            };
            let v = three_op(&mut f, key, a, b, el(d, k, l.esize), l.fmt);
            put(&mut r, k, l.esize, v);
        }
        self.fp_flags(f);
        self.set_vreg(i, r, l.q);
        Ok(())
    }

    /// FP two-register miscellaneous (and URECPE/URSQRTE), vector and scalar.
    pub(super) fn simd_two_misc_fp(&mut self, i: u32) -> Result<(), Stop> {
        use misc::*;
        let key = ((i >> 29) & 1 == 1, (i >> 23) & 1 == 1, (i >> 12) & 31);
        let scalar = (i >> 28) & 1 == 1;
        if matches!(key, FCVTN | FCVTL | FCVTXN) {
            return self.fp_narrow_widen(i, key);
        }
        let vector_only = [
            FRINTN, FRINTM, FRINTP, FRINTZ, FRINTA, FRINTX, FRINTI, FABS, FNEG,
        ];
        let vector_only2 = [FSQRT, URECPE, URSQRTE];
        let both = [
            FCVTNS, FCVTMS, FCVTAS, SCVTF, FCMGT0, FCMEQ0, FCMLT0, FCVTPS, FCVTZS, FRECPE, FCVTNU,
            FCVTMU, FCVTAU, UCVTF, FCMGE0, FCMLE0, FCVTPU, FCVTZU, FRSQRTE,
        ];
        let ok = both.contains(&key)
            || (scalar && key == FRECPX)
            || (!scalar && (vector_only.contains(&key) || vector_only2.contains(&key)));
        let Some(l) = Lanes::of(i).filter(|_| ok) else {
            return Err(self.undef(i));
        };
        if matches!(key, URECPE | URSQRTE) && l.esize != 32 {
            return Err(self.undef(i));
        }
        let (n, fmt) = (self.vreg(i >> 5), l.fmt);
        let sign = 1u64 << (l.esize - 1);
        let mut f = self.fp();
        let rm = f.rounding();
        let mut r = 0u128;
        use std::cmp::Ordering::*;
        for k in 0..l.count {
            let a = el(n, k, l.esize);
            let cmp0 = |f: &mut Fp, signal| {
                let (va, vz) = (f.unpack(a, fmt), f.unpack(0, fmt));
                f.cmp_signal(&va, &vz, signal)
            };
            let to_int = |f: &mut Fp, u, rnd| f.fp_to_fixed(a, fmt, 0, u, l.esize, rnd);
            let v = match key {
                FRINTN => f.round_int(a, fmt, Rounding::TieEven, false),
                FRINTM => f.round_int(a, fmt, Rounding::NegInf, false),
                FRINTP => f.round_int(a, fmt, Rounding::PosInf, false),
                FRINTZ => f.round_int(a, fmt, Rounding::Zero, false),
                FRINTA => f.round_int(a, fmt, Rounding::TieAway, false),
                FRINTX => f.round_int(a, fmt, rm, true),
                FRINTI => f.round_int(a, fmt, rm, false),
                FCVTNS | FCVTNU => to_int(&mut f, key.0, Rounding::TieEven),
                FCVTMS | FCVTMU => to_int(&mut f, key.0, Rounding::NegInf),
                FCVTAS | FCVTAU => to_int(&mut f, key.0, Rounding::TieAway),
                FCVTPS | FCVTPU => to_int(&mut f, key.0, Rounding::PosInf),
                FCVTZS | FCVTZU => to_int(&mut f, key.0, Rounding::Zero),
                SCVTF | UCVTF => f.fixed_to_fp(int(a, l.esize, key.0), 0, fmt, rm),
                FCMGT0 => all(cmp0(&mut f, true) == Some(Greater)),
                FCMGE0 => all(matches!(cmp0(&mut f, true), Some(Greater | Equal))),
                FCMEQ0 => all(cmp0(&mut f, false) == Some(Equal)),
                FCMLE0 => all(matches!(cmp0(&mut f, true), Some(Less | Equal))),
                FCMLT0 => all(cmp0(&mut f, true) == Some(Less)),
                FABS => a & !sign,
                FNEG => a ^ sign,
                FSQRT => f.sqrt(a, fmt),
                FRECPE => f.recip_estimate(a, fmt),
                FRSQRTE => f.rsqrt_estimate(a, fmt),
                FRECPX => f.recpx(a, fmt),
                URECPE => urecpe(a as u32) as u64,
                _ => ursqrte(a as u32) as u64, // URSQRTE
            };
            put(&mut r, k, l.esize, v);
        }
        self.fp_flags(f);
        self.set_vreg(i, r, l.q);
        Ok(())
    }

    /// FCVTN{2} (to half or single), FCVTXN{2} (double to single, round to odd, also scalar)
    /// and FCVTL{2} (from half or single).
    fn fp_narrow_widen(&mut self, i: u32, key: (bool, bool, u32)) -> Result<(), Stop> {
        let (q, scalar, sz) = ((i >> 30) & 1 == 1, (i >> 28) & 1 == 1, (i >> 22) & 1);
        if (key == misc::FCVTXN && sz == 0) || (scalar && key != misc::FCVTXN) {
            return Err(self.undef(i));
        }
        let (narrow, wide) = if sz == 1 { (32, 64) } else { (16, 32) };
        let (nf, wf) = (Fmt::of_bits(narrow), Fmt::of_bits(wide));
        let n = self.vreg(i >> 5);
        let mut f = self.fp();
        let count = if scalar { 1 } else { 64 / narrow };
        let r = if key == misc::FCVTL {
            let base = if q { count } else { 0 };
            let mut r = 0u128;
            for k in 0..count {
                let rnd = f.rounding();
                let v = f.convert(el(n, base + k, narrow), nf, wf, rnd);
                put(&mut r, k, wide, v);
            }
            r
        } else {
            let rnd = if key == misc::FCVTXN {
                Rounding::Odd
            } else {
                f.rounding()
            };
            let base = if q && !scalar { count } else { 0 };
            let mut r = if base > 0 {
                self.vreg(i) & u64::MAX as u128
            } else {
                0
            };
            for k in 0..count {
                let v = f.convert(el(n, k, wide), wf, nf, rnd);
                put(&mut r, base + k, narrow, v);
            }
            r
        };
        self.fp_flags(f);
        self.set_vreg(i, r, true);
        Ok(())
    }

    /// FMAXNMV, FMINNMV, FMAXV, FMINV (4S only): the Arm ARM `Reduce` tree.
    pub(super) fn simd_across_fp(&mut self, i: u32) -> Result<(), Stop> {
        let (q, u, a, sz) = ((i >> 30) & 1, (i >> 29) & 1, (i >> 23) & 1, (i >> 22) & 1);
        if q == 0 || u == 0 || sz == 1 {
            return Err(self.undef(i));
        }
        let op = match ((i >> 12) & 31 == 0b01100, a == 1) {
            (true, false) => bin::FMAXNM,
            (true, true) => bin::FMINNM,
            (false, false) => bin::FMAX,
            (false, true) => bin::FMIN,
        };
        let n = self.vreg(i >> 5);
        let e: Vec<u64> = (0..4).map(|k| el(n, k, 32)).collect();
        let mut f = self.fp();
        let lo = fp_binary(&mut f, op, e[0], e[1], Fmt::S);
        let hi = fp_binary(&mut f, op, e[2], e[3], Fmt::S);
        let r = fp_binary(&mut f, op, lo, hi, Fmt::S);
        self.fp_flags(f);
        self.st.v[(i & 31) as usize] = r as u128;
        Ok(())
    }

    /// Scalar pairwise FADDP, FMAXP, FMINP, FMAXNMP, FMINNMP (U = 1).
    pub(super) fn simd_scalar_pairwise_fp(&mut self, i: u32) -> Result<(), Stop> {
        let (a, sz) = ((i >> 23) & 1 == 1, (i >> 22) & 1);
        let op = match ((i >> 12) & 31, a) {
            (0b01100, false) => bin::FMAXNM,
            (0b01100, true) => bin::FMINNM,
            (0b01101, false) => bin::FADD,
            (0b01111, false) => bin::FMAX,
            (0b01111, true) => bin::FMIN,
            _ => return Err(self.undef(i)),
        };
        let esize = 32 << sz;
        let n = self.vreg(i >> 5);
        let mut f = self.fp();
        let r = fp_binary(
            &mut f,
            op,
            el(n, 0, esize),
            el(n, 1, esize),
            Fmt::of_bits(esize),
        );
        self.fp_flags(f);
        self.st.v[(i & 31) as usize] = r as u128;
        Ok(())
    }

    /// FMLA, FMLS, FMUL, FMULX (by element), vector and scalar.
    pub(super) fn simd_indexed_fp(&mut self, i: u32) -> Result<(), Stop> {
        let size = (i >> 22) & 3;
        let opc = ((i >> 29) & 1, (i >> 12) & 15);
        let lanes = Lanes::of(i).filter(|_| size >= 2);
        let (Some(l), Some((index, rm))) = (lanes, index_and_rm(i, size)) else {
            return Err(self.undef(i));
        };
        let (n, d) = (self.vreg(i >> 5), self.vreg(i));
        let b = el(self.vreg(rm), index, l.esize);
        let sign = 1u64 << (l.esize - 1);
        let mut f = self.fp();
        let mut r = 0u128;
        for k in 0..l.count {
            let (a, acc) = (el(n, k, l.esize), el(d, k, l.esize));
            let v = match opc {
                (0, 0b0001) => f.mul_add(acc, a, b, l.fmt),        // FMLA
                (0, 0b0101) => f.mul_add(acc, a ^ sign, b, l.fmt), // FMLS
                (0, _) => f.mul(a, b, l.fmt, false),               // FMUL
                _ => f.mul(a, b, l.fmt, true),                     // FMULX
            };
            put(&mut r, k, l.esize, v);
        }
        self.fp_flags(f);
        self.set_vreg(i, r, l.q);
        Ok(())
    }

    /// SCVTF, UCVTF, FCVTZS, FCVTZU (vector and scalar, fixed-point with `fbits`).
    pub(super) fn simd_fixed_point(&mut self, i: u32, esize: u32, fbits: u32) -> Result<(), Stop> {
        let (q, u, scalar) = ((i >> 30) & 1 == 1, (i >> 29) & 1 == 1, (i >> 28) & 1 == 1);
        if esize < 32 || (!scalar && esize == 64 && !q) {
            return Err(self.undef(i));
        }
        let to_int = (i >> 11) & 31 == 0b11111;
        let fmt = Fmt::of_bits(esize);
        let count = if scalar {
            1
        } else {
            (if q { 128 } else { 64 }) / esize
        };
        let n = self.vreg(i >> 5);
        let mut f = self.fp();
        let rm = f.rounding();
        let mut r = 0u128;
        for k in 0..count {
            let a = el(n, k, esize) & ones(esize);
            let v = if to_int {
                f.fp_to_fixed(a, fmt, fbits, u, esize, Rounding::Zero)
            } else {
                f.fixed_to_fp(int(a, esize, u), fbits, fmt, rm)
            };
            put(&mut r, k, esize, v);
        }
        self.fp_flags(f);
        self.set_vreg(i, r, q && !scalar);
        Ok(())
    }
}
