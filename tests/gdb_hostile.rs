//! The session rules of docs/user-guide.md ("Session rules"), each proved with raw packets
//! over TCP and over a Unix socket: a bad checksum gets `-` and the packet is read again; a
//! `-` from gdb gets the last reply again; malformed or unknown packets get an error or empty
//! reply and the session goes on; a connection that closes before any valid packet is not an
//! attach; a dropped connection leaves the guest stopped with every breakpoint and watchpoint
//! removed; `D` resumes it. Also: `qThreadExtraInfo` of a thread that does not exist, a step
//! of a powered-off vCPU, a PSTATE with an EL the vCPU cannot have, and the signals that end
//! kvmdbg.
//!
//! Needs no external tool (the firmware is the committed demo).

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::gdb::Stub;
use common::rsp::{checksum, hex, Rsp, RspError, Stop};

use common::elf::demo;

fn sym(name: &str) -> u64 {
    common::elf::symbol(&demo(), name)
}

fn entry() -> u64 {
    use object::Object;
    let bytes = std::fs::read(demo()).unwrap();
    object::File::parse(&*bytes).unwrap().entry()
}

/// How a test reaches kvmdbg.
#[derive(Clone, Copy, Debug)]
enum Via {
    Tcp,
    Unix,
}

/// A socket path of our own under the target's temporary directory.
fn sock_path(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("gdb-hostile");
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(format!("{name}-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&p);
    p
}

/// Starts kvmdbg (`-S`, plus `extra`) reached `via`; None when that transport is not
/// available (Unix sockets in remote mode).
fn start(via: Via, name: &str, extra: &[&str]) -> Option<Stub> {
    match via {
        Via::Tcp => Some(Stub::start(&demo(), extra)),
        Via::Unix => Stub::start_unix(&demo(), extra, true, &sock_path(name)),
    }
}

fn raw_connect(stub: &Stub) -> Rsp {
    let t = Duration::from_secs(10);
    match &stub.unix {
        Some(path) => Rsp::connect_unix(path, t),
        None => Rsp::connect(stub.addr(), t),
    }
    .expect("connect")
}

fn connect(stub: &Stub) -> Rsp {
    let mut rsp = raw_connect(stub);
    rsp.query_supported("multiprocess+;swbreak+;hwbreak+;vContSupported+")
        .expect("qSupported");
    rsp
}

/// `$body#cs`.
fn frame(body: &str) -> Vec<u8> {
    format!("${body}#{:02x}", checksum(body.as_bytes())).into_bytes()
}

/// Sends `body` and returns the reply text (errors and empty replies included).
fn ask(rsp: &mut Rsp, body: &str) -> String {
    match rsp.command(body) {
        Ok(r) => String::from_utf8_lossy(&r).into_owned(),
        Err(RspError::Stub { code, .. }) => format!("E{code:02x}"),
        Err(RspError::Unsupported { .. }) => String::new(),
        Err(e) => panic!("{body:?}: {e}"),
    }
}

/// gdb's register numbers (gdb/features/aarch64-core.xml): pc and cpsr.
const PC: u32 = 32;
const CPSR: u32 = 33;

fn reg64(rsp: &mut Rsp, n: u32) -> u64 {
    let b = rsp.read_register(n).expect("read register");
    let mut v = [0u8; 8];
    v[..b.len().min(8)].copy_from_slice(&b[..b.len().min(8)]);
    u64::from_le_bytes(v)
}

/// The session is alive and the guest stopped where it was: `?` answers a stop on the
/// same connection, and the PC is `pc`.
fn assert_alive_at(rsp: &mut Rsp, pc: u64) {
    let stop = rsp.halt_reason().expect("? after hostile input");
    assert!(matches!(stop, Stop::Signal { .. }), "{stop:?}");
    assert_eq!(reg64(rsp, PC), pc, "the guest did not move");
}

fn both(test: fn(Via)) {
    test(Via::Tcp);
    test(Via::Unix);
}

#[test]
fn a_bad_checksum_is_nakked_and_the_packet_read_again() {
    both(|via| {
        let Some(stub) = start(via, "nak", &[]) else {
            return;
        };
        let mut rsp = connect(&stub);
        // `$?#00`: wrong checksum. `-`, nothing acted on, nothing answered.
        rsp.send_raw(b"$?#00").unwrap();
        assert_eq!(rsp.recv_byte("nak").unwrap(), Some(b'-'), "{via:?}");
        // Read again, correctly: `+` and the answer.
        rsp.send_raw(&frame("?")).unwrap();
        assert_eq!(rsp.recv_byte("ack").unwrap(), Some(b'+'));
        let first = rsp.recv("?").unwrap();
        assert!(first.starts_with(b"T05"), "{first:?}");
        // A `-` from us: the same reply again.
        rsp.send_raw(b"-").unwrap();
        assert_eq!(rsp.recv("resend").unwrap(), first, "{via:?}");
        // A packet cut short by the next `$`: `-` for it, then the next one is served.
        rsp.send_raw(b"$m4000").unwrap();
        rsp.send_raw(&frame("g")).unwrap();
        assert_eq!(rsp.recv_byte("nak").unwrap(), Some(b'-'));
        assert_eq!(rsp.recv_byte("ack").unwrap(), Some(b'+'));
        assert!(!rsp.recv("g").unwrap().is_empty());
        // A checksum that is not hex.
        rsp.send_raw(b"$g#zz").unwrap();
        assert_eq!(rsp.recv_byte("nak").unwrap(), Some(b'-'));
        assert_alive_at(&mut rsp, entry());
        rsp.kill().unwrap();
    });
}

#[test]
fn malformed_and_unknown_packets_get_replies_and_the_session_goes_on() {
    both(|via| {
        let Some(mut stub) = start(via, "malformed", &[]) else {
            return;
        };
        let mut rsp = connect(&stub);
        let fib = sym("fib");
        // The packets of the issue that ended the session, and their relatives.
        let error = [
            "m4000",
            "m",
            "p",
            "pzz",
            "Z0,4000",
            "Z0",
            "T",
            "T-1",
            "Hg-1",
            "Hg5",
            "vCont;c:5",
            "vCont;s:9;c",
            "vCont",
            "vCont;t",
            "vCont;x",
            "qSupported;x",
            "P20",
            "P20=00",
            "G00",
            "Dx",
            "kill",
            "qThreadExtraInfo,5",
            "c4000",
            "qXfer:features:read:target.xml:0",
        ];
        for bad in error {
            let r = ask(&mut rsp, bad);
            assert!(r.starts_with('E') && r.len() == 3, "{via:?} {bad} -> {r:?}");
        }
        let empty = [
            "qFooBarBaz",
            "vMustReplyEmpty",
            "qSupportedX",
            "qAttachedX",
            "vKillX",
            "C05",
            "!",
            "qXfer:auxv:read::0,10",
            "",
        ];
        for unknown in empty {
            assert_eq!(ask(&mut rsp, unknown), "", "{via:?} {unknown:?}");
        }
        // Valid RSP that gdbstub refuses, served: bare qSupported, empty features.
        assert!(ask(&mut rsp, "qSupported").contains("PacketSize="));
        assert!(ask(&mut rsp, "qSupported:;;").contains("PacketSize="));
        assert_alive_at(&mut rsp, entry());
        // `vCont;s` without a thread is "step all": one step, a stop reply.
        rsp.send("vCont;s").unwrap();
        let stop = rsp.wait_stop("vCont;s").unwrap();
        assert!(matches!(stop, Stop::Signal { sig: 5, .. }), "{stop:?}");
        assert_eq!(reg64(&mut rsp, PC), entry() + 4, "one instruction");
        // `s` after `Hc-1` steps all threads too.
        assert_eq!(ask(&mut rsp, "Hc-1"), "OK");
        rsp.send("s").unwrap();
        assert!(matches!(
            rsp.wait_stop("s").unwrap(),
            Stop::Signal { sig: 5, .. }
        ));
        assert_eq!(reg64(&mut rsp, PC), entry() + 8);
        // Breakpoints still work after all that.
        rsp.insert(common::rsp::BpKind::Software, fib, 4).unwrap();
        assert!(matches!(rsp.cont().unwrap(), Stop::Signal { sig: 5, .. }));
        assert_eq!(reg64(&mut rsp, PC), fib);
        assert!(stub.running(), "{}", stub.stderr());
        rsp.kill().unwrap();
        assert!(!stub.stderr().contains("panicked"));
    });
}

#[test]
fn a_connection_that_sends_no_valid_packet_is_not_an_attach() {
    both(|via| {
        let Some(mut stub) = start(via, "probe", &[]) else {
            return;
        };
        // A port probe (`nc -z`): connect, close.
        drop(raw_connect(&stub));
        // Noise, an ack, a bad checksum and a truncated packet, then close.
        let mut rsp = raw_connect(&stub);
        rsp.send_raw(b"GET / HTTP/1.0\r\n\r\n+\x03$?#00$m40")
            .unwrap();
        assert_eq!(rsp.recv_byte("nak").unwrap(), Some(b'-'));
        drop(rsp);
        std::thread::sleep(Duration::from_millis(300));
        // Under -S the guest has not started: had either counted as an attach, the drop would
        // have let it run to its end (and kvmdbg exit).
        assert!(stub.running(), "{via:?}: {}", stub.stderr());
        let mut rsp = connect(&stub);
        assert_alive_at(&mut rsp, entry());
        let counter = rsp.read_memory(sym("demo_counter"), 8).unwrap();
        assert_eq!(counter, [0; 8], "the guest never ran");
        rsp.kill().unwrap();
    });
}

#[test]
fn a_dropped_connection_leaves_the_guest_stopped_without_breakpoints() {
    both(|via| {
        let Some(mut stub) = start(via, "drop", &[]) else {
            return;
        };
        let fib = sym("fib");
        let counter = sym("demo_counter");
        let mut rsp = connect(&stub);
        rsp.insert(common::rsp::BpKind::Software, fib, 4).unwrap();
        rsp.insert(common::rsp::BpKind::Hardware, fib + 4, 4)
            .unwrap();
        rsp.insert(common::rsp::BpKind::WriteWatch, counter, 8)
            .unwrap();
        drop(rsp);
        std::thread::sleep(Duration::from_millis(300));
        assert!(stub.running(), "{via:?}: kvmdbg still there");
        // Still at the entry: the drop did not resume the guest.
        let mut rsp = connect(&stub);
        assert_alive_at(&mut rsp, entry());
        // Nothing planted any more: the guest runs to its end without stopping.
        let stop = rsp
            .cont()
            .unwrap_or_else(|e| panic!("continue to the end: {e}\n{}", stub.stderr()));
        assert_eq!(stop, Stop::Exited(0), "{via:?}");
        let (status, out) = stub.wait_exit(Duration::from_secs(20));
        assert!(status.is_some_and(|s| s.success()), "{status:?}");
        assert!(out.contains("PASS demo"), "{out}");
    });
}

/// Hand-assembled: x0 counts up forever.
const COUNT_LOOP: [u32; 2] = [
    0x9100_0400, // add x0, x0, #1 (Arm ARM C6.2.4 ADD (immediate), 64-bit, imm12 = 1)
    0x17ff_ffff, // b .-4 (C6.2.26 B, imm26 = -1)
];

#[test]
fn a_connection_dropped_while_the_guest_runs_stops_it() {
    both(|via| {
        let Some(mut stub) = start(via, "drop-running", &[]) else {
            return;
        };
        let fib = sym("fib");
        let mut rsp = connect(&stub);
        let code: Vec<u8> = COUNT_LOOP.iter().flat_map(|w| w.to_le_bytes()).collect();
        rsp.write_memory(fib, &code).unwrap();
        rsp.write_register(PC, &fib.to_le_bytes()).unwrap();
        rsp.write_register(0, &0u64.to_le_bytes()).unwrap();
        // The rate: 200 ms of running.
        rsp.send("vCont;c").unwrap();
        std::thread::sleep(Duration::from_millis(200));
        assert!(matches!(
            rsp.interrupt().unwrap(),
            Stop::Signal { sig: 2, .. }
        ));
        let in_200ms = reg64(&mut rsp, 0);
        assert!(in_200ms > 0, "the loop ran");
        // Run, then drop the connection at once; wait a second.
        rsp.send("vCont;c").unwrap();
        drop(rsp);
        std::thread::sleep(Duration::from_millis(1000));
        let mut rsp = connect(&stub);
        let after = reg64(&mut rsp, 0);
        // Had the guest run on for the second, x0 would have grown by about 5 times as much.
        assert!(
            after - in_200ms < in_200ms,
            "{via:?}: x0 grew by {} after the drop ({in_200ms} in 200 ms of running)",
            after - in_200ms
        );
        assert!(stub.running());
        rsp.kill().unwrap();
    });
}

#[test]
fn detach_resumes_the_guest() {
    both(|via| {
        let Some(stub) = start(via, "detach", &[]) else {
            return;
        };
        let mut rsp = connect(&stub);
        rsp.insert(common::rsp::BpKind::Software, sym("fib"), 4)
            .unwrap();
        assert_eq!(ask(&mut rsp, "D"), "OK");
        let (status, out) = stub.wait_exit(Duration::from_secs(20));
        assert!(status.is_some_and(|s| s.success()), "{via:?} {status:?}");
        assert!(
            out.contains("PASS demo"),
            "breakpoint removed, guest ran: {out}"
        );
    });
}

#[test]
fn threads_that_do_not_exist_and_vcpus_that_are_off() {
    let stub = Stub::start(&demo(), &["--cpus", "2"]);
    let mut rsp = connect(&stub);
    // Thread 2 (vCPU 1) exists but is powered off until the guest's CPU_ON.
    let info = ask(&mut rsp, "qThreadExtraInfo,2");
    assert_eq!(common::rsp::unhex("x", info.as_bytes()).unwrap(), b"vCPU 1");
    for missing in [
        "qThreadExtraInfo,3",
        "qThreadExtraInfo,0",
        "qThreadExtraInfo,-1",
    ] {
        assert_eq!(ask(&mut rsp, missing), "E16", "{missing}");
    }
    // Stepping the powered-off vCPU completes at once, with an error.
    assert_eq!(ask(&mut rsp, "vCont;s:2"), "E16");
    assert_eq!(ask(&mut rsp, "Hc2"), "OK");
    assert_eq!(ask(&mut rsp, "s"), "E16");
    // Stepping all steps the one that is on.
    rsp.send("vCont;s").unwrap();
    let stop = rsp.wait_stop("vCont;s").unwrap();
    assert!(matches!(stop, Stop::Signal { sig: 5, .. }), "{stop:?}");
    assert_eq!(ask(&mut rsp, "Hg1"), "OK");
    assert_eq!(reg64(&mut rsp, PC), entry() + 4);
    rsp.kill().unwrap();
}

#[test]
fn a_pstate_with_a_mode_the_vcpu_cannot_have_is_refused() {
    let stub = Stub::start(&demo(), &[]);
    let mut rsp = connect(&stub);
    let cpsr = reg64(&mut rsp, CPSR) as u32;
    // M[4:0] (Arm ARM C5.2.18): EL2h, EL2t, EL3h, AArch32 SVC, AArch32 User, reserved 0b00001.
    for mode in [0b01001u32, 0b01000, 0b01101, 0b10011, 0b10000, 0b00001] {
        let bad = (cpsr & !0x1f) | mode;
        let r = rsp.write_register(CPSR, &bad.to_le_bytes());
        assert!(
            matches!(r, Err(RspError::Stub { code: 22, .. })),
            "mode {mode:#07b}: {r:?}"
        );
        assert_eq!(reg64(&mut rsp, CPSR) as u32, cpsr, "unchanged");
    }
    // The same through G: refused, nothing written.
    let mut regs = rsp.read_registers().unwrap();
    let x0_before = regs[..8].to_vec();
    regs[..8].copy_from_slice(&0x1234u64.to_le_bytes());
    let cpsr_at = 33 * 8;
    regs[cpsr_at..cpsr_at + 4].copy_from_slice(&((cpsr & !0x1f) | 0b01001).to_le_bytes());
    assert_eq!(ask(&mut rsp, &format!("G{}", hex(&regs))), "E16");
    assert_eq!(rsp.read_registers().unwrap()[..8], x0_before[..]);
    // A mode it can have is taken (EL1t, then back).
    let el1t = (cpsr & !0x1f) | 0b00100;
    rsp.write_register(CPSR, &el1t.to_le_bytes()).unwrap();
    assert_eq!(reg64(&mut rsp, CPSR) as u32, el1t);
    rsp.write_register(CPSR, &cpsr.to_le_bytes()).unwrap();
    rsp.kill().unwrap();
}

/// Sends `sig` to `pid` with kill(1).
fn signal(pid: u32, sig: &str) {
    let st = std::process::Command::new("kill")
        .args([&format!("-{sig}"), &pid.to_string()])
        .status()
        .expect("kill(1)");
    assert!(st.success());
}

#[test]
fn sigterm_sigint_and_sighup_end_kvmdbg_and_remove_its_socket() {
    use std::os::unix::process::ExitStatusExt;
    for (sig, num) in [("TERM", 15), ("INT", 2), ("HUP", 1)] {
        let path = sock_path(&format!("sig{sig}"));
        let Some(mut stub) = Stub::start_unix(&demo(), &[], true, &path) else {
            return;
        };
        // Mid-session: gdb attached.
        let mut rsp = connect(&stub);
        assert_alive_at(&mut rsp, entry());
        signal(stub.pid().unwrap(), sig);
        let status = stub.exit_status(Duration::from_secs(20)).expect("exited");
        assert_eq!(status.code(), Some(128 + num), "SIG{sig}: {status:?}");
        assert_eq!(status.signal(), None, "exited, not killed");
        assert!(!Path::new(&path).exists(), "SIG{sig}: socket removed");
        assert!(!stub.stderr().contains("panicked"));
    }
}

#[test]
fn a_stale_socket_does_not_stop_the_next_start() {
    let path = sock_path("stale");
    // A socket file nobody listens on, as a killed kvmdbg leaves behind.
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
    assert!(path.exists());
    let Some(stub) = Stub::start_unix(&demo(), &[], true, &path) else {
        return;
    };
    let mut rsp = connect(&stub);
    assert_alive_at(&mut rsp, entry());
    rsp.kill().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while path.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!path.exists());
}
