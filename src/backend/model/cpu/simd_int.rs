//! Advanced SIMD integer "three same" and "two-register miscellaneous" groups, vector and
//! scalar forms (Arm ARM C4.1.90: "Advanced SIMD three same", "Advanced SIMD scalar three
//! same", "Advanced SIMD two-register miscellaneous" and its scalar table). The
//! floating-point opcodes of both groups go to `simd_fp.rs`. Saturating forms set FPSR.QC.

use super::simd_elem::{all, cls, clz, el, int, pmul, put, shift_exact, sx};
use super::{Cpu, Stop};

/// Opcode (bits 15:11) of "Advanced SIMD three same", named after the U = 0 instruction; the
/// U = 1 one is in the comment.
mod three {
    pub const SHADD: u32 = 0b00000; // UHADD
    pub const SQADD: u32 = 0b00001; // UQADD
    pub const SRHADD: u32 = 0b00010; // URHADD
    /// AND, BIC, ORR, ORN (U = 0) and EOR, BSL, BIT, BIF (U = 1), chosen by size.
    pub const LOGIC: u32 = 0b00011;
    pub const SHSUB: u32 = 0b00100; // UHSUB
    pub const SQSUB: u32 = 0b00101; // UQSUB
    pub const CMGT: u32 = 0b00110; // CMHI
    pub const CMGE: u32 = 0b00111; // CMHS
    pub const SSHL: u32 = 0b01000; // USHL
    pub const SQSHL: u32 = 0b01001; // UQSHL
    pub const SRSHL: u32 = 0b01010; // URSHL
    pub const SQRSHL: u32 = 0b01011; // UQRSHL
    pub const SMAX: u32 = 0b01100; // UMAX
    pub const SMIN: u32 = 0b01101; // UMIN
    pub const SABD: u32 = 0b01110; // UABD
    pub const SABA: u32 = 0b01111; // UABA
    pub const ADD: u32 = 0b10000; // SUB
    pub const CMTST: u32 = 0b10001; // CMEQ
    pub const MLA: u32 = 0b10010; // MLS
    pub const MUL: u32 = 0b10011; // PMUL
    pub const SMAXP: u32 = 0b10100; // UMAXP
    pub const SMINP: u32 = 0b10101; // UMINP
    pub const SQDMULH: u32 = 0b10110; // SQRDMULH
    pub const ADDP: u32 = 0b10111; // (U = 0 only)
    /// Opcodes 11xxx are the floating-point three-same operations.
    pub const FIRST_FP: u32 = 0b11000;
}

/// Opcode (bits 16:12) of "Advanced SIMD two-register miscellaneous" (integer part), named
/// after the U = 0 instruction; the U = 1 one is in the comment.
mod misc {
    pub const REV64: u32 = 0b00000; // REV32
    pub const REV16: u32 = 0b00001; // (U = 0 only)
    pub const SADDLP: u32 = 0b00010; // UADDLP
    pub const SUQADD: u32 = 0b00011; // USQADD
    pub const CLS: u32 = 0b00100; // CLZ
    /// CNT (U = 0); NOT (U = 1, size 00) and RBIT (U = 1, size 01).
    pub const CNT: u32 = 0b00101;
    pub const SADALP: u32 = 0b00110; // UADALP
    pub const SQABS: u32 = 0b00111; // SQNEG
    pub const CMGT_ZERO: u32 = 0b01000; // CMGE (zero)
    pub const CMEQ_ZERO: u32 = 0b01001; // CMLE (zero)
    pub const CMLT_ZERO: u32 = 0b01010; // (U = 0 only)
    pub const ABS: u32 = 0b01011; // NEG
    pub const XTN: u32 = 0b10010; // SQXTUN
    pub const SHLL: u32 = 0b10011; // (U = 1 only)
    pub const SQXTN: u32 = 0b10100; // UQXTN
}

/// Fields shared by the groups: Q (bit 30), U (29), size (23:22), scalar (bit 28).
#[derive(Clone, Copy)]
pub(super) struct Shape {
    pub q: bool,
    pub u: bool,
    pub size: u32,
    pub scalar: bool,
}

