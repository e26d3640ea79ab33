//! Listening for gdb and serving one connection after another, by the session rules of
//! docs/user-guide.md: the guest runs (or waits, with `--wait-gdb`) until gdb attaches, which
//! is its first valid packet, not the connection (a port probe changes nothing); it is
//! stopped while gdb is attached; after `D` it runs on; after a dropped connection it stays
//! stopped with every breakpoint and watchpoint removed until the next gdb attaches; the
//! server ends when the guest powers off or gdb kills it.

use std::net::{SocketAddr, TcpListener};
use std::os::fd::AsFd;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixListener;
use std::path::PathBuf;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use crate::machine::event::Resume;
use crate::machine::session::Session;
use crate::machine::Outcome;
use crate::signals;

use super::conn::Socket;
use super::event_loop::{self, Ending};
use super::link::{First, Link};
use super::{Debugger, GdbError};

/// Packet buffer size, advertised to gdb as PacketSize: 128 KiB, so a 64 KiB memory read
/// (hex, two characters a byte) fits one packet.
pub const PACKET_SIZE: usize = 128 * 1024 + 64;

/// Where to listen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Listen {
    Tcp(SocketAddr),
    Unix(PathBuf),
}

impl std::fmt::Display for Listen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Listen::Tcp(a) => write!(f, "tcp:{a}"),
            Listen::Unix(p) => write!(f, "unix:{}", p.display()),
        }
    }
}

pub struct ServeConfig {
    pub listen: Listen,
    /// Start the vCPUs only when gdb attaches (`-S`).
    pub wait_for_gdb: bool,
    /// The firmware path gdb may load symbols from (qXfer:exec-file).
    pub exec_file: Option<String>,
}

enum Listener {
    Tcp(TcpListener),
    /// The socket file is removed on drop, or by the exit hook if a signal ends kvmdbg.
    Unix(UnixListener, PathBuf, Option<signals::Hook>),
}

impl Drop for Listener {
    fn drop(&mut self) {
        if let Listener::Unix(_, path, hook) = self {
            let _ = std::fs::remove_file(path);
            if let Some(h) = hook.take() {
                h.cancel();
            }
        }
    }
}

impl Listener {
    fn bind(listen: &Listen) -> Result<Listener, GdbError> {
        let err = |source| GdbError::Listen {
            addr: listen.to_string(),
            source,
        };
        match listen {
            Listen::Tcp(addr) => Ok(Listener::Tcp(TcpListener::bind(addr).map_err(err)?)),
            Listen::Unix(path) => {
                // Only this user may drive the guest: the socket is created 0600 (umask
                // 0177 around bind, so it is never reachable with wider permissions), and
                // set so explicitly in case the file system ignores the umask.
                use nix::sys::stat::{umask, Mode};
                remove_stale_socket(path);
                let old = umask(Mode::from_bits_truncate(0o177));
                let bound = UnixListener::bind(path);
                umask(old);
                let remove = path.clone();
                let hook = signals::on_exit(move || {
                    let _ = std::fs::remove_file(remove);
                });
                let owned = Listener::Unix(bound.map_err(err)?, path.clone(), Some(hook));
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
                    .map_err(err)?;
                Ok(owned)
            }
        }
    }

    fn fd(&self) -> std::os::fd::BorrowedFd<'_> {
        match self {
            Listener::Tcp(l) => l.as_fd(),
            Listener::Unix(l, ..) => l.as_fd(),
        }
    }

    fn accept(&self) -> Result<Socket, GdbError> {
        let sock = match self {
            Listener::Tcp(l) => {
                let (s, peer) = l.accept().map_err(GdbError::Accept)?;
                log::info!("gdb connected from {peer}");
                Socket::Tcp(s)
            }
            Listener::Unix(l, ..) => {
                let (s, _) = l.accept().map_err(GdbError::Accept)?;
                log::info!("gdb connected");
                Socket::Unix(s)
            }
        };
        Ok(sock)
    }
}

