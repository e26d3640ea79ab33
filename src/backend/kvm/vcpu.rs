//! One KVM vCPU behind the [`Vcpu`] trait.
//!
//! Owns the vCPU fd and its `kvm_run` mapping: register access through `KVM_GET/SET_ONE_REG`
//! (ids from `regs`), `KVM_GET_REG_LIST`, `KVM_SET_GUEST_DEBUG`, and `KVM_RUN` with the
//! translation of every exit into the owned [`VcpuExit`].
//!
//! Must not depend on the VM code; register ids come only from `regs`.

use std::os::raw::c_int;
use std::sync::Arc;

use kvm_bindings::{
    kvm_guest_debug, kvm_guest_debug_arch, kvm_reg_list, KVMIO, KVM_DEBUG_ARCH_HSR_HIGH_VALID,
    KVM_GUESTDBG_ENABLE, KVM_GUESTDBG_SINGLESTEP, KVM_GUESTDBG_USE_HW, KVM_GUESTDBG_USE_SW_BP,
};
use kvm_ioctls::VcpuFd;
use nix::libc;
use vm_memory::GuestMemoryMmap;

use super::kick::KickState;
use super::run::{Raw, RunArea};
use super::{ioctl_err, regs};
use crate::a64::Reg;
use crate::backend::{
    BackendError, GuestDebug, Kick, Result, Vcpu, VcpuExit, NO_SYNDROME_NISV_OFF,
};

// KVM_GET_REG_LIST (api.rst 4.84), declared here because the kvm-ioctls wrapper caps the list
// at 500 entries while newer kernels may report more.
vmm_sys_util::ioctl_iowr_nr!(KVM_GET_REG_LIST, KVMIO, 0xb0, kvm_reg_list);

/// First guess for `KVM_GET_REG_LIST`; the kernel tells the real count with `E2BIG`.
const REG_LIST_GUESS: usize = 512;
/// Refuse counts beyond this (arm64 KVM reports a few hundred; SVE adds about 550).
const REG_LIST_MAX: usize = 1 << 16;

/// A KVM vCPU. Created by [`super::KvmVm`].
pub struct KvmVcpu {
    index: usize,
    // Field order is drop order: the fd (and its kvm_run mapping) goes before the memory.
    fd: VcpuFd,
    /// The fd's `kvm_run` mapping, accessed through raw pointers only (see `run`).
    area: RunArea,
    kick: Arc<KickState>,
    /// Length of the MMIO read the last exit asked for, until the next `run`.
    pending_read: Option<usize>,
    /// The last exit was MMIO: KVM completes it on the next `KVM_RUN`.
    mmio_pending: bool,
    /// Keeps the memslots' host mappings alive while this vCPU can run.
    _mem: GuestMemoryMmap,
}

impl KvmVcpu {
    pub(super) fn new(index: usize, mut fd: VcpuFd, mem: GuestMemoryMmap) -> Result<Self> {
        let area = RunArea::new(&mut fd);
        // `KvmVcpu::drop` detaches the kick state before the mapping goes.
        let kick = Arc::new(KickState::new(area.immediate_exit())?);
        Ok(KvmVcpu {
            index,
            fd,
            area,
            kick,
            pending_read: None,
            mmio_pending: false,
            _mem: mem,
        })
    }

    fn reg_id(reg: Reg) -> Result<u64> {
        regs::id_of(reg).ok_or_else(|| BackendError::Register {
            reg,
            reason: "no such register".into(),
        })
    }

    fn reg_err(reg: Reg, op: &str, e: vmm_sys_util::errno::Error) -> BackendError {
        BackendError::Register {
            reg,
            reason: format!(
                "{op} failed: {}",
                std::io::Error::from_raw_os_error(e.errno())
            ),
        }
    }

    /// `KVM_GET_REG_LIST`, growing the buffer to the count the kernel reports with `E2BIG`.
    fn raw_reg_list(&self) -> Result<Vec<u64>> {
        let mut n = REG_LIST_GUESS;
        loop {
            // Header word `n` followed by room for `n` ids (`struct kvm_reg_list`).
            let mut buf = vec![0u64; n + 1];
            buf[0] = n as u64;
            // SAFETY: the kernel reads `buf[0]` and writes at most `buf[0]` ids after it, all
            // inside `buf`; on E2BIG it only updates `buf[0]`.
            let rc = unsafe {
                vmm_sys_util::ioctl::ioctl_with_mut_ptr(
                    &self.fd,
                    KVM_GET_REG_LIST(),
                    buf.as_mut_ptr(),
                )
            };
            if rc >= 0 {
                let count = (buf[0] as usize).min(n);
                buf.truncate(count + 1);
                buf.remove(0);
                return Ok(buf);
            }
            let err = vmm_sys_util::errno::Error::last();
            let wanted = buf[0] as usize;
            if err.errno() != libc::E2BIG || wanted <= n || wanted > REG_LIST_MAX {
                return Err(ioctl_err("KVM_GET_REG_LIST")(err));
            }
            n = wanted;
        }
    }

