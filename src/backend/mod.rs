//! The backend boundary: a small, A64-typed interface to a virtual machine and its vCPUs.
//!
//! Owns the `Vm`/`Vcpu` traits, the owned exit enum, the guest-debug configuration and the
//! capability report. Two implementations live below: `kvm` (real KVM, aarch64 Linux hosts
//! only) and `model` (a software vCPU that behaves like KVM exit for exit, any host).
//!
//! Must not depend on `machine`, `debug` or `gdb`. No KVM type appears outside `backend/kvm`.

mod error;
#[cfg(test)]
pub mod fake;
pub mod icount;
#[cfg(all(target_os = "linux", target_arch = "aarch64"))]
pub mod kvm;
pub mod model;
pub mod snapshot;

pub use error::BackendError;

use std::sync::Arc;

use vm_memory::GuestMemoryMmap;

use crate::a64::vcatch::VectorCatch;
use crate::a64::Reg;

/// Result alias for backend operations.
pub type Result<T> = std::result::Result<T, BackendError>;

/// Which backend to use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BackendKind {
    Kvm,
    Model,
}

impl BackendKind {
    pub fn name(self) -> &'static str {
        match self {
            BackendKind::Kvm => "kvm",
            BackendKind::Model => "model",
        }
    }
}

/// Physical addresses of the interrupt controller (QEMU `virt` board: `hw/arm/virt.c`
/// `base_memmap[VIRT_GIC_DIST]` = 0x0800_0000, `VIRT_GIC_REDIST` = 0x080A_0000).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GicLayout {
    pub dist_base: u64,
    pub redist_base: u64,
    /// Size of the redistributor region: 2 x 64 KiB frames per vCPU (GICv3 architecture
    /// specification 12.10 "The GIC Redistributor register map").
    pub redist_size: u64,
}

/// What a VM is created with.
#[derive(Clone, Debug)]
pub struct VmConfig {
    /// Number of vCPUs (vCPU 0 boots; the others start powered off until PSCI CPU_ON).
    pub vcpus: usize,
    pub gic: GicLayout,
    /// Ask the backend to report data aborts without a valid syndrome to the VMM
    /// (`KVM_CAP_ARM_NISV_TO_USER`, KVM api.rst 7.19) as [`VcpuExit::Nisv`]. When off, such an
    /// abort is [`VcpuExit::InternalError`] starting with [`NO_SYNDROME_NISV_OFF`] on every
    /// backend (KVM fails `KVM_RUN` with `ENOSYS`), with the PC still at the access.
    pub nisv_to_user: bool,
    /// Test hook (`machine::TestHooks::model_keep_ss`), false outside the tests that prove
    /// the suite bites: the model's PC advance past an instruction completed for the VMM
    /// leaves PSTATE.SS set and the step not completed, as kernels did before `kvm_incr_pc`
    /// cleared it (docs/step-state-machine.md). The KVM backend ignores it.
    pub model_keep_ss_bug: bool,
    /// The deterministic clock (model only: `model/icount.rs`): the generic counter counts
    /// instructions, WFI skips ahead to the next timer deadline, vCPUs run in turn, and
    /// inputs are logged ([`Vm::recorder`]). Creating a KVM VM with it fails.
    pub icount: bool,
    /// The model's JIT tier (`model/cpu/jit.rs`): hot blocks compiled to host code, with
    /// exactly the interpreter's results. Off: the interpreter runs everything (the
    /// reference). KVM ignores it.
    pub jit: bool,
}

/// What a backend can do, probed once per VM.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Caps {
    pub backend: &'static str,
    /// Number of hardware breakpoint slots (`KVM_CAP_GUEST_DEBUG_HW_BPS`).
    pub hw_breakpoints: u32,
    /// Number of hardware watchpoint slots (`KVM_CAP_GUEST_DEBUG_HW_WPS`).
    pub hw_watchpoints: u32,
    /// `KVM_CAP_SET_GUEST_DEBUG`.
    pub guest_debug: bool,
    /// `KVM_CAP_ARM_NISV_TO_USER`.
    pub nisv_to_user: bool,
    /// Maximum IPA size in bits (`KVM_CAP_ARM_VM_IPA_SIZE`).
    pub ipa_bits: u32,
    /// `KVM_CAP_IMMEDIATE_EXIT`.
    pub immediate_exit: bool,
    /// `KVM_GET_API_VERSION`, or 0 for the model.
    pub api_version: i32,
    /// Preferred vCPU target (`KVM_ARM_PREFERRED_TARGET`), if any.
    pub preferred_target: Option<u32>,
    /// The backend honours [`GuestDebug::vector_catch`]: it stops exactly at exception entry
    /// (the model). Without it (KVM has no such facility) a debugger catches vectors with
    /// hardware breakpoints on the vector entries.
    pub exact_vector_catch: bool,
}

