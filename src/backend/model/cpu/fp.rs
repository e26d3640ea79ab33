//! IEEE 754 arithmetic as the Arm ARM defines it for AArch64 (shared pseudocode J1
//! `FPUnpack`, `FPRound`, `FPProcessNaNs`, `FPAdd`, `FPMul`, `FPDiv`, `FPSqrt`, `FPMulAdd`,
//! `FPCompare`, `FPMax`/`FPMin`): half, single and double precision on raw bit patterns,
//! honouring FPCR.{RMode, FZ, DN, AHP} and accumulating FPSR's cumulative exception flags.
//! Exact: every result is computed from exact integers (mantissa times a power of two) and
//! rounded once; no host floating point is used. Knows nothing about instruction encodings.

use std::cmp::Ordering;

pub use super::fp_arith::add_exact;

/// FPSR cumulative exception bits (Arm ARM D19.2.49 FPSR).
pub const IOC: u64 = 1 << 0;
pub const DZC: u64 = 1 << 1;
pub const OFC: u64 = 1 << 2;
pub const UFC: u64 = 1 << 3;
pub const IXC: u64 = 1 << 4;
pub const IDC: u64 = 1 << 7;

/// FPCR fields (Arm ARM D19.2.48 FPCR): AHP bit 26, DN bit 25, FZ bit 24, RMode bits 23:22.
const FPCR_AHP: u64 = 1 << 26;
const FPCR_DN: u64 = 1 << 25;
const FPCR_FZ: u64 = 1 << 24;

/// A floating-point format: half, single or double precision.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Fmt {
    H,
    S,
    D,
}

impl Fmt {
    /// The format of a 16/32/64-bit element.
    pub fn of_bits(bits: u32) -> Fmt {
        match bits {
            16 => Fmt::H,
            32 => Fmt::S,
            _ => Fmt::D,
        }
    }
    pub fn bits(self) -> u32 {
        match self {
            Fmt::H => 16,
            Fmt::S => 32,
            Fmt::D => 64,
        }
    }
    /// Exponent bits E.
    pub fn e(self) -> u32 {
        match self {
            Fmt::H => 5,
            Fmt::S => 8,
            Fmt::D => 11,
        }
    }
    /// Fraction bits F.
    pub fn f(self) -> u32 {
        self.bits() - 1 - self.e()
    }
    /// Exponent bias.
    pub fn bias(self) -> i32 {
        (1 << (self.e() - 1)) - 1
    }
    /// The smallest normal exponent (1 - bias).
    pub fn min_exp(self) -> i32 {
        1 - self.bias()
    }
    fn sign_bit(self) -> u64 {
        1 << (self.bits() - 1)
    }
    fn exp_mask(self) -> u64 {
        ((1u64 << self.e()) - 1) << self.f()
    }
    fn frac_mask(self) -> u64 {
        (1u64 << self.f()) - 1
    }
}

/// Rounding modes (Arm ARM `FPRounding`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Rounding {
    TieEven,
    PosInf,
    NegInf,
    Zero,
    TieAway,
    Odd,
}

impl Rounding {
    /// FPDecodeRounding of a 2-bit RMode field.
    pub fn from_rmode(rmode: u64) -> Rounding {
        match rmode & 3 {
            0 => Rounding::TieEven,
            1 => Rounding::PosInf,
            2 => Rounding::NegInf,
            _ => Rounding::Zero,
        }
    }
}

/// The class of an unpacked operand.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Class {
    Zero,
    Num,
    Inf,
    QNaN,
    SNaN,
}

/// An unpacked operand: for `Num`, the value is (-1)^sign * mant * 2^exp with mant != 0.
#[derive(Clone, Copy, Debug)]
pub struct Val {
    pub class: Class,
    pub sign: bool,
    pub mant: u128,
    pub exp: i32,
}

