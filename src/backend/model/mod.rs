//! The model backend: a software A64 vCPU (EL1/EL0) that behaves like KVM exit for exit, on
//! any host.
//!
//! Owns the VM object (RAM as the machine's `GuestMemoryMmap`, the state shared by all vCPUs:
//! power states, kick and interrupt flags, the counter epoch, WFI sleepers) and PSCI
//! (`psci.rs`), the deterministic clock with the vCPUs' turns (`icount.rs`), and snapshots
//! with the guest's dirty-page log (`snapshot.rs`). The
//! interpreter is in `cpu/`, the in-model GICv3 in `gic/`, the `Vcpu`
//! implementation and run loop in `vcpu.rs`, interrupt delivery and WFI in `irq.rs`, register
//! access in `regs.rs`. Must not depend on `machine`, `debug` or `gdb`, nor on any KVM type.
//!
//! Capabilities: 6 breakpoints and 4 watchpoints (as the nested KVM reports), NISV to user,
//! guest debug, immediate exit, and a 48-bit IPA space (the model's PARange; RAM and MMIO
//! may sit anywhere below 2^48).
//!
//! Behaviour notes (each mirrors KVM 6.1 unless said otherwise):
//! - Reset: PSTATE 0x3c5, SCTLR_EL1 0x00C50078, MPIDR_EL1 0x8000_0000 | Aff0 = index;
//!   vCPU 0 runnable, the others powered off until PSCI CPU_ON (their `run` blocks).
//! - MMIO: a data access outside RAM with a valid syndrome exits with the PC at the access;
//!   the next `run` writes the load result and advances the PC (BTYPE and SS cleared) before
//!   anything else, then honours a pending kick. Without a valid syndrome: `Nisv`, or with NISV
//!   to user off `InternalError`, as KVM's ENOSYS becomes (the contract of
//!   `VmConfig::nisv_to_user`). A fetch outside RAM is an external instruction abort injected
//!   into the guest.
//! - PSCI 1.1 over HVC in the model; SMC returns -1 in x0; HVC/SMC at EL0 are UNDEFINED.
//! - Debug (`cpu/debug.rs`): with `GuestDebug::enable` the VMM owns debug (MDCR_EL2.TDE):
//!   every BRK exits, breakpoints/watchpoints exit before the access (the VMM's registers with
//!   USE_HW, else the guest's own while its MDSCR_EL1.MDE is set, as KVM 6.1 loads them),
//!   single-step exits once per instruction with ISV=0 when the step ended outside the guest
//!   (MMIO completion, HVC/SMC, WFI, trapped ID/debug register access, exception entry) and
//!   EX=1 after a load-exclusive; an exception from a stepped instruction other than SVC saves
//!   SPSR_EL1.SS = 1 (KVM set PSTATE.SS), and the guest's own MDSCR_EL1 is unaffected (its SS
//!   never fires). Without it the guest owns debug: its breakpoints, watchpoints and software
//!   step (MDSCR_EL1.KDE/MDE/SS, PSTATE.D and SS, the OS lock; Arm ARM D2) are taken at its
//!   EL1 vectors with EC 0x30-0x35 and the architected ISS, FAR and SPSR; BRK always.
//! - Interrupts: a GICv3 at the VM's `GicLayout` served in the model, never as an MMIO exit
//!   (KVM's vGICv3 values and semantics, see `gic/mod.rs`), the virtual and physical timers
//!   as level-sensitive PPIs 27 and 30, SGIs between vCPUs, and SPIs whose input lines the
//!   VMM's devices drive through [`Vm::irq_line`] (as `KVM_IRQ_LINE`). The IRQ exception is taken before
//!   an instruction when the GIC signals one and PSTATE.I is clear (ELR = that instruction).
//!   Stepping: an executed instruction ends its step first (ISV = 1); the IRQ comes at the
//!   next entry and the step ends at the vector (ISV = 0); after an instruction completed
//!   outside the guest the IRQ also comes before the step ends (see `irq.rs`).
//! - WFI completes at once in the guest when an interrupt is signalled (masked by PSTATE.I or
//!   not); otherwise it blocks, as KVM's trapped WFI, until the GIC has an interrupt pending,
//!   a timer deadline passes or a kick arrives, and completes outside the guest (a step over
//!   it ends with ISV = 0). When every powered-on vCPU waits with nothing armed, `run`
//!   returns `Idle` with the PC past the WFI. Under nested KVM on QEMU TCG a single-stepped
//!   WFI never sleeps (QEMU's `aarch64_tr_tb_stop`: "single stepping WFI doesn't halt the
//!   CPU"); the model, like KVM on hardware, sleeps.
//! - Deterministic clock (`VmConfig::icount`, `icount.rs`): the counter counts retired
//!   instructions (one tick each at CNTFRQ), the vCPUs take turns of `icount::QUANTUM`
//!   instructions round-robin, WFI never sleeps (the clock skips to the next deadline when
//!   every vCPU waits), inputs are logged (`Vm::recorder`), and the VMM can stop the machine
//!   at an exact clock value (`VcpuExit::ClockReached`) for snapshots and replay.
//! - Exclusives are value-based: STXR is an atomic compare-and-swap against what LDXR saw,
//!   which is correct across vCPUs and against VMM writes; 128-bit swaps take a lock.
//! - Decoded-instruction cache (`cpu/decode.rs`): each word is decoded once into a handler
//!   and a pre-computed operand, but every fetch still reads the word from guest RAM and
//!   compares it with the cached one, so self-modifying code, BRKs written by the VMM
//!   through the shared `GuestMemoryMmap` and code written by other vCPUs take effect at
//!   once with nothing to invalidate. While no hardware breakpoint, watchpoint or
//!   single-step is in use, the run loop executes batches of up to 256 instructions
//!   (`cpu/batch.rs`) that translate the fetch once per code page and end at any
//!   system-class instruction, stop or attention bit (kick, power change). RAM is accessed
//!   through host addresses taken once from the `GuestMemoryMmap` (`cpu/ram.rs`). No
//!   allocation per instruction. Speed: docs/benchmarks.md.
//! - Not implemented (UNDEFINED with a warning, as on a CPU without them): SVE, pointer
//!   authentication, MTE, AArch32, and everything the ID registers do not advertise; FIQs
//!   (group 0 interrupts are never signalled), LPIs and the ITS.

