//! The one stage-1 translation walker of the EL1&0 regime (Arm ARM D8 "The AArch64 Virtual
//! Memory System Architecture"), shared by the model CPU and by the debugger's
//! virtual-to-physical translation.
//!
//! Owns: TTBR0/TTBR1 selection, TxSZ/granule/starting-level arithmetic, descriptor decoding,
//! hierarchical table attributes, output-address-size checks, the access-flag check and the
//! stage-1 permission model, plus the DFSC/IFSC encoding of the resulting faults.
//! Pure: no I/O, no `unsafe`, no allocation; memory is reached only through [`PhysMem`].
//! Must not depend on any other kvmdbg module.
//!
//! Scope and choices (each documented where it is applied):
//! - VMSAv8-64 without FEAT_LPA/FEAT_LPA2/FEAT_LVA/FEAT_TTST: VA and PA at most 48 bits,
//!   TxSZ must lie in 16..=39 (out of range -> level-0 Translation fault, the choice QEMU makes),
//!   IPS values above 48 bits are treated as 48 bits, level -1 walks and the level -1 fault
//!   codes (0x29/0x2B/0x13) are out of scope.
//! - Hardware AF/DBM update (TCR.HA/HD) is not implemented: AF=0 gives an Access flag fault.
//! - PSTATE.PAN is ignored (the caller knows PSTATE; the walker reports `ur`/`uw`).
//! - The contiguous bit is reported but does not change the translation.
//! - Descriptors are little-endian (SCTLR_EL1.EE = 0).
//! - A descriptor read that [`PhysMem`] cannot satisfy (outside RAM) gives a synchronous
//!   external abort on the walk at that level (FSC 0b0101LL), as QEMU does.
//! - A walk reads at most 4 descriptors: the level rises by one per table descriptor and a
//!   level-3 descriptor is never a table, so self-referencing tables terminate.

/// Physical memory as seen by the walker. `None` means "no memory there".
pub trait PhysMem {
    /// Reads the little-endian 64-bit value at physical address `pa`.
    fn read_u64(&self, pa: u64) -> Option<u64>;
}

/// The system registers that control stage-1 translation of the EL1&0 regime.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TranslationRegs {
    pub sctlr: u64,
    pub tcr: u64,
    pub ttbr0: u64,
    pub ttbr1: u64,
    pub mair: u64,
}

/// The kind of access being translated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    Read,
    Write,
    Fetch,
}

/// Translation granule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Granule {
    K4,
    K16,
    K64,
}

impl Granule {
    /// log2 of the granule size in bytes.
    pub fn bits(self) -> u32 {
        match self {
            Granule::K4 => 12,
            Granule::K16 => 14,
            Granule::K64 => 16,
        }
    }

    /// TCR_EL1.TG0 (bits 15:14): 00 4K, 01 64K, 10 16K; 11 is reserved and treated as 4K
    /// (Arm ARM D19.2.139 "TCR_EL1"; IMPLEMENTATION DEFINED choice, QEMU picks 4K too).
    pub fn from_tg0(tg0: u64) -> Self {
        match tg0 & 3 {
            0b01 => Granule::K64,
            0b10 => Granule::K16,
            _ => Granule::K4,
        }
    }

    /// TCR_EL1.TG1 (bits 31:30) encodes differently: 01 16K, 10 4K, 11 64K; 00 is reserved
    /// and treated as 4K (Arm ARM D19.2.139 "TCR_EL1").
    pub fn from_tg1(tg1: u64) -> Self {
        match tg1 & 3 {
            0b01 => Granule::K16,
            0b11 => Granule::K64,
            _ => Granule::K4,
        }
    }

    /// Whether a block descriptor is allowed at `level` (Arm ARM D8.3 "Translation table
    /// descriptor formats", without FEAT_LPA/LPA2): 4K at levels 1-2, 16K and 64K at level 2.
    pub fn block_allowed(self, level: i8) -> bool {
        match self {
            Granule::K4 => level == 1 || level == 2,
            Granule::K16 | Granule::K64 => level == 2,
        }
    }
}

