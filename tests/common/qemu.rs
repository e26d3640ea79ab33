//! Starting `qemu-system-aarch64` (QEMU virt board, TCG) as a reference machine for tests.
//!
//! Owns the QEMU child process (killed on drop) and the tool-presence policy: when QEMU is
//! missing a test fails if `CI=true`, else it is skipped with a message.

use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::rsp::{Rsp, RspError};

pub const QEMU: &str = "qemu-system-aarch64";

/// Whether QEMU can be run; under `CI=true` a missing QEMU panics, else the caller skips
/// (see `super::require_tool`). `test` names the caller in the message.
pub fn available(test: &str) -> bool {
    let ok = super::require_tool(QEMU);
    if !ok {
        eprintln!("SKIP {test}: {QEMU} not found");
    }
    ok
}

/// A QEMU virt machine halted at reset with its gdb stub on a loopback port.
/// The board every QEMU here runs: `virt` with a GICv3 (as kvmdbg's machine; see
/// `super::QEMU_VIRT_ARGS`), no SVE (V registers, not Z), no console, no NIC (the default one
/// needs an option ROM Debian does not ship).
const BOARD: &[&str] = &[
    "-M",
    "virt,gic-version=3",
    "-cpu",
    "max,sve=off",
    "-m",
    "128M",
    "-nographic",
    "-monitor",
    "none",
    "-serial",
    "null",
    "-net",
    "none",
];

pub struct Qemu {
    child: Child,
    /// Where QEMU's gdb stub connects to (ours: held from before QEMU starts, so no other
    /// process can take the port and no other QEMU can answer).
    listener: TcpListener,
    pub addr: SocketAddr,
}

impl Qemu {
    /// Starts QEMU halted at the image's entry, its gdb stub a client of a listener we hold.
    pub fn start_halted(image: &Path) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let port = addr.port();
        let child = Command::new(QEMU)
            .args(BOARD)
            .arg("-chardev")
            .arg(format!(
                "socket,id=gdb0,host=127.0.0.1,port={port},server=off,nodelay=on"
            ))
            .args(["-S", "-gdb", "chardev:gdb0"])
            .arg("-kernel")
            .arg(image)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()?;
        Ok(Qemu {
            child,
            listener,
            addr,
        })
    }

    /// Accepts QEMU's connection (10 s at most) and reads its target description (QEMU
    /// answers `p`/`P` only after that).
    pub fn connect(&mut self) -> Result<Rsp, RspError> {
        let timeout = Duration::from_secs(10);
        let stream = self.accept(timeout)?;
        let mut rsp = Rsp::from_stream(stream, timeout)?;
        rsp.query_supported("multiprocess+;swbreak+;hwbreak+;qXfer:features:read+")?;
        rsp.qxfer_read("features", "target.xml")?;
        Ok(rsp)
    }

    fn accept(&mut self, timeout: Duration) -> Result<std::net::TcpStream, RspError> {
        let err = |source| RspError::Connect {
            addr: self.addr,
            source,
        };
        self.listener.set_nonblocking(true).map_err(err)?;
        let deadline = std::time::Instant::now() + timeout;
        loop {
            match self.listener.accept() {
                Ok((stream, _)) => {
                    stream.set_nonblocking(false).map_err(err)?;
                    return Ok(stream);
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    if let Ok(Some(status)) = self.child.try_wait() {
                        return Err(err(std::io::Error::other(format!(
                            "{QEMU} exited before connecting: {status}"
                        ))));
                    }
                    if std::time::Instant::now() >= deadline {
                        return Err(err(std::io::Error::new(
                            std::io::ErrorKind::TimedOut,
                            "QEMU did not connect",
                        )));
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(e) => return Err(err(e)),
            }
        }
    }

    pub fn run_to_exit(image: &Path, timeout: Duration) -> Result<bool, String> {
        let mut child = Command::new(QEMU)
            .args(BOARD)
            .arg("-kernel")
            .arg(image)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("spawning {QEMU}: {e}"))?;
        let deadline = std::time::Instant::now() + timeout;
        loop {
            match child.try_wait() {
                Ok(Some(status)) => return Ok(status.success()),
                Ok(None) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                Ok(None) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(format!("{QEMU} still running after {timeout:?}"));
                }
                Err(e) => return Err(format!("waiting for {QEMU}: {e}")),
            }
        }
    }
}

impl Drop for Qemu {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
