//! The gdb stub at the packet level (tests/common/rsp.rs client): Ctrl-C during an endless
//! loop, and malformed or hostile packets (bad checksums, bad hex, lengths near 2^64,
//! addresses at the top of the address space, unknown packets, a disconnect mid-packet): each
//! gets an error reply, an empty reply or a clean disconnect; kvmdbg never panics, keeps
//! serving, and guest memory stays intact.
//!
//! Needs no external tool (the firmware is the committed demo).

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::gdb::Stub;
use common::rsp::{Rsp, RspError, Stop};

fn demo() -> PathBuf {
    common::repo_root().join("firmware/prebuilt/demo.elf")
}

/// Address of `name` and the ELF's bytes at [addr, addr + len).
fn elf_bytes(name: &str, len: usize) -> (u64, Vec<u8>) {
    use object::{Object, ObjectSection, ObjectSymbol};
    let bytes = std::fs::read(demo()).unwrap();
    let file = object::File::parse(&*bytes).unwrap();
    let addr = file
        .symbols()
        .find(|s| s.name() == Ok(name))
        .unwrap_or_else(|| panic!("no symbol {name}"))
        .address();
    let text = file.section_by_name(".text").expect(".text");
    let data = text.data().unwrap();
    let off = (addr - text.address()) as usize;
    (addr, data[off..off + len].to_vec())
}

fn connect(stub: &Stub) -> Rsp {
    let mut rsp = Rsp::connect(stub.addr(), Duration::from_secs(10)).expect("connect");
    rsp.query_supported("multiprocess+;swbreak+;hwbreak+;vContSupported+")
        .expect("qSupported");
    rsp
}

/// gdb's register number for the PC (gdb/features/aarch64-core.xml).
const PC_REGNUM: u32 = 32;

fn pc(rsp: &mut Rsp) -> u64 {
    let b = rsp.read_register(PC_REGNUM).expect("read pc");
    u64::from_le_bytes(b[..8].try_into().unwrap())
}

#[test]
fn ctrl_c_stops_an_endless_loop_with_sigint() {
    let stub = Stub::start(&demo(), &[]);
    let mut rsp = connect(&stub);
    let (fib, _) = elf_bytes("fib", 4);
    // `b .` (Arm ARM C6.2.26 B, imm26 = 0) at fib: the guest spins there.
    rsp.write_memory(fib, &0x1400_0000u32.to_le_bytes())
        .expect("patch fib");
    rsp.send("vCont;c").expect("continue");
    std::thread::sleep(Duration::from_millis(300));
    let stop = rsp.interrupt().expect("stop after Ctrl-C");
    match stop {
        Stop::Signal { sig, info } => {
            assert_eq!(sig, 2, "SIGINT");
            assert!(info.iter().any(|(k, _)| k == "thread"), "{info:?}");
        }
        other => panic!("expected a SIGINT stop, got {other:?}"),
    }
    assert_eq!(pc(&mut rsp), fib, "stopped in the loop");
    // Stepping the loop stays in it; a second Ctrl-C works too.
    assert!(matches!(rsp.step().unwrap(), Stop::Signal { sig: 5, .. }));
    assert_eq!(pc(&mut rsp), fib);
    rsp.send("c").expect("continue again");
    std::thread::sleep(Duration::from_millis(100));
    assert!(matches!(
        rsp.interrupt().unwrap(),
        Stop::Signal { sig: 2, .. }
    ));
    rsp.kill().unwrap();
    let (status, _) = stub.wait_exit(Duration::from_secs(20));
    assert!(
        status.is_some_and(|s| s.success()),
        "kvmdbg exits after kill"
    );
}

/// Sends `payload` and returns the reply text ("E.." errors and "" included); "closed" when
/// the stub dropped the connection (then `rsp` is a new connection).
fn ask(stub: &Stub, rsp: &mut Rsp, payload: &str) -> String {
    match rsp.command(payload) {
        Ok(r) => String::from_utf8_lossy(&r).into_owned(),
        Err(RspError::Stub { code, .. }) => format!("E{code:02x}"),
        Err(RspError::Unsupported { .. }) => String::new(),
        Err(RspError::Closed { .. }) => {
            *rsp = connect(stub);
            "closed".into()
        }
        Err(e) => panic!("{payload:?}: {e}"),
    }
}

/// An error reply, or a clean disconnect.
fn is_error(reply: &str) -> bool {
    (reply.starts_with('E') && reply.len() == 3) || reply == "closed"
}

