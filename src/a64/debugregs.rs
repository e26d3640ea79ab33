//! Hardware breakpoint and watchpoint registers: `DBGBCR<n>_EL1` / `DBGBVR<n>_EL1` and
//! `DBGWCR<n>_EL1` / `DBGWVR<n>_EL1` (Arm ARM DDI 0487, D19.3 register pages; matching rules in
//! D2.9 "Breakpoint exceptions" and D2.10 "Watchpoint exceptions").
//!
//! Owns the field encoders/decoders, the value-register rules and the one matcher the
//! software model calls to decide whether an instruction address or a data access hits a
//! programmed comparator. Pure functions; must not depend on any other kvmdbg module.
//!
//! Scope of the matcher (documented choices):
//! - Addresses are the ARMv8.0 49-bit layout: DBGBVR/DBGWVR hold VA\[48:2\] and bits \[63:49\]
//!   are RESS, a sign extension of bit 48 (D19.3 "`DBGBVR<n>_EL1`", "`DBGWVR<n>_EL1`"). FEAT_LVA
//!   (VA\[52:49\]) is not modelled: comparisons use bits \[48:0\] only.
//! - Privilege: a non-secure guest at EL0/EL1 without EL2 in the guest view. PMC/PAC bit 0
//!   enables EL1, bit 1 enables EL0, for the HMC/SSC combinations that include non-secure
//!   EL0/EL1 (D2.8 "Breakpoint and watchpoint ... security state and exception level", table
//!   of HMC, SSC, PxC encodings): HMC in {0,1} with SSC in {0b00, 0b01}. SSC=0b10 (secure
//!   only) and SSC=0b11 never match a non-secure guest.
//! - Only unlinked address comparisons are modelled: BT=0b0000 and WT=0. Linked and context
//!   types never match here (they need a linked context breakpoint).
//! - CONSTRAINED UNPREDICTABLE programming (reserved MASK 1..2, MASK with BAS != 0xff, A64
//!   breakpoint BAS other than 0b1111) is treated as "no match", one of the permitted
//!   behaviours.

/// Highest VA bit held by the value registers; bits above are its sign extension.
pub const VA_TOP_BIT: u32 = 48;
/// Bits \[48:0\]: the part of an address the comparators look at.
pub const VA_MASK: u64 = (1 << (VA_TOP_BIT + 1)) - 1;

/// PMC/PAC: match at EL1 (bit 0) and at EL0 (bit 1) (D19.3 "`DBGBCR<n>_EL1`" field PMC).
pub const PRIV_EL1: u8 = 0b01;
pub const PRIV_EL0: u8 = 0b10;
pub const PRIV_EL0_EL1: u8 = 0b11;

/// DBGWCR.LSC: 0b01 loads, 0b10 stores, 0b11 both (D19.3 "`DBGWCR<n>_EL1`" field LSC).
pub const LSC_LOAD: u8 = 0b01;
pub const LSC_STORE: u8 = 0b10;
pub const LSC_BOTH: u8 = 0b11;

/// BAS for an A64 instruction breakpoint: all four bytes (D19.3 "`DBGBCR<n>_EL1`" field BAS:
/// "for A64 instructions ... 0b1111").
pub const BAS_A64: u8 = 0b1111;
/// Smallest and largest usable DBGWCR.MASK: 2^3 = 8 bytes to 2^31 bytes; 0b00001 and 0b00010
/// are reserved (D19.3 "`DBGWCR<n>_EL1`" field MASK).
pub const MASK_MIN: u8 = 3;
pub const MASK_MAX: u8 = 31;

/// Why a value cannot be programmed into a debug register.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DebugRegError {
    #[error("address {addr:#x} is not a sign-extended 49-bit virtual address")]
    NonCanonical { addr: u64 },
    #[error("breakpoint address {addr:#x} is not 4-byte aligned (DBGBVR bits [1:0] are RES0)")]
    BvrMisaligned { addr: u64 },
    #[error("watchpoint address {addr:#x} is not doubleword aligned (we keep DBGWVR[2:0] zero)")]
    WvrMisaligned { addr: u64 },
}

/// True when bits \[63:49\] of `addr` equal bit 48.
pub fn is_canonical(addr: u64) -> bool {
    sign_extend(addr) == addr
}

