//! Smoke test for the nested-KVM harness: proves that a cross-built aarch64 test binary reaches
//! real KVM (the `/dev/kvm` of the Linux guest that `scripts/nested/run.sh` boots) and that the
//! capabilities kvmdbg relies on are present.
//!
//! Uses `kvm-ioctls` directly, not kvmdbg's backend, so it stays independent of the code under
//! test. Compiled only for aarch64 Linux; elsewhere this file is empty.
//!
//! Without `/dev/kvm` the tests skip with a message, unless KVM is required
//! (`KVMDBG_REQUIRE_KVM=1`, set by `scripts/nested/guest-tests.sh`, or `CI=true`: the rule of
//! `src/test_require.rs`), in which case they fail.
#![cfg(all(target_os = "linux", target_arch = "aarch64"))]

#[path = "../src/test_require.rs"]
mod require;

use kvm_bindings::{kvm_vcpu_init, KVM_CAP_ARM_NISV_TO_USER};
use kvm_ioctls::{Cap, Kvm};

/// `KVM_GET_API_VERSION` must return 12 (Documentation/virt/kvm/api.rst 4.1: "the only
/// supported version is 12").
const KVM_API_VERSION: i32 = 12;

/// Opens `/dev/kvm`, or returns `None` when the test may skip (see the module docs).
fn open_kvm() -> Option<Kvm> {
    require::require_kvm(Kvm::new().map_err(|e| format!("opening /dev/kvm: {e}")))
}

#[test]
fn api_version_is_12() {
    let Some(kvm) = open_kvm() else { return };
    assert_eq!(kvm.get_api_version(), KVM_API_VERSION);
}

#[test]
fn vm_reports_debug_capabilities() {
    let Some(kvm) = open_kvm() else { return };
    let vm = kvm.create_vm().expect("KVM_CREATE_VM");
    // KVM api.rst 7.19: the VM-level check of KVM_CAP_ARM_NISV_TO_USER returns 1 when
    // userspace may ask for data aborts without a valid syndrome.
    let nisv = vm.check_extension_raw(u64::from(KVM_CAP_ARM_NISV_TO_USER));
    assert_eq!(nisv, 1, "KVM_CAP_ARM_NISV_TO_USER");
    assert!(
        vm.check_extension(Cap::SetGuestDebug),
        "KVM_CAP_SET_GUEST_DEBUG"
    );
    assert!(
        kvm.get_guest_debug_hw_bps() > 0,
        "KVM_CAP_GUEST_DEBUG_HW_BPS"
    );
    assert!(
        kvm.get_guest_debug_hw_wps() > 0,
        "KVM_CAP_GUEST_DEBUG_HW_WPS"
    );
    eprintln!(
        "kvm_smoke: hw breakpoints {}, hw watchpoints {}, ipa bits {}",
        kvm.get_guest_debug_hw_bps(),
        kvm.get_guest_debug_hw_wps(),
        kvm.get_host_ipa_limit()
    );
}

#[test]
fn vcpu_initialises_with_preferred_target() {
    let Some(kvm) = open_kvm() else { return };
    let vm = kvm.create_vm().expect("KVM_CREATE_VM");
    let vcpu = vm.create_vcpu(0).expect("KVM_CREATE_VCPU");
    let mut kvi = kvm_vcpu_init::default();
    vm.get_preferred_target(&mut kvi)
        .expect("KVM_ARM_PREFERRED_TARGET");
    vcpu.vcpu_init(&kvi).expect("KVM_ARM_VCPU_INIT");
}
