//! The dispatch of "Data Processing -- Scalar Floating-Point and Advanced SIMD" (Arm ARM
//! C4.1.90) to its encoding groups (scalar FP in `fp_scalar.rs`, the Advanced SIMD groups in
//! `simd_*.rs`), and the moves: FMOV (general), MOVI/MVNI/ORR/BIC/FMOV (vector immediate),
//! DUP, INS, UMOV, SMOV. Encodings of features the model does not advertise (FP16, crypto,
//! dot product, RDM, FCMA) are UNDEFINED.

use crate::a64::esr::ec;

use super::alu::ones;
use super::{Cpu, Exc, Stop};

/// Replicates the low `esize` bits of `v` across 128 bits.
fn replicate(v: u64, esize: u32) -> u128 {
    let e = (v & ones(esize)) as u128;
    let mut out = 0u128;
    let mut k = 0;
    while k < 128 {
        out |= e << k;
        k += esize;
    }
    out
}

/// VFPExpandImm for a 16/32/64-bit float.
pub(super) fn vfp_expand(imm8: u32, bits: u32) -> u64 {
    let (e, f) = match bits {
        16 => (5, 10),
        32 => (8, 23),
        _ => (11, 52),
    };
    let sign = ((imm8 >> 7) & 1) as u64;
    let b6 = ((imm8 >> 6) & 1) as u64;
    let exp = ((b6 ^ 1) << (e - 1))
        | (if b6 == 1 { ones(e - 3) } else { 0 } << 2)
        | ((imm8 >> 4) & 3) as u64;
    let frac = ((imm8 & 15) as u64) << (f - 4);
    sign << (bits - 1) | exp << f | frac
}

/// AdvSIMDExpandImm (Arm ARM J1): the 64-bit pattern of a vector immediate.
pub(super) fn simd_expand(op: u32, cmode: u32, imm8: u32) -> u64 {
    let i = imm8 as u64;
    let rep32 = |v: u64| v | v << 32;
    let rep16 = |v: u64| v * 0x0001_0001_0001_0001;
    match cmode >> 1 {
        0 => rep32(i),
        1 => rep32(i << 8),
        2 => rep32(i << 16),
        3 => rep32(i << 24),
        4 => rep16(i),
        5 => rep16(i << 8),
        6 if cmode & 1 == 0 => rep32(i << 8 | 0xff),
        6 => rep32(i << 16 | 0xffff),
        _ => match (cmode & 1, op) {
            (0, 0) => i * 0x0101_0101_0101_0101,
            (0, _) => (0..8).fold(0, |acc, b| {
                acc | if (i >> b) & 1 == 1 {
                    0xff << (8 * b)
                } else {
                    0
                }
            }),
            (_, 0) => rep32(vfp_expand(imm8, 32)),
            _ => vfp_expand(imm8, 64),
        },
    }
}

type Group = fn(&mut Cpu, u32) -> Result<(), Stop>;

/// Advanced SIMD vector groups (op0 = 0xx0): (mask, value, handler), first match wins.
const VECTOR: &[(u32, u32, Group)] = &[
    (0xbfe0_8c00, 0x0e00_0000, Cpu::simd_tbl), // table lookup: TBL, TBX (op2 = 00)
    (0xbf20_8c00, 0x0e00_0800, Cpu::simd_permute), // permute: UZP, TRN, ZIP
    (0xbfe0_8400, 0x2e00_0000, Cpu::simd_ext), // extract: EXT
    (0x9fe0_8400, 0x0e00_0400, Cpu::simd_copy), // copy: DUP, INS, SMOV, UMOV
    (0x9f3e_0c00, 0x0e20_0800, Cpu::simd_two_misc), // two-register miscellaneous
    (0x9f3e_0c00, 0x0e30_0800, Cpu::simd_across), // across lanes
    (0x9f20_0c00, 0x0e20_0000, Cpu::simd_three_diff), // three different
    (0x9f20_0400, 0x0e20_0400, Cpu::simd_three_same), // three same
    (0x9ff8_0400, 0x0f00_0400, Cpu::simd_mod_imm), // modified immediate
    (0x9f80_0400, 0x0f00_0400, Cpu::simd_shift_imm), // shift by immediate (immh != 0)
    (0x9f00_0400, 0x0f00_0000, Cpu::simd_indexed), // vector x indexed element
];

