//! The packet checks: for each command gdbstub 0.7 would parse, the RSP syntax (GDB manual
//! E.2 "Packets", E.4 "General Query Packets"), so that what reaches gdbstub is something it
//! handles without a fatal error. A malformed packet is answered `E22` (EINVAL); a packet RSP
//! does not define, or one we do not support, is answered empty (E.1: "an empty response
//! for an unsupported packet"); valid packets gdbstub mishandles are rewritten (`vcont`).
//!
//! gdbstub matches commands by prefix (`c` takes any packet beginning with `c`, `qSupported`
//! any beginning with `qSupported`), so names are compared whole here: a query name ends at
//! `:`, `,` or `;` (E.4), and unknown names are answered before gdbstub sees them.
//!
//! Pure: the machine is reached only through [`Machine`].

use super::syntax::{hex_u64, hex_usize, is_hex_bytes, thread_id, Proto, Sel};
use super::vcont;

/// The most bytes an `m` reply carries: its hex form (two characters a byte) fills the packet
/// size advertised in qSupported (gdb asks for at most this much: its remote target's
/// `remote_read_bytes_1` halves the memory read packet size).
pub const MAX_READ: usize = crate::gdb::server::PACKET_SIZE / 2;

/// What the checks need to know about the machine.
pub trait Machine {
    /// Number of threads (vCPUs); thread ids are 1..=threads.
    fn threads(&self) -> usize;
    /// True when vCPU `vcpu` is powered off (it cannot execute, so it cannot step).
    fn powered_off(&mut self, vcpu: usize) -> bool;
}

/// What to do with a packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Hand it to gdbstub as it is.
    Pass,
    /// Hand this body to gdbstub instead.
    Rewrite(Vec<u8>),
    /// Answer `E<errno>` ourselves.
    Error(u8),
    /// Answer with an empty packet ourselves.
    Empty,
}

/// EINVAL: the error malformed packets get.
pub const EINVAL: u8 = 22;

/// The byte length of the `g` register block (`G` must carry exactly this much).
pub fn g_block_len() -> usize {
    use gdbstub::arch::Registers;
    let mut n = 0;
    gdbstub_arch::aarch64::reg::AArch64CoreRegs::default().gdb_serialize(|_| n += 1);
    n
}

/// Decides what happens to `body` (a packet with a correct checksum).
pub fn check(body: &[u8], proto: &Proto, m: &mut dyn Machine) -> Verdict {
    let Some((&first, rest)) = body.split_first() else {
        return Verdict::Empty;
    };
    match first {
        b'q' | b'Q' | b'v' => named(body, m),
        b'?' | b'g' | b'k' => ok(rest.is_empty()),
        b'D' => ok(rest.is_empty() || rest.strip_prefix(b";").is_some_and(pid)),
        b'G' => ok(rest.len() == 2 * g_block_len() && is_hex_bytes(rest)),
        b'H' => set_thread(rest, m.threads()),
        b'T' => match thread_id(rest) {
            Some((_, Sel::One(_))) => Verdict::Pass,
            _ => Verdict::Error(EINVAL),
        },
        b'm' => read(rest),
        // Answered by `mem_packets`, which bounds the reply by the packet size itself.
        b'x' => ok(addr_len(rest).is_some()),
        b'M' => ok(write_hex(rest)),
        b'X' => ok(write_binary(rest)),
        b'p' => ok(hex_usize(rest).is_some()),
        b'P' => ok(rest
            .split_once_at(b'=')
            .is_some_and(|(r, v)| hex_usize(r).is_some() && !v.is_empty() && is_hex_bytes(v))),
        b'c' | b's' if !rest.is_empty() => {
            // Resuming at an address (`c ADDR`): gdbstub would ignore the address; refused
            // rather than done wrong (gdb uses vCont).
            Verdict::Error(EINVAL)
        }
        b'c' => vcont::legacy(b'c', proto.resume, m),
        b's' => vcont::legacy(b's', proto.resume, m),
        b'z' | b'Z' => ok(breakpoint(rest)),
        // Reverse step and continue (`bs`, `bc`; gdb/reverse.rs), no arguments.
        b'b' => ok(rest == b"s" || rest == b"c"),
        _ => Verdict::Empty,
    }
}

