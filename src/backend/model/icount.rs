//! The model's deterministic clock (`VmConfig::icount`): instruction counting, the vCPUs'
//! turns, WFI that skips ahead, and the input log.
//!
//! - Clock: one generic-counter tick per instruction retired by any vCPU (`Cpu::insns`, an
//!   exact count) and per exception a vCPU takes (`tick_exception`: the states before and
//!   after an entry are two points of history), at the architected [`CNTFRQ`] of 62.5 MHz:
//!   the guest sees a CPU that retires 62.5 million instructions per second, whatever the
//!   host's speed. A WFI with nothing pending never sleeps: when every powered-on vCPU
//!   waits, the clock jumps to the earliest timer deadline among them.
//! - Interleaving: the vCPU threads pass a turn (a baton) round-robin in index order; only the
//!   holder executes instructions. The holder keeps the turn for [`QUANTUM`] instructions,
//!   across its exits to the VMM (MMIO, PSCI, debug stops), and passes it to the next vCPU
//!   that is not powered off when the quantum ends, when it waits in WFI, or when it powers
//!   itself off. A vCPU whose timer is armed ends its batches at the deadline, so its own
//!   timer interrupt is taken at the exact tick; another vCPU's timer is seen when that vCPU
//!   gets its turn (at most a quantum per other vCPU later), always at the same tick.
//! - CPU_ON: the target becomes runnable at the start of its first turn after the caller's
//!   HVC. The HVC only marks it `Starting`; the target's reset is applied by its own run
//!   loop while it holds the turn, after the stop check at that clock, as one tick of its
//!   count (`psci.rs` `start_if_pending`). Until then it keeps the registers it had, whenever
//!   its host thread wakes, so a live run, a replay and a restored snapshot agree.
//! - Inputs from outside the guest are recorded with the clock at which they took effect
//!   ([`Recorder`]): the clock is committed whenever the holder leaves `run`, so anything the
//!   VMM applies at an exit (a device register read, a debugger's write while stopped) is
//!   stamped exactly. A kick (Ctrl-C) lands wherever the holder was and is recorded there.
//!   Host input that arrives at any moment (console bytes: [`HostInput`]) is admitted by the
//!   holder at the start of each of its quanta (before its first batch, and at each turn in
//!   WFI) and recorded with the clock there. When every vCPU waits in WFI with no timer
//!   armed, the clock cannot skip ahead: if a host input is open the holder blocks until
//!   input arrives (admitted at the current clock; an interrupt it raises then wakes the
//!   WFI as any other), a kick, or a stop the VMM set at that clock (`ClockReached`, PC past
//!   the WFI); only with nothing that can come is it `Idle`.
//! - Stops: a holder stopped by the VMM keeps the turn; when the VMM resumes vCPUs without
//!   it (`Recorder::resuming`) the first of them to wait takes it, and the turn only passes
//!   to resumed vCPUs, so a vCPU resumed alone runs on without waiting for stopped ones.
//!   The VMM can ask for a stop at a clock or a vCPU's retired count (`Recorder::set_stop`,
//!   checked with each batch's limit): `VcpuExit::ClockReached`.
//!
//! Locking: the turn state is only changed under the power lock (then this module's lock),
//! and vCPUs wait for their turn on the power condition variable, so kicks and power changes
//! wake them as before. Must not depend on `machine`, `debug` or `gdb`.

use super::irq::WaitAttention;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::backend::icount::{HostInput, HostWake, Input, InputEvent, Recorder, StopAt};
use crate::backend::VcpuExit;

use super::cpu::batch::BATCH;
use super::cpu::sysregs::VClock;
#[cfg(doc)]
use super::cpu::sysregs::CNTFRQ;
use super::vcpu::ModelVcpu;
use super::{Power, ATTN_KICK};

/// Instructions a vCPU runs before passing the turn: long enough that a handover (a thread
/// switch, a few microseconds) costs little, short enough that spinning vCPUs see each other
/// within a millisecond of guest time (QUANTUM / CNTFRQ = 160 us).
pub const QUANTUM: u64 = 10_000;

