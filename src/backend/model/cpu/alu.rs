//! Integer data processing: immediate and register classes (Arm ARM C4.1.86 "Data Processing
//! -- Immediate", C4.1.88 "Data Processing -- Register"), with exact NZCV.

use super::{Cpu, Stop};

/// AddWithCarry (Arm ARM J1 shared pseudocode): result and NZCV for a `sf`-bit add.
pub fn add_with_carry(x: u64, y: u64, carry: bool, sf: bool) -> (u64, u64) {
    if sf {
        let (r1, c1) = x.overflowing_add(y);
        let (r, c2) = r1.overflowing_add(carry as u64);
        let v = ((x ^ r) & (y ^ r)) >> 63 & 1;
        (r, nzcv_of(r, true) | ((c1 | c2) as u64) << 1 | v)
    } else {
        let (x, y) = (x & 0xffff_ffff, y & 0xffff_ffff);
        let wide = x + y + carry as u64;
        let r = wide & 0xffff_ffff;
        let v = ((x ^ r) & (y ^ r)) >> 31 & 1;
        (r, nzcv_of(r, false) | (wide >> 32 & 1) << 1 | v)
    }
}

/// N and Z (as NZCV bits 3 and 2) of a result; C and V clear.
pub fn nzcv_of(r: u64, sf: bool) -> u64 {
    let (n, z) = if sf {
        (r >> 63, r == 0)
    } else {
        (r >> 31 & 1, r as u32 == 0)
    };
    n << 3 | (z as u64) << 2
}

/// DecodeBitMasks (Arm ARM J1): the `wmask`, or None if reserved (`immediate`: logical
/// immediate rules, where all-ones elements are reserved).
pub fn decode_bit_masks(n: u32, imms: u32, immr: u32, sf: bool, immediate: bool) -> Option<u64> {
    let combined = (n << 6) | (!imms & 0x3f);
    if combined == 0 {
        return None;
    }
    let len = 31 - combined.leading_zeros();
    if len < 1 || (!sf && len > 5) {
        return None;
    }
    let esize = 1u32 << len;
    let levels = esize - 1;
    let s = imms & levels;
    let r = immr & levels;
    if immediate && s == levels {
        return None;
    }
    let welem = ones(s + 1);
    let emask = ones(esize);
    let elem = if r == 0 {
        welem
    } else {
        ((welem >> r) | (welem << (esize - r))) & emask
    };
    let mut out = 0u64;
    let mut i = 0;
    while i < 64 {
        out |= elem << i;
        i += esize;
    }
    Some(if sf { out } else { out & 0xffff_ffff })
}

/// A mask of `n` low ones (n <= 64).
pub fn ones(n: u32) -> u64 {
    if n >= 64 {
        u64::MAX
    } else {
        (1u64 << n) - 1
    }
}

/// Shifts `v` (a `sf`-bit value) by `amount` with shift type `ty` (LSL, LSR, ASR, ROR).
pub fn shift(v: u64, ty: u32, amount: u32, sf: bool) -> u64 {
    let bits = if sf { 64 } else { 32 };
    let amount = amount % bits;
    let v = if sf { v } else { v & 0xffff_ffff };
    let r = match ty {
        0 => v << amount,
        1 => v >> amount,
        2 => {
            if sf {
                ((v as i64) >> amount) as u64
            } else {
                ((v as u32 as i32) >> amount) as u32 as u64
            }
        }
        _ => {
            if amount == 0 {
                v
            } else if sf {
                v.rotate_right(amount)
            } else {
                (v as u32).rotate_right(amount) as u64
            }
        }
    };
    if sf {
        r
    } else {
        r & 0xffff_ffff
    }
}

/// ExtendReg: extends the low bits of `v` by option (UXTB..SXTX) and shifts left by `sh`.
pub fn extend(v: u64, option: u32, sh: u32) -> u64 {
    let e = match option {
        0 => v & 0xff,
        1 => v & 0xffff,
        2 => v & 0xffff_ffff,
        3 => v,
        4 => v as i8 as i64 as u64,
        5 => v as i16 as i64 as u64,
        6 => v as i32 as i64 as u64,
        _ => v,
    };
    e << sh
}

