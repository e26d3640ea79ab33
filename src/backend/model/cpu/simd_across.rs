//! Advanced SIMD across lanes (Arm ARM C4.1.90: 0 Q U 01110 size 11000 opcode 10 Rn Rd) and
//! scalar pairwise (01 U 11110 size 11000 opcode 10 Rn Rd): reductions of a vector to one
//! element. The floating-point ones (FMAXV.., FADDP..) go to `simd_fp.rs`.

use super::alu::ones;
use super::simd_elem::{el, int};
use super::{Cpu, Stop};

/// Opcode (bits 16:12) with U.
mod op {
    pub const SADDLV: u32 = 0b00011; // UADDLV
    pub const SMAXV: u32 = 0b01010; // UMAXV
    pub const SMINV: u32 = 0b11010; // UMINV
    pub const ADDV: u32 = 0b11011; // (U = 0 only); ADDP (scalar) in the pairwise table
    /// FMAXNMV / FMINNMV (across) and FMAXNMP / FMINNMP (scalar pairwise), U = 1 or 1.
    pub const FMAXNM: u32 = 0b01100;
    /// FADDP (scalar pairwise, U = 1).
    pub const FADDP: u32 = 0b01101;
    /// FMAXV / FMINV (across) and FMAXP / FMINP (scalar pairwise).
    pub const FMAX: u32 = 0b01111;
}

impl Cpu {
    /// Across lanes: ADDV, S/UADDLV, S/UMAXV, S/UMINV and the FP reductions.
    pub(super) fn simd_across(&mut self, i: u32) -> Result<(), Stop> {
        use op::*;
        let q = (i >> 30) & 1 == 1;
        let u = (i >> 29) & 1 == 1;
        let size = (i >> 22) & 3;
        let opc = (i >> 12) & 31;
        if matches!(opc, FMAXNM | FMAX) {
            return self.simd_across_fp(i);
        }
        let esize = 8u32 << size;
        if size == 3 || (size == 2 && !q) {
            return Err(self.undef(i));
        }
        let count = if q { 128 } else { 64 } / esize;
        let n = self.vreg(i >> 5);
        let vals = (0..count).map(|k| int(el(n, k, esize), esize, u));
        let (v, outsize) = match (opc, u) {
            (ADDV, false) => (vals.sum::<i128>() as u64, esize),
            (SADDLV, _) => (vals.sum::<i128>() as u64, 2 * esize),
            (SMAXV, _) => (vals.max().unwrap_or(0) as u64, esize),
            (SMINV, _) => (vals.min().unwrap_or(0) as u64, esize),
            _ => return Err(self.undef(i)),
        };
        self.st.v[(i & 31) as usize] = (v & ones(outsize)) as u128;
        Ok(())
    }

    /// Scalar pairwise: ADDP (D) and FADDP, FMAXP, FMINP, FMAXNMP, FMINNMP.
    pub(super) fn simd_scalar_pairwise(&mut self, i: u32) -> Result<(), Stop> {
        let u = (i >> 29) & 1 == 1;
        let size = (i >> 22) & 3;
        let opc = (i >> 12) & 31;
        if (opc, u, size) == (op::ADDV, false, 3) {
            let n = self.vreg(i >> 5);
            let sum = (n as u64).wrapping_add((n >> 64) as u64);
            self.st.v[(i & 31) as usize] = sum as u128;
            return Ok(());
        }
        if u && matches!(opc, op::FMAXNM | op::FADDP | op::FMAX) {
            return self.simd_scalar_pairwise_fp(i);
        }
        Err(self.undef(i))
    }
}
