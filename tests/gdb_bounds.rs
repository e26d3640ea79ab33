//! Bounded work per packet, at the packet level (tests/common/rsp.rs client): an `m` reply
//! carries at most the advertised packet size (a shorter reply than asked is valid RSP),
//! never data and an error together; device reads (`monitor mmio-reads on`) are made in
//! aligned 1/2/4/8-byte accesses, give the device's registers and never stale bytes, and stop
//! at the end of the device window.
//!
//! Needs no external tool (the firmware is the committed demo; RAM is the default 128 MiB).

mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::gdb::Stub;
use common::rsp::{hex, Rsp, RspError};

const RAM_BASE: u64 = 0x4000_0000;
/// The end of the default 128 MiB of RAM.
const RAM_END: u64 = RAM_BASE + (128 << 20);
const UART_BASE: u64 = 0x0900_0000;
const UART_SIZE: u64 = 0x1000;

fn demo() -> PathBuf {
    common::repo_root().join("firmware/prebuilt/demo.elf")
}

fn connect(stub: &Stub) -> Rsp {
    let mut rsp = Rsp::connect(stub.addr(), Duration::from_secs(10)).expect("connect");
    rsp.query_supported("multiprocess+;swbreak+;hwbreak+;vContSupported+")
        .expect("qSupported");
    rsp
}

/// The reply to `m{addr:x},{len:x}` as bytes, or the error code.
fn read(rsp: &mut Rsp, addr: u64, len: u64) -> Result<Vec<u8>, u8> {
    match rsp.command(&format!("m{addr:x},{len:x}")) {
        Ok(reply) => Ok(common::rsp::unhex("m", &reply).expect("an m reply is all hex")),
        Err(RspError::Stub { code, .. }) => Err(code),
        Err(e) => panic!("m{addr:x},{len:x}: {e}"),
    }
}

fn monitor(rsp: &mut Rsp, cmd: &str) -> String {
    let reply = rsp
        .command(&format!("qRcmd,{}", hex(cmd.as_bytes())))
        .expect("monitor");
    String::from_utf8_lossy(&reply).into_owned()
}

#[test]
fn huge_reads_answer_one_packet_of_the_prefix_without_an_error() {
    let stub = Stub::start(&demo(), &[]);
    let mut rsp = connect(&stub);
    let max = (rsp.packet_size / 2) as u64;
    // What gdb would see in two ordinary reads.
    let start = rsp
        .read_memory(RAM_BASE, max as usize)
        .expect("ordinary read");
    // 4 GiB asked: one packet's worth answered, at once.
    let t0 = Instant::now();
    let got = read(&mut rsp, RAM_BASE, 0xffff_ffff).expect("a short reply, not an error");
    assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());
    assert_eq!(got.len() as u64, max, "at most PacketSize / 2 bytes");
    assert_eq!(got, start);
    // A read running past the end of RAM gives the RAM part, and no error with it.
    let got = read(&mut rsp, RAM_END - 0x1_0000, 0x3_0000).expect("the RAM part");
    assert_eq!(got.len(), 0x1_0000);
    let got = read(&mut rsp, RAM_END - 0x10, 0x20).expect("the RAM part");
    assert_eq!(got.len(), 0x10);
    // Past the end, nothing is readable: an error alone.
    assert_eq!(read(&mut rsp, RAM_END, 0x3_0000), Err(14));
    assert_eq!(read(&mut rsp, RAM_END, 1), Err(14));
    // The next ordinary packets are answered in full (the huge ones left no state behind).
    assert_eq!(read(&mut rsp, RAM_BASE, 4).unwrap(), start[..4]);
    assert_eq!(read(&mut rsp, RAM_BASE + max, 8).unwrap().len(), 8);
    rsp.kill().unwrap();
}

