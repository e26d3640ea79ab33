//! The run loop's side of interrupts: when the IRQ exception is taken, how stepping meets it,
//! and WFI.
//!
//! Before every instruction the run loop asks [`ModelVcpu::poll_irq`], which costs one
//! countdown: the GIC's verdict ("an IRQ is signalled to this vCPU") is cached and
//! recomputed only when something may have changed it — a GIC, ICC or timer register access
//! by this vCPU (`IrqCtl::mark_dirty`), another vCPU's action (`ATTN_IRQ`), every
//! `POLL_INSNS` instructions while a timer is armed and has not fired, and at every `run`
//! (KVM evaluates the timers when it loads the vCPU); while an IRQ is signalled it looks
//! before every instruction, to take it as soon as PSTATE.I allows.
//!
//! Stepping with interrupts, as real KVM 6.1 does it (tests/conformance/irq_step_*.trace):
//! an instruction the guest executes ends its step at once (ISV = 1), even when it unmasked
//! a pending IRQ; at the next entry the IRQ is taken first and the step ends at the IRQ
//! vector (ISV = 0) with SPSR_EL1.SS = 1 (KVM set PSTATE.SS to step). After an instruction
//! completed outside the guest (MMIO, HVC, a trapped register such as ICC_SGI1R_EL1, WFI)
//! the re-entry also takes a deliverable IRQ first: the step ends at the vector, SPSR.SS = 0.
//!
//! WFI with a signalled interrupt completes in the guest (`cpu::intr`); otherwise KVM would
//! trap it and block the vCPU until its GIC has a pending interrupt above the priority mask
//! (`kvm_vgic_vcpu_pending_irq`, whatever PSTATE.I), a timer deadline passes or a kick
//! arrives. With no timer armed the vCPU waits for the other vCPUs; when every powered-on
//! vCPU waits like that, nothing can ever wake them and each reports `Idle`.

use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::a64::pstate;
use crate::backend::VcpuExit;

use super::cpu::sysregs::CNTFRQ;
use super::vcpu::{ModelVcpu, StepEvent};
use super::{Power, ATTN_IRQ};

/// Instructions between two looks at the counter while a timer is armed: at the model's
/// speed a few microseconds, well inside the timer's resolution for a guest.
const POLL_INSNS: u32 = 1024;

impl ModelVcpu {
    /// Brings the timer lines and the cached IRQ verdict up to date, and sets when to look
    /// next: before the next instruction while an IRQ is signalled (to take it as soon as
    /// PSTATE.I allows), after `POLL_INSNS` while a timer is armed and has not fired, else
    /// only when something is flagged.
    pub(super) fn refresh_irq(&mut self) {
        self.cpu.sync_timer_lines();
        if self.cpu.irq.take_dirty() {
            self.irq_line = self.cpu.bus.gic().signalled(self.index);
        }
        self.cpu.irq.countdown = if self.irq_line {
            1
        } else if self.cpu.timer_deadline().is_some() {
            POLL_INSNS
        } else {
            u32::MAX
        };
    }

    /// Before an instruction: takes the IRQ exception if one is signalled and PSTATE.I is
    /// clear; true if it did. Costs a countdown unless there is something to look at.
    #[inline]
    pub(super) fn poll_irq(&mut self) -> bool {
        self.cpu.irq.countdown -= 1;
        if self.cpu.irq.countdown != 0 {
            return false;
        }
        self.poll_irq_now()
    }

    fn poll_irq_now(&mut self) -> bool {
        // While an IRQ is signalled only flagged changes matter (a timer firing adds nothing
        // to "signalled"; ICC reads bring the timers up to date themselves).
        if self.cpu.irq.dirty() || !self.irq_line {
            self.refresh_irq();
        } else {
            self.cpu.irq.countdown = 1;
        }
        if !self.irq_line || self.cpu.st.pstate & pstate::I != 0 {
            return false;
        }
        let stepping = self.cpu.dbg.single_step();
        // Active-not-pending (KVM entered the guest with PSTATE.SS = 1) unless the step was
        // already completed outside the guest.
        self.cpu.take_irq(stepping && !self.step_complete());
        self.tick_exception();
        self.step_event(StepEvent::Completed);
        true
    }

