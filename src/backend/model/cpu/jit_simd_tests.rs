//! The JIT's inline Advanced SIMD (`jit_simd.rs`) against the interpreter: random blocks of
//! words of every inline form (and of their neighbours the interpreter treats otherwise:
//! other sizes, opcodes, reserved bits), random vector registers and memory, bases aligned
//! and not, in RAM, outside it and on the block's own words, the data TLB warm or cold,
//! the dirty-page log off and on, SIMD&FP enabled, disabled, or enabled at EL1 only, at EL0
//! and EL1. Registers, vectors, PSTATE, the stop, `Cpu::insns`, memory and the pages marked
//! dirty must match after each batch.

use std::sync::atomic::AtomicU32;

use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use super::super::block::BlockCache;
use super::super::decode::tests::{new_cpu, outcome, random_state, warm_data_tlb, window, WIN};
use super::super::jit::tests::{compiled, interpreted, jit_now, looping_store_is_seen};
use super::super::Cpu;
use crate::backend::model::testutil::{load, ram, RAM};
use crate::test_rng::Rng;

/// A base register (X1-X4, or now and then SP) and any vector register.
fn fields(r: &mut Rng) -> (u32, u32) {
    let rn = if r.below(16) == 0 {
        31
    } else {
        1 + r.below(4) as u32
    };
    (rn, r.below(32) as u32)
}

/// A random word of one of the inline forms, or (one in six) the same with a random bit
/// of its fixed part flipped.
fn simd_word(r: &mut Rng) -> u32 {
    let (rn, rt) = fields(r);
    let q = r.below(2) as u32;
    let vn = r.below(32) as u32;
    let vm = r.below(32) as u32;
    let w = match r.below(8) {
        0 => {
            // LDR/STR (SIMD&FP): unsigned offset, or unscaled/pre/post (bits 11:10).
            // Q (size 00, opc 1x) one time in three.
            let (size, opc) = if r.below(3) == 0 {
                (0, 2 + r.below(2) as u32)
            } else {
                (r.below(4) as u32, r.below(4) as u32)
            };
            let head = 0x3c00_0000 | size << 30 | opc << 22 | rn << 5 | rt;
            if r.below(2) == 0 {
                head | 1 << 24 | (r.below(8) as u32) << 10
            } else {
                let imm9 = (r.below(64) as i32 - 32) as u32 & 0x1ff;
                head | imm9 << 12 | (r.below(4) as u32) << 10
            }
        }
        1 => {
            // LD1R: no offset, post-index by the size or by X5/X6/X31.
            let post = r.below(3) as u32;
            let rm = match post {
                0 => 0,
                1 => 31,
                _ => 5 + r.below(2) as u32,
            };
            0x0d40_c000
                | q << 30
                | (post.min(1)) << 23
                | rm << 16
                | (r.below(4) as u32) << 10
                | rn << 5
                | rt
        }
        2 => {
            // Three same: logical, ADD/SUB, MLA/MLS, MUL/PMUL, or any opcode.
            let opcode = [0b00011, 0b10000, 0b10010, 0b10011, r.below(32)][r.below(5) as usize];
            0x0e20_0400
                | q << 30
                | (r.below(2) as u32) << 29
                | (r.below(4) as u32) << 22
                | vm << 16
                | (opcode as u32) << 11
                | vn << 5
                | rt
        }
        3 => {
            // Modified immediate (o2 set one time in eight).
            0x0f00_0400
                | q << 30
                | (r.below(2) as u32) << 29
                | (r.below(8) as u32) << 16
                | (r.below(16) as u32) << 12
                | ((r.below(8) == 0) as u32) << 11
                | (r.below(32) as u32) << 5
                | rt
        }
        4 => {
            // Shift by immediate: SSHR/USHR, SSRA/USRA, SHL/SLI, or any opcode.
            let opcode = [0, 0b00010, 0b01010, r.below(32)][r.below(4) as usize];
            0x0f00_0400
                | q << 30
                | (r.below(2) as u32) << 29
                | (1 + r.below(15) as u32) << 19
                | (r.below(8) as u32) << 16
                | (opcode as u32) << 11
                | vn << 5
                | rt
        }
        5 => {
            // Copy: DUP (element, general), INS (general), SMOV, UMOV, or any imm4; the
            // general register X1-X6 or XZR (Rn of DUP/INS) or any (Rd of SMOV/UMOV).
            let imm4 = [0, 1, 3, 5, 7, r.below(16)][r.below(6) as usize] as u32;
            let xn = [1, 2, 5, 6, 31, vn][r.below(6) as usize];
            0x0e00_0400
                | q << 30
                | ((r.below(8) == 0) as u32) << 29
                | (r.below(32) as u32) << 16
                | imm4 << 11
                | xn << 5
                | rt
        }
        6 => 0x2e20_b800 | q << 30 | (r.below(4) as u32) << 22 | vn << 5 | rt, // NEG
        _ => 0x2e20_5800 | q << 30 | (r.below(4) as u32) << 22 | vn << 5 | rt, // NOT (size 0)
    };
    if r.below(6) == 0 {
        // Flip a bit outside the register fields (Rd, Rn: bits 9:0).
        w ^ 1 << (10 + r.below(22))
    } else {
        w
    }
}

