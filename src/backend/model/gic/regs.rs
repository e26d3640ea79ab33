//! The per-INTID register banks the distributor and the redistributors share (IHI 0069 12.9,
//! 12.10): one bit per INTID (IGROUPR, ISENABLER/ICENABLER, ISPENDR/ICPENDR,
//! ISACTIVER/ICACTIVER), one byte per INTID (IPRIORITYR) and two bits per INTID (ICFGR), over
//! a slice of INTIDs. Callers pass only the INTIDs the frame owns.

use super::state::{Irq, PRIO_MASK};

/// A bank with one bit per INTID (register offset from the bank's base, 0x80 bytes each).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BitBank {
    Group,
    SetEnable,
    ClearEnable,
    SetPending,
    ClearPending,
    SetActive,
    ClearActive,
}

impl BitBank {
    /// The bank at `offset` (0x080..0x400 in both GICD and the SGI_base frame).
    pub fn at(offset: u64) -> Option<Self> {
        Some(match offset & !0x7f {
            0x080 => BitBank::Group,
            0x100 => BitBank::SetEnable,
            0x180 => BitBank::ClearEnable,
            0x200 => BitBank::SetPending,
            0x280 => BitBank::ClearPending,
            0x300 => BitBank::SetActive,
            0x380 => BitBank::ClearActive,
            _ => return None,
        })
    }

    fn get(self, i: &Irq) -> bool {
        match self {
            BitBank::Group => i.group1,
            BitBank::SetEnable | BitBank::ClearEnable => i.enabled,
            BitBank::SetPending | BitBank::ClearPending => i.pending(),
            BitBank::SetActive | BitBank::ClearActive => i.active,
        }
    }

    /// Applies a written 1 bit (IGROUPR also applies 0 bits).
    fn set(self, i: &mut Irq, bit: bool) {
        match self {
            BitBank::Group => i.group1 = bit,
            BitBank::SetEnable if bit => i.enabled = true,
            BitBank::ClearEnable if bit => i.enabled = false,
            BitBank::SetPending if bit => i.latch = true,
            // Clears the latch; a level-sensitive line held high stays pending.
            BitBank::ClearPending if bit => i.latch = false,
            BitBank::SetActive if bit => i.active = true,
            BitBank::ClearActive if bit => i.active = false,
            _ => {}
        }
    }
}

/// Reads 32 bits of `bank` for `irqs` (bit n = `irqs[n]`; missing INTIDs read 0).
pub fn read_bits(irqs: &[Irq], bank: BitBank) -> u32 {
    irqs.iter()
        .take(32)
        .enumerate()
        .fold(0, |v, (n, i)| v | (bank.get(i) as u32) << n)
}

/// Writes 32 bits of `bank` to `irqs`.
pub fn write_bits(irqs: &mut [Irq], bank: BitBank, value: u32) {
    for (n, i) in irqs.iter_mut().take(32).enumerate() {
        bank.set(i, value & (1 << n) != 0);
    }
}

/// Reads `size` priority bytes starting at `irqs[0]` (little-endian).
pub fn read_priorities(irqs: &[Irq], size: usize) -> u64 {
    irqs.iter()
        .take(size)
        .enumerate()
        .fold(0, |v, (n, i)| v | u64::from(i.priority) << (8 * n))
}

/// Writes `size` priority bytes starting at `irqs[0]`, keeping the implemented bits.
pub fn write_priorities(irqs: &mut [Irq], size: usize, value: u64) {
    for (n, i) in irqs.iter_mut().take(size).enumerate() {
        i.priority = (value >> (8 * n)) as u8 & PRIO_MASK;
    }
}

/// Reads an ICFGR word for 16 INTIDs: field bit 1 = edge-triggered.
pub fn read_config(irqs: &[Irq]) -> u32 {
    irqs.iter()
        .take(16)
        .enumerate()
        .fold(0, |v, (n, i)| v | (i.edge as u32) << (2 * n + 1))
}

/// Writes an ICFGR word for 16 INTIDs (only bit 1 of each field is writable).
pub fn write_config(irqs: &mut [Irq], value: u32) {
    for (n, i) in irqs.iter_mut().take(16).enumerate() {
        i.edge = value & (1 << (2 * n + 1)) != 0;
    }
}
