//! Control and vCPU-thread tests with scripted vCPUs: one event per resume, the step rules,
//! range stepping, pause, jobs on stopped vCPUs.

use std::sync::Arc;

use vm_memory::{Bytes, GuestAddress};

use super::*;
use crate::a64::Reg;
use crate::backend::fake::FakeVcpu;
use crate::backend::{GuestDebug, VcpuExit};
use crate::machine::layout::{RAM_BASE, UART_BASE};
use crate::machine::memory::allocate;

/// A policy that stops on every debug exit as a step (like a debugger that owns the step).
struct StepPolicy;
impl DebugPolicy for StepPolicy {
    fn on_debug_exit(&self, _: &mut dyn Vcpu, esr: u64, _: u64, _: bool) -> Verdict {
        if crate::a64::esr::class(esr) == crate::a64::esr::ec::SOFTSTP_LOW {
            Verdict::Stop(StopKind::Step)
        } else {
            Verdict::Stop(StopKind::SwBreak)
        }
    }
    fn guest_debug(&self, _: Option<u64>) -> (u64, GuestDebug) {
        (1, GuestDebug::default())
    }
}

const STEP: VcpuExit = VcpuExit::Debug {
    esr: 0xcb00_0022,
    far: 0,
};

fn control(vcpus: Vec<FakeVcpu>) -> Control {
    let mem = allocate(1 << 20).unwrap();
    // stp x0, x0, [x1] at RAM_BASE: emulated on a NISV exit.
    mem.write_obj(0xa900_0020u32, GuestAddress(RAM_BASE))
        .unwrap();
    // wfi at RAM_BASE + 4.
    mem.write_obj(0xd503_207fu32, GuestAddress(RAM_BASE + 4))
        .unwrap();
    let boxed = vcpus
        .into_iter()
        .map(|v| Box::new(v) as Box<dyn Vcpu>)
        .collect();
    Control::start(
        boxed,
        GuestView::new(mem),
        Arc::new(Bus::new()),
        None,
        Arc::new(StepPolicy),
        Default::default(),
    )
    .unwrap()
}

fn at_ram_base(v: FakeVcpu) -> FakeVcpu {
    let mut v = v;
    v.set(Reg::Pc, RAM_BASE).unwrap();
    v.set(Reg::X(1), UART_BASE).unwrap();
    v
}

#[test]
fn an_mmio_exit_is_not_the_end_of_a_step() {
    let v = FakeVcpu::new(0).with_exits([
        VcpuExit::MmioWrite {
            addr: UART_BASE + 0x38,
            len: 4,
            data: [0; 8],
        },
        STEP,
    ]);
    let ctl = control(vec![v]);
    ctl.resume(0, Resume::Step).unwrap();
    let ev = ctl.next_event().unwrap();
    assert_eq!(ev.reason, StopReason::Step);
    // Exactly one event: the thread is stopped and idle now.
    assert!(!ctl.is_running(0));
    assert!(ctl.try_event().is_none());
}

#[test]
fn an_emulated_nisv_instruction_completes_the_step_without_reentry() {
    // If the thread re-entered the guest after emulating, it would consume STEP (the KVM quirk:
    // the following instruction runs before the step exception) and the PC check would fail.
    let v = at_ram_base(FakeVcpu::new(0)).with_exits([
        VcpuExit::Nisv {
            fault_ipa: UART_BASE,
            esr_iss: 0x45,
        },
        STEP,
    ]);
    let ctl = control(vec![v]);
    ctl.resume(0, Resume::Step).unwrap();
    assert_eq!(ctl.next_event().unwrap().reason, StopReason::Step);
    let (pc, left) = ctl
        .with_vcpu(0, |v| (v.get(Reg::Pc).unwrap(), v.run().unwrap()))
        .unwrap();
    assert_eq!(pc, RAM_BASE + 4, "stopped before the next instruction");
    assert_eq!(left, STEP, "the guest was not re-entered");
}

#[test]
fn continuing_over_a_nisv_instruction_keeps_running() {
    let v = at_ram_base(FakeVcpu::new(0)).with_exits([
        VcpuExit::Nisv {
            fault_ipa: UART_BASE,
            esr_iss: 0x45,
        },
        VcpuExit::Debug {
            esr: 0xf200_0000,
            far: 0,
        },
    ]);
    let ctl = control(vec![v]);
    ctl.resume(0, Resume::Continue).unwrap();
    let ev = ctl.next_event().unwrap();
    assert!(matches!(
        ev.reason,
        StopReason::Debug {
            verdict: StopKind::SwBreak,
            ..
        }
    ));
}

