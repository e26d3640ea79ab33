//! The JIT tier against the interpreter: random programs (the decoder tests' generator:
//! every covered group, system instructions, random words, pointers into RAM and out of it,
//! so data aborts land in the middle of blocks) run batch by batch on two identical CPUs,
//! one compiling every block on its first entry, the other interpreting; registers, PSTATE,
//! `next_pc`, the stop, `Cpu::insns` and memory must match at every batch end, with random
//! batch limits (budgets smaller than a block) and attention raised at random batches (an
//! interrupt arriving mid-run), with the dirty-page log off (stores written inline) and on
//! (the pages they mark must match). Plus code changed under compiled blocks: by a store of the
//! block itself, by a debugger write between batches; loads against the data TLB's EL tags.

use std::sync::atomic::{AtomicU32, Ordering};

use super::super::block::BlockCache;
use super::super::decode::tests::{
    new_cpu, outcome, random_state, random_word, warm_data_tlb, window,
};
use super::super::{Cpu, Stop};
use crate::backend::model::testutil::{cpu_with, load, ram, RAM};
use crate::test_rng::Rng;

/// Gives `cpu` a block cache whose JIT compiles every block on its first entry (shared with
/// the other `jit*` test files).
pub(crate) fn jit_now(cpu: &mut Cpu) {
    let mut blocks = BlockCache::new(cpu.bus.ram(), true);
    if let Some(j) = blocks.jit.as_deref_mut() {
        j.hot = 1;
    }
    cpu.blocks = Some(blocks);
}

/// Gives `cpu` a block cache without the JIT.
pub(crate) fn interpreted(cpu: &mut Cpu) {
    cpu.blocks = Some(BlockCache::new(cpu.bus.ram(), false));
}

/// Blocks `cpu`'s JIT compiled so far.
pub(crate) fn compiled(cpu: &Cpu) -> u64 {
    cpu.blocks
        .as_ref()
        .and_then(|b| b.jit.as_ref())
        .map_or(0, |j| j.compiled)
}

#[test]
fn compiled_blocks_match_the_interpreter_on_random_programs() {
    const CODE: u64 = RAM + 0x1800;
    let mut r = Rng(0x6a69_745f_6469_6666);
    let mut compared = 0u64;
    let mut stops = 0u64;
    let mut jitted = 0u64;
    let mut logged_programs = 0u64;
    for prog in 0..300 {
        let (mem_a, mem_b) = (ram(), ram());
        let words: Vec<u32> = (0..1024).map(|_| jit_word(&mut r)).collect();
        load(&mem_a, CODE, &words);
        load(&mem_b, CODE, &words);
        let (mut a, mut b) = (new_cpu(&mem_a), new_cpu(&mem_b));
        random_state(&mut r, &mut a);
        edge_values(&mut r, &mut a);
        a.dbg.cfg.enable &= r.below(8) == 0;
        a.st.pc = CODE + 4 * r.below(16);
        b.st = a.st.clone();
        b.dbg.cfg = a.dbg.cfg.clone();
        if r.below(2) == 0 {
            warm_data_tlb(&mut a);
            warm_data_tlb(&mut b);
        }
        // A third of the programs with the dirty-page log on (stores then mark their
        // pages through the trampoline instead of writing inline).
        let logged = r.below(3) == 0;
        if logged {
            a.bus.ram().dirty().take();
            b.bus.ram().dirty().take();
        }
        jit_now(&mut a);
        interpreted(&mut b);
        for batch in 0..64 {
            let limit = if r.below(2) == 0 {
                1 + r.below(20) as u32
            } else {
                256
            };
            let attention = AtomicU32::new(0);
            if r.below(8) == 0 {
                attention.store(1, Ordering::Relaxed);
            }
            let ra = a.run_batch(&attention, limit);
            let rb = b.run_batch(&attention, limit);
            let (oa, ob) = (outcome(&a, &ra), outcome(&b, &rb));
            assert!(
                oa == ob && a.insns == b.insns,
                "program {prog}, batch {batch}: JIT and interpreter differ\n--- jit ({} insns):\n{oa}\n--- interpreter ({} insns):\n{ob}",
                a.insns,
                b.insns
            );
            assert!(
                window(&mem_a) == window(&mem_b),
                "program {prog}, batch {batch}: memory differs"
            );
            if logged {
                // Taken at every batch end: a page marked in an earlier batch is marked
                // again only by a later store to it.
                assert_eq!(
                    a.bus.ram().dirty().take(),
                    b.bus.ram().dirty().take(),
                    "program {prog}, batch {batch}: dirty pages differ"
                );
            }
            compared += 1;
            if ra.is_err() {
                stops += 1;
                a.st.pc = a.st.pc.wrapping_add(4);
                b.st.pc = a.st.pc;
            }
        }
        logged_programs += logged as u64;
        jitted += compiled(&a);
    }
    assert!(
        logged_programs > 50,
        "only {logged_programs} logged programs"
    );
    assert!(compared > 10_000, "only {compared} batches compared");
    assert!(stops > 1000, "only {stops} stops compared");
    assert!(jitted > 1000, "only {jitted} blocks compiled");
}

