//! Running the machine without a debugger: start every vCPU, wait for the stop that ends the
//! run (power off, reset, fault), stop the others.

use std::sync::Arc;

use crate::a64::Reg;

use super::control::{Control, Event, NoDebugger, Resume};
use super::event::{Fault, Outcome, StopReason};
use super::Result;

/// Runs every vCPU until the guest powers off, resets or faults. A fault is an outcome (the
/// run ended), not an error; errors are the machine's own failures.
pub fn run_plain(ctl: Control) -> Result<Outcome> {
    let end = run_until_end(&ctl)?;
    drop(ctl);
    Ok(end)
}

/// [`run_plain`] without stopping the vCPUs that still run at the end.
pub fn run_until_end(ctl: &Control) -> Result<Outcome> {
    for i in 0..ctl.vcpu_count() {
        ctl.resume(i, Resume::Continue)?;
    }
    loop {
        let Event { vcpu, reason } = ctl.next_event()?;
        // The stopped vCPU's PC, for a stop that is not a fault itself.
        let fault = |reason: String| Outcome::Fault {
            vcpu,
            fault: Fault {
                pc: ctl.with_vcpu(vcpu, |v| v.get(Reg::Pc).ok()).ok().flatten(),
                reason,
            },
        };
        let end = match reason {
            StopReason::Idle if ctl.any_running() => continue,
            StopReason::Idle => {
                fault("every vCPU waits (WFI) with nothing that can wake it".into())
            }
            other => Outcome::of_stop(vcpu, &other)
                .unwrap_or_else(|| fault(format!("unexpected stop without a debugger: {other:?}"))),
        };
        return Ok(end);
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
            Ok(Outcome::Fault { vcpu, fault }) => {
                assert_eq!(vcpu, 1);
                assert_eq!(fault.reason, "boom");
                assert_eq!(fault.pc, Some(0), "the fake vCPU's PC is readable");
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn every_vcpu_idle_is_a_deadlock_error_not_a_hang() {
        let a = FakeVcpu::new(0).with_exits([VcpuExit::Idle]);
        let b = FakeVcpu::new(1).with_exits([VcpuExit::Idle]);
        match run(vec![a, b]) {
            Ok(Outcome::Fault { fault, .. }) => assert!(fault.reason.contains("WFI")),
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
            Ok(Outcome::Fault { fault, .. }) => assert!(fault.reason.contains("BRK")),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn a_failing_run_ioctl_is_a_fault() {
        let v = FakeVcpu::new(0); // no script: run() fails
        assert!(matches!(run(vec![v]), Ok(Outcome::Fault { .. })));
    }
}
