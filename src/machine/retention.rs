//! A recording's memory bound (`--record-limit`): what a recording holds (the RAM page
//! copies, the snapshots' saved states, the input log) and, when that exceeds the limit,
//! dropping its oldest history.
//!
//! The page store (`snapshot.rs`) keeps per page the copies the snapshots took, each by the
//! snapshot that found the page changed; restoring snapshot k uses, per page, the newest copy
//! at or before k. So a later snapshot depends on earlier ones for every page it did not
//! copy, and the oldest snapshot cannot just be deleted: dropping it folds it into the next.
//! Per page, the newest copy at or before the new first snapshot becomes that snapshot's
//! (all it needs of the dropped one), older copies are freed, and a folded copy of all zeros
//! is freed too (no copy means zeros). The snapshots are renumbered from 0. The input log
//! before the new first snapshot is forgotten (`Recorder::forget_inputs`): nothing replays
//! it any more. The start of the recording, where reverse execution stops with "no more
//! history", moves forward to the new first snapshot.
//!
//! The limit is enforced after each snapshot, when the machine is live at the end of the
//! history (snapshots are only taken there), so the point the machine is at is never in
//! the dropped part. The newest snapshot is always kept, even alone over the limit (it is
//! the machine's whole RAM and state: the recording cannot be smaller).
//!
//! Part of `session` with `snapshot.rs`, whose store it accounts for; owns no policy of when
//! snapshots are taken. Must not depend on gdb.

use std::mem::size_of;

use crate::backend::icount::{Input, InputEvent};

use super::snapshot::{PageCopy, Recording};
use super::Session;

/// The default bound of a recording's memory: 1 GiB, a part of a development host's RAM that
/// holds minutes to hours of guest time (docs/benchmarks.md, "Recording and reverse
/// execution": 175 KiB to 4.3 MiB per guest second in the firmware measured, so from about
/// 4 minutes to 100; more for a guest that writes more RAM).
pub const DEFAULT_LIMIT: u64 = 1 << 30;

/// The smallest limit accepted: one page of the store (`snapshot.rs`'s 4 KiB).
pub const MIN_LIMIT: u64 = 4096;

/// The bytes one page version costs besides its data: its (snapshot, copy) entry and, for a
/// copy, the shared allocation's two reference counts (`Arc`).
fn version_bytes(copy: &PageCopy) -> usize {
    size_of::<(usize, PageCopy)>()
        + copy
            .as_ref()
            .map_or(0, |c| c.len() + 2 * size_of::<usize>())
}

/// The bytes of a page's entry in the store besides its versions.
const PAGE_ENTRY_BYTES: usize = size_of::<(u64, Vec<(usize, PageCopy)>)>();

/// The bytes one input of the log holds.
pub(super) fn input_bytes(ev: &InputEvent) -> usize {
    size_of::<InputEvent>()
        + match &ev.input {
            Input::Console { bytes, .. } => bytes.len(),
            Input::MemoryWrite { data, .. } => data.len(),
            Input::RegisterWrite { .. } | Input::Interrupt => 0,
        }
}

/// What a recording dropped to stay within its limit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Dropped {
    /// Snapshots dropped (folded into the next).
    pub snapshots: usize,
    /// Inputs forgotten from the log.
    pub inputs: usize,
    /// The clock at which the dropped history started (the recording's first start).
    pub from: u64,
}

impl Recording {
    /// Stores `copy` as the version of `page` saved by snapshot `k` (the newest), unless it
    /// equals the page's newest version.
    pub(super) fn store_copy(&mut self, k: usize, page: u64, copy: PageCopy) {
        let versions = self.pages.entry(page).or_default();
        let before = versions.last().and_then(|(_, c)| c.as_deref());
        if before == copy.as_deref() {
            if versions.is_empty() {
                self.pages.remove(&page);
            }
            return;
        }
        if versions.is_empty() {
            self.bytes += PAGE_ENTRY_BYTES;
        }
        self.bytes += version_bytes(&copy);
        versions.push((k, copy));
    }

    /// The bytes of every snapshot's saved state.
    pub(super) fn state_bytes(&self) -> usize {
        self.snaps.iter().map(|s| s.bytes).sum()
    }

