//! At least 10,000 random packets (valid, malformed, truncated, random bytes, damaged
//! checksums, packets cut short, noise, interrupts and acks) on one connection, over TCP and
//! over a Unix socket. Every packet must get exactly the answer the session rules promise
//! (`-` for a damaged one, `+` and one reply for the others, the previous reply again for a
//! `-`); afterwards the session is alive on the same connection, the guest is where it was
//! (registers unchanged) and its RAM is byte-identical to that of an untouched kvmdbg,
//! apart from what the valid writes changed.
//!
//! The seed is printed; `KVMDBG_FUZZ_SEED=N` replays a run. Needs no external tool.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::gdb::Stub;
use common::rsp::{checksum, hex, Rsp};

/// RAM base (QEMU virt, docs/user-guide.md) and the size both machines get.
const RAM: u64 = 0x4000_0000;
const RAM_SIZE: u64 = 4 << 20;
/// Where the valid writes go: 64 KiB at 1 MiB into RAM, clear of the demo image.
const SCRATCH: u64 = RAM + (1 << 20);
const SCRATCH_LEN: u64 = 1 << 16;
const PACKETS: usize = 10_000;

/// xorshift64*: reproducible, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn pick<'a, T>(&mut self, v: &'a [T]) -> &'a T {
        &v[self.below(v.len() as u64) as usize]
    }
}

use common::elf::demo;

fn fib() -> u64 {
    common::elf::symbol(&demo(), "fib")
}

/// A valid packet that changes nothing in the guest.
fn read_only(r: &mut Rng) -> String {
    let addr = match r.below(3) {
        0 => RAM + r.below(RAM_SIZE),
        1 => r.next(),
        _ => SCRATCH + r.below(SCRATCH_LEN),
    };
    let kind = r.below(18);
    match kind {
        0 => "?".into(),
        1 => "g".into(),
        2 => format!("p{:x}", r.below(70)),
        3 => format!("m{addr:x},{:x}", r.below(0x200)),
        4 => "qfThreadInfo".into(),
        5 => "qsThreadInfo".into(),
        6 => "qThreadExtraInfo,1".into(),
        7 => format!(
            "qXfer:features:read:target.xml:{:x},{:x}",
            r.below(0x3000),
            1 + r.below(0x800)
        ),
        8 => format!("qXfer:memory-map:read::0,{:x}", 1 + r.below(0x400)),
        9 => "Hg1".into(),
        10 => "Hc1".into(),
        11 => "T1".into(),
        12 => "qSupported:multiprocess+;swbreak+;hwbreak+".into(),
        13 => "vCont?".into(),
        14 => "qAttached".into(),
        15 => format!("qRcmd,{}", hex(b"help")),
        16 => format!("x{addr:x},{:x}", r.below(0x200)),
        _ => r
            .pick(&["qC", "qTStatus", "qOffsets", "vMustReplyEmpty"])
            .to_string(),
    }
}

/// A valid write to the scratch area; applies it to `shadow` (the expected scratch bytes).
fn write(r: &mut Rng, shadow: &mut [u8]) -> Vec<u8> {
    let len = 1 + r.below(64) as usize;
    let off = r.below(SCRATCH_LEN - len as u64) as usize;
    let data: Vec<u8> = (0..len).map(|_| r.next() as u8).collect();
    shadow[off..off + len].copy_from_slice(&data);
    let addr = SCRATCH + off as u64;
    if r.below(2) == 0 {
        format!("M{addr:x},{len:x}:{}", hex(&data)).into_bytes()
    } else {
        let mut p = format!("X{addr:x},{len:x}:").into_bytes();
        for b in data {
            if matches!(b, b'#' | b'$' | b'}' | b'*') {
                p.extend([b'}', b ^ 0x20]);
            } else {
                p.push(b);
            }
        }
        p
    }
}

/// Random bytes that are not a command changing the guest (resume, detach, kill, writes,
/// breakpoints, monitor, reset): those are exercised only in their valid form.
fn random_body(r: &mut Rng) -> Vec<u8> {
    loop {
        let len = r.below(40) as usize;
        let body: Vec<u8> = (0..len)
            .map(|_| r.next() as u8)
            .filter(|b| !matches!(b, b'$' | b'#'))
            .collect();
        let dangerous = b"DkcsCSvMXGPZzQqRr!bBAFiIt";
        if body.first().is_none_or(|c| !dangerous.contains(c)) {
            return body;
        }
    }
}

/// The client's side of the conversation: sends, and checks each answer.
struct Client {
    rsp: Rsp,
    /// The stub abandoned a packet we cut short: its `-` comes before the next answer.
    nak_due: bool,
    last_reply: Option<Vec<u8>>,
}

impl Client {
    fn expect_byte(&mut self, want: u8, what: &str) {
        let got = self.rsp.recv_byte(what).expect(what);
        assert_eq!(got, Some(want), "{what}");
    }

    fn take_nak(&mut self) {
        if std::mem::take(&mut self.nak_due) {
            self.expect_byte(b'-', "nak of the packet cut short");
        }
    }

    /// A packet with a good checksum: `+` and one reply.
    fn good(&mut self, body: &[u8]) -> Vec<u8> {
        let mut f = vec![b'$'];
        f.extend_from_slice(body);
        f.extend(format!("#{:02x}", checksum(body)).into_bytes());
        self.rsp.send_raw(&f).unwrap();
        self.take_nak();
        let what = format!("ack of {:?}", String::from_utf8_lossy(body));
        self.expect_byte(b'+', &what);
        // Monitor output comes first, as `O` packets; the reply is the packet after them.
        let reply = loop {
            let reply = self.rsp.recv("reply").unwrap_or_else(|e| {
                panic!("{:?}: {e}", String::from_utf8_lossy(body));
            });
            if reply.first() != Some(&b'O') || reply == b"OK" {
                break reply;
            }
        };
        self.last_reply = Some(reply.clone());
        reply
    }

