//! Conformance scenarios (see tests/kvm_conformance.rs).

#![allow(dead_code)]

pub mod guest_programs;
pub mod programs;
pub mod scenarios;

/// What the VMM does at each debug exit of a scenario.
#[derive(Clone, Copy, Debug)]
pub enum OnDebug {
    /// Re-enter the guest unchanged.
    Continue,
    /// Advance the PC past the instruction (the one PC-advance helper).
    SkipInstruction,
    /// Load a configuration without hardware breakpoints/watchpoints, then continue.
    DisarmHw,
    /// Stop single-stepping, then continue.
    StopStepping,
    /// Re-inject the exception into the guest as the EL1 exception it would have taken (with
    /// the FAR for a watchpoint).
    Reinject,
    /// A VMM that owns hardware breakpoint 0 and nothing else: a hit there disarms the
    /// hardware breakpoints and watchpoints and continues; every other debug exit is the
    /// guest's and is re-injected.
    OwnOrReinject,
}
