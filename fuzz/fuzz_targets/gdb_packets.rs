//! Fuzz target: arbitrary bytes from a gdb client through kvmdbg's whole packet path (see
//! fuzz/harness/gdb_packets.rs).
#![no_main]

#[path = "../harness/gdb_packets.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    harness::serve(data);
});
