//! A64 register names shared by every layer.
//!
//! Owns the typed register vocabulary (`Reg`, `SysReg`) and the system-register encodings the
//! debugger and the model use. Pure data: no I/O, no backend types.
//!
//! System registers are identified by their MRS/MSR encoding `op0:op1:CRn:CRm:op2` packed as
//! `op0<<14 | op1<<11 | CRn<<7 | CRm<<3 | op2` (Arm ARM C5.3 "A64 System instruction class
//! encoding"). This is also the low 16 bits of a KVM `KVM_REG_ARM64_SYSREG` id (KVM api.rst
//! 4.68 "KVM_SET_ONE_REG", arm64 system registers) and gdbstub_arch's `AArch64RegId::System`.

use std::fmt;

/// A system register, by its MRS/MSR encoding (see module docs).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SysReg(pub u16);

impl SysReg {
    /// Builds the encoding from its five fields.
    pub const fn new(op0: u8, op1: u8, crn: u8, crm: u8, op2: u8) -> Self {
        SysReg(
            ((op0 as u16 & 3) << 14)
                | ((op1 as u16 & 7) << 11)
                | ((crn as u16 & 15) << 7)
                | ((crm as u16 & 15) << 3)
                | (op2 as u16 & 7),
        )
    }
    pub const fn op0(self) -> u8 {
        (self.0 >> 14) as u8 & 3
    }
    pub const fn op1(self) -> u8 {
        (self.0 >> 11) as u8 & 7
    }
    pub const fn crn(self) -> u8 {
        (self.0 >> 7) as u8 & 15
    }
    pub const fn crm(self) -> u8 {
        (self.0 >> 3) as u8 & 15
    }
    pub const fn op2(self) -> u8 {
        self.0 as u8 & 7
    }

    /// The conventional lower-case name (e.g. `ttbr0_el1`), or a generic
    /// `s<op0>_<op1>_c<n>_c<m>_<op2>` name when the register is not in our table.
    pub fn name(self) -> String {
        match SYSREG_NAMES.iter().find(|(r, _)| *r == self) {
            Some((_, n)) => (*n).to_string(),
            None => format!(
                "s{}_{}_c{}_c{}_{}",
                self.op0(),
                self.op1(),
                self.crn(),
                self.crm(),
                self.op2()
            ),
        }
    }

    /// Looks a register up by its conventional name (case-insensitive).
    pub fn from_name(name: &str) -> Option<SysReg> {
        let lower = name.to_ascii_lowercase();
        SYSREG_NAMES
            .iter()
            .find(|(_, n)| *n == lower)
            .map(|(r, _)| *r)
    }
}

impl fmt::Debug for SysReg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.name())
    }
}

