//! Pieces of RSP packet syntax the checks share: hex numbers and thread ids (GDB manual E.1
//! "thread-id syntax"), and the protocol state gdbstub keeps between packets.
//!
//! Pure functions over byte slices.

use super::frame::hex_digit;

/// A thread selection: `-1` (all), `0` (any), or one thread id (vCPU i is thread i + 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sel {
    All,
    Any,
    One(usize),
}

impl Sel {
    /// As written in a packet.
    pub fn text(self) -> String {
        match self {
            Sel::All => "-1".into(),
            Sel::Any => "0".into(),
            Sel::One(t) => format!("{t:x}"),
        }
    }
}

/// Parses a hex number that fits `bits` bits (leading zeros allowed, at least one digit).
pub fn hex_num(s: &[u8], bits: u32) -> Option<u64> {
    if s.is_empty() {
        return None;
    }
    let mut v: u64 = 0;
    for &c in s {
        let d = hex_digit(c)? as u64;
        if bits < 64 && v >> (bits - 4) != 0 || bits == 64 && v >> 60 != 0 {
            return None;
        }
        v = (v << 4) | d;
    }
    Some(v)
}

/// A 64-bit hex number (addresses, lengths).
pub fn hex_u64(s: &[u8]) -> Option<u64> {
    hex_num(s, 64)
}

/// A hex number that fits a `usize`.
pub fn hex_usize(s: &[u8]) -> Option<usize> {
    hex_num(s, usize::BITS).and_then(|v| usize::try_from(v).ok())
}

/// An even-length string of hex digits (encoded bytes; empty allowed).
pub fn is_hex_bytes(s: &[u8]) -> bool {
    s.len() % 2 == 0 && s.iter().all(|&c| hex_digit(c).is_some())
}

/// One id of a thread-id: `-1`, `0` or a positive hex number (gdbstub's `IdKind` accepts
/// exactly these spellings).
pub fn id(s: &[u8]) -> Option<Sel> {
    match s {
        b"-1" => Some(Sel::All),
        b"0" => Some(Sel::Any),
        _ => match hex_usize(s)? {
            0 => None,
            t => Some(Sel::One(t)),
        },
    }
}

/// A thread-id: `tid`, `pPID.TID` or `pPID` (all threads of PID). Returns (pid, tid).
pub fn thread_id(s: &[u8]) -> Option<(Option<Sel>, Sel)> {
    match s.strip_prefix(b"p") {
        Some(rest) => {
            let mut parts = rest.splitn(2, |&c| c == b'.');
            let pid = id(parts.next()?)?;
            let tid = match parts.next() {
                Some(t) => id(t)?,
                None => Sel::All,
            };
            Some((Some(pid), tid))
        }
        None => Some((None, id(s)?)),
    }
}

/// The protocol state gdbstub keeps between packets, mirrored so that a rebuilt stub can be
/// put back in it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Proto {
    /// `QStartNoAckMode` was accepted: no more `+`/`-`.
    pub no_ack: bool,
    /// The last accepted `qSupported` packet (it sets the multiprocess feature).
    pub supported: Option<Vec<u8>>,
    /// The thread for memory and register packets (`Hg`, and each stop).
    pub mem: Sel,
    /// The thread for `c` and `s` (`Hc`, and each stop).
    pub resume: Sel,
}

impl Default for Proto {
    /// gdbstub's initial state: thread 1 for both (its `SINGLE_THREAD_TID`).
    fn default() -> Proto {
        Proto {
            no_ack: false,
            supported: None,
            mem: Sel::One(1),
            resume: Sel::One(1),
        }
    }
}

impl Proto {
    /// Records what a packet gdbstub accepted changes.
    pub fn note(&mut self, body: &[u8]) {
        if body == b"QStartNoAckMode" {
            self.no_ack = true;
        } else if body.starts_with(b"qSupported") {
            self.supported = Some(body.to_vec());
        } else if let Some(rest) = body.strip_prefix(b"Hg") {
            if let Some((_, sel)) = thread_id(rest) {
                self.mem = sel;
            }
        } else if let Some(rest) = body.strip_prefix(b"Hc") {
            if let Some((_, sel)) = thread_id(rest) {
                self.resume = sel;
            }
        }
    }

    /// A stop on thread `tid` was reported: gdbstub selects it for both.
    pub fn stopped(&mut self, tid: usize) {
        self.mem = Sel::One(tid);
        self.resume = Sel::One(tid);
    }

    /// The packets that put a fresh gdbstub in this state, in order.
    pub fn replay(&self) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        if let Some(s) = &self.supported {
            out.push(s.clone());
        }
        out.push(format!("Hg{}", self.mem.text()).into_bytes());
        out.push(format!("Hc{}", self.resume.text()).into_bytes());
        if self.no_ack {
            out.push(b"QStartNoAckMode".to_vec());
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_numbers_fit_their_width() {
        assert_eq!(hex_u64(b"ffffffffffffffff"), Some(u64::MAX));
        assert_eq!(hex_u64(b"0000000000000000000040000000"), Some(0x4000_0000));
        assert_eq!(hex_u64(b"10000000000000000"), None);
        assert_eq!(hex_u64(b""), None);
        assert_eq!(hex_u64(b"4g"), None);
        assert_eq!(hex_num(b"ff", 8), Some(0xff));
        assert_eq!(hex_num(b"100", 8), None);
        assert!(is_hex_bytes(b"00Ff") && is_hex_bytes(b""));
        assert!(!is_hex_bytes(b"0") && !is_hex_bytes(b"zz"));
    }

    #[test]
    fn thread_ids_follow_the_rsp_spellings() {
        assert_eq!(thread_id(b"-1"), Some((None, Sel::All)));
        assert_eq!(thread_id(b"0"), Some((None, Sel::Any)));
        assert_eq!(thread_id(b"1f"), Some((None, Sel::One(0x1f))));
        assert_eq!(thread_id(b"p1.2"), Some((Some(Sel::One(1)), Sel::One(2))));
        assert_eq!(thread_id(b"p1"), Some((Some(Sel::One(1)), Sel::All)));
        for bad in [
            &b""[..],
            b"00",
            b"-2",
            b"p",
            b"p1.",
            b"x",
            b"ffffffffffffffffff",
        ] {
            assert_eq!(thread_id(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn the_state_is_noted_and_replayed() {
        let mut p = Proto::default();
        p.note(b"qSupported:multiprocess+");
        p.note(b"Hgp1.2");
        p.note(b"Hc-1");
        p.note(b"QStartNoAckMode");
        assert_eq!(
            p.replay(),
            [
                b"qSupported:multiprocess+".to_vec(),
                b"Hg2".to_vec(),
                b"Hc-1".to_vec(),
                b"QStartNoAckMode".to_vec()
            ]
        );
        p.stopped(3);
        assert_eq!((p.mem, p.resume), (Sel::One(3), Sel::One(3)));
    }
}
