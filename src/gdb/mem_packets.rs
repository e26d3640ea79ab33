//! Memory packets answered without gdbstub: `m` (read, hex), `x` (read, binary), `M` (write,
//! hex) and `X` (write, binary), parsed from a whole packet body and answered with a whole
//! framed reply.
//!
//! gdbstub 0.7 handles a packet one byte at a time (its state machine is moved for every byte
//! received, and its response writer goes through run-length encoding and the connection one
//! character at a time); for 64 KiB packets that is most of the cost of a transfer. Here a
//! packet costs one translation per page (the session's plan), one copy between guest RAM and
//! the packet, table-driven hex, and one pass of run-length encoding with the checksum.
//! Replies follow the same rules as the gdbstub path (`base.rs`): an `m` reply is the readable
//! prefix, at most [`MAX_READ`] bytes, or `E0e` when nothing is readable, never both; a write
//! is done whole or not at all (`E0e`). An `x` reply (GDB manual E.2, `x`; offered by
//! `binary-upload+` in the qSupported reply, `guard::features`) is `b` and the readable prefix
//! with `#`, `$`, `}` and `*` escaped (E.1 "Binary data"), within the packet size, or `E0e`
//! alone; the memory is read in pieces of at most half the room left in the packet, so every
//! byte read fits even if all need escaping and none is read that the reply does not carry.
//!
//! The caller (the event loop, which frames packets before gdbstub sees them) decides which
//! vCPU's view of memory applies (gdb's `Hg` thread). Depends on the session only.

use super::base::MAX_READ;
use super::link::BODY_LIMIT;
use super::{Debugger, EFAULT, EINVAL};

/// Hex digits, lower case (GDB manual E.1: hex digits in either case are accepted).
const HEX: &[u8; 16] = b"0123456789abcdef";

