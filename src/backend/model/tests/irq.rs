//! Interrupts through the model `Vcpu`: the IRQ exception from each mode, the timer
//! registers, WFI that completes at once, sleeps until the timer or reports `Idle`, a
//! single-stepped WFI, and SGIs waking another vCPU.

use std::time::{Duration, Instant};

use super::*;
use crate::backend::model::cpu::debug::step_esr;
use crate::backend::model::testutil::{asm, config, load, ram};

/// GICD on (EnableGrp1), INTIDs 27 and 30 enabled in redistributor 0, PMR open, group 1 on.
pub(super) const GIC_ON: &str = "ldr x1, =0x08000000\n mov w0, #2\n str w0, [x1]\n \
     ldr x1, =0x080b0000\n ldr w0, =0x48000000\n str w0, [x1, #0x100]\n \
     mov x0, #0xff\n msr icc_pmr_el1, x0\n mov x0, #1\n msr icc_igrpen1_el1, x0\n isb";
/// The virtual timer due at once (CVAL 0), enabled.
pub(super) const TIMER_DUE: &str =
    "msr cntv_cval_el0, xzr\n mov x0, #1\n msr cntv_ctl_el0, x0\n isb";

/// `program` then SYSTEM_OFF at RAM, VBAR at RAM + 0x800 with: IRQ entries for EL1t (x20 =
/// 0x80), EL1h (0x280) and EL0 (0x480) sharing a handler that records INTID (x21), ELR
/// (x22), SPSR (x23), stops the timer and counts (x19); synchronous entries that record
/// ESR in x13 and power off.
fn irq_program(program: &str) -> Vec<u32> {
    let off = "ldr x0, =0x84000008\n hvc #0";
    let sync = format!("mrs x13, esr_el1\n {off}");
    asm(&format!(
        "{program}\n {off}\n .ltorg\n \
         .org 0x880\n mov x20, #0x80\n b 9f\n \
         .org 0xa00\n {sync}\n .ltorg\n \
         .org 0xa80\n mov x20, #0x280\n b 9f\n \
         .org 0xc00\n {sync}\n .ltorg\n \
         .org 0xc80\n mov x20, #0x480\n b 9f\n \
         .org 0xe00\n 9: mrs x21, icc_iar1_el1\n mrs x22, elr_el1\n mrs x23, spsr_el1\n \
         msr cntv_ctl_el0, xzr\n isb\n msr icc_eoir1_el1, x21\n add x19, x19, #1\n eret"
    ))
    .unwrap_or_default()
}

/// A model VM of `vcpus` vCPUs running `program` (see [`irq_program`]) on vCPU 0; None
/// without the assembler.
pub(super) fn irq_setup(program: &str, vcpus: usize) -> Option<Setup> {
    let words = irq_program(program);
    if words.is_empty() {
        return None;
    }
    let mem = ram();
    load(&mem, RAM, &words);
    let vm = create_vm(BackendKind::Model, &mem, &config(vcpus)).expect("model VM");
    let mut cpu = vm.create_vcpu(0).expect("vCPU 0");
    cpu.set(Reg::Pc, RAM).unwrap();
    cpu.set(Reg::Sys(sys::VBAR_EL1), RAM + 0x800).unwrap();
    Some(Setup { vm, cpu, mem })
}

fn xs(c: &mut Box<dyn Vcpu>, regs: &[u8]) -> Vec<u64> {
    regs.iter().map(|&n| x(c, n)).collect()
}

#[test]
fn irq_from_el1h_el1t_and_el0() {
    // EL1h: taken right after DAIFClr; ELR is the next instruction (label 1).
    let Some(mut s) = irq_setup(
        &format!("{GIC_ON}\n {TIMER_DUE}\n msr daifclr, #2\n 1: nop"),
        1,
    ) else {
        return;
    };
    assert_eq!(s.cpu.run().unwrap(), SHUTDOWN);
    let after_daifclr = RAM + 4 * 16;
    assert_eq!(
        xs(&mut s.cpu, &[19, 20, 21, 22, 23]),
        vec![1, 0x280, 27, after_daifclr, 0x345]
    );
    // EL1t: SPSel = 0.
    let mut s = irq_setup(
        &format!("{GIC_ON}\n msr spsel, #0\n {TIMER_DUE}\n msr daifclr, #2\n nop"),
        1,
    )
    .unwrap();
    assert_eq!(s.cpu.run().unwrap(), SHUTDOWN);
    assert_eq!(xs(&mut s.cpu, &[19, 20, 23]), vec![1, 0x80, 0x344]);
    // EL0 with DAIF clear (SPSR 0); EL0VTEN lets it read CNTV_CTL_EL0; SVC ends it.
    let mut s = irq_setup(
        &format!(
            "{GIC_ON}\n mov x0, #0x100\n msr cntkctl_el1, x0\n {TIMER_DUE}\n \
             adr x0, 2f\n msr elr_el1, x0\n msr spsr_el1, xzr\n eret\n 2: mrs x24, cntv_ctl_el0\n svc #0"
        ),
        1,
    )
    .unwrap();
    assert_eq!(s.cpu.run().unwrap(), SHUTDOWN);
    assert_eq!(xs(&mut s.cpu, &[19, 20, 23, 24]), vec![1, 0x480, 0, 0]);
    assert_eq!(
        x(&mut s.cpu, 13) >> 26,
        0x15,
        "the SVC, not an UNDEFINED mrs"
    );
}

