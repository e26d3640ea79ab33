//! Floating-point encoders (Arm ARM C4.1.90): scalar data processing (1, 2 and 3 source),
//! compares, conditional compare and select, conversions to and from integers and
//! fixed-point, and the Advanced SIMD FP groups (three same, two-register misc, across lanes,
//! scalar pairwise, by element, fixed-point shifts, FCVTN/FCVTL/FCVTXN). Single and double
//! precision, half precision only where ARMv8.0 has it (FCVT, FCVTN, FCVTL). FPSR's
//! cumulative flags are compared with the V registers; FPCR's RMode/FZ/DN/AHP are
//! randomised by the system class and by `fp_special`.

use super::gen::{mov64, Gen};

fn v(g: &mut Gen) -> u32 {
    g.rng.below(32) as u32
}

/// Bit patterns that exercise the special cases: zeros, infinities, NaNs, denormals, the
/// extremes, integers and halves (single precision in the low word, double in the whole).
const SPECIAL: [u64; 24] = [
    0x0000_0000_0000_0000, // +0
    0x8000_0000_0000_0000, // -0.0 (double)
    0x0000_0000_8000_0000, // -0.0 (single)
    0x7ff0_0000_0000_0000, // +inf (double)
    0x0000_0000_ff80_0000, // -inf (single)
    0x7ff8_0000_0000_0001, // quiet NaN (double)
    0x7ff0_0000_0000_0001, // signalling NaN (double)
    0x0000_0000_7fc0_0123, // quiet NaN (single)
    0x0000_0000_7f80_0042, // signalling NaN (single)
    0x0000_0000_0000_0001, // smallest denormal
    0x000f_ffff_ffff_ffff, // largest double denormal
    0x0000_0000_007f_ffff, // largest single denormal
    0x7fef_ffff_ffff_ffff, // largest double
    0x0000_0000_7f7f_ffff, // largest single
    0x3ff0_0000_0000_0000, // 1.0 (double)
    0x0000_0000_3f80_0000, // 1.0 (single)
    0xc004_0000_0000_0000, // -2.5 (double)
    0x0000_0000_c020_0000, // -2.5 (single)
    0x43e0_0000_0000_0000, // 2^63 (double)
    0x0000_0000_4f00_0000, // 2^31 (single)
    0x0010_0000_0000_0000, // smallest normal double
    0x0000_0000_0080_0000, // smallest normal single
    0x3fe0_0000_0000_0000, // 0.5 (double)
    0x0000_0000_3f00_0000, // 0.5 (single)
];

/// Loads a special pattern (or two singles side by side) into a V register's low 64 bits
/// through X25: `movz/movk x25, ...; fmov dN, x25`, sometimes also a random FPCR.
pub fn fp_special(g: &mut Gen) {
    let a = g.rng.pick(&SPECIAL);
    let val = if g.rng.bit() == 1 {
        a
    } else {
        (a & 0xffff_ffff) | g.rng.pick(&SPECIAL) << 32
    };
    mov64(g, 25, val);
    let rd = v(g);
    g.emit_v(0x9e67_0000 | 25 << 5 | rd, &[rd]); // fmov dRd, x25
    if g.rng.below(8) == 0 {
        // FPCR = RMode, FZ, DN, AHP at random (bits 26:22).
        let fpcr = g.rng.below(32) << 22;
        mov64(g, 25, fpcr);
        g.emit(0xd51b_4419); // msr fpcr, x25
    }
}

