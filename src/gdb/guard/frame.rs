//! Framing of the bytes gdb sends (GDB manual E.1 "Overview"): packets `$body#cs`, the
//! acknowledgments `+` and `-`, and the interrupt byte 0x03 (E.12 "Interrupts").
//!
//! A body never holds a raw `#` or `$` (binary data escapes them with `}`, E.1 "Binary
//! data"), so `#` ends a body and a `$` inside one means the packet was cut short: that packet
//! is abandoned and a new one begins. Bytes outside packets other than `+`, `-` and 0x03 are
//! noise and ignored. A body longer than the limit is read to its end (to stay in step with
//! the stream) but not kept.
//!
//! Pure: no I/O, no gdbstub; `guard` feeds it bytes.

/// What a byte completed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Item {
    /// A packet with a correct checksum; its body is [`Framer::body`].
    Packet,
    /// A packet whose checksum is wrong or not two hex digits.
    BadChecksum,
    /// A packet with a correct checksum but a body longer than the limit (not kept).
    Overlong,
    /// A packet cut short by the `$` of the next one.
    Abandoned,
    /// 0x03 outside a packet.
    Interrupt,
    /// `+` outside a packet.
    Ack,
    /// `-` outside a packet.
    Nack,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Between,
    Body,
    /// First checksum digit expected.
    Sum1,
    /// Second checksum digit expected; holds the first.
    Sum2(u8),
}

/// The interrupt byte (GDB manual E.12 "Interrupts").
pub const INTERRUPT: u8 = 0x03;

/// Splits a byte stream into [`Item`]s.
pub struct Framer {
    state: State,
    body: Vec<u8>,
    sum: u8,
    overlong: bool,
    limit: usize,
}

impl Framer {
    /// A framer keeping bodies of at most `limit` bytes.
    pub fn new(limit: usize) -> Framer {
        Framer {
            state: State::Between,
            body: Vec::new(),
            sum: 0,
            overlong: false,
            limit,
        }
    }

    /// The body of the last [`Item::Packet`].
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// Takes one byte; returns the item it completes, if any.
    pub fn push(&mut self, b: u8) -> Option<Item> {
        match self.state {
            State::Between => match b {
                b'$' => {
                    self.begin();
                    None
                }
                b'+' => Some(Item::Ack),
                b'-' => Some(Item::Nack),
                INTERRUPT => Some(Item::Interrupt),
                _ => None,
            },
            _ if b == b'$' => {
                self.begin();
                Some(Item::Abandoned)
            }
            State::Body => {
                if b == b'#' {
                    self.state = State::Sum1;
                } else {
                    self.sum = self.sum.wrapping_add(b);
                    if self.body.len() < self.limit {
                        self.body.push(b);
                    } else {
                        self.overlong = true;
                    }
                }
                None
            }
            State::Sum1 => {
                self.state = State::Sum2(b);
                None
            }
            State::Sum2(first) => {
                self.state = State::Between;
                let given = hex_digit(first)
                    .zip(hex_digit(b))
                    .map(|(hi, lo)| (hi << 4) | lo);
                Some(match given {
                    Some(cs) if cs == self.sum && self.overlong => Item::Overlong,
                    Some(cs) if cs == self.sum => Item::Packet,
                    _ => Item::BadChecksum,
                })
            }
        }
    }

    fn begin(&mut self) {
        self.state = State::Body;
        self.body.clear();
        self.sum = 0;
        self.overlong = false;
    }
}

/// The value of one hex digit (either case).
pub fn hex_digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// The RSP checksum of a body: the sum of its bytes modulo 256 (GDB manual E.1).
pub fn checksum(body: &[u8]) -> u8 {
    body.iter().fold(0u8, |a, b| a.wrapping_add(*b))
}

/// `$body#cs`.
pub fn frame(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 4);
    out.push(b'$');
    out.extend_from_slice(body);
    out.extend_from_slice(format!("#{:02x}", checksum(body)).as_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items(limit: usize, bytes: &[u8]) -> Vec<(Item, Vec<u8>)> {
        let mut f = Framer::new(limit);
        bytes
            .iter()
            .filter_map(|&b| f.push(b).map(|i| (i, f.body().to_vec())))
            .collect()
    }

    #[test]
    fn frames_packets_acks_and_interrupts() {
        let mut input = b"+".to_vec();
        input.extend(frame(b"qSupported:multiprocess+"));
        input.extend(b"-\x03noise");
        input.extend(frame(b"?"));
        let got = items(64, &input);
        let kinds: Vec<Item> = got.iter().map(|(i, _)| *i).collect();
        assert_eq!(
            kinds,
            [
                Item::Ack,
                Item::Packet,
                Item::Nack,
                Item::Interrupt,
                Item::Packet
            ]
        );
        assert_eq!(got[1].1, b"qSupported:multiprocess+");
        assert_eq!(got[4].1, b"?");
    }

    #[test]
    fn a_wrong_or_malformed_checksum_is_reported() {
        assert_eq!(items(64, b"$?#00")[0].0, Item::BadChecksum);
        assert_eq!(items(64, b"$?#zz")[0].0, Item::BadChecksum);
        // Upper-case digits are digits too.
        assert_eq!(items(64, b"$X#58")[0].0, Item::Packet);
        assert_eq!(frame(b"X"), b"$X#58");
    }

    #[test]
    fn a_dollar_inside_a_packet_abandons_it_and_starts_the_next() {
        let mut input = b"$m4000".to_vec();
        input.extend(frame(b"g"));
        let got = items(64, &input);
        assert_eq!(got[0].0, Item::Abandoned);
        assert_eq!(got[1], (Item::Packet, b"g".to_vec()));
        // Also while the checksum is being read.
        let mut input = b"$g#6".to_vec();
        input.extend(frame(b"g"));
        let got = items(64, &input);
        assert_eq!(got[0].0, Item::Abandoned);
        assert_eq!(got[1].0, Item::Packet);
    }

    #[test]
    fn binary_data_may_hold_the_interrupt_byte() {
        let body = b"X40000000,2:\x03}]";
        let got = items(64, &frame(body));
        assert_eq!(got, [(Item::Packet, body.to_vec())]);
    }

    #[test]
    fn an_overlong_body_is_read_to_its_end_but_not_kept() {
        let body = vec![b'a'; 100];
        let mut input = frame(&body);
        input.extend(frame(b"?"));
        let got = items(10, &input);
        assert_eq!(got[0].0, Item::Overlong);
        assert_eq!(got[1], (Item::Packet, b"?".to_vec()));
        let mut bad = frame(&body);
        let n = bad.len();
        bad[n - 1] = b'x';
        assert_eq!(items(10, &bad)[0].0, Item::BadChecksum);
    }
}