impl Val {
    pub fn is_nan(&self) -> bool {
        matches!(self.class, Class::QNaN | Class::SNaN)
    }
    pub(super) fn num(sign: bool, mant: u128, exp: i32) -> Val {
        Val {
            class: Class::Num,
            sign,
            mant,
            exp,
        }
    }
    /// Exponent of the leading bit (value in [2^e, 2^(e+1))).
    pub(super) fn top(&self) -> i32 {
        self.exp + 127 - self.mant.leading_zeros() as i32
    }
}

/// How the discarded part of a value compares with half a unit in the last place.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Err {
    Zero,
    Below,
    Half,
    Above,
}

/// `mant >> sh` and how the discarded bits compare with half of the last kept unit.
fn split(mant: u128, sh: i32) -> (u128, Err) {
    if sh <= 0 {
        return (mant << -sh, Err::Zero);
    }
    let (q, rem, half) = if sh >= 128 {
        let half = if sh == 128 { 1u128 << 127 } else { u128::MAX };
        (0, mant, half)
    } else {
        (mant >> sh, mant & ((1u128 << sh) - 1), 1u128 << (sh - 1))
    };
    let err = match rem.cmp(&half) {
        _ if rem == 0 => Err::Zero,
        Ordering::Less => Err::Below,
        Ordering::Equal if sh <= 128 => Err::Half,
        Ordering::Equal | Ordering::Greater => Err::Above,
    };
    (q, err)
}

/// Whether a magnitude with discarded part `err` and kept part `q` rounds away from zero.
fn rounds_up(rounding: Rounding, sign: bool, q: u128, err: Err) -> bool {
    match rounding {
        Rounding::TieEven => err == Err::Above || (err == Err::Half && q & 1 == 1),
        Rounding::TieAway => err >= Err::Half,
        Rounding::PosInf => err != Err::Zero && !sign,
        Rounding::NegInf => err != Err::Zero && sign,
        Rounding::Zero | Rounding::Odd => false,
    }
}

/// Arithmetic context: FPCR in, FPSR cumulative flags out.
pub struct Fp {
    pub fpcr: u64,
    pub flags: u64,
}

impl Fp {
    pub fn new(fpcr: u64) -> Fp {
        Fp { fpcr, flags: 0 }
    }
    /// The rounding mode FPCR.RMode selects.
    pub fn rounding(&self) -> Rounding {
        Rounding::from_rmode(self.fpcr >> 22)
    }
    fn fz(&self, fmt: Fmt) -> bool {
        // FZ does not apply to half precision (that is FZ16, FEAT_FP16, not implemented).
        self.fpcr & FPCR_FZ != 0 && fmt != Fmt::H
    }
    fn ahp(&self, fmt: Fmt) -> bool {
        self.fpcr & FPCR_AHP != 0 && fmt == Fmt::H
    }

    /// FPUnpack: classify `bits`, flushing denormals to zero under FZ (setting IDC).
    pub fn unpack(&mut self, bits: u64, fmt: Fmt) -> Val {
        let sign = bits & fmt.sign_bit() != 0;
        let e = ((bits & fmt.exp_mask()) >> fmt.f()) as i32;
        let frac = (bits & fmt.frac_mask()) as u128;
        let class = |class| Val {
            class,
            sign,
            mant: 0,
            exp: 0,
        };
        if e == 0 {
            if frac == 0 || self.fz(fmt) {
                if frac != 0 {
                    self.flags |= IDC;
                }
                return class(Class::Zero);
            }
            return Val::num(sign, frac, fmt.min_exp() - fmt.f() as i32);
        }
        if e == (1 << fmt.e()) - 1 && !self.ahp(fmt) {
            return class(match (frac, frac >> (fmt.f() - 1)) {
                (0, _) => Class::Inf,
                (_, 1) => Class::QNaN,
                _ => Class::SNaN,
            });
        }
        Val::num(sign, frac | 1 << fmt.f(), e - fmt.bias() - fmt.f() as i32)
    }