pub(crate) mod cpu;
pub mod gic;
mod icount;
mod icount_input;
mod irq;
mod psci;
mod regs;
pub mod snapshot;
mod vcpu;

use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Instant;

use vm_memory::GuestMemoryMmap;

use super::icount::{HostInput, HostWake, Recorder};
use super::{BackendError, Caps, IrqLine, Result, Vcpu, Vm, VmConfig};
use cpu::bus::Bus;

pub use vcpu::ModelVcpu;

/// Attention bits of one vCPU, checked once per instruction.
pub(crate) const ATTN_KICK: u32 = 1;
pub(crate) const ATTN_POWER: u32 = 2;
/// Another vCPU changed what the GIC may signal to this one: re-evaluate.
pub(crate) const ATTN_IRQ: u32 = 4;

/// Power state of one vCPU (PSCI).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Power {
    On,
    Off,
    /// CPU_ON accepted: the vCPU resets and starts at `entry` with x0 = `context` on its
    /// next run.
    Starting {
        entry: u64,
        context: u64,
    },
}

/// State shared by all vCPUs of one VM.
pub(crate) struct Shared {
    pub power: Mutex<Vec<Power>>,
    pub cv: Condvar,
    pub attention: Vec<Arc<AtomicU32>>,
    pub epoch: Instant,
    /// vCPUs blocked in WFI with no timer armed (changed under the power lock).
    pub sleepers: AtomicUsize,
    /// Bumped (under the power lock) when every powered-on vCPU sleeps like that: each of
    /// them then reports `Idle`.
    pub stalls: AtomicU64,
    /// `VmConfig::model_keep_ss_bug` (a test hook).
    pub keep_ss_bug: bool,
    /// The deterministic clock and the vCPUs' turns (`VmConfig::icount`, `icount.rs`).
    pub sched: Option<Arc<icount::Sched>>,
    /// Without the deterministic clock: the devices' host sides (`Vm::attach_host_input`),
    /// which deliver on their own. While one of them may still deliver, a machine whose
    /// vCPUs all wait with no timer armed waits for it instead of reporting `Idle`.
    pub hosts: Mutex<Vec<Arc<dyn HostInput>>>,
}

