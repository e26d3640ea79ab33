//! The test RSP client (tests/common/rsp.rs) against QEMU's gdb stub: every packet kind it
//! offers, on a tiny hand-assembled image. Also documents QEMU facts the co-simulation
//! relies on (`g` = 268 bytes of core registers with sve=off; V0 is register 34).

mod common;

use std::time::Duration;

use common::rsp::{BpKind, Stop};

const CODE: u64 = 0x4020_0000;
const DATA: u64 = 0x4060_0000;
/// Register numbers of QEMU's aarch64 target description (gdb-xml/aarch64-core.xml and
/// aarch64-fpu.xml): x0-x30 = 0-30, sp 31, pc 32, cpsr 33, v0-v31 34-65, fpsr 66, fpcr 67.
const PC: u32 = 32;
const V0: u32 = 34;
const FPCR: u32 = 67;

const PROGRAM: [u32; 6] = [
    0xd2a8_0c01, // movz x1, #0x4060, lsl #16
    0xd280_0020, // movz x0, #1
    0x9100_0400, // add x0, x0, #1
    0xf900_0020, // str x0, [x1]
    0x9100_0400, // add x0, x0, #1
    0x1400_0000, // b .
];

fn image() -> std::path::PathBuf {
    let code: Vec<u8> = PROGRAM.iter().flat_map(|w| w.to_le_bytes()).collect();
    let data = [0xaau8; 64];
    let elf = common::elf::build(
        CODE,
        &[
            common::elf::Segment {
                addr: CODE,
                data: &code,
            },
            common::elf::Segment {
                addr: DATA,
                data: &data,
            },
        ],
    );
    let path = std::env::temp_dir().join(format!("kvmdbg-rsp-{}.elf", std::process::id()));
    std::fs::write(&path, elf).expect("writing image");
    path
}

fn u64_at(regs: &[u8], n: usize) -> u64 {
    u64::from_le_bytes(regs[8 * n..8 * n + 8].try_into().unwrap())
}

#[test]
fn rsp_client_drives_qemu() {
    if !common::qemu::available("rsp_client_drives_qemu") {
        return;
    }
    let path = image();
    let mut qemu = common::qemu::Qemu::start_halted(&path).expect("starting QEMU");
    let mut rsp = qemu.connect().expect("connecting to QEMU's gdb stub");
    assert!(rsp.packet_size >= 256, "PacketSize {}", rsp.packet_size);

    assert!(matches!(
        rsp.halt_reason().unwrap(),
        Stop::Signal { sig: 5, .. }
    ));
    let regs = rsp.read_registers().unwrap();
    assert_eq!(regs.len(), 268, "core registers only with sve=off");
    assert_eq!(u64_at(&regs, 32), CODE);
    assert_eq!(
        u32::from_le_bytes(regs[264..268].try_into().unwrap()) & 0xf,
        0b0101
    );
    assert_eq!(rsp.read_register(PC).unwrap(), CODE.to_le_bytes());
    assert_eq!(rsp.read_register(V0).unwrap().len(), 16);
    assert_eq!(rsp.read_register(FPCR).unwrap().len(), 4);

    for i in 1..=4u64 {
        assert!(matches!(rsp.step().unwrap(), Stop::Signal { sig: 5, .. }));
        assert_eq!(rsp.read_register(PC).unwrap(), (CODE + 4 * i).to_le_bytes());
    }
    assert_eq!(rsp.read_memory(DATA, 8).unwrap(), 2u64.to_le_bytes());
    assert_eq!(rsp.read_memory(DATA + 8, 4).unwrap(), [0xaa; 4]);

    rsp.write_memory(DATA + 16, &[1, 2, 3, 4, 5]).unwrap();
    assert_eq!(
        rsp.read_memory(DATA + 15, 7).unwrap(),
        [0xaa, 1, 2, 3, 4, 5, 0xaa]
    );
    rsp.write_register(5, &0x1234_5678_9abc_def0u64.to_le_bytes())
        .unwrap();
    assert_eq!(
        rsp.read_register(5).unwrap(),
        0x1234_5678_9abc_def0u64.to_le_bytes()
    );
    // A multi-packet read is reassembled.
    let big = rsp.read_memory(CODE, 4096).unwrap();
    assert_eq!(&big[..4], &PROGRAM[0].to_le_bytes());

    // Breakpoint at the final `b .`, continue onto it, remove it.
    let at = CODE + 20;
    rsp.insert(BpKind::Software, at, 4).unwrap();
    assert!(matches!(rsp.cont().unwrap(), Stop::Signal { sig: 5, .. }));
    assert_eq!(rsp.read_register(PC).unwrap(), at.to_le_bytes());
    assert_eq!(rsp.read_register(0).unwrap(), 3u64.to_le_bytes());
    rsp.remove(BpKind::Software, at, 4).unwrap();

    // Continue into the endless loop, then interrupt it.
    rsp.send("c").unwrap();
    std::thread::sleep(Duration::from_millis(100));
    assert!(matches!(rsp.interrupt().unwrap(), Stop::Signal { .. }));
    assert_eq!(rsp.read_register(PC).unwrap(), at.to_le_bytes());

    // Errors are reported as such: unmapped memory.
    assert!(rsp.read_memory(0xffff_0000_0000_0000, 4).is_err());
    rsp.kill().unwrap();
    let _ = std::fs::remove_file(&path);
}