/// Scalar FP: 1/2/3 source, compares, FCCMP, FCSEL (ftype 00 single, 01 double).
pub fn scalar(g: &mut Gen) {
    let ty = g.rng.bit();
    let (rm, rn, rd, ra) = (v(g), v(g), v(g), v(g));
    let base = 0x1e20_0000 | ty << 22;
    match g.rng.below(7) {
        0 => {
            // FMOV, FABS, FNEG, FSQRT, FCVT (to the other sizes), FRINT{N,P,M,Z,A,X,I}.
            let mut ops = vec![0u32, 1, 2, 3, 8, 9, 10, 11, 12, 14, 15, 7];
            ops.push(if ty == 0 { 5 } else { 4 });
            let op = g.rng.pick(&ops);
            g.emit_v(base | op << 15 | 0b10000 << 10 | rn << 5 | rd, &[rd]);
        }
        1 => {
            let op = g.rng.below(9) as u32; // FMUL .. FNMUL
            g.emit_v(
                base | rm << 16 | op << 12 | 0b10 << 10 | rn << 5 | rd,
                &[rd],
            );
        }
        2 => {
            let (o1, o0) = (g.rng.bit(), g.rng.bit()); // FMADD, FMSUB, FNMADD, FNMSUB
            let w = 0x1f00_0000 | ty << 22 | o1 << 21 | rm << 16 | o0 << 15 | ra << 10;
            g.emit_v(w | rn << 5 | rd, &[rd]);
        }
        3 => {
            // FCMP, FCMPE with a register or #0.0.
            let opc2 = g.rng.pick(&[0u32, 8, 16, 24]);
            let rm = if opc2 & 8 != 0 { 0 } else { rm };
            g.emit(base | rm << 16 | 0b1000 << 10 | rn << 5 | opc2);
        }
        4 => {
            let (cond, op, nzcv) = (g.rng.below(16) as u32, g.rng.bit(), g.rng.below(16) as u32);
            g.emit(base | rm << 16 | cond << 12 | 0b01 << 10 | rn << 5 | op << 4 | nzcv);
        }
        5 => {
            let cond = g.rng.below(16) as u32;
            g.emit_v(
                base | rm << 16 | cond << 12 | 0b11 << 10 | rn << 5 | rd,
                &[rd],
            );
        }
        _ => {
            // FCVT (half to single/double): ftype 11.
            let opc = g.rng.pick(&[4u32, 5]);
            g.emit_v(0x1ee0_4000 | opc << 15 | rn << 5 | rd, &[rd]);
        }
    }
}

/// FP <-> integer and fixed-point: SCVTF/UCVTF from X/W, FCVT{N,P,M,Z,A}{S,U} to X/W.
pub fn convert(g: &mut Gen) {
    let (sf, ty) = (g.rng.bit(), g.rng.bit());
    let base = sf << 31 | 0x1e00_0000 | ty << 22;
    let fixed = g.rng.below(3) == 0;
    let scale = if sf == 1 {
        1 + g.rng.below(63) as u32
    } else {
        32 + g.rng.below(32) as u32
    };
    if g.rng.bit() == 1 {
        // SCVTF / UCVTF: from a general register.
        let (opcode, rn, rd) = (2 + g.rng.bit(), g.src(), v(g));
        let w = if fixed {
            base | opcode << 16 | scale << 10
        } else {
            base | 1 << 21 | opcode << 16
        };
        g.emit_v(w | rn << 5 | rd, &[rd]);
    } else {
        let (rn, rd) = (v(g), g.dst_or_zr());
        let w = if fixed {
            base | 0b11 << 19 | g.rng.bit() << 16 | scale << 10 // FCVTZS/FCVTZU (fixed)
        } else {
            let (rmode, opcode) = g.rng.pick(&[
                (0u32, 0u32),
                (0, 1),
                (1, 0),
                (1, 1),
                (2, 0),
                (2, 1),
                (3, 0),
                (3, 1),
                (0, 4),
                (0, 5),
            ]);
            base | 1 << 21 | rmode << 19 | opcode << 16
        };
        g.emit(w | rn << 5 | rd);
    }
}

