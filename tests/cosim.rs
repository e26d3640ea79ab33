//! Lockstep co-simulation: the model CPU against QEMU TCG, instruction by instruction, over
//! seeded random programs (see tests/cosim/). Also checks the generator itself.

mod common;
#[path = "cosim/mod.rs"]
mod sim;

use sim::disasm::decodes;
use sim::gen;

/// Writes a program as an ELF into the temp dir and returns its path.
fn write_image(p: &gen::Program, tag: &str) -> std::path::PathBuf {
    let code = p.code_bytes();
    let elf = common::elf::build(
        gen::ENTRY,
        &[
            common::elf::Segment {
                addr: gen::CODE_BASE,
                data: &code,
            },
            common::elf::Segment {
                addr: gen::DATA_BASE,
                data: &p.data,
            },
        ],
    );
    let path = std::env::temp_dir().join(format!(
        "kvmdbg-cosim-{}-{tag}-{:x}.elf",
        std::process::id(),
        p.seed
    ));
    std::fs::write(&path, elf).expect("writing test image");
    path
}

#[test]
fn generated_words_all_decode() {
    for seed in 0..20 {
        let p = gen::generate(seed, 5000);
        let start = ((p.body_start - gen::CODE_BASE) / 4) as usize;
        for (i, w) in p.code[start..].iter().enumerate() {
            let pc = p.body_start + 4 * i as u64;
            assert!(
                decodes(*w),
                "seed {seed}: {w:#010x} at {pc:#x} does not decode"
            );
        }
    }
}

#[test]
fn generator_is_deterministic_per_seed() {
    let a = gen::generate(7, 2000);
    let b = gen::generate(7, 2000);
    let c = gen::generate(8, 2000);
    assert_eq!(a.code, b.code);
    assert_eq!(a.data, b.data);
    assert_ne!(a.code, c.code);
}

#[test]
fn qemu_runs_generated_images_to_completion() {
    if !common::qemu::available("qemu_runs_generated_images_to_completion") {
        return;
    }
    for seed in 100..104 {
        let p = gen::generate(seed, 20_000);
        let path = write_image(&p, "free");
        let r = common::qemu::Qemu::run_to_exit(&path, std::time::Duration::from_secs(30));
        let _ = std::fs::remove_file(&path);
        assert_eq!(
            r,
            Ok(true),
            "seed {seed}: QEMU did not reach PSCI SYSTEM_OFF"
        );
    }
}

/// Dev aid: `KVMDBG_COSIM_DUMP=path cargo test --test cosim dump_image -- --ignored`.
#[test]
#[ignore]
fn dump_image() {
    let p = gen::generate(1, 20_000);
    let path = std::env::var("KVMDBG_COSIM_DUMP").unwrap_or_else(|_| "/tmp/cosim.elf".into());
    std::fs::write(&path, std::fs::read(write_image(&p, "dump")).unwrap()).unwrap();
}
