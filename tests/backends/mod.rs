//! Which backends a test can run on here: the model everywhere, real KVM where it is usable.
//! Unusable KVM skips the KVM half with a message, or fails where KVM is required
//! (`KVMDBG_REQUIRE_KVM=1` in the nested CI machine; see `src/test_require.rs`). A crate
//! using it also declares `mod common;`, which holds that rule.

#![allow(dead_code)]

use kvmdbg::backend::{self, BackendKind};

use crate::common::require;

/// True when real KVM is usable on this host (see the module docs for when it must be).
pub fn kvm_usable() -> bool {
    require::require_kvm(backend::probe_kvm()).is_some()
}

/// The model, plus KVM when usable.
pub fn kinds() -> Vec<BackendKind> {
    let mut k = vec![BackendKind::Model];
    if kvm_usable() {
        k.push(BackendKind::Kvm);
    }
    k
}
