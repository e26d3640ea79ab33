//! Load/store encoders (Arm ARM C4.1.87 "Loads and Stores"). Every address is the data
//! buffer: base X28 (or SP) with a bounded offset, or X27 freshly set to X28 + offset for
//! writeback, exclusive and atomic forms, or X28 + X26 (small, 16-aligned). All accesses are
//! naturally aligned (see gen.rs).

use super::gen::Gen;

/// (size, opc) pairs of the integer "load/store register" forms: STR/LDR of every size,
/// LDRSB/LDRSH to X (opc 10) and W (opc 11), LDRSW (size 10, opc 10).
const GPR_FORMS: [(u32, u32); 13] = [
    (0, 0),
    (0, 1),
    (0, 2),
    (0, 3),
    (1, 0),
    (1, 1),
    (1, 2),
    (1, 3),
    (2, 0),
    (2, 1),
    (2, 2),
    (3, 0),
    (3, 1),
];

/// Rt for a GPR load (opc != 0) or store.
fn rt_for(g: &mut Gen, opc: u32, writeback: bool) -> u32 {
    match (opc, writeback) {
        (0, false) => g.src(),
        (0, true) => g.src_not27(),
        _ => g.dst_or_zr(),
    }
}

/// LDR/STR (unsigned offset): size 111 0 01 opc imm12 Rn Rt; base X28 or SP; offset < 4 KiB.
pub fn ldst_unsigned(g: &mut Gen) {
    let (size, opc) = g.rng.pick(&GPR_FORMS);
    let rn = if g.rng.below(6) == 0 { 31 } else { 28 };
    let imm12 = g.rng.below(0x1000 >> size) as u32;
    let rt = rt_for(g, opc, false);
    g.emit(size << 30 | 0b111 << 27 | 0b01 << 24 | opc << 22 | imm12 << 10 | rn << 5 | rt);
}

/// A size-aligned signed 9-bit offset (any offset half the time with the MMU on).
pub fn simm9_aligned(g: &mut Gen, size: u32) -> u32 {
    if g.mmu && g.rng.bit() == 1 {
        return g.rng.below(512) as u32;
    }
    let k = g.rng.below(512 >> size) as i64 - (256 >> size) as i64;
    ((k << size) as u32) & 0x1ff
}

/// LDUR/STUR (bits 11:10 = 00) and the unprivileged LDTR/STTR (10): size 111 0 00 opc 0
/// imm9 mode Rn Rt (offsets kept aligned).
pub fn ldst_unscaled(g: &mut Gen) {
    let (size, opc) = g.rng.pick(&GPR_FORMS);
    let imm9 = simm9_aligned(g, size);
    let rn = if g.rng.below(6) == 0 { 31 } else { 28 };
    let rt = rt_for(g, opc, false);
    let mode = g.rng.pick(&[0b00u32, 0b10]);
    g.emit(size << 30 | 0b111 << 27 | opc << 22 | imm9 << 12 | mode << 10 | rn << 5 | rt);
}

/// LDR/STR pre-index (bits 11:10 = 11) and post-index (01) on X27 = X28 + 0x400..0x800.
pub fn ldst_indexed(g: &mut Gen) {
    let (size, opc) = g.rng.pick(&GPR_FORMS);
    g.x27_random(0x400, g.plain_align(), 0x400);
    let imm9 = simm9_aligned(g, size);
    let mode = g.rng.pick(&[0b11u32, 0b01]);
    let rt = rt_for(g, opc, true);
    g.emit(size << 30 | 0b111 << 27 | opc << 22 | imm9 << 12 | mode << 10 | 27 << 5 | rt);
}

