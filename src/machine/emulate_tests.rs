//! NISV emulation tests against a scripted vCPU and a recording device.

use std::sync::{Arc, Mutex};

use super::*;
use crate::backend::fake::FakeVcpu;
use crate::machine::bus::MmioDevice;
use crate::machine::layout::RAM_BASE;
use crate::machine::memory::allocate;
use vm_memory::{Bytes, GuestAddress};

const DEV: u64 = 0x0900_0000;

/// A device whose 64 bytes of registers read back what was written; logs accesses.
struct Scratch {
    bytes: [u8; 64],
    log: Vec<(bool, u64, usize)>,
}

impl Default for Scratch {
    fn default() -> Self {
        Scratch {
            bytes: [0; 64],
            log: Vec::new(),
        }
    }
}

impl MmioDevice for Scratch {
    fn read(&mut self, off: u64, data: &mut [u8]) {
        self.log.push((false, off, data.len()));
        data.copy_from_slice(&self.bytes[off as usize..off as usize + data.len()]);
    }
    fn write(&mut self, off: u64, data: &[u8]) {
        self.log.push((true, off, data.len()));
        self.bytes[off as usize..off as usize + data.len()].copy_from_slice(data);
    }
}

struct Rig {
    vcpu: FakeVcpu,
    view: GuestView,
    bus: Bus,
    dev: Arc<Mutex<Scratch>>,
}

/// A vCPU with `word` at RAM_BASE (pc) and x1 = DEV.
fn rig(word: u32) -> Rig {
    let mem = allocate(1 << 20).unwrap();
    mem.write_obj(word, GuestAddress(RAM_BASE)).unwrap();
    let mut vcpu = FakeVcpu::new(0);
    vcpu.set(Reg::Pc, RAM_BASE).unwrap();
    vcpu.set(Reg::X(1), DEV).unwrap();
    let dev = Arc::new(Mutex::new(Scratch::default()));
    let mut bus = Bus::new();
    bus.add(DEV, 64, dev.clone());
    Rig {
        vcpu,
        view: GuestView::new(mem),
        bus,
        dev,
    }
}

impl Rig {
    fn run(&mut self, ipa: u64) {
        emulate_nisv(
            &mut self.vcpu,
            &self.view,
            &self.bus,
            ipa,
            &mut StepMachine::default(),
        )
        .unwrap();
    }
    fn x(&self, n: u8) -> u64 {
        self.vcpu.reg(Reg::X(n)) as u64
    }
}

#[test]
fn stp_writes_both_registers_and_advances_pc_clearing_ss_and_btype() {
    let mut r = rig(0xa900_0020); // stp x0, x0, [x1]
    r.vcpu.set(Reg::X(0), 0x1122_3344_5566_7788).unwrap();
    let ps = pstate::RESET_EL1H_DAIF | pstate::SS | pstate::BTYPE_MASK;
    r.vcpu.set(Reg::Pstate, ps).unwrap();
    r.run(DEV);
    let d = r.dev.lock().unwrap();
    assert_eq!(d.log, vec![(true, 0, 8), (true, 8, 8)]);
    assert_eq!(&d.bytes[..8], &0x1122_3344_5566_7788u64.to_le_bytes());
    assert_eq!(&d.bytes[8..16], &0x1122_3344_5566_7788u64.to_le_bytes());
    assert_eq!(r.x(1), DEV, "no writeback expected");
    assert_eq!(r.vcpu.reg(Reg::Pc) as u64, RAM_BASE + 4);
    assert_eq!(r.vcpu.reg(Reg::Pstate) as u64, pstate::RESET_EL1H_DAIF);
}

#[test]
fn pre_index_pair_load_writes_back_base() {
    let mut r = rig(0x29c1_0c22); // ldp w2, w3, [x1, #8]!
    r.dev.lock().unwrap().bytes[8..16].copy_from_slice(&[1, 0, 0, 0x80, 2, 0, 0, 0]);
    r.vcpu.set(Reg::X(2), u64::MAX).unwrap();
    r.run(DEV + 8);
    assert_eq!(r.x(2), 0x8000_0001, "W load zero-extends");
    assert_eq!(r.x(3), 2);
    assert_eq!(r.x(1), DEV + 8);
}

