//! kvmdbg serving gdb for a Linux kernel, halted at the start (`-S`), on the model here or,
//! in remote mode (`tests/common/gdb.rs`: scripts/nested/gdb-remote.sh sets it), on real KVM
//! inside the nested machine: the initramfs and a DTB with the command line (made here by
//! `kvmdbg dumpdtb`, since the launcher's arguments cannot hold spaces) are uploaded with the
//! launcher's `put`, and the kernel is the one scripts/nested/build.sh stages. The console
//! is kvmdbg's stdout, read line by line (remote: polled through the launcher).

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::common::gdb::{free_port, launcher, launcher_with, remote};
use crate::linux_support::{kvmdbg, kvmdbg_exe, temp_file, MEMORY};

/// The kernel inside the nested machine (scripts/nested/build.sh stages the cached 6.1
/// kernel there, gzip'd; `tests/kvm_linux.rs` boots the same file).
const NESTED_KERNEL: &str = "/linux/Image.gz";
/// How often the remote console is fetched.
const POLL: Duration = Duration::from_millis(500);

/// A child whose stdout lines arrive on a channel and whose stderr is collected.
/// Killed when dropped (a failed assertion must not leave it running).
pub struct Proc {
    pub child: Child,
    pub lines: Receiver<String>,
    pub err_lines: Receiver<String>,
    out: Option<JoinHandle<String>>,
    err: Option<JoinHandle<String>>,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Proc {
    pub fn spawn(cmd: &mut Command) -> Proc {
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
            out: Some(out),
            err: Some(err),
        }
    }

