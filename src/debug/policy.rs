//! The debug layer's hooks into the vCPU run loop: what a debug exception means (ours to
//! stop on, the guest's to re-inject, or a fault) and which guest-debug configuration the
//! vCPUs run with.
//!
//! Owns the decision types; the machine's vCPU threads call them. Must not depend on
//! `machine` or gdb.

use crate::a64::exception::VectorKind;
use crate::a64::vcatch::CatchSource;
use crate::backend::{GuestDebug, Vcpu};

/// What the debug policy recognised a debug exception as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopKind {
    SwBreak,
    HwBreak,
    Watch {
        index: usize,
        addr: u64,
    },
    Step,
    /// The vCPU took an exception the vector catch stops on; it is at the vector
    /// (`debug::vcatch`; the syndrome is in `DebugState::last_catch`).
    VectorCatch {
        kind: VectorKind,
        source: CatchSource,
    },
    /// Not the debugger's and not re-injectable: reported as is.
    Other,
}

/// The debug layer's decision on a debug exit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Stop and report to the debugger.
    Stop(StopKind),
    /// Handled (e.g. re-injected into the guest as the exception it would have taken): keep
    /// running. `step_complete` is true when the handling completed a requested step (an
    /// exception taken during a step stops at the vector, as on hardware).
    Handled { step_complete: bool },
    /// A hardware breakpoint of ours at a vector entry the guest reached without taking an
    /// exception (`debug::vcatch`): execute that one instruction with the breakpoint lifted
    /// and go on as before.
    PassOver,
    /// No debugger owns this exception and it cannot be handled: a guest fault.
    Fault(String),
}

/// The debug layer's hooks into the vCPU threads.
pub trait DebugPolicy: Send + Sync {
    /// Decides on a debug exit of `vcpu`; `stepping` is true when a step was requested.
    fn on_debug_exit(&self, vcpu: &mut dyn Vcpu, esr: u64, far: u64, stepping: bool) -> Verdict;
    /// The guest-debug configuration a vCPU should run with (without single-step), and a
    /// generation number that changes whenever the plan does. `vbar` is the vCPU's VBAR_EL1
    /// when [`DebugPolicy::needs_vbar`] (the configuration then also depends on it), else
    /// `None`.
    fn guest_debug(&self, vbar: Option<u64>) -> (u64, GuestDebug);
    /// True when the configuration depends on the vCPU's VBAR_EL1 (a vector catch made of
    /// hardware breakpoints): the vCPU thread reads it before every entry into the guest.
    fn needs_vbar(&self) -> bool {
        false
    }
}

/// The policy with no debugger attached: every debug exit is a guest fault.
pub struct NoDebugger;

impl DebugPolicy for NoDebugger {
    fn on_debug_exit(&self, _: &mut dyn Vcpu, esr: u64, far: u64, _: bool) -> Verdict {
        let ec = crate::a64::esr::class(esr);
        Verdict::Fault(format!(
            "unexpected debug exit ({}, esr {esr:#x}, far {far:#x}) with no debugger",
            crate::a64::esr::class_name(ec)
        ))
    }
    fn guest_debug(&self, _: Option<u64>) -> (u64, GuestDebug) {
        (0, GuestDebug::default())
    }
}
