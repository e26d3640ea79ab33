//! The stage-1 page-table walker (`kvmdbg::a64::walk`) on hostile tables: arbitrary
//! translation registers, virtual address, access kind and physical memory (the input after a
//! 49-byte header, at physical address 0; reads past it hit no memory).
//!
//! Checks, besides "no panic": the traced walk agrees with the plain one; a successful
//! translation keeps the offset inside its block (`pa` and `va` agree below `size_log2`) and
//! another address of the same block translates the same way (the debugger's memory access
//! translates once per page or block and relies on it); the trace holds at most five levels.
//! Shared by the fuzz target (fuzz/fuzz_targets/page_walk.rs) and the replay of saved inputs
//! (tests/fuzz_data_regressions.rs).

use kvmdbg::a64::walk::{translate, translate_traced, Access, PhysMem, TranslationRegs, WalkTrace};

/// Header: five registers, the VA (8 bytes each), then one byte of access kind and EL.
const HEADER: usize = 6 * 8 + 1;

struct Mem<'a>(&'a [u8]);

impl PhysMem for Mem<'_> {
    fn read_u64(&self, pa: u64) -> Option<u64> {
        let at = usize::try_from(pa).ok()?;
        let b = self.0.get(at..at.checked_add(8)?)?;
        Some(u64::from_le_bytes(b.try_into().ok()?))
    }
}

fn mask(bits: u8) -> u64 {
    if bits >= 64 {
        u64::MAX
    } else {
        (1u64 << bits) - 1
    }
}

/// Checks the walker on one input.
pub fn check(data: &[u8]) {
    if data.len() < HEADER {
        return;
    }
    let word = |i: usize| u64::from_le_bytes(data[8 * i..8 * i + 8].try_into().unwrap());
    let regs = TranslationRegs {
        sctlr: word(0),
        tcr: word(1),
        ttbr0: word(2),
        ttbr1: word(3),
        mair: word(4),
    };
    let va = word(5);
    let flags = data[48];
    let access = match flags & 3 {
        0 => Access::Read,
        1 => Access::Write,
        _ => Access::Fetch,
    };
    let el0 = flags & 4 != 0;
    let mem = Mem(&data[HEADER..]);
    let plain = translate(&regs, va, access, el0, &mem);
    let mut trace = WalkTrace::default();
    let traced = translate_traced(&regs, va, access, el0, &mem, &mut trace);
    assert_eq!(plain, traced, "traced and plain walks disagree");
    let Ok(t) = plain else {
        return;
    };
    if t.mmu_enabled {
        let last = trace.steps().last().and_then(|s| s.desc);
        assert_eq!(
            last,
            Some(t.descriptor),
            "the leaf is the last descriptor read"
        );
    }
    let m = mask(t.size_log2);
    assert_eq!(t.pa & m, va & m, "{t:?}: the offset inside the block moved");
    // Another address in the same block: flip the bits the flags byte selects below the
    // block size.
    let other = va ^ (u64::from(flags).wrapping_mul(0x0101_0101_0101_0101) & m);
    let again = translate(&regs, other, access, el0, &mem)
        .unwrap_or_else(|f| panic!("{va:#x} maps ({t:?}) but {other:#x} in its block faults: {f}"));
    assert_eq!(
        again.pa,
        t.pa ^ (va ^ other),
        "{other:#x} in the block of {va:#x}"
    );
    assert_eq!((again.size_log2, again.level), (t.size_log2, t.level));
}
