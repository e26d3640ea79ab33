//! The debug session over the model backend, driving the demo firmware: software and hardware
//! breakpoints, stepping (including off a breakpoint), watchpoints that stop before the store,
//! memory reads that hide planted BRKs, removal of everything, power off.

use kvmdbg::a64::Reg;
use kvmdbg::backend::BackendKind;
use kvmdbg::debug::hwplan::{Watch, WatchKind};
use kvmdbg::machine::control::{Resume, StopKind, StopReason};
use kvmdbg::machine::session::{Session, Stop};
use kvmdbg::machine::{Machine, MachineConfig};

const DEMO: &[u8] = include_bytes!("../firmware/prebuilt/demo.elf");

fn session(cpus: usize) -> Session {
    let cfg = MachineConfig {
        backend: BackendKind::Model,
        vcpus: cpus,
        ram_size: 64 << 20,
        uart_out: Box::new(std::io::sink()),
        trace: None,
        test_hooks: Default::default(),
        icount: false,
        jit: true,
    };
    Session::new(Machine::new(cfg, DEMO).unwrap()).unwrap()
}

fn sym(s: &Session, name: &str) -> u64 {
    s.image().symbol(name).unwrap().addr
}

fn pc(s: &mut Session) -> u64 {
    s.read_reg(0, Reg::Pc).unwrap() as u64
}

fn cont(s: &mut Session) -> Stop {
    s.resume(&[(0, Resume::Continue)]).unwrap();
    s.wait_stop().unwrap()
}

fn step(s: &mut Session) -> Stop {
    s.resume(&[(0, Resume::Step)]).unwrap();
    s.wait_stop().unwrap()
}

fn read_u32(s: &mut Session, va: u64) -> u32 {
    let mut b = [0u8; 4];
    s.read_virt(0, va, &mut b).unwrap();
    u32::from_le_bytes(b)
}

#[test]
fn software_breakpoint_stops_and_is_invisible_to_memory_reads() {
    let mut s = session(1);
    let fib = sym(&s, "fib");
    let original = read_u32(&mut s, fib);
    s.insert_sw_breakpoint(0, fib).unwrap();
    assert_eq!(read_u32(&mut s, fib), original, "reads show the original");
    let stop = cont(&mut s);
    assert!(matches!(
        stop.reason,
        StopReason::Debug {
            verdict: StopKind::SwBreak,
            ..
        }
    ));
    assert_eq!(pc(&mut s), fib);
    assert_eq!(s.read_reg(0, Reg::X(0)).unwrap(), 0, "fib(0) first");
    // Continuing steps off the breakpoint and hits it again on the next call.
    cont(&mut s);
    assert_eq!(pc(&mut s), fib);
    assert_eq!(s.read_reg(0, Reg::X(0)).unwrap(), 1, "then fib(1)");
    // A step from the breakpoint executes the original instruction.
    let stop = step(&mut s);
    assert_eq!(stop.reason, StopReason::Step);
    assert_eq!(pc(&mut s), fib + 4);
    assert!(s.remove_sw_breakpoint(fib).unwrap());
    assert_eq!(cont(&mut s).reason, StopReason::PowerOff);
}

#[test]
fn hardware_breakpoint_stops_at_its_address() {
    let mut s = session(1);
    let fib = sym(&s, "fib");
    s.insert_hw_breakpoint(fib + 4).unwrap();
    let stop = cont(&mut s);
    assert!(matches!(
        stop.reason,
        StopReason::Debug {
            verdict: StopKind::HwBreak,
            ..
        }
    ));
    assert_eq!(pc(&mut s), fib + 4);
    // Resuming with it armed steps off it first, then hits it on the next call.
    cont(&mut s);
    assert_eq!(pc(&mut s), fib + 4);
    assert!(s.remove_hw_breakpoint(fib + 4));
    assert_eq!(cont(&mut s).reason, StopReason::PowerOff);
}

