//! Shared by the Linux boot tests (`tests/linux_boot.rs` on the model, `tests/kvm_linux.rs` on
//! real KVM in the nested machine): the cached Debian arm64 kernel, a busybox initramfs built
//! here from Debian's `busybox-static:arm64` (a small `newc` cpio writer: the format of the
//! kernel's Documentation/driver-api/early-userspace/buffer-format.rst), and running
//! `kvmdbg run` with a scripted console on stdin and a timeout.
//!
//! Prerequisites follow the project rule: missing, they fail the test under `CI=true` (or
//! `KVMDBG_REQUIRE_KVM=1`, set in the nested machine) and skip it elsewhere with a message.
//! (This file has its own `require`; switch it to the shared helper of `tests/common` once
//! there is one.) Depends on nothing in the kvmdbg library.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

/// The kernel command line the tests boot with. `rdinit=/init`: the initramfs's init;
/// `panic=-1`: a panic resets at once (PSCI SYSTEM_RESET) instead of hanging;
/// `cryptomgr.notests`: the boot-time crypto self-tests are the longest part of this kernel's
/// boot (several seconds of computation, a minute on a debug build of the model) and test
/// nothing kvmdbg does; `quiet`: only warnings and worse on the console (each character is a
/// trap to kvmdbg, expensive under nested KVM); panics and "reboot: Power down" still print.
pub const CMDLINE: &str = "console=ttyAMA0 rdinit=/init panic=-1 cryptomgr.notests quiet";
/// Guest RAM for the tests (Debian's kernel reserves 64 MiB of CMA by default).
pub const MEMORY: &str = "256M";
/// Upper bound for one boot, power-off included (a debug build of the model on a loaded
/// 2-core machine takes up to about two minutes with 4 vCPUs).
pub const BOOT_TIMEOUT: Duration = Duration::from_secs(600);

/// The marker the test init prints before it starts the shell.
pub const INIT_MARKER: &str = "KVMDBG-TEST-INIT";

/// True in CI (`CI=true`/`CI=1`) or the nested machine (`KVMDBG_REQUIRE_KVM=1`): missing
/// prerequisites are failures there.
pub fn strict() -> bool {
    let set = |k: &str, v: &[&str]| std::env::var(k).is_ok_and(|x| v.contains(&x.as_str()));
    set("CI", &["true", "1"]) || set("KVMDBG_REQUIRE_KVM", &["1"])
}

/// `Some(value)`, or: panics when [`strict`], else prints why `test` is skipped and `None`.
pub fn require<T>(test: &str, value: Result<T, String>) -> Option<T> {
    match value {
        Ok(v) => Some(v),
        Err(why) if strict() => panic!("{test}: {why} (required under CI=true)"),
        Err(why) => {
            eprintln!("SKIPPED {test}: {why}; with CI=true this is a failure");
            None
        }
    }
}

/// The kernel to boot: `KVMDBG_LINUX_IMAGE`, else `$KVMDBG_CACHE/Image` (default cache
/// /var/cache/kvmdbg, filled by scripts/setup.sh).
pub fn kernel() -> Result<PathBuf, String> {
    let path = match std::env::var_os("KVMDBG_LINUX_IMAGE") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(
            std::env::var_os("KVMDBG_CACHE").unwrap_or_else(|| "/var/cache/kvmdbg".into()),
        )
        .join("Image"),
    };
    if path.is_file() {
        Ok(path)
    } else {
        Err(format!(
            "no kernel at {} (scripts/setup.sh caches Debian's arm64 kernel)",
            path.display()
        ))
    }
}

/// The kernel and busybox, or `None` when `test` skips (see [`require`]).
pub fn prerequisites(test: &str) -> Option<(PathBuf, PathBuf)> {
    Some((require(test, kernel())?, require(test, busybox())?))
}

/// True when `path` is an AArch64 ELF (e_machine 183 at offset 18, ELF for the Arm 64-bit
/// Architecture 5.1).
fn is_aarch64_elf(path: &Path) -> bool {
    let mut head = [0u8; 20];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut head))
        .is_ok_and(|_| head.starts_with(b"\x7fELF") && head[18..20] == [183, 0])
}

