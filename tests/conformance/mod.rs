//! Conformance scenarios (see tests/kvm_conformance.rs).

#![allow(dead_code)]

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
    /// Re-inject the exception into the guest as the EL1 exception it would have taken.
    Reinject,
}
