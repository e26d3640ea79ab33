//! Debug exceptions in the model: who owns them, when they are taken and what they report
//! (Arm ARM D2 "AArch64 Self-hosted Debug"; KVM 6.1 `arch/arm64/kvm/debug.c`).
//!
//! Two owners, as on KVM:
//! - **The VMM** (`KVM_SET_GUEST_DEBUG` with ENABLE, [`DebugCtl::cfg`]): MDCR_EL2.TDE routes
//!   every BRK, breakpoint, watchpoint and step exception to the VMM, whatever the guest's
//!   MDSCR_EL1.KDE, PSTATE.D or OS lock (the debug target is EL2). With USE_HW the VMM's
//!   DBGBCR/DBGBVR/DBGWCR/DBGWVR values are live and the guest's are not; without it the
//!   guest's own registers stay live (with its MDSCR_EL1.MDE, cleared while its OS lock is
//!   set) and their hits exit to the VMM too. MDSCR_EL1.SS is the VMM's SINGLESTEP: the
//!   guest's own step never fires. The guest reads and writes its own MDSCR_EL1 throughout.
//!   (All seen on KVM 6.1: tests/conformance/guest_*_vmm_*.trace; 6.14+ loads the VMM's
//!   registers whenever it owns debug.)
//! - **The guest**, when the VMM does not own debug: the guest's own settings deliver the
//!   exceptions to its EL1 vectors (`take_exception`) with the architected syndromes. Debug
//!   exceptions are enabled (AArch64.GenerateDebugExceptions, target EL1) unless the OS lock
//!   is set (OSLSR_EL1.OSLK), always at EL0, and at EL1 only with MDSCR_EL1.KDE = 1 and
//!   PSTATE.D = 0. The OS double lock cannot be set: KVM makes OSDLR_EL1 RAZ/WI
//!   (`sys_regs.c`: `trap_raz_wi`), and so does the model. Breakpoints and watchpoints also
//!   need MDSCR_EL1.MDE; BRK is never masked.
//!
//! Software step (D2.12) follows the architecture's state machine: with MDSCR_EL1.SS = 1 and
//! debug exceptions enabled, PSTATE.SS = 1 is active-not-pending (the next instruction runs,
//! then PSTATE.SS = 0) and PSTATE.SS = 0 is active-pending (the step exception, EC 0x32 from
//! EL0 or 0x33 from EL1, is taken before the next instruction). Its ISS has ISV = 1 (and EX
//! for a load-exclusive) right after a stepped instruction executed in the guest, else ISV = 0:
//! after an exception return into active-pending, after an instruction KVM completed outside
//! the guest (MMIO, HVC, SMC, WFI, a trapped system register: KVM's `kvm_incr_pc` clears
//! PSTATE.SS), and after any exit to the VMM (the re-entry is an exception return). SVC
//! advances the state machine before its exception (SPSR.SS = 0, AArch64.CallSupervisor's
//! SSAdvance); other exceptions keep SPSR.SS = PSTATE.SS. ERET sets PSTATE.SS = SPSR.SS only
//! when debug exceptions are disabled where ERET runs and enabled where it returns to
//! (DebugExceptionReturnSS), else 0.
//!
//! Breakpoints and watchpoints are matched by the one matcher, `a64::debugregs`. The step
//! syndromes the VMM sees are KVM's (facts file; tests/conformance/step_*.trace).

use crate::a64::debugregs::{self, AccessKind, DataAccess};
use crate::a64::esr::{self, ec};
use crate::a64::exception::{class_for_el, VectorKind};
use crate::a64::fields::mdscr;
use crate::a64::vcatch::CatchSource;
use crate::a64::{pstate, SysReg};
use crate::backend::model::cpu::sysregs::{NUM_BRPS, NUM_WRPS};
use crate::backend::model::gic::Icc;
use crate::backend::GuestDebug;

use super::{Cpu, Exc, Stop};

/// The debug state of one vCPU besides its registers.
#[derive(Clone, Debug, Default)]
pub struct DebugCtl {
    /// The VMM's debug configuration (`KVM_SET_GUEST_DEBUG`).
    pub cfg: GuestDebug,
    /// The guest's step machine: the last instruction was stepped in the guest (the next step
    /// exception reports ISV = 1), and whether it was a load-exclusive (EX).
    pub stepped: Option<bool>,
    /// The last exception entry matched the VMM's vector catch
    /// ([`GuestDebug::vector_catch`]): the run loop reports it before the next instruction.
    pub caught: bool,
}

