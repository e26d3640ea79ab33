//! Pre-decoded blocks against every way a word of cached code can change: the guest storing
//! into the running block and into another cached block of the same page, a debugger memory
//! write and a software breakpoint planted and removed through guest RAM, and another vCPU
//! storing into code this vCPU is looping in. Each must take effect at the next fetch of the
//! changed word.

use std::sync::atomic::AtomicU32;
use std::sync::Arc;
use std::time::{Duration, Instant};

use vm_memory::GuestMemoryMmap;

use super::super::batch::BATCH;
use super::super::bus::Bus;
use super::super::{Cpu, Stop};
use crate::a64::esr;
use crate::backend::model::testutil::{cpu_with, gic, load, ram, RAM};
use crate::debug::swbp::{SwBreakpoints, BRK0};

/// `brk #1`, `brk #2` (Arm ARM C6.2.38 "BRK": 0xd4200000 | imm16 << 5).
const BRK1: u32 = 0xd420_0020;
const BRK2: u32 = 0xd420_0040;

/// Runs batches until one stops (at most `batches` of them).
fn run(cpu: &mut Cpu, batches: usize) -> Option<Stop> {
    let attention = AtomicU32::new(0);
    (0..batches).find_map(|_| cpu.run_batch(&attention, BATCH).err())
}

/// The BRK immediate of a stop, if it is a BRK exception.
fn brk(stop: Option<Stop>) -> Option<u64> {
    match stop {
        Some(Stop::Exception(e)) if e.ec == esr::ec::BRK64 => Some(e.iss),
        _ => None,
    }
}

fn blocks(cpu: &Cpu) -> u64 {
    cpu.blocks.as_ref().map_or(0, |b| b.table.builds())
}

#[test]
fn a_store_into_the_running_block_takes_effect_at_once() {
    let (mut cpu, _mem) = cpu_with(&[
        0xb900_0022, // 0x00: str w2, [x1]  (x1 = RAM + 8: the word of `mov x0, #2`)
        0x9100_0463, // 0x04: add x3, x3, #1
        0xd280_0040, // 0x08: mov x0, #2  (replaced by x2 = `mov x0, #3` before it runs)
        BRK1,        // 0x0c: brk #1
    ]);
    cpu.st.x[1] = RAM + 8;
    cpu.st.x[2] = 0xd280_0060; // mov x0, #3
    assert_eq!(brk(run(&mut cpu, 4)), Some(1));
    assert_eq!(cpu.st.x[0], 3, "the stored word ran, not the decoded one");
    assert_eq!(cpu.st.x[3], 1);
    assert_eq!(cpu.st.pc, RAM + 0xc);
    assert_eq!(cpu.insns, 3);
    assert_eq!(
        blocks(&cpu),
        2,
        "the block, then a new one from the changed word"
    );
}

#[test]
fn a_store_into_another_cached_block_of_the_page_takes_effect_at_once() {
    let (mut cpu, _mem) = cpu_with(&[
        0x9100_0400, // 0x00: add x0, x0, #1  (replaced by `brk #2` after three rounds)
        0xf100_0c1f, // 0x04: cmp x0, #3
        0x54ff_ffc1, // 0x08: b.ne 0x00
        0xb900_0022, // 0x0c: str w2, [x1]  (x1 = RAM: the word of `add`)
        0x17ff_fffc, // 0x10: b 0x00
    ]);
    cpu.st.x[1] = RAM;
    cpu.st.x[2] = BRK2 as u64;
    assert_eq!(brk(run(&mut cpu, 4)), Some(2));
    assert_eq!(cpu.st.pc, RAM, "stopped at the replaced word");
    assert_eq!(cpu.st.x[0], 3);
    assert_eq!(cpu.insns, 3 * 3 + 2);
}

/// A two-instruction loop at RAM, run until `x0` has counted `n` more rounds.
fn loop_rounds(cpu: &mut Cpu, n: u64) {
    let target = cpu.st.x[0] + n;
    let attention = AtomicU32::new(0);
    while cpu.st.x[0] < target {
        cpu.run_batch(&attention, 1).expect("the loop runs");
    }
}

