//! System instructions: hints (NOP, YIELD, WFE, WFI, ...), barriers, CLREX, MSR (immediate),
//! SYS (TLBI, DC ZVA, AT, cache maintenance) and MRS/MSR (register) (Arm ARM C5.2-C5.3).

use crate::a64::fields::sctlr;
use crate::a64::{pstate, sys, SysReg};

use super::debug::kvm_traps_sysreg;
use super::{Cpu, Stop};

/// ISS of a trapped WFI (Arm ARM D19.2.37, "exception from a WFI or WFE instruction"):
/// CV = 1 (bit 24), COND = 0b1110 (bits 23:20), TI = 0 (WFI).
const WFI_ISS: u64 = 1 << 24 | 0xe << 20;

impl Cpu {
    pub(super) fn system(&mut self, i: u32) -> Result<(), Stop> {
        let l = (i >> 21) & 1;
        let op0 = (i >> 19) & 3;
        let op1 = (i >> 16) & 7;
        let crn = (i >> 12) & 15;
        let crm = (i >> 8) & 15;
        let op2 = (i >> 5) & 7;
        let rt = i & 31;
        match (l, op0) {
            (0, 0) => match crn {
                2 if rt == 31 => self.hint(crm << 3 | op2),
                3 if rt == 31 && op1 == 3 => {
                    // CLREX, DSB, DMB, ISB, SB: memory is sequentially consistent enough in
                    // the model that barriers have nothing to do.
                    if op2 == 2 {
                        self.monitor = None;
                    }
                    Ok(())
                }
                4 if rt == 31 => self.msr_imm(i, op1, crm, op2),
                _ => Err(self.undef(i)),
            },
            (_, 1) => self.sys_op(i, l, op1, crn, crm, op2),
            (_, _) => {
                let reg = SysReg::new(op0 as u8, op1 as u8, crn as u8, crm as u8, op2 as u8);
                self.mrs_msr(i, l == 1, reg, rt)
            }
        }
    }

    /// The hint space: unallocated hints (and BTI/PAC hints on this FEAT_BTI/PAuth-less CPU)
    /// execute as NOP.
    fn hint(&mut self, op: u32) -> Result<(), Stop> {
        match op {
            // WFI: with an interrupt signalled it completes at once in the guest; else KVM
            // traps it (HCR_EL2.TWI) and completes it outside the guest once woken.
            3 => {
                if self.wfi_completes_at_once() {
                    return Ok(());
                }
                if self.st.el() == 0 && self.st.sys.sctlr & sctlr::NTWI == 0 {
                    // SCTLR_EL1.nTWI = 0: WFI at EL0 traps to EL1 (EC 0x01, ISS 0).
                    return Err(Stop::Exception(super::Exc::new(
                        crate::a64::esr::ec::WFX,
                        WFI_ISS,
                        self.st.pc,
                    )));
                }
                Err(Stop::Wfi)
            }
            // WFE completes at once (permitted: an event may always be pending), SEV/SEVL
            // and YIELD have no effect on a model without event wake-ups.
            _ => Ok(()),
        }
    }

    /// MSR SPSel/DAIFSet/DAIFClr, #imm.
    fn msr_imm(&mut self, i: u32, op1: u32, crm: u32, op2: u32) -> Result<(), Stop> {
        let el0 = self.st.el() == 0;
        match (op1, op2) {
            (0, 5) if !el0 => self.st.pstate = (self.st.pstate & !1) | (crm as u64 & 1),
            (3, 6) | (3, 7) => {
                if el0 && self.st.sys.sctlr & sctlr::UMA == 0 {
                    return Err(self.undef(i));
                }
                let bits = (crm as u64) << 6;
                if op2 == 6 {
                    self.st.pstate |= bits;
                } else {
                    self.st.pstate &= !bits;
                }
            }
            _ => return Err(self.undef(i)),
        }
        Ok(())
    }

    /// SYS: TLB maintenance (flushes the model's TLB), DC ZVA, AT, other cache maintenance
    /// (no-ops: the model has no caches). SYSL is UNDEFINED.
    fn sys_op(
        &mut self,
        i: u32,
        l: u32,
        op1: u32,
        crn: u32,
        crm: u32,
        op2: u32,
    ) -> Result<(), Stop> {
        if l == 1 || (self.st.el() == 0 && !(op1 == 3 && crn == 7)) {
            return Err(self.undef(i));
        }
        let rt = i & 31;
        match (op1, crn, crm, op2) {
            (_, 8, _, _) => self.tlb.flush(),
            (3, 7, 4, 1) => {
                // DC ZVA: zero the 64-byte block (DCZID_EL0.BS = 4). On Device memory
                // (everything, with stage 1 off) it is an alignment fault (Arm ARM C5.3.x
                // "DC ZVA").
                let va = self.st.xr(rt);
                let base = va & !63;
                if self.translate_attr(base, super::mmu::Access::Write)?.1 {
                    let fsc = super::exception::FSC_ALIGNMENT;
                    return Err(Stop::Exception(self.dabt(va, true, fsc)));
                }
                for k in 0..8 {
                    self.write_mem(base + 8 * k, 8, 0, None, false)?;
                }
            }
            (0, 7, 8, 0..=3) => self.at(i, op2),
            (_, 7, _, _) => {}
            _ => return Err(self.undef(i)),
        }
        Ok(())
    }

