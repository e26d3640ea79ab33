//! The vCPU thread: waits for commands while stopped; when resumed, runs the guest and handles
//! exits until one stop, which it reports as exactly one [`Event`].
//!
//! Owns the per-vCPU run loop: applying the guest-debug configuration before entry, the step
//! and range-step loop, and the rule that an instruction emulated by the VMM completes a step
//! without re-entering the guest (KVM ignores a userspace write of PSTATE.SS; see
//! docs/architecture.md), and interrupts held off during each step (`debug::irqmask`).
//!
//! Owns the command protocol of a vCPU thread ([`Cmd`]); depends on `exit`, `emulate`, the
//! value types of `event` and the debug layer's policy, never on `control` (which drives it).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};

use nix::sys::eventfd::EventFd;

use crate::a64::{sys, Reg};
use crate::backend::{BackendError, GuestDebug, Vcpu};
use crate::debug::hwplan::lift_breakpoint;
use crate::debug::irqmask::{self, MaskedStep, Plan};
use crate::debug::policy::{DebugPolicy, StopKind, Verdict};
use crate::debug::step::StepMachine;

use super::bus::Bus;
use super::control_handoff::Mailbox;
use super::emulate::emulate_daif_access;
use super::event::{Event, Fault, Resume, StopReason};
use super::exit::{handle_exit, trace_line, Flow};
use super::guest_mem::GuestView;
use super::{MachineError, Result, TestHooks, TraceSink};

/// A job run on a stopped vCPU's thread.
pub(super) type Job = Box<dyn FnOnce(&mut dyn Vcpu) + Send>;

/// What a vCPU thread is told while its vCPU is stopped.
pub(super) enum Cmd {
    Job(Job),
    Resume(Resume),
    Quit,
}

