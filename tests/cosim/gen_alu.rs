//! Integer data-processing encoders (Arm ARM C4.1.86 "Data Processing -- Immediate" and
//! C4.1.88 "Data Processing -- Register"). Field positions are given in each encoder.
//! Destinations come from `Gen::dst` so the reserved base registers stay intact; register
//! 31 as a destination is only produced where it encodes XZR.

use super::gen::Gen;

fn sf(g: &mut Gen) -> u32 {
    g.rng.bit()
}

/// ADD/ADDS/SUB/SUBS (immediate): sf op S 100010 sh imm12 Rn Rd. Rn 31 = SP; Rd 31 = SP
/// when S = 0 (never generated), XZR when S = 1.
pub fn add_sub_imm(g: &mut Gen) {
    let (sf, op, s, sh) = (sf(g), g.rng.bit(), g.rng.bit(), g.rng.bit());
    let imm12 = g.rng.below(4096) as u32;
    let rn = g.src();
    let rd = if s == 1 { g.dst_or_zr() } else { g.dst() };
    g.emit(sf << 31 | op << 30 | s << 29 | 0b100010 << 23 | sh << 22 | imm12 << 10 | rn << 5 | rd);
}

/// A valid bitmask immediate (N, immr, imms) for element sizes 2..64 (C4.1.86 "Logical
/// (immediate)", DecodeBitMasks in the shared pseudocode): ones count 1..e-1, any rotation.
fn bitmask(g: &mut Gen, sf: u32) -> (u32, u32, u32) {
    let sizes: &[u32] = if sf == 1 {
        &[2, 4, 8, 16, 32, 64]
    } else {
        &[2, 4, 8, 16, 32]
    };
    let e = g.rng.pick(sizes);
    let ones = 1 + g.rng.below(e as u64 - 1) as u32;
    let immr = g.rng.below(e as u64) as u32;
    if e == 64 {
        (1, immr, ones - 1)
    } else {
        (0, immr, ((!(e - 1) << 1) & 0x3f) | (ones - 1))
    }
}

/// AND/ORR/EOR/ANDS (immediate): sf opc 100100 N immr imms Rn Rd. Rn 31 = XZR; Rd 31 = SP
/// except for ANDS (opc 11), where it is XZR.
pub fn logical_imm(g: &mut Gen) {
    let sf = sf(g);
    let opc = g.rng.below(4) as u32;
    let (n, immr, imms) = bitmask(g, sf);
    let rn = g.src();
    let rd = if opc == 3 { g.dst_or_zr() } else { g.dst() };
    g.emit(
        sf << 31 | opc << 29 | 0b100100 << 23 | n << 22 | immr << 16 | imms << 10 | rn << 5 | rd,
    );
}

/// MOVN/MOVZ/MOVK: sf opc 100101 hw imm16 Rd (opc 01 unallocated; hw < 2 when sf = 0).
pub fn move_wide(g: &mut Gen) {
    let sf = sf(g);
    let opc = g.rng.pick(&[0u32, 2, 3]);
    let hw = g.rng.below(if sf == 1 { 4 } else { 2 }) as u32;
    let imm16 = g.rng.value() as u32 & 0xffff;
    let rd = g.dst_or_zr();
    g.emit(sf << 31 | opc << 29 | 0b100101 << 23 | hw << 21 | imm16 << 5 | rd);
}

/// ADR/ADRP: op immlo 10000 immhi Rd (21-bit signed immediate).
pub fn adr(g: &mut Gen) {
    let op = g.rng.bit();
    let imm = g.rng.next() as u32 & 0x1f_ffff;
    let rd = g.dst_or_zr();
    g.emit(op << 31 | (imm & 3) << 29 | 0b10000 << 24 | (imm >> 2) << 5 | rd);
}

/// SBFM/BFM/UBFM: sf opc 100110 N immr imms Rn Rd with N = sf; immr/imms < 32 when sf = 0.
pub fn bitfield(g: &mut Gen) {
    let sf = sf(g);
    let opc = g.rng.below(3) as u32;
    let lim = if sf == 1 { 64 } else { 32 };
    let (immr, imms) = (g.rng.below(lim) as u32, g.rng.below(lim) as u32);
    let (rn, rd) = (g.src(), g.dst_or_zr());
    g.emit(
        sf << 31 | opc << 29 | 0b100110 << 23 | sf << 22 | immr << 16 | imms << 10 | rn << 5 | rd,
    );
}

