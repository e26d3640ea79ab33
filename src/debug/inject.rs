//! Re-injection of a synchronous exception into the guest's EL1 (debug exceptions the guest
//! owns, which KVM routes to the VMM while guest debug is on: MDCR_EL2.TDE).
//!
//! Owns the emulation of exception entry to AArch64 EL1 (Arm ARM D1.10 "Exception entry"),
//! done through [`Vcpu`] register accesses only. Must not depend on `machine` or gdb.
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
//! - PC = VBAR_EL1[63:11] + offset (D1.10.2 "Exception vectors"): 0x000 from EL1 with SP_EL0
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
use crate::a64::{pstate, sys, Reg};
use crate::backend::{BackendError, Vcpu};

/// Vector offsets from VBAR_EL1 (D1.10.2 "Exception vectors", table of vector offsets).
pub const VECTOR_CUR_SP0: u64 = 0x000;
pub const VECTOR_CUR_SPX: u64 = 0x200;
pub const VECTOR_LOWER_A64: u64 = 0x400;
/// VBAR_EL1 bits [10:0] are RES0 (D19.2 "VBAR_EL1").
const VBAR_MASK: u64 = !0x7ff;
/// SCTLR_EL1.SPAN (bit 23) and DSSBS (bit 44) (D19.2 "SCTLR_EL1").
const SCTLR_SPAN: u64 = 1 << 23;
const SCTLR_DSSBS: u64 = 1 << 44;
/// MDSCR_EL1.SS (bit 0) (D19.3 "MDSCR_EL1").
const MDSCR_SS: u64 = 1;

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

/// Implemented features that change PSTATE on exception entry.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct EntryFeatures {
    pan: bool,
    ssbs: bool,
    mte: bool,
}

impl EntryFeatures {
    /// ID_AA64MMFR1_EL1.PAN [23:20]; ID_AA64PFR1_EL1.SSBS [7:4], MTE [11:8] (D19.2).
    fn from_id(mmfr1: u64, pfr1: u64) -> Self {
        let nz = |v: u64, lo: u32| (v >> lo) & 0xf != 0;
        EntryFeatures {
            pan: nz(mmfr1, 20),
            ssbs: nz(pfr1, 4),
            mte: nz(pfr1, 8),
        }
    }
}

/// The (lower EL, current EL) class pair an exception class belongs to, if any.
fn class_pair(class: u8) -> Option<(u8, u8)> {
    [
        (ec::IABT_LOW, ec::IABT_CUR),
        (ec::DABT_LOW, ec::DABT_CUR),
        (ec::BREAKPT_LOW, ec::BREAKPT_CUR),
        (ec::SOFTSTP_LOW, ec::SOFTSTP_CUR),
        (ec::WATCHPT_LOW, ec::WATCHPT_CUR),
    ]
    .into_iter()
    .find(|&(lo, cur)| class == lo || class == cur)
}

/// `esr` with its class converted for an exception taken from `from_el` to EL1.
pub fn esr_for_el1(esr_value: u64, from_el: u8) -> u64 {
    let class = esr::class(esr_value);
    let new = match class_pair(class) {
        Some((_, cur)) if from_el == 1 => cur,
        Some((lo, _)) => lo,
        None => class,
    };
    (esr_value & !(0x3f << 26)) | ((new as u64) << 26)
}

/// PSTATE after entry to EL1h from `old` (see the module docs).
fn entry_pstate(old: u64, feats: EntryFeatures, sctlr: u64) -> u64 {
    let mut p = old
        & !(pstate::M_MASK
            | pstate::NRW
            | pstate::SS
            | pstate::IL
            | pstate::BTYPE_MASK
            | pstate::UAO);
    p |= pstate::MODE_EL1H | pstate::DAIF_MASK;
    if feats.pan && sctlr & SCTLR_SPAN == 0 {
        p |= pstate::PAN;
    }
    if feats.ssbs {
        p = (p & !pstate::SSBS)
            | if sctlr & SCTLR_DSSBS != 0 {
                pstate::SSBS
            } else {
                0
            };
    }
    if feats.mte {
        p |= pstate::TCO;
    }
    p
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
    let mdscr = vcpu.get(Reg::Sys(sys::MDSCR_EL1))?;
    let feats = EntryFeatures::from_id(
        vcpu.get(Reg::Sys(sys::ID_AA64MMFR1_EL1))?,
        vcpu.get(Reg::Sys(sys::ID_AA64PFR1_EL1))?,
    );

    let esr1 = esr_for_el1(esr_value, from_el);
    let step_class = matches!(esr::class(esr1), ec::SOFTSTP_LOW | ec::SOFTSTP_CUR);
    let guest_step = mdscr & MDSCR_SS != 0;
    let spsr = if guest_step && !step_class {
        ps
    } else {
        ps & !pstate::SS
    };
    let offset = match (from_el, pstate::uses_sp_elx(ps)) {
        (0, _) => VECTOR_LOWER_A64,
        (_, false) => VECTOR_CUR_SP0,
        (_, true) => VECTOR_CUR_SPX,
    };
    let vector = (vbar & VBAR_MASK) + offset;

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
