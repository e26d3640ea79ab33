//! Host-owned debug (the VMM's `KVM_SET_GUEST_DEBUG` view): software-breakpoint routing,
//! hardware breakpoints and watchpoints from the loaded DBGBCR/DBGBVR/DBGWCR/DBGWVR values,
//! and the syndromes KVM reports for them (facts file; Arm ARM D2.8-D2.10, D19.3).
//!
//! Guest-owned debug (MDSCR_EL1.KDE/MDE, the guest's own breakpoints, its software step) is
//! not modelled yet; this file is where it goes.

use crate::a64::debugregs::{self, AccessKind, DataAccess};
use crate::a64::esr::{self, ec};
use crate::a64::SysReg;
use crate::backend::model::cpu::sysregs::{NUM_BRPS, NUM_WRPS};
use crate::backend::model::gic::Icc;
use crate::backend::GuestDebug;

/// The VMM's debug configuration for one vCPU.
#[derive(Clone, Debug, Default)]
pub struct HostDebug {
    pub cfg: GuestDebug,
}

/// ESR of a software-step exit: EC 0x32, IL, ISV=1 (EX=0), IFSC 0x22 after an instruction
/// the guest executed (0xcb000022), ISV=0 (0xca000022) when the step completed on an
/// instruction KVM finished outside the guest (MMIO completion, in-kernel HVC, trapped sysreg).
pub fn step_esr(emulated: bool) -> u64 {
    let isv = if emulated { 0 } else { esr::ISS_ISV };
    esr::make(ec::SOFTSTP_LOW, true, isv | esr::DEBUG_FSC)
}

/// ESR of a hardware-breakpoint exit (EC 0x30: 0xc2000022).
pub fn breakpoint_esr() -> u64 {
    esr::make(ec::BREAKPT_LOW, true, esr::DEBUG_FSC)
}

/// ESR of a watchpoint exit (EC 0x34, WnR for a store: 0xd2000062 / 0xd2000022).
pub fn watchpoint_esr(write: bool) -> u64 {
    let wnr = if write { esr::DABT_WNR } else { 0 };
    esr::make(ec::WATCHPT_LOW, true, wnr | esr::DEBUG_FSC)
}

/// Whether KVM 6.1 traps this MRS/MSR and emulates it (so the PC advance happens outside the
/// guest): the ID register group 3 (HCR_EL2.TID3: op0=3, op1=0, CRn=0, CRm=1..7), the
/// debug registers (op0=2; MDCR_EL2.TDA/TDOSA while the VMM debugs the guest) and the GIC's
/// SGI generation registers (`Icc::trapped_by_kvm`).
pub fn kvm_traps_sysreg(reg: SysReg) -> bool {
    reg.op0() == 2
        || (reg.op0() == 3 && reg.op1() == 0 && reg.crn() == 0 && reg.crm() != 0)
        || Icc::decode(reg).is_some_and(Icc::trapped_by_kvm)
}

impl HostDebug {
    /// With guest debug on, MDCR_EL2.TDE routes every BRK to the VMM (facts file).
    pub fn routes_brk(&self) -> bool {
        self.cfg.enable
    }

    #[inline(always)]
    pub fn single_step(&self) -> bool {
        self.cfg.enable && self.cfg.single_step
    }

    /// Hardware breakpoints/watchpoints in use (`KVM_GUESTDBG_USE_HW` with debug enabled).
    #[inline(always)]
    pub fn hw(&self) -> bool {
        self.cfg.enable && self.cfg.hw
    }

    /// True when an enabled breakpoint matches `pc` at `el` (the one matcher,
    /// `a64::debugregs`). Without hardware debug in use this is one inlined flag test.
    #[inline(always)]
    pub fn breakpoint_hit(&self, pc: u64, el: u8) -> bool {
        self.hw() && self.breakpoint_match(pc, el)
    }

    #[inline(never)]
    fn breakpoint_match(&self, pc: u64, el: u8) -> bool {
        let n = NUM_BRPS as usize;
        debugregs::first_bp_hit(&self.cfg.bcr[..n], &self.cfg.bvr[..n], pc, el).is_some()
    }

    /// The FAR to report if an enabled watchpoint matches an access of `size` bytes at `va`
    /// (the one matcher, `a64::debugregs`: LSC, PAC, BAS byte select, MASK ranges). The FAR is
    /// the lowest watched byte the access touches, as real KVM reports it: an access starting
    /// at a watched byte reports its own address, `strh` to bytes 6-7 watched at byte 7
    /// reports byte 7 (tests/conformance/watch_*.trace).
    pub fn watchpoint_hit(&self, va: u64, size: usize, write: bool, el: u8) -> Option<u64> {
        if !self.hw() {
            return None;
        }
        let n = NUM_WRPS as usize;
        let access = DataAccess {
            addr: va,
            size: size as u64,
            kind: if write {
                AccessKind::Store
            } else {
                AccessKind::Load
            },
            el,
        };
        debugregs::first_wp_hit(&self.cfg.wcr[..n], &self.cfg.wvr[..n], &access).map(|(_, far)| far)
    }
}
