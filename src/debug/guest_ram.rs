//! The VMM's accesses to guest RAM while vCPUs may run: every access is a Rust atomic load or
//! store (vm-memory's `Bytes::load` / `Bytes::store`), never one of vm-memory's plain copies.
//!
//! Why: on the model backend the guest's own accesses are Rust atomics on the same host memory
//! (`backend::model::cpu::ram`). vm-memory's `read_slice`, `write_slice`, `read_obj` and
//! `write_obj` copy with volatile or `copy_nonoverlapping` accesses, which are not atomic; one
//! of those racing with a vCPU's access to the same bytes is a data race, undefined behaviour
//! in Rust's memory model. On KVM the guest's accesses are the hardware's, outside the Rust
//! program, and atomics are as correct as volatile accesses there.
//!
//! An access is split into naturally aligned pieces of 8, 4, 2 or 1 bytes, largest first, so
//! an aligned instruction word (a planted or lifted BRK) is one 4-byte store, the size of the
//! model's fetch. The whole range is checked to be RAM before any byte is accessed: an error
//! leaves memory untouched.
//!
//! Accesses made before any vCPU thread starts (the image loader, the device tree) may use
//! vm-memory's copies: spawning the threads orders them before every guest access.
//!
//! Owns nothing else. Must not depend on `machine` or gdb.

use std::sync::atomic::Ordering;

use vm_memory::{Bytes, GuestAddress, GuestMemoryBackend, GuestMemoryError, GuestMemoryMmap};

/// The naturally aligned pieces of `[pa, pa + len)`: (offset in the range, size), each size
/// 8, 4, 2 or 1 and a divisor of its address.
pub fn pieces(pa: u64, len: usize) -> impl Iterator<Item = (usize, usize)> {
    let mut off = 0usize;
    std::iter::from_fn(move || {
        if off >= len {
            return None;
        }
        let addr = pa.wrapping_add(off as u64);
        let rest = len - off;
        let size = [8usize, 4, 2, 1]
            .into_iter()
            .find(|&s| addr % s as u64 == 0 && rest >= s)
            .unwrap_or(1);
        let piece = (off, size);
        off += size;
        Some(piece)
    })
}

/// Refuses a range that is not all RAM (or wraps around), before anything is accessed.
fn check(mem: &GuestMemoryMmap, pa: u64, len: usize) -> Result<(), GuestMemoryError> {
    let wraps = pa.checked_add(len as u64).is_none();
    if wraps || !mem.check_range(GuestAddress(pa), len) {
        return Err(GuestMemoryError::InvalidGuestAddress(GuestAddress(pa)));
    }
    Ok(())
}

/// Reads `buf.len()` bytes at guest physical `pa` with atomic loads.
pub fn read(mem: &GuestMemoryMmap, pa: u64, buf: &mut [u8]) -> Result<(), GuestMemoryError> {
    check(mem, pa, buf.len())?;
    for (off, size) in pieces(pa, buf.len()) {
        let at = GuestAddress(pa + off as u64);
        let dst = &mut buf[off..off + size];
        match size {
            8 => dst.copy_from_slice(&mem.load::<u64>(at, Ordering::Relaxed)?.to_le_bytes()),
            4 => dst.copy_from_slice(&mem.load::<u32>(at, Ordering::Relaxed)?.to_le_bytes()),
            2 => dst.copy_from_slice(&mem.load::<u16>(at, Ordering::Relaxed)?.to_le_bytes()),
            _ => dst[0] = mem.load::<u8>(at, Ordering::Relaxed)?,
        }
    }
    Ok(())
}

/// Writes `buf` at guest physical `pa` with atomic stores.
pub fn write(mem: &GuestMemoryMmap, pa: u64, buf: &[u8]) -> Result<(), GuestMemoryError> {
    check(mem, pa, buf.len())?;
    for (off, size) in pieces(pa, buf.len()) {
        let at = GuestAddress(pa + off as u64);
        let src = &buf[off..off + size];
        let le8 = |n: usize| {
            let mut b = [0u8; 8];
            b[..n].copy_from_slice(src);
            u64::from_le_bytes(b)
        };
        match size {
            8 => mem.store(le8(8), at, Ordering::Relaxed)?,
            4 => mem.store(le8(4) as u32, at, Ordering::Relaxed)?,
            2 => mem.store(le8(2) as u16, at, Ordering::Relaxed)?,
            _ => mem.store(src[0], at, Ordering::Relaxed)?,
        }
    }
    Ok(())
}

/// The little-endian 32-bit word at `pa` (one atomic load when aligned).
pub fn read_u32(mem: &GuestMemoryMmap, pa: u64) -> Result<u32, GuestMemoryError> {
    let mut b = [0u8; 4];
    read(mem, pa, &mut b)?;
    Ok(u32::from_le_bytes(b))
}

/// The little-endian 64-bit word at `pa` (one atomic load when aligned).
pub fn read_u64(mem: &GuestMemoryMmap, pa: u64) -> Result<u64, GuestMemoryError> {
    let mut b = [0u8; 8];
    read(mem, pa, &mut b)?;
    Ok(u64::from_le_bytes(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mem() -> GuestMemoryMmap {
        GuestMemoryMmap::from_ranges(&[
            (GuestAddress(0x4000_0000), 0x2000),
            (GuestAddress(0x4000_2000), 0x1000),
        ])
        .expect("guest memory")
    }

    #[test]
    fn pieces_are_naturally_aligned_and_cover_the_range() {
        let got: Vec<_> = pieces(0x1003, 14).collect();
        assert_eq!(got, [(0, 1), (1, 4), (5, 8), (13, 1)]);
        assert_eq!(pieces(0x1000, 4).collect::<Vec<_>>(), [(0, 4)]);
        assert_eq!(pieces(0x1000, 0).count(), 0);
    }

    #[test]
    fn round_trips_agree_with_vm_memory_across_regions() {
        let m = mem();
        let data: Vec<u8> = (1..=23).collect();
        write(&m, 0x4000_1ff5, &data).expect("write across the region boundary");
        let mut plain = vec![0u8; data.len()];
        m.read_slice(&mut plain, GuestAddress(0x4000_1ff5)).unwrap();
        assert_eq!(plain, data);
        let mut back = vec![0u8; data.len()];
        read(&m, 0x4000_1ff5, &mut back).unwrap();
        assert_eq!(back, data);
        m.write_obj(0xd420_0000u32, GuestAddress(0x4000_0100))
            .unwrap();
        assert_eq!(read_u32(&m, 0x4000_0100).unwrap(), 0xd420_0000);
        assert_eq!(read_u64(&m, 0x4000_1ff5).unwrap(), 0x0807_0605_0403_0201);
    }

    #[test]
    fn a_range_leaving_ram_is_refused_untouched() {
        let m = mem();
        let err = write(&m, 0x4000_2ffe, &[0xaa; 4]);
        assert!(err.is_err());
        assert_eq!(read_u32(&m, 0x4000_2ffc).unwrap(), 0, "nothing written");
        assert!(read(&m, u64::MAX - 1, &mut [0u8; 4]).is_err(), "wraps");
        assert!(read(&m, 0x3fff_fffc, &mut [0u8; 4]).is_err());
    }
}
