//! Optional stage-1 MMU for generated programs: identity-mapped Normal memory, so the model's
//! table walker and TLB are on the path of every fetch and data access, and plain loads and
//! stores may be unaligned (SCTLR_EL1.A = 0 on Normal memory, Arm ARM B2.5.2).
//!
//! Translation regime (Arm ARM D8): 4 KiB granule, T0SZ = 25 (39-bit VA, walks start at
//! level 1), TTBR1 walks disabled (EPD1). L1[1] -> L2 table for 0x4000_0000..0x7fff_ffff;
//! L2 entries 0-2 are 2 MiB blocks (RAM base, code), entry 3 (0x4060_0000: data buffer and
//! these tables) points to an L3 table of 4 KiB pages. All Normal Write-Back (MAIR attr 0);
//! the L3 pages are EL0-accessible except the three holding the tables.

use super::gen::{mov64, Gen};

/// Tables: L1 at TABLE_BASE, L2 at +0x1000, L3 at +0x2000 (inside the L3-mapped region).
pub const TABLE_BASE: u64 = 0x4070_0000;
const L1: u64 = TABLE_BASE;
const L2: u64 = TABLE_BASE + 0x1000;
const L3: u64 = TABLE_BASE + 0x2000;
/// Descriptor bits (Arm ARM D8.3): valid+table/page 0b11, block 0b01, AF bit 10, SH inner
/// shareable 0b11 at bits 9:8, AttrIndx 0 (bits 4:2).
const TABLE: u64 = 0b11;
const BLOCK: u64 = 0b01;
const NORMAL: u64 = 1 << 10 | 0b11 << 8;
/// AP[2:1] = 01: read/write at EL1 and EL0 (so LDTR/STTR work on the data buffer); such
/// pages are never executable at EL1 (Arm ARM D8.4.1.2). Table pages stay EL1-only.
const EL0_RW: u64 = 0b01 << 6;
/// MAIR_EL1: attr0 = 0xff Normal Inner/Outer Write-Back non-transient RW-allocate, attr1 =
/// 0x00 Device-nGnRnE (Arm ARM D19.2.97 "MAIR_EL1").
const MAIR: u64 = 0x00ff;
/// TCR_EL1 (Arm ARM D19.2.139): T0SZ 25, IRGN0 01 (bits 9:8), ORGN0 01 (11:10), SH0 11
/// (13:12), TG0 00 = 4K, EPD1 (bit 23), IPS 101 = 48 bits (34:32).
const TCR: u64 = 25 | 1 << 8 | 1 << 10 | 0b11 << 12 | 1 << 23 | 0b101 << 32;
/// SCTLR_EL1 (Arm ARM D19.2.118): the v8.0 RES1 bits 29, 28, 23, 22, 20, 11, plus M (0),
/// C (2), SA (3), I (12); A (1) clear, so unaligned Normal accesses are permitted.
const SCTLR: u64 = 0x30d0_0800 | 1 | 1 << 2 | 1 << 3 | 1 << 12;

/// The three tables as one 12 KiB segment at TABLE_BASE.
pub fn tables() -> Vec<u8> {
    let mut t = vec![0u64; 3 * 512];
    t[1] = L2 | TABLE; // L1[1]: VA 0x4000_0000..
    for i in 0..3u64 {
        t[512 + i as usize] = (0x4000_0000 + (i << 21)) | NORMAL | BLOCK; // L2[i]: 2 MiB block
    }
    t[512 + 3] = L3 | TABLE; // L2[3]: 0x4060_0000 via 4 KiB pages
    for i in 0..512u64 {
        let pa = 0x4060_0000 + (i << 12);
        let ap = if (TABLE_BASE..TABLE_BASE + 0x3000).contains(&pa) {
            0
        } else {
            EL0_RW
        };
        t[1024 + i as usize] = pa | NORMAL | ap | TABLE; // L3[i]: 4 KiB page
    }
    t.iter().flat_map(|d| d.to_le_bytes()).collect()
}

/// Prologue part that turns the MMU on (X0 is scratch; it is randomized afterwards).
pub fn enable(g: &mut Gen) {
    mov64(g, 0, MAIR);
    g.emit(0xd518_a200); // msr mair_el1, x0
    mov64(g, 0, TCR);
    g.emit(0xd518_2040); // msr tcr_el1, x0
    mov64(g, 0, L1);
    g.emit(0xd518_2000); // msr ttbr0_el1, x0
    g.emit(0xd508_871f); // tlbi vmalle1
    g.emit(0xd503_3b9f); // dsb ish
    g.emit(0xd503_3fdf); // isb
    mov64(g, 0, SCTLR);
    g.emit(0xd518_1000); // msr sctlr_el1, x0
    g.emit(0xd503_3fdf); // isb
}
