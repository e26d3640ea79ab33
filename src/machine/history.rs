//! A recording's position bookkeeping: where the machine is in its history (live at the
//! horizon, or in the past), what the backend is told to stop at during a resume (the next
//! snapshot point live; the next recorded input and the horizon in the past), the recorded
//! debugger inputs applied again while history replays, the UART muted meanwhile, and the
//! stops the session asked for handled without reporting them (`own_stop`). The replay
//! engine and the reverse requests are `replay.rs`'s; the snapshots `snapshot.rs`'s.

use std::io::Write;

use crate::backend::icount::{Input, InputEvent, StopAt};

use super::{Event, MachineError, Result, Resume, Session, StopReason};

impl Session {
    /// True while the machine is at an earlier point than the newest its recording reached.
    pub fn in_past(&self) -> bool {
        match (&self.recording, self.clock()) {
            (Some(rec), Some(now)) => now < rec.horizon,
            _ => false,
        }
    }

    /// A reverse request that cannot be made: "no more history" is reported where the
    /// machine is, with `note` (why) for the debugger's console.
    pub fn history_unavailable(&mut self, vcpu: usize, note: String) {
        self.reverse_note = Some(note);
        self.pending.push_back(Event {
            vcpu,
            reason: StopReason::HistoryStart,
        });
    }

    /// Why the last "no more history" stop was reported without moving, if it was.
    pub fn reverse_note(&self) -> Option<&str> {
        self.reverse_note.as_deref()
    }

    /// The error for a debugger write while in the past (module docs).
    pub(super) fn refuse_in_past(&self, what: &str) -> Result<()> {
        match (&self.recording, self.clock()) {
            (Some(rec), Some(now)) if now < rec.horizon => Err(MachineError::Recording(format!(
                "{what} refused: the machine is in the recorded past (clock {now}, recording \
                 reaches {}); a write would change history. Go forward to the end of the \
                 recording first",
                rec.horizon
            ))),
            _ => Ok(()),
        }
    }

    pub(super) fn set_stop(&self, at: StopAt) {
        if let Some(r) = self._vm.recorder() {
            r.set_stop(at);
        }
    }

    /// False when the deterministic clock's turn is another vCPU's (always true without it).
    pub(super) fn holds_turn(&self, vcpu: usize) -> bool {
        self._vm.recorder().is_none_or(|r| r.holder() == vcpu)
    }

    /// Tells the backend which vCPUs are about to be resumed (`Recorder::resuming`).
    pub(super) fn resuming(&self, actions: &[(usize, Resume)]) {
        if let Some(r) = self._vm.recorder() {
            let vcpus: Vec<usize> = actions.iter().map(|(v, _)| *v).collect();
            r.resuming(&vcpus);
        }
    }

    pub(super) fn retired(&self, vcpu: usize) -> u64 {
        self._vm.recorder().map_or(0, |r| r.retired(vcpu))
    }

    /// The recorded inputs not applied yet in this replay.
    pub(super) fn unapplied(&self) -> Vec<InputEvent> {
        let (Some(rec), Some(r)) = (&self.recording, self._vm.recorder()) else {
            return Vec::new();
        };
        r.inputs().into_iter().skip(rec.applied).collect()
    }

    /// Applies the recorded inputs due at the current clock (every vCPU stopped).
    pub(super) fn apply_due(&mut self) -> Result<()> {
        let Some(now) = self.clock() else {
            return Ok(());
        };
        for ev in self.unapplied() {
            if ev.at > now {
                break;
            }
            self.apply_input(&ev)?;
            if let Some(rec) = self.recording.as_mut() {
                rec.applied += 1;
            }
        }
        Ok(())
    }

    /// Applies one recorded input again, without recording it.
    pub(super) fn apply_input(&mut self, ev: &InputEvent) -> Result<()> {
        let vcpu = ev.vcpu.unwrap_or(0);
        match &ev.input {
            Input::MemoryWrite { addr, data } => self
                .write_virt_unrecorded(vcpu, *addr, data)
                .map_err(|e| MachineError::Recording(format!("replaying a write: {e}"))),
            Input::RegisterWrite { reg, value } => {
                let (reg, value) = (*reg, *value);
                self.cache.remove(&(vcpu, reg));
                Ok(self.ctl.with_vcpu(vcpu, move |v| v.set_reg(reg, value))??)
            }
            // A stop changes nothing in the guest; console input is admitted again by the
            // UART's host side at its clock (`replay_console`).
            Input::Interrupt | Input::Console { .. } => Ok(()),
        }
    }

