//! Exception entry to EL1 (synchronous exceptions and IRQs) and exception return (Arm ARM
//! D1.10 "Exception entry", D1.11 "Exception return"; pseudocode AArch64.TakeException /
//! AArch64.ExceptionReturn).

use crate::a64::esr::{self, ec};
use crate::a64::exception::{
    class_for_el, entry_pstate, entry_spsr, vector, EntryFeatures, VectorKind,
};
use crate::a64::pstate;

use super::Cpu;

/// DFSC/IFSC: synchronous external abort, not on a table walk (Arm ARM D19.2.37, ISS 0b010000).
pub const FSC_EXTERNAL: u8 = 0x10;
/// DFSC: alignment fault (0b100001).
pub const FSC_ALIGNMENT: u8 = 0x21;
/// The PSTATE fields the model implements: the ones ERET restores. PAN, UAO, DIT, SSBS, TCO
/// and the other fields of features the ID registers do not advertise are RES0 here.
const PSTATE_IMPLEMENTED: u64 = pstate::NZCV_MASK
    | pstate::SS
    | pstate::DAIF_MASK
    | pstate::M_MASK
    | pstate::IL
    | pstate::BTYPE_MASK;

/// A synchronous exception to take to EL1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Exc {
    pub ec: u8,
    pub iss: u64,
    /// FAR_EL1, for the classes that set it (aborts, PC alignment, watchpoints).
    pub far: Option<u64>,
    /// The preferred return address (ELR_EL1).
    pub ret: u64,
}

impl Exc {
    pub fn new(ec: u8, iss: u64, ret: u64) -> Self {
        Exc {
            ec,
            iss,
            far: None,
            ret,
        }
    }
    pub fn with_far(mut self, far: u64) -> Self {
        self.far = Some(far);
        self
    }
    /// The ESR_EL1 value: every A64 synchronous exception the model takes reports IL=1.
    pub fn esr(&self) -> u64 {
        esr::make(self.ec, true, self.iss)
    }
}

impl Cpu {
    /// A data abort at `va` with fault status `fsc` (EC 0x24 from EL0, 0x25 from EL1).
    pub fn dabt(&self, va: u64, write: bool, fsc: u8) -> Exc {
        let class = class_for_el(ec::DABT_LOW, self.st.el());
        let wnr = if write { esr::DABT_WNR } else { 0 };
        Exc::new(class, wnr | fsc as u64, self.st.pc).with_far(va)
    }

    /// An instruction abort at `va` (EC 0x20 from EL0, 0x21 from EL1).
    pub fn iabt(&self, va: u64, fsc: u8) -> Exc {
        let class = class_for_el(ec::IABT_LOW, self.st.el());
        Exc::new(class, fsc as u64, va).with_far(va)
    }

    /// Takes `e` to EL1: ESR/ELR/SPSR/FAR, PSTATE = EL1h with DAIF set and SS/IL/BTYPE clear,
    /// PC = VBAR_EL1 + 0x000 (EL1t), 0x200 (EL1h) or 0x400 (from EL0). SPSR.SS as the step
    /// machine says (`Cpu::exception_spsr_ss`: SVC advances it first).
    pub fn take_exception(&mut self, e: &Exc) {
        let ss = self.exception_spsr_ss(e.ec);
        let s = &mut self.st.sys;
        s.esr = e.esr();
        if let Some(far) = e.far {
            s.far = far;
        }
        self.enter_el1(e.ret, ss, VectorKind::Sync);
        log::trace!(
            "model: exception EC {:#x} ({}) ESR {:#x} ELR {:#x} -> {:#x}",
            e.ec,
            esr::class_name(e.ec),
            e.esr(),
            e.ret,
            self.st.pc
        );
    }

    /// Takes an IRQ to EL1 before the instruction at PC (Arm ARM D1.10 "Exception entry"):
    /// ELR_EL1 = that instruction, SPSR_EL1 = PSTATE (with SS also set by `step_ss`: KVM sets
    /// PSTATE.SS when it enters the guest to step it, and the guest's SPSR_EL1 records it),
    /// PC = the IRQ vector: VBAR_EL1 + 0x080 (EL1t), 0x280 (EL1h) or 0x480 (from EL0).
    pub fn take_irq(&mut self, step_ss: bool) {
        let ss = step_ss || self.st.pstate & pstate::SS != 0;
        self.enter_el1(self.st.pc, ss, VectorKind::Irq);
        log::trace!(
            "model: IRQ, ELR {:#x} SPSR {:#x} -> {:#x}",
            self.st.sys.elr,
            self.st.sys.spsr,
            self.st.pc
        );
    }

    /// Exception entry to EL1h (`a64::exception`): ELR = `ret`, SPSR = PSTATE with SS = `ss`,
    /// PSTATE = EL1h with NZCV kept and DAIF set (the model implements no feature that sets
    /// more on entry), PC = the vector of `kind` for the current state. A step exception
    /// after this one reports ISV = 0. The VMM's vector catch is noted (`DebugCtl::note_entry`)
    /// for the run loop to report.
    fn enter_el1(&mut self, ret: u64, ss: bool, kind: VectorKind) {
        let old = self.st.pstate & PSTATE_IMPLEMENTED;
        let s = &mut self.st.sys;
        s.spsr = entry_spsr(self.st.pstate, ss);
        s.elr = ret;
        self.dbg.stepped = None;
        self.dbg.note_entry(kind, old);
        self.st.pstate = entry_pstate(old, EntryFeatures::default(), s.sctlr);
        self.st.pc = vector(s.vbar, old, kind);
    }

    /// ERET: restores PSTATE from SPSR_EL1 and PC from ELR_EL1. A return to an EL or mode the
    /// model does not have (EL2/EL3, AArch32, EL0 with SP_EL1) is an illegal return:
    /// PSTATE.IL is set and EL/SP stay as they are (Arm ARM D1.11.4 "Illegal return events").
    /// PSTATE.SS comes from SPSR_EL1.SS only as DebugExceptionReturnSS allows (`eret_ss`).
    pub fn eret(&mut self) {
        let spsr = self.st.sys.spsr;
        let m = spsr & 0x1f;
        let legal = matches!(m, 0b00000 | 0b00100 | 0b00101);
        let mask = PSTATE_IMPLEMENTED;
        let next = if legal {
            spsr & mask
        } else {
            (spsr & mask & !pstate::M_MASK) | (self.st.pstate & pstate::M_MASK) | pstate::IL
        };
        let ss = self.eret_ss(spsr, pstate::el(next));
        self.st.pstate = (next & !pstate::SS) | ss;
        self.next_pc = self.st.sys.elr;
        self.monitor = None;
        // A step over ERET reports ISV = 1 like any instruction executed in the guest (real
        // KVM 6.1: tests/conformance/step_svc.trace).
    }
}
