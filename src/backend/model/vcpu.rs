//! The model's `Vcpu`: the run loop that turns interpreter stops into KVM-shaped exits.
//!
//! Mirrors KVM's `KVM_RUN` order: complete the previous MMIO (`kvm_handle_mmio_return`:
//! load result, PC += 4, BTYPE and SS cleared), honour an immediate exit (kick), then run
//! the guest until an exit, taking IRQs before instructions (`irq.rs`). In-kernel work (PSCI
//! over HVC, SMC, GIC accesses, WFI) completes here; with single-step on, an instruction
//! completed outside the guest ends the step at once with ESR ISV=0, as KVM does.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use crate::a64::pstate;
use crate::backend::{
    BackendError, GuestDebug, Kick, Result, Vcpu, VcpuExit, NO_SYNDROME_NISV_OFF,
};

use super::cpu::bus::Bus;
use super::cpu::ldst::mmio_load_value;
use super::cpu::{debug, Cpu, MmioReq, Stop};
use super::{Power, Shared, ATTN_IRQ, ATTN_KICK, ATTN_POWER};

/// One model vCPU.
pub struct ModelVcpu {
    pub(super) index: usize,
    pub(super) cpu: Cpu,
    pub(super) shared: Arc<Shared>,
    pub(super) attention: Arc<AtomicU32>,
    nisv_to_user: bool,
    /// The MMIO access the VMM is completing.
    pending: Option<MmioReq>,
    mmio_data: u64,
    /// The VMM's single step is complete without a step exit reported yet: only
    /// [`ModelVcpu::step_event`] writes it.
    step_done: bool,
    /// The GIC signals an IRQ to this vCPU (cached, see `irq.rs`).
    pub(super) irq_line: bool,
    /// Deterministic clock (`icount.rs`): this vCPU holds the turn, until its retired
    /// instruction count reaches `quantum_end`.
    pub(super) holds_turn: bool,
    pub(super) quantum_end: u64,
    /// The `quantum_end` of the last quantum at whose start host input was admitted
    /// (`icount.rs`).
    pub(super) admitted_for: u64,
    /// Deterministic clock: this vCPU is `Starting` (CPU_ON accepted) and the run loop
    /// applies the reset when it holds the turn. Set anew at each `run` from the power
    /// state, so a snapshot needs only that.
    pub(super) start_pending: bool,
}

/// Kicks one model vCPU out of `run`.
struct ModelKick {
    attention: Arc<AtomicU32>,
    shared: Arc<Shared>,
}

impl Kick for ModelKick {
    fn kick(&self) {
        self.attention.fetch_or(ATTN_KICK, Ordering::SeqCst);
        self.shared.wake_all();
    }
}

/// What happened to the VMM's single step besides an instruction executed in the guest (see
/// [`ModelVcpu::step_event`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum StepEvent {
    /// KVM completed an instruction outside the guest (`kvm_incr_pc`), or the guest took an
    /// exception or an IRQ.
    Completed,
    /// The step exit was returned.
    Reported,
    /// PSCI CPU_ON reset the vCPU.
    Reset,
    /// `commit_pending` after an immediate exit.
    Committed,
}

/// What the run loop does after handling a stop.
enum Next {
    Continue,
    Exit(VcpuExit),
}

impl ModelVcpu {
    pub(super) fn new(index: usize, bus: Bus, shared: Arc<Shared>, nisv_to_user: bool) -> Self {
        let attention = shared.attention[index].clone();
        let mut cpu = Cpu::new(index, bus, shared.epoch);
        if shared.sched.is_some() {
            // The deterministic clock, at 0 until this vCPU first takes the turn.
            cpu.vclock = Some(Default::default());
        }
        ModelVcpu {
            index,
            cpu,
            shared,
            attention,
            nisv_to_user,
            pending: None,
            mmio_data: 0,
            step_done: false,
            irq_line: false,
            holds_turn: false,
            quantum_end: 0,
            admitted_for: 0,
            start_pending: false,
        }
    }

    /// The run loop's own state, for a snapshot: the MMIO access being completed, its load
    /// result, and whether a step is complete but not reported.
    pub(super) fn run_state(&self) -> (Option<MmioReq>, u64, bool) {
        (self.pending, self.mmio_data, self.step_done)
    }

    pub(super) fn set_run_state(&mut self, pending: Option<MmioReq>, data: u64, step_done: bool) {
        self.pending = pending;
        self.mmio_data = data;
        self.step_done = step_done;
    }

    /// Consumes a pending kick.
    fn take_kick(&self) -> bool {
        self.attention.fetch_and(!ATTN_KICK, Ordering::SeqCst) & ATTN_KICK != 0
    }

