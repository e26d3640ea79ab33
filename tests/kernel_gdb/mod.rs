//! The gdb session on a Linux kernel (`tests/gdb_linux.rs`): the guest's init, the two gdb
//! scripts and the checks of gdb's output. Submodules: `stub` (kvmdbg serving the kernel on
//! the model, or on nested KVM in remote mode), `user` (the user program whose buffer the
//! kernel writes with `copy_to_user`).
//!
//! Phase 1 runs while the user program loops in `clock_gettime` (one vCPU busy, so timer
//! interrupts keep arriving): a hardware watchpoint on `jiffies_64` (old and new value),
//! `stepi` to the next `bl` in that kernel code and `nexti` over it, a hardware breakpoint
//! on the program's loop (a user, TTBR0 address), `monitor translate` of its buffer, a
//! watchpoint on the buffer that the kernel's `sttr` hits, and finally a write to the
//! program's flag so that it exits. Phase 2 runs once every vCPU idles: the interrupt stop,
//! `info threads`, `monitor translate` of kernel text, `hbreak` on `cpu_do_idle` and `stepi`
//! across its WFI.

pub mod ksymtab;
pub mod stub;
pub mod user;

/// Kernel (TTBR1) addresses have their top bits set (Arm ARM D8.2 "Translation table
/// base": VA bit 55 selects TTBR1; Linux's kernel VAs start at 0xffff_0000_0000_0000 with
/// 48-bit VAs, Documentation/arch/arm64/memory.rst).
pub fn is_kernel_va(va: u64) -> bool {
    va >= 0xffff_0000_0000_0000
}

/// Guest RAM base (QEMU `virt` layout, docs/architecture.md) and its size (`MEMORY`).
pub const RAM_BASE: u64 = 0x4000_0000;
pub const RAM_SIZE: u64 = 256 << 20;
/// The vector table is 16 entries of 0x80 bytes (Arm ARM D1.10.2 "Exception vectors").
pub const VECTORS_SIZE: u64 = 0x800;
/// The `WFI` instruction word (Arm ARM C6.2 "WFI": HINT with CRm 0, op2 3).
pub const WFI: u64 = 0xd503_207f;
/// `BL imm26`: bits \[31:26\] = 0b100101 (Arm ARM C6.2 "BL").
pub const BL_MASK: u64 = 0xfc00_0000;
pub const BL_BITS: u64 = 0x9400_0000;

/// Where the `bl` word `insn` at `pc` branches: PC + SignExtend(imm26) * 4.
pub fn bl_target(pc: u64, insn: u64) -> u64 {
    let imm = ((insn as i64) << 38) >> 36;
    pc.wrapping_add(imm as u64)
}
/// STTR, STTRB, STTRH: size \[31:30\] any, bits \[29:21\] = 0b111000000 (opc 00: a store),
/// bits \[11:10\] = 0b10 (Arm ARM C6.2 "STTR", "STTRB", "STTRH").
pub const STTR_MASK: u64 = 0x3fe0_0c00;
pub const STTR_BITS: u64 = 0x3800_0800;
/// How many `stepi`s from the breakpoint on `cpu_do_idle`: Linux's `cpu_do_idle` reaches
/// its WFI within a few instructions (three in Debian 12's build); six leave room for other
/// builds.
pub const IDLE_STEPS: usize = 6;
/// At most this many `stepi`s looking for a `bl` after the `jiffies_64` watchpoint (the
/// timer code calls another function within a few dozen instructions).
pub const MAX_BL_SEARCH: usize = 64;

/// The init: prints the kernel symbols the session uses (readable by root: kptr_restrict 0),
/// a marker, runs the user program until gdb ends it, then sleeps without a busy process so
/// every vCPU idles.
pub const INIT: &str = r#"#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
awk '$3 == "cpu_do_idle" || $3 == "vectors" || $3 == "primary_entry" { print "KVMDBG-SYM " $3 " " $1 }' /proc/kallsyms
echo "KVMDBG-GDB-READY"
/bin/kvmdbg-user
echo "KVMDBG-USER-DONE $?"
exec sleep 100000
"#;

/// `jiffies_64` at its start: `INITIAL_JIFFIES`, 300 s before the 32-bit wrap for any HZ
/// up to 1000 (the kernel's include/linux/jiffies.h); it only grows from there.
pub const MIN_JIFFIES: u64 = (1 << 32) - 300 * 1000;

