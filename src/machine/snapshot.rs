//! Recording: snapshots of the whole machine taken while it is stopped, and restoring one.
//!
//! A snapshot holds every vCPU's saved state and the VM's (`backend::snapshot`: registers,
//! system and debug registers, the model's clock and turns, the GIC, power states), the
//! userspace devices' state (`bus::MmioDevice::save`) and the RAM pages that changed since the
//! previous snapshot. The first snapshot copies every page that is not all zeros; each later
//! one copies only the pages the guest wrote (`Vm::take_dirty_pages`, the model's per-page
//! bitmap) or the debugger wrote (`Session::write_virt`) since the previous one. Pages are
//! saved as the guest sees them (planted BRKs replaced by their original words) and restored
//! through the breakpoint table, so breakpoints stay planted across a restore.
//!
//! Restoring snapshot k writes back, for every page that may differ from it (a page saved by
//! a later snapshot, or dirty since the newest), its newest copy at or before k (a page with
//! no copy was all zeros). Later snapshots stay valid: the machine is a pure function of its
//! state and inputs (`--icount`), so running forward from k reaches them again.
//!
//! Owns the page store and the snapshot list; the backend owns what a vCPU's or VM's state is.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use vm_memory::{GuestMemoryBackend, GuestMemoryRegion};

use crate::backend::snapshot::{VcpuSnapshot, VmSnapshot};
use crate::machine::bus::DeviceStates;

use super::{MachineError, Result, Session};

/// Page size of the store: the dirty log's (4 KiB granule).
const PAGE: u64 = 0x1000;

/// One snapshot of the machine.
pub(super) struct Snap {
    /// The bytes its saved states hold (`retention.rs`).
    pub bytes: usize,
    /// The machine's clock (instructions retired by all vCPUs) when it was taken.
    pub at: u64,
    vm: VmSnapshot,
    vcpus: Vec<Arc<VcpuSnapshot>>,
    devices: DeviceStates,
    /// Per vCPU: what it had retired (`Recorder::retired`).
    pub retired: Vec<u64>,
    /// How many inputs the log held: later ones are replayed from here.
    pub inputs: usize,
}

#[cfg(test)]
impl Snap {
    /// A snapshot with no machine state in it, for tests of the page store.
    pub(super) fn synthetic(at: u64, inputs: usize, bytes: usize) -> Snap {
        use crate::backend::snapshot::VmSnapshot;
        Snap {
            bytes,
            at,
            vm: VmSnapshot(Box::new(()), 0),
            vcpus: Vec::new(),
            devices: Default::default(),
            retired: Vec::new(),
            inputs,
        }
    }
}

/// A page's saved contents: `None` when all zeros.
pub(super) type PageCopy = Option<Arc<[u8]>>;

/// The snapshots of one recording and their pages.
pub(super) struct Recording {
    pub snaps: Vec<Snap>,
    /// Per page (guest-physical address): (snapshot index, contents then), oldest first.
    pub pages: HashMap<u64, Vec<(usize, PageCopy)>>,
    /// Pages the debugger wrote, or that a restore put back, since the newest snapshot.
    pending: BTreeSet<u64>,
    /// Bytes the page store holds (copies and their bookkeeping, `retention.rs`).
    pub bytes: usize,
    /// The bound of the recording's memory, and what was dropped to keep it
    /// (`retention.rs`).
    pub limit: u64,
    pub dropped: super::retention::Dropped,
    /// The newest point the machine reached (`replay.rs`): the end of the history.
    pub horizon: u64,
    /// Where the next snapshot is due (live), and the ticks between two.
    pub next_snap: u64,
    pub interval: u64,
    /// Inputs of the log applied in the history being replayed.
    pub applied: usize,
    /// The UART's live output while history replays (muted).
    pub muted: Option<Box<dyn std::io::Write + Send>>,
}

impl Recording {
    pub(super) fn new(pending: BTreeSet<u64>, now: u64, inputs: usize, limit: u64) -> Self {
        Recording {
            snaps: Vec::new(),
            pages: HashMap::new(),
            pending,
            bytes: 0,
            limit,
            dropped: Default::default(),
            horizon: now,
            next_snap: now,
            interval: super::replay::SNAPSHOT_INTERVAL,
            applied: inputs,
            muted: None,
        }
    }
}

/// What `monitor record` shows about a recording.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordingInfo {
    /// The clock of the first (the start of the history kept) and the newest snapshot.
    pub first: u64,
    pub last: u64,
    /// The newest point reached (the end of the history) and the current one.
    pub horizon: u64,
    pub now: u64,
    /// Debugger inputs (writes, interrupts) in the log.
    pub inputs: usize,
    pub snapshots: usize,
    /// Bytes of the RAM page store (copies and their bookkeeping).
    pub page_bytes: usize,
    /// Pages held (copies of non-zero pages).
    pub pages: usize,
    /// Bytes of the snapshots' saved states (vCPUs, VM, devices) and of the input log.
    pub state_bytes: usize,
    pub input_bytes: usize,
    /// The bound of all of it (`--record-limit`).
    pub limit: u64,
    /// What was dropped to stay within it.
    pub dropped: super::retention::Dropped,
}

