//! Test hooks: switches that turn off one of kvmdbg's mechanisms, or reproduce one known
//! backend bug, so that a regression test can prove it detects the difference ("the suite
//! bites", docs/testing.md). All off by default; set only by tests through
//! [`super::MachineConfig::test_hooks`], never from the command line or the environment.
//!
//! Owns nothing but the switches; the machine hands each to the layer that reads it
//! (`vcpu_thread` for the step mechanisms, `backend::VmConfig` for the model).

/// Which mechanisms a test switches off. `TestHooks::default()` is the shipped behaviour.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TestHooks {
    /// Do not hold off interrupts during a step (`debug::irqmask`): a step with an interrupt
    /// pending then lands in the interrupt handler.
    pub no_irq_mask: bool,
    /// Do not complete a step when the VMM advances the PC past an instruction it emulated or
    /// enters an exception for the guest (`debug::step`): the stop then comes one
    /// instruction late.
    pub no_step_completion: bool,
    /// Model backend only: its PC advance after an emulated instruction leaves PSTATE.SS set,
    /// the pre-fix kernel bug (`backend::VmConfig::model_keep_ss_bug`).
    pub model_keep_ss: bool,
}
