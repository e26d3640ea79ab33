//! The system registers the model implements: reads, writes, and the list `reg_list` reports.
//!
//! Values of the identification registers describe exactly what the model executes (Arm ARM
//! D19.2 register pages, field by field below). Knows nothing about MRS/MSR decoding (see
//! `system.rs`).

use crate::a64::{pstate, sys, SysReg};

use super::state::SysRegs;
use super::Cpu;

/// MIDR_EL1: Implementer 0x00 ("reserved for software use", Arm ARM D19.2.100), Architecture
/// 0xF (ID registers), PartNum 0x001, revision 0: a generic software CPU, not a real core.
pub const MIDR: u64 = 0x000F_0010;
/// ID_AA64PFR0_EL1: EL0 = EL1 = 0b0001 (AArch64 only), EL2/EL3 absent, FP and AdvSIMD
/// implemented (0b0000), GIC = 0b0001 (bits 27:24: the GICv3 CPU interface system registers,
/// as KVM shows with a vGICv3), no SVE/RAS/AMU.
pub const ID_AA64PFR0: u64 = 0x0100_0011;
/// ID_AA64DFR0_EL1: DebugVer 0b0110 (Armv8.0 debug), PMUVer 0 (no PMU), BRPs 5 (6
/// breakpoints), WRPs 3 (4 watchpoints), CTX_CMPs 0 (1 context-aware breakpoint).
pub const ID_AA64DFR0: u64 = 0x0030_5006;
/// ID_AA64ISAR0_EL1: Atomic 0b0010 (FEAT_LSE) in bits 23:20; no crypto, CRC32, RDM, ...
pub const ID_AA64ISAR0: u64 = 0x0020_0000;
/// ID_AA64MMFR0_EL1: PARange 0b0101 (48 bits), ASIDBits 0b0010 (16), TGran16 0b0001
/// (supported, bits 23:20), TGran64 and TGran4 supported (0b0000): what `a64::walk` walks.
pub const ID_AA64MMFR0: u64 = 0x0010_0025;
/// sys::CTR_EL0: RES1 bit 31, CWG = ERG = DminLine = IminLine = 4 (64-byte lines), L1Ip PIPT.
pub const CTR: u64 = 0x8444_C004;
/// sys::DCZID_EL0: BS = 4 (DC ZVA zeroes 2^4 words = 64 bytes), DZP = 0.
pub const DCZID: u64 = 4;
/// Generic counter frequency: 62.5 MHz, QEMU's TCG value (`target/arm/internals.h`
/// GTIMER_SCALE = 16 ns per tick).
pub const CNTFRQ: u64 = 62_500_000;
/// OSLSR_EL1.OSLM = 0b10 (OS lock implemented, bit 3), as KVM resets it; OSLK (bit 1) is the
/// lock's state (Arm ARM D19.3 "OSLSR_EL1").
const OSLSR_OSLM: u64 = 1 << 3;
const OSLSR_OSLK_SHIFT: u32 = 1;
/// OSLAR_EL1.OSLK (bit 0): the value written sets or clears the OS lock (D19.3 "OSLAR_EL1").
const OSLAR_OSLK: u64 = 1 << 0;
/// CNTV_CTL_EL0 / CNTP_CTL_EL0 fields (Arm ARM D19.8 "CNTV_CTL_EL0"): ENABLE (bit 0) and
/// IMASK (bit 1) are written; ISTATUS (bit 2) is read-only, the timer condition.
const CNT_CTL_ENABLE: u64 = 1 << 0;
const CNT_CTL_IMASK: u64 = 1 << 1;
const CNT_CTL_WRITABLE: u64 = CNT_CTL_ENABLE | CNT_CTL_IMASK;
const CNT_CTL_ISTATUS: u64 = 1 << 2;
/// PSTATE.SP (M\[0\]) as SPSel reads and writes it (Arm ARM C5.2.16 "SPSel").
const SPSEL_SP: u64 = 1 << 0;