/// The guest-debug configuration (`KVM_SET_GUEST_DEBUG`, KVM api.rst 4.87, arm64 part).
///
/// Register values are written exactly as the architecture defines them (`DBGBCR<n>_EL1` etc.,
/// Arm ARM D19.3); the debug layer computes them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GuestDebug {
    /// `KVM_GUESTDBG_ENABLE`: the VMM owns debug exceptions.
    pub enable: bool,
    /// `KVM_GUESTDBG_SINGLESTEP`.
    pub single_step: bool,
    /// `KVM_GUESTDBG_USE_SW_BP`: BRK exits to the VMM.
    pub sw_breakpoints: bool,
    /// `KVM_GUESTDBG_USE_HW`: the bcr/bvr/wcr/wvr values below are loaded.
    pub hw: bool,
    pub bcr: [u64; 16],
    pub bvr: [u64; 16],
    pub wcr: [u64; 16],
    pub wvr: [u64; 16],
    /// Vector catch at exception entry, only for a backend with [`Caps::exact_vector_catch`]
    /// (not part of KVM's ABI: the KVM backend refuses a non-empty set). With `enable`, an
    /// exception entry to EL1 of a kind and source in the set (sync, IRQ, FIQ, SError; from
    /// EL0 or EL1) completes (ESR/FAR/ELR/SPSR_EL1 written, PC at the vector) and `run` then
    /// returns exactly the exit KVM gives for a hardware breakpoint at that vector entry:
    /// [`VcpuExit::Debug`] with a breakpoint ESR (EC 0x30, 0xc2000022) and FAR 0. So the
    /// debug layer classifies both backends' catches with one rule, and no new exit exists.
    /// A single step that ends at the vector reports the step instead (on KVM the software
    /// step exception has priority over the breakpoint: Arm ARM D1, "Synchronous exception
    /// prioritization"); an exception the VMM injects by writing registers is not caught here.
    pub vector_catch: VectorCatch,
}

/// Why a system event exit happened (`KVM_EXIT_SYSTEM_EVENT`, KVM api.rst 5 "kvm_run").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SystemEvent {
    /// PSCI SYSTEM_OFF.
    Shutdown,
    /// PSCI SYSTEM_RESET.
    Reset,
    /// Guest crash report.
    Crash,
    /// Some other event type the backend reported.
    Other(u32),
}

/// Why `Vcpu::run` returned. Owned; borrows nothing from the backend.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VcpuExit {
    /// A load from an address outside RAM with a valid syndrome. The PC is AT the access.
    /// Complete it with [`Vcpu::set_mmio_data`] before the next `run`, which then writes the
    /// register and advances the PC (KVM: `kvm_handle_mmio_return`).
    MmioRead { addr: u64, len: usize },
    /// A store to an address outside RAM with a valid syndrome; `data[..len]` little-endian.
    /// The PC is AT the access and advances on the next `run`.
    MmioWrite {
        addr: u64,
        len: usize,
        data: [u8; 8],
    },
    /// A data abort outside RAM without a valid syndrome (`KVM_EXIT_ARM_NISV`): the VMM must
    /// emulate the instruction at PC and any change to the processing state.
    Nisv { fault_ipa: u64, esr_iss: u64 },
    /// A debug exception routed to the VMM (`KVM_EXIT_DEBUG`): the full ESR (hsr | hsr_high)
    /// and FAR (valid for watchpoints only). A backend's own vector catch
    /// ([`GuestDebug::vector_catch`]) is reported as this exit too, exactly as KVM reports a
    /// hardware breakpoint at the vector entry.
    Debug { esr: u64, far: u64 },
    /// `KVM_EXIT_SYSTEM_EVENT`.
    SystemEvent(SystemEvent),
    /// An HVC/SMC forwarded to userspace (`KVM_EXIT_HYPERCALL`); PC already past it.
    Hypercall { nr: u64, smc: bool, imm: u16 },
    /// The run was interrupted by a kick (immediate exit or signal).
    Interrupted,
    /// The vCPU is waiting (WFI) and nothing can ever wake it (model only).
    Idle,
    /// The deterministic clock reached where the VMM asked the machine to stop
    /// (`icount::Recorder::set_stop`; model with `VmConfig::icount` only).
    ClockReached,
    /// The backend failed the run in a way the guest caused (e.g. an access outside RAM that
    /// cannot be emulated); the message says what happened. A condition the guest caused is
    /// always this exit, never an `Err` from `run` (which is the backend's own failure): in
    /// particular a data abort outside RAM without a valid syndrome while NISV to user is off
    /// ([`VmConfig::nisv_to_user`]), whose message starts with [`NO_SYNDROME_NISV_OFF`].
    InternalError(String),
}

