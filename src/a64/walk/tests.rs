//! Walker tests: page tables built in a fake physical memory for every granule and both
//! TTBRs, every fault kind at every level, hostile tables, and a fuzz-style sweep.

use std::cell::Cell;
use std::collections::HashMap;

use super::*;

mod fuzz;
mod perms;

/// Fake RAM at 0x4000_0000 (QEMU virt RAM base) of 64 MiB; reads elsewhere return `None`.
pub(super) const RAM: u64 = 0x4000_0000;
const RAM_SIZE: u64 = 64 << 20;

pub(super) struct Mem {
    words: HashMap<u64, u64>,
    pub(super) reads: Cell<usize>,
}

impl PhysMem for Mem {
    fn read_u64(&self, pa: u64) -> Option<u64> {
        self.reads.set(self.reads.get() + 1);
        if !(RAM..RAM + RAM_SIZE).contains(&pa) || pa % 8 != 0 {
            return None;
        }
        Some(self.words.get(&pa).copied().unwrap_or(0))
    }
}

/// Descriptor bits (Arm ARM D8.3): valid 0, table/page 1, AF 10, SH inner 9:8 = 11.
pub(super) const VALID: u64 = 1;
pub(super) const TABLE: u64 = 0b11;
pub(super) const AF: u64 = 1 << 10;
const SH_INNER: u64 = 0b11 << 8;
/// A normal read-write EL1-only leaf: AF, inner shareable, AttrIndx 0, AP 00.
pub(super) const RW_EL1: u64 = AF | SH_INNER;

/// One translation regime's tables, allocated granule-aligned from a bump pointer.
pub(super) struct Tables {
    pub(super) mem: Mem,
    pub(super) granule: Granule,
    pub(super) va_bits: u32,
    pub(super) root: u64,
    next: u64,
}

impl Tables {
    pub(super) fn new(granule: Granule, va_bits: u32) -> Self {
        let mut t = Tables {
            mem: Mem {
                words: HashMap::new(),
                reads: Cell::new(0),
            },
            granule,
            va_bits,
            root: 0,
            next: RAM,
        };
        t.root = t.alloc();
        t
    }

    /// Adds a second root (for TTBR1) in the same memory.
    pub(super) fn alloc(&mut self) -> u64 {
        let a = self.next;
        self.next += 1 << self.granule.bits();
        a
    }

    pub(super) fn start_level(&self) -> i8 {
        let g = self.granule.bits();
        4 - (self.va_bits - g).div_ceil(g - 3) as i8
    }

    fn shift(&self, level: i8) -> u32 {
        let g = self.granule.bits();
        g + (g - 3) * (3 - level) as u32
    }

    /// Address of the descriptor for `va` at `level` under `root`, creating tables on the way.
    pub(super) fn entry(&mut self, root: u64, va: u64, level: i8) -> u64 {
        let mut table = root;
        let mut l = self.start_level();
        loop {
            let bits = if l == self.start_level() {
                self.va_bits - self.shift(l)
            } else {
                self.granule.bits() - 3
            };
            let addr = table + ((va >> self.shift(l)) & mask(bits)) * 8;
            if l == level {
                return addr;
            }
            let d = self.read(addr);
            table = if d & TABLE == TABLE {
                d & ADDR_MASK_48 & !mask(self.granule.bits())
            } else {
                let t = self.alloc();
                self.write(addr, t | TABLE);
                t
            };
            l += 1;
        }
    }

    pub(super) fn read(&self, addr: u64) -> u64 {
        self.mem.words.get(&addr).copied().unwrap_or(0)
    }

    pub(super) fn write(&mut self, addr: u64, v: u64) {
        self.mem.words.insert(addr, v);
    }

    /// Maps `va` to a leaf at `level` (block below 3, page at 3) with `attrs`.
    pub(super) fn map(&mut self, root: u64, va: u64, pa: u64, level: i8, attrs: u64) {
        let kind = if level == 3 { TABLE } else { VALID };
        let e = self.entry(root, va, level);
        self.write(e, pa | attrs | kind);
    }

