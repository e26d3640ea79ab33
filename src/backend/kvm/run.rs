//! `KVM_RUN` and the vCPU's `kvm_run` area, read and written through raw pointers only.
//!
//! Owns every access to `kvm_run` (KVM api.rst 5 "The kvm_run structure") and the translation
//! of an exit into the owned [`VcpuExit`]. The area is shared with the kernel and with kick
//! threads (`kick`), which store `immediate_exit` at any time. So no `&`/`&mut kvm_run` is ever
//! formed here (kvm-ioctls' `VcpuFd::run` and `get_kvm_run` would form one, which a concurrent
//! kick would alias): fields are read and written through `addr_of!` places, and
//! `immediate_exit` only atomically, by every thread (`kick::store_immediate_exit`).
//!
//! Must not depend on the rest of the backend but the exit types.

use std::os::fd::AsRawFd;
use std::ptr::{self, addr_of, addr_of_mut, NonNull};

use kvm_bindings::{
    kvm_debug_exit_arch, kvm_run, KVMIO, KVM_EXIT_ARM_NISV, KVM_EXIT_DEBUG, KVM_EXIT_FAIL_ENTRY,
    KVM_EXIT_HYPERCALL, KVM_EXIT_INTERNAL_ERROR, KVM_EXIT_INTR, KVM_EXIT_MEMORY_FAULT,
    KVM_EXIT_MMIO, KVM_EXIT_SYSTEM_EVENT, KVM_HYPERCALL_EXIT_SMC, KVM_SYSTEM_EVENT_CRASH,
    KVM_SYSTEM_EVENT_RESET, KVM_SYSTEM_EVENT_SHUTDOWN,
};
use kvm_ioctls::VcpuFd;
use nix::libc;

use crate::backend::{SystemEvent, VcpuExit};

// KVM_RUN: _IO(KVMIO, 0x80) (KVM api.rst 4.10 "KVM_RUN").
vmm_sys_util::ioctl_io_nr!(KVM_RUN, KVMIO, 0x80);

/// An exit read out of `kvm_run`; `Debug` and `Nisv` still need fields the vCPU completes
/// (`kvm_run.flags`, `kvm_run.arm_nisv`).
pub(super) enum Raw {
    Done(VcpuExit),
    Debug(kvm_debug_exit_arch),
    Nisv,
}

/// The vCPU's `kvm_run` mapping, owned by the `VcpuFd` it came from (which must outlive this
/// value: `KvmVcpu` keeps both and drops the kick state's pointer first).
pub(super) struct RunArea {
    run: NonNull<kvm_run>,
}

// SAFETY: the mapping is plain shared memory, valid from any thread while the fd lives; every
// access goes through raw pointers as described in the module docs.
unsafe impl Send for RunArea {}

impl RunArea {
    /// Takes the mapping's address once, before any kicker exists (the one `&mut kvm_run`
    /// kvm-ioctls hands out ends here).
    pub(super) fn new(fd: &mut VcpuFd) -> RunArea {
        RunArea {
            run: NonNull::from(fd.get_kvm_run()),
        }
    }

    /// `&kvm_run.immediate_exit`, for the kick state.
    pub(super) fn immediate_exit(&self) -> *mut u8 {
        // SAFETY: a field address inside the live mapping; no reference is created.
        unsafe { addr_of_mut!((*self.run.as_ptr()).immediate_exit) }
    }

    /// `KVM_RUN`: `Ok` with the exit, or the errno of a failed run. `EFAULT`/`EHWPOISON`
    /// with `KVM_EXIT_MEMORY_FAULT` is that exit (api.rst 5, "KVM_EXIT_MEMORY_FAULT": the one
    /// exit that accompanies a return of -1).
    pub(super) fn run(&self, fd: &VcpuFd) -> Result<Raw, i32> {
        // SAFETY: `fd` is a vCPU fd; KVM_RUN takes no argument and only touches this vCPU's
        // `kvm_run` mapping (which no Rust reference covers).
        let rc = unsafe { vmm_sys_util::ioctl::ioctl(&fd.as_raw_fd(), KVM_RUN()) };
        if rc == 0 {
            return Ok(self.exit());
        }
        let errno = vmm_sys_util::errno::Error::last().errno();
        if (errno == libc::EFAULT || errno == libc::EHWPOISON)
            && self.exit_reason() == KVM_EXIT_MEMORY_FAULT
        {
            // SAFETY: exit_reason says `memory_fault` is the active union member.
            let f =
                unsafe { ptr::read(addr_of!((*self.run.as_ptr()).__bindgen_anon_1.memory_fault)) };
            return Ok(Raw::Done(VcpuExit::InternalError(format!(
                "KVM_EXIT_MEMORY_FAULT at {:#x} (+{:#x}), flags {:#x}",
                f.gpa, f.size, f.flags
            ))));
        }
        Err(errno)
    }

    pub(super) fn exit_reason(&self) -> u32 {
        // SAFETY: a plain field read through a raw place in the live mapping.
        unsafe { ptr::read(addr_of!((*self.run.as_ptr()).exit_reason)) }
    }

    /// `kvm_run.flags`.
    pub(super) fn flags(&self) -> u16 {
        // SAFETY: as in `exit_reason`.
        unsafe { ptr::read(addr_of!((*self.run.as_ptr()).flags)) }
    }

