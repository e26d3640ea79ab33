//! Architectural state of one model vCPU: general registers, PSTATE, SIMD&FP registers and
//! the EL1/EL0 system registers the model implements.
//!
//! Pure data plus register-file helpers; no memory access, no threads.

use crate::a64::pstate;

/// SCTLR_EL1 after KVM vCPU reset: `arch/arm64/kvm/sys_regs.c` `sys_reg_descs[]`,
/// `{ SYS_DESC(SYS_SCTLR_EL1), access_vm_reg, reset_val, SCTLR_EL1, 0x00C50078 }`.
pub const SCTLR_RESET: u64 = 0x00C5_0078;

/// Writable FPSR bits: N Z C V QC (31:27), IDC (7), IXC UFC OFC DZC IOC (4:0) (Arm ARM
/// C5.2.8 "FPSR").
pub const FPSR_MASK: u64 = 0xf800_009f;
/// Writable FPCR bits: AHP DN FZ RMode Stride FZ16 Len (26:16), IDE (15), IXE..IOE (12:8)
/// (Arm ARM C5.2.7 "FPCR").
pub const FPCR_MASK: u64 = 0x07ff_9f00;
/// CPACR_EL1.FPEN = 0b11: SIMD&FP enabled at EL0 and EL1 (Arm ARM D19.2.30 "CPACR_EL1").
#[cfg(test)]
pub const CPACR_FPEN_ALL: u64 = 3 << 20;

/// EL1/EL0 system registers kept by the model (Arm ARM D19.2).
#[derive(Clone, Debug, Default)]
pub struct SysRegs {
    pub sctlr: u64,
    pub actlr: u64,
    pub cpacr: u64,
    pub ttbr0: u64,
    pub ttbr1: u64,
    pub tcr: u64,
    pub mair: u64,
    pub amair: u64,
    pub vbar: u64,
    pub esr: u64,
    pub far: u64,
    pub elr: u64,
    pub spsr: u64,
    pub afsr0: u64,
    pub afsr1: u64,
    pub par: u64,
    pub contextidr: u64,
    pub tpidr_el1: u64,
    pub tpidr_el0: u64,
    pub tpidrro_el0: u64,
    pub cntkctl: u64,
    pub csselr: u64,
    pub cntv_ctl: u64,
    pub cntv_cval: u64,
    pub cntp_ctl: u64,
    pub cntp_cval: u64,
    pub mdscr: u64,
    pub mdccint: u64,
    /// OSLSR_EL1.OSLK (the OS lock), set through OSLAR_EL1.
    pub os_lock: bool,
    pub dbgbcr: [u64; 16],
    pub dbgbvr: [u64; 16],
    pub dbgwcr: [u64; 16],
    pub dbgwvr: [u64; 16],
    pub mpidr: u64,
}

/// One vCPU's registers.
#[derive(Clone, Debug)]
pub struct CpuState {
    /// X0-X30, then a slot that always holds zero: XZR reads as `x[31]` without a branch,
    /// and `set_x` stores into it and clears it again. Nothing else may write `x[31]`.
    pub x: [u64; 32],
    pub sp_el0: u64,
    pub sp_el1: u64,
    pub pc: u64,
    /// PSTATE in SPSR_EL1 layout (NZCV, SS, IL, BTYPE, DAIF, M\[3:0\]).
    pub pstate: u64,
    pub v: [u128; 32],
    pub fpcr: u64,
    pub fpsr: u64,
    pub sys: SysRegs,
}

/// MPIDR_EL1 for vCPU `index`: RES1 bit 31, Aff0 = index (KVM `reset_mpidr` for < 16 vCPUs:
/// Aff0 = vcpu_id & 0xf, Aff1 = (vcpu_id >> 4) & 0xff).
pub fn mpidr_for(index: usize) -> u64 {
    let i = index as u64;
    (1 << 31) | (i & 0xf) | (((i >> 4) & 0xff) << 8) | (((i >> 12) & 0xff) << 16)
}

impl CpuState {
    /// The state after `KVM_ARM_VCPU_INIT`: everything zero, PSTATE 0x3c5, SCTLR reset value.
    pub fn reset(index: usize) -> Self {
        CpuState {
            x: [0; 32],
            sp_el0: 0,
            sp_el1: 0,
            pc: 0,
            pstate: pstate::RESET_EL1H_DAIF,
            v: [0; 32],
            fpcr: 0,
            fpsr: 0,
            sys: SysRegs {
                sctlr: SCTLR_RESET,
                mpidr: mpidr_for(index),
                ..SysRegs::default()
            },
        }
    }

    /// The current exception level (0 or 1).
    #[inline]
    pub fn el(&self) -> u8 {
        pstate::el(self.pstate)
    }

    /// Reads `X<n>` (`n` < 32), with 31 meaning XZR (the zero slot).
    #[inline(always)]
    pub fn xr(&self, n: u32) -> u64 {
        self.x[(n & 31) as usize]
    }

    /// Writes `X<n>` (`n` < 32), with 31 meaning XZR (discarded: the zero slot is cleared
    /// again; two stores and no branch).
    #[inline(always)]
    pub fn set_x(&mut self, n: u32, v: u64) {
        self.x[(n & 31) as usize] = v;
        self.x[31] = 0;
    }

    /// Writes `W<n>` or `X<n>` (`sf` = 64-bit): W writes zero the upper half.
    #[inline]
    pub fn set_xw(&mut self, n: u32, v: u64, sf: bool) {
        self.set_x(n, if sf { v } else { v & 0xffff_ffff });
    }

    /// The stack pointer selected by PSTATE (SP_EL0 at EL0 or EL1t, SP_EL1 at EL1h).
    #[inline]
    pub fn sp(&self) -> u64 {
        if pstate::uses_sp_elx(self.pstate) {
            self.sp_el1
        } else {
            self.sp_el0
        }
    }

    #[inline]
    pub fn set_sp(&mut self, v: u64) {
        if pstate::uses_sp_elx(self.pstate) {
            self.sp_el1 = v;
        } else {
            self.sp_el0 = v;
        }
    }

    /// Reads `X<n>`, with 31 meaning the current SP.
    #[inline]
    pub fn xsp(&self, n: u32) -> u64 {
        if n == 31 {
            self.sp()
        } else {
            self.x[n as usize]
        }
    }

    /// Writes `X<n>`, with 31 meaning the current SP.
    #[inline]
    pub fn set_xsp(&mut self, n: u32, v: u64) {
        if n == 31 {
            self.set_sp(v)
        } else {
            self.x[n as usize] = v;
        }
    }

    /// Clears PSTATE.BTYPE after an instruction. Only stores when BTYPE is set: a narrow
    /// read-modify-write of PSTATE on every instruction would defeat store forwarding to
    /// the next instruction's full-width PSTATE load (the flags).
    #[inline(always)]
    pub fn clear_btype(&mut self) {
        if self.pstate & pstate::BTYPE_MASK != 0 {
            self.pstate &= !pstate::BTYPE_MASK;
        }
    }

    /// The NZCV flags as a 4-bit value (N = bit 3).
    #[inline]
    pub fn nzcv(&self) -> u64 {
        (self.pstate >> 28) & 0xf
    }

    #[inline]
    pub fn set_nzcv(&mut self, nzcv: u64) {
        self.pstate = (self.pstate & !pstate::NZCV_MASK) | ((nzcv & 0xf) << 28);
    }

    /// Evaluates an A64 condition code (Arm ARM C1.2.4 "Condition code").
    pub fn cond_holds(&self, cond: u32) -> bool {
        super::fast::cond_eval(cond, self.nzcv())
    }
}
