//! Image loading: an arm64 Linux kernel Image (at a 2 MiB aligned base plus `text_offset`,
//! `image_size` bytes reserved; gzip or EFI zboot gzip unpacked first), an AArch64 ELF
//! (segments to their physical addresses, entry = PC, symbols kept) or a raw binary (copied
//! to the start of RAM, entry = RAM base).
//!
//! Owns image placement in guest RAM; the Image header format is `linux_image`'s. Uses the
//! `object` crate for ELF; must not depend on backends.

use object::elf::{EM_AARCH64, PT_LOAD};
use object::read::elf::{ElfFile64, FileHeader, ProgramHeader};
use object::{Endianness, Object, ObjectSymbol, SymbolKind};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use super::error::{MachineError, Result};
use super::layout::RAM_BASE;
use super::linux_image::{self, ImageHeader};
use super::memory::ram_end;

/// A function or data symbol from the firmware's symbol table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Symbol {
    pub name: String,
    pub addr: u64,
    pub size: u64,
}

/// What was loaded.
#[derive(Clone, Debug, Default)]
pub struct LoadedImage {
    /// Initial PC.
    pub entry: u64,
    /// Highest physical address (exclusive) written by the image.
    pub end: u64,
    /// Symbols sorted by address (empty for raw binaries).
    pub symbols: Vec<Symbol>,
    /// The arm64 Image header, when the image was a Linux kernel Image.
    pub linux: Option<ImageHeader>,
}

impl LoadedImage {
    /// The symbol whose range contains `addr` (or the nearest one below it).
    pub fn symbol_at(&self, addr: u64) -> Option<&Symbol> {
        let i = self.symbols.partition_point(|s| s.addr <= addr);
        self.symbols[..i].last()
    }

    /// Looks a symbol up by name.
    pub fn symbol(&self, name: &str) -> Option<&Symbol> {
        self.symbols.iter().find(|s| s.name == name)
    }
}

const ELF_MAGIC: &[u8] = b"\x7fELF";

/// Loads `bytes` into guest RAM: an ELF if it starts with the ELF magic; an arm64 Image if
/// it has the Image magic, after unpacking a gzip or EFI zboot (gzip) wrapper; else a raw
/// binary (an unpacked wrapper without an Image inside too, as QEMU's `-kernel` does).
pub fn load(mem: &GuestMemoryMmap, bytes: &[u8]) -> Result<LoadedImage> {
    if bytes.starts_with(ELF_MAGIC) {
        return load_elf(mem, bytes);
    }
    let unpacked = linux_image::unpack(bytes, ram_end(mem) - RAM_BASE)?;
    if linux_image::is_image(&unpacked) {
        load_linux(mem, &unpacked)
    } else {
        load_raw(mem, &unpacked)
    }
}

/// Places a kernel Image at the lowest 2 MiB aligned base, the start of RAM, which satisfies
/// both placements of flags bit 3 (as close as possible to the start of DRAM; anywhere in the
/// 48-bit range). The `image_size` bytes the kernel uses from its start must fit in RAM.
fn load_linux(mem: &GuestMemoryMmap, bytes: &[u8]) -> Result<LoadedImage> {
    const _: () = assert!(RAM_BASE % linux_image::BASE_ALIGN == 0);
    let header = linux_image::parse_header(bytes)?;
    let start = RAM_BASE + header.text_offset;
    let size = header.text_offset + header.reserved(bytes.len());
    let ram = ram_end(mem) - RAM_BASE;
    if size > ram {
        return Err(MachineError::ImageTooLarge { size, ram });
    }
    write(mem, start, bytes)?;
    log::info!(
        "arm64 Image at {start:#x}: {} bytes, image_size {:#x}, {:?} pages",
        bytes.len(),
        header.image_size,
        header.page_size
    );
    Ok(LoadedImage {
        entry: start,
        end: RAM_BASE + size,
        symbols: Vec::new(),
        linux: Some(header),
    })
}

fn load_raw(mem: &GuestMemoryMmap, bytes: &[u8]) -> Result<LoadedImage> {
    let ram = ram_end(mem) - RAM_BASE;
    if bytes.is_empty() {
        return Err(MachineError::BadElf("empty firmware file".into()));
    }
    if bytes.len() as u64 > ram {
        return Err(MachineError::ImageTooLarge {
            size: bytes.len() as u64,
            ram,
        });
    }
    write(mem, RAM_BASE, bytes)?;
    Ok(LoadedImage {
        entry: RAM_BASE,
        end: RAM_BASE + bytes.len() as u64,
        symbols: Vec::new(),
        linux: None,
    })
}