/// LDR/STR (register offset): size 111 0 00 opc 1 Rm option S 10 Rn Rt with Rm = X26 and
/// option UXTW (010), LSL (011), SXTW (110) or SXTX (111).
pub fn ldst_regoff(g: &mut Gen) {
    let (size, opc) = g.rng.pick(&GPR_FORMS);
    if g.rng.below(4) == 0 {
        let v = g.plain_align() as u32 * g.rng.below(0x200 / g.plain_align()) as u32;
        g.emit(0xd280_0000 | v << 5 | 26); // movz x26, #v (< 0x200; 16-aligned without MMU)
    }
    let option = g.rng.pick(&[0b010u32, 0b011, 0b110, 0b111]);
    let s = g.rng.bit();
    let rt = rt_for(g, opc, false);
    g.emit(
        size << 30
            | 0b111 << 27
            | opc << 22
            | 1 << 21
            | 26 << 16
            | option << 13
            | s << 12
            | 0b10 << 10
            | 28 << 5
            | rt,
    );
}

/// LDR (literal) W/X and LDRSW: opc 011 0 00 imm19 Rt, reading earlier code words (an X
/// load only from an 8-aligned word).
pub fn ldr_literal(g: &mut Gen) {
    let back = 1 + g.rng.below(200) as i64;
    let target = g.pc() as i64 - 4 * back;
    let opc = match g.rng.below(3) {
        1 if target % 8 == 0 || g.mmu => 1,
        2 => 2,
        _ => 0,
    };
    let imm19 = ((target - g.pc() as i64) / 4) as u32 & 0x7_ffff;
    let rt = g.dst_or_zr();
    g.emit(opc << 30 | 0b011 << 27 | imm19 << 5 | rt);
}

/// Two distinct load destinations.
fn two_dst(g: &mut Gen) -> (u32, u32) {
    let a = g.dst();
    loop {
        let b = g.dst_or_zr();
        if b != a {
            return (a, b);
        }
    }
}

/// LDP/STP/LDPSW: opc 101 0 mode L imm7 Rt2 Rn Rt; mode 010 offset (X28 or SP), 001
/// post-index and 011 pre-index (X27). opc 00 W, 01 LDPSW (loads only), 10 X.
pub fn ldst_pair(g: &mut Gen) {
    let (opc, l) = g.rng.pick(&[(0u32, 0u32), (0, 1), (1, 1), (2, 0), (2, 1)]);
    let mode = g.rng.pick(&[0b010u32, 0b001, 0b011]);
    let rn = if mode != 0b010 {
        g.x27_random(0x400, g.plain_align(), 0x400);
        27
    } else if g.rng.below(6) == 0 {
        31
    } else {
        28
    };
    let imm7 = (g.rng.below(128) as u32) & 0x7f;
    let (rt, rt2) = if l == 1 {
        two_dst(g)
    } else if rn == 27 {
        (g.src_not27(), g.src_not27())
    } else {
        (g.src(), g.src())
    };
    g.emit(opc << 30 | 0b101 << 27 | mode << 23 | l << 22 | imm7 << 15 | rt2 << 10 | rn << 5 | rt);
}

/// A register distinct from each of `avoid` (from the destination set).
fn dst_not(g: &mut Gen, avoid: &[u32]) -> u32 {
    loop {
        let r = g.dst();
        if !avoid.contains(&r) {
            return r;
        }
    }
}

/// LDXR/LDAXR then STXR/STLXR to the same address (single or pair), or CLREX then a store
/// exclusive that must fail: size 001000 o2 L o1 Rs o0 Rt2 Rn Rt.
pub fn exclusive(g: &mut Gen) {
    let pair = g.rng.below(3) == 0;
    let size = if pair {
        2 + g.rng.bit()
    } else {
        g.rng.below(4) as u32
    };
    let align = if pair {
        8u64 << (size - 2)
    } else {
        1u64 << size
    };
    g.x27_random(0, align, 0x800);
    let o1 = pair as u32;
    if g.rng.below(4) == 0 {
        g.emit(0xd503_3f5f); // clrex
    } else {
        let (rt, rt2) = if pair {
            two_dst(g)
        } else {
            (g.dst_or_zr(), 31)
        };
        let o0 = g.rng.bit();
        g.emit(
            size << 30
                | 0b001000 << 24
                | 1 << 22
                | o1 << 21
                | 31 << 16
                | o0 << 15
                | rt2 << 10
                | 27 << 5
                | rt,
        );
    }
    let (rt, rt2) = (g.src_not27(), if pair { g.src_not27() } else { 31 });
    let rs = dst_not(g, &[rt, rt2]);
    let o0 = g.rng.bit();
    g.emit(size << 30 | 0b001000 << 24 | o1 << 21 | rs << 16 | o0 << 15 | rt2 << 10 | 27 << 5 | rt);
}

