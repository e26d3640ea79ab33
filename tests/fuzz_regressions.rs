//! Replays every saved input of the `gdb_packets` fuzz target through its harness
//! (fuzz/harness/gdb_packets.rs): the seed corpus (fuzz/corpus/gdb_packets) and every crash
//! the fuzzer ever found (fuzz/regressions/gdb_packets, one file per crash, kept forever).
//! Runs on the stable toolchain without cargo-fuzz.

#[path = "../fuzz/harness/gdb_packets.rs"]
mod harness;

fn inputs(dir: &str) -> Vec<std::path::PathBuf> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file() && p.file_name().is_some_and(|n| n != ".gitkeep"))
        .collect();
    files.sort();
    files
}

#[test]
fn saved_gdb_packet_inputs_are_served_without_a_failure() {
    let _ = env_logger::builder().is_test(true).try_init();
    let mut n = 0;
    for dir in ["fuzz/corpus/gdb_packets", "fuzz/regressions/gdb_packets"] {
        for f in inputs(dir) {
            eprintln!("replaying {}", f.display());
            harness::serve(&std::fs::read(&f).unwrap());
            n += 1;
        }
    }
    assert!(n >= 4, "the seed corpus is there");
}
