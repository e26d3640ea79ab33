//! The walk itself: VA-range selection, the MMU-off flat mapping, the descriptor loop and the
//! leaf checks. Pure; see the parent module for scope and choices.

use super::{
    mask, Access, Fault, FaultKind, Granule, PhysMem, Sink, Translation, TranslationRegs, WalkStep,
    ADDR_MASK_48, PA_MAX_BITS, SCTLR_I, SCTLR_M, SCTLR_WXN,
};

fn fault(kind: FaultKind, level: i8) -> Fault {
    Fault { kind, level }
}

fn bit(v: u64, n: u32) -> bool {
    (v >> n) & 1 != 0
}

/// Top address bit that takes part in translation: 55 when top-byte-ignore applies
/// (TCR.TBIx, and for fetches only when TCR.TBIDx is clear), else 63 (Arm ARM D8.8
/// "Address tagging"; TBI0 bit 37, TBI1 bit 38, TBID0 bit 51, TBID1 bit 52).
fn addr_top(tcr: u64, upper: bool, access: Access) -> u32 {
    let (tbi, tbid) = if upper {
        (bit(tcr, 38), bit(tcr, 52))
    } else {
        (bit(tcr, 37), bit(tcr, 51))
    };
    if tbi && !(tbid && access == Access::Fetch) {
        55
    } else {
        63
    }
}

/// Output address size from TCR_EL1.IPS (bits 34:32): 32, 36, 40, 42, 44, 48 bits; 52-bit
/// (0b110) and the reserved 0b111 are treated as 48 (no FEAT_LPA).
fn output_bits(tcr: u64) -> u32 {
    match (tcr >> 32) & 7 {
        0 => 32,
        1 => 36,
        2 => 40,
        3 => 42,
        4 => 44,
        _ => 48,
    }
}

/// SCTLR_EL1.M = 0: PA = VA (Arm ARM D8.2.10 "Behavior when stage 1 address translation is
/// disabled"): VA bits above the PA size (below the tag when TBI applies) give a level-0
/// Address size fault; data is Device-nGnRnE, fetches Normal Outer Shareable, Inner/Outer
/// Write-Through RA (SCTLR.I = 1, MAIR encoding 0xAA) or Non-cacheable (0x44).
fn flat(regs: &TranslationRegs, va: u64, access: Access) -> Result<Translation, Fault> {
    let top = addr_top(regs.tcr, bit(va, 55), access);
    if (va & mask(top + 1)) >> PA_MAX_BITS != 0 {
        return Err(fault(FaultKind::AddressSize, 0));
    }
    let (mem_attr, sh) = match access {
        Access::Fetch if regs.sctlr & SCTLR_I != 0 => (0xaa, 0b10),
        Access::Fetch => (0x44, 0b10),
        _ => (0x00, 0b10),
    };
    Ok(Translation {
        pa: va & mask(PA_MAX_BITS),
        size_log2: PA_MAX_BITS as u8,
        level: 0,
        descriptor: 0,
        mmu_enabled: false,
        attr_index: 0,
        mem_attr,
        ap: 0b01,
        pxn: false,
        uxn: false,
        wxn: false,
        af: true,
        sh,
        ng: false,
        ns: false,
        contiguous: false,
    })
}

/// The VA-range dependent walk parameters.
struct Region {
    upper: bool,
    granule: Granule,
    va_bits: u32,
    ttbr: u64,
    hpd: bool,
}

/// Selects TTBR0/TTBR1 by VA bit 55 (Arm ARM D8.2.6 "VA ranges") and checks TxSZ, the VA
/// range, EPDx and E0PDx; every failure here is a level-0 Translation fault.
fn region(regs: &TranslationRegs, va: u64, access: Access, el0: bool) -> Result<Region, Fault> {
    let tcr = regs.tcr;
    let upper = bit(va, 55);
    // TCR_EL1: T0SZ 5:0, EPD0 7, TG0 15:14, T1SZ 21:16, EPD1 23, TG1 31:30, HPD0 41,
    // HPD1 42, E0PD0 55, E0PD1 56 (Arm ARM D19.2.139).
    let (tsz, epd, granule, ttbr, hpd, e0pd) = if upper {
        let g = Granule::from_tg1(tcr >> 30);
        (
            tcr >> 16 & 0x3f,
            bit(tcr, 23),
            g,
            regs.ttbr1,
            bit(tcr, 42),
            bit(tcr, 56),
        )
    } else {
        let g = Granule::from_tg0(tcr >> 14);
        (
            tcr & 0x3f,
            bit(tcr, 7),
            g,
            regs.ttbr0,
            bit(tcr, 41),
            bit(tcr, 55),
        )
    };
    let l0 = fault(FaultKind::Translation, 0);
    if !(16..=39).contains(&tsz) || epd || (el0 && e0pd) {
        return Err(l0);
    }
    let va_bits = 64 - tsz as u32;
    let top = addr_top(tcr, upper, access);
    let high = (va & mask(top + 1)) >> va_bits;
    let expect = if upper { mask(top + 1 - va_bits) } else { 0 };
    if high != expect {
        return Err(l0);
    }
    Ok(Region {
        upper,
        granule,
        va_bits,
        ttbr,
        hpd,
    })
}