/// A random word of the decoder tests' groups, in a third of the cases with equal source
/// registers (Rm = Rn, no shift) or a small immediate (imm12 < 4), where carry and overflow of
/// equal or boundary operands show.
fn jit_word(r: &mut Rng) -> u32 {
    let w = random_word(r);
    match r.below(6) {
        0 => (w & !(31 << 16 | 63 << 10)) | ((w >> 5) & 31) << 16,
        1 => (w & !(0xfff << 10)) | (r.below(4) as u32) << 10,
        _ => w,
    }
}

/// Values where flags and widths change (carry and overflow boundaries, equal operands) in
/// a third of the registers, so that C and V of equal or boundary operands are compared.
fn edge_values(r: &mut Rng, cpu: &mut Cpu) {
    const EDGES: [u64; 9] = [
        0,
        1,
        u64::MAX,
        1 << 63,
        (1 << 63) - 1,
        0x7fff_ffff,
        0x8000_0000,
        0xffff_ffff,
        0x1_0000_0000,
    ];
    for n in 0..31 {
        match r.below(6) {
            0 => cpu.st.x[n] = EDGES[r.below(EDGES.len() as u64) as usize],
            1 => cpu.st.x[n] = cpu.st.x[r.below(31) as usize],
            _ => {}
        }
    }
}

/// Runs batches until one stops (at most `n`).
fn run(cpu: &mut Cpu, n: usize) -> Option<Stop> {
    let attention = AtomicU32::new(0);
    (0..n).find_map(|_| cpu.run_batch(&attention, 256).err())
}

#[test]
fn a_store_into_the_compiled_block_takes_effect_at_once() {
    let (mut cpu, _mem) = cpu_with(&[
        0xd280_0000, // 0x00: mov x0, #0
        0x9100_0400, // 0x04: add x0, x0, #1  (loop)
        0xb900_0022, // 0x08: str w2, [x1]  (x1 = RAM + 0x10 after the fifth round)
        0xf100_281f, // 0x0c: cmp x0, #10
        0x54ff_ffa1, // 0x10: b.ne 0x04  (replaced by `brk #1` when x1 points at it)
        0xd420_0040, // 0x14: brk #2
    ]);
    jit_now(&mut cpu);
    // x1 aims at a harmless word (RAM + 0x100) until x0 = 5, then at the b.ne: done by
    // running to x0 = 5 first.
    cpu.st.x[1] = RAM + 0x100;
    cpu.st.x[2] = 0xd420_0020; // brk #1
    let attention = AtomicU32::new(0);
    while cpu.st.x[0] < 5 {
        cpu.run_batch(&attention, 4).expect("runs");
    }
    assert!(compiled(&cpu) >= 1, "the loop was compiled");
    cpu.st.x[1] = RAM + 0x10;
    let stop = run(&mut cpu, 8);
    assert!(
        matches!(stop, Some(Stop::Exception(ref e)) if e.iss == 1),
        "the stored brk #1 ran: {stop:?}"
    );
    assert_eq!(cpu.st.pc, RAM + 0x10);
}

#[test]
fn a_store_into_an_earlier_op_of_a_looping_block_is_seen_at_the_next_iteration() {
    // Words are compared at block entry and after anything that may write them, not before
    // every op: a store into the running block (inline, or by a handler: the pair store)
    // must still end it, here while the block loops on itself in generated code.
    for store in [
        0xb900_0022u32, // str w2, [x1]  (inline)
        0x2900_0822,    // stp w2, w2, [x1]  (through its handler)
    ] {
        looping_store_is_seen(store, &|cpu| cpu.st.x[2] = 0xd420_0020); // brk #1
    }
}

