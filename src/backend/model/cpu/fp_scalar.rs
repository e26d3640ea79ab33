//! Scalar floating-point data processing (Arm ARM C4.1.90: "Floating-point data-processing
//! (1 source / 2 source / 3 source)", "Floating-point compare", "Floating-point conditional
//! compare", "Floating-point conditional select", "Conversion between floating-point and
//! integer" and "... and fixed-point"). Single and double precision, plus half precision
//! where ARMv8.0 has it (FCVT); every other half-precision form needs FEAT_FP16, which the
//! model does not implement (ID_AA64PFR0_EL1.FP = 0), and is UNDEFINED. Arithmetic is in
//! `fp.rs` / `fp_conv.rs`.

use super::alu::ones;
use super::fp::{Fmt, Fp, Rounding};
use super::{Cpu, Stop};

/// "Floating-point data-processing (1 source)" opcode (bits 20:15).
mod one {
    pub const FMOV: u32 = 0b000000;
    pub const FABS: u32 = 0b000001;
    pub const FNEG: u32 = 0b000010;
    pub const FSQRT: u32 = 0b000011;
    pub const FCVT_TO_S: u32 = 0b000100;
    pub const FCVT_TO_D: u32 = 0b000101;
    pub const FCVT_TO_H: u32 = 0b000111;
    pub const FRINTN: u32 = 0b001000;
    pub const FRINTP: u32 = 0b001001;
    pub const FRINTM: u32 = 0b001010;
    pub const FRINTZ: u32 = 0b001011;
    pub const FRINTA: u32 = 0b001100;
    pub const FRINTX: u32 = 0b001110;
    pub const FRINTI: u32 = 0b001111;
}

/// "Floating-point data-processing (2 source)" opcode (bits 15:12); the vector forms use
/// the same operation numbers with `fp_binary`.
pub(super) mod two {
    pub const FMUL: u32 = 0b0000;
    pub const FDIV: u32 = 0b0001;
    pub const FADD: u32 = 0b0010;
    pub const FSUB: u32 = 0b0011;
    pub const FMAX: u32 = 0b0100;
    pub const FMIN: u32 = 0b0101;
    pub const FMAXNM: u32 = 0b0110;
    pub const FMINNM: u32 = 0b0111;
    pub const FNMUL: u32 = 0b1000;
}

/// "Conversion between floating-point and integer" (rmode, opcode), bits 20:16.
mod cvt {
    pub const FCVTNS: (u32, u32) = (0b00, 0b000);
    pub const FCVTNU: (u32, u32) = (0b00, 0b001);
    pub const SCVTF: (u32, u32) = (0b00, 0b010);
    pub const UCVTF: (u32, u32) = (0b00, 0b011);
    pub const FCVTAS: (u32, u32) = (0b00, 0b100);
    pub const FCVTAU: (u32, u32) = (0b00, 0b101);
    /// FCVT{P,M,Z}{S,U}: opcode 000 (signed) or 001 with rmode 01/10/11.
    pub const TO_INT_SIGNED: u32 = 0b000;
    pub const TO_INT_UNSIGNED: u32 = 0b001;
    /// FMOV between general and FP registers (opcode 110 / 111, `FMOV_TO_GENERAL | 1`).
    pub const FMOV_TO_GENERAL: u32 = 0b110;
}

/// The precision of a `ftype` field (bits 23:22): 00 single, 01 double, 11 half.
pub(super) fn ftype_fmt(ftype: u32) -> Option<Fmt> {
    match ftype {
        0 => Some(Fmt::S),
        1 => Some(Fmt::D),
        3 => Some(Fmt::H),
        _ => None,
    }
}

impl Cpu {
    /// An arithmetic context with the current FPCR.
    pub(super) fn fp(&self) -> Fp {
        Fp::new(self.st.fpcr)
    }

    /// Accumulates the flags `f` raised into FPSR.
    pub(super) fn fp_flags(&mut self, f: Fp) {
        self.st.fpsr |= f.flags;
    }

    /// Writes a scalar result to Vd, clearing the rest of the register.
    fn set_scalar(&mut self, rd: u32, v: u64) {
        self.st.v[(rd & 31) as usize] = v as u128;
    }

