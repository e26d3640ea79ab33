//! Advanced SIMD integer encoders (Arm ARM C4.1.90 "Data Processing -- Scalar
//! Floating-Point and Advanced SIMD"): three-same, two-register miscellaneous, across lanes,
//! shift by immediate, permutes, EXT and TBL/TBX, vector forms only, using only allocated
//! (U, opcode, size, Q) combinations. Saturating forms set FPSR.QC, which is compared.

use super::gen::Gen;

/// Which element sizes an operation allows.
#[derive(Clone, Copy)]
enum Sizes {
    /// 8/16/32-bit elements.
    Bhs,
    /// 8/16/32/64-bit elements (64 only with Q = 1).
    All,
    /// 16/32-bit elements.
    Hs,
    /// Exactly this size field.
    Only(u32),
}

/// A size field allowed by `s`, and the Q bit to use with it.
fn size_q(g: &mut Gen, s: Sizes) -> (u32, u32) {
    let size = match s {
        Sizes::Bhs => g.rng.below(3) as u32,
        Sizes::All => g.rng.below(4) as u32,
        Sizes::Hs => 1 + g.rng.below(2) as u32,
        Sizes::Only(n) => n,
    };
    let q = if size == 3 { 1 } else { g.rng.bit() };
    (size, q)
}

fn v(g: &mut Gen) -> u32 {
    g.rng.below(32) as u32
}

/// (U, opcode, sizes) of the integer three-same group: 0 Q U 01110 size 1 Rm opcode 1 Rn Rd.
const THREE_SAME: [(u32, u32, Sizes, &str); 45] = [
    (0, 0b00000, Sizes::Bhs, "shadd"),
    (1, 0b00000, Sizes::Bhs, "uhadd"),
    (0, 0b00001, Sizes::All, "sqadd"),
    (1, 0b00001, Sizes::All, "uqadd"),
    (0, 0b00010, Sizes::Bhs, "srhadd"),
    (1, 0b00010, Sizes::Bhs, "urhadd"),
    (0, 0b00100, Sizes::Bhs, "shsub"),
    (1, 0b00100, Sizes::Bhs, "uhsub"),
    (0, 0b00101, Sizes::All, "sqsub"),
    (1, 0b00101, Sizes::All, "uqsub"),
    (0, 0b00110, Sizes::All, "cmgt"),
    (1, 0b00110, Sizes::All, "cmhi"),
    (0, 0b00111, Sizes::All, "cmge"),
    (1, 0b00111, Sizes::All, "cmhs"),
    (0, 0b01000, Sizes::All, "sshl"),
    (1, 0b01000, Sizes::All, "ushl"),
    (0, 0b01001, Sizes::All, "sqshl"),
    (1, 0b01001, Sizes::All, "uqshl"),
    (0, 0b01010, Sizes::All, "srshl"),
    (1, 0b01010, Sizes::All, "urshl"),
    (0, 0b01011, Sizes::All, "sqrshl"),
    (1, 0b01011, Sizes::All, "uqrshl"),
    (0, 0b01100, Sizes::Bhs, "smax"),
    (1, 0b01100, Sizes::Bhs, "umax"),
    (0, 0b01101, Sizes::Bhs, "smin"),
    (1, 0b01101, Sizes::Bhs, "umin"),
    (0, 0b01110, Sizes::Bhs, "sabd"),
    (1, 0b01110, Sizes::Bhs, "uabd"),
    (0, 0b01111, Sizes::Bhs, "saba"),
    (1, 0b01111, Sizes::Bhs, "uaba"),
    (0, 0b10000, Sizes::All, "add"),
    (1, 0b10000, Sizes::All, "sub"),
    (0, 0b10001, Sizes::All, "cmtst"),
    (1, 0b10001, Sizes::All, "cmeq"),
    (0, 0b10010, Sizes::Bhs, "mla"),
    (1, 0b10010, Sizes::Bhs, "mls"),
    (0, 0b10011, Sizes::Bhs, "mul"),
    (1, 0b10011, Sizes::Only(0), "pmul"),
    (0, 0b10100, Sizes::Bhs, "smaxp"),
    (1, 0b10100, Sizes::Bhs, "umaxp"),
    (0, 0b10101, Sizes::Bhs, "sminp"),
    (1, 0b10101, Sizes::Bhs, "uminp"),
    (0, 0b10110, Sizes::Hs, "sqdmulh"),
    (1, 0b10110, Sizes::Hs, "sqrdmulh"),
    (0, 0b10111, Sizes::All, "addp"),
];

/// Saturating three-same forms (they may set FPSR.QC).
fn sat_three(_u: u32, opcode: u32) -> bool {
    matches!(opcode, 0b00001 | 0b00101 | 0b01001 | 0b01011 | 0b10110)
}