/// A block looping on itself whose op `store` (at 0x04, storing from register 2 to [x1])
/// rewrites the block's first word with `brk #1` once x0 reaches 5 (`prepare` puts what the
/// store writes into register 2): with and without the JIT, the brk must run at the next
/// iteration, after the same instructions.
pub(crate) fn looping_store_is_seen(store: u32, prepare: &dyn Fn(&mut Cpu)) {
    let words = [
        0x9100_0400, // 0x00: add x0, x0, #1  (replaced by `brk #1` when x1 = RAM)
        store,       // 0x04: the store
        0xf101_901f, // 0x08: cmp x0, #100
        0x54ff_ffa1, // 0x0c: b.ne 0x00
    ];
    let mut stops = Vec::new();
    for jit in [true, false] {
        let (mut cpu, _mem) = cpu_with(&words);
        cpu.st.sys.cpacr = 3 << 20; // FPEN: SIMD&FP stores allowed (Arm ARM D19.2.30)
        cpu.st.pstate = 0x3c5; // EL1h, DAIF masked
        if jit {
            jit_now(&mut cpu);
        } else {
            interpreted(&mut cpu);
        }
        prepare(&mut cpu);
        cpu.st.x[1] = RAM + 0x100; // harmless until x0 = 5
        let attention = AtomicU32::new(0);
        while cpu.st.x[0] < 5 {
            cpu.run_batch(&attention, 4).expect("runs");
        }
        assert_eq!(compiled(&cpu) >= 1, jit, "the loop was compiled");
        cpu.st.x[1] = RAM;
        let stop = run(&mut cpu, 8);
        assert!(
            matches!(stop, Some(Stop::Exception(ref e)) if e.iss == 1),
            "store {store:#x}, jit {jit}: the stored brk #1 ran: {stop:?}"
        );
        assert_eq!(cpu.st.pc, RAM);
        stops.push((cpu.insns, cpu.st.x[0]));
    }
    assert_eq!(stops[0], stops[1], "store {store:#x}: JIT and interpreter");
}

#[test]
fn a_debugger_write_between_batches_replaces_compiled_code() {
    let (mut cpu, mem) = cpu_with(&[
        0x9100_0400, // 0x00: add x0, x0, #1
        0x17ff_ffff, // 0x04: b 0x00
    ]);
    jit_now(&mut cpu);
    let attention = AtomicU32::new(0);
    cpu.run_batch(&attention, 100).expect("runs");
    assert_eq!(cpu.st.x[0], 50);
    assert_eq!(cpu.insns, 100);
    assert!(compiled(&cpu) >= 1);
    load(&mem, RAM, &[0xd420_0060]); // brk #3 over the add
    let stop = run(&mut cpu, 2);
    assert!(
        matches!(stop, Some(Stop::Exception(ref e)) if e.iss == 3),
        "{stop:?}"
    );
    assert_eq!(cpu.st.pc, RAM);
    assert_eq!(cpu.insns, 100);
}

#[test]
fn a_budget_smaller_than_the_block_runs_on_the_interpreter() {
    let (mut cpu, _mem) = cpu_with(&[
        0x9100_0400, // 0x00: add x0, x0, #1
        0x9100_0400, // 0x04: add x0, x0, #1
        0x9100_0400, // 0x08: add x0, x0, #1
        0x17ff_fffd, // 0x0c: b 0x00
    ]);
    jit_now(&mut cpu);
    let attention = AtomicU32::new(0);
    for n in 1..=40u64 {
        cpu.run_batch(&attention, 3).expect("runs");
        assert_eq!(cpu.insns, 3 * n, "exactly the limit each batch");
    }
    assert_eq!(cpu.st.x[0], 90);
}

#[test]
fn compiled_flags_match_for_equal_operands() {
    let (mut cpu, _mem) = cpu_with(&[
        0xeb01_003f, // 0x00: cmp x1, x1  (subs xzr, x1, x1: Z and C set)
        0x9a9f_37e3, // 0x04: cset x3, cs  (csinc x3, xzr, xzr, cc)
        0xab02_005f, // 0x08: cmn x2, x2  (adds xzr, x2, x2 with x2 = 2^63: Z, C, V set)
        0xd420_0020, // 0x0c: brk #1
    ]);
    jit_now(&mut cpu);
    cpu.st.x[1] = 5;
    cpu.st.x[2] = 1 << 63;
    cpu.st.pstate &= !(0xf << 28);
    let stop = run(&mut cpu, 1);
    assert!(matches!(stop, Some(Stop::Exception(_))), "{stop:?}");
    assert_eq!(compiled(&cpu), 1);
    assert_eq!(cpu.st.x[3], 1, "the cmp of equal operands set C");
    assert_eq!(cpu.st.nzcv(), 0b0111, "Z, C, V from the cmn");
    assert_eq!(cpu.insns, 3);
}

