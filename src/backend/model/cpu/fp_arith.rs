//! The arithmetic operations of `fp.rs`'s context (Arm ARM shared pseudocode J1 `FPAdd`,
//! `FPMul`, `FPMulX`, `FPDiv`, `FPSqrt`, `FPMulAdd`, `FPCompare`, `FPMax`/`FPMin`,
//! `FPMaxNum`/`FPMinNum`) on exact integer values rounded once by `Fp::round`.

use std::cmp::Ordering;

use super::fp::{Class, Fmt, Fp, Rounding, Val, DZC, IOC};

impl Fp {
    /// FPRound of an exact value, or the zero whose sign the rounding mode gives
    /// (FPAdd/FPMulAdd: an exact zero sum is -0 only when rounding towards -infinity).
    fn round_sum(&mut self, sum: Option<(bool, u128, i32)>, fmt: Fmt) -> u64 {
        let rnd = self.rounding();
        match sum {
            Some((s, m, e)) => self.round(s, m, e, fmt, rnd),
            None => Fp::zero(rnd == Rounding::NegInf, fmt),
        }
    }

    /// FPAdd, or FPSub when `sub` (a NaN operand is propagated with its own sign).
    pub fn add(&mut self, a: u64, b: u64, fmt: Fmt, sub: bool) -> u64 {
        let (va, mut vb) = (self.unpack(a, fmt), self.unpack(b, fmt));
        if let Some(n) = self.process_nans(&[(a, va), (b, vb)], fmt) {
            return n;
        }
        vb.sign ^= sub;
        use Class::*;
        match (va.class, vb.class) {
            (Inf, Inf) if va.sign != vb.sign => self.invalid(fmt),
            (Inf, _) => Fp::inf(va.sign, fmt),
            (_, Inf) => Fp::inf(vb.sign, fmt),
            (Zero, Zero) if va.sign == vb.sign => Fp::zero(va.sign, fmt),
            _ => {
                let s = add_exact(&va, &vb);
                self.round_sum(s, fmt)
            }
        }
    }

    /// FPMul, or FPMulX (`mulx`: infinity times zero is 2.0 with the product's sign).
    pub fn mul(&mut self, a: u64, b: u64, fmt: Fmt, mulx: bool) -> u64 {
        let (va, vb) = (self.unpack(a, fmt), self.unpack(b, fmt));
        if let Some(n) = self.process_nans(&[(a, va), (b, vb)], fmt) {
            return n;
        }
        let sign = va.sign != vb.sign;
        use Class::*;
        match (va.class, vb.class) {
            (Inf, Zero) | (Zero, Inf) if mulx => self.two(sign, fmt),
            (Inf, Zero) | (Zero, Inf) => self.invalid(fmt),
            (Inf, _) | (_, Inf) => Fp::inf(sign, fmt),
            (Zero, _) | (_, Zero) => Fp::zero(sign, fmt),
            _ => {
                let rnd = self.rounding();
                self.round(sign, va.mant * vb.mant, va.exp + vb.exp, fmt, rnd)
            }
        }
    }

    /// 2.0 with `sign` (FPTwo).
    pub fn two(&self, sign: bool, fmt: Fmt) -> u64 {
        Fp::zero(sign, fmt) | ((fmt.bias() + 1) as u64) << fmt.f()
    }

    /// FPDiv.
    pub fn div(&mut self, a: u64, b: u64, fmt: Fmt) -> u64 {
        let (va, vb) = (self.unpack(a, fmt), self.unpack(b, fmt));
        if let Some(n) = self.process_nans(&[(a, va), (b, vb)], fmt) {
            return n;
        }
        let sign = va.sign != vb.sign;
        use Class::*;
        match (va.class, vb.class) {
            (Inf, Inf) | (Zero, Zero) => self.invalid(fmt),
            (Inf, _) => Fp::inf(sign, fmt),
            (_, Zero) => {
                self.flags |= DZC;
                Fp::inf(sign, fmt)
            }
            (Zero, _) | (_, Inf) => Fp::zero(sign, fmt),
            _ => {
                // A quotient of at least 70 bits, the remainder as a sticky bit.
                let na = va.mant << (va.mant.leading_zeros() - 4);
                let ea = va.exp - (va.mant.leading_zeros() as i32 - 4);
                let q = na / vb.mant;
                let sticky = (na % vb.mant != 0) as u128;
                let rnd = self.rounding();
                self.round(sign, q << 1 | sticky, ea - vb.exp - 1, fmt, rnd)
            }
        }
    }

