//! Reverse execution over a recording: going to any earlier point of the recorded history,
//! and the stops a debugger's reverse step and reverse continue report.
//!
//! A point in history is a value of the deterministic clock (every vCPU's retired
//! instructions and exception entries, plus what WFI skipped; `backend/model/icount.rs`):
//! only the vCPU holding the turn executes, so one clock value is one state of the machine.
//! To reach clock T the session restores the newest snapshot at or before T
//! (`snapshot.rs`) and runs every vCPU forward with the backend told to stop at T
//! (`Recorder::set_stop`), applying the recorded debugger writes at the clock they were made.
//!
//! - Live (the clock at the recording's newest point, its horizon) and in the past, a resume
//!   stops where the session needs it to (`history.rs`): snapshot points live; recorded
//!   inputs and the horizon in the past. Debugger writes in the past are refused
//!   (`refuse_in_past`): the recording has one history, and a write would start another.
//! - Reverse step of vCPU k: to the first point at which k had retired one fewer
//!   (instructions and exception entries): the instruction before in a single-vCPU guest; in
//!   an SMP guest the other vCPUs' instructions between the two are undone as well.
//! - Reverse continue: the snapshot intervals are replayed newest first, each recording the
//!   breakpoint, watchpoint and vector-catch stops met on the way (`Hit`); the last hit
//!   before the starting point is where it stops. A breakpoint stops before its instruction
//!   (as forward); a watchpoint stops after the instruction that made the access, so that
//!   gdb's own reverse step over it (gdb steps over every watchpoint hit in the direction
//!   of travel, aarch64 watchpoints being reported before the access: it sends `bs` with the
//!   watchpoint removed) ends before that instruction executes, where gdb reports the
//!   change. No hit: the start of the recording, reported as [`StopReason::HistoryStart`].
//!
//! Owns running forward to a point and the reverse requests; the position bookkeeping is
//! `history.rs`'s, the snapshots and pages `snapshot.rs`'s, the clock the backend's.

use crate::a64::Reg;
use crate::backend::icount::StopAt;
use crate::debug::policy::StopKind;

use super::{Event, MachineError, Result, Resume, Session, Stop, StopReason};

/// Clock ticks between two snapshots of a live recording: about 30 ms of the model's time
/// at its speed (docs/benchmarks.md), which bounds the replay a reverse step costs; the
/// snapshots cost about 1% (docs/benchmarks.md, "Recording").
pub const SNAPSHOT_INTERVAL: u64 = 4_000_000;

/// Where to run forward to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Target {
    Clock(u64),
    /// vCPU `.0` has retired `.1`.
    Retired(usize, u64),
}

/// A stop met while replaying: its clock and what it was.
type Hit = (u64, Event);

impl Session {
    /// Runs every vCPU forward until `target`, applying the recorded inputs on the way;
    /// with `hits`, the debug stops met (each stepped past). `Some` with the stop that ended
    /// the run early (power off, a fault, every vCPU idle).
    fn advance(
        &mut self,
        target: Target,
        mut hits: Option<&mut Vec<Hit>>,
    ) -> Result<Option<Event>> {
        let all: Vec<usize> = (0..self.vcpu_count()).collect();
        let mut past: Option<usize> = None;
        loop {
            self.apply_due()?;
            let now = self.clock().unwrap_or(0);
            let reached = match target {
                Target::Clock(t) => now >= t,
                Target::Retired(v, n) => self.retired(v) >= n,
            };
            if reached {
                return Ok(None);
            }
            let next_input = self.unapplied().first().map(|e| e.at);
            let clock = match target {
                Target::Clock(t) => Some(next_input.map_or(t, |at| at.min(t))),
                Target::Retired(..) => next_input,
            };
            let retired = match target {
                Target::Retired(v, n) => Some((v, n)),
                Target::Clock(_) => None,
            };
            self.set_stop(StopAt { clock, retired });
            if let Some(v) = past.take() {
                let ev = self.step_past(v)?;
                match ev.reason {
                    StopReason::Step | StopReason::ClockReached => continue,
                    _ => {
                        if let Some(end) = self.hit_or_end(ev, &mut hits) {
                            return Ok(Some(end));
                        }
                        past = Some(v);
                        continue;
                    }
                }
            }
            self.cache.clear();
            let actions: Vec<(usize, Resume)> =
                all.iter().map(|&v| (v, Resume::Continue)).collect();
            self.resuming(&actions);
            for &v in &all {
                self.ctl.resume(v, Resume::Continue)?;
            }
            let ev = self.next_raw_stop()?;
            if ev.reason == StopReason::ClockReached {
                continue;
            }
            let v = ev.vcpu;
            if let Some(end) = self.hit_or_end(ev, &mut hits) {
                return Ok(Some(end));
            }
            past = Some(v);
        }
    }