    fn scalar_in(&self, rn: u32, fmt: Fmt) -> u64 {
        self.st.v[(rn & 31) as usize] as u64 & ones(fmt.bits())
    }

    /// Scalar floating-point data processing (bits 28:24 = 11110 or 11111, bit 30 = 0).
    pub(super) fn fp_scalar(&mut self, i: u32) -> Result<(), Stop> {
        let (m, s) = (i >> 31, (i >> 29) & 1);
        let fmov = (i >> 16) & 6 == cvt::FMOV_TO_GENERAL;
        if (i >> 24) & 1 == 0 && (i >> 21) & 1 == 1 && (i >> 10) & 0x3f == 0 && fmov && s == 0 {
            // FMOV (general), including the ftype 10 form for the top half of V.D[1].
            return self.fmov_general(i);
        }
        let Some(fmt) = ftype_fmt((i >> 22) & 3) else {
            return Err(self.undef(i));
        };
        if (i >> 24) & 1 == 1 {
            return self.fp_dp3(i, fmt, m | s);
        }
        if (i >> 21) & 1 == 0 {
            return self.fp_fixed(i, fmt);
        }
        match (i >> 10) & 3 {
            0b01 if m | s == 0 => return self.fp_ccmp(i, fmt),
            0b10 if m | s == 0 => return self.fp_dp2(i, fmt),
            0b11 if m | s == 0 => return self.fp_csel(i, fmt),
            0b00 => {}
            _ => return Err(self.undef(i)),
        }
        let low = (i >> 10) & 0x3f;
        if low == 0 {
            return self.fp_int(i, fmt);
        }
        if m | s != 0 {
            return Err(self.undef(i));
        }
        if low & 0x1f == 0b10000 {
            return self.fp_dp1(i, fmt);
        }
        if low & 0xf == 0b1000 && (i >> 14) & 3 == 0 {
            return self.fp_cmp(i, fmt);
        }
        if low & 7 == 0b100 && (i >> 5) & 31 == 0 && fmt != Fmt::H {
            // FMOV (scalar, immediate).
            let v = super::simd::vfp_expand((i >> 13) & 0xff, fmt.bits());
            self.set_scalar(i, v);
            return Ok(());
        }
        Err(self.undef(i))
    }

    /// FMADD, FMSUB, FNMADD, FNMSUB (M 0 S 11111 ftype o1 Rm o0 Ra Rn Rd).
    fn fp_dp3(&mut self, i: u32, fmt: Fmt, ms: u32) -> Result<(), Stop> {
        if ms != 0 || fmt == Fmt::H {
            return Err(self.undef(i));
        }
        let neg = 1u64 << (fmt.bits() - 1);
        let (o1, o0) = ((i >> 21) & 1 == 1, (i >> 15) & 1 == 1);
        let a = self.scalar_in(i >> 10, fmt) ^ if o1 { neg } else { 0 };
        let n = self.scalar_in(i >> 5, fmt) ^ if o0 != o1 { neg } else { 0 };
        let mm = self.scalar_in(i >> 16, fmt);
        let mut f = self.fp();
        let r = f.mul_add(a, n, mm, fmt);
        self.fp_flags(f);
        self.set_scalar(i, r);
        Ok(())
    }

    /// 2 source: FMUL, FDIV, FADD, FSUB, FMAX, FMIN, FMAXNM, FMINNM, FNMUL.
    fn fp_dp2(&mut self, i: u32, fmt: Fmt) -> Result<(), Stop> {
        use two::*;
        let op = (i >> 12) & 15;
        if fmt == Fmt::H || op > FNMUL {
            return Err(self.undef(i));
        }
        let (a, b) = (self.scalar_in(i >> 5, fmt), self.scalar_in(i >> 16, fmt));
        let mut f = self.fp();
        let r = fp_binary(&mut f, op, a, b, fmt);
        self.fp_flags(f);
        self.set_scalar(i, r);
        Ok(())
    }