    /// Drops snapshots, oldest first, while the recording holds more than its limit and more
    /// than one snapshot (module docs). `inputs` is the log as the snapshots count it.
    /// Returns how many of the oldest inputs the log must forget.
    pub(super) fn enforce_limit(&mut self, inputs: &[InputEvent]) -> usize {
        let limit = usize::try_from(self.limit).unwrap_or(usize::MAX);
        // Bytes of the log from input i on: what stays after forgetting the first i.
        let mut tail = vec![0usize; inputs.len() + 1];
        for (i, ev) in inputs.iter().enumerate().rev() {
            tail[i] = tail[i + 1] + input_bytes(ev);
        }
        let mut forgotten = 0;
        while self.snaps.len() > 1 {
            let log = tail[forgotten.min(inputs.len())];
            if self.bytes + self.state_bytes() + log <= limit {
                break;
            }
            forgotten += self.drop_oldest();
        }
        forgotten
    }

    /// Drops the oldest snapshot, folding it into the next (module docs); returns how many
    /// inputs of the log precede the new first snapshot (forgotten: the snapshots' input
    /// counts are renumbered). Needs two snapshots or more.
    fn drop_oldest(&mut self) -> usize {
        if self.snaps.len() < 2 {
            return 0;
        }
        let gone = self.snaps.remove(0);
        if self.dropped.snapshots == 0 {
            self.dropped.from = gone.at;
        }
        self.dropped.snapshots += 1;
        let mut freed = 0;
        self.pages.retain(|_, versions| {
            // The newest copy at or before old snapshot 1 is the new snapshot 0's.
            let base = versions.iter().rposition(|(i, _)| *i <= 1);
            let mut cut = base.unwrap_or(0);
            if base.is_some() && versions[cut].1.is_none() {
                cut += 1;
            }
            for (_, c) in versions.drain(..cut) {
                freed += version_bytes(&c);
            }
            for (i, _) in versions.iter_mut() {
                *i = i.saturating_sub(1);
            }
            if versions.is_empty() {
                freed += PAGE_ENTRY_BYTES;
            }
            !versions.is_empty()
        });
        self.bytes -= freed;
        let forget = self.snaps[0].inputs;
        for s in &mut self.snaps {
            s.inputs -= forget;
        }
        self.applied = self.applied.saturating_sub(forget);
        self.dropped.inputs += forget;
        forget
    }
}

impl Session {
    /// Keeps the recording within its limit after a snapshot (module docs): drops its oldest
    /// history and forgets the inputs before it. The newest snapshot's index after, if
    /// anything was dropped.
    pub(super) fn bound_recording(&mut self) -> Option<usize> {
        let recorder = self._vm.recorder();
        let inputs = recorder.as_ref().map(|r| r.inputs()).unwrap_or_default();
        let rec = self.recording.as_mut()?;
        let before = rec.snaps.len();
        let forget = rec.enforce_limit(&inputs);
        if rec.snaps.len() == before {
            return None;
        }
        if let Some(r) = recorder {
            r.forget_inputs(forget);
        }
        let start = rec.snaps.first().map_or(0, |s| s.at);
        log::debug!(
            "record: dropped {} snapshots and {forget} inputs to stay within {} bytes; \
             history now starts at clock {start}",
            before - rec.snaps.len(),
            rec.limit
        );
        Some(rec.snaps.len() - 1)
    }

    /// At the start of the history kept, when older history was dropped: the console line
    /// gdb prints with "no more reverse-execution history", saying so.
    pub(super) fn note_history_dropped(&mut self) {
        let Some(rec) = self.recording.as_ref() else {
            return;
        };
        if rec.dropped.snapshots == 0 {
            return;
        }
        let start = rec.snaps.first().map_or(0, |s| s.at);
        self.reverse_note = Some(format!(
            "kvmdbg: the recording now starts at clock {start}: its history from clock {} \
             was dropped to keep it within the recording limit of {} KiB (--record-limit)\n",
            rec.dropped.from,
            rec.limit / 1024
        ));
    }
}

#[cfg(test)]
#[path = "retention_tests.rs"]
mod tests;