    /// The step exit after an instruction completed outside the guest while stepping: the
    /// re-entry takes a deliverable IRQ before the pending step exception, so the step ends
    /// at the IRQ vector instead of the next instruction. ISV = 0 either way.
    /// Called with single-step on, so `Completed` marks the step complete.
    pub(super) fn finish_emulated_step(&mut self) -> VcpuExit {
        self.step_event(StepEvent::Completed);
        self.cpu.irq.mark_dirty();
        self.poll_irq();
        // The step exit has priority over a vector catch at the same vector.
        self.cpu.dbg.caught = false;
        self.step_event(StepEvent::Reported);
        Self::step_exit(true)
    }

    /// A waiting WFI looks again: `None` when the GIC has an interrupt that wakes it, else
    /// `Some` with the timer deadline it may wait for (if one is armed).
    pub(super) fn wfi_still_waits(&mut self) -> Option<Option<u64>> {
        self.cpu.irq.mark_dirty();
        self.refresh_irq();
        if self.cpu.bus.gic().wakes_from_wfi(self.index) {
            return None;
        }
        Some(self.cpu.timer_deadline())
    }

    /// The vCPU's attention bits as a waiting WFI sees them: an interrupt became pending
    /// (consumed: look again), another request (a kick, a pause: back to the run loop), or
    /// nothing.
    pub(super) fn wait_attention(&self) -> WaitAttention {
        let attention = self.attention.load(Ordering::SeqCst);
        if attention & ATTN_IRQ != 0 {
            self.attention.fetch_and(!ATTN_IRQ, Ordering::SeqCst);
            WaitAttention::Interrupt
        } else if attention != 0 {
            WaitAttention::Request
        } else {
            WaitAttention::None
        }
    }

    /// WFI that did not complete in the guest (PC already past it): blocks as KVM's
    /// `kvm_vcpu_wfi` does. `None` to go on running; `Idle` when nothing can wake it.
    pub(super) fn wait_for_interrupt(&mut self) -> Option<VcpuExit> {
        if self.shared.sched.is_some() {
            return self.wfi_icount();
        }
        loop {
            let deadline = self.wfi_still_waits()?;
            let power = self.shared.lock_power();
            match self.wait_attention() {
                WaitAttention::Interrupt => continue,
                WaitAttention::Request => return None,
                WaitAttention::None => {}
            }
            match deadline {
                Some(cval) => {
                    let now = self.cpu.counter();
                    if now < cval {
                        let ticks = (cval - now).min(CNTFRQ);
                        let wait = Duration::from_nanos(ticks * (1_000_000_000 / CNTFRQ));
                        let _unused = self.shared.cv.wait_timeout(power, wait);
                    }
                }
                None => {
                    let on = power.iter().filter(|p| **p != Power::Off).count();
                    let stalls = self.shared.stalls.load(Ordering::SeqCst);
                    if self.shared.sleepers.fetch_add(1, Ordering::SeqCst) + 1 >= on
                        && !self.shared.host_may_deliver()
                    {
                        // Every powered-on vCPU waits with nothing armed, and no host input
                        // can come (a device's interrupt would wake them): no one can.
                        self.shared.sleepers.fetch_sub(1, Ordering::SeqCst);
                        self.shared.stalls.fetch_add(1, Ordering::SeqCst);
                        drop(power);
                        self.shared.cv.notify_all();
                        return Some(VcpuExit::Idle);
                    }
                    let _unused = self
                        .shared
                        .cv
                        .wait(power)
                        .unwrap_or_else(|e| e.into_inner());
                    self.shared.sleepers.fetch_sub(1, Ordering::SeqCst);
                    if self.shared.stalls.load(Ordering::SeqCst) != stalls {
                        return Some(VcpuExit::Idle);
                    }
                }
            }
        }
    }
}

/// See [`ModelVcpu::wait_attention`].
pub(super) enum WaitAttention {
    Interrupt,
    Request,
    None,
}
