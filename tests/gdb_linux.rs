//! gdb-multiarch on Debian's arm64 kernel (the setup cache's Image, no symbols), 2 vCPUs,
//! `nokaslr`, on the model here and on real KVM in the nested machine (remote mode:
//! scripts/nested/gdb-remote.sh; `tests/kernel_gdb/stub.rs`). kvmdbg starts halted (`-S`),
//! gdb continues, the guest's init prints the kernel addresses it needs from /proc/kallsyms
//! and runs a user program that loops in `clock_gettime` (`tests/kernel_gdb/user.rs`).
//!
//! The test interrupts gdb twice (SIGINT: gdb sends the remote interrupt, as Ctrl-C does),
//! in one gdb session (the phases are in `tests/kernel_gdb/mod.rs`):
//! 1. while the program runs: a hardware watchpoint on `jiffies_64` (its address from the
//!    Image's export table, `tests/kernel_gdb/ksymtab.rs`) stops with the old and new value;
//!    `stepi` to the next `bl` of that kernel code, into the call and back over it (a
//!    thread-specific `tbreak` at LR: without symbols gdb's `nexti` stops in the callee),
//!    never in a vector; `hbreak` on the program's loop (a user address); `monitor translate` of its
//!    buffer; a watchpoint on the buffer stops after the kernel's `sttr` (copy_to_user) with
//!    the old and new value; gdb writes the program's flag, the program exits.
//! 2. once every vCPU idles in WFI: the stop, one thread per vCPU each at a kernel (TTBR1)
//!    address, `monitor translate` of kernel text, a hardware breakpoint on `cpu_do_idle` hit
//!    at exactly that address, and `stepi` from there across the idle loop's WFI, which an
//!    interrupt ends: the step stops after the WFI, never in the exception vectors.
//!
//! Needs the cached kernel, Debian's `busybox-static:arm64` and gdb-multiarch: missing, the
//! test fails under CI=true and skips elsewhere.

mod common;
mod kernel_gdb;
mod linux_support;

use std::sync::mpsc::{Receiver, TryRecvError};
use std::thread;
use std::time::{Duration, Instant};

use kernel_gdb::stub::{KernelStub, Proc};
use kernel_gdb::{
    bl_target, check_kernel_pc, check_translate, is_kernel_va, tagged, tagged_one, user,
    watch_values, Symbols, BL_BITS, BL_MASK, IDLE_STEPS, INIT, MIN_JIFFIES, STTR_BITS, STTR_MASK,
    WFI,
};
use linux_support::{initramfs_with, prerequisites, temp_file, BOOT_TIMEOUT};

/// The command line: `nokaslr` so the kernel's addresses are those of the Image's link
/// (Documentation/admin-guide/kernel-parameters.txt); `quiet` keeps console traps few.
const CMDLINE: &str = "console=ttyAMA0 rdinit=/init nokaslr cryptomgr.notests quiet";
/// How long the whole session may take after the boot (nested KVM runs under QEMU's TCG:
/// every step and stop is slow there).
const SESSION_TIMEOUT: Duration = Duration::from_secs(900);

