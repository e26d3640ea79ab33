//! SIMD&FP encoders: register loads/stores, pairs, LD1/ST1, bitwise, MOVI family, DUP/INS,
//! UMOV/SMOV and FMOV to/from general registers (Arm ARM C4.1.87 and C4.1.90 "Data
//! Processing -- Scalar Floating-Point and Advanced SIMD"). Every instruction that writes V
//! registers is emitted with `emit_v` so the lockstep driver knows what to compare.

use super::gen::Gen;

fn v(g: &mut Gen) -> u32 {
    g.rng.below(32) as u32
}

/// (size, load-opc, log2 bytes) of the B/H/S/D/Q register forms; store opc = load opc - 1.
const FORMS: [(u32, u32, u32); 5] = [(0, 1, 0), (1, 1, 1), (2, 1, 2), (3, 1, 3), (0, 3, 4)];

/// LDR/STR Bt/Ht/St/Dt/Qt: unsigned offset (size 111 1 01 opc imm12 Rn Rt), unscaled or
/// pre/post-index (size 111 1 00 opc 0 imm9 mode Rn Rt), or register offset with X26.
pub fn ldst(g: &mut Gen) {
    let (size, lopc, scale) = g.rng.pick(&FORMS);
    let load = g.rng.bit();
    let opc = lopc - 1 + load;
    let rt = v(g);
    let base = size << 30 | 0b111 << 27 | 1 << 26 | opc << 22 | rt;
    let w = match g.rng.below(4) {
        0 => {
            let imm12 = g.rng.below(0x1000 >> scale) as u32;
            base | 0b01 << 24 | imm12 << 10 | 28 << 5
        }
        1 => base | super::gen_mem::simm9_aligned(g, scale) << 12 | 28 << 5,
        2 => {
            g.x27_random(0x400, g.plain_align(), 0x400);
            let imm9 = super::gen_mem::simm9_aligned(g, scale);
            let mode = g.rng.pick(&[0b11u32, 0b01]);
            base | imm9 << 12 | mode << 10 | 27 << 5
        }
        _ => {
            let option = g.rng.pick(&[0b010u32, 0b011, 0b110, 0b111]);
            base | 1 << 21 | 26 << 16 | option << 13 | g.rng.bit() << 12 | 0b10 << 10 | 28 << 5
        }
    };
    if load == 1 {
        g.emit_v(w, &[rt]);
    } else {
        g.emit(w);
    }
}

/// LDP/STP St/Dt/Qt: opc 101 1 mode L imm7 Rt2 Rn Rt (opc 00 S, 01 D, 10 Q).
pub fn ldst_pair(g: &mut Gen) {
    let opc = g.rng.below(3) as u32;
    let l = g.rng.bit();
    let mode = g.rng.pick(&[0b010u32, 0b001, 0b011]);
    let rn = if mode == 0b010 {
        28
    } else {
        g.x27_random(0x400, g.plain_align(), 0x400);
        27
    };
    let rt = v(g);
    let rt2 = if l == 1 {
        (rt + 1 + g.rng.below(31) as u32) % 32
    } else {
        v(g)
    };
    let imm7 = g.rng.below(128) as u32;
    let w = opc << 30
        | 0b101 << 27
        | 1 << 26
        | mode << 23
        | l << 22
        | imm7 << 15
        | rt2 << 10
        | rn << 5
        | rt;
    if l == 1 {
        g.emit_v(w, &[rt, rt2]);
    } else {
        g.emit(w);
    }
}

