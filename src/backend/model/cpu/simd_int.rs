//! Advanced SIMD integer operations compilers emit in vectorised integer code: the
//! three-same group (arithmetic, compares, shifts, min/max, pairwise, logical), two-register
//! miscellaneous (REV, CNT, NOT, RBIT, compares with zero, ABS/NEG, CLS/CLZ, XTN), across
//! lanes (ADDV, S/UMAXV, S/UMINV, S/UADDLV), shifts by immediate (SHL, S/USHR, S/USRA,
//! S/USHLL, SHRN), permutes (UZP, TRN, ZIP), EXT and TBL/TBX (Arm ARM C4.1.90).
//! Saturating ops set FPSR.QC (bit 27).

use super::alu::ones;
use super::branch::sext;
use super::{Cpu, Stop};

/// FPSR.QC: cumulative saturation.
const QC: u64 = 1 << 27;

fn el(v: u128, i: u32, esize: u32) -> u64 {
    (v >> (i * esize)) as u64 & ones(esize)
}

fn put(acc: &mut u128, i: u32, esize: u32, val: u64) {
    *acc |= ((val & ones(esize)) as u128) << (i * esize);
}

fn sx(v: u64, esize: u32) -> i64 {
    sext(v, esize) as i64
}

/// Leading zero bits of the `esize`-bit value `a`.
fn clz(a: u64, esize: u32) -> u64 {
    ((a << (64 - esize)).leading_zeros()).min(esize) as u64
}

/// Leading bits equal to the sign bit, excluding it (Arm ARM CountLeadingSignBits).
fn cls(a: u64, esize: u32) -> u64 {
    let sign = (a >> (esize - 1)) & 1;
    (0..esize - 1)
        .rev()
        .take_while(|&b| (a >> b) & 1 == sign)
        .count() as u64
}

fn all(b: bool) -> u64 {
    if b {
        u64::MAX
    } else {
        0
    }
}

impl Cpu {
    fn vreg(&self, n: u32) -> u128 {
        self.st.v[(n & 31) as usize]
    }

    fn set_vreg(&mut self, n: u32, v: u128, q: bool) {
        self.st.v[(n & 31) as usize] = if q { v } else { v & u64::MAX as u128 };
    }

    /// Saturates `v` (exact, as i128) to `esize` bits, signed or unsigned; sets QC if needed.
    fn sat(&mut self, v: i128, esize: u32, signed: bool) -> u64 {
        let (lo, hi) = if signed {
            (-(1i128 << (esize - 1)), (1i128 << (esize - 1)) - 1)
        } else {
            (0, (1i128 << esize) - 1)
        };
        if v < lo || v > hi {
            self.st.fpsr |= QC;
        }
        v.clamp(lo, hi) as u64
    }

    /// The three-same group (0 Q U 01110 size 1 Rm opcode 1 Rn Rd).
    pub(super) fn simd_three_same(&mut self, i: u32) -> Result<(), Stop> {
        let q = (i >> 30) & 1 == 1;
        let u = (i >> 29) & 1 == 1;
        let size = (i >> 22) & 3;
        let op = (i >> 11) & 31;
        let (n, m, d) = (self.vreg(i >> 5), self.vreg(i >> 16), self.vreg(i));
        if op == 0b00011 {
            let r = match (u, size) {
                (false, 0) => n & m,
                (false, 1) => n & !m,
                (false, 2) => n | m,
                (false, _) => n | !m,
                (true, 0) => n ^ m,
                (true, 1) => (d & n) | (!d & m),
                (true, 2) => (d & !m) | (n & m),
                (true, _) => (d & m) | (n & !m),
            };
            self.set_vreg(i, r, q);
            return Ok(());
        }
        let esize = 8u32 << size;
        let count = if q { 128 } else { 64 } / esize;
        let wide_ok = matches!(
            op,
            0b00001 | 0b00101 | 0b00110 | 0b00111 | 0b01000 | 0b10000 | 0b10001
        );
        if size == 3 && (!q || !wide_ok) {
            return Err(self.undef(i));
        }
        let pairwise = matches!(op, 0b10100 | 0b10101 | 0b10111);
        let mut r = 0u128;
        for k in 0..count {
            let (a, b) = if pairwise {
                let cat = |j: u32| {
                    if j < count {
                        el(n, j, esize)
                    } else {
                        el(m, j - count, esize)
                    }
                };
                (cat(2 * k), cat(2 * k + 1))
            } else {
                (el(n, k, esize), el(m, k, esize))
            };
            let (sa, sb) = (sx(a, esize) as i128, sx(b, esize) as i128);
            let (ua, ub) = (a as i128, b as i128);
            let (x, y) = if u { (ua, ub) } else { (sa, sb) };
            let v: u64 = match (op, u) {
                (0b00000, _) => ((x + y) >> 1) as u64,
                (0b00001, _) => self.sat(x + y, esize, !u),
                (0b00010, _) => ((x + y + 1) >> 1) as u64,
                (0b00100, _) => ((x - y) >> 1) as u64,
                (0b00101, _) => self.sat(x - y, esize, !u),
                (0b00110, _) => all(x > y),
                (0b00111, _) => all(x >= y),
                (0b01000, _) => {
                    let sh = b as i8 as i32;
                    if sh >= 0 {
                        if sh >= esize as i32 {
                            0
                        } else {
                            a << sh
                        }
                    } else if u {
                        if -sh >= esize as i32 {
                            0
                        } else {
                            a >> -sh
                        }
                    } else {
                        (sa >> (-sh).min(esize as i32 - 1)) as u64
                    }
                }
                (0b01100, _) | (0b10100, _) => x.max(y) as u64,
                (0b01101, _) | (0b10101, _) => x.min(y) as u64,
                (0b01110, _) => (x - y).unsigned_abs() as u64,
                (0b01111, _) => el(d, k, esize).wrapping_add((x - y).unsigned_abs() as u64),
                (0b10000, false) | (0b10111, false) => a.wrapping_add(b),
                (0b10000, true) => a.wrapping_sub(b),
                (0b10001, false) => all(a & b != 0),
                (0b10001, true) => all(a == b),
                (0b10010, false) => el(d, k, esize).wrapping_add(a.wrapping_mul(b)),
                (0b10010, true) => el(d, k, esize).wrapping_sub(a.wrapping_mul(b)),
                (0b10011, false) => a.wrapping_mul(b),
                _ => return Err(self.undef(i)),
            };
            put(&mut r, k, esize, v);
        }
        self.set_vreg(i, r, q);
        Ok(())
    }

