//! Running kvmdbg as a gdb server and gdb-multiarch in batch mode against it.
//!
//! `Stub::start` launches `kvmdbg run FW --backend model --gdb tcp:127.0.0.1:PORT -S` on a free
//! port and waits for its "waiting for gdb" line; `gdb_batch` runs `gdb-multiarch -nx -batch`
//! with `-ex` commands. Both kill what they started (by child handle) on timeout or drop.

use std::io::{BufRead, BufReader, Read};
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::{run_with_timeout, RunOutput};

pub const GDB: &str = "gdb-multiarch";

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    l.local_addr().expect("local address").port()
}

/// A running `kvmdbg run ... --gdb`.
pub struct Stub {
    child: Child,
    pub port: u16,
    stderr: Arc<Mutex<String>>,
    stdout: Option<JoinHandle<String>>,
}

impl Stub {
    /// Starts kvmdbg serving gdb for `fw`, vCPUs waiting for gdb (`-S`), plus `extra` args.
    pub fn start(fw: &Path, extra: &[&str]) -> Stub {
        Self::start_with(fw, extra, true)
    }

    /// Like `start`, with or without `-S`.
    pub fn start_with(fw: &Path, extra: &[&str], wait: bool) -> Stub {
        let port = free_port();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_kvmdbg"));
        cmd.arg("run")
            .arg(fw)
            .args([
                "--backend",
                "model",
                "--gdb",
                &format!("tcp:127.0.0.1:{port}"),
            ])
            .args(extra)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if wait {
            cmd.arg("-S");
        }
        let mut child = cmd.spawn().expect("start kvmdbg");
        let stdout = child.stdout.take().map(|mut out| {
            std::thread::spawn(move || {
                let mut s = String::new();
                let _ = out.read_to_string(&mut s);
                s
            })
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = channel();
        let err = child.stderr.take().expect("stderr piped");
        let sink = stderr.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                if line.contains("waiting for gdb on") {
                    let _ = tx.send(());
                }
                let mut s = sink.lock().unwrap_or_else(|p| p.into_inner());
                s.push_str(&line);
                s.push('\n');
            }
        });
        let mut stub = Stub {
            child,
            port,
            stderr,
            stdout,
        };
        stub.wait_listening(&rx);
        stub
    }

    fn wait_listening(&mut self, rx: &Receiver<()>) {
        if rx.recv_timeout(Duration::from_secs(30)).is_err() {
            let _ = self.child.kill();
            panic!("kvmdbg did not start listening:\n{}", self.stderr());
        }
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    pub fn stderr(&self) -> String {
        self.stderr
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Waits for kvmdbg to exit; returns its status (None: killed at the timeout) and stdout.
    pub fn wait_exit(mut self, timeout: Duration) -> (Option<std::process::ExitStatus>, String) {
        let deadline = Instant::now() + timeout;
        let status = loop {
            match self.child.try_wait() {
                Ok(Some(s)) => break Some(s),
                Ok(None) if Instant::now() >= deadline => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    break None;
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(20)),
                Err(e) => panic!("waiting for kvmdbg: {e}"),
            }
        };
        let out = self
            .stdout
            .take()
            .map(|h| h.join().unwrap_or_default())
            .unwrap_or_default();
        (status, out)
    }

    /// True while kvmdbg runs.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Stub {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Runs gdb-multiarch in batch mode on `elf`, connected to `port`, then `cmds`.
pub fn gdb_batch(port: u16, elf: &Path, cmds: &[&str]) -> RunOutput {
    gdb_batch_target(&format!("target remote 127.0.0.1:{port}"), elf, cmds)
}

/// Runs gdb-multiarch in batch mode on `elf`: `target` (a `target remote ...` command), then
/// `cmds`. The working directory is the repository root, where the firmware's sources resolve.
pub fn gdb_batch_target(target: &str, elf: &Path, cmds: &[&str]) -> RunOutput {
    let mut cmd = Command::new(GDB);
    cmd.current_dir(super::repo_root())
        .args([
            "-nx",
            "-batch",
            "-ex",
            "set pagination off",
            "-ex",
            "set confirm off",
        ])
        .args(["-ex", "set width 0", "-ex", target]);
    for c in cmds {
        cmd.args(["-ex", c]);
    }
    cmd.arg(elf);
    let out = run_with_timeout(&mut cmd, Duration::from_secs(60));
    assert!(out.status.is_some(), "gdb timed out:\n{}", out.describe());
    out
}

/// Everything gdb printed, stdout then stderr.
pub fn text(out: &RunOutput) -> String {
    format!("{}\n{}", out.stdout, out.stderr)
}

/// The value printed by the n-th (1-based) `p` command: the text after `$n = `.
pub fn printed(out: &RunOutput, n: usize) -> String {
    let key = format!("${n} = ");
    out.stdout
        .lines()
        .find_map(|l| l.strip_prefix(&key))
        .unwrap_or_else(|| panic!("no {key:?} in gdb output:\n{}", out.describe()))
        .trim()
        .to_string()
}

/// `printed` parsed as an integer (decimal or 0x-prefixed hex, first word).
pub fn printed_u64(out: &RunOutput, n: usize) -> u64 {
    let s = printed(out, n);
    let word = s.split_whitespace().next().unwrap_or("");
    match word.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16),
        None => word.parse(),
    }
    .unwrap_or_else(|_| panic!("${n} = {s:?} is not a number"))
}

/// True if gdb-multiarch is available (fails in CI when it is not).
pub fn require_gdb() -> bool {
    super::require_tool(GDB)
}