/// Removes `path` if it is a socket nobody listens on (left by a kvmdbg that was killed):
/// binding would fail on it. Anything else at `path` is left for `bind` to report.
fn remove_stale_socket(path: &std::path::Path) {
    use std::os::unix::fs::FileTypeExt;
    let is_socket = std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_socket());
    if !is_socket {
        return;
    }
    if let Err(e) = std::os::unix::net::UnixStream::connect(path) {
        if e.kind() == std::io::ErrorKind::ConnectionRefused {
            log::info!("removing the stale socket {}", path.display());
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Serves gdb over `session` until the guest ends or gdb kills it.
pub fn serve(session: Session, cfg: ServeConfig) -> Result<Outcome, GdbError> {
    let listener = Listener::bind(&cfg.listen)?;
    log::warn!("waiting for gdb on {}", cfg.listen);
    let mut dbg = Debugger::new(session, cfg.exec_file)?;
    if !cfg.wait_for_gdb {
        run_all(&mut dbg.session)?;
    }
    loop {
        if let Some(end) = wait_for_gdb(&listener, &mut dbg.session)? {
            return Ok(end);
        }
        let sock = listener.accept()?;
        if let Some(end) = serve_connection(&mut dbg, sock)? {
            return Ok(end);
        }
    }
}

/// Serves one connection already made over a Unix stream (an in-memory `UnixStream::pair`
/// in the fuzz harness): returns how the guest ended, or None when another gdb may attach.
pub fn serve_stream(
    dbg: &mut Debugger,
    stream: std::os::unix::net::UnixStream,
) -> Result<Option<Outcome>, GdbError> {
    serve_connection(dbg, Socket::Unix(stream))
}

/// One connection, by the session rules: attached by its first valid packet, then served
/// until `D` (the guest runs on), a drop (the guest stays stopped, nothing planted), `k` or
/// the guest's end (returned).
fn serve_connection(dbg: &mut Debugger, sock: Socket) -> Result<Option<Outcome>, GdbError> {
    let mut link = match Link::new(sock) {
        Ok(l) => l,
        Err(e) => {
            log::warn!("gdb connection unusable: {e}");
            return Ok(None);
        }
    };
    match link.wait_first(&mut dbg.session)? {
        First::Packet => {}
        First::Closed => {
            log::info!("the connection closed before any packet: not an attach");
            return Ok(None);
        }
        First::GuestEnded(end) => return Ok(Some(end)),
    }
    if let Some(end) = stop_for_gdb(&mut dbg.session)? {
        log::info!("the guest ended as gdb attached: {end:?}");
        return Ok(Some(end));
    }
    let end = match event_loop::run(dbg, &mut link) {
        Ending::Detached => {
            log::info!("gdb detached; the guest runs on");
            dbg.session.detach()?;
            return Ok(None);
        }
        Ending::Dropped => {
            log::warn!(
                "gdb connection lost without a detach: the guest stays stopped, every \
                 breakpoint and watchpoint removed, until gdb attaches again"
            );
            dbg.session.stop_and_clear()?;
            return Ok(None);
        }
        Ending::Killed => {
            log::info!("gdb killed the guest");
            Ok(Some(Outcome::Killed))
        }
        Ending::GuestEnded(out) => Ok(Some(out)),
        Ending::Failed(e) => Err(e),
    };
    let _ = dbg.session.stop_and_clear();
    end
}

/// Resumes every stopped vCPU.
fn run_all(session: &mut Session) -> Result<(), GdbError> {
    let all: Vec<_> = (0..session.vcpu_count())
        .map(|v| (v, Resume::Continue))
        .collect();
    session.resume(&all)?;
    Ok(())
}

/// Waits until gdb connects (returns None) or the guest ends (returns how).
fn wait_for_gdb(listener: &Listener, session: &mut Session) -> Result<Option<Outcome>, GdbError> {
    loop {
        if let Some(stop) = session.poll_stop()? {
            match Outcome::of_stop(stop.vcpu, &stop.reason) {
                Some(end) => return Ok(Some(end)),
                // Every vCPU waits for an interrupt nothing will raise: leave them stopped
                // for gdb to look at.
                None => log::warn!(
                    "vCPU {} stopped ({:?}) with no gdb attached",
                    stop.vcpu,
                    stop.reason
                ),
            }
        }
        let mut fds = [
            PollFd::new(listener.fd(), PollFlags::POLLIN),
            PollFd::new(session.event_fd(), PollFlags::POLLIN),
        ];
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(GdbError::Poll(e)),
        }
        if fds[0].revents().is_some_and(|r| !r.is_empty()) {
            return Ok(None);
        }
    }
}

/// Stops the guest for a newly attached gdb; returns how it ended if it ended meanwhile (a
/// fault in that window is shown to gdb instead: the faulted vCPU is there to look at).
fn stop_for_gdb(session: &mut Session) -> Result<Option<Outcome>, GdbError> {
    // With nothing running, the interrupt is reported at once.
    session.interrupt();
    let stop = session.wait_stop()?;
    Ok(Outcome::of_stop(stop.vcpu, &stop.reason).filter(Outcome::guest_ended))
}
