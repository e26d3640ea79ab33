//! A debugging session over a machine: the backend-independent API the gdb layer uses.
//!
//! Owns the all-stop protocol (one vCPU's stop halts every vCPU; stops that happen together
//! are queued and reported one at a time), stepping off breakpoints, per-stop register
//! caching, debug memory access at guest virtual addresses (the stopped vCPU's stage-1
//! tables, RAM with planted BRKs hidden, devices only when allowed) and breakpoint /
//! watchpoint requests. Never exposes a vCPU handle: work on a vCPU is a job run by its thread.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use vm_memory::{GuestAddress, GuestMemoryBackend, GuestMemoryMmap};

use crate::a64::walk::{Translation, WalkTrace};
use crate::a64::Reg;
use crate::backend::icount::Input;
use crate::backend::Caps;
use crate::debug::hwplan::Watch;
use crate::debug::state::{DebugError, DebugState};
use crate::debug::translate::{self, TranslateError};

use super::bus::Bus;
use super::control::{Control, Event, Resume, StopReason};
use super::loader::LoadedImage;
use super::{Machine, MachineError, Result, Spec};

#[path = "history.rs"]
mod history;
#[path = "session_mem.rs"]
mod mem;
#[path = "replay.rs"]
mod replay;
#[path = "session_reset.rs"]
mod reset;
#[path = "retention.rs"]
mod retention;
#[path = "snapshot.rs"]
mod snapshot;
pub use replay::SNAPSHOT_INTERVAL;
pub use reset::ResetReport;
pub use retention::{
    Dropped, DEFAULT_LIMIT as DEFAULT_RECORD_LIMIT, MIN_LIMIT as MIN_RECORD_LIMIT,
};
pub use snapshot::RecordingInfo;

