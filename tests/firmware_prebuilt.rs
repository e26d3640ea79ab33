//! `firmware/prebuilt/demo.elf` is what `kvmdbg run` boots without arguments. It must be the
//! exact output of `firmware/build.sh` for `firmware/demo.S`, so the committed binary never
//! drifts from its source (the build is reproducible for a given binutils).

mod common;

use object::{Architecture, Object, ObjectSymbol};

const PREBUILT: &str = "firmware/prebuilt/demo.elf";

fn prebuilt() -> Vec<u8> {
    let path = common::repo_root().join(PREBUILT);
    std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

#[test]
fn prebuilt_demo_is_identical_to_a_fresh_build() {
    if !common::require_firmware_tools() {
        return;
    }
    let built_path = common::firmware_elf("demo");
    let built = std::fs::read(&built_path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", built_path.display()));
    let committed = prebuilt();
    let first_difference = built.iter().zip(&committed).position(|(a, b)| a != b);
    assert!(
        built == committed,
        "{PREBUILT} ({} bytes) differs from a fresh build {} ({} bytes), first differing byte \
         at {first_difference:?}. If firmware/ changed on purpose, refresh it with \
         `firmware/build.sh && cp target/firmware/demo.elf {PREBUILT}`",
        committed.len(),
        built_path.display(),
        built.len()
    );
}

#[test]
fn prebuilt_demo_is_a_bootable_aarch64_elf_with_symbols() {
    let bytes = prebuilt();
    let file = object::File::parse(bytes.as_slice()).expect("prebuilt demo parses as an object");
    assert_eq!(file.architecture(), Architecture::Aarch64);
    assert!(file.is_64() && file.is_little_endian());
    // Entry at the QEMU virt RAM base (hw/arm/virt.c VIRT_MEM), where link.ld puts _start.
    assert_eq!(file.entry(), 0x4000_0000);
    let symbol = |name: &str| file.symbols().find(|s| s.name() == Ok(name));
    let start = symbol("_start").expect("_start symbol");
    assert_eq!(start.address(), file.entry());
    for name in ["main", "fib", "demo_counter", "pass", "fail"] {
        assert!(symbol(name).is_some(), "symbol {name} missing");
    }
    assert!(
        file.section_by_name(".debug_line").is_some(),
        "no DWARF line info"
    );
}