    pub fn default_nan(&self, fmt: Fmt) -> u64 {
        fmt.exp_mask() | 1 << (fmt.f() - 1)
    }
    pub fn inf(sign: bool, fmt: Fmt) -> u64 {
        Fp::zero(sign, fmt) | fmt.exp_mask()
    }
    pub fn zero(sign: bool, fmt: Fmt) -> u64 {
        if sign {
            fmt.sign_bit()
        } else {
            0
        }
    }
    pub(super) fn max_normal(sign: bool, fmt: Fmt) -> u64 {
        Fp::inf(sign, fmt) - 1
    }

    /// FPProcessNaN: quiets a signalling NaN (IOC); the default NaN under FPCR.DN.
    pub fn process_nan(&mut self, bits: u64, v: &Val, fmt: Fmt) -> u64 {
        let mut r = bits & (fmt.sign_bit() | fmt.exp_mask() | fmt.frac_mask());
        if v.class == Class::SNaN {
            self.flags |= IOC;
            r |= 1 << (fmt.f() - 1);
        }
        if self.fpcr & FPCR_DN != 0 {
            self.default_nan(fmt)
        } else {
            r
        }
    }

    /// FPProcessNaNs / FPProcessNaNs3: the first signalling NaN, else the first quiet NaN.
    pub fn process_nans(&mut self, ops: &[(u64, Val)], fmt: Fmt) -> Option<u64> {
        let pick = ops
            .iter()
            .find(|(_, v)| v.class == Class::SNaN)
            .or_else(|| ops.iter().find(|(_, v)| v.class == Class::QNaN))?;
        Some(self.process_nan(pick.0, &pick.1, fmt))
    }

    /// The invalid-operation result: the default NaN, IOC.
    pub fn invalid(&mut self, fmt: Fmt) -> u64 {
        self.flags |= IOC;
        self.default_nan(fmt)
    }

    /// FPRound: (-1)^sign * mant * 2^exp (mant != 0) to `fmt` with `rounding`.
    pub fn round(&mut self, sign: bool, mant: u128, exp: i32, fmt: Fmt, rnd: Rounding) -> u64 {
        let f = fmt.f() as i32;
        let exponent = Val::num(sign, mant, exp).top();
        if self.fz(fmt) && exponent < fmt.min_exp() {
            self.flags |= UFC;
            return Fp::zero(sign, fmt);
        }
        let mut biased = (exponent - fmt.min_exp() + 1).max(0);
        let lsb = if biased == 0 {
            fmt.min_exp() - f
        } else {
            exponent - f
        };
        let (mut int_mant, mut err) = split(mant, lsb - exp);
        if biased == 0 && err != Err::Zero {
            self.flags |= UFC;
        }
        let overflow_to_inf = match rnd {
            Rounding::TieEven | Rounding::TieAway => true,
            Rounding::PosInf => !sign,
            Rounding::NegInf => sign,
            Rounding::Zero | Rounding::Odd => false,
        };
        if rounds_up(rnd, sign, int_mant, err) {
            int_mant += 1;
            if int_mant == 1 << f {
                biased = 1;
            }
            if int_mant == 1 << (f + 1) {
                biased += 1;
                int_mant >>= 1;
            }
        }
        if err != Err::Zero && rnd == Rounding::Odd {
            int_mant |= 1;
        }
        let result;
        if !self.ahp(fmt) {
            if biased >= (1 << fmt.e()) - 1 {
                result = if overflow_to_inf {
                    Fp::inf(sign, fmt)
                } else {
                    Fp::max_normal(sign, fmt)
                };
                self.flags |= OFC;
                err = Err::Above;
            } else {
                result =
                    Fp::zero(sign, fmt) | (biased as u64) << f | int_mant as u64 & fmt.frac_mask();
            }
        } else if biased >= 1 << fmt.e() {
            result = Fp::zero(sign, fmt) | (fmt.sign_bit() - 1);
            self.flags |= IOC;
            err = Err::Zero;
        } else {
            result = Fp::zero(sign, fmt) | (biased as u64) << f | int_mant as u64 & fmt.frac_mask();
        }
        if err != Err::Zero {
            self.flags |= IXC;
        }
        result
    }
}

#[cfg(test)]
#[path = "fp_tests.rs"]
mod tests;
