//! The decoded-instruction cache and instruction batches seen from the `Vcpu`: instruction
//! words changed by the guest itself, by another vCPU and by the VMM (through the shared
//! `GuestMemoryMmap`, not through the model) while the vCPU is running take effect at once.

use std::sync::mpsc;
use std::time::Duration;

use vm_memory::{Bytes, GuestAddress};

use super::{setup, setup_with, sw_bp_dbg, x, SHUTDOWN};
use crate::backend::model::testutil::RAM;
use crate::backend::{Vcpu, VcpuExit};

/// NOP (Arm ARM C6.2 "NOP": 0xd503201f).
const NOP: u32 = 0xd503_201f;

/// Runs `cpu` on a thread; returns its first exit, or kicks it and fails after 10 s.
fn run_with_deadline(cpu: Box<dyn Vcpu>, during: impl FnOnce()) -> (Box<dyn Vcpu>, VcpuExit) {
    let kick = cpu.kicker();
    let (tx, rx) = mpsc::channel();
    let t = std::thread::spawn(move || {
        let mut cpu = cpu;
        let exit = cpu.run().expect("run");
        tx.send(()).ok();
        (cpu, exit)
    });
    during();
    if rx.recv_timeout(Duration::from_secs(10)).is_err() {
        kick.kick();
        let (_, exit) = t.join().expect("vCPU thread");
        panic!("the vCPU did not see the new instruction within 10 s (then: {exit:?})");
    }
    t.join().expect("vCPU thread")
}

#[test]
fn guest_rewrites_an_instruction_it_has_already_run() {
    // Pass 1 runs `add x7, x7, #1` (decoded and cached), then copies the word at 4: over
    // it; pass 2 must run the new word.
    let Some(mut s) = setup(
        "mov x7, #0\n mov x9, #2\n \
         1: add x7, x7, #1\n subs x9, x9, #1\n b.eq 3f\n \
         ldr w3, 4f\n adr x4, 1b\n str w3, [x4]\n b 1b\n \
         4: add x7, x7, #16\n \
         3: nop",
    ) else {
        return;
    };
    assert_eq!(s.cpu.run().unwrap(), SHUTDOWN);
    assert_eq!(
        x(&mut s.cpu, 7),
        17,
        "pass 1 added 1, pass 2 the rewritten 16"
    );
}

#[test]
fn vmm_write_into_a_running_loop_takes_effect() {
    // The vCPU spins on `b .`; the VMM replaces it by a NOP through the guest memory while
    // the vCPU runs, and the vCPU falls through to power off.
    let Some(s) = setup("mov x7, #5\n 1: b 1b\n mov x7, #6") else {
        return;
    };
    let mem = s.mem.clone();
    let (mut cpu, exit) = run_with_deadline(s.cpu, || {
        std::thread::sleep(Duration::from_millis(50));
        mem.write_obj(NOP, GuestAddress(RAM + 4)).expect("patch");
    });
    assert_eq!(exit, SHUTDOWN);
    assert_eq!(x(&mut cpu, 7), 6);
}

#[test]
fn vmm_writes_between_runs_take_effect() {
    // After a run has executed (and cached) `mov x7, #1` and stopped at the BRK (routed to
    // the VMM), the VMM rewrites it as `mov x7, #2` (MOVZ, Arm ARM C6.2: 0xd2800047) and
    // restarts the vCPU there.
    let Some(mut s) = setup("mov x7, #1\n brk #0") else {
        return;
    };
    s.cpu.set_guest_debug(&sw_bp_dbg()).unwrap();
    let brk = VcpuExit::Debug {
        esr: 0xf200_0000,
        far: 0,
    };
    assert_eq!(s.cpu.run().unwrap(), brk);
    assert_eq!(x(&mut s.cpu, 7), 1);
    s.mem
        .write_obj(0xd280_0047u32, GuestAddress(RAM))
        .expect("patch");
    s.cpu.set(crate::a64::Reg::Pc, RAM).unwrap();
    assert_eq!(s.cpu.run().unwrap(), brk);
    assert_eq!(x(&mut s.cpu, 7), 2);
}

#[test]
fn another_vcpus_write_takes_effect_at_once() {
    // vCPU 0 starts vCPU 1 (PSCI CPU_ON at 5:) and spins on `b .` at 1:; vCPU 1 overwrites
    // that branch with the NOP at 6: and powers itself off (CPU_OFF); vCPU 0 falls through.
    let Some(s) = setup_with(
        "ldr x0, =0xc4000003\n mov x1, #1\n adr x2, 5f\n hvc #0\n \
         1: b 1b\n mov x7, #7\n b 9f\n \
         5: ldr w3, 6f\n adr x4, 1b\n str w3, [x4]\n movz w0, #0x8400, lsl #16\n add x0, x0, #2\n hvc #0\n \
         6: nop\n \
         9: nop",
        2,
        true,
    ) else {
        return;
    };
    let c1 = s.vm.create_vcpu(1).unwrap();
    let k1 = c1.kicker();
    let t1 = std::thread::spawn(move || {
        let mut c1 = c1;
        c1.run().unwrap()
    });
    let (mut cpu, exit) = run_with_deadline(s.cpu, || {});
    assert_eq!(exit, SHUTDOWN);
    assert_eq!(x(&mut cpu, 7), 7);
    // vCPU 1 powered itself off and blocks in run(): a kick ends it.
    k1.kick();
    assert_eq!(t1.join().unwrap(), VcpuExit::Interrupted);
}