impl Shape {
    pub fn of(i: u32) -> Shape {
        Shape {
            q: (i >> 30) & 1 == 1,
            u: (i >> 29) & 1 == 1,
            size: (i >> 22) & 3,
            scalar: (i >> 28) & 1 == 1,
        }
    }
    pub fn esize(self) -> u32 {
        8 << self.size
    }
    /// Elements processed: 1 for scalar forms, else 64 or 128 bits' worth.
    pub fn count(self) -> u32 {
        if self.scalar {
            1
        } else {
            self.bits() / self.esize()
        }
    }
    /// Width of the result register: scalar forms write one element, zero-extended.
    pub fn bits(self) -> u32 {
        if self.q && !self.scalar {
            128
        } else {
            64
        }
    }
}

impl Cpu {
    /// Advanced SIMD (scalar) three same (0 Q U 01110 size 1 Rm opcode 1 Rn Rd; scalar 01 U
    /// 11110 size 1 Rm opcode 1 Rn Rd).
    pub(super) fn simd_three_same(&mut self, i: u32) -> Result<(), Stop> {
        use three::*;
        let s = Shape::of(i);
        let op = (i >> 11) & 31;
        if op >= FIRST_FP {
            return self.simd_three_same_fp(i);
        }
        let (n, m, d) = (self.vreg(i >> 5), self.vreg(i >> 16), self.vreg(i));
        if op == LOGIC && !s.scalar {
            let r = match (s.u, s.size) {
                (false, 0) => n & m,             // AND
                (false, 1) => n & !m,            // BIC
                (false, 2) => n | m,             // ORR
                (false, _) => n | !m,            // ORN
                (true, 0) => n ^ m,              // EOR
                (true, 1) => (d & n) | (!d & m), // BSL
                (true, 2) => (d & !m) | (n & m), // BIT
                (true, _) => (d & m) | (n & !m), // BIF
            };
            self.set_vreg(i, r, s.q);
            return Ok(());
        }
        if !three_same_allowed(op, s) {
            return Err(self.undef(i));
        }
        let (esize, count) = (s.esize(), s.count());
        let pairwise = matches!(op, SMAXP | SMINP | ADDP);
        let mut r = 0u128;
        for k in 0..count {
            let (a, b) = if pairwise {
                let cat = |j: u32| {
                    if j < count {
                        el(n, j, esize)
                    } else {
                        el(m, j - count, esize)
                    }
                };
                (cat(2 * k), cat(2 * k + 1))
            } else {
                (el(n, k, esize), el(m, k, esize))
            };
            let v = self.three_same_elem(op, s.u, esize, a, b, el(d, k, esize));
            put(&mut r, k, esize, v);
        }
        self.set_vreg(i, r, s.bits() == 128);
        Ok(())
    }

    /// One element of an integer three-same operation (`d` is the destination's element).
    fn three_same_elem(&mut self, op: u32, u: bool, esize: u32, a: u64, b: u64, d: u64) -> u64 {
        use three::*;
        let (x, y) = (int(a, esize, u), int(b, esize, u));
        let sh = b as i8 as i32;
        match (op, u) {
            (SHADD, _) => ((x + y) >> 1) as u64,
            (SQADD, _) => self.sat(x + y, esize, u),
            (SRHADD, _) => ((x + y + 1) >> 1) as u64,
            (SHSUB, _) => ((x - y) >> 1) as u64,
            (SQSUB, _) => self.sat(x - y, esize, u),
            (CMGT, _) => all(x > y),
            (CMGE, _) => all(x >= y),
            (SSHL, _) => shift_exact(x, sh, esize, false) as u64,
            (SQSHL, _) => self.sat(shift_exact(x, sh, esize, false), esize, u),
            (SRSHL, _) => shift_exact(x, sh, esize, true) as u64,
            (SQRSHL, _) => self.sat(shift_exact(x, sh, esize, true), esize, u),
            (SMAX | SMAXP, _) => x.max(y) as u64,
            (SMIN | SMINP, _) => x.min(y) as u64,
            (SABD, _) => (x - y).unsigned_abs() as u64,
            (SABA, _) => d.wrapping_add((x - y).unsigned_abs() as u64),
            (ADD | ADDP, false) => a.wrapping_add(b),
            (ADD, true) => a.wrapping_sub(b), // SUB
            (CMTST, false) => all(a & b != 0),
            (CMTST, true) => all(a == b), // CMEQ
            (MLA, false) => d.wrapping_add(a.wrapping_mul(b)),
            (MLA, true) => d.wrapping_sub(a.wrapping_mul(b)), // MLS
            (MUL, false) => a.wrapping_mul(b),
            (MUL, true) => pmul(a, b, esize) as u64, // PMUL
            (SQDMULH, _) => self.sqdmulh(a, b, esize, u),
            _ => unreachable!("three-same opcode {op:#b} passed three_same_allowed"),
        }
    }

