//! Handlers for the decoded-instruction cache (`decode.rs`): general-register loads and
//! stores (single register with unsigned/unscaled offset, pre/post-index and register
//! offset; pairs); and the plain-access shortcut every data access tries first: the data
//! TLB (`mmu::Tlb`), filled on a miss by the full path (`Cpu::fill_data_tlb`).
//!
//! The reference semantics are `ldst.rs` (`ldst_single`, `ldst_pair`): the same base-register
//! check, the same data-access path (`Cpu::read_mem`/`write_mem`: alignment, translation,
//! watchpoints, MMIO syndromes), writeback after the access, and a loaded value winning over
//! writeback into the same register. The decoder only routes valid encodings here; the
//! unprivileged forms, PRFM and the SIMD&FP forms stay with the reference interpreter.

use super::ldst::{extend_loaded, load_syndrome, store_syndrome, Ext};
use super::mmu::{Access, PA_BITS};
use super::ram::DataPage;
use super::{Cpu, Stop};
use crate::a64::fields::sctlr;

/// Addressing modes (const generic parameter of `load`/`store`); `aux` is the decoded
/// offset for the first three.
pub const OFFSET: u8 = 0;
pub const PRE: u8 = 1;
pub const POST: u8 = 2;
pub const REGISTER: u8 = 3;

/// `aux` of the register-offset forms (option = bits 15:13, which the decoder only routes
/// here with bit 14 set: UXTW, LSL, SXTW, SXTX; S = bit 12): bits 5:0 the high bits the
/// extension drops (32 for the W forms, else 0), [`SIGNED`] for SXTW/SXTX, bits 17:16
/// the scale (the access size's log2 when S is set, else 0): Arm ARM C6.2 "LDR (register)",
/// `ExtendReg`.
pub fn reg_offset_aux(i: u32) -> u64 {
    let option = (i >> 13) & 7;
    let drop = if option & 1 == 0 { 32 } else { 0 };
    let signed = if option & 4 != 0 { SIGNED } else { 0 };
    let scale = if (i >> 12) & 1 == 1 {
        (i >> 30) as u64
    } else {
        0
    };
    drop | signed | scale << 16
}

/// The sign-extension flag of [`reg_offset_aux`].
const SIGNED: u64 = 1 << 8;

impl Cpu {
    /// The physical address of a data access that needs none of the checks of the full path
    /// (`Cpu::data_pa`): naturally aligned (so no alignment fault and no page crossing),
    /// no debug feature in use (`Cpu::debug_quiet`: so no watchpoint), and translated by the flat map or a TLB
    /// hit that permits it. None: the full path decides.
    #[inline(always)]
    fn plain_pa(&self, va: u64, size: usize, access: Access) -> Option<u64> {
        if va & (size as u64 - 1) != 0 || !self.debug_quiet() {
            return None;
        }
        if self.st.sys.sctlr & sctlr::M == 0 {
            return (va >> PA_BITS == 0).then_some(va);
        }
        self.tlb
            .lookup(va, self.st.el() == 0, access)
            .map(|(pa, _)| pa)
    }

    /// The RAM page of a plain (see `plain_pa`) access in the first RAM window, if the data
    /// TLB (`mmu::Tlb`) holds it. A call-free lookup: misses are filled by the full path
    /// (`Cpu::read_mem`, `Cpu::write_mem`) through `fill_data_tlb`.
    #[inline(always)]
    fn plain_page(&self, va: u64, size: usize, write: bool) -> Option<DataPage> {
        if va & (size as u64 - 1) != 0 || !self.debug_quiet() {
            return None;
        }
        self.tlb.data_lookup(va, self.st.el() == 0, write)
    }

    /// A data-TLB miss: the page of a plain access, recorded in the data TLB, if `plain_pa`
    /// finds it in RAM.
    #[cold]
    #[inline(never)]
    pub(super) fn fill_data_tlb(&mut self, va: u64, size: usize, write: bool) -> Option<DataPage> {
        let access = if write { Access::Write } else { Access::Read };
        let pa = self.plain_pa(va, size, access)?;
        let page = self.bus.data_page(pa & !0xfff)?;
        self.tlb.data_insert(va, self.st.el() == 0, write, page);
        Some(page)
    }

    /// A plain read of RAM through the data TLB; None: the full path decides
    /// (`Cpu::read_mem`).
    #[inline(always)]
    pub(super) fn read_ram_fast(&self, va: u64, size: usize) -> Option<u64> {
        let page = self.plain_page(va, size, false)?;
        self.bus.read_in(page, va, size)
    }

