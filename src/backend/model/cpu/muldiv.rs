//! Data processing with one, two and three sources: shifts by register, divides, bit
//! reversal and counting, multiply(-accumulate) (Arm ARM C4.1.88.x).

use super::alu::shift;
use super::{Cpu, Stop};

impl Cpu {
    /// UDIV, SDIV, LSLV, LSRV, ASRV, RORV.
    pub(super) fn dp_2src(&mut self, i: u32) -> Result<(), Stop> {
        if (i >> 29) & 1 == 1 {
            return Err(self.undef(i));
        }
        let sf = i >> 31 == 1;
        let x = self.st.xr((i >> 5) & 31);
        let y = self.st.xr((i >> 16) & 31);
        let (x, y) = if sf {
            (x, y)
        } else {
            (x & 0xffff_ffff, y & 0xffff_ffff)
        };
        let r = match (i >> 10) & 63 {
            2 => x.checked_div(y).unwrap_or(0),
            3 => {
                if y == 0 {
                    0
                } else if sf {
                    (x as i64).wrapping_div(y as i64) as u64
                } else {
                    (x as u32 as i32).wrapping_div(y as u32 as i32) as u32 as u64
                }
            }
            op @ 8..=11 => shift(x, op - 8, (y % if sf { 64 } else { 32 }) as u32, sf),
            _ => return Err(self.undef(i)),
        };
        self.st.set_xw(i & 31, r, sf);
        Ok(())
    }

    /// RBIT, REV16, REV32, REV, CLZ, CLS.
    pub(super) fn dp_1src(&mut self, i: u32) -> Result<(), Stop> {
        if (i >> 29) & 1 == 1 || (i >> 16) & 31 != 0 {
            return Err(self.undef(i));
        }
        let sf = i >> 31 == 1;
        let x = self.st.xr((i >> 5) & 31);
        let r = match ((i >> 10) & 63, sf) {
            (0, true) => x.reverse_bits(),
            (0, false) => (x as u32).reverse_bits() as u64,
            (1, true) => ((x & 0x00ff_00ff_00ff_00ff) << 8) | ((x >> 8) & 0x00ff_00ff_00ff_00ff),
            (1, false) => {
                let w = x as u32;
                (((w & 0x00ff_00ff) << 8) | ((w >> 8) & 0x00ff_00ff)) as u64
            }
            (2, false) => (x as u32).swap_bytes() as u64,
            (2, true) => {
                let lo = (x as u32).swap_bytes() as u64;
                let hi = ((x >> 32) as u32).swap_bytes() as u64;
                hi << 32 | lo
            }
            (3, true) => x.swap_bytes(),
            (4, true) => x.leading_zeros() as u64,
            (4, false) => (x as u32).leading_zeros() as u64,
            (5, true) => ((x ^ (x << 1)) | 1).leading_zeros() as u64,
            (5, false) => {
                let w = x as u32;
                ((w ^ (w << 1)) | 1).leading_zeros() as u64
            }
            _ => return Err(self.undef(i)),
        };
        self.st.set_xw(i & 31, r, sf);
        Ok(())
    }

    /// MADD, MSUB, SMADDL, SMSUBL, UMADDL, UMSUBL, SMULH, UMULH.
    pub(super) fn dp_3src(&mut self, i: u32) -> Result<(), Stop> {
        let sf = i >> 31 == 1;
        let op54 = (i >> 29) & 3;
        let op31 = (i >> 21) & 7;
        let o0 = (i >> 15) & 1;
        let n = self.st.xr((i >> 5) & 31);
        let m = self.st.xr((i >> 16) & 31);
        let a = self.st.xr((i >> 10) & 31);
        if op54 != 0 {
            return Err(self.undef(i));
        }
        let r = match (sf, op31, o0) {
            (_, 0, _) => {
                let p = n.wrapping_mul(m);
                if o0 == 0 {
                    a.wrapping_add(p)
                } else {
                    a.wrapping_sub(p)
                }
            }
            (true, 1, _) | (true, 5, _) => {
                let p = if op31 == 1 {
                    (n as i32 as i64).wrapping_mul(m as i32 as i64) as u64
                } else {
                    (n as u32 as u64).wrapping_mul(m as u32 as u64)
                };
                if o0 == 0 {
                    a.wrapping_add(p)
                } else {
                    a.wrapping_sub(p)
                }
            }
            (true, 2, 0) => ((n as i64 as i128 * m as i64 as i128) >> 64) as u64,
            (true, 6, 0) => ((n as u128 * m as u128) >> 64) as u64,
            _ => return Err(self.undef(i)),
        };
        self.st.set_xw(i & 31, r, sf);
        Ok(())
    }
}