    /// SQDMULH (`round` false) / SQRDMULH: the high half of 2 * a * b, saturated.
    pub(super) fn sqdmulh(&mut self, a: u64, b: u64, esize: u32, round: bool) -> u64 {
        let p = 2 * sx(a, esize) as i128 * sx(b, esize) as i128;
        let p = if round { p + (1i128 << (esize - 1)) } else { p };
        self.sat(p >> esize, esize, false)
    }

    /// Advanced SIMD (scalar) two-register miscellaneous (0 Q U 01110 size 10000 opcode 10
    /// Rn Rd; scalar 01 U 11110 size 10000 opcode 10 Rn Rd).
    pub(super) fn simd_two_misc(&mut self, i: u32) -> Result<(), Stop> {
        use misc::*;
        let s = Shape::of(i);
        let op = (i >> 12) & 31;
        let n = self.vreg(i >> 5);
        let (esize, count) = (s.esize(), s.count());
        match (op, s.u) {
            (XTN | SQXTN, _) => return self.simd_narrow(i, s, op),
            (SHLL, true) if !s.scalar && s.size < 3 => {
                let base = if s.q { 64 / esize } else { 0 };
                let mut r = 0u128;
                for k in 0..64 / esize {
                    put(&mut r, k, 2 * esize, el(n, base + k, esize) << esize);
                }
                self.set_vreg(i, r, true);
                return Ok(());
            }
            (SADDLP | SADALP, _) if !s.scalar && s.size < 3 => {
                let acc = if op == SADALP { self.vreg(i) } else { 0 };
                let mut r = 0u128;
                for k in 0..count / 2 {
                    let pair = int(el(n, 2 * k, esize), esize, s.u)
                        + int(el(n, 2 * k + 1, esize), esize, s.u);
                    let v = el(acc, k, 2 * esize).wrapping_add(pair as u64);
                    put(&mut r, k, 2 * esize, v);
                }
                self.set_vreg(i, r, s.q);
                return Ok(());
            }
            _ => {}
        }
        if !two_misc_allowed(op, s) {
            return self.simd_two_misc_fp(i);
        }
        let d = self.vreg(i);
        let mut r = 0u128;
        for k in 0..count {
            let v = self.two_misc_elem(op, s, el(n, k, esize), el(d, k, esize), k, n);
            put(&mut r, k, esize, v);
        }
        if op == CNT && s.u && s.size == 1 {
            // RBIT: per byte, whatever the element size field says.
            r = 0;
            for k in 0..count * 2 {
                put(&mut r, k, 8, (el(n, k, 8) as u8).reverse_bits() as u64);
            }
        }
        self.set_vreg(i, r, s.bits() == 128);
        Ok(())
    }

    /// One element of an integer two-register-misc operation (`k`: its index in `n`).
    fn two_misc_elem(&mut self, op: u32, s: Shape, a: u64, d: u64, k: u32, n: u128) -> u64 {
        use misc::*;
        let esize = s.esize();
        let x = sx(a, esize) as i128;
        match (op, s.u) {
            (REV64 | REV16, _) => {
                // REV64 / REV32 / REV16: reverse elements within 64/32/16-bit containers.
                let per = rev_container(op, s.u) / esize;
                el(n, (k / per) * per + (per - 1 - k % per), esize)
            }
            // SUQADD: signed Vd plus unsigned Vn; USQADD: unsigned Vd plus signed Vn.
            (SUQADD, false) => self.sat(int(d, esize, false) + int(a, esize, true), esize, false),
            (SUQADD, true) => self.sat(int(d, esize, true) + x, esize, true),
            (CLS, false) => cls(a, esize),
            (CLS, true) => clz(a, esize), // CLZ
            (CNT, false) => a.count_ones() as u64,
            (CNT, true) => !a, // NOT (RBIT handled by the caller)
            (SQABS, false) => self.sat(x.abs(), esize, false),
            (SQABS, true) => self.sat(-x, esize, false), // SQNEG
            (CMGT_ZERO, false) => all(x > 0),
            (CMGT_ZERO, true) => all(x >= 0), // CMGE
            (CMEQ_ZERO, false) => all(x == 0),
            (CMEQ_ZERO, true) => all(x <= 0), // CMLE
            (CMLT_ZERO, _) => all(x < 0),
            (ABS, false) => x.unsigned_abs() as u64,
            (ABS, true) => x.wrapping_neg() as u64, // NEG
            _ => unreachable!("two-misc opcode {op:#b} passed two_misc_allowed"),
        }
    }

