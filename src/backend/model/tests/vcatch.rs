//! The model's vector catch (`GuestDebug::vector_catch`): an exception entry in the set ends
//! `run` at the vector with the breakpoint exit KVM gives for a hardware breakpoint there,
//! the entry already complete; entries outside the set, and a single step's end at a vector,
//! are not catches.

use super::irq::{irq_setup, GIC_ON, TIMER_DUE};
use super::*;
use crate::a64::exception::VectorKind;
use crate::a64::vcatch::{CatchSource, VectorCatch};
use crate::backend::GuestDebug;

/// The exit of a catch: a hardware-breakpoint exit (EC 0x30, IL, IFSC 0x22), FAR 0.
const CATCH: VcpuExit = VcpuExit::Debug {
    esr: 0xc200_0022,
    far: 0,
};

fn catching(pairs: &[(VectorKind, CatchSource)]) -> GuestDebug {
    GuestDebug {
        enable: true,
        vector_catch: pairs
            .iter()
            .fold(VectorCatch::NONE, |c, (k, s)| c.with(*k, *s)),
        ..GuestDebug::default()
    }
}

fn sys_reg(c: &mut Box<dyn Vcpu>, r: crate::a64::SysReg) -> u64 {
    c.get(Reg::Sys(r)).unwrap()
}

#[test]
fn a_synchronous_exception_from_el1_stops_at_the_vector_with_its_syndrome() {
    // +0x00 nop, +0x04 udf #7: UNDEFINED from EL1h, vector RAM + 0xa00.
    let Some(mut s) = setup("nop\n udf #7") else {
        return;
    };
    s.cpu
        .set_guest_debug(&catching(&[(VectorKind::Sync, CatchSource::El1)]))
        .unwrap();
    assert_eq!(s.cpu.run().unwrap(), CATCH);
    assert_eq!(pc(&mut s.cpu), RAM + 0xa00);
    assert_eq!(sys_reg(&mut s.cpu, sys::ESR_EL1), 0x0200_0000, "EC 0, IL");
    assert_eq!(s.cpu.get(Reg::ElrEl1).unwrap(), RAM + 4);
    assert_eq!(s.cpu.get(Reg::SpsrEl1).unwrap(), 0x3c5);
    assert_eq!(s.cpu.get(Reg::Pstate).unwrap(), 0x3c5);
    assert_eq!(x(&mut s.cpu, 13), 0, "the handler has not run");
    // Resuming runs the handler: no second stop for the same entry.
    assert_eq!(s.cpu.run().unwrap(), SHUTDOWN);
    assert_eq!(x(&mut s.cpu, 13), 0x0200_0000);
}

#[test]
fn an_svc_from_el0_is_caught_at_the_lower_el_vector() {
    // ERET to EL0 at label 2, which makes an SVC #5 (vector RAM + 0xc00).
    let Some(mut s) = setup("adr x0, 2f\n msr elr_el1, x0\n msr spsr_el1, xzr\n eret\n 2: svc #5")
    else {
        return;
    };
    s.cpu
        .set_guest_debug(&catching(&[(VectorKind::Sync, CatchSource::El0)]))
        .unwrap();
    assert_eq!(s.cpu.run().unwrap(), CATCH);
    assert_eq!(pc(&mut s.cpu), RAM + 0xc00);
    assert_eq!(sys_reg(&mut s.cpu, sys::ESR_EL1), 0x5600_0005, "SVC64 #5");
    assert_eq!(s.cpu.get(Reg::ElrEl1).unwrap(), RAM + 0x14, "after the SVC");
    assert_eq!(s.cpu.get(Reg::SpsrEl1).unwrap(), 0, "from EL0t");
    assert_eq!(s.cpu.run().unwrap(), SHUTDOWN);
}

#[test]
fn entries_outside_the_set_run_on() {
    // An UNDEFINED from EL1 while only EL0 exceptions and EL1 IRQs are caught.
    let Some(mut s) = setup("udf #1") else {
        return;
    };
    s.cpu
        .set_guest_debug(&catching(&[
            (VectorKind::Sync, CatchSource::El0),
            (VectorKind::Irq, CatchSource::El1),
        ]))
        .unwrap();
    assert_eq!(s.cpu.run().unwrap(), SHUTDOWN);
    assert_eq!(x(&mut s.cpu, 13), 0x0200_0000);
    // Without ENABLE the VMM owns no debug: no catch either.
    let mut s = setup("udf #1").unwrap();
    let mut dbg = catching(&[(VectorKind::Sync, CatchSource::El1)]);
    dbg.enable = false;
    s.cpu.set_guest_debug(&dbg).unwrap();
    assert_eq!(s.cpu.run().unwrap(), SHUTDOWN);
}

#[test]
fn an_irq_from_el1_is_caught_before_its_handler() {
    let Some(mut s) = irq_setup(
        &format!("{GIC_ON}\n {TIMER_DUE}\n msr daifclr, #2\n 1: nop"),
        1,
    ) else {
        return;
    };
    s.cpu
        .set_guest_debug(&catching(&[(VectorKind::Irq, CatchSource::El1)]))
        .unwrap();
    assert_eq!(s.cpu.run().unwrap(), CATCH);
    assert_eq!(pc(&mut s.cpu), RAM + 0xa80, "EL1h IRQ entry");
    assert_eq!(s.cpu.get(Reg::SpsrEl1).unwrap(), 0x345, "I was clear");
    assert_eq!(x(&mut s.cpu, 19), 0, "handler not run yet");
    assert_eq!(s.cpu.run().unwrap(), SHUTDOWN);
    assert_eq!(x(&mut s.cpu, 19), 1);
    assert_eq!(x(&mut s.cpu, 20), 0x280);
}

#[test]
fn a_single_step_into_a_caught_vector_reports_the_step() {
    let Some(mut s) = setup("udf #2") else {
        return;
    };
    let mut dbg = catching(&[(VectorKind::Sync, CatchSource::El1)]);
    dbg.single_step = true;
    s.cpu.set_guest_debug(&dbg).unwrap();
    assert_eq!(
        s.cpu.run().unwrap(),
        VcpuExit::Debug {
            esr: 0xca00_0022,
            far: 0
        }
    );
    assert_eq!(pc(&mut s.cpu), RAM + 0xa00);
    // Continuing from the vector: no late catch for the entry the step already reported.
    dbg.single_step = false;
    s.cpu.set_guest_debug(&dbg).unwrap();
    assert_eq!(s.cpu.run().unwrap(), SHUTDOWN);
}
