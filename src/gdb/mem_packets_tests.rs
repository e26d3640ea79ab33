//! Memory packets without gdbstub: the encoders and decoders on synthetic input, and whole
//! packets against a model-backend session running the demo firmware.

use super::*;
use crate::backend::BackendKind;
use crate::machine::session::Session;
use crate::machine::{Machine, MachineConfig};
use crate::test_rng::Rng;

const DEMO: &[u8] = include_bytes!("../../firmware/prebuilt/demo.elf");
const RAM: u64 = 0x4000_0000;
const RAM_SIZE: u64 = 16 << 20;

fn debugger() -> Debugger {
    let cfg = MachineConfig {
        backend: BackendKind::Model,
        vcpus: 1,
        ram_size: RAM_SIZE,
        uart_out: Box::new(std::io::sink()),
        trace: None,
        test_hooks: Default::default(),
        icount: false,
        jit: true,
    };
    let session = Session::new(Machine::new(cfg, DEMO).unwrap()).unwrap();
    Debugger::new(session, None).unwrap()
}

/// The payload of a framed reply, checked: `$`, payload, `#`, the right checksum.
fn payload(framed: &[u8]) -> Vec<u8> {
    assert_eq!(framed[0], b'$', "{framed:?}");
    let hash = framed.len() - 3;
    assert_eq!(framed[hash], b'#');
    let body = &framed[1..hash];
    let sum = body.iter().fold(0u8, |s, &c| s.wrapping_add(c));
    assert_eq!(&framed[hash + 1..], format!("{sum:02x}").as_bytes());
    assert!(!body.iter().any(|&c| c == b'#' || c == b'$'), "{body:?}");
    body.to_vec()
}

/// Expands run-length encoding (GDB manual E.1): `c*n` is c and n - 29 more copies.
fn expand(p: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < p.len() {
        if p[i] == b'*' {
            let last = *out.last().unwrap();
            out.extend(std::iter::repeat_n(last, p[i + 1] as usize - 29));
            i += 2;
        } else {
            out.push(p[i]);
            i += 1;
        }
    }
    out
}

fn ask(d: &mut Debugger, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    assert!(d.answer_memory_packet(0, body, &mut out), "{body:?}");
    expand(&payload(&out))
}

