//! gdb-multiarch against kvmdbg on built firmware: two vCPUs as two threads (one stepped while
//! the other stays put), and memory, hardware breakpoints and `monitor translate` at virtual
//! addresses of a firmware that runs from a high (TTBR1) alias of RAM.
//!
//! Needs gdb-multiarch and the firmware assembler: failures when CI=true, otherwise skipped.

mod common;

use common::gdb::{gdb_batch, printed_u64, require_gdb, text, Stub};

fn tools() -> bool {
    require_gdb() && common::require_firmware_tools()
}

#[test]
fn two_vcpus_are_two_threads_and_only_the_stepped_one_moves() {
    if !tools() {
        return;
    }
    let elf = common::firmware_elf("smp");
    let stub = Stub::start(&elf, &["--cpus", "2"]);
    let out = gdb_batch(
        stub.port,
        &elf,
        &[
            "break secondary_entry",
            "continue",
            "info threads",
            "set scheduler-locking on",
            "thread 1",
            "p/x $pc",
            "thread 2",
            "p/x $pc",
            "p $x0",
            "stepi",
            "p/x $pc",
            "thread 1",
            "p/x $pc",
            "thread 2",
            "stepi 3",
            "p/x $pc",
            "thread 1",
            "p/x $pc",
            "kill",
        ],
    );
    let all = text(&out);
    assert!(all.contains("Thread 2 hit Breakpoint 1"), "{all}");
    assert!(all.contains("Thread 1.1 (vCPU 0)"), "{all}");
    assert!(all.contains("Thread 1.2 (vCPU 1)"), "{all}");
    let boot_pc = printed_u64(&out, 1);
    let entry = printed_u64(&out, 2);
    assert_eq!(
        printed_u64(&out, 3),
        1,
        "CPU_ON context id = index 1:\n{all}"
    );
    assert_eq!(printed_u64(&out, 4), entry + 4, "thread 2 stepped:\n{all}");
    assert_eq!(printed_u64(&out, 5), boot_pc, "thread 1 stayed put:\n{all}");
    // mov x19; cmp; b.hs (not taken); bl cpu_stack_top: now in another function.
    assert_ne!(printed_u64(&out, 6), entry + 16, "{all}");
    assert_eq!(printed_u64(&out, 7), boot_pc, "thread 1 still put:\n{all}");
}

/// VA - PA of highmem's TTBR1 alias (firmware/highmem.S HIGH_OFFSET).
const HIGH_OFFSET: u64 = 0xffff_ff80_0000_0000;

#[test]
fn memory_breakpoints_and_translation_at_a_high_virtual_address() {
    if !tools() {
        return;
    }
    let elf = common::firmware_elf("highmem");
    let stub = Stub::start(&elf, &[]);
    let out = gdb_batch(
        stub.port,
        &elf,
        &[
            "hbreak *((char*)high_work + 0xffffff8000000000)",
            "continue",
            "p/x $pc",
            "p/x (long)high_work",
            "x/4wx $pc",
            "x/4wx high_work",
            "stepi 3",
            "p/x *(long*)((char*)&high_value + 0xffffff8000000000)",
            "p/x *(long*)&high_value",
            "set *(long*)((char*)&high_value + 0xffffff8000000000) = 0x1234abcd5678ef80",
            "p/x *(long*)&high_value",
            "eval \"monitor translate %p\", $pc",
            "monitor pagetable",
            "kill",
        ],
    );
    let all = text(&out);
    let pc = printed_u64(&out, 1);
    let work = printed_u64(&out, 2);
    assert_eq!(pc, work + HIGH_OFFSET, "{all}");
    // The same instruction words through both aliases.
    let words = |addr: &str| -> String {
        out.stdout
            .lines()
            .find(|l| l.starts_with(addr))
            .and_then(|l| l.split_once(':'))
            .map(|(_, w)| w.trim().to_string())
            .unwrap_or_else(|| panic!("no x/ line at {addr}:\n{all}"))
    };
    let high = words(&format!("{pc:#x}"));
    let low = words(&format!("{work:#x}"));
    assert_eq!(high, low, "{all}");
    assert!(high.starts_with("0x"), "{all}");
    // After `str x2, [x1]` both aliases show MAGIC; a write through the alias reaches RAM.
    assert_eq!(printed_u64(&out, 3), 0x1234_abcd_5678_ef90, "{all}");
    assert_eq!(printed_u64(&out, 4), 0x1234_abcd_5678_ef90, "{all}");
    assert_eq!(printed_u64(&out, 5), 0x1234_abcd_5678_ef80, "{all}");
    assert!(all.contains("TTBR1_EL1 (39-bit VA"), "{all}");
    assert!(all.contains("L1: table"), "{all}");
    assert!(
        all.contains(&format!("{:#x} -> {:#x} (level 1 leaf", pc + 12, work + 12)),
        "{all}"
    );
    assert!(
        all.contains("0xffffff8040000000-0xffffff807fffffff -> 0x40000000"),
        "{all}"
    );
}

