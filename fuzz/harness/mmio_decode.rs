//! The MMIO/NISV path: the load/store decoder (`kvmdbg::a64::ldst::decode`) and the emulation
//! of a data abort without a valid syndrome (`kvmdbg::machine::emulate::emulate_nisv`) on an
//! arbitrary instruction word and register file, against the PL011 on the device bus.
//!
//! Input: the instruction word (4 bytes, little-endian), one byte choosing the faulting
//! address inside the UART window, then the values of X0..X30 (8 bytes each, as far as the
//! input goes; zero after). Checks, besides "no panic": an emulation error leaves every
//! register as it was (the architecture's rule for `emulate`); a success means the word
//! decoded as an emulable load/store and the PC moved to the next instruction. Shared by the
//! fuzz target (fuzz/fuzz_targets/mmio_decode.rs) and the replay of saved inputs
//! (tests/fuzz_data_regressions.rs).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use kvmdbg::a64::{ldst, Reg};
use kvmdbg::backend::{BackendError, GuestDebug, Kick, Vcpu, VcpuExit};
use kvmdbg::debug::step::StepMachine;
use kvmdbg::machine::bus::Bus;
use kvmdbg::machine::emulate::emulate_nisv;
use kvmdbg::machine::guest_mem::GuestView;
use kvmdbg::machine::layout::{RAM_BASE, UART_BASE, UART_SIZE};
use kvmdbg::machine::memory;
use kvmdbg::machine::pl011::Pl011;
use vm_memory::{Bytes, GuestAddress};

/// A register file standing in for a stopped vCPU (the emulation only reads and writes
/// registers). Unset registers read zero, PSTATE reads EL1h with DAIF masked (0x3c5, KVM's
/// reset state); the MMU is off (SCTLR_EL1 reads zero), so the PC translates flat.
#[derive(Default)]
struct RegFile(HashMap<Reg, u128>);

struct NoKick;
impl Kick for NoKick {
    fn kick(&self) {}
}

impl RegFile {
    fn reg(&self, r: Reg) -> u128 {
        let default = if r == Reg::Pstate { 0x3c5 } else { 0 };
        self.0.get(&r).copied().unwrap_or(default)
    }
}

impl Vcpu for RegFile {
    fn index(&self) -> usize {
        0
    }
    fn get_reg(&mut self, reg: Reg) -> kvmdbg::backend::Result<u128> {
        Ok(self.reg(reg))
    }
    fn set_reg(&mut self, reg: Reg, value: u128) -> kvmdbg::backend::Result<()> {
        self.0.insert(reg, value);
        Ok(())
    }
    fn reg_list(&mut self) -> kvmdbg::backend::Result<Vec<Reg>> {
        Ok(registers())
    }
    fn run(&mut self) -> kvmdbg::backend::Result<VcpuExit> {
        Err(BackendError::Register {
            reg: Reg::Pc,
            reason: "the harness never runs the vCPU".into(),
        })
    }
    fn set_mmio_data(&mut self, _: &[u8]) -> kvmdbg::backend::Result<()> {
        Ok(())
    }
    fn commit_pending(&mut self) -> kvmdbg::backend::Result<()> {
        Ok(())
    }
    fn set_guest_debug(&mut self, _: &GuestDebug) -> kvmdbg::backend::Result<()> {
        Ok(())
    }
    fn kicker(&self) -> Arc<dyn Kick> {
        Arc::new(NoKick)
    }
    /// Always on: the emulation under test runs on a vCPU that took an MMIO exit.
    fn powered_off(&mut self) -> kvmdbg::backend::Result<bool> {
        Ok(false)
    }
}

thread_local! {
    /// 64 KiB of guest RAM, allocated once; each input puts its word at RAM_BASE.
    static VIEW: GuestView = GuestView::new(memory::allocate(64 << 10).expect("guest RAM"));
}

/// Every register the emulation may touch.
fn registers() -> Vec<Reg> {
    let mut r: Vec<Reg> = (0..31).map(Reg::X).collect();
    r.extend((0..32).map(Reg::V));
    r.extend([Reg::Sp, Reg::SpEl1, Reg::Pc, Reg::Pstate]);
    r
}

/// Checks the decoder and the emulation on one input.
pub fn check(data: &[u8]) {
    if data.len() < 5 {
        return;
    }
    let word = u32::from_le_bytes(data[..4].try_into().unwrap());
    let decoded = ldst::decode(word);
    if let Ok(op) = &decoded {
        assert!(matches!(op.size, 1 | 2 | 4 | 8 | 16), "{op:?}");
        assert!(op.regs[0].is_some(), "{op:?}");
    }
    let view = VIEW.with(|v| v.clone());
    view.mem().write_obj(word, GuestAddress(RAM_BASE)).unwrap();
    let mut bus = Bus::new();
    bus.add(
        UART_BASE,
        UART_SIZE,
        Arc::new(Mutex::new(Pl011::new(Box::new(std::io::sink())))),
    );
    let mut vcpu = RegFile::default();
    vcpu.set(Reg::Pc, RAM_BASE).unwrap();
    for (n, chunk) in data[5..].chunks(8).take(31).enumerate() {
        let mut b = [0u8; 8];
        b[..chunk.len()].copy_from_slice(chunk);
        vcpu.set(Reg::X(n as u8), u64::from_le_bytes(b)).unwrap();
    }
    let before: Vec<u128> = registers().iter().map(|r| vcpu.reg(*r)).collect();
    let fault_ipa = UART_BASE + (u64::from(data[4]) * 8) % UART_SIZE;
    let result = emulate_nisv(
        &mut vcpu,
        &view,
        &bus,
        fault_ipa,
        &mut StepMachine::default(),
    );
    let after: Vec<u128> = registers().iter().map(|r| vcpu.reg(*r)).collect();
    match result {
        Err(e) => assert_eq!(before, after, "{word:#010x}: {e} changed registers"),
        Ok(()) => {
            assert!(decoded.is_ok(), "{word:#010x} emulated but does not decode");
            assert_eq!(vcpu.reg(Reg::Pc) as u64, RAM_BASE + 4);
        }
    }
}
