//! Real KVM backend (aarch64 Linux hosts only).
//!
//! Owns `/dev/kvm`: the capability probe, the VM (memslots, the in-kernel vGICv3, vCPU
//! creation) and, in submodules, the vCPU (`vcpu`), the register-id table (`regs`), the vGIC
//! (`gic`) and the kick machinery (`kick`). Every KVM error becomes a [`BackendError`]; nothing
//! here panics on a failed ioctl (under qemu-user `/dev/kvm` may open while every ioctl fails).
//!
//! This is the only module that uses kvm-bindings' arm64 types. Must not depend on `machine`,
//! `debug` or `gdb`.

mod gic;
mod kick;
mod regs;
mod run;
mod vcpu;

use std::sync::{Arc, Mutex};

use kvm_bindings::{
    kvm_enable_cap, kvm_userspace_memory_region, kvm_vcpu_init, KVM_API_VERSION,
    KVM_ARM_IRQ_TYPE_SHIFT, KVM_ARM_IRQ_TYPE_SPI, KVM_ARM_VCPU_POWER_OFF, KVM_ARM_VCPU_PSCI_0_2,
    KVM_CAP_ARM_NISV_TO_USER, KVM_CAP_ARM_VM_IPA_SIZE, KVM_CAP_GUEST_DEBUG_HW_BPS,
    KVM_CAP_GUEST_DEBUG_HW_WPS, KVM_CAP_IMMEDIATE_EXIT, KVM_CAP_SET_GUEST_DEBUG,
};
use kvm_ioctls::{Kvm, VmFd};
use vm_memory::{GuestMemoryBackend, GuestMemoryMmap, GuestMemoryRegion};

pub use gic::{NR_IRQS, REDIST_SIZE_PER_VCPU};
pub use kick::{kick_signal, KICK_SIGNAL_OFFSET};
pub use vcpu::KvmVcpu;

use crate::backend::{BackendError, Caps, IrqLine, Result, Vcpu, Vm, VmConfig};

/// IPA size KVM gives a VM when `KVM_CAP_ARM_VM_IPA_SIZE` is absent (api.rst 4.2
/// "KVM_CREATE_VM": "the default IPA size of 40 bits").
const DEFAULT_IPA_BITS: u32 = 40;

/// Maps a kvm-ioctls error to [`BackendError::Ioctl`] naming the failed operation.
pub(crate) fn ioctl_err(op: &'static str) -> impl Fn(vmm_sys_util::errno::Error) -> BackendError {
    move |e| BackendError::Ioctl {
        op,
        source: std::io::Error::from_raw_os_error(e.errno()),
    }
}

fn unavailable(what: &str, e: vmm_sys_util::errno::Error) -> BackendError {
    BackendError::Unavailable(format!(
        "{what} failed: {} (is this an arm64 host with KVM?)",
        std::io::Error::from_raw_os_error(e.errno())
    ))
}

/// Probes the host's KVM: opens `/dev/kvm`, checks the API version, reads the capabilities and
/// asks a throw-away VM for the preferred vCPU target.
pub fn probe() -> Result<Caps> {
    let kvm = open()?;
    let vm = kvm
        .create_vm()
        .map_err(|e| unavailable("KVM_CREATE_VM", e))?;
    Ok(caps(&kvm, &preferred_target(&vm)?))
}

fn open() -> Result<Kvm> {
    let kvm = Kvm::new().map_err(|e| {
        BackendError::Unavailable(format!(
            "cannot open /dev/kvm: {}",
            std::io::Error::from_raw_os_error(e.errno())
        ))
    })?;
    let api = kvm.get_api_version();
    if api < 0 {
        return Err(unavailable(
            "KVM_GET_API_VERSION",
            vmm_sys_util::errno::Error::last(),
        ));
    }
    if api != KVM_API_VERSION as i32 {
        return Err(BackendError::Unavailable(format!(
            "KVM API version {api}, expected {KVM_API_VERSION}"
        )));
    }
    Ok(kvm)
}

/// `KVM_CHECK_EXTENSION`; an ioctl failure reads as "absent" (0).
fn extension(kvm: &Kvm, cap: u32) -> u32 {
    kvm.check_extension_raw(cap.into()).max(0) as u32
}

/// `KVM_ARM_PREFERRED_TARGET` (api.rst 4.83): the target with no features set.
fn preferred_target(vm: &VmFd) -> Result<kvm_vcpu_init> {
    let mut kvi = kvm_vcpu_init::default();
    vm.get_preferred_target(&mut kvi)
        .map_err(|e| unavailable("KVM_ARM_PREFERRED_TARGET", e))?;
    Ok(kvi)
}