    /// ORs `bits` into the table descriptor for `va` at `level`.
    pub(super) fn or_table(&mut self, root: u64, va: u64, level: i8, bits: u64) {
        let e = self.entry(root, va, level);
        let d = self.read(e);
        self.write(e, d | bits);
    }
}

/// TCR_EL1 with both halves enabled (field positions: Arm ARM D19.2.139).
pub(super) fn tcr(g0: Granule, t0sz: u32, g1: Granule, t1sz: u32, ips: u64) -> u64 {
    let tg0 = match g0 {
        Granule::K4 => 0b00,
        Granule::K64 => 0b01,
        Granule::K16 => 0b10,
    };
    let tg1 = match g1 {
        Granule::K16 => 0b01,
        Granule::K4 => 0b10,
        Granule::K64 => 0b11,
    };
    t0sz as u64 | tg0 << 14 | (t1sz as u64) << 16 | tg1 << 30 | ips << 32
}

/// SCTLR_EL1.M set; MAIR: index 0 normal WB (0xff), 1 Device-nGnRE (0x04), 2 NC (0x44).
pub(super) fn regs(tcr: u64, ttbr0: u64, ttbr1: u64) -> TranslationRegs {
    TranslationRegs {
        sctlr: SCTLR_M,
        tcr,
        ttbr0,
        ttbr1,
        mair: 0x44_04_ff,
    }
}

pub(super) fn err(kind: FaultKind, level: i8) -> Result<Translation, Fault> {
    Err(Fault { kind, level })
}

const ALL: [Granule; 3] = [Granule::K4, Granule::K16, Granule::K64];

#[test]
fn mmu_off_is_identity_with_architected_attributes() {
    let t = Tables::new(Granule::K4, 48);
    let mut r = regs(0, 0, 0);
    r.sctlr = 0;
    let data = translate(&r, 0x4008_1234, Access::Write, false, &t.mem).unwrap();
    assert_eq!(
        (data.pa, data.mem_attr, data.mmu_enabled),
        (0x4008_1234, 0x00, false)
    );
    let fetch = translate(&r, 0x4008_1234, Access::Fetch, true, &t.mem).unwrap();
    assert_eq!((fetch.mem_attr, fetch.sh), (0x44, 0b10));
    for el0 in [false, true] {
        assert!(fetch.readable(el0) && fetch.writable(el0) && fetch.executable(el0));
    }
    r.sctlr = SCTLR_I;
    let fetch = translate(&r, 0x4008_1234, Access::Fetch, false, &t.mem).unwrap();
    assert_eq!(fetch.mem_attr, 0xaa);
    assert_eq!(t.mem.reads.get(), 0, "MMU off must not read tables");
    // Above the 48-bit PA: level-0 Address size fault, unless only the tag byte is set and
    // TBI0 (bit 37) is on.
    let tagged = 0x5a00_0000_4000_0000;
    assert_eq!(
        translate(&r, tagged, Access::Read, false, &t.mem),
        err(FaultKind::AddressSize, 0)
    );
    r.tcr = 1 << 37;
    assert_eq!(
        translate(&r, tagged, Access::Read, false, &t.mem)
            .unwrap()
            .pa,
        0x4000_0000
    );
    assert_eq!(
        translate(&r, 1 << 48, Access::Read, false, &t.mem),
        err(FaultKind::AddressSize, 0)
    );
}

