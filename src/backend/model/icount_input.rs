//! Host input under the deterministic clock (the model's side of `icount::HostInput`): the
//! turn's holder admits what devices' host sides received at the start of each of its quanta
//! (`icount_slice`, and each turn a vCPU takes in WFI), and blocks for it when every vCPU
//! waits in WFI with no timer armed (`wfi_icount`); see `icount.rs`'s module docs. Must not
//! depend on `machine`.

use std::sync::{Arc, MutexGuard};

use crate::backend::icount::{HostInput, HostWake, Recorder};
use crate::backend::VcpuExit;

use super::icount::Sched;
use super::irq::WaitAttention;
use super::vcpu::ModelVcpu;
use super::Power;

impl Sched {
    /// Connects a device's host side (`Vm::attach_host_input`).
    pub fn attach_input(&self, input: Arc<dyn HostInput>) {
        self.hosts_now().push(input);
    }

    fn hosts_now(&self) -> MutexGuard<'_, Vec<Arc<dyn HostInput>>> {
        self.hosts.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// What an idle machine can expect from its host inputs: the best of them.
    pub(super) fn host_wake(&self) -> HostWake {
        let mut best = HostWake::Never;
        let now = self.now();
        for h in self.hosts_now().iter() {
            match h.wake(now) {
                HostWake::Ready => return HostWake::Ready,
                HostWake::Later => best = HostWake::Later,
                HostWake::Never => {}
            }
        }
        best
    }
}

impl ModelVcpu {
    /// At the start of each quantum of the holder: admits the host input that arrived (see
    /// the module docs), once per quantum.
    pub(super) fn admit_at_quantum_start(&mut self) {
        if !self.holds_turn || self.admitted_for == self.quantum_end {
            return;
        }
        self.admitted_for = self.quantum_end;
        self.admit_host_input();
    }

    /// Admits what every host input has for the guest at the current clock, and records it.
    /// Called by the holder with no lock held.
    fn admit_host_input(&mut self) {
        let Some(sched) = self.shared.sched.clone() else {
            return;
        };
        self.commit_clock();
        let now = sched.now();
        let hosts = sched.hosts_now().clone();
        for h in hosts {
            if let Some(input) = h.admit(now) {
                sched.record(Some(self.index), input);
            }
        }
    }

    /// Every vCPU waits in WFI with no timer armed and this one holds the turn: blocks
    /// (`power` held) until host input arrives, a kick or another request, or the VMM's stop
    /// is due. `None` to look again (input was admitted, or an interrupt became pending),
    /// `Some` with what `wfi_icount` returns.
    pub(super) fn wait_host_input(
        &mut self,
        mut power: MutexGuard<'_, Vec<Power>>,
    ) -> Option<Option<VcpuExit>> {
        let sched = self.shared.sched.clone()?;
        loop {
            match self.wait_attention() {
                WaitAttention::Interrupt => return None,
                WaitAttention::Request => return Some(None),
                WaitAttention::None => {}
            }
            // Input due now is admitted before a stop at this clock, as a replay does.
            match sched.host_wake() {
                HostWake::Ready => {
                    drop(power);
                    self.admit_host_input();
                    return None;
                }
                // Closed meanwhile: look again (the machine is idle).
                HostWake::Never => return None,
                HostWake::Later => {}
            }
            if self.until_stop() == 0 {
                return Some(Some(VcpuExit::ClockReached));
            }
            power = self
                .shared
                .cv
                .wait(power)
                .unwrap_or_else(|e| e.into_inner());
        }
    }
}