    /// FPSqrt.
    pub fn sqrt(&mut self, a: u64, fmt: Fmt) -> u64 {
        let va = self.unpack(a, fmt);
        if let Some(n) = self.process_nans(&[(a, va)], fmt) {
            return n;
        }
        match va.class {
            Class::Zero => Fp::zero(va.sign, fmt),
            _ if va.sign => self.invalid(fmt),
            Class::Inf => Fp::inf(false, fmt),
            _ => {
                // Scale to about 120 bits with an even exponent: a 60-bit root.
                let mut sh = va.mant.leading_zeros() as i32 - 8;
                if (va.exp - sh) & 1 != 0 {
                    sh += 1;
                }
                let m = va.mant << sh;
                let r = isqrt(m);
                let sticky = (r * r != m) as u128;
                let rnd = self.rounding();
                self.round(false, r << 1 | sticky, (va.exp - sh) / 2 - 1, fmt, rnd)
            }
        }
    }

    /// FPMulAdd: addend + a * b with one rounding.
    pub fn mul_add(&mut self, addend: u64, a: u64, b: u64, fmt: Fmt) -> u64 {
        let (vc, va, vb) = (
            self.unpack(addend, fmt),
            self.unpack(a, fmt),
            self.unpack(b, fmt),
        );
        use Class::*;
        let inf_zero = matches!((va.class, vb.class), (Inf, Zero) | (Zero, Inf));
        let nan = self.process_nans(&[(addend, vc), (a, va), (b, vb)], fmt);
        if vc.class == QNaN && inf_zero {
            return self.invalid(fmt);
        }
        if let Some(n) = nan {
            return n;
        }
        let sign_p = va.sign != vb.sign;
        let inf_p = va.class == Inf || vb.class == Inf;
        let zero_p = va.class == Zero || vb.class == Zero;
        if inf_zero || (vc.class == Inf && inf_p && vc.sign != sign_p) {
            return self.invalid(fmt);
        }
        if (vc.class == Inf && !vc.sign) || (inf_p && !sign_p) {
            return Fp::inf(false, fmt);
        }
        if vc.class == Inf || inf_p {
            return Fp::inf(true, fmt);
        }
        if vc.class == Zero && zero_p && vc.sign == sign_p {
            return Fp::zero(vc.sign, fmt);
        }
        let p = if zero_p {
            Val {
                class: Zero,
                sign: sign_p,
                mant: 0,
                exp: 0,
            }
        } else {
            Val::num(sign_p, va.mant * vb.mant, va.exp + vb.exp)
        };
        let s = add_exact(&vc, &p);
        self.round_sum(s, fmt)
    }

    /// FPCompare: NZCV (unordered 0011, equal 0110, less 1000, greater 0010); any NaN
    /// signals IOC when `signal`, a signalling NaN always.
    pub fn compare(&mut self, a: u64, b: u64, fmt: Fmt, signal: bool) -> u64 {
        let (va, vb) = (self.unpack(a, fmt), self.unpack(b, fmt));
        match self.cmp_signal(&va, &vb, signal) {
            None => 0b0011,
            Some(Ordering::Equal) => 0b0110,
            Some(Ordering::Less) => 0b1000,
            Some(Ordering::Greater) => 0b0010,
        }
    }

    /// Ordered comparison of unpacked operands; `None` (and IOC as `compare`) for NaNs.
    pub fn cmp_signal(&mut self, va: &Val, vb: &Val, signal: bool) -> Option<Ordering> {
        if va.is_nan() || vb.is_nan() {
            if signal || va.class == Class::SNaN || vb.class == Class::SNaN {
                self.flags |= IOC;
            }
            return None;
        }
        Some(cmp_vals(va, vb))
    }

