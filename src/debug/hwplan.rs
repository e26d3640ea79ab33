//! Hardware breakpoint and watchpoint slot planning.
//!
//! Owns turning user requests (a breakpoint address; a watch of any length and alignment)
//! into DBGBVR/DBGBCR and DBGWVR/DBGWCR values (Arm ARM D19.3), deciding which watch a
//! watchpoint exception belongs to, and filling [`GuestDebug`]. Pure; no backend calls.
//!
//! Watch splitting: every watch is covered EXACTLY (never over-watching), with the fewest
//! comparators. Bytes before the first and after the last 8-byte boundary each take one
//! byte-select slot (BAS over part of one aligned doubleword, MASK=0); the doubleword-aligned
//! middle is cut greedily into the largest naturally aligned power-of-two blocks that fit
//! (MASK = log2 size, 8 bytes to 2 GiB, BAS=0xff; an 8-byte block uses BAS=0xff, MASK=0).
//! The head and tail bytes can only be covered by byte-select slots without over-watching,
//! and a greedy cut into aligned power-of-two blocks is the minimum for an aligned range, so
//! the plan is minimal among exact covers. A hardware hit therefore always touches a byte
//! the user asked for; there is nothing to filter.

use crate::a64::debugregs::{
    self, Bcr, DebugRegError, Wcr, LSC_BOTH, LSC_LOAD, LSC_STORE, MASK_MAX, MASK_MIN, PRIV_EL0_EL1,
};
use crate::a64::esr;
use crate::backend::GuestDebug;

/// Number of comparator slots in [`GuestDebug`] (KVM: `KVM_ARM_MAX_DBG_REGS`, 16, the
/// architectural maximum of ID_AA64DFR0_EL1.BRPs/WRPs + 1).
pub const MAX_SLOTS: usize = 16;

/// Largest DC ZVA block: DCZID_EL0.BS is at most 9, i.e. 2^9 words = 2 KiB (Arm ARM D19.2
/// "DCZID_EL0"). A watchpoint FAR lies in the same naturally aligned block of at most this
/// size as a watched byte the access touched (D2.10.5 "Watchpoint exceptions", determining
/// the memory location that caused a watchpoint exception).
pub const MAX_ZVA_BLOCK: u64 = 2048;

/// Which accesses a watch stops on (gdb: `Z2` write, `Z3` read, `Z4` access).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WatchKind {
    Write,
    Read,
    Access,
}

impl WatchKind {
    /// DBGWCR.LSC for this kind.
    pub fn lsc(self) -> u8 {
        match self {
            WatchKind::Write => LSC_STORE,
            WatchKind::Read => LSC_LOAD,
            WatchKind::Access => LSC_BOTH,
        }
    }

    fn sees(self, write: Option<bool>) -> bool {
        match (self, write) {
            (WatchKind::Access, _) | (_, None) => true,
            (WatchKind::Write, Some(w)) => w,
            (WatchKind::Read, Some(w)) => !w,
        }
    }
}

/// One watch: `len` bytes from virtual address `addr`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Watch {
    pub addr: u64,
    pub len: u64,
    pub kind: WatchKind,
}

impl Watch {
    fn contains(&self, a: u64) -> bool {
        a.wrapping_sub(self.addr) < self.len
    }
}

/// One planned watchpoint comparator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WatchSlot {
    pub wvr: u64,
    pub wcr: u64,
    /// Index into the `watches` slice this slot serves.
    pub watch: usize,
}

/// One planned breakpoint comparator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BreakSlot {
    pub bvr: u64,
    pub bcr: u64,
    /// Index into the `addrs` slice (the first occurrence when an address repeats).
    pub addr: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("watchpoints need {needed} hardware slots, only {available} available")]
    OutOfWatchSlots { needed: usize, available: usize },
    #[error("breakpoints need {needed} hardware slots, only {available} available")]
    OutOfBreakSlots { needed: usize, available: usize },
    #[error("watch {index} at {addr:#x} has length 0")]
    EmptyWatch { index: usize, addr: u64 },
    #[error("watch {index} at {addr:#x} len {len:#x} leaves the virtual address space")]
    WatchOutOfRange { index: usize, addr: u64, len: u64 },
    #[error("breakpoint {index}: {source}")]
    BadBreakpoint {
        index: usize,
        #[source]
        source: DebugRegError,
    },
    #[error("{what}: {count} slots do not fit the {max} debug registers")]
    TooManySlots {
        what: &'static str,
        count: usize,
        max: usize,
    },
}

/// One comparator's worth of an exact cover.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Piece {
    base: u64,
    bas: u8,
    mask: u8,
}