fn caps(kvm: &Kvm, target: &kvm_vcpu_init) -> Caps {
    let ipa = extension(kvm, KVM_CAP_ARM_VM_IPA_SIZE);
    Caps {
        backend: "kvm",
        hw_breakpoints: extension(kvm, KVM_CAP_GUEST_DEBUG_HW_BPS),
        hw_watchpoints: extension(kvm, KVM_CAP_GUEST_DEBUG_HW_WPS),
        guest_debug: extension(kvm, KVM_CAP_SET_GUEST_DEBUG) > 0,
        nisv_to_user: extension(kvm, KVM_CAP_ARM_NISV_TO_USER) > 0,
        ipa_bits: if ipa == 0 { DEFAULT_IPA_BITS } else { ipa },
        immediate_exit: extension(kvm, KVM_CAP_IMMEDIATE_EXIT) > 0,
        api_version: kvm.get_api_version(),
        preferred_target: Some(target.target),
        exact_vector_catch: false,
    }
}

/// A KVM virtual machine with one memslot per guest-memory region and an in-kernel GICv3.
pub struct KvmVm {
    // Field order is drop order: the fds close before the last reference to the memory goes.
    // Shared with the `IrqLine` handles (which only inject interrupts, never touch memory).
    vm: Arc<VmFd>,
    gic: gic::Vgic,
    caps: Caps,
    /// `KVM_ARM_PREFERRED_TARGET`, the base of every vCPU's `KVM_ARM_VCPU_INIT`.
    target: kvm_vcpu_init,
    /// Which vCPU indices have been created.
    created: Mutex<Vec<bool>>,
    /// Keeps the memslots' host mappings alive as long as the VM.
    mem: GuestMemoryMmap,
}

impl KvmVm {
    /// Creates the VM over `mem` (every region becomes a memslot; the rest of the address
    /// space is MMIO) and its vGICv3. vCPUs come from [`Vm::create_vcpu`].
    pub fn new(mem: &GuestMemoryMmap, cfg: &VmConfig) -> Result<Self> {
        if cfg.vcpus == 0 {
            return Err(BackendError::Unsupported(
                "a VM needs at least one vCPU".into(),
            ));
        }
        if cfg.icount {
            return Err(BackendError::Unsupported(
                "the deterministic clock (--icount, --record) needs the model backend: KVM \
                 runs the guest on the host's own clock"
                    .into(),
            ));
        }
        let kvm = open()?;
        // kvm-ioctls creates the VM with the host's largest IPA size (KVM_CAP_ARM_VM_IPA_SIZE).
        let vm = kvm.create_vm().map_err(ioctl_err("KVM_CREATE_VM"))?;
        let target = preferred_target(&vm)?;
        let caps = caps(&kvm, &target);
        check_ipa(mem, cfg, caps.ipa_bits)?;
        add_memslots(&vm, mem)?;
        if cfg.nisv_to_user {
            enable_nisv_to_user(&vm, &caps)?;
        }
        let gic = gic::Vgic::create(&vm, &cfg.gic, cfg.vcpus)?;
        Ok(KvmVm {
            vm: Arc::new(vm),
            gic,
            caps,
            target,
            created: Mutex::new(vec![false; cfg.vcpus]),
            mem: mem.clone(),
        })
    }
}

/// Every address the VM uses must fit in its IPA space.
fn check_ipa(mem: &GuestMemoryMmap, cfg: &VmConfig, ipa_bits: u32) -> Result<()> {
    let limit = 1u128 << ipa_bits;
    let mem_end = mem
        .iter()
        .map(|r| r.start_addr().0 as u128 + r.len() as u128)
        .max()
        .unwrap_or(0);
    let gic_end = cfg.gic.redist_base as u128 + cfg.gic.redist_size as u128;
    let end = mem_end.max(gic_end).max(cfg.gic.dist_base as u128 + 1);
    if end > limit {
        return Err(BackendError::Unsupported(format!(
            "guest addresses up to {end:#x} exceed the host's {ipa_bits}-bit IPA space"
        )));
    }
    Ok(())
}

