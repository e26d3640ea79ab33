//! Advanced SIMD integer encoders beyond the vector three-same/two-misc/shift tables (Arm
//! ARM C4.1.90): three different (long, wide, narrowing-high), vector x indexed element, and
//! the scalar groups (three same, two-register misc, shift by immediate, three different, x
//! indexed element, pairwise ADDP, DUP (element)). Only allocated encodings of ARMv8.0
//! without optional extensions (no PMULL 1Q, no SQRDMLAH).

use super::gen::Gen;

fn v(g: &mut Gen) -> u32 {
    g.rng.below(32) as u32
}

/// (U, opcode, allowed sizes as a bit set of size fields) of three different.
const THREE_DIFF: [(u32, u32, u32); 26] = [
    (0, 0b0000, 0b111), // SADDL
    (1, 0b0000, 0b111), // UADDL
    (0, 0b0001, 0b111), // SADDW
    (1, 0b0001, 0b111), // UADDW
    (0, 0b0010, 0b111), // SSUBL
    (1, 0b0010, 0b111), // USUBL
    (0, 0b0011, 0b111), // SSUBW
    (1, 0b0011, 0b111), // USUBW
    (0, 0b0100, 0b111), // ADDHN
    (1, 0b0100, 0b111), // RADDHN
    (0, 0b0101, 0b111), // SABAL
    (1, 0b0101, 0b111), // UABAL
    (0, 0b0110, 0b111), // SUBHN
    (1, 0b0110, 0b111), // RSUBHN
    (0, 0b0111, 0b111), // SABDL
    (1, 0b0111, 0b111), // UABDL
    (0, 0b1000, 0b111), // SMLAL
    (1, 0b1000, 0b111), // UMLAL
    (0, 0b1001, 0b110), // SQDMLAL
    (0, 0b1010, 0b111), // SMLSL
    (1, 0b1010, 0b111), // UMLSL
    (0, 0b1011, 0b110), // SQDMLSL
    (0, 0b1100, 0b111), // SMULL
    (1, 0b1100, 0b111), // UMULL
    (0, 0b1101, 0b110), // SQDMULL
    (0, 0b1110, 0b001), // PMULL (8-bit)
];

/// A size field from the bit set `sizes`.
fn size_in(g: &mut Gen, sizes: u32) -> u32 {
    let ok: Vec<u32> = (0..4).filter(|s| sizes & (1 << s) != 0).collect();
    g.rng.pick(&ok)
}

/// Three different: 0 Q U 01110 size 1 Rm opcode 00 Rn Rd.
pub fn three_diff(g: &mut Gen) {
    let (u, opcode, sizes) = g.rng.pick(&THREE_DIFF);
    let size = size_in(g, sizes);
    let (q, rm, rn, rd) = (g.rng.bit(), v(g), v(g), v(g));
    let w = q << 30 | u << 29 | 0b01110 << 24 | size << 22 | 1 << 21 | rm << 16;
    g.emit_v(w | opcode << 12 | rn << 5 | rd, &[rd]);
}

/// (U, opcode) of the integer by-element operations (sizes H and S).
const BY_ELEMENT: [(u32, u32); 14] = [
    (1, 0b0000), // MLA
    (0, 0b0010), // SMLAL
    (1, 0b0010), // UMLAL
    (0, 0b0011), // SQDMLAL
    (1, 0b0100), // MLS
    (0, 0b0110), // SMLSL
    (1, 0b0110), // UMLSL
    (0, 0b0111), // SQDMLSL
    (0, 0b1000), // MUL
    (0, 0b1010), // SMULL
    (1, 0b1010), // UMULL
    (0, 0b1011), // SQDMULL
    (0, 0b1100), // SQDMULH
    (0, 0b1101), // SQRDMULH
];

/// The size, L, M, H and Rm fields of a by-element form with 16- or 32-bit elements.
pub fn element_fields(g: &mut Gen, size: u32) -> u32 {
    let (h, l, m) = (g.rng.bit(), g.rng.bit(), g.rng.bit());
    let rm = if size == 1 {
        g.rng.below(16) as u32
    } else {
        v(g) & 15
    };
    size << 22 | l << 21 | m << 20 | rm << 16 | h << 11
}

/// Vector x indexed element (integer): 0 Q U 01111 size L M Rm opcode H 0 Rn Rd.
pub fn by_element(g: &mut Gen) {
    let (u, opcode) = g.rng.pick(&BY_ELEMENT);
    let size = 1 + g.rng.bit();
    let f = element_fields(g, size);
    let (q, rn, rd) = (g.rng.bit(), v(g), v(g));
    g.emit_v(
        q << 30 | u << 29 | 0b01111 << 24 | f | opcode << 12 | rn << 5 | rd,
        &[rd],
    );
}