/// EXTR: sf 00 100111 N 0 Rm imms Rn Rd with N = sf; imms < 32 when sf = 0.
pub fn extr(g: &mut Gen) {
    let sf = sf(g);
    let imms = g.rng.below(if sf == 1 { 64 } else { 32 }) as u32;
    let (rm, rn, rd) = (g.src(), g.src(), g.dst_or_zr());
    g.emit(sf << 31 | 0b100111 << 23 | sf << 22 | rm << 16 | imms << 10 | rn << 5 | rd);
}

/// ADD/SUB(S) (shifted register): sf op S 01011 shift 0 Rm imm6 Rn Rd; shift 11 reserved,
/// imm6 < 32 when sf = 0. Register 31 is XZR everywhere.
pub fn add_sub_shifted(g: &mut Gen) {
    let (sf, op, s) = (sf(g), g.rng.bit(), g.rng.bit());
    let shift = g.rng.below(3) as u32;
    let imm6 = g.rng.below(if sf == 1 { 64 } else { 32 }) as u32;
    let (rm, rn, rd) = (g.src(), g.src(), g.dst_or_zr());
    g.emit(
        sf << 31
            | op << 30
            | s << 29
            | 0b01011 << 24
            | shift << 22
            | rm << 16
            | imm6 << 10
            | rn << 5
            | rd,
    );
}

/// ADD/SUB(S) (extended register): sf op S 01011 00 1 Rm option imm3 Rn Rd; imm3 <= 4.
/// Rn 31 = SP; Rd 31 = SP when S = 0 (never generated), XZR when S = 1.
pub fn add_sub_extended(g: &mut Gen) {
    let (sf, op, s) = (sf(g), g.rng.bit(), g.rng.bit());
    let option = g.rng.below(8) as u32;
    let imm3 = g.rng.below(5) as u32;
    let (rm, rn) = (g.src(), g.src());
    let rd = if s == 1 { g.dst_or_zr() } else { g.dst() };
    g.emit(
        sf << 31
            | op << 30
            | s << 29
            | 0b01011001 << 21
            | rm << 16
            | option << 13
            | imm3 << 10
            | rn << 5
            | rd,
    );
}

/// AND/BIC/ORR/ORN/EOR/EON/ANDS/BICS (shifted register): sf opc 01010 shift N Rm imm6 Rn Rd.
pub fn logical_shifted(g: &mut Gen) {
    let sf = sf(g);
    let (opc, shift, n) = (g.rng.below(4) as u32, g.rng.below(4) as u32, g.rng.bit());
    let imm6 = g.rng.below(if sf == 1 { 64 } else { 32 }) as u32;
    let (rm, rn, rd) = (g.src(), g.src(), g.dst_or_zr());
    g.emit(
        sf << 31
            | opc << 29
            | 0b01010 << 24
            | shift << 22
            | n << 21
            | rm << 16
            | imm6 << 10
            | rn << 5
            | rd,
    );
}

/// ADC/ADCS/SBC/SBCS: sf op S 11010000 Rm 000000 Rn Rd.
pub fn adc(g: &mut Gen) {
    let (sf, op, s) = (sf(g), g.rng.bit(), g.rng.bit());
    let (rm, rn, rd) = (g.src(), g.src(), g.dst_or_zr());
    g.emit(sf << 31 | op << 30 | s << 29 | 0b11010000 << 21 | rm << 16 | rn << 5 | rd);
}

/// CCMN/CCMP (register or immediate): sf op 1 11010010 Rm|imm5 cond o 0 Rn 0 nzcv.
pub fn ccmp(g: &mut Gen) {
    let (sf, op, imm) = (sf(g), g.rng.bit(), g.rng.bit());
    let rm = if imm == 1 {
        g.rng.below(32) as u32
    } else {
        g.src()
    };
    let (cond, nzcv, rn) = (g.rng.below(16) as u32, g.rng.below(16) as u32, g.src());
    g.emit(
        sf << 31
            | op << 30
            | 1 << 29
            | 0b11010010 << 21
            | rm << 16
            | cond << 12
            | imm << 11
            | rn << 5
            | nzcv,
    );
}