#[test]
fn timer_registers_read_back() {
    // TVAL -100 with IMASK: ISTATUS set at once, TVAL negative, no interrupt; ISR_EL1.I stays
    // clear (masked at the timer). Then unmasked at the timer: ISR_EL1.I.
    let Some(mut s) = irq_setup(
        &format!(
            "{GIC_ON}\n mov x0, #-100\n msr cntv_tval_el0, x0\n mov x0, #3\n msr cntv_ctl_el0, x0\n isb\n \
             mrs x5, cntv_ctl_el0\n mrs x6, cntv_tval_el0\n mrs x7, isr_el1\n \
             mov x0, #1\n msr cntv_ctl_el0, x0\n isb\n mrs x8, isr_el1\n mrs x9, cntp_ctl_el0"
        ),
        1,
    ) else {
        return;
    };
    assert_eq!(s.cpu.run().unwrap(), SHUTDOWN);
    let v = xs(&mut s.cpu, &[5, 6, 7, 8, 9, 19]);
    assert_eq!(v[0], 7, "ENABLE | IMASK | ISTATUS");
    assert!(
        v[1] >> 31 == 1 && v[1] >> 32 == 0,
        "TVAL: negative 32-bit value, {:#x}",
        v[1]
    );
    assert_eq!(&v[2..], &[0, 0x80, 0, 0]);
}

#[test]
fn el0_timer_access_follows_cntkctl() {
    // CNTKCTL_EL1 = EL0VCTEN only: CNTVCT_EL0 reads at EL0, CNTV_CTL_EL0 traps (EC 0x18,
    // MRS, Rt = 3).
    let Some(mut s) = irq_setup(
        "mov x0, #2\n msr cntkctl_el1, x0\n adr x0, 2f\n msr elr_el1, x0\n mov x0, #0x3c0\n \
         msr spsr_el1, x0\n eret\n 2: mrs x24, cntvct_el0\n mrs x3, cntv_ctl_el0",
        1,
    ) else {
        return;
    };
    assert_eq!(s.cpu.run().unwrap(), SHUTDOWN);
    assert_ne!(x(&mut s.cpu, 24), 0, "the counter read at EL0");
    // ESR: EC 0x18, IL, Op0 3, Op2 1, Op1 3, CRn 14, Rt 3, CRm 3, read.
    let iss = 3 << 20 | 1 << 17 | 3 << 14 | 14 << 10 | 3 << 5 | 3 << 1 | 1;
    assert_eq!(x(&mut s.cpu, 13), 0x18 << 26 | 1 << 25 | iss);
}

#[test]
fn wfi_sleeps_until_the_timer_fires() {
    // 20 ms ahead, PSTATE.I set: the WFI wakes on the pending (masked) interrupt.
    let Some(mut s) = irq_setup(
        &format!(
            "{GIC_ON}\n ldr x0, =1250000\n msr cntv_tval_el0, x0\n mov x0, #1\n msr cntv_ctl_el0, x0\n isb\n \
             wfi\n mrs x5, isr_el1"
        ),
        1,
    ) else {
        return;
    };
    let t0 = Instant::now();
    assert_eq!(s.cpu.run().unwrap(), SHUTDOWN);
    assert!(
        t0.elapsed() >= Duration::from_millis(20),
        "{:?}",
        t0.elapsed()
    );
    assert_eq!(xs(&mut s.cpu, &[5, 19]), vec![0x80, 0]);
}

#[test]
fn wfi_that_nothing_can_wake_is_idle() {
    // The timer fires 1 ms ahead, but INTID 27 is disabled in the GIC: no wake-up, ever.
    let Some(mut s) = irq_setup(
        &format!(
            "{GIC_ON}\n ldr x1, =0x080b0000\n ldr w0, =0x08000000\n str w0, [x1, #0x180]\n \
             ldr x0, =62500\n msr cntv_tval_el0, x0\n mov x0, #1\n msr cntv_ctl_el0, x0\n isb\n wfi"
        ),
        1,
    ) else {
        return;
    };
    let t0 = Instant::now();
    assert_eq!(s.cpu.run().unwrap(), VcpuExit::Idle);
    assert!(
        t0.elapsed() >= Duration::from_millis(1),
        "slept until the deadline first"
    );
    assert_eq!(s.cpu.run().unwrap(), SHUTDOWN, "resumed past the WFI");
}