    /// A debug stop met while replaying is a hit (recorded when asked for); anything else
    /// ends the replay (returned).
    fn hit_or_end(&mut self, ev: Event, hits: &mut Option<&mut Vec<Hit>>) -> Option<Event> {
        match ev.reason {
            StopReason::Debug { .. } => {
                let at = self.clock().unwrap_or(0);
                if let Some(h) = hits.as_deref_mut() {
                    h.push((at, ev));
                }
                None
            }
            _ => Some(ev),
        }
    }

    /// Waits for one vCPU's stop and stops every other (all-stop), without the session's
    /// own handling of `ClockReached`: the first stop that is not a pause. (With the
    /// deterministic clock an idle vCPU means every vCPU is idle: each reports it.)
    fn next_raw_stop(&mut self) -> Result<Event> {
        let first = loop {
            let ev = self.ctl.next_event()?;
            if ev.reason != StopReason::Paused {
                break ev;
            }
        };
        self.ctl.stop_all()?;
        self.cache.clear();
        Ok(first)
    }

    /// Steps vCPU `vcpu` past the point where it stopped (its breakpoint lifted, watchpoints
    /// off for that one instruction); the other vCPUs stay stopped. Returns the step's stop.
    fn step_past(&mut self, vcpu: usize) -> Result<Event> {
        let watches = self.state.watches();
        for w in &watches {
            self.state.remove_watch(*w);
        }
        let stepped = match self.step_off_breakpoint(vcpu) {
            Ok(Some(ev)) => Ok(ev),
            Ok(None) => {
                self.cache.clear();
                self.resuming(&[(vcpu, Resume::Step)]);
                self.ctl
                    .resume(vcpu, Resume::Step)
                    .and_then(|_| self.ctl.next_event())
            }
            Err(e) => Err(e),
        };
        for w in watches {
            self.state
                .insert_watch(w)
                .map_err(|e| MachineError::Recording(format!("re-inserting a watchpoint: {e}")))?;
        }
        self.cache.clear();
        stepped
    }

    /// Restores the newest snapshot whose point is at or before `target` (for a retired
    /// count: before the clock `now`, with the vCPU having retired no more). Its index.
    fn restore_before(&mut self, target: Target, now: u64) -> Result<usize> {
        let rec = self.recording_ref()?;
        let k = rec
            .snaps
            .iter()
            .rposition(|s| match target {
                Target::Clock(t) => s.at <= t,
                Target::Retired(v, n) => s.at < now && s.retired.get(v).is_some_and(|r| *r <= n),
            })
            .unwrap_or(0);
        self.restore_snapshot(k)?;
        Ok(k)
    }

    fn recording_ref(&self) -> Result<&super::snapshot::Recording> {
        self.recording.as_ref().ok_or_else(|| {
            MachineError::Recording(
                "reverse execution needs a recording (kvmdbg run --backend model --record)".into(),
            )
        })
    }

    /// Goes to clock `t` of the recorded history (at or before the horizon).
    pub fn seek(&mut self, t: u64) -> Result<()> {
        self.stopped_for("going to a point of the recording")?;
        self.replaying(|s| {
            s.restore_before(Target::Clock(t), t)?;
            s.advance(Target::Clock(t), None).map(|_| ())
        })
    }

    /// Runs `f` with the session's own stops off, and clears the backend's stop after.
    fn replaying<T>(&mut self, f: impl FnOnce(&mut Self) -> Result<T>) -> Result<T> {
        self.set_muted(true);
        let out = f(self);
        self.set_stop(StopAt::default());
        self.pending.clear();
        self.interrupted = false;
        self.idle.clear();
        self.cache.clear();
        out
    }