    /// XTN, SQXTN, UQXTN, SQXTUN {2} and their scalar forms: 2*esize source elements
    /// narrowed into the low half (Q = 0, cleared top) or the high half (Q = 1, kept bottom).
    fn simd_narrow(&mut self, i: u32, s: Shape, op: u32) -> Result<(), Stop> {
        if s.size == 3 || (s.scalar && op == misc::XTN && !s.u) {
            return Err(self.undef(i));
        }
        let esize = s.esize();
        let n = self.vreg(i >> 5);
        let count = if s.scalar { 1 } else { 64 / esize };
        let base = if s.q && !s.scalar { count } else { 0 };
        let mut r = if base > 0 {
            self.vreg(i) & u64::MAX as u128
        } else {
            0
        };
        for k in 0..count {
            let a = el(n, k, 2 * esize);
            let v = match (op, s.u) {
                (misc::XTN, false) => a,
                (misc::XTN, true) => self.sat(int(a, 2 * esize, false), esize, true), // SQXTUN
                (_, u) => self.sat(int(a, 2 * esize, u), esize, u), // SQXTN / UQXTN
            };
            put(&mut r, base + k, esize, v);
        }
        self.set_vreg(i, r, true);
        Ok(())
    }
}

/// Container size of REV64 / REV32 / REV16.
fn rev_container(op: u32, u: bool) -> u32 {
    match (op, u) {
        (misc::REV64, false) => 64,
        (misc::REV64, true) => 32,
        _ => 16,
    }
}

/// Whether (opcode, U, size, Q, scalar) is an allocated integer three-same encoding.
fn three_same_allowed(op: u32, s: Shape) -> bool {
    use three::*;
    let d_only = s.size == 3;
    if s.scalar {
        return match op {
            SQADD | SQSUB | SQSHL | SQRSHL => true,
            CMGT | CMGE | SSHL | SRSHL | ADD | CMTST => d_only,
            SQDMULH => s.size == 1 || s.size == 2,
            _ => false,
        };
    }
    let wide = match op {
        SQADD | SQSUB | CMGT | CMGE | SSHL | SQSHL | SRSHL | SQRSHL | ADD | CMTST => true,
        ADDP => !s.u,
        SQDMULH => return s.size == 1 || s.size == 2,
        MUL if s.u => return s.size == 0, // PMUL
        _ => false,
    };
    if op == ADDP && s.u {
        return false;
    }
    if d_only {
        wide && s.q
    } else {
        true
    }
}

/// Whether (opcode, U, size, Q, scalar) is an allocated integer two-register-misc encoding
/// handled by `two_misc_elem` (XTN/SQXTN.., SHLL and the pairwise adds are handled before).
fn two_misc_allowed(op: u32, s: Shape) -> bool {
    use misc::*;
    let (size, u) = (s.size, s.u);
    if s.scalar {
        return match (op, u) {
            (SUQADD | SQABS, _) => true,
            (CMGT_ZERO | CMEQ_ZERO | ABS, _) | (CMLT_ZERO, false) => size == 3,
            _ => false,
        };
    }
    let d_ok = size < 3 || s.q;
    match (op, u) {
        (REV16, true) => false,
        (REV64 | REV16, _) => size < 3 && s.esize() < rev_container(op, u),
        (SUQADD | SQABS | CMGT_ZERO | CMEQ_ZERO | ABS, _) | (CMLT_ZERO, false) => d_ok,
        (CLS, _) => size < 3,
        (CNT, false) => size == 0,
        (CNT, true) => size < 2,
        _ => false,
    }
}
