//! Direct access to guest RAM for the model's hot paths (every fetch and every data access).
//!
//! Owns the list of RAM windows (guest-physical start, length, host address of the mapping)
//! taken once from the VM's `GuestMemoryMmap`, and the only `unsafe` memory accesses of the
//! model: bounds-checked atomic loads and stores through those host addresses, the same for
//! whole pages found once ([`CodePage`]: a page's instruction words as a slice of atomics for
//! the pre-decoded blocks; [`DataPage`]: the data TLB's target), with the bounds checked
//! when the page is found. This replaces vm-memory's per-access region search and error
//! plumbing (a binary search, an `Arc` dereference and several `Result`s per access) with one
//! or two compares.
//!
//! Why this is sound, and exactly how far:
//! - Lifetime: a window is only built from a region of the `GuestMemoryMmap` stored in the
//!   same [`Ram`] value (`_keep`), so the mapping stays mapped for as long as the window can
//!   be used (vm-memory unmaps a region when its last `Arc` is dropped).
//! - Bounds and alignment: every access checks that `[off, off + len)` lies inside the window
//!   before forming the pointer, and uses a typed atomic only when the host address is
//!   aligned for it (else byte by byte).
//! - Races: every guest access is a Rust atomic (relaxed). The VMM's accesses while vCPUs may
//!   run are atomic too: the debugger's breakpoint writes, memory reads and writes, page-table
//!   walks and instruction fetches for emulation all go through `debug::guest_ram` (vm-memory's
//!   atomic `load`/`store`). The image loader and the device tree use vm-memory's plain copies
//!   before any vCPU thread exists, which thread creation orders before every guest access.
//!   So no non-atomic access races with a guest access.
//! - What remains outside Rust's memory model: racing atomic accesses of *different sizes* to
//!   overlapping bytes where one is a write (a guest's 4-byte store and another vCPU's 8-byte
//!   load of the same word, an unaligned access split into bytes, a debugger byte write over
//!   a word the guest loads). Rust permits mixed-size racing atomics only when all are reads.
//!   Only the guest (or a debugger writing memory of running vCPUs) can cause them; each
//!   access is still one relaxed load or store that the compiler neither splits, merges nor
//!   elides, and on the x86-64 and AArch64 hosts it is a single plain instruction whose
//!   outcome the hardware memory model defines (single-copy atomicity per access, as the A64
//!   guest architecture specifies for its own accesses: Arm ARM B2.2.1).
//!
//! Knows nothing about translation, registers or exits.

use std::sync::atomic::{AtomicU16, AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;

use vm_memory::{GuestMemoryBackend, GuestMemoryMmap, GuestMemoryRegion, MemoryRegionAddress};

/// One contiguous RAM region as seen by the host.
#[derive(Clone, Copy, Debug)]
struct Window {
    start: u64,
    len: u64,
    host: usize,
}

/// A 4 KiB page of the first RAM window holding code, found once per code page by
/// [`Ram::code_page`] and read through [`Ram::code_words`]. Its offset is a multiple of 4 (the only
/// constructor checks it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CodePage {
    off: u64,
}

/// A 4 KiB page of the first RAM window that data accesses reach through the data TLB
/// (`mmu::Tlb`), found once per page by [`Ram::data_page`] and read and written by
/// [`Ram::read_in`] and [`Ram::write_in`]. [`DataPage::NONE`] (an empty TLB entry) matches
/// no page: those accessors refuse it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(transparent)]
pub struct DataPage {
    off: u64,
}

impl DataPage {
    pub const NONE: DataPage = DataPage { off: u64::MAX };
}

/// The VM's RAM, shared by all vCPUs; cheap to clone.
#[derive(Clone)]
pub struct Ram {
    /// Held only to keep every region (and so every host address in the windows) mapped.
    _keep: GuestMemoryMmap,
    /// The first region (usually all of RAM), checked inline.
    first: Window,
    /// The other regions.
    rest: Arc<[Window]>,
    /// Offsets below this in the first window can be fetched as a whole aligned word: its
    /// length minus 3, or 0 if its host address is not 4-byte aligned.
    fetch_end: u64,
    /// Page offsets below this in the first window are whole pages there, with a host
    /// address aligned for 8-byte atomics: its length minus 0xfff, or 0.
    data_end: u64,
    /// The pages the guest wrote since the last snapshot (`model/snapshot.rs`).
    dirty: Arc<super::super::snapshot::DirtyPages>,
}

