//! Fuzz target: see fuzz/harness/elf_loader.rs.
#![no_main]

#[path = "../harness/elf_loader.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    harness::check(data);
});