#[test]
fn page_in_each_granule_via_both_ttbrs() {
    for g in ALL {
        for va_bits in [48u32, 39, 36, 25] {
            let mut t = Tables::new(g, va_bits);
            let root1 = t.alloc();
            let lo = 0x1234_5678 & mask(va_bits) & !7;
            let hi = !mask(va_bits) | (0x9876_5430 & mask(va_bits));
            let pg = 1u64 << g.bits();
            t.map(t.root, lo, 0x4100_0000, 3, RW_EL1);
            t.map(root1, hi, 0x4200_0000 + pg, 3, RW_EL1 | 0b01 << 6 | 2 << 2);
            let tsz = 64 - va_bits;
            let r = regs(tcr(g, tsz, g, tsz, 0b101), t.root, root1 | 1 << 48);
            let a = translate(&r, lo, Access::Write, false, &t.mem).unwrap();
            assert_eq!(a.pa, 0x4100_0000 | (lo & (pg - 1)), "{g:?} {va_bits}");
            assert_eq!((a.level, a.size_log2 as u32), (3, g.bits()));
            let b = translate(&r, hi, Access::Read, true, &t.mem).unwrap();
            assert_eq!(b.pa, 0x4200_0000 + pg + (hi & (pg - 1)), "{g:?} {va_bits}");
            assert_eq!((b.attr_index, b.mem_attr, b.ap), (2, 0x44, 0b01));
            assert!(b.writable(true) && !b.executable(false) && b.executable(true));
            // The same VA with the other half's top bits misses both ranges: level 0.
            let stray = lo | 1 << 55;
            assert_eq!(
                translate(&r, stray, Access::Read, false, &t.mem),
                err(FaultKind::Translation, 0)
            );
        }
    }
}

#[test]
fn tg1_encoding_differs_from_tg0() {
    assert_eq!(Granule::from_tg0(0b10), Granule::K16);
    assert_eq!(Granule::from_tg1(0b10), Granule::K4);
    assert_eq!(Granule::from_tg0(0b01), Granule::K64);
    assert_eq!(Granule::from_tg1(0b01), Granule::K16);
    assert_eq!(Granule::from_tg1(0b11), Granule::K64);
    // A 4K TTBR1 table read with TG1 = 0b10 (4K) works; the same tables with TG1 = 0b11
    // (64K) index differently and miss.
    let mut t = Tables::new(Granule::K4, 39);
    let va = 0xffff_ff80_0020_3000;
    t.map(t.root, va, 0x4030_0000, 3, RW_EL1);
    let mut r = regs(tcr(Granule::K4, 25, Granule::K4, 25, 5), 0, t.root);
    assert_eq!(
        translate(&r, va, Access::Read, false, &t.mem).unwrap().pa,
        0x4030_0000
    );
    r.tcr = (r.tcr & !(3 << 30)) | 0b11 << 30;
    assert!(translate(&r, va, Access::Read, false, &t.mem).is_err());
}

#[test]
fn blocks_at_each_allowed_level_and_reserved_ones_fault() {
    for g in ALL {
        for level in 0..=2i8 {
            let mut t = Tables::new(g, 48);
            if level < t.start_level() {
                continue;
            }
            let shift = t.shift(level);
            let va = 0x0000_1234_5678_9abc & mask(48);
            let pa = if shift >= 30 {
                1 << shift
            } else {
                RAM + (1 << shift)
            };
            t.map(t.root, va, pa, level, RW_EL1);
            let r = regs(tcr(g, 16, g, 16, 0b101), t.root, 0);
            let got = translate(&r, va, Access::Read, false, &t.mem);
            if g.block_allowed(level) {
                let tr = got.unwrap();
                assert_eq!(tr.pa, pa | (va & mask(shift)), "{g:?} L{level}");
                assert_eq!((tr.level, tr.size_log2 as u32), (level, shift));
            } else {
                assert_eq!(got, err(FaultKind::Translation, level), "{g:?} L{level}");
            }
        }
        // Bits 01 at level 3 are reserved.
        let mut t = Tables::new(g, 48);
        let e = t.entry(t.root, 0x8000, 3);
        t.write(e, 0x4000_0000 | RW_EL1 | VALID);
        let r = regs(tcr(g, 16, g, 16, 0b101), t.root, 0);
        assert_eq!(
            translate(&r, 0x8000, Access::Read, false, &t.mem),
            err(FaultKind::Translation, 3)
        );
    }
    assert!(!Granule::K4.block_allowed(0) && !Granule::K16.block_allowed(1));
    assert!(!Granule::K64.block_allowed(1) && !Granule::K4.block_allowed(3));
}

