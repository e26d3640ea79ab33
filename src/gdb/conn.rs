//! The connection to gdb: a TCP or Unix stream with read and write buffers (gdbstub reads
//! one byte at a time; a 64 KiB `X` packet must not cost a system call per byte).

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::UnixStream;

use gdbstub::conn::{Connection, ConnectionExt};

/// Bytes read from the socket at once.
const READ_CHUNK: usize = 16 * 1024;

pub enum Socket {
    Tcp(TcpStream),
    Unix(UnixStream),
}

/// A buffered gdb connection.
pub struct Conn {
    sock: Socket,
    rbuf: Vec<u8>,
    rpos: usize,
    wbuf: Vec<u8>,
    /// The last flush that ended with a whole packet (gdb may ask for it again with `-`).
    sent: Vec<u8>,
    /// gdbstub's flushes are held (a reply completed before it is sent, `Conn::hold`).
    held: bool,
}

impl Conn {
    pub fn new(sock: Socket) -> Conn {
        Conn {
            sock,
            rbuf: Vec::new(),
            rpos: 0,
            wbuf: Vec::new(),
            sent: Vec::new(),
            held: false,
        }
    }

    /// Holds every flush until [`Conn::release`]: what is written stays in
    /// [`Conn::pending_out`] (a reply gdbstub writes and flushes, completed before it goes).
    pub fn hold(&mut self) {
        self.held = true;
    }

    /// Ends [`Conn::hold`] and sends what is pending.
    pub fn release(&mut self) -> io::Result<()> {
        self.held = false;
        Connection::flush(self)
    }

    /// The last flushed bytes that ended with a whole packet (see `guard::last_packet`).
    pub fn last_sent(&self) -> &[u8] {
        &self.sent
    }

    /// The bytes written but not flushed yet, to append a reply to in place (the memory
    /// packets build theirs here: no copy between the reply and the socket).
    pub fn pending_out(&mut self) -> &mut Vec<u8> {
        &mut self.wbuf
    }

    /// True when a byte has been received but not consumed yet.
    pub fn has_buffered(&self) -> bool {
        self.rpos < self.rbuf.len()
    }

    fn stream(&mut self) -> &mut dyn ReadWrite {
        match &mut self.sock {
            Socket::Tcp(s) => s,
            Socket::Unix(s) => s,
        }
    }

    fn fill(&mut self) -> io::Result<()> {
        let mut chunk = [0u8; READ_CHUNK];
        let n = loop {
            match self.stream().read(&mut chunk) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        };
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "gdb closed the connection",
            ));
        }
        self.rbuf.clear();
        self.rbuf.extend_from_slice(&chunk[..n]);
        self.rpos = 0;
        Ok(())
    }
}

trait ReadWrite: Read + Write {}
impl<T: Read + Write> ReadWrite for T {}

impl AsFd for Conn {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match &self.sock {
            Socket::Tcp(s) => s.as_fd(),
            Socket::Unix(s) => s.as_fd(),
        }
    }
}

impl Connection for Conn {
    type Error = io::Error;

    fn write(&mut self, byte: u8) -> io::Result<()> {
        self.wbuf.push(byte);
        Ok(())
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.wbuf.extend_from_slice(buf);
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.held || self.wbuf.is_empty() {
            return Ok(());
        }
        let out = std::mem::take(&mut self.wbuf);
        let s = self.stream();
        let written = s.write_all(&out).and_then(|_| s.flush());
        // Keep it if it ends with a packet; reuse the other buffer for the next writes.
        let n = out.len();
        self.wbuf = if n >= 4 && out[n - 3] == b'#' {
            std::mem::replace(&mut self.sent, out)
        } else {
            out
        };
        self.wbuf.clear();
        written
    }

    fn on_session_start(&mut self) -> io::Result<()> {
        match &self.sock {
            // Packets are small and interactive: send them at once.
            Socket::Tcp(s) => s.set_nodelay(true),
            Socket::Unix(_) => Ok(()),
        }
    }
}

impl ConnectionExt for Conn {
    fn read(&mut self) -> io::Result<u8> {
        // Whatever was queued for sending must be out before waiting for an answer.
        if !self.wbuf.is_empty() {
            Connection::flush(self)?;
        }
        if !self.has_buffered() {
            self.fill()?;
        }
        let b = self.rbuf[self.rpos];
        self.rpos += 1;
        Ok(b)
    }

    fn peek(&mut self) -> io::Result<Option<u8>> {
        if self.has_buffered() {
            return Ok(Some(self.rbuf[self.rpos]));
        }
        let mut fds = [nix::poll::PollFd::new(
            self.as_fd(),
            nix::poll::PollFlags::POLLIN,
        )];
        let ready =
            nix::poll::poll(&mut fds, nix::poll::PollTimeout::ZERO).map_err(io::Error::from)?;
        if ready == 0 {
            return Ok(None);
        }
        self.fill()?;
        Ok(Some(self.rbuf[self.rpos]))
    }
}