/// CSEL/CSINC/CSINV/CSNEG: sf op 0 11010100 Rm cond 0 o2 Rn Rd.
pub fn csel(g: &mut Gen) {
    let (sf, op, o2) = (sf(g), g.rng.bit(), g.rng.bit());
    let cond = g.rng.below(16) as u32;
    let (rm, rn, rd) = (g.src(), g.src(), g.dst_or_zr());
    g.emit(
        sf << 31 | op << 30 | 0b11010100 << 21 | rm << 16 | cond << 12 | o2 << 10 | rn << 5 | rd,
    );
}

/// UDIV/SDIV/LSLV/LSRV/ASRV/RORV: sf 0 0 11010110 Rm opcode Rn Rd. Rm 31 (XZR) gives a
/// division by zero.
pub fn dp2(g: &mut Gen) {
    let sf = sf(g);
    let opcode = g.rng.pick(&[
        0b000010u32,
        0b000011,
        0b001000,
        0b001001,
        0b001010,
        0b001011,
    ]);
    let rm = if g.rng.below(8) == 0 { 31 } else { g.src() };
    let (rn, rd) = (g.src(), g.dst_or_zr());
    g.emit(sf << 31 | 0b11010110 << 21 | rm << 16 | opcode << 10 | rn << 5 | rd);
}

/// RBIT/REV16/REV32/REV/CLZ/CLS: sf 1 0 11010110 00000 opcode Rn Rd (REV is opcode 10 for
/// sf = 0 and 11 for sf = 1; REV32 exists only for sf = 1).
pub fn dp1(g: &mut Gen) {
    let sf = sf(g);
    let opcode = if sf == 1 {
        g.rng.pick(&[0u32, 1, 2, 3, 4, 5])
    } else {
        g.rng.pick(&[0u32, 1, 2, 4, 5])
    };
    let (rn, rd) = (g.src(), g.dst_or_zr());
    g.emit(sf << 31 | 1 << 30 | 0b11010110 << 21 | opcode << 10 | rn << 5 | rd);
}

/// MADD/MSUB (any sf), SMADDL/SMSUBL/UMADDL/UMSUBL/SMULH/UMULH (sf = 1):
/// sf 00 11011 op31 Rm o0 Ra Rn Rd; Ra = 31 for the *MULH forms.
pub fn dp3(g: &mut Gen) {
    let (op31, o0, sf) = g.rng.pick(&[
        (0b000u32, 0u32, 2u32),
        (0b000, 1, 2),
        (0b001, 0, 1),
        (0b001, 1, 1),
        (0b101, 0, 1),
        (0b101, 1, 1),
        (0b010, 0, 1),
        (0b110, 0, 1),
    ]);
    let sf = if sf == 2 { g.rng.bit() } else { sf };
    let ra = if op31 & 2 != 0 { 31 } else { g.src() };
    let (rm, rn, rd) = (g.src(), g.src(), g.dst_or_zr());
    g.emit(sf << 31 | 0b11011 << 24 | op31 << 21 | rm << 16 | o0 << 15 | ra << 10 | rn << 5 | rd);
}

/// SDIV of the most negative value by -1 (the overflow case), 32- or 64-bit.
pub fn sdiv_overflow(g: &mut Gen) {
    let sf = sf(g);
    let a = g.dst();
    let b = loop {
        let b = g.dst();
        if b != a {
            break b;
        }
    };
    // movz a, #0x8000, lsl #(sf ? 48 : 16): the most negative value.
    g.emit(sf << 31 | 0b10100101 << 23 | (1 + 2 * sf) << 21 | 0x8000 << 5 | a);
    g.emit(sf << 31 | 0b00100101 << 23 | b); // movn b, #0: -1
    let rd = g.dst();
    g.emit(sf << 31 | 0b11010110 << 21 | b << 16 | 0b000011 << 10 | a << 5 | rd);
    // sdiv rd, a, b
}