/// Fills the data TLB for reads and writes of the page at `page` (its first doubleword
/// rewritten with its own value).
fn warm_page(cpu: &mut Cpu, page: u64) {
    if let Ok(v) = cpu.read_mem(page, 8, None, false) {
        let _ = cpu.write_mem(page, 8, v, None, false);
    }
}

/// The first page of RAM, where the blocks are (stores may aim at them).
fn code_page(mem: &GuestMemoryMmap) -> Vec<u8> {
    let mut buf = vec![0u8; 0x1000];
    mem.read_slice(&mut buf, GuestAddress(RAM))
        .expect("the code page is RAM");
    buf
}

#[test]
fn compiled_simd_matches_the_interpreter() {
    let mut r = Rng(0x7369_6d64_6a69_7421);
    let (mut jitted, mut stops, mut logged_warm) = (0u64, 0u64, 0u64);
    for case in 0..600 {
        let (mem_a, mem_b) = (ram(), ram());
        let mut words: Vec<u32> = (0..1 + r.below(12)).map(|_| simd_word(&mut r)).collect();
        words.push(0xd420_0020); // brk #1
        load(&mem_a, RAM, &words);
        load(&mem_b, RAM, &words);
        let data: Vec<u32> = (0..0x400).map(|_| r.next() as u32).collect();
        load(&mem_a, WIN, &data);
        load(&mem_b, WIN, &data);
        let (mut a, mut b) = (new_cpu(&mem_a), new_cpu(&mem_b));
        random_state(&mut r, &mut a);
        a.dbg.cfg.enable = false;
        a.st.pc = RAM;
        // FPEN: mostly enabled at both ELs, else 0b00, 0b01 (EL1 only) or 0b10.
        a.st.sys.cpacr = if r.below(3) == 0 { r.below(4) } else { 3 } << 20;
        for n in 1..=4 {
            // Misaligned one time in four: by 8 (a D-aligned Q access), 4 or anything.
            let skew = match r.below(12) {
                0 => 8,
                1 => 4,
                2 => r.below(16),
                _ => 0,
            };
            a.st.x[n] = WIN + 16 * r.below(0x100) + skew;
        }
        match r.below(8) {
            0 => a.st.x[4] = RAM + 4 * r.below(words.len() as u64), // the block's own words
            1 => a.st.x[3] = 0x1000,                                // outside RAM
            _ => {}
        }
        a.st.x[5] = 16 * r.below(8);
        a.st.x[6] = if r.below(2) == 0 { r.next() } else { 1 };
        b.st = a.st.clone();
        let warm = r.below(4) != 0;
        if warm {
            warm_data_tlb(&mut a);
            warm_data_tlb(&mut b);
            // The code page too: stores into the block then take the inline path.
            warm_page(&mut a, RAM);
            warm_page(&mut b, RAM);
        }
        // The log turned on after the warming: only the block's stores mark pages now.
        let logged = r.below(3) == 0;
        if logged {
            a.bus.ram().dirty().take();
            b.bus.ram().dirty().take();
            logged_warm += warm as u64;
        }
        jit_now(&mut a);
        b.blocks = Some(BlockCache::new(b.bus.ram(), false));
        let attention = AtomicU32::new(0);
        let (ra, rb) = (a.run_batch(&attention, 256), b.run_batch(&attention, 256));
        let (oa, ob) = (outcome(&a, &ra), outcome(&b, &rb));
        assert!(
            oa == ob && a.insns == b.insns,
            "case {case} ({words:08x?}): JIT and interpreter differ\n--- jit ({} insns):\n{oa}\n--- interpreter ({} insns):\n{ob}",
            a.insns,
            b.insns
        );
        assert!(
            window(&mem_a) == window(&mem_b) && code_page(&mem_a) == code_page(&mem_b),
            "case {case} ({words:08x?}): memory differs"
        );
        assert_eq!(
            a.bus.ram().dirty().take(),
            b.bus.ram().dirty().take(),
            "case {case}: dirty pages differ"
        );
        jitted += compiled(&a);
        stops += (a.insns + 1 < words.len() as u64) as u64;
    }
    assert!(jitted > 500, "only {jitted} blocks compiled");
    assert!(stops > 50, "only {stops} blocks stopped early");
    assert!(
        logged_warm > 50,
        "only {logged_warm} logged cases with a warm TLB"
    );
}

