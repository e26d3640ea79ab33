//! Differential test of the load/store classes against QEMU: random load/store words (general
//! and SIMD&FP registers, every addressing mode, pairs, exclusives, atomics; literal loads
//! excluded) with the base register forced to x27, which points into a 128 KiB scratch area,
//! and small index registers. The model runs with stage 1 on (an identity map of Normal
//! memory, so unaligned accesses behave as in QEMU's user mode); words the model faults on
//! for the test's register values are left out. Registers after each word and the final
//! scratch contents must match.

use std::time::Instant;

use object::Object;
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use super::cpu::bus::Bus;
use super::cpu::{state, Cpu};
use super::qemu_diff::{
    assert_records_equal, cases_and_report, load_into_ram, run_to_report, run_under_qemu_user,
    symbol, tools_present, REC,
};
use super::testutil::{config, gic, RAM};
use crate::a64::{sys, Reg};
use crate::backend::{create_vm, BackendKind};
use crate::test_rng::Rng;

const TESTS: usize = 2000;
/// Scratch area: the start of .data (linked at 0x4020_0000), 128 KiB; x27 = its middle.
const SCRATCH: u64 = 0x4020_0000;
const SCRATCH_LEN: usize = 0x2_0000;
const BASE: u64 = SCRATCH + 0x1_0000;
/// Page tables: a level-1 table and one level-2 table of 2 MiB blocks.
const L1: u64 = RAM + 0xf0_0000;
const L2: u64 = L1 + 0x1000;
/// TCR_EL1: T0SZ = 25 (level-1 start, 4 KiB granule), EPD1. MAIR attr 0: Normal WB.
const TCR: u64 = 0x80_0019;
const MAIR: u64 = 0xff;

/// Identity map of the first 16 MiB of RAM: the text block EL1 read-only (AP = 0b10), the
/// others read/write at EL0 and EL1 (AP = 0b01), AF and inner-shareable set.
fn write_tables(mem: &GuestMemoryMmap) {
    mem.write_obj(L2 | 3, GuestAddress(L1 + 8)).unwrap();
    for k in 0..8u64 {
        let ap = if k == 0 { 0b10 << 6 } else { 0b01 << 6 };
        let desc = (RAM + (k << 21)) | 1 << 10 | 3 << 8 | ap | 1;
        mem.write_obj(desc, GuestAddress(L2 + 8 * k)).unwrap();
    }
}

/// A random load/store word: base x27, other register fields not x27..x30, not a literal
/// load.
fn random_word(rng: &mut Rng) -> Option<u32> {
    let r = rng.next() as u32;
    let mut w = (r & !(1 << 25)) | (1 << 27);
    if (w >> 27) & 7 == 0b011 && (w >> 24) & 3 == 0 {
        return None;
    }
    w = (w & !(31 << 5)) | (27 << 5);
    for shift in [0, 10, 16] {
        // x27 (base), x28/x29 (harness), x30 (not compared) become x19..x22; 31 stays.
        if (27..=30).contains(&((w >> shift) & 31)) {
            w -= 8 << shift;
        }
    }
    let (rt, rt2) = (w & 31, (w >> 10) & 31);
    let exclusive = (w >> 24) & 0x3f == 0b00_1000 && (w >> 23) & 1 == 0;
    let pair = (w >> 27) & 7 == 0b101;
    let load = (w >> 22) & 1 == 1;
    // Store-exclusive success after a different-sized load-exclusive is IMPLEMENTATION
    // DEFINED, and a pair load into one register twice is CONSTRAINED UNPREDICTABLE: both
    // are left out.
    if (exclusive && !load) || ((pair || exclusive) && load && rt == rt2) {
        return None;
    }
    Some(w)
}

fn inputs(rng: &mut Rng) -> Vec<[u64; 86]> {
    (0..TESTS)
        .map(|_| {
            let mut v = [0u64; 86];
            for (n, slot) in v.iter_mut().enumerate() {
                *slot = match n {
                    0..=26 => rng.next() & 0xff,
                    27 => BASE,
                    28 => (rng.next() & 0xf) << 28,
                    29 => 0,
                    _ => rng.next(),
                };
            }
            v
        })
        .collect()
}

/// Whether the model executes `w` from input state `inp` without an exception or exit.
fn model_accepts(cpu: &mut Cpu, mem: &GuestMemoryMmap, w: u32, inp: &[u64; 86]) -> bool {
    mem.write_obj(w, GuestAddress(RAM)).unwrap();
    cpu.st.x[..28].copy_from_slice(&inp[..28]);
    cpu.st.set_nzcv(inp[28] >> 28);
    for r in 0..28 {
        cpu.st.v[r] = (inp[31 + 2 * r] as u128) << 64 | inp[30 + 2 * r] as u128;
    }
    cpu.st.pc = RAM;
    cpu.step().is_ok()
}

