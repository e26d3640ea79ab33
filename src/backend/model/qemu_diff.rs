//! Differential test of the integer data-processing classes against QEMU: random
//! instruction words (Data Processing -- Immediate and -- Register, registers limited to
//! x0..x27) run from random register values and NZCV, once in a static Linux program under
//! `qemu-aarch64-static` and once on the model (the same ELF, stopped by a hardware
//! breakpoint before its `write` syscall); results and flags must match word for word.
//!
//! Needs aarch64-linux-gnu-as/-ld and qemu-aarch64-static: fails under CI=true without them,
//! skips with a message otherwise.

use std::process::Command;

use object::{Object, ObjectSegment, ObjectSymbol};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use super::testutil::{config, RAM};
use crate::a64::Reg;
use crate::backend::{create_vm, BackendKind, GuestDebug, VcpuExit};
use crate::test_require::require_tool;
use crate::test_rng::Rng;

pub(super) const TESTS: usize = 3000;
/// Bytes per record: x0..x27, NZCV, FPSR, then q0..q27.
pub(super) const REC: usize = 30 * 8 + 28 * 16;
pub(super) const VOFF: usize = 30 * 8;

/// The tools these tests need (`crate::test_require`: a failure under CI, else a skip).
pub(super) fn tools_present() -> bool {
    [
        "aarch64-linux-gnu-as",
        "aarch64-linux-gnu-ld",
        "qemu-aarch64-static",
    ]
    .iter()
    .all(|t| require_tool(t))
}

/// A random word of the integer data-processing classes (or, with `simd`, of the Advanced
/// SIMD vector groups, op0 = 0xx0; with `scalar` too, of the scalar FP and Advanced SIMD
/// scalar groups, op0 = x0x1 / 01x1) with its register fields below 28.
fn random_word(rng: &mut Rng, simd: bool, scalar: bool) -> u32 {
    let r = rng.next() as u32;
    let mut w = if simd {
        (r & !(1 << 31) & !(0xf << 25)) | (0b0111 << 25) | (scalar as u32) << 28
    } else if r & 1 == 0 {
        (r & !(0b111 << 26)) | (0b100 << 26)
    } else {
        (r & !(0b111 << 25)) | (0b101 << 25)
    };
    for shift in [0, 5, 10, 16] {
        if (w >> shift) & 31 >= 28 {
            w &= !(0x10 << shift);
        }
    }
    w
}

/// Whether the model executes `w` (rather than taking UNDEFINED) from RAM base.
fn model_defines(cpu: &mut super::cpu::Cpu, mem: &GuestMemoryMmap, w: u32) -> bool {
    mem.write_obj(w, GuestAddress(RAM)).unwrap();
    cpu.st.pc = RAM;
    cpu.st.pstate = crate::a64::pstate::RESET_EL1H_DAIF;
    cpu.st.sys.cpacr = crate::backend::model::cpu::state::CPACR_FPEN_ALL;
    !matches!(cpu.step(), Err(super::cpu::Stop::Exception(e)) if e.ec == 0)
}

/// The test cases of a qemu-user program, one per word of `words`: load registers and flags
/// from `in{k}`, run the word, store registers and flags to `out{k}`; then the `report:`
/// label and the start of the write of all `out` records to standard output (x0-x2 set).
/// The caller adds the rest of the report, the exit and the data.
pub(super) fn cases_and_report(words: &[u32], records: usize) -> String {
    let mut s = String::from(".text\n.global _start\n_start:\n");
    for (k, w) in words.iter().enumerate() {
        s += &format!("adrp x29, in{k}\n add x29, x29, :lo12:in{k}\n");
        for r in (0..28).step_by(2) {
            s += &format!("ldp q{r}, q{}, [x29, #{}]\n", r + 1, VOFF + r * 16);
        }
        s += "ldr x28, [x29, #224]\n msr nzcv, x28\n ldr x28, [x29, #232]\n msr fpsr, x28\n";
        for r in (0..28).step_by(2) {
            s += &format!("ldp x{r}, x{}, [x29, #{}]\n", r + 1, r * 8);
        }
        s += &format!(".inst {w:#010x}\n adrp x29, out{k}\n add x29, x29, :lo12:out{k}\n");
        for r in (0..28).step_by(2) {
            s += &format!("stp x{r}, x{}, [x29, #{}]\n", r + 1, r * 8);
            s += &format!("stp q{r}, q{}, [x29, #{}]\n", r + 1, VOFF + r * 16);
        }
        s += "mrs x28, nzcv\n str x28, [x29, #224]\n mrs x28, fpsr\n str x28, [x29, #232]\n";
    }
    s += "report:\n mov x0, #1\n adrp x1, out0\n add x1, x1, :lo12:out0\n";
    s += &format!("ldr x2, ={}\n mov x8, #64\n svc #0\n", records * REC);
    s
}