/// A scripted fake stub on loopback: for each (expected packet, raw bytes to answer) pair it
/// reads one client packet and writes the answer verbatim.
fn fake_stub(
    script: Vec<(&'static str, &'static [u8])>,
) -> (std::net::SocketAddr, std::thread::JoinHandle<Vec<u8>>) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let h = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut seen = Vec::new();
        for (expect, answer) in script {
            let mut got = Vec::new();
            let mut b = [0u8; 1];
            // Read one "$...#xx" frame, skipping acks.
            while !(got.len() >= 3 && got[got.len() - 3] == b'#') {
                if s.read(&mut b).unwrap_or(0) == 0 {
                    return seen;
                }
                if got.is_empty() && b[0] != b'$' {
                    seen.push(b[0]);
                    continue;
                }
                got.push(b[0]);
            }
            let body = &got[1..got.len() - 3];
            assert_eq!(body, expect.as_bytes());
            s.write_all(answer).unwrap();
        }
        let mut rest = Vec::new();
        let _ = s.read_to_end(&mut rest);
        seen.extend(rest.iter().filter(|c| **c == b'+' || **c == b'-'));
        seen
    });
    (addr, h)
}

#[test]
fn rsp_framing_checksums_rle_and_escapes() {
    assert_eq!(common::rsp::checksum(b"OK"), 0x9a);
    assert_eq!(common::rsp::expand_rle("t", b"0* 1").unwrap(), b"00001");
    assert!(common::rsp::expand_rle("t", b"*x").is_err());
    assert_eq!(common::rsp::unescape(b"a}\x03b"), b"a#b");
    assert_eq!(
        common::rsp::parse_stop("t", b"T05thread:p01.01;").unwrap(),
        Stop::Signal {
            sig: 5,
            info: vec![("thread".into(), "p01.01".into())]
        }
    );
    assert_eq!(
        common::rsp::parse_stop("t", b"W00").unwrap(),
        Stop::Exited(0)
    );
    assert!(common::rsp::parse_stop("t", b"Q").is_err());
}

#[test]
fn rsp_client_resends_on_nak_and_rejects_bad_checksums() {
    let (addr, stub) = fake_stub(vec![
        // First `?` is NAKed, the resend is acked and answered.
        ("?", b"-"),
        ("?", b"+$S05#b8"),
        // `g` answered with run-length encoding: "12" then '2' repeated 4 more times.
        ("g", b"+$12*!#ae"),
        // `m` answered with a corrupted checksum.
        ("m0,1", b"+$00#00"),
        // `p1` answered with an error.
        ("p1", b"+$E01#a6"),
    ]);
    let mut rsp = common::rsp::Rsp::connect(addr, Duration::from_secs(5)).unwrap();
    assert_eq!(
        rsp.halt_reason().unwrap(),
        Stop::Signal {
            sig: 5,
            info: vec![]
        }
    );
    assert_eq!(rsp.read_registers().unwrap(), [0x12, 0x22, 0x22]);
    let e = rsp.read_memory(0, 1).unwrap_err();
    assert!(matches!(e, common::rsp::RspError::Checksum { .. }), "{e}");
    let e = rsp.read_register(1).unwrap_err();
    assert!(
        matches!(e, common::rsp::RspError::Stub { code: 1, .. }),
        "{e}"
    );
    drop(rsp);
    let acks = stub.join().unwrap();
    // The client acked each good reply and NAKed the corrupted one.
    assert_eq!(acks.iter().filter(|c| **c == b'-').count(), 1);
    assert!(acks.iter().filter(|c| **c == b'+').count() >= 3);
}

#[test]
fn rsp_client_times_out_on_a_silent_stub() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let h = std::thread::spawn(move || {
        let conn = listener.accept();
        std::thread::sleep(Duration::from_millis(600));
        drop(conn);
    });
    let mut rsp = common::rsp::Rsp::connect(addr, Duration::from_millis(200)).unwrap();
    let e = rsp.halt_reason().unwrap_err();
    assert!(matches!(e, common::rsp::RspError::Timeout { .. }), "{e}");
    h.join().unwrap();
}
