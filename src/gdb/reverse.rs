//! gdb's reverse execution: the `bs` and `bc` packets (gdbstub's `ReverseStep` and
//! `ReverseCont`), which gdb's `reverse-stepi`, `reverse-step`, `reverse-next`,
//! `reverse-finish` and `reverse-continue` are made of, and `monitor record`.
//!
//! The work is the session's (`machine/replay.rs`): a reverse request goes to an earlier
//! point of the recording and queues the stop to report, which the event loop then reports
//! like any other. Without a recording (the model without `--record`, or the KVM backend,
//! which cannot record) a reverse request does not move the machine: gdb is told "no more
//! reverse-execution history", after a console line saying why.

use gdbstub::common::Tid;
use gdbstub::target::ext::base::reverse_exec::{ReverseCont, ReverseStep};
use gdbstub::target::ext::monitor_cmd::{outputln, ConsoleOutput};

use crate::machine::session::RecordingInfo;

use super::{Debugger, GdbError};

/// The deterministic clock's ticks per second: the model's CNTFRQ_EL0 (62.5 MHz,
/// `backend/model/icount.rs`), for `monitor record`'s guest time.
const TICKS_PER_SECOND: f64 = 62.5e6;

/// What `monitor record` shows about its subcommands.
pub(super) const HELP: &str = "\
  record               the recording (--record): its span, snapshots, position, memory
                       against --record-limit, the oldest history dropped to stay within it
  record start         start recording now (needs --icount)";

impl Debugger {
    /// Runs a reverse request; when it cannot be made, reports "no more history" where the
    /// machine is, with the reason on gdb's console.
    fn reverse(
        &mut self,
        vcpu: usize,
        go: fn(&mut crate::machine::session::Session, usize) -> crate::machine::Result<()>,
    ) -> Result<(), GdbError> {
        let why = if self.session.recording().is_none() {
            Some(if self.session.caps().backend == "model" {
                "reverse execution needs a recording: run kvmdbg with --record (or --icount \
                 and `monitor record start`)"
                    .to_string()
            } else {
                format!(
                    "reverse execution needs a recording, which only the model backend can \
                     make (kvmdbg run --backend model --record); the {} backend cannot",
                    self.session.caps().backend
                )
            })
        } else {
            go(&mut self.session, vcpu).err().map(|e| e.to_string())
        };
        if let Some(why) = why {
            log::warn!("gdb: reverse request refused: {why}");
            self.session
                .history_unavailable(vcpu, format!("kvmdbg: {why}\n"));
        }
        Ok(())
    }

    /// `monitor record [start]`.
    pub(super) fn cmd_record(&mut self, arg: Option<&str>, mut out: ConsoleOutput<'_>) {
        if arg == Some("start") {
            if let Err(e) = self.session.start_recording() {
                outputln!(out, "record start: {e}");
                return;
            }
        } else if let Some(other) = arg {
            outputln!(
                out,
                "record: unknown subcommand {other:?} (record, record start)"
            );
            return;
        }
        match self.session.recording() {
            None => outputln!(
                out,
                "not recording (start kvmdbg with --record, model backend; or --icount and \
                 `monitor record start`)"
            ),
            Some(info) => outputln!(out, "{}", describe(&info)),
        }
    }
}

/// `monitor record`'s report.
pub(super) fn describe(info: &RecordingInfo) -> String {
    let place = if info.now < info.horizon {
        format!(
            "in the past, {} ticks before the end (memory and register writes refused)",
            info.horizon - info.now
        )
    } else {
        "at the end (live)".to_string()
    };
    let kib = |b: usize| b.div_ceil(1024);
    let dropped = if info.dropped.snapshots == 0 {
        "history dropped: none (the recording starts where it was started)".to_string()
    } else {
        format!(
            "history dropped: clock {} to {} ({} snapshots, {} inputs) to stay within the limit",
            info.dropped.from, info.first, info.dropped.snapshots, info.dropped.inputs
        )
    };
    format!(
        "recording: clock {} to {} ({} ticks, {:.3} s of guest time at 62.5 MHz)\n\
         position: clock {} {place}\n\
         snapshots: {} (newest at clock {})\n\
         memory: {} KiB of a {} KiB limit (--record-limit): {} page copies {} KiB, \
         snapshot states {} KiB, input log {} KiB\n\
         {dropped}\n\
         inputs logged: {}",
        info.first,
        info.horizon,
        info.horizon - info.first,
        (info.horizon - info.first) as f64 / TICKS_PER_SECOND,
        info.now,
        info.snapshots,
        info.last,
        kib(info.memory()),
        info.limit / 1024,
        info.pages,
        kib(info.page_bytes),
        kib(info.state_bytes),
        kib(info.input_bytes),
        info.inputs,
    )
}

impl ReverseStep<Tid> for Debugger {
    fn reverse_step(&mut self, tid: Tid) -> Result<(), Self::Error> {
        let vcpu = self
            .vcpu(tid)
            .ok_or_else(|| GdbError::Protocol(format!("reverse step of unknown thread {tid}")))?;
        log::debug!("gdb: reverse step of vCPU {vcpu}");
        self.reverse(vcpu, |s, v| s.reverse_step(v))
    }
}

impl ReverseCont<Tid> for Debugger {
    fn reverse_cont(&mut self) -> Result<(), Self::Error> {
        log::debug!("gdb: reverse continue");
        let vcpu = self.mem_vcpu;
        self.reverse(vcpu, |s, v| s.reverse_continue(v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describes_the_past_and_the_end() {
        let info = RecordingInfo {
            first: 0,
            last: 4_000_000,
            horizon: 62_500_000,
            now: 62_000_000,
            inputs: 2,
            snapshots: 16,
            page_bytes: 8192,
            pages: 2,
            state_bytes: 3000,
            input_bytes: 100,
            limit: 1 << 30,
            dropped: Default::default(),
        };
        let text = describe(&info);
        assert!(
            text.contains("clock 0 to 62500000 (62500000 ticks, 1.000 s"),
            "{text}"
        );
        assert!(text.contains("500000 ticks before the end"), "{text}");
        assert!(text.contains("snapshots: 16"), "{text}");
        assert!(
            text.contains("memory: 12 KiB of a 1048576 KiB limit"),
            "{text}"
        );
        assert!(text.contains("page copies 8 KiB"), "{text}");
        assert!(text.contains("history dropped: none"), "{text}");
        let live = describe(&RecordingInfo {
            now: 62_500_000,
            ..info
        });
        assert!(live.contains("at the end (live)"), "{live}");
        let pruned = describe(&RecordingInfo {
            first: 8_000_000,
            dropped: crate::machine::session::Dropped {
                snapshots: 2,
                inputs: 1,
                from: 0,
            },
            ..info
        });
        assert!(
            pruned.contains("history dropped: clock 0 to 8000000 (2 snapshots, 1 inputs)"),
            "{pruned}"
        );
        assert!(pruned.contains("recording: clock 8000000 to"), "{pruned}");
    }
}