impl Shared {
    pub fn lock_power(&self) -> MutexGuard<'_, Vec<Power>> {
        self.power.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether a host side without the clock may still deliver input (see `Shared::hosts`).
    /// Called under the power lock: the waker [`Shared::wake_all`] takes it, so a change
    /// made before the waker runs is seen by a vCPU that checks before it waits.
    pub fn host_may_deliver(&self) -> bool {
        let hosts = self.hosts.lock().unwrap_or_else(|e| e.into_inner());
        hosts.iter().any(|h| h.wake(0) != HostWake::Never)
    }

    /// Wakes every waiting vCPU (after a kick or a power change).
    pub fn wake_all(&self) {
        drop(self.lock_power());
        self.cv.notify_all();
    }

    /// Flags a GIC change for vCPU `index` and wakes it.
    pub fn irq_changed(&self, index: usize) {
        if let Some(a) = self.attention.get(index) {
            a.fetch_or(ATTN_IRQ, Ordering::SeqCst);
        }
        self.woken(index);
    }

    /// Wakes every waiting vCPU; with the deterministic clock, vCPU `index` no longer counts
    /// as waiting in WFI.
    fn woken(&self, index: usize) {
        let power = self.lock_power();
        if let Some(s) = &self.sched {
            s.woken(index);
        }
        drop(power);
        self.cv.notify_all();
    }

    /// Flags a power change for vCPU `index` and wakes it.
    pub fn power_changed(&self, index: usize) {
        if let Some(a) = self.attention.get(index) {
            a.fetch_or(ATTN_POWER, Ordering::SeqCst);
        }
        if self.sched.is_some() {
            self.woken(index);
        }
        self.cv.notify_all();
    }
}

/// A VM on the model backend.
pub struct ModelVm {
    bus: Bus,
    cfg: VmConfig,
    caps: Caps,
    shared: Arc<Shared>,
    created: Mutex<Vec<bool>>,
}

/// The model's capability report (see module docs).
pub fn caps() -> Caps {
    Caps {
        backend: "model",
        hw_breakpoints: cpu::sysregs::NUM_BRPS as u32,
        hw_watchpoints: cpu::sysregs::NUM_WRPS as u32,
        guest_debug: true,
        nisv_to_user: true,
        ipa_bits: cpu::mmu::PA_BITS,
        immediate_exit: true,
        api_version: 0,
        preferred_target: None,
        exact_vector_catch: true,
    }
}

