//! Floating-point conversions and estimates as the Arm ARM defines them (shared pseudocode
//! J1 `FPConvert`, `FPRoundInt`, `FPToFixed`, `FixedToFP`, `FPRecipEstimate`,
//! `FPRSqrtEstimate`, `FPRecipStepFused`, `FPRSqrtStepFused`, `FPRecpX`,
//! `UnsignedRecipEstimate`, `UnsignedRSqrtEstimate`), on top of `fp.rs`.

use std::cmp::Ordering;

use super::fp::{add_exact, Class, Fmt, Fp, Rounding, Val, DZC, IOC, IXC, OFC, UFC};

/// The value's magnitude scaled by 2^`scale`, split into its integer part and whether the
/// fraction is zero, below, at or above one half (as (integer, fraction class)).
fn int_part(v: &Val, scale: i32) -> (u128, u8) {
    let e = v.exp + scale;
    if e >= 0 {
        // Values of 2^100 or more only matter as "too big": clamp them.
        let top = 127 - v.mant.leading_zeros() as i32 + e;
        return if top >= 100 {
            (1 << 100, 0)
        } else {
            (v.mant << e, 0)
        };
    }
    let sh = -e;
    if sh >= 128 {
        return (0, 1);
    }
    let (q, rem, half) = (
        v.mant >> sh,
        v.mant & ((1u128 << sh) - 1),
        1u128 << (sh - 1),
    );
    let frac = match rem.cmp(&half) {
        _ if rem == 0 => 0,
        Ordering::Less => 1,
        Ordering::Equal => 2,
        Ordering::Greater => 3,
    };
    (q, frac)
}

/// Rounds magnitude `q` with fraction class `frac` (0 none, 1 below half, 2 half, 3 above)
/// of a value of sign `sign` to an integer magnitude (FPRoundInt / FPToFixed rounding).
fn round_mag(q: u128, frac: u8, sign: bool, rnd: Rounding) -> u128 {
    let up = match rnd {
        Rounding::TieEven => frac == 3 || (frac == 2 && q & 1 == 1),
        Rounding::TieAway => frac >= 2,
        Rounding::PosInf => frac != 0 && !sign,
        Rounding::NegInf => frac != 0 && sign,
        Rounding::Zero | Rounding::Odd => false,
    };
    q + up as u128
}

impl Fp {
    /// FPConvert (FCVT, FCVTL, FCVTN, FCVTXN with `Rounding::Odd`): `from` to `to`.
    pub fn convert(&mut self, a: u64, from: Fmt, to: Fmt, rnd: Rounding) -> u64 {
        let v = self.unpack(a, from);
        let alt_hp = to == Fmt::H && self.fpcr & (1 << 26) != 0;
        match v.class {
            Class::QNaN | Class::SNaN => {
                let r = if alt_hp {
                    Fp::zero(v.sign, to)
                } else if self.fpcr & (1 << 25) != 0 {
                    self.default_nan(to)
                } else {
                    // FPConvertNaN: the payload below the quiet bit, left-aligned.
                    let payload = a & ((1u64 << (from.f() - 1)) - 1);
                    let p = if to.f() >= from.f() {
                        payload << (to.f() - from.f())
                    } else {
                        payload >> (from.f() - to.f())
                    };
                    Fp::inf(v.sign, to) | 1 << (to.f() - 1) | p
                };
                if v.class == Class::SNaN || alt_hp {
                    self.flags |= IOC;
                }
                r
            }
            Class::Inf if alt_hp => {
                self.flags |= IOC;
                Fp::zero(v.sign, to) | ((1u64 << 15) - 1)
            }
            Class::Inf => Fp::inf(v.sign, to),
            Class::Zero => Fp::zero(v.sign, to),
            Class::Num => self.round(v.sign, v.mant, v.exp, to, rnd),
        }
    }

    /// FPRoundInt (FRINT*): `a` rounded to an integral value; `exact` (FRINTX) signals IXC.
    pub fn round_int(&mut self, a: u64, fmt: Fmt, rnd: Rounding, exact: bool) -> u64 {
        let v = self.unpack(a, fmt);
        match v.class {
            Class::QNaN | Class::SNaN => self.process_nan(a, &v, fmt),
            Class::Inf => Fp::inf(v.sign, fmt),
            Class::Zero => Fp::zero(v.sign, fmt),
            Class::Num => {
                let (q, frac) = int_part(&v, 0);
                let r = round_mag(q, frac, v.sign, rnd);
                if frac != 0 && exact {
                    self.flags |= IXC;
                }
                if r == 0 {
                    Fp::zero(v.sign, fmt)
                } else if v.exp >= 0 {
                    a & (Fp::inf(true, fmt) | ((1u64 << fmt.f()) - 1))
                } else {
                    let mut f = Fp::new(self.fpcr);
                    f.round(v.sign, r, 0, fmt, Rounding::Zero)
                }
            }
        }
    }

