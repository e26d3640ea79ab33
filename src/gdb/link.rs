//! One gdb connection as the guard sees it: the bytes read and framed (`guard::Framer`), the
//! protocol state the guard mirrors, and the acknowledgments and replies it sends itself.
//! Everything is written through gdbstub's own `Conn`, a duplicate of the same socket
//! (`writer`), so that a rebuilt gdbstub can be given a fresh one and a `-` from gdb resends
//! whichever packet went last.
//!
//! Used by `event_loop` and `server`; depends on `conn` and `guard`, not on gdbstub.

use std::io;
use std::os::fd::AsFd;

use gdbstub::conn::{Connection, ConnectionExt};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use crate::machine::session::Session;
use crate::machine::Outcome;

use super::conn::{Conn, Socket};
use super::guard::{self, Framer, Item, Proto};
use super::server::PACKET_SIZE;
use super::GdbError;

/// The largest body gdbstub's packet buffer takes with its framing (`$`, `#` and two
/// checksum digits).
pub const BODY_LIMIT: usize = PACKET_SIZE - 4;

pub struct Link {
    sock: Socket,
    conn: Conn,
    pub framer: Framer,
    pub proto: Proto,
}

/// How the wait for a client's first packet ended.
pub enum First {
    /// A packet with a correct checksum is in `framer.body()`: gdb has attached.
    Packet,
    /// The connection closed first: it was not an attach.
    Closed,
    /// The guest ended meanwhile.
    GuestEnded(Outcome),
}

/// A duplicate of the socket (the same connection; closing one leaves the other open).
pub fn clone_socket(s: &Socket) -> io::Result<Socket> {
    Ok(match s {
        Socket::Tcp(t) => Socket::Tcp(t.try_clone()?),
        Socket::Unix(u) => Socket::Unix(u.try_clone()?),
    })
}

impl Link {
    pub fn new(sock: Socket) -> io::Result<Link> {
        if let Socket::Tcp(t) = &sock {
            // Packets are small and interactive: send them at once.
            t.set_nodelay(true)?;
        }
        // A whole reply of the largest size fits the socket's send buffer, so it leaves in
        // one write without waiting for the client to drain it (tcp(7) `SO_SNDBUF`: the kernel
        // doubles the value and caps it at /proc/sys/net/core/wmem_max; a failure only costs
        // speed).
        let conn = Conn::new(clone_socket(&sock)?);
        let size = 2 * PACKET_SIZE;
        if let Err(e) =
            nix::sys::socket::setsockopt(&conn, nix::sys::socket::sockopt::SndBuf, &size)
        {
            log::debug!("gdb connection: SO_SNDBUF: {e}");
        }
        Ok(Link {
            sock,
            conn,
            framer: Framer::new(BODY_LIMIT),
            proto: Proto::default(),
        })
    }

    /// A new connection for gdbstub to write through.
    pub fn writer(&self) -> io::Result<Conn> {
        Ok(Conn::new(clone_socket(&self.sock)?))
    }

    pub fn conn(&self) -> &Conn {
        &self.conn
    }

    /// True when received bytes wait to be framed.
    pub fn has_buffered(&self) -> bool {
        self.conn.has_buffered()
    }

    /// Reads one byte (blocking) and frames it.
    pub fn next_byte(&mut self) -> io::Result<Option<Item>> {
        let b = self.conn.read()?;
        Ok(self.framer.push(b))
    }

    /// Blocks until a byte completes an item.
    pub fn next_item(&mut self) -> io::Result<Item> {
        loop {
            if let Some(item) = self.next_byte()? {
                return Ok(item);
            }
        }
    }

    /// Until gdb sends its first valid packet the client has not attached: damaged packets
    /// are answered `-`, acknowledgments and interrupts ignored, and the guest keeps doing
    /// what it did. Returns how the wait ended.
    pub fn wait_first(&mut self, session: &mut Session) -> Result<First, GdbError> {
        loop {
            while self.has_buffered() {
                match self.handle_pre_attach() {
                    Ok(Some(first)) => return Ok(first),
                    Ok(None) => {}
                    Err(_) => return Ok(First::Closed),
                }
            }
            if let Some(stop) = session.poll_stop()? {
                match Outcome::of_stop(stop.vcpu, &stop.reason) {
                    Some(end) => return Ok(First::GuestEnded(end)),
                    None => log::warn!(
                        "vCPU {} stopped ({:?}) with no gdb attached",
                        stop.vcpu,
                        stop.reason
                    ),
                }
            }
            let (conn_ready, _) = wait_readable(&self.conn, session).map_err(GdbError::Poll)?;
            if conn_ready {
                match self.handle_pre_attach() {
                    Ok(Some(first)) => return Ok(first),
                    Ok(None) => {}
                    Err(_) => return Ok(First::Closed),
                }
            }
        }
    }

    /// One byte before the attach.
    fn handle_pre_attach(&mut self) -> io::Result<Option<First>> {
        match self.next_byte()? {
            Some(Item::Packet) => Ok(Some(First::Packet)),
            Some(Item::BadChecksum | Item::Abandoned) => nak(&mut self.conn, false).map(|_| None),
            Some(Item::Overlong) => reply(&mut self.conn, false, &einval()).map(|_| None),
            Some(Item::Ack | Item::Nack | Item::Interrupt) | None => Ok(None),
        }
    }
}

/// The body of an `E22` reply.
pub fn einval() -> Vec<u8> {
    format!("E{:02x}", guard::EINVAL).into_bytes()
}

/// `-` for a packet that arrived damaged (ack mode only; without acks it is dropped).
pub fn nak(out: &mut Conn, no_ack: bool) -> io::Result<()> {
    if !no_ack {
        out.write(b'-')?;
        out.flush()?;
    }
    Ok(())
}

/// `+` (ack mode only), not flushed.
pub fn ack(out: &mut Conn, no_ack: bool) -> io::Result<()> {
    if !no_ack {
        out.write(b'+')?;
    }
    Ok(())
}

/// Acknowledges the current packet and answers it with `body`.
pub fn reply(out: &mut Conn, no_ack: bool, body: &[u8]) -> io::Result<()> {
    ack(out, no_ack)?;
    out.write_all(&guard::frame(body))?;
    out.flush()
}

/// Sends the last packet `out` sent again (gdb answered it with `-`).
pub fn resend(out: &mut Conn) -> io::Result<()> {
    if let Some(p) = guard::last_packet(out.last_sent()).map(<[u8]>::to_vec) {
        out.write_all(&p)?;
        out.flush()?;
    }
    Ok(())
}

/// Blocks until the connection or the session's event fd is readable (or hung up); returns
/// which of them is.
pub fn wait_readable(conn: &Conn, session: &Session) -> nix::Result<(bool, bool)> {
    let ev = session.event_fd();
    let mut fds = [
        PollFd::new(conn.as_fd(), PollFlags::POLLIN),
        PollFd::new(ev, PollFlags::POLLIN),
    ];
    loop {
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) => break,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e),
        }
    }
    let ready = |f: &PollFd| f.revents().is_some_and(|r| !r.is_empty());
    Ok((ready(&fds[0]), ready(&fds[1])))
}
