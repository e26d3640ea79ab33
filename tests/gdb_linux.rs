//! gdb-multiarch on Debian's arm64 kernel (the setup cache's Image, no symbols) on the model
//! backend, 2 vCPUs, `nokaslr`: kvmdbg starts halted (`-S`), gdb continues, the guest's init
//! prints the kernel addresses of `cpu_do_idle` and `vectors` from /proc/kallsyms and then
//! sleeps, so every vCPU idles in WFI; the test interrupts gdb (SIGINT: gdb sends the
//! remote interrupt, as Ctrl-C does) and checks, in the same gdb session: the stop, one
//! thread per vCPU each at a kernel (TTBR1) address, `monitor translate` of a kernel address
//! giving a PA in guest RAM, a hardware breakpoint on `cpu_do_idle` hit at exactly that
//! address, and `stepi` from there (only that vCPU) across the idle loop's WFI, which an
//! interrupt ends: the step stops after the WFI, never in the exception vectors.
//!
//! Needs the cached kernel, Debian's `busybox-static:arm64` and gdb-multiarch: missing, the
//! test fails under CI=true and skips elsewhere. Real KVM (nested) and watchpoints on data
//! written by `sttr` are not covered here.

mod common;
mod linux_support;

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use linux_support::{initramfs, kvmdbg_exe, prerequisites, temp_file, BOOT_TIMEOUT, MEMORY};

/// The command line: `nokaslr` so the kernel's addresses are those of the Image's link
/// (Documentation/admin-guide/kernel-parameters.txt); `quiet` keeps console traps few.
const CMDLINE: &str = "console=ttyAMA0 rdinit=/init nokaslr cryptomgr.notests quiet";
/// Guest RAM base (QEMU `virt` layout, docs/architecture.md) and its size ([`MEMORY`]).
const RAM_BASE: u64 = 0x4000_0000;
const RAM_SIZE: u64 = 256 << 20;
/// The vector table is 16 entries of 0x80 bytes (Arm ARM D1.10.2 "Exception vectors").
const VECTORS_SIZE: u64 = 0x800;
/// The `WFI` instruction word (Arm ARM C6.2 "WFI": HINT with CRm 0, op2 3).
const WFI: u64 = 0xd503_207f;
/// How many `stepi`s from the breakpoint: Linux's `cpu_do_idle` reaches its WFI within a few
/// instructions (three in Debian 12's build); six leave room for other builds.
const STEPS: usize = 6;
/// Kernel (TTBR1) addresses have their top bits set (Arm ARM D8.2 "Translation table
/// base": VA bit 55 selects TTBR1; Linux's kernel VAs start at 0xffff_0000_0000_0000 with
/// 48-bit VAs, Documentation/arch/arm64/memory.rst).
fn is_kernel_va(va: u64) -> bool {
    va >= 0xffff_0000_0000_0000
}

/// The init: prints the two symbols' addresses (readable by root: kptr_restrict 0), a
/// marker, then sleeps without a busy process so every vCPU idles.
const INIT: &str = r#"#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
awk '$3 == "cpu_do_idle" || $3 == "vectors" { print "KVMDBG-SYM " $3 " " $1 }' /proc/kallsyms
echo "KVMDBG-GDB-READY"
exec sleep 100000
"#;

/// A child whose stdout lines arrive on a channel and whose stderr is collected.
struct Proc {
    child: Child,
    lines: Receiver<String>,
    err_lines: Receiver<String>,
    out: JoinHandle<String>,
    err: JoinHandle<String>,
}

impl Proc {
    fn spawn(cmd: &mut Command) -> Proc {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {:?}: {e}", cmd.get_program()));
        let (tx, lines) = channel();
        let out = child.stdout.take().unwrap();
        let out = thread::spawn(move || collect_lines(out, tx));
        let (tx, err_lines) = channel();
        let err = child.stderr.take().unwrap();
        let err = thread::spawn(move || collect_lines(err, tx));
        Proc {
            child,
            lines,
            err_lines,
            out,
            err,
        }
    }

    /// Stdout lines up to and including the first that contains `want`; None at the timeout
    /// or end of output.
    fn wait_line(&self, want: &str, timeout: Duration) -> Option<Vec<String>> {
        wait_line(&self.lines, want, timeout)
    }

