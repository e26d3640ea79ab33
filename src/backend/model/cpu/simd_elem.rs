//! Lanes of a 128-bit SIMD&FP register and the integer arithmetic the Advanced SIMD groups
//! share: sign/zero extension to exact values, saturation (SatQ, setting FPSR.QC), shifts by
//! a signed amount with rounding, polynomial multiply (Arm ARM J1 shared pseudocode
//! `SatQ`, `ShiftSat`, `PolynomialMult`). Depends on nothing but `alu::ones` and `Cpu`'s
//! registers.

use super::alu::ones;
use super::branch::sext;
use super::Cpu;

/// FPSR.QC, cumulative saturation (Arm ARM D19.2.49 FPSR, bit 27).
pub const QC: u64 = 1 << 27;

/// Element `i` of `esize` bits of `v`.
pub fn el(v: u128, i: u32, esize: u32) -> u64 {
    (v >> (i * esize)) as u64 & ones(esize)
}

/// ORs `val` (truncated to `esize` bits) into element `i` of `acc`.
pub fn put(acc: &mut u128, i: u32, esize: u32, val: u64) {
    *acc |= ((val & ones(esize)) as u128) << (i * esize);
}

/// The `esize`-bit value `v` sign-extended.
pub fn sx(v: u64, esize: u32) -> i64 {
    sext(v, esize) as i64
}

/// The exact integer an `esize`-bit element stands for, unsigned or signed.
pub fn int(v: u64, esize: u32, unsigned: bool) -> i128 {
    if unsigned {
        (v & ones(esize)) as i128
    } else {
        sx(v, esize) as i128
    }
}

/// All ones when `b`, else zero (compare results).
pub fn all(b: bool) -> u64 {
    if b {
        u64::MAX
    } else {
        0
    }
}

/// `a` shifted left by `sh` (sh >= 0) or right by `-sh`, rounding to nearest when `round`,
/// exactly; a nonzero value shifted left by `esize` or more (out of range for any element)
/// gives `a`'s sign times 2^100, so that truncation yields 0 and saturation the bound.
pub fn shift_exact(a: i128, sh: i32, esize: u32, round: bool) -> i128 {
    if sh >= 0 {
        if a == 0 {
            0
        } else if sh as u32 >= esize {
            a.signum() << 100
        } else {
            a << sh
        }
    } else {
        // Any shift beyond esize + 1 gives the same result as esize + 1.
        let n = (-sh).min(esize as i32 + 1) as u32;
        if round {
            (a + (1i128 << (n - 1))) >> n
        } else {
            a >> n
        }
    }
}

/// The widening multiplies the three-different and by-element groups share.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum LongMul {
    Mlal,
    Mlsl,
    Mull,
    Sqdmlal,
    Sqdmlsl,
    Sqdmull,
}

/// Polynomial (carry-less) multiply of two `esize`-bit values, `2 * esize` bits of result.
pub fn pmul(a: u64, b: u64, esize: u32) -> u128 {
    (0..esize)
        .filter(|k| (b >> k) & 1 == 1)
        .fold(0u128, |acc, k| acc ^ ((a & ones(esize)) as u128) << k)
}

/// Leading zero bits of the `esize`-bit value `a`.
pub fn clz(a: u64, esize: u32) -> u64 {
    ((a << (64 - esize)).leading_zeros()).min(esize) as u64
}

/// Leading bits equal to the sign bit, excluding it (Arm ARM CountLeadingSignBits).
pub fn cls(a: u64, esize: u32) -> u64 {
    let sign = (a >> (esize - 1)) & 1;
    (0..esize - 1)
        .rev()
        .take_while(|&b| (a >> b) & 1 == sign)
        .count() as u64
}

impl Cpu {
    /// SatQ: `v` clamped to `esize` bits, unsigned or signed; sets FPSR.QC if it saturated.
    pub(super) fn sat(&mut self, v: i128, esize: u32, unsigned: bool) -> u64 {
        let (lo, hi) = if unsigned {
            (0, (1i128 << esize) - 1)
        } else {
            (-(1i128 << (esize - 1)), (1i128 << (esize - 1)) - 1)
        };
        if v < lo || v > hi {
            self.st.fpsr |= QC;
        }
        v.clamp(lo, hi) as u64 & ones(esize)
    }

    /// One `w`-bit element of S/UMLAL, S/UMLSL, S/UMULL, SQDMLAL, SQDMLSL or SQDMULL of the
    /// exact (sign- or zero-extended) elements `a` and `b`; `acc` is the destination's.
    pub(super) fn long_mul(&mut self, op: LongMul, a: i128, b: i128, acc: u64, w: u32) -> u64 {
        match op {
            LongMul::Mlal => acc.wrapping_add((a * b) as u64),
            LongMul::Mlsl => acc.wrapping_sub((a * b) as u64),
            LongMul::Mull => (a * b) as u64,
            LongMul::Sqdmlal => self.sqdmull(a, b, w, Some((acc, false))),
            LongMul::Sqdmlsl => self.sqdmull(a, b, w, Some((acc, true))),
            LongMul::Sqdmull => self.sqdmull(a, b, w, None),
        }
    }

    /// SQDMULL (`acc` None), SQDMLAL (`Some((acc, false))`) and SQDMLSL (`Some((acc, true))`)
    /// on `w`-bit results: the doubled product saturated, then the accumulation saturated.
    fn sqdmull(&mut self, a: i128, b: i128, w: u32, acc: Option<(u64, bool)>) -> u64 {
        let p = int(self.sat(2 * a * b, w, false), w, false);
        match acc {
            None => p as u64,
            Some((acc, false)) => self.sat(int(acc, w, false) + p, w, false),
            Some((acc, true)) => self.sat(int(acc, w, false) - p, w, false),
        }
    }

    /// V register `n` (mod 32).
    pub(super) fn vreg(&self, n: u32) -> u128 {
        self.st.v[(n & 31) as usize]
    }

    /// Writes V register `n` (mod 32); a 64-bit (`q` false) result clears the upper half.
    pub(super) fn set_vreg(&mut self, n: u32, v: u128, q: bool) {
        self.st.v[(n & 31) as usize] = if q { v } else { v & u64::MAX as u128 };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shifts_round_and_saturate_exactly() {
        assert_eq!(shift_exact(-5, -1, 8, true), -2); // (-5 + 1) >> 1
        assert_eq!(shift_exact(5, -1, 8, true), 3);
        assert_eq!(shift_exact(-1, -200, 64, false), -1);
        assert_eq!(shift_exact(u64::MAX as i128, -64, 64, true), 1);
        assert_eq!(shift_exact(3, 64, 64, false), 1 << 100);
        assert_eq!(shift_exact(0, 100, 8, false), 0);
    }

    #[test]
    fn polynomial_multiply() {
        assert_eq!(pmul(0b11, 0b11, 8), 0b101);
        assert_eq!(pmul(0xff, 0xff, 8), 0x5555);
    }
}
