//! The per-vCPU software-step state machine of the VMM (Arm ARM D2.12.3 "The software step
//! state machine": inactive, active-not-pending, active-pending).
//!
//! The backend's own step state is not enough: real KVM advances it only for instructions it
//! emulates itself (MMIO, trapped system registers, in-kernel HVC), and ignores a userspace
//! write of PSTATE.SS. So whenever kvmdbg advances the PC past an instruction it emulated (a
//! NISV load/store) or enters an exception for the guest (a re-injected debug exception), this
//! machine moves to active-pending and the step is complete: the stop is reported without
//! re-entering the guest. See docs/step-state-machine.md.

/// The architectural states, as the VMM tracks them for one vCPU.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum StepState {
    /// No step requested.
    #[default]
    Inactive,
    /// A step was requested; the instruction to step has not completed yet.
    ActiveNotPending,
    /// The stepped instruction completed (in the guest or emulated): the step exception is
    /// due before the next instruction; the VMM reports the stop.
    ActivePending,
}

/// One vCPU's step state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StepMachine {
    state: StepState,
    /// The VMM completes steps it owns (always true, except in the tests that prove the
    /// regression suite fails without it: `machine::TestHooks::no_step_completion`).
    complete_emulated: bool,
}

impl Default for StepMachine {
    fn default() -> Self {
        StepMachine::with_vmm_completion(true)
    }
}

impl StepMachine {
    /// An inactive machine; `complete` false turns off the VMM's own step completion
    /// ([`Self::pc_advanced_by_vmm`], [`Self::exception_entered_by_vmm`]), for the tests only.
    pub fn with_vmm_completion(complete: bool) -> Self {
        StepMachine {
            state: StepState::Inactive,
            complete_emulated: complete,
        }
    }

    pub fn state(&self) -> StepState {
        self.state
    }

    /// A resume with a step (or range step) request.
    pub fn request(&mut self) {
        self.state = StepState::ActiveNotPending;
    }

    /// A resume without stepping, or a reported stop.
    pub fn clear(&mut self) {
        self.state = StepState::Inactive;
    }

    pub fn stepping(&self) -> bool {
        self.state != StepState::Inactive
    }

    /// The VMM advanced the PC past an instruction it emulated (the one PC-advance helper,
    /// `machine::emulate::advance_pc`, calls this): the architectural "clear PSTATE.SS".
    pub fn pc_advanced_by_vmm(&mut self) {
        if self.state == StepState::ActiveNotPending && self.complete_emulated {
            self.state = StepState::ActivePending;
        }
    }

    /// The VMM entered an exception for the guest (re-injection): as on hardware, a step
    /// that takes an exception stops at the vector.
    pub fn exception_entered_by_vmm(&mut self) {
        if self.state == StepState::ActiveNotPending && self.complete_emulated {
            self.state = StepState::ActivePending;
        }
    }

    /// The backend reported the step exception: the step completed in the guest.
    pub fn step_exception(&mut self) {
        if self.state == StepState::ActiveNotPending {
            self.state = StepState::ActivePending;
        }
    }

    /// True when the step is complete and must be reported now, without re-entering.
    pub fn complete(&self) -> bool {
        self.state == StepState::ActivePending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn machine() -> StepMachine {
        StepMachine {
            state: StepState::Inactive,
            complete_emulated: true,
        }
    }

    #[test]
    fn emulation_completes_only_a_requested_step() {
        let mut m = machine();
        m.pc_advanced_by_vmm();
        assert_eq!(m.state(), StepState::Inactive);
        m.request();
        assert!(!m.complete());
        m.pc_advanced_by_vmm();
        assert!(m.complete());
        m.clear();
        assert!(!m.stepping());
    }

    #[test]
    fn injected_exceptions_and_step_exceptions_complete_the_step() {
        let mut m = machine();
        m.request();
        m.exception_entered_by_vmm();
        assert_eq!(m.state(), StepState::ActivePending);
        let mut m = machine();
        m.request();
        m.step_exception();
        assert!(m.complete());
    }

    #[test]
    fn the_test_switch_disables_vmm_completion_only() {
        let mut m = StepMachine {
            state: StepState::Inactive,
            complete_emulated: false,
        };
        m.request();
        m.pc_advanced_by_vmm();
        assert_eq!(m.state(), StepState::ActiveNotPending);
        m.step_exception();
        assert!(m.complete());
    }
}