/// Registers `get_reg`/`reg_list` expose besides the debug register banks.
pub const LISTED: &[SysReg] = &[
    sys::MIDR_EL1,
    sys::MPIDR_EL1,
    sys::REVIDR_EL1,
    sys::ID_AA64PFR0_EL1,
    sys::ID_AA64PFR1_EL1,
    sys::ID_AA64ZFR0_EL1,
    sys::ID_AA64DFR0_EL1,
    sys::ID_AA64DFR1_EL1,
    sys::ID_AA64AFR0_EL1,
    sys::ID_AA64AFR1_EL1,
    sys::ID_AA64ISAR0_EL1,
    sys::ID_AA64ISAR1_EL1,
    sys::ID_AA64ISAR2_EL1,
    sys::ID_AA64MMFR0_EL1,
    sys::ID_AA64MMFR1_EL1,
    sys::ID_AA64MMFR2_EL1,
    sys::SCTLR_EL1,
    sys::ACTLR_EL1,
    sys::CPACR_EL1,
    sys::TTBR0_EL1,
    sys::TTBR1_EL1,
    sys::TCR_EL1,
    sys::SPSR_EL1,
    sys::ELR_EL1,
    sys::SP_EL0,
    sys::AFSR0_EL1,
    sys::AFSR1_EL1,
    sys::ESR_EL1,
    sys::FAR_EL1,
    sys::PAR_EL1,
    sys::MAIR_EL1,
    sys::AMAIR_EL1,
    sys::VBAR_EL1,
    sys::ISR_EL1,
    sys::CONTEXTIDR_EL1,
    sys::TPIDR_EL1,
    sys::CNTKCTL_EL1,
    sys::CCSIDR_EL1,
    sys::CLIDR_EL1,
    sys::AIDR_EL1,
    sys::CSSELR_EL1,
    sys::CTR_EL0,
    sys::DCZID_EL0,
    sys::TPIDR_EL0,
    sys::TPIDRRO_EL0,
    sys::CNTFRQ_EL0,
    sys::CNTPCT_EL0,
    sys::CNTVCT_EL0,
    sys::CNTP_TVAL_EL0,
    sys::CNTP_CTL_EL0,
    sys::CNTP_CVAL_EL0,
    sys::CNTV_TVAL_EL0,
    sys::CNTV_CTL_EL0,
    sys::CNTV_CVAL_EL0,
    sys::MDSCR_EL1,
    sys::MDCCINT_EL1,
    sys::MDRAR_EL1,
    sys::OSLSR_EL1,
    sys::OSDLR_EL1,
    sys::DBGPRCR_EL1,
    sys::DBGCLAIMSET_EL1,
    sys::DBGAUTHSTATUS_EL1,
    sys::MDCCSR_EL0,
];

/// Number of breakpoint / watchpoint register pairs (ID_AA64DFR0_EL1.BRPs + 1, WRPs + 1).
pub const NUM_BRPS: u8 = 6;
pub const NUM_WRPS: u8 = 4;

/// The four banks of breakpoint and watchpoint registers (Arm ARM D19.3: `DBGBVR<n>_EL1`,
/// `DBGBCR<n>_EL1`, `DBGWVR<n>_EL1`, `DBGWCR<n>_EL1` are op0=2, op1=0, CRn=0, CRm=n with op2 = 4,
/// 5, 6, 7; see `a64::sys::dbgbvr` and its neighbours).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum DebugBank {
    BreakpointValue,
    BreakpointControl,
    WatchpointValue,
    WatchpointControl,
}

/// Which debug register bank an encoding names, and the register's index in it (below
/// `NUM_BRPS` for breakpoints, `NUM_WRPS` for watchpoints).
fn debug_bank(reg: SysReg) -> Option<(DebugBank, usize)> {
    if reg.op0() != 2 || reg.op1() != 0 || reg.crn() != 0 {
        return None;
    }
    let (bank, limit) = match reg.op2() {
        4 => (DebugBank::BreakpointValue, NUM_BRPS),
        5 => (DebugBank::BreakpointControl, NUM_BRPS),
        6 => (DebugBank::WatchpointValue, NUM_WRPS),
        7 => (DebugBank::WatchpointControl, NUM_WRPS),
        _ => return None,
    };
    let n = reg.crm();
    (n < limit).then_some((bank, n as usize))
}