#[test]
fn gdb_debugs_a_kernel_watchpoints_user_buffer_idle_interrupt_and_steps() {
    let test = "gdb_debugs_a_kernel";
    let Some((kernel, busybox)) = prerequisites(test) else {
        return;
    };
    if !common::gdb::require_gdb() {
        return;
    }
    let program = user::program();
    let initrd = initramfs_with(&busybox, INIT, &[("bin/kvmdbg-user", &program)]);
    let mut stub = KernelStub::start(&kernel, &initrd, CMDLINE, 2);
    let backend = stub.backend();
    let (p1, p2) = (
        temp_file("gdb-linux-1.gdb", b""),
        temp_file("gdb-linux-2.gdb", b""),
    );
    // gdb has no program file: the stub's target description gives the architecture.
    let gdb = Proc::spawn(
        common::gdb::batch_command(&format!("target remote 127.0.0.1:{}", stub.port)).args([
            "-ex",
            "continue",
            "-ex",
            &format!("source {}", p1.display()),
            "-ex",
            &format!("source {}", p2.display()),
        ]),
    );
    let boot = match stub.wait_line("KVMDBG-GDB-READY", BOOT_TIMEOUT) {
        Ok(lines) => lines,
        Err(_) => fail(stub, gdb, "no init marker"),
    };
    let image = std::fs::read(&kernel).unwrap();
    let syms = Symbols::parse(&boot, &image);
    std::fs::write(&p1, kernel_gdb::phase1(&syms)).unwrap();
    std::fs::write(&p2, kernel_gdb::phase2(&syms)).unwrap();
    // The user program loops now: phase 1.
    thread::sleep(Duration::from_secs(2));
    interrupt(&gdb);
    // Phase 1 ends the program; once the guest idles, phase 2.
    if let Err(why) = wait_for_idle(&mut stub, &gdb.lines) {
        fail(stub, gdb, &why);
    }
    thread::sleep(Duration::from_secs(2));
    interrupt(&gdb);
    let (exited, out, err) = gdb.finish(SESSION_TIMEOUT);
    let (console, kerr) = stub.finish();
    let all = format!(
        "backend {backend}\n--- gdb ---\n{out}\n{err}\n--- console ---\n{console}\n--- kvmdbg ---\n{kerr}"
    );
    assert!(exited, "gdb did not finish\n{all}");
    assert!(out.contains("KG-DONE"), "the checks did not run\n{all}");
    // One interrupt stop before each phase: the second after phase 1's last stop.
    let sigints: Vec<usize> = out
        .match_indices("received signal SIGINT")
        .map(|(i, _)| i)
        .collect();
    let phase1_end = out.find("KG-UWATCH").unwrap_or(out.len());
    assert!(
        sigints.len() == 2
            && sigints[0] < out.find("KG-PHASE1").unwrap()
            && sigints[1] > phase1_end,
        "an interrupt stop before each phase\n{all}"
    );
    let (one, two) = out.split_once("KG-PHASE2").unwrap();
    // gdb prints monitor output on stderr: one translation per phase, in order.
    check_busy_phase(one, &err, &syms, &all);
    check_idle_phase(two, &err, &syms, &all);
    let transcript: Vec<&str> = out.lines().filter(|l| l.starts_with("KG-")).collect();
    eprintln!(
        "kernel gdb session passed on {backend}:\n{}",
        transcript.join("\n")
    );
}

/// Stops both and fails with everything they printed.
fn fail(stub: KernelStub, gdb: Proc, what: &str) -> ! {
    let backend = stub.backend();
    let (_, gout, gerr) = gdb.finish(Duration::ZERO);
    let (out, err) = stub.finish();
    panic!(
        "{what} ({backend})\n--- console ---\n{out}\n--- kvmdbg ---\n{err}\n--- gdb ---\n{gout}\n{gerr}"
    );
}

/// Waits until the guest printed the user program's end (phase 1 done) or gdb reached phase 2
/// early (phase 1 failed) or exited.
fn wait_for_idle(stub: &mut KernelStub, gdb_lines: &Receiver<String>) -> Result<(), String> {
    let deadline = Instant::now() + SESSION_TIMEOUT;
    let mut gdb_seen = Vec::new();
    while Instant::now() < deadline {
        if let Ok(lines) = stub.wait_line("KVMDBG-USER-DONE", Duration::from_secs(1)) {
            let done = lines.last().unwrap().trim_end_matches('\r').to_string();
            return if done.ends_with("KVMDBG-USER-DONE 0") {
                Ok(())
            } else {
                Err(format!("the user program ended badly: {done:?}"))
            };
        }
        loop {
            match gdb_lines.try_recv() {
                Ok(l) if l.contains("KG-PHASE2") => {
                    return Err("gdb left phase 1 before the program ended".into())
                }
                Ok(l) => gdb_seen.push(l),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => return Err("gdb exited during phase 1".into()),
            }
        }
    }
    Err(format!(
        "the user program did not end; gdb so far: {gdb_seen:?}"
    ))
}