/// LDAR/STLR: size 001000 1 L 0 11111 1 11111 Rn Rt on X27.
pub fn acquire_release(g: &mut Gen) {
    let size = g.rng.below(4) as u32;
    g.x27_random(0, 1 << size, 0x800);
    let l = g.rng.bit();
    let rt = if l == 1 { g.dst_or_zr() } else { g.src() };
    g.emit(
        size << 30
            | 0b001000 << 24
            | 1 << 23
            | l << 22
            | 31 << 16
            | 1 << 15
            | 31 << 10
            | 27 << 5
            | rt,
    );
}

/// LSE LDADD/LDCLR/LDEOR/LDSET/LDSMAX/LDSMIN/LDUMAX/LDUMIN/SWP with A/R:
/// size 111 0 00 A R 1 Rs o3 opc 00 Rn Rt (SWP: o3 = 1, opc = 000).
pub fn lse(g: &mut Gen) {
    let size = g.rng.below(4) as u32;
    g.x27_random(0, 1 << size, 0x800);
    let (a, r) = (g.rng.bit(), g.rng.bit());
    let (o3, opc) = if g.rng.below(9) == 0 {
        (1, 0)
    } else {
        (0, g.rng.below(8) as u32)
    };
    let rs = g.src();
    let rt = g.dst_or_zr();
    g.emit(
        size << 30
            | 0b111 << 27
            | a << 23
            | r << 22
            | 1 << 21
            | rs << 16
            | o3 << 15
            | opc << 12
            | 27 << 5
            | rt,
    );
}

/// CAS/CASA/CASL/CASAL (size 001000 1 L 1 Rs o0 11111 Rn Rt) and CASP (0 sz 001000 0 L 1 Rs
/// o0 11111 Rn Rt, even register pairs). Half the time Rs is first loaded from the same
/// address so the compare succeeds.
pub fn cas(g: &mut Gen) {
    let pair = g.rng.below(3) == 0;
    let (l, o0) = (g.rng.bit(), g.rng.bit());
    if pair {
        let sz = g.rng.bit();
        let align = 8u64 << sz;
        g.x27_random(0, align, 0x800);
        let rs = 2 * g.rng.below(13) as u32; // even, pair within X0-X25
        let rt = 2 * g.rng.below(15) as u32;
        if g.rng.bit() == 1 {
            // ldp rs, rs+1, [x27] (W or X pair, opc = sz << 1)
            g.emit(
                (sz << 1) << 30
                    | 0b101 << 27
                    | 0b010 << 23
                    | 1 << 22
                    | (rs + 1) << 10
                    | 27 << 5
                    | rs,
            );
        }
        g.emit(
            sz << 30
                | 0b001000 << 24
                | l << 22
                | 1 << 21
                | rs << 16
                | o0 << 15
                | 31 << 10
                | 27 << 5
                | rt,
        );
    } else {
        let size = g.rng.below(4) as u32;
        g.x27_random(0, 1 << size, 0x800);
        let rs = g.dst_or_zr();
        if rs != 31 && g.rng.bit() == 1 {
            // ldr rs, [x27] (same size, zero-extending)
            g.emit(size << 30 | 0b111 << 27 | 0b01 << 24 | 1 << 22 | 27 << 5 | rs);
        }
        let rt = g.src();
        g.emit(
            size << 30
                | 0b001000 << 24
                | 1 << 23
                | l << 22
                | 1 << 21
                | rs << 16
                | o0 << 15
                | 31 << 10
                | 27 << 5
                | rt,
        );
    }
}