/// The kernel addresses the session uses: code from the guest's /proc/kallsyms, `jiffies_64`
/// from the Image's export table relative to the running `_text` ([`ksymtab`]).
pub struct Symbols {
    pub idle: u64,
    pub vectors: u64,
    pub jiffies: u64,
}

impl Symbols {
    pub fn parse(lines: &[String], image: &[u8]) -> Symbols {
        let jiffies = ksymtab::exported_symbol(image, "jiffies_64")
            .unwrap_or_else(|e| panic!("jiffies_64 in the kernel Image: {e}"));
        let s = Symbols {
            idle: symbol(lines, "cpu_do_idle"),
            vectors: symbol(lines, "vectors"),
            jiffies: text(lines, image) + jiffies,
        };
        for a in [s.idle, s.vectors, s.jiffies] {
            assert!(is_kernel_va(a), "{a:#x} is not a kernel address: {lines:?}");
        }
        s
    }
}

/// The running `_text`: `primary_entry` less its offset in the Image.
fn text(lines: &[String], image: &[u8]) -> u64 {
    let entry = ksymtab::entry_offset(image).unwrap_or_else(|e| panic!("{e}"));
    symbol(lines, "primary_entry") - entry
}

/// The address after `KVMDBG-SYM name` in the guest's output.
fn symbol(lines: &[String], name: &str) -> u64 {
    let key = format!("KVMDBG-SYM {name} ");
    let hex = lines
        .iter()
        .find_map(|l| l.trim_end_matches('\r').strip_prefix(&key))
        .unwrap_or_else(|| panic!("the guest printed no address for {name}: {lines:?}"));
    u64::from_str_radix(hex.trim(), 16).unwrap_or_else(|_| panic!("{name}: {hex:?}"))
}

/// Phase 1, run at the first interrupt (the user program loops).
pub fn phase1(s: &Symbols) -> String {
    let (j, buf, flag, lp) = (s.jiffies, user::BUF, user::FLAG, user::LOOP);
    let nsec = buf + 8;
    let mut g = String::from("printf \"KG-PHASE1\\n\"\n");
    // Kernel data: the timer interrupt's update of jiffies_64.
    g += &format!("printf \"KG-J0 0x%lx\\n\", *(unsigned long *){j:#x}\n");
    g += &format!("watch *(unsigned long *){j:#x}\ncontinue\n");
    g += &format!("printf \"KG-JHIT 0x%lx 0x%lx\\n\", $pc, *(unsigned long *){j:#x}\ndelete\n");
    // Step through that kernel code (interrupts arriving) to a `bl`, and over it.
    g += &format!(
        "set $kg_n = 0\n\
         while $kg_n < {MAX_BL_SEARCH} && (*(unsigned int *)$pc & {BL_MASK:#x}) != {BL_BITS:#x}\n\
         stepi\n\
         printf \"KG-KSTEP 0x%lx\\n\", $pc\n\
         set $kg_n = $kg_n + 1\n\
         end\n"
    );
    // Without symbols gdb cannot tell the callee's frame from the caller's, so `nexti`
    // stops in the callee; what it would do by hand: step into the call, then run this
    // vCPU to the return address (LR) with a breakpoint for this thread only.
    g += "printf \"KG-BL 0x%lx 0x%x\\n\", $pc, *(unsigned int *)$pc\nstepi\n";
    g += "printf \"KG-CALLEE 0x%lx 0x%lx\\n\", $pc, $lr\n";
    g += "eval \"tbreak *0x%lx thread %d\", $lr, $_thread\ncontinue\n";
    g += "printf \"KG-RETURNED 0x%lx\\n\", $pc\n";
    // A user address: the program's loop, then its buffer.
    g += &format!("hbreak *{lp:#x}\ncontinue\nprintf \"KG-UHIT 0x%lx\\n\", $pc\ndelete\n");
    g += &format!("monitor translate {buf:#x}\n");
    g += &format!("printf \"KG-U0 0x%lx\\n\", *(unsigned long *){nsec:#x}\n");
    g += &format!("watch *(unsigned long *){nsec:#x}\ncontinue\n");
    g += &format!(
        "printf \"KG-UWATCH 0x%lx 0x%x 0x%lx\\n\", $pc, *(unsigned int *)($pc - 4), \
         *(unsigned long *){nsec:#x}\ndelete\n"
    );
    // Still in the program's system call (its TTBR0): end its loop.
    g += &format!("set var *(unsigned int *){flag:#x} = 1\ncontinue\n");
    g
}