/// LD1-LD4/ST1-ST4 on X27: multiple structures (0 Q 0011000 L 000000 opcode size Rn Rt;
/// post-index 0 Q 0011001 L 0 Rm opcode size Rn Rt, Rm 31 = by the transfer size, else by
/// X26), single structure (0 Q 0011010 L R 00000 opcode S size Rn Rt) and LD1R-LD4R
/// (single structure with opcode 11x, L = 1, S = 0).
pub fn ld1_st1(g: &mut Gen) {
    g.x27_random(0, g.plain_align(), 0x800);
    let rt = v(g);
    let mut l = g.rng.bit();
    let (w, n) = if g.rng.bit() == 0 {
        // (opcode, registers): LD1 x1-x4, LD2, LD3, LD4.
        let (opcode, n) = g.rng.pick(&[
            (0b0111u32, 1u32),
            (0b1010, 2),
            (0b0110, 3),
            (0b0010, 4),
            (0b1000, 2),
            (0b0100, 3),
            (0b0000, 4),
        ]);
        let size = g.rng.below(4) as u32;
        // LD2-LD4 have no 1D arrangement (size 11 needs Q = 1).
        let interleaved = matches!(opcode, 0b1000 | 0b0100 | 0b0000);
        let q = if interleaved && size == 3 {
            1
        } else {
            g.rng.bit()
        };
        let post = g.rng.bit();
        let rm = if post == 1 {
            g.rng.pick(&[31u32, 26])
        } else {
            0
        };
        let w = q << 30
            | 0b0011000 << 23
            | post << 23
            | l << 22
            | rm << 16
            | opcode << 12
            | size << 10
            | 27 << 5
            | rt;
        (w, n)
    } else {
        let r = g.rng.bit();
        let three_four = g.rng.bit();
        let n = 1 + (three_four << 1 | r);
        let (q, s_bit, size, kind) = match g.rng.below(5) {
            0 => (g.rng.bit(), g.rng.bit(), g.rng.below(4) as u32, 0u32), // B lane
            1 => (g.rng.bit(), g.rng.bit(), (g.rng.bit()) << 1, 1),       // H lane
            2 => (g.rng.bit(), g.rng.bit(), 0, 2),                        // S lane
            3 => (g.rng.bit(), 0, 1, 2),                                  // D lane
            _ => {
                l = 1; // LDnR: replicate to all lanes
                (g.rng.bit(), 0, g.rng.below(4) as u32, 3)
            }
        };
        let opcode = kind << 1 | three_four;
        let w = q << 30
            | 0b0011010 << 23
            | l << 22
            | r << 21
            | opcode << 13
            | s_bit << 12
            | size << 10
            | 27 << 5
            | rt;
        (w, n)
    };
    if l == 1 {
        let regs: Vec<u32> = (0..n).map(|i| rt + i).collect();
        g.emit_v(w, &regs);
    } else {
        g.emit(w);
    }
}

/// AND/BIC/ORR/ORN/EOR/BSL/BIT/BIF (0 Q U 01110 size 1 Rm 000111 Rn Rd) and NOT
/// (0 Q 1 01110 00 10000 00101 10 Rn Rd).
pub fn logic(g: &mut Gen) {
    let q = g.rng.bit();
    let (rn, rd) = (v(g), v(g));
    let w = if g.rng.below(9) == 0 {
        q << 30 | 0x2e20_5800 | rn << 5 | rd
    } else {
        let (u, size, rm) = (g.rng.bit(), g.rng.below(4) as u32, v(g));
        q << 30
            | u << 29
            | 0b01110 << 24
            | size << 22
            | 1 << 21
            | rm << 16
            | 0b000111 << 10
            | rn << 5
            | rd
    };
    g.emit_v(w, &[rd]);
}

/// MOVI/MVNI/ORR/BIC (vector, immediate): 0 Q op 0111100000 abc cmode 01 defgh Rd, using
/// only allocated (op, cmode) pairs (cmode 1111 = FMOV is left out; MOVI 64-bit with Q = 0
/// is the scalar D form).
pub fn movi(g: &mut Gen) {
    // Every (op, cmode < 1111) pair is allocated; op=1 cmode=1110 is MOVI 64-bit.
    let (op, cmode) = (g.rng.bit(), g.rng.below(15) as u32);
    let q = g.rng.bit();
    let imm8 = g.rng.below(256) as u32;
    let rd = v(g);
    let w = q << 30
        | op << 29
        | 0b0111100000 << 19
        | (imm8 >> 5) << 16
        | cmode << 12
        | 0b01 << 10
        | (imm8 & 31) << 5
        | rd;
    g.emit_v(w, &[rd]);
}

/// imm5 for element size `size` (0 B .. 3 D) and index.
fn imm5(size: u32, index: u32) -> u32 {
    (index << (size + 1)) | (1 << size)
}

/// DUP (element/general) and INS (element/general).
pub fn dup_ins(g: &mut Gen) {
    let size = g.rng.below(4) as u32;
    let index = g.rng.below(16 >> size) as u32;
    let rd = v(g);
    let w = match g.rng.below(4) {
        0 => {
            let q = if size == 3 { 1 } else { g.rng.bit() };
            q << 30 | 0x0e00_0400 | imm5(size, index) << 16 | v(g) << 5 | rd // dup vd.T, vn.T[i]
        }
        1 => {
            let q = if size == 3 { 1 } else { g.rng.bit() };
            q << 30 | 0x0e00_0c00 | imm5(size, 0) << 16 | g.src() << 5 | rd // dup vd.T, rn
        }
        2 => 0x4e00_1c00 | imm5(size, index) << 16 | g.src() << 5 | rd, // ins vd.T[i], rn
        _ => {
            let src = g.rng.below(16 >> size) as u32;
            0x6e00_0400 | imm5(size, index) << 16 | (src << size) << 11 | v(g) << 5 | rd
            // ins vd.T[i], vn.T[j]
        }
    };
    g.emit_v(w, &[rd]);
}