impl Ram {
    pub fn new(mem: &GuestMemoryMmap) -> Self {
        let windows: Vec<Window> = mem
            .iter()
            .filter_map(|r| {
                let host = r.get_host_address(MemoryRegionAddress(0)).ok()?;
                Some(Window {
                    start: r.start_addr().0,
                    len: r.len(),
                    host: host as usize,
                })
            })
            .collect();
        // An empty window (no RAM) matches nothing: `off < len` never holds.
        let first = windows.first().copied().unwrap_or(Window {
            start: 0,
            len: 0,
            host: 0,
        });
        let fetch_end = if first.host % 4 == 0 {
            first.len.saturating_sub(3)
        } else {
            0
        };
        let data_end = if first.host % 8 == 0 && first.start % 0x1000 == 0 {
            first.len.saturating_sub(0xfff)
        } else {
            0
        };
        Ram {
            data_end,
            dirty: Arc::new(super::super::snapshot::DirtyPages::new(mem)),
            _keep: mem.clone(),
            first,
            rest: windows.into_iter().skip(1).collect(),
            fetch_end,
        }
    }

    /// The host address of the first window and the bound `DataPage` offsets stay below,
    /// for generated code (`jit_ldst.rs`: `data_host` without a call).
    pub fn data_window(&self) -> (usize, u64) {
        (self.first.host, self.data_end)
    }

    /// The host address of `len` bytes at `pa`, if they lie inside one RAM window.
    #[inline(always)]
    fn host(&self, pa: u64, len: u64) -> Option<usize> {
        let w = &self.first;
        let off = pa.wrapping_sub(w.start);
        if off < w.len && len <= w.len - off {
            return Some(w.host + off as usize);
        }
        self.host_rest(pa, len)
    }

    #[inline(never)]
    fn host_rest(&self, pa: u64, len: u64) -> Option<usize> {
        self.rest.iter().find_map(|w| {
            let off = pa.wrapping_sub(w.start);
            (off < w.len && len <= w.len - off).then(|| w.host + off as usize)
        })
    }

    /// The code page at `pa_page` if the whole 4 KiB page lies in the first RAM window (None
    /// elsewhere: fetches there use [`Ram::read`]).
    pub fn code_page(&self, pa_page: u64) -> Option<CodePage> {
        let off = pa_page.wrapping_sub(self.first.start);
        let inside = off < self.fetch_end && self.first.len - off >= 0x1000;
        (inside && off % 4 == 0).then_some(CodePage { off })
    }

    /// The 1024 instruction words of `page`, for the pre-decoded blocks' re-validation
    /// (`block.rs`); None if `page` does not lie in this RAM.
    pub fn code_words(&self, page: CodePage) -> Option<&[AtomicU32]> {
        let inside = page.off < self.fetch_end && self.first.len - page.off >= 0x1000;
        if !inside || page.off % 4 != 0 {
            return None;
        }
        // SAFETY: the 4 KiB at `off` lie inside the first window (checked just above), which
        // `self._keep` keeps mapped for as long as the returned borrow of `self` lives
        // (module docs); `fetch_end` is non-zero only when the window's host address is
        // 4-byte aligned and `off` is a multiple of 4, so the words are aligned. Every access
        // through the slice is atomic, as are the VMM's and other vCPUs' (module docs:
        // "Races"); `AtomicU32` permits shared mutation through `&`.
        Some(unsafe {
            std::slice::from_raw_parts(
                (self.first.host + page.off as usize) as *const AtomicU32,
                1024,
            )
        })
    }

    /// The data page at `pa_page` (4 KiB aligned) if the whole page lies in the first RAM
    /// window (None elsewhere: accesses there take [`Ram::read`] and [`Ram::write`]).
    pub fn data_page(&self, pa_page: u64) -> Option<DataPage> {
        let off = pa_page.wrapping_sub(self.first.start);
        (off < self.data_end && off % 0x1000 == 0).then_some(DataPage { off })
    }

    /// The host address of the naturally aligned `len`-byte (1, 2, 4 or 8) access at bits
    /// 11:0 of `va` in `page` (the low bits that would misalign it are dropped); None for
    /// [`DataPage::NONE`] or another length.
    #[inline(always)]
    fn data_host(&self, page: DataPage, va: u64, len: usize) -> Option<usize> {
        if page.off >= self.data_end || !matches!(len, 1 | 2 | 4 | 8) {
            return None;
        }
        let o = page.off + (va & 0xfff & !(len as u64 - 1));
        Some(self.first.host + o as usize)
    }

    /// Reads the `len` bytes at `va`'s offset in `page` (see `data_host`), single-copy
    /// atomic.
    #[inline(always)]
    pub fn read_in(&self, page: DataPage, va: u64, len: usize) -> Option<u64> {
        let h = self.data_host(page, va, len)?;
        // SAFETY: `page.off < data_end` means the whole 4 KiB page at `off` lies inside the
        // first window, which `self._keep` keeps mapped (module docs); the access is inside
        // the page and aligned to `len` from a host address `data_end` guarantees 8-byte
        // aligned; it is atomic, as are the VMM's accesses (module docs: "Races").
        unsafe {
            Some(match len {
                1 => AtomicU8::from_ptr(h as *mut u8).load(Ordering::Relaxed) as u64,
                2 => AtomicU16::from_ptr(h as *mut u16).load(Ordering::Relaxed) as u64,
                4 => AtomicU32::from_ptr(h as *mut u32).load(Ordering::Relaxed) as u64,
                _ => AtomicU64::from_ptr(h as *mut u64).load(Ordering::Relaxed),
            })
        }
    }