impl RecordingInfo {
    /// Every byte the recording holds.
    pub fn memory(&self) -> usize {
        self.page_bytes + self.state_bytes + self.input_bytes
    }
}

impl Recording {
    /// The newest copy of `page` at or before snapshot `k` (`None`: zeros).
    pub(super) fn page_at(&self, page: u64, k: usize) -> Option<&Arc<[u8]>> {
        let versions = self.pages.get(&page)?;
        versions
            .iter()
            .rev()
            .find(|(i, _)| *i <= k)
            .and_then(|(_, c)| c.as_ref())
    }

    /// Pages some snapshot after `k` saved.
    fn changed_after(&self, k: usize) -> impl Iterator<Item = u64> + '_ {
        self.pages
            .iter()
            .filter(move |(_, v)| v.iter().any(|(i, _)| *i > k))
            .map(|(p, _)| *p)
    }
}

impl Session {
    /// The machine's clock (instructions retired by all vCPUs), with `--icount`.
    pub fn clock(&self) -> Option<u64> {
        self._vm.recorder().map(|r| r.now())
    }

    /// Starts recording: takes the first snapshot (every non-zero RAM page). Needs the
    /// deterministic clock (`--icount`, the model backend) and every vCPU stopped.
    pub fn start_recording(&mut self) -> Result<()> {
        if self._vm.recorder().is_none() {
            return Err(MachineError::Recording(
                "recording needs the deterministic clock (--icount or --record, model backend)"
                    .into(),
            ));
        }
        self._vm.take_dirty_pages()?;
        let mut all = BTreeSet::new();
        for r in self.mem.iter() {
            let start = r.start_addr().0;
            all.extend((0..r.len().div_ceil(PAGE)).map(|i| start + i * PAGE));
        }
        let now = self.clock().unwrap_or(0);
        let inputs = self._vm.recorder().map_or(0, |r| r.inputs().len());
        let limit = self.record_limit;
        self.recording = Some(Recording::new(all, now, inputs, limit));
        self.take_snapshot().map(|_| ())
    }

    /// Sets the clock ticks between two snapshots of the live recording (at least 1000; the
    /// default is [`super::replay::SNAPSHOT_INTERVAL`]): shorter makes reverse steps faster
    /// and the recording bigger.
    pub fn set_snapshot_interval(&mut self, ticks: u64) -> Result<()> {
        let rec = self
            .recording
            .as_mut()
            .ok_or_else(|| MachineError::Recording("no recording was started".into()))?;
        rec.interval = ticks.max(1000);
        rec.next_snap = rec.snaps.last().map_or(0, |s| s.at) + rec.interval;
        Ok(())
    }

    /// Sets the bound of the recording's memory (`--record-limit`; at least
    /// [`super::retention::MIN_LIMIT`]), for the recording started next and the current one
    /// (whose oldest history is dropped at its next snapshot if it holds more).
    pub fn set_record_limit(&mut self, bytes: u64) -> Result<()> {
        if bytes < super::retention::MIN_LIMIT {
            return Err(MachineError::Recording(format!(
                "a recording limit of {bytes} bytes is below the smallest, {} bytes",
                super::retention::MIN_LIMIT
            )));
        }
        self.record_limit = bytes;
        if let Some(rec) = self.recording.as_mut() {
            rec.limit = bytes;
        }
        Ok(())
    }

    /// What the recording holds, if one was started.
    pub fn recording(&self) -> Option<RecordingInfo> {
        let r = self.recording.as_ref()?;
        let log = self._vm.recorder().map(|r| r.inputs()).unwrap_or_default();
        Some(RecordingInfo {
            first: r.snaps.first().map_or(0, |s| s.at),
            last: r.snaps.last().map_or(0, |s| s.at),
            horizon: r.horizon,
            now: self.clock().unwrap_or(0),
            inputs: log.len(),
            snapshots: r.snaps.len(),
            page_bytes: r.bytes,
            pages: r
                .pages
                .values()
                .flatten()
                .filter(|(_, c)| c.is_some())
                .count(),
            state_bytes: r.state_bytes(),
            input_bytes: log.iter().map(super::retention::input_bytes).sum(),
            limit: r.limit,
            dropped: r.dropped,
        })
    }

    /// The clock of snapshot `k`.
    pub fn snapshot_clock(&self, k: usize) -> Option<u64> {
        self.recording.as_ref()?.snaps.get(k).map(|s| s.at)
    }

    pub(super) fn stopped_for(&self, what: &str) -> Result<()> {
        if self.ctl.any_running() {
            return Err(MachineError::Recording(format!(
                "{what} needs every vCPU stopped"
            )));
        }
        Ok(())
    }

