//! Physical memory as the model sees it: RAM (the VM's `GuestMemoryMmap`) and everything else.
//!
//! Owns RAM reads/writes (including the atomic compare-and-swap the exclusives and LSE atomics
//! use), the classification of physical addresses into RAM, the GIC ranges and MMIO, and the
//! VM's in-model GIC (`model::gic`) that serves the GIC ranges. Knows nothing about
//! translation, registers or exits.

use std::sync::atomic::{AtomicU16, AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};

use vm_memory::{
    GuestAddress, GuestMemoryBackend, GuestMemoryMmap, GuestMemoryRegion, VolatileMemory,
};

use crate::backend::model::gic::Gic;
use crate::backend::GicLayout;

use super::ram::{CodePage, DataPage, Ram};

/// Size of the GICv3 distributor frame: 64 KiB (GICv3 architecture specification 12.8 "The
/// GIC Distributor register map").
const GICD_SIZE: u64 = 0x1_0000;

/// Where a physical access lands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PhysKind {
    Ram,
    /// The GIC distributor/redistributor ranges, served by the in-model GIC.
    Gic,
    Mmio,
}

/// The VM's physical address space, shared by all vCPUs.
#[derive(Clone)]
pub struct Bus {
    mem: GuestMemoryMmap,
    gic: GicLayout,
    /// RAM ranges as (start, end exclusive), for the stage-2 fault level of MMIO syndromes.
    ram: Arc<Vec<(u64, u64)>>,
    /// Serialises 128-bit compare-and-swaps (CASP, STXP with 64-bit elements): Rust has no
    /// stable 128-bit atomic, so those run under this lock (plain stores do not take it).
    wide_lock: Arc<Mutex<()>>,
    /// The GIC at `gic`, one redistributor per vCPU.
    gic_model: Arc<Gic>,
    /// Direct host access to RAM for `read` and `write` (the per-instruction paths).
    fast: Ram,
    /// Whether batches compile hot blocks (`jit.rs`; `VmConfig::jit`).
    jit: bool,
    /// Whether they compile on a thread of their own (`jit_worker.rs`): without the
    /// deterministic clock (`VmConfig::icount`).
    jit_background: bool,
}

impl Bus {
    pub fn new(mem: &GuestMemoryMmap, gic: GicLayout) -> Self {
        let ram = mem
            .iter()
            .map(|r| (r.start_addr().0, r.start_addr().0 + r.len()))
            .collect();
        Bus {
            mem: mem.clone(),
            gic,
            ram: Arc::new(ram),
            wide_lock: Arc::new(Mutex::new(())),
            gic_model: Arc::new(Gic::new(gic, super::state::mpidr_for)),
            fast: Ram::new(mem),
            jit: true,
            jit_background: false,
        }
    }

    /// The pages the guest wrote since the last snapshot.
    pub fn dirty(&self) -> &Arc<crate::backend::model::snapshot::DirtyPages> {
        self.fast.dirty()
    }

    /// The VM's GIC.
    pub fn gic(&self) -> &Gic {
        &self.gic_model
    }

    /// Classifies an access of `len` bytes at `pa`. An access straddling RAM's end is MMIO.
    pub fn kind(&self, pa: u64, len: u64) -> PhysKind {
        let end = pa.wrapping_add(len);
        if self
            .ram
            .iter()
            .any(|&(s, e)| pa >= s && end <= e && end > pa)
        {
            return PhysKind::Ram;
        }
        let g = &self.gic;
        let in_dist = pa >= g.dist_base && pa < g.dist_base + GICD_SIZE;
        let in_redist = pa >= g.redist_base && pa < g.redist_base + g.redist_size;
        if in_dist || in_redist {
            PhysKind::Gic
        } else {
            PhysKind::Mmio
        }
    }

    /// The stage-2 translation-fault level KVM would report for an IPA outside every memslot
    /// (4 KiB granule, 48-bit IPA, start level 0): the first level whose table entry covering
    /// `pa` holds no RAM. Used for the DFSC of MMIO syndromes (e.g. 0x05 for 0x0900_0000).
    pub fn stage2_fault_level(&self, pa: u64) -> u8 {
        for (level, shift) in [(0u8, 39u32), (1, 30), (2, 21)] {
            let base = pa >> shift << shift;
            let top = base + (1u64 << shift);
            if !self.ram.iter().any(|&(s, e)| s < top && e > base) {
                return level;
            }
        }
        3
    }

