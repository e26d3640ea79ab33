//! Helpers shared by the step-over-MMIO regression suites (`step_over_mmio*.rs`): firmware
//! symbols, a debugger session on a firmware ELF, running to a symbol and stepping one vCPU.
//! Each test crate pulls this in with `mod corners;` and uses only part of it.
#![allow(dead_code)]

use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};

use kvmdbg::a64::Reg;
use kvmdbg::backend::BackendKind;
use kvmdbg::machine::control::{Resume, StopKind, StopReason};
use kvmdbg::machine::session::Session;
use kvmdbg::machine::{Machine, MachineConfig, TestHooks};

/// The address of `name` in the firmware ELF `elf`.
pub fn symbol(elf: &Path, name: &str) -> u64 {
    let bytes = std::fs::read(elf).unwrap();
    let mem = kvmdbg::machine::memory::allocate(16 << 20).unwrap();
    let image = kvmdbg::machine::loader::load(&mem, &bytes).unwrap();
    image
        .symbol(name)
        .unwrap_or_else(|| panic!("no symbol {name}"))
        .addr
}

/// What the guest wrote to the UART so far.
#[derive(Clone, Default)]
pub struct Output(Arc<Mutex<Vec<u8>>>);

impl Output {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl Write for Output {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A debugger session on `elf` with `vcpus` vCPUs, every vCPU stopped; the UART's output
/// goes to `out`.
pub fn session_with(kind: BackendKind, elf: &Path, vcpus: usize, out: Output) -> Session {
    session_hooked(kind, elf, vcpus, out, TestHooks::default())
}

/// [`session_with`] with kvmdbg mechanisms switched off (the tests that prove the suite bites).
pub fn session_hooked(
    kind: BackendKind,
    elf: &Path,
    vcpus: usize,
    out: Output,
    test_hooks: TestHooks,
) -> Session {
    let cfg = MachineConfig {
        backend: kind,
        vcpus,
        ram_size: 128 << 20,
        uart_out: Box::new(out),
        trace: None,
        test_hooks,
        icount: false,
        jit: true,
    };
    let bytes = std::fs::read(elf).unwrap();
    Session::new(Machine::new(cfg, &bytes).unwrap()).unwrap()
}

/// Resumes every vCPU until vCPU 0 reaches `addr` (a hardware breakpoint, removed again).
pub fn run_to(s: &mut Session, addr: u64, what: &str) {
    s.insert_hw_breakpoint(addr).unwrap();
    let all: Vec<_> = (0..s.vcpu_count()).map(|v| (v, Resume::Continue)).collect();
    s.resume(&all).unwrap();
    let stop = s.wait_stop().unwrap();
    assert!(
        matches!(
            stop.reason,
            StopReason::Debug {
                verdict: StopKind::HwBreak,
                ..
            }
        ),
        "{what}: did not reach {addr:#x}: {stop:?}"
    );
    assert_eq!(stop.vcpu, 0, "{what}: another vCPU stopped");
    assert!(s.remove_hw_breakpoint(addr));
}

/// One step of vCPU 0 (the others stay stopped); its PC afterwards.
pub fn step(s: &mut Session, what: &str) -> u64 {
    s.resume(&[(0, Resume::Step)]).unwrap();
    let stop = s.wait_stop().unwrap();
    assert_eq!(stop.reason, StopReason::Step, "{what}: {stop:?}");
    s.read_reg(0, Reg::Pc).unwrap() as u64
}
