//! Stage-1 address translation for the model vCPU: the flat map with SCTLR_EL1.M = 0 and a
//! small direct-mapped TLB in front of the shared walker (`crate::a64::walk`) for M = 1.
//!
//! Owns the TLB (flushed on TLBI and on writes to SCTLR/TCR/TTBRx/MAIR) and the conversion
//! of walker faults into guest aborts. The walk itself is the shared walker.

use crate::a64::fields::sctlr;
use crate::a64::walk::{self, PhysMem, TranslationRegs};

pub use crate::a64::walk::Access;

use super::bus::Bus;
use super::ram::DataPage;
use super::{Cpu, Stop};

/// The model's physical address size: 48 bits (ID_AA64MMFR0_EL1.PARange = 0b0101).
pub const PA_BITS: u32 = 48;

/// Entries of the TLB and of the data TLB (a power of two: generated code indexes the data
/// TLB with a mask, `jit_ldst.rs`).
pub(super) const TLB_SIZE: usize = 256;

/// Layout of a data-TLB entry for generated code (`jit_ldst.rs`).
pub(super) const DATA_ENTRY_BYTES: usize = std::mem::size_of::<DataEntry>();
pub(super) const DATA_READ_TAG: i32 = std::mem::offset_of!(DataEntry, read_tag) as i32;
pub(super) const DATA_WRITE_TAG: i32 = std::mem::offset_of!(DataEntry, write_tag) as i32;
pub(super) const DATA_PAGE: i32 = std::mem::offset_of!(DataEntry, page) as i32;

/// Translation lookaside buffer: one entry per 4 KiB VA page, direct mapped; plus the data
/// TLB, which takes plain data accesses from a VA page straight to its RAM page.
#[derive(Clone, Debug, Default)]
pub struct Tlb {
    entries: Vec<TlbEntry>,
    data: Vec<DataEntry>,
}

/// A data-TLB entry: the RAM page (`ram::DataPage`) of one VA page, for reads if
/// `read_tag` and for writes if `write_tag` is `va_page | el0` (bit 0: the access was
/// checked for EL0); `u64::MAX` (never a tag: bit 1 is set) when not permitted or unknown.
/// Filled only by accesses that need none of the checks of the full path (`fast_mem.rs`),
/// and emptied with the TLB (every TLBI, every write to SCTLR/TCR/TTBRx/MAIR, reset,
/// snapshot restore), so it never outlives the translation it was made from.
#[derive(Clone, Copy, Debug)]
#[repr(C)]
pub(super) struct DataEntry {
    read_tag: u64,
    write_tag: u64,
    page: DataPage,
}

const NO_DATA: DataEntry = DataEntry {
    read_tag: u64::MAX,
    write_tag: u64::MAX,
    page: DataPage::NONE,
};

#[derive(Clone, Copy, Debug)]
struct TlbEntry {
    va_page: u64,
    el0: bool,
    pa_page: u64,
    read_ok: bool,
    write_ok: bool,
    exec_ok: bool,
    device: bool,
}

const EMPTY: TlbEntry = TlbEntry {
    va_page: u64::MAX,
    el0: false,
    pa_page: 0,
    read_ok: false,
    write_ok: false,
    exec_ok: false,
    device: false,
};

impl Tlb {
    pub fn flush(&mut self) {
        self.entries.clear();
        self.data.fill(NO_DATA);
    }

    /// The data TLB's entries (allocated if they were not), for generated code
    /// (`jit_ldst.rs`): the address stays valid until the next `data_table` call after a
    /// reset of the whole `Tlb` (flushes keep the allocation).
    pub(super) fn data_table(&mut self) -> usize {
        if self.data.is_empty() {
            self.data = vec![NO_DATA; TLB_SIZE];
        }
        self.data.as_ptr() as usize
    }

    /// The data-TLB tag of `va` (see `DataEntry`).
    #[inline(always)]
    fn data_tag(va: u64, el0: bool) -> u64 {
        (va & !0xfff) | el0 as u64
    }

    /// The RAM page of a plain data access at `va` (a read, or a write if `write`), if the
    /// data TLB holds it.
    #[inline(always)]
    pub(super) fn data_lookup(&self, va: u64, el0: bool, write: bool) -> Option<DataPage> {
        let e = self.data.get(Self::slot(va))?;
        let tag = if write { e.write_tag } else { e.read_tag };
        (tag == Self::data_tag(va, el0)).then_some(e.page)
    }