/// Fault classes the walker can report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultKind {
    AddressSize,
    Translation,
    AccessFlag,
    Permission,
    /// A descriptor read hit no memory: synchronous external abort on translation table walk.
    ExternalAbortOnWalk,
}

/// A stage-1 fault and the lookup level it was detected at (0..=3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fault {
    pub kind: FaultKind,
    pub level: i8,
}

impl Fault {
    /// DFSC/IFSC value (Arm ARM D19.2.37 "ESR_EL1", ISS encoding for an exception from a
    /// Data/Instruction Abort): 0b0000LL address size, 0b0001LL translation, 0b0010LL access
    /// flag, 0b0011LL permission, 0b0101LL synchronous external abort on a walk.
    pub fn fsc(&self) -> u8 {
        let base = match self.kind {
            FaultKind::AddressSize => 0b00_0000,
            FaultKind::Translation => 0b00_0100,
            FaultKind::AccessFlag => 0b00_1000,
            FaultKind::Permission => 0b00_1100,
            FaultKind::ExternalAbortOnWalk => 0b01_0100,
        };
        base | (self.level.clamp(0, 3) as u8)
    }
}

impl std::fmt::Display for Fault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?} fault at level {}", self.kind, self.level)
    }
}

/// A successful translation: the output address and the effective attributes of the leaf.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Translation {
    /// Physical address of `va` itself (not the block base).
    pub pa: u64,
    /// log2 of the block/page size: every VA in the same aligned block translates the same way.
    pub size_log2: u8,
    /// Lookup level of the leaf descriptor (0 with the MMU off).
    pub level: i8,
    /// The leaf descriptor, 0 with the MMU off.
    pub descriptor: u64,
    /// False when SCTLR_EL1.M = 0 (flat mapping with the architected default attributes).
    pub mmu_enabled: bool,
    /// AttrIndx\[2:0\] (descriptor bits 4:2).
    pub attr_index: u8,
    /// The MAIR_EL1 byte selected by `attr_index` (or the MMU-off default).
    pub mem_attr: u8,
    /// Effective AP\[2:1\] after APTable (descriptor bits 7:6; hierarchical unless TCR.HPDx).
    /// With the MMU off it reads 0b01 and every access is permitted at every EL.
    pub ap: u8,
    /// Effective PXN (descriptor bit 53 or any PXNTable on the way).
    pub pxn: bool,
    /// Effective UXN (descriptor bit 54 or any UXNTable on the way).
    pub uxn: bool,
    /// SCTLR_EL1.WXN at translation time.
    pub wxn: bool,
    /// Access flag (descriptor bit 10); always true in a returned translation.
    pub af: bool,
    /// Shareability SH\[1:0\] (descriptor bits 9:8).
    pub sh: u8,
    /// not-Global (descriptor bit 11).
    pub ng: bool,
    /// NS (descriptor bit 5).
    pub ns: bool,
    /// Contiguous hint (descriptor bit 52); reported only.
    pub contiguous: bool,
}

// SCTLR_EL1 bits (Arm ARM D19.2.118 "SCTLR_EL1"), from their one home.
use super::fields::sctlr::{I as SCTLR_I, M as SCTLR_M, WXN as SCTLR_WXN};

/// PA size implemented by this walker (no FEAT_LPA): 48 bits.
pub const PA_MAX_BITS: u32 = 48;
/// Mask of descriptor/TTBR address bits 47:0.
const ADDR_MASK_48: u64 = (1 << 48) - 1;