/// Phase 2, run at the second interrupt (every vCPU idles).
pub fn phase2(s: &Symbols) -> String {
    let idle = s.idle;
    let mut g = String::from(
        "printf \"KG-PHASE2\\n\"\n\
         info threads\n\
         thread apply all printf \"KG-IDLE 0x%lx 0x%x 0x%x\\n\", $pc, *(unsigned int *)$pc, *(unsigned int *)($pc - 4)\n",
    );
    g += &format!("monitor translate {idle:#x}\n");
    g += &format!("hbreak *{idle:#x}\ncontinue\nprintf \"KG-HIT 0x%lx\\n\", $pc\n");
    // Step only the thread that hit (the other vCPU stays stopped and cannot report the
    // breakpoint instead), across cpu_do_idle's WFI: that step ends only when an interrupt
    // wakes the vCPU, and must end after the WFI, not in the vector the interrupt takes.
    g += "delete\nset scheduler-locking step\n";
    for _ in 0..IDLE_STEPS {
        g += "stepi\nprintf \"KG-STEP 0x%lx 0x%x\\n\", $pc, *(unsigned int *)($pc - 4)\n";
    }
    g += "printf \"KG-DONE\\n\"\n";
    g
}

/// Hex numbers after `tag` on each gdb output line that has it.
pub fn tagged(out: &str, tag: &str) -> Vec<Vec<u64>> {
    out.lines()
        .filter_map(|l| l.strip_prefix(tag))
        .map(|rest| {
            rest.split_whitespace()
                .map(|w| u64::from_str_radix(w.trim_start_matches("0x"), 16).unwrap())
                .collect()
        })
        .collect()
}

/// The one line tagged `tag`.
pub fn tagged_one(out: &str, tag: &str, all: &str) -> Vec<u64> {
    let mut v = tagged(out, tag);
    assert_eq!(v.len(), 1, "one {tag:?} line\n{all}");
    v.remove(0)
}

/// The (old, new) values gdb printed at each watchpoint stop, in order.
pub fn watch_values(out: &str) -> Vec<(u64, u64)> {
    let num = |l: &str, key: &str| {
        l.trim()
            .strip_prefix(key)
            .and_then(|v| v.trim().parse().ok())
    };
    let lines: Vec<&str> = out.lines().collect();
    lines
        .windows(2)
        .filter_map(|w| Some((num(w[0], "Old value =")?, num(w[1], "New value =")?)))
        .collect()
}

/// The PA `monitor translate` gave for `va` (the line `VA -> PA ...`).
pub fn translated(out: &str, va: u64, all: &str) -> u64 {
    let key = format!("{va:#x} -> 0x");
    out.lines()
        .find_map(|l| l.trim().strip_prefix(&key))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|h| u64::from_str_radix(h, 16).ok())
        .unwrap_or_else(|| panic!("no translation of {va:#x}\n{all}"))
}

/// `monitor translate` of `va` gave a PA in guest RAM with the same page offset.
pub fn check_translate(out: &str, va: u64, all: &str) {
    let pa = translated(out, va, all);
    assert!(
        (RAM_BASE..RAM_BASE + RAM_SIZE).contains(&pa),
        "{va:#x} -> {pa:#x} is not in RAM\n{all}"
    );
    assert_eq!(pa & 0xfff, va & 0xfff, "page offset of {va:#x}\n{all}");
}

/// A PC the kernel stepped to: kernel text, never an exception vector.
pub fn check_kernel_pc(pc: u64, s: &Symbols, what: &str, all: &str) {
    assert!(is_kernel_va(pc), "{what} left the kernel: {pc:#x}\n{all}");
    assert!(
        !(s.vectors..s.vectors + VECTORS_SIZE).contains(&pc),
        "{what} landed in a vector: {pc:#x} (vectors at {:#x})\n{all}",
        s.vectors
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bl_target_sign_extends_imm26() {
        // Seen in Debian's 6.1 kernel: a backward call, and stepping into it landed there.
        assert_eq!(
            bl_target(0xffff_8000_0817_8370, 0x97fe_4c08),
            0xffff_8000_0810_b390
        );
        assert_eq!(bl_target(0x1000, 0x9400_0004), 0x1010, "forward");
    }
}
