//! Fuzz-style sweep: random VAs, random TCR/TTBR/SCTLR values and random table memory.
//! Asserts the walker never panics, reads at most 4 descriptors, and that every result is
//! self-consistent.

use super::*;

use crate::test_rng::Rng;

/// Memory whose every aligned word below 2^32 is a pseudo-random function of its address,
/// biased towards valid descriptors pointing back into the same 4 GiB.
struct RandomMem {
    seed: u64,
    reads: Cell<usize>,
}

impl PhysMem for RandomMem {
    fn read_u64(&self, pa: u64) -> Option<u64> {
        self.reads.set(self.reads.get() + 1);
        if pa >> 32 != 0 {
            return None;
        }
        let mut r = Rng((pa.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ self.seed) | 1);
        let raw = r.next();
        Some(match r.next() % 4 {
            0 => raw,
            1 => (raw & 0xffff_f000) | 0b11 | (raw & 0xfff0_0000_0000_0ffc),
            _ => (raw & 0xffff_ffff) | 0b11 | AF,
        })
    }
}

fn check(r: &TranslationRegs, va: u64, a: Access, el0: bool, mem: &RandomMem) -> bool {
    mem.reads.set(0);
    let mut trace = WalkTrace::default();
    let traced = translate_traced(r, va, a, el0, mem, &mut trace);
    assert!(mem.reads.get() <= 4, "{} reads", mem.reads.get());
    assert_eq!(trace.steps().len(), mem.reads.get());
    let plain = translate(r, va, a, el0, mem);
    assert_eq!(plain, traced, "traced and untraced walks disagree");
    match plain {
        Ok(t) => {
            assert!(t.pa >> 48 == 0, "PA {:#x} beyond 48 bits", t.pa);
            assert!(t.size_log2 >= 12 && t.size_log2 <= 48);
            let low = mask(t.size_log2 as u32);
            assert_eq!(t.pa & low, va & low);
            assert!((0..=3).contains(&t.level));
            assert!(t.af && t.permits(a, el0));
            true
        }
        Err(f) => {
            assert!((0..=3).contains(&f.level), "{f}");
            assert!(f.fsc() <= 0x17);
            false
        }
    }
}

#[test]
fn random_tables_never_panic_or_loop() {
    let mut rng = Rng(0x05ee_d0f7_ab1e);
    let mut ok = 0;
    for _ in 0..20_000 {
        let mem = RandomMem {
            seed: rng.next(),
            reads: Cell::new(0),
        };
        let tcr = match rng.next() % 3 {
            0 => rng.next(),
            // Mostly-sane TCRs: valid TxSZ, any granule/IPS/TBI/EPD/HPD bits.
            _ => {
                (rng.next() & 0x0018_077f_ffc0_ffc0)
                    | (16 + rng.next() % 24)
                    | (16 + rng.next() % 24) << 16
            }
        };
        let r = TranslationRegs {
            sctlr: rng.next() | (rng.next() % 8 != 0) as u64,
            tcr,
            ttbr0: rng.next() & 0xffff_ffff,
            ttbr1: rng.next(),
            mair: rng.next(),
        };
        let va = match rng.next() % 3 {
            0 => rng.next(),
            1 => rng.next() & 0xffff_ffff,
            _ => rng.next() | 0xffff_0000_0000_0000,
        };
        let a = [Access::Read, Access::Write, Access::Fetch][(rng.next() % 3) as usize];
        ok += check(&r, va, a, rng.next() & 1 == 0, &mem) as u32;
    }
    // The generator must exercise successful walks too, not only faults.
    assert!(ok > 500, "only {ok} successful translations");
}
