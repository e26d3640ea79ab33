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

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{channel, Receiver};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use nix::sys::eventfd::{EfdFlags, EventFd};

use crate::backend::{Kick, Vcpu};
pub use crate::debug::policy::{DebugPolicy, NoDebugger, StopKind, Verdict};

use super::bus::Bus;
use super::control_handoff::{self as handoff, Mailbox};
pub use super::event::{Event, Fault, Resume, StopReason};
use super::guest_mem::GuestView;
use super::vcpu_thread::{self, lock_core, spawn, Cmd, Core, Job, SharedCore, ThreadCtx};
use super::{MachineError, Result, TestHooks, TraceSink};

struct Handle {
    cmd: Arc<Mailbox<Cmd>>,
    kick: Arc<dyn Kick>,
    pause: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    core: SharedCore,
    ctx: Arc<ThreadCtx>,
    /// `Vcpu::any_thread`: jobs and single steps run on the caller's thread.
    here: bool,
}

/// Drives the vCPU threads.
pub struct Control {
    vcpus: Vec<Handle>,
    running: Mutex<Vec<bool>>,
    /// Which running vCPUs were resumed to step (their stop comes within microseconds).
    stepping: Mutex<Vec<bool>>,
    events: Mutex<Receiver<Event>>,
    notify: Arc<EventFd>,
    /// Events the vCPU threads sent (incremented after each send) ...
    posted: Arc<AtomicU64>,
    /// ... and events taken from the channel: a waiter spins on the difference.
    taken: AtomicU64,
    /// Stops of single steps run on the caller's thread, not taken yet.
    local: Mutex<VecDeque<Event>>,
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
        let posted = Arc::new(AtomicU64::new(0));
        let mut handles = Vec::with_capacity(vcpus.len());
        for vcpu in vcpus {
            let cmds = Arc::new(Mailbox::new());
            let pause = Arc::new(AtomicBool::new(false));
            let kick = vcpu.kicker();
            let (index, here) = (vcpu.index(), vcpu.any_thread());
            let core = Core::new(vcpu);
            let ctx = Arc::new(ThreadCtx {
                view: view.clone(),
                bus: bus.clone(),
                trace: trace.clone(),
                policy: policy.clone(),
                pause: pause.clone(),
                events: ev_tx.clone(),
                notify: notify.clone(),
                posted: posted.clone(),
                cmds: cmds.clone(),
                hooks,
            });
            let thread = spawn(index, core.clone(), ctx.clone())?;
            cmds.bind(thread.thread().clone());
            handles.push(Handle {
                cmd: cmds,
                kick,
                pause,
                thread: Some(thread),
                core,
                ctx,
                here,
            });
        }
        let n = handles.len();
        Ok(Control {
            vcpus: handles,
            running: Mutex::new(vec![false; n]),
            stepping: Mutex::new(vec![false; n]),
            events: Mutex::new(ev_rx),
            notify,
            posted,
            taken: AtomicU64::new(0),
            local: Mutex::new(VecDeque::new()),
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

    /// Resumes a stopped vCPU. Resuming a running one is an error. A single step that
    /// completes at once (`vcpu_thread::steps_at_once`: a backend usable from any thread, no
    /// instruction that waits) runs on the calling thread, before this returns; its stop is
    /// taken like any other.
    pub fn resume(&self, vcpu: usize, how: Resume) -> Result<()> {
        let mut running = lock(&self.running);
        let h = self.handle(vcpu)?;
        if running[vcpu] {
            return Err(MachineError::VcpuRunning { vcpu });
        }
        // A pause asked of this vCPU after it had sent its last stop (`pause_all` sees it
        // running until that stop is received) is stale: it must not end this run at once.
        h.pause.store(false, Ordering::SeqCst);
        if how == Resume::Step && h.here {
            drop(running);
            let event = h.here(vcpu, |core, ctx| {
                vcpu_thread::steps_at_once(core, ctx).then(|| vcpu_thread::resume(core, ctx, how))
            })?;
            if let Some(event) = event {
                lock(&self.local).push_back(event);
                return Ok(());
            }
            running = lock(&self.running);
        }
        h.cmd
            .post(Cmd::Resume(how))
            .map_err(|_| MachineError::VcpuThreadGone { vcpu })?;
        running[vcpu] = true;
        lock(&self.stepping)[vcpu] = how != Resume::Continue;
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

    /// True when an event was sent and not taken yet.
    fn event_waits(&self) -> bool {
        self.posted.load(Ordering::SeqCst) > self.taken.load(Ordering::SeqCst)
            || !lock(&self.local).is_empty()
    }

    /// Spins briefly (`control_handoff::SPIN`) for an event while a vCPU steps; true when one
    /// waits. A step's stop usually comes within the spin, so the caller can take it without
    /// sleeping in poll(2) and being woken. No spin while nothing steps (a continue may run
    /// for ever).
    pub fn event_soon(&self) -> bool {
        if self.event_waits() {
            return true;
        }
        let stepping = {
            let running = lock(&self.running);
            let stepping = lock(&self.stepping);
            running.iter().zip(stepping.iter()).any(|(r, s)| *r && *s)
        };
        stepping && handoff::spin_until(|| self.event_waits())
    }

    /// Waits for the next event.
    pub fn next_event(&self) -> Result<Event> {
        if let Some(ev) = self.local_event() {
            return Ok(ev);
        }
        handoff::spin_until(|| self.event_waits());
        let ev = lock(&self.events)
            .recv()
            .map_err(|_| MachineError::AllVcpuThreadsGone)?;
        self.note(&ev);
        Ok(ev)
    }

    /// A stop of a step run on the caller's thread.
    fn local_event(&self) -> Option<Event> {
        let ev = lock(&self.local).pop_front()?;
        self.stops.fetch_add(1, Ordering::Relaxed);
        Some(ev)
    }

    /// Returns a pending event without waiting.
    pub fn try_event(&self) -> Option<Event> {
        if let Some(ev) = self.local_event() {
            return Some(ev);
        }
        let ev = lock(&self.events).try_recv().ok()?;
        self.note(&ev);
        Some(ev)
    }

    fn note(&self, ev: &Event) {
        self.taken.fetch_add(1, Ordering::SeqCst);
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
        if h.here {
            return h.here(vcpu, |core, _| job(core.vcpu.as_mut()));
        }
        let (reply, tx) = handoff::reply();
        let job: Job = Box::new(move |v| tx.send(job(v)));
        h.cmd
            .post(Cmd::Job(job))
            .map_err(|_| MachineError::VcpuThreadGone { vcpu })?;
        reply.wait().ok_or(MachineError::VcpuThreadGone { vcpu })
    }

    fn handle(&self, vcpu: usize) -> Result<&Handle> {
        self.vcpus.get(vcpu).ok_or(MachineError::NoSuchVcpu {
            vcpu,
            count: self.vcpus.len(),
        })
    }
}

impl Handle {
    /// Works on the stopped vCPU on the calling thread. A panic there (a bug) fails the vCPU
    /// as a panic on its own thread would: this and every later request get
    /// `VcpuThreadGone`, and the session ends with that failure.
    fn here<R>(&self, vcpu: usize, f: impl FnOnce(&mut Core, &ThreadCtx) -> R) -> Result<R> {
        let gone = MachineError::VcpuThreadGone { vcpu };
        if self.cmd.is_closed() {
            return Err(gone);
        }
        let mut core = lock_core(&self.core);
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&mut core, &self.ctx))).map_err(
            |_| {
                self.cmd.close();
                gone
            },
        )
    }
}

impl Drop for Control {
    fn drop(&mut self) {
        let _ = self.stop_all();
        for h in &self.vcpus {
            let _ = h.cmd.post(Cmd::Quit);
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