    /// Blocks while this vCPU is powered off. A CPU_ON accepted (`Starting`) is applied at
    /// once without the deterministic clock; with it, only noted (`start_pending`): the run
    /// loop applies it when this vCPU holds the turn (`psci.rs` `start_if_pending`).
    /// Returns `Interrupted` if kicked while waiting.
    fn wait_powered_on(&mut self) -> Option<VcpuExit> {
        self.attention.fetch_and(!ATTN_POWER, Ordering::SeqCst);
        self.start_pending = false;
        let shared = self.shared.clone();
        let mut power = shared.lock_power();
        loop {
            match power[self.index] {
                Power::On => return None,
                Power::Starting { .. } if self.sched().is_some() => {
                    self.start_pending = true;
                    return None;
                }
                Power::Starting { entry, context } => {
                    power[self.index] = Power::On;
                    drop(power);
                    self.cpu_on_reset(entry, context);
                    return None;
                }
                Power::Off => {
                    // With the deterministic clock a powered-off vCPU never holds the turn.
                    self.pass_turn(&power);
                    if self.take_kick() {
                        return Some(VcpuExit::Interrupted);
                    }
                    power = self
                        .shared
                        .cv
                        .wait(power)
                        .unwrap_or_else(|e| e.into_inner());
                }
            }
        }
    }

    /// KVM's `kvm_incr_pc`: PC += 4, PSTATE.BTYPE and PSTATE.SS cleared; ends a step.
    ///
    /// The test hook `VmConfig::model_keep_ss_bug` reproduces the pre-fix kernel bug instead
    /// (PSTATE.SS left set, the step not completed), to prove the regression suite detects it.
    pub(super) fn skip_instruction(&mut self) {
        let st = &mut self.cpu.st;
        st.pc = st.pc.wrapping_add(4);
        self.cpu.insns += 1;
        if self.shared.keep_ss_bug {
            st.pstate &= !pstate::BTYPE_MASK;
            return;
        }
        st.pstate &= !(pstate::BTYPE_MASK | pstate::SS);
        self.step_event(StepEvent::Completed);
    }

    /// The one place the VMM's single step is marked complete or not (`step_done`), as KVM
    /// 6.1 does it (tests/conformance/step_*.trace, irq_step_*.trace):
    /// - [`StepEvent::Completed`]: with single-step on, the step is over without an
    ///   instruction executed in the guest: KVM completed one outside it (`kvm_incr_pc`: MMIO
    ///   completion, HVC, SMC, WFI, a trapped system register), or the guest took an
    ///   exception or an IRQ (the step ends at the vector). Without single-step nothing is
    ///   pending.
    /// - [`StepEvent::Reported`]: the step exit (ISV = 0) was returned; nothing is pending.
    /// - [`StepEvent::Reset`]: CPU_ON reset the vCPU; nothing is pending.
    /// - [`StepEvent::Committed`]: `commit_pending` after an immediate exit committed the PC
    ///   advance but, as KVM 6.1, does not leave the host's step state active-pending (it
    ///   recomputes it only after a guest exit): the next entry runs one more instruction.
    ///
    /// While the step is complete: `run` and the run loop report the step exit before any
    /// instruction; an IRQ deliverable at that point is taken first (`irq.rs`) with
    /// SPSR_EL1.SS = 0, since KVM no longer enters the guest with PSTATE.SS = 1.
    pub(super) fn step_event(&mut self, event: StepEvent) {
        self.step_done = match event {
            StepEvent::Completed => self.cpu.dbg.single_step(),
            StepEvent::Reported | StepEvent::Reset | StepEvent::Committed => false,
        };
    }

    /// The VMM's single step is complete and its exit not yet reported.
    pub(super) fn step_complete(&self) -> bool {
        self.step_done
    }

    /// Applies the result of the last MMIO exit (`kvm_handle_mmio_return`).
    fn complete_mmio(&mut self) {
        if let Some(req) = self.pending.take() {
            if !req.write {
                let v = mmio_load_value(self.mmio_data, &req.syn);
                self.cpu.st.set_x(req.syn.rt as u32, v);
            }
            self.mmio_data = 0;
            self.skip_instruction();
        }
    }

    /// After an exception entry: the VMM's vector catch exit, if the entry matched
    /// (`GuestDebug::vector_catch`), with the PC at the vector.
    pub(super) fn catch_exit(&mut self) -> Option<VcpuExit> {
        let (esr, far) = self.cpu.dbg.take_catch()?;
        log::debug!(
            "model: vCPU {} vector catch at {:#x}",
            self.index,
            self.cpu.st.pc
        );
        Some(VcpuExit::Debug { esr, far })
    }

