//! Replays every saved input of the `elf_loader`, `page_walk` and `mmio_decode` fuzz targets
//! through their harnesses (fuzz/harness/*.rs): the seed corpus (fuzz/corpus/TARGET) and every
//! crash the fuzzer ever found (fuzz/regressions/TARGET, one file per crash, kept forever).
//! Runs on the stable toolchain without cargo-fuzz.

#[path = "../fuzz/harness/elf_loader.rs"]
mod elf_loader;
#[path = "../fuzz/harness/mmio_decode.rs"]
mod mmio_decode;
#[path = "../fuzz/harness/page_walk.rs"]
mod page_walk;

fn inputs(target: &str) -> Vec<std::path::PathBuf> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut files = Vec::new();
    for dir in [
        root.join("corpus").join(target),
        root.join("regressions").join(target),
    ] {
        let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        files.extend(
            entries
                .map(|e| e.unwrap().path())
                .filter(|p| p.is_file() && p.file_name().is_some_and(|n| n != ".gitkeep")),
        );
    }
    files.sort();
    assert!(!files.is_empty(), "{target}: the seed corpus is there");
    files
}

fn replay(target: &str, check: fn(&[u8])) {
    for f in inputs(target) {
        eprintln!("replaying {}", f.display());
        check(&std::fs::read(&f).unwrap());
    }
}

#[test]
fn saved_elf_loader_inputs_load_or_fail_cleanly() {
    replay("elf_loader", elf_loader::check);
}

#[test]
fn saved_page_walk_inputs_keep_the_walker_consistent() {
    replay("page_walk", page_walk::check);
}

#[test]
fn saved_mmio_decode_inputs_emulate_or_leave_registers_intact() {
    replay("mmio_decode", mmio_decode::check);
}
