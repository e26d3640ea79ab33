//! Fuzz target: see fuzz/harness/mmio_decode.rs.
#![no_main]

#[path = "../harness/mmio_decode.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    harness::check(data);
});