#[test]
fn post_index_load_and_sign_extension() {
    let mut r = rig(0xf841_0424); // ldr x4, [x1], #16
    r.dev.lock().unwrap().bytes[..8].copy_from_slice(&0xdead_beefu64.to_le_bytes());
    r.run(DEV);
    assert_eq!(r.x(4), 0xdead_beef);
    assert_eq!(r.x(1), DEV + 16);

    let mut r = rig(0x69c0_a428); // ldpsw x8, x9, [x1, #4]!
    r.dev.lock().unwrap().bytes[4..12].copy_from_slice(&[0xfe, 0xff, 0xff, 0xff, 5, 0, 0, 0]);
    r.run(DEV + 4);
    assert_eq!(r.x(8), (-2i64) as u64);
    assert_eq!(r.x(9), 5);
    assert_eq!(r.x(1), DEV + 4);

    let mut r = rig(0x79c0_0026); // ldrsh w6, [x1]
    r.dev.lock().unwrap().bytes[..2].copy_from_slice(&[0x00, 0x80]);
    r.run(DEV);
    assert_eq!(
        r.x(6),
        0xffff_8000,
        "sign-extended to 32 bits, then zero-extended"
    );
}

#[test]
fn simd_store_moves_all_128_bits() {
    let mut r = rig(0x3d80_0020); // str q0, [x1]
    r.vcpu
        .set_reg(Reg::V(0), 0x0f0e_0d0c_0b0a_0908_0706_0504_0302_0100)
        .unwrap();
    r.run(DEV);
    let d = r.dev.lock().unwrap();
    assert_eq!(&d.bytes[..16], &(0u8..16).collect::<Vec<_>>()[..]);
}

#[test]
fn non_emulable_instruction_leaves_state_untouched() {
    let mut r = rig(0xc85f_7c20); // ldxr x0, [x1]
    assert!(matches!(
        emulate_nisv(
            &mut r.vcpu,
            &r.view,
            &r.bus,
            DEV,
            &mut StepMachine::default()
        ),
        Err(EmulateError::Decode { .. })
    ));
    assert_eq!(r.vcpu.reg(Reg::Pc) as u64, RAM_BASE);
    assert!(r.dev.lock().unwrap().log.is_empty());
}

/// Every register the emulation could touch, for comparing before and after.
fn snapshot(v: &FakeVcpu) -> Vec<u128> {
    [Reg::Pc, Reg::Pstate, Reg::X(1), Reg::X(4), Reg::SpEl1]
        .iter()
        .map(|r| v.reg(*r))
        .collect()
}

#[test]
fn a_failed_write_restores_the_registers_written_before_it() {
    let mut r = rig(0xf841_0424); // ldr x4, [x1], #16
    r.vcpu.set(Reg::X(4), 0x4444).unwrap();
    r.dev.lock().unwrap().bytes[..8].copy_from_slice(&0xdead_beefu64.to_le_bytes());
    // PSTATE is written last (after x4, x1 and the PC): its write fails.
    r.vcpu
        .set(Reg::Pstate, pstate::RESET_EL1H_DAIF | pstate::SS)
        .unwrap();
    r.vcpu.fail_set.insert(Reg::Pstate);
    let before = snapshot(&r.vcpu);
    let res = emulate_nisv(
        &mut r.vcpu,
        &r.view,
        &r.bus,
        DEV,
        &mut StepMachine::default(),
    );
    assert!(matches!(res, Err(EmulateError::Backend(_))), "{res:?}");
    assert_eq!(snapshot(&r.vcpu), before, "registers restored");
    // The device read happened (it cannot be undone), once.
    assert_eq!(r.dev.lock().unwrap().log, vec![(false, 0, 8)]);
}

#[test]
fn an_unreadable_destination_fails_before_the_device_is_touched() {
    let mut r = rig(0xf841_0424); // ldr x4, [x1], #16
    r.vcpu.fail_get.insert(Reg::X(4));
    let before = snapshot(&r.vcpu);
    let mut step = StepMachine::default();
    let res = emulate_nisv(&mut r.vcpu, &r.view, &r.bus, DEV, &mut step);
    assert!(matches!(res, Err(EmulateError::Backend(_))), "{res:?}");
    assert_eq!(snapshot(&r.vcpu), before);
    assert!(r.dev.lock().unwrap().log.is_empty(), "no device access");
}

#[test]
fn a_failed_advance_leaves_the_pc_and_pstate_as_they_were() {
    let mut v = FakeVcpu::new(0);
    v.set(Reg::Pc, RAM_BASE).unwrap();
    v.set(Reg::Pstate, pstate::RESET_EL1H_DAIF | pstate::SS)
        .unwrap();
    v.fail_set.insert(Reg::Pstate);
    assert!(advance_pc(&mut v, &mut StepMachine::default()).is_err());
    assert_eq!(v.reg(Reg::Pc) as u64, RAM_BASE);
    assert_eq!(
        v.reg(Reg::Pstate) as u64,
        pstate::RESET_EL1H_DAIF | pstate::SS
    );
}
