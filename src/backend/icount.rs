//! The deterministic clock's interface to the rest of kvmdbg: the guest clock in instructions
//! and the log of inputs from outside the guest, each stamped with the guest clock at which
//! it took effect.
//!
//! Owns the value types ([`Input`], [`InputEvent`]) and the [`Recorder`] trait a backend with a
//! deterministic clock implements (the model with `VmConfig::icount`; see
//! `model/icount.rs` for the clock and the vCPU interleaving). Devices and the debugger
//! session record what they apply through a `Recorder`; a device whose host side delivers
//! input at any moment (the UART's console) is a [`HostInput`] that the clock's turn holder
//! asks for that input at points fixed by the clock. Nothing here depends on them.

use crate::a64::Reg;

/// An input from outside the guest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    /// Bytes a console device received from its host side (made visible to the guest).
    Console { device: u64, bytes: Vec<u8> },
    /// The debugger wrote guest memory (`len` bytes at the virtual address `addr` of the
    /// vCPU the event names).
    MemoryWrite { addr: u64, data: Vec<u8> },
    /// The debugger wrote a register.
    RegisterWrite { reg: Reg, value: u128 },
    /// A kick (Ctrl-C, a debugger's pause) stopped a vCPU that was executing instructions.
    Interrupt,
}

/// One recorded input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InputEvent {
    /// The guest clock (instructions executed by all vCPUs, plus the time WFI skipped) at
    /// which the input took effect.
    pub at: u64,
    /// The vCPU it applied to, if any.
    pub vcpu: Option<usize>,
    pub input: Input,
}

/// What an idle machine (every vCPU in WFI with no timer armed) can expect from a
/// [`HostInput`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HostWake {
    /// Input is ready to be admitted now.
    Ready,
    /// Nothing yet, but the host side is open: input may arrive (the waker is called then).
    Later,
    /// Nothing will come (the host side is closed, or a replay has nothing left).
    Never,
}

/// A device's host side under the deterministic clock: input the host delivered at any
/// moment waits here until the vCPU holding the turn admits it, at the start of each of its
/// quanta and when the machine is idle, so that it takes effect at a point fixed by the
/// clock. Called with no vCPU executing instructions and no backend lock held.
pub trait HostInput: Send + Sync {
    /// Makes the input due at clock `now` visible to the guest; returns what to record
    /// (nothing while a recorded history replays: the device then admits the recorded
    /// input due at `now`).
    fn admit(&self, now: u64) -> Option<Input>;
    /// What a machine idle at clock `now` may wait for (see [`HostWake`]).
    fn wake(&self, now: u64) -> HostWake;
    /// Sets the function the host side calls when input arrives (it wakes an idle machine).
    fn set_waker(&self, waker: Box<dyn Fn() + Send + Sync>);
}

/// Where the VMM wants the running vCPUs to stop ([`Recorder::set_stop`]): the first
/// instruction boundary at which the machine's clock is at least `clock`, or at which vCPU
/// `retired.0` has retired `retired.1` instructions (counting exception entries). The vCPU
/// that holds the turn then exits with `VcpuExit::ClockReached` before anything else
/// happens at that point (before an interrupt is taken or a breakpoint is checked).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StopAt {
    pub clock: Option<u64>,
    pub retired: Option<(usize, u64)>,
}

/// A backend's deterministic clock and input log (see the module docs).
pub trait Recorder: Send + Sync {
    /// The guest clock now: the count committed by the vCPU that last ran (exact whenever no
    /// vCPU is executing instructions, e.g. at every stop and every exit to the VMM).
    fn now(&self) -> u64;
    /// Records `input` as taking effect now; returns the clock value stamped on it.
    fn record(&self, vcpu: Option<usize>, input: Input) -> u64;
    /// Every input recorded so far and not forgotten, oldest first.
    fn inputs(&self) -> Vec<InputEvent>;
    /// Forgets the `count` oldest inputs (all if fewer): a recording that dropped its oldest
    /// history no longer replays them.
    fn forget_inputs(&self, count: usize);
    /// Sets (or with `StopAt::default()` clears) where running vCPUs stop.
    fn set_stop(&self, at: StopAt);
    /// What vCPU `vcpu` has retired: its instructions plus the exceptions it took (each
    /// entry is one tick of the clock), exact while it is stopped.
    fn retired(&self, vcpu: usize) -> u64;
    /// The vCPU whose turn it is to execute.
    fn holder(&self) -> usize;
    /// The VMM is about to resume `vcpus` (the others stay stopped): if the turn's holder
    /// is among them, no other vCPU takes the turn from it while it is stopped (only a holder
    /// left stopped gives it up), so that resuming every vCPU runs exactly what running on
    /// would have; and the turn only passes to resumed vCPUs (a vCPU resumed alone keeps it).
    fn resuming(&self, vcpus: &[usize]);
}
