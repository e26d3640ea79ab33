//! Host-owned debug (the VMM's `KVM_SET_GUEST_DEBUG` view): software-breakpoint routing,
//! hardware breakpoints and watchpoints from the loaded DBGBCR/DBGBVR/DBGWCR/DBGWVR values,
//! and the syndromes KVM reports for them (facts file; Arm ARM D2.8-D2.10, D19.3).
//!
//! Guest-owned debug (MDSCR_EL1.KDE/MDE, the guest's own breakpoints, its software step) is
//! not modelled yet; this file is where it goes.

use crate::a64::esr::{self, ec};
use crate::a64::SysReg;
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
/// guest): the ID register group 3 (HCR_EL2.TID3: op0=3, op1=0, CRn=0, CRm=1..7) and the
/// debug registers (op0=2; MDCR_EL2.TDA/TDOSA while the VMM debugs the guest).
pub fn kvm_traps_sysreg(reg: SysReg) -> bool {
    reg.op0() == 2 || (reg.op0() == 3 && reg.op1() == 0 && reg.crn() == 0 && reg.crm() != 0)
}

/// Whether the privilege control (DBGBCR.PMC / DBGWCR.PAC, bits 2:1) matches `el`.
fn priv_matches(ctl: u64, el: u8) -> bool {
    match (ctl >> 1) & 3 {
        1 => el == 1,
        2 => el == 0,
        3 => true,
        _ => false,
    }
}

impl HostDebug {
    /// With guest debug on, MDCR_EL2.TDE routes every BRK to the VMM (facts file).
    pub fn routes_brk(&self) -> bool {
        self.cfg.enable
    }

    pub fn single_step(&self) -> bool {
        self.cfg.enable && self.cfg.single_step
    }

    fn hw(&self) -> bool {
        self.cfg.enable && self.cfg.hw
    }

    /// True when an enabled unlinked address-match breakpoint (BT = 0b0000) covers `pc`.
    pub fn breakpoint_hit(&self, pc: u64, el: u8) -> bool {
        if !self.hw() {
            return false;
        }
        (0..crate::backend::model::cpu::sysregs::NUM_BRPS as usize).any(|n| {
            let ctl = self.cfg.bcr[n];
            ctl & 1 == 1
                && (ctl >> 20) & 15 == 0
                && priv_matches(ctl, el)
                && (self.cfg.bvr[n] & 0x0001_ffff_ffff_fffc) == (pc & 0x0001_ffff_ffff_fffc)
        })
    }

    /// The FAR to report if an enabled watchpoint matches an access of `size` bytes at `va`
    /// (DBGWCR: E bit 0, PAC 2:1, LSC 4:3 (01 load, 10 store), BAS 12:5, MASK 28:24).
    pub fn watchpoint_hit(&self, va: u64, size: usize, write: bool, el: u8) -> Option<u64> {
        if !self.hw() {
            return None;
        }
        let end = va.wrapping_add(size as u64);
        for n in 0..crate::backend::model::cpu::sysregs::NUM_WRPS as usize {
            let ctl = self.cfg.wcr[n];
            let lsc = (ctl >> 3) & 3;
            let kind_ok = if write { lsc & 2 != 0 } else { lsc & 1 != 0 };
            if ctl & 1 == 0 || !kind_ok || !priv_matches(ctl, el) {
                continue;
            }
            let mask = ((ctl >> 24) & 31) as u32;
            let wvr = self.cfg.wvr[n] & 0x0001_ffff_ffff_fffc;
            let hit = if mask >= 3 {
                let lo = wvr & !((1u64 << mask) - 1);
                va < lo.wrapping_add(1 << mask) && end > lo
            } else {
                let bas = (ctl >> 5) & 0xff;
                (0..8).any(|k| {
                    let b = wvr.wrapping_add(k);
                    bas >> k & 1 == 1 && b >= va && b < end
                })
            };
            if hit {
                return Some(va);
            }
        }
        None
    }
}
