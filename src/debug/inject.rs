//! Re-injection of a synchronous exception into the guest's EL1 (debug exceptions the guest
//! owns, which KVM routes to the VMM while guest debug is on: MDCR_EL2.TDE).
//!
//! Owns the emulation of exception entry to AArch64 EL1 (Arm ARM D1.10 "Exception entry"),
//! done through [`Vcpu`] register accesses only; the entry rules themselves (vectors, class
//! conversion, SPSR and PSTATE) are `a64::exception`'s, shared with the model. Must not depend on `machine` or gdb.
//!
//! Rules implemented, in the order the hardware applies them:
//! - Source state: AArch64 EL0 or EL1 only; AArch32 or EL2+ sources are refused
//!   (`BackendError::Unsupported`) and nothing is written.
//! - ELR_EL1 = the preferred return address = the current PC. KVM reports every debug
//!   exception with the PC AT the instruction (breakpoint, watchpoint, BRK) or AT the next
//!   instruction to step (software step), which is exactly the architectural preferred return
//!   address of each (D2.9, D2.10, D2.12, C6.2.38 "BRK").
//! - SPSR_EL1 = PSTATE before entry (D1.10), with SS as described below.
//! - ESR_EL1 = `esr`, its class converted for the target (D19.2.37 "ESR_EL1" EC table): KVM
//!   reports exceptions taken from the guest as "lower EL" classes; taken from EL1 into EL1
//!   they are "current EL" classes. Pairs: 0x20/0x21 instruction abort, 0x24/0x25 data abort,
//!   0x30/0x31 breakpoint, 0x32/0x33 software step, 0x34/0x35 watchpoint. From EL0 the lower
//!   class is used. BRK (0x3c) and every other class are unchanged.
//! - FAR_EL1 = `far` when given, else left as it is (architecturally UNKNOWN then).
//! - PSTATE: EL1h (M = 0b0101, nRW = 0); D, A, I, F set; SS, IL and BTYPE cleared; UAO
//!   cleared; PAN set when FEAT_PAN is implemented (ID_AA64MMFR1_EL1.PAN != 0) and
//!   SCTLR_EL1.SPAN (bit 23) is 0, else unchanged; SSBS = SCTLR_EL1.DSSBS (bit 44) when
//!   FEAT_SSBS (ID_AA64PFR1_EL1.SSBS != 0); TCO set when FEAT_MTE (ID_AA64PFR1_EL1.MTE != 0).
//!   NZCV, DIT and other fields are kept. FEAT_NMI's ALLINT and later PSTATE features are
//!   not modelled.
//! - PC = VBAR_EL1 bits 63:11 + offset (D1.10.2 "Exception vectors"): 0x000 from EL1 with SP_EL0
//!   (EL1t), 0x200 from EL1 with SP_EL1 (EL1h), 0x400 from EL0 in AArch64. The synchronous
//!   entry is offset 0 within each group.
//!
//! Software step (D2.12 "Software Step exceptions"), as far as re-injection goes:
//! - New PSTATE.SS is 0, and PSTATE.D = 1 masks debug exceptions at EL1, so the guest's own
//!   step machine is inactive in its handler, as on hardware.
//! - When the guest has its own stepping enabled (MDSCR_EL1.SS = 1, read through the vCPU;
//!   KVM returns the guest's value, not the debugger's) and the injected exception is not a
//!   step exception, SPSR_EL1.SS = PSTATE.SS: the instruction did not complete, so the
//!   guest's handler returns into the same step state (active-not-pending stays so).
//! - A re-injected software-step exception means the step completed (active-pending), so
//!   SPSR_EL1.SS = 0.
//! - When the guest's MDSCR_EL1.SS is 0, SPSR_EL1.SS = 0 (no guest step in progress; a
//!   stray SS bit would make the guest's next ERET start a step it never asked for).
//!
//! The debugger's own step state is not PSTATE.SS (KVM keeps it internally) and is not
//! touched here.
//!
//! Writes are not atomic: a backend error part-way leaves the registers written so far.

use crate::a64::esr::{self, ec};
use crate::a64::exception::{
    entry_pstate, entry_spsr, esr_for_el1, vector, EntryFeatures, VectorKind,
};
use crate::a64::fields::mdscr;
use crate::a64::{pstate, sys, Reg};
use crate::backend::{BackendError, Vcpu};

/// Where and how the exception was delivered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InjectedAt {
    /// The new PC: the synchronous vector.
    pub vector: u64,
    /// The ESR_EL1 value written (class converted).
    pub esr: u64,
    /// ELR_EL1: where the guest's handler returns to.
    pub return_addr: u64,
    /// The exception level the exception was taken from.
    pub from_el: u8,
    /// The guest had its own software step enabled (MDSCR_EL1.SS).
    pub guest_step: bool,
}

/// Takes a synchronous exception with syndrome `esr` (and `far`, for aborts and
/// watchpoints) to the guest's EL1 exactly as the hardware would; returns where it went.
pub fn inject_sync_exception(
    vcpu: &mut dyn Vcpu,
    esr_value: u64,
    far: Option<u64>,
) -> Result<InjectedAt, BackendError> {
    let ps = vcpu.get(Reg::Pstate)?;
    if ps & pstate::NRW != 0 {
        return Err(BackendError::Unsupported(format!(
            "inject exception: source state is AArch32 (PSTATE {ps:#x})"
        )));
    }
    let from_el = pstate::el(ps);
    if from_el > 1 {
        return Err(BackendError::Unsupported(format!(
            "inject exception: source EL{from_el} is above the target EL1 (PSTATE {ps:#x})"
        )));
    }
    let pc = vcpu.get(Reg::Pc)?;
    let vbar = vcpu.get(Reg::Sys(sys::VBAR_EL1))?;
    let sctlr = vcpu.get(Reg::Sys(sys::SCTLR_EL1))?;
    let mdscr_value = vcpu.get(Reg::Sys(sys::MDSCR_EL1))?;
    let feats = EntryFeatures::from_id(
        vcpu.get(Reg::Sys(sys::ID_AA64MMFR1_EL1))?,
        vcpu.get(Reg::Sys(sys::ID_AA64PFR1_EL1))?,
    );

    let esr1 = esr_for_el1(esr_value, from_el);
    let step_class = matches!(esr::class(esr1), ec::SOFTSTP_LOW | ec::SOFTSTP_CUR);
    let guest_step = mdscr_value & mdscr::SS != 0;
    let spsr = entry_spsr(ps, guest_step && !step_class && ps & pstate::SS != 0);
    let vector = vector(vbar, ps, VectorKind::Sync);

    vcpu.set(Reg::ElrEl1, pc)?;
    vcpu.set(Reg::SpsrEl1, spsr)?;
    vcpu.set(Reg::Sys(sys::ESR_EL1), esr1)?;
    if let Some(far) = far {
        vcpu.set(Reg::Sys(sys::FAR_EL1), far)?;
    }
    vcpu.set(Reg::Pstate, entry_pstate(ps, feats, sctlr))?;
    vcpu.set(Reg::Pc, vector)?;
    log::debug!(
        "injected {} (esr {esr1:#x}) from EL{from_el} at pc {pc:#x} -> vector {vector:#x}",
        esr::class_name(esr::class(esr1))
    );
    Ok(InjectedAt {
        vector,
        esr: esr1,
        return_addr: pc,
        from_el,
        guest_step,
    })
}

#[cfg(test)]
#[path = "inject_tests.rs"]
mod tests;