/// The static arm64 busybox: from `dpkg -L busybox-static:arm64`, else /bin/busybox (the
/// nested machine's own, which is that file).
pub fn busybox() -> Result<PathBuf, String> {
    let listed = Command::new("dpkg")
        .args(["-L", "busybox-static:arm64"])
        .stderr(Stdio::null())
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    listed
        .lines()
        .filter(|l| l.ends_with("/busybox"))
        .map(PathBuf::from)
        .chain([PathBuf::from("/bin/busybox")])
        .find(|p| is_aarch64_elf(p))
        .ok_or_else(|| {
            "no arm64 busybox (scripts/setup.sh installs busybox-static:arm64)".to_string()
        })
}

/// A `newc` cpio archive being written (buffer-format.rst: "070701", 13 eight-digit hex
/// fields, the NUL-terminated name padded to 4 bytes, the data padded to 4 bytes, and a
/// final "TRAILER!!!" entry).
#[derive(Default)]
pub struct Cpio {
    out: Vec<u8>,
    ino: u32,
}

/// File type bits of `mode` (inode(7)): directory, regular file, character device.
pub const S_IFDIR: u32 = 0o040000;
pub const S_IFREG: u32 = 0o100000;
pub const S_IFCHR: u32 = 0o020000;

impl Cpio {
    fn entry(&mut self, name: &str, mode: u32, rdev: (u32, u32), data: &[u8]) {
        self.ino += 1;
        let nlink = if mode & S_IFDIR != 0 { 2 } else { 1 };
        let fields = [
            self.ino,
            mode,
            0, // uid
            0, // gid
            nlink,
            0, // mtime
            data.len() as u32,
            0, // devmajor
            0, // devminor
            rdev.0,
            rdev.1,
            name.len() as u32 + 1,
            0, // check (newc: always 0)
        ];
        self.out.extend_from_slice(b"070701");
        for f in fields {
            self.out.extend_from_slice(format!("{f:08x}").as_bytes());
        }
        self.out.extend_from_slice(name.as_bytes());
        self.out.push(0);
        self.pad();
        self.out.extend_from_slice(data);
        self.pad();
    }

    fn pad(&mut self) {
        self.out.resize((self.out.len() + 3) & !3, 0);
    }

    pub fn dir(&mut self, name: &str) -> &mut Self {
        self.entry(name, S_IFDIR | 0o755, (0, 0), &[]);
        self
    }

    pub fn file(&mut self, name: &str, perm: u32, data: &[u8]) -> &mut Self {
        self.entry(name, S_IFREG | perm, (0, 0), data);
        self
    }

    pub fn char_dev(&mut self, name: &str, major: u32, minor: u32) -> &mut Self {
        self.entry(name, S_IFCHR | 0o600, (major, minor), &[]);
        self
    }

    pub fn finish(mut self) -> Vec<u8> {
        self.entry("TRAILER!!!", 0, (0, 0), &[]);
        self.out
    }
}

/// An initramfs with busybox and `/init` = `init_script` (a busybox `sh` script), plus
/// `/dev/console` (character device 5:1, Documentation/admin-guide/devices.txt) so init has
/// its console from the start.
pub fn initramfs(busybox: &Path, init_script: &str) -> Vec<u8> {
    initramfs_with(busybox, init_script, &[])
}

/// [`initramfs`] plus executables: (path without the leading `/`, contents) each.
pub fn initramfs_with(busybox: &Path, init_script: &str, programs: &[(&str, &[u8])]) -> Vec<u8> {
    let bb = std::fs::read(busybox).unwrap_or_else(|e| panic!("{}: {e}", busybox.display()));
    let mut c = Cpio::default();
    for d in ["bin", "dev", "proc", "sys", "tmp"] {
        c.dir(d);
    }
    c.char_dev("dev/console", 5, 1)
        .file("bin/busybox", 0o755, &bb)
        .file("init", 0o755, init_script.as_bytes());
    for (path, bytes) in programs {
        c.file(path, 0o755, bytes);
    }
    c.finish()
}

/// The test init: mounts, prints [`INIT_MARKER`] with the number of online CPUs, runs an
/// interactive shell on the console (the test's stdin), and powers off when it ends.
pub const SESSION_INIT: &str = r#"#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
echo "KVMDBG-TEST-INIT cpus=$(grep -c ^processor /proc/cpuinfo)"
sh
echo "KVMDBG-TEST-SHELL-ENDED"
poweroff -f
"#;