fn program(words: &[u32], inp: &[[u64; 86]], rng: &mut Rng) -> String {
    let mut s = cases_and_report(words, TESTS);
    s += &format!(
        "mov x0, #1\n ldr x1, ={SCRATCH:#x}\n ldr x2, ={SCRATCH_LEN}\n mov x8, #64\n svc #0\n"
    );
    s += "mov x0, #0\n mov x8, #93\n svc #0\n .ltorg\n";
    s += ".data\nscratch:\n";
    for _ in 0..SCRATCH_LEN / 8 {
        s += &format!(".quad {:#x}\n", rng.next());
    }
    for (k, v) in inp.iter().enumerate() {
        s += &format!("in{k}:\n");
        for q in v {
            s += &format!(".quad {q:#x}\n");
        }
    }
    for k in 0..TESTS {
        s += &format!("out{k}: .skip {REC}\n");
    }
    s
}

#[test]
fn loads_and_stores_match_qemu() {
    if !tools_present() {
        return;
    }
    let mut rng = Rng(0x0bad_cafe_f00d_0001);
    let inp = inputs(&mut rng);
    let pre_mem = GuestMemoryMmap::from_ranges(&[(GuestAddress(RAM), 16 << 20)]).unwrap();
    write_tables(&pre_mem);
    let mut pre = Cpu::new(0, Bus::new(&pre_mem, gic()), Instant::now());
    pre.st.sys.sctlr = state::SCTLR_RESET | crate::a64::fields::sctlr::M;
    (pre.st.sys.tcr, pre.st.sys.mair, pre.st.sys.ttbr0) = (TCR, MAIR, L1);
    pre.st.sys.cpacr = crate::backend::model::cpu::state::CPACR_FPEN_ALL;
    let mut words = Vec::new();
    while words.len() < TESTS {
        if let Some(w) = random_word(&mut rng) {
            if model_accepts(&mut pre, &pre_mem, w, &inp[words.len()]) {
                words.push(w);
            }
        }
    }
    // The sample must cover every class: pairs, exclusive/acquire-release/CAS, LSE atomics,
    // register-offset forms, SIMD&FP registers.
    let count = |f: &dyn Fn(u32) -> bool| words.iter().filter(|&&w| f(w)).count();
    let classes = [
        ("pairs", count(&|w| (w >> 27) & 7 == 0b101)),
        ("exclusive class", count(&|w| (w >> 24) & 0x3f == 0b00_1000)),
        (
            "atomics",
            count(&|w| (w >> 24) & 0x3f == 0b11_1000 && (w >> 21) & 1 == 1 && (w >> 10) & 3 == 0),
        ),
        (
            "register offset",
            count(&|w| (w >> 27) & 7 == 0b111 && (w >> 21) & 1 == 1 && (w >> 10) & 3 == 2),
        ),
        ("simd&fp", count(&|w| (w >> 26) & 1 == 1)),
        (
            "structures",
            count(&|w| (w >> 27) & 7 == 0b001 && (w >> 26) & 1 == 1),
        ),
    ];
    for (name, n) in classes {
        assert!(n >= 20, "only {n} {name} words in the sample: {classes:?}");
    }
    let (bytes, stdout) = run_under_qemu_user("ldst", &program(&words, &inp, &mut rng));
    assert_eq!(stdout.len(), TESTS * REC + SCRATCH_LEN);

    let file = object::File::parse(&*bytes).unwrap();
    let mem = load_into_ram(&file);
    write_tables(&mem);
    let sym = |n: &str| symbol(&file, n);
    assert_eq!(sym("scratch"), SCRATCH);
    let vm = create_vm(BackendKind::Model, &mem, &config(1)).unwrap();
    let mut cpu = vm.create_vcpu(0).unwrap();
    for (r, v) in [
        (
            sys::CPACR_EL1,
            crate::backend::model::cpu::state::CPACR_FPEN_ALL,
        ),
        (sys::TCR_EL1, TCR),
        (sys::MAIR_EL1, MAIR),
        (sys::TTBR0_EL1, L1),
        (
            sys::SCTLR_EL1,
            state::SCTLR_RESET | crate::a64::fields::sctlr::M,
        ),
    ] {
        cpu.set(Reg::Sys(r), v).unwrap();
    }
    cpu.set(Reg::Pc, file.entry()).unwrap();
    run_to_report(&mut *cpu, sym("report"));
    let mut model = vec![0u8; TESTS * REC];
    mem.read_slice(&mut model, GuestAddress(sym("out0")))
        .unwrap();
    let mut scratch = vec![0u8; SCRATCH_LEN];
    mem.read_slice(&mut scratch, GuestAddress(SCRATCH)).unwrap();
    assert_records_equal(&words, &stdout, &model, |at| format!("slot {at}"));
    let first = (0..SCRATCH_LEN).find(|&b| stdout[TESTS * REC + b] != scratch[b]);
    assert_eq!(first, None, "scratch memory differs");
}