impl Cpu {
    /// Data Processing -- Immediate.
    pub(super) fn dp_imm(&mut self, i: u32) -> Result<(), Stop> {
        let sf = i >> 31 == 1;
        let rd = i & 31;
        let rn = (i >> 5) & 31;
        match (i >> 23) & 7 {
            0 | 1 => {
                // ADR / ADRP
                let imm = (((i >> 5) & 0x7ffff) << 2 | (i >> 29) & 3) as u64;
                let imm = ((imm << 43) as i64 >> 43) as u64;
                let pc = self.st.pc;
                let v = if i >> 31 == 1 {
                    (pc & !0xfff).wrapping_add(imm << 12)
                } else {
                    pc.wrapping_add(imm)
                };
                self.st.set_x(rd, v);
            }
            2 => {
                let mut imm = ((i >> 10) & 0xfff) as u64;
                if (i >> 22) & 1 == 1 {
                    imm <<= 12;
                }
                let x = self.st.xsp(rn);
                self.add_sub(i, x, imm, true);
            }
            4 => {
                let n = (i >> 22) & 1;
                if !sf && n == 1 {
                    return Err(self.undef(i));
                }
                let Some(imm) = decode_bit_masks(n, (i >> 10) & 63, (i >> 16) & 63, sf, true)
                else {
                    return Err(self.undef(i));
                };
                let x = self.st.xr(rn);
                self.logical(i, x, imm, true);
            }
            5 => self.move_wide(i)?,
            6 => self.bitfield(i)?,
            7 => {
                // EXTR
                let n = (i >> 22) & 1;
                let imms = (i >> 10) & 63;
                if (i >> 29) & 3 != 0 || (i >> 21) & 1 != 0 || n != sf as u32 || (!sf && imms > 31)
                {
                    return Err(self.undef(i));
                }
                let rm = (i >> 16) & 31;
                let (hi, lo) = (self.st.xr(rn), self.st.xr(rm));
                let r = if sf {
                    if imms == 0 {
                        lo
                    } else {
                        (lo >> imms) | (hi << (64 - imms))
                    }
                } else {
                    let cat = (hi & 0xffff_ffff) << 32 | (lo & 0xffff_ffff);
                    (cat >> imms) & 0xffff_ffff
                };
                self.st.set_x(rd, r);
            }
            _ => return Err(self.undef(i)),
        }
        Ok(())
    }

    /// ADD/ADDS/SUB/SUBS with operands already fetched; `rd_sp` says whether Rd=31 is SP
    /// (for the non-flag-setting immediate and extended forms).
    pub(super) fn add_sub(&mut self, i: u32, x: u64, y: u64, rd_sp: bool) {
        let sf = i >> 31 == 1;
        let sub = (i >> 30) & 1 == 1;
        let set_flags = (i >> 29) & 1 == 1;
        let (r, flags) = if sub {
            add_with_carry(x, !y, true, sf)
        } else {
            add_with_carry(x, y, false, sf)
        };
        let r = if sf { r } else { r & 0xffff_ffff };
        let rd = i & 31;
        if set_flags {
            self.st.set_nzcv(flags);
            self.st.set_x(rd, r);
        } else if rd_sp {
            self.st.set_xsp(rd, r);
        } else {
            self.st.set_x(rd, r);
        }
    }

    /// AND/ORR/EOR/ANDS (opc = bits 30:29) of x and y; `imm_form` makes Rd=31 SP for non-ANDS.
    fn logical(&mut self, i: u32, x: u64, y: u64, imm_form: bool) {
        let sf = i >> 31 == 1;
        let opc = (i >> 29) & 3;
        let r = match opc {
            0 | 3 => x & y,
            1 => x | y,
            _ => x ^ y,
        };
        let r = if sf { r } else { r & 0xffff_ffff };
        let rd = i & 31;
        if opc == 3 {
            self.st.set_nzcv(nzcv_of(r, sf));
            self.st.set_x(rd, r);
        } else if imm_form {
            self.st.set_xsp(rd, r);
        } else {
            self.st.set_x(rd, r);
        }
    }

    fn move_wide(&mut self, i: u32) -> Result<(), Stop> {
        let sf = i >> 31 == 1;
        let opc = (i >> 29) & 3;
        let hw = (i >> 21) & 3;
        if opc == 1 || (!sf && hw > 1) {
            return Err(self.undef(i));
        }
        let pos = hw * 16;
        let imm = (((i >> 5) & 0xffff) as u64) << pos;
        let rd = i & 31;
        let r = match opc {
            0 => !imm,
            2 => imm,
            _ => (self.st.xr(rd) & !(0xffffu64 << pos)) | imm,
        };
        self.st.set_xw(rd, r, sf);
        Ok(())
    }

    /// SBFM / BFM / UBFM (Arm ARM C6.2 "SBFM"), following the shared pseudocode.
    fn bitfield(&mut self, i: u32) -> Result<(), Stop> {
        let sf = i >> 31 == 1;
        let opc = (i >> 29) & 3;
        let n = (i >> 22) & 1;
        let immr = (i >> 16) & 63;
        let imms = (i >> 10) & 63;
        if opc == 3 || n != sf as u32 || (!sf && (immr > 31 || imms > 31)) {
            return Err(self.undef(i));
        }
        let bits = if sf { 64 } else { 32 };
        let Some(wmask) = decode_bit_masks(n, imms, immr, sf, false) else {
            return Err(self.undef(i));
        };
        let diff = imms.wrapping_sub(immr) & (bits - 1);
        let tmask = ones(diff + 1);
        let rd = i & 31;
        let src = self.st.xr((i >> 5) & 31);
        let dst = self.st.xr(rd);
        let rot = shift(src, 3, immr, sf);
        let bot = match opc {
            1 => (dst & !wmask) | (rot & wmask),
            _ => rot & wmask,
        };
        let top = if opc == 0 {
            // replicate bit imms of src
            if (src >> imms) & 1 == 1 {
                ones(bits)
            } else {
                0
            }
        } else if opc == 1 {
            dst
        } else {
            0
        };
        let r = (top & !tmask) | (bot & tmask);
        self.st.set_xw(rd, r, sf);
        Ok(())
    }