/// The machine's clock and turn (one per VM with the deterministic clock).
pub(crate) struct Sched {
    state: Mutex<TurnState>,
    /// The clock committed by the last holder of the turn.
    clock: AtomicU64,
    inputs: Mutex<Vec<InputEvent>>,
    /// Per vCPU: instructions retired and exceptions taken, as of its last commit.
    retired: Vec<AtomicU64>,
    /// Where the VMM wants the holder to stop (`Recorder::set_stop`): the clock (`u64::MAX`
    /// for none), and a vCPU (`usize::MAX` for none) with its retired count.
    stop_clock: AtomicU64,
    stop_vcpu: AtomicUsize,
    stop_retired: AtomicU64,
    /// Devices' host sides, admitted at quantum starts (`icount_input.rs`).
    pub(super) hosts: Mutex<Vec<Arc<dyn HostInput>>>,
}

struct TurnState {
    /// The vCPU that may execute instructions.
    turn: usize,
    /// The VMM's last resume left the holder stopped (`Recorder::resuming`): a resumed vCPU
    /// waiting for the turn takes it.
    parked: bool,
    /// Per vCPU: waiting in WFI since its last turn, with its timer deadline if armed.
    wfi: Vec<Option<Option<u64>>>,
    /// Per vCPU: resumed by the VMM's last resume (`Recorder::resuming`); the turn only
    /// goes to resumed vCPUs, and one left stopped does not count as running.
    resumed: Vec<bool>,
}

/// How waiting for the turn ended.
enum Waited {
    Turn,
    Kicked,
    /// Every vCPU waits with nothing armed (another vCPU found it).
    Idle,
}

