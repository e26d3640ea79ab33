//! Interrupts held off during a debugger's single step, invisibly to the guest.
//!
//! A step with an interrupt pending and unmasked would end at the IRQ vector (the exception is
//! taken before the instruction, and exception entry ends the step), so `stepi` would land in
//! the interrupt handler. Like QEMU's gdbstub (its default step flags include "no IRQ"), kvmdbg
//! holds off IRQ and FIQ (PSTATE.I and F, Arm ARM D1.4 "Process state, PSTATE") for each step
//! when the guest has either unmasked, and makes sure the guest sees exactly what it would
//! have seen without that:
//! - at EL1, the instructions that read or write DAIF (`MRS Xt, DAIF`, `MSR DAIF, Xt`,
//!   `MSR DAIFSet/DAIFClr, #imm`) are not run in the guest at all: kvmdbg performs them on the
//!   guest's own PSTATE and completes the step ([`Plan::Emulate`]). Running them under the
//!   mask would show the mask to `MRS`, and one that unmasks would let a pending interrupt in
//!   right after it, inside the step;
//! - `ERET` (and ERETAA/ERETAB) takes PSTATE from SPSR_EL1: the mask is put in SPSR_EL1 for the
//!   step, so the return target does not take the interrupt either, and taken out of both
//!   SPSR_EL1 and the new PSTATE afterwards;
//! - an exception taken by the stepped instruction (SVC, an abort, UNDEFINED, a re-injected
//!   debug exception): PSTATE at the vector is fully masked by the architecture (D1.10.2
//!   "Exception entry"), but SPSR_EL1 saved the mask: its I and F bits are restored;
//! - at EL0 (where DAIF accesses only run with SCTLR_EL1.UMA set), `MRS` results are
//!   corrected and `MSR` writes kept after the step;
//! - anything else, including an instruction that did not run (breakpoint, watchpoint, pause):
//!   PSTATE's I and F are restored.
//!
//! Owns only these decisions and fix-ups; the thread that runs the step applies an emulation
//! through the machine's one PC-advance helper. Depends on the backend's `Vcpu` trait and
//! `a64`; must not depend on `machine` or `gdb`.

use crate::a64::{pstate, sys, Reg};
use crate::backend::{Result, Vcpu};

/// The interrupt masks kvmdbg sets while stepping: IRQ and FIQ (PSTATE.I, PSTATE.F).
const HELD_OFF: u64 = pstate::I | pstate::F;

/// Whether a step from this PSTATE needs interrupts held off (IRQ or FIQ unmasked). (The
/// tests that prove the suite notices a step landing in the interrupt handler skip the
/// masking through `machine::TestHooks::no_irq_mask` instead of asking.)
pub fn wanted(pstate_value: u64) -> bool {
    pstate_value & HELD_OFF != HELD_OFF
}

/// What an instruction does to PSTATE.{D,A,I,F}, as far as the masking is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DaifEffect {
    /// Neither reads nor writes DAIF directly.
    None,
    /// `MRS Xt, DAIF` (Rt 31 is XZR).
    Read { rt: u8 },
    /// `MSR DAIF, Xt`: all four bits written (Rt 31 is XZR).
    WriteAll { rt: u8 },
    /// `MSR DAIFSet` (`set`) or `MSR DAIFClr, #imm`: the PSTATE bits it sets or clears.
    Write { bits: u64, set: bool },
    /// `ERET`, `ERETAA`, `ERETAB`: PSTATE restored from SPSR_EL1.
    ExceptionReturn,
}

/// Instruction bits 19:5 of `MRS`/`MSR (register)` naming DAIF: o0 1 (op0 3), op1 3, CRn 4,
/// CRm 2, op2 1 (Arm ARM C5.2.2 "DAIF"; C6.2 "MRS" field layout).
const DAIF_SYSREG_FIELD: u32 = (1 << 14) | (3 << 11) | (4 << 7) | (2 << 3) | 1;

/// Classifies an A64 instruction word (Arm ARM C6.2: MRS, MSR (register), MSR (immediate),
/// ERET, ERETAA/ERETAB).
pub fn classify(insn: u32) -> DaifEffect {
    const MRS_MSR_MASK: u32 = 0xffd0_0000; // bits 31:22 and 20: MRS/MSR (register), op0 2 or 3
    if insn & MRS_MSR_MASK == 0xd510_0000 && (insn >> 5) & 0x7fff == DAIF_SYSREG_FIELD {
        let rt = (insn & 0x1f) as u8;
        return if insn & (1 << 21) != 0 {
            DaifEffect::Read { rt }
        } else {
            DaifEffect::WriteAll { rt }
        };
    }
    // MSR (immediate): 1101 0101 0000 0 op1 0100 CRm op2 11111; DAIFSet op1 3 op2 6,
    // DAIFClr op1 3 op2 7; CRm holds D A I F in bits 3..0 (PSTATE bits 9..6).
    let msr_imm = insn & 0xffff_f0ff; // all but CRm
    if msr_imm == 0xd503_40df || msr_imm == 0xd503_40ff {
        let imm = (insn >> 8) & 0xf;
        return DaifEffect::Write {
            bits: u64::from(imm) << 6,
            set: msr_imm == 0xd503_40df,
        };
    }
    match insn {
        0xd69f_03e0 | 0xd69f_0bff | 0xd69f_0fff => DaifEffect::ExceptionReturn,
        _ => DaifEffect::None,
    }
}