/// Saturating two-register-misc forms.
fn sat_misc(u: u32, opcode: u32) -> bool {
    matches!(opcode, 0b00011 | 0b00111 | 0b10100) || (u, opcode) == (1, 0b10010)
}

/// Saturating shift-by-immediate forms.
fn sat_shift(u: u32, opcode: u32) -> bool {
    matches!(opcode, 0b01100 | 0b01110 | 0b10010 | 0b10011)
        || (u, opcode) == (1, 0b10000)
        || (u, opcode) == (1, 0b10001)
}

/// Operations the model does not implement yet, left out by default (see
/// `KVMDBG_COSIM_SKIP_OPS`); each is listed in the report of `survey_simd_ops`.
pub const DEFAULT_SKIP_OPS: &str = "";

/// Operation names excluded: `KVMDBG_COSIM_SKIP_OPS` (comma-separated), unset means
/// [`DEFAULT_SKIP_OPS`]. `KVMDBG_COSIM_ONLY_OP` restricts the tables to one name.
fn op_allowed(name: &str) -> bool {
    if let Ok(only) = std::env::var("KVMDBG_COSIM_ONLY_OP") {
        return only == name;
    }
    let skip = std::env::var("KVMDBG_COSIM_SKIP_OPS").unwrap_or_else(|_| DEFAULT_SKIP_OPS.into());
    !skip.split(',').any(|s| s.trim() == name)
}