    /// A plain write of RAM through the data TLB; false: nothing was written, the full path
    /// decides.
    #[inline(always)]
    pub(super) fn write_ram_fast(&self, va: u64, size: usize, val: u64) -> bool {
        match self.plain_page(va, size, true) {
            Some(page) => self.bus.write_in(page, va, size, val).is_some(),
            None => false,
        }
    }

    /// The access address and the writeback value of a single-register load/store when the
    /// base needs no check (Rn is not SP, or SP is 16-byte aligned so the SCTLR_EL1.SA/SA0
    /// check cannot fire); None: the full path decides.
    #[inline(always)]
    fn plain_addr<const MODE: u8, const SIZE: u32>(&self, i: u32, aux: u64) -> Option<(u64, u64)> {
        let rn = (i >> 5) & 31;
        let base = if rn != 31 {
            self.st.x[rn as usize]
        } else {
            let sp = self.st.sp();
            if sp & 15 != 0 {
                return None;
            }
            sp
        };
        Some(self.mode_addr::<MODE, SIZE>(base, i, aux))
    }

    /// The access address and the writeback value of `MODE` from a usable `base`.
    #[inline(always)]
    fn mode_addr<const MODE: u8, const SIZE: u32>(
        &self,
        base: u64,
        i: u32,
        aux: u64,
    ) -> (u64, u64) {
        match MODE {
            OFFSET => (base.wrapping_add(aux), 0),
            PRE => (base.wrapping_add(aux), base.wrapping_add(aux)),
            POST => (base, base.wrapping_add(aux)),
            _ => {
                // `aux` from `reg_offset_aux`: the extension without a branch.
                let m = self.st.xr((i >> 16) & 31);
                let drop = (aux & 63) as u32;
                let top = m << drop;
                let e = if aux & SIGNED != 0 {
                    ((top as i64) >> drop) as u64
                } else {
                    top >> drop
                };
                (base.wrapping_add(e << (aux >> 16)), 0)
            }
        }
    }

    /// The access address and the writeback value, with the base register check.
    fn single_addr<const MODE: u8, const SIZE: u32>(
        &self,
        i: u32,
        aux: u64,
    ) -> Result<(u64, u64), Stop> {
        self.base((i >> 5) & 31)?;
        // The base is now known to be usable: the plain computation applies.
        let rn = (i >> 5) & 31;
        Ok(self.mode_addr::<MODE, SIZE>(self.st.xsp(rn), i, aux))
    }

    /// Base-register writeback of the pre- and post-index modes (a no-op for the others).
    #[inline(always)]
    fn writeback<const MODE: u8>(&mut self, i: u32, wb: u64) {
        if MODE == PRE || MODE == POST {
            self.st.set_xsp((i >> 5) & 31, wb);
        }
    }
}

/// STR/STRB/STRH/STUR* in `MODE` of 2^SIZE bytes (SIZE = bits 31:30). The plain case (see
/// `plain_addr`, `Cpu::write_ram_fast`) is handled here without calls; anything else takes
/// the full path.
pub fn store<const MODE: u8, const SIZE: u32>(c: &mut Cpu, i: u32, aux: u64) -> Result<(), Stop> {
    if let Some((addr, wb)) = c.plain_addr::<MODE, SIZE>(i, aux) {
        if c.write_ram_fast(addr, 1 << SIZE, c.st.xr(i & 31)) {
            c.writeback::<MODE>(i, wb);
            return Ok(());
        }
    }
    store_full::<MODE, SIZE>(c, i, aux)
}

/// The full store: base check, `Cpu::write_mem` with a valid syndrome without writeback.
#[inline(never)]
fn store_full<const MODE: u8, const SIZE: u32>(c: &mut Cpu, i: u32, aux: u64) -> Result<(), Stop> {
    let size = SIZE;
    let rt = i & 31;
    let (addr, wb) = c.single_addr::<MODE, SIZE>(i, aux)?;
    let syn = store_syndrome(rt, size);
    let isv = MODE == OFFSET || MODE == REGISTER;
    let val = c.st.xr(rt);
    c.write_mem(addr, 1 << size, val, isv.then_some(syn), false)?;
    c.writeback::<MODE>(i, wb);
    Ok(())
}

/// How a load extends its value (opc = bits 23:22); None for the encodings the decoder
/// never routes here.
#[inline(always)]
fn load_ext(size: u32, i: u32) -> Option<Ext> {
    match (size, (i >> 22) & 3) {
        (_, 1) => Some(Ext::Zero),
        (0..=2, 2) => Some(Ext::Sign64),
        (0 | 1, 3) => Some(Ext::Sign32),
        _ => None,
    }
}

