//! The same gdb-multiarch script against kvmdbg (model backend) and against QEMU's own gdb
//! stub (`qemu-system-aarch64 -M virt -cpu max,sve=off -S -gdb ...`): the stop locations,
//! printed values and backtraces must be identical.
//!
//! Needs gdb-multiarch and qemu-system-aarch64: failures when CI=true, otherwise skipped.

mod common;

use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::gdb::{free_port, gdb_batch, require_gdb, text, Stub};

/// QEMU with its gdb stub, CPU halted at the entry; killed (by handle) on drop.
struct Qemu(Child);

impl Drop for Qemu {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

fn start_qemu(elf: &std::path::Path, port: u16) -> Qemu {
    let child = Command::new(common::QEMU)
        .args([
            "-M",
            "virt",
            "-cpu",
            "max,sve=off",
            "-nographic",
            "-no-reboot",
        ])
        .args([
            "-nic",
            "none",
            "-S",
            "-gdb",
            &format!("tcp:127.0.0.1:{port}"),
        ])
        .arg("-kernel")
        .arg(elf)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start QEMU");
    // QEMU serves one client at a time and keeps listening after a probe disconnects.
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "QEMU gdb stub did not come up");
        std::thread::sleep(Duration::from_millis(50));
    }
    Qemu(child)
}

/// The lines that describe where the guest stopped and what gdb printed: `$n = ...`, stop
/// banners, source lines, backtrace frames, watchpoint values.
fn observations(out: &common::RunOutput) -> Vec<String> {
    out.stdout
        .lines()
        .filter(|l| {
            l.starts_with('$')
                || l.starts_with('#')
                || l.contains("Breakpoint")
                || l.contains("atchpoint")
                || l.starts_with("Old value")
                || l.starts_with("New value")
                || l.starts_with("Value =")
                || l.starts_with("=>")
                || l.split('\t')
                    .next()
                    .is_some_and(|n| n.parse::<u32>().is_ok())
        })
        // gdb names threads differently per stub ("Thread 1 hit" vs "Thread 1.1 hit").
        .map(|l| l.replace("Thread 1.1 ", "Thread 1 "))
        .collect()
}

const SCRIPT: &[&str] = &[
    "break fib",
    "continue",
    "continue",
    "continue",
    "continue",
    "p $x0",
    "p/x $pc",
    "p/x $sp",
    "p/x $x30",
    "bt",
    "delete",
    "stepi 6",
    "p/x $pc",
    "x/3i $pc",
    "watch *(long*)&demo_counter",
    "continue",
    "continue",
    "p/x $pc",
    "p *(long*)&demo_counter",
    "delete",
    "rwatch *(long*)&demo_counter",
    "continue",
    "p/x $pc",
    "p $x9",
    "kill",
];

#[test]
fn the_same_script_gives_the_same_stops_and_values_as_qemu() {
    if !require_gdb() || !common::require_tool(common::QEMU) {
        return;
    }
    let elf = common::repo_root().join("firmware/prebuilt/demo.elf");
    let stub = Stub::start(&elf, &[]);
    let ours = gdb_batch(stub.port, &elf, SCRIPT);
    let port = free_port();
    let _qemu = start_qemu(&elf, port);
    let theirs = gdb_batch(port, &elf, SCRIPT);
    let (a, b) = (observations(&ours), observations(&theirs));
    assert!(a.len() > 20, "too little output:\n{}", text(&ours));
    assert_eq!(a, b, "kvmdbg:\n{}\nQEMU:\n{}", text(&ours), text(&theirs));
}
