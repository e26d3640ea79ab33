//! Unit tests of `test_require` (a separate file: the integration tests include
//! `test_require.rs` itself, and must not run these once per test crate).

use crate::test_require::*;

#[test]
fn a_present_prerequisite_is_returned() {
    assert_eq!(require("x", Ok::<u8, String>(7)), Some(7));
    assert_eq!(require_kvm(Ok::<u8, String>(9)), Some(9));
    assert!(find_tool("kvmdbg-no-such-tool").is_none());
}

#[test]
#[should_panic(expected = "real KVM is required (the rule): gone")]
fn a_required_missing_prerequisite_fails() {
    missing(true, "the rule", "real KVM", &"gone");
}

#[test]
fn an_optional_missing_prerequisite_skips() {
    missing(false, "the rule", "a tool", &"gone");
}
