//! Which backends a test can run on here: the model everywhere, real KVM where it is usable
//! (the nested CI machine sets `KVMDBG_REQUIRE_KVM`, which turns "not usable" into a failure).

#![allow(dead_code)]

use kvmdbg::backend::{self, BackendKind};

/// True when real KVM is usable on this host.
pub fn kvm_usable() -> bool {
    match backend::probe_kvm() {
        Ok(_) => true,
        Err(e) if std::env::var_os("KVMDBG_REQUIRE_KVM").is_some() => {
            panic!("KVM is required here: {e}")
        }
        Err(_) => false,
    }
}

/// The model, plus KVM when usable.
pub fn kinds() -> Vec<BackendKind> {
    let mut k = vec![BackendKind::Model];
    if kvm_usable() {
        k.push(BackendKind::Kvm);
    }
    k
}
