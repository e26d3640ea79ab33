//! The recording's memory bound on synthetic snapshots: pages stored by snapshot index,
//! dropped oldest first, and what every snapshot kept restores compared with before.

use std::collections::BTreeSet;
use std::sync::Arc;

use super::*;
use crate::backend::icount::{Input, InputEvent};
use crate::machine::session::snapshot::Snap;
use crate::test_rng::Rng;

/// Bytes of a synthetic snapshot's saved state.
const STATE: usize = 1000;
const PAGE: usize = 4096;

fn recording(limit: u64) -> Recording {
    Recording::new(BTreeSet::new(), 0, 0, limit)
}

/// A page filled with `fill` (`None`: zeros).
fn page(fill: u8) -> PageCopy {
    (fill != 0).then(|| Arc::from(&vec![fill; PAGE][..]))
}

/// Takes a synthetic snapshot at clock `at` with `inputs` in the log, saving `writes`
/// (page address, fill) as the real one saves the pages found dirty.
fn take(rec: &mut Recording, at: u64, inputs: usize, writes: &[(u64, u8)]) {
    let k = rec.snaps.len();
    for &(p, fill) in writes {
        rec.store_copy(k, p, page(fill));
    }
    rec.snaps.push(Snap::synthetic(at, inputs, STATE));
}

/// What restoring snapshot `k` puts in each of `pages` (fill byte, 0 for zeros).
fn contents(rec: &Recording, k: usize, pages: &[u64]) -> Vec<u8> {
    pages
        .iter()
        .map(|&p| rec.page_at(p, k).map_or(0, |c| c[0]))
        .collect()
}

/// The page store's bytes counted from scratch.
fn recount(rec: &Recording) -> usize {
    rec.pages
        .values()
        .map(|v| PAGE_ENTRY_BYTES + v.iter().map(|(_, c)| version_bytes(c)).sum::<usize>())
        .sum()
}

fn console(n: usize) -> InputEvent {
    InputEvent {
        at: 0,
        vcpu: None,
        input: Input::Console {
            device: 0x0900_0000,
            bytes: vec![b'x'; n],
        },
    }
}

/// The store's invariants: versions in snapshot order, within the snapshots, no leading
/// zero copy (the same as no copy), no empty entry, and the byte count exact.
fn check_store(rec: &Recording) {
    for (p, v) in &rec.pages {
        assert!(!v.is_empty(), "page {p:#x} has an empty entry");
        assert!(v[0].1.is_some(), "page {p:#x} starts with a zero copy");
        assert!(v.windows(2).all(|w| w[0].0 < w[1].0), "{p:#x}: {:?}", v);
        assert!(v.iter().all(|(i, _)| *i < rec.snaps.len()), "{p:#x}");
    }
    assert_eq!(rec.bytes, recount(rec));
}

#[test]
fn dropping_the_oldest_keeps_every_later_snapshot_whole() {
    for seed in 1..=20u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let pages: Vec<u64> = (0..12).map(|i| 0x4000_0000 + i * PAGE as u64).collect();
        let mut rec = recording(u64::MAX);
        for k in 0..7u64 {
            let mut writes = Vec::new();
            for &p in &pages {
                if k == 0 || rng.below(3) == 0 {
                    writes.push((p, rng.below(4) as u8));
                }
            }
            take(&mut rec, k * 100, k as usize, &writes);
        }
        check_store(&rec);
        let expected: Vec<Vec<u8>> = (0..7).map(|k| contents(&rec, k, &pages)).collect();
        for d in 1..7 {
            let before = rec.bytes;
            assert_eq!(rec.drop_oldest(), 1, "seed {seed}: one input per snapshot");
            check_store(&rec);
            assert!(rec.bytes <= before, "seed {seed}: dropping grew the store");
            for (k, want) in expected.iter().enumerate().skip(d) {
                assert_eq!(
                    &contents(&rec, k - d, &pages),
                    want,
                    "seed {seed}: snapshot {k} after dropping {d}"
                );
            }
            assert_eq!(rec.snaps[0].at, d as u64 * 100);
            assert_eq!(rec.snaps[0].inputs, 0);
        }
        // The last one stays.
        assert_eq!(rec.drop_oldest(), 0);
        assert_eq!(rec.snaps.len(), 1);
        assert_eq!(rec.dropped.snapshots, 6);
        assert_eq!(rec.dropped.inputs, 6);
    }
}

#[test]
fn the_fold_frees_only_superseded_copies() {
    let (a, b) = (0x4000_0000, 0x4000_1000);
    let mut rec = recording(u64::MAX);
    take(&mut rec, 0, 0, &[(a, 1), (b, 2)]);
    take(&mut rec, 10, 0, &[(a, 3)]);
    take(&mut rec, 20, 0, &[(b, 4)]);
    let before = rec.bytes;
    rec.drop_oldest();
    // a's first copy is gone, b's stays: snapshot 0 (was 1) still needs it.
    assert_eq!(before - rec.bytes, version_bytes(&page(1)));
    assert_eq!(
        rec.pages[&a].iter().map(|(i, _)| *i).collect::<Vec<_>>(),
        [0]
    );
    assert_eq!(
        rec.pages[&b].iter().map(|(i, _)| *i).collect::<Vec<_>>(),
        [0, 1]
    );
    assert_eq!(contents(&rec, 0, &[a, b]), [3, 2]);
    assert_eq!(contents(&rec, 1, &[a, b]), [3, 4]);
    check_store(&rec);
}