#[test]
fn stepping_wfi() {
    // Timer due (PSTATE.I set): the WFI completes in the guest (ISV = 1). Then 5 ms ahead:
    // KVM traps the WFI, blocks, and the step ends outside the guest (ISV = 0).
    let program = format!(
        "{GIC_ON}\n {TIMER_DUE}\n ldr x2, =312500\n wfi\n msr cntv_tval_el0, x2\n isb\n wfi\n nop"
    );
    let Some(mut s) = irq_setup(&program, 1) else {
        return;
    };
    let words = irq_program(&program);
    let wfi = |n| {
        let k = words
            .iter()
            .enumerate()
            .filter(|(_, &w)| w == 0xd503_207f)
            .nth(n);
        RAM + 4 * k.expect("two WFIs").0 as u64
    };
    let (first, second) = (wfi(0), wfi(1));
    s.cpu.set_guest_debug(&step_dbg()).unwrap();
    let mut stops = Vec::new();
    let mut slept = Duration::ZERO;
    while pc(&mut s.cpu) <= second {
        let at = pc(&mut s.cpu);
        let t = Instant::now();
        let exit = s.cpu.run().unwrap();
        if at == second {
            slept = t.elapsed();
        }
        stops.push((at, exit, pc(&mut s.cpu)));
        assert!(stops.len() < 100, "stepping got stuck: {stops:?}");
    }
    let stop_at = |at: u64| stops.iter().find(|(pc, ..)| *pc == at).cloned().unwrap();
    let step = |emulated| VcpuExit::Debug {
        esr: step_esr(emulated),
        far: 0,
    };
    assert_eq!(
        stop_at(first),
        (first, step(false), first + 4),
        "WFI, interrupt pending"
    );
    assert_eq!(
        stop_at(second),
        (second, step(true), second + 4),
        "WFI that sleeps"
    );
    assert!(slept >= Duration::from_millis(4), "it slept: {slept:?}");
    assert_eq!(x(&mut s.cpu, 19), 0, "PSTATE.I stayed set");
}

#[test]
fn an_sgi_wakes_another_vcpu_and_idle_needs_everyone_asleep() {
    // vCPU 1 waits in WFI (nothing armed) until vCPU 0's SGI 3; it records the INTID in x5
    // and powers itself off. vCPU 0 waits until vCPU 1 is asleep (a flag in RAM), then
    // sends the SGI and waits for vCPU 1's CPU_OFF (AFFINITY_INFO).
    let flag = RAM + 0x2000;
    let Some(mut s) = irq_setup(
        &format!(
            "ldr x1, =0x08000000\n mov w0, #2\n str w0, [x1]\n \
             ldr x0, =0xc4000003\n mov x1, #1\n adr x2, 5f\n hvc #0\n \
             ldr x6, ={flag:#x}\n 1: ldr w0, [x6]\n cbz w0, 1b\n \
             ldr x0, =1000000\n 2: subs x0, x0, #1\n b.ne 2b\n \
             ldr x0, =0x3000002\n msr icc_sgi1r_el1, x0\n \
             3: ldr x0, =0xc4000004\n mov x1, #1\n mov x2, #0\n hvc #0\n cmp x0, #1\n b.ne 3b\n b 6f\n \
             5: mov x0, #0xff\n msr icc_pmr_el1, x0\n mov x0, #1\n msr icc_igrpen1_el1, x0\n isb\n \
             ldr x6, ={flag:#x}\n mov w0, #1\n str w0, [x6]\n wfi\n mrs x5, icc_iar1_el1\n \
             msr icc_eoir1_el1, x5\n ldr x0, =0x84000002\n hvc #0\n 6:"
        ),
        2,
    ) else {
        return;
    };
    let mut c1 = s.vm.create_vcpu(1).unwrap();
    let kick1 = c1.kicker();
    let t = std::thread::spawn(move || {
        let exit = c1.run().unwrap();
        (exit, c1)
    });
    assert_eq!(s.cpu.run().unwrap(), SHUTDOWN);
    kick1.kick();
    let (exit, mut c1) = t.join().unwrap();
    assert_eq!(exit, VcpuExit::Interrupted, "vCPU 1 is off, not idle");
    assert_eq!(x(&mut c1, 5), 3, "woken by SGI 3");

    // Both vCPUs in WFI with nothing armed: both are Idle.
    let mut s = irq_setup(
        "ldr x0, =0xc4000003\n mov x1, #1\n adr x2, 5f\n hvc #0\n wfi\n b 6f\n 5: wfi\n b 5b\n 6:",
        2,
    )
    .unwrap();
    let mut c1 = s.vm.create_vcpu(1).unwrap();
    let t = std::thread::spawn(move || c1.run().unwrap());
    assert_eq!(s.cpu.run().unwrap(), VcpuExit::Idle);
    assert_eq!(t.join().unwrap(), VcpuExit::Idle);
}
