//! Flags held lazily in compiled blocks (`jit_flags.rs`) and the per-block values of the
//! inline data-TLB path (`jit_ldst.rs`) against the interpreter: every condition code after
//! every inline flag-setting form, in B.cond and in the four conditional selects; flags
//! observed at exits on later iterations of a self-loop (the batch's budget, a handler
//! call for a load missing the data TLB, a load that faults mid-loop); loads at EL0 and EL1
//! with data-TLB entries tagged for either EL.

use std::sync::atomic::AtomicU32;

use super::super::decode::tests::{new_cpu, outcome};
use super::super::jit::tests::{compiled, interpreted, jit_now};
use super::super::Cpu;
use crate::backend::model::testutil::{cpu_with, load, ram, RAM, RAM_SIZE};
use crate::test_rng::Rng;

/// Gives `cpu` a block cache whose JIT compiles every block on its first entry (`jit`), or
/// one without the JIT.
fn blocks(cpu: &mut Cpu, jit: bool) {
    if jit {
        jit_now(cpu);
    } else {
        interpreted(cpu);
    }
}

/// Every inline flag-setting form: SUBS, ADDS, ANDS (register and immediate, 64- and 32-bit,
/// into a register and into XZR: CMP, CMN, TST), reading X1 and X2.
const SETTERS: [u32; 11] = [
    0xeb02_0023, // subs x3, x1, x2
    0x6b02_0023, // subs w3, w1, w2
    0xab02_0023, // adds x3, x1, x2
    0x2b02_0023, // adds w3, w1, w2
    0xf100_043f, // cmp x1, #1
    0x3100_043f, // cmn w1, #1
    0x7100_1c23, // subs w3, w1, #7
    0xb13f_fc23, // adds x3, x1, #0xfff
    0xea02_0023, // ands x3, x1, x2
    0x6a02_003f, // tst w1, w2
    0xf240_1c23, // ands x3, x1, #0xff
];

/// CSEL, CSINC, CSINV, CSNEG x4, x1, x2 (condition in bits 15:12).
const SELECTS: [u32; 4] = [0x9a82_0024, 0x9a82_0424, 0xda82_0024, 0xda82_0424];

/// Operand values where the flags of 32- and 64-bit operations change.
const EDGES: [u64; 12] = [
    0,
    1,
    7,
    0xfff,
    u64::MAX,
    1 << 63,
    (1 << 63) - 1,
    0x7fff_ffff,
    0x8000_0000,
    0xffff_ffff,
    0x1_0000_0000,
    0xffff_ffff_8000_0000,
];

/// Runs batches on `a` (compiled) and `b` (interpreted) until both stop, at most `n`, with
/// `limit` instructions per batch; their outcomes must match after every batch.
fn compare(a: &mut Cpu, b: &mut Cpu, n: usize, limit: &mut dyn FnMut() -> u32, what: &str) {
    let attention = AtomicU32::new(0);
    for batch in 0..n {
        let l = limit();
        let (ra, rb) = (a.run_batch(&attention, l), b.run_batch(&attention, l));
        let (oa, ob) = (outcome(a, &ra), outcome(b, &rb));
        assert!(
            oa == ob && a.insns == b.insns,
            "{what}, batch {batch}: JIT and interpreter differ\n--- jit ({} insns):\n{oa}\n--- interpreter ({} insns):\n{ob}",
            a.insns,
            b.insns
        );
        if ra.is_err() {
            return;
        }
    }
}

#[test]
fn every_condition_after_every_inline_flag_setter_matches_the_interpreter() {
    let mut r = Rng(0x666c_6167_7331);
    for (s, &setter) in SETTERS.iter().enumerate() {
        for cond in 0..16u32 {
            let words = [
                setter,                                        // 0x00
                SELECTS[(cond as usize + s) % 4] | cond << 12, // 0x04: reads the held flags
                0x5400_0040 | cond,                            // 0x08: b.cond 0x10
                0xd280_0026,                                   // 0x0c: mov x6, #1
                0xd420_0020,                                   // 0x10: brk #1
            ];
            let (mut a, _ma) = cpu_with(&words);
            let (mut b, _mb) = cpu_with(&words);
            blocks(&mut a, true);
            blocks(&mut b, false);
            for case in 0..48 {
                let x1 = EDGES[case % EDGES.len()];
                let x2 = if case < 24 {
                    EDGES[(case * 5 + cond as usize) % EDGES.len()]
                } else {
                    x1 ^ (r.below(2) << r.below(64))
                };
                a.st.x[1] = x1;
                a.st.x[2] = x2;
                a.st.x[6] = 0;
                a.st.pc = RAM;
                // Flags before the setter that differ from its own in some case.
                a.st.pstate = (a.st.pstate & !(0xf << 28)) | r.below(16) << 28;
                b.st = a.st.clone();
                let what = format!("setter {setter:#x}, cond {cond}, x1 {x1:#x}, x2 {x2:#x}");
                compare(&mut a, &mut b, 4, &mut || 256, &what);
            }
            assert!(compiled(&a) >= 1, "setter {setter:#x}: compiled");
        }
    }
}

