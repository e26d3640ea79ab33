//! Running the machine without a debugger: start every vCPU, wait for the stop that ends the
//! run (power off, reset, fault), stop the others.

use std::sync::Arc;

use super::control::{Control, Event, NoDebugger, Resume, StopReason};
use super::{MachineError, Result};

/// How a run ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// PSCI SYSTEM_OFF.
    PowerOff,
    /// PSCI SYSTEM_RESET (kvmdbg stops rather than rebooting, like QEMU's `-no-reboot`).
    Reset,
}

/// Runs every vCPU until the guest powers off, resets or faults.
pub fn run_plain(ctl: Control) -> Result<Outcome> {
    for i in 0..ctl.vcpu_count() {
        ctl.resume(i, Resume::Continue)?;
    }
    let mut idle = vec![false; ctl.vcpu_count()];
    loop {
        let Event { vcpu, reason } = ctl.next_event()?;
        let end = match reason {
            StopReason::PowerOff => Ok(Outcome::PowerOff),
            StopReason::Reset => Ok(Outcome::Reset),
            StopReason::Fault { pc, reason } => Err(MachineError::GuestFault { vcpu, pc, reason }),
            StopReason::Idle => {
                idle[vcpu] = true;
                if ctl.any_running() {
                    continue;
                }
                Err(MachineError::GuestFault {
                    vcpu,
                    pc: u64::MAX,
                    reason: "every vCPU waits (WFI) with nothing that can wake it".into(),
                })
            }
            other => Err(MachineError::GuestFault {
                vcpu,
                pc: u64::MAX,
                reason: format!("unexpected stop without a debugger: {other:?}"),
            }),
        };
        drop(ctl);
        return end;
    }
}

/// The policy used by [`run_plain`].
pub fn no_debugger() -> Arc<NoDebugger> {
    Arc::new(NoDebugger)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::fake::FakeVcpu;
    use crate::backend::{SystemEvent, Vcpu, VcpuExit};
    use crate::machine::bus::Bus;
    use crate::machine::guest_mem::GuestView;
    use crate::machine::memory::allocate;

    fn run(vcpus: Vec<FakeVcpu>) -> Result<Outcome> {
        let boxed = vcpus
            .into_iter()
            .map(|v| Box::new(v) as Box<dyn Vcpu>)
            .collect();
        let view = GuestView::new(allocate(1 << 20).unwrap());
        let ctl = Control::start(
            boxed,
            view,
            Arc::new(Bus::new()),
            None,
            no_debugger(),
            Default::default(),
        )?;
        run_plain(ctl)
    }

    fn parked(index: usize) -> FakeVcpu {
        let mut v = FakeVcpu::new(index);
        v.block_when_done = true;
        v
    }

    #[test]
    fn power_off_on_one_vcpu_stops_the_blocked_others() {
        let boot = FakeVcpu::new(0).with_exits([
            VcpuExit::Interrupted,
            VcpuExit::SystemEvent(SystemEvent::Shutdown),
        ]);
        let out = run(vec![boot, parked(1), parked(2)]).unwrap();
        assert_eq!(out, Outcome::PowerOff);
    }

    #[test]
    fn a_fault_on_a_secondary_is_reported_with_its_index() {
        let sec = FakeVcpu::new(1).with_exits([VcpuExit::InternalError("boom".into())]);
        match run(vec![parked(0), sec]) {
            Err(MachineError::GuestFault { vcpu, reason, .. }) => {
                assert_eq!(vcpu, 1);
                assert_eq!(reason, "boom");
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn every_vcpu_idle_is_a_deadlock_error_not_a_hang() {
        let a = FakeVcpu::new(0).with_exits([VcpuExit::Idle]);
        let b = FakeVcpu::new(1).with_exits([VcpuExit::Idle]);
        match run(vec![a, b]) {
            Err(MachineError::GuestFault { reason, .. }) => assert!(reason.contains("WFI")),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn a_debug_exit_without_debugger_is_a_clear_fault() {
        let v = FakeVcpu::new(0).with_exits([VcpuExit::Debug {
            esr: 0xf200_0000,
            far: 0,
        }]);
        match run(vec![v]) {
            Err(MachineError::GuestFault { reason, .. }) => assert!(reason.contains("BRK")),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn a_failing_run_ioctl_is_a_fault() {
        let v = FakeVcpu::new(0); // no script: run() fails
        assert!(matches!(run(vec![v]), Err(MachineError::GuestFault { .. })));
    }
}
