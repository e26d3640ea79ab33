//! What passes between the vCPU threads and whoever drives them: how a stopped vCPU resumes,
//! why it stopped, and how a whole run ended.
//!
//! Owns the value types only, so that `control` (the driver side), `vcpu_thread` (the vCPU
//! side), `run`, the session and the gdb layer share them without depending on each other.
//! Depends on `backend` (to read the PC of a faulting vCPU) and `debug::policy` (the kinds of
//! debug stop); must not depend on the rest of `machine`.

use crate::a64::Reg;
use crate::backend::Vcpu;
use crate::debug::policy::StopKind;

/// How a stopped vCPU resumes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resume {
    Continue,
    /// Execute exactly one instruction (an emulated one counts).
    Step,
    /// Step while the PC stays in `[start, end)`; stop when it leaves or anything else stops.
    RangeStep {
        start: u64,
        end: u64,
    },
}

/// A vCPU fault: what went wrong and where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fault {
    /// The PC when the fault was noticed; `None` when the backend could not read it.
    pub pc: Option<u64>,
    pub reason: String,
}

impl Fault {
    /// A fault of `vcpu` now, at its current PC if that can be read.
    pub fn at(vcpu: &mut dyn Vcpu, reason: impl Into<String>) -> Fault {
        let reason = reason.into();
        let pc = match vcpu.get(Reg::Pc) {
            Ok(pc) => Some(pc),
            Err(e) => {
                log::warn!(
                    "vCPU {}: the PC of a fault is unreadable: {e}",
                    vcpu.index()
                );
                None
            }
        };
        Fault { pc, reason }
    }
}

impl std::fmt::Display for Fault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.pc {
            Some(pc) => write!(f, "at pc {pc:#x}: {}", self.reason),
            None => write!(f, "(pc unreadable): {}", self.reason),
        }
    }
}

/// Why a vCPU stopped. Exactly one event is sent per resume.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StopReason {
    /// Stopped on request (`Control::pause_all`).
    Paused,
    /// A requested step (or range step) completed.
    Step,
    /// The debug policy stopped on this debug exception (ESR, FAR as the backend reported).
    Debug {
        esr: u64,
        far: u64,
        verdict: StopKind,
    },
    /// The vCPU waits (WFI) and nothing can wake it.
    Idle,
    /// PSCI SYSTEM_OFF.
    PowerOff,
    /// PSCI SYSTEM_RESET.
    Reset,
    Fault(Fault),
    /// The deterministic clock reached where the session asked the machine to stop
    /// (recording: a snapshot point, a recorded input to replay, a position in the past).
    ClockReached,
    /// Going backwards reached the start of the recording (nothing earlier is recorded).
    HistoryStart,
}

/// One stop of one vCPU.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    pub vcpu: usize,
    pub reason: StopReason,
}

/// How a run of the guest ended: the one end-of-run type of the plain run
/// (`Machine::run`), the gdb server and the command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// PSCI SYSTEM_OFF.
    PowerOff,
    /// PSCI SYSTEM_RESET (kvmdbg stops rather than rebooting, like QEMU's `-no-reboot`).
    Reset,
    /// gdb killed the guest (`kill`).
    Killed,
    /// A vCPU faulted (with no debugger attached to look at it).
    Fault { vcpu: usize, fault: Fault },
}

impl Outcome {
    /// The end of the run a stop of `vcpu` means, if it means one: power off, reset and a
    /// fault end it; every other stop leaves the machine to debug or resume.
    pub fn of_stop(vcpu: usize, reason: &StopReason) -> Option<Outcome> {
        match reason {
            StopReason::PowerOff => Some(Outcome::PowerOff),
            StopReason::Reset => Some(Outcome::Reset),
            StopReason::Fault(fault) => Some(Outcome::Fault {
                vcpu,
                fault: fault.clone(),
            }),
            StopReason::Paused | StopReason::Step | StopReason::Debug { .. } => None,
            StopReason::Idle | StopReason::ClockReached | StopReason::HistoryStart => None,
        }
    }

    /// True when the guest itself ended (power off, reset): nothing is left to debug.
    pub fn guest_ended(&self) -> bool {
        matches!(self, Outcome::PowerOff | Outcome::Reset)
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Outcome::PowerOff => write!(f, "guest powered off"),
            Outcome::Reset => write!(
                f,
                "guest requested a system reset; kvmdbg stops instead of rebooting"
            ),
            Outcome::Killed => write!(f, "gdb killed the guest"),
            Outcome::Fault { vcpu, fault } => write!(f, "guest fault on vCPU {vcpu} {fault}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::fake::FakeVcpu;

    #[test]
    fn a_fault_carries_the_pc_when_readable() {
        let mut v = FakeVcpu::new(0);
        v.set(Reg::Pc, 0x4000_0010).unwrap();
        let f = Fault::at(&mut v, "boom");
        assert_eq!(f.pc, Some(0x4000_0010));
        let out = Outcome::of_stop(2, &StopReason::Fault(f)).unwrap();
        assert_eq!(
            out.to_string(),
            "guest fault on vCPU 2 at pc 0x40000010: boom"
        );
    }

    #[test]
    fn an_unreadable_pc_is_none_not_a_sentinel() {
        let mut v = FakeVcpu::new(0);
        v.fail_get.insert(Reg::Pc);
        let f = Fault::at(&mut v, "deadlock");
        assert_eq!(f.pc, None);
        let out = Outcome::Fault { vcpu: 0, fault: f };
        assert_eq!(
            out.to_string(),
            "guest fault on vCPU 0 (pc unreadable): deadlock"
        );
    }

    #[test]
    fn only_power_off_reset_and_faults_end_a_run() {
        assert_eq!(
            Outcome::of_stop(0, &StopReason::PowerOff),
            Some(Outcome::PowerOff)
        );
        assert_eq!(
            Outcome::of_stop(0, &StopReason::Reset),
            Some(Outcome::Reset)
        );
        for r in [StopReason::Paused, StopReason::Step, StopReason::Idle] {
            assert_eq!(Outcome::of_stop(0, &r), None);
        }
        assert!(Outcome::PowerOff.guest_ended() && Outcome::Reset.guest_ended());
        assert!(!Outcome::Killed.guest_ended());
    }
}
