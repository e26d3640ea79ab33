//! Running kvmdbg as a gdb server and gdb-multiarch in batch mode against it.
//!
//! `Stub::start` launches `kvmdbg run FW --backend model --gdb tcp:127.0.0.1:PORT -S` on a free
//! port and waits for its "waiting for gdb" line; `gdb_batch` runs `gdb-multiarch -nx -batch`
//! with `-ex` commands. Both kill what they started (by child handle) on timeout or drop.
//!
//! Remote mode (real KVM): with `KVMDBG_TEST_STUB_LAUNCHER=HOST:PORT` and
//! `KVMDBG_TEST_STUB_GDB_PORT=PORT` (set by scripts/nested/gdb-remote.sh), stubs run on the
//! KVM backend inside the nested machine, started by its launcher
//! (scripts/nested/stub-launcher.sh) with the same firmware (built reproducibly, staged as
//! /fw) and options, and gdb connects through the forwarded port. One stub at a time.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::{run_with_timeout, RunOutput};

pub const GDB: &str = "gdb-multiarch";

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    l.local_addr().expect("local address").port()
}

/// The launcher's address and the forwarded gdb port, in remote mode.
pub fn remote() -> Option<(SocketAddr, u16)> {
    let launcher = std::env::var("KVMDBG_TEST_STUB_LAUNCHER").ok()?;
    let port = std::env::var("KVMDBG_TEST_STUB_GDB_PORT").ok()?;
    Some((
        launcher
            .parse()
            .expect("KVMDBG_TEST_STUB_LAUNCHER is HOST:PORT"),
        port.parse().expect("KVMDBG_TEST_STUB_GDB_PORT is a port"),
    ))
}

/// The backend the stubs run on: "kvm" in remote mode, else "model".
pub fn backend_name() -> &'static str {
    if remote().is_some() {
        "kvm"
    } else {
        "model"
    }
}

/// How long one gdb batch run may take (the nested machine runs KVM under TCG: slower).
fn gdb_timeout() -> Duration {
    Duration::from_secs(if remote().is_some() { 600 } else { 60 })
}

/// Serialises remote stubs: the nested machine has one gdb port.
static REMOTE: Mutex<()> = Mutex::new(());

/// Sends one command line to the launcher and returns its whole answer.
pub fn launcher(addr: SocketAddr, line: &str) -> String {
    launcher_with(addr, line, &[])
}

/// Sends one command line and then `data` (the launcher's `put` reads it to the end of the
/// connection's input), and returns the whole answer.
pub fn launcher_with(addr: SocketAddr, line: &str, data: &[u8]) -> String {
    let mut c = TcpStream::connect_timeout(&addr, Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("stub launcher at {addr}: {e}"));
    c.set_read_timeout(Some(Duration::from_secs(300))).unwrap();
    c.write_all(format!("{line}\n").as_bytes()).unwrap();
    if !data.is_empty() {
        c.write_all(data).unwrap();
        let _ = c.shutdown(std::net::Shutdown::Write);
    }
    let mut answer = String::new();
    let _ = c.read_to_string(&mut answer);
    answer
}

/// A running `kvmdbg run ... --gdb`.
pub struct Stub {
    pub port: u16,
    /// The Unix socket it listens on instead of `port` (`start_unix`).
    pub unix: Option<std::path::PathBuf>,
    inner: Inner,
}

enum Inner {
    Local {
        child: Child,
        stderr: Arc<Mutex<String>>,
        stdout: Option<JoinHandle<String>>,
    },
    Remote {
        launcher: SocketAddr,
        _turn: MutexGuard<'static, ()>,
    },
}

impl Stub {
    /// Starts kvmdbg serving gdb for `fw`, vCPUs waiting for gdb (`-S`), plus `extra` args.
    pub fn start(fw: &Path, extra: &[&str]) -> Stub {
        Self::start_with(fw, extra, true)
    }

    /// Like `start`, with or without `-S`.
    pub fn start_with(fw: &Path, extra: &[&str], wait: bool) -> Stub {
        match remote() {
            Some((addr, port)) => Self::start_remote(addr, port, fw, extra, wait),
            None => Self::start_local(fw, extra, wait),
        }
    }

