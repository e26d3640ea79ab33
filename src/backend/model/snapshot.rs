//! Snapshots of the model: the guest's dirty-page log and the saved states of vCPUs and of
//! the VM (`backend::snapshot`).
//!
//! - [`DirtyPages`]: one bit per 4 KiB page of every RAM region, set by every guest store
//!   (`cpu/ram.rs` `Ram::write`, and `cpu/bus.rs` `Bus::cas` for the exclusives and atomics;
//!   128-bit swaps go through `Ram::write`). A store first loads its word of the bitmap and
//!   does the atomic OR only when the bit is clear, so a page costs one RMW per snapshot
//!   interval and every other store one load and a branch.
//! - A vCPU's saved state: its `CpuState` (general, SIMD/FP, system and debug registers), the
//!   exclusive monitor, the retired-instruction count and deterministic clock, interrupt
//!   bookkeeping, and the run loop's own state (a pending MMIO completion, a completed step,
//!   the turn). The VMM's guest-debug configuration is not saved: a restore keeps the current
//!   one (breakpoints are the debugger's, not the guest's). The TLB is flushed and the
//!   decoded-instruction cache needs nothing (it checks every fetched word).
//! - The VM's saved state: the GIC, the PSCI power states, and the clock and turns. A vCPU
//!   switched on by CPU_ON whose turn has not come yet is saved `Starting`, with its
//!   registers from before the reset (the reset is applied at its turn, `icount.rs`).
//!
//! Must not depend on `machine`, `debug` or `gdb`.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use vm_memory::{GuestMemoryBackend, GuestMemoryMmap, GuestMemoryRegion};

use crate::backend::snapshot::{VcpuSnapshot, VmSnapshot};
use crate::backend::{BackendError, Result};

use super::cpu::intr::IrqCtl;
use super::cpu::state::CpuState;
use super::cpu::sysregs::VClock;
use super::cpu::{debug::DebugCtl, MmioReq, Monitor};
use super::gic::GicSaved;
use super::icount::SchedSaved;
use super::vcpu::ModelVcpu;
use super::{ModelVm, Power};

/// Page size of the dirty log: the 4 KiB translation granule.
pub const PAGE: u64 = 0x1000;

/// One RAM region's place in the bitmap.
#[derive(Clone, Copy, Debug)]
struct Region {
    start: u64,
    len: u64,
    /// Index of its first page's bit.
    first_bit: u64,
}

/// The pages of RAM the guest wrote since the last [`DirtyPages::take`].
pub struct DirtyPages {
    regions: Vec<Region>,
    bits: Box<[AtomicU64]>,
    /// Logging is on from the first [`DirtyPages::take`] (a recording starts with one and its
    /// first snapshot copies every page anyway); until then a guest store costs one load.
    on: AtomicBool,
}

impl DirtyPages {
    pub fn new(mem: &GuestMemoryMmap) -> Self {
        let mut regions = Vec::new();
        let mut pages = 0u64;
        for r in mem.iter() {
            let len = r.len();
            regions.push(Region {
                start: r.start_addr().0,
                len,
                first_bit: pages,
            });
            pages += len.div_ceil(PAGE);
        }
        let words = pages.div_ceil(64) as usize;
        DirtyPages {
            regions,
            bits: (0..words).map(|_| AtomicU64::new(0)).collect(),
            on: AtomicBool::new(false),
        }
    }

    /// The bit of the page holding `pa`, if it is RAM.
    #[inline(always)]
    fn bit(&self, pa: u64) -> Option<u64> {
        self.regions.iter().find_map(|r| {
            let off = pa.wrapping_sub(r.start);
            (off < r.len).then(|| r.first_bit + off / PAGE)
        })
    }

    #[inline(always)]
    fn set(&self, bit: u64) {
        if let Some(w) = self.bits.get((bit / 64) as usize) {
            let m = 1u64 << (bit % 64);
            if w.load(Ordering::Relaxed) & m == 0 {
                w.fetch_or(m, Ordering::Relaxed);
            }
        }
    }

    /// Whether logging is on, for generated code (`cpu::jit_ldst`): while it is true, a
    /// store it makes inline must find its page's bit already set (else it goes through
    /// [`DirtyPages::mark`]'s path).
    pub fn on_flag(&self) -> &AtomicBool {
        &self.on
    }

    /// The bitmap's words, for generated code (`cpu::jit_ldst`): the bit of the page at
    /// offset `off` in the first RAM region is bit `off / 4096 % 64` of word
    /// `off / 4096 / 64` (the first region's pages are numbered from 0).
    pub fn bitmap(&self) -> *const AtomicU64 {
        debug_assert!(self.regions.first().is_none_or(|r| r.first_bit == 0));
        self.bits.as_ptr()
    }

    /// Marks the pages of `len` bytes at `pa` (RAM only; at most two pages for a guest access).
    #[inline(always)]
    pub fn mark(&self, pa: u64, len: u64) {
        if !self.on.load(Ordering::Relaxed) {
            return;
        }
        let Some(first) = self.bit(pa) else {
            return;
        };
        self.set(first);
        let last = pa.wrapping_add(len.max(1) - 1);
        if last / PAGE != pa / PAGE {
            if let Some(b) = self.bit(last) {
                self.set(b);
            }
        }
    }

    /// The guest-physical addresses of the dirty pages, lowest first; clears the log.
    pub fn take(&self) -> Vec<u64> {
        self.on.store(true, Ordering::Relaxed);
        let mut out = Vec::new();
        for (i, w) in self.bits.iter().enumerate() {
            let mut v = w.swap(0, Ordering::Relaxed);
            while v != 0 {
                let bit = i as u64 * 64 + u64::from(v.trailing_zeros());
                v &= v - 1;
                if let Some(pa) = self.page_of(bit) {
                    out.push(pa);
                }
            }
        }
        out
    }