/// (U, a, opcode) of the vector FP three-same operations.
const THREE: [(u32, u32, u32); 24] = [
    (0, 0, 0b11000), // FMAXNM
    (0, 0, 0b11001), // FMLA
    (0, 0, 0b11010), // FADD
    (0, 0, 0b11011), // FMULX
    (0, 0, 0b11100), // FCMEQ
    (0, 0, 0b11110), // FMAX
    (0, 0, 0b11111), // FRECPS
    (0, 1, 0b11000), // FMINNM
    (0, 1, 0b11001), // FMLS
    (0, 1, 0b11010), // FSUB
    (0, 1, 0b11110), // FMIN
    (0, 1, 0b11111), // FRSQRTS
    (1, 0, 0b11000), // FMAXNMP
    (1, 0, 0b11010), // FADDP
    (1, 0, 0b11011), // FMUL
    (1, 0, 0b11100), // FCMGE
    (1, 0, 0b11101), // FACGE
    (1, 0, 0b11110), // FMAXP
    (1, 0, 0b11111), // FDIV
    (1, 1, 0b11000), // FMINNMP
    (1, 1, 0b11010), // FABD
    (1, 1, 0b11100), // FCMGT
    (1, 1, 0b11101), // FACGT
    (1, 1, 0b11110), // FMINP
];

/// (U, a, opcode, scalar form exists) of the FP two-register misc operations.
const MISC: [(u32, u32, u32, bool); 32] = [
    (0, 0, 0b11000, false), // FRINTN
    (0, 0, 0b11001, false), // FRINTM
    (0, 0, 0b11010, true),  // FCVTNS
    (0, 0, 0b11011, true),  // FCVTMS
    (0, 0, 0b11100, true),  // FCVTAS
    (0, 0, 0b11101, true),  // SCVTF
    (0, 1, 0b01100, true),  // FCMGT #0
    (0, 1, 0b01101, true),  // FCMEQ #0
    (0, 1, 0b01110, true),  // FCMLT #0
    (0, 1, 0b01111, false), // FABS
    (0, 1, 0b11000, false), // FRINTP
    (0, 1, 0b11001, false), // FRINTZ
    (0, 1, 0b11010, true),  // FCVTPS
    (0, 1, 0b11011, true),  // FCVTZS
    (0, 1, 0b11101, true),  // FRECPE
    (1, 0, 0b11000, false), // FRINTA
    (1, 0, 0b11001, false), // FRINTX
    (1, 0, 0b11010, true),  // FCVTNU
    (1, 0, 0b11011, true),  // FCVTMU
    (1, 0, 0b11100, true),  // FCVTAU
    (1, 0, 0b11101, true),  // UCVTF
    (1, 1, 0b01100, true),  // FCMGE #0
    (1, 1, 0b01101, true),  // FCMLE #0
    (1, 1, 0b01111, false), // FNEG
    (1, 1, 0b11001, false), // FRINTI
    (1, 1, 0b11010, true),  // FCVTPU
    (1, 1, 0b11011, true),  // FCVTZU
    (1, 1, 0b11101, true),  // FRSQRTE
    (1, 1, 0b11111, false), // FSQRT
    (0, 1, 0b11111, true),  // FRECPX (scalar only, see below)
    (0, 1, 0b11100, false), // URECPE (32-bit only)
    (1, 1, 0b11100, false), // URSQRTE (32-bit only)
];

/// The scalar three-same FP operations (U, a, opcode).
const SCALAR_THREE: [(u32, u32, u32); 9] = [
    (0, 0, 0b11011), // FMULX
    (0, 0, 0b11100), // FCMEQ
    (0, 0, 0b11111), // FRECPS
    (0, 1, 0b11111), // FRSQRTS
    (1, 0, 0b11100), // FCMGE
    (1, 0, 0b11101), // FACGE
    (1, 1, 0b11010), // FABD
    (1, 1, 0b11100), // FCMGT
    (1, 1, 0b11101), // FACGT
];