/// An init that prints the command line it was booted with, gives the console a second to
/// send it (tty output is buffered; the panic would cut it off), then exits: the kernel
/// panics ("Attempted to kill init!").
pub const EXITING_INIT: &str = r#"#!/bin/busybox sh
/bin/busybox mount -t proc proc /proc
echo "KVMDBG-TEST-INIT cmdline=$(/bin/busybox cat /proc/cmdline)"
/bin/busybox sleep 1
exit 3
"#;

/// Writes `bytes` to a new file in the test's temporary directory (cargo's, or the system's
/// where that does not exist: the nested machine runs binaries built elsewhere).
pub fn temp_file(name: &str, bytes: &[u8]) -> PathBuf {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let base = Some(PathBuf::from(env!("CARGO_TARGET_TMPDIR")))
        .filter(|d| d.is_dir())
        .unwrap_or_else(std::env::temp_dir);
    let dir = base.join(format!(
        "{}-{}",
        env!("CARGO_CRATE_NAME"),
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    // A new name per call: the tests run in parallel.
    let p = dir.join(format!("{n}-{name}"));
    std::fs::write(&p, bytes).unwrap();
    p
}

static BUSYBOX_INITRDS: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();

/// The session and the exiting initramfs files (built once per test binary).
pub fn initrds(busybox: &Path) -> &'static (PathBuf, PathBuf) {
    BUSYBOX_INITRDS.get_or_init(|| {
        (
            temp_file("session.cpio", &initramfs(busybox, SESSION_INIT)),
            temp_file("exiting.cpio", &initramfs(busybox, EXITING_INIT)),
        )
    })
}

/// What a kvmdbg run did.
#[derive(Debug)]
pub struct Run {
    /// None when it was killed at the timeout.
    pub status: Option<ExitStatus>,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

impl Run {
    pub fn describe(&self) -> String {
        format!(
            "status {:?} after {:.1?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.status, self.elapsed, self.stdout, self.stderr
        )
    }

    /// stdout lines without the `\r` the guest's tty adds.
    pub fn lines(&self) -> Vec<&str> {
        self.stdout
            .lines()
            .map(|l| l.trim_end_matches('\r'))
            .collect()
    }
}

/// The kvmdbg under test: cargo's build of it, or (in the nested machine, where the test
/// binary runs far from where it was built) the `kvmdbg` staged on PATH.
pub fn kvmdbg_exe() -> PathBuf {
    let built = PathBuf::from(env!("CARGO_BIN_EXE_kvmdbg"));
    if built.is_file() {
        built
    } else {
        PathBuf::from("kvmdbg")
    }
}

/// Runs the kvmdbg under test with `args`, `stdin` written to its standard input (then
/// closed), until it exits or `timeout` passes (then it is killed).
pub fn kvmdbg(args: &[&str], stdin: &[u8], timeout: Duration) -> Run {
    let start = Instant::now();
    let mut child = Command::new(kvmdbg_exe())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kvmdbg starts");
    let mut input = child.stdin.take().unwrap();
    let bytes = stdin.to_vec();
    // A writer thread: the pipe may fill before the guest reads; a guest that never does must
    // not block the test.
    thread::spawn(move || {
        let _ = input.write_all(&bytes);
    });
    let out = child.stdout.take().map(read_in_background);
    let err = child.stderr.take().map(read_in_background);
    let status = loop {
        match child.try_wait().expect("wait for kvmdbg") {
            Some(s) => break Some(s),
            None if start.elapsed() >= timeout => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            None => thread::sleep(Duration::from_millis(50)),
        }
    };
    let join = |h: Option<thread::JoinHandle<String>>| h.map(|h| h.join().unwrap()).unwrap();
    Run {
        status,
        stdout: join(out),
        stderr: join(err),
        elapsed: start.elapsed(),
    }
}

fn read_in_background<R: Read + Send + 'static>(mut r: R) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut v = Vec::new();
        let _ = r.read_to_end(&mut v);
        String::from_utf8_lossy(&v).into_owned()
    })
}