    /// The address of the page with bit `bit`.
    fn page_of(&self, bit: u64) -> Option<u64> {
        self.regions.iter().find_map(|r| {
            let pages = r.len.div_ceil(PAGE);
            (bit >= r.first_bit && bit < r.first_bit + pages)
                .then(|| r.start + (bit - r.first_bit) * PAGE)
        })
    }
}

/// A model vCPU's saved state (module docs).
#[derive(Clone)]
struct VcpuSaved {
    st: CpuState,
    dbg: DebugCtl,
    monitor: Option<Monitor>,
    insns: u64,
    vclock: Option<VClock>,
    irq: IrqCtl,
    pending: Option<MmioReq>,
    mmio_data: u64,
    step_done: bool,
    irq_line: bool,
    holds_turn: bool,
    quantum_end: u64,
    admitted_for: u64,
}

/// The model VM's saved state (module docs).
struct VmSaved {
    gic: GicSaved,
    power: Vec<Power>,
    sched: Option<SchedSaved>,
}

fn wrong_kind(what: &str) -> BackendError {
    BackendError::Unsupported(format!("restoring a {what} snapshot another backend saved"))
}

impl ModelVcpu {
    pub(super) fn save(&mut self) -> VcpuSnapshot {
        let (pending, mmio_data, step_done) = self.run_state();
        let saved = VcpuSaved {
            st: self.cpu.st.clone(),
            dbg: self.cpu.dbg.clone(),
            monitor: self.cpu.monitor,
            insns: self.cpu.insns,
            vclock: self.cpu.vclock,
            irq: self.cpu.irq.clone(),
            pending,
            mmio_data,
            step_done,
            irq_line: self.irq_line,
            holds_turn: self.holds_turn,
            quantum_end: self.quantum_end,
            admitted_for: self.admitted_for,
        };
        // Nothing in it owns heap memory but the debugger's configuration (`GuestDebug`: a
        // few breakpoint entries, not counted; a restore keeps the live one).
        VcpuSnapshot(Box::new(saved), std::mem::size_of::<VcpuSaved>())
    }

    pub(super) fn restore(&mut self, snap: &VcpuSnapshot) -> Result<()> {
        let s = snap
            .0
            .downcast_ref::<VcpuSaved>()
            .ok_or_else(|| wrong_kind("vCPU"))?;
        self.cpu.st = s.st.clone();
        let cfg = std::mem::take(&mut self.cpu.dbg.cfg);
        self.cpu.dbg = s.dbg.clone();
        self.cpu.dbg.cfg = cfg;
        self.cpu.monitor = s.monitor;
        self.cpu.insns = s.insns;
        self.cpu.vclock = s.vclock;
        self.cpu.irq = s.irq.clone();
        self.cpu.irq.mark_dirty();
        self.cpu.tlb.flush();
        self.set_run_state(s.pending, s.mmio_data, s.step_done);
        self.irq_line = s.irq_line;
        self.holds_turn = s.holds_turn;
        self.quantum_end = s.quantum_end;
        self.admitted_for = s.admitted_for;
        Ok(())
    }
}

impl ModelVm {
    pub(super) fn save(&self) -> VmSnapshot {
        let saved = VmSaved {
            gic: self.bus.gic().save(),
            power: self.shared.lock_power().clone(),
            sched: self.shared.sched.as_ref().map(|s| s.save()),
        };
        let bytes = std::mem::size_of::<VmSaved>()
            + saved.gic.heap_bytes()
            + std::mem::size_of_val(saved.power.as_slice())
            + saved.sched.as_ref().map_or(0, |s| s.heap_bytes());
        VmSnapshot(Box::new(saved), bytes)
    }

    pub(super) fn restore(&self, snap: &VmSnapshot) -> Result<()> {
        let s = snap
            .0
            .downcast_ref::<VmSaved>()
            .ok_or_else(|| wrong_kind("VM"))?;
        if s.power.len() != self.cfg.vcpus {
            return Err(wrong_kind("VM (different vCPU count)"));
        }
        self.bus.gic().restore(&s.gic);
        let mut power = self.shared.lock_power();
        power.clone_from(&s.power);
        if let (Some(sched), Some(saved)) = (&self.shared.sched, &s.sched) {
            sched.restore(saved);
        }
        drop(power);
        self.shared.cv.notify_all();
        Ok(())
    }

    pub(super) fn dirty_pages(&self) -> Vec<u64> {
        self.bus.dirty().take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vm_memory::GuestAddress;

    #[test]
    fn marks_pages_of_every_region_and_straddling_accesses() {
        let mem = GuestMemoryMmap::from_ranges(&[
            (GuestAddress(0x4000_0000), 0x3000),
            (GuestAddress(0x8000_0000), 0x1000),
        ])
        .expect("guest memory");
        let d = DirtyPages::new(&mem);
        d.mark(0x4000_0010, 4);
        assert!(
            d.take().is_empty(),
            "nothing is logged before the first take"
        );
        d.mark(0x4000_0ffc, 8);
        d.mark(0x8000_0010, 4);
        d.mark(0x9000_0000, 4);
        d.mark(0x4000_0ff0, 1);
        assert_eq!(d.take(), vec![0x4000_0000, 0x4000_1000, 0x8000_0000]);
        assert!(d.take().is_empty(), "take clears the log");
    }
}