/// Packets named by a word: `q`/`Q` queries and `v` packets.
fn named(body: &[u8], m: &mut dyn Machine) -> Verdict {
    let end = body
        .iter()
        .position(|&c| matches!(c, b':' | b',' | b';' | b'?'))
        .unwrap_or(body.len());
    let (name, args) = body.split_at(end);
    match name {
        b"qfThreadInfo" | b"qsThreadInfo" | b"QStartNoAckMode" => ok(args.is_empty()),
        b"qAttached" => ok(args.is_empty() || args.strip_prefix(b":").is_some_and(pid)),
        b"vKill" => ok(args.strip_prefix(b";").is_some_and(pid)),
        b"qSupported" => supported(args),
        b"qRcmd" => ok(args.is_empty() || args.strip_prefix(b",").is_some_and(is_hex_bytes)),
        b"qThreadExtraInfo" => extra_info(args, m.threads()),
        b"qXfer" => xfer(args),
        b"vCont" => match args {
            b"?" => Verdict::Pass,
            _ => vcont::rewrite(args, m),
        },
        _ => Verdict::Empty,
    }
}

/// Pass when well formed, else EINVAL.
fn ok(good: bool) -> Verdict {
    if good {
        Verdict::Pass
    } else {
        Verdict::Error(EINVAL)
    }
}

/// A process id: a positive hex number.
fn pid(s: &[u8]) -> bool {
    hex_usize(s).is_some_and(|p| p != 0)
}

/// `ADDR,LENGTH` (m): the address fits 64 bits, the length a usize.
fn addr_len(s: &[u8]) -> Option<(u64, usize)> {
    let (a, l) = s.split_once_at(b',')?;
    Some((hex_u64(a)?, hex_usize(l)?))
}

/// `ADDR,LENGTH` (m). A length above [`MAX_READ`] is cut down to it: its hex reply would not
/// fit the packet size advertised in qSupported, and a shorter reply than asked is valid RSP
/// (GDB manual E.2, `m`: "The reply may contain fewer addressable memory units than
/// requested"). So no reader, gdbstub or `mem_packets`, ever loops over a huge length. An
/// address written with more than 16 digits (leading zeros) is written shortly too: gdbstub
/// keeps the decoded address in its packet buffer, which would leave less than MAX_READ for
/// the data and split the read in two.
fn read(rest: &[u8]) -> Verdict {
    let Some((addr, len)) = addr_len(rest) else {
        return Verdict::Error(EINVAL);
    };
    let addr_digits = rest.iter().position(|&c| c == b',').unwrap_or(rest.len());
    if len <= MAX_READ && addr_digits <= 16 {
        return Verdict::Pass;
    }
    Verdict::Rewrite(format!("m{addr:x},{:x}", len.min(MAX_READ)).into_bytes())
}

/// `ADDR,LENGTH:HEXDATA` (M).
fn write_hex(s: &[u8]) -> bool {
    s.split_once_at(b':')
        .is_some_and(|(al, data)| addr_len(al).is_some() && is_hex_bytes(data))
}

/// `ADDR,LENGTH:BINARY` (X): the data must not end inside an escape.
fn write_binary(s: &[u8]) -> bool {
    let Some((al, data)) = s.split_once_at(b':') else {
        return false;
    };
    let mut escaped = false;
    for &c in data {
        escaped = !escaped && c == b'}';
    }
    addr_len(al).is_some() && !escaped
}