/// Advanced SIMD scalar groups (op0 = 01x1).
const SCALAR: &[(u32, u32, Group)] = &[
    (0xffe0_fc00, 0x5e00_0400, Cpu::simd_copy), // scalar copy: DUP (element), op 0, imm4 0000
    (0xdf3e_0c00, 0x5e20_0800, Cpu::simd_two_misc), // scalar two-register misc
    (0xdf3e_0c00, 0x5e30_0800, Cpu::simd_scalar_pairwise), // scalar pairwise
    (0xdf20_0c00, 0x5e20_0000, Cpu::simd_three_diff), // scalar three different
    (0xdf20_0400, 0x5e20_0400, Cpu::simd_three_same), // scalar three same
    (0xdf80_0400, 0x5f00_0400, Cpu::simd_shift_imm), // scalar shift by immediate
    (0xdf00_0400, 0x5f00_0000, Cpu::simd_indexed), // scalar x indexed element
];

impl Cpu {
    /// Traps SIMD&FP use that CPACR_EL1.FPEN disables (EC 0x07, Arm ARM D19.2.30).
    pub fn fp_check(&self) -> Result<(), Stop> {
        let fpen = (self.st.sys.cpacr >> 20) & 3;
        let enabled = fpen == 3 || (fpen == 1 && self.st.el() == 1);
        if enabled {
            Ok(())
        } else {
            Err(Stop::Exception(Exc::new(ec::FP_ACCESS, 0, self.st.pc)))
        }
    }

    /// Data Processing -- Scalar Floating-Point and Advanced SIMD: the group `i` belongs to
    /// (Arm ARM C4.1.90 top-level table, by op0 = bits 31:28 and the group's fixed bits).
    pub(super) fn simd_dp(&mut self, i: u32) -> Result<(), Stop> {
        self.fp_check()?;
        if (i >> 30) & 1 == 0 && (i >> 28) & 1 == 1 {
            return self.fp_scalar(i); // op0 = x0x1: scalar floating-point
        }
        let table = if (i >> 28) & 1 == 1 { SCALAR } else { VECTOR };
        for &(mask, value, handler) in table {
            if i & mask == value {
                return handler(self, i);
            }
        }
        Err(self.undef(i))
    }

    /// FMOV between general and FP registers (incl. the top half of V.D\[1\]); the
    /// half-precision forms need FEAT_FP16 (not implemented: UNDEFINED).
    pub(super) fn fmov_general(&mut self, i: u32) -> Result<(), Stop> {
        let sf = i >> 31;
        let ftype = (i >> 22) & 3;
        let rmode = (i >> 19) & 3;
        let opcode = (i >> 16) & 7;
        let (rd, rn) = (i & 31, (i >> 5) & 31);
        match (sf, ftype, rmode, opcode) {
            (0, 0, 0, 6) | (1, 1, 0, 6) => {
                let bits = if ftype == 0 { 32 } else { 64 };
                let v = self.st.v[rn as usize] as u64 & ones(bits);
                self.st.set_x(rd, v);
            }
            (0, 0, 0, 7) | (1, 1, 0, 7) => {
                let bits = if ftype == 0 { 32 } else { 64 };
                self.st.v[rd as usize] = (self.st.xr(rn) & ones(bits)) as u128;
            }
            (1, 2, 1, 6) => {
                let v = (self.st.v[rn as usize] >> 64) as u64;
                self.st.set_x(rd, v);
            }
            (1, 2, 1, 7) => {
                let lo = self.st.v[rd as usize] & u64::MAX as u128;
                self.st.v[rd as usize] = lo | (self.st.xr(rn) as u128) << 64;
            }
            _ => return Err(self.undef(i)),
        }
        Ok(())
    }