/// (U, opcode, sizes) of the scalar three same integer operations.
const SCALAR_THREE: [(u32, u32, u32); 20] = [
    (0, 0b00001, 0b1111), // SQADD
    (1, 0b00001, 0b1111), // UQADD
    (0, 0b00101, 0b1111), // SQSUB
    (1, 0b00101, 0b1111), // UQSUB
    (0, 0b00110, 0b1000), // CMGT
    (1, 0b00110, 0b1000), // CMHI
    (0, 0b00111, 0b1000), // CMGE
    (1, 0b00111, 0b1000), // CMHS
    (0, 0b01000, 0b1000), // SSHL
    (1, 0b01000, 0b1000), // USHL
    (0, 0b01001, 0b1111), // SQSHL
    (1, 0b01001, 0b1111), // UQSHL
    (0, 0b01010, 0b1000), // SRSHL
    (1, 0b01010, 0b1000), // URSHL
    (0, 0b01011, 0b1111), // SQRSHL
    (1, 0b01011, 0b1111), // UQRSHL
    (0, 0b10000, 0b1000), // ADD
    (1, 0b10000, 0b1000), // SUB
    (0, 0b10110, 0b0110), // SQDMULH
    (1, 0b10110, 0b0110), // SQRDMULH
];

/// (U, opcode, sizes) of the scalar two-register misc integer operations.
const SCALAR_MISC: [(u32, u32, u32); 14] = [
    (0, 0b00011, 0b1111), // SUQADD
    (1, 0b00011, 0b1111), // USQADD
    (0, 0b00111, 0b1111), // SQABS
    (1, 0b00111, 0b1111), // SQNEG
    (0, 0b01000, 0b1000), // CMGT #0
    (1, 0b01000, 0b1000), // CMGE #0
    (0, 0b01001, 0b1000), // CMEQ #0
    (1, 0b01001, 0b1000), // CMLE #0
    (0, 0b01010, 0b1000), // CMLT #0
    (0, 0b01011, 0b1000), // ABS
    (1, 0b01011, 0b1000), // NEG
    (1, 0b10010, 0b0111), // SQXTUN
    (0, 0b10100, 0b0111), // SQXTN
    (1, 0b10100, 0b0111), // UQXTN
];

/// (U, opcode, narrow) of the scalar shifts by immediate (non-narrowing ones are D only,
/// except the saturating left shifts, which take any size).
const SCALAR_SHIFT: [(u32, u32, u8); 20] = [
    (0, 0b00000, 0), // SSHR
    (1, 0b00000, 0), // USHR
    (0, 0b00010, 0), // SSRA
    (1, 0b00010, 0), // USRA
    (0, 0b00100, 0), // SRSHR
    (1, 0b00100, 0), // URSHR
    (0, 0b00110, 0), // SRSRA
    (1, 0b00110, 0), // URSRA
    (1, 0b01000, 0), // SRI
    (0, 0b01010, 0), // SHL
    (1, 0b01010, 0), // SLI
    (1, 0b01100, 2), // SQSHLU
    (0, 0b01110, 2), // SQSHL
    (1, 0b01110, 2), // UQSHL
    (1, 0b10000, 1), // SQSHRUN
    (1, 0b10001, 1), // SQRSHRUN
    (0, 0b10010, 1), // SQSHRN
    (1, 0b10010, 1), // UQSHRN
    (0, 0b10011, 1), // SQRSHRN
    (1, 0b10011, 1), // UQRSHRN
];

/// The Advanced SIMD scalar integer groups.
pub fn scalar_int(g: &mut Gen) {
    let (rm, rn, rd) = (v(g), v(g), v(g));
    let w = match g.rng.below(7) {
        0 => {
            let (u, opcode, sizes) = g.rng.pick(&SCALAR_THREE);
            let size = size_in(g, sizes);
            0x5e20_0400 | u << 29 | size << 22 | rm << 16 | opcode << 11
        }
        1 => {
            let (u, opcode, sizes) = g.rng.pick(&SCALAR_MISC);
            let size = size_in(g, sizes);
            0x5e20_0800 | u << 29 | size << 22 | opcode << 12
        }
        2 => {
            let (u, opcode, kind) = g.rng.pick(&SCALAR_SHIFT);
            let esize_log = match kind {
                0 => 3,
                1 => g.rng.below(3) as u32,
                _ => g.rng.below(4) as u32,
            };
            let immhb = (8u32 << esize_log) | g.rng.below(8 << esize_log) as u32;
            0x5f00_0400 | u << 29 | immhb << 16 | opcode << 11
        }
        3 => {
            let opcode = g.rng.pick(&[0b1001u32, 0b1011, 0b1101]); // SQDMLAL, SQDMLSL, SQDMULL
            let size = 1 + g.rng.bit();
            0x5e20_0000 | size << 22 | rm << 16 | opcode << 12
        }
        4 => {
            // SQDMLAL, SQDMLSL, SQDMULL, SQDMULH, SQRDMULH (by element).
            let opcode = g.rng.pick(&[0b0011u32, 0b0111, 0b1011, 0b1100, 0b1101]);
            let size = 1 + g.rng.bit();
            0x5f00_0000 | element_fields(g, size) | opcode << 12
        }
        5 => 0x5ef1_b800, // ADDP Dd, Vn.2D
        _ => {
            let size = g.rng.below(4) as u32;
            let imm5 = (g.rng.below(16 >> size) as u32) << (size + 1) | 1 << size;
            0x5e00_0400 | imm5 << 16 // DUP (element), scalar
        }
    };
    g.emit_v(w | rn << 5 | rd, &[rd]);
}