    pub(super) fn step_exit(emulated: bool) -> VcpuExit {
        VcpuExit::Debug {
            esr: debug::step_esr(emulated),
            far: 0,
        }
    }

    /// `run` proper: powered on, the MMIO completed, the turn taken (deterministic clock),
    /// a kick honoured, then the guest.
    fn run_entry(&mut self) -> Result<VcpuExit> {
        if let Some(exit) = self.wait_powered_on() {
            return Ok(exit);
        }
        // The holder of a pending MMIO access always holds the turn (it keeps it across
        // exits), so the completion is counted on the machine's clock.
        if let Some(exit) = self.acquire_turn() {
            return Ok(exit);
        }
        self.complete_mmio();
        if self.take_kick() {
            return Ok(VcpuExit::Interrupted);
        }
        // KVM evaluates the timers and the GIC whenever it enters the guest.
        self.cpu.irq.mark_dirty();
        // Entering the guest is an exception return: a step exception the guest's own step
        // machine takes next did not follow a stepped instruction (ISV = 0).
        self.cpu.dbg.stepped = None;
        if self.step_complete() {
            return Ok(self.finish_emulated_step());
        }
        self.run_guest()
    }

    /// The run loop proper.
    fn run_guest(&mut self) -> Result<VcpuExit> {
        loop {
            // The deterministic clock's turn and batch length (`icount.rs`).
            let limit = match self.icount_slice() {
                Ok(limit) => limit,
                Err(exit) => return Ok(exit),
            };
            let attention = self.attention.load(Ordering::Relaxed);
            if attention != 0 {
                if attention & ATTN_IRQ != 0 {
                    self.attention.fetch_and(!ATTN_IRQ, Ordering::SeqCst);
                    self.cpu.irq.mark_dirty();
                }
                if self.take_kick() {
                    return Ok(VcpuExit::Interrupted);
                }
                if attention & ATTN_POWER != 0 {
                    if let Some(exit) = self.wait_powered_on() {
                        return Ok(exit);
                    }
                }
            }
            // After the stop check of `icount_slice`: a stop at this clock sees the vCPU
            // before its reset.
            if self.start_if_pending() {
                continue;
            }
            if self.poll_irq() {
                if let Some(exit) = self.catch_exit() {
                    return Ok(exit);
                }
                if self.step_complete() {
                    // Taken before any instruction of this step: the step ends at the vector.
                    self.step_event(StepEvent::Reported);
                    return Ok(Self::step_exit(true));
                }
                continue;
            }
            // Debug exceptions before the instruction: the guest's (to its vectors) or a
            // breakpoint exit (`cpu::debug`).
            let stepped = match self.cpu.debug_before() {
                Ok(stepped) => stepped,
                Err(stop) => {
                    if let Next::Exit(e) = self.handle_stop(stop)? {
                        return Ok(e);
                    }
                    continue;
                }
            };
            // One instruction, or a batch of them when no debug feature needs a check in
            // between (`cpu::batch`).
            let ran = if stepped.is_some() {
                self.cpu.step()
            } else {
                self.cpu.run_batch(&self.attention, limit)
            };
            match ran {
                Ok(()) => {
                    if self.cpu.emulated {
                        // KVM trapped and emulated it: the PC advance happened outside the
                        // guest (BTYPE and SS cleared).
                        self.cpu.st.pstate &= !pstate::SS;
                    }
                    self.cpu.debug_after(stepped);
                    if self.cpu.dbg.single_step() {
                        return Ok(if self.cpu.emulated {
                            self.finish_emulated_step()
                        } else {
                            VcpuExit::Debug {
                                esr: debug::step_esr_executed(stepped.unwrap_or(false)),
                                far: 0,
                            }
                        });
                    }
                }
                Err(stop) => {
                    self.cpu.dbg.stepped = None;
                    if let Next::Exit(e) = self.handle_stop(stop)? {
                        return Ok(e);
                    }
                    if self.step_complete() {
                        return Ok(self.finish_emulated_step());
                    }
                }
            }
        }
    }