/// Encodings from the Arm ARM (DDI 0487) D19 "AArch64 System Register Descriptions"; each
/// register's page gives its op0/op1/CRn/CRm/op2 in "Accessing the register".
pub mod sys {
    use super::SysReg;
    pub const MIDR_EL1: SysReg = SysReg::new(3, 0, 0, 0, 0);
    pub const MPIDR_EL1: SysReg = SysReg::new(3, 0, 0, 0, 5);
    pub const ID_AA64PFR0_EL1: SysReg = SysReg::new(3, 0, 0, 4, 0);
    pub const ID_AA64PFR1_EL1: SysReg = SysReg::new(3, 0, 0, 4, 1);
    pub const ID_AA64DFR0_EL1: SysReg = SysReg::new(3, 0, 0, 5, 0);
    pub const ID_AA64ISAR0_EL1: SysReg = SysReg::new(3, 0, 0, 6, 0);
    pub const ID_AA64MMFR0_EL1: SysReg = SysReg::new(3, 0, 0, 7, 0);
    pub const ID_AA64MMFR1_EL1: SysReg = SysReg::new(3, 0, 0, 7, 1);
    pub const SCTLR_EL1: SysReg = SysReg::new(3, 0, 1, 0, 0);
    pub const CPACR_EL1: SysReg = SysReg::new(3, 0, 1, 0, 2);
    pub const TTBR0_EL1: SysReg = SysReg::new(3, 0, 2, 0, 0);
    pub const TTBR1_EL1: SysReg = SysReg::new(3, 0, 2, 0, 1);
    pub const TCR_EL1: SysReg = SysReg::new(3, 0, 2, 0, 2);
    pub const SPSR_EL1: SysReg = SysReg::new(3, 0, 4, 0, 0);
    pub const ELR_EL1: SysReg = SysReg::new(3, 0, 4, 0, 1);
    pub const SP_EL0: SysReg = SysReg::new(3, 0, 4, 1, 0);
    pub const AFSR0_EL1: SysReg = SysReg::new(3, 0, 5, 1, 0);
    pub const AFSR1_EL1: SysReg = SysReg::new(3, 0, 5, 1, 1);
    pub const ESR_EL1: SysReg = SysReg::new(3, 0, 5, 2, 0);
    pub const FAR_EL1: SysReg = SysReg::new(3, 0, 6, 0, 0);
    pub const PAR_EL1: SysReg = SysReg::new(3, 0, 7, 4, 0);
    pub const MAIR_EL1: SysReg = SysReg::new(3, 0, 10, 2, 0);
    pub const AMAIR_EL1: SysReg = SysReg::new(3, 0, 10, 3, 0);
    pub const VBAR_EL1: SysReg = SysReg::new(3, 0, 12, 0, 0);
    pub const CONTEXTIDR_EL1: SysReg = SysReg::new(3, 0, 13, 0, 1);
    pub const TPIDR_EL1: SysReg = SysReg::new(3, 0, 13, 0, 4);
    pub const CNTKCTL_EL1: SysReg = SysReg::new(3, 0, 14, 1, 0);
    pub const CSSELR_EL1: SysReg = SysReg::new(3, 2, 0, 0, 0);
    pub const TPIDR_EL0: SysReg = SysReg::new(3, 3, 13, 0, 2);
    pub const TPIDRRO_EL0: SysReg = SysReg::new(3, 3, 13, 0, 3);
    pub const CNTFRQ_EL0: SysReg = SysReg::new(3, 3, 14, 0, 0);
    pub const CNTVCT_EL0: SysReg = SysReg::new(3, 3, 14, 0, 2);
    pub const CNTV_TVAL_EL0: SysReg = SysReg::new(3, 3, 14, 3, 0);
    pub const CNTV_CTL_EL0: SysReg = SysReg::new(3, 3, 14, 3, 1);
    pub const CNTV_CVAL_EL0: SysReg = SysReg::new(3, 3, 14, 3, 2);
    pub const MDSCR_EL1: SysReg = SysReg::new(2, 0, 0, 2, 2);
    pub const MDCCINT_EL1: SysReg = SysReg::new(2, 0, 0, 2, 0);
    pub const OSLAR_EL1: SysReg = SysReg::new(2, 0, 1, 0, 4);
    pub const OSLSR_EL1: SysReg = SysReg::new(2, 0, 1, 1, 4);
    pub const OSDLR_EL1: SysReg = SysReg::new(2, 0, 1, 3, 4);