    /// FPToFixed: `a` * 2^fbits rounded to a `bits`-bit signed or unsigned integer,
    /// saturating with IOC (NaN gives 0 and IOC).
    pub fn fp_to_fixed(
        &mut self,
        a: u64,
        fmt: Fmt,
        fbits: u32,
        unsigned: bool,
        bits: u32,
        rnd: Rounding,
    ) -> u64 {
        let v = self.unpack(a, fmt);
        let (mag, frac) = match v.class {
            Class::QNaN | Class::SNaN => {
                self.flags |= IOC;
                return 0;
            }
            Class::Zero => (0, 0),
            Class::Inf => (1u128 << 100, 0),
            Class::Num => int_part(&v, fbits as i32),
        };
        let r = round_mag(mag, frac, v.sign, rnd) as i128;
        let r = if v.sign { -r } else { r };
        let (lo, hi) = if unsigned {
            (0, (1i128 << bits) - 1)
        } else {
            (-(1i128 << (bits - 1)), (1i128 << (bits - 1)) - 1)
        };
        if r < lo || r > hi {
            self.flags |= IOC;
        } else if frac != 0 {
            self.flags |= IXC;
        }
        let mask = if bits == 64 {
            u64::MAX
        } else {
            (1u64 << bits) - 1
        };
        r.clamp(lo, hi) as u64 & mask
    }

    /// FixedToFP: the integer `x` / 2^fbits rounded to `fmt`.
    pub fn fixed_to_fp(&mut self, x: i128, fbits: u32, fmt: Fmt, rnd: Rounding) -> u64 {
        if x == 0 {
            return 0;
        }
        self.round(x < 0, x.unsigned_abs(), -(fbits as i32), fmt, rnd)
    }

    /// FPRecipEstimate (FRECPE).
    pub fn recip_estimate(&mut self, a: u64, fmt: Fmt) -> u64 {
        let v = self.unpack(a, fmt);
        let f = fmt.f();
        match v.class {
            Class::QNaN | Class::SNaN => return self.process_nan(a, &v, fmt),
            Class::Inf => return Fp::zero(v.sign, fmt),
            Class::Zero => {
                self.flags |= DZC;
                return Fp::inf(v.sign, fmt);
            }
            Class::Num => {}
        }
        let top = v.exp + 127 - v.mant.leading_zeros() as i32;
        if top < -(fmt.bias() + 1) {
            // |value| < 2^-(bias + 2): the reciprocal overflows.
            let rnd = self.rounding();
            let to_inf = match rnd {
                Rounding::TieEven => true,
                Rounding::PosInf => !v.sign,
                Rounding::NegInf => v.sign,
                _ => false,
            };
            self.flags |= OFC | IXC;
            return if to_inf {
                Fp::inf(v.sign, fmt)
            } else {
                Fp::inf(v.sign, fmt) - 1
            };
        }
        if self.fpcr & (1 << 24) != 0 && fmt != Fmt::H && top >= fmt.bias() - 1 {
            self.flags |= UFC;
            return Fp::zero(v.sign, fmt);
        }
        // Fraction widened to 52 bits and the biased exponent, as the pseudocode does.
        let mut fraction = (a & ((1u64 << f) - 1)) << (52 - f);
        let mut exp = ((a >> f) & ((1 << fmt.e()) - 1)) as i64;
        if exp == 0 {
            if fraction >> 51 == 0 {
                exp = -1;
                fraction = (fraction << 2) & ((1 << 52) - 1);
            } else {
                fraction = (fraction << 1) & ((1 << 52) - 1);
            }
        }
        let scaled = (1 << 8) | (fraction >> 44) as u32;
        let mut result_exp = 2 * fmt.bias() as i64 - 1 - exp;
        let est = recip_estimate_int(scaled) as u64;
        let mut fraction = (est & 0xff) << 44;
        if result_exp == 0 {
            fraction = 1 << 51 | fraction >> 1;
        } else if result_exp == -1 {
            fraction = 1 << 50 | fraction >> 2;
            result_exp = 0;
        }
        Fp::zero(v.sign, fmt) | (result_exp as u64) << f | (fraction >> (52 - f)) & ((1 << f) - 1)
    }