    /// Takes a snapshot now (recording started, every vCPU stopped, at the end of the
    /// recorded history); returns its index. A snapshot at the clock of the newest one
    /// replaces nothing and is not taken again. Then the recording is kept within its limit
    /// (`retention.rs`): older snapshots may be dropped, which renumbers the ones kept (the
    /// index returned is the new one's after that).
    pub fn take_snapshot(&mut self) -> Result<usize> {
        self.stopped_for("a snapshot")?;
        let at = self.clock().unwrap_or(0);
        self.note_position(at);
        self.refuse_in_past("a snapshot")?;
        let Some(rec) = self.recording.as_mut() else {
            return Err(MachineError::Recording("no recording was started".into()));
        };
        if let Some(last) = rec.snaps.last() {
            if last.at == at && rec.pending.is_empty() {
                return Ok(rec.snaps.len() - 1);
            }
        }
        let mut dirty = std::mem::take(&mut rec.pending);
        dirty.extend(self._vm.take_dirty_pages()?);
        let mut vcpus = Vec::with_capacity(self.ctl.vcpu_count());
        for i in 0..self.ctl.vcpu_count() {
            vcpus.push(Arc::new(self.ctl.with_vcpu(i, |v| v.save_state())??));
        }
        let vm = self._vm.save_state()?;
        let devices = self.bus.save();
        let recorder = self._vm.recorder();
        let retired: Vec<u64> = (0..self.ctl.vcpu_count())
            .map(|i| recorder.as_ref().map_or(0, |r| r.retired(i)))
            .collect();
        let inputs = recorder.map_or(0, |r| r.inputs().len());
        let k = self.recording.as_ref().map_or(0, |r| r.snaps.len());
        let mut buf = vec![0u8; PAGE as usize];
        let zeros = vec![0u8; PAGE as usize];
        let mut copies = Vec::with_capacity(dirty.len());
        for page in dirty {
            // A plain copy: every vCPU is stopped.
            vm_memory::Bytes::read_slice(&self.mem, &mut buf, vm_memory::GuestAddress(page))
                .map_err(|e| MachineError::Recording(format!("saving page {page:#x}: {e}")))?;
            self.state.shadow(page, &mut buf);
            let copy: PageCopy = (buf != zeros).then(|| Arc::from(&buf[..]));
            copies.push((page, copy));
        }
        let bytes = std::mem::size_of::<Snap>()
            + vm.bytes()
            + vcpus
                .iter()
                .map(|v| v.bytes() + std::mem::size_of::<Arc<VcpuSnapshot>>())
                .sum::<usize>()
            + devices.bytes()
            + std::mem::size_of_val(retired.as_slice());
        let rec = self.recording.as_mut().expect("checked above");
        for (page, copy) in copies {
            rec.store_copy(k, page, copy);
        }
        rec.snaps.push(Snap {
            bytes,
            at,
            vm,
            vcpus,
            devices,
            retired,
            inputs,
        });
        rec.next_snap = at + rec.interval;
        log::debug!("record: snapshot {k} at clock {at}");
        Ok(self.bound_recording().unwrap_or(k))
    }

    /// Puts the whole machine back in the state of snapshot `k` (every vCPU stopped); returns
    /// its clock. Queued stops and cached registers of the abandoned present are dropped.
    pub fn restore_snapshot(&mut self, k: usize) -> Result<u64> {
        self.stopped_for("restoring a snapshot")?;
        let rec = self
            .recording
            .as_ref()
            .ok_or_else(|| MachineError::Recording("no recording was started".into()))?;
        let snap = rec.snaps.get(k).ok_or_else(|| {
            MachineError::Recording(format!("no snapshot {k} ({} taken)", rec.snaps.len()))
        })?;
        let mut pages: BTreeSet<u64> = rec.pending.clone();
        pages.extend(self._vm.take_dirty_pages()?);
        pages.extend(rec.changed_after(k));
        let zeros = vec![0u8; PAGE as usize];
        for &page in &pages {
            let data = rec.page_at(page, k).map_or(&zeros[..], |c| &c[..]);
            self.state.write_through(page, data)?;
        }
        for (i, s) in snap.vcpus.iter().enumerate() {
            let s = s.clone();
            self.ctl.with_vcpu(i, move |v| v.restore_state(&s))??;
        }
        self._vm.restore_state(&snap.vm)?;
        self.bus.restore(&snap.devices);
        let (at, inputs) = (snap.at, snap.inputs);
        // The pages put back may differ from the newest snapshot: the next one saves them.
        if let Some(rec) = self.recording.as_mut() {
            rec.pending = pages;
            rec.applied = inputs;
        }
        self.replay_console();
        self.pending.clear();
        self.cache.clear();
        self.idle.clear();
        self.interrupted = false;
        log::debug!("record: restored snapshot {k} (clock {at})");
        Ok(at)
    }

    /// The hash of every vCPU's registers and RAM (as `--state-hash`; every vCPU stopped).
    pub fn state_hash(&mut self) -> Result<u64> {
        self.stopped_for("a state hash")?;
        super::super::record::hash_state(&self.ctl, &self.mem)
    }

    /// Notes a debugger write to RAM for the next snapshot.
    pub(super) fn note_vmm_write(&mut self, pa: u64, len: usize) {
        if let Some(rec) = self.recording.as_mut() {
            let last = pa + len.max(1) as u64 - 1;
            rec.pending
                .extend((pa / PAGE..=last / PAGE).map(|p| p * PAGE));
        }
    }
}
