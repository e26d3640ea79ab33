//! Session stops as gdb stop reasons: the one place that decides what gdb is told.
//!
//! A vector catch is a SIGTRAP with its thread (gdb prints "Thread N received signal
//! SIGTRAP" and the frame at the vector; gdb has no stop reason for it: `swbreak`/`hwbreak`
//! would be taken for gdb's own breakpoints), preceded by one console line (an `O` packet,
//! which gdb prints while it waits for the stop) with the exception and its syndrome.

use gdbstub::common::Signal;
use gdbstub::stub::MultiThreadStopReason;
use gdbstub::target::ext::base::reverse_exec::ReplayLogPosition;

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
            StopKind::VectorCatch { .. } => signal(Signal::SIGTRAP),
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
        StopReason::Idle | StopReason::ClockReached => signal(Signal::SIGTRAP),
        StopReason::HistoryStart => MultiThreadStopReason::ReplayLog {
            tid: Some(tid),
            pos: ReplayLogPosition::Begin,
        },
        StopReason::PowerOff | StopReason::Reset => MultiThreadStopReason::Exited(0),
        StopReason::Fault(fault) => {
            log::error!("vCPU {} faulted {fault}", stop.vcpu);
            signal(Signal::SIGSEGV)
        }
    }
}

/// The console line gdb is shown before the stop reply of `stop`, if any.
pub fn console_note(session: &Session, stop: &Stop) -> Option<String> {
    match &stop.reason {
        StopReason::Debug {
            verdict: StopKind::VectorCatch { .. },
            ..
        } => {
            let rec = session.debug_state().last_catch()?;
            Some(format!("kvmdbg: {}\n", rec.describe()))
        }
        StopReason::HistoryStart => session.reverse_note().map(str::to_string),
        _ => None,
    }
}

/// `text` as a GDB remote console output packet (`O` followed by the text in hex,
/// GDB manual E.3 "Stop Reply Packets"), checksum included.
pub fn console_packet(text: &str) -> Vec<u8> {
    use std::fmt::Write;
    let mut body = String::from("O");
    for b in text.bytes() {
        let _ = write!(body, "{b:02x}");
    }
    let sum = body.bytes().fold(0u8, |a, b| a.wrapping_add(b));
    format!("${body}#{sum:02x}").into_bytes()
}

#[cfg(test)]
mod tests {
    use super::console_packet;

    #[test]
    fn console_packet_is_hex_with_checksum() {
        // "O" = 0x4f, "6869" = 0x36+0x38+0x36+0x39 = 0xdd; 0x4f+0xdd = 0x12c -> 0x2c.
        assert_eq!(console_packet("hi"), b"$O6869#2c".to_vec());
    }
}