    // Registers only the model implements (reads, writes, traps); not in the name table, so
    // gdb shows them by their generic `s<op0>_<op1>_c<n>_c<m>_<op2>` names (FPCR, FPSR, NZCV
    // and DAIF would otherwise clash with the core registers gdb already has).
    pub const REVIDR_EL1: SysReg = SysReg::new(3, 0, 0, 0, 6);
    pub const ID_AA64ZFR0_EL1: SysReg = SysReg::new(3, 0, 0, 4, 4);
    pub const ID_AA64DFR1_EL1: SysReg = SysReg::new(3, 0, 0, 5, 1);
    pub const ID_AA64AFR0_EL1: SysReg = SysReg::new(3, 0, 0, 5, 4);
    pub const ID_AA64AFR1_EL1: SysReg = SysReg::new(3, 0, 0, 5, 5);
    pub const ID_AA64ISAR1_EL1: SysReg = SysReg::new(3, 0, 0, 6, 1);
    pub const ID_AA64ISAR2_EL1: SysReg = SysReg::new(3, 0, 0, 6, 2);
    pub const ID_AA64MMFR2_EL1: SysReg = SysReg::new(3, 0, 0, 7, 2);
    pub const ACTLR_EL1: SysReg = SysReg::new(3, 0, 1, 0, 1);
    pub const SPSEL: SysReg = SysReg::new(3, 0, 4, 2, 0);
    pub const CURRENT_EL: SysReg = SysReg::new(3, 0, 4, 2, 2);
    pub const ISR_EL1: SysReg = SysReg::new(3, 0, 12, 1, 0);
    pub const CCSIDR_EL1: SysReg = SysReg::new(3, 1, 0, 0, 0);
    pub const CLIDR_EL1: SysReg = SysReg::new(3, 1, 0, 0, 1);
    pub const AIDR_EL1: SysReg = SysReg::new(3, 1, 0, 0, 7);
    pub const CTR_EL0: SysReg = SysReg::new(3, 3, 0, 0, 1);
    pub const DCZID_EL0: SysReg = SysReg::new(3, 3, 0, 0, 7);
    pub const NZCV: SysReg = SysReg::new(3, 3, 4, 2, 0);
    pub const DAIF: SysReg = SysReg::new(3, 3, 4, 2, 1);
    pub const FPCR: SysReg = SysReg::new(3, 3, 4, 4, 0);
    pub const FPSR: SysReg = SysReg::new(3, 3, 4, 4, 1);
    pub const CNTPCT_EL0: SysReg = SysReg::new(3, 3, 14, 0, 1);
    pub const CNTP_TVAL_EL0: SysReg = SysReg::new(3, 3, 14, 2, 0);
    pub const CNTP_CTL_EL0: SysReg = SysReg::new(3, 3, 14, 2, 1);
    pub const CNTP_CVAL_EL0: SysReg = SysReg::new(3, 3, 14, 2, 2);
    pub const MDRAR_EL1: SysReg = SysReg::new(2, 0, 1, 0, 0);
    pub const DBGPRCR_EL1: SysReg = SysReg::new(2, 0, 1, 4, 4);
    pub const DBGCLAIMSET_EL1: SysReg = SysReg::new(2, 0, 7, 8, 6);
    pub const DBGCLAIMCLR_EL1: SysReg = SysReg::new(2, 0, 7, 9, 6);
    pub const DBGAUTHSTATUS_EL1: SysReg = SysReg::new(2, 0, 7, 14, 6);
    pub const MDCCSR_EL0: SysReg = SysReg::new(2, 3, 0, 1, 0);

    /// `DBGBVR<n>_EL1`: op0=2, op1=0, CRn=0, CRm=n, op2=4 (Arm ARM D19.3 "`DBGBVR<n>_EL1`").
    pub const fn dbgbvr(n: u8) -> SysReg {
        SysReg::new(2, 0, 0, n, 4)
    }
    /// `DBGBCR<n>_EL1`: op2=5 (Arm ARM D19.3 "`DBGBCR<n>_EL1`").
    pub const fn dbgbcr(n: u8) -> SysReg {
        SysReg::new(2, 0, 0, n, 5)
    }
    /// `DBGWVR<n>_EL1`: op2=6 (Arm ARM D19.3 "`DBGWVR<n>_EL1`").
    pub const fn dbgwvr(n: u8) -> SysReg {
        SysReg::new(2, 0, 0, n, 6)
    }
    /// `DBGWCR<n>_EL1`: op2=7 (Arm ARM D19.3 "`DBGWCR<n>_EL1`").
    pub const fn dbgwcr(n: u8) -> SysReg {
        SysReg::new(2, 0, 0, n, 7)
    }
}