    /// `kvm_run.arm_nisv`: (fault IPA, ESR ISS). Only meaningful after `KVM_EXIT_ARM_NISV`.
    pub(super) fn arm_nisv(&self) -> Option<(u64, u64)> {
        if self.exit_reason() != KVM_EXIT_ARM_NISV {
            return None;
        }
        // SAFETY: exit_reason is KVM_EXIT_ARM_NISV, so `arm_nisv` is the active union member
        // (api.rst 5, KVM_EXIT_ARM_NISV).
        let n = unsafe { ptr::read(addr_of!((*self.run.as_ptr()).__bindgen_anon_1.arm_nisv)) };
        Some((n.fault_ipa, n.esr_iss))
    }

    /// Writes the data of the last MMIO read (`kvm_run.mmio.data[..len]`, which KVM loads on
    /// the next `KVM_RUN`, api.rst 5 "KVM_EXIT_MMIO"). False when the last exit was not MMIO.
    pub(super) fn set_mmio_data(&self, data: &[u8]) -> bool {
        if self.exit_reason() != KVM_EXIT_MMIO || data.len() > 8 {
            return false;
        }
        // SAFETY: exit_reason is KVM_EXIT_MMIO, so `mmio` is the active union member; `data`
        // (at most 8 bytes) fits `mmio.data` ([u8; 8]); no reference to the area is formed.
        unsafe {
            let dst = addr_of_mut!((*self.run.as_ptr()).__bindgen_anon_1.mmio.data);
            ptr::copy_nonoverlapping(data.as_ptr(), dst.cast::<u8>(), data.len());
        }
        true
    }

    /// Reads the exit of a successful `KVM_RUN` (the one exhaustive exit match).
    fn exit(&self) -> Raw {
        let run = self.run.as_ptr();
        let done = match self.exit_reason() {
            KVM_EXIT_MMIO => {
                // SAFETY: exit_reason says `mmio` is the active union member.
                let m = unsafe { ptr::read(addr_of!((*run).__bindgen_anon_1.mmio)) };
                let len = (m.len as usize).min(8);
                if m.is_write != 0 {
                    VcpuExit::MmioWrite {
                        addr: m.phys_addr,
                        len,
                        data: m.data,
                    }
                } else {
                    VcpuExit::MmioRead {
                        addr: m.phys_addr,
                        len,
                    }
                }
            }
            KVM_EXIT_DEBUG => {
                // SAFETY: exit_reason says `debug` is the active union member.
                let d = unsafe { ptr::read(addr_of!((*run).__bindgen_anon_1.debug)) };
                return Raw::Debug(d.arch);
            }
            KVM_EXIT_ARM_NISV => return Raw::Nisv,
            KVM_EXIT_SYSTEM_EVENT => {
                // SAFETY: exit_reason says `system_event` is the active union member.
                let e = unsafe { ptr::read(addr_of!((*run).__bindgen_anon_1.system_event)) };
                VcpuExit::SystemEvent(match e.type_ {
                    KVM_SYSTEM_EVENT_SHUTDOWN => SystemEvent::Shutdown,
                    KVM_SYSTEM_EVENT_RESET => SystemEvent::Reset,
                    KVM_SYSTEM_EVENT_CRASH => SystemEvent::Crash,
                    other => SystemEvent::Other(other),
                })
            }
            // An SMCCC call the VMM asked KVM to forward (KVM_ARM_VM_SMCCC_FILTER,
            // devices/vm.rst; exit in api.rst 5 "KVM_EXIT_HYPERCALL"): `nr` is the function id
            // and the `flags` word says SMC or HVC. The exit carries no immediate
            // (arch/arm64/kvm/hypercalls.c `kvm_prepare_hypercall_exit` fills only `nr` and
            // `flags`), so 0 is reported, the SMC Calling Convention's value.
            KVM_EXIT_HYPERCALL => {
                // SAFETY: exit_reason says `hypercall` is the active union member; `flags` and
                // `longmode` are the same u64 (a union of two integers).
                let (nr, flags) = unsafe {
                    let h = ptr::read(addr_of!((*run).__bindgen_anon_1.hypercall));
                    (h.nr, h.__bindgen_anon_1.flags)
                };
                VcpuExit::Hypercall {
                    nr,
                    smc: flags & KVM_HYPERCALL_EXIT_SMC as u64 != 0,
                    imm: 0,
                }
            }
            KVM_EXIT_INTR => VcpuExit::Interrupted,
            KVM_EXIT_INTERNAL_ERROR => VcpuExit::InternalError("KVM_EXIT_INTERNAL_ERROR".into()),
            KVM_EXIT_FAIL_ENTRY => {
                // SAFETY: exit_reason says `fail_entry` is the active union member.
                let f = unsafe { ptr::read(addr_of!((*run).__bindgen_anon_1.fail_entry)) };
                VcpuExit::InternalError(format!(
                    "KVM_EXIT_FAIL_ENTRY: hardware entry failure reason {:#x} on host CPU {}",
                    f.hardware_entry_failure_reason, f.cpu
                ))
            }
            reason => VcpuExit::InternalError(format!("unhandled KVM exit reason {reason}")),
        };
        Raw::Done(done)
    }
}