/// Why a debug memory access failed.
#[derive(Debug, thiserror::Error)]
pub enum MemError {
    #[error("{0}")]
    Translate(#[from] TranslateError),
    #[error("physical address {pa:#x} (virtual {va:#x}) is not RAM or a device")]
    Unmapped { va: u64, pa: u64 },
    #[error("{pa:#x} is a device; debugger access to devices is off (monitor mmio-reads on)")]
    Device { pa: u64 },
    #[error("{0}")]
    Machine(#[from] MachineError),
    #[error("{0}")]
    Debug(#[from] DebugError),
}

/// A reported stop: which vCPU, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stop {
    pub vcpu: usize,
    pub reason: StopReason,
}

/// How one vCPU resumes.
pub type Action = Resume;

/// The session.
pub struct Session {
    /// What the machine was built from (for [`Session::reset`]).
    spec: Spec,
    ctl: Control,
    /// Kept alive for as long as its vCPUs run.
    _vm: Box<dyn crate::backend::Vm>,
    state: Arc<DebugState>,
    mem: GuestMemoryMmap,
    bus: Arc<Bus>,
    caps: Caps,
    image: LoadedImage,
    /// Stops not reported yet (several vCPUs stopped together).
    pending: VecDeque<Event>,
    /// An interrupt (Ctrl-C) was requested and not reported yet.
    interrupted: bool,
    /// vCPUs that stopped because they wait for nothing (reported when nothing else runs).
    idle: Vec<usize>,
    /// The vCPU resumed first by the last resume (reported for an interrupt).
    last_resumed: usize,
    /// Register values (and power states) read during this stop.
    cache: StopCache,
    mmio_access: bool,
    /// Snapshots and their RAM pages, once recording started (`snapshot.rs`).
    recording: Option<snapshot::Recording>,
    /// The actions of the last resume (resumed again after a stop the session asked for).
    resumed: Vec<(usize, Action)>,
    /// Why the last reverse request could not be made (`replay.rs`), until the next resume.
    reverse_note: Option<String>,
    /// The bound of a recording's memory (`retention.rs`).
    record_limit: u64,
}

impl Session {
    /// Starts the machine's vCPU threads under the debugger; every vCPU starts stopped.
    pub fn new(machine: Machine) -> Result<Session> {
        let spec = machine.spec().clone();
        let caps = machine.vm.caps().clone();
        let mem = machine.view.mem().clone();
        let state = Arc::new(DebugState::new(mem.clone(), &caps));
        let bus = machine.bus.clone();
        let image = machine.image.clone();
        let mut hooks = spec.test_hooks;
        // With the deterministic clock a step does not hold off interrupts: a step that did
        // would run a history that a replay (which never steps) could not reproduce.
        hooks.no_irq_mask |= spec.icount;
        let ctl = Control::start(
            machine.vcpus,
            machine.view,
            machine.bus,
            machine.trace,
            state.clone(),
            hooks,
        )?;
        Ok(Session {
            spec,
            ctl,
            _vm: machine.vm,
            state,
            mem,
            bus,
            caps,
            image,
            pending: VecDeque::new(),
            interrupted: false,
            idle: Vec::new(),
            last_resumed: 0,
            cache: StopCache::default(),
            mmio_access: false,
            recording: None,
            resumed: Vec::new(),
            reverse_note: None,
            record_limit: retention::DEFAULT_LIMIT,
        })
    }

    pub fn vcpu_count(&self) -> usize {
        self.ctl.vcpu_count()
    }

    pub fn caps(&self) -> &Caps {
        &self.caps
    }

    pub fn image(&self) -> &LoadedImage {
        &self.image
    }

    pub fn debug_state(&self) -> &DebugState {
        &self.state
    }

    /// The fd that becomes readable when a vCPU event is pending (for poll()).
    pub fn event_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.ctl.event_fd()
    }

    pub fn set_mmio_access(&mut self, on: bool) {
        self.mmio_access = on;
    }

    pub fn mmio_access(&self) -> bool {
        self.mmio_access
    }

    // ---- registers ------------------------------------------------------------------------

    /// Reads registers of a stopped vCPU (cached for the rest of this stop).
    pub fn read_regs(&mut self, vcpu: usize, regs: &[Reg]) -> Result<Vec<u128>> {
        let missing: Vec<Reg> = regs
            .iter()
            .copied()
            .filter(|r| !self.cache.contains_key(&(vcpu, *r)))
            .collect();
        if !missing.is_empty() {
            let want = missing.clone();
            let got = self.ctl.with_vcpu(vcpu, move |v| {
                want.iter()
                    .map(|r| v.get_reg(*r))
                    .collect::<std::result::Result<Vec<u128>, _>>()
            })??;
            for (r, val) in missing.into_iter().zip(got) {
                self.cache.insert((vcpu, r), val);
            }
        }
        Ok(regs.iter().map(|r| self.cache[&(vcpu, *r)]).collect())
    }

    pub fn read_reg(&mut self, vcpu: usize, reg: Reg) -> Result<u128> {
        Ok(self.read_regs(vcpu, &[reg])?[0])
    }

    /// Writes a register of a stopped vCPU.
    pub fn write_reg(&mut self, vcpu: usize, reg: Reg, value: u128) -> Result<()> {
        self.refuse_in_past("a register write")?;
        // Dropped from the cache rather than stored: the backend may keep a value other than
        // the one written (bits it ignores), and the next read must show what it kept.
        self.cache.remove(&(vcpu, reg));
        self.ctl.with_vcpu(vcpu, move |v| v.set_reg(reg, value))??;
        super::record::note(
            &self._vm.recorder(),
            vcpu,
            Input::RegisterWrite { reg, value },
        );
        Ok(())
    }

    /// True while `vcpu` is powered off (it can execute nothing until a PSCI CPU_ON).
    /// Cached for the rest of the stop: only a running vCPU changes a power state.
    pub fn powered_off(&mut self, vcpu: usize) -> Result<bool> {
        if let Some(&off) = self.cache.powered_off.get(&vcpu) {
            return Ok(off);
        }
        let off = self.ctl.with_vcpu(vcpu, |v| v.powered_off())??;
        self.cache.powered_off.insert(vcpu, off);
        Ok(off)
    }

    /// The registers this vCPU's backend can read.
    pub fn reg_list(&mut self, vcpu: usize) -> Result<Vec<Reg>> {
        Ok(self.ctl.with_vcpu(vcpu, |v| v.reg_list())??)
    }

    // ---- memory ---------------------------------------------------------------------------

    /// Translates `va` through `vcpu`'s stage-1 tables, recording each level.
    pub fn translate(
        &mut self,
        vcpu: usize,
        va: u64,
    ) -> Result<(std::result::Result<Translation, TranslateError>, WalkTrace)> {
        let mem = self.mem.clone();
        self.ctl.with_vcpu(vcpu, move |v| {
            let mut trace = WalkTrace::default();
            let t = translate::translate_traced(v, &mem, va, &mut trace);
            (t, trace)
        })
    }

    // ---- breakpoints and watchpoints --------------------------------------------------------

    /// Plants a software breakpoint at `va` (translated by `vcpu`).
    pub fn insert_sw_breakpoint(
        &mut self,
        vcpu: usize,
        va: u64,
    ) -> std::result::Result<(), MemError> {
        let pa = self.ram_pa(vcpu, va)?;
        Ok(self.state.insert_sw(va, pa)?)
    }

    pub fn remove_sw_breakpoint(&mut self, va: u64) -> std::result::Result<bool, MemError> {
        Ok(self.state.remove_sw(va)?)
    }

    pub fn insert_hw_breakpoint(&mut self, va: u64) -> std::result::Result<(), DebugError> {
        self.state.insert_hw_bp(va)
    }

    pub fn remove_hw_breakpoint(&mut self, va: u64) -> bool {
        self.state.remove_hw_bp(va)
    }

    pub fn insert_watchpoint(&mut self, w: Watch) -> std::result::Result<(), DebugError> {
        self.state.insert_watch(w)
    }

    pub fn remove_watchpoint(&mut self, w: Watch) -> bool {
        self.state.remove_watch(w)
    }

    fn ram_pa(&mut self, vcpu: usize, va: u64) -> std::result::Result<u64, MemError> {
        let regs = self.translation_regs(vcpu)?;
        let t = translate::translate_with(&regs, &self.mem, va)?;
        if mem::ram_left(&self.mem, t.pa).is_none_or(|left| left < 4) {
            return Err(MemError::Unmapped { va, pa: t.pa });
        }
        Ok(t.pa)
    }

    // ---- execution --------------------------------------------------------------------------

    /// Resumes the listed vCPUs (the others stay stopped). A vCPU sitting on one of our
    /// breakpoints first steps off it with the breakpoint lifted. If stops are still queued,
    /// nothing runs: the next [`Session::poll_stop`] reports one.
    pub fn resume(&mut self, actions: &[(usize, Action)]) -> Result<()> {
        if let Some(&(first, _)) = actions.first() {
            self.last_resumed = first;
        }
        if !self.pending.is_empty() {
            self.cache.clear();
            return Ok(());
        }
        // Recording: where the machine stops on its own (`replay.rs`).
        self.reverse_note = None;
        self.arm_stop()?;
        self.resumed = actions.to_vec();
        let mut go = Vec::new();
        for &(vcpu, how) in actions {
            // With the deterministic clock only the turn's holder has reached its PC; another
            // vCPU there meets the breakpoint when its turn comes, as running on would.
            if !self.holds_turn(vcpu) {
                go.push((vcpu, how));
                continue;
            }
            let Some(ev) = self.step_off_breakpoint(vcpu)? else {
                go.push((vcpu, how));
                continue;
            };
            let stepped = ev.reason == StopReason::Step;
            if !stepped || how == Resume::Step || !self.still_in_range(vcpu, how)? {
                // The step off the breakpoint was the whole request, left the range, or
                // stopped for another reason: that is the stop to report.
                self.pending.push_back(ev);
                return Ok(());
            }
            go.push((vcpu, how));
        }
        // Registers read during this stop are stale once anything runs.
        self.cache.clear();
        self.resuming(&go);
        for (vcpu, how) in go {
            self.ctl.resume(vcpu, how)?;
        }
        Ok(())
    }

    /// For a range step, whether `vcpu`'s PC is still inside the range.
    fn still_in_range(&mut self, vcpu: usize, how: Resume) -> Result<bool> {
        match how {
            Resume::RangeStep { start, end } => {
                let pc = self.read_reg(vcpu, Reg::Pc)? as u64;
                self.cache.clear();
                Ok(pc >= start && pc < end)
            }
            _ => Ok(true),
        }
    }

    /// When `vcpu`'s PC is on one of our breakpoints, steps it off with that breakpoint lifted
    /// and returns the step's event. A PC that cannot be read is an error: resuming without
    /// stepping off would stop on the same breakpoint again.
    fn step_off_breakpoint(&mut self, vcpu: usize) -> Result<Option<Event>> {
        let (sw_count, hw_count, _) = self.state.counts();
        if sw_count == 0 && hw_count == 0 && self.state.catch_slots() == 0 {
            return Ok(None);
        }
        // The PC and the translation registers come from this stop's register cache: gdb
        // has usually read them already, so this costs no trip to the vCPU thread.
        let pc = self.read_reg(vcpu, Reg::Pc)? as u64;
        let pa = match self.translation_regs(vcpu) {
            Ok(regs) => translate::translate_with(&regs, &self.mem, pc)
                .ok()
                .map(|t| t.pa),
            Err(MemError::Machine(e)) => return Err(e),
            Err(_) => None,
        };
        // VBAR_EL1 places the vector catch's entries; without a catch nothing reads it.
        let vbar = if self.state.catch_slots() == 0 {
            0
        } else {
            self.read_reg(vcpu, Reg::Sys(crate::a64::sys::VBAR_EL1))? as u64
        };
        let sw = pa.filter(|pa| self.state.sw_planted(*pa));
        // Ours: a user's hardware breakpoint or a vector catch entry planted as one.
        let hw = self.state.hw_bp_at(pc, vbar);
        if sw.is_none() && !hw {
            return Ok(None);
        }
        if let Some(pa) = sw {
            self.state.lift(pa)?;
        }
        if hw {
            self.state.suspend_hw_bp(Some(pc))?;
        }
        self.cache.clear();
        self.resuming(&[(vcpu, Resume::Step)]);
        let outcome = self
            .ctl
            .resume(vcpu, Resume::Step)
            .and_then(|_| self.ctl.next_event());
        if let Some(pa) = sw {
            self.state.replant(pa)?;
        }
        if hw {
            self.state.suspend_hw_bp(None)?;
        }
        outcome.map(Some)
    }

    /// Asks every running vCPU to stop (Ctrl-C); the stop is reported by `poll_stop`.
    pub fn interrupt(&mut self) {
        self.interrupted = true;
        self.ctl.pause_all();
    }

    /// Returns the next stop to report, if any, without blocking. When a vCPU stops, every
    /// other vCPU is stopped too before the stop is reported (all-stop). Call it after every
    /// resume before waiting on [`Session::event_fd`]: a queued stop raises no event.
    pub fn poll_stop(&mut self) -> Result<Option<Stop>> {
        while let Some(ev) = self.ctl.try_event() {
            self.absorb(ev);
        }
        let running = self.ctl.any_running();
        let reportable =
            !self.pending.is_empty() || (!running && (self.interrupted || !self.idle.is_empty()));
        if !reportable {
            return Ok(None);
        }
        for ev in self.ctl.stop_all()? {
            self.absorb(ev);
        }
        self.cache.clear();
        if self.own_stop()? {
            return Ok(None);
        }
        Ok(self.take_stop())
    }

    /// While a vCPU runs, spins briefly for its stop; true when a vCPU event waits (then
    /// [`Session::poll_stop`] takes it without a sleep in poll(2) and a wake-up).
    pub fn stop_soon(&self) -> bool {
        self.ctl.event_soon()
    }

    /// Blocks until a stop is reportable.
    pub fn wait_stop(&mut self) -> Result<Stop> {
        loop {
            if let Some(s) = self.poll_stop()? {
                return Ok(s);
            }
            if !self.ctl.any_running() {
                return Err(MachineError::NothingRunning);
            }
            let ev = self.ctl.next_event()?;
            self.absorb(ev);
        }
    }

    fn absorb(&mut self, ev: Event) {
        match ev.reason {
            // Our own pauses are not stops; an interrupt is reported once, in take_stop.
            StopReason::Paused => {}
            StopReason::Idle => self.idle.push(ev.vcpu),
            _ => self.pending.push_back(ev),
        }
    }

    fn take_stop(&mut self) -> Option<Stop> {
        let stop = if let Some(ev) = self.pending.pop_front() {
            Stop {
                vcpu: ev.vcpu,
                reason: ev.reason,
            }
        } else if self.interrupted {
            Stop {
                vcpu: self.last_resumed,
                reason: StopReason::Paused,
            }
        } else {
            Stop {
                vcpu: *self.idle.first()?,
                reason: StopReason::Idle,
            }
        };
        self.interrupted = false;
        self.idle.clear();
        if let Some(now) = self.clock() {
            self.note_position(now);
        }
        Some(stop)
    }

    /// Removes every breakpoint and watchpoint and lets the guest run on (detach).
    pub fn detach(&mut self) -> Result<()> {
        let cleared = self.state.clear();
        self.pending.clear();
        self.interrupted = false;
        self.idle.clear();
        let all: Vec<(usize, Resume)> = (0..self.vcpu_count())
            .map(|v| (v, Resume::Continue))
            .collect();
        // Nobody handles the session's own stops once gdb is gone: the guest runs on (a
        // recording takes its next snapshot at the next resume under a debugger).
        self.set_stop(Default::default());
        // Detached in the past: the output of the history replayed is printed again.
        self.set_muted(false);
        self.resuming(&all);
        for vcpu in 0..self.vcpu_count() {
            if !self.ctl.is_running(vcpu) {
                self.ctl.resume(vcpu, Resume::Continue)?;
            }
        }
        Ok(cleared?)
    }

    /// Removes every breakpoint and watchpoint and stops every vCPU (kill / disconnect
    /// before the machine is dropped).
    pub fn stop_and_clear(&mut self) -> Result<()> {
        self.ctl.stop_all()?;
        self.pending.clear();
        Ok(self.state.clear()?)
    }
}

/// What was read from stopped vCPUs during this stop: register values by (vCPU, register)
/// (the map it dereferences to) and power states. Emptied as a whole whenever anything runs
/// or the machine's state is replaced.
#[derive(Default)]
struct StopCache {
    regs: HashMap<(usize, Reg), u128>,
    powered_off: HashMap<usize, bool>,
}

impl StopCache {
    fn clear(&mut self) {
        self.regs.clear();
        self.powered_off.clear();
    }
}

impl std::ops::Deref for StopCache {
    type Target = HashMap<(usize, Reg), u128>;
    fn deref(&self) -> &Self::Target {
        &self.regs
    }
}

impl std::ops::DerefMut for StopCache {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.regs
    }
}