const SYSREG_NAMES: &[(SysReg, &str)] = &[
    (sys::MIDR_EL1, "midr_el1"),
    (sys::MPIDR_EL1, "mpidr_el1"),
    (sys::ID_AA64PFR0_EL1, "id_aa64pfr0_el1"),
    (sys::ID_AA64PFR1_EL1, "id_aa64pfr1_el1"),
    (sys::ID_AA64DFR0_EL1, "id_aa64dfr0_el1"),
    (sys::ID_AA64ISAR0_EL1, "id_aa64isar0_el1"),
    (sys::ID_AA64MMFR0_EL1, "id_aa64mmfr0_el1"),
    (sys::ID_AA64MMFR1_EL1, "id_aa64mmfr1_el1"),
    (sys::SCTLR_EL1, "sctlr_el1"),
    (sys::CPACR_EL1, "cpacr_el1"),
    (sys::TTBR0_EL1, "ttbr0_el1"),
    (sys::TTBR1_EL1, "ttbr1_el1"),
    (sys::TCR_EL1, "tcr_el1"),
    (sys::SPSR_EL1, "spsr_el1"),
    (sys::ELR_EL1, "elr_el1"),
    (sys::SP_EL0, "sp_el0"),
    (sys::AFSR0_EL1, "afsr0_el1"),
    (sys::AFSR1_EL1, "afsr1_el1"),
    (sys::ESR_EL1, "esr_el1"),
    (sys::FAR_EL1, "far_el1"),
    (sys::PAR_EL1, "par_el1"),
    (sys::MAIR_EL1, "mair_el1"),
    (sys::AMAIR_EL1, "amair_el1"),
    (sys::VBAR_EL1, "vbar_el1"),
    (sys::CONTEXTIDR_EL1, "contextidr_el1"),
    (sys::TPIDR_EL1, "tpidr_el1"),
    (sys::CNTKCTL_EL1, "cntkctl_el1"),
    (sys::CSSELR_EL1, "csselr_el1"),
    (sys::TPIDR_EL0, "tpidr_el0"),
    (sys::TPIDRRO_EL0, "tpidrro_el0"),
    (sys::CNTFRQ_EL0, "cntfrq_el0"),
    (sys::CNTVCT_EL0, "cntvct_el0"),
    (sys::CNTV_TVAL_EL0, "cntv_tval_el0"),
    (sys::CNTV_CTL_EL0, "cntv_ctl_el0"),
    (sys::CNTV_CVAL_EL0, "cntv_cval_el0"),
    (sys::MDSCR_EL1, "mdscr_el1"),
    (sys::MDCCINT_EL1, "mdccint_el1"),
    (sys::OSLAR_EL1, "oslar_el1"),
    (sys::OSLSR_EL1, "oslsr_el1"),
    (sys::OSDLR_EL1, "osdlr_el1"),
];

/// A vCPU register as the backends expose it.
///
/// `Sp` is SP_EL0 and `SpEl1` is SP_EL1, as in KVM's `struct kvm_regs` (the stack pointer in
/// use is chosen by PSTATE.SP and the exception level; see [`crate::a64::pstate`]). `ElrEl1`
/// and `SpsrEl1` are the banked EL1 exception registers that KVM keeps among its core
/// registers. `V(n)` is the full 128-bit SIMD&FP register; all others are 64-bit or narrower.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reg {
    X(u8),
    Sp,
    Pc,
    Pstate,
    SpEl1,
    ElrEl1,
    SpsrEl1,
    V(u8),
    Fpsr,
    Fpcr,
    Sys(SysReg),
}

impl Reg {
    /// The named core registers besides X0-X30 and V0-V31, in KVM's `struct kvm_regs` order.
    pub const NAMED_CORE: [Reg; 6] = [
        Reg::Sp,
        Reg::Pc,
        Reg::Pstate,
        Reg::SpEl1,
        Reg::ElrEl1,
        Reg::SpsrEl1,
    ];

    /// True for the 128-bit SIMD&FP registers.
    pub fn is_vector(self) -> bool {
        matches!(self, Reg::V(_))
    }

    /// Rejects out-of-range register numbers (X0..X30, V0..V31).
    pub fn is_valid(self) -> bool {
        match self {
            Reg::X(n) => n <= 30,
            Reg::V(n) => n <= 31,
            _ => true,
        }
    }
}