/// How every backend's [`VcpuExit::InternalError`] message for a data abort outside RAM
/// without a valid syndrome, with NISV to user off, begins (the backend appends details).
pub const NO_SYNDROME_NISV_OFF: &str =
    "data abort outside RAM without a valid syndrome, NISV to user off";

/// Wakes a vCPU thread out of `run`. Cheap to clone; callable from any thread.
pub trait Kick: Send + Sync {
    fn kick(&self);
}

/// One vCPU. Owned by one thread; `run` blocks until an exit.
pub trait Vcpu: Send {
    /// The vCPU index (0 = boot CPU); MPIDR affinity is derived from it.
    fn index(&self) -> usize;
    /// Reads one register. `V(n)` returns all 128 bits; others are zero-extended.
    fn get_reg(&mut self, reg: Reg) -> Result<u128>;
    /// Writes one register (`V(n)` takes 128 bits; others use the low bits).
    fn set_reg(&mut self, reg: Reg, value: u128) -> Result<()>;
    /// Registers of this vCPU that can be read (KVM: `KVM_GET_REG_LIST`).
    fn reg_list(&mut self) -> Result<Vec<Reg>>;
    /// Enters the guest until the next exit.
    fn run(&mut self) -> Result<VcpuExit>;
    /// Supplies the data for the last `MmioRead` exit (little-endian, its `len` bytes).
    fn set_mmio_data(&mut self, data: &[u8]) -> Result<()>;
    /// Applies a pending MMIO completion (load result, PC advance) now, without running the
    /// guest, so registers read next are consistent; a no-op when nothing is pending. KVM:
    /// `KVM_RUN` with `immediate_exit` set (api.rst 5 "immediate_exit"), which completes the
    /// MMIO and commits the PC adjustment before returning `EINTR`.
    fn commit_pending(&mut self) -> Result<()>;
    /// Loads the guest-debug configuration.
    fn set_guest_debug(&mut self, dbg: &GuestDebug) -> Result<()>;
    /// A handle that interrupts `run` from another thread.
    fn kicker(&self) -> Arc<dyn Kick>;
    /// True when the vCPU may be used from any thread while it is stopped (the model without
    /// the deterministic clock, whose turns belong to the vCPU threads). KVM wants a vCPU's
    /// ioctls from the thread that created it (api.rst 4 "vcpu ioctls": otherwise "the first
    /// ioctl after switching threads could see a performance impact"; `KVM_RUN` from a new
    /// thread also moves the vCPU's pid, `synchronize_rcu`), and its kick signals that thread.
    fn any_thread(&self) -> bool {
        false
    }
    /// True while the vCPU is powered off (PSCI: never turned on, or CPU_OFF): it executes
    /// nothing until a CPU_ON. KVM: `KVM_GET_MP_STATE` reports `KVM_MP_STATE_STOPPED`
    /// (api.rst 4.38 "KVM_GET_MP_STATE", arm64).
    fn powered_off(&mut self) -> Result<bool>;

    /// Reads a register that is at most 64 bits wide.
    /// Saves this vCPU's complete state (stopped, outside `run`). Only the model can.
    fn save_state(&mut self) -> Result<snapshot::VcpuSnapshot> {
        Err(snapshot::unsupported("kvm"))
    }
    /// Restores a state [`Vcpu::save_state`] saved on a vCPU of the same VM; the guest-debug
    /// configuration stays the current one.
    fn restore_state(&mut self, _state: &snapshot::VcpuSnapshot) -> Result<()> {
        Err(snapshot::unsupported("kvm"))
    }
    fn get(&mut self, reg: Reg) -> Result<u64> {
        Ok(self.get_reg(reg)? as u64)
    }
    /// Writes a register that is at most 64 bits wide.
    fn set(&mut self, reg: Reg, value: u64) -> Result<()> {
        self.set_reg(reg, value as u128)
    }
}