fn load_elf(mem: &GuestMemoryMmap, bytes: &[u8]) -> Result<LoadedImage> {
    let bad = |what: String| MachineError::BadElf(what);
    let elf = ElfFile64::<Endianness>::parse(bytes).map_err(|e| bad(e.to_string()))?;
    let header = elf.elf_header();
    let endian = elf.endian();
    if header.e_machine(endian) != EM_AARCH64 {
        return Err(bad(format!(
            "machine type {} is not AArch64 ({EM_AARCH64})",
            header.e_machine(endian)
        )));
    }
    if !elf.is_little_endian() {
        return Err(bad("big-endian images are not supported".into()));
    }
    let (ram_start, ram_stop) = (RAM_BASE, ram_end(mem));
    let mut end = 0u64;
    let mut placed: Vec<(usize, u64, u64)> = Vec::new();
    for (index, ph) in elf.elf_program_headers().iter().enumerate() {
        if ph.p_type(endian) != PT_LOAD || ph.p_memsz(endian) == 0 {
            continue;
        }
        let start = ph.p_paddr(endian);
        let memsz = ph.p_memsz(endian);
        let data = ph.data(endian, bytes).map_err(|_| {
            bad(format!(
                "segment {index} data lies outside the file (truncated?)"
            ))
        })?;
        if data.len() as u64 > memsz {
            return Err(bad(format!("segment {index} has filesz > memsz")));
        }
        let seg_end = start
            .checked_add(memsz)
            .ok_or_else(|| bad(format!("segment {index} wraps the address space")))?;
        if start < ram_start || seg_end > ram_stop {
            return Err(MachineError::SegmentOutsideRam {
                index,
                start,
                end: seg_end,
                ram_start,
                ram_end: ram_stop,
            });
        }
        if let Some(&(other, a, b)) = placed.iter().find(|&&(_, a, b)| start < b && a < seg_end) {
            return Err(bad(format!(
                "segments {other} [{a:#x}, {b:#x}) and {index} [{start:#x}, {seg_end:#x}) overlap"
            )));
        }
        placed.push((index, start, seg_end));
        write(mem, start, data)?;
        zero(mem, start + data.len() as u64, memsz - data.len() as u64)?;
        end = end.max(seg_end);
    }
    if placed.is_empty() {
        return Err(bad("no loadable segment".into()));
    }
    let entry = elf.entry();
    if entry < ram_start || entry >= ram_stop {
        log::warn!("ELF entry point {entry:#x} is outside RAM; the first fetch will fault");
    }
    Ok(LoadedImage {
        entry,
        end,
        symbols: symbols(&elf),
        linux: None,
    })
}

fn symbols(elf: &ElfFile64<Endianness>) -> Vec<Symbol> {
    let mut out: Vec<Symbol> = elf
        .symbols()
        .filter(|s| s.is_definition() || s.kind() == SymbolKind::Label)
        .filter(|s| !matches!(s.kind(), SymbolKind::Section | SymbolKind::File))
        .filter_map(|s| {
            let name = s.name().ok()?;
            if name.is_empty() || name.starts_with("$") {
                return None;
            }
            Some(Symbol {
                name: name.to_string(),
                addr: s.address(),
                size: s.size(),
            })
        })
        .collect();
    out.sort_by_key(|s| s.addr);
    out
}

fn write(mem: &GuestMemoryMmap, addr: u64, data: &[u8]) -> Result<()> {
    mem.write_slice(data, GuestAddress(addr))
        .map_err(|e| MachineError::BadElf(format!("cannot write {:#x}: {e}", addr)))
}

fn zero(mem: &GuestMemoryMmap, addr: u64, len: u64) -> Result<()> {
    const CHUNK: usize = 4096;
    let zeros = [0u8; CHUNK];
    let mut done = 0u64;
    while done < len {
        let n = (len - done).min(CHUNK as u64) as usize;
        write(mem, addr + done, &zeros[..n])?;
        done += n as u64;
    }
    Ok(())
}

#[cfg(test)]
#[path = "loader_tests.rs"]
mod tests;