    /// Completes `Debug` and `Nisv` with the `kvm_run` fields they need.
    fn finish(&mut self, raw: Raw) -> VcpuExit {
        match raw {
            Raw::Done(exit) => exit,
            // kvm_run.debug.arch: ESR[31:0] in `hsr`, ESR[63:32] in `hsr_high` only when
            // KVM_DEBUG_ARCH_HSR_HIGH_VALID is set in kvm_run.flags (api.rst 5, KVM_EXIT_DEBUG).
            Raw::Debug(arch) => {
                let flags = self.area.flags() as u32;
                let mut esr = arch.hsr as u64;
                if flags & KVM_DEBUG_ARCH_HSR_HIGH_VALID != 0 {
                    esr |= (arch.hsr_high as u64) << 32;
                }
                // KVM fills `far` only for watchpoints (handle_exit.c kvm_handle_guest_debug);
                // otherwise the field holds whatever the kvm_run union held before (observed:
                // the last MMIO data). Report 0 so exits carry no stale value.
                let class = crate::a64::esr::class(esr);
                let watch = matches!(
                    class,
                    crate::a64::esr::ec::WATCHPT_LOW | crate::a64::esr::ec::WATCHPT_CUR
                );
                VcpuExit::Debug {
                    esr,
                    far: if watch { arch.far } else { 0 },
                }
            }
            Raw::Nisv => match self.area.arm_nisv() {
                Some((fault_ipa, esr_iss)) => VcpuExit::Nisv { fault_ipa, esr_iss },
                None => VcpuExit::InternalError("KVM_EXIT_ARM_NISV without its fields".into()),
            },
        }
    }

    /// Maps a failed `KVM_RUN`. `EINTR` is a kick (or another signal); `ENOSYS` is KVM's answer
    /// to a data abort outside every memslot without a valid syndrome when
    /// `KVM_CAP_ARM_NISV_TO_USER` is off (arch/arm64/kvm/mmio.c `io_mem_abort`).
    fn run_error(errno: c_int) -> Result<VcpuExit> {
        match errno {
            libc::EINTR => Ok(VcpuExit::Interrupted),
            libc::ENOSYS => Ok(VcpuExit::InternalError(format!(
                "{NO_SYNDROME_NISV_OFF}: KVM_RUN failed with ENOSYS"
            ))),
            _ => Err(BackendError::Ioctl {
                op: "KVM_RUN",
                source: std::io::Error::from_raw_os_error(errno),
            }),
        }
    }
}

impl Drop for KvmVcpu {
    fn drop(&mut self) {
        self.kick.detach();
    }
}

impl Vcpu for KvmVcpu {
    fn index(&self) -> usize {
        self.index
    }

    fn get_reg(&mut self, reg: Reg) -> Result<u128> {
        let id = Self::reg_id(reg)?;
        let size = regs::id_size(id);
        let mut buf = [0u8; 16];
        self.fd
            .get_one_reg(id, &mut buf[..size])
            .map_err(|e| Self::reg_err(reg, "KVM_GET_ONE_REG", e))?;
        // KVM copies the register in the host's byte order; the bytes past `size` stay zero.
        Ok(u128::from_ne_bytes(buf))
    }

    fn set_reg(&mut self, reg: Reg, value: u128) -> Result<()> {
        let id = Self::reg_id(reg)?;
        let size = regs::id_size(id);
        let bytes = value.to_ne_bytes();
        // The low `size` bytes of a native-endian u128: at the start on little-endian hosts,
        // at the end on big-endian ones.
        let low = if cfg!(target_endian = "little") {
            &bytes[..size]
        } else {
            &bytes[16 - size..]
        };
        self.fd
            .set_one_reg(id, low)
            .map(|_| ())
            .map_err(|e| Self::reg_err(reg, "KVM_SET_ONE_REG", e))
    }