/// Sign-extends bit 48 into bits \[63:49\] (the RESS rule of the value registers).
pub fn sign_extend(addr: u64) -> u64 {
    let shift = 63 - VA_TOP_BIT;
    (((addr << shift) as i64) >> shift) as u64
}

/// The `DBGBVR<n>_EL1` value for an A64 instruction at `addr`.
pub fn bvr(addr: u64) -> Result<u64, DebugRegError> {
    if !is_canonical(addr) {
        return Err(DebugRegError::NonCanonical { addr });
    }
    if addr & 3 != 0 {
        return Err(DebugRegError::BvrMisaligned { addr });
    }
    Ok(addr)
}

/// The `DBGWVR<n>_EL1` value for a doubleword-aligned base. The architecture only makes bits
/// \[1:0\] RES0 and deprecates bit 2 = 1 (D19.3 "`DBGWVR<n>_EL1`"); we never program bit 2.
pub fn wvr(addr: u64) -> Result<u64, DebugRegError> {
    if !is_canonical(addr) {
        return Err(DebugRegError::NonCanonical { addr });
    }
    if addr & 7 != 0 {
        return Err(DebugRegError::WvrMisaligned { addr });
    }
    Ok(addr)
}

fn field(v: u64, lo: u32, width: u32) -> u8 {
    ((v >> lo) & ((1 << width) - 1)) as u8
}

fn put(v: u8, lo: u32, width: u32) -> u64 {
    (v as u64 & ((1 << width) - 1)) << lo
}

/// `DBGBCR<n>_EL1` fields (D19.3): E \[0\], PMC \[2:1\], BAS \[8:5\], HMC \[13\], SSC \[15:14\],
/// LBN \[19:16\], BT \[23:20\].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Bcr {
    pub enable: bool,
    pub pmc: u8,
    pub bas: u8,
    pub hmc: bool,
    pub ssc: u8,
    pub lbn: u8,
    pub bt: u8,
}

impl Bcr {
    /// The bits this module defines; others are RES0 or later extensions.
    pub const DEFINED: u64 = 0x00ff_e1e7;

    /// An enabled unlinked A64 address breakpoint at the given privileges.
    pub fn a64(pmc: u8) -> Self {
        Bcr {
            enable: true,
            pmc,
            bas: BAS_A64,
            ..Bcr::default()
        }
    }

    pub fn encode(&self) -> u64 {
        self.enable as u64
            | put(self.pmc, 1, 2)
            | put(self.bas, 5, 4)
            | put(self.hmc as u8, 13, 1)
            | put(self.ssc, 14, 2)
            | put(self.lbn, 16, 4)
            | put(self.bt, 20, 4)
    }

    pub fn decode(v: u64) -> Self {
        Bcr {
            enable: v & 1 != 0,
            pmc: field(v, 1, 2),
            bas: field(v, 5, 4),
            hmc: field(v, 13, 1) != 0,
            ssc: field(v, 14, 2),
            lbn: field(v, 16, 4),
            bt: field(v, 20, 4),
        }
    }
}

/// `DBGWCR<n>_EL1` fields (D19.3): E \[0\], PAC \[2:1\], LSC \[4:3\], BAS \[12:5\], HMC \[13\],
/// SSC \[15:14\], LBN \[19:16\], WT \[20\], MASK \[28:24\].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Wcr {
    pub enable: bool,
    pub pac: u8,
    pub lsc: u8,
    pub bas: u8,
    pub hmc: bool,
    pub ssc: u8,
    pub lbn: u8,
    pub wt: bool,
    pub mask: u8,
}

impl Wcr {
    /// The bits this module defines; others are RES0 or later extensions.
    pub const DEFINED: u64 = 0x1f1f_ffff;

    /// An enabled unlinked watchpoint over the BAS-selected bytes of one doubleword.
    pub fn bytes(pac: u8, lsc: u8, bas: u8) -> Self {
        Wcr {
            enable: true,
            pac,
            lsc,
            bas,
            ..Wcr::default()
        }
    }

    /// An enabled unlinked watchpoint over a naturally aligned 2^mask-byte range.
    pub fn masked(pac: u8, lsc: u8, mask: u8) -> Self {
        Wcr {
            mask,
            ..Wcr::bytes(pac, lsc, 0xff)
        }
    }