/// Advanced SIMD floating point, vector and scalar.
pub fn vector(g: &mut Gen) {
    let (rm, rn, rd) = (v(g), v(g), v(g));
    let sz = g.rng.bit();
    let q = if sz == 1 { 1 } else { g.rng.bit() };
    let vq = q << 30;
    let w = match g.rng.below(9) {
        0 => {
            let (u, a, opcode) = g.rng.pick(&THREE);
            vq | 0x0e20_0400 | u << 29 | a << 23 | sz << 22 | rm << 16 | opcode << 11
        }
        1 => {
            let (u, a, opcode) = g.rng.pick(&SCALAR_THREE);
            0x5e20_0400 | u << 29 | a << 23 | sz << 22 | rm << 16 | opcode << 11
        }
        2 => {
            let (u, a, opcode, scalar) = g.rng.pick(&MISC);
            let frecpx = (u, a, opcode) == (0, 1, 0b11111);
            let unsigned_est = opcode == 0b11100 && a == 1;
            let sz = if unsigned_est { 0 } else { sz };
            if frecpx || (scalar && g.rng.bit() == 1) {
                0x5e20_0800 | u << 29 | a << 23 | sz << 22 | opcode << 12
            } else {
                let vq = if sz == 1 { 1 << 30 } else { vq };
                vq | 0x0e20_0800 | u << 29 | a << 23 | sz << 22 | opcode << 12
            }
        }
        3 => {
            // FCVTN/FCVTL{2} (sz selects half<->single or single<->double), FCVTXN{2}/scalar.
            let q = g.rng.bit() << 30;
            match g.rng.below(4) {
                0 => q | 0x0e21_6800 | sz << 22, // FCVTN
                1 => q | 0x0e21_7800 | sz << 22, // FCVTL
                2 => q | 0x2e61_6800,            // FCVTXN (vector)
                _ => 0x7e61_6800,                // FCVTXN (scalar)
            }
        }
        4 => {
            // FMAXNMV, FMINNMV, FMAXV, FMINV (4S).
            let (a, opcode) = (g.rng.bit(), g.rng.pick(&[0b01100u32, 0b01111]));
            0x6e30_0800 | a << 23 | opcode << 12
        }
        5 => {
            // Scalar pairwise FMAXNMP, FADDP, FMAXP, FMINNMP, FMINP.
            let (a, opcode) = g.rng.pick(&[
                (0u32, 0b01100u32),
                (0, 0b01101),
                (0, 0b01111),
                (1, 0b01100),
                (1, 0b01111),
            ]);
            0x7e30_0800 | a << 23 | sz << 22 | opcode << 12
        }
        6 => {
            // FMLA, FMLS, FMUL, FMULX by element (vector or scalar).
            let (u, opcode) =
                g.rng
                    .pick(&[(0u32, 0b0001u32), (0, 0b0101), (0, 0b1001), (1, 0b1001)]);
            let (h, l, m) = (
                g.rng.bit(),
                if sz == 1 { 0 } else { g.rng.bit() },
                g.rng.bit(),
            );
            let f = (2 + sz) << 22 | l << 21 | m << 20 | (rm & 15) << 16 | h << 11;
            let scalar = if g.rng.bit() == 1 {
                0x5f00_0000
            } else {
                vq | 0x0f00_0000
            };
            scalar | u << 29 | f | opcode << 12
        }
        7 => {
            // SCVTF/UCVTF/FCVTZS/FCVTZU (fixed-point), vector or scalar.
            let esize_log = 2 + sz;
            let immhb = (8u32 << esize_log) | g.rng.below(8 << esize_log) as u32;
            let opcode = g.rng.pick(&[0b11100u32, 0b11111]);
            let base = if g.rng.bit() == 1 {
                0x5f00_0400
            } else {
                vq | 0x0f00_0400
            };
            base | g.rng.bit() << 29 | immhb << 16 | opcode << 11
        }
        _ => return fp_special(g),
    };
    g.emit_v(w | rn << 5 | rd, &[rd]);
}
