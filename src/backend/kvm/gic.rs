//! The in-kernel GICv3 (KVM device `KVM_DEV_TYPE_ARM_VGIC_V3`).
//!
//! Owns the vGIC device fd and its setup order, from Documentation/virt/kvm/devices/
//! arm-vgic-v3.rst: create the device and set the distributor/redistributor addresses
//! (`KVM_DEV_ARM_VGIC_GRP_ADDR`) and the number of interrupts (`KVM_DEV_ARM_VGIC_GRP_NR_IRQS`)
//! before any vCPU runs; `KVM_DEV_ARM_VGIC_CTRL_INIT` "must be called after all VCPUs have been
//! created" (and KVM refuses new vCPUs after it).
//!
//! Must not depend on the vCPU code.

use kvm_bindings::{
    kvm_create_device, kvm_device_attr, kvm_device_type_KVM_DEV_TYPE_ARM_VGIC_V3,
    KVM_DEV_ARM_VGIC_CTRL_INIT, KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_DEV_ARM_VGIC_GRP_CTRL,
    KVM_DEV_ARM_VGIC_GRP_NR_IRQS, KVM_VGIC_V3_ADDR_TYPE_DIST, KVM_VGIC_V3_ADDR_TYPE_REDIST,
};
use kvm_ioctls::{DeviceFd, VmFd};

use super::ioctl_err;
use crate::backend::{BackendError, GicLayout, Result};

/// Interrupt IDs the distributor implements: 32 private (SGIs and PPIs, GICv3 spec 2.2
/// "INTIDs") plus 256 SPIs, as QEMU's `virt` board (`NUM_IRQS` = 256 in hw/arm/virt.h, plus
/// `GIC_INTERNAL` = 32). arm-vgic-v3.rst: at least 64, at most 1024, a multiple of 32.
pub const NR_IRQS: u32 = 32 + 256;

/// Size of one vCPU's redistributor: an RD_base and an SGI_base 64 KiB frame (GICv3 spec 12.10
/// "The GIC Redistributor register map").
pub const REDIST_SIZE_PER_VCPU: u64 = 2 * 0x1_0000;

/// Alignment arm-vgic-v3.rst requires of both base addresses ("needs to be 64K aligned").
const ADDR_ALIGN: u64 = 0x1_0000;

pub(super) struct Vgic {
    fd: DeviceFd,
}

impl Vgic {
    /// Creates the vGIC and sets everything that must precede vCPU creation and `init`.
    pub(super) fn create(vm: &VmFd, layout: &GicLayout, vcpus: usize) -> Result<Self> {
        check_layout(layout, vcpus)?;
        let mut dev = kvm_create_device {
            type_: kvm_device_type_KVM_DEV_TYPE_ARM_VGIC_V3,
            fd: 0,
            flags: 0,
        };
        let fd = vm
            .create_device(&mut dev)
            .map_err(ioctl_err("KVM_CREATE_DEVICE(KVM_DEV_TYPE_ARM_VGIC_V3)"))?;
        let gic = Vgic { fd };
        gic.set_addr(KVM_VGIC_V3_ADDR_TYPE_DIST, layout.dist_base, "distributor")?;
        gic.set_addr(
            KVM_VGIC_V3_ADDR_TYPE_REDIST,
            layout.redist_base,
            "redistributor",
        )?;
        let nr_irqs: u32 = NR_IRQS;
        let attr = kvm_device_attr {
            flags: 0,
            group: KVM_DEV_ARM_VGIC_GRP_NR_IRQS,
            attr: 0,
            addr: &nr_irqs as *const u32 as u64,
        };
        gic.fd
            .set_device_attr(&attr)
            .map_err(ioctl_err("KVM_SET_DEVICE_ATTR(vGIC NR_IRQS)"))?;
        Ok(gic)
    }

    fn set_addr(&self, kind: u32, addr: u64, what: &str) -> Result<()> {
        let attr = kvm_device_attr {
            flags: 0,
            group: KVM_DEV_ARM_VGIC_GRP_ADDR,
            attr: kind as u64,
            addr: &addr as *const u64 as u64,
        };
        self.fd.set_device_attr(&attr).map_err(|e| {
            BackendError::Unsupported(format!(
                "KVM_SET_DEVICE_ATTR(vGIC {what} base {addr:#x}) failed: {}",
                std::io::Error::from_raw_os_error(e.errno())
            ))
        })
    }

    /// `KVM_DEV_ARM_VGIC_CTRL_INIT`, once every vCPU exists.
    pub(super) fn init(&self) -> Result<()> {
        let attr = kvm_device_attr {
            flags: 0,
            group: KVM_DEV_ARM_VGIC_GRP_CTRL,
            attr: KVM_DEV_ARM_VGIC_CTRL_INIT as u64,
            addr: 0,
        };
        self.fd
            .set_device_attr(&attr)
            .map_err(ioctl_err("KVM_SET_DEVICE_ATTR(vGIC CTRL_INIT)"))
    }
}

fn check_layout(layout: &GicLayout, vcpus: usize) -> Result<()> {
    if layout.dist_base % ADDR_ALIGN != 0 || layout.redist_base % ADDR_ALIGN != 0 {
        return Err(BackendError::Unsupported(format!(
            "GIC bases must be 64 KiB aligned (distributor {:#x}, redistributors {:#x})",
            layout.dist_base, layout.redist_base
        )));
    }
    let needed = REDIST_SIZE_PER_VCPU * vcpus as u64;
    if layout.redist_size < needed {
        return Err(BackendError::Unsupported(format!(
            "redistributor region of {:#x} bytes is too small for {vcpus} vCPUs (needs {needed:#x})",
            layout.redist_size
        )));
    }
    Ok(())
}
