//! The decoded-instruction cache against the reference interpreter: random words of every
//! group the decoder covers (and fully random words), on random register states with
//! pointers into RAM, run once through `decode` + handler and once through `Cpu::exec` on an
//! identical CPU and RAM; results, registers and memory must be identical. Instruction
//! batches (`batch.rs`) against single steps on random programs. Plus the cache's own
//! contract: one decode per word, and a changed word is decoded afresh.

use std::sync::atomic::AtomicU32;
use std::time::Instant;

use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use super::*;
use crate::a64::esr;
use crate::backend::model::cpu::bus::Bus;
use crate::backend::model::cpu::state;
use crate::backend::model::testutil::{gic, load, ram, RAM};

/// The data window the random pointers aim at (and that is compared after every case).
pub(crate) const WIN: u64 = RAM + 0x10000;
pub(crate) const WIN_LEN: usize = 0x10000;

use crate::test_rng::Rng;

/// (mask, value) of each covered encoding group: a random word is forced into the group by
/// `(w & !mask) | value` (Arm ARM C4.1 op0 and the class bits the decoder looks at).
pub(crate) const GROUPS: &[(u32, u32)] = &[
    (0x1c00_0000, 0x1000_0000), // data processing, immediate (op0 100x)
    (0x1c00_0000, 0x1400_0000), // branches, exceptions, system (op0 101x)
    (0x7c00_0000, 0x1400_0000), // B, BL
    (0x7e00_0000, 0x3400_0000), // CBZ, CBNZ
    (0x7e00_0000, 0x3600_0000), // TBZ, TBNZ
    (0xff00_0010, 0x5400_0000), // B.cond
    (0xfe1f_fc1f, 0xd61f_0000), // BR, BLR, RET, ERET and friends
    (0x3a00_0000, 0x3800_0000), // load/store single register (op0 x1x0, bits 29:27 = 111)
    (0x3e00_0000, 0x2800_0000), // load/store pair
    (0x0e00_0000, 0x0a00_0000), // data processing, register (op0 x101)
    (0x1f20_0000, 0x0b00_0000), // add/sub shifted register
    (0x1fe0_0000, 0x1a80_0000), // conditional select
    (0x7fe0_0000, 0x1b00_0000), // MADD, MSUB
    (0xffff_ffe0, 0xd518_1000), // MSR SCTLR_EL1, Xt (turns the MMU on when bit 0 is set)
    (0xffff_ffe0, 0xd518_2000), // MSR TTBR0_EL1, Xt
    (0xffff_ffff, 0xd508_871f), // TLBI VMALLE1
    (0xffff_ffff, 0xd69f_03e0), // ERET
    (0x3a00_0000, 0x3c00_0000), // load/store SIMD&FP register (V = 1)
    (0x3f00_0000, 0x3d00_0000), // ... unsigned offset
    (0x9f20_0400, 0x0e20_0400), // Advanced SIMD three same (vector)
    (0x9f20_fc00, 0x0e20_8400), // ... ADD, SUB (opcode 10000)
    (0x9f20_f800, 0x0e20_9000), // ... MLA, MLS, MUL, PMUL (opcode 1001x)
    (0x0000_0000, 0x0000_0000), // anything
];

pub(crate) fn random_word(r: &mut Rng) -> u32 {
    let (mask, value) = GROUPS[r.below(GROUPS.len() as u64) as usize];
    let w = r.next() as u32;
    let mut w = (w & !mask) | value;
    if r.below(4) == 0 {
        // Loads/stores and branches with SP or a pointer base more often.
        w = (w & !(31 << 5)) | ((r.below(32) as u32) << 5);
    }
    w
}

