//! Resuming: per-thread actions from `vCont` (continue, step, range step). gdbstub's contract:
//! threads without an action continue, unless the packet had no default action (gdb's
//! `set scheduler-locking on|step`), in which case they stay stopped.

use gdbstub::common::{Signal, Tid};
use gdbstub::target::ext::base::multithread::{
    MultiThreadRangeStepping, MultiThreadRangeSteppingOps, MultiThreadResume,
    MultiThreadSchedulerLocking, MultiThreadSchedulerLockingOps, MultiThreadSingleStep,
    MultiThreadSingleStepOps,
};
use gdbstub::target::ext::base::reverse_exec::{ReverseContOps, ReverseStepOps};

use crate::machine::event::Resume;

use super::{Debugger, GdbError};

impl Debugger {
    fn set_action(
        &mut self,
        tid: Tid,
        how: Resume,
        signal: Option<Signal>,
    ) -> Result<(), GdbError> {
        let vcpu = self
            .vcpu(tid)
            .ok_or_else(|| GdbError::Protocol(format!("resume of unknown thread {tid}")))?;
        if let Some(sig) = signal {
            // Signals have no meaning for a vCPU; gdb passes back the one it was told about.
            log::debug!("gdb: ignoring signal {sig} on resume of thread {tid}");
        }
        self.actions.retain(|(v, _)| *v != vcpu);
        self.actions.push((vcpu, how));
        Ok(())
    }
}

impl MultiThreadResume for Debugger {
    fn resume(&mut self) -> Result<(), Self::Error> {
        let mut actions = std::mem::take(&mut self.actions);
        if !self.sched_lock {
            for vcpu in 0..self.session.vcpu_count() {
                if !actions.iter().any(|(v, _)| *v == vcpu) {
                    actions.push((vcpu, Resume::Continue));
                }
            }
        }
        log::debug!("gdb: resume {actions:?}");
        self.session.resume(&actions)?;
        Ok(())
    }

    fn clear_resume_actions(&mut self) -> Result<(), Self::Error> {
        self.actions.clear();
        self.sched_lock = false;
        Ok(())
    }

    fn set_resume_action_continue(
        &mut self,
        tid: Tid,
        signal: Option<Signal>,
    ) -> Result<(), Self::Error> {
        self.set_action(tid, Resume::Continue, signal)
    }

    fn support_single_step(&mut self) -> Option<MultiThreadSingleStepOps<'_, Self>> {
        Some(self)
    }

    fn support_range_step(&mut self) -> Option<MultiThreadRangeSteppingOps<'_, Self>> {
        Some(self)
    }

    fn support_scheduler_locking(&mut self) -> Option<MultiThreadSchedulerLockingOps<'_, Self>> {
        Some(self)
    }

    /// `bs` and `bc` (`reverse.rs`).
    fn support_reverse_step(&mut self) -> Option<ReverseStepOps<'_, Tid, Self>> {
        Some(self)
    }

    fn support_reverse_cont(&mut self) -> Option<ReverseContOps<'_, Tid, Self>> {
        Some(self)
    }
}

impl MultiThreadSingleStep for Debugger {
    fn set_resume_action_step(
        &mut self,
        tid: Tid,
        signal: Option<Signal>,
    ) -> Result<(), Self::Error> {
        self.set_action(tid, Resume::Step, signal)
    }
}

impl MultiThreadRangeStepping for Debugger {
    fn set_resume_action_range_step(
        &mut self,
        tid: Tid,
        start: u64,
        end: u64,
    ) -> Result<(), Self::Error> {
        self.set_action(tid, Resume::RangeStep { start, end }, None)
    }
}

impl MultiThreadSchedulerLocking for Debugger {
    /// Threads without an action stay stopped.
    fn set_resume_action_scheduler_lock(&mut self) -> Result<(), Self::Error> {
        self.sched_lock = true;
        Ok(())
    }
}