#[test]
fn debugger_writes_and_software_breakpoints_take_effect_at_once() {
    let (mut cpu, mem) = cpu_with(&[
        0x9100_0400, // 0x00: add x0, x0, #1
        0x17ff_ffff, // 0x04: b 0x00
    ]);
    loop_rounds(&mut cpu, 10);
    assert_eq!(cpu.st.pc, RAM + 4, "between the two instructions");
    // A gdb memory write (`M`/`X` packets go through `debug::guest_ram`).
    crate::debug::guest_ram::write(&mem, RAM, &0x9100_0800u32.to_le_bytes()).expect("write");
    let before = cpu.st.x[0];
    let attention = AtomicU32::new(0);
    cpu.run_batch(&attention, 3).expect("b, add, b");
    assert_eq!(cpu.st.x[0], before + 2, "add x0, x0, #2 ran");
    // A software breakpoint on the cached `b`, then removed.
    let mut bps = SwBreakpoints::new();
    bps.insert(&mem, RAM + 4).expect("insert");
    assert_eq!(brk(run(&mut cpu, 2)), Some(0), "BRK #0 ({BRK0:#x}) hit");
    assert_eq!(cpu.st.pc, RAM + 4);
    bps.remove(&mem, RAM + 4).expect("remove");
    loop_rounds(&mut cpu, 5);
}

#[test]
fn another_vcpu_storing_into_the_loop_stops_it() {
    let mem: GuestMemoryMmap = ram();
    const LOOP: u64 = RAM + 0x1000;
    load(&mem, LOOP, &[0x1400_0000]); // b .  (at LOOP, forever)
    load(
        &mem,
        RAM,
        &[
            0xb900_0022, // 0x00: str w2, [x1]  (x1 = LOOP, x2 = `brk #2`)
            BRK1,        // 0x04: brk #1
        ],
    );
    let mut looping = Cpu::new(0, Bus::new(&mem, gic()), Instant::now());
    looping.st.pc = LOOP;
    // Let it cache the loop before the other vCPU writes.
    assert_eq!(run(&mut looping, 8), None);
    let spinner = std::thread::spawn(move || {
        let end = Instant::now() + Duration::from_secs(30);
        let attention = Arc::new(AtomicU32::new(0));
        while Instant::now() < end {
            if let Err(s) = looping.run_batch(&attention, BATCH) {
                return (Some(s), looping.st.pc);
            }
        }
        (None, looping.st.pc)
    });
    let mut writer = Cpu::new(1, Bus::new(&mem, gic()), Instant::now());
    writer.st.pc = RAM;
    writer.st.x[1] = LOOP;
    writer.st.x[2] = BRK2 as u64;
    assert_eq!(brk(run(&mut writer, 4)), Some(1));
    let (stop, pc) = spinner.join().expect("spinner thread");
    assert_eq!(brk(stop), Some(2), "the looping vCPU ran the new word");
    assert_eq!(pc, LOOP);
}

#[test]
fn hints_barriers_and_register_reads_run_inside_blocks_and_batches() {
    let (mut cpu, _mem) = cpu_with(&[
        0xd503_233f, // 0x00: paciasp
        0xd538_4100, // 0x04: mrs x0, sp_el0
        0xd503_201f, // 0x08: nop
        0xd503_3bbf, // 0x0c: dmb ish
        0x9100_0421, // 0x10: add x1, x1, #1
        0xd503_23bf, // 0x14: autiasp
        0x17ff_fffa, // 0x18: b 0x00
    ]);
    cpu.st.pstate = 0x3c5; // EL1h, DAIF masked
    let attention = AtomicU32::new(0);
    cpu.run_batch(&attention, BATCH).expect("runs");
    assert_eq!(cpu.insns, BATCH as u64, "one batch of the whole limit");
    assert_eq!(blocks(&cpu), 1, "the loop is one block");
    // An ISB ends the batch right after it.
    let (mut cpu, _mem) = cpu_with(&[
        0x9100_0421, // 0x00: add x1, x1, #1
        0xd503_3fdf, // 0x04: isb
        0x17ff_fffe, // 0x08: b 0x00
    ]);
    cpu.st.pstate = 0x3c5;
    cpu.run_batch(&attention, BATCH).expect("runs");
    assert_eq!(cpu.insns, 2, "the batch ends after the isb");
}
