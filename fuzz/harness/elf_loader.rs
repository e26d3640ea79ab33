//! The firmware loader (`kvmdbg::machine::loader::load`) on arbitrary files, into 1 MiB of
//! guest RAM.
//!
//! Checks, besides "no panic": a loaded image ends inside RAM and its symbols are sorted; a
//! file that is not an ELF is loaded raw, whole, at the start of RAM, and RAM then holds
//! exactly its bytes. Shared by the fuzz target (fuzz/fuzz_targets/elf_loader.rs) and the
//! replay of saved inputs (tests/fuzz_data_regressions.rs).

use kvmdbg::machine::layout::RAM_BASE;
use kvmdbg::machine::{loader, memory};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

const RAM_SIZE: u64 = 1 << 20;

thread_local! {
    static RAM: GuestMemoryMmap = memory::allocate(RAM_SIZE).expect("1 MiB of guest RAM");
}

/// Checks the loader on one input.
pub fn check(data: &[u8]) {
    RAM.with(|mem| {
        let Ok(img) = loader::load(mem, data) else {
            return;
        };
        assert!(
            img.end <= RAM_BASE + RAM_SIZE,
            "image ends at {:#x}, past RAM",
            img.end
        );
        assert!(img.symbols.windows(2).all(|w| w[0].addr <= w[1].addr));
        if !data.starts_with(b"\x7fELF") {
            assert_eq!(
                (img.entry, img.end),
                (RAM_BASE, RAM_BASE + data.len() as u64)
            );
            let mut back = vec![0u8; data.len()];
            mem.read_slice(&mut back, GuestAddress(RAM_BASE)).unwrap();
            assert_eq!(back, data, "a raw image is loaded as it is");
        }
    });
}
