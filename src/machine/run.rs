//! vCPU threads and the machine-wide stop: each vCPU runs on its own thread; the first thread
//! that decides the machine stops records the outcome and kicks the others.

use std::sync::{Arc, Condvar, Mutex};
use std::thread;

use crate::a64::Reg;
use crate::backend::{Kick, Vcpu};

use super::bus::Bus;
use super::exit::{handle_exit, trace_line, Flow, Stop};
use super::guest_mem::GuestView;
use super::{MachineError, Result, TraceSink};

/// How a run ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// PSCI SYSTEM_OFF.
    PowerOff,
    /// PSCI SYSTEM_RESET (kvmdbg stops rather than rebooting, like QEMU's `-no-reboot`).
    Reset,
}

/// State shared by the vCPU threads.
struct Shared {
    stop: Mutex<Option<(usize, Stop)>>,
    idle: Mutex<usize>,
    changed: Condvar,
    kicks: Vec<Arc<dyn Kick>>,
    vcpus: usize,
}

impl Shared {
    fn stopping(&self) -> bool {
        lock(&self.stop).is_some()
    }

    /// Records the first stop and wakes every vCPU.
    fn finish(&self, vcpu: usize, stop: Stop) {
        {
            let mut s = lock(&self.stop);
            if s.is_none() {
                *s = Some((vcpu, stop));
            }
        }
        {
            // Notify under the lock parked vCPUs hold while checking `stopping`, so a wake-up
            // cannot fall between their check and their wait.
            let _idle = lock(&self.idle);
            self.changed.notify_all();
        }
        for k in &self.kicks {
            k.kick();
        }
    }

    /// Parks an idle vCPU until the machine stops; the last one to go idle stops it.
    fn park_idle(&self, vcpu: usize, pc: u64) {
        let mut idle = lock(&self.idle);
        *idle += 1;
        if *idle == self.vcpus {
            drop(idle);
            self.finish(
                vcpu,
                Stop::Fault {
                    pc,
                    reason: "every vCPU waits (WFI) with nothing that can wake it".into(),
                },
            );
            return;
        }
        while !self.stopping() {
            idle = self.changed.wait(idle).unwrap_or_else(|p| p.into_inner());
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Runs all vCPUs to completion.
pub fn run_all(
    vcpus: Vec<Box<dyn Vcpu>>,
    view: GuestView,
    bus: Arc<Bus>,
    trace: Option<TraceSink>,
) -> Result<Outcome> {
    let shared = Arc::new(Shared {
        stop: Mutex::new(None),
        idle: Mutex::new(0),
        changed: Condvar::new(),
        kicks: vcpus.iter().map(|v| v.kicker()).collect(),
        vcpus: vcpus.len(),
    });
    let mut handles = Vec::new();
    for vcpu in vcpus {
        let (shared, view, bus, trace) = (shared.clone(), view.clone(), bus.clone(), trace.clone());
        let name = format!("vcpu{}", vcpu.index());
        let h = thread::Builder::new()
            .name(name)
            .spawn(move || vcpu_loop(vcpu, &view, &bus, &shared, trace.as_ref()))
            .map_err(MachineError::Thread)?;
        handles.push(h);
    }
    for h in handles {
        if h.join().is_err() {
            return Err(MachineError::Vcpu {
                vcpu: usize::MAX,
                reason: "vCPU thread panicked".into(),
            });
        }
    }
    let (vcpu, stop) = lock(&shared.stop).take().ok_or(MachineError::Vcpu {
        vcpu: 0,
        reason: "all vCPU threads ended without a stop reason".into(),
    })?;
    match stop {
        Stop::PowerOff => Ok(Outcome::PowerOff),
        Stop::Reset => Ok(Outcome::Reset),
        Stop::Fault { pc, reason } => Err(MachineError::GuestFault { vcpu, pc, reason }),
    }
}

fn vcpu_loop(
    mut vcpu: Box<dyn Vcpu>,
    view: &GuestView,
    bus: &Bus,
    shared: &Shared,
    trace: Option<&TraceSink>,
) {
    let index = vcpu.index();
    while !shared.stopping() {
        let exit = match vcpu.run() {
            Ok(e) => e,
            Err(e) => {
                let pc = vcpu.get(Reg::Pc).unwrap_or(u64::MAX);
                let reason = format!("run failed: {e}");
                shared.finish(index, Stop::Fault { pc, reason });
                break;
            }
        };
        if let Some(t) = trace {
            let pc = vcpu.get(Reg::Pc).unwrap_or(u64::MAX);
            let line = trace_line(&exit, pc);
            let mut sink = t.lock().unwrap_or_else(|p| p.into_inner());
            let _ = writeln!(sink, "vcpu{index} {line}");
        }
        match handle_exit(vcpu.as_mut(), view, bus, exit) {
            Flow::Continue | Flow::Interrupted => {}
            Flow::Idle => {
                let pc = vcpu.get(Reg::Pc).unwrap_or(u64::MAX);
                shared.park_idle(index, pc);
            }
            Flow::Stop(stop) => shared.finish(index, stop),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::fake::FakeVcpu;
    use crate::backend::{SystemEvent, VcpuExit};
    use crate::machine::memory::allocate;

    fn run(vcpus: Vec<FakeVcpu>) -> Result<Outcome> {
        let boxed = vcpus
            .into_iter()
            .map(|v| Box::new(v) as Box<dyn Vcpu>)
            .collect();
        let view = GuestView::new(allocate(1 << 20).unwrap());
        run_all(boxed, view, Arc::new(Bus::new()), None)
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
        let boot = parked(0);
        let sec = FakeVcpu::new(1).with_exits([VcpuExit::InternalError("boom".into())]);
        match run(vec![boot, sec]) {
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
    fn a_failing_run_ioctl_is_a_fault() {
        let v = FakeVcpu::new(0); // no script: run() fails
        assert!(matches!(run(vec![v]), Err(MachineError::GuestFault { .. })));
    }
}