    /// A packet with a wrong checksum: `-`, nothing else.
    fn damaged(&mut self, body: &[u8]) {
        let mut f = vec![b'$'];
        f.extend_from_slice(body);
        f.extend(format!("#{:02x}", checksum(body).wrapping_add(1)).into_bytes());
        self.rsp.send_raw(&f).unwrap();
        self.take_nak();
        self.expect_byte(b'-', "nak of a bad checksum");
    }
}

/// One random item; `shadow` follows the valid writes.
fn one(c: &mut Client, r: &mut Rng, shadow: &mut [u8], fib: u64) {
    match r.below(12) {
        0..=2 => {
            let body = read_only(r);
            c.good(body.as_bytes());
        }
        3 => {
            let body = write(r, shadow);
            assert_eq!(c.good(&body), b"OK");
        }
        4 => {
            // A breakpoint or watchpoint set and removed.
            let (z, a, k) = *r.pick(&[(0, fib, 4), (1, fib + 8, 4), (2, SCRATCH, 8)]);
            assert_eq!(c.good(format!("Z{z},{a:x},{k:x}").as_bytes()), b"OK");
            assert_eq!(c.good(format!("z{z},{a:x},{k:x}").as_bytes()), b"OK");
        }
        5 => {
            let body = read_only(r).into_bytes();
            let cut = r.below(body.len() as u64) as usize;
            c.good(&body[..cut]);
        }
        6 => {
            let body = random_body(r);
            c.good(&body);
        }
        7 => {
            let body = if r.below(2) == 0 {
                read_only(r).into_bytes()
            } else {
                write(r, &mut shadow.to_vec())
            };
            c.damaged(&body);
        }
        8 => {
            // Cut short: the next packet's `$` abandons it.
            let mut body = read_only(r).into_bytes();
            body.truncate(r.below(body.len() as u64) as usize);
            let mut f = vec![b'$'];
            f.extend(body);
            c.rsp.send_raw(&f).unwrap();
            c.take_nak();
            c.nak_due = true;
        }
        9 => {
            // Noise between packets, and the interrupt byte while stopped: no answer.
            let noise: Vec<u8> = (0..1 + r.below(8))
                .map(|_| r.next() as u8)
                .filter(|b| !matches!(b, b'$' | b'#' | b'+' | b'-'))
                .collect();
            if !c.nak_due {
                c.rsp.send_raw(&noise).unwrap();
            }
        }
        10 => {
            // `-`: the last reply again.
            if c.nak_due {
                return;
            }
            if let Some(last) = c.last_reply.clone() {
                c.rsp.send_raw(b"-").unwrap();
                assert_eq!(c.rsp.recv("resend").unwrap(), last, "retransmission");
            }
        }
        _ => {
            if !c.nak_due {
                c.rsp.send_raw(b"+").unwrap();
            }
        }
    }
}

fn connect(stub: &Stub) -> Rsp {
    let t = Duration::from_secs(10);
    let mut rsp = match &stub.unix {
        Some(p) => Rsp::connect_unix(p, t),
        None => Rsp::connect(stub.addr(), t),
    }
    .expect("connect");
    rsp.query_supported("multiprocess+;swbreak+;hwbreak+")
        .expect("qSupported");
    rsp
}

fn ram(rsp: &mut Rsp) -> Vec<u8> {
    rsp.read_memory(RAM, RAM_SIZE as usize).expect("read RAM")
}

fn run(stub: Stub) {
    let seed = std::env::var("KVMDBG_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    eprintln!("KVMDBG_FUZZ_SEED={seed}");
    let mut r = Rng(seed);
    let fib = fib();
    let untouched = Stub::start(&demo(), &["--memory", "4M"]);
    let mut reference = connect(&untouched);
    let mut c = Client {
        rsp: connect(&stub),
        nak_due: false,
        last_reply: None,
    };
    let regs = c.good(b"g");
    let mut shadow = vec![0u8; SCRATCH_LEN as usize];
    for i in 0..PACKETS {
        one(&mut c, &mut r, &mut shadow, fib);
        if i % 1000 == 999 && !c.nak_due {
            assert_eq!(c.good(b"g"), regs, "after {i} packets");
        }
    }
    if c.nak_due {
        c.good(b"?");
    }
    assert_eq!(c.good(b"Hg1"), b"OK");
    assert_eq!(c.good(b"g"), regs, "the guest did not move");
    let mut want = ram(&mut reference);
    let at = (SCRATCH - RAM) as usize;
    want[at..at + shadow.len()].copy_from_slice(&shadow);
    let got = ram(&mut c.rsp);
    if let Some(i) = (0..got.len()).find(|&i| got[i] != want[i]) {
        panic!(
            "RAM differs at {:#x}: {:#04x}, untouched + writes {:#04x} (seed {seed})",
            RAM + i as u64,
            got[i],
            want[i]
        );
    }
    c.rsp.kill().unwrap();
    reference.kill().unwrap();
    drop(untouched);
}

#[test]
fn ten_thousand_random_packets_over_tcp() {
    run(Stub::start(&demo(), &["--memory", "4M"]));
}

#[test]
fn ten_thousand_random_packets_over_a_unix_socket() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let path = dir.join(format!("gdb-random-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&path);
    if let Some(stub) = Stub::start_unix(&demo(), &["--memory", "4M"], true, &path) {
        run(stub);
    }
}