    /// Records that plain `write` (or read) accesses at `va` from `el0` reach `page`.
    pub(super) fn data_insert(&mut self, va: u64, el0: bool, write: bool, page: DataPage) {
        if self.data.is_empty() {
            self.data = vec![NO_DATA; TLB_SIZE];
        }
        let tag = Self::data_tag(va, el0);
        let e = &mut self.data[Self::slot(va)];
        let same = e.page == page && (e.read_tag == tag || e.write_tag == tag);
        if !same {
            *e = NO_DATA;
            e.page = page;
        }
        if write {
            e.write_tag = tag;
        } else {
            e.read_tag = tag;
        }
    }

    #[inline(always)]
    fn slot(va: u64) -> usize {
        ((va >> 12) as usize) % TLB_SIZE
    }

    #[inline(always)]
    pub(super) fn lookup(&self, va: u64, el0: bool, access: Access) -> Option<(u64, bool)> {
        let e = self.entries.get(Self::slot(va))?;
        let allowed = match access {
            Access::Read => e.read_ok,
            Access::Write => e.write_ok,
            Access::Fetch => e.exec_ok,
        };
        (e.va_page == va & !0xfff && e.el0 == el0 && allowed)
            .then_some((e.pa_page | (va & 0xfff), e.device))
    }

    fn insert(&mut self, e: TlbEntry) {
        if self.entries.is_empty() {
            self.entries = vec![EMPTY; TLB_SIZE];
        }
        self.entries[Self::slot(e.va_page)] = e;
    }
}

impl PhysMem for Bus {
    fn read_u64(&self, pa: u64) -> Option<u64> {
        if self.kind(pa, 8) == super::bus::PhysKind::Ram {
            self.read(pa, 8)
        } else {
            None
        }
    }
}

/// MAIR attribute bytes with the high nibble 0 are Device memory (Arm ARM D19.2.97 "MAIR_EL1").
fn is_device(attr: u8) -> bool {
    attr >> 4 == 0
}

impl Cpu {
    /// Translates `va` for `access` at the current EL, or the abort the guest takes.
    #[inline]
    pub fn translate(&mut self, va: u64, access: Access) -> Result<u64, Stop> {
        self.translate_attr(va, access).map(|(pa, _)| pa)
    }

    /// Like [`Cpu::translate`], also saying whether the memory is Device memory (always, with
    /// stage 1 off: Arm ARM D8.2.10 "Behavior when stage 1 address translation is disabled").
    ///
    /// The flat map and TLB hits are inlined into every fetch and data access; the walk and
    /// the faults are out of line.
    #[inline(always)]
    pub fn translate_attr(&mut self, va: u64, access: Access) -> Result<(u64, bool), Stop> {
        if self.st.sys.sctlr & sctlr::M == 0 {
            if va >> PA_BITS != 0 {
                return Err(self.translation_abort(va, access, 0x00));
            }
            return Ok((va, access != Access::Fetch));
        }
        let el0 = self.st.el() == 0;
        if let Some(hit) = self.tlb.lookup(va, el0, access) {
            return Ok(hit);
        }
        self.translate_walk(va, access, el0)
    }

    /// A TLB miss: walks the tables, fills the TLB, or returns the fault.
    #[inline(never)]
    fn translate_walk(&mut self, va: u64, access: Access, el0: bool) -> Result<(u64, bool), Stop> {
        let sys = &self.st.sys;
        let regs = TranslationRegs {
            sctlr: sys.sctlr,
            tcr: sys.tcr,
            ttbr0: sys.ttbr0,
            ttbr1: sys.ttbr1,
            mair: sys.mair,
        };
        match walk::translate(&regs, va, access, el0, &self.bus) {
            Ok(t) => {
                let device = is_device(t.mem_attr);
                self.tlb.insert(TlbEntry {
                    va_page: va & !0xfff,
                    el0,
                    pa_page: t.pa & !0xfff,
                    read_ok: t.readable(el0),
                    write_ok: t.writable(el0),
                    exec_ok: t.executable(el0),
                    device,
                });
                Ok((t.pa, device))
            }
            Err(f) => Err(self.translation_abort(va, access, f.fsc())),
        }
    }

    /// The abort for a failed translation with fault status `fsc`.
    #[cold]
    #[inline(never)]
    pub fn translation_abort(&self, va: u64, access: Access, fsc: u8) -> Stop {
        Stop::Exception(match access {
            Access::Fetch => self.iabt(va, fsc),
            Access::Read => self.dabt(va, false, fsc),
            Access::Write => self.dabt(va, true, fsc),
        })
    }
}