/// `TYPE,ADDR,KIND` with optional `;...` conditions (z/Z). The type is a byte, the address
/// and kind fit 64 bits.
fn breakpoint(s: &[u8]) -> bool {
    let main = s.split(|&c| c == b';').next().unwrap_or_default();
    let mut parts = main.split(|&c| c == b',');
    let (Some(t), Some(a), Some(k), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    super::syntax::hex_num(t, 8).is_some() && hex_u64(a).is_some() && hex_u64(k).is_some()
}

/// `Hg`/`Hc` with a thread-id: `Hg-1` means nothing (memory of all threads), and a thread
/// that does not exist is refused now rather than at the next `g`.
fn set_thread(rest: &[u8], threads: usize) -> Verdict {
    let (op, tid) = match rest.split_first() {
        Some((&op @ (b'g' | b'c'), tid)) => (op, tid),
        _ => return Verdict::Error(EINVAL),
    };
    match thread_id(tid) {
        Some((_, Sel::Any)) => Verdict::Pass,
        Some((_, Sel::All)) if op == b'c' => Verdict::Rewrite(b"Hc-1".to_vec()),
        Some((_, Sel::One(t))) if (1..=threads).contains(&t) => {
            Verdict::Rewrite(format!("H{}{t:x}", op as char).into_bytes())
        }
        _ => Verdict::Error(EINVAL),
    }
}

/// `qSupported[:features]`: bare `qSupported` is valid RSP but gdbstub refuses it, and an
/// empty feature between `;`s ends its session; both become a feature list it takes
/// (`multiprocess-` is the default it assumes anyway).
fn supported(args: &[u8]) -> Verdict {
    let Some(list) = args
        .strip_prefix(b":")
        .or(args.is_empty().then_some(&b""[..]))
    else {
        return Verdict::Error(EINVAL);
    };
    let items: Vec<&[u8]> = list
        .split(|&c| c == b';')
        .filter(|f| !f.is_empty())
        .collect();
    if !args.is_empty() && items.len() == list.split(|&c| c == b';').count() {
        return Verdict::Pass;
    }
    let mut out = b"qSupported:".to_vec();
    if items.is_empty() {
        out.extend_from_slice(b"multiprocess-");
    }
    out.extend_from_slice(&items.join(&b';'));
    Verdict::Rewrite(out)
}

/// `qThreadExtraInfo,thread-id`: only for a thread that exists.
fn extra_info(args: &[u8], threads: usize) -> Verdict {
    match args.strip_prefix(b",").and_then(thread_id) {
        Some((pid, Sel::One(t)))
            if (1..=threads).contains(&t) && !matches!(pid, Some(Sel::All | Sel::Any)) =>
        {
            Verdict::Rewrite(format!("qThreadExtraInfo,{t:x}").into_bytes())
        }
        _ => Verdict::Error(EINVAL),
    }
}

/// `qXfer:OBJECT:read:ANNEX:OFFSET,LENGTH` for the objects we serve.
fn xfer(args: &[u8]) -> Verdict {
    let mut parts = args.split(|&c| c == b':');
    let (Some(b""), Some(object), Some(op), Some(annex), Some(range), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return Verdict::Empty;
    };
    if op != b"read" || !matches!(object, b"features" | b"memory-map" | b"exec-file") {
        return Verdict::Empty;
    }
    let range_ok = range
        .split_once_at(b',')
        .is_some_and(|(o, l)| hex_u64(o).is_some() && hex_usize(l).is_some());
    // The memory map has no annex (E.4 "qXfer:memory-map:read::"); exec-file's is a pid.
    let annex_ok = match object {
        b"memory-map" => annex.is_empty(),
        b"exec-file" => annex.is_empty() || pid(annex),
        _ => true,
    };
    if range_ok && annex_ok {
        Verdict::Pass
    } else {
        Verdict::Error(EINVAL)
    }
}

/// `split_once` on a byte.
pub(super) trait SplitOnce {
    fn split_once_at(&self, sep: u8) -> Option<(&[u8], &[u8])>;
}

impl SplitOnce for [u8] {
    fn split_once_at(&self, sep: u8) -> Option<(&[u8], &[u8])> {
        let i = self.iter().position(|&c| c == sep)?;
        Some((&self[..i], &self[i + 1..]))
    }
}

#[cfg(test)]
#[path = "check_tests.rs"]
mod tests;