fn program(words: &[u32]) -> String {
    let mut s = cases_and_report(words, TESTS);
    s += "mov x0, #0\n mov x8, #93\n svc #0\n .ltorg\n";
    s += ".data\n.balign 16\n";
    let mut rng = Rng(0x1234_5678_9abc_def1);
    for k in 0..TESTS {
        s += &format!("in{k}:\n");
        for n in 0..28 + 2 + 2 * 28 {
            let v = match (n, rng.next() % 4) {
                (28, _) => (rng.next() & 0xf) << 28, // NZCV
                (29, _) => 0,                        // FPSR
                (_, 0) => rng.next() & 0xffff_ffff,
                (_, 1) => [
                    0,
                    1,
                    u64::MAX,
                    0x7fff_ffff,
                    0x8000_0000,
                    1 << 63,
                    (1 << 63) - 1,
                ][rng.next() as usize % 7],
                _ => rng.next(),
            };
            s += &format!(".quad {v:#x}\n");
        }
    }
    for k in 0..TESTS {
        s += &format!("out{k}: .skip {REC}\n");
    }
    s
}

/// Runs `TESTS` random words of one class on QEMU and on the model and compares.
fn diff_against_qemu(simd: bool, scalar: bool, seed: u64) {
    if !tools_present() {
        return;
    }
    let mut rng = Rng(seed);
    let mut words = Vec::new();
    let (mut pre, pre_mem) = super::testutil::cpu_with(&[0]);
    while words.len() < TESTS {
        let w = random_word(&mut rng, simd, scalar);
        if model_defines(&mut pre, &pre_mem, w) {
            words.push(w);
        }
    }
    let (bytes, stdout) = run_under_qemu_user(&format!("diff-{simd}-{scalar}"), &program(&words));
    assert_eq!(stdout.len(), TESTS * REC);
    let file = object::File::parse(&*bytes).unwrap();
    let mem = load_into_ram(&file);
    let sym = |n: &str| symbol(&file, n);
    let vm = create_vm(BackendKind::Model, &mem, &config(1)).unwrap();
    let mut cpu = vm.create_vcpu(0).unwrap();
    cpu.set(Reg::Pc, file.entry()).unwrap();
    cpu.set(
        Reg::Sys(crate::a64::sys::CPACR_EL1),
        crate::backend::model::cpu::state::CPACR_FPEN_ALL,
    )
    .unwrap();
    run_to_report(&mut *cpu, sym("report"));
    let mut model = vec![0u8; TESTS * REC];
    mem.read_slice(&mut model, GuestAddress(sym("out0")))
        .unwrap();
    assert_records_equal(&words, &stdout, &model, |at| match at {
        0..=27 => format!("x{at}"),
        28 => "nzcv".into(),
        29 => "fpsr".into(),
        j => format!(
            "q{}.{}",
            (j - 30) / 2,
            if (j - 30) % 2 == 0 { "lo" } else { "hi" }
        ),
    });
}

/// Compares the out records QEMU printed (`qemu`) with the model's (`model`), one per word
/// of `words`, and fails listing each word's first differing 8-byte slot (named by `slot`).
pub(super) fn assert_records_equal(
    words: &[u32],
    qemu: &[u8],
    model: &[u8],
    slot: impl Fn(usize) -> String,
) {
    let mut bad = Vec::new();
    for (k, w) in words.iter().enumerate() {
        let (q, m) = (&qemu[k * REC..][..REC], &model[k * REC..][..REC]);
        if let Some(at) = (0..REC / 8).find(|j| q[j * 8..][..8] != m[j * 8..][..8]) {
            let val = |b: &[u8]| u64::from_le_bytes(b[at * 8..][..8].try_into().unwrap());
            bad.push(format!(
                "{w:#010x}: {} qemu {:#x} model {:#x}",
                slot(at),
                val(q),
                val(m)
            ));
        }
    }
    assert!(
        bad.is_empty(),
        "{} of {} differ:\n{}",
        bad.len(),
        words.len(),
        bad.join("\n")
    );
}