#[test]
fn stepi_with_a_timer_interrupt_pending_stays_out_of_the_handler() {
    if !tools() {
        return;
    }
    // firmware/timer.S at c_irq_unmask: INTID 27 pending, PSTATE.I set; the block unmasks
    // (msr daifclr, #2; isb). stepi twice, then continue to the handler.
    let elf = common::firmware_elf("timer");
    let stub = Stub::start(&elf, &[]);
    let out = gdb_batch(
        stub.port,
        &elf,
        &[
            "hbreak c_irq_unmask",
            "continue",
            "delete",
            "stepi",
            "p/x $pc",
            "stepi",
            "p/x $pc",
            "p/x $cpsr & 0x80",
            "p/x (long)&c_irq_unmask_end",
            "hbreak irq_handler",
            "continue",
            "p/x $elr_el1",
            "p/x $spsr_el1 & 0x3df",
            "delete",
            "continue",
        ],
    );
    let all = text(&out);
    let end = printed_u64(&out, 4);
    assert_eq!(
        printed_u64(&out, 1),
        end - 4,
        "first stepi: the next instruction\n{all}"
    );
    assert_eq!(
        printed_u64(&out, 2),
        end,
        "second stepi: not the vector\n{all}"
    );
    assert_eq!(
        printed_u64(&out, 3),
        0,
        "the guest's own DAIFClr cleared I\n{all}"
    );
    assert_eq!(
        printed_u64(&out, 5),
        end,
        "taken where the steps ended\n{all}"
    );
    assert_eq!(
        printed_u64(&out, 6),
        0x345,
        "SPSR: the guest's own DAIF\n{all}"
    );
    assert!(all.contains("exited normally"), "runs to PASS:\n{all}");
}

/// gdb's output (and all of it as text) for `cmds` against a stub on firmware `fw`; None
/// when the tools are missing (a failure under CI=true).
fn gdb_on(fw: &str, cmds: &[&str]) -> Option<(common::RunOutput, String)> {
    if !tools() {
        return None;
    }
    let elf = common::firmware_elf(fw);
    let stub = Stub::start(&elf, &[]);
    let out = gdb_batch(stub.port, &elf, cmds);
    let all = text(&out);
    Some((out, all))
}

/// The `monitor caps` line for hardware breakpoints: "(N hbreak, M vector catch)".
fn catch_slots_in_caps(all: &str) -> usize {
    let line = all
        .lines()
        .find(|l| l.starts_with("hardware breakpoints:"))
        .unwrap_or_else(|| panic!("no caps line:\n{all}"));
    line.rsplit_once(", ")
        .and_then(|(_, tail)| tail.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("caps line {line:?}"))
}

/// Slots a catch of `entries` vector entries takes on this backend (the model catches at
/// exception entry without any).
fn expected_slots(entries: usize) -> usize {
    if common::gdb::backend_name() == "kvm" {
        entries
    } else {
        0
    }
}