#[test]
fn write_watchpoint_stops_before_the_store_with_the_address() {
    let mut s = session(1);
    let counter = sym(&s, "demo_counter");
    let w = Watch {
        addr: counter,
        len: 8,
        kind: WatchKind::Write,
    };
    s.insert_watchpoint(w).unwrap();
    for expected_before in 0..3u64 {
        let stop = cont(&mut s);
        match stop.reason {
            StopReason::Debug {
                verdict: StopKind::Watch { index: 0, addr },
                ..
            } => assert_eq!(addr, counter),
            other => panic!("expected a watchpoint stop, got {other:?}"),
        }
        let mut b = [0u8; 8];
        s.read_virt(0, counter, &mut b).unwrap();
        assert_eq!(u64::from_le_bytes(b), expected_before, "not written yet");
        assert_eq!(
            s.read_reg(0, Reg::X(9)).unwrap() as u64,
            expected_before + 1
        );
        // Step over the store: now memory holds the new value.
        s.remove_watchpoint(w);
        assert_eq!(step(&mut s).reason, StopReason::Step);
        s.read_virt(0, counter, &mut b).unwrap();
        assert_eq!(u64::from_le_bytes(b), expected_before + 1);
        s.insert_watchpoint(w).unwrap();
    }
}

#[test]
fn single_steps_through_mmio_one_instruction_at_a_time() {
    let mut s = session(1);
    let entry = s.image().entry;
    assert_eq!(pc(&mut s), entry);
    let mut prev = entry;
    for _ in 0..500 {
        assert_eq!(step(&mut s).reason, StopReason::Step);
        let now = pc(&mut s);
        assert_ne!(now, prev, "a step must make progress");
        prev = now;
    }
}

#[test]
fn device_memory_is_not_read_unless_allowed() {
    let mut s = session(1);
    let mut b = [0u8; 4];
    assert!(s.read_virt(0, 0x0900_0fe0, &mut b).is_err());
    s.set_mmio_access(true);
    s.read_virt(0, 0x0900_0fe0, &mut b).unwrap();
    assert_eq!(b, [0x11, 0, 0, 0]);
    assert!(s.read_virt(0, 0x2000_0000, &mut b).is_err(), "unmapped");
}

/// The UART output of a session, shared with the test.
#[derive(Clone, Default)]
struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn reset_reloads_the_firmware_restarts_every_vcpu_and_keeps_breakpoints() {
    let out = Captured::default();
    let cfg = MachineConfig {
        backend: BackendKind::Model,
        vcpus: 2,
        ram_size: 64 << 20,
        uart_out: Box::new(out.clone()),
        trace: None,
        test_hooks: Default::default(),
        icount: false,
        jit: true,
    };
    let mut s = Session::new(Machine::new(cfg, DEMO).unwrap()).unwrap();
    let entry = s.read_reg(0, Reg::Pc).unwrap() as u64;
    let fib = sym(&s, "fib");
    let counter = sym(&s, "demo_counter");
    s.insert_sw_breakpoint(0, fib).unwrap();
    s.insert_hw_breakpoint(counter + 0x100).unwrap();
    assert_sw_break(&cont(&mut s));
    assert_eq!(pc(&mut s), fib);
    // Guest state a reset must undo: memory, registers, the UART's output so far.
    s.write_virt(0, counter, &0x1234u64.to_le_bytes()).unwrap();
    s.write_reg(0, Reg::X(19), 77).unwrap();
    let banner = "=== kvmdbg demo firmware ===";
    assert_eq!(out.text().matches(banner).count(), 1);

    let report = s.reset().unwrap();
    assert_eq!(report.entry, entry);
    assert_eq!((report.restored, report.dropped.len()), (2, 0));
    assert_eq!(pc(&mut s), entry, "vCPU 0 back at the entry point");
    assert_eq!(s.read_reg(0, Reg::X(19)).unwrap(), 0, "registers at reset");
    assert_eq!(
        s.read_reg(0, Reg::Pstate).unwrap(),
        0x3c5,
        "EL1h, DAIF masked"
    );
    let mut b = [0u8; 8];
    s.read_virt(0, counter, &mut b).unwrap();
    assert_eq!(u64::from_le_bytes(b), 0, "data reloaded from the ELF");
    assert_eq!(s.debug_state().counts(), (1, 1, 0), "breakpoints kept");

    // It runs again from the start: the banner a second time, the breakpoint hit again.
    assert_sw_break(&cont(&mut s));
    assert_eq!(pc(&mut s), fib);
    assert_eq!(out.text().matches(banner).count(), 2, "{}", out.text());
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

fn assert_sw_break(stop: &Stop) {
    assert!(
        matches!(
            stop.reason,
            StopReason::Debug {
                verdict: StopKind::SwBreak,
                ..
            }
        ),
        "{stop:?}"
    );
}