pub(crate) fn random_state(r: &mut Rng, cpu: &mut Cpu) {
    for n in 0..31 {
        cpu.st.x[n] = match r.below(4) {
            0 => r.next(),
            1 => r.below(64),
            _ => (WIN + r.below(WIN_LEN as u64 / 2)) & !(r.below(2) * 7),
        };
    }
    cpu.st.sp_el0 = WIN + (r.below(WIN_LEN as u64 / 2) & !(r.below(2) * 15));
    cpu.st.sp_el1 = WIN + (r.below(WIN_LEN as u64 / 2) & !(r.below(2) * 15));
    let mode = [0u64, 4, 5][r.below(3) as usize];
    cpu.st.pstate = (r.below(16) << 28) | (0xf << 6) | mode;
    cpu.st.pc = RAM + 4 * r.below(0x1000);
    cpu.st.sys.sctlr = state::SCTLR_RESET | (r.below(32) & 0b11010);
    cpu.st.sys.cpacr = state::CPACR_FPEN_ALL * r.below(2);
    for v in cpu.st.v.iter_mut() {
        *v = (r.next() as u128) << 64 | r.next() as u128;
    }
    // A watchpoint on a random doubleword of the window (E, PAC = EL0+EL1, LSC = load and
    // store, BAS = all eight bytes: Arm ARM D19.3.11 "DBGWCR<n>_EL1") in a quarter of the
    // cases.
    let watch = r.below(4) == 0;
    cpu.dbg.cfg.enable = watch;
    cpu.dbg.cfg.hw = watch;
    cpu.dbg.cfg.wcr[0] = 1 | (3 << 1) | (3 << 3) | (0xff << 5);
    cpu.dbg.cfg.wvr[0] = WIN + 8 * r.below(WIN_LEN as u64 / 16);
}

/// Fills the data TLB (`mmu::Tlb`) for reads and writes of every page the random pointers
/// reach (a read, and the value written back: memory does not change), so that handlers
/// take their plain paths as often as the full ones.
pub(crate) fn warm_data_tlb(cpu: &mut Cpu) {
    for page in (WIN..WIN + 2 * WIN_LEN as u64).step_by(0x1000) {
        if let Ok(v) = cpu.read_mem(page, 8, None, false) {
            let _ = cpu.write_mem(page, 8, v, None, false);
        }
    }
}

pub(crate) fn window(mem: &GuestMemoryMmap) -> Vec<u8> {
    let mut buf = vec![0u8; WIN_LEN];
    mem.read_slice(&mut buf, GuestAddress(WIN)).expect("window");
    buf
}

pub(crate) fn new_cpu(mem: &GuestMemoryMmap) -> Cpu {
    Cpu::new(0, Bus::new(mem, gic()), Instant::now())
}

/// What one instruction did, for comparison.
pub(crate) fn outcome(cpu: &Cpu, r: &Result<(), Stop>) -> String {
    format!(
        "{r:?}\nx {:x?}\nsp {:#x} {:#x} pstate {:#x} pc {:#x} next_pc {:#x} emulated {}\n\
         v {:x?}\nsys {:x?}\nmonitor {:?}",
        cpu.st.x,
        cpu.st.sp_el0,
        cpu.st.sp_el1,
        cpu.st.pstate,
        cpu.st.pc,
        cpu.next_pc,
        cpu.emulated,
        cpu.st.v,
        cpu.st.sys,
        cpu.monitor
    )
}

#[test]
fn decoded_handlers_match_the_reference_interpreter() {
    let (mem_a, mem_b) = (ram(), ram());
    let (mut a, mut b) = (new_cpu(&mem_a), new_cpu(&mem_b));
    let mut r = Rng(0x6465_636f_6465_2121);
    // Random data where the pointers aim, so that every byte a load returns matters.
    let data: Vec<u8> = (0..2 * WIN_LEN).map(|_| r.next() as u8).collect();
    for mem in [&mem_a, &mem_b] {
        mem.write_slice(&data, GuestAddress(WIN)).expect("window");
    }
    let mut fast_cases = 0;
    for case in 0..60_000 {
        let word = random_word(&mut r);
        random_state(&mut r, &mut a);
        if r.below(2) == 0 {
            warm_data_tlb(&mut a);
        }
        if !std::ptr::fn_addr_eq(decode(word).handler, generic as Handler) {
            fast_cases += 1;
        }
        decoded_as_reference(&mut a, &mut b, word, case);
        if case % 64 == 0 {
            assert!(
                window(&mem_a) == window(&mem_b),
                "case {case}: memory differs"
            );
        }
    }
    assert!(
        window(&mem_a) == window(&mem_b),
        "memory differs at the end"
    );
    assert!(
        fast_cases > 25_000,
        "only {fast_cases} cases used a fast handler"
    );
}

