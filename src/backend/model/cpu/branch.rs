//! Branches, exception generation and the system-instruction class dispatch (Arm ARM C4.1.87
//! "Branches, Exception Generating and System instructions").

use crate::a64::esr::ec;

use super::{Cpu, Exc, Stop};

/// Sign-extends the low `bits` of `v`.
pub fn sext(v: u64, bits: u32) -> u64 {
    ((v << (64 - bits)) as i64 >> (64 - bits)) as u64
}

impl Cpu {
    pub(super) fn branch_sys(&mut self, i: u32) -> Result<(), Stop> {
        let pc = self.st.pc;
        if (i >> 26) & 0x1f == 0b00101 {
            // B / BL
            let off = sext((i & 0x03ff_ffff) as u64, 26) << 2;
            if i >> 31 == 1 {
                self.st.x[30] = pc.wrapping_add(4);
            }
            self.next_pc = pc.wrapping_add(off);
            return Ok(());
        }
        match (i >> 25) & 0x3f {
            0b011010 => {
                // CBZ / CBNZ
                let sf = i >> 31 == 1;
                let v = self.st.xr(i & 31);
                let v = if sf { v } else { v & 0xffff_ffff };
                if (v == 0) != ((i >> 24) & 1 == 1) {
                    self.next_pc = pc.wrapping_add(sext(((i >> 5) & 0x7ffff) as u64, 19) << 2);
                }
                return Ok(());
            }
            0b011011 => {
                // TBZ / TBNZ
                let bit = (i >> 31) << 5 | (i >> 19) & 31;
                let set = (self.st.xr(i & 31) >> bit) & 1 == 1;
                if set == ((i >> 24) & 1 == 1) {
                    self.next_pc = pc.wrapping_add(sext(((i >> 5) & 0x3fff) as u64, 14) << 2);
                }
                return Ok(());
            }
            _ => {}
        }
        if i >> 24 == 0x54 && (i >> 4) & 1 == 0 {
            // B.cond
            if self.st.cond_holds(i & 15) {
                self.next_pc = pc.wrapping_add(sext(((i >> 5) & 0x7ffff) as u64, 19) << 2);
            }
            return Ok(());
        }
        if i >> 24 == 0xd4 {
            return self.exception_gen(i);
        }
        if i >> 22 == 0b11_0101_0100 {
            return self.system(i);
        }
        if i >> 25 == 0b110_1011 {
            return self.branch_reg(i);
        }
        Err(self.undef(i))
    }

    /// SVC, HVC, SMC, BRK (HLT and DCPSx are UNDEFINED outside Debug state).
    fn exception_gen(&mut self, i: u32) -> Result<(), Stop> {
        let imm = ((i >> 5) & 0xffff) as u16;
        let pc = self.st.pc;
        let el0 = self.st.el() == 0;
        if (i >> 2) & 7 != 0 {
            return Err(self.undef(i));
        }
        match ((i >> 21) & 7, i & 3) {
            (0, 1) => Err(Stop::Exception(Exc::new(
                ec::SVC64,
                imm as u64,
                pc.wrapping_add(4),
            ))),
            (0, 2) if !el0 => Err(Stop::Hvc(imm)),
            (0, 3) if !el0 => Err(Stop::Smc(imm)),
            (1, 0) => {
                if self.dbg.routes_brk() {
                    Err(Stop::Debug {
                        esr: crate::a64::esr::make(ec::BRK64, true, imm as u64),
                        far: 0,
                    })
                } else {
                    Err(Stop::Exception(Exc::new(ec::BRK64, imm as u64, pc)))
                }
            }
            _ => Err(self.undef(i)),
        }
    }

    /// BR, BLR, RET, ERET (the pointer-authentication forms are not implemented: UNDEFINED,
    /// as on a CPU without FEAT_PAuth).
    fn branch_reg(&mut self, i: u32) -> Result<(), Stop> {
        let opc = (i >> 21) & 15;
        let rn = (i >> 5) & 31;
        if (i >> 16) & 31 != 31 || (i >> 10) & 63 != 0 || i & 31 != 0 {
            return Err(self.undef(i));
        }
        match opc {
            0 | 2 => self.next_pc = self.st.xr(rn),
            1 => {
                let target = self.st.xr(rn);
                self.st.x[30] = self.st.pc.wrapping_add(4);
                self.next_pc = target;
            }
            4 if rn == 31 && self.st.el() == 1 => self.eret(),
            _ => return Err(self.undef(i)),
        }
        Ok(())
    }
}