    /// Modified immediate: MOVI, MVNI, ORR, BIC, FMOV (vector, immediate).
    fn simd_mod_imm(&mut self, i: u32) -> Result<(), Stop> {
        let rd = (i & 31) as usize;
        let q = (i >> 30) & 1 == 1;
        let lanes_mask = if q { u128::MAX } else { u64::MAX as u128 };
        let op = (i >> 29) & 1;
        let cmode = (i >> 12) & 15;
        let imm8 = ((i >> 16) & 7) << 5 | ((i >> 5) & 31);
        // o2 (bit 11) = 1 is FMOV (vector, half-precision): FEAT_FP16 is not implemented.
        if (op == 1 && cmode == 15 && !q) || (i >> 11) & 1 == 1 {
            return Err(self.undef(i));
        }
        let imm = replicate(simd_expand(op, cmode, imm8), 64);
        let logical = cmode < 12 && cmode & 1 == 1;
        let v = self.st.v[rd];
        let r = match (logical, op) {
            (true, 0) => v | imm,
            (true, _) => v & !imm,
            (false, 1) if cmode < 14 => !imm,
            _ => imm,
        };
        self.st.v[rd] = r & lanes_mask;
        Ok(())
    }

    /// Advanced SIMD copy: DUP (element, general), INS (general, element), SMOV, UMOV, and
    /// the scalar DUP (element).
    fn simd_copy(&mut self, i: u32) -> Result<(), Stop> {
        if (i >> 28) & 1 == 1 {
            let imm5 = (i >> 16) & 31;
            let size = imm5.trailing_zeros();
            if size > 3 {
                return Err(self.undef(i));
            }
            let esize = 8u32 << size;
            let e = super::simd_elem::el(self.vreg(i >> 5), imm5 >> (size + 1), esize);
            self.st.v[(i & 31) as usize] = e as u128;
            return Ok(());
        }
        let q = (i >> 30) & 1 == 1;
        let op = (i >> 29) & 1;
        let imm5 = (i >> 16) & 31;
        let imm4 = (i >> 11) & 15;
        let (rd, rn) = ((i & 31) as usize, ((i >> 5) & 31) as usize);
        let size = imm5.trailing_zeros();
        if size > 3 {
            return Err(self.undef(i));
        }
        let esize = 8u32 << size;
        let index = imm5 >> (size + 1);
        let elem = |v: u128, idx: u32| (v >> (idx * esize)) as u64 & ones(esize);
        let lanes_mask = if q { u128::MAX } else { u64::MAX as u128 };
        match (op, imm4) {
            (0, 0) if size != 3 || q => {
                let e = elem(self.st.v[rn], index);
                self.st.v[rd] = replicate(e, esize) & lanes_mask;
            }
            (0, 1) if size != 3 || q => {
                self.st.v[rd] = replicate(self.st.xr(rn as u32), esize) & lanes_mask;
            }
            (0, 3) if q => {
                let shift = index * esize;
                let m = (ones(esize) as u128) << shift;
                let v = (self.st.xr(rn as u32) as u128 & ones(esize) as u128) << shift;
                self.st.v[rd] = (self.st.v[rd] & !m) | v;
            }
            (0, 5) | (0, 7) => {
                let unsigned = imm4 == 7;
                let ok = if unsigned {
                    (size == 3) == q
                } else {
                    size < 2 || (size == 2 && q)
                };
                if !ok {
                    return Err(self.undef(i));
                }
                let e = elem(self.st.v[rn], index);
                let v = if unsigned {
                    e
                } else {
                    let s = super::branch::sext(e, esize);
                    if q {
                        s
                    } else {
                        s & 0xffff_ffff
                    }
                };
                self.st.set_x(rd as u32, v);
            }
            (1, _) if q => {
                // INS (element): Vd.T[index] = Vn.T[imm4 >> size]
                let src = elem(self.st.v[rn], imm4 >> size) as u128;
                let shift = index * esize;
                let m = (ones(esize) as u128) << shift;
                self.st.v[rd] = (self.st.v[rd] & !m) | src << shift;
            }
            _ => return Err(self.undef(i)),
        }
        Ok(())
    }
}