/// ESR of a software-step exit: EC 0x32, IL, ISV=1 (EX=0), IFSC 0x22 after an instruction
/// the guest executed (0xcb000022), ISV=0 (0xca000022) when the step completed on an
/// instruction KVM finished outside the guest (MMIO completion, in-kernel HVC, trapped sysreg).
pub fn step_esr(emulated: bool) -> u64 {
    let isv = if emulated { 0 } else { esr::ISS_ISV };
    esr::make(ec::SOFTSTP_LOW, true, isv | esr::DEBUG_FSC)
}

/// ESR of a software-step exit after an instruction the guest executed: ISV = 1, EX = 1 for
/// a load-exclusive (0xcb000062; tests/conformance/guest_step_vmm_step.trace).
pub fn step_esr_executed(ldex: bool) -> u64 {
    step_esr(false) | if ldex { esr::SS_EX } else { 0 }
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
/// debug registers (op0=2: MDCR_EL2.TDOSA always; TDA at every entry except the one right
/// after a trapped debug-register write, `kvm_arm_setup_mdcr_el2`, which the model does not
/// track: a guest stepping its own consecutive debug-register writes would see ISV = 1 on
/// the second on KVM, 0 here) and the GIC's SGI generation registers
/// (`Icc::trapped_by_kvm`).
pub fn kvm_traps_sysreg(reg: SysReg) -> bool {
    reg.op0() == 2
        || (reg.op0() == 3 && reg.op1() == 0 && reg.crn() == 0 && reg.crm() != 0)
        || Icc::decode(reg).is_some_and(Icc::trapped_by_kvm)
}

/// True for LDXR, LDAXR, LDXP and LDAXP (Arm ARM C4.1.66 "Load/store exclusive register":
/// bits 29:24 = 0b001000, o2 (23) = 0, L (22) = 1; with o1 (21) = 1 only the 64-bit-size
/// pairs, bit 31 = 1, as o1 = 1 with bit 31 = 0 is CASP).
pub fn is_load_exclusive(i: u32) -> bool {
    i & 0x3fc0_0000 == 0x0840_0000 && (i & (1 << 21) == 0 || i & (1 << 31) != 0)
}

impl DebugCtl {
    /// With guest debug on, MDCR_EL2.TDE routes every BRK to the VMM (facts file).
    pub fn routes_brk(&self) -> bool {
        self.cfg.enable
    }

    pub fn single_step(&self) -> bool {
        self.cfg.enable && self.cfg.single_step
    }

    /// At an exception entry of `kind` taken from PSTATE `old`: records whether the VMM's
    /// vector catch stops on it.
    pub fn note_entry(&mut self, kind: VectorKind, old: u64) {
        self.caught = self.cfg.enable && self.cfg.vector_catch.catches(kind, CatchSource::of(old));
    }

    /// Consumes a recorded catch: `Some(exit syndrome)` when the entry must be reported (as
    /// KVM reports a hardware breakpoint at the vector entry), unless a VMM single step is in
    /// progress (its step exception at the vector has priority, see `GuestDebug`).
    pub fn take_catch(&mut self) -> Option<(u64, u64)> {
        let caught = std::mem::take(&mut self.caught);
        (caught && !self.single_step()).then(|| (breakpoint_esr(), 0))
    }
}

impl Cpu {
    /// AArch64.GenerateDebugExceptions for the guest's own debug (target EL1): off under the
    /// OS lock, on at EL0, on at EL1 with MDSCR_EL1.KDE = 1 and PSTATE.D = 0.
    pub fn guest_debug_enabled(&self) -> bool {
        self.guest_debug_enabled_at(self.st.el(), self.st.pstate & pstate::D != 0)
    }

    fn guest_debug_enabled_at(&self, el: u8, d_masked: bool) -> bool {
        let s = &self.st.sys;
        !s.os_lock && (el == 0 || (s.mdscr & mdscr::KDE != 0 && !d_masked))
    }

    /// The breakpoint and watchpoint registers live for the VMM's exits: its own with USE_HW;
    /// without it the guest's, while its MDSCR_EL1.MDE is set and its OS lock clear (KVM 6.1
    /// clears MDE under the OS lock). `None`: no comparator is live.
    fn vmm_live_regs(&self) -> Option<[&[u64; 16]; 4]> {
        let c = &self.dbg.cfg;
        let s = &self.st.sys;
        if c.hw {
            Some([&c.bcr, &c.bvr, &c.wcr, &c.wvr])
        } else if s.mdscr & mdscr::MDE != 0 && !s.os_lock {
            Some([&s.dbgbcr, &s.dbgbvr, &s.dbgwcr, &s.dbgwvr])
        } else {
            None
        }
    }

    /// True when no debug feature needs a check between two instructions or on a data
    /// access: no VMM single-step, no live breakpoint or watchpoint comparators (the VMM's
    /// with USE_HW, or the guest's while its MDSCR_EL1.MDE is set) and no guest software
    /// step. Then the run loop may batch instructions (`batch.rs`) and plain RAM accesses skip
    /// the watchpoint check (`fast_mem.rs`). Changing any of these takes a system-class
    /// instruction or a `set_guest_debug`, both of which end a batch.
    #[inline(always)]
    pub fn debug_quiet(&self) -> bool {
        let vmm_needs = self.dbg.single_step() || (self.dbg.cfg.enable && self.dbg.cfg.hw);
        !vmm_needs && self.st.sys.mdscr & (mdscr::SS | mdscr::MDE) == 0
    }

    /// Before the instruction at PC: the debug exceptions taken before it executes. The
    /// guest's software step in the active-pending state, then its breakpoints (exceptions to
    /// its vectors), or with the VMM owning debug a breakpoint exit. `Ok(Some(ldex))` when the
    /// instruction is stepped (by the guest or the VMM), `ldex` telling a load-exclusive.
    #[inline]
    pub fn debug_before(&mut self) -> Result<Option<bool>, Stop> {
        if !self.dbg.cfg.enable && self.st.sys.mdscr & (mdscr::SS | mdscr::MDE) == 0 {
            return Ok(None);
        }
        self.debug_before_slow()
    }

    fn debug_before_slow(&mut self) -> Result<Option<bool>, Stop> {
        let pc = self.st.pc;
        let el = self.st.el();
        if self.dbg.cfg.enable {
            if let Some([bcr, bvr, ..]) = self.vmm_live_regs() {
                let n = NUM_BRPS as usize;
                if debugregs::first_bp_hit(&bcr[..n], &bvr[..n], pc, el).is_some() {
                    return Err(Stop::Debug {
                        esr: breakpoint_esr(),
                        far: 0,
                    });
                }
            }
            return Ok(self.dbg.single_step().then(|| self.peek_load_exclusive()));
        }
        if !self.guest_debug_enabled() {
            return Ok(None);
        }
        let s = &self.st.sys;
        let stepping = s.mdscr & mdscr::SS != 0;
        if stepping && self.st.pstate & pstate::SS == 0 {
            // Active-pending: the step exception, before anything else (D2.12.5).
            let iss = match self.dbg.stepped {
                Some(ldex) => esr::ISS_ISV | if ldex { esr::SS_EX } else { 0 },
                None => 0,
            };
            let class = class_for_el(ec::SOFTSTP_LOW, el);
            return Err(Stop::Exception(Exc::new(class, iss | esr::DEBUG_FSC, pc)));
        }
        if s.mdscr & mdscr::MDE != 0 {
            let n = NUM_BRPS as usize;
            if debugregs::first_bp_hit(&s.dbgbcr[..n], &s.dbgbvr[..n], pc, el).is_some() {
                let class = class_for_el(ec::BREAKPT_LOW, el);
                return Err(Stop::Exception(Exc::new(class, esr::DEBUG_FSC, pc)));
            }
        }
        Ok(stepping.then(|| self.peek_load_exclusive()))
    }

    /// Whether the instruction at PC is a load-exclusive (false if it cannot be fetched: the
    /// fetch fault comes when it runs).
    fn peek_load_exclusive(&mut self) -> bool {
        let pc = self.st.pc;
        self.fetch(pc).is_ok_and(is_load_exclusive)
    }

    /// After an instruction completed in the model. `stepped` is what `debug_before` said:
    /// the guest's step machine moves to active-pending (PSTATE.SS = 0) and remembers the
    /// syndrome of the coming step exception (ISV = 0 if KVM completed the instruction).
    #[inline]
    pub fn debug_after(&mut self, stepped: Option<bool>) {
        self.dbg.stepped = match stepped {
            Some(ldex) if !self.dbg.cfg.enable => {
                self.st.pstate &= !pstate::SS;
                (!self.emulated).then_some(ldex)
            }
            _ => None,
        };
    }

    /// Watchpoints on a data access of `size` bytes at `va` (the one matcher, `a64::debugregs`:
    /// LSC, PAC, BAS byte select, MASK ranges). The FAR is the lowest watched byte the access
    /// touches, as real KVM reports it: an access starting at a watched byte reports its own
    /// address, `strh` to bytes 6-7 watched at byte 7 reports byte 7
    /// (tests/conformance/watch_*.trace). With the VMM owning debug a hit is an exit; else a
    /// watchpoint exception to the guest's EL1 (EC 0x34 from EL0, 0x35 from EL1, WnR, FAR).
    #[inline]
    pub fn watchpoint(&self, va: u64, size: usize, write: bool) -> Result<(), Stop> {
        if !self.dbg.cfg.enable && self.st.sys.mdscr & mdscr::MDE == 0 {
            return Ok(());
        }
        self.watchpoint_slow(va, size, write)
    }

    fn watchpoint_slow(&self, va: u64, size: usize, write: bool) -> Result<(), Stop> {
        // The EL the access is checked at: an LDTR/STTR at EL1 runs with the EL0 view
        // (`debugregs::access_el`, set up in ldst.rs), so PAC matches it as an EL0 access.
        let el = self.st.el();
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
        let n = NUM_WRPS as usize;
        if self.dbg.cfg.enable {
            let Some([.., wcr, wvr]) = self.vmm_live_regs() else {
                return Ok(());
            };
            return match debugregs::first_wp_hit(&wcr[..n], &wvr[..n], &access) {
                Some((_, far)) => Err(Stop::Debug {
                    esr: watchpoint_esr(write),
                    far,
                }),
                None => Ok(()),
            };
        }
        if !self.guest_debug_enabled() {
            return Ok(());
        }
        let s = &self.st.sys;
        match debugregs::first_wp_hit(&s.dbgwcr[..n], &s.dbgwvr[..n], &access) {
            Some((_, far)) => {
                let class = class_for_el(ec::WATCHPT_LOW, el);
                let wnr = if write { esr::DABT_WNR } else { 0 };
                let e = Exc::new(class, wnr | esr::DEBUG_FSC, self.st.pc).with_far(far);
                Err(Stop::Exception(e))
            }
            None => Ok(()),
        }
    }

    /// SPSR_EL1.SS for a synchronous exception of class `class` taken now: PSTATE.SS as the
    /// hardware has it (1 while the VMM single-steps: KVM sets it at entry; else the guest's),
    /// cleared first for SVC when a step is in progress (AArch64.CallSupervisor: SSAdvance,
    /// with MDSCR_EL1.SS as loaded: the VMM's SINGLESTEP, or the guest's unless its OS lock
    /// is set). Seen on KVM 6.1: tests/conformance/guest_step*.trace.
    pub fn exception_spsr_ss(&self, class: u8) -> bool {
        let c = &self.dbg.cfg;
        let s = &self.st.sys;
        let guest_ss = self.st.pstate & pstate::SS != 0;
        let (mdscr_ss, ss) = if c.enable {
            (c.single_step, c.single_step || guest_ss)
        } else {
            (s.mdscr & mdscr::SS != 0 && !s.os_lock, guest_ss)
        };
        ss && !(class == ec::SVC64 && mdscr_ss)
    }

    /// PSTATE.SS after an exception return with `spsr` to `dest_el` (DebugExceptionReturnSS):
    /// SPSR.SS when MDSCR_EL1.SS = 1, debug exceptions are disabled here and enabled at the
    /// destination; else 0. With the VMM owning debug the target is EL2, so debug exceptions
    /// are enabled at EL1 and the result is 0 (KVM restores the guest's own view at the
    /// next exit: `restore_guest_debug_regs`).
    pub fn eret_ss(&self, spsr: u64, dest_el: u8) -> u64 {
        let s = &self.st.sys;
        let returns_ss = !self.dbg.cfg.enable
            && s.mdscr & mdscr::SS != 0
            && !self.guest_debug_enabled()
            && self.guest_debug_enabled_at(dest_el, spsr & pstate::D != 0);
        spsr & pstate::SS & if returns_ss { u64::MAX } else { 0 }
    }
}