/// Phase 1: the watchpoints on kernel data and on the user buffer, the stepping over a `bl`,
/// the user breakpoint and translation.
fn check_busy_phase(out: &str, err: &str, s: &Symbols, all: &str) {
    assert!(
        out.matches("Hardware watchpoint").count() >= 2,
        "two hardware watchpoints set and hit\n{all}"
    );
    let values = watch_values(out);
    assert_eq!(values.len(), 2, "two watchpoint stops\n{all}");
    // jiffies_64: the value gdb read before, then the tick's increment.
    let j0 = tagged_one(out, "KG-J0 ", all)[0];
    let jhit = tagged_one(out, "KG-JHIT ", all);
    let (old, new) = values[0];
    assert_eq!(old, j0, "jiffies old value\n{all}");
    assert_eq!(
        new, jhit[1],
        "jiffies new value is what memory holds\n{all}"
    );
    assert!(new > old, "jiffies went forward\n{all}");
    assert!(old >= MIN_JIFFIES, "{old:#x} is not a jiffies value\n{all}");
    check_kernel_pc(jhit[0], s, "the jiffies watchpoint stop", all);
    // stepi to a `bl`, into the callee (LR = the return address), and back over the call
    // (the callee runs with interrupts arriving): never in a vector.
    for v in tagged(out, "KG-KSTEP ") {
        check_kernel_pc(v[0], s, "stepi", all);
    }
    let bl = tagged_one(out, "KG-BL ", all);
    assert_eq!(bl[1] & BL_MASK, BL_BITS, "no bl within the search\n{all}");
    let callee = tagged_one(out, "KG-CALLEE ", all);
    assert_eq!(
        callee,
        vec![bl_target(bl[0], bl[1]), bl[0] + 4],
        "stepi into the bl at {:#x}: the callee, LR the return address\n{all}",
        bl[0]
    );
    let back = tagged_one(out, "KG-RETURNED ", all)[0];
    assert_eq!(back, bl[0] + 4, "over the call at {:#x}\n{all}", bl[0]);
    // The user breakpoint and the translation of the buffer (TTBR0).
    assert_eq!(tagged_one(out, "KG-UHIT ", all), vec![user::LOOP], "{all}");
    check_translate(err, user::BUF, all);
    // The buffer: the kernel's sttr wrote a new tv_nsec.
    let u0 = tagged_one(out, "KG-U0 ", all)[0];
    let uw = tagged_one(out, "KG-UWATCH ", all);
    let (old, new) = values[1];
    assert_eq!(old, u0, "buffer old value\n{all}");
    assert_eq!(new, uw[2], "buffer new value is what memory holds\n{all}");
    assert_ne!(new, old, "{all}");
    check_kernel_pc(uw[0], s, "the buffer watchpoint stop", all);
    assert_eq!(
        uw[1] & STTR_MASK,
        STTR_BITS,
        "the buffer was written by {:#x}, not an sttr\n{all}",
        uw[1]
    );
}

/// Phase 2: Ctrl-C with every vCPU idle, threads, translation of kernel text, the breakpoint
/// on `cpu_do_idle` and the steps across its WFI.
fn check_idle_phase(out: &str, err: &str, s: &Symbols, all: &str) {
    check_interrupt(out, all);
    check_translate(err, s.idle, all);
    assert_eq!(
        tagged(out, "KG-HIT "),
        vec![vec![s.idle]],
        "hbreak on cpu_do_idle\n{all}"
    );
    check_steps(&tagged(out, "KG-STEP "), s, all);
}

/// Each `stepi` moved, stayed in the kernel and out of the vectors, and one of them executed
/// the WFI: it ended on the instruction after it (an interrupt woke the vCPU; the step ends
/// where the interrupted code resumes, not in the handler).
fn check_steps(steps: &[Vec<u64>], s: &Symbols, all: &str) {
    assert_eq!(steps.len(), IDLE_STEPS, "{all}");
    assert_ne!(steps[0][0], s.idle, "stepi did not move\n{all}");
    let pcs: Vec<u64> = std::iter::once(s.idle)
        .chain(steps.iter().map(|v| v[0]))
        .collect();
    let crossed = steps
        .iter()
        .zip(&pcs)
        .any(|(v, &before)| v[1] == WFI && v[0] == before + 4);
    assert!(crossed, "no stepi executed the WFI\n{all}");
    for &pc in &pcs[1..] {
        check_kernel_pc(pc, s, "stepi", all);
    }
}

/// The interrupt stopped both vCPUs in the kernel; at least one was waiting in WFI (the PC at the
/// WFI or after it, depending on whether the wait had completed).
fn check_interrupt(out: &str, all: &str) {
    let threads = out
        .lines()
        .filter(|l| {
            l.trim_start_matches('*')
                .trim_start()
                .starts_with(char::is_numeric)
        })
        .filter(|l| l.contains("Thread"))
        .count();
    assert_eq!(
        threads, 2,
        "`info threads` shows one thread per vCPU\n{all}"
    );
    let idle = tagged(out, "KG-IDLE ");
    assert_eq!(idle.len(), 2, "{all}");
    assert!(idle.iter().all(|v| is_kernel_va(v[0])), "{all}");
    let in_wfi = idle.iter().filter(|v| v[1] == WFI || v[2] == WFI).count();
    eprintln!("vCPUs at a WFI when interrupted: {in_wfi} of 2");
    assert!(in_wfi >= 1, "no vCPU was idling in WFI\n{all}");
}

/// Sends SIGINT to gdb, as a terminal's Ctrl-C does: gdb sends the remote interrupt.
fn interrupt(gdb: &Proc) {
    let pid = nix::unistd::Pid::from_raw(gdb.child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).expect("signal gdb");
}
