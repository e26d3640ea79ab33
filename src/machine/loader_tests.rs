//! Loader tests over hand-built ELF64 images.

use super::*;
use crate::machine::memory::allocate;

/// ELF e_machine for AArch64 (ELF for the Arm 64-bit Architecture, 5.1 "ELF header").
const AARCH64: u16 = 183;

/// Builds a little-endian ELF64 executable with one PT_LOAD per (paddr, data, memsz).
fn elf(machine: u16, entry: u64, segs: &[(u64, &[u8], u64)]) -> Vec<u8> {
    let phoff = 64u64;
    let data_off = phoff + 56 * segs.len() as u64;
    let mut out = Vec::new();
    out.extend_from_slice(b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0"); // ELF64, LE, v1
    out.extend_from_slice(&2u16.to_le_bytes()); // e_type ET_EXEC
    out.extend_from_slice(&machine.to_le_bytes()); // e_machine
    out.extend_from_slice(&1u32.to_le_bytes()); // e_version
    out.extend_from_slice(&entry.to_le_bytes()); // e_entry
    out.extend_from_slice(&phoff.to_le_bytes()); // e_phoff
    out.extend_from_slice(&0u64.to_le_bytes()); // e_shoff
    out.extend_from_slice(&0u32.to_le_bytes()); // e_flags
    out.extend_from_slice(&64u16.to_le_bytes()); // e_ehsize
    out.extend_from_slice(&56u16.to_le_bytes()); // e_phentsize
    out.extend_from_slice(&(segs.len() as u16).to_le_bytes()); // e_phnum
    out.extend_from_slice(&[0; 6]); // e_shentsize, e_shnum, e_shstrndx
    let mut off = data_off;
    for (paddr, data, memsz) in segs {
        out.extend_from_slice(&1u32.to_le_bytes()); // p_type PT_LOAD
        out.extend_from_slice(&7u32.to_le_bytes()); // p_flags RWX
        out.extend_from_slice(&off.to_le_bytes()); // p_offset
        out.extend_from_slice(&paddr.to_le_bytes()); // p_vaddr
        out.extend_from_slice(&paddr.to_le_bytes()); // p_paddr
        out.extend_from_slice(&(data.len() as u64).to_le_bytes()); // p_filesz
        out.extend_from_slice(&memsz.to_le_bytes()); // p_memsz
        out.extend_from_slice(&8u64.to_le_bytes()); // p_align
        off += data.len() as u64;
    }
    for (_, data, _) in segs {
        out.extend_from_slice(data);
    }
    out
}

fn ram() -> GuestMemoryMmap {
    allocate(2 << 20).unwrap()
}

fn read_u32(mem: &GuestMemoryMmap, addr: u64) -> u32 {
    mem.read_obj(GuestAddress(addr)).unwrap()
}

#[test]
fn elf_segments_land_at_physical_addresses_and_bss_is_zeroed() {
    let mem = ram();
    mem.write_obj(0xffff_ffffu32, GuestAddress(RAM_BASE + 0x1004))
        .unwrap();
    let code = 0xd503_201fu32.to_le_bytes(); // nop
    let img = elf(
        AARCH64,
        RAM_BASE + 0x1000,
        &[(RAM_BASE + 0x1000, &code, 16)],
    );
    let loaded = load(&mem, &img).unwrap();
    assert_eq!(loaded.entry, RAM_BASE + 0x1000);
    assert_eq!(loaded.end, RAM_BASE + 0x1010);
    assert_eq!(read_u32(&mem, RAM_BASE + 0x1000), 0xd503_201f);
    assert_eq!(read_u32(&mem, RAM_BASE + 0x1004), 0, "bss not zeroed");
}

#[test]
fn raw_binary_goes_to_ram_base() {
    let mem = ram();
    let loaded = load(&mem, &[0x1f, 0x20, 0x03, 0xd5]).unwrap();
    assert_eq!(loaded.entry, RAM_BASE);
    assert_eq!(read_u32(&mem, RAM_BASE), 0xd503_201f);
}

#[test]
fn segment_outside_ram_is_rejected() {
    let mem = ram();
    let img = elf(AARCH64, 0x1000, &[(0x1000, &[0; 4], 4)]);
    assert!(matches!(
        load(&mem, &img),
        Err(MachineError::SegmentOutsideRam { index: 0, .. })
    ));
    let img = elf(AARCH64, RAM_BASE, &[(RAM_BASE + (2 << 20) - 2, &[0; 4], 4)]);
    assert!(matches!(
        load(&mem, &img),
        Err(MachineError::SegmentOutsideRam { .. })
    ));
}

#[test]
fn wrong_machine_and_truncated_files_are_rejected() {
    let mem = ram();
    let x86 = elf(62, RAM_BASE, &[(RAM_BASE, &[0; 4], 4)]);
    assert!(matches!(load(&mem, &x86), Err(MachineError::BadElf(_))));
    let good = elf(AARCH64, RAM_BASE, &[(RAM_BASE, &[1; 64], 64)]);
    for cut in [4, 20, 63, 100, good.len() - 1] {
        assert!(
            matches!(load(&mem, &good[..cut]), Err(MachineError::BadElf(_))),
            "truncated at {cut} accepted"
        );
    }
}

#[test]
fn empty_and_oversized_raw_images_are_rejected() {
    let mem = ram();
    assert!(load(&mem, &[]).is_err());
    let big = vec![0u8; (2 << 20) + 1];
    assert!(matches!(
        load(&mem, &big),
        Err(MachineError::ImageTooLarge { .. })
    ));
}

#[test]
fn overlapping_loadable_segments_are_refused() {
    let mem = ram();
    let word = 0xd503_201fu32.to_le_bytes(); // nop
                                             // The second segment's bss [0x1000, 0x1100) covers the first's bytes at 0x1080.
    let img = elf(
        AARCH64,
        RAM_BASE + 0x1000,
        &[
            (RAM_BASE + 0x1080, &word, 4),
            (RAM_BASE + 0x1000, &word, 0x100),
        ],
    );
    let e = load(&mem, &img).unwrap_err();
    assert!(
        matches!(&e, MachineError::BadElf(m) if m.contains("overlap")),
        "{e}"
    );
    // Segments that only touch are fine.
    let img = elf(
        AARCH64,
        RAM_BASE + 0x1000,
        &[(RAM_BASE + 0x1000, &word, 4), (RAM_BASE + 0x1004, &word, 4)],
    );
    load(&mem, &img).unwrap();
}