#[test]
fn the_matrix_loop_of_cbench_matches_the_interpreter() {
    // cbench's inner loop (firmware/cbench.c at -O2): ldr q, ld1r with post-index, mla.
    let words = [
        0x3dc0_0001, // 0x00: ldr q1, [x0]
        0x910a_0000, // 0x04: add x0, x0, #0x280
        0x4ddf_c822, // 0x08: ld1r {v2.4s}, [x1], #4
        0x4ea1_9440, // 0x0c: mla v0.4s, v2.4s, v1.4s
        0xeb02_001f, // 0x10: cmp x0, x2
        0x54ff_ff61, // 0x14: b.ne 0x00
        0x3d80_0060, // 0x18: str q0, [x3]
        0xd420_0020, // 0x1c: brk #1
    ];
    let mut r = Rng(0x6d61_7472_6978);
    let mut results = Vec::new();
    for jit in [true, false] {
        let mem = ram();
        load(&mem, RAM, &words);
        let data: Vec<u32> = (0..0x1000).map(|_| r.next() as u32).collect();
        load(&mem, WIN, &data);
        let mut cpu = new_cpu(&mem);
        cpu.st.sys.cpacr = 3 << 20;
        cpu.st.pstate = 0x3c5; // EL1h, DAIF masked
        cpu.st.pc = RAM;
        cpu.st.x[0] = WIN;
        cpu.st.x[1] = WIN + 0x3000;
        cpu.st.x[2] = WIN + 0x280 * 16;
        cpu.st.x[3] = WIN + 0x3800;
        warm_data_tlb(&mut cpu);
        if jit {
            jit_now(&mut cpu);
        } else {
            interpreted(&mut cpu);
        }
        let attention = AtomicU32::new(0);
        let stop = (0..8).find_map(|_| cpu.run_batch(&attention, 256).err());
        assert!(stop.is_some(), "jit {jit}: reached the brk");
        assert_eq!(compiled(&cpu) > 0, jit, "the loop was compiled");
        results.push((outcome(&cpu, &Ok(())), cpu.insns, window(&mem)));
        r = Rng(0x6d61_7472_6978);
    }
    assert!(results[0] == results[1], "JIT and interpreter differ");
    assert_eq!(
        results[0].1,
        16 * 6 + 1,
        "16 rounds of the loop and the str (the brk stops)"
    );
}

