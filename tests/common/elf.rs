//! A minimal ELF64 writer for bare-metal AArch64 test images (one PT_LOAD per segment), so
//! QEMU's `-kernel` loads them at their addresses and starts at the entry point.
//!
//! Layout per the System V ABI "ELF-64 Object File Format" and the AArch64 ELF ABI
//! (EM_AARCH64 = 183): 64-byte file header, 56-byte program headers, page-aligned data.

/// One loadable segment: physical = virtual address, bytes, and RWX permissions.
pub struct Segment<'a> {
    pub addr: u64,
    pub data: &'a [u8],
}

const EHDR_SIZE: usize = 64;
const PHDR_SIZE: usize = 56;
const PAGE: usize = 0x1000;

/// Builds the ELF image. Each segment's address must be page aligned.
pub fn build(entry: u64, segments: &[Segment]) -> Vec<u8> {
    let mut out = Vec::new();
    // e_ident: magic, ELFCLASS64 (2), ELFDATA2LSB (1), EV_CURRENT (1), ELFOSABI_NONE, padding.
    out.extend_from_slice(&[0x7f, b'E', b'L', b'F', 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    out.extend_from_slice(&2u16.to_le_bytes()); // e_type ET_EXEC
    out.extend_from_slice(&183u16.to_le_bytes()); // e_machine EM_AARCH64
    out.extend_from_slice(&1u32.to_le_bytes()); // e_version
    out.extend_from_slice(&entry.to_le_bytes()); // e_entry
    out.extend_from_slice(&(EHDR_SIZE as u64).to_le_bytes()); // e_phoff
    out.extend_from_slice(&0u64.to_le_bytes()); // e_shoff: no sections
    out.extend_from_slice(&0u32.to_le_bytes()); // e_flags
    out.extend_from_slice(&(EHDR_SIZE as u16).to_le_bytes()); // e_ehsize
    out.extend_from_slice(&(PHDR_SIZE as u16).to_le_bytes()); // e_phentsize
    out.extend_from_slice(&(segments.len() as u16).to_le_bytes()); // e_phnum
    out.extend_from_slice(&[0; 6]); // e_shentsize, e_shnum, e_shstrndx
    let mut offset = (EHDR_SIZE + PHDR_SIZE * segments.len()).next_multiple_of(PAGE);
    let mut offsets = Vec::new();
    for s in segments {
        assert_eq!(
            s.addr as usize % PAGE,
            0,
            "segment {:#x} not page aligned",
            s.addr
        );
        offsets.push(offset);
        out.extend_from_slice(&1u32.to_le_bytes()); // p_type PT_LOAD
        out.extend_from_slice(&7u32.to_le_bytes()); // p_flags R|W|X
        out.extend_from_slice(&(offset as u64).to_le_bytes()); // p_offset
        out.extend_from_slice(&s.addr.to_le_bytes()); // p_vaddr
        out.extend_from_slice(&s.addr.to_le_bytes()); // p_paddr
        out.extend_from_slice(&(s.data.len() as u64).to_le_bytes()); // p_filesz
        out.extend_from_slice(&(s.data.len() as u64).to_le_bytes()); // p_memsz
        out.extend_from_slice(&(PAGE as u64).to_le_bytes()); // p_align
        offset = (offset + s.data.len()).next_multiple_of(PAGE);
    }
    for (s, off) in segments.iter().zip(offsets) {
        out.resize(off, 0);
        out.extend_from_slice(s.data);
    }
    out
}

/// The committed demo firmware (firmware/prebuilt/demo.elf).
pub fn demo() -> std::path::PathBuf {
    super::repo_root().join("firmware/prebuilt/demo.elf")
}

/// The address of symbol `name` in the ELF at `path` (read with the object crate, not gdb).
pub fn symbol(path: &std::path::Path, name: &str) -> u64 {
    use object::{Object, ObjectSymbol};
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let file = object::File::parse(&*bytes).unwrap();
    file.symbols()
        .find(|s| s.name() == Ok(name))
        .unwrap_or_else(|| panic!("no symbol {name} in {}", path.display()))
        .address()
}

/// `n` little-endian 32-bit words at virtual address `va` in the ELF at `path`, from the
/// section that holds them (read with the object crate, not gdb).
pub fn read_words(path: &std::path::Path, va: u64, n: usize) -> Vec<u32> {
    use object::{Object, ObjectSection};
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let file = object::File::parse(&*bytes).unwrap();
    let data = file
        .sections()
        .find_map(|s| s.data_range(va, 4 * n as u64).ok().flatten())
        .unwrap_or_else(|| panic!("no section holds {va:#x} in {}", path.display()));
    data.chunks_exact(4)
        .map(|w| u32::from_le_bytes([w[0], w[1], w[2], w[3]]))
        .collect()
}