    /// Reverse step of `vcpu` (module docs): queues the stop to report (a step, or the start
    /// of the recording) for [`Session::poll_stop`].
    pub fn reverse_step(&mut self, vcpu: usize) -> Result<()> {
        self.stopped_for("a reverse step")?;
        let first = self
            .recording_ref()?
            .snaps
            .first()
            .map(|s| (s.at, s.retired.clone()));
        let Some((start, start_retired)) = first else {
            return Err(MachineError::Recording(
                "the recording has no snapshot".into(),
            ));
        };
        let n = self.retired(vcpu);
        let now = self.clock().unwrap_or(0);
        let floor = start_retired.get(vcpu).copied().unwrap_or(0);
        let reason = if n <= floor {
            if self.clock() != Some(start) {
                self.seek(start)?;
            }
            self.note_history_dropped();
            StopReason::HistoryStart
        } else {
            self.replaying(|s| {
                s.restore_before(Target::Retired(vcpu, n - 1), now)?;
                s.advance(Target::Retired(vcpu, n - 1), None).map(|_| ())
            })?;
            StopReason::Step
        };
        self.pending.push_back(Event { vcpu, reason });
        Ok(())
    }

    /// Reverse continue (module docs): queues the stop to report.
    pub fn reverse_continue(&mut self, vcpu: usize) -> Result<()> {
        self.stopped_for("a reverse continue")?;
        let now = self.clock().unwrap_or(0);
        let snaps: Vec<u64> = self.recording_ref()?.snaps.iter().map(|s| s.at).collect();
        let Some(mut k) = snaps.iter().rposition(|&at| at < now) else {
            self.note_history_dropped();
            self.pending.push_back(Event {
                vcpu,
                reason: StopReason::HistoryStart,
            });
            return Ok(());
        };
        let mut end = now;
        let found = self.replaying(|s| loop {
            s.restore_snapshot(k)?;
            let mut hits = Vec::new();
            s.advance(Target::Clock(end), Some(&mut hits))?;
            if let Some((at, ev)) = hits.into_iter().rev().find(|(at, _)| *at < end) {
                s.restore_snapshot(k)?;
                s.advance(Target::Clock(at), None)?;
                return s.land_on_hit(ev).map(Some);
            }
            if k == 0 {
                s.restore_snapshot(0)?;
                return Ok(None);
            }
            end = snaps[k];
            k -= 1;
        })?;
        if found.is_none() {
            self.note_history_dropped();
        }
        self.pending.push_back(found.unwrap_or(Event {
            vcpu,
            reason: StopReason::HistoryStart,
        }));
        Ok(())
    }

    /// At a hit found going backwards: a watchpoint's instruction is executed (module docs).
    fn land_on_hit(&mut self, ev: Event) -> Result<Event> {
        if let StopReason::Debug {
            verdict: StopKind::Watch { .. },
            ..
        } = ev.reason
        {
            let pc = self.read_reg(ev.vcpu, Reg::Pc)?;
            self.set_stop(StopAt::default());
            let stepped = self.step_past(ev.vcpu)?;
            log::debug!(
                "record: watchpoint hit at pc {pc:#x} going backwards, reported after it ({:?})",
                stepped.reason
            );
        }
        Ok(ev)
    }
}

impl Session {
    /// Runs every vCPU forward to clock `t` (`--icount`), through breakpoints and
    /// watchpoints without stopping, replaying recorded inputs in the past. A stop that ends
    /// the run first (power off, a fault, every vCPU idle) is returned.
    pub fn run_to(&mut self, t: u64) -> Result<Option<Stop>> {
        self.stopped_for("running to a clock")?;
        if self._vm.recorder().is_none() {
            return Err(MachineError::Recording(
                "running to a clock needs the deterministic clock (--icount)".into(),
            ));
        }
        let end = self.replaying(|s| s.advance(Target::Clock(t), None))?;
        if let Some(now) = self.clock() {
            self.note_position(now);
        }
        Ok(end.map(|ev| Stop {
            vcpu: ev.vcpu,
            reason: ev.reason,
        }))
    }
}