    /// Two-register miscellaneous (0 Q U 01110 size 10000 opcode 10 Rn Rd).
    pub(super) fn simd_two_misc(&mut self, i: u32) -> Result<(), Stop> {
        let q = (i >> 30) & 1 == 1;
        let u = (i >> 29) & 1 == 1;
        let size = (i >> 22) & 3;
        let op = (i >> 12) & 31;
        let n = self.vreg(i >> 5);
        let esize = 8u32 << size;
        let count = if q { 128 } else { 64 } / esize;
        if op == 0b10010 && !u {
            // XTN / XTN2: narrow 2*esize source elements into the low or high half.
            if size == 3 {
                return Err(self.undef(i));
            }
            let half = 64 / esize;
            let mut r = if q {
                self.vreg(i) & u64::MAX as u128
            } else {
                0
            };
            let base = if q { half } else { 0 };
            for k in 0..half {
                put(&mut r, base + k, esize, el(n, k, 2 * esize));
            }
            self.st.v[(i & 31) as usize] = r;
            return Ok(());
        }
        let mut r = 0u128;
        match (op, u, size) {
            (0b00000, _, _) | (0b00001, false, _) => {
                // REV64 / REV32 / REV16: reverse elements within containers.
                let container = match (op, u) {
                    (0, false) => 64,
                    (0, true) => 32,
                    _ => 16,
                };
                if esize >= container {
                    return Err(self.undef(i));
                }
                let per = container / esize;
                for k in 0..count {
                    let src = (k / per) * per + (per - 1 - k % per);
                    put(&mut r, k, esize, el(n, src, esize));
                }
            }
            (0b00101, false, 0) => {
                for k in 0..count {
                    put(&mut r, k, 8, el(n, k, 8).count_ones() as u64);
                }
            }
            (0b00101, true, 0) => r = !n,
            (0b00101, true, 1) => {
                for k in 0..count * 2 {
                    put(&mut r, k, 8, (el(n, k, 8) as u8).reverse_bits() as u64);
                }
            }
            (0b00100, _, 0..=2) => {
                for k in 0..count {
                    let a = el(n, k, esize);
                    let v = if u { clz(a, esize) } else { cls(a, esize) };
                    put(&mut r, k, esize, v);
                }
            }
            (0b01000..=0b01011, _, _) => {
                if size == 3 && !q {
                    return Err(self.undef(i));
                }
                for k in 0..count {
                    let a = sx(el(n, k, esize), esize);
                    let v = match (op, u) {
                        (0b01000, false) => all(a > 0),
                        (0b01000, true) => all(a >= 0),
                        (0b01001, false) => all(a == 0),
                        (0b01001, true) => all(a <= 0),
                        (0b01010, false) => all(a < 0),
                        (0b01011, false) => a.unsigned_abs(),
                        (0b01011, true) => a.wrapping_neg() as u64,
                        _ => return Err(self.undef(i)),
                    };
                    put(&mut r, k, esize, v);
                }
            }
            _ => return Err(self.undef(i)),
        }
        self.set_vreg(i, r, q);
        Ok(())
    }

    /// Across lanes (0 Q U 01110 size 11000 opcode 10 Rn Rd): ADDV, S/UMAXV, S/UMINV,
    /// S/UADDLV.
    pub(super) fn simd_across(&mut self, i: u32) -> Result<(), Stop> {
        let q = (i >> 30) & 1 == 1;
        let u = (i >> 29) & 1 == 1;
        let size = (i >> 22) & 3;
        let op = (i >> 12) & 31;
        let esize = 8u32 << size;
        if size == 3 || (size == 2 && !q) {
            return Err(self.undef(i));
        }
        let count = if q { 128 } else { 64 } / esize;
        let n = self.vreg(i >> 5);
        let vals = (0..count).map(|k| {
            let a = el(n, k, esize);
            if u {
                a as i128
            } else {
                sx(a, esize) as i128
            }
        });
        let (v, outsize) = match op {
            0b11011 if !u => (vals.sum::<i128>() as u64, esize),
            0b00011 => (vals.sum::<i128>() as u64, 2 * esize),
            0b01010 => (vals.max().unwrap_or(0) as u64, esize),
            0b11010 => (vals.min().unwrap_or(0) as u64, esize),
            _ => return Err(self.undef(i)),
        };
        self.st.v[(i & 31) as usize] = (v & ones(outsize)) as u128;
        Ok(())
    }
}