#[test]
fn each_fault_kind_at_each_level() {
    let va = 0x0000_0080_4020_1000u64;
    for level in 0..=3i8 {
        let r = |t: &Tables| regs(tcr(Granule::K4, 16, Granule::K4, 16, 0b010), t.root, 0);
        // Invalid descriptor at `level`.
        let mut t = Tables::new(Granule::K4, 48);
        let e = t.entry(t.root, va, level);
        t.write(e, 0x4000_0000 | AF);
        let got = translate(&r(&t), va, Access::Read, false, &t.mem);
        assert_eq!(got, err(FaultKind::Translation, level));
        // Output address beyond IPS (40 bits) in a table (0-2) or page (3) descriptor.
        let mut t = Tables::new(Granule::K4, 48);
        let e = t.entry(t.root, va, level);
        t.write(e, 1 << 40 | AF | TABLE);
        let got = translate(&r(&t), va, Access::Read, false, &t.mem);
        assert_eq!(got, err(FaultKind::AddressSize, level));
        // A descriptor address outside RAM: external abort on the walk at the next level.
        if level < 3 {
            let mut t = Tables::new(Granule::K4, 48);
            let e = t.entry(t.root, va, level);
            t.write(e, 0x1000_0000 | TABLE);
            let got = translate(&r(&t), va, Access::Read, false, &t.mem);
            assert_eq!(got, err(FaultKind::ExternalAbortOnWalk, level + 1));
        }
        if level == 0 {
            continue;
        }
        // Leaf at `level` with AF = 0, then AF = 1 but read-only for a write.
        let mut t = Tables::new(Granule::K4, 48);
        t.map(t.root, va, 0x8000_0000, level, SH_INNER);
        let got = translate(&r(&t), va, Access::Read, false, &t.mem);
        assert_eq!(got, err(FaultKind::AccessFlag, level));
        t.map(t.root, va, 0x8000_0000, level, RW_EL1 | 0b10 << 6);
        let got = translate(&r(&t), va, Access::Write, false, &t.mem);
        assert_eq!(got, err(FaultKind::Permission, level));
        // Leaf OA beyond IPS.
        t.map(t.root, va, 1 << 41, level, RW_EL1);
        let got = translate(&r(&t), va, Access::Read, false, &t.mem);
        assert_eq!(got, err(FaultKind::AddressSize, level));
    }
}

#[test]
fn fault_status_codes() {
    let f = |kind, level| Fault { kind, level }.fsc();
    assert_eq!(f(FaultKind::AddressSize, 2), 0x02);
    assert_eq!(f(FaultKind::Translation, 0), 0x04);
    assert_eq!(f(FaultKind::Translation, 3), 0x07);
    assert_eq!(f(FaultKind::AccessFlag, 1), 0x09);
    assert_eq!(f(FaultKind::Permission, 3), 0x0f);
    assert_eq!(f(FaultKind::ExternalAbortOnWalk, 1), 0x15);
}

#[test]
fn region_checks_give_level_zero_translation_faults() {
    let mut t = Tables::new(Granule::K4, 48);
    let root1 = t.alloc();
    t.map(t.root, 0x1000, RAM, 3, RW_EL1 | 0b01 << 6);
    t.map(root1, 0xffff_0000_0000_1000, RAM, 3, RW_EL1);
    let base = tcr(Granule::K4, 16, Granule::K4, 16, 5);
    let r = |tcr: u64| regs(tcr, t.root, root1);
    let t0 = |tcr: u64, va: u64, a: Access, el0: bool| translate(&r(tcr), va, a, el0, &t.mem);
    let l0 = err(FaultKind::Translation, 0);
    assert!(t0(base, 0x1000, Access::Read, false).is_ok());
    assert!(t0(base, 0xffff_0000_0000_1000, Access::Read, false).is_ok());
    // EPD0 (bit 7), EPD1 (bit 23).
    assert_eq!(t0(base | 1 << 7, 0x1000, Access::Read, false), l0);
    assert_eq!(
        t0(base | 1 << 23, 0xffff_0000_0000_1000, Access::Read, false),
        l0
    );
    // E0PD0 (bit 55) blocks EL0 only.
    assert_eq!(t0(base | 1 << 55, 0x1000, Access::Read, true), l0);
    assert!(t0(base | 1 << 55, 0x1000, Access::Read, false).is_ok());
    // T0SZ out of 16..=39.
    assert_eq!(t0(base & !0x3f | 15, 0x1000, Access::Read, false), l0);
    assert_eq!(t0(base & !0x3f | 40, 0x1000, Access::Read, false), l0);
    // Tagged pointers: TBI0 (bit 37) for data; with TBID0 (bit 51) not for fetches.
    let tagged = 0xab00_0000_0000_1000;
    assert_eq!(t0(base, tagged, Access::Read, false), l0);
    assert_eq!(
        t0(base | 1 << 37, tagged, Access::Read, false).unwrap().pa,
        RAM
    );
    assert!(t0(base | 1 << 37, tagged, Access::Fetch, true).is_ok());
    assert_eq!(
        t0(base | 1 << 37 | 1 << 51, tagged, Access::Fetch, true),
        l0
    );
    // TBI1 (bit 38): the tag of an upper address may be anything; bit 55 selects.
    let tag1 = 0x1280_0000_0000_1000u64 | 0xff << 48 | 1 << 55;
    assert_eq!(t0(base, tag1, Access::Read, false), l0);
    assert_eq!(
        t0(base | 1 << 38, tag1, Access::Read, false).unwrap().pa,
        RAM
    );
    // TTBR BADDR above the IPS (32 bits): level-0 Address size fault.
    let mut rr = r(tcr(Granule::K4, 16, Granule::K4, 16, 0));
    rr.ttbr0 = 1 << 33;
    assert_eq!(
        translate(&rr, 0x1000, Access::Read, false, &t.mem),
        err(FaultKind::AddressSize, 0)
    );
}

