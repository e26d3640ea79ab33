//! Vector catch: stopping a vCPU when it takes an exception, at the vector, for every backend.
//!
//! Owns the catch set the debugger asked for, the record of the last catch (the guest's
//! syndrome registers at the vector) and the decision whether a breakpoint exit at a vector
//! entry is a catch. Two mechanisms, one classification:
//! - a backend with `Caps::exact_vector_catch` (the model) is given the set in
//!   `GuestDebug::vector_catch` and reports an exception entry, with the PC at the vector, as
//!   the breakpoint exit KVM gives for a hardware breakpoint there;
//! - otherwise (KVM) the state plants hardware breakpoints on the vector entries of the
//!   vCPU's VBAR_EL1 (`VectorCatch::slots`), sharing the slots with the user's `hbreak`s.
//!   The vCPU thread reads VBAR_EL1 before every entry into the guest while a catch is set
//!   and the entries follow it (`DebugPolicy::needs_vbar`). KVM does not trap VBAR_EL1
//!   writes (HCR_EL2.TVM covers other registers), so a guest that moves VBAR_EL1 and takes
//!   an exception before its next exit to the VMM is not caught.
//!
//! A breakpoint at an entry also fires when the guest merely branches there. It is a catch
//! only when the vCPU's state is that of an exception entry (`a64::vcatch::looks_like_entry`:
//! EL1h with DAIF masked, SPSR_EL1 from the group's mode, the exception's mask clear in
//! SPSR_EL1); otherwise the vCPU executes the instruction with that breakpoint lifted and
//! goes on. A branch in exactly the entry state is indistinguishable and is reported as a
//! catch.
//!
//! Must not depend on `machine` or gdb.

use crate::a64::exception::VectorKind;
use crate::a64::vcatch::{decode_slot, looks_like_entry, CatchSource, VectorCatch};
use crate::a64::{sys, Reg};
use crate::backend::{BackendError, Vcpu};

/// What a catch saw: where, which exception, and the guest's syndrome registers at the vector.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CatchRecord {
    pub vcpu: usize,
    pub kind: VectorKind,
    pub source: CatchSource,
    /// The vector entry (the PC at the stop).
    pub vector: u64,
    pub esr: u64,
    pub far: u64,
    pub elr: u64,
    pub spsr: u64,
}

impl CatchRecord {
    /// Reads the syndrome registers of `vcpu`, stopped at `vector`.
    pub fn read(
        vcpu: &mut dyn Vcpu,
        kind: VectorKind,
        source: CatchSource,
        vector: u64,
    ) -> Result<CatchRecord, BackendError> {
        Ok(CatchRecord {
            vcpu: vcpu.index(),
            kind,
            source,
            vector,
            esr: vcpu.get(Reg::Sys(sys::ESR_EL1))?,
            far: vcpu.get(Reg::Sys(sys::FAR_EL1))?,
            elr: vcpu.get(Reg::ElrEl1)?,
            spsr: vcpu.get(Reg::SpsrEl1)?,
        })
    }

    /// One line for gdb's console and `monitor catch`. ESR_EL1 and FAR_EL1 belong to the
    /// synchronous exception: for an interrupt they hold what an earlier exception left.
    pub fn describe(&self) -> String {
        let syndrome = match self.kind {
            VectorKind::Sync => {
                let class = crate::a64::esr::class(self.esr);
                format!(
                    " ({}) ESR_EL1={:#x} FAR_EL1={:#x}",
                    crate::a64::esr::class_name(class),
                    self.esr,
                    self.far
                )
            }
            _ => String::new(),
        };
        format!(
            "vector catch: vCPU {} took {} from {} at vector {:#x}{syndrome} ELR_EL1={:#x} \
             SPSR_EL1={:#x}",
            self.vcpu,
            kind_text(self.kind),
            self.source.name().to_uppercase(),
            self.vector,
            self.elr,
            self.spsr
        )
    }
}

fn kind_text(kind: VectorKind) -> &'static str {
    match kind {
        VectorKind::Sync => "a synchronous exception",
        VectorKind::Irq => "an IRQ",
        VectorKind::Fiq => "an FIQ",
        VectorKind::SError => "an SError",
    }
}

/// What a breakpoint exit at `pc` means for the catch set `set`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AtVector {
    /// Not a caught vector entry.
    No,
    /// An exception entry the set catches.
    Caught(CatchRecord),
    /// A caught entry reached without taking the exception (a branch).
    Branch,
}

/// Classifies a breakpoint exit of `vcpu` at `pc` (see the module docs).
pub fn classify(vcpu: &mut dyn Vcpu, set: VectorCatch, pc: u64) -> Result<AtVector, BackendError> {
    if set.is_empty() {
        return Ok(AtVector::No);
    }
    let vbar = vcpu.get(Reg::Sys(sys::VBAR_EL1))?;
    let Some((kind, group)) = decode_slot(vbar, pc) else {
        return Ok(AtVector::No);
    };
    if !set.catches(kind, group.source()) {
        return Ok(AtVector::No);
    }
    let pstate = vcpu.get(Reg::Pstate)?;
    let spsr = vcpu.get(Reg::SpsrEl1)?;
    if !looks_like_entry(kind, group, pstate, spsr) {
        log::debug!(
            "vCPU {}: at vector {pc:#x} without an exception entry (PSTATE {pstate:#x}, \
             SPSR_EL1 {spsr:#x}): not a catch",
            vcpu.index()
        );
        return Ok(AtVector::Branch);
    }
    Ok(AtVector::Caught(CatchRecord::read(
        vcpu,
        kind,
        group.source(),
        pc,
    )?))
}

/// Parses `monitor catch exceptions` arguments: kinds (`sync`, `irq`, `fiq`, `serror`, `all`)
/// and sources (`el0`, `el1`), in any order; no kind means all, no source means both.
pub fn parse_catch<'a>(words: impl IntoIterator<Item = &'a str>) -> Result<VectorCatch, String> {
    let mut kinds = Vec::new();
    let mut sources = Vec::new();
    for w in words {
        let w = w.to_ascii_lowercase();
        match w.as_str() {
            "all" => kinds.extend(VectorKind::ALL),
            "el0" => sources.push(CatchSource::El0),
            "el1" => sources.push(CatchSource::El1),
            other => match VectorKind::ALL.into_iter().find(|k| k.name() == other) {
                Some(k) => kinds.push(k),
                None => {
                    return Err(format!(
                        "unknown word {other:?}: expected sync, irq, fiq, serror, all, el0, el1"
                    ))
                }
            },
        }
    }
    if kinds.is_empty() {
        kinds.extend(VectorKind::ALL);
    }
    if sources.is_empty() {
        sources.extend(CatchSource::ALL);
    }
    Ok(kinds.iter().fold(VectorCatch::NONE, |c, k| {
        sources.iter().fold(c, |c, s| c.with(*k, *s))
    }))
}

#[cfg(test)]
#[path = "vcatch_tests.rs"]
mod tests;