/// The value of each ASCII hex digit; 0xff for every other byte.
const UNHEX: [u8; 256] = {
    let mut t = [0xffu8; 256];
    let mut i = 0;
    while i < 10 {
        t[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        t[b'a' as usize + i] = 10 + i as u8;
        t[b'A' as usize + i] = 10 + i as u8;
        i += 1;
    }
    t
};

impl Debugger {
    /// Answers `body` when it is an `m`, `x`, `M` or `X` packet, appending the framed reply
    /// (`$...#cs`) to `out`, with `vcpu`'s view of memory (`E16` when there is no such vCPU).
    /// Returns false, appending nothing, for every other packet.
    pub fn answer_memory_packet(&mut self, vcpu: usize, body: &[u8], out: &mut Vec<u8>) -> bool {
        let Some((&kind, args)) = body.split_first() else {
            return false;
        };
        if !matches!(kind, b'm' | b'x' | b'M' | b'X') {
            return false;
        }
        let mut reply = Reply::start(out);
        if vcpu >= self.session.vcpu_count() {
            reply.error(EINVAL);
            reply.finish();
            return true;
        }
        self.mem_vcpu = vcpu;
        match kind {
            b'm' => self.read_packet(vcpu, args, &mut reply),
            b'x' => self.read_binary_packet(vcpu, args, &mut reply),
            _ => self.write_packet(vcpu, kind, args, &mut reply),
        }
        reply.finish();
        true
    }

    fn read_packet(&mut self, vcpu: usize, args: &[u8], reply: &mut Reply<'_>) {
        let Some((addr, len)) = addr_len(args) else {
            return reply.error(EINVAL);
        };
        let mut buf = std::mem::take(&mut self.mem_buf);
        buf.resize(len.min(MAX_READ), 0);
        match self.session.read_virt_prefix(vcpu, addr, &mut buf) {
            Ok(n) => reply.hex(&buf[..n]),
            Err(e) => {
                log::debug!("gdb: read {addr:#x}+{len}: {e}");
                reply.error(EFAULT)
            }
        }
        self.mem_buf = buf;
    }

    fn read_binary_packet(&mut self, vcpu: usize, args: &[u8], reply: &mut Reply<'_>) {
        let Some((addr, len)) = addr_len(args) else {
            return reply.error(EINVAL);
        };
        let mut buf = std::mem::take(&mut self.mem_buf);
        // The body's room after the `b`.
        let mut room = BODY_LIMIT - 1;
        let mut done = 0usize;
        let mut error = None;
        loop {
            let want = (len - done).min(room / 2);
            let Some(at) = addr.checked_add(done as u64) else {
                break;
            };
            if want == 0 {
                break;
            }
            buf.resize(want, 0);
            match self.session.read_virt_prefix(vcpu, at, &mut buf) {
                Ok(n) => {
                    room -= reply.binary_at(done == 0, &buf[..n]);
                    done += n;
                    if n < want {
                        break;
                    }
                }
                Err(e) => {
                    error = Some(e);
                    break;
                }
            }
        }
        match error {
            Some(e) if done == 0 => {
                log::debug!("gdb: binary read {addr:#x}+{len}: {e}");
                reply.error(EFAULT)
            }
            // An empty read (`x ADDR,0`) is answered `b` alone.
            _ if done == 0 => reply.text(b"b"),
            _ => {}
        }
        self.mem_buf = buf;
    }

    fn write_packet(&mut self, vcpu: usize, kind: u8, args: &[u8], reply: &mut Reply<'_>) {
        let Some((head, data)) = split_at_byte(args, b':') else {
            return reply.error(EINVAL);
        };
        let Some((addr, len)) = addr_len(head) else {
            return reply.error(EINVAL);
        };
        let mut buf = std::mem::take(&mut self.mem_buf);
        let decoded = if kind == b'M' {
            unhex_into(data, &mut buf)
        } else {
            unescape_into(data, &mut buf)
        };
        if !decoded || buf.len() != len {
            self.mem_buf = buf;
            return reply.error(EINVAL);
        }
        match self.session.write_virt(vcpu, addr, &buf) {
            Ok(()) => reply.text(b"OK"),
            Err(e) => {
                log::debug!("gdb: write {addr:#x}+{len}: {e}");
                reply.error(EFAULT)
            }
        }
        self.mem_buf = buf;
    }
}

/// `ADDR,LENGTH` in hex (GDB manual E.2, `m`), each fitting 64 bits.
fn addr_len(s: &[u8]) -> Option<(u64, usize)> {
    let (a, l) = split_at_byte(s, b',')?;
    Some((hex_u64(a)?, usize::try_from(hex_u64(l)?).ok()?))
}

fn split_at_byte(s: &[u8], sep: u8) -> Option<(&[u8], &[u8])> {
    let i = s.iter().position(|&c| c == sep)?;
    Some((&s[..i], &s[i + 1..]))
}

/// A hex number of 1 to 16 digits.
fn hex_u64(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 16 {
        return None;
    }
    s.iter().try_fold(0u64, |acc, &c| {
        let d = UNHEX[c as usize];
        (d != 0xff).then_some(acc << 4 | d as u64)
    })
}

/// Decodes hex pairs into `out` (cleared first); false on an odd length or a bad digit.
fn unhex_into(s: &[u8], out: &mut Vec<u8>) -> bool {
    out.clear();
    if s.len() % 2 != 0 {
        return false;
    }
    out.reserve(s.len() / 2);
    for pair in s.chunks_exact(2) {
        let (hi, lo) = (UNHEX[pair[0] as usize], UNHEX[pair[1] as usize]);
        if hi == 0xff || lo == 0xff {
            return false;
        }
        out.push(hi << 4 | lo);
    }
    true
}

/// Undoes the binary escape (GDB manual E.1: `}` then the byte xor 0x20) into `out` (cleared
/// first); false when the data ends with a lone `}`.
fn unescape_into(s: &[u8], out: &mut Vec<u8>) -> bool {
    out.clear();
    out.reserve(s.len());
    let mut it = s.iter();
    while let Some(&c) = it.next() {
        if c == b'}' {
            let Some(&n) = it.next() else {
                return false;
            };
            out.push(n ^ 0x20);
        } else {
            out.push(c);
        }
    }
    true
}

/// A reply being framed into the output: `$`, the payload run-length encoded (GDB manual E.1
/// "Run-Length Encoding"), `#` and the checksum of what was sent between them.
struct Reply<'a> {
    out: &'a mut Vec<u8>,
    /// Where the payload starts in `out`.
    start: usize,
}

