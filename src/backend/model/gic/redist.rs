//! One vCPU's redistributor: the RD_base frame (GICR_CTLR, IIDR, TYPER, STATUSR, WAKER, LPI
//! registers, IHI 0069 12.10-12.11) and the SGI_base frame 64 KiB above it (the SGI and PPI
//! banks, 12.10.2), as KVM 6.1's vGICv3 presents them (no LPIs, no ITS; values read by a
//! guest on the nested machine).
//!
//! `read`/`write` take the offset inside the vCPU's 128 KiB and return `None`/`false` where
//! there is no register (the caller makes it RAZ/WI).

use super::dist::{IDREGS, PIDR2, PIDR2_OFFSET};
use super::regs::{self, BitBank};
use super::state::GicState;

/// The SGI_base frame starts 64 KiB into the redistributor.
const SGI_BASE: u64 = 0x1_0000;
/// GICR_CTLR: CES (1) and IR (2) set, no LPIs (KVM 6.1 reads 0x6).
const CTLR: u64 = 0x6;
/// GICR_IIDR: ProductID 0x4b, Revision 0, Implementer 0x43b (KVM 6.1).
const IIDR: u64 = 0x4b00_043b;
/// GICR_TYPER.Last (bit 4): the last redistributor of the region.
const TYPER_LAST: u64 = 1 << 4;

/// GICR_TYPER of vCPU `cpu`: Affinity_Value \[63:32\], Processor_Number \[23:8\],
/// Last; no physical LPIs, no direct LPI injection.
fn typer(st: &GicState, cpu: usize) -> u64 {
    let last = if cpu + 1 == st.cpus.len() {
        TYPER_LAST
    } else {
        0
    };
    u64::from(st.cpus[cpu].affinity) << 32 | ((cpu as u64 & 0xffff) << 8) | last
}

/// A read of `size` bytes at offset `off` of vCPU `cpu`'s redistributor.
pub fn read(st: &GicState, cpu: usize, off: u64, size: usize) -> Option<u64> {
    let r = st.cpus.get(cpu)?;
    let v = match (off, size) {
        (0x0000, 4) => CTLR,
        (0x0004, 4) => IIDR,
        (0x0008, 8) => typer(st, cpu),
        (0x0008 | 0x000c, 4) => (typer(st, cpu) >> (8 * (off & 4))) & 0xffff_ffff,
        // STATUSR, WAKER (RAZ/WI on KVM 6.1: always awake), LPI registers.
        (0x0010 | 0x0014, 4) | (0x0040..=0x00ff, 4 | 8) => 0,
        (PIDR2_OFFSET, 4) => PIDR2,
        (o, 4) if IDREGS.contains(&o) => 0,
        (o, 4) if (SGI_BASE + 0x080..SGI_BASE + 0x400).contains(&o) => {
            let bank = BitBank::at(o - SGI_BASE)?;
            if (o - SGI_BASE) & 0x7f != 0 {
                return None;
            }
            u64::from(regs::read_bits(&r.private, bank))
        }
        (o, 1 | 4) if (SGI_BASE + 0x400..SGI_BASE + 0x420).contains(&o) => {
            regs::read_priorities(&r.private[(o - SGI_BASE - 0x400) as usize..], size)
        }
        (o, 4) if o == SGI_BASE + 0xc00 || o == SGI_BASE + 0xc04 => {
            let first = ((o - SGI_BASE - 0xc00) * 4) as usize;
            u64::from(regs::read_config(&r.private[first..]))
        }
        // IGRPMODR0, NSACR: RAZ/WI with one security state.
        (o, 4) if o == SGI_BASE + 0xd00 || o == SGI_BASE + 0xe00 => 0,
        _ => return None,
    };
    Some(v)
}

/// A write at offset `off` of vCPU `cpu`'s redistributor; `false` where nothing is.
pub fn write(st: &mut GicState, cpu: usize, off: u64, size: usize, val: u64) -> bool {
    let Some(r) = st.cpus.get_mut(cpu) else {
        return false;
    };
    match (off, size) {
        // CTLR (no LPIs to enable), IIDR, TYPER, STATUSR, WAKER, LPI registers.
        (0x0000..=0x0017, 4) | (0x0008, 8) | (0x0040..=0x00ff, 4 | 8) => {}
        (o, 4) if IDREGS.contains(&o) => {}
        (o, 4) if (SGI_BASE + 0x080..SGI_BASE + 0x400).contains(&o) => {
            let Some(bank) = BitBank::at(o - SGI_BASE) else {
                return false;
            };
            if (o - SGI_BASE) & 0x7f != 0 {
                return false;
            }
            regs::write_bits(&mut r.private, bank, val as u32);
        }
        (o, 1 | 4) if (SGI_BASE + 0x400..SGI_BASE + 0x420).contains(&o) => {
            let first = (o - SGI_BASE - 0x400) as usize;
            regs::write_priorities(&mut r.private[first..], size, val);
        }
        // ICFGR0 (SGIs: edge) and ICFGR1 (PPIs: level) are read-only on KVM 6.1; IGRPMODR0
        // and NSACR are RAZ/WI.
        (o, 4) if o >= SGI_BASE && [0xc00, 0xc04, 0xd00, 0xe00].contains(&(o - SGI_BASE)) => {}
        _ => return false,
    }
    true
}