fn hex(data: &[u8]) -> String {
    data.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn run_length_encoding_round_trips_and_avoids_framing_characters() {
    let mut rng = Rng(13);
    for len in [0usize, 1, 2, 3, 4, 5, 7, 8, 9, 50, 97, 98, 99, 100, 1000] {
        for fill in [0u8, 0x11, 0xff] {
            let mut data = vec![fill; len];
            // Every length of run near the forbidden counts (6 and 7 repeats).
            let mut out = Vec::new();
            let mut reply = Reply::start(&mut out);
            reply.hex(&data);
            reply.finish();
            assert_eq!(
                expand(&payload(&out)),
                hex(&data).as_bytes(),
                "{len} x {fill}"
            );
            for b in data.iter_mut() {
                if rng.below(4) == 0 {
                    *b = rng.next() as u8;
                }
            }
            let mut out = Vec::new();
            let mut reply = Reply::start(&mut out);
            reply.hex(&data);
            reply.finish();
            assert_eq!(expand(&payload(&out)), hex(&data).as_bytes());
        }
    }
    // Long zero runs are compressed: 98 characters in 3 (the longest run a count encodes).
    let mut out = Vec::new();
    let mut reply = Reply::start(&mut out);
    reply.hex(&[0u8; 4096]);
    reply.finish();
    assert!(out.len() < 8192 / 30, "{}", out.len());
}

#[test]
fn decoders_refuse_what_is_not_hex_or_binary_data() {
    let mut v = Vec::new();
    assert!(unhex_into(b"00aBff", &mut v));
    assert_eq!(v, [0x00, 0xab, 0xff]);
    assert!(!unhex_into(b"0", &mut v));
    assert!(!unhex_into(b"0g", &mut v));
    assert!(unescape_into(b"a}\x03}]", &mut v));
    assert_eq!(v, [b'a', b'#', b'}']);
    assert!(!unescape_into(b"a}", &mut v));
    assert_eq!(addr_len(b"40000000,10"), Some((0x4000_0000, 16)));
    assert_eq!(addr_len(b"ffffffffffffffff,1"), Some((u64::MAX, 1)));
    assert_eq!(addr_len(b"10000000000000000,1"), None);
    assert_eq!(addr_len(b"40,"), None);
    assert_eq!(addr_len(b",4"), None);
    assert_eq!(addr_len(b"4x,4"), None);
}

#[test]
fn reads_and_writes_follow_the_gdbstub_path_rules() {
    let mut d = debugger();
    let mut rng = Rng(7);
    let data: Vec<u8> = (0..3 * 4096 + 5).map(|_| rng.next() as u8).collect();
    let at = RAM + 0x10_0003;
    // Binary write (every escaped character included), then read back in hex.
    let mut x = format!("X{at:x},{:x}:", data.len()).into_bytes();
    let special = [b'#', b'$', b'}', b'*'];
    for (i, &b) in data.iter().enumerate() {
        let b = if i < 4 { special[i] } else { b };
        if special.contains(&b) {
            x.extend_from_slice(&[b'}', b ^ 0x20]);
        } else {
            x.push(b);
        }
    }
    let mut want = data.clone();
    want[..4].copy_from_slice(&special);
    assert_eq!(ask(&mut d, &x), b"OK");
    let got = ask(&mut d, format!("m{at:x},{:x}", want.len()).as_bytes());
    assert_eq!(got, hex(&want).as_bytes());
    // Hex write.
    assert_eq!(ask(&mut d, format!("M{at:x},3:a1b2c3").as_bytes()), b"OK");
    assert_eq!(ask(&mut d, format!("m{at:x},3").as_bytes()), b"a1b2c3");
    // A zero-length X is gdb's probe.
    assert_eq!(ask(&mut d, format!("X{at:x},0:").as_bytes()), b"OK");
    // A huge read: the readable prefix, at most MAX_READ bytes, no error with it.
    let end = RAM + RAM_SIZE;
    let got = ask(&mut d, format!("m{:x},ffffffffffffffff", RAM).as_bytes());
    assert_eq!(got.len(), 2 * MAX_READ);
    let got = ask(&mut d, format!("m{:x},100", end - 0x10).as_bytes());
    assert_eq!(got.len(), 2 * 0x10);
    assert_eq!(ask(&mut d, format!("m{end:x},1").as_bytes()), b"E0e");
    // A write running past RAM changes nothing.
    let before = ask(&mut d, format!("m{:x},10", end - 0x10).as_bytes());
    let w = format!("M{:x},20:{}", end - 0x10, "55".repeat(0x20));
    assert_eq!(ask(&mut d, w.as_bytes()), b"E0e");
    assert_eq!(
        ask(&mut d, format!("m{:x},10", end - 0x10).as_bytes()),
        before
    );
    // Malformed: EINVAL, nothing written.
    for bad in [
        format!("M{at:x},4:a1b2c3"),
        format!("M{at:x},3:a1b2cz"),
        format!("X{at:x},2:a}}"),
        format!("m{at:x}"),
        "mzz,4".to_string(),
        format!("M{at:x},3"),
    ] {
        assert_eq!(ask(&mut d, bad.as_bytes()), b"E16", "{bad}");
    }
    assert_eq!(ask(&mut d, format!("m{at:x},3").as_bytes()), b"a1b2c3");
    // Other packets are not ours.
    let mut out = Vec::new();
    for other in [&b"g"[..], b"", b"qSupported", b"vCont;s"] {
        assert!(!d.answer_memory_packet(0, other, &mut out));
    }
    assert!(out.is_empty());
}

/// The reply to an `x` packet: `Ok(data)` unescaped after its `b`, or `Err(reply)`.
fn ask_binary(d: &mut Debugger, body: &[u8]) -> Result<Vec<u8>, Vec<u8>> {
    let mut out = Vec::new();
    assert!(d.answer_memory_packet(0, body, &mut out), "{body:?}");
    let p = payload(&out);
    assert!(p.len() <= BODY_LIMIT, "{} bytes", p.len());
    assert!(
        !p.contains(&b'*'),
        "a raw `*` would be taken for run-length encoding"
    );
    match p.strip_prefix(b"b") {
        Some(data) => {
            let mut v = Vec::new();
            assert!(unescape_into(data, &mut v));
            Ok(v)
        }
        None => Err(p),
    }
}

#[test]
fn binary_reads_escape_fit_the_packet_and_never_mix_data_and_errors() {
    let mut d = debugger();
    let at = RAM + 0x20_0000;
    // Every byte value, the four special ones in runs too.
    let mut data: Vec<u8> = (0..=255u8).collect();
    data.extend_from_slice(b"####$$$$}}}}****");
    let hexdata = hex(&data);
    assert_eq!(
        ask(
            &mut d,
            format!("M{at:x},{:x}:{hexdata}", data.len()).as_bytes()
        ),
        b"OK"
    );
    assert_eq!(
        ask_binary(&mut d, format!("x{at:x},{:x}", data.len()).as_bytes()),
        Ok(data.clone())
    );
    // `x ADDR,0` is `b` alone.
    assert_eq!(
        ask_binary(&mut d, format!("x{at:x},0").as_bytes()),
        Ok(vec![])
    );
    // A region of specials only: each takes two characters, so half as many bytes fit, and
    // every byte returned is right.
    let stars = RAM + 0x40_0000;
    let n = BODY_LIMIT;
    let w = format!("M{stars:x},{n:x}:{}", "2a".repeat(n));
    assert_eq!(ask(&mut d, w.as_bytes()), b"OK");
    let got = ask_binary(&mut d, format!("x{stars:x},{n:x}").as_bytes()).unwrap();
    assert!(
        got.len() >= (BODY_LIMIT - 1) / 2 - 1 && got.len() < n,
        "{}",
        got.len()
    );
    assert!(got.iter().all(|&b| b == b'*'));
    // A huge read: the readable prefix, as much as fits, no error with it.
    let got = ask_binary(&mut d, format!("x{RAM:x},ffffffffffffffff").as_bytes()).unwrap();
    assert!(got.len() > BODY_LIMIT / 2, "{}", got.len());
    let end = RAM + RAM_SIZE;
    let got = ask_binary(&mut d, format!("x{:x},100", end - 0x10).as_bytes()).unwrap();
    assert_eq!(got.len(), 0x10);
    // Nothing readable: an error alone; malformed: EINVAL.
    assert_eq!(
        ask_binary(&mut d, format!("x{end:x},1").as_bytes()),
        Err(b"E0e".to_vec())
    );
    assert_eq!(
        ask_binary(&mut d, b"xffffffffffffffff,10"),
        Err(b"E0e".to_vec())
    );
    for bad in [format!("x{at:x}"), "xzz,4".into(), format!("x{at:x},")] {
        assert_eq!(
            ask_binary(&mut d, bad.as_bytes()),
            Err(b"E16".to_vec()),
            "{bad}"
        );
    }
}