impl SysRegs {
    /// The guest's registers of debug register bank `bank`.
    fn debug_bank(&self, bank: DebugBank) -> &[u64; 16] {
        match bank {
            DebugBank::BreakpointValue => &self.dbgbvr,
            DebugBank::BreakpointControl => &self.dbgbcr,
            DebugBank::WatchpointValue => &self.dbgwvr,
            DebugBank::WatchpointControl => &self.dbgwcr,
        }
    }

    fn debug_bank_mut(&mut self, bank: DebugBank) -> &mut [u64; 16] {
        match bank {
            DebugBank::BreakpointValue => &mut self.dbgbvr,
            DebugBank::BreakpointControl => &mut self.dbgbcr,
            DebugBank::WatchpointValue => &mut self.dbgwvr,
            DebugBank::WatchpointControl => &mut self.dbgwcr,
        }
    }
}

/// Every system register `get_reg` can read, debug banks included.
pub fn all_readable() -> Vec<SysReg> {
    let mut v = LISTED.to_vec();
    for n in 0..NUM_BRPS {
        v.push(sys::dbgbvr(n));
        v.push(sys::dbgbcr(n));
    }
    for n in 0..NUM_WRPS {
        v.push(sys::dbgwvr(n));
        v.push(sys::dbgwcr(n));
    }
    v
}

/// The deterministic clock as one vCPU sees it while it holds the turn (`model::icount`):
/// the machine's clock was `base` when this vCPU's retired-instruction count was `start`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VClock {
    pub base: u64,
    pub start: u64,
}

impl Cpu {
    /// Generic counter value (CNTVCT_EL0 = sys::CNTPCT_EL0; CNTVOFF is 0): host time since
    /// the VM's epoch at [`CNTFRQ`], or with the deterministic clock one tick per
    /// instruction retired by any vCPU (plus the time WFI skipped; `model::icount`).
    #[inline]
    pub fn counter(&self) -> u64 {
        match self.vclock {
            Some(v) => v.base + (self.insns - v.start),
            None => (self.epoch.elapsed().as_nanos() / (1_000_000_000 / CNTFRQ as u128)) as u64,
        }
    }

    fn timer_ctl(&self, ctl: u64, cval: u64) -> u64 {
        let fired = ctl & CNT_CTL_ENABLE != 0 && self.counter() >= cval;
        (ctl & CNT_CTL_WRITABLE) | if fired { CNT_CTL_ISTATUS } else { 0 }
    }