    /// Data Processing -- Register.
    pub(super) fn dp_reg(&mut self, i: u32) -> Result<(), Stop> {
        let sf = i >> 31 == 1;
        let rn = (i >> 5) & 31;
        let rm = (i >> 16) & 31;
        if (i >> 28) & 1 == 0 {
            if (i >> 24) & 1 == 0 {
                // logical (shifted register)
                let amount = (i >> 10) & 63;
                if !sf && amount > 31 {
                    return Err(self.undef(i));
                }
                let mut y = shift(self.st.xr(rm), (i >> 22) & 3, amount, sf);
                if (i >> 21) & 1 == 1 {
                    y = !y;
                }
                let x = self.st.xr(rn);
                self.logical(i, x, y, false);
            } else if (i >> 21) & 1 == 0 {
                // add/sub (shifted register)
                let ty = (i >> 22) & 3;
                let amount = (i >> 10) & 63;
                if ty == 3 || (!sf && amount > 31) {
                    return Err(self.undef(i));
                }
                let y = shift(self.st.xr(rm), ty, amount, sf);
                let x = self.st.xr(rn);
                self.add_sub(i, x, y, false);
            } else {
                // add/sub (extended register)
                let sh = (i >> 10) & 7;
                if sh > 4 || (i >> 22) & 3 != 0 {
                    return Err(self.undef(i));
                }
                let y = extend(self.st.xr(rm), (i >> 13) & 7, sh);
                let x = self.st.xsp(rn);
                self.add_sub(i, x, y, true);
            }
            return Ok(());
        }
        match (i >> 21) & 15 {
            0 => self.adc(i),
            2 => self.cond_compare(i),
            4 => self.cond_select(i),
            6 => {
                if (i >> 30) & 1 == 0 {
                    self.dp_2src(i)
                } else {
                    self.dp_1src(i)
                }
            }
            8..=15 => self.dp_3src(i),
            _ => Err(self.undef(i)),
        }
    }

    fn adc(&mut self, i: u32) -> Result<(), Stop> {
        if (i >> 10) & 63 != 0 {
            return Err(self.undef(i));
        }
        let sf = i >> 31 == 1;
        let x = self.st.xr((i >> 5) & 31);
        let mut y = self.st.xr((i >> 16) & 31);
        if (i >> 30) & 1 == 1 {
            y = !y;
        }
        let c = self.st.nzcv() & 2 != 0;
        let (r, flags) = add_with_carry(x, y, c, sf);
        if (i >> 29) & 1 == 1 {
            self.st.set_nzcv(flags);
        }
        self.st.set_xw(i & 31, r, sf);
        Ok(())
    }

    /// CCMN / CCMP (register and immediate).
    fn cond_compare(&mut self, i: u32) -> Result<(), Stop> {
        if (i >> 29) & 1 == 0 || (i >> 10) & 1 != 0 || (i >> 4) & 1 != 0 {
            return Err(self.undef(i));
        }
        let sf = i >> 31 == 1;
        let cond = (i >> 12) & 15;
        if self.st.cond_holds(cond) {
            let x = self.st.xr((i >> 5) & 31);
            let field = (i >> 16) & 31;
            let y = if (i >> 11) & 1 == 1 {
                field as u64
            } else {
                self.st.xr(field)
            };
            let (_, flags) = if (i >> 30) & 1 == 1 {
                add_with_carry(x, !y, true, sf)
            } else {
                add_with_carry(x, y, false, sf)
            };
            self.st.set_nzcv(flags);
        } else {
            self.st.set_nzcv((i & 15) as u64);
        }
        Ok(())
    }

    /// CSEL / CSINC / CSINV / CSNEG.
    fn cond_select(&mut self, i: u32) -> Result<(), Stop> {
        if (i >> 29) & 1 == 1 || (i >> 11) & 1 == 1 {
            return Err(self.undef(i));
        }
        let sf = i >> 31 == 1;
        let r = if self.st.cond_holds((i >> 12) & 15) {
            self.st.xr((i >> 5) & 31)
        } else {
            let m = self.st.xr((i >> 16) & 31);
            match ((i >> 30) & 1, (i >> 10) & 1) {
                (0, 0) => m,
                (0, _) => m.wrapping_add(1),
                (_, 0) => !m,
                _ => m.wrapping_neg(),
            }
        };
        self.st.set_xw(i & 31, r, sf);
        Ok(())
    }
}
