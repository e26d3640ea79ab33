//! Debian's arm64 kernel on real KVM (run inside the nested machine, where
//! `scripts/nested/build.sh` stages it as /linux/Image.gz and `guest-tests.sh` points
//! `KVMDBG_LINUX_IMAGE` at it): the same busybox session as `tests/linux_boot.rs` on the model,
//! with 1 and 4 vCPUs, and the `panic=-1` reset. Compiled only for aarch64 Linux.
//!
//! Without `/dev/kvm`, the kernel or busybox the tests skip with a message, unless
//! `KVMDBG_REQUIRE_KVM=1` (the nested machine) or `CI=true`, where they fail.
#![cfg(all(target_os = "linux", target_arch = "aarch64"))]

mod linux_support;

use linux_support::{boot_panic_reset, boot_session, require};

/// `/dev/kvm` opens read-write (what the KVM backend needs first).
fn kvm() -> Result<(), String> {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .map(|_| ())
        .map_err(|e| format!("cannot open /dev/kvm: {e}"))
}

/// KVM, the kernel and busybox, or `None` when `test` skips.
fn prerequisites(test: &str) -> Option<(std::path::PathBuf, std::path::PathBuf)> {
    require(test, kvm())?;
    linux_support::prerequisites(test)
}

#[test]
fn one_vcpu_boots_to_a_shell_on_kvm() {
    let Some((kernel, busybox)) = prerequisites("one_vcpu_boots_to_a_shell_on_kvm") else {
        return;
    };
    boot_session(&kernel, &busybox, "kvm", 1);
}

#[test]
fn four_vcpus_boot_to_a_shell_on_kvm() {
    let Some((kernel, busybox)) = prerequisites("four_vcpus_boot_to_a_shell_on_kvm") else {
        return;
    };
    boot_session(&kernel, &busybox, "kvm", 4);
}

#[test]
fn a_kernel_panic_resets_on_kvm() {
    let Some((kernel, busybox)) = prerequisites("a_kernel_panic_resets_on_kvm") else {
        return;
    };
    boot_panic_reset(&kernel, &busybox, "kvm");
}