impl Sched {
    pub fn new(vcpus: usize) -> Self {
        Sched {
            state: Mutex::new(TurnState {
                turn: 0,
                parked: false,
                wfi: vec![None; vcpus],
                resumed: vec![true; vcpus],
            }),
            clock: AtomicU64::new(0),
            inputs: Mutex::new(Vec::new()),
            retired: (0..vcpus).map(|_| AtomicU64::new(0)).collect(),
            stop_clock: AtomicU64::new(u64::MAX),
            stop_vcpu: AtomicUsize::new(usize::MAX),
            stop_retired: AtomicU64::new(0),
            hosts: Mutex::new(Vec::new()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, TurnState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// vCPU `index` may have something to wake it (an interrupt, a power change): it is no
    /// longer counted as waiting. Called with the power lock held.
    pub fn woken(&self, index: usize) {
        if let Some(w) = self.lock().wfi.get_mut(index) {
            *w = None;
        }
    }
}

/// The clock and turns as a snapshot saves them (`model/snapshot.rs`).
#[derive(Clone, Debug)]
pub(crate) struct SchedSaved {
    turn: usize,
    parked: bool,
    wfi: Vec<Option<Option<u64>>>,
    clock: u64,
    retired: Vec<u64>,
}

impl SchedSaved {
    /// The heap memory the saved state owns (its per-vCPU tables).
    pub fn heap_bytes(&self) -> usize {
        std::mem::size_of_val(self.wfi.as_slice()) + std::mem::size_of_val(self.retired.as_slice())
    }
}

impl Sched {
    pub fn save(&self) -> SchedSaved {
        let st = self.lock();
        SchedSaved {
            turn: st.turn,
            parked: st.parked,
            wfi: st.wfi.clone(),
            clock: self.now(),
            retired: self
                .retired
                .iter()
                .map(|r| r.load(Ordering::SeqCst))
                .collect(),
        }
    }

    /// Puts back a saved clock and turn (every vCPU stopped; called under the power lock).
    pub fn restore(&self, s: &SchedSaved) {
        let mut st = self.lock();
        st.turn = s.turn;
        st.parked = s.parked;
        st.wfi.clone_from(&s.wfi);
        self.clock.store(s.clock, Ordering::SeqCst);
        for (r, v) in self.retired.iter().zip(&s.retired) {
            r.store(*v, Ordering::SeqCst);
        }
    }
}

impl Recorder for Sched {
    fn now(&self) -> u64 {
        self.clock.load(Ordering::SeqCst)
    }

    fn record(&self, vcpu: Option<usize>, input: Input) -> u64 {
        let at = self.now();
        log::debug!("icount: input at {at} (vcpu {vcpu:?}): {input:?}");
        self.inputs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(InputEvent { at, vcpu, input });
        at
    }

    fn inputs(&self) -> Vec<InputEvent> {
        self.inputs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn forget_inputs(&self, count: usize) {
        let mut inputs = self.inputs.lock().unwrap_or_else(|e| e.into_inner());
        let n = count.min(inputs.len());
        inputs.drain(..n);
    }

    fn set_stop(&self, at: StopAt) {
        let (vcpu, n) = at.retired.unwrap_or((usize::MAX, 0));
        self.stop_retired.store(n, Ordering::SeqCst);
        self.stop_vcpu.store(vcpu, Ordering::SeqCst);
        self.stop_clock
            .store(at.clock.unwrap_or(u64::MAX), Ordering::SeqCst);
    }

    fn holder(&self) -> usize {
        self.lock().turn
    }

    fn resuming(&self, vcpus: &[usize]) {
        let mut st = self.lock();
        st.parked = !vcpus.contains(&st.turn);
        for (i, r) in st.resumed.iter_mut().enumerate() {
            *r = vcpus.contains(&i);
        }
    }

    fn retired(&self, vcpu: usize) -> u64 {
        self.retired
            .get(vcpu)
            .map_or(0, |r| r.load(Ordering::SeqCst))
    }
}

/// The vCPU after `me`, round-robin, that is not powered off and was resumed (`me` if there
/// is none).
fn next_turn(power: &[Power], resumed: &[bool], me: usize) -> usize {
    let n = power.len();
    (1..=n)
        .map(|k| (me + k) % n)
        .find(|&j| power[j] != Power::Off && resumed.get(j).copied().unwrap_or(true))
        .unwrap_or(me)
}

impl ModelVcpu {
    pub(super) fn sched(&self) -> Option<&Sched> {
        self.shared.sched.as_deref()
    }

    /// Publishes this vCPU's clock as the machine's (while it holds the turn).
    pub(super) fn commit_clock(&mut self) {
        let Some(sched) = self.shared.sched.as_deref() else {
            return;
        };
        if !self.holds_turn {
            return;
        }
        let now = self.cpu.counter();
        sched.clock.store(now, Ordering::SeqCst);
        if let Some(r) = sched.retired.get(self.index) {
            r.store(self.cpu.insns, Ordering::SeqCst);
        }
        self.cpu.vclock = Some(VClock {
            base: now,
            start: self.cpu.insns,
        });
    }

    /// Before the VMM reads a stopped vCPU's registers: one that does not hold the turn sees
    /// the machine's clock in its counter registers (its own view is only brought up to
    /// date when it takes the turn), so every stopped vCPU reads the same CNTVCT_EL0.
    pub(super) fn sync_stopped_clock(&mut self) {
        let Some(now) = self.sched().map(|s| s.now()) else {
            return;
        };
        if !self.holds_turn {
            self.cpu.vclock = Some(VClock {
                base: now,
                start: self.cpu.insns,
            });
        }
    }

    /// At the start of `run`: waits for the turn unless this vCPU holds it. `Interrupted`
    /// if kicked first (the kick is consumed), `Idle` never.
    pub(super) fn acquire_turn(&mut self) -> Option<VcpuExit> {
        let sched = self.shared.sched.clone()?;
        let shared = self.shared.clone();
        let power = shared.lock_power();
        if self.holds_turn {
            let mut st = sched.lock();
            if st.turn == self.index {
                st.parked = false;
                return None;
            }
            // Taken while this vCPU was stopped for the debugger.
            self.holds_turn = false;
        }
        // Entering `run` afresh: whatever WFI this vCPU waited in is over.
        if let Some(s) = self.sched() {
            s.woken(self.index);
        }
        match self.wait_turn(power, None) {
            Waited::Turn => None,
            Waited::Kicked | Waited::Idle => {
                self.attention.fetch_and(!ATTN_KICK, Ordering::SeqCst);
                Some(VcpuExit::Interrupted)
            }
        }
    }

    /// Blocks until the turn is this vCPU's (then takes it), a kick arrives, or (with
    /// `stalls`, the stall count when it began waiting in WFI) every vCPU was found idle.
    fn wait_turn(&mut self, mut power: MutexGuard<'_, Vec<Power>>, stalls: Option<u64>) -> Waited {
        loop {
            let Some(sched) = self.shared.sched.clone() else {
                return Waited::Turn;
            };
            let mine = {
                let mut st = sched.lock();
                if st.parked && st.turn != self.index {
                    // The holder is stopped for the debugger and this vCPU was resumed.
                    st.turn = self.index;
                    st.parked = false;
                }
                st.turn == self.index
            };
            if mine {
                sched.lock().wfi[self.index] = None;
                drop(power);
                self.holds_turn = true;
                self.cpu.vclock = Some(VClock {
                    base: sched.now(),
                    start: self.cpu.insns,
                });
                self.quantum_end = self.cpu.insns + QUANTUM;
                return Waited::Turn;
            }
            if self.attention.load(Ordering::SeqCst) & ATTN_KICK != 0 {
                return Waited::Kicked;
            }
            if stalls.is_some_and(|s| self.shared.stalls.load(Ordering::SeqCst) != s) {
                return Waited::Idle;
            }
            power = self
                .shared
                .cv
                .wait(power)
                .unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Hands the turn to the next vCPU that is not powered off (keeps it if there is none).
    /// Called with the power lock held (`power`).
    pub(super) fn pass_turn(&mut self, power: &[Power]) {
        let Some(sched) = self.shared.sched.clone() else {
            return;
        };
        if !self.holds_turn {
            return;
        }
        self.commit_clock();
        let next = next_turn(power, &sched.lock().resumed, self.index);
        if next == self.index && power[self.index] != Power::Off {
            self.quantum_end = self.cpu.insns + QUANTUM;
            return;
        }
        sched.lock().turn = next;
        self.holds_turn = false;
        self.shared.cv.notify_all();
    }

    /// Before a batch: passes the turn when the quantum is over, and returns how many
    /// instructions the next batch may run (to the quantum's end and the next timer
    /// deadline; a reached deadline flags the interrupt state for re-evaluation). `Err` with
    /// the exit when kicked while waiting for the turn back.
    pub(super) fn icount_slice(&mut self) -> Result<u32, VcpuExit> {
        if self.sched().is_none() {
            return Ok(BATCH);
        }
        if self.cpu.insns >= self.quantum_end {
            let shared = self.shared.clone();
            let power = shared.lock_power();
            self.pass_turn(&power);
            if !self.holds_turn {
                if let Waited::Kicked | Waited::Idle = self.wait_turn(power, None) {
                    self.attention.fetch_and(!ATTN_KICK, Ordering::SeqCst);
                    return Err(VcpuExit::Interrupted);
                }
            }
        }
        self.admit_at_quantum_start();
        let left = self.until_stop();
        if left == 0 {
            return Err(VcpuExit::ClockReached);
        }
        let mut limit = (self.quantum_end.saturating_sub(self.cpu.insns))
            .clamp(1, BATCH as u64)
            .min(left);

        if let Some(deadline) = self.cpu.timer_deadline() {
            let now = self.cpu.counter();
            if now >= deadline {
                self.cpu.irq.mark_dirty();
            } else {
                limit = limit.min(deadline - now);
            }
        }
        Ok(limit as u32)
    }

    /// Ticks to where the VMM wants the holder to stop (`Recorder::set_stop`): 0 when it is
    /// there, `u64::MAX` without a stop. Called by the holder (its counter is the clock).
    pub(super) fn until_stop(&self) -> u64 {
        let Some(s) = self.sched() else {
            return u64::MAX;
        };
        let mut left = s
            .stop_clock
            .load(Ordering::Relaxed)
            .saturating_sub(self.cpu.counter());
        if s.stop_vcpu.load(Ordering::Relaxed) == self.index {
            let n = s.stop_retired.load(Ordering::Relaxed);
            left = left.min(n.saturating_sub(self.cpu.insns));
        }
        left
    }

    /// An exception entry (a synchronous exception or an interrupt taken) is one tick of the
    /// deterministic clock, so that every state the vCPU passes through has its own clock
    /// value (the state before the entry and the one at the vector differ).
    pub(super) fn tick_exception(&mut self) {
        if self.shared.sched.is_some() {
            self.cpu.insns += 1;
        }
    }

    /// WFI with the deterministic clock (PC already past it): never sleeps on the host. Goes
    /// on at once when an interrupt wakes it; otherwise passes the turn and re-checks at each
    /// turn; when every powered-on vCPU waits, the clock jumps to the earliest deadline, or
    /// with none armed every vCPU reports `Idle`. `None` to go on running (a kick included:
    /// the run loop reports it).
    pub(super) fn wfi_icount(&mut self) -> Option<VcpuExit> {
        loop {
            self.admit_at_quantum_start();
            let deadline = self.wfi_still_waits()?;
            self.commit_clock();
            let shared = self.shared.clone();
            let power = shared.lock_power();
            match self.wait_attention() {
                WaitAttention::Interrupt => continue,
                WaitAttention::Request => return None,
                WaitAttention::None => {}
            }
            let sched = self.shared.sched.clone()?;
            let mut st = sched.lock();
            st.wfi[self.index] = Some(deadline);
            // A vCPU left stopped by the VMM runs nothing either.
            let waiting =
                |j: usize| power[j] == Power::Off || st.wfi[j].is_some() || !st.resumed[j];
            if (0..power.len()).all(waiting) {
                let earliest = (0..power.len())
                    .filter(|&j| power[j] != Power::Off)
                    .filter_map(|j| st.wfi[j].flatten())
                    .min();
                let Some(d) = earliest else {
                    if sched.host_wake() != HostWake::Never {
                        // Only host input can wake them: wait for it here, at this clock.
                        drop(st);
                        match self.wait_host_input(power) {
                            Some(exit) => return exit,
                            None => continue,
                        }
                    }
                    // Nothing armed anywhere: nothing can ever wake them.
                    st.wfi[self.index] = None;
                    drop(st);
                    self.shared.stalls.fetch_add(1, Ordering::SeqCst);
                    drop(power);
                    self.shared.cv.notify_all();
                    return Some(VcpuExit::Idle);
                };
                // Nothing runs until the earliest deadline: skip to it.
                let now = sched.now().max(d);
                sched.clock.store(now, Ordering::SeqCst);
                self.cpu.vclock = Some(VClock {
                    base: now,
                    start: self.cpu.insns,
                });
                if deadline == Some(d) {
                    st.wfi[self.index] = None;
                    continue;
                }
            }
            drop(st);
            let stalls = self.shared.stalls.load(Ordering::SeqCst);
            self.pass_turn(&power);
            if self.holds_turn {
                continue;
            }
            match self.wait_turn(power, Some(stalls)) {
                Waited::Turn | Waited::Kicked => {}
                Waited::Idle => return Some(VcpuExit::Idle),
            }
            if self.attention.load(Ordering::SeqCst) & ATTN_KICK != 0 {
                return None;
            }
        }
    }

    /// Records a kick that stopped this vCPU while it held the turn.
    pub(super) fn record_kick(&self) {
        if let (Some(sched), true) = (self.sched(), self.holds_turn) {
            sched.record(Some(self.index), Input::Interrupt);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_turn_goes_round_robin_skipping_powered_off_vcpus() {
        let p = [Power::On, Power::Off, Power::On, Power::Off];
        let all = [true; 4];
        assert_eq!(next_turn(&p, &all, 0), 2);
        assert_eq!(next_turn(&p, &all, 2), 0);
        let starting = Power::Starting {
            entry: 0,
            context: 0,
        };
        assert_eq!(next_turn(&[Power::On, starting], &all, 0), 1);
        assert_eq!(next_turn(&[Power::On, Power::Off], &all, 0), 0);
    }

    #[test]
    fn the_turn_skips_vcpus_left_stopped() {
        let p = [Power::On; 4];
        assert_eq!(next_turn(&p, &[true, false, true, true], 0), 2);
        assert_eq!(next_turn(&p, &[true, false, false, false], 0), 0);
    }
}