    /// Waits up to `timeout` for the exit (killing it then); stdout and stderr.
    fn finish(mut self, timeout: Duration) -> (bool, String, String) {
        let deadline = Instant::now() + timeout;
        let exited = loop {
            match self.child.try_wait() {
                Ok(Some(_)) => break true,
                _ if Instant::now() >= deadline => break false,
                _ => thread::sleep(Duration::from_millis(50)),
            }
        };
        let _ = self.child.kill();
        let _ = self.child.wait();
        (
            exited,
            self.out.join().unwrap_or_default(),
            self.err.join().unwrap_or_default(),
        )
    }
}

/// Reads `r` to its end, sending each line to `tx`; everything read.
fn collect_lines<R: Read>(r: R, tx: Sender<String>) -> String {
    let mut all = String::new();
    for line in BufReader::new(r).lines().map_while(Result::ok) {
        all.push_str(&line);
        all.push('\n');
        let _ = tx.send(line);
    }
    all
}

/// Lines from `rx` up to and including the first that contains `want`; None at the timeout
/// or end of output.
fn wait_line(rx: &Receiver<String>, want: &str, timeout: Duration) -> Option<Vec<String>> {
    let deadline = Instant::now() + timeout;
    let mut seen = Vec::new();
    loop {
        let left = deadline.checked_duration_since(Instant::now())?;
        let line = rx.recv_timeout(left).ok()?;
        let done = line.contains(want);
        seen.push(line);
        if done {
            return Some(seen);
        }
    }
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

/// Hex numbers after `tag` on each gdb output line that has it.
fn tagged(out: &str, tag: &str) -> Vec<Vec<u64>> {
    out.lines()
        .filter_map(|l| l.strip_prefix(tag))
        .map(|rest| {
            rest.split_whitespace()
                .map(|w| u64::from_str_radix(w.trim_start_matches("0x"), 16).unwrap())
                .collect()
        })
        .collect()
}

/// The commands run once gdb has stopped the kernel (written after the guest printed the
/// addresses they use).
fn checks(idle: u64) -> String {
    let mut s = String::from(
        "info threads\n\
         thread apply all printf \"KG-IDLE 0x%lx 0x%x 0x%x\\n\", $pc, *(unsigned int *)$pc, *(unsigned int *)($pc - 4)\n",
    );
    s += &format!("monitor translate {idle:#x}\n");
    s += &format!("hbreak *{idle:#x}\ncontinue\nprintf \"KG-HIT 0x%lx\\n\", $pc\n");
    // Step only the thread that hit (the other vCPU stays stopped and cannot report the
    // breakpoint instead), across cpu_do_idle's WFI: that step ends only when an interrupt
    // wakes the vCPU, and must end after the WFI, not in the vector the interrupt takes.
    s += "delete\nset scheduler-locking step\n";
    for _ in 0..STEPS {
        s += "stepi\nprintf \"KG-STEP 0x%lx 0x%x\\n\", $pc, *(unsigned int *)($pc - 4)\n";
    }
    s += "printf \"KG-DONE\\n\"\n";
    s
}

#[test]
fn gdb_interrupts_an_idle_kernel_breaks_steps_and_translates() {
    let test = "gdb_interrupts_an_idle_kernel";
    let Some((kernel, busybox)) = prerequisites(test) else {
        return;
    };
    if !common::gdb::require_gdb() {
        return;
    }
    let initrd = temp_file("gdb-linux.cpio", &initramfs(&busybox, INIT));
    let port = common::gdb::free_port();
    let kvmdbg = Proc::spawn(Command::new(kvmdbg_exe()).env("RUST_LOG", "info").args([
        "run",
        kernel.to_str().unwrap(),
        "--initrd",
        initrd.to_str().unwrap(),
        "--append",
        CMDLINE,
        "--memory",
        MEMORY,
        "--backend",
        "model",
        "--cpus",
        "2",
        "-S",
        "--gdb",
        &format!("tcp:127.0.0.1:{port}"),
    ]));
    // kvmdbg logs this line once it listens (src/gdb/server.rs).
    if wait_line(
        &kvmdbg.err_lines,
        "waiting for gdb on",
        Duration::from_secs(60),
    )
    .is_none()
    {
        let (_, _, err) = kvmdbg.finish(Duration::ZERO);
        panic!("kvmdbg did not start listening:\n{err}");
    }
    let script = temp_file("gdb-linux-checks.gdb", b"");
    // gdb has no program file: the stub's target description gives the architecture.
    let gdb = Proc::spawn(
        common::gdb::batch_command(&format!("target remote 127.0.0.1:{port}")).args([
            "-ex",
            "continue",
            "-ex",
            &format!("source {}", script.display()),
        ]),
    );
    let Some(boot) = kvmdbg.wait_line("KVMDBG-GDB-READY", BOOT_TIMEOUT) else {
        let (_, gout, gerr) = gdb.finish(Duration::ZERO);
        let (_, out, err) = kvmdbg.finish(Duration::ZERO);
        panic!("no init marker\n--- console ---\n{out}\n--- kvmdbg ---\n{err}\n--- gdb ---\n{gout}\n{gerr}");
    };
    let (idle, vectors) = (symbol(&boot, "cpu_do_idle"), symbol(&boot, "vectors"));
    assert!(
        is_kernel_va(idle) && is_kernel_va(vectors),
        "{idle:#x} {vectors:#x}"
    );
    std::fs::write(&script, checks(idle)).unwrap();
    // The guest sleeps now; give its last console output time to drain, then Ctrl-C.
    thread::sleep(Duration::from_secs(2));
    interrupt(&gdb);
    let (exited, out, err) = gdb.finish(BOOT_TIMEOUT);
    let (_, console, kerr) = kvmdbg.finish(Duration::ZERO);
    let all =
        format!("--- gdb ---\n{out}\n{err}\n--- console ---\n{console}\n--- kvmdbg ---\n{kerr}");
    assert!(exited, "gdb did not finish\n{all}");
    assert!(out.contains("KG-DONE"), "the checks did not run\n{all}");
    check_interrupt(&out, &all);
    // gdb prints monitor output on stderr.
    check_translate(&format!("{out}\n{err}"), idle, &all);
    let hit = tagged(&out, "KG-HIT ");
    assert_eq!(hit, vec![vec![idle]], "hbreak on cpu_do_idle\n{all}");
    let steps = tagged(&out, "KG-STEP ");
    check_steps(&steps, idle, vectors, &all);
}

/// Each `stepi` moved, stayed in the kernel and out of the vectors, and one of them executed
/// the WFI: it ended on the instruction after it (an interrupt woke the vCPU; the step ends
/// where the interrupted code resumes, not in the handler).
fn check_steps(steps: &[Vec<u64>], idle: u64, vectors: u64, all: &str) {
    assert_eq!(steps.len(), STEPS, "{all}");
    assert_ne!(steps[0][0], idle, "stepi did not move\n{all}");
    let pcs: Vec<u64> = std::iter::once(idle)
        .chain(steps.iter().map(|v| v[0]))
        .collect();
    let crossed = steps
        .iter()
        .zip(&pcs)
        .any(|(v, &before)| v[1] == WFI && v[0] == before + 4);
    assert!(crossed, "no stepi executed the WFI\n{all}");
    for &pc in &pcs[1..] {
        assert!(is_kernel_va(pc), "stepi left the kernel: {pc:#x}\n{all}");
        assert!(
            !(vectors..vectors + VECTORS_SIZE).contains(&pc),
            "stepi landed in a vector: {pc:#x} (vectors at {vectors:#x})\n{all}"
        );
    }
}

/// Ctrl-C stopped both vCPUs in the kernel; at least one was waiting in WFI (the PC at the
/// WFI or after it, depending on whether the wait had completed).
fn check_interrupt(out: &str, all: &str) {
    assert!(out.contains("SIGINT"), "no interrupt stop\n{all}");
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

/// `monitor translate` of a kernel text address gives a PA in guest RAM.
fn check_translate(out: &str, va: u64, all: &str) {
    let key = format!("{va:#x} -> 0x");
    let pa = out
        .lines()
        .find_map(|l| l.trim().strip_prefix(&key))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|h| u64::from_str_radix(h, 16).ok())
        .unwrap_or_else(|| panic!("no translation of {va:#x}\n{all}"));
    assert!(
        (RAM_BASE..RAM_BASE + RAM_SIZE).contains(&pa),
        "{va:#x} -> {pa:#x} is not in RAM\n{all}"
    );
}

/// Sends SIGINT to gdb, as a terminal's Ctrl-C does: gdb sends the remote interrupt.
fn interrupt(gdb: &Proc) {
    let pid = nix::unistd::Pid::from_raw(gdb.child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).expect("signal gdb");
}
