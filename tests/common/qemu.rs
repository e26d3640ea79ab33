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

/// A free loopback TCP port (bound then released; QEMU binds it right after).
pub fn free_port() -> std::io::Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

/// A QEMU virt machine halted at reset with its gdb stub on a loopback port.
pub struct Qemu {
    child: Child,
    pub addr: SocketAddr,
}

impl Qemu {
    /// `qemu-system-aarch64 -M virt -cpu max,sve=off -nographic -S -gdb tcp:127.0.0.1:PORT
    /// -kernel IMAGE`: the CPU waits at the ELF entry (EL1h, DAIF masked) for gdb.
    pub fn start_halted(image: &Path) -> std::io::Result<Self> {
        let port = free_port()?;
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let child = Command::new(QEMU)
            .args(["-M", "virt", "-cpu", "max,sve=off", "-m", "128M"])
            .args([
                "-nographic",
                "-monitor",
                "none",
                "-serial",
                "null",
                "-net",
                "none",
            ])
            // The gdb stub on a chardev with TCP_NODELAY: QEMU acks and replies in separate
            // small writes, which Nagle's algorithm would otherwise hold back.
            .arg("-chardev")
            .arg(format!(
                "socket,id=gdb0,host=127.0.0.1,port={port},server=on,wait=off,nodelay=on"
            ))
            .args(["-S", "-gdb", "chardev:gdb0"])
            .arg("-kernel")
            .arg(image)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()?;
        Ok(Qemu { child, addr })
    }

    /// Connects an RSP client to the stub (QEMU needs a moment to listen).
    pub fn connect(&mut self) -> Result<Rsp, RspError> {
        let mut rsp = Rsp::connect(self.addr, Duration::from_secs(10))?;
        rsp.query_supported("multiprocess+;swbreak+;hwbreak+;qXfer:features:read+")?;
        // QEMU serves `p`/`P` only once the target description has been read.
        rsp.qxfer_read("features", "target.xml")?;
        Ok(rsp)
    }

    /// Runs `image` freely (no gdb) and waits up to `timeout` for QEMU to exit by itself;
    /// returns its exit status success, or an error when it had to be killed.
    pub fn run_to_exit(image: &Path, timeout: Duration) -> Result<bool, String> {
        let mut child = Command::new(QEMU)
            .args(["-M", "virt", "-cpu", "max,sve=off", "-m", "128M"])
            .args([
                "-nographic",
                "-monitor",
                "none",
                "-serial",
                "null",
                "-net",
                "none",
            ])
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