    /// FPMax (`max`) / FPMin; with `num`, FPMaxNum / FPMinNum (one quiet NaN is ignored).
    pub fn max_min(&mut self, a: u64, b: u64, fmt: Fmt, max: bool, num: bool) -> u64 {
        let (mut a, mut b) = (a, b);
        let (mut va, mut vb) = (self.unpack(a, fmt), self.unpack(b, fmt));
        if num {
            let replace = |v: &mut Val, x: &mut u64| {
                *x = Fp::inf(max, fmt);
                v.class = Class::Inf;
                v.sign = max;
            };
            match (va.class == Class::QNaN, vb.class == Class::QNaN) {
                (true, false) => replace(&mut va, &mut a),
                (false, true) => replace(&mut vb, &mut b),
                _ => {}
            }
        }
        if let Some(n) = self.process_nans(&[(a, va), (b, vb)], fmt) {
            return n;
        }
        let pick_a = match cmp_vals(&va, &vb) {
            Ordering::Greater => max,
            Ordering::Less => !max,
            Ordering::Equal => false,
        };
        let v = if pick_a { va } else { vb };
        match v.class {
            Class::Inf => Fp::inf(v.sign, fmt),
            Class::Zero if max => Fp::zero(va.sign && vb.sign, fmt),
            Class::Zero => Fp::zero(va.sign || vb.sign, fmt),
            _ => self.round(v.sign, v.mant, v.exp, fmt, Rounding::Zero),
        }
    }
}

/// Orders two non-NaN operands by value (+0 and -0 are equal).
pub fn cmp_vals(a: &Val, b: &Val) -> Ordering {
    let mag = |v: &Val| match v.class {
        Class::Zero => 0,
        Class::Num => 1,
        _ => 2,
    };
    let m = mag(a).cmp(&mag(b)).then_with(|| {
        if a.class != Class::Num {
            return Ordering::Equal;
        }
        a.top().cmp(&b.top()).then_with(|| {
            // Same leading exponent: align the mantissas at bit 127.
            let (x, y) = (
                a.mant << a.mant.leading_zeros(),
                b.mant << b.mant.leading_zeros(),
            );
            x.cmp(&y)
        })
    });
    let both_zero = a.class == Class::Zero && b.class == Class::Zero;
    match (a.sign, b.sign) {
        _ if both_zero => Ordering::Equal,
        (false, false) => m,
        (true, true) => m.reverse(),
        (false, true) => Ordering::Greater,
        (true, false) => Ordering::Less,
    }
}

/// The exact sum of two operands (Num or Zero), `None` when it is exactly zero. The smaller
/// addend is aligned with its shifted-out bits kept as a sticky bit 0, at least 70 bits
/// below the rounding point of any format.
pub fn add_exact(a: &Val, b: &Val) -> Option<(bool, u128, i32)> {
    let norm = |v: &Val| {
        let sh = v.mant.leading_zeros() as i32 - 4;
        (v.sign, v.mant << sh, v.exp - sh)
    };
    match (a.class == Class::Num, b.class == Class::Num) {
        (false, false) => return None,
        (true, false) => return Some(norm(a)),
        (false, true) => return Some(norm(b)),
        _ => {}
    }
    let (x, y) = (norm(a), norm(b));
    let (big, small) = if x.2 >= y.2 { (x, y) } else { (y, x) };
    let d = big.2 - small.2;
    let (bm, sm, e) = if d <= 3 {
        (big.1 << d, small.1, small.2)
    } else if d >= 128 {
        (big.1, 1, big.2)
    } else {
        let lost = small.1 & ((1u128 << d) - 1) != 0;
        (big.1, small.1 >> d | lost as u128, big.2)
    };
    if big.0 == small.0 {
        return Some((big.0, bm + sm, e));
    }
    match bm.cmp(&sm) {
        Ordering::Equal => None,
        Ordering::Greater => Some((big.0, bm - sm, e)),
        Ordering::Less => Some((small.0, sm - bm, e)),
    }
}

/// Integer square root (floor) of a 128-bit value.
fn isqrt(v: u128) -> u128 {
    let mut r: u128 = 0;
    let mut bit = 1u128 << 126;
    let mut x = v;
    while bit > v {
        bit >>= 2;
    }
    while bit != 0 {
        if x >= r + bit {
            x -= r + bit;
            r = (r >> 1) + bit;
        } else {
            r >>= 1;
        }
        bit >>= 2;
    }
    r
}
