//! Control of running vCPUs: start, pause (all-stop), resume with continue / step / range step,
//! run a job on a stopped vCPU's own thread, and receive stop events.
//!
//! Owns the vCPU threads and the event channel. The gdb layer and the plain `run` command both
//! drive the machine through [`Control`]; neither touches a vCPU handle: register and memory
//! work is a job executed by the vCPU's thread while it is stopped. Debug-exit decisions are
//! delegated to a [`DebugPolicy`] supplied by the debug layer (`debug::policy`).
//!
//! Depends on `vcpu_thread` (which it spawns and sends commands to) and the value types of
//! `event`; `vcpu_thread` does not depend on it.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use nix::sys::eventfd::{EfdFlags, EventFd};

use crate::backend::{Kick, Vcpu};
pub use crate::debug::policy::{DebugPolicy, NoDebugger, StopKind, Verdict};

use super::bus::Bus;
pub use super::event::{Event, Fault, Resume, StopReason};
use super::guest_mem::GuestView;
use super::vcpu_thread::{spawn, Cmd, Job, ThreadCtx};
use super::{MachineError, Result, TestHooks, TraceSink};

struct Handle {
    cmd: Sender<Cmd>,
    kick: Arc<dyn Kick>,
    pause: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// Drives the vCPU threads.
pub struct Control {
    vcpus: Vec<Handle>,
    running: Mutex<Vec<bool>>,
    events: Mutex<Receiver<Event>>,
    notify: Arc<EventFd>,
    policy: Arc<dyn DebugPolicy>,
    /// Counts stops, for tests and diagnostics.
    pub stops: AtomicU64,
}

impl Control {
    /// Starts one thread per vCPU; every vCPU starts stopped. `hooks` are the tests' switches
    /// (`TestHooks::default()` outside them).
    pub fn start(
        vcpus: Vec<Box<dyn Vcpu>>,
        view: GuestView,
        bus: Arc<Bus>,
        trace: Option<TraceSink>,
        policy: Arc<dyn DebugPolicy>,
        hooks: TestHooks,
    ) -> Result<Control> {
        let notify = Arc::new(
            EventFd::from_flags(EfdFlags::EFD_CLOEXEC | EfdFlags::EFD_NONBLOCK)
                .map_err(|e| MachineError::Thread(e.into()))?,
        );
        let (ev_tx, ev_rx) = channel();
        let mut handles = Vec::with_capacity(vcpus.len());
        for vcpu in vcpus {
            let (cmd_tx, cmd_rx) = channel();
            let pause = Arc::new(AtomicBool::new(false));
            let kick = vcpu.kicker();
            let ctx = ThreadCtx {
                view: view.clone(),
                bus: bus.clone(),
                trace: trace.clone(),
                policy: policy.clone(),
                pause: pause.clone(),
                events: ev_tx.clone(),
                notify: notify.clone(),
                cmds: cmd_rx,
                hooks,
            };
            let thread = spawn(vcpu, ctx)?;
            handles.push(Handle {
                cmd: cmd_tx,
                kick,
                pause,
                thread: Some(thread),
            });
        }
        let n = handles.len();
        Ok(Control {
            vcpus: handles,
            running: Mutex::new(vec![false; n]),
            events: Mutex::new(ev_rx),
            notify,
            policy,
            stops: AtomicU64::new(0),
        })
    }

    pub fn vcpu_count(&self) -> usize {
        self.vcpus.len()
    }

    pub fn policy(&self) -> &Arc<dyn DebugPolicy> {
        &self.policy
    }

    /// The file descriptor that becomes readable when an event is pending (for poll()).
    pub fn event_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        use std::os::fd::AsFd;
        self.notify.as_fd()
    }

    pub fn is_running(&self, vcpu: usize) -> bool {
        lock(&self.running).get(vcpu).copied().unwrap_or(false)
    }

    pub fn any_running(&self) -> bool {
        lock(&self.running).iter().any(|r| *r)
    }

    /// Resumes a stopped vCPU. Resuming a running one is an error.
    pub fn resume(&self, vcpu: usize, how: Resume) -> Result<()> {
        let mut running = lock(&self.running);
        let h = self.handle(vcpu)?;
        if running[vcpu] {
            return Err(MachineError::VcpuRunning { vcpu });
        }
        // A pause asked of this vCPU after it had sent its last stop (`pause_all` sees it
        // running until that stop is received) is stale: it must not end this run at once.
        h.pause.store(false, Ordering::SeqCst);
        h.cmd
            .send(Cmd::Resume(how))
            .map_err(|_| MachineError::VcpuThreadGone { vcpu })?;
        running[vcpu] = true;
        Ok(())
    }

    /// Asks every running vCPU to stop (each answers with one event).
    pub fn pause_all(&self) {
        let running = lock(&self.running);
        for (h, r) in self.vcpus.iter().zip(running.iter()) {
            if *r {
                h.pause.store(true, Ordering::SeqCst);
                h.kick.kick();
            }
        }
    }

    /// Waits for the next event.
    pub fn next_event(&self) -> Result<Event> {
        let ev = lock(&self.events)
            .recv()
            .map_err(|_| MachineError::AllVcpuThreadsGone)?;
        self.note(&ev);
        Ok(ev)
    }

    /// Returns a pending event without waiting.
    pub fn try_event(&self) -> Option<Event> {
        let ev = lock(&self.events).try_recv().ok()?;
        self.note(&ev);
        Some(ev)
    }

    fn note(&self, ev: &Event) {
        let _ = self.notify.read();
        if let Some(r) = lock(&self.running).get_mut(ev.vcpu) {
            *r = false;
        }
        self.stops.fetch_add(1, Ordering::Relaxed);
    }

    /// Stops every running vCPU and collects the events of those that were running; the
    /// first event in the result is the earliest.
    pub fn stop_all(&self) -> Result<Vec<Event>> {
        self.pause_all();
        let mut out = Vec::new();
        while self.any_running() {
            out.push(self.next_event()?);
        }
        Ok(out)
    }

    /// Runs `job` on stopped vCPU `vcpu`'s thread and returns its result.
    pub fn with_vcpu<R, F>(&self, vcpu: usize, job: F) -> Result<R>
    where
        R: Send + 'static,
        F: FnOnce(&mut dyn Vcpu) -> R + Send + 'static,
    {
        if self.is_running(vcpu) {
            return Err(MachineError::VcpuRunning { vcpu });
        }
        let h = self.handle(vcpu)?;
        let (tx, rx) = channel();
        let job: Job = Box::new(move |v| {
            let _ = tx.send(job(v));
        });
        h.cmd
            .send(Cmd::Job(job))
            .map_err(|_| MachineError::VcpuThreadGone { vcpu })?;
        rx.recv().map_err(|_| MachineError::VcpuThreadGone { vcpu })
    }

    fn handle(&self, vcpu: usize) -> Result<&Handle> {
        self.vcpus.get(vcpu).ok_or(MachineError::NoSuchVcpu {
            vcpu,
            count: self.vcpus.len(),
        })
    }
}

impl Drop for Control {
    fn drop(&mut self) {
        let _ = self.stop_all();
        for h in &self.vcpus {
            let _ = h.cmd.send(Cmd::Quit);
        }
        for h in &mut self.vcpus {
            if let Some(t) = h.thread.take() {
                let _ = t.join();
            }
        }
    }
}

pub(super) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
#[path = "control_tests.rs"]
mod tests;