/// Picks an allowed entry whose saturating-ness is `sat` (`info` gives (saturating, name)),
/// or `None` when the table has none.
fn pick<T: Copy>(
    g: &mut Gen,
    table: &[T],
    sat: bool,
    info: impl Fn(&T) -> (bool, &'static str),
) -> Option<T> {
    let ok: Vec<T> = table
        .iter()
        .filter(|e| {
            let (s, name) = info(e);
            s == sat && op_allowed(name)
        })
        .copied()
        .collect();
    (!ok.is_empty()).then(|| g.rng.pick(&ok))
}

/// Emits one instruction of the operation named by `KVMDBG_COSIM_ONLY_OP` (survey aid).
pub fn only_op(g: &mut Gen) {
    let name = std::env::var("KVMDBG_COSIM_ONLY_OP").unwrap_or_default();
    let three: Vec<_> = THREE_SAME.iter().filter(|e| e.3 == name).collect();
    let misc: Vec<_> = TWO_MISC.iter().filter(|e| e.3 == name).collect();
    let shift: Vec<_> = SHIFTS.iter().filter(|e| e.3 == name).collect();
    if !three.is_empty() {
        let e = *g.rng.pick(&three);
        emit_three(g, e)
    } else if !misc.is_empty() {
        let e = *g.rng.pick(&misc);
        emit_misc(g, e)
    } else if !shift.is_empty() {
        let e = *g.rng.pick(&shift);
        emit_shift(g, e)
    } else {
        panic!("KVMDBG_COSIM_ONLY_OP={name:?} names no operation");
    }
}

/// Every operation name of the integer groups, with whether it saturates.
pub fn op_names() -> Vec<(&'static str, bool)> {
    let mut v: Vec<(&'static str, bool)> = THREE_SAME
        .iter()
        .map(|e| (e.3, sat_three(e.0, e.1)))
        .collect();
    v.extend(TWO_MISC.iter().map(|e| (e.3, sat_misc(e.0, e.1))));
    v.extend(SHIFTS.iter().map(|e| (e.3, sat_shift(e.0, e.1))));
    v.dedup();
    v
}

pub fn three_same(g: &mut Gen) {
    if !three_same_with(g, false) {
        gen_simd_logic_fallback(g);
    }
}

/// Used when every operation of a group is excluded: a plain vector EOR.
fn gen_simd_logic_fallback(g: &mut Gen) {
    let (rm, rn, rd) = (v(g), v(g), v(g));
    g.emit_v(0x6e20_1c00 | rm << 16 | rn << 5 | rd, &[rd]); // eor vd.16b, vn.16b, vm.16b
}

/// Integer three-same, saturating or not.
/// Emits an allowed three-same operation; false when none is allowed.
pub fn three_same_with(g: &mut Gen, sat: bool) -> bool {
    match pick(g, &THREE_SAME, sat, |e| (sat_three(e.0, e.1), e.3)) {
        Some(e) => emit_three(g, e),
        None => return false,
    }
    true
}

fn emit_three(g: &mut Gen, (u, opcode, sizes, _): (u32, u32, Sizes, &str)) {
    let (size, q) = size_q(g, sizes);
    let (rm, rn, rd) = (v(g), v(g), v(g));
    let w = q << 30
        | u << 29
        | 0b01110 << 24
        | size << 22
        | 1 << 21
        | rm << 16
        | opcode << 11
        | 1 << 10
        | rn << 5
        | rd;
    g.emit_v(w, &[rd]);
}

/// (U, opcode, sizes) of two-register miscellaneous: 0 Q U 01110 size 10000 opcode 10 Rn Rd.
/// Narrowing forms (XTN, SQXTN, UQXTN, SQXTUN) write the low half (Q = 0) or the high half
/// (Q = 1, the "2" forms).
const TWO_MISC: [(u32, u32, Sizes, &str); 28] = [
    (0, 0b00000, Sizes::Bhs, "rev64"),
    (1, 0b00000, Sizes::Only(0), "rev32"),
    (1, 0b00000, Sizes::Only(1), "rev32"),
    (0, 0b00001, Sizes::Only(0), "rev16"),
    (0, 0b00010, Sizes::Bhs, "saddlp"),
    (1, 0b00010, Sizes::Bhs, "uaddlp"),
    (0, 0b00011, Sizes::All, "suqadd"),
    (1, 0b00011, Sizes::All, "usqadd"),
    (0, 0b00100, Sizes::Bhs, "cls"),
    (1, 0b00100, Sizes::Bhs, "clz"),
    (0, 0b00101, Sizes::Only(0), "cnt"),
    (1, 0b00101, Sizes::Only(1), "rbit"),
    (0, 0b00110, Sizes::Bhs, "sadalp"),
    (1, 0b00110, Sizes::Bhs, "uadalp"),
    (0, 0b00111, Sizes::All, "sqabs"),
    (1, 0b00111, Sizes::All, "sqneg"),
    (0, 0b01000, Sizes::All, "cmgt0"),
    (1, 0b01000, Sizes::All, "cmge0"),
    (0, 0b01001, Sizes::All, "cmeq0"),
    (1, 0b01001, Sizes::All, "cmle0"),
    (0, 0b01010, Sizes::All, "cmlt0"),
    (0, 0b01011, Sizes::All, "abs"),
    (1, 0b01011, Sizes::All, "neg"),
    (0, 0b10010, Sizes::Bhs, "xtn"),
    (1, 0b10010, Sizes::Bhs, "sqxtun"),
    (1, 0b10011, Sizes::Bhs, "shll"),
    (0, 0b10100, Sizes::Bhs, "sqxtn"),
    (1, 0b10100, Sizes::Bhs, "uqxtn"),
];

pub fn two_misc(g: &mut Gen) {
    if !two_misc_with(g, false) {
        gen_simd_logic_fallback(g);
    }
}

/// Two-register miscellaneous, saturating or not.
/// Emits an allowed two-register-misc operation; false when none is allowed.
pub fn two_misc_with(g: &mut Gen, sat: bool) -> bool {
    match pick(g, &TWO_MISC, sat, |e| (sat_misc(e.0, e.1), e.3)) {
        Some(e) => emit_misc(g, e),
        None => return false,
    }
    true
}

fn emit_misc(g: &mut Gen, (u, opcode, sizes, _): (u32, u32, Sizes, &str)) {
    let (size, q) = size_q(g, sizes);
    let (rn, rd) = (v(g), v(g));
    let w = q << 30
        | u << 29
        | 0b01110 << 24
        | size << 22
        | 0b10000 << 17
        | opcode << 12
        | 0b10 << 10
        | rn << 5
        | rd;
    g.emit_v(w, &[rd]);
}

/// ADDV/SADDLV/UADDLV/SMAXV/UMAXV/SMINV/UMINV: 0 Q U 01110 size 11000 opcode 10 Rn Rd;
/// size 10 only with Q = 1, size 11 reserved.
pub fn across_lanes(g: &mut Gen) {
    let (u, opcode) = g.rng.pick(&[
        (0u32, 0b00011u32),
        (1, 0b00011),
        (0, 0b01010),
        (1, 0b01010),
        (0, 0b11010),
        (1, 0b11010),
        (0, 0b11011),
    ]);
    let size = g.rng.below(3) as u32;
    let q = if size == 2 { 1 } else { g.rng.bit() };
    let (rn, rd) = (v(g), v(g));
    let w = q << 30
        | u << 29
        | 0b01110 << 24
        | size << 22
        | 0b11000 << 17
        | opcode << 12
        | 0b10 << 10
        | rn << 5
        | rd;
    g.emit_v(w, &[rd]);
}

/// Shift by immediate: 0 Q U 011110 immh immb opcode 1 Rn Rd (immh != 0). `narrow`
/// forms (SHRN.., SQSHRN..) and SSHLL/USHLL take immh < 8 (no 64-bit source elements).
const SHIFTS: [(u32, u32, bool, &str); 24] = [
    (0, 0b00000, false, "sshr"),
    (1, 0b00000, false, "ushr"),
    (0, 0b00010, false, "ssra"),
    (1, 0b00010, false, "usra"),
    (0, 0b00100, false, "srshr"),
    (1, 0b00100, false, "urshr"),
    (0, 0b00110, false, "srsra"),
    (1, 0b00110, false, "ursra"),
    (1, 0b01000, false, "sri"),
    (0, 0b01010, false, "shl"),
    (1, 0b01010, false, "sli"),
    (1, 0b01100, false, "sqshlu"),
    (0, 0b01110, false, "sqshl_imm"),
    (1, 0b01110, false, "uqshl_imm"),
    (0, 0b10000, true, "shrn"),
    (1, 0b10000, true, "sqshrun"),
    (0, 0b10001, true, "rshrn"),
    (1, 0b10001, true, "sqrshrun"),
    (0, 0b10011, true, "sqrshrn"),
    (1, 0b10011, true, "uqrshrn"),
    (0, 0b10010, true, "sqshrn"),
    (1, 0b10010, true, "uqshrn"),
    (0, 0b10100, true, "sshll"),
    (1, 0b10100, true, "ushll"),
];

pub fn shift_imm(g: &mut Gen) {
    if !shift_imm_with(g, false) {
        gen_simd_logic_fallback(g);
    }
}

/// Shift by immediate, saturating or not.
/// Emits an allowed shift-by-immediate operation; false when none is allowed.
pub fn shift_imm_with(g: &mut Gen, sat: bool) -> bool {
    match pick(g, &SHIFTS, sat, |e| (sat_shift(e.0, e.1), e.3)) {
        Some(e) => emit_shift(g, e),
        None => return false,
    }
    true
}

fn emit_shift(g: &mut Gen, (u, opcode, narrow, _): (u32, u32, bool, &str)) {
    // Element size from the highest set bit of immh: 0001 B, 001x H, 01xx S, 1xxx D.
    let esize_log = g.rng.below(if narrow { 3 } else { 4 }) as u32;
    let immhb = (8u32 << esize_log) | g.rng.below(8 << esize_log) as u32;
    let q = if esize_log == 3 { 1 } else { g.rng.bit() };
    let (rn, rd) = (v(g), v(g));
    let w =
        q << 30 | u << 29 | 0b011110 << 23 | immhb << 16 | opcode << 11 | 1 << 10 | rn << 5 | rd;
    g.emit_v(w, &[rd]);
}

/// The saturating forms of the three groups above (SQADD, UQSUB, SQSHL, SQDMULH, SQABS,
/// SQXTN, SQSHRN, ...), which set FPSR.QC on saturation.
pub fn saturating(g: &mut Gen) {
    let first = g.rng.below(3);
    for k in 0..3 {
        let done = match (first + k) % 3 {
            0 => three_same_with(g, true),
            1 => two_misc_with(g, true),
            _ => shift_imm_with(g, true),
        };
        if done {
            return;
        }
    }
    gen_simd_logic_fallback(g);
}

/// UZP1/TRN1/ZIP1/UZP2/TRN2/ZIP2 (0 Q 001110 size 0 Rm 0 opcode 10 Rn Rd), EXT (0 Q 101110
/// 00 0 Rm 0 imm4 0 Rn Rd; imm4 < 8 when Q = 0) and TBL/TBX (0 Q 001110 000 Rm 0 len op 00
/// Rn Rd, table registers Rn..Rn+len modulo 32).
pub fn permute(g: &mut Gen) {
    let (rm, rn, rd) = (v(g), v(g), v(g));
    let w = match g.rng.below(3) {
        0 => {
            let opcode = g.rng.pick(&[1u32, 2, 3, 5, 6, 7]);
            let (size, q) = size_q(g, Sizes::All);
            q << 30
                | 0b001110 << 24
                | size << 22
                | rm << 16
                | opcode << 12
                | 0b10 << 10
                | rn << 5
                | rd
        }
        1 => {
            let q = g.rng.bit();
            let imm4 = g.rng.below(if q == 1 { 16 } else { 8 }) as u32;
            q << 30 | 0b101110 << 24 | rm << 16 | imm4 << 11 | rn << 5 | rd
        }
        _ => {
            let (q, len, op) = (g.rng.bit(), g.rng.below(4) as u32, g.rng.bit());
            q << 30 | 0b001110 << 24 | rm << 16 | len << 13 | op << 12 | rn << 5 | rd
        }
    };
    g.emit_v(w, &[rd]);
}