    fn reg_list(&mut self) -> Result<Vec<Reg>> {
        Ok(self
            .raw_reg_list()?
            .into_iter()
            .filter_map(regs::reg_of)
            .collect())
    }

    fn run(&mut self) -> Result<VcpuExit> {
        self.pending_read = None;
        self.mmio_pending = false;
        self.kick.enter()?;
        let result = self.area.run(&self.fd);
        if let Ok(Raw::Done(VcpuExit::MmioRead { len, .. })) = &result {
            self.pending_read = Some(*len);
        }
        self.mmio_pending = matches!(
            result,
            Ok(Raw::Done(
                VcpuExit::MmioRead { .. } | VcpuExit::MmioWrite { .. }
            ))
        );
        let interrupted = matches!(result, Err(libc::EINTR))
            || matches!(result, Ok(Raw::Done(VcpuExit::Interrupted)));
        self.kick.leave(interrupted);
        match result {
            Ok(raw) => Ok(self.finish(raw)),
            Err(errno) => Self::run_error(errno),
        }
    }

    fn powered_off(&mut self) -> Result<bool> {
        let state = self.fd.get_mp_state().map_err(|e| BackendError::Ioctl {
            op: "KVM_GET_MP_STATE",
            source: std::io::Error::from_raw_os_error(e.errno()),
        })?;
        // api.rst 4.38: on arm64 a powered-off vCPU is KVM_MP_STATE_STOPPED.
        Ok(state.mp_state == kvm_bindings::KVM_MP_STATE_STOPPED)
    }

    fn commit_pending(&mut self) -> Result<()> {
        if !self.mmio_pending {
            return Ok(());
        }
        // A kick between runs stays pending: the next KVM_RUN sees immediate_exit = 1,
        // completes the MMIO, commits the PC and returns EINTR without entering the guest.
        self.kick.kick();
        match self.run()? {
            VcpuExit::Interrupted => Ok(()),
            other => Err(BackendError::Vcpu {
                index: self.index,
                reason: format!("committing an MMIO completion ran the guest: {other:?}"),
            }),
        }
    }

    fn set_mmio_data(&mut self, data: &[u8]) -> Result<()> {
        let len = self.pending_read.ok_or_else(|| BackendError::Vcpu {
            index: self.index,
            reason: "MMIO data supplied but the last exit was not an MMIO read".into(),
        })?;
        if data.len() != len {
            return Err(BackendError::Vcpu {
                index: self.index,
                reason: format!("MMIO read of {len} bytes given {} bytes", data.len()),
            });
        }
        if !self.area.set_mmio_data(data) {
            return Err(BackendError::Vcpu {
                index: self.index,
                reason: format!("kvm_run holds exit {}, not MMIO", self.area.exit_reason()),
            });
        }
        Ok(())
    }

    /// `KVM_SET_GUEST_DEBUG` (api.rst 4.87), arm64: control flags ENABLE, SINGLESTEP, USE_SW_BP,
    /// USE_HW, and `kvm_guest_debug_arch` with DBGBCR/DBGBVR/DBGWCR/DBGWVR values.
    fn set_guest_debug(&mut self, dbg: &GuestDebug) -> Result<()> {
        if !dbg.vector_catch.is_empty() {
            // Not in KVM's ABI (`Caps::exact_vector_catch` is false): the debug layer plants
            // hardware breakpoints on the vector entries instead.
            return Err(BackendError::Unsupported(format!(
                "vCPU {}: KVM has no vector catch at exception entry ({})",
                self.index,
                dbg.vector_catch.describe()
            )));
        }
        let mut control = 0;
        for (on, flag) in [
            (dbg.enable, KVM_GUESTDBG_ENABLE),
            (dbg.single_step, KVM_GUESTDBG_SINGLESTEP),
            (dbg.sw_breakpoints, KVM_GUESTDBG_USE_SW_BP),
            (dbg.hw, KVM_GUESTDBG_USE_HW),
        ] {
            if on {
                control |= flag;
            }
        }
        let arg = kvm_guest_debug {
            control,
            pad: 0,
            arch: kvm_guest_debug_arch {
                dbg_bcr: dbg.bcr,
                dbg_bvr: dbg.bvr,
                dbg_wcr: dbg.wcr,
                dbg_wvr: dbg.wvr,
            },
        };
        self.fd
            .set_guest_debug(&arg)
            .map_err(ioctl_err("KVM_SET_GUEST_DEBUG"))
    }

    fn kicker(&self) -> Arc<dyn Kick> {
        self.kick.clone()
    }
}