/// Drives the interrupt controller's shared peripheral interrupt (SPI) inputs from any thread:
/// how a device model raises its interrupt. KVM: `KVM_IRQ_LINE` (api.rst 4.25, arm64: irq_type
/// `KVM_ARM_IRQ_TYPE_SPI`, irq_id = the INTID); model: the in-model GIC's input line.
pub trait IrqLine: Send + Sync {
    /// Sets the level of the SPI with GIC INTID `intid` (32..1020). A level-sensitive SPI is
    /// pending while the line is high; an edge-triggered one latches on a rising edge.
    fn set_level(&self, intid: u32, level: bool) -> Result<()>;
}

/// A virtual machine: memory, interrupt controller, vCPU factory.
pub trait Vm: Send + Sync {
    fn caps(&self) -> &Caps;
    /// A handle on the interrupt controller's SPI inputs, usable from any thread for as long
    /// as it is held.
    fn irq_line(&self) -> Arc<dyn IrqLine>;
    /// Creates vCPU `index`; vCPU 0 starts runnable at reset state, others powered off.
    fn create_vcpu(&self, index: usize) -> Result<Box<dyn Vcpu>>;
    /// Called once after every vCPU exists (KVM: vGIC `KVM_DEV_ARM_VGIC_CTRL_INIT`).
    fn finalize(&self) -> Result<()>;
    /// The deterministic clock and input log, when the VM was created with
    /// [`VmConfig::icount`].
    fn recorder(&self) -> Option<Arc<dyn icount::Recorder>> {
        None
    }
    /// Connects a device's host side (`icount::HostInput`). True: the VM's deterministic
    /// clock admits its input. False: the device delivers it on its own; a backend may
    /// still watch whether input can come (the model then waits for it when every vCPU is
    /// idle with no timer armed, as a real CPU in WFI waits for the device's interrupt).
    fn attach_host_input(&self, _input: Arc<dyn icount::HostInput>) -> bool {
        false
    }
    /// Saves the VM's shared state (every vCPU stopped). Only the model can.
    fn save_state(&self) -> Result<snapshot::VmSnapshot> {
        Err(snapshot::unsupported(self.caps().backend))
    }
    /// Restores a state [`Vm::save_state`] saved on this VM.
    fn restore_state(&self, _state: &snapshot::VmSnapshot) -> Result<()> {
        Err(snapshot::unsupported(self.caps().backend))
    }
    /// The guest-physical addresses of the RAM pages (4 KiB) the guest wrote since the last
    /// call, and clears the log. Writes the VMM makes itself are not in it.
    fn take_dirty_pages(&self) -> Result<Vec<u64>> {
        Err(snapshot::unsupported(self.caps().backend))
    }
}

/// Capabilities of the host's KVM without creating a VM, or an error saying why it is not
/// usable (`kvmdbg info`).
pub fn probe_kvm() -> Result<Caps> {
    #[cfg(all(target_os = "linux", target_arch = "aarch64"))]
    {
        kvm::probe()
    }
    #[cfg(not(all(target_os = "linux", target_arch = "aarch64")))]
    {
        Err(BackendError::Unavailable(format!(
            "KVM backend needs an aarch64 Linux host (this is {})",
            std::env::consts::ARCH
        )))
    }
}

/// Creates a VM on the chosen backend over `mem` (RAM regions; everything else is MMIO).
pub fn create_vm(kind: BackendKind, mem: &GuestMemoryMmap, cfg: &VmConfig) -> Result<Box<dyn Vm>> {
    match kind {
        #[cfg(all(target_os = "linux", target_arch = "aarch64"))]
        BackendKind::Kvm => Ok(Box::new(kvm::KvmVm::new(mem, cfg)?)),
        #[cfg(not(all(target_os = "linux", target_arch = "aarch64")))]
        BackendKind::Kvm => {
            let _ = (mem, cfg);
            Err(probe_kvm().unwrap_err())
        }
        BackendKind::Model => Ok(Box::new(model::ModelVm::new(mem, cfg)?)),
    }
}

/// Picks KVM when this host is aarch64 with a usable /dev/kvm, else the model.
pub fn auto_kind() -> BackendKind {
    match probe_kvm() {
        Ok(_) => BackendKind::Kvm,
        Err(e) => {
            log::info!("KVM not usable ({e}); using the model backend");
            BackendKind::Model
        }
    }
}