    /// Reads `len` (1, 2, 4, 8) bytes of RAM, little-endian; None outside RAM (or across its
    /// end). Aligned accesses are single-copy atomic.
    #[inline(always)]
    pub fn read(&self, pa: u64, len: usize) -> Option<u64> {
        self.fast.read(pa, len)
    }

    /// Writes the low `len` bytes of `val` to RAM; None outside RAM (or across its end).
    #[inline(always)]
    pub fn write(&self, pa: u64, len: usize, val: u64) -> Option<()> {
        self.fast.write(pa, len, val)
    }

    /// A handle on RAM for the pre-decoded blocks (`block.rs`).
    /// The same bus with the JIT tier on or off (`VmConfig::jit`).
    pub fn with_jit(mut self, on: bool) -> Self {
        self.jit = on;
        self
    }

    /// Whether batches compile hot blocks (`jit.rs`).
    pub fn jit(&self) -> bool {
        self.jit
    }

    /// The same bus compiling blocks on a thread of their own (`jit_worker.rs`) or not.
    pub fn with_jit_background(mut self, on: bool) -> Self {
        self.jit_background = on;
        self
    }

    /// Whether hot blocks are compiled on a thread of their own (`jit_worker.rs`).
    pub fn jit_background(&self) -> bool {
        self.jit_background
    }

    pub fn ram(&self) -> Ram {
        self.fast.clone()
    }

    /// The code page at `pa_page` for the pre-decoded blocks, if it is plain RAM.
    pub fn code_page(&self, pa_page: u64) -> Option<CodePage> {
        self.fast.code_page(pa_page)
    }

    /// The data page at `pa_page` for [`Bus::read_in`]/[`Bus::write_in`], if it is plain
    /// RAM.
    pub fn data_page(&self, pa_page: u64) -> Option<DataPage> {
        self.fast.data_page(pa_page)
    }

    /// Reads `len` bytes at `va`'s page offset in `page` (naturally aligned).
    #[inline(always)]
    pub fn read_in(&self, page: DataPage, va: u64, len: usize) -> Option<u64> {
        self.fast.read_in(page, va, len)
    }

    /// Writes `len` bytes at `va`'s page offset in `page` (naturally aligned).
    #[inline(always)]
    pub fn write_in(&self, page: DataPage, va: u64, len: usize, val: u64) -> Option<()> {
        self.fast.write_in(page, va, len, val)
    }

    /// Atomically replaces the `len`-byte value at `pa` (naturally aligned) with `new` if it
    /// equals `expected`; returns the old value. `None` if `pa` is not RAM.
    pub fn cas(&self, pa: u64, len: usize, expected: u64, new: u64) -> Option<u64> {
        let slice = self.mem.get_slice(GuestAddress(pa), len).ok()?;
        self.fast.dirty().mark(pa, len as u64);
        let old = match len {
            1 => {
                let a = slice.get_atomic_ref::<AtomicU8>(0).ok()?;
                flat(a.compare_exchange(expected as u8, new as u8, SEQ, SEQ)) as u64
            }
            2 => {
                let a = slice.get_atomic_ref::<AtomicU16>(0).ok()?;
                flat(a.compare_exchange(expected as u16, new as u16, SEQ, SEQ)) as u64
            }
            4 => {
                let a = slice.get_atomic_ref::<AtomicU32>(0).ok()?;
                flat(a.compare_exchange(expected as u32, new as u32, SEQ, SEQ)) as u64
            }
            _ => {
                let a = slice.get_atomic_ref::<AtomicU64>(0).ok()?;
                flat(a.compare_exchange(expected, new, SEQ, SEQ))
            }
        };
        Some(old)
    }

    /// 128-bit compare-and-swap of two 64-bit words at `pa` (16-byte aligned), serialised
    /// with other 128-bit swaps; returns the old pair.
    pub fn cas128(&self, pa: u64, expected: [u64; 2], new: [u64; 2]) -> Option<[u64; 2]> {
        let _guard = self.wide_lock.lock().unwrap_or_else(|e| e.into_inner());
        let old = [self.read(pa, 8)?, self.read(pa + 8, 8)?];
        if old == expected {
            self.write(pa, 8, new[0])?;
            self.write(pa + 8, 8, new[1])?;
        }
        Some(old)
    }
}

const SEQ: Ordering = Ordering::SeqCst;

fn flat<T>(r: Result<T, T>) -> T {
    match r {
        Ok(v) | Err(v) => v,
    }
}
