//! Guest RAM: size parsing and allocation through vm-memory.
//!
//! Owns the single RAM region at [`RAM_BASE`]; everything outside it is MMIO.

use vm_memory::{GuestAddress, GuestMemoryBackend, GuestMemoryMmap};

use super::error::{MachineError, Result};
use super::layout::{MAX_RAM_SIZE, MIN_RAM_SIZE, RAM_BASE};

/// Parses a size in bytes such as `128M`, `1G`, `65536`, `512K`, `128MiB` (binary units);
/// the error says what is wrong.
pub fn parse_bytes(text: &str) -> std::result::Result<u64, &'static str> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    if digits.is_empty() {
        return Err("expected a number with an optional K/M/G suffix");
    }
    let n: u64 = digits.parse().map_err(|_| "number too large")?;
    let shift = match unit.trim().to_ascii_uppercase().as_str() {
        "" | "B" => 0,
        "K" | "KB" | "KIB" => 10,
        "M" | "MB" | "MIB" => 20,
        "G" | "GB" | "GIB" => 30,
        _ => return Err("unknown unit (use K, M or G)"),
    };
    n.checked_mul(1u64 << shift).ok_or("size overflows")
}

/// Parses a memory size (as [`parse_bytes`]) that RAM can have.
pub fn parse_size(text: &str) -> Result<u64> {
    let bad = |why: &str| MachineError::MemorySize(text.to_string(), why.to_string());
    let size = parse_bytes(text).map_err(bad)?;
    if size < MIN_RAM_SIZE {
        return Err(bad(&format!("must be at least {} KiB", MIN_RAM_SIZE >> 10)));
    }
    if size > MAX_RAM_SIZE {
        return Err(bad(&format!("must be at most {} GiB", MAX_RAM_SIZE >> 30)));
    }
    if size % 4096 != 0 {
        return Err(bad("must be a multiple of 4 KiB"));
    }
    Ok(size)
}

/// Allocates `size` bytes of RAM at [`RAM_BASE`].
pub fn allocate(size: u64) -> Result<GuestMemoryMmap> {
    let len = usize::try_from(size).map_err(|_| MachineError::AllocateRam {
        size,
        reason: "larger than the host address space".into(),
    })?;
    GuestMemoryMmap::from_ranges(&[(GuestAddress(RAM_BASE), len)]).map_err(|e| {
        MachineError::AllocateRam {
            size,
            reason: e.to_string(),
        }
    })
}

/// The end (exclusive) of RAM.
pub fn ram_end(mem: &GuestMemoryMmap) -> u64 {
    mem.last_addr().0 + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_units() {
        assert_eq!(parse_size("128M").unwrap(), 128 << 20);
        assert_eq!(parse_size("1G").unwrap(), 1 << 30);
        assert_eq!(parse_size("2048k").unwrap(), 2 << 20);
        assert_eq!(parse_size("16MiB").unwrap(), 16 << 20);
        assert_eq!(parse_size("1048576").unwrap(), 1 << 20);
    }

    #[test]
    fn bad_sizes_are_rejected() {
        for s in [
            "0",
            "",
            "M",
            "12X",
            "99999999999999999999999G",
            "1000G",
            "100",
            "1048577",
        ] {
            assert!(parse_size(s).is_err(), "{s} accepted");
        }
    }

    #[test]
    fn ram_is_at_the_virt_base() {
        let mem = allocate(2 << 20).unwrap();
        assert_eq!(ram_end(&mem), RAM_BASE + (2 << 20));
    }
}