    /// Reads a system register, or None if the model does not implement it.
    pub fn read_sysreg(&self, reg: SysReg) -> Option<u64> {
        let s = &self.st.sys;
        if let Some((bank, n)) = debug_bank(reg) {
            return Some(s.debug_bank(bank)[n]);
        }
        let v = match reg {
            sys::MIDR_EL1 => MIDR,
            sys::MPIDR_EL1 => s.mpidr,
            sys::ID_AA64PFR0_EL1 => ID_AA64PFR0,
            sys::ID_AA64DFR0_EL1 => ID_AA64DFR0,
            sys::ID_AA64ISAR0_EL1 => ID_AA64ISAR0,
            sys::ID_AA64MMFR0_EL1 => ID_AA64MMFR0,
            sys::SCTLR_EL1 => s.sctlr,
            sys::ACTLR_EL1 => s.actlr,
            sys::CPACR_EL1 => s.cpacr,
            sys::TTBR0_EL1 => s.ttbr0,
            sys::TTBR1_EL1 => s.ttbr1,
            sys::TCR_EL1 => s.tcr,
            sys::SPSR_EL1 => s.spsr,
            sys::ELR_EL1 => s.elr,
            sys::SP_EL0 => self.st.sp_el0,
            sys::AFSR0_EL1 => s.afsr0,
            sys::AFSR1_EL1 => s.afsr1,
            sys::ESR_EL1 => s.esr,
            sys::FAR_EL1 => s.far,
            sys::PAR_EL1 => s.par,
            sys::MAIR_EL1 => s.mair,
            sys::AMAIR_EL1 => s.amair,
            sys::VBAR_EL1 => s.vbar,
            sys::CONTEXTIDR_EL1 => s.contextidr,
            sys::TPIDR_EL1 => s.tpidr_el1,
            sys::CNTKCTL_EL1 => s.cntkctl,
            sys::CSSELR_EL1 => s.csselr,
            sys::TPIDR_EL0 => s.tpidr_el0,
            sys::TPIDRRO_EL0 => s.tpidrro_el0,
            sys::CNTFRQ_EL0 => CNTFRQ,
            sys::CNTVCT_EL0 | sys::CNTPCT_EL0 => self.counter(),
            sys::CNTV_CTL_EL0 => self.timer_ctl(s.cntv_ctl, s.cntv_cval),
            sys::CNTV_CVAL_EL0 => s.cntv_cval,
            sys::CNTV_TVAL_EL0 => s.cntv_cval.wrapping_sub(self.counter()) as u32 as u64,
            sys::CNTP_CTL_EL0 => self.timer_ctl(s.cntp_ctl, s.cntp_cval),
            sys::CNTP_CVAL_EL0 => s.cntp_cval,
            sys::CNTP_TVAL_EL0 => s.cntp_cval.wrapping_sub(self.counter()) as u32 as u64,
            sys::MDSCR_EL1 => s.mdscr,
            sys::MDCCINT_EL1 => s.mdccint,
            sys::OSLSR_EL1 => OSLSR_OSLM | (s.os_lock as u64) << OSLSR_OSLK_SHIFT,
            // OSDLR_EL1 is RAZ/WI, as KVM makes it (`sys_regs.c`: `trap_raz_wi`): the OS
            // double lock is never set.
            sys::OSDLR_EL1 => 0,
            sys::CTR_EL0 => CTR,
            sys::DCZID_EL0 => DCZID,
            sys::NZCV => self.st.pstate & pstate::NZCV_MASK,
            sys::DAIF => self.st.pstate & pstate::DAIF_MASK,
            sys::CURRENT_EL => (self.st.el() as u64) << 2,
            sys::SPSEL => self.st.pstate & SPSEL_SP,
            sys::FPCR => self.st.fpcr,
            sys::FPSR => self.st.fpsr,
            // Identification space (op0=3, op1=0, CRn=0, CRm=1..7) not listed above is RAZ
            // (Arm ARM D19.2 "reserved ID registers").
            r if r.op0() == 3 && r.op1() == 0 && r.crn() == 0 && (1..=7).contains(&r.crm()) => 0,
            sys::ISR_EL1 => self.isr(),
            sys::REVIDR_EL1 | sys::CCSIDR_EL1 | sys::CLIDR_EL1 | sys::AIDR_EL1 | sys::MDRAR_EL1 => {
                0
            }
            sys::DBGPRCR_EL1 | sys::DBGCLAIMSET_EL1 | sys::DBGCLAIMCLR_EL1 | sys::MDCCSR_EL0 => 0,
            // Non-secure invasive and non-invasive debug implemented and enabled.
            sys::DBGAUTHSTATUS_EL1 => 0xf,
            _ => return None,
        };
        Some(v)
    }