/// Attributes inherited from table descriptors (Arm ARM D8.4.2 "Hierarchical permissions").
#[derive(Default)]
struct TableAttrs {
    ap: u8,
    pxn: bool,
    uxn: bool,
}

pub(super) fn walk<S: Sink>(
    regs: &TranslationRegs,
    va: u64,
    access: Access,
    el0: bool,
    mem: &dyn PhysMem,
    sink: &mut S,
) -> Result<Translation, Fault> {
    if regs.sctlr & SCTLR_M == 0 {
        return flat(regs, va, access);
    }
    let r = region(regs, va, access, el0)?;
    let g = r.granule.bits();
    let stride = g - 3;
    let start = 4 - (r.va_bits - g).div_ceil(stride) as i8;
    sink.region(r.upper, r.granule, start, r.va_bits);
    let ps = output_bits(regs.tcr);
    // TTBR_EL1: BADDR 47:1, CnP 0 (Arm ARM D19.2.152). Bits below the table's alignment
    // (its size, at least 64 bytes) are RES0 and ignored. An out-of-range base is a level-0
    // Address size fault (pseudocode AArch64.S1Walk).
    let base = r.ttbr & ADDR_MASK_48 & !1;
    if base >> ps != 0 {
        return Err(fault(FaultKind::AddressSize, 0));
    }
    let first_index_bits = r.va_bits - (g + stride * (3 - start) as u32);
    let mut table = base & !mask((first_index_bits + 3).max(6));
    let mut inherited = TableAttrs::default();
    let mut level = start;
    loop {
        let shift = g + stride * (3 - level) as u32;
        let index_bits = if level == start {
            first_index_bits
        } else {
            stride
        };
        let index = (va >> shift) & mask(index_bits);
        let desc_addr = table.wrapping_add(index * 8);
        let read = mem.read_u64(desc_addr);
        sink.step(WalkStep {
            level,
            table,
            index,
            desc_addr,
            desc: read,
        });
        let desc = read.ok_or(fault(FaultKind::ExternalAbortOnWalk, level))?;
        if desc & 1 == 0 {
            return Err(fault(FaultKind::Translation, level));
        }
        let table_or_page = bit(desc, 1);
        if level < 3 && table_or_page {
            // Table descriptor: next-level address 47:g, PXNTable 59, UXNTable 60,
            // APTable 62:61 (Arm ARM D8.3.1 "Table descriptor format").
            let next = desc & ADDR_MASK_48 & !mask(g);
            if next >> ps != 0 {
                return Err(fault(FaultKind::AddressSize, level));
            }
            if !r.hpd {
                inherited.ap |= (desc >> 61 & 3) as u8;
                inherited.pxn |= bit(desc, 59);
                inherited.uxn |= bit(desc, 60);
            }
            table = next;
            level += 1;
            continue;
        }
        // Block (bits 01 at a level that allows it) or page (bits 11 at level 3); 01 at
        // level 3 and blocks at other levels are reserved: Translation fault.
        if (level == 3 && !table_or_page) || (level < 3 && !r.granule.block_allowed(level)) {
            return Err(fault(FaultKind::Translation, level));
        }
        return leaf(regs, va, access, el0, desc, level, shift, ps, &inherited);
    }
}

/// Decodes a block/page descriptor, then checks AF before permissions (the order QEMU and
/// the v8.0 pseudocode AArch64.TranslationTableWalk/CheckPermission use).
#[allow(clippy::too_many_arguments)]
fn leaf(
    regs: &TranslationRegs,
    va: u64,
    access: Access,
    el0: bool,
    desc: u64,
    level: i8,
    shift: u32,
    ps: u32,
    inherited: &TableAttrs,
) -> Result<Translation, Fault> {
    let oa = desc & ADDR_MASK_48 & !mask(shift);
    if oa >> ps != 0 {
        return Err(fault(FaultKind::AddressSize, level));
    }
    // Stage-1 block/page attributes (Arm ARM D8.3.2 "Block and Page descriptor formats"):
    // AttrIndx 4:2, NS 5, AP[2:1] 7:6, SH 9:8, AF 10, nG 11, Contiguous 52, PXN 53, UXN 54.
    let attr_index = (desc >> 2 & 7) as u8;
    // APTable bit 0 removes EL0 access (clears AP[1]); bit 1 removes write (sets AP[2]).
    let mut ap = (desc >> 6 & 3) as u8;
    if inherited.ap & 1 != 0 {
        ap &= !1;
    }
    if inherited.ap & 2 != 0 {
        ap |= 2;
    }
    let t = Translation {
        pa: oa | (va & mask(shift)),
        size_log2: shift as u8,
        level,
        descriptor: desc,
        mmu_enabled: true,
        attr_index,
        mem_attr: (regs.mair >> (8 * attr_index as u32)) as u8,
        ap,
        pxn: bit(desc, 53) || inherited.pxn,
        uxn: bit(desc, 54) || inherited.uxn,
        wxn: regs.sctlr & SCTLR_WXN != 0,
        af: bit(desc, 10),
        sh: (desc >> 8 & 3) as u8,
        ng: bit(desc, 11),
        ns: bit(desc, 5),
        contiguous: bit(desc, 52),
    };
    if !t.af {
        return Err(fault(FaultKind::AccessFlag, level));
    }
    if !t.permits(access, el0) {
        return Err(fault(FaultKind::Permission, level));
    }
    Ok(t)
}
