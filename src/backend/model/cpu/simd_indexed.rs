//! Advanced SIMD (scalar) x indexed element (Arm ARM C4.1.90: 0 Q U 01111 size L M Rm
//! opcode H 0 Rn Rd; scalar 01 U 11111 ...): multiplies and multiply-accumulates of each
//! element of Vn by one element of Vm, integer (same-width, long, saturating doubling) and
//! floating-point (through `simd_fp.rs`).

use super::simd_elem::{el, int, put, LongMul};
use super::simd_int::Shape;
use super::{Cpu, Stop};

/// Opcode (bits 15:12) with U: the integer and floating-point by-element instructions.
mod op {
    pub const MLA: u32 = 0b0000; // U = 1
    pub const FMLA: u32 = 0b0001; // U = 0
    pub const SMLAL: u32 = 0b0010; // UMLAL
    pub const SQDMLAL: u32 = 0b0011; // U = 0
    pub const MLS: u32 = 0b0100; // U = 1
    pub const FMLS: u32 = 0b0101; // U = 0
    pub const SMLSL: u32 = 0b0110; // UMLSL
    pub const SQDMLSL: u32 = 0b0111; // U = 0
    pub const MUL: u32 = 0b1000; // U = 0
    pub const FMUL: u32 = 0b1001; // FMULX
    pub const SMULL: u32 = 0b1010; // UMULL
    pub const SQDMULL: u32 = 0b1011; // U = 0
    pub const SQDMULH: u32 = 0b1100; // U = 0
    pub const SQRDMULH: u32 = 0b1101; // U = 0
}

/// The element index and the Vm register number (size 01: H:L:M and Rm<3:0>; otherwise
/// H:L, or H for 64-bit elements, and M:Rm). `None` for 64-bit elements with L = 1.
pub(super) fn index_and_rm(i: u32, size: u32) -> Option<(u32, u32)> {
    let (h, l, m) = ((i >> 11) & 1, (i >> 21) & 1, (i >> 20) & 1);
    match size {
        1 => Some((h << 2 | l << 1 | m, (i >> 16) & 15)),
        2 => Some((h << 1 | l, (i >> 16) & 31)),
        _ if l == 0 => Some((h, (i >> 16) & 31)),
        _ => None,
    }
}

impl Cpu {
    /// Vector or scalar x indexed element.
    pub(super) fn simd_indexed(&mut self, i: u32) -> Result<(), Stop> {
        use op::*;
        let s = Shape::of(i);
        let opc = (i >> 12) & 15;
        if matches!((opc, s.u), (FMLA | FMLS | FMUL, false) | (FMUL, true)) {
            return self.simd_indexed_fp(i);
        }
        let long = matches!(opc, SMLAL | SQDMLAL | SMLSL | SQDMLSL | SMULL | SQDMULL);
        let sqd = matches!(opc, SQDMLAL | SQDMLSL | SQDMULL | SQDMULH | SQRDMULH);
        let valid = match (opc, s.u) {
            _ if s.scalar => sqd && !s.u,
            (MLA | MLS, true) | (MUL, false) | (SMLAL | SMLSL | SMULL, _) => true,
            (_, false) => sqd,
            _ => false,
        };
        if !valid || !(s.size == 1 || s.size == 2) {
            return Err(self.undef(i));
        }
        let Some((index, rm)) = index_and_rm(i, s.size) else {
            return Err(self.undef(i));
        };
        let esize = s.esize();
        let (n, d) = (self.vreg(i >> 5), self.vreg(i));
        let b_raw = el(self.vreg(rm), index, esize);
        if !long {
            let mut r = 0u128;
            for k in 0..s.count() {
                let (a, acc) = (el(n, k, esize), el(d, k, esize));
                let v = match (opc, s.u) {
                    (MLA, _) => acc.wrapping_add(a.wrapping_mul(b_raw)),
                    (MLS, _) => acc.wrapping_sub(a.wrapping_mul(b_raw)),
                    (MUL, _) => a.wrapping_mul(b_raw),
                    _ => self.sqdmulh(a, b_raw, esize, opc == SQRDMULH),
                };
                put(&mut r, k, esize, v);
            }
            self.set_vreg(i, r, s.bits() == 128);
            return Ok(());
        }
        let count = if s.scalar { 1 } else { 64 / esize };
        let base = if s.q && !s.scalar { count } else { 0 };
        let w = 2 * esize;
        let b = int(b_raw, esize, s.u);
        let op = match opc {
            SMLAL => LongMul::Mlal,
            SMLSL => LongMul::Mlsl,
            SMULL => LongMul::Mull,
            SQDMLAL => LongMul::Sqdmlal,
            SQDMLSL => LongMul::Sqdmlsl,
            _ => LongMul::Sqdmull,
        };
        let mut r = 0u128;
        for k in 0..count {
            let a = int(el(n, base + k, esize), esize, s.u);
            let v = self.long_mul(op, a, b, el(d, k, w), w);
            put(&mut r, k, w, v);
        }
        self.set_vreg(i, r, !s.scalar);
        Ok(())
    }
}
