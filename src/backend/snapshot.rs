//! Whole-machine snapshots at the backend boundary: opaque saved states of a VM and of its
//! vCPUs, and the guest's dirty-page log that lets the layer above copy only the RAM pages
//! written since the last snapshot.
//!
//! Owns the value types only. A backend that can restore itself exactly (the model, whose
//! state is all in this process) implements `Vcpu::save_state`/`restore_state`,
//! `Vm::save_state`/`restore_state` and `Vm::take_dirty_pages`; KVM answers
//! `BackendError::Unsupported`. Must not depend on `machine`, `debug` or `gdb`.

use std::any::Any;

/// A vCPU's complete state as its backend saved it (architectural registers, system and
/// debug registers, and the backend's own bookkeeping such as a pending MMIO completion),
/// with the bytes it holds (the saved value and what it owns on the heap, as the backend
/// counts them), for a recording's memory bound.
pub struct VcpuSnapshot(pub(crate) Box<dyn Any + Send + Sync>, pub(crate) usize);

/// A VM's shared state as its backend saved it (interrupt controller, power states, clock
/// and vCPU turns; RAM is not in it, see `Vm::take_dirty_pages`), with the bytes it holds.
pub struct VmSnapshot(pub(crate) Box<dyn Any + Send + Sync>, pub(crate) usize);

impl VcpuSnapshot {
    /// The bytes of memory the saved state holds.
    pub fn bytes(&self) -> usize {
        self.1
    }
}

impl VmSnapshot {
    /// The bytes of memory the saved state holds.
    pub fn bytes(&self) -> usize {
        self.1
    }
}

impl std::fmt::Debug for VcpuSnapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("VcpuSnapshot")
    }
}

impl std::fmt::Debug for VmSnapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("VmSnapshot")
    }
}

/// The error a backend without snapshots answers.
pub fn unsupported(backend: &str) -> super::BackendError {
    super::BackendError::Unsupported(format!(
        "snapshots and reverse execution (--record) need the model backend; the {backend} \
         backend cannot save and restore a machine exactly"
    ))
}