/// LDR/LDRB/LDRH/LDRSB/LDRSH/LDRSW/LDUR* in `MODE` of 2^SIZE bytes (SIZE = bits 31:30); the
/// plain case here, anything else on the full path.
pub fn load<const MODE: u8, const SIZE: u32>(c: &mut Cpu, i: u32, aux: u64) -> Result<(), Stop> {
    if let (Some((addr, wb)), Some(ext)) = (c.plain_addr::<MODE, SIZE>(i, aux), load_ext(SIZE, i)) {
        if let Some(raw) = c.read_ram_fast(addr, 1 << SIZE) {
            c.writeback::<MODE>(i, wb);
            c.st.set_x(i & 31, extend_loaded(raw, SIZE, ext));
            return Ok(());
        }
    }
    load_full::<MODE, SIZE>(c, i, aux)
}

/// The full load: base check, `Cpu::read_mem` with a valid syndrome without writeback.
#[inline(never)]
fn load_full<const MODE: u8, const SIZE: u32>(c: &mut Cpu, i: u32, aux: u64) -> Result<(), Stop> {
    let size = SIZE;
    let rt = i & 31;
    let Some(ext) = load_ext(size, i) else {
        return c.exec(i);
    };
    let (addr, wb) = c.single_addr::<MODE, SIZE>(i, aux)?;
    let isv = MODE == OFFSET || MODE == REGISTER;
    let syn = load_syndrome(rt, size, ext);
    let raw = c.read_mem(addr, 1 << size, isv.then_some(syn), false)?;
    c.writeback::<MODE>(i, wb);
    c.st.set_x(rt, extend_loaded(raw, size, ext));
    Ok(())
}

/// LDR/STR/LDUR/STUR (immediate, SIMD&FP) of 2^SCALE bytes (B, H, S, D, Q) in `MODE`
/// (offset, pre- or post-index), `aux` the decoded offset: the plain case (SIMD&FP enabled,
/// base usable, naturally aligned, the page in the data TLB) here, a 16-byte access as its
/// two 8-byte halves in one page, as the reference (`Cpu::load_vec`, `Cpu::store_vec`) does;
/// anything else, before any state changed, on the reference interpreter.
pub fn vector<const LOAD: bool, const MODE: u8, const SCALE: u32>(
    c: &mut Cpu,
    i: u32,
    aux: u64,
) -> Result<(), Stop> {
    if c.vector_plain::<LOAD, MODE, SCALE>(i, aux) {
        return Ok(());
    }
    c.exec(i)
}

impl Cpu {
    /// The plain case of [`vector`]; false: nothing changed.
    #[inline(always)]
    fn vector_plain<const LOAD: bool, const MODE: u8, const SCALE: u32>(
        &mut self,
        i: u32,
        aux: u64,
    ) -> bool {
        let Some((addr, wb)) = self.plain_addr::<MODE, SCALE>(i, aux) else {
            return false;
        };
        if addr & ((1 << SCALE) - 1) != 0 || self.fp_check().is_err() {
            return false;
        }
        let size = 1usize << SCALE.min(3);
        let Some(page) = self.plain_page(addr, size, !LOAD) else {
            return false;
        };
        let rt = (i & 31) as usize;
        if LOAD {
            let lo = self.bus.read_in(page, addr, size);
            let hi = if SCALE == 4 {
                self.bus.read_in(page, addr.wrapping_add(8), 8)
            } else {
                Some(0)
            };
            let (Some(lo), Some(hi)) = (lo, hi) else {
                return false;
            };
            self.writeback::<MODE>(i, wb);
            self.st.v[rt] = (hi as u128) << 64 | lo as u128;
        } else {
            let v = self.st.v[rt];
            if self.bus.write_in(page, addr, size, v as u64).is_none() {
                return false;
            }
            if SCALE == 4 {
                // The same page (16-byte aligned): cannot fail after the first half.
                let _ = self
                    .bus
                    .write_in(page, addr.wrapping_add(8), 8, (v >> 64) as u64);
            }
            self.writeback::<MODE>(i, wb);
        }
        true
    }
}

/// LDP/STP/LDNP/STNP/LDPSW (general registers).
pub fn pair(c: &mut Cpu, i: u32, _: u64) -> Result<(), Stop> {
    c.ldst_pair(i, false)
}

#[cfg(test)]
#[path = "fast_mem_tests.rs"]
mod tests;
