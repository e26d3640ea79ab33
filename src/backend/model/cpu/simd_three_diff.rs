//! Advanced SIMD (scalar) three different (Arm ARM C4.1.90: 0 Q U 01110 size 1 Rm opcode 00
//! Rn Rd; scalar 01 U 11110 size 1 Rm opcode 00 Rn Rd): the long (widening), wide and
//! narrowing-high forms, with their "2" variants (Q = 1) reading or writing the upper half.

use super::alu::ones;
use super::simd_elem::{el, int, pmul, put, LongMul};
use super::simd_int::Shape;
use super::{Cpu, Stop};

/// Opcode (bits 15:12), named after the U = 0 instruction; the U = 1 one in the comment.
mod op {
    pub const SADDL: u32 = 0b0000; // UADDL
    pub const SADDW: u32 = 0b0001; // UADDW
    pub const SSUBL: u32 = 0b0010; // USUBL
    pub const SSUBW: u32 = 0b0011; // USUBW
    pub const ADDHN: u32 = 0b0100; // RADDHN
    pub const SABAL: u32 = 0b0101; // UABAL
    pub const SUBHN: u32 = 0b0110; // RSUBHN
    pub const SABDL: u32 = 0b0111; // UABDL
    pub const SMLAL: u32 = 0b1000; // UMLAL
    pub const SQDMLAL: u32 = 0b1001; // (U = 0 only)
    pub const SMLSL: u32 = 0b1010; // UMLSL
    pub const SQDMLSL: u32 = 0b1011; // (U = 0 only)
    pub const SMULL: u32 = 0b1100; // UMULL
    pub const SQDMULL: u32 = 0b1101; // (U = 0 only)
    pub const PMULL: u32 = 0b1110; // (U = 0 only)
}

impl Cpu {
    /// Three different, vector or scalar.
    pub(super) fn simd_three_diff(&mut self, i: u32) -> Result<(), Stop> {
        use op::*;
        let s = Shape::of(i);
        let opc = (i >> 12) & 15;
        let sqd = matches!(opc, SQDMLAL | SQDMLSL | SQDMULL);
        let valid = match opc {
            _ if s.scalar => sqd && !s.u && (s.size == 1 || s.size == 2),
            SQDMLAL | SQDMLSL | SQDMULL => !s.u && (s.size == 1 || s.size == 2),
            PMULL => !s.u && s.size == 0,
            0b1111 => false,
            _ => s.size < 3,
        };
        if !valid {
            return Err(self.undef(i));
        }
        let esize = s.esize();
        let (n, m, d) = (self.vreg(i >> 5), self.vreg(i >> 16), self.vreg(i));
        if matches!(opc, ADDHN | SUBHN) {
            return self.three_diff_narrow(i, s, opc, n, m, d);
        }
        let count = if s.scalar { 1 } else { 64 / esize };
        let base = if s.q && !s.scalar { count } else { 0 };
        let w = 2 * esize;
        let mut r = 0u128;
        for k in 0..count {
            let b = int(el(m, base + k, esize), esize, s.u);
            let a = if matches!(opc, SADDW | SSUBW) {
                int(el(n, k, w), w, s.u)
            } else {
                int(el(n, base + k, esize), esize, s.u)
            };
            let acc = el(d, k, w);
            let v = match opc {
                SADDL | SADDW => (a + b) as u64,
                SSUBL | SSUBW => (a - b) as u64,
                SABAL => acc.wrapping_add((a - b).unsigned_abs() as u64),
                SABDL => (a - b).unsigned_abs() as u64,
                PMULL => pmul(a as u64, b as u64, esize) as u64,
                SMLAL => self.long_mul(LongMul::Mlal, a, b, acc, w),
                SMLSL => self.long_mul(LongMul::Mlsl, a, b, acc, w),
                SMULL => self.long_mul(LongMul::Mull, a, b, acc, w),
                SQDMLAL => self.long_mul(LongMul::Sqdmlal, a, b, acc, w),
                SQDMLSL => self.long_mul(LongMul::Sqdmlsl, a, b, acc, w),
                _ => self.long_mul(LongMul::Sqdmull, a, b, acc, w),
            };
            put(&mut r, k, w, v);
        }
        self.set_vreg(i, r, !s.scalar);
        Ok(())
    }

    /// ADDHN, RADDHN, SUBHN, RSUBHN {2}: the high halves of 2*esize sums or differences,
    /// rounded when U = 1.
    fn three_diff_narrow(
        &mut self,
        i: u32,
        s: Shape,
        opc: u32,
        n: u128,
        m: u128,
        d: u128,
    ) -> Result<(), Stop> {
        let esize = s.esize();
        let count = 64 / esize;
        let base = if s.q { count } else { 0 };
        let mut r = if s.q { d & u64::MAX as u128 } else { 0 };
        for k in 0..count {
            let (a, b) = (el(n, k, 2 * esize), el(m, k, 2 * esize));
            let v = if opc == op::ADDHN {
                a.wrapping_add(b)
            } else {
                a.wrapping_sub(b)
            };
            let v = if s.u {
                v.wrapping_add(1 << (esize - 1))
            } else {
                v
            };
            put(&mut r, base + k, esize, (v & ones(2 * esize)) >> esize);
        }
        self.set_vreg(i, r, true);
        Ok(())
    }
}