#[test]
fn vector_catch_stops_at_synchronous_exceptions_from_el1_with_their_syndrome() {
    // firmware/exceptions.S: svc #0x42, brk #0x7 (the guest's own BRK, re-injected by
    // kvmdbg) and udf #0 from EL1h, all to exc_vectors + 0x200; then an SVC from EL0, which
    // is not in the set.
    let Some((out, all)) = gdb_on(
        "exceptions",
        &[
            "monitor catch exceptions sync el1",
            "monitor caps",
            "continue",
            "p/x $pc",
            "p/x (long)&exc_vectors",
            "p/x $esr_el1",
            "p/x $elr_el1",
            "p/x (long)&svc_return",
            "continue",
            "p/x $esr_el1",
            "p/x $elr_el1",
            "p/x (long)&brk_insn",
            "continue",
            "p/x $esr_el1",
            "p/x $elr_el1",
            "p/x (long)&udf_insn",
            "monitor catch",
            "continue",
        ],
    ) else {
        return;
    };
    let vectors = printed_u64(&out, 2);
    assert_eq!(
        printed_u64(&out, 1),
        vectors + 0x200,
        "at the vector\n{all}"
    );
    assert_eq!(printed_u64(&out, 3), 0x5600_0042, "{all}");
    assert_eq!(printed_u64(&out, 4), printed_u64(&out, 5), "{all}");
    assert_eq!(printed_u64(&out, 6), 0xf200_0007, "{all}");
    assert_eq!(printed_u64(&out, 7), printed_u64(&out, 8), "{all}");
    assert_eq!(printed_u64(&out, 9), 0x0200_0000, "{all}");
    assert_eq!(printed_u64(&out, 10), printed_u64(&out, 11), "{all}");
    assert_eq!(catch_slots_in_caps(&all), expected_slots(2), "{all}");
    assert_eq!(
        all.matches("received signal SIGTRAP").count(),
        3,
        "one stop per exception:\n{all}"
    );
    assert!(
        all.contains(&format!(
            "kvmdbg: vector catch: vCPU 0 took a synchronous exception from EL1 at vector \
             {:#x} (SVC) ESR_EL1=0x56000042",
            vectors + 0x200
        )),
        "gdb shows the catch:\n{all}"
    );
    assert!(all.contains("vector catch: sync el1"), "{all}");
    assert!(
        all.contains("last catch: vector catch: vCPU 0 took a synchronous exception from EL1")
            && all.contains("ESR_EL1=0x2000000"),
        "monitor catch shows the last catch:\n{all}"
    );
    assert!(
        all.contains("exited normally"),
        "the EL0 SVC is not caught:\n{all}"
    );
}

#[test]
fn vector_catch_stops_at_an_svc_from_el0() {
    let Some((out, all)) = gdb_on(
        "exceptions",
        &[
            "monitor catch exceptions sync el0",
            "continue",
            "p/x $pc",
            "p/x (long)&exc_vectors + 0x400",
            "p/x $esr_el1",
            "p/x $elr_el1",
            "p/x (long)&el0_svc_return",
            "p/x $spsr_el1 & 0xf00003df",
            "monitor catch none",
            "monitor caps",
            "continue",
        ],
    ) else {
        return;
    };
    assert_eq!(printed_u64(&out, 1), printed_u64(&out, 2), "{all}");
    assert_eq!(printed_u64(&out, 3), 0x5600_0043, "{all}");
    assert_eq!(printed_u64(&out, 4), printed_u64(&out, 5), "{all}");
    assert_eq!(
        printed_u64(&out, 6),
        0x6000_03c0,
        "NZCV, DAIF, M: from EL0t\n{all}"
    );
    assert!(
        all.contains("took a synchronous exception from EL0"),
        "{all}"
    );
    assert!(all.contains("vector catch: none"), "{all}");
    assert_eq!(catch_slots_in_caps(&all), 0, "cleared\n{all}");
    assert!(all.contains("exited normally"), "{all}");
}

#[test]
fn vector_catch_stops_at_a_timer_irq_before_its_handler() {
    // firmware/timer.S: the first timer IRQ is taken from EL1h right after DAIFClr #2.
    let Some((out, all)) = gdb_on(
        "timer",
        &[
            "monitor catch exceptions irq el1",
            "monitor caps",
            "continue",
            "p/x $pc",
            "p/x (long)&timer_vectors + 0x280",
            "p/x $spsr_el1 & 0x3df",
            "p/x *(long*)&irq_count",
            "monitor catch clear",
            "continue",
        ],
    ) else {
        return;
    };
    assert_eq!(printed_u64(&out, 1), printed_u64(&out, 2), "{all}");
    assert_eq!(printed_u64(&out, 3), 0x345, "only I was clear\n{all}");
    assert_eq!(printed_u64(&out, 4), 0, "before the handler ran\n{all}");
    assert_eq!(catch_slots_in_caps(&all), expected_slots(2), "{all}");
    assert!(all.contains("received signal SIGTRAP"), "{all}");
    assert!(all.contains("took an IRQ from EL1"), "{all}");
    assert!(all.contains("exited normally"), "{all}");
}
