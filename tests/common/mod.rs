//! Helpers shared by the integration tests: finding external tools under the project's rule
//! (`require`, the file the unit tests share: a missing tool fails the test when `CI=true`,
//! otherwise the test is skipped with a message on stderr), building the test firmware (`firmware/build.sh`) once per test binary, and
//! running a program (QEMU, later kvmdbg) with a timeout. Submodules: `rsp` (a GDB
//! remote-protocol client), `qemu` (QEMU halted under its gdb stub), `elf` (an ELF writer
//! for generated bare-metal images).
//!
//! Each test crate pulls this in with `mod common;` and uses only part of it, hence the
//! `dead_code` allowance. Depends on nothing in the kvmdbg library.
#![allow(dead_code)]

pub mod elf;
pub mod gdb;
pub mod qemu;
#[path = "../../src/test_require.rs"]
pub mod require;
pub mod rsp;

pub use require::require_tool;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

/// Assembler and linker used by `firmware/build.sh` (package binutils-aarch64-linux-gnu).
pub const AS: &str = "aarch64-linux-gnu-as";
pub const LD: &str = "aarch64-linux-gnu-ld";
/// The C cross compiler for firmware written in C (`firmware/*.c`).
pub const CC: &str = "aarch64-linux-gnu-gcc";
/// The reference machine the firmware is checked against.
pub const QEMU: &str = "qemu-system-aarch64";

/// The repository root (where Cargo.toml is).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `require_tool` for each name, stopping at the first missing one.
pub fn require_tools(names: &[&str]) -> bool {
    names.iter().all(|name| require_tool(name))
}

/// The tools `firmware/build.sh` needs (none when `KVMDBG_FIRMWARE_DIR` names prebuilt
/// firmware, as inside the nested CI machine).
pub fn require_firmware_tools() -> bool {
    std::env::var_os("KVMDBG_FIRMWARE_DIR").is_some() || require_tools(&[AS, LD, CC])
}

static FIRMWARE: OnceLock<Result<PathBuf, String>> = OnceLock::new();

/// Directory holding `<name>.elf` for every firmware, built by `firmware/build.sh` the first
/// time any test of this binary asks (into `<target>/tmp/firmware-<test crate>`, so test
/// binaries never share an output directory). Panics if the build fails; call
/// `require_firmware_tools()` first so a missing assembler skips instead.
pub fn firmware_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("KVMDBG_FIRMWARE_DIR") {
        return PathBuf::from(dir);
    }
    match FIRMWARE.get_or_init(build_firmware) {
        Ok(dir) => dir.clone(),
        Err(message) => panic!("{message}"),
    }
}

/// Path of the built firmware `name` (see `firmware_dir`).
pub fn firmware_elf(name: &str) -> PathBuf {
    firmware_dir().join(format!("{name}.elf"))
}

fn build_firmware() -> Result<PathBuf, String> {
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("firmware-{}", env!("CARGO_CRATE_NAME")));
    let script = repo_root().join("firmware").join("build.sh");
    let output = Command::new("bash")
        .arg(&script)
        .arg(&out)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", script.display()))?;
    if !output.status.success() {
        return Err(format!(
            "{} {} failed ({}):\n{}{}",
            script.display(),
            out.display(),
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(out)
}

/// Names of every firmware source (`firmware/<name>.S` or `.c`), sorted. Needs no tools.
pub fn firmware_names() -> Vec<String> {
    let dir = repo_root().join("firmware");
    let entries =
        std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()));
    let mut names: Vec<String> = entries
        .filter_map(|entry| {
            let name = entry.ok()?.file_name().into_string().ok()?;
            name.strip_suffix(".S")
                .or_else(|| name.strip_suffix(".c"))
                .map(str::to_owned)
        })
        .collect();
    names.sort();
    names
}

/// What a program run with `run_with_timeout` did.
#[derive(Debug)]
pub struct RunOutput {
    /// Exit status, or None if it was killed at the timeout.
    pub status: Option<ExitStatus>,
    pub stdout: String,
    pub stderr: String,
}