fn add_memslots(vm: &VmFd, mem: &GuestMemoryMmap) -> Result<()> {
    for (slot, region) in mem.iter().enumerate() {
        let slot_region = kvm_userspace_memory_region {
            slot: slot as u32,
            flags: 0,
            guest_phys_addr: region.start_addr().0,
            memory_size: region.len(),
            userspace_addr: region.as_ptr() as u64,
        };
        // SAFETY: the host range is a live mapping of exactly `memory_size` bytes owned by
        // `region`; `KvmVm` and every `KvmVcpu` keep a clone of `mem` (which holds the regions
        // by `Arc`) and drop it only after their KVM fds, so the mapping outlives every guest
        // access through this slot.
        unsafe { vm.set_user_memory_region(slot_region) }.map_err(|e| {
            BackendError::Memory(format!(
                "KVM_SET_USER_MEMORY_REGION slot {slot} at {:#x} (+{:#x}) failed: {}",
                region.start_addr().0,
                region.len(),
                std::io::Error::from_raw_os_error(e.errno())
            ))
        })?;
    }
    Ok(())
}

/// `KVM_ENABLE_CAP(KVM_CAP_ARM_NISV_TO_USER)` (api.rst 7.19): data aborts outside memslots
/// without a valid syndrome exit with `KVM_EXIT_ARM_NISV` instead of failing `KVM_RUN`.
fn enable_nisv_to_user(vm: &VmFd, caps: &Caps) -> Result<()> {
    if !caps.nisv_to_user {
        return Err(BackendError::Unsupported(
            "KVM_CAP_ARM_NISV_TO_USER is not supported by this host's KVM".into(),
        ));
    }
    let cap = kvm_enable_cap {
        cap: KVM_CAP_ARM_NISV_TO_USER,
        ..Default::default()
    };
    vm.enable_cap(&cap)
        .map_err(ioctl_err("KVM_ENABLE_CAP(KVM_CAP_ARM_NISV_TO_USER)"))
}

/// `KVM_IRQ_LINE` on the VM fd (api.rst 4.25): for arm64 the irq field is
/// irq_type << `KVM_ARM_IRQ_TYPE_SHIFT` | irq_id, with `KVM_ARM_IRQ_TYPE_SPI` and the INTID
/// (32..1019) as irq_id; the vGIC applies the level as the SPI's configured trigger requires.
struct KvmIrqLine(Arc<VmFd>);

impl IrqLine for KvmIrqLine {
    fn set_level(&self, intid: u32, level: bool) -> Result<()> {
        if !(32..1020).contains(&intid) {
            return Err(BackendError::Unsupported(format!(
                "KVM_IRQ_LINE: INTID {intid} is not an SPI"
            )));
        }
        let irq = KVM_ARM_IRQ_TYPE_SPI << KVM_ARM_IRQ_TYPE_SHIFT | intid;
        self.0
            .set_irq_line(irq, level)
            .map_err(ioctl_err("KVM_IRQ_LINE"))
    }
}

impl Vm for KvmVm {
    fn caps(&self) -> &Caps {
        &self.caps
    }

    fn irq_line(&self) -> Arc<dyn IrqLine> {
        Arc::new(KvmIrqLine(self.vm.clone()))
    }

    /// `KVM_CREATE_VCPU` + `KVM_ARM_VCPU_INIT` (api.rst 4.82) with the preferred target, PSCI
    /// 0.2 (`KVM_ARM_VCPU_PSCI_0_2`) and, for every vCPU but 0, `KVM_ARM_VCPU_POWER_OFF`: it
    /// waits powered off until a PSCI CPU_ON, which KVM handles in the kernel.
    fn create_vcpu(&self, index: usize) -> Result<Box<dyn Vcpu>> {
        let mut created = self.created.lock().unwrap_or_else(|p| p.into_inner());
        match created.get(index) {
            None => {
                return Err(BackendError::Vcpu {
                    index,
                    reason: format!("the VM was configured for {} vCPUs", created.len()),
                })
            }
            Some(true) => {
                return Err(BackendError::Vcpu {
                    index,
                    reason: "already created".into(),
                })
            }
            Some(false) => {}
        }
        let fd = self
            .vm
            .create_vcpu(index as u64)
            .map_err(ioctl_err("KVM_CREATE_VCPU"))?;
        let mut kvi = self.target;
        kvi.features[0] |= 1 << KVM_ARM_VCPU_PSCI_0_2;
        if index > 0 {
            kvi.features[0] |= 1 << KVM_ARM_VCPU_POWER_OFF;
        }
        fd.vcpu_init(&kvi).map_err(ioctl_err("KVM_ARM_VCPU_INIT"))?;
        let vcpu = KvmVcpu::new(index, fd, self.mem.clone())?;
        created[index] = true;
        Ok(Box::new(vcpu))
    }

    fn finalize(&self) -> Result<()> {
        let created = self.created.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(index) = created.iter().position(|c| !c) {
            return Err(BackendError::Vcpu {
                index,
                reason: "not created before finalize (the vGIC is sized at init)".into(),
            });
        }
        self.gic.init()
    }
}