    pub fn encode(&self) -> u64 {
        self.enable as u64
            | put(self.pac, 1, 2)
            | put(self.lsc, 3, 2)
            | put(self.bas, 5, 8)
            | put(self.hmc as u8, 13, 1)
            | put(self.ssc, 14, 2)
            | put(self.lbn, 16, 4)
            | put(self.wt as u8, 20, 1)
            | put(self.mask, 24, 5)
    }

    pub fn decode(v: u64) -> Self {
        Wcr {
            enable: v & 1 != 0,
            pac: field(v, 1, 2),
            lsc: field(v, 3, 2),
            bas: field(v, 5, 8),
            hmc: field(v, 13, 1) != 0,
            ssc: field(v, 14, 2),
            lbn: field(v, 16, 4),
            wt: field(v, 20, 1) != 0,
            mask: field(v, 24, 5),
        }
    }
}

/// Whether a comparator with these HMC/SSC/PxC fields is active for a non-secure guest at
/// `el` (0 or 1). See the module docs for the combinations covered.
pub fn active_at(hmc: bool, ssc: u8, pxc: u8, el: u8) -> bool {
    let _ = hmc; // both HMC values include non-secure EL0/EL1 for SSC 0b00/0b01
    if ssc > 0b01 {
        return false;
    }
    match el {
        0 => pxc & PRIV_EL0 != 0,
        1 => pxc & PRIV_EL1 != 0,
        _ => false,
    }
}

/// True when an A64 instruction at `pc`, executed at `el`, hits breakpoint (bcr, bvr):
/// enabled, unlinked address type, active at `el`, BAS = 0b1111, and PC\[48:2\] = BVR\[48:2\]
/// (D2.9 "Breakpoint exceptions", instruction address comparisons).
pub fn bp_matches(bcr: u64, bvr: u64, pc: u64, el: u8) -> bool {
    let c = Bcr::decode(bcr);
    c.enable
        && c.bt == 0
        && c.bas == BAS_A64
        && active_at(c.hmc, c.ssc, c.pmc, el)
        && (pc ^ bvr) & VA_MASK & !3 == 0
}

/// The kind of a data access for watchpoint purposes (D2.10 "Watchpoint exceptions": an
/// atomic read-modify-write is both a load and a store; DC ZVA is a store).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AccessKind {
    Load,
    Store,
    LoadStore,
}

impl AccessKind {
    /// The DBGWCR.LSC bits this kind of access can hit.
    pub fn lsc_bits(self) -> u8 {
        match self {
            AccessKind::Load => LSC_LOAD,
            AccessKind::Store => LSC_STORE,
            AccessKind::LoadStore => LSC_BOTH,
        }
    }
}

/// One data access as the model performs it: `size` bytes from virtual address `addr`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DataAccess {
    pub addr: u64,
    pub size: u64,
    pub kind: AccessKind,
    /// The privilege the access is checked at ([`access_el`]: an unprivileged LDTR/STTR at EL1
    /// counts as 0).
    pub el: u8,
}

/// The Exception level a data access is checked at for watchpoint matching, for an access
/// made at `el` by an unprivileged instruction (`unprivileged`: LDTR/STTR and their byte,
/// halfword and signed forms) or not, with PSTATE.UAO = `uao`.
///
/// Arm ARM DDI 0487, C6.2 "LDTR"/"STTR": executed at EL1 (without FEAT_NV's
/// HCR_EL2.{NV, NV1} = {1, 1}, which a guest without EL2 never has) the access is made as if
/// at EL0, unless PSTATE.UAO is 1 (FEAT_UAO), when it is an ordinary EL1 access; at EL0 it is
/// an EL0 access anyway. D2.10 "Watchpoint exceptions" checks an access's privilege, not the
/// PE's: in the pseudocode `AArch64.CheckWatchpoint` passes `ispriv = FALSE` for an
/// unprivileged access type and `AArch64.StateMatch` then uses only the EL0 bit of PAC
/// (bit 1). So a watchpoint with PAC = 0b01 (EL1 only) misses a `copy_to_user` store, PAC =
/// 0b10 (EL0 only) catches it although the PE is at EL1, and 0b11 catches it either way.
pub fn access_el(el: u8, unprivileged: bool, uao: bool) -> u8 {
    if unprivileged && el == 1 && !uao {
        0
    } else {
        el
    }
}

/// The bytes a watchpoint watches, in the comparator's 49-bit address space.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WatchedBytes {
    /// Bit i of `bas` watches byte `base + i` (`base` 4- or 8-byte aligned).
    Select { base: u64, bas: u8 },
    /// All of the naturally aligned `[base, base + len)`.
    Range { base: u64, len: u64 },
}