/// The exact minimal cover of `[start, end)` (see the module docs). `end` may be 2^64.
fn cover(start: u64, end: u128) -> Vec<Piece> {
    let mut out = Vec::new();
    let mut p = start as u128;
    while p < end {
        if p % 8 != 0 || end - p < 8 {
            let dw = p & !7;
            let hi = end.min(dw + 8);
            let bits = ((1u16 << (hi - dw)) - (1u16 << (p - dw))) as u8;
            out.push(Piece {
                base: dw as u64,
                bas: bits,
                mask: 0,
            });
            p = hi;
        } else {
            let mut k = (p.trailing_zeros()).min(MASK_MAX as u32);
            while (1u128 << k) > end - p {
                k -= 1;
            }
            let mask = if k == MASK_MIN as u32 { 0 } else { k as u8 };
            out.push(Piece {
                base: p as u64,
                bas: 0xff,
                mask,
            });
            p += 1u128 << k;
        }
    }
    out
}

/// Checks a watch and returns its exclusive end.
fn watch_end(index: usize, w: &Watch) -> Result<u128, PlanError> {
    if w.len == 0 {
        return Err(PlanError::EmptyWatch {
            index,
            addr: w.addr,
        });
    }
    let end = w.addr as u128 + w.len as u128;
    let last = (end - 1) as u64;
    let same_half = (w.addr >> 63) == (last >> 63);
    if end > 1u128 << 64
        || !debugregs::is_canonical(w.addr)
        || !debugregs::is_canonical(last)
        || !same_half
    {
        return Err(PlanError::WatchOutOfRange {
            index,
            addr: w.addr,
            len: w.len,
        });
    }
    Ok(end)
}

/// Plans watchpoint comparators for all `watches` (EL0 and EL1, unlinked), in watch order.
/// Fails only on an invalid watch or when more than `slots` comparators are needed.
///
/// PAC is 0b11 (EL0 and EL1): a kernel writes user memory with unprivileged stores (STTR in
/// Linux's `copy_to_user`), which watchpoints match as EL0 accesses although the PE is at
/// EL1 (`debugregs::access_el`, Arm ARM D2.10 "Watchpoint exceptions"); PAC 0b01 would miss
/// them, 0b10 would miss the kernel's own stores. With both bits set a watch stops on every
/// write, whoever makes it and however, on hardware that checks the access's privilege (KVM)
/// as on one that checks the PE's (QEMU's TCG, the nested test machine's CPU).
pub fn plan_watchpoints(watches: &[Watch], slots: usize) -> Result<Vec<WatchSlot>, PlanError> {
    let mut out = Vec::new();
    for (index, w) in watches.iter().enumerate() {
        let end = watch_end(index, w)?;
        for piece in cover(w.addr, end) {
            let wcr = if piece.mask == 0 {
                Wcr::bytes(PRIV_EL0_EL1, w.kind.lsc(), piece.bas)
            } else {
                Wcr::masked(PRIV_EL0_EL1, w.kind.lsc(), piece.mask)
            };
            out.push(WatchSlot {
                wvr: piece.base,
                wcr: wcr.encode(),
                watch: index,
            });
        }
    }
    if out.len() > slots {
        return Err(PlanError::OutOfWatchSlots {
            needed: out.len(),
            available: slots,
        });
    }
    Ok(out)
}

/// Plans one A64 breakpoint comparator per distinct address (E | PMC=0b11 EL0+EL1 |
/// BAS=0b1111, i.e. DBGBCR = 0x1e7).
pub fn plan_breakpoints(addrs: &[u64], slots: usize) -> Result<Vec<BreakSlot>, PlanError> {
    let bcr = Bcr::a64(PRIV_EL0_EL1).encode();
    let mut out: Vec<BreakSlot> = Vec::new();
    for (index, &a) in addrs.iter().enumerate() {
        let bvr = debugregs::bvr(a).map_err(|source| PlanError::BadBreakpoint { index, source })?;
        if !out.iter().any(|s| s.bvr == bvr) {
            out.push(BreakSlot {
                bvr,
                bcr,
                addr: index,
            });
        }
    }
    if out.len() > slots {
        return Err(PlanError::OutOfBreakSlots {
            needed: out.len(),
            available: slots,
        });
    }
    Ok(out)
}