    /// 1 source: FMOV, FABS, FNEG, FSQRT, FCVT, FRINT{N,P,M,Z,A,X,I}.
    fn fp_dp1(&mut self, i: u32, fmt: Fmt) -> Result<(), Stop> {
        use one::*;
        let op = (i >> 15) & 0x3f;
        let a = self.scalar_in(i >> 5, fmt);
        let sign = 1u64 << (fmt.bits() - 1);
        let mut f = self.fp();
        let cvt_to = match op {
            FCVT_TO_S => Some(Fmt::S),
            FCVT_TO_D => Some(Fmt::D),
            FCVT_TO_H => Some(Fmt::H),
            _ => None,
        };
        let r = match (op, cvt_to) {
            (_, Some(to)) if to != fmt => {
                let rnd = f.rounding();
                f.convert(a, fmt, to, rnd)
            }
            _ if fmt == Fmt::H => return Err(self.undef(i)),
            (FMOV, _) => a,
            (FABS, _) => a & !sign,
            (FNEG, _) => a ^ sign,
            (FSQRT, _) => f.sqrt(a, fmt),
            (FRINTN..=FRINTA | FRINTX | FRINTI, _) => {
                let rnd = match op {
                    FRINTN => Rounding::TieEven,
                    FRINTP => Rounding::PosInf,
                    FRINTM => Rounding::NegInf,
                    FRINTZ => Rounding::Zero,
                    FRINTA => Rounding::TieAway,
                    _ => f.rounding(),
                };
                f.round_int(a, fmt, rnd, op == FRINTX)
            }
            _ => return Err(self.undef(i)),
        };
        self.fp_flags(f);
        self.set_scalar(i, r);
        Ok(())
    }

    /// FCMP, FCMPE (with a register or #0.0): NZCV from the comparison.
    fn fp_cmp(&mut self, i: u32, fmt: Fmt) -> Result<(), Stop> {
        let opc2 = i & 31;
        if fmt == Fmt::H || opc2 & 7 != 0 {
            return Err(self.undef(i));
        }
        let a = self.scalar_in(i >> 5, fmt);
        let b = if opc2 & 8 != 0 {
            0
        } else {
            self.scalar_in(i >> 16, fmt)
        };
        let mut f = self.fp();
        let nzcv = f.compare(a, b, fmt, opc2 & 16 != 0);
        self.fp_flags(f);
        self.st.set_nzcv(nzcv);
        Ok(())
    }

    /// Whether the condition of FCCMP, FCCMPE or FCSEL (cond, bits 15:12) holds; their
    /// half-precision forms need FEAT_FP16 (not implemented: UNDEFINED).
    fn fp_cond_holds(&self, i: u32, fmt: Fmt) -> Result<bool, Stop> {
        if fmt == Fmt::H {
            return Err(self.undef(i));
        }
        Ok(self.st.cond_holds((i >> 12) & 15))
    }

    /// FCCMP, FCCMPE: compare if the condition holds, else NZCV = #nzcv.
    fn fp_ccmp(&mut self, i: u32, fmt: Fmt) -> Result<(), Stop> {
        let nzcv = if self.fp_cond_holds(i, fmt)? {
            let (a, b) = (self.scalar_in(i >> 5, fmt), self.scalar_in(i >> 16, fmt));
            let mut f = self.fp();
            let r = f.compare(a, b, fmt, (i >> 4) & 1 == 1);
            self.fp_flags(f);
            r
        } else {
            (i & 15) as u64
        };
        self.st.set_nzcv(nzcv);
        Ok(())
    }

    /// FCSEL.
    fn fp_csel(&mut self, i: u32, fmt: Fmt) -> Result<(), Stop> {
        let src = if self.fp_cond_holds(i, fmt)? {
            i >> 5
        } else {
            i >> 16
        };
        let v = self.scalar_in(src, fmt);
        self.set_scalar(i, v);
        Ok(())
    }