    /// AT S1E1R/S1E1W/S1E0R/S1E0W: translate Xt and write PAR_EL1 (PA or fault status).
    fn at(&mut self, i: u32, op2: u32) {
        let va = self.st.xr(i & 31);
        let access = if op2 & 1 == 1 {
            super::mmu::Access::Write
        } else {
            super::mmu::Access::Read
        };
        let saved = self.st.pstate;
        if op2 >= 2 {
            self.st.pstate &= !pstate::M_MASK;
        }
        let r = self.translate(va, access);
        self.st.pstate = saved;
        self.st.sys.par = match r {
            Ok(pa) => pa & 0x0000_ffff_ffff_f000,
            Err(Stop::Exception(e)) => 1 | (e.iss & 0x3f) << 1,
            Err(_) => 1,
        };
    }

    /// MRS / MSR (register).
    fn mrs_msr(&mut self, i: u32, read: bool, reg: SysReg, rt: u32) -> Result<(), Stop> {
        if !self.sysreg_allowed(reg, read) {
            return Err(match self.el0_timer_trap(reg, read, rt) {
                Some(e) => Stop::Exception(e),
                None => self.undef(i),
            });
        }
        if reg == sys::FPCR || reg == sys::FPSR {
            self.fp_check()?;
        }
        self.emulated = kvm_traps_sysreg(reg);
        if let Some(done) = self.gic_sysreg(i, reg, read, rt) {
            return done;
        }
        if read {
            match self.read_sysreg(reg) {
                Some(v) => self.st.set_x(rt, v),
                None => return Err(self.undef(i)),
            }
        } else {
            let v = self.st.xr(rt);
            if self.write_sysreg(reg, v).is_none() {
                return Err(self.undef(i));
            }
        }
        Ok(())
    }

    /// Whether the current EL may access `reg` in this direction (EL0 only reaches the EL0
    /// registers its SCTLR_EL1/CNTKCTL_EL1 controls allow; SP_EL0 is inaccessible while it is
    /// the stack pointer in use).
    fn sysreg_allowed(&self, reg: SysReg, read: bool) -> bool {
        let s = &self.st.sys;
        let read_only = matches!(
            reg,
            sys::MIDR_EL1 | sys::MPIDR_EL1 | sys::CNTVCT_EL0 | sys::CNTPCT_EL0
        ) || matches!(reg, sys::CTR_EL0 | sys::DCZID_EL0 | sys::CURRENT_EL)
            || (reg.op0() == 3 && reg.op1() == 0 && reg.crn() == 0)
            || (reg.op0() == 3 && reg.op1() == 1 && reg.crn() == 0)
            || reg == sys::OSLSR_EL1
            || reg == sys::ISR_EL1
            || reg == sys::DBGAUTHSTATUS_EL1
            || reg == sys::MDRAR_EL1
            || reg == sys::CNTFRQ_EL0;
        if !read && read_only || read && reg == sys::OSLAR_EL1 {
            return false;
        }
        if self.st.el() == 1 {
            return !(reg == sys::SP_EL0 && self.st.pstate & 1 == 0);
        }
        match reg {
            sys::NZCV | sys::FPCR | sys::FPSR | sys::TPIDR_EL0 => true,
            sys::TPIDRRO_EL0 => read,
            sys::DAIF => s.sctlr & sctlr::UMA != 0,
            sys::CTR_EL0 => s.sctlr & sctlr::UCT != 0,
            sys::DCZID_EL0 => true,
            // CNTKCTL_EL1 (Arm ARM D19.11): EL0PCTEN (0), EL0VCTEN (1), EL0VTEN (8),
            // EL0PTEN (9).
            sys::CNTFRQ_EL0 => s.cntkctl & 3 != 0,
            sys::CNTV_CTL_EL0 | sys::CNTV_CVAL_EL0 | sys::CNTV_TVAL_EL0 => s.cntkctl & 1 << 8 != 0,
            sys::CNTP_CTL_EL0 | sys::CNTP_CVAL_EL0 | sys::CNTP_TVAL_EL0 => s.cntkctl & 1 << 9 != 0,
            sys::CNTVCT_EL0 => s.cntkctl & 2 != 0,
            sys::CNTPCT_EL0 => s.cntkctl & 1 != 0,
            _ => false,
        }
    }
}
