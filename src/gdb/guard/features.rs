//! The stub's `qSupported` reply as gdb receives it: gdbstub writes its own (its packet size
//! and the features of the target it serves); the packets answered in front of gdbstub
//! (`mem_packets`: `m`, `M`, `X`, `x`) add theirs, and their packet size, here.
//!
//! gdbstub advertises the size of its own packet buffer as `PacketSize`. That buffer only
//! holds the packets gdbstub still parses (registers, breakpoints, queries), so it is kept
//! small: gdbstub 0.7 scans the whole buffer after each packet's checksum for another `#`
//! (gdbstub's `PacketBuf` parser), which for a 128 KiB buffer costs more than the packet. The size gdb
//! must use is the one the memory packets are built for.
//!
//! Pure: bytes in, bytes out.

use super::frame::frame;

/// Features added to gdbstub's list: `binary-upload+` (GDB manual E.4, `qSupported`: the stub
/// answers the `x` packet, binary memory reads).
const ADDED: &[&[u8]] = &[b"binary-upload+"];

/// Rewrites the `qSupported` reply framed in `out[from..]` (`$...#cs`, as gdbstub wrote it):
/// `PacketSize` becomes `packet_size` and [`ADDED`] features are added. Bytes before the
/// packet (an ack) and after it are kept. False, with nothing changed, when no whole packet
/// is there.
pub fn patch_supported_reply(out: &mut Vec<u8>, from: usize, packet_size: usize) -> bool {
    let tail = &out[from.min(out.len())..];
    let Some(start) = tail.iter().position(|&c| c == b'$') else {
        return false;
    };
    let Some(len) = tail[start..].iter().position(|&c| c == b'#') else {
        return false;
    };
    let end = start + len + 3;
    if tail.len() < end {
        return false;
    }
    let body = expand_rle(&tail[start + 1..start + len]);
    let size = format!("PacketSize={packet_size:x}").into_bytes();
    let mut items: Vec<&[u8]> = vec![&size];
    items.extend(
        body.split(|&c| c == b';')
            .filter(|f| !f.is_empty() && !f.starts_with(b"PacketSize=") && !ADDED.contains(f)),
    );
    items.extend(ADDED);
    let rest = tail[end..].to_vec();
    out.truncate(from + start);
    out.extend_from_slice(&frame(&items.join(&b';')));
    out.extend_from_slice(&rest);
    true
}

/// Undoes run-length encoding (GDB manual E.1: `c*n` is `c` and `n - 29` more copies).
fn expand_rle(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        match (s[i], out.last().copied(), s.get(i + 1)) {
            (b'*', Some(prev), Some(&n)) => {
                out.extend(std::iter::repeat_n(prev, usize::from(n.saturating_sub(29))));
                i += 2;
            }
            (c, _, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body_of(out: &[u8]) -> String {
        let s = out.iter().position(|&c| c == b'$').unwrap();
        let e = out.iter().rposition(|&c| c == b'#').unwrap();
        let sum = out[s + 1..e].iter().fold(0u8, |a, &c| a.wrapping_add(c));
        assert_eq!(&out[e + 1..e + 3], format!("{sum:02x}").as_bytes());
        String::from_utf8(out[s + 1..e].to_vec()).unwrap()
    }

    #[test]
    fn the_packet_size_is_replaced_and_binary_upload_added() {
        let mut out = b"+".to_vec();
        out.extend(frame(b"PacketSize=2000;vContSupported+;multiprocess+"));
        assert!(patch_supported_reply(&mut out, 0, 0x20040));
        assert_eq!(out[0], b'+');
        assert_eq!(
            body_of(&out),
            "PacketSize=20040;vContSupported+;multiprocess+;binary-upload+"
        );
    }

    #[test]
    fn run_length_encoded_replies_are_read_and_features_not_doubled() {
        // "PacketSize=2000" with its three zeros written as `0*"` (0 and 34 - 29 = 5 more:
        // "000000"), as an encoder may.
        let mut out = frame(b"PacketSize=20*\";binary-upload+;qXfer:features:read+");
        assert!(patch_supported_reply(&mut out, 0, 0x400));
        assert_eq!(
            body_of(&out),
            "PacketSize=400;qXfer:features:read+;binary-upload+"
        );
    }

    #[test]
    fn nothing_changes_without_a_whole_packet() {
        for partial in [&b""[..], b"+", b"$PacketSize=10", b"$PacketSize=10#0"] {
            let mut out = partial.to_vec();
            assert!(!patch_supported_reply(&mut out, 0, 0x400));
            assert_eq!(out, partial);
        }
        let mut out = frame(b"PacketSize=10");
        assert!(!patch_supported_reply(&mut out, 100, 0x400));
    }
}