    /// Writes the low `len` bytes of `val` at `va`'s offset in `page` (see `data_host`) and
    /// marks the page dirty.
    #[inline(always)]
    pub fn write_in(&self, page: DataPage, va: u64, len: usize, val: u64) -> Option<()> {
        let h = self.data_host(page, va, len)?;
        self.dirty
            .mark(self.first.start + page.off + (va & 0xfff), len as u64);
        // SAFETY: as in `read_in`.
        unsafe {
            match len {
                1 => AtomicU8::from_ptr(h as *mut u8).store(val as u8, Ordering::Relaxed),
                2 => AtomicU16::from_ptr(h as *mut u16).store(val as u16, Ordering::Relaxed),
                4 => AtomicU32::from_ptr(h as *mut u32).store(val as u32, Ordering::Relaxed),
                _ => AtomicU64::from_ptr(h as *mut u64).store(val, Ordering::Relaxed),
            }
        }
        Some(())
    }

    /// True when all `len` bytes at `pa` are RAM.
    #[cfg(test)]
    pub fn contains(&self, pa: u64, len: u64) -> bool {
        len > 0 && self.host(pa, len).is_some()
    }

    /// Reads `len` (1 to 8) bytes at `pa`, little-endian; None unless all are RAM.
    /// Naturally aligned accesses of 1, 2, 4 or 8 bytes are single-copy atomic.
    #[inline(always)]
    pub fn read(&self, pa: u64, len: usize) -> Option<u64> {
        let len = len.min(8);
        let h = self.host(pa, len as u64)?;
        // SAFETY: `host` checked that the `len` bytes at `h` lie inside a window of a region
        // `self._keep` keeps mapped (module docs); each typed access covers exactly `len`
        // bytes and its pointer is aligned for its type (checked on `h`, the host address);
        // access is atomic, as are the VMM's while vCPUs run (module docs: "Races").
        unsafe {
            match len {
                1 => return Some(AtomicU8::from_ptr(h as *mut u8).load(Ordering::Relaxed) as u64),
                2 if h & 1 == 0 => {
                    return Some(AtomicU16::from_ptr(h as *mut u16).load(Ordering::Relaxed) as u64)
                }
                4 if h & 3 == 0 => {
                    return Some(AtomicU32::from_ptr(h as *mut u32).load(Ordering::Relaxed) as u64)
                }
                8 if h & 7 == 0 => {
                    return Some(AtomicU64::from_ptr(h as *mut u64).load(Ordering::Relaxed))
                }
                _ => {}
            }
            let mut v = 0u64;
            for k in 0..len {
                let b = AtomicU8::from_ptr((h + k) as *mut u8).load(Ordering::Relaxed);
                v |= (b as u64) << (8 * k);
            }
            Some(v)
        }
    }

    /// The guest's dirty-page log, shared by every clone of this `Ram`.
    pub fn dirty(&self) -> &Arc<super::super::snapshot::DirtyPages> {
        &self.dirty
    }