/// Which watch a watchpoint exception with this FAR belongs to (any access kind).
///
/// The architecture lets FAR be any address from the lowest byte the access touched up to
/// the highest watched byte it touched, inside a naturally aligned block no larger than the
/// DC ZVA block (D2.10.5). So FAR is never above the watched byte that fired, but may be below
/// the watch (an 8-byte store at 0x1000 hitting a watch on 0x1004 may report 0x1000..=0x1004).
/// Rules, in order:
/// 1. a watch whose WHOLE range `[addr, addr+len)` contains FAR (lowest index on overlap);
/// 2. otherwise the watch whose first byte at or above FAR is nearest, among watches with a
///    byte in `[FAR, FAR + hint)` (hint = bytes accessed, e.g. the DC ZVA block size for
///    DC ZVA) that also lies in FAR's naturally aligned [`MAX_ZVA_BLOCK`] block. Without a
///    hint only the block bounds the search.
///
/// FAR and watch addresses are compared on bits \[48:0\] (sign-extended), so a tagged FAR
/// (top byte ignored) still matches.
pub fn hit_watch(watches: &[Watch], far: u64, access_size_hint: Option<u64>) -> Option<usize> {
    hit_watch_filtered(watches, far, access_size_hint, None)
}

/// [`hit_watch`] for a watchpoint ESR: only watches whose kind sees the access direction
/// reported by ISS.WnR (bit 6, Arm ARM D19.2.37 "ISS encoding for an exception from a
/// Watchpoint exception") are candidates.
pub fn hit_watch_for_esr(
    watches: &[Watch],
    esr_value: u64,
    far: u64,
    access_size_hint: Option<u64>,
) -> Option<usize> {
    let write = esr::iss(esr_value) & esr::DABT_WNR != 0;
    hit_watch_filtered(watches, far, access_size_hint, Some(write))
}

fn hit_watch_filtered(
    watches: &[Watch],
    far: u64,
    hint: Option<u64>,
    write: Option<bool>,
) -> Option<usize> {
    let far = debugregs::sign_extend(far);
    let eligible = || {
        watches
            .iter()
            .enumerate()
            .filter(move |(_, w)| w.kind.sees(write))
    };
    if let Some((i, _)) = eligible().find(|(_, w)| w.contains(far)) {
        return Some(i);
    }
    let block_end = (far as u128 & !(MAX_ZVA_BLOCK as u128 - 1)) + MAX_ZVA_BLOCK as u128;
    let limit = match hint {
        Some(n) => block_end.min(far as u128 + n as u128),
        None => block_end,
    };
    eligible()
        .filter(|(_, w)| w.addr > far && (w.addr as u128) < limit)
        .min_by_key(|(i, w)| (w.addr, *i))
        .map(|(i, _)| i)
}

/// Loads planned slots into `dbg`: comparators in slot order, the rest zeroed, and
/// `dbg.hw` set when any slot is used. `enable`, `single_step` and `sw_breakpoints` are left
/// to the caller (KVM ignores `USE_HW` without `ENABLE`, KVM api.rst 4.86).
pub fn to_guest_debug(
    breaks: &[BreakSlot],
    watches: &[WatchSlot],
    dbg: &mut GuestDebug,
) -> Result<(), PlanError> {
    for (what, count) in [
        ("breakpoints", breaks.len()),
        ("watchpoints", watches.len()),
    ] {
        if count > MAX_SLOTS {
            return Err(PlanError::TooManySlots {
                what,
                count,
                max: MAX_SLOTS,
            });
        }
    }
    dbg.bcr = [0; MAX_SLOTS];
    dbg.bvr = [0; MAX_SLOTS];
    dbg.wcr = [0; MAX_SLOTS];
    dbg.wvr = [0; MAX_SLOTS];
    for (i, s) in breaks.iter().enumerate() {
        dbg.bcr[i] = s.bcr;
        dbg.bvr[i] = s.bvr;
    }
    for (i, s) in watches.iter().enumerate() {
        dbg.wcr[i] = s.wcr;
        dbg.wvr[i] = s.wvr;
    }
    dbg.hw = !breaks.is_empty() || !watches.is_empty();
    Ok(())
}

/// Disables every breakpoint comparator of `dbg` that matches `addr` (to execute the
/// instruction there once), keeping the others.
pub fn lift_breakpoint(dbg: &mut GuestDebug, addr: u64) {
    for i in 0..MAX_SLOTS {
        // DBGBCR<n>_EL1.E is bit 0 (Arm ARM D19.3 "DBGBCR<n>_EL1").
        if dbg.bcr[i] & 1 != 0 && dbg.bvr[i] == addr {
            dbg.bcr[i] = 0;
            dbg.bvr[i] = 0;
        }
    }
}

#[cfg(test)]
#[path = "hwplan_tests.rs"]
mod tests;
