//! Advanced SIMD (scalar) shift by immediate (Arm ARM C4.1.90: 0 Q U 011110 immh immb
//! opcode 1 Rn Rd; scalar 01 U 111110 immh immb opcode 1 Rn Rd, immh != 0): plain, rounding,
//! accumulating, inserting, saturating, narrowing and widening shifts. The fixed-point
//! conversions of the group (SCVTF, UCVTF, FCVTZS, FCVTZU) go to `simd_fp.rs`.

use super::alu::ones;
use super::simd_elem::{el, int, put, shift_exact};
use super::{Cpu, Stop};

/// Opcode (bits 15:11), named after the U = 0 instruction; the U = 1 one in the comment.
mod op {
    pub const SSHR: u32 = 0b00000; // USHR
    pub const SSRA: u32 = 0b00010; // USRA
    pub const SRSHR: u32 = 0b00100; // URSHR
    pub const SRSRA: u32 = 0b00110; // URSRA
    pub const SRI: u32 = 0b01000; // (U = 1 only)
    pub const SHL: u32 = 0b01010; // SLI
    pub const SQSHLU: u32 = 0b01100; // (U = 1 only)
    pub const SQSHL: u32 = 0b01110; // UQSHL
    pub const SHRN: u32 = 0b10000; // SQSHRUN
    pub const RSHRN: u32 = 0b10001; // SQRSHRUN
    pub const SQSHRN: u32 = 0b10010; // UQSHRN
    pub const SQRSHRN: u32 = 0b10011; // UQRSHRN
    pub const SSHLL: u32 = 0b10100; // USHLL
    pub const SCVTF: u32 = 0b11100; // UCVTF (fixed-point)
    pub const FCVTZS: u32 = 0b11111; // FCVTZU (fixed-point)
}

impl Cpu {
    /// Shift by immediate, vector or scalar (bit 28).
    pub(super) fn simd_shift_imm(&mut self, i: u32) -> Result<(), Stop> {
        use op::*;
        let q = (i >> 30) & 1 == 1;
        let u = (i >> 29) & 1 == 1;
        let scalar = (i >> 28) & 1 == 1;
        let immh = (i >> 19) & 15;
        let immhb = (i >> 16) & 127;
        let opc = (i >> 11) & 31;
        if immh == 0 {
            return Err(self.undef(i)); // scalar immh = 0000 is unallocated
        }
        let esize = 8u32 << (31 - immh.leading_zeros());
        if matches!(opc, SCVTF | FCVTZS) {
            return self.simd_fixed_point(i, esize, 2 * esize - immhb);
        }
        match opc {
            SHRN | RSHRN | SQSHRN | SQRSHRN => {
                let scalar_ok = !matches!((opc, u), (SHRN | RSHRN, false));
                if esize == 64 || (scalar && !scalar_ok) {
                    return Err(self.undef(i));
                }
                return self.shift_narrow(i, opc, u, esize, 2 * esize - immhb, scalar, q);
            }
            SSHLL if !scalar => {
                if esize == 64 {
                    return Err(self.undef(i));
                }
                let (n, sh) = (self.vreg(i >> 5), immhb - esize);
                let base = if q { 64 / esize } else { 0 };
                let mut r = 0u128;
                for k in 0..64 / esize {
                    let w = int(el(n, base + k, esize), esize, u) as u64;
                    put(&mut r, k, 2 * esize, w << sh);
                }
                self.set_vreg(i, r, true);
                return Ok(());
            }
            _ => {}
        }
        let any_size = matches!((opc, u), (SQSHL, _) | (SQSHLU, true));
        let valid = matches!(
            (opc, u),
            (SSHR | SSRA | SRSHR | SRSRA | SHL | SQSHL, _) | (SRI | SQSHLU, true)
        );
        if !valid || (scalar && esize != 64 && !any_size) || (!scalar && esize == 64 && !q) {
            return Err(self.undef(i));
        }
        let (n, d) = (self.vreg(i >> 5), self.vreg(i));
        let count = if scalar {
            1
        } else {
            (if q { 128 } else { 64 }) / esize
        };
        let (right, left) = (2 * esize - immhb, immhb - esize);
        let mut r = 0u128;
        for k in 0..count {
            let (a, acc) = (el(n, k, esize), el(d, k, esize));
            let x = int(a, esize, u);
            let rsh = -(right as i32);
            let v = match (opc, u) {
                (SSHR, _) => shift_exact(x, rsh, esize, false) as u64,
                (SSRA, _) => acc.wrapping_add(shift_exact(x, rsh, esize, false) as u64),
                (SRSHR, _) => shift_exact(x, rsh, esize, true) as u64,
                (SRSRA, _) => acc.wrapping_add(shift_exact(x, rsh, esize, true) as u64),
                (SRI, _) => {
                    let mask = if right >= 64 { 0 } else { ones(esize) >> right };
                    (acc & !mask) | (shift_exact(x, rsh, esize, false) as u64 & mask)
                }
                (SHL, false) => a << left,
                (SHL, true) => (acc & !(ones(esize) << left)) | a << left, // SLI
                (SQSHLU, _) => {
                    let x = int(a, esize, false);
                    self.sat(shift_exact(x, left as i32, esize, false), esize, true)
                }
                _ => self.sat(shift_exact(x, left as i32, esize, false), esize, u), // SQSHL
            };
            put(&mut r, k, esize, v);
        }
        self.set_vreg(i, r, q && !scalar);
        Ok(())
    }

    /// SHRN, RSHRN, SQSHRN, SQRSHRN, UQSHRN, UQRSHRN, SQSHRUN, SQRSHRUN {2} and their scalar
    /// forms: 2*esize source elements shifted right by `sh` and narrowed to `esize`.
    #[allow(clippy::too_many_arguments)]
    fn shift_narrow(
        &mut self,
        i: u32,
        opc: u32,
        u: bool,
        esize: u32,
        sh: u32,
        scalar: bool,
        q: bool,
    ) -> Result<(), Stop> {
        use op::*;
        let n = self.vreg(i >> 5);
        let count = if scalar { 1 } else { 64 / esize };
        let base = if q && !scalar { count } else { 0 };
        let mut r = if base > 0 {
            self.vreg(i) & u64::MAX as u128
        } else {
            0
        };
        let round = matches!(opc, RSHRN | SQRSHRN);
        for k in 0..count {
            let a = el(n, k, 2 * esize);
            // SQSHRUN/SQRSHRUN shift signed sources; the other saturating forms follow U.
            let src_unsigned = u && matches!(opc, SQSHRN | SQRSHRN);
            let x = int(a, 2 * esize, src_unsigned);
            let v = shift_exact(x, -(sh as i32), 2 * esize, round);
            let out = match (opc, u) {
                (SHRN | RSHRN, false) => v as u64,
                (SHRN | RSHRN, true) => self.sat(v, esize, true), // SQSHRUN / SQRSHRUN
                _ => self.sat(v, esize, u),                       // SQSHRN.. / UQSHRN..
            };
            put(&mut r, base + k, esize, out);
        }
        self.set_vreg(i, r, true);
        Ok(())
    }
}