#[test]
fn self_referencing_tables_terminate() {
    for g in ALL {
        let mut t = Tables::new(g, 48);
        // Every entry of the root points at the root itself.
        for i in 0..(1u64 << (g.bits() - 3)) {
            t.write(t.root + 8 * i, t.root | TABLE | AF);
        }
        let r = regs(tcr(g, 16, g, 16, 5), t.root, t.root);
        for va in [0u64, 0x7fff_ffff_f000, 0xffff_8000_0000_0000, 0x1234_5678] {
            t.mem.reads.set(0);
            let mut tr = WalkTrace::default();
            let got = translate_traced(&r, va, Access::Read, false, &t.mem, &mut tr);
            assert!(t.mem.reads.get() <= 4, "{g:?}: {} reads", t.mem.reads.get());
            assert_eq!(tr.steps().len(), t.mem.reads.get());
            // The level-3 read sees "page" bits 11: a valid mapping of the root itself.
            assert_eq!(got.unwrap().pa & !mask(g.bits()), t.root, "{g:?}");
        }
    }
}

#[test]
fn traced_walk_records_each_level() {
    let mut t = Tables::new(Granule::K16, 47);
    let va = 0x0000_4567_89ab_c000 & mask(47);
    t.map(t.root, va, 0x4300_0000, 3, RW_EL1);
    let r = regs(tcr(Granule::K16, 17, Granule::K16, 17, 5), t.root, 0);
    let mut tr = WalkTrace::default();
    let got = translate_traced(&r, va, Access::Read, false, &t.mem, &mut tr).unwrap();
    assert_eq!(got.pa, 0x4300_0000 | (va & 0x3fff));
    assert_eq!(
        (tr.upper, tr.granule, tr.start_level),
        (Some(false), Some(Granule::K16), 1)
    );
    let levels: Vec<i8> = tr.steps().iter().map(|s| s.level).collect();
    assert_eq!(levels, [1, 2, 3]);
    let first = tr.steps()[0];
    assert_eq!((first.table, first.index), (t.root, va >> 36));
    assert_eq!(first.desc_addr, t.root + 8 * (va >> 36));
    assert_eq!(tr.steps()[2].desc, Some(0x4300_0000 | RW_EL1 | TABLE));
    // A traced fault keeps the steps up to the fault; reset on every call.
    let mut r2 = r;
    r2.ttbr0 = 0x1000_0000;
    let got = translate_traced(&r2, va, Access::Read, false, &t.mem, &mut tr);
    assert_eq!(got, err(FaultKind::ExternalAbortOnWalk, 1));
    assert_eq!(tr.steps().len(), 1);
    assert_eq!(tr.steps()[0].desc, None);
}