#[test]
fn device_reads_are_register_accesses_within_the_window() {
    let stub = Stub::start(&demo(), &[]);
    let mut rsp = connect(&stub);
    // Off by default: a device read is an error.
    assert_eq!(read(&mut rsp, UART_BASE + 0xfe0, 4), Err(14));
    monitor(&mut rsp, "mmio-reads on");
    // Leave something in the stub's buffers that a stale read would show.
    let marker = [0xa5u8; 256];
    rsp.write_memory(RAM_BASE + 0x10_0000, &marker).unwrap();
    assert_eq!(read(&mut rsp, RAM_BASE + 0x10_0000, 256).unwrap(), marker);
    // The UART's first 64 bytes in one packet are its registers one by one (PL011 TRM
    // 3.2: 32-bit registers; reading them has no side effect in kvmdbg's model).
    let whole = read(&mut rsp, UART_BASE, 64).expect("64-byte device read");
    let mut regs = Vec::new();
    for off in (0..64).step_by(4) {
        regs.extend(read(&mut rsp, UART_BASE + off, 4).unwrap());
    }
    assert_eq!(whole, regs);
    assert_eq!(
        whole[0x18..0x1c],
        0x90u32.to_le_bytes(),
        "UARTFR: FIFOs empty"
    );
    assert!(!whole.windows(4).any(|w| w == [0xa5; 4]), "{whole:02x?}");
    // An unaligned read is cut into naturally aligned accesses (1 byte at 0x31, 2 at 0x32,
    // 4 at 0x34), each answered as the device answers that size (a PL011 sub-word access
    // gives the low bytes of the register it falls in).
    let odd = read(&mut rsp, UART_BASE + 0x31, 7).unwrap();
    let mut parts = read(&mut rsp, UART_BASE + 0x31, 1).unwrap();
    parts.extend(read(&mut rsp, UART_BASE + 0x32, 2).unwrap());
    parts.extend(read(&mut rsp, UART_BASE + 0x34, 4).unwrap());
    assert_eq!(odd, parts);
    assert_eq!(odd[1..3], regs[0x30..0x32], "UARTCR's low half");
    // The peripheral ID registers (PL011 TRM 3.3.14-3.3.17: 0x11 0x10 0x14 0x00, then the
    // PrimeCell ID 0x0d 0xf0 0x05 0xb1), read past the end of the window: the window's part.
    let ids = read(&mut rsp, UART_BASE + 0xfe0, 64).expect("the window's part");
    assert_eq!(ids.len(), 32);
    let want: Vec<u8> = [0x11u32, 0x10, 0x14, 0x00, 0x0d, 0xf0, 0x05, 0xb1]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    assert_eq!(ids, want);
    // Nothing is there past the window: an error.
    assert_eq!(read(&mut rsp, UART_BASE + UART_SIZE, 4), Err(14));
    // A write that runs past the window changes nothing and fails.
    let r = rsp.command(&format!("M{:x},10:{}", UART_BASE + 0xff8, "00".repeat(16)));
    assert!(matches!(r, Err(RspError::Stub { code: 14, .. })), "{r:?}");
    rsp.kill().unwrap();
}

/// The data of the reply to `x{addr:x},{len:x}` (after its `b`, unescaped), or the error code;
/// the reply must fit the advertised packet size.
fn read_binary(rsp: &mut Rsp, addr: u64, len: u64) -> Result<Vec<u8>, u8> {
    match rsp.command(&format!("x{addr:x},{len:x}")) {
        Ok(reply) => {
            assert_eq!(
                reply.first(),
                Some(&b'b'),
                "{:?}",
                &reply[..reply.len().min(8)]
            );
            assert!(reply.len() + 4 <= rsp.packet_size, "{} bytes", reply.len());
            Ok(common::rsp::unescape(&reply[1..]))
        }
        Err(RspError::Stub { code, .. }) => Err(code),
        Err(e) => panic!("x{addr:x},{len:x}: {e}"),
    }
}

#[test]
fn binary_reads_are_offered_bounded_and_equal_hex_reads() {
    let stub = Stub::start(&demo(), &[]);
    let mut rsp = Rsp::connect(stub.addr(), Duration::from_secs(10)).expect("connect");
    let features = rsp
        .query_supported("multiprocess+;swbreak+;hwbreak+;vContSupported+")
        .expect("qSupported");
    assert!(
        features.iter().any(|f| f == "binary-upload+"),
        "{features:?}"
    );
    // Every byte value, the ones the reply must escape in runs too.
    let at = RAM_BASE + 0x10_0000;
    let mut data: Vec<u8> = (0..=255u8).cycle().take(4096).collect();
    data.extend_from_slice(b"##$$}}****");
    rsp.write_memory(at, &data).expect("write");
    assert_eq!(
        read_binary(&mut rsp, at, data.len() as u64),
        Ok(data.clone())
    );
    assert_eq!(read(&mut rsp, at, data.len() as u64), Ok(data));
    // `x ADDR,0` is `b` alone.
    assert_eq!(read_binary(&mut rsp, at, 0), Ok(vec![]));
    // 4 GiB asked: one packet's worth, at once, the same bytes a hex read gives.
    let t0 = Instant::now();
    let got = read_binary(&mut rsp, RAM_BASE, 0xffff_ffff).expect("a short reply");
    assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());
    assert!(got.len() >= rsp.packet_size / 2 - 8, "{}", got.len());
    let hex = read(&mut rsp, RAM_BASE, got.len() as u64).expect("hex read");
    assert_eq!(got[..hex.len()], hex[..]);
    // The RAM part of a read running past its end; past it, an error alone.
    let got = read_binary(&mut rsp, RAM_END - 0x10, 0x20).expect("the RAM part");
    assert_eq!(got.len(), 0x10);
    assert_eq!(read_binary(&mut rsp, RAM_END, 1), Err(14));
    assert_eq!(read_binary(&mut rsp, u64::MAX, 0x10), Err(14));
    // Malformed: EINVAL, and the session goes on.
    assert!(matches!(
        rsp.command("x40000000"),
        Err(RspError::Stub { code: 22, .. })
    ));
    assert_eq!(read_binary(&mut rsp, at, 2).unwrap().len(), 2);
    rsp.kill().unwrap();
}