#[test]
fn range_step_stops_when_the_pc_leaves_the_range() {
    // The fake's PC does not move, so the range decides: outside it, the first step stops.
    let mut v = FakeVcpu::new(0).with_exits([STEP, STEP]);
    v.set(Reg::Pc, 0x1000).unwrap();
    let ctl = control(vec![v]);
    ctl.resume(
        0,
        Resume::RangeStep {
            start: 0x2000,
            end: 0x3000,
        },
    )
    .unwrap();
    assert_eq!(ctl.next_event().unwrap().reason, StopReason::Step);
    // PC 0x1000 is outside [0x2000, 0x3000): one step, one stop; the second exit is unused.
    let left = ctl.with_vcpu(0, |v| v.run().unwrap()).unwrap();
    assert_eq!(left, STEP);

    let mut v = FakeVcpu::new(0).with_exits([STEP, STEP]);
    v.set(Reg::Pc, 0x1000).unwrap();
    v.block_when_done = true;
    let ctl = control(vec![v]);
    ctl.resume(
        0,
        Resume::RangeStep {
            start: 0x1000,
            end: 0x1004,
        },
    )
    .unwrap();
    // In range: both steps are consumed inside kvmdbg, then the thread blocks in run() until
    // paused: a single Paused event, no Step events.
    ctl.pause_all();
    assert_eq!(ctl.next_event().unwrap().reason, StopReason::Paused);
}

#[test]
fn pause_all_stops_blocked_vcpus_with_one_event_each() {
    let mut a = FakeVcpu::new(0);
    a.block_when_done = true;
    let mut b = FakeVcpu::new(1);
    b.block_when_done = true;
    let ctl = control(vec![a, b]);
    ctl.resume(0, Resume::Continue).unwrap();
    ctl.resume(1, Resume::Continue).unwrap();
    let mut evs = ctl.stop_all().unwrap();
    evs.sort_by_key(|e| e.vcpu);
    assert_eq!(
        evs,
        vec![
            Event {
                vcpu: 0,
                reason: StopReason::Paused
            },
            Event {
                vcpu: 1,
                reason: StopReason::Paused
            }
        ]
    );
    assert!(ctl.resume(0, Resume::Continue).is_ok());
    assert!(ctl.resume(0, Resume::Continue).is_err(), "already running");
    assert!(
        ctl.with_vcpu(0, |_| ()).is_err(),
        "jobs need a stopped vCPU"
    );
}

#[test]
fn single_step_is_loaded_only_while_stepping_and_only_on_change() {
    let v = FakeVcpu::new(0).with_exits([
        STEP,
        STEP,
        VcpuExit::SystemEvent(crate::backend::SystemEvent::Shutdown),
    ]);
    let log = v.debug_log.clone();
    let ctl = control(vec![v]);
    ctl.resume(0, Resume::Step).unwrap();
    ctl.next_event().unwrap();
    ctl.resume(0, Resume::Step).unwrap();
    ctl.next_event().unwrap();
    ctl.resume(0, Resume::Continue).unwrap();
    assert_eq!(ctl.next_event().unwrap().reason, StopReason::PowerOff);
    let loaded: Vec<(bool, bool)> = log
        .lock()
        .unwrap()
        .iter()
        .map(|d| (d.enable, d.single_step))
        .collect();
    assert_eq!(loaded, vec![(true, true), (false, false)]);
}

/// A policy with one hardware breakpoint at RAM_BASE whose hits are vector entries reached
/// by a branch (`Verdict::PassOver`); steps stop as steps, BRKs as software breakpoints.
struct PassOverPolicy;
impl DebugPolicy for PassOverPolicy {
    fn on_debug_exit(&self, _: &mut dyn Vcpu, esr: u64, _: u64, _: bool) -> Verdict {
        match crate::a64::esr::class(esr) {
            crate::a64::esr::ec::BREAKPT_LOW => Verdict::PassOver,
            crate::a64::esr::ec::SOFTSTP_LOW => Verdict::Stop(StopKind::Step),
            _ => Verdict::Stop(StopKind::SwBreak),
        }
    }
    fn guest_debug(&self, vbar: Option<u64>) -> (u64, GuestDebug) {
        assert_eq!(vbar, Some(0x4000_0800), "the vCPU's VBAR_EL1 is passed");
        let mut dbg = GuestDebug {
            enable: true,
            hw: true,
            ..GuestDebug::default()
        };
        dbg.bcr[0] = 0x1e7;
        dbg.bvr[0] = RAM_BASE;
        (1, dbg)
    }
    fn needs_vbar(&self) -> bool {
        true
    }
}