    /// Waits up to `timeout` for the exit (killing it then); exited, stdout and stderr.
    pub fn finish(mut self, timeout: Duration) -> (bool, String, String) {
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
        let join =
            |h: Option<JoinHandle<String>>| h.and_then(|h| h.join().ok()).unwrap_or_default();
        (exited, join(self.out.take()), join(self.err.take()))
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

/// Lines from `rx` up to and including the first that contains `want`, waiting at most
/// `timeout`; `Err` with the lines seen at the timeout or end of output.
pub fn wait_line(
    rx: &Receiver<String>,
    want: &str,
    timeout: Duration,
) -> Result<Vec<String>, Vec<String>> {
    let deadline = Instant::now() + timeout;
    let mut seen = Vec::new();
    loop {
        let Some(left) = deadline.checked_duration_since(Instant::now()) else {
            return Err(seen);
        };
        let Ok(line) = rx.recv_timeout(left) else {
            return Err(seen);
        };
        let done = line.contains(want);
        seen.push(line);
        if done {
            return Ok(seen);
        }
    }
}

/// A kvmdbg running a kernel with a gdb server.
pub struct KernelStub {
    /// The local port gdb connects to.
    pub port: u16,
    inner: Inner,
    /// Console lines read but not yet consumed by `wait_line`.
    backlog: VecDeque<String>,
}

enum Inner {
    Local(Proc),
    Remote {
        launcher: SocketAddr,
        /// Console bytes already turned into lines.
        consumed: usize,
    },
}

impl KernelStub {
    /// Starts kvmdbg on `kernel` with `initrd`, `cmdline` and `cpus` vCPUs, halted for gdb,
    /// and waits until it listens.
    pub fn start(kernel: &Path, initrd: &[u8], cmdline: &str, cpus: usize) -> KernelStub {
        match remote() {
            Some((addr, port)) => Self::start_remote(addr, port, kernel, initrd, cmdline, cpus),
            None => Self::start_local(kernel, initrd, cmdline, cpus),
        }
    }

    /// "model" or "kvm".
    pub fn backend(&self) -> &'static str {
        match self.inner {
            Inner::Local(_) => "model",
            Inner::Remote { .. } => "kvm",
        }
    }

    fn start_local(kernel: &Path, initrd: &[u8], cmdline: &str, cpus: usize) -> KernelStub {
        let initrd = temp_file("gdb-linux.cpio", initrd);
        let port = free_port();
        let proc = Proc::spawn(Command::new(kvmdbg_exe()).env("RUST_LOG", "info").args([
            "run",
            kernel.to_str().unwrap(),
            "--initrd",
            initrd.to_str().unwrap(),
            "--append",
            cmdline,
            "--memory",
            MEMORY,
            "--backend",
            "model",
            "--cpus",
            &cpus.to_string(),
            "-S",
            "--gdb",
            &format!("tcp:127.0.0.1:{port}"),
        ]));
        // kvmdbg logs this line once it listens (src/gdb/server.rs).
        if wait_line(
            &proc.err_lines,
            "waiting for gdb on",
            Duration::from_secs(60),
        )
        .is_err()
        {
            let (_, _, err) = proc.finish(Duration::ZERO);
            panic!("kvmdbg did not start listening:\n{err}");
        }
        KernelStub {
            port,
            inner: Inner::Local(proc),
            backlog: VecDeque::new(),
        }
    }

    fn start_remote(
        addr: SocketAddr,
        port: u16,
        kernel: &Path,
        initrd: &[u8],
        cmdline: &str,
        cpus: usize,
    ) -> KernelStub {
        let cpus = cpus.to_string();
        let local_rd = temp_file("gdb-linux.cpio", initrd);
        let dtb = temp_file("gdb-linux.dtb", b"");
        let dump = kvmdbg(
            &[
                "dumpdtb",
                dtb.to_str().unwrap(),
                kernel.to_str().unwrap(),
                "--cpus",
                &cpus,
                "--memory",
                MEMORY,
                "--initrd",
                local_rd.to_str().unwrap(),
                "--append",
                cmdline,
            ],
            b"",
            Duration::from_secs(120),
        );
        assert!(
            dump.status.is_some_and(|s| s.success()),
            "{}",
            dump.describe()
        );
        for (name, bytes) in [
            ("gdb-linux.cpio", initrd.to_vec()),
            ("gdb-linux.dtb", std::fs::read(&dtb).unwrap()),
        ] {
            let answer = launcher_with(addr, &format!("put {name}"), &bytes);
            let stored = answer
                .trim()
                .strip_prefix("STORED")
                .and_then(|n| n.trim().parse::<usize>().ok());
            assert_eq!(stored, Some(bytes.len()), "upload of {name}: {answer:?}");
        }
        let line = format!(
            "start 1 {NESTED_KERNEL} --initrd /tmp/stub/files/gdb-linux.cpio \
             --dtb /tmp/stub/files/gdb-linux.dtb --memory {MEMORY} --cpus {cpus}"
        );
        let answer = launcher(addr, &line);
        assert!(answer.starts_with("READY"), "remote kernel stub: {answer}");
        KernelStub {
            port,
            inner: Inner::Remote {
                launcher: addr,
                consumed: 0,
            },
            backlog: VecDeque::new(),
        }
    }

    /// Console lines up to and including the first that contains `want`, waiting at most
    /// `timeout`; `Err` with the lines seen otherwise. Lines after it stay for the next call.
    pub fn wait_line(&mut self, want: &str, timeout: Duration) -> Result<Vec<String>, Vec<String>> {
        let deadline = Instant::now() + timeout;
        let mut seen = Vec::new();
        loop {
            if self.backlog.is_empty() {
                let left = deadline.saturating_duration_since(Instant::now());
                let new = self.next_lines(left.min(POLL));
                self.backlog.extend(new);
            }
            while let Some(line) = self.backlog.pop_front() {
                let done = line.contains(want);
                seen.push(line);
                if done {
                    return Ok(seen);
                }
            }
            if Instant::now() >= deadline {
                return Err(seen);
            }
        }
    }

    /// The console lines that arrive within `wait` (remote: one poll after `wait`).
    fn next_lines(&mut self, wait: Duration) -> Vec<String> {
        match &mut self.inner {
            Inner::Local(p) => match p.lines.recv_timeout(wait) {
                Ok(first) => std::iter::once(first).chain(p.lines.try_iter()).collect(),
                Err(_) => Vec::new(),
            },
            Inner::Remote {
                launcher: a,
                consumed,
            } => {
                thread::sleep(wait);
                let out = launcher(*a, "stdout");
                let bytes = out.as_bytes();
                match bytes.iter().rposition(|&b| b == b'\n') {
                    Some(end) if end + 1 > *consumed => {
                        let new = String::from_utf8_lossy(&bytes[*consumed..=end]).into_owned();
                        *consumed = end + 1;
                        new.lines().map(str::to_string).collect()
                    }
                    _ => Vec::new(),
                }
            }
        }
    }

    /// Stops kvmdbg; its console and log.
    pub fn finish(self) -> (String, String) {
        match self.inner {
            Inner::Local(p) => {
                let (_, out, err) = p.finish(Duration::ZERO);
                (out, err)
            }
            Inner::Remote { launcher: a, .. } => {
                let out = launcher(a, "stdout");
                let err = launcher(a, "stderr");
                launcher(a, "stop");
                (out, err)
            }
        }
    }
}