    /// Writes a system register; None if it is not implemented or read-only.
    pub fn write_sysreg(&mut self, reg: SysReg, v: u64) -> Option<()> {
        if let Some((bank, n)) = debug_bank(reg) {
            self.st.sys.debug_bank_mut(bank)[n] = v;
            return Some(());
        }
        let counter = self.counter();
        let s = &mut self.st.sys;
        let mut flush = false;
        // A timer register write may change the timer's output: the run loop re-evaluates.
        if matches!(
            reg,
            sys::CNTV_CTL_EL0
                | sys::CNTV_CVAL_EL0
                | sys::CNTV_TVAL_EL0
                | sys::CNTP_CTL_EL0
                | sys::CNTP_CVAL_EL0
                | sys::CNTP_TVAL_EL0
        ) {
            self.irq.mark_dirty();
        }
        match reg {
            sys::SCTLR_EL1 => {
                s.sctlr = v;
                flush = true;
            }
            sys::TTBR0_EL1 | sys::TTBR1_EL1 | sys::TCR_EL1 | sys::MAIR_EL1 => {
                match reg {
                    sys::TTBR0_EL1 => s.ttbr0 = v,
                    sys::TTBR1_EL1 => s.ttbr1 = v,
                    sys::TCR_EL1 => s.tcr = v,
                    _ => s.mair = v,
                }
                flush = true;
            }
            sys::ACTLR_EL1 => s.actlr = v,
            sys::CPACR_EL1 => s.cpacr = v,
            sys::SPSR_EL1 => s.spsr = v,
            sys::ELR_EL1 => s.elr = v,
            sys::SP_EL0 => self.st.sp_el0 = v,
            sys::AFSR0_EL1 => s.afsr0 = v,
            sys::AFSR1_EL1 => s.afsr1 = v,
            sys::ESR_EL1 => s.esr = v,
            sys::FAR_EL1 => s.far = v,
            sys::PAR_EL1 => s.par = v,
            sys::AMAIR_EL1 => s.amair = v,
            sys::VBAR_EL1 => s.vbar = v,
            sys::CONTEXTIDR_EL1 => s.contextidr = v,
            sys::TPIDR_EL1 => s.tpidr_el1 = v,
            sys::CNTKCTL_EL1 => s.cntkctl = v,
            sys::CSSELR_EL1 => s.csselr = v,
            sys::TPIDR_EL0 => s.tpidr_el0 = v,
            sys::TPIDRRO_EL0 => s.tpidrro_el0 = v,
            sys::CNTV_CTL_EL0 => s.cntv_ctl = v & CNT_CTL_WRITABLE,
            sys::CNTV_CVAL_EL0 => s.cntv_cval = v,
            sys::CNTV_TVAL_EL0 => s.cntv_cval = counter.wrapping_add(v as i32 as i64 as u64),
            sys::CNTP_CTL_EL0 => s.cntp_ctl = v & CNT_CTL_WRITABLE,
            sys::CNTP_CVAL_EL0 => s.cntp_cval = v,
            sys::CNTP_TVAL_EL0 => s.cntp_cval = counter.wrapping_add(v as i32 as i64 as u64),
            sys::MDSCR_EL1 => s.mdscr = v,
            sys::MDCCINT_EL1 => s.mdccint = v,
            sys::OSLAR_EL1 => s.os_lock = v & OSLAR_OSLK != 0,
            sys::OSDLR_EL1 => {}
            sys::DBGPRCR_EL1 | sys::DBGCLAIMSET_EL1 | sys::DBGCLAIMCLR_EL1 => {}
            sys::NZCV => {
                self.st.pstate = (self.st.pstate & !pstate::NZCV_MASK) | (v & pstate::NZCV_MASK)
            }
            sys::DAIF => {
                self.st.pstate = (self.st.pstate & !pstate::DAIF_MASK) | (v & pstate::DAIF_MASK)
            }
            sys::SPSEL => self.st.pstate = (self.st.pstate & !SPSEL_SP) | (v & SPSEL_SP),
            sys::FPCR => self.st.fpcr = v & super::state::FPCR_MASK,
            sys::FPSR => self.st.fpsr = v & super::state::FPSR_MASK,
            _ => return None,
        }
        if flush {
            self.tlb.flush();
        }
        Some(())
    }
}