#[test]
fn a_vector_entry_reached_by_a_branch_is_stepped_over_with_its_breakpoint_lifted() {
    let mut v = at_ram_base(FakeVcpu::new(0)).with_exits([
        VcpuExit::Debug {
            esr: 0xc200_0022,
            far: 0,
        },
        STEP,
        VcpuExit::Debug {
            esr: 0xf200_0000,
            far: 0,
        },
    ]);
    v.set(Reg::Sys(crate::a64::sys::VBAR_EL1), 0x4000_0800)
        .unwrap();
    let log = v.debug_log.clone();
    let ctl = Control::start(
        vec![Box::new(v) as Box<dyn Vcpu>],
        GuestView::new(allocate(1 << 20).unwrap()),
        Arc::new(Bus::new()),
        None,
        Arc::new(PassOverPolicy),
        Default::default(),
    )
    .unwrap();
    ctl.resume(0, Resume::Continue).unwrap();
    // The step over the entry is not reported: the run goes on to the BRK.
    assert!(matches!(
        ctl.next_event().unwrap().reason,
        StopReason::Debug {
            verdict: StopKind::SwBreak,
            ..
        }
    ));
    let loads = log.lock().unwrap().clone();
    let summary: Vec<(bool, u64)> = loads.iter().map(|d| (d.single_step, d.bcr[0])).collect();
    assert_eq!(
        summary,
        [(false, 0x1e7), (true, 0), (false, 0x1e7)],
        "planted, lifted for one step, planted again"
    );
}

/// A vCPU whose backend allows any thread (`Vcpu::any_thread`, the model's case), at RAM_BASE.
fn any_thread(v: FakeVcpu) -> FakeVcpu {
    let mut v = at_ram_base(v);
    v.any_thread = true;
    v
}

#[test]
fn jobs_and_steps_of_an_any_thread_vcpu_run_on_the_callers_thread() {
    let ctl = control(vec![any_thread(FakeVcpu::new(0).with_exits([STEP, STEP]))]);
    let caller = std::thread::current().id();
    let ran_on = ctl.with_vcpu(0, |_| std::thread::current().id()).unwrap();
    assert_eq!(ran_on, caller);
    ctl.resume(0, Resume::Step).unwrap();
    // The step is done when resume returns: its stop waits, nothing runs.
    assert!(!ctl.is_running(0));
    assert_eq!(ctl.try_event().unwrap().reason, StopReason::Step);
    assert!(ctl.try_event().is_none());
    ctl.resume(0, Resume::Step).unwrap();
    assert_eq!(ctl.next_event().unwrap().reason, StopReason::Step);
    assert_eq!(ctl.stops.load(std::sync::atomic::Ordering::Relaxed), 2);
}

#[test]
fn steps_that_may_wait_and_continues_go_to_the_vcpu_thread() {
    // The instruction at the PC is a WFI: the step may wait for an interrupt, which the
    // caller (reading gdb's Ctrl-C) must not.
    let mut v = any_thread(FakeVcpu::new(0).with_exits([STEP, STEP]));
    v.set(Reg::Pc, RAM_BASE + 4).unwrap();
    let ctl = control(vec![v]);
    ctl.resume(0, Resume::Step).unwrap();
    assert!(ctl.is_running(0), "on the vCPU thread");
    assert_eq!(ctl.next_event().unwrap().reason, StopReason::Step);
    ctl.resume(0, Resume::Continue).unwrap();
    assert!(ctl.is_running(0), "on the vCPU thread");
    // Not stepping, the step exception is a debug stop of its own.
    assert!(matches!(
        ctl.next_event().unwrap().reason,
        StopReason::Debug { .. }
    ));
}

#[test]
fn a_panic_in_a_job_fails_its_vcpu_on_either_thread_instead_of_hanging() {
    // On its own thread (KVM's case) the thread dies; on the caller's (the model's) the panic
    // is caught. Either way every later request fails, and dropping the control ends the
    // vCPU thread (its mailbox is closed): no hang.
    for v in [FakeVcpu::new(0), any_thread(FakeVcpu::new(0))] {
        let ctl = control(vec![v]);
        let died = ctl.with_vcpu(0, |_| -> u8 { panic!("a job that fails its vCPU") });
        assert!(matches!(
            died,
            Err(MachineError::VcpuThreadGone { vcpu: 0 })
        ));
        assert!(matches!(
            ctl.with_vcpu(0, |_| ()),
            Err(MachineError::VcpuThreadGone { vcpu: 0 })
        ));
        for how in [Resume::Step, Resume::Continue] {
            assert!(matches!(
                ctl.resume(0, how),
                Err(MachineError::VcpuThreadGone { vcpu: 0 })
            ));
        }
    }
}