#[test]
fn a_folded_zero_copy_is_freed_and_still_reads_as_zeros() {
    let (a, z) = (0x4000_0000, 0x4000_1000);
    let mut rec = recording(u64::MAX);
    take(&mut rec, 0, 0, &[(a, 1), (z, 7)]);
    take(&mut rec, 10, 0, &[(a, 0), (z, 0)]);
    take(&mut rec, 20, 0, &[(a, 5)]);
    rec.drop_oldest();
    check_store(&rec);
    // z was zeros at the new start and never written again: no entry at all.
    assert!(!rec.pages.contains_key(&z));
    assert_eq!(contents(&rec, 0, &[a, z]), [0, 0]);
    assert_eq!(contents(&rec, 1, &[a, z]), [5, 0]);
}

#[test]
fn the_limit_drops_the_oldest_history_and_its_inputs() {
    let p = |i: u64| 0x4000_0000 + i * PAGE as u64;
    let mut rec = recording(u64::MAX);
    take(&mut rec, 0, 0, &[(p(0), 1), (p(1), 1)]);
    take(&mut rec, 10, 1, &[(p(0), 2), (p(1), 2)]);
    take(&mut rec, 20, 3, &[(p(0), 3), (p(1), 3)]);
    take(&mut rec, 30, 4, &[(p(0), 4), (p(1), 4)]);
    let log: Vec<InputEvent> = (0..5).map(|_| console(10)).collect();
    rec.applied = log.len();
    let total = |rec: &Recording, forgotten: usize| {
        rec.bytes + rec.state_bytes() + log[forgotten..].iter().map(input_bytes).sum::<usize>()
    };
    // Within the limit: nothing dropped.
    rec.limit = total(&rec, 0) as u64;
    assert_eq!(rec.enforce_limit(&log), 0);
    assert_eq!(rec.snaps.len(), 4);
    // A limit that two snapshots' worth of history exceeds.
    rec.limit = rec.limit - 2 * (version_bytes(&page(1)) + STATE) as u64 + 1;
    let forgotten = rec.enforce_limit(&log);
    assert_eq!(forgotten, 3, "the inputs before the new first snapshot");
    assert_eq!(rec.snaps.len(), 2);
    assert_eq!(rec.snaps[0].at, 20);
    assert_eq!(
        rec.snaps.iter().map(|s| s.inputs).collect::<Vec<_>>(),
        [0, 1]
    );
    assert_eq!(rec.applied, 2);
    assert_eq!(
        rec.dropped,
        Dropped {
            snapshots: 2,
            inputs: 3,
            from: 0
        }
    );
    assert!(total(&rec, forgotten) as u64 <= rec.limit);
    assert_eq!(contents(&rec, 0, &[p(0), p(1)]), [3, 3]);
    check_store(&rec);
}

#[test]
fn the_newest_snapshot_stays_over_any_limit() {
    let mut rec = recording(MIN_LIMIT);
    for k in 0..3u64 {
        take(
            &mut rec,
            k,
            0,
            &[(0x4000_0000, k as u8 + 1), (0x4000_1000, 9)],
        );
    }
    rec.enforce_limit(&[]);
    assert_eq!(rec.snaps.len(), 1);
    assert_eq!(rec.snaps[0].at, 2);
    assert_eq!(contents(&rec, 0, &[0x4000_0000, 0x4000_1000]), [3, 9]);
    check_store(&rec);
}

#[test]
fn an_input_costs_its_event_and_its_data() {
    let base = size_of::<InputEvent>();
    assert_eq!(input_bytes(&console(3)), base + 3);
    let write = InputEvent {
        at: 5,
        vcpu: Some(0),
        input: Input::MemoryWrite {
            addr: 0x1000,
            data: vec![0; 8],
        },
    };
    assert_eq!(input_bytes(&write), base + 8);
    let kick = InputEvent {
        at: 5,
        vcpu: Some(0),
        input: Input::Interrupt,
    };
    assert_eq!(input_bytes(&kick), base);
}

#[test]
fn storing_the_same_contents_again_costs_nothing() {
    let mut rec = recording(u64::MAX);
    take(&mut rec, 0, 0, &[(0x4000_0000, 1), (0x4000_1000, 0)]);
    let bytes = rec.bytes;
    take(&mut rec, 10, 0, &[(0x4000_0000, 1), (0x4000_1000, 0)]);
    assert_eq!(rec.bytes, bytes);
    assert!(!rec.pages.contains_key(&0x4000_1000));
    check_store(&rec);
}