/// The commands of the scripted console session and what each must print on a line of its
/// own: the guest computes every answer (none is in the input), and the last command
/// powers the machine off.
pub fn session_script(cpus: usize) -> (String, Vec<String>) {
    let script = "expr 6 \\* 7\n\
                  uname -m\n\
                  cat /sys/devices/system/cpu/online\n\
                  echo abc | tr a-c x-z\n\
                  poweroff -f\n";
    let online = if cpus == 1 {
        "0".to_string()
    } else {
        format!("0-{}", cpus - 1)
    };
    let expect = vec!["42".into(), "aarch64".into(), online, "xyz".into()];
    (script.to_string(), expect)
}

/// Boots `kernel` with the session initramfs on `backend` with `cpus` vCPUs, types the
/// session script, and checks the answers, the power-off and the exit status.
pub fn boot_session(kernel: &Path, busybox: &Path, backend: &str, cpus: usize) -> Run {
    let (session, _) = initrds(busybox);
    let (script, expect) = session_script(cpus);
    let cpus_arg = cpus.to_string();
    let run = kvmdbg(
        &[
            "run",
            kernel.to_str().unwrap(),
            "--backend",
            backend,
            "--cpus",
            &cpus_arg,
            "--memory",
            MEMORY,
            "--initrd",
            session.to_str().unwrap(),
            "--append",
            CMDLINE,
        ],
        script.as_bytes(),
        BOOT_TIMEOUT,
    );
    eprintln!("boot on {backend} with {cpus} vCPU(s): {:.1?}", run.elapsed);
    assert!(
        run.status.is_some_and(|s| s.success()),
        "expected power-off and exit 0\n{}",
        run.describe()
    );
    let lines = run.lines();
    let marker = format!("{INIT_MARKER} cpus={cpus}");
    assert!(
        lines.contains(&marker.as_str()),
        "no {marker:?}\n{}",
        run.describe()
    );
    for want in &expect {
        // Alone on its line, or after the shell's prompt (the answers never occur in the
        // input, so such a line comes from the guest).
        let after_prompt = format!("# {want}");
        assert!(
            lines
                .iter()
                .any(|l| l == want || l.ends_with(&after_prompt)),
            "no line {want:?} in the session\n{}",
            run.describe()
        );
    }
    assert!(
        run.stdout.contains("reboot: Power down"),
        "{}",
        run.describe()
    );
    run
}

/// Boots the exiting initramfs: the kernel panics, `panic=-1` resets, kvmdbg ends with 0.
/// The command line comes from a DTB: `kvmdbg dumpdtb` writes the generated one with
/// [`CMDLINE`] in `/chosen/bootargs`, and the run boots it with `--dtb` and no `--append`
/// (without `panic=-1` from the file the kernel would wait forever and the test time out).
pub fn boot_panic_reset(kernel: &Path, busybox: &Path, backend: &str) -> Run {
    let (_, exiting) = initrds(busybox);
    let (k, rd) = (kernel.to_str().unwrap(), exiting.to_str().unwrap());
    let dtb = temp_file(&format!("panic-{backend}.dtb"), b"");
    let dump = kvmdbg(
        &[
            "dumpdtb",
            dtb.to_str().unwrap(),
            k,
            "--memory",
            MEMORY,
            "--initrd",
            rd,
            "--append",
            CMDLINE,
        ],
        b"",
        BOOT_TIMEOUT,
    );
    assert!(
        dump.status.is_some_and(|s| s.success()),
        "{}",
        dump.describe()
    );
    let run = kvmdbg(
        &[
            "run",
            k,
            "--backend",
            backend,
            "--memory",
            MEMORY,
            "--initrd",
            rd,
            "--dtb",
            dtb.to_str().unwrap(),
        ],
        b"",
        BOOT_TIMEOUT,
    );
    eprintln!("panic=-1 boot on {backend}: {:.1?}", run.elapsed);
    assert!(
        run.status.is_some_and(|s| s.success()),
        "expected a reset and exit 0\n{}",
        run.describe()
    );
    // The init prints the command line: the one in the DTB.
    let marker = format!("{INIT_MARKER} cmdline={CMDLINE}");
    assert!(
        run.lines().contains(&marker.as_str()),
        "no {marker:?}: bootargs not from the DTB\n{}",
        run.describe()
    );
    assert!(
        run.stdout.contains("Attempted to kill init"),
        "{}",
        run.describe()
    );
    assert!(run.stderr.contains("system reset"), "{}", run.describe());
    run
}