impl ModelVm {
    pub fn new(mem: &GuestMemoryMmap, cfg: &VmConfig) -> Result<Self> {
        if cfg.vcpus == 0 || cfg.vcpus > 512 {
            return Err(BackendError::Unsupported(format!(
                "model VM with {} vCPUs (1..=512 supported)",
                cfg.vcpus
            )));
        }
        let redists = (cfg.gic.redist_size / gic::REDIST_STRIDE) as usize;
        if redists < cfg.vcpus {
            return Err(BackendError::Unsupported(format!(
                "model VM with {} vCPUs but room for {redists} GIC redistributors",
                cfg.vcpus
            )));
        }
        let power = (0..cfg.vcpus)
            .map(|i| if i == 0 { Power::On } else { Power::Off })
            .collect();
        let shared = Arc::new(Shared {
            power: Mutex::new(power),
            cv: Condvar::new(),
            attention: (0..cfg.vcpus)
                .map(|_| Arc::new(AtomicU32::new(0)))
                .collect(),
            epoch: Instant::now(),
            sleepers: AtomicUsize::new(0),
            stalls: AtomicU64::new(0),
            keep_ss_bug: cfg.model_keep_ss_bug,
            sched: cfg.icount.then(|| Arc::new(icount::Sched::new(cfg.vcpus))),
            hosts: Mutex::new(Vec::new()),
        });
        // Compiling off the vCPU's thread makes when compiled code starts to run depend on the
        // host's scheduling: only without the deterministic clock (`jit_worker.rs`).
        let bus = Bus::new(mem, cfg.gic)
            .with_jit(cfg.jit)
            .with_jit_background(cfg.jit && !cfg.icount);
        let waker = shared.clone();
        bus.gic()
            .set_notifier(Box::new(move |index| waker.irq_changed(index)));
        Ok(ModelVm {
            bus,
            cfg: cfg.clone(),
            caps: caps(),
            shared,
            created: Mutex::new(vec![false; cfg.vcpus]),
        })
    }
}

/// The in-model GIC's SPI inputs.
struct ModelIrqLine(Bus);

impl IrqLine for ModelIrqLine {
    fn set_level(&self, intid: u32, level: bool) -> Result<()> {
        if self.0.gic().set_spi_level(intid as usize, level) {
            Ok(())
        } else {
            Err(BackendError::Unsupported(format!(
                "INTID {intid} is not an SPI of the model's GIC"
            )))
        }
    }
}

impl Vm for ModelVm {
    fn caps(&self) -> &Caps {
        &self.caps
    }

    fn irq_line(&self) -> Arc<dyn IrqLine> {
        Arc::new(ModelIrqLine(self.bus.clone()))
    }

    fn create_vcpu(&self, index: usize) -> Result<Box<dyn Vcpu>> {
        let mut created = self.created.lock().unwrap_or_else(|e| e.into_inner());
        match created.get_mut(index) {
            None => Err(BackendError::Vcpu {
                index,
                reason: format!("create_vcpu: the VM has {} vCPUs", self.cfg.vcpus),
            }),
            Some(true) => Err(BackendError::Vcpu {
                index,
                reason: "create_vcpu: already created".into(),
            }),
            Some(c) => {
                *c = true;
                Ok(Box::new(ModelVcpu::new(
                    index,
                    self.bus.clone(),
                    self.shared.clone(),
                    self.cfg.nisv_to_user,
                )))
            }
        }
    }

    fn finalize(&self) -> Result<()> {
        Ok(())
    }

    fn recorder(&self) -> Option<Arc<dyn Recorder>> {
        self.shared.sched.clone().map(|s| s as Arc<dyn Recorder>)
    }

    fn attach_host_input(&self, input: Arc<dyn HostInput>) -> bool {
        // A weak handle: the input outlives this VM (it is shared by every build).
        let shared = Arc::downgrade(&self.shared);
        input.set_waker(Box::new(move || {
            if let Some(s) = shared.upgrade() {
                s.wake_all();
            }
        }));
        let Some(sched) = &self.shared.sched else {
            let mut hosts = self.shared.hosts.lock().unwrap_or_else(|e| e.into_inner());
            hosts.push(input);
            return false;
        };
        sched.attach_input(input);
        true
    }

    fn save_state(&self) -> Result<super::snapshot::VmSnapshot> {
        Ok(self.save())
    }

    fn restore_state(&self, state: &super::snapshot::VmSnapshot) -> Result<()> {
        self.restore(state)
    }

    fn take_dirty_pages(&self) -> Result<Vec<u64>> {
        Ok(self.dirty_pages())
    }
}

#[cfg(test)]
mod fw_tests;
#[cfg(test)]
mod qemu_diff;
#[cfg(test)]
mod qemu_diff_ldst;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod testutil;