#[test]
fn hostile_packets_get_errors_and_leave_memory_intact() {
    let mut stub = Stub::start(&demo(), &[]);
    let (fib, original) = elf_bytes("fib", 64);
    let mut rsp = connect(&stub);
    // The guest spins at fib (`b .`, Arm ARM C6.2.26, imm26 = 0) whenever a dropped connection
    // lets it run, so kvmdbg is still there for the next client.
    let spin = 0x1400_0000u32.to_le_bytes();
    rsp.write_memory(fib, &spin).expect("patch fib");
    // Memory errors answer E14 (EFAULT).
    for bad in [
        "mffffffffffffffff,ffffffffffffffff",
        "mfffffffffffffffc,8",
        "m0,10",
        "m20000000,4",
    ] {
        let r = ask(&stub, &mut rsp, bad);
        assert!(is_error(&r), "{bad} -> {r:?}");
    }
    assert_eq!(ask(&stub, &mut rsp, "mfffffffffffffffc,8"), "E0e");
    // Writes that cannot be done change nothing. (gdbstub takes an M/X write's length from its
    // data, so a length that disagrees with the data is not an error by itself.)
    for bad in [
        "Mfffffffffffffffc,8:0011223344556677",
        "M0,4:00000000",
        "M0,ffffffffffffffff:00",
        &format!("M{:x},4:zz", fib),
    ] {
        let r = ask(&stub, &mut rsp, bad);
        assert!(is_error(&r), "{bad} -> {r:?}");
    }
    // Bad hex, bad breakpoints, bad registers, unknown packets.
    for (bad, want_error) in [
        ("m4000zz00,4", true),
        ("mzz", true),
        ("Z0,fffffffffffffffc,4", true),
        ("Z0,0,4", true),
        (&format!("Z0,{:x},2", fib + 1), true),
        ("Z2,0,0", true),
        ("Z2,ffffffffffffffff,ffffffffffffffff", true),
        ("Z9,0,4", false),
        ("qFooBarBaz", false),
        ("vMustReplyEmpty", false),
        ("pffffffff", false),
    ] {
        let r = ask(&stub, &mut rsp, bad);
        if want_error {
            assert!(is_error(&r), "{bad} -> {r:?}");
        } else {
            assert!(r.is_empty() || is_error(&r), "{bad} -> {r:?}");
        }
    }
    // Many watchpoints: the slots run out with an error, not a silent success.
    let mut errors = 0;
    for i in 0..32u64 {
        let r = ask(&stub, &mut rsp, &format!("Z2,{:x},8", 0x4000_0000 + 8 * i));
        if is_error(&r) {
            errors += 1;
        }
    }
    assert!(errors > 0, "hardware watchpoint slots are finite");
    // A frame with a bad checksum is NAKed (or the connection closed), never acted on.
    let frame = format!("$M{fib:x},4:00000000#00");
    rsp.send_raw(frame.as_bytes()).unwrap();
    let ack = rsp.recv_byte("bad checksum").unwrap();
    assert!(matches!(ack, Some(b'-') | None), "{ack:?}");
    drop(rsp);
    // A disconnect in the middle of a packet.
    let mut rsp = connect(&stub);
    rsp.send_raw(format!("$M{fib:x},4:0000").as_bytes())
        .unwrap();
    drop(rsp);
    std::thread::sleep(Duration::from_millis(200));
    assert!(stub.running(), "kvmdbg survives:\n{}", stub.stderr());
    // A new client finds memory as the ELF has it and the watchpoints gone.
    let mut rsp = connect(&stub);
    let mem = rsp.read_memory(fib, 64).expect("read fib");
    assert_eq!(mem[..4], spin, "our own patch");
    assert_eq!(mem[4..], original[4..], "guest memory intact");
    rsp.kill().unwrap();
    let err = stub.stderr();
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn large_binary_writes_and_reads_round_trip() {
    let stub = Stub::start(&demo(), &[]);
    let mut rsp = connect(&stub);
    assert!(
        rsp.packet_size >= 64 * 1024,
        "PacketSize {:#x}",
        rsp.packet_size
    );
    // 64 KiB at the end of RAM's first MiB, with every byte value (escapes included).
    let base = 0x4010_0000u64;
    let data: Vec<u8> = (0..65536u32).map(|i| (i * 7 + i / 256) as u8).collect();
    let mut payload = format!("X{base:x},{:x}:", data.len()).into_bytes();
    for &b in &data {
        if matches!(b, b'#' | b'$' | b'}' | b'*') {
            payload.extend_from_slice(&[b'}', b ^ 0x20]);
        } else {
            payload.push(b);
        }
    }
    let mut frame = vec![b'$'];
    frame.extend_from_slice(&payload);
    frame.extend_from_slice(format!("#{:02x}", common::rsp::checksum(&payload)).as_bytes());
    rsp.send_raw(&frame).unwrap();
    assert_eq!(rsp.recv_byte("ack").unwrap(), Some(b'+'));
    assert_eq!(rsp.recv("X").unwrap(), b"OK");
    let back = rsp.read_memory(base, data.len()).expect("read back");
    assert_eq!(back, data);
    rsp.kill().unwrap();
    drop(stub);
}