impl Translation {
    /// EL0 (unprivileged) read permission: AP\[1\].
    pub fn ur(&self) -> bool {
        self.ap & 1 != 0
    }
    /// EL0 write permission: AP\[2:1\] == 01.
    pub fn uw(&self) -> bool {
        self.ap == 0b01
    }
    /// EL1 write permission: AP\[2\] == 0.
    pub fn pw(&self) -> bool {
        self.ap & 0b10 == 0
    }
    /// Readable at EL0 (`el0`) or EL1. EL1 can always read (PAN ignored).
    pub fn readable(&self, el0: bool) -> bool {
        !self.mmu_enabled || !el0 || self.ur()
    }
    /// Writable at EL0 or EL1.
    pub fn writable(&self, el0: bool) -> bool {
        if !self.mmu_enabled {
            true
        } else if el0 {
            self.uw()
        } else {
            self.pw()
        }
    }
    /// Executable at EL0 or EL1 (Arm ARM D8.4.1.2 "Instruction execution permissions"): EL1
    /// never executes what EL0 can write, and WXN removes execution from writable memory.
    pub fn executable(&self, el0: bool) -> bool {
        if !self.mmu_enabled {
            true
        } else if el0 {
            !(self.uxn || (self.wxn && self.uw()))
        } else {
            !(self.pxn || self.uw() || (self.wxn && self.pw()))
        }
    }
    /// Whether `access` at EL0/EL1 is permitted.
    pub fn permits(&self, access: Access, el0: bool) -> bool {
        match access {
            Access::Read => self.readable(el0),
            Access::Write => self.writable(el0),
            Access::Fetch => self.executable(el0),
        }
    }
}

/// One descriptor read of a walk.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WalkStep {
    pub level: i8,
    /// Physical base of the table read at this level.
    pub table: u64,
    pub index: u64,
    /// Physical address of the descriptor (`table + 8 * index`).
    pub desc_addr: u64,
    /// The descriptor, or `None` when memory could not be read there.
    pub desc: Option<u64>,
}

/// What a traced walk did (for `monitor translate`). Fixed size; never allocates.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WalkTrace {
    /// Whether TTBR1 (upper VA range) was selected; `None` with the MMU off or a fault
    /// before selection.
    pub upper: Option<bool>,
    pub granule: Option<Granule>,
    pub start_level: i8,
    /// Input address size in bits (64 - TxSZ).
    pub va_bits: u8,
    steps: [WalkStep; 4],
    len: usize,
}

impl WalkTrace {
    /// The descriptor reads in order.
    pub fn steps(&self) -> &[WalkStep] {
        &self.steps[..self.len]
    }
}

mod descend;

use descend::walk;

/// Receives walk events; `()` ignores them so the untraced walk costs nothing.
trait Sink {
    fn region(&mut self, upper: bool, granule: Granule, start_level: i8, va_bits: u32);
    fn step(&mut self, step: WalkStep);
}

impl Sink for () {
    fn region(&mut self, _: bool, _: Granule, _: i8, _: u32) {}
    fn step(&mut self, _: WalkStep) {}
}

impl Sink for WalkTrace {
    fn region(&mut self, upper: bool, granule: Granule, start_level: i8, va_bits: u32) {
        self.upper = Some(upper);
        self.granule = Some(granule);
        self.start_level = start_level;
        self.va_bits = va_bits as u8;
    }
    fn step(&mut self, step: WalkStep) {
        if let Some(slot) = self.steps.get_mut(self.len) {
            *slot = step;
            self.len += 1;
        }
    }
}

/// Translates `va` for `access` at EL0 (`el0`) or EL1 through the EL1&0 stage-1 regime.
pub fn translate(
    regs: &TranslationRegs,
    va: u64,
    access: Access,
    el0: bool,
    mem: &dyn PhysMem,
) -> Result<Translation, Fault> {
    walk(regs, va, access, el0, mem, &mut ())
}

/// [`translate`], recording each descriptor read into `trace` (reset first).
pub fn translate_traced(
    regs: &TranslationRegs,
    va: u64,
    access: Access,
    el0: bool,
    mem: &dyn PhysMem,
    trace: &mut WalkTrace,
) -> Result<Translation, Fault> {
    *trace = WalkTrace::default();
    walk(regs, va, access, el0, mem, trace)
}

/// A mask of the low `bits` bits (all ones for 64 or more).
fn mask(bits: u32) -> u64 {
    if bits >= 64 {
        u64::MAX
    } else {
        (1u64 << bits) - 1
    }
}

#[cfg(test)]
mod tests;
