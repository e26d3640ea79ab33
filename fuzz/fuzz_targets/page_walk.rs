//! Fuzz target: see fuzz/harness/page_walk.rs.
#![no_main]

#[path = "../harness/page_walk.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    harness::check(data);
});