    /// Mutes the UART output while history replays, and unmutes it at the horizon.
    pub(super) fn set_muted(&mut self, mute: bool) {
        let Some(rec) = self.recording.as_mut() else {
            return;
        };
        let mut out = self.spec.uart_out.lock().unwrap_or_else(|e| e.into_inner());
        if mute && rec.muted.is_none() {
            let _ = out.flush();
            rec.muted = Some(std::mem::replace(&mut *out, Box::new(std::io::sink())));
        } else if !mute {
            if let Some(live) = rec.muted.take() {
                *out = live;
            }
        }
    }

    /// Before a resume: where the machine stops on its own (module docs). Every vCPU stopped.
    pub(super) fn arm_stop(&mut self) -> Result<()> {
        let Some(now) = self.clock() else {
            return Ok(());
        };
        if self.recording.is_none() {
            return Ok(());
        }
        self.apply_due()?;
        let next_input = self.unapplied().first().map(|e| e.at);
        let Some(rec) = self.recording.as_ref() else {
            return Ok(());
        };
        let (live, horizon, next_snap) = (now >= rec.horizon, rec.horizon, rec.next_snap);
        let stop = if live {
            next_snap
        } else {
            next_input.map_or(horizon, |at| at.min(horizon))
        };
        self.set_muted(!live);
        self.set_stop(StopAt {
            clock: Some(stop.max(now + 1)),
            retired: None,
        });
        Ok(())
    }

    /// A stop the session asked for during a resume (every vCPU stopped): takes the snapshot
    /// due, applies the inputs due, moves the horizon.
    pub(super) fn on_clock_reached(&mut self) -> Result<()> {
        let now = self.clock().unwrap_or(0);
        self.note_position(now);
        let due = self.recording.as_ref().is_some_and(|r| now >= r.next_snap);
        if due {
            self.take_snapshot()?;
        }
        Ok(())
    }

    /// At a stop: a clock past the horizon moves it (the machine runs live); at the
    /// horizon every recorded input is applied.
    pub(super) fn note_position(&mut self, now: u64) {
        let inputs = self._vm.recorder().map_or(0, |r| r.inputs().len());
        if let Some(rec) = self.recording.as_mut() {
            if now >= rec.horizon {
                rec.horizon = now;
                rec.applied = inputs;
                self.spec.uart_in.go_live();
            }
        }
    }

    /// After a restore: the console input recorded after that point is admitted again at its
    /// clock, and live host input waits until the end of the recording.
    pub(super) fn replay_console(&self) {
        let (Some(rec), Some(r)) = (&self.recording, self._vm.recorder()) else {
            return;
        };
        let schedule = r
            .inputs()
            .into_iter()
            .skip(rec.applied)
            .filter_map(|ev| match ev.input {
                Input::Console { bytes, .. } => Some((ev.at, bytes)),
                _ => None,
            })
            .collect();
        self.spec.uart_in.replay(schedule);
    }

    /// A stop the session asked for (`StopReason::ClockReached`, every vCPU stopped): handled
    /// (`replay.rs`) and, with nothing else to report, the vCPUs resumed as they were (no
    /// stepping off a breakpoint: the vCPU has not reached it yet). True if resumed.
    pub(super) fn own_stop(&mut self) -> Result<bool> {
        if self.recording.is_none() {
            return Ok(false);
        }
        let before = self.pending.len();
        self.pending
            .retain(|ev| ev.reason != StopReason::ClockReached);
        if self.pending.len() == before {
            return Ok(false);
        }
        self.on_clock_reached()?;
        if !self.pending.is_empty() || self.interrupted || !self.idle.is_empty() {
            return Ok(false);
        }
        self.arm_stop()?;
        let again = self.resumed.clone();
        self.resuming(&again);
        for (vcpu, how) in again {
            self.ctl.resume(vcpu, how)?;
        }
        Ok(true)
    }
}