    fn start_remote(addr: SocketAddr, port: u16, fw: &Path, extra: &[&str], wait: bool) -> Stub {
        let turn = REMOTE.lock().unwrap_or_else(|p| p.into_inner());
        let name = fw
            .file_name()
            .expect("firmware file name")
            .to_string_lossy();
        let line = format!("start {} {name} {}", u8::from(wait), extra.join(" "));
        let answer = launcher(addr, line.trim_end());
        assert!(answer.starts_with("READY"), "remote stub: {answer}");
        Stub {
            port,
            unix: None,
            inner: Inner::Remote {
                launcher: addr,
                _turn: turn,
            },
        }
    }

    /// Like `start` (vCPUs waiting for gdb), with console input on kvmdbg's stdin: each of
    /// `chunks` after its delay (as `run_with_input`), then stdin closed. None in remote
    /// mode (the launcher gives no stdin).
    pub fn start_with_input(
        fw: &Path,
        extra: &[&str],
        chunks: &[(Duration, &'static [u8])],
    ) -> Option<Stub> {
        if remote().is_some() {
            eprintln!("skipping: remote stubs get no console input");
            return None;
        }
        let port = free_port();
        let spec = format!("tcp:127.0.0.1:{port}");
        Some(Self::spawn_local(
            fw,
            extra,
            true,
            &spec,
            port,
            Some(chunks.to_vec()),
        ))
    }

    /// Like `start_with`, listening on a Unix socket at `path`; None in remote mode (the
    /// nested machine's stubs are reached over TCP only).
    pub fn start_unix(fw: &Path, extra: &[&str], wait: bool, path: &Path) -> Option<Stub> {
        if remote().is_some() {
            eprintln!("skipping the Unix-socket variant: remote stubs are reached over TCP");
            return None;
        }
        let spec = format!("unix:{}", path.display());
        let mut stub = Self::start_local_on(fw, extra, wait, &spec, 0);
        stub.unix = Some(path.to_path_buf());
        Some(stub)
    }

    fn start_local(fw: &Path, extra: &[&str], wait: bool) -> Stub {
        let port = free_port();
        Self::start_local_on(fw, extra, wait, &format!("tcp:127.0.0.1:{port}"), port)
    }

    fn start_local_on(fw: &Path, extra: &[&str], wait: bool, spec: &str, port: u16) -> Stub {
        Self::spawn_local(fw, extra, wait, spec, port, None)
    }

    fn spawn_local(
        fw: &Path,
        extra: &[&str],
        wait: bool,
        spec: &str,
        port: u16,
        input: Option<Vec<(Duration, &'static [u8])>>,
    ) -> Stub {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_kvmdbg"));
        cmd.arg("run")
            .arg(fw)
            .args(["--backend", "model", "--gdb", spec])
            .args(extra)
            .env("RUST_LOG", "info")
            .stdin(if input.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if wait {
            cmd.arg("-S");
        }
        let mut child = cmd.spawn().expect("start kvmdbg");
        if let (Some(chunks), Some(mut stdin)) = (input, child.stdin.take()) {
            std::thread::spawn(move || {
                for (delay, bytes) in chunks {
                    std::thread::sleep(delay);
                    if stdin.write_all(bytes).and_then(|()| stdin.flush()).is_err() {
                        break;
                    }
                }
            });
        }
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
            port,
            unix: None,
            inner: Inner::Local {
                child,
                stderr,
                stdout,
            },
        };
        stub.wait_listening(&rx);
        stub
    }

    fn wait_listening(&mut self, rx: &Receiver<()>) {
        if rx.recv_timeout(Duration::from_secs(30)).is_err() {
            if let Inner::Local { child, .. } = &mut self.inner {
                let _ = child.kill();
            }
            panic!("kvmdbg did not start listening:\n{}", self.stderr());
        }
    }

    /// The process id of a local stub (None in remote mode), e.g. to signal it.
    pub fn pid(&self) -> Option<u32> {
        match &self.inner {
            Inner::Local { child, .. } => Some(child.id()),
            Inner::Remote { .. } => None,
        }
    }

    /// Waits for kvmdbg to exit (up to `timeout`); its status, or None while it runs.
    pub fn exit_status(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(s) = self.try_wait() {
                return Some(s);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    pub fn stderr(&self) -> String {
        match &self.inner {
            Inner::Local { stderr, .. } => stderr.lock().unwrap_or_else(|p| p.into_inner()).clone(),
            Inner::Remote { launcher: a, .. } => launcher(*a, "stderr"),
        }
    }

    /// The stub's exit status if it has exited (None while it runs).
    fn try_wait(&mut self) -> Option<ExitStatus> {
        match &mut self.inner {
            Inner::Local { child, .. } => child.try_wait().expect("waiting for kvmdbg"),
            Inner::Remote { launcher: a, .. } => {
                let answer = launcher(*a, "status");
                let rest = answer.trim().strip_prefix("EXITED ")?;
                let code: i32 = rest
                    .parse()
                    .unwrap_or_else(|_| panic!("remote stub: status {answer:?}"));
                Some(ExitStatus::from_raw(code << 8))
            }
        }
    }

    /// Waits for kvmdbg to exit; returns its status (None: killed at the timeout) and stdout.
    pub fn wait_exit(mut self, timeout: Duration) -> (Option<ExitStatus>, String) {
        let timeout = if remote().is_some() {
            timeout * 10
        } else {
            timeout
        };
        let deadline = Instant::now() + timeout;
        let status = loop {
            match self.try_wait() {
                Some(s) => break Some(s),
                None if Instant::now() >= deadline => {
                    self.kill();
                    break None;
                }
                None => std::thread::sleep(Duration::from_millis(20)),
            }
        };
        let out = match &mut self.inner {
            Inner::Local { stdout, .. } => stdout
                .take()
                .map(|h| h.join().unwrap_or_default())
                .unwrap_or_default(),
            Inner::Remote { launcher: a, .. } => {
                if !status.is_some_and(|s| s.success()) {
                    eprintln!(
                        "remote stub ended with {status:?}:\n{}",
                        launcher(*a, "stderr")
                    );
                }
                launcher(*a, "stdout")
            }
        };
        (status, out)
    }

    /// True while kvmdbg runs.
    pub fn running(&mut self) -> bool {
        self.try_wait().is_none()
    }

    fn kill(&mut self) {
        match &mut self.inner {
            Inner::Local { child, .. } => {
                if let Ok(None) = child.try_wait() {
                    let _ = child.kill();
                    let _ = child.wait();
                }
            }
            Inner::Remote { launcher: a, .. } => {
                launcher(*a, "stop");
            }
        }
    }
}

impl Drop for Stub {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Runs gdb-multiarch in batch mode on `elf`, connected to `port`, then `cmds`.
pub fn gdb_batch(port: u16, elf: &Path, cmds: &[&str]) -> RunOutput {
    gdb_batch_target(&format!("target remote 127.0.0.1:{port}"), elf, cmds)
}

/// Runs gdb-multiarch in batch mode on `elf`: `target` (a `target remote ...` command), then
/// `cmds`. The working directory is the repository root, where the firmware's sources resolve.
pub fn gdb_batch_target(target: &str, elf: &Path, cmds: &[&str]) -> RunOutput {
    let mut cmd = batch_command(target);
    for c in cmds {
        cmd.args(["-ex", c]);
    }
    cmd.arg(elf);
    let out = run_with_timeout(&mut cmd, gdb_timeout());
    assert!(out.status.is_some(), "gdb timed out:\n{}", out.describe());
    out
}

/// gdb-multiarch in batch mode, no init files, no paging or confirmation, unlimited width,
/// then `target` (a `target remote ...` command); the working directory is the repository
/// root. Add `-ex` commands and the program file.
pub fn batch_command(target: &str) -> Command {
    let mut cmd = Command::new(GDB);
    cmd.current_dir(super::repo_root())
        .args(["-nx", "-batch", "-ex", "set pagination off"])
        .args([
            "-ex",
            "set confirm off",
            "-ex",
            "set width 0",
            "-ex",
            target,
        ]);
    cmd
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

/// True if gdb sessions on a recording can run: gdb-multiarch and the firmware tools are
/// there (failing in CI when they are not) and the stubs run on the model (skipped with a
/// message in remote mode: KVM cannot record).
pub fn can_record() -> bool {
    if !(require_gdb() && super::require_firmware_tools()) {
        return false;
    }
    if backend_name() != "model" {
        eprintln!("skipping: recording needs the model backend, the stubs run on KVM");
        return false;
    }
    true
}

/// True if gdb-multiarch is available (fails in CI when it is not).
pub fn require_gdb() -> bool {
    super::require_tool(GDB)
}