#[test]
fn a_self_loop_stops_at_the_limit_and_at_attention() {
    let (mut cpu, _mem) = cpu_with(&[
        0x9100_0400, // 0x00: add x0, x0, #1
        0x9100_0821, // 0x04: add x1, x1, #2
        0x17ff_fffe, // 0x08: b 0x00
    ]);
    jit_now(&mut cpu);
    let quiet = AtomicU32::new(0);
    let mut total = 0;
    for limit in 1..=60u32 {
        cpu.run_batch(&quiet, limit).expect("runs");
        total += limit as u64;
        assert_eq!(cpu.insns, total, "exactly `limit` instructions in a batch");
        let at = (cpu.st.pc - RAM) / 4;
        let (adds0, adds1) = (total / 3 + (at > 0) as u64, total / 3 + (at > 1) as u64);
        assert_eq!(
            (cpu.st.x[0], cpu.st.x[1]),
            (adds0, 2 * adds1),
            "after {total}"
        );
    }
    assert!(compiled(&cpu) >= 1);
    let raised = AtomicU32::new(1);
    let before = cpu.insns;
    cpu.st.pc = RAM;
    cpu.run_batch(&raised, 256).expect("runs");
    assert_eq!(
        cpu.insns - before,
        3,
        "one run of the block, then attention ends the batch"
    );
}

#[test]
fn compiled_loads_and_stores_match_the_interpreter() {
    // Every addressing mode and size through the inline plain path (the data TLB warm)
    // and through the handler (a cold page, an address outside RAM: a stop mid-block).
    let words = [
        0xf840_8c20, // ldr x0, [x1, #8]!
        0x38c0_1422, // ldrsb w2, [x1], #1
        0x78c0_1029, // ldursh w9, [x1, #1]  (bytes 2 and 3 of a data word: random)
        0x7880_2023, // ldursh x3, [x1, #2]
        0xb8a0_6824, // ldrsw x4, [x1, x0]  (x0 = a loaded offset: small)
        0xf800_8c25, // str x5, [x1, #8]!
        0x3800_1426, // strb w6, [x1], #1
        0xb820_7827, // str w7, [x1, x0, lsl #2]
        0xf940_0508, // ldr x8, [x8, #8]
        0xd420_0020, // brk #1
    ];
    let mut r = Rng(0x6c64_7374);
    for case in 0..200 {
        let (mem_a, mem_b) = (ram(), ram());
        load(&mem_a, RAM, &words);
        load(&mem_b, RAM, &words);
        let data: Vec<u32> = (0..64)
            .map(|_| r.below(16) as u32 | (r.next() as u32) << 8)
            .collect();
        load(&mem_a, RAM + 0x2000, &data);
        load(&mem_b, RAM + 0x2000, &data);
        let (mut a, mut b) = (new_cpu(&mem_a), new_cpu(&mem_b));
        a.st.pc = RAM;
        a.st.x[1] = RAM + 0x2000 + 8 * r.below(8);
        a.st.x[5] = r.next();
        a.st.x[6] = r.next();
        a.st.x[7] = r.next();
        a.st.x[8] = match case % 4 {
            0 => 0x1000, // outside RAM: an abort in the middle of the block
            _ => RAM + 0x2000,
        };
        b.st = a.st.clone();
        if case % 3 != 0 {
            warm_data_tlb_at(&mut a, RAM + 0x2000);
            warm_data_tlb_at(&mut b, RAM + 0x2000);
        }
        one_batch_each(&mut a, &mut b, case);
        assert!(
            data_page(&mem_a) == data_page(&mem_b),
            "case {case}: memory differs"
        );
    }
}