    /// Writes the low `len` (1 to 8) bytes of `val` at `pa`; None unless all are RAM. The
    /// page (both pages of a straddling access) is marked dirty.
    #[inline(always)]
    pub fn write(&self, pa: u64, len: usize, val: u64) -> Option<()> {
        let len = len.min(8);
        let h = self.host(pa, len as u64)?;
        self.dirty.mark(pa, len as u64);
        // SAFETY: as in `read`: in bounds of a mapped window, exactly `len` bytes, aligned
        // per type, atomic.
        unsafe {
            match len {
                1 => {
                    AtomicU8::from_ptr(h as *mut u8).store(val as u8, Ordering::Relaxed);
                    return Some(());
                }
                2 if h & 1 == 0 => {
                    AtomicU16::from_ptr(h as *mut u16).store(val as u16, Ordering::Relaxed);
                    return Some(());
                }
                4 if h & 3 == 0 => {
                    AtomicU32::from_ptr(h as *mut u32).store(val as u32, Ordering::Relaxed);
                    return Some(());
                }
                8 if h & 7 == 0 => {
                    AtomicU64::from_ptr(h as *mut u64).store(val, Ordering::Relaxed);
                    return Some(());
                }
                _ => {}
            }
            for k in 0..len {
                AtomicU8::from_ptr((h + k) as *mut u8)
                    .store((val >> (8 * k)) as u8, Ordering::Relaxed);
            }
            Some(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vm_memory::{Bytes, GuestAddress};

    fn ram() -> (GuestMemoryMmap, Ram) {
        let mem = GuestMemoryMmap::from_ranges(&[
            (GuestAddress(0x4000_0000), 0x2000),
            (GuestAddress(0x8000_0000), 0x1000),
        ])
        .expect("guest memory");
        let ram = Ram::new(&mem);
        (mem, ram)
    }

    #[test]
    fn reads_and_writes_agree_with_vm_memory() {
        let (mem, ram) = ram();
        mem.write_obj(0x1122_3344_5566_7788u64, GuestAddress(0x4000_0008))
            .expect("write");
        assert_eq!(ram.read(0x4000_0008, 8), Some(0x1122_3344_5566_7788));
        assert_eq!(ram.read(0x4000_000c, 4), Some(0x1122_3344));
        assert_eq!(ram.read(0x4000_0009, 2), Some(0x6677), "unaligned");
        assert_eq!(ram.read(0x4000_0009, 8), Some(0x0011_2233_4455_6677));
        assert_eq!(
            ram.read(0x4000_0008, 3),
            Some(0x66_7788),
            "odd sizes byte by byte"
        );
        ram.write(0x8000_0ffc, 4, 0xdead_beef)
            .expect("second region");
        assert_eq!(
            mem.read_obj::<u32>(GuestAddress(0x8000_0ffc)).ok(),
            Some(0xdead_beef)
        );
        ram.write(0x4000_0101, 8, 0x0102_0304_0506_0708)
            .expect("unaligned");
        assert_eq!(
            mem.read_obj::<u64>(GuestAddress(0x4000_0101)).ok(),
            Some(0x0102_0304_0506_0708)
        );
    }

    #[test]
    fn data_pages_read_and_write_what_read_and_write_do() {
        let (mem, ram) = ram();
        let page = ram.data_page(0x4000_1000).expect("in the first window");
        ram.write_in(page, 0xffff_0ff8, 8, 0x1122_3344_5566_7788)
            .expect("write");
        assert_eq!(ram.read(0x4000_1ff8, 8), Some(0x1122_3344_5566_7788));
        assert_eq!(ram.read_in(page, 0xffc, 4), Some(0x1122_3344));
        assert_eq!(ram.read_in(page, 0xffd, 1), Some(0x33));
        assert_eq!(
            ram.read_in(page, 0xffd, 2),
            Some(0x3344),
            "misaligning bits dropped"
        );
        assert_eq!(
            mem.read_obj::<u16>(GuestAddress(0x4000_1ffe)).ok(),
            Some(0x1122)
        );
        assert_eq!(ram.read_in(page, 0, 16), None, "not an access size");
        assert_eq!(ram.read_in(DataPage::NONE, 0, 8), None);
        assert_eq!(ram.write_in(DataPage::NONE, 0, 8, 0), None);
        assert_eq!(ram.data_page(0x4000_2000), None, "past the first window");
        assert_eq!(ram.data_page(0x8000_0000), None, "second window");
        assert_eq!(ram.data_page(0x4000_0800), None, "not a page");
    }

    #[test]
    fn code_words_are_the_page() {
        let (mem, ram) = ram();
        assert_eq!(ram.code_page(0x4000_2000), None, "past the first window");
        assert_eq!(
            ram.code_page(0x8000_0000),
            None,
            "second window: the read path"
        );
        assert_eq!(ram.code_page(0x3fff_f000), None);
        mem.write_obj(0xd503_201fu32, GuestAddress(0x4000_1ffc))
            .expect("write");
        let page = ram.code_page(0x4000_1000).expect("in the first window");
        let words = ram.code_words(page).expect("words");
        assert_eq!(words.len(), 1024);
        assert_eq!(words[1023].load(Ordering::Relaxed), 0xd503_201f);
        words[0].store(0x1234_5678, Ordering::Relaxed);
        assert_eq!(ram.read(0x4000_1000, 4), Some(0x1234_5678));
    }

    #[test]
    fn accesses_outside_or_across_ram_ends_are_refused() {
        let (_mem, ram) = ram();
        assert_eq!(ram.read(0x3fff_fffc, 4), None);
        assert_eq!(ram.read(0x4000_1ffc, 8), None, "straddles the end");
        assert!(
            ram.read(0x4000_1ff8, 8).is_some(),
            "ends exactly at the end"
        );
        assert_eq!(ram.read(0x8000_1000, 1), None);
        assert_eq!(ram.write(u64::MAX - 2, 4, 0), None, "wraps around");
        assert!(!ram.contains(0x4000_2000, 1));
        assert!(ram.contains(0x8000_0000, 0x1000));
    }
}
