//! Debian 12's arm64 kernel (6.1, cached by scripts/setup.sh) on the model backend: booted to
//! a busybox shell with 1 and 4 vCPUs, a console session typed through stdin whose answers
//! only the guest can compute, `poweroff -f` ending kvmdbg with status 0; the same kernel
//! gzip-compressed; and a kernel panic with `panic=-1` ending in PSCI SYSTEM_RESET (status 0,
//! never a hang). Real KVM runs the same checks in the nested machine (`tests/kvm_linux.rs`).
//!
//! Needs the cached kernel and Debian's `busybox-static:arm64`: missing, the tests fail under
//! CI=true and skip elsewhere.

mod linux_support;

use linux_support::{boot_panic_reset, boot_session, prerequisites, temp_file};

#[test]
fn one_vcpu_boots_to_a_shell_that_runs_typed_commands_then_powers_off() {
    let Some((kernel, busybox)) = prerequisites("one_vcpu_boots_to_a_shell") else {
        return;
    };
    boot_session(&kernel, &busybox, "model", 1);
}

#[test]
fn four_vcpus_boot_a_gzip_compressed_kernel_to_the_same_session() {
    let Some((kernel, busybox)) = prerequisites("four_vcpus_boot_a_gzip_kernel") else {
        return;
    };
    let image = std::fs::read(&kernel).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &image).unwrap();
    let gz = temp_file("Image.gz", &gz.finish().unwrap());
    boot_session(&gz, &busybox, "model", 4);
}

#[test]
fn a_kernel_panic_with_panic_minus_one_resets_and_ends_kvmdbg() {
    let Some((kernel, busybox)) = prerequisites("a_kernel_panic_resets") else {
        return;
    };
    boot_panic_reset(&kernel, &busybox, "model");
}