#[test]
fn compiled_stores_match_the_interpreter_with_the_dirty_log_off_and_on() {
    // Every store size and addressing mode through the inline plain path (the data TLB
    // warm), through the handler (a cold page, an address outside RAM: a
    // stop mid-block); with the dirty-page log on, the pages marked must match too.
    let words = [
        0xf800_8c25, // str x5, [x1, #8]!
        0xb820_7827, // str w7, [x1, x0, lsl #2]
        0x7900_0427, // strh w7, [x1, #2]
        0xf81f_8025, // stur x5, [x1, #-8]
        0x3800_1426, // strb w6, [x1], #1
        0x781f_fc26, // strh w6, [x1, #-1]!
        0xf900_011f, // str xzr, [x8]
        0xd420_0020, // brk #1
    ];
    let mut r = Rng(0x7374_7273);
    let mut logged_hits = 0;
    for case in 0..200 {
        let (mem_a, mem_b) = (ram(), ram());
        load(&mem_a, RAM, &words);
        load(&mem_b, RAM, &words);
        let (mut a, mut b) = (new_cpu(&mem_a), new_cpu(&mem_b));
        a.st.pc = RAM;
        a.st.x[0] = r.below(16);
        // Aligned but for one case in seven (then an alignment fault somewhere in the
        // block: the MMU is off, so data accesses are to Device memory).
        let skew = if case % 7 == 0 { r.below(8) } else { 0 };
        a.st.x[1] = RAM + 0x2000 + 8 * r.below(8) + skew;
        a.st.x[5] = r.next();
        a.st.x[6] = r.next();
        a.st.x[7] = r.next();
        a.st.x[8] = match case % 4 {
            0 => 0x1000, // outside RAM: an abort in the middle of the block
            _ => RAM + 0x2000 + 8 * r.below(4),
        };
        b.st = a.st.clone();
        let warm = case % 3 != 0;
        if warm {
            warm_data_tlb_at(&mut a, RAM + 0x2000);
            warm_data_tlb_at(&mut b, RAM + 0x2000);
        }
        // The log turned on after the warming (which marked the page): only the block's
        // own stores mark it now.
        let logged = case % 5 < 2;
        if logged {
            a.bus.ram().dirty().take();
            b.bus.ram().dirty().take();
            logged_hits += warm as u32;
        }
        one_batch_each(&mut a, &mut b, case);
        assert!(
            data_page(&mem_a) == data_page(&mem_b),
            "case {case}: memory differs"
        );
        let (da, db) = (a.bus.ram().dirty().take(), b.bus.ram().dirty().take());
        assert_eq!(da, db, "case {case}: dirty pages differ");
        assert_eq!(compiled(&a), 1, "case {case}: the block was not compiled");
    }
    assert!(
        logged_hits > 40,
        "only {logged_hits} logged cases with a warm TLB"
    );
}

/// Runs one batch on `a` with every block compiled and on `b` interpreted; their outcomes
/// and instruction counts must match.
fn one_batch_each(a: &mut Cpu, b: &mut Cpu, case: u32) {
    jit_now(a);
    interpreted(b);
    let attention = AtomicU32::new(0);
    let (ra, rb) = (a.run_batch(&attention, 256), b.run_batch(&attention, 256));
    let (oa, ob) = (outcome(a, &ra), outcome(b, &rb));
    assert!(
        oa == ob && a.insns == b.insns,
        "case {case}:\n{oa}\n---\n{ob}"
    );
}

/// The bytes of the page at `RAM + 0x2000`, where the load and store tests access data.
fn data_page(mem: &vm_memory::GuestMemoryMmap) -> Vec<u8> {
    use vm_memory::{Bytes, GuestAddress};
    let mut buf = vec![0u8; 0x1000];
    mem.read_slice(&mut buf, GuestAddress(RAM + 0x2000))
        .expect("the data page is RAM");
    buf
}

/// Fills the data TLB for reads and writes of the page at `page`.
fn warm_data_tlb_at(cpu: &mut Cpu, page: u64) {
    if let Ok(v) = cpu.read_mem(page, 8, None, false) {
        let _ = cpu.write_mem(page, 8, v, None, false);
    }
}

#[test]
fn a_compiled_load_at_el0_ignores_data_tlb_entries_of_el1() {
    // The data TLB says (for EL1 only) that VA page X is RAM page Y; a load at EL0 must not
    // use that entry (the full path translates X itself: the flat map, MMU off) and reads
    // X's value, compiled or not.
    const X: u64 = RAM + 0x4000;
    const Y: u64 = RAM + 0x8000;
    for jit in [false, true] {
        let (mut cpu, mem) = cpu_with(&[
            0xf940_0020, // 0x00: ldr x0, [x1]
            0xd420_0020, // 0x04: brk #1
        ]);
        load(&mem, X, &[0x1111_1111, 0]);
        load(&mem, Y, &[0x2222_2222, 0]);
        let page = cpu.bus.data_page(Y).expect("RAM page");
        cpu.tlb.data_insert(X, false, false, page);
        cpu.st.pstate &= !0xf; // EL0t
        cpu.st.x[1] = X;
        if jit {
            jit_now(&mut cpu);
        } else {
            interpreted(&mut cpu);
        }
        let stop = run(&mut cpu, 1);
        assert!(matches!(stop, Some(Stop::Exception(_))), "{stop:?}");
        assert_eq!(cpu.st.x[0], 0x1111_1111, "jit {jit}: X's value, not Y's");
    }
}