impl RunOutput {
    /// True if the program exited by itself with status 0.
    pub fn success(&self) -> bool {
        self.status.is_some_and(|s| s.success())
    }

    /// stdout split into lines, without trailing `\r`.
    pub fn lines(&self) -> Vec<&str> {
        self.stdout
            .lines()
            .map(|l| l.trim_end_matches('\r'))
            .collect()
    }

    /// The verdict lines ("PASS ..." / "FAIL ...") printed by the firmware.
    pub fn verdicts(&self) -> Vec<&str> {
        self.lines()
            .into_iter()
            .filter(|l| l.starts_with("PASS ") || l.starts_with("FAIL "))
            .collect()
    }

    /// Everything, for assertion messages.
    pub fn describe(&self) -> String {
        format!(
            "status: {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.status, self.stdout, self.stderr
        )
    }
}

/// Runs `cmd` with stdin closed, capturing stdout/stderr; kills it (the child we started, by
/// its handle) if it has not exited after `timeout`.
pub fn run_with_timeout(cmd: &mut Command, timeout: Duration) -> RunOutput {
    cmd.stdin(Stdio::null());
    run_piped(cmd, timeout, |_| {})
}

/// As [`run_with_timeout`], with `chunks` written to its stdin through a pipe, each after
/// its delay; stdin is closed after the last.
pub fn run_with_input(
    cmd: &mut Command,
    chunks: &[(Duration, &'static [u8])],
    timeout: Duration,
) -> RunOutput {
    cmd.stdin(Stdio::piped());
    let chunks = chunks.to_vec();
    run_piped(cmd, timeout, move |child| {
        if let Some(mut stdin) = child.stdin.take() {
            thread::spawn(move || {
                for (delay, bytes) in chunks {
                    thread::sleep(delay);
                    if stdin.write_all(bytes).and_then(|_| stdin.flush()).is_err() {
                        return;
                    }
                }
            });
        }
    })
}

fn run_piped(
    cmd: &mut Command,
    timeout: Duration,
    feed: impl FnOnce(&mut std::process::Child),
) -> RunOutput {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {:?}: {e}", cmd.get_program()));
    feed(&mut child);
    let stdout = child.stdout.take().map(read_all_in_background);
    let stderr = child.stderr.take().map(read_all_in_background);
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() >= deadline => {
                // Already exited between the checks is fine: kill then reports an error.
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            Ok(None) => thread::sleep(Duration::from_millis(20)),
            Err(e) => panic!("waiting for {:?} failed: {e}", cmd.get_program()),
        }
    };
    let collect = |h: Option<thread::JoinHandle<String>>| {
        h.map(|h| h.join().unwrap_or_default()).unwrap_or_default()
    };
    RunOutput {
        status,
        stdout: collect(stdout),
        stderr: collect(stderr),
    }
}

fn read_all_in_background<R: Read + Send + 'static>(mut reader: R) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = reader.read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

/// Board options for every firmware run: QEMU virt with a GICv3 (the GIC kvmdbg gives its
/// guests, as KVM's vGICv3; QEMU 7.2's virt default is a GICv2), EL1 only (no
/// `virtualization=on`), so PSCI is served over HVC by QEMU itself, and `-no-reboot` turns a
/// reset into an exit.
pub const QEMU_VIRT_ARGS: &[&str] = &[
    "-M",
    "virt,gic-version=3",
    "-cpu",
    "max",
    "-nographic",
    "-no-reboot",
    "-nic",
    "none",
];

/// `qemu-system-aarch64` booting `elf` on the virt board with `cpus` CPUs, serial on stdout.
/// `-nic none`: the default NIC needs an option ROM the firmware does not use.
pub fn qemu_command(elf: &Path, cpus: u32) -> Command {
    let mut cmd = Command::new(QEMU);
    cmd.args(QEMU_VIRT_ARGS)
        .args(["-smp", &cpus.to_string()])
        .arg("-kernel")
        .arg(elf);
    cmd
}
