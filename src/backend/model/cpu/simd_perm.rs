//! Advanced SIMD permutes (UZP1/2, TRN1/2, ZIP1/2), EXT and TBL/TBX (Arm ARM C4.1.90).

use super::simd_elem::{el, put};
use super::{Cpu, Stop};

impl Cpu {
    /// UZP1/2, TRN1/2, ZIP1/2 (0 Q 0 01110 size 0 Rm 0 opcode 10 Rn Rd).
    pub(super) fn simd_permute(&mut self, i: u32) -> Result<(), Stop> {
        let q = (i >> 30) & 1 == 1;
        let size = (i >> 22) & 3;
        let op = (i >> 12) & 7;
        if size == 3 && !q {
            return Err(self.undef(i));
        }
        let esize = 8u32 << size;
        let count = if q { 128 } else { 64 } / esize;
        let (n, m) = (
            self.st.v[((i >> 5) & 31) as usize],
            self.st.v[((i >> 16) & 31) as usize],
        );
        let part = (op >> 2) & 1;
        let mut r = 0u128;
        for k in 0..count {
            let v = match op & 3 {
                1 => {
                    // UZP: even (part 0) or odd elements of n:m
                    let j = 2 * k + part;
                    if j < count {
                        el(n, j, esize)
                    } else {
                        el(m, j - count, esize)
                    }
                }
                2 => {
                    // TRN
                    let base = k & !1;
                    if k & 1 == 0 {
                        el(n, base + part, esize)
                    } else {
                        el(m, base + part, esize)
                    }
                }
                3 => {
                    // ZIP: interleave the low (part 0) or high halves
                    let j = part * count / 2 + k / 2;
                    if k & 1 == 0 {
                        el(n, j, esize)
                    } else {
                        el(m, j, esize)
                    }
                }
                _ => return Err(self.undef(i)),
            };
            put(&mut r, k, esize, v);
        }
        self.st.v[(i & 31) as usize] = r;
        Ok(())
    }

    /// EXT (0 Q 101110 000 Rm 0 imm4 0 Rn Rd).
    pub(super) fn simd_ext(&mut self, i: u32) -> Result<(), Stop> {
        let q = (i >> 30) & 1 == 1;
        let pos = (i >> 11) & 15;
        let bytes = if q { 16 } else { 8 };
        if pos >= bytes {
            return Err(self.undef(i));
        }
        let (n, m) = (
            self.st.v[((i >> 5) & 31) as usize],
            self.st.v[((i >> 16) & 31) as usize],
        );
        let mut r = 0u128;
        for k in 0..bytes {
            let j = pos + k;
            let b = if j < bytes {
                el(n, j, 8)
            } else {
                el(m, j - bytes, 8)
            };
            put(&mut r, k, 8, b);
        }
        self.st.v[(i & 31) as usize] = r;
        Ok(())
    }

    /// TBL / TBX with 1..4 table registers (0 Q 001110 000 Rm 0 len op 00 Rn Rd).
    pub(super) fn simd_tbl(&mut self, i: u32) -> Result<(), Stop> {
        let q = (i >> 30) & 1 == 1;
        let regs = ((i >> 13) & 3) + 1;
        let tbx = (i >> 12) & 1 == 1;
        let rn = (i >> 5) & 31;
        let idx = self.st.v[((i >> 16) & 31) as usize];
        let d = self.st.v[(i & 31) as usize];
        let bytes = if q { 16 } else { 8 };
        let mut r = 0u128;
        for k in 0..bytes {
            let j = el(idx, k, 8) as u32;
            let v = if j < 16 * regs {
                el(self.st.v[((rn + j / 16) & 31) as usize], j % 16, 8)
            } else if tbx {
                el(d, k, 8)
            } else {
                0
            };
            put(&mut r, k, 8, v);
        }
        self.st.v[(i & 31) as usize] = r;
        Ok(())
    }
}
