//! A small GDB remote-serial-protocol client for tests (GDB manual, appendix E "GDB Remote
//! Serial Protocol"): TCP connect with retry, `$payload#cs` framing with checksums and acks,
//! run-length decoding, and the packets the co-simulation and raw-protocol tests need.
//!
//! Owns no process: QEMU or our own stub is started elsewhere. Every wait has a deadline.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
pub enum RspError {
    #[error("connecting to gdb stub at {addr}: {source}")]
    Connect {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("{op}: socket error: {source}")]
    Io { op: String, source: std::io::Error },
    #[error("{op}: no answer within {timeout:?}")]
    Timeout { op: String, timeout: Duration },
    #[error("{op}: connection closed by the stub")]
    Closed { op: String },
    #[error("{op}: bad checksum (got {got:#04x}, computed {want:#04x}) on {packet:?}")]
    Checksum {
        op: String,
        got: u8,
        want: u8,
        packet: String,
    },
    #[error("{op}: stub rejected the packet {tries} times (NAK)")]
    Nak { op: String, tries: u32 },
    #[error("{op}: stub answered error E{code:02x}")]
    Stub { op: String, code: u8 },
    #[error("{op}: stub does not support it (empty reply)")]
    Unsupported { op: String },
    #[error("{op}: malformed reply {reply:?}")]
    Malformed { op: String, reply: String },
}

pub type Result<T> = std::result::Result<T, RspError>;

/// Why the target stopped (stop-reply packets, GDB manual E.3 "Stop Reply Packets").
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Stop {
    /// `S sig` or `T sig n:r;...`: stopped with signal `sig` and its key/value pairs.
    Signal {
        sig: u8,
        info: Vec<(String, String)>,
    },
    /// `W status`: the process exited.
    Exited(u8),
    /// `X sig`: the process was terminated by a signal.
    Terminated(u8),
}

/// Breakpoint and watchpoint kinds of `Z`/`z` packets (GDB manual E.2 "Packets").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BpKind {
    Software = 0,
    Hardware = 1,
    WriteWatch = 2,
    ReadWatch = 3,
    AccessWatch = 4,
}

/// The connection: TCP, or a Unix socket (`--gdb unix:PATH`).
pub enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Stream {
    fn set_read_timeout(&self, t: Option<Duration>) -> std::io::Result<()> {
        match self {
            Stream::Tcp(s) => s.set_read_timeout(t),
            Stream::Unix(s) => s.set_read_timeout(t),
        }
    }

    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.read(buf),
            Stream::Unix(s) => s.read(buf),
        }
    }

    fn write_all(&mut self, data: &[u8]) -> std::io::Result<()> {
        match self {
            Stream::Tcp(s) => s.write_all(data),
            Stream::Unix(s) => s.write_all(data),
        }
    }
}

pub struct Rsp {
    stream: Stream,
    pending: Vec<u8>,
    timeout: Duration,
    /// Largest packet the stub accepts (from qSupported PacketSize), in bytes.
    pub packet_size: usize,
}

pub fn checksum(data: &[u8]) -> u8 {
    data.iter().fold(0u8, |a, b| a.wrapping_add(*b))
}

pub fn hex(data: &[u8]) -> String {
    data.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn unhex(op: &str, s: &[u8]) -> Result<Vec<u8>> {
    let bad = || RspError::Malformed {
        op: op.to_string(),
        reply: String::from_utf8_lossy(s).into_owned(),
    };
    if s.len() % 2 != 0 {
        return Err(bad());
    }
    s.chunks(2)
        .map(|c| {
            let t = std::str::from_utf8(c).map_err(|_| bad())?;
            u8::from_str_radix(t, 16).map_err(|_| bad())
        })
        .collect()
}

/// Expands run-length encoding: `X*n` repeats X (n - 29) more times.
pub fn expand_rle(op: &str, data: &[u8]) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(data.len());
    let mut i = 0;
    while i < data.len() {
        if data[i] == b'*' {
            let (Some(&prev), Some(&n)) = (out.last(), data.get(i + 1)) else {
                return Err(RspError::Malformed {
                    op: op.to_string(),
                    reply: String::from_utf8_lossy(data).into_owned(),
                });
            };
            out.extend(std::iter::repeat_n(prev, (n as usize).saturating_sub(29)));
            i += 2;
        } else {
            out.push(data[i]);
            i += 1;
        }
    }
    Ok(out)
}