/// How one step runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Plan {
    /// Interrupts are masked by the guest already: run the step as it is.
    AsIs,
    /// Do not enter the guest: write PSTATE and, if given, one X register, then advance the
    /// PC past the instruction (the step is complete).
    Emulate { pstate: u64, xt: Option<(u8, u64)> },
    /// The step runs with interrupts held off; [`MaskedStep::finish`] undoes it.
    Masked(MaskedStep),
}

/// A step running with interrupts held off.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MaskedStep {
    pc: u64,
    /// The PSTATE bits kvmdbg set (the guest had them clear).
    added: u64,
    /// The SPSR_EL1 bits kvmdbg set for an `ERET`.
    spsr_added: u64,
    effect: DaifEffect,
}

/// Before a step: decides how it runs and, for [`Plan::Masked`], sets the mask. `insn` is the
/// instruction at the PC (None when it cannot be read: it is then treated as one that does
/// not touch DAIF).
pub fn plan(vcpu: &mut dyn Vcpu, insn: Option<u32>) -> Result<Plan> {
    let p = vcpu.get(Reg::Pstate)?;
    if !wanted(p) {
        return Ok(Plan::AsIs);
    }
    let effect = insn.map_or(DaifEffect::None, classify);
    let at_el1 = (p & pstate::M_MASK) >> 2 == 1;
    if at_el1 {
        if let Some(e) = emulation(vcpu, p, effect)? {
            return Ok(e);
        }
    }
    let added = HELD_OFF & !p;
    let mut spsr_added = 0;
    if effect == DaifEffect::ExceptionReturn {
        let spsr = vcpu.get(Reg::SpsrEl1)?;
        spsr_added = HELD_OFF & !spsr;
        vcpu.set(Reg::SpsrEl1, spsr | spsr_added)?;
    }
    let pc = vcpu.get(Reg::Pc)?;
    vcpu.set(Reg::Pstate, p | added)?;
    Ok(Plan::Masked(MaskedStep {
        pc,
        added,
        spsr_added,
        effect,
    }))
}

/// The result of a DAIF access at EL1, computed on the guest's own PSTATE `p` (Arm ARM C5.2.2
/// "DAIF": bits 9:6 in the register and in PSTATE alike).
fn emulation(vcpu: &mut dyn Vcpu, p: u64, effect: DaifEffect) -> Result<Option<Plan>> {
    let plan = match effect {
        DaifEffect::Read { rt } => Plan::Emulate {
            pstate: p,
            xt: (rt < 31).then_some((rt, p & pstate::DAIF_MASK)),
        },
        DaifEffect::WriteAll { rt } => {
            let x = if rt < 31 { vcpu.get(Reg::X(rt))? } else { 0 };
            Plan::Emulate {
                pstate: (p & !pstate::DAIF_MASK) | (x & pstate::DAIF_MASK),
                xt: None,
            }
        }
        DaifEffect::Write { bits, set } => Plan::Emulate {
            pstate: if set { p | bits } else { p & !bits },
            xt: None,
        },
        DaifEffect::None | DaifEffect::ExceptionReturn => return Ok(None),
    };
    Ok(Some(plan))
}

impl MaskedStep {
    /// After the step, whatever ended it: puts back what the guest would see unmasked.
    pub fn finish(self, vcpu: &mut dyn Vcpu) -> Result<()> {
        let pc = vcpu.get(Reg::Pc)?;
        let moved = pc != self.pc;
        if moved && self.took_exception(vcpu, pc)? {
            // SPSR_EL1 was just written by the exception entry, from the masked PSTATE.
            let spsr = vcpu.get(Reg::SpsrEl1)?;
            return vcpu.set(Reg::SpsrEl1, spsr & !self.added);
        }
        if self.spsr_added != 0 {
            let spsr = vcpu.get(Reg::SpsrEl1)?;
            vcpu.set(Reg::SpsrEl1, spsr & !self.spsr_added)?;
        }
        if moved && self.effect == DaifEffect::ExceptionReturn {
            // PSTATE came from SPSR_EL1, with kvmdbg's additions in it.
            let p = vcpu.get(Reg::Pstate)?;
            return vcpu.set(Reg::Pstate, p & !self.spsr_added);
        }
        let sequential = pc == self.pc.wrapping_add(4);
        let restore = match self.effect {
            DaifEffect::WriteAll { .. } if sequential => 0,
            DaifEffect::Write { bits, .. } if sequential => self.added & !bits,
            DaifEffect::Read { rt } if sequential => {
                if rt < 31 {
                    let x = vcpu.get(Reg::X(rt))?;
                    vcpu.set(Reg::X(rt), x & !self.added)?;
                }
                self.added
            }
            _ => self.added,
        };
        if restore != 0 {
            let p = vcpu.get(Reg::Pstate)?;
            vcpu.set(Reg::Pstate, p & !restore)?;
        }
        Ok(())
    }

    /// Whether the step ended on exception entry caused by the stepped instruction: the PC at
    /// one of the 16 entries of VBAR_EL1's table (Arm ARM D1.10.2, 0x80 apart) and ELR_EL1 at
    /// the instruction (aborts, UNDEFINED, debug exceptions) or just past it (SVC). With
    /// interrupts held off, no asynchronous exception can be the cause.
    fn took_exception(&self, vcpu: &mut dyn Vcpu, pc: u64) -> Result<bool> {
        let vbar = vcpu.get(Reg::Sys(sys::VBAR_EL1))?;
        let off = pc.wrapping_sub(vbar);
        if off >= 0x800 || off % 0x80 != 0 {
            return Ok(false);
        }
        let elr = vcpu.get(Reg::ElrEl1)?;
        Ok(elr == self.pc || elr == self.pc.wrapping_add(4))
    }
}

#[cfg(test)]
#[path = "irqmask_tests.rs"]
mod tests;