/// UMOV (0 Q 0 01110000 imm5 0 0111 1 Rn Rd; Q = 1 only for D) and SMOV (0 Q 0 01110000
/// imm5 0 0101 1 Rn Rd; B/H to W or X, S to X only).
pub fn umov_smov(g: &mut Gen) {
    let rd = g.dst_or_zr();
    let rn = v(g);
    let w = if g.rng.bit() == 0 {
        let size = g.rng.below(4) as u32;
        let q = (size == 3) as u32;
        let index = g.rng.below(16 >> size) as u32;
        q << 30 | 0x0e00_3c00 | imm5(size, index) << 16 | rn << 5 | rd
    } else {
        let size = g.rng.below(3) as u32;
        let q = if size == 2 { 1 } else { g.rng.bit() };
        let index = g.rng.below(16 >> size) as u32;
        q << 30 | 0x0e00_2c00 | imm5(size, index) << 16 | rn << 5 | rd
    };
    g.emit(w);
}

/// FMOV (general): sf 0 0 11110 type 1 rmode opcode 000000 Rn Rd for W<->S (sf 0, type 00),
/// X<->D (sf 1, type 01) and X<->V.D[1] (sf 1, type 10, rmode 01); opcode 110 to general,
/// 111 to SIMD.
pub fn fmov_general(g: &mut Gen) {
    let (sf, ty, rmode) = g.rng.pick(&[(0u32, 0u32, 0u32), (1, 1, 0), (1, 2, 1)]);
    let to_simd = g.rng.bit();
    let base = sf << 31 | 0x1e20_0000 | ty << 22 | rmode << 19 | (0b110 | to_simd) << 16;
    if to_simd == 1 {
        let rd = v(g);
        let rn = g.src();
        g.emit_v(base | rn << 5 | rd, &[rd]);
    } else {
        let rd = g.dst_or_zr();
        let rn = v(g);
        g.emit(base | rn << 5 | rd);
    }
}

/// ADD/SUB (vector): 0 Q U 01110 size 1 Rm 10000 1 Rn Rd (size 11 only with Q = 1).
pub fn add_sub(g: &mut Gen) {
    let size = g.rng.below(4) as u32;
    let q = if size == 3 { 1 } else { g.rng.bit() };
    let (u, rm, rn, rd) = (g.rng.bit(), v(g), v(g), v(g));
    let w = q << 30
        | u << 29
        | 0b01110 << 24
        | size << 22
        | 1 << 21
        | rm << 16
        | 0b100001 << 10
        | rn << 5
        | rd;
    g.emit_v(w, &[rd]);
}

/// FMOV (register) Sd/Dd: 0x1e204000 | type << 22 | Rn << 5 | Rd.
pub fn fmov_reg(g: &mut Gen) {
    let (ty, rn, rd) = (g.rng.bit(), v(g), v(g));
    g.emit_v(0x1e20_4000 | ty << 22 | rn << 5 | rd, &[rd]);
}

/// FMOV (scalar, immediate) Sd/Dd: 0x1e201000 | type << 22 | imm8 << 13 | Rd.
pub fn fmov_imm_scalar(g: &mut Gen) {
    let (ty, imm8, rd) = (g.rng.bit(), g.rng.below(256) as u32, v(g));
    g.emit_v(0x1e20_1000 | ty << 22 | imm8 << 13 | rd, &[rd]);
}

/// FMOV (vector, immediate): 0 Q op 0111100000 abc 1111 01 defgh Rd (op 0: single
/// precision 2S/4S; op 1 with Q 1: double precision 2D).
pub fn fmov_imm_vector(g: &mut Gen) {
    let (op, imm8, rd) = (g.rng.bit(), g.rng.below(256) as u32, v(g));
    let q = if op == 1 { 1 } else { g.rng.bit() };
    let w = q << 30
        | op << 29
        | 0b0111100000 << 19
        | (imm8 >> 5) << 16
        | 0b1111 << 12
        | 0b01 << 10
        | (imm8 & 31) << 5
        | rd;
    g.emit_v(w, &[rd]);
}