impl Rsp {
    /// Connects, retrying until `timeout` (the stub may still be starting).
    pub fn connect(addr: SocketAddr, timeout: Duration) -> Result<Self> {
        let deadline = Instant::now() + timeout;
        let stream = loop {
            match TcpStream::connect_timeout(&addr, Duration::from_millis(500)) {
                Ok(s) => break s,
                Err(e) if Instant::now() >= deadline => {
                    return Err(RspError::Connect { addr, source: e })
                }
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        };
        Self::from_stream(stream, timeout)
    }

    /// Connects to a Unix socket, retrying until `timeout`.
    pub fn connect_unix(path: &Path, timeout: Duration) -> Result<Self> {
        let deadline = Instant::now() + timeout;
        let stream = loop {
            match UnixStream::connect(path) {
                Ok(s) => break s,
                Err(e) if Instant::now() >= deadline => {
                    return Err(RspError::Io {
                        op: format!("connect {}", path.display()),
                        source: e,
                    })
                }
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        };
        Ok(Rsp {
            stream: Stream::Unix(stream),
            pending: Vec::new(),
            timeout,
            packet_size: 1024,
        })
    }

    /// Wraps an already connected stream (e.g. one a stub connected to us).
    pub fn from_stream(stream: TcpStream, timeout: Duration) -> Result<Self> {
        let io = |source| RspError::Io {
            op: "configure socket".into(),
            source,
        };
        stream.set_nodelay(true).map_err(io)?;
        Ok(Rsp {
            stream: Stream::Tcp(stream),
            pending: Vec::new(),
            timeout,
            packet_size: 1024,
        })
    }

    /// Sets the deadline used for every later reply.
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    /// Reads at least one more byte into `pending` before `deadline`.
    fn fill(&mut self, op: &str, deadline: Instant) -> Result<()> {
        let now = Instant::now();
        if now >= deadline {
            return Err(RspError::Timeout {
                op: op.to_string(),
                timeout: self.timeout,
            });
        }
        let io = |source| RspError::Io {
            op: op.to_string(),
            source,
        };
        self.stream
            .set_read_timeout(Some(deadline - now))
            .map_err(io)?;
        let mut buf = [0u8; 4096];
        match self.stream.read(&mut buf) {
            Ok(0) => Err(RspError::Closed { op: op.to_string() }),
            Ok(n) => {
                self.pending.extend_from_slice(&buf[..n]);
                Ok(())
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                Err(RspError::Timeout {
                    op: op.to_string(),
                    timeout: self.timeout,
                })
            }
            Err(e) => Err(io(e)),
        }
    }

    fn write_raw(&mut self, op: &str, data: &[u8]) -> Result<()> {
        self.stream.write_all(data).map_err(|source| RspError::Io {
            op: op.to_string(),
            source,
        })
    }

    /// Writes raw bytes (hostile-input tests: broken frames, interrupt bytes).
    pub fn send_raw(&mut self, data: &[u8]) -> Result<()> {
        self.write_raw("raw", data)
    }

    /// Waits for one raw byte (an ack `+`/`-`), or None when the stub closed the connection.
    pub fn recv_byte(&mut self, op: &str) -> Result<Option<u8>> {
        if self.pending.is_empty() {
            match self.fill(op, Instant::now() + self.timeout) {
                Ok(()) => {}
                Err(RspError::Closed { .. }) => return Ok(None),
                Err(e) => return Err(e),
            }
        }
        Ok(Some(self.pending.remove(0)))
    }

    /// Sends one packet and waits for its `+` (resending on `-`, at most 3 times).
    pub fn send(&mut self, payload: &str) -> Result<()> {
        let op = format!("send {}", short(payload));
        let frame = format!("${payload}#{:02x}", checksum(payload.as_bytes()));
        for _ in 0..3 {
            self.write_raw(&op, frame.as_bytes())?;
            let deadline = Instant::now() + self.timeout;
            loop {
                if self.pending.is_empty() {
                    self.fill(&op, deadline)?;
                }
                match self.pending.remove(0) {
                    b'+' => return Ok(()),
                    b'-' => break,
                    // Anything else before the ack (stray output) is dropped.
                    _ => continue,
                }
            }
        }
        Err(RspError::Nak { op, tries: 3 })
    }

    /// Receives one packet (acking it), skipping anything before `$`.
    pub fn recv(&mut self, op: &str) -> Result<Vec<u8>> {
        let deadline = Instant::now() + self.timeout;
        loop {
            if let Some(start) = self.pending.iter().position(|&b| b == b'$') {
                if let Some(hash) = self.pending[start..].iter().position(|&b| b == b'#') {
                    let end = start + hash;
                    if self.pending.len() >= end + 3 {
                        return self.take_packet(op, start, end);
                    }
                }
            } else {
                self.pending.clear();
            }
            self.fill(op, deadline)?;
        }
    }

    fn take_packet(&mut self, op: &str, start: usize, end: usize) -> Result<Vec<u8>> {
        let body = self.pending[start + 1..end].to_vec();
        let cs_text = self.pending[end + 1..end + 3].to_vec();
        self.pending.drain(..end + 3);
        let want = checksum(&body);
        let got = std::str::from_utf8(&cs_text)
            .ok()
            .and_then(|t| u8::from_str_radix(t, 16).ok());
        if got != Some(want) {
            self.write_raw(op, b"-")?;
            return Err(RspError::Checksum {
                op: op.to_string(),
                got: got.unwrap_or(0),
                want,
                packet: String::from_utf8_lossy(&body).into_owned(),
            });
        }
        // The stub may close the connection right after its last packet (`W`, `X`): an ack
        // that finds it closed is not an error.
        match self.write_raw(op, b"+") {
            Err(RspError::Io { source, .. }) if source.kind() == std::io::ErrorKind::BrokenPipe => {
            }
            other => other?,
        }
        expand_rle(op, &body)
    }

    /// Sends `payload` and returns the reply; `Exx` becomes [`RspError::Stub`], an empty
    /// reply [`RspError::Unsupported`].
    pub fn command(&mut self, payload: &str) -> Result<Vec<u8>> {
        self.send(payload)?;
        let op = short(payload);
        let reply = self.recv(&op)?;
        if reply.is_empty() {
            return Err(RspError::Unsupported { op });
        }
        if reply.len() == 3 && reply[0] == b'E' {
            if let Ok(code) = u8::from_str_radix(&String::from_utf8_lossy(&reply[1..]), 16) {
                return Err(RspError::Stub { op, code });
            }
        }
        Ok(reply)
    }

    fn expect_ok(&mut self, payload: &str) -> Result<()> {
        let reply = self.command(payload)?;
        if reply != b"OK" {
            return Err(RspError::Malformed {
                op: short(payload),
                reply: String::from_utf8_lossy(&reply).into_owned(),
            });
        }
        Ok(())
    }

    /// `qSupported`: returns the stub's feature list and records its PacketSize.
    pub fn query_supported(&mut self, features: &str) -> Result<Vec<String>> {
        let reply = self.command(&format!("qSupported:{features}"))?;
        let list: Vec<String> = String::from_utf8_lossy(&reply)
            .split(';')
            .map(str::to_string)
            .collect();
        for f in &list {
            if let Some(v) = f.strip_prefix("PacketSize=") {
                if let Ok(n) = usize::from_str_radix(v, 16) {
                    self.packet_size = n;
                }
            }
        }
        Ok(list)
    }

    /// `qXfer:OBJECT:read:ANNEX:off,len` until the last (`l`) chunk; returns the document.
    /// QEMU answers `p`/`P` only after the target description was read this way.
    pub fn qxfer_read(&mut self, object: &str, annex: &str) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        let chunk = self.packet_size.saturating_sub(16).max(64);
        loop {
            let cmd = format!("qXfer:{object}:read:{annex}:{:x},{chunk:x}", out.len());
            let reply = self.command(&cmd)?;
            let (last, body) = match reply.split_first() {
                Some((b'l', body)) => (true, body),
                Some((b'm', body)) => (false, body),
                _ => {
                    return Err(RspError::Malformed {
                        op: short(&cmd),
                        reply: String::from_utf8_lossy(&reply).into_owned(),
                    })
                }
            };
            out.extend_from_slice(&unescape(body));
            if last || body.is_empty() {
                return Ok(out);
            }
        }
    }

    /// `?`: the reason the target is halted.
    pub fn halt_reason(&mut self) -> Result<Stop> {
        let reply = self.command("?")?;
        parse_stop("?", &reply)
    }

    /// `g`: all general registers as raw target-order bytes.
    pub fn read_registers(&mut self) -> Result<Vec<u8>> {
        let reply = self.command("g")?;
        unhex("g", &reply)
    }

    /// `p n`: one register's raw bytes.
    pub fn read_register(&mut self, n: u32) -> Result<Vec<u8>> {
        let reply = self.command(&format!("p{n:x}"))?;
        unhex("p", &reply)
    }

    /// `P n=v`: writes one register from raw bytes.
    pub fn write_register(&mut self, n: u32, bytes: &[u8]) -> Result<()> {
        self.expect_ok(&format!("P{n:x}={}", hex(bytes)))
    }

    /// `m`: reads `len` bytes, in chunks that fit the stub's packet size.
    pub fn read_memory(&mut self, addr: u64, len: usize) -> Result<Vec<u8>> {
        let chunk = (self.packet_size.saturating_sub(8) / 2).max(1);
        let mut out = Vec::with_capacity(len);
        while out.len() < len {
            let n = chunk.min(len - out.len());
            let a = addr + out.len() as u64;
            let reply = self.command(&format!("m{a:x},{n:x}"))?;
            let bytes = unhex("m", &reply)?;
            if bytes.is_empty() {
                return Err(RspError::Malformed {
                    op: format!("m{a:x}"),
                    reply: String::new(),
                });
            }
            out.extend_from_slice(&bytes);
        }
        out.truncate(len);
        Ok(out)
    }

    /// `M`: writes bytes, chunked like [`Rsp::read_memory`].
    pub fn write_memory(&mut self, addr: u64, data: &[u8]) -> Result<()> {
        let chunk = (self.packet_size.saturating_sub(32) / 2).max(1);
        for (i, part) in data.chunks(chunk).enumerate() {
            let a = addr + (i * chunk) as u64;
            self.expect_ok(&format!("M{a:x},{:x}:{}", part.len(), hex(part)))?;
        }
        Ok(())
    }

    /// `s`: single-steps and waits for the stop reply.
    pub fn step(&mut self) -> Result<Stop> {
        self.send("s")?;
        self.wait_stop("s")
    }

    /// `c`: continues and waits (up to the timeout) for the stop reply.
    pub fn cont(&mut self) -> Result<Stop> {
        self.send("c")?;
        self.wait_stop("c")
    }

    /// Sends the interrupt byte (0x03) and waits for the stop reply.
    pub fn interrupt(&mut self) -> Result<Stop> {
        self.write_raw("interrupt", &[0x03])?;
        self.wait_stop("interrupt")
    }

    /// Waits for a stop reply, skipping `O` console-output packets.
    pub fn wait_stop(&mut self, op: &str) -> Result<Stop> {
        loop {
            let reply = self.recv(op)?;
            if reply.first() == Some(&b'O') && reply != b"OK" {
                continue;
            }
            return parse_stop(op, &reply);
        }
    }

    /// `Z`: inserts a breakpoint or watchpoint.
    pub fn insert(&mut self, kind: BpKind, addr: u64, len: u64) -> Result<()> {
        self.expect_ok(&format!("Z{},{addr:x},{len:x}", kind as u8))
    }

    /// `z`: removes a breakpoint or watchpoint.
    pub fn remove(&mut self, kind: BpKind, addr: u64, len: u64) -> Result<()> {
        self.expect_ok(&format!("z{},{addr:x},{len:x}", kind as u8))
    }

    /// `k`: kills the target. Stubs may close the connection without replying.
    pub fn kill(&mut self) -> Result<()> {
        let frame = format!("$k#{:02x}", checksum(b"k"));
        self.write_raw("k", frame.as_bytes())
    }
}

/// Undoes binary escaping (`}` then the byte XOR 0x20).
pub fn unescape(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    let mut it = data.iter();
    while let Some(&b) = it.next() {
        if b == b'}' {
            if let Some(&n) = it.next() {
                out.push(n ^ 0x20);
            }
        } else {
            out.push(b);
        }
    }
    out
}

fn short(payload: &str) -> String {
    payload.chars().take(40).collect()
}

/// Parses a stop reply (`S`, `T`, `W`, `X`).
pub fn parse_stop(op: &str, reply: &[u8]) -> Result<Stop> {
    let bad = || RspError::Malformed {
        op: op.to_string(),
        reply: String::from_utf8_lossy(reply).into_owned(),
    };
    let code = |s: &[u8]| -> Result<u8> {
        let t = std::str::from_utf8(s.get(..2).ok_or_else(bad)?).map_err(|_| bad())?;
        u8::from_str_radix(t, 16).map_err(|_| bad())
    };
    match reply.first() {
        Some(b'S') => Ok(Stop::Signal {
            sig: code(&reply[1..])?,
            info: Vec::new(),
        }),
        Some(b'T') => {
            let sig = code(&reply[1..])?;
            let rest = String::from_utf8_lossy(&reply[3..]);
            let info = rest
                .split(';')
                .filter(|s| !s.is_empty())
                .filter_map(|kv| kv.split_once(':'))
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            Ok(Stop::Signal { sig, info })
        }
        Some(b'W') => Ok(Stop::Exited(code(&reply[1..])?)),
        Some(b'X') => Ok(Stop::Terminated(code(&reply[1..])?)),
        _ => Err(bad()),
    }
}
