//! The one rule for tests that need something from outside the crate (docs/testing.md,
//! "Prerequisites"): when it is missing, the test fails if the run requires it and otherwise
//! skips, saying on stderr what is missing and that it would fail in CI.
//!
//! - A tool (assembler, QEMU, gdb, ...) is required when `CI` is `true` or `1`.
//! - Real KVM is required when `KVMDBG_REQUIRE_KVM=1` (set inside the nested machine, where
//!   `CI` is not set) or, on an aarch64 host, when `CI` is set. On other hosts the KVM backend
//!   cannot exist; the nested suite runs those tests on real KVM.
//!
//! Shared by the unit tests (`crate::test_require`, compiled only for `cargo test`) and the
//! integration tests, which include this file by path (`#[path = ".../src/test_require.rs"]`
//! in `tests/common`, `tests/backends`, `tests/kvm_support`, `tests/kvm_smoke.rs`): a file
//! rather than a `pub` library module, so the test policy (and its environment reads) never
//! ships in the library. Hence it depends on `std` only; callers pass in their own KVM probe.
#![allow(dead_code)]

use std::fmt::Display;
use std::path::{Path, PathBuf};

/// True when running in CI (`CI=true` or `CI=1`, any case): missing tools are failures.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v.eq_ignore_ascii_case("true") || v == "1")
}

/// True when unusable KVM is a failure: `KVMDBG_REQUIRE_KVM=1`, or CI on an aarch64 host.
pub fn kvm_required() -> bool {
    std::env::var("KVMDBG_REQUIRE_KVM").is_ok_and(|v| v == "1")
        || (cfg!(target_arch = "aarch64") && in_ci())
}

/// Reports the missing prerequisite `what` (because of `why`): panics when `required`
/// (`rule` says why it is), otherwise prints the skip and returns.
pub(crate) fn missing(required: bool, rule: &str, what: &str, why: &dyn Display) {
    let test = std::thread::current()
        .name()
        .filter(|n| *n != "main")
        .map(|n| format!("{n}: "))
        .unwrap_or_default();
    if required {
        panic!("{test}{what} is required ({rule}): {why}");
    }
    eprintln!("SKIPPED {test}{what} unavailable ({why}); with {rule} this is a failure");
}

/// `Some(value)` when a tool-like prerequisite `what` was found; otherwise fails under CI
/// and elsewhere skips (returns `None`) with a message.
pub fn require<T, E: Display>(what: &str, found: Result<T, E>) -> Option<T> {
    match found {
        Ok(v) => Some(v),
        Err(e) => {
            missing(in_ci(), "CI=true", what, &e);
            None
        }
    }
}

/// The first executable called `name` on PATH.
pub fn find_tool(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// True if tool `name` is on PATH; otherwise fails under CI and elsewhere skips (returns
/// false: the test should return early).
pub fn require_tool(name: &str) -> bool {
    let found = find_tool(name).ok_or("not on PATH; scripts/setup.sh installs it");
    require(&format!("`{name}`"), found).is_some()
}

/// `Some(caps)` when real KVM is usable, `probe` being the caller's probe of it (kvmdbg's
/// `backend::probe_kvm`, or kvm-ioctls directly); otherwise fails when [`kvm_required`] and
/// elsewhere skips (returns `None`) with a message.
pub fn require_kvm<T, E: Display>(probe: Result<T, E>) -> Option<T> {
    match probe {
        Ok(v) => Some(v),
        Err(e) => {
            let rule = "KVMDBG_REQUIRE_KVM=1, or CI=true on aarch64";
            missing(kvm_required(), rule, "real KVM", &e);
            None
        }
    }
}