    /// Conversions between floating-point and integer (and FMOV general, in `simd.rs`).
    fn fp_int(&mut self, i: u32, fmt: Fmt) -> Result<(), Stop> {
        let sf = i >> 31 == 1;
        let (rmode, opcode) = ((i >> 19) & 3, (i >> 16) & 7);
        if fmt == Fmt::H || (i >> 29) & 1 == 1 {
            return Err(self.undef(i));
        }
        let bits = if sf { 64 } else { 32 };
        let (rd, rn) = (i & 31, (i >> 5) & 31);
        let mut f = self.fp();
        match (rmode, opcode) {
            cvt::SCVTF | cvt::UCVTF => self.int_to_fp(&mut f, i, bits, 0, fmt),
            (_, cvt::TO_INT_SIGNED | cvt::TO_INT_UNSIGNED) | cvt::FCVTAS | cvt::FCVTAU => {
                let rnd = if (rmode, opcode) == cvt::FCVTAS || (rmode, opcode) == cvt::FCVTAU {
                    Rounding::TieAway
                } else {
                    Rounding::from_rmode(rmode as u64)
                };
                let _ = (cvt::FCVTNS, cvt::FCVTNU);
                let a = self.scalar_in(rn, fmt);
                let r = f.fp_to_fixed(a, fmt, 0, opcode & 1 == 1, bits, rnd);
                self.st.set_x(rd, r);
            }
            _ => return Err(self.undef(i)),
        }
        self.fp_flags(f);
        Ok(())
    }

    /// SCVTF, UCVTF (opcode bit 16 = 1: unsigned): the low `bits` bits of Xn, with `fbits`
    /// fraction bits (0 for the integer forms), rounded per FPCR into Vd.
    fn int_to_fp(&mut self, f: &mut Fp, i: u32, bits: u32, fbits: u32, fmt: Fmt) {
        let x = self.st.xr((i >> 5) & 31) & ones(bits);
        let v = super::simd_elem::int(x, bits, (i >> 16) & 7 == cvt::UCVTF.1);
        let rnd = f.rounding();
        let r = f.fixed_to_fp(v, fbits, fmt, rnd);
        self.set_scalar(i & 31, r);
    }

    /// Conversions between floating-point and fixed-point: SCVTF, UCVTF, FCVTZS, FCVTZU
    /// (sf 0 S 11110 ftype 0 rmode opcode scale Rn Rd, fbits = 64 - scale).
    fn fp_fixed(&mut self, i: u32, fmt: Fmt) -> Result<(), Stop> {
        let sf = i >> 31 == 1;
        let (rmode, opcode, scale) = ((i >> 19) & 3, (i >> 16) & 7, (i >> 10) & 63);
        let bits = if sf { 64 } else { 32 };
        if fmt == Fmt::H || (i >> 29) & 1 == 1 || (!sf && scale < 32) {
            return Err(self.undef(i));
        }
        let fbits = 64 - scale;
        let (rd, rn) = (i & 31, (i >> 5) & 31);
        let mut f = self.fp();
        match (rmode, opcode) {
            cvt::SCVTF | cvt::UCVTF => self.int_to_fp(&mut f, i, bits, fbits, fmt),
            (0b11, cvt::TO_INT_SIGNED | cvt::TO_INT_UNSIGNED) => {
                let a = self.scalar_in(rn, fmt);
                let r = f.fp_to_fixed(a, fmt, fbits, opcode == 1, bits, Rounding::Zero);
                self.st.set_x(rd, r);
            }
            _ => return Err(self.undef(i)),
        }
        self.fp_flags(f);
        Ok(())
    }
}

/// The "2 source" operations on one pair of elements (shared with the vector forms).
pub(super) fn fp_binary(f: &mut Fp, op: u32, a: u64, b: u64, fmt: Fmt) -> u64 {
    use two::*;
    let sign = 1u64 << (fmt.bits() - 1);
    match op {
        FMUL => f.mul(a, b, fmt, false),
        FDIV => f.div(a, b, fmt),
        FADD => f.add(a, b, fmt, false),
        FSUB => f.add(a, b, fmt, true),
        FMAX => f.max_min(a, b, fmt, true, false),
        FMIN => f.max_min(a, b, fmt, false, false),
        FMAXNM => f.max_min(a, b, fmt, true, true),
        FMINNM => f.max_min(a, b, fmt, false, true),
        _ => f.mul(a, b, fmt, false) ^ sign, // FNMUL
    }
}