#[test]
fn data_processing_matches_qemu() {
    diff_against_qemu(false, false, 0xfeed_beef_cafe_f00d);
}

#[test]
fn advanced_simd_integer_matches_qemu() {
    diff_against_qemu(true, false, 0x9876_5432_1fed_cba9);
}

/// Scalar floating point (FPSR flags included) and the Advanced SIMD scalar groups.
#[test]
fn scalar_fp_and_simd_scalar_match_qemu() {
    diff_against_qemu(true, true, 0x5ca1_ab1e_f00d_0001);
}

/// Assembles and links `source` (a qemu-user harness) and runs it under `qemu-aarch64-static`;
/// returns the ELF's bytes and what the harness printed.
pub(super) fn run_under_qemu_user(tag: &str, source: &str) -> (Vec<u8>, Vec<u8>) {
    let dir = std::env::temp_dir().join(format!("kvmdbg-qemu-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (src, obj, elf) = (dir.join("p.s"), dir.join("p.o"), dir.join("p.elf"));
    std::fs::write(&src, source).unwrap();
    let ok = Command::new("aarch64-linux-gnu-as")
        .args(["-march=armv8.1-a", "-o"])
        .arg(&obj)
        .arg(&src)
        .status()
        .unwrap();
    assert!(ok.success(), "assembling the harness");
    let ok = Command::new("aarch64-linux-gnu-ld")
        .args(["-static", "-Ttext=0x40000000", "-Tdata=0x40200000", "-o"])
        .arg(&elf)
        .arg(&obj)
        .status()
        .unwrap();
    assert!(ok.success(), "linking the harness");
    let qemu = Command::new("qemu-aarch64-static")
        .arg(&elf)
        .output()
        .unwrap();
    assert!(
        qemu.status.success(),
        "qemu failed on {}: {}",
        elf.display(),
        String::from_utf8_lossy(&qemu.stderr)
    );
    let bytes = std::fs::read(&elf).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    (bytes, qemu.stdout)
}

/// The harness's loadable segments in a fresh 16 MiB RAM at RAM (the first segment starts
/// with the ELF headers below RAM: only its part from the RAM base on is loaded).
pub(super) fn load_into_ram(file: &object::File) -> GuestMemoryMmap {
    let mem = GuestMemoryMmap::from_ranges(&[(GuestAddress(RAM), 16 << 20)]).unwrap();
    for seg in file.segments() {
        let (addr, data) = (seg.address(), seg.data().unwrap());
        let skip = RAM.saturating_sub(addr) as usize;
        mem.write_slice(&data[skip.min(data.len())..], GuestAddress(addr.max(RAM)))
            .unwrap();
    }
    mem
}

/// The address of symbol `name` in the harness.
pub(super) fn symbol(file: &object::File, name: &str) -> u64 {
    file.symbols()
        .find(|s| s.name() == Ok(name))
        .unwrap()
        .address()
}

/// Runs `cpu` until it reaches `report` (a hardware breakpoint there: DBGBCR0 0x1e7 is E = 1,
/// PMC = 0b11, BAS = 0b1111: the Arm ARM register page DBGBCR<n>_EL1) and checks that it stopped there
/// (ESR EC 0x30, a breakpoint from a lower EL as KVM reports it, IL = 1, ISS 0x22).
pub(super) fn run_to_report(cpu: &mut dyn crate::backend::Vcpu, report: u64) {
    let mut dbg = GuestDebug {
        enable: true,
        hw: true,
        ..Default::default()
    };
    dbg.bcr[0] = 0x1e7;
    dbg.bvr[0] = report;
    cpu.set_guest_debug(&dbg).unwrap();
    let exit = cpu.run().unwrap();
    assert!(
        matches!(
            exit,
            VcpuExit::Debug {
                esr: 0xc200_0022,
                ..
            }
        ),
        "{exit:?} at {:#x}",
        cpu.get(Reg::Pc).unwrap()
    );
}
