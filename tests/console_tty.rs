//! kvmdbg's console on a terminal: a pseudo-terminal whose slave is kvmdbg's stdin, stdout
//! and stderr (and its controlling terminal, kvmdbg the foreground job). While the guest runs
//! the terminal is raw (no canonical input, no echo, no signal keys); `Ctrl-A x` ends kvmdbg
//! with status 0; the terminal's settings are restored after `Ctrl-A x` and after SIGTERM.
//! The guest is a raw binary that spins (`b .`) on the model backend.

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::pty::openpty;
use nix::sys::termios::{tcgetattr, LocalFlags};

/// A raw binary: `b .` (0x14000000), the guest spins until kvmdbg ends.
fn spinner() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let p = dir.join(format!("console-tty-spin-{}.bin", std::process::id()));
    std::fs::write(&p, 0x1400_0000u32.to_le_bytes()).unwrap();
    p
}

/// Starts kvmdbg on the pty `slave` as the session leader with it as controlling terminal.
fn start_on_pty(slave: &OwnedFd) -> Child {
    let fd = slave.as_raw_fd();
    let io = || Stdio::from(slave.try_clone().unwrap());
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kvmdbg"));
    cmd.args(["run", spinner().to_str().unwrap(), "--backend", "model"])
        .stdin(io())
        .stdout(io())
        .stderr(io());
    // SAFETY: runs in the forked child before exec and only makes async-signal-safe calls:
    // setsid(2) and ioctl(2) TIOCSCTTY (tty_ioctl(4)) on an fd inherited from the parent.
    unsafe {
        cmd.pre_exec(move || {
            nix::unistd::setsid()?;
            if nix::libc::ioctl(fd, nix::libc::TIOCSCTTY, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd.spawn().expect("kvmdbg starts")
}

fn canonical(fd: &OwnedFd) -> bool {
    let t = tcgetattr(fd).expect("tcgetattr");
    t.local_flags
        .contains(LocalFlags::ICANON | LocalFlags::ECHO | LocalFlags::ISIG)
}

/// Waits until `cond` holds, for at most 20 s.
fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn wait_exit(child: &mut Child) -> std::process::ExitStatus {
    let mut status = None;
    wait_for("kvmdbg to exit", || {
        status = child.try_wait().unwrap();
        status.is_some()
    });
    status.unwrap()
}

/// Everything the master side has to read (kvmdbg's output), without blocking for long.
fn drain(master: &OwnedFd) -> String {
    let mut f = std::fs::File::from(master.try_clone().unwrap());
    nix::fcntl::fcntl(
        &f,
        nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
    )
    .unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = f.read(&mut buf) {
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn ctrl_a_x_quits_and_the_terminal_comes_back_cooked() {
    let pty = openpty(None, None).expect("openpty");
    assert!(canonical(&pty.slave));
    let mut child = start_on_pty(&pty.slave);
    wait_for("raw mode", || !canonical(&pty.slave));
    let mut master = std::fs::File::from(pty.master.try_clone().unwrap());
    // Ctrl-C is the guest's now (no ISIG): kvmdbg keeps running.
    master.write_all(&[0x03]).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert!(child.try_wait().unwrap().is_none(), "Ctrl-C ended kvmdbg");
    master.write_all(b"\x01x").unwrap();
    let status = wait_exit(&mut child);
    assert_eq!(status.code(), Some(0), "{}", drain(&pty.master));
    assert!(canonical(&pty.slave), "terminal left raw after Ctrl-A x");
    let out = drain(&pty.master);
    assert!(out.contains("Ctrl-A x"), "{out}");
}

#[test]
fn sigterm_restores_the_terminal() {
    let pty = openpty(None, None).expect("openpty");
    let mut child = start_on_pty(&pty.slave);
    wait_for("raw mode", || !canonical(&pty.slave));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let status = wait_exit(&mut child);
    // kvmdbg ends cleanly on SIGTERM with 128 + the signal number (README, user guide).
    assert_eq!(status.code(), Some(128 + nix::libc::SIGTERM));
    assert!(canonical(&pty.slave), "terminal left raw after SIGTERM");
}