impl WatchedBytes {
    /// The lowest watched byte at or above `from`, if any, within `[from, from + size)`.
    pub fn first_in(&self, from: u64, size: u64) -> Option<u64> {
        let end = from.saturating_add(size);
        match *self {
            WatchedBytes::Select { base, bas } => (0..8u64)
                .filter(|i| bas & (1 << i) != 0)
                .map(|i| base + i)
                .find(|b| *b >= from && *b < end),
            WatchedBytes::Range { base, len } => {
                let lo = from.max(base);
                (lo < end && lo < base + len).then_some(lo)
            }
        }
    }
}

/// Decodes which bytes an enabled (wcr, wvr) pair watches, or `None` when it cannot match
/// anything (disabled, LSC=0, linked, or CONSTRAINED UNPREDICTABLE programming).
///
/// MASK=0: BAS selects bytes of the doubleword at WVR\[48:3\]; with the deprecated WVR\[2\]=1
/// only BAS\[3:0\] is used, for the word at WVR\[48:2\] (D2.10 "Programming dependencies of the
/// BAS and MASK fields"). MASK in 3..=31 with BAS=0xff: the naturally aligned 2^MASK bytes
/// containing WVR (low WVR bits ignored).
pub fn watched_bytes(wcr: u64, wvr: u64) -> Option<WatchedBytes> {
    let c = Wcr::decode(wcr);
    if !c.enable || c.lsc == 0 || c.wt {
        return None;
    }
    let v = wvr & VA_MASK;
    match c.mask {
        0 if c.bas == 0 => None,
        0 if v & 4 != 0 => Some(WatchedBytes::Select {
            base: v & !3,
            bas: c.bas & 0xf,
        }),
        0 => Some(WatchedBytes::Select {
            base: v & !7,
            bas: c.bas,
        }),
        m if (MASK_MIN..=MASK_MAX).contains(&m) && c.bas == 0xff => {
            let len = 1u64 << m;
            Some(WatchedBytes::Range {
                base: v & !(len - 1),
                len,
            })
        }
        _ => None,
    }
}

/// The FAR a watchpoint exception for `access` reports when (wcr, wvr) hits it: the lowest
/// watched byte the access touches (sign-extended), which the architecture permits (FAR lies
/// between the lowest accessed address and the highest watched address accessed, D2.10.5)
/// and which is what KVM was seen to report for an access starting at the watched address.
pub fn wp_hit_far(wcr: u64, wvr: u64, access: &DataAccess) -> Option<u64> {
    let c = Wcr::decode(wcr);
    if !active_at(c.hmc, c.ssc, c.pac, access.el) || c.lsc & access.kind.lsc_bits() == 0 {
        return None;
    }
    let low = access.addr & VA_MASK;
    let w = watched_bytes(wcr, wvr)?.first_in(low, access.size)?;
    Some(sign_extend(w))
}

/// True when `access` hits watchpoint (wcr, wvr): the comparator is active at the access's
/// privilege, LSC covers its kind, and at least one accessed byte is watched (D2.10: an
/// access matches if any byte it accesses matches).
pub fn wp_matches(wcr: u64, wvr: u64, access: &DataAccess) -> bool {
    wp_hit_far(wcr, wvr, access).is_some()
}

/// The lowest-numbered breakpoint among the `bcrs`/`bvrs` pairs that `pc` at `el` hits.
pub fn first_bp_hit(bcrs: &[u64], bvrs: &[u64], pc: u64, el: u8) -> Option<usize> {
    bcrs.iter()
        .zip(bvrs)
        .position(|(&c, &v)| bp_matches(c, v, pc, el))
}

/// The lowest-numbered watchpoint among the `wcrs`/`wvrs` pairs that `access` hits, with the
/// FAR to report (see [`wp_hit_far`]).
pub fn first_wp_hit(wcrs: &[u64], wvrs: &[u64], access: &DataAccess) -> Option<(usize, u64)> {
    wcrs.iter()
        .zip(wvrs)
        .enumerate()
        .find_map(|(n, (&c, &v))| wp_hit_far(c, v, access).map(|far| (n, far)))
}

#[cfg(test)]
#[path = "debugregs_tests.rs"]
mod tests;
