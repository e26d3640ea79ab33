//! Session stops as gdb stop reasons: the one place that decides what gdb is told.

use gdbstub::common::Signal;
use gdbstub::stub::MultiThreadStopReason;

use crate::debug::policy::StopKind;
use crate::machine::event::StopReason;
use crate::machine::session::{Session, Stop};

use super::breakpoints::gdb_watch_kind;
use super::tid_of;

/// What gdb is told about `stop`.
pub fn to_gdb(session: &Session, stop: &Stop) -> MultiThreadStopReason<u64> {
    let tid = tid_of(stop.vcpu);
    let signal = |signal| MultiThreadStopReason::SignalWithThread { tid, signal };
    match &stop.reason {
        StopReason::Debug { verdict, esr, far } => match verdict {
            StopKind::SwBreak => MultiThreadStopReason::SwBreak(tid),
            StopKind::HwBreak => MultiThreadStopReason::HwBreak(tid),
            StopKind::Watch { index, addr } => match session.debug_state().watches().get(*index) {
                Some(w) => MultiThreadStopReason::Watch {
                    tid,
                    kind: gdb_watch_kind(w.kind),
                    addr: *addr,
                },
                None => signal(Signal::SIGTRAP),
            },
            // A completed step carries its thread (a bare `S05` would leave gdb guessing
            // which vCPU stepped when several exist).
            StopKind::Step => signal(Signal::SIGTRAP),
            StopKind::Other => {
                log::warn!(
                    "vCPU {}: debug exception esr {esr:#x} far {far:#x}",
                    stop.vcpu
                );
                signal(Signal::SIGTRAP)
            }
        },
        StopReason::Step => signal(Signal::SIGTRAP),
        StopReason::Paused => signal(Signal::SIGINT),
        StopReason::Idle => signal(Signal::SIGTRAP),
        StopReason::PowerOff | StopReason::Reset => MultiThreadStopReason::Exited(0),
        StopReason::Fault(fault) => {
            log::error!("vCPU {} faulted {fault}", stop.vcpu);
            signal(Signal::SIGSEGV)
        }
    }
}
