//! Compilation on the worker thread against the interpreter: blocks compiled off the vCPU's
//! thread and installed whenever they arrive run exactly as interpreted ones, including a
//! block whose words change between the moment it is queued and the moment its code is
//! installed.

use std::sync::atomic::AtomicU32;

use vm_memory::GuestMemoryMmap;

use super::super::block::BlockCache;
use super::super::decode::tests::{new_cpu, outcome, window};
use super::super::Cpu;
use crate::backend::model::testutil::{load, ram, RAM};

/// Gives `cpu` a block cache whose JIT queues every block for the worker thread on its
/// first entry (`background`), or one without the JIT.
fn blocks(cpu: &mut Cpu, background: bool) {
    let mut b = BlockCache::new(cpu.bus.ram(), background);
    if let Some(j) = b.jit.as_deref_mut() {
        j.hot = 1;
        j.background = true;
    }
    cpu.blocks = Some(b);
}

fn jit(cpu: &mut Cpu) -> &mut super::super::jit::Jit {
    cpu.blocks
        .as_mut()
        .and_then(|b| b.jit.as_deref_mut())
        .expect("a JIT")
}

/// A counting loop that stores its counter and a running sum, then stops at `brk #1`
/// after `x2` rounds.
const LOOP: [u32; 8] = [
    0xd280_0000, // 0x00: mov x0, #0
    0xd280_0003, // 0x04: mov x3, #0
    0x9100_0400, // 0x08: add x0, x0, #1  (loop)
    0x8b00_0063, // 0x0c: add x3, x3, x0
    0xa900_0c20, // 0x10: stp x0, x3, [x1]  (through its handler)
    0xeb02_001f, // 0x14: cmp x0, x2
    0x54ff_ff81, // 0x18: b.ne 0x08
    0xd420_0020, // 0x1c: brk #1
];

/// Runs `a` (background JIT) and `b` (interpreter) batch by batch with odd limits,
/// comparing state, count and memory after each, until both stop.
fn lockstep(a: &mut Cpu, b: &mut Cpu, mem: (&GuestMemoryMmap, &GuestMemoryMmap)) -> u64 {
    let attention = AtomicU32::new(0);
    for batch in 0.. {
        let limit = [7, 256, 3, 64][batch % 4];
        let ra = a.run_batch(&attention, limit);
        let rb = b.run_batch(&attention, limit);
        let (oa, ob) = (outcome(a, &ra), outcome(b, &rb));
        assert!(
            oa == ob && a.insns == b.insns,
            "batch {batch}: JIT and interpreter differ\n--- jit:\n{oa}\n--- interpreter:\n{ob}"
        );
        assert!(
            window(mem.0) == window(mem.1),
            "batch {batch}: memory differs"
        );
        if ra.is_err() {
            return a.insns;
        }
    }
    unreachable!("the loop above only ends by returning")
}

/// [`LOOP`] for `rounds` rounds on a CPU over `mem_a` with the background JIT and one over
/// `mem_b` with the interpreter.
fn two_loops(mem_a: &GuestMemoryMmap, mem_b: &GuestMemoryMmap, rounds: u64) -> (Cpu, Cpu) {
    load(mem_a, RAM, &LOOP);
    load(mem_b, RAM, &LOOP);
    let (mut a, mut b) = (new_cpu(mem_a), new_cpu(mem_b));
    for cpu in [&mut a, &mut b] {
        cpu.st.pc = RAM;
        cpu.st.x[1] = RAM + 0x800;
        cpu.st.x[2] = rounds;
    }
    blocks(&mut a, true);
    blocks(&mut b, false);
    (a, b)
}

#[test]
fn blocks_compiled_on_the_worker_run_like_the_interpreter() {
    let (mem_a, mem_b) = (ram(), ram());
    let (mut a, mut b) = two_loops(&mem_a, &mem_b, 20_000);
    // The first batch queues the blocks it enters; their code is installed by a later
    // batch, whenever the worker delivers it.
    let insns = lockstep(&mut a, &mut b, (&mem_a, &mem_b));
    assert_eq!(insns, 2 + 5 * 20_000);
    assert_eq!(a.st.x[3], 20_000 * 20_001 / 2);
    let j = jit(&mut a);
    j.wait_for_worker();
    assert!(
        j.compiled >= 2,
        "the worker compiled the blocks: {}",
        j.compiled
    );
}

#[test]
fn code_arriving_for_changed_words_is_never_run() {
    // The loop body is queued, then changed (as a debugger write would) before its code is
    // installed: the installed code must find the change at its entry check.
    let (mem_a, mem_b) = (ram(), ram());
    let (mut a, mut b) = two_loops(&mem_a, &mem_b, 1_000);
    let attention = AtomicU32::new(0);
    // Both blocks (the two movs with the loop, and the loop from 0x08) are queued.
    for cpu in [&mut a, &mut b] {
        cpu.run_batch(&attention, 12).expect("runs");
    }
    // add x3, x3, x0 becomes sub x3, x3, x0 in both.
    load(&mem_a, RAM + 0x0c, &[0xcb00_0063]);
    load(&mem_b, RAM + 0x0c, &[0xcb00_0063]);
    jit(&mut a).wait_for_worker();
    assert!(jit(&mut a).compiled >= 1, "code arrived for the old words");
    lockstep(&mut a, &mut b, (&mem_a, &mem_b));
    // Rounds 1 and 2 added (3), rounds 3 to 1,000 subtracted.
    assert_eq!(a.st.x[3], 6u64.wrapping_sub(1_000 * 1_001 / 2));
}