    /// FPRSqrtEstimate (FRSQRTE).
    pub fn rsqrt_estimate(&mut self, a: u64, fmt: Fmt) -> u64 {
        let v = self.unpack(a, fmt);
        let f = fmt.f();
        match v.class {
            Class::QNaN | Class::SNaN => return self.process_nan(a, &v, fmt),
            Class::Zero => {
                self.flags |= DZC;
                return Fp::inf(v.sign, fmt);
            }
            _ if v.sign => return self.invalid(fmt),
            Class::Inf => return 0,
            Class::Num => {}
        }
        let mut fraction = (a & ((1u64 << f) - 1)) << (52 - f);
        let mut exp = ((a >> f) & ((1 << fmt.e()) - 1)) as i64;
        if exp == 0 {
            while fraction >> 51 == 0 {
                fraction = (fraction << 1) & ((1 << 52) - 1);
                exp -= 1;
            }
            fraction = (fraction << 1) & ((1 << 52) - 1);
        }
        // An even exponent scales to [0.5, 1.0), an odd one to [0.25, 0.5).
        let scaled = if exp & 1 == 0 {
            (1 << 8) | (fraction >> 44) as u32
        } else {
            (1 << 7) | (fraction >> 45) as u32
        };
        let result_exp = (3 * fmt.bias() as i64 - 1 - exp).div_euclid(2);
        let est = rsqrt_estimate_int(scaled) as u64;
        (result_exp as u64) << f | ((est & 0xff) << (f - 8))
    }

    /// FPRecipStepFused (FRECPS, 2 - a*b) and FPRSqrtStepFused (FRSQRTS, (3 - a*b) / 2).
    pub fn step_fused(&mut self, a: u64, b: u64, fmt: Fmt, rsqrt: bool) -> u64 {
        let a = a ^ (1u64 << (fmt.bits() - 1)); // FPNeg(op1)
        let (va, vb) = (self.unpack(a, fmt), self.unpack(b, fmt));
        if let Some(n) = self.process_nans(&[(a, va), (b, vb)], fmt) {
            return n;
        }
        let sign = va.sign != vb.sign;
        let one = (fmt.bias() as u64) << fmt.f();
        match (va.class, vb.class) {
            (Class::Inf, Class::Zero) | (Class::Zero, Class::Inf) => {
                if rsqrt {
                    one | 1 << (fmt.f() - 1) // 1.5
                } else {
                    self.two(false, fmt)
                }
            }
            (Class::Inf, _) | (_, Class::Inf) => Fp::inf(sign, fmt),
            _ => {
                let p = if va.class == Class::Zero || vb.class == Class::Zero {
                    Val {
                        class: Class::Zero,
                        sign,
                        mant: 0,
                        exp: 0,
                    }
                } else {
                    Val {
                        class: Class::Num,
                        sign,
                        mant: va.mant * vb.mant,
                        exp: va.exp + vb.exp,
                    }
                };
                let k = Val {
                    class: Class::Num,
                    sign: false,
                    mant: if rsqrt { 3 } else { 2 },
                    exp: 0,
                };
                let rnd = self.rounding();
                match add_exact(&k, &p) {
                    Some((s, m, e)) => self.round(s, m, e - rsqrt as i32, fmt, rnd),
                    None => Fp::zero(rnd == Rounding::NegInf, fmt),
                }
            }
        }
    }

    /// FPRecpX (FRECPX): the exponent inverted, the fraction cleared.
    pub fn recpx(&mut self, a: u64, fmt: Fmt) -> u64 {
        let v = self.unpack(a, fmt);
        if v.is_nan() {
            return self.process_nan(a, &v, fmt);
        }
        let emask = (1u64 << fmt.e()) - 1;
        let exp = (a >> fmt.f()) & emask;
        let r = if exp == 0 { emask - 1 } else { !exp & emask };
        Fp::zero(v.sign, fmt) | r << fmt.f()
    }
}

/// RecipEstimate: 9-bit input 256..511 (0.5 <= x < 1.0), 9-bit estimate of 1/x.
fn recip_estimate_int(a: u32) -> u32 {
    let a = a * 2 + 1;
    let b = (1 << 19) / a;
    b.div_ceil(2)
}

/// RecipSqrtEstimate: 9-bit input 128..511 (0.25 <= x < 1.0), 9-bit estimate of 1/sqrt(x).
fn rsqrt_estimate_int(a: u32) -> u32 {
    // In units of 1/512 (below 0.5) or 1/256 with the bottom bit dropped, rounded.
    let a = if a < 256 {
        a * 2 + 1
    } else {
        (((a >> 1) << 1) + 1) * 2
    } as u64;
    let mut b: u64 = 512;
    while a * (b + 1) * (b + 1) < 1 << 28 {
        b += 1;
    }
    b.div_ceil(2) as u32
}

/// UnsignedRecipEstimate (URECPE).
pub fn urecpe(x: u32) -> u32 {
    if x >> 31 == 0 {
        return u32::MAX;
    }
    recip_estimate_int(x >> 23) << 23
}

/// UnsignedRSqrtEstimate (URSQRTE).
pub fn ursqrte(x: u32) -> u32 {
    if x >> 30 == 0 {
        return u32::MAX;
    }
    rsqrt_estimate_int(x >> 23) << 23
}