#[test]
fn each_word_is_decoded_once_and_a_changed_word_at_once() {
    let code = [
        0xd280_0000, // 0x00: mov x0, #0
        0x9100_0400, // 0x04: add x0, x0, #1
        0xf101_901f, // 0x08: cmp x0, #100
        0x54ff_ffc1, // 0x0c: b.ne 0x04
        0xd420_0020, // 0x10: brk #1
    ];
    let mem = ram();
    load(&mem, RAM, &code);
    let mut cpu = new_cpu(&mem);
    cpu.st.pc = RAM;
    let run = |cpu: &mut Cpu| loop {
        if let Err(s) = cpu.step() {
            return s;
        }
    };
    assert!(matches!(run(&mut cpu), Stop::Exception(e) if e.ec == esr::ec::BRK64));
    assert_eq!(cpu.st.x[0], 100);
    assert_eq!(
        cpu.icache.decodes(),
        5,
        "302 instructions, 5 distinct words"
    );
    // Replace `add x0, x0, #1` by `add x0, x0, #2` from outside the CPU; the next run must
    // execute the new word.
    load(&mem, RAM + 4, &[0x9100_0800]); // add x0, x0, #2
    cpu.st.pc = RAM;
    assert!(matches!(run(&mut cpu), Stop::Exception(_)));
    assert_eq!(cpu.st.x[0], 100, "50 iterations of +2");
    assert_eq!(cpu.icache.decodes(), 6);
}

#[test]
fn batches_match_single_steps() {
    // Random programs (every covered group plus system and random words: MSRs that turn the
    // MMU on or change the EL must end a batch) across a page boundary; the same CPU state
    // runs once in batches and once a step at a time, up to each stop (then past it).
    const CODE: u64 = RAM + 0x1800;
    let mut r = Rng(0x6261_7463_6865_7321);
    let attention = AtomicU32::new(0);
    let mut compared = 0;
    for prog in 0..200 {
        let (mem_a, mem_b) = (ram(), ram());
        let words: Vec<u32> = (0..1024).map(|_| random_word(&mut r)).collect();
        load(&mem_a, CODE, &words);
        load(&mem_b, CODE, &words);
        let (mut a, mut b) = (new_cpu(&mem_a), new_cpu(&mem_b));
        random_state(&mut r, &mut a);
        a.st.pc = CODE + 4 * r.below(16);
        b.st = a.st.clone();
        b.dbg.cfg = a.dbg.cfg.clone();
        for stop in 0..16 {
            let sa = (0..400).find_map(|_| {
                a.run_batch(&attention, crate::backend::model::cpu::batch::BATCH)
                    .err()
            });
            let sb =
                (0..400 * crate::backend::model::cpu::batch::BATCH).find_map(|_| b.step().err());
            if sa.is_none() && sb.is_none() {
                break; // an endless loop on both: nothing to compare at a stop
            }
            let (ra, rb) = (sa.map_or(Ok(()), Err), sb.map_or(Ok(()), Err));
            let (oa, ob) = (outcome(&a, &ra), outcome(&b, &rb));
            assert!(
                oa == ob,
                "program {prog}, stop {stop}: batches and steps differ\n--- batches:\n{oa}\n--- steps:\n{ob}"
            );
            assert!(
                window(&mem_a) == window(&mem_b),
                "program {prog}: memory differs"
            );
            compared += 1;
            a.st.pc = a.st.pc.wrapping_add(4);
            b.st.pc = a.st.pc;
        }
    }
    assert!(compared > 1000, "only {compared} stops compared");
}

#[test]
fn the_condition_table_matches_cond_holds() {
    let mut cpu = new_cpu(&ram());
    for nzcv in 0..16 {
        cpu.st.set_nzcv(nzcv);
        for cond in 0..16u32 {
            assert_eq!(
                (fast::COND_TABLE[cond as usize] >> nzcv) & 1 == 1,
                cpu.st.cond_holds(cond),
                "cond {cond:#x}, nzcv {nzcv:#06b}"
            );
        }
    }
}