    fn handle_stop(&mut self, stop: Stop) -> Result<Next> {
        match stop {
            Stop::Exception(e) => {
                self.cpu.take_exception(&e);
                self.tick_exception();
                // The step completes on exception entry: stop at the vector, ISV=0.
                self.step_event(StepEvent::Completed);
                Ok(match self.catch_exit() {
                    Some(exit) => Next::Exit(exit),
                    None => Next::Continue,
                })
            }
            Stop::Mmio(req) => {
                self.pending = Some(req);
                Ok(Next::Exit(if req.write {
                    VcpuExit::MmioWrite {
                        addr: req.addr,
                        len: req.len,
                        data: req.data.to_le_bytes(),
                    }
                } else {
                    VcpuExit::MmioRead {
                        addr: req.addr,
                        len: req.len,
                    }
                }))
            }
            Stop::Nisv { ipa, iss } => {
                if self.nisv_to_user {
                    Ok(Next::Exit(VcpuExit::Nisv {
                        fault_ipa: ipa,
                        esr_iss: iss,
                    }))
                } else {
                    // The same exit as KVM's ENOSYS (`VmConfig::nisv_to_user`); PC at the access.
                    Ok(Next::Exit(VcpuExit::InternalError(format!(
                        "{NO_SYNDROME_NISV_OFF}: pc {:#x}, ipa {ipa:#x}, iss {iss:#x}",
                        self.cpu.st.pc
                    ))))
                }
            }
            Stop::Hvc(_) => {
                self.skip_instruction();
                Ok(match self.psci_call() {
                    Some(exit) => Next::Exit(exit),
                    None => Next::Continue,
                })
            }
            Stop::Smc(_) => {
                // KVM 6.1 `handle_smc`: x0 = ~0 (SMCCC NOT_SUPPORTED), PC advanced.
                self.cpu.st.x[0] = u64::MAX;
                self.skip_instruction();
                Ok(Next::Continue)
            }
            Stop::Wfi => {
                self.skip_instruction();
                Ok(match self.wait_for_interrupt() {
                    Some(exit) => Next::Exit(exit),
                    None => Next::Continue,
                })
            }
            Stop::Debug { esr, far } => Ok(Next::Exit(VcpuExit::Debug { esr, far })),
        }
    }
}

impl Vcpu for ModelVcpu {
    fn index(&self) -> usize {
        self.index
    }

    fn get_reg(&mut self, reg: crate::a64::Reg) -> Result<u128> {
        self.sync_stopped_clock();
        super::regs::read(&self.cpu, self.index, reg)
    }

    fn set_reg(&mut self, reg: crate::a64::Reg, value: u128) -> Result<()> {
        super::regs::write(&mut self.cpu, self.index, reg, value)
    }

    fn reg_list(&mut self) -> Result<Vec<crate::a64::Reg>> {
        Ok(super::regs::list())
    }

    fn run(&mut self) -> Result<VcpuExit> {
        let exit = self.run_entry();
        // With the deterministic clock: what the VMM applies at this exit is stamped with
        // the exact count, and a kick that stopped the running vCPU is an input.
        self.commit_clock();
        if let Ok(VcpuExit::Interrupted) = exit {
            self.record_kick();
        }
        exit
    }

    fn set_mmio_data(&mut self, data: &[u8]) -> Result<()> {
        match self.pending {
            Some(req) if !req.write => {
                let mut buf = [0u8; 8];
                let n = data.len().min(req.len).min(8);
                buf[..n].copy_from_slice(&data[..n]);
                self.mmio_data = u64::from_le_bytes(buf);
                Ok(())
            }
            _ => Err(BackendError::Vcpu {
                index: self.index,
                reason: "set_mmio_data: no MMIO read is pending".into(),
            }),
        }
    }

    fn powered_off(&mut self) -> Result<bool> {
        // A CPU_ON accepted but not yet applied (`Starting`) is on: its next run executes.
        Ok(matches!(
            self.shared.lock_power()[self.index],
            super::Power::Off
        ))
    }

    fn commit_pending(&mut self) -> Result<()> {
        self.complete_mmio();
        // As KVM after an `immediate_exit` run: the PC advance is committed, but the host's
        // step state is not left active-pending (KVM 6.1 recomputes it only after a guest
        // exit), so the next entry would run one more instruction before stepping.
        self.step_event(StepEvent::Committed);
        Ok(())
    }

    fn set_guest_debug(&mut self, dbg: &GuestDebug) -> Result<()> {
        self.cpu.dbg.cfg = dbg.clone();
        Ok(())
    }

    fn save_state(&mut self) -> Result<crate::backend::snapshot::VcpuSnapshot> {
        Ok(self.save())
    }

    fn restore_state(&mut self, state: &crate::backend::snapshot::VcpuSnapshot) -> Result<()> {
        self.restore(state)
    }

    fn kicker(&self) -> Arc<dyn Kick> {
        Arc::new(ModelKick {
            attention: self.attention.clone(),
            shared: self.shared.clone(),
        })
    }

    fn any_thread(&self) -> bool {
        self.shared.sched.is_none()
    }
}