#[test]
fn a_vector_store_into_an_earlier_op_of_a_looping_block_is_seen_at_the_next_iteration() {
    // As `jit_tests.rs` for general registers: the inline store (the data TLB holds the
    // code page after the first, full-path store) must end the block when it rewrites one
    // of the block's words, here the first op of a block looping in generated code.
    for store in [
        0xbd00_0022u32, // str s2, [x1]
        0xfc00_0022,    // stur d2, [x1]
        0x3d80_0022,    // str q2, [x1]
    ] {
        // brk #1, then the block's own words again: only the first word changes.
        let stored = [0xd420_0020u32, store, 0xf101_901f, 0x54ff_ffa1];
        let v = stored
            .iter()
            .rev()
            .fold(0u128, |acc, &w| acc << 32 | w as u128);
        looping_store_is_seen(store, &|cpu| cpu.st.v[2] = v);
    }
}

#[test]
fn compiled_vector_loads_at_el0_ignore_data_tlb_entries_of_el1() {
    // The data TLB says (for EL1 only) that VA page X is RAM page Y; a load at EL0 must not
    // use that entry (the full path translates X itself: the flat map, MMU off) and reads
    // X's value, compiled or not (as `jit_tests.rs` for general registers).
    const X: u64 = RAM + 0x4000;
    const Y: u64 = RAM + 0x8000;
    for load_word in [
        0x3dc0_0020u32, // ldr q0, [x1]
        0x4d40_c820,    // ld1r {v0.4s}, [x1]
    ] {
        for jit in [false, true] {
            let mem = ram();
            load(&mem, RAM, &[load_word, 0xd420_0020]); // ...; brk #1
            load(&mem, X, &[0x1111_1111; 4]);
            load(&mem, Y, &[0x2222_2222; 4]);
            let mut cpu = new_cpu(&mem);
            cpu.st.pc = RAM;
            cpu.st.sys.cpacr = 3 << 20;
            let page = cpu.bus.data_page(Y).expect("RAM page");
            cpu.tlb.data_insert(X, false, false, page);
            cpu.st.pstate &= !0xf; // EL0t
            cpu.st.x[1] = X;
            if jit {
                jit_now(&mut cpu);
            } else {
                interpreted(&mut cpu);
            }
            let attention = AtomicU32::new(0);
            let stop = cpu.run_batch(&attention, 256);
            assert!(stop.is_err(), "{load_word:#x}: the brk stops: {stop:?}");
            assert_eq!(compiled(&cpu) > 0, jit);
            assert_eq!(
                cpu.st.v[0] as u32, 0x1111_1111,
                "{load_word:#x}, jit {jit}: X's value, not Y's"
            );
        }
    }
}

#[test]
fn simd_disabled_mid_block_traps_at_the_next_simd_op() {
    // The FPEN check is skipped after an Advanced SIMD op ran in the block; a handler
    // in between (here MSR CPACR_EL1 turning SIMD&FP off) must bring it back.
    let words = [
        0x4f00_e420, // 0x00: movi v0.16b, #0x21
        0xd518_1041, // 0x04: msr cpacr_el1, x1
        0x4f00_e441, // 0x08: movi v1.16b, #0x22
        0xd420_0020, // 0x0c: brk #1
    ];
    let mut seen = Vec::new();
    for jit in [true, false] {
        let mem = ram();
        load(&mem, RAM, &words);
        let mut cpu = new_cpu(&mem);
        cpu.st.sys.cpacr = 3 << 20;
        cpu.st.pstate = 0x3c5; // EL1h
        cpu.st.pc = RAM;
        cpu.st.x[1] = 0; // FPEN 0b00: trapped at EL0 and EL1
        if jit {
            jit_now(&mut cpu);
        } else {
            interpreted(&mut cpu);
        }
        let attention = AtomicU32::new(0);
        // (An MSR may end the batch.)
        let stop = (0..4).find_map(|_| cpu.run_batch(&attention, 256).err());
        assert!(
            matches!(stop, Some(super::super::Stop::Exception(ref e)) if e.ec == crate::a64::esr::ec::FP_ACCESS),
            "jit {jit}: the second movi traps: {stop:?}"
        );
        assert_eq!(cpu.st.pc, RAM + 8, "jit {jit}: at the second movi");
        seen.push(outcome(&cpu, &stop.map_or(Ok(()), Err)));
    }
    assert!(seen[0] == seen[1], "JIT and interpreter differ");
}