/// The system words of `decode::in_line` (they go on in blocks and batches), and the ones
/// that must still end batches.
const IN_LINE: [u32; 16] = [
    0xd503_201f, // nop
    0xd503_233f, // paciasp  (a NOP without FEAT_PAuth)
    0xd503_23bf, // autiasp
    0xd503_245f, // bti c  (a NOP without FEAT_BTI)
    0xd503_20ff, // xpaclri
    0xd503_229f, // csdb
    0xd503_3bbf, // dmb ish
    0xd503_3f9f, // dsb sy
    0xd503_3a9f, // dsb ishst
    0xd538_4100, // mrs x0, sp_el0
    0xd538_d081, // mrs x1, tpidr_el1
    0xd53b_4222, // mrs x2, daif
    0xd53b_e043, // mrs x3, cntvct_el0
    0xd53b_0024, // mrs x4, ctr_el0
    0xd50b_7420, // dc zva, x0
    0xd50b_7b22, // dc cvau, x2
];
const BATCH_ENDS: [u32; 15] = [
    0xd503_3fdf, // isb
    0xd503_207f, // wfi
    0xd503_205f, // wfe
    0xd503_203f, // yield
    0xd503_209f, // sev
    0xd503_20bf, // sevl
    0xd503_3f5f, // clrex
    0xd503_43df, // msr daifset, #3
    0xd538_cc00, // mrs x0, icc_iar1_el1  (acknowledges an interrupt)
    0xd538_c100, // mrs x0, isr_el1
    0xd538_0600, // mrs x0, id_aa64isar0_el1  (trapped by KVM: Cpu::emulated)
    0xd530_0240, // mrs x0, mdscr_el1  (op0 = 2: trapped by KVM)
    0xd518_4100, // msr sp_el0, x0
    0xd50b_7523, // ic ivau, x3
    0xd508_83e0, // tlbi vaale1is, x0
];

#[test]
fn in_line_system_words_end_neither_blocks_nor_batches() {
    for w in IN_LINE {
        let d = decode(w);
        assert!(
            in_line(w) && !d.sync && !d.ends_block(),
            "{w:#010x} goes on"
        );
    }
    for w in BATCH_ENDS {
        let d = decode(w);
        assert!(
            !in_line(w) && d.sync && d.ends_block(),
            "{w:#010x} ends the batch"
        );
    }
}

#[test]
fn in_line_system_words_run_as_the_reference_interpreter_runs_them() {
    let mut r = Rng(0x696e_5f6c_696e_6521);
    let (mem_a, mem_b) = (ram(), ram());
    let (mut a, mut b) = (new_cpu(&mem_a), new_cpu(&mem_b));
    // Every one but the counter read, whose value moves with the host's clock between the
    // two runs.
    let words: Vec<u32> = IN_LINE.into_iter().filter(|&w| w != 0xd53b_e043).collect();
    for case in 0..2_000 {
        let word = words[case % words.len()];
        random_state(&mut r, &mut a);
        decoded_as_reference(&mut a, &mut b, word, case);
    }
}

/// Runs `word` through its decoded handler on `a` and through the reference interpreter on
/// `b`, which first takes `a`'s state; the outcomes must be equal.
fn decoded_as_reference(a: &mut Cpu, b: &mut Cpu, word: u32, case: usize) {
    b.st = a.st.clone();
    b.dbg.cfg = a.dbg.cfg.clone();
    let d = decode(word);
    a.next_pc = a.st.pc.wrapping_add(4);
    b.next_pc = a.next_pc;
    let ra = (d.handler)(a, word, d.aux);
    let rb = b.exec(word);
    let (oa, ob) = (outcome(a, &ra), outcome(b, &rb));
    assert!(
        oa == ob,
        "case {case}: word {word:#010x} differs\n--- decoded:\n{oa}\n--- reference:\n{ob}"
    );
}