#[test]
fn flags_held_across_self_loop_iterations_are_exact_at_every_exit() {
    // A loop like cbench's CRC: a byte load walking up memory, a select reading the flags
    // of the previous iteration's setter (at the loop head: held or in PSTATE), a setter,
    // a select reading its flags, a conditional branch back. Exits: the batch's budget
    // (random limits), the load missing the data TLB (a handler call, then on), the load
    // faulting past the end of RAM, the branch not taken.
    const END: u64 = RAM + RAM_SIZE as u64;
    let mut r = Rng(0x6c6f_6f70_666c);
    let mut faults = 0;
    for case in 0..160 {
        let setter = SETTERS[r.below(SETTERS.len() as u64) as usize];
        let (c1, c2, c3) = (r.below(16) as u32, r.below(16) as u32, r.below(16) as u32);
        // Mostly a branch back while not equal, so that the loop runs long.
        let back = if r.below(3) == 0 { c1 } else { 1 };
        let words = [
            0x3840_1402,                             // 0x00: ldrb w2, [x0], #1
            0x9a87_04e7 | c2 << 12,                  // 0x04: csinc x7, x7, x7, c2
            0x4a03_0043,                             // 0x08: eor w3, w2, w3
            setter,                                  // 0x0c
            SELECTS[(case % 4) as usize] | c3 << 12, // 0x10: reads the setter's flags
            0x54ff_ff60 | back,                      // 0x14: b.back 0x00
            0xd420_0020,                             // 0x18: brk #1
        ];
        let (mem_a, mem_b) = (ram(), ram());
        load(&mem_a, RAM, &words);
        load(&mem_b, RAM, &words);
        let (mut a, mut b) = (new_cpu(&mem_a), new_cpu(&mem_b));
        a.st.pc = RAM;
        a.st.x[0] = match case % 3 {
            0 => END - 1 - r.below(64),          // faults past the end of RAM
            1 => RAM + 0x3000 - 1 - r.below(64), // into a page with no data-TLB entry
            _ => RAM + 0x2000 + r.below(0x800),
        };
        a.st.x[1] = if r.below(2) == 0 {
            EDGES[r.below(EDGES.len() as u64) as usize]
        } else {
            a.st.x[0] + r.below(512)
        };
        a.st.x[3] = r.next();
        a.st.pstate = (a.st.pstate & !(0xf << 28)) | r.below(16) << 28;
        b.st = a.st.clone();
        for cpu in [&mut a, &mut b] {
            // The data TLB warm for the page the load starts in.
            let _ = cpu.read_mem(cpu.st.x[0] & !0xfff, 1, None, false);
        }
        blocks(&mut a, true);
        blocks(&mut b, false);
        let what = format!("case {case}: setter {setter:#x}, conds {c1} {c2} {c3}");
        compare(&mut a, &mut b, 40, &mut || 1 + r.below(60) as u32, &what);
        assert!(compiled(&a) >= 1, "{what}: compiled");
        faults += (a.st.x[0] >= END) as u32;
    }
    assert!(faults > 20, "only {faults} loops ran into the end of RAM");
}

#[test]
fn compiled_loads_use_data_tlb_entries_of_their_own_el_only() {
    // The data TLB says that VA page X is RAM page Y, for EL0 or for EL1; a loop loading
    // from X at EL0 or EL1 reads Y's value only through an entry of its own EL (the full
    // path translates X itself otherwise: the flat map, MMU off), compiled or not.
    const X: u64 = RAM + 0x4000;
    const Y: u64 = RAM + 0x8000;
    let words = [
        0xf940_0020, // 0x00: ldr x0, [x1]
        0x8b00_00a5, // 0x04: add x5, x5, x0
        0xf100_04c6, // 0x08: subs x6, x6, #1
        0x54ff_ffa1, // 0x0c: b.ne 0x00
        0xd420_0020, // 0x10: brk #1
    ];
    let mut sums = Vec::new();
    for (el0, entry_el0) in [(false, false), (false, true), (true, false), (true, true)] {
        let mut got = Vec::new();
        for jit in [true, false] {
            let (mut cpu, mem) = cpu_with(&words);
            load(&mem, X, &[0x1111_1111, 0]);
            load(&mem, Y, &[0x2222_2222, 0]);
            let page = cpu.bus.data_page(Y).expect("RAM page");
            cpu.tlb.data_insert(X, entry_el0, false, page);
            if el0 {
                cpu.st.pstate &= !0xf; // EL0t
            }
            cpu.st.x[1] = X;
            cpu.st.x[6] = 8;
            blocks(&mut cpu, jit);
            let attention = AtomicU32::new(0);
            let stop = (0..4).find_map(|_| cpu.run_batch(&attention, 256).err());
            assert!(stop.is_some(), "the brk stops");
            assert_eq!(compiled(&cpu) >= 1, jit);
            got.push(cpu.st.x[5]);
        }
        assert_eq!(
            got[0], got[1],
            "EL0 {el0}, entry for EL0 {entry_el0}: JIT and interpreter"
        );
        sums.push(got[0]);
    }
    // Through the entry when the ELs agree, X itself otherwise.
    let (x8, y8) = (8 * 0x1111_1111, 8 * 0x2222_2222);
    assert_eq!(sums, [y8, x8, x8, y8]);
}
