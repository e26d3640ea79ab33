//! The distributor frame (GICD_*, IHI 0069 12.9, map in 12.8), with affinity routing always
//! on and a single security state, as KVM 6.1's vGICv3 presents it: the private INTIDs'
//! banked GICD registers are RAZ/WI (the redistributors own them), SPIs are fully
//! programmable. Values marked "KVM 6.1" were read by a guest on the nested machine.
//!
//! `read`/`write` return `None`/`false` for an offset or access size with no register, which
//! the caller turns into RAZ/WI.

use super::regs::{self, BitBank};
use super::state::{GicState, NR_IRQS, PRIVATE};

/// GICD_CTLR bits: EnableGrp1 (1), ARE (4, RAO), DS (6, RAO: one security state).
const CTLR_GRP1: u64 = 1 << 1;
const CTLR_ARE: u64 = 1 << 4;
const CTLR_DS: u64 = 1 << 6;
/// GICD_TYPER: IDbits = 9 (10-bit INTIDs) in \[23:19\], ITLinesNumber = NR_IRQS / 32 - 1
/// (KVM 6.1 with 288 INTIDs: 0x0048_0008).
const TYPER: u64 = 9 << 19 | (NR_IRQS as u64 / 32 - 1);
/// GICD_IIDR: ProductID 0x4b, Revision 3, Implementer 0x43b (Arm) (KVM 6.1).
const IIDR: u64 = 0x4b00_343b;
/// GICD_PIDR2 / GICR_PIDR2: ArchRev 3 (GICv3) in \[7:4\], JEP106 bits 0xb (IHI 0069 12.1.4).
pub const PIDR2: u64 = 0x3b;
/// Offset of PIDR2 in both frames.
pub const PIDR2_OFFSET: u64 = 0xffe8;
/// The identification registers' range (PIDR4..CIDR3); all but PIDR2 read 0 (KVM 6.1).
pub const IDREGS: std::ops::Range<u64> = 0xffd0..0x1_0000;
/// `GICD_IROUTER<n>` for SPIs: 64 bits at 0x6000 + 8n.
const IROUTER: std::ops::Range<u64> = 0x6000 + 8 * PRIVATE as u64..0x6000 + 8 * NR_IRQS as u64;
/// KVM 6.1 keeps Aff2.Aff1.Aff0 of IROUTER (no Aff3, no 1-of-N routing).
const ROUTE_MASK: u64 = 0x00ff_ffff;

/// The SPIs a GICD bank register at `offset` covers, `per` INTIDs per `bytes` bytes, or
/// `None` for the private INTIDs (RAZ/WI with affinity routing) or beyond the last INTID.
fn spi_range(base: u64, offset: u64, per: usize, bytes: u64) -> Option<std::ops::Range<usize>> {
    let first = ((offset - base) / bytes) as usize * per;
    (PRIVATE..NR_IRQS)
        .contains(&first)
        .then(|| first - PRIVATE..(first + per).min(NR_IRQS) - PRIVATE)
}

/// A distributor read of `size` bytes at frame offset `off`.
pub fn read(st: &GicState, off: u64, size: usize) -> Option<u64> {
    let v = match (off, size) {
        (0x0000, 4) => CTLR_ARE | CTLR_DS | if st.grp1_enabled { CTLR_GRP1 } else { 0 },
        (0x0004, 4) => TYPER,
        (0x0008, 4) => IIDR,
        // GICD_STATUSR reads as all ones on KVM 6.1 (vgic_mmio_read_rao).
        (0x0010, 4) => 0xffff_ffff,
        (0x0080..=0x03ff, 4) => {
            let bank = BitBank::at(off)?;
            match spi_range(off & !0x7f, off, 32, 4) {
                Some(r) => u64::from(regs::read_bits(&st.spis[r], bank)),
                None => 0,
            }
        }
        (0x0400..=0x07ff, 1 | 4) => match spi_range(0x400, off, 1, 1) {
            Some(r) => regs::read_priorities(&st.spis[r.start..], size),
            None => 0,
        },
        (0x0c00..=0x0cff, 4) => match spi_range(0xc00, off, 16, 4) {
            Some(r) => u64::from(regs::read_config(&st.spis[r])),
            None => 0,
        },
        (o, 8) if IROUTER.contains(&o) && o % 8 == 0 => route(st, o),
        (o, 4) if IROUTER.contains(&o) => (route(st, o & !7) >> (8 * (o & 4))) & 0xffff_ffff,
        (PIDR2_OFFSET, 4) => PIDR2,
        (o, 4) if IDREGS.contains(&o) => 0,
        // ITARGETSR, IGRPMODR, NSACR, SGIR and the pending-SGI registers: RAZ with
        // affinity routing and one security state.
        (0x0800..=0x0bff | 0x0d00..=0x0eff | 0x0f00..=0x0f2f, 4) => 0,
        _ => return None,
    };
    Some(v)
}

fn route(st: &GicState, off: u64) -> u64 {
    let spi = ((off - 0x6000) / 8) as usize - PRIVATE;
    st.spis.get(spi).map_or(0, |i| u64::from(i.route))
}

/// A distributor write; `false` when nothing is at `off` for this size.
pub fn write(st: &mut GicState, off: u64, size: usize, val: u64) -> bool {
    match (off, size) {
        (0x0000, 4) => st.grp1_enabled = val & CTLR_GRP1 != 0,
        // TYPER, IIDR, STATUSR and the SPI message registers: read-only or ignored.
        (0x0004..=0x0013 | 0x0040..=0x005f, 4) => {}
        (0x0080..=0x03ff, 4) => {
            let Some(bank) = BitBank::at(off) else {
                return false;
            };
            if let Some(r) = spi_range(off & !0x7f, off, 32, 4) {
                regs::write_bits(&mut st.spis[r], bank, val as u32);
            }
        }
        (0x0400..=0x07ff, 1 | 4) => {
            if let Some(r) = spi_range(0x400, off, 1, 1) {
                regs::write_priorities(&mut st.spis[r.start..], size, val);
            }
        }
        (0x0c00..=0x0cff, 4) => {
            if let Some(r) = spi_range(0xc00, off, 16, 4) {
                regs::write_config(&mut st.spis[r], val as u32);
            }
        }
        (o, 4 | 8) if IROUTER.contains(&o) && (size == 4 || o % 8 == 0) => {
            let spi = ((o - 0x6000) / 8) as usize - PRIVATE;
            if let Some(i) = st.spis.get_mut(spi) {
                let old = u64::from(i.route);
                let new = if size == 8 {
                    val
                } else if o & 4 == 0 {
                    (old & !0xffff_ffff) | (val & 0xffff_ffff)
                } else {
                    (old & 0xffff_ffff) | (val << 32)
                };
                i.route = (new & ROUTE_MASK) as u32;
            }
        }
        (o, 4) if IDREGS.contains(&o) => {}
        (0x0800..=0x0bff | 0x0d00..=0x0eff | 0x0f00..=0x0f2f, 4) => {}
        _ => return false,
    }
    true
}