impl<'a> Reply<'a> {
    fn start(out: &'a mut Vec<u8>) -> Reply<'a> {
        out.push(b'$');
        let start = out.len();
        Reply { out, start }
    }

    fn text(&mut self, s: &[u8]) {
        self.out.extend_from_slice(s);
    }

    fn error(&mut self, code: u8) {
        self.out
            .extend_from_slice(&[b'E', HEX[(code >> 4) as usize], HEX[(code & 15) as usize]]);
    }

    /// Appends `data` as hex, run-length encoded: the hex pairs by table, then runs of four or
    /// more equal characters compressed in place (literal stretches moved, not rebuilt).
    fn hex(&mut self, data: &[u8]) {
        let start = self.out.len();
        self.out.resize(start + 2 * data.len(), 0);
        for (pair, &b) in self.out[start..].chunks_exact_mut(2).zip(data) {
            pair.copy_from_slice(&HEX_PAIRS[b as usize]);
        }
        let end = compress_runs(&mut self.out[start..]);
        self.out.truncate(start + end);
    }

    /// Appends `data` escaped (GDB manual E.1 "Binary data": `#`, `$`, `}` and `*` as `}` and
    /// the byte xor 0x20; `*` too, since a reply may be run-length encoded); `first` puts the
    /// `b` of an `x` reply before it. Returns the characters appended for the data.
    fn binary_at(&mut self, first: bool, data: &[u8]) -> usize {
        if first {
            self.out.push(b'b');
        }
        let before = self.out.len();
        let mut rest = data;
        while let Some(i) = rest.iter().position(|&c| needs_escape(c)) {
            self.out.extend_from_slice(&rest[..i]);
            self.out.extend_from_slice(&[b'}', rest[i] ^ 0x20]);
            rest = &rest[i + 1..];
        }
        self.out.extend_from_slice(rest);
        self.out.len() - before
    }

    fn finish(self) {
        let sum = self.out[self.start..]
            .iter()
            .fold(0u8, |s, &c| s.wrapping_add(c));
        self.out
            .extend_from_slice(&[b'#', HEX[(sum >> 4) as usize], HEX[(sum & 15) as usize]]);
    }
}

fn needs_escape(c: u8) -> bool {
    matches!(c, b'#' | b'$' | b'}' | b'*')
}

/// Each byte's two hex digits.
const HEX_PAIRS: [[u8; 2]; 256] = {
    let mut t = [[0u8; 2]; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = [HEX[i >> 4], HEX[i & 15]];
        i += 1;
    }
    t
};

/// Run-length encodes `buf` in place; returns the encoded length (never more than the input).
/// Only runs of four or more equal characters are encoded ([`encode_run`]); the stretches
/// between them are moved down as they are.
fn compress_runs(buf: &mut [u8]) -> usize {
    let end = buf.len();
    let (mut read, mut write, mut i) = (0, 0, 0);
    while i + 3 < end {
        let c = buf[i];
        if buf[i + 3] != c || buf[i + 1] != c || buf[i + 2] != c {
            i += 1;
            continue;
        }
        buf.copy_within(read..i, write);
        write += i - read;
        let mut j = i + 4;
        while j < end && buf[j] == c {
            j += 1;
        }
        write = encode_run(buf, write, c, j - i);
        read = j;
        i = j;
    }
    buf.copy_within(read..end, write);
    write + end - read
}

/// Writes `n` copies of `c` at `buf[at..]` and returns where it ended: the character, then `*`
/// and a count character (the repeat count plus 29) for the longest repeats that are worth it
/// (4 or more characters in all), printable (at most 97 repeats) and not `#` or `$` (6 or 7
/// repeats: those are sent as 5). Never writes more than `n` characters, so it may write over
/// the run it encodes.
fn encode_run(buf: &mut [u8], mut at: usize, c: u8, mut n: usize) -> usize {
    while n > 0 {
        buf[at] = c;
        at += 1;
        n -= 1;
        let mut rep = n.min(97);
        if rep == 6 || rep == 7 {
            rep = 5;
        }
        if rep >= 3 {
            buf[at] = b'*';
            buf[at + 1] = rep as u8 + 29;
            at += 2;
            n -= rep;
        } else {
            buf[at..at + n].fill(c);
            at += n;
            n = 0;
        }
    }
    at
}

#[cfg(test)]
#[path = "mem_packets_tests.rs"]
mod tests;
