//! Handlers for the decoded-instruction cache (`decode.rs`): general-register loads and
//! stores (single register with unsigned/unscaled offset, pre/post-index and register
//! offset; pairs).
//!
//! The reference semantics are `ldst.rs` (`ldst_single`, `ldst_pair`): the same base-register
//! check, the same data-access path (`Cpu::read_mem`/`write_mem`: alignment, translation,
//! watchpoints, MMIO syndromes), writeback after the access, and a loaded value winning over
//! writeback into the same register. The decoder only routes valid encodings here; the
//! unprivileged forms, PRFM and the SIMD&FP forms stay with the reference interpreter.

use crate::a64::esr::DabtSyndrome;

use super::alu::extend;
use super::ldst::{extend_loaded, load_syndrome, Ext};
use super::mmu::{Access, PA_BITS};
use super::state::SCTLR_M;
use super::{Cpu, Stop};

/// Addressing modes (const generic parameter of `load`/`store`); `aux` is the decoded
/// offset for the first three.
pub const OFFSET: u8 = 0;
pub const PRE: u8 = 1;
pub const POST: u8 = 2;
pub const REGISTER: u8 = 3;

impl Cpu {
    /// The physical address of a data access that needs none of the checks of the full path
    /// (`Cpu::data_pa`): naturally aligned (so no alignment fault and no page crossing),
    /// hardware debug not in use (so no watchpoint), and translated by the flat map or a TLB
    /// hit that permits it. None: the full path decides.
    #[inline(always)]
    fn plain_pa(&self, va: u64, size: usize, access: Access) -> Option<u64> {
        if va & (size as u64 - 1) != 0 || self.dbg.hw() {
            return None;
        }
        if self.st.sys.sctlr & SCTLR_M == 0 {
            return (va >> PA_BITS == 0).then_some(va);
        }
        self.tlb
            .lookup(va, self.st.el() == 0, access)
            .map(|(pa, _)| pa)
    }

    /// A plain (see `plain_pa`) read of RAM; None: the full path decides (`Cpu::read_mem`).
    #[inline(always)]
    pub(super) fn read_ram_fast(&self, va: u64, size: usize) -> Option<u64> {
        self.bus.read(self.plain_pa(va, size, Access::Read)?, size)
    }

    /// A plain write of RAM; false: nothing was written, the full path decides.
    #[inline(always)]
    pub(super) fn write_ram_fast(&self, va: u64, size: usize, val: u64) -> bool {
        match self.plain_pa(va, size, Access::Write) {
            Some(pa) => self.bus.write(pa, size, val).is_some(),
            None => false,
        }
    }

    /// The access address and the writeback value of a single-register load/store.
    #[inline(always)]
    fn single_addr<const MODE: u8, const SIZE: u32>(
        &self,
        i: u32,
        aux: u64,
    ) -> Result<(u64, u64), Stop> {
        let base = self.base((i >> 5) & 31)?;
        Ok(match MODE {
            OFFSET => (base.wrapping_add(aux), 0),
            PRE => (base.wrapping_add(aux), base.wrapping_add(aux)),
            POST => (base, base.wrapping_add(aux)),
            _ => {
                let sh = if (i >> 12) & 1 == 1 { SIZE } else { 0 };
                let m = self.st.xr((i >> 16) & 31);
                (base.wrapping_add(extend(m, (i >> 13) & 7, sh)), 0)
            }
        })
    }
}

/// STR/STRB/STRH/STUR* in `MODE` of 2^SIZE bytes (SIZE = bits 31:30); a valid syndrome
/// without writeback.
pub fn store<const MODE: u8, const SIZE: u32>(c: &mut Cpu, i: u32, aux: u64) -> Result<(), Stop> {
    let size = SIZE;
    let rt = i & 31;
    let (addr, wb) = c.single_addr::<MODE, SIZE>(i, aux)?;
    let syn = DabtSyndrome {
        size_log2: size as u8,
        sign_extend: false,
        rt: rt as u8,
        sixty_four: size == 3,
        acq_rel: false,
        write: true,
    };
    let isv = MODE == OFFSET || MODE == REGISTER;
    let val = c.st.xr(rt);
    c.write_mem(addr, 1 << size, val, isv.then_some(syn), false)?;
    if MODE == PRE || MODE == POST {
        c.st.set_xsp((i >> 5) & 31, wb);
    }
    Ok(())
}

/// LDR/LDRB/LDRH/LDRSB/LDRSH/LDRSW/LDUR* in `MODE` of 2^SIZE bytes (SIZE = bits 31:30).
pub fn load<const MODE: u8, const SIZE: u32>(c: &mut Cpu, i: u32, aux: u64) -> Result<(), Stop> {
    let size = SIZE;
    let rt = i & 31;
    let ext = match (size, (i >> 22) & 3) {
        (_, 1) => Ext::Zero,
        (0..=2, 2) => Ext::Sign64,
        (0 | 1, 3) => Ext::Sign32,
        _ => return c.exec(i), // not routed here by the decoder
    };
    let (addr, wb) = c.single_addr::<MODE, SIZE>(i, aux)?;
    let isv = MODE == OFFSET || MODE == REGISTER;
    let syn = load_syndrome(rt, size, ext);
    let raw = c.read_mem(addr, 1 << size, isv.then_some(syn), false)?;
    if MODE == PRE || MODE == POST {
        c.st.set_xsp((i >> 5) & 31, wb);
    }
    c.st.set_x(rt, extend_loaded(raw, size, ext));
    Ok(())
}

/// LDP/STP/LDNP/STNP/LDPSW (general registers).
pub fn pair(c: &mut Cpu, i: u32, _: u64) -> Result<(), Stop> {
    c.ldst_pair(i, false)
}