/// A vCPU-thread operation that failed (the vCPU then stops with a fault saying so).
#[derive(Debug, thiserror::Error)]
enum ThreadError {
    #[error("holding off interrupts for a step: {0}")]
    HoldOffInterrupts(#[source] BackendError),
    #[error("restoring the guest's interrupt masks after a step: {0}")]
    RestoreInterrupts(#[source] BackendError),
    #[error("committing MMIO: {0}")]
    CommitMmio(#[source] BackendError),
    #[error("loading the guest-debug configuration: {0}")]
    LoadGuestDebug(#[source] BackendError),
    #[error("run failed: {0}")]
    Run(#[source] BackendError),
    #[error("passing over a vector entry reached without an exception: {0}")]
    PassOver(#[source] BackendError),
}

pub(super) struct ThreadCtx {
    pub view: GuestView,
    pub bus: Arc<Bus>,
    pub trace: Option<TraceSink>,
    pub policy: Arc<dyn DebugPolicy>,
    pub pause: Arc<AtomicBool>,
    pub events: Sender<Event>,
    pub notify: Arc<EventFd>,
    /// Counts the events sent (after each send), for waiters that spin.
    pub posted: Arc<AtomicU64>,
    pub cmds: Arc<Mailbox<Cmd>>,
    pub hooks: TestHooks,
}

/// The guest-debug state last loaded into the vCPU.
#[derive(Default)]
struct Applied {
    generation: Option<u64>,
    step: bool,
    /// VBAR_EL1 the configuration was made for (vector catch with hardware breakpoints).
    vbar: Option<u64>,
    /// The hardware breakpoint address left out while passing over it.
    lifted: Option<u64>,
}

/// A vCPU and the guest-debug state last loaded into it. Its thread locks it for each command;
/// while the vCPU is stopped and its backend allows it (`Vcpu::any_thread`), the thread that
/// drives the machine may lock it instead and work on it directly (`control`).
pub(super) struct Core {
    pub vcpu: Box<dyn Vcpu>,
    applied: Applied,
}

pub(super) type SharedCore = Arc<Mutex<Core>>;

impl Core {
    pub fn new(vcpu: Box<dyn Vcpu>) -> SharedCore {
        Arc::new(Mutex::new(Core {
            vcpu,
            applied: Applied::default(),
        }))
    }
}

/// Locks a core; a thread that panicked holding it left nothing half done that matters more
/// than going on (every command is one whole run or job).
pub(super) fn lock_core(core: &Mutex<Core>) -> MutexGuard<'_, Core> {
    core.lock().unwrap_or_else(|p| p.into_inner())
}

pub(super) fn spawn(index: usize, core: SharedCore, ctx: Arc<ThreadCtx>) -> Result<JoinHandle<()>> {
    thread::Builder::new()
        .name(format!("vcpu{index}"))
        .spawn(move || thread_main(core, ctx))
        .map_err(MachineError::Thread)
}

/// Closes the thread's mailbox however the thread ends (a panic included), so no one waits
/// for a job that will never run.
struct CloseOnExit(Arc<Mailbox<Cmd>>);

impl Drop for CloseOnExit {
    fn drop(&mut self) {
        self.0.close();
    }
}

fn thread_main(core: SharedCore, ctx: Arc<ThreadCtx>) {
    let _close = CloseOnExit(ctx.cmds.clone());
    // Spin for the next command after a step or a job (a debugger's next packet follows within
    // microseconds); sleep at once after a continue's stop and at the start.
    let mut expect_more = false;
    loop {
        let Some(cmd) = ctx.cmds.take(expect_more) else {
            break;
        };
        expect_more = match &cmd {
            Cmd::Job(_) => true,
            Cmd::Resume(how) => *how != Resume::Continue,
            Cmd::Quit => false,
        };
        match cmd {
            Cmd::Quit => break,
            Cmd::Job(job) => job(lock_core(&core).vcpu.as_mut()),
            Cmd::Resume(how) => {
                let event = resume(&mut lock_core(&core), &ctx, how);
                if ctx.events.send(event).is_err() {
                    break;
                }
                ctx.posted.fetch_add(1, Ordering::SeqCst);
                let _ = ctx.notify.write(1);
            }
        }
    }
}

/// Runs a stopped vCPU as `how` says until one stop, on the calling thread; returns the stop.
pub(super) fn resume(core: &mut Core, ctx: &ThreadCtx, how: Resume) -> Event {
    let vcpu = core.vcpu.as_mut();
    let mut mask = None;
    let mut reason = run_until_stop(vcpu, ctx, how, &mut core.applied, &mut mask);
    // A stop right after an MMIO exit must not show the access half done.
    if let Err(e) = vcpu.commit_pending() {
        reason = fault(vcpu, ThreadError::CommitMmio(e));
    }
    if let Err(e) = release_interrupts(vcpu, &mut mask) {
        reason = fault(vcpu, e);
    }
    ctx.pause.store(false, Ordering::SeqCst);
    Event {
        vcpu: vcpu.index(),
        reason,
    }
}

/// True when one single step of this stopped vCPU may run on the calling thread (the thread
/// that also reads gdb's Ctrl-C): the backend allows it, the vCPU is powered on, and the
/// instruction at the PC cannot wait for long (WFI and WFE wait for an event; HVC and SMC may
/// be a PSCI call that suspends). Anything else completes a step at once.
pub(super) fn steps_at_once(core: &mut Core, ctx: &ThreadCtx) -> bool {
    let vcpu = core.vcpu.as_mut();
    if !vcpu.any_thread() || !matches!(vcpu.powered_off(), Ok(false)) {
        return false;
    }
    let Ok(pc) = vcpu.get(Reg::Pc) else {
        return false;
    };
    ctx.view
        .fetch_insn(vcpu, pc)
        .is_ok_and(|insn| !may_wait(insn))
}

/// WFE, WFI (Arm ARM C6.2 "WFE", "WFI": HINT with CRm 0, op2 2 or 3), and HVC, SMC (C6.2
/// "HVC", "SMC": exception generation, opc 000, LL 10 or 11).
fn may_wait(insn: u32) -> bool {
    matches!(insn, 0xd503_205f | 0xd503_207f)
        || matches!(insn & 0xffe0_001f, 0xd400_0002 | 0xd400_0003)
}

/// Runs until one stop.
fn run_until_stop(
    vcpu: &mut dyn Vcpu,
    ctx: &ThreadCtx,
    how: Resume,
    applied: &mut Applied,
    mask: &mut Option<MaskedStep>,
) -> StopReason {
    let mut step = StepMachine::with_vmm_completion(!ctx.hooks.no_step_completion);
    // A vector entry the guest branched to: stepped over with its breakpoint lifted.
    let mut pass_over: Option<u64> = None;
    if how != Resume::Continue {
        step.request();
        if let Err(e) = prepare_step(vcpu, ctx, &mut step, mask) {
            return fault(vcpu, e);
        }
    }
    loop {
        if step.complete() {
            if let Err(e) = release_interrupts(vcpu, mask) {
                return fault(vcpu, e);
            }
            if pass_over.take().is_some() && how == Resume::Continue {
                // Only our own step over a vector entry: run on.
                step.clear();
                continue;
            }
            if !keep_range_stepping(vcpu, how) {
                return StopReason::Step;
            }
            step.request();
            if let Err(e) = prepare_step(vcpu, ctx, &mut step, mask) {
                return fault(vcpu, e);
            }
            continue;
        }
        if ctx.pause.swap(false, Ordering::SeqCst) {
            return StopReason::Paused;
        }
        let load = Load {
            stepping: step.stepping(),
            lifted: pass_over,
        };
        if let Err(e) = sync_debug(vcpu, ctx.policy.as_ref(), load, applied) {
            return fault(vcpu, ThreadError::LoadGuestDebug(e));
        }
        let exit = match vcpu.run() {
            Ok(e) => e,
            Err(e) => return fault(vcpu, ThreadError::Run(e)),
        };
        if let Some(t) = &ctx.trace {
            let line = trace_line(&exit, vcpu.get(Reg::Pc).ok());
            let mut sink = t.lock().unwrap_or_else(|p| p.into_inner());
            let _ = writeln!(sink, "vcpu{} {line}", vcpu.index());
        }
        match handle_exit(vcpu, &ctx.view, &ctx.bus, exit, &mut step) {
            Flow::Continue | Flow::Interrupted => {}
            Flow::Idle => return StopReason::Idle,
            Flow::Stop(reason) => return reason,
            Flow::Debug { esr, far } => {
                match ctx.policy.on_debug_exit(vcpu, esr, far, step.stepping()) {
                    Verdict::Stop(StopKind::Step) if step.stepping() => step.step_exception(),
                    Verdict::Stop(kind) => {
                        return StopReason::Debug {
                            esr,
                            far,
                            verdict: kind,
                        }
                    }
                    Verdict::Handled { step_complete } => {
                        if step_complete {
                            step.exception_entered_by_vmm();
                        }
                    }
                    Verdict::PassOver => {
                        match vcpu.get(Reg::Pc) {
                            Ok(pc) => pass_over = Some(pc),
                            Err(e) => return fault(vcpu, ThreadError::PassOver(e)),
                        }
                        if !step.stepping() {
                            step.request();
                            if let Err(e) = prepare_step(vcpu, ctx, &mut step, mask) {
                                return fault(vcpu, e);
                            }
                        }
                    }
                    Verdict::Fault(reason) => return StopReason::Fault(Fault::at(vcpu, reason)),
                }
            }
        }
    }
}

/// Before one step: holds off the guest's interrupts for its duration, or performs a DAIF
/// access itself (see `debug::irqmask`); the instruction is fetched only when there is
/// something to hold off.
fn prepare_step(
    vcpu: &mut dyn Vcpu,
    ctx: &ThreadCtx,
    step: &mut StepMachine,
    mask: &mut Option<MaskedStep>,
) -> std::result::Result<(), ThreadError> {
    let err = ThreadError::HoldOffInterrupts;
    let pstate = vcpu.get(Reg::Pstate).map_err(err)?;
    if ctx.hooks.no_irq_mask || !irqmask::wanted(pstate) {
        return Ok(());
    }
    let pc = vcpu.get(Reg::Pc).map_err(err)?;
    let insn = ctx.view.fetch_insn(vcpu, pc).ok();
    match irqmask::plan(vcpu, insn).map_err(err)? {
        Plan::AsIs => {}
        Plan::Masked(m) => *mask = Some(m),
        Plan::Emulate { pstate, xt } => {
            emulate_daif_access(vcpu, pstate, xt, step).map_err(err)?;
        }
    }
    Ok(())
}

/// After a step (or any stop during one): undoes what [`prepare_step`] held off.
fn release_interrupts(
    vcpu: &mut dyn Vcpu,
    mask: &mut Option<MaskedStep>,
) -> std::result::Result<(), ThreadError> {
    match mask.take() {
        Some(m) => m.finish(vcpu).map_err(ThreadError::RestoreInterrupts),
        None => Ok(()),
    }
}

/// After a completed step: true when range stepping continues (the PC is still in range).
fn keep_range_stepping(vcpu: &mut dyn Vcpu, how: Resume) -> bool {
    match how {
        Resume::RangeStep { start, end } => match vcpu.get(Reg::Pc) {
            Ok(pc) => pc >= start && pc < end,
            Err(_) => false,
        },
        _ => false,
    }
}

/// What the next entry into the guest needs besides the policy's configuration.
#[derive(Clone, Copy)]
struct Load {
    stepping: bool,
    /// A hardware breakpoint address to leave out (passing over it).
    lifted: Option<u64>,
}

/// Loads the policy's guest-debug configuration, plus single-step when stepping and minus a
/// lifted breakpoint, if anything changed since the last load. While the configuration
/// depends on VBAR_EL1 (`DebugPolicy::needs_vbar`) it is read before every entry, so vector
/// catch breakpoints follow a guest that moved its vectors since the last exit.
fn sync_debug(
    vcpu: &mut dyn Vcpu,
    policy: &dyn DebugPolicy,
    load: Load,
    applied: &mut Applied,
) -> crate::backend::Result<()> {
    let vbar = if policy.needs_vbar() {
        Some(vcpu.get(Reg::Sys(sys::VBAR_EL1))?)
    } else {
        None
    };
    let (generation, mut dbg): (u64, GuestDebug) = policy.guest_debug(vbar);
    if applied.generation == Some(generation)
        && applied.step == load.stepping
        && applied.vbar == vbar
        && applied.lifted == load.lifted
    {
        return Ok(());
    }
    if let Some(pc) = load.lifted {
        lift_breakpoint(&mut dbg, pc);
    }
    dbg.single_step = load.stepping;
    dbg.enable |= load.stepping;
    vcpu.set_guest_debug(&dbg)?;
    *applied = Applied {
        generation: Some(generation),
        step: load.stepping,
        vbar,
        lifted: load.lifted,
    };
    Ok(())
}

/// The stop for a failed vCPU-thread operation.
fn fault(vcpu: &mut dyn Vcpu, e: ThreadError) -> StopReason {
    StopReason::Fault(Fault::at(vcpu, e.to_string()))
}
