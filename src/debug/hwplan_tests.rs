use super::*;
use crate::a64::debugregs::{watched_bytes, wp_matches, AccessKind, DataAccess, WatchedBytes};

const BASE: u64 = 0x4000_0100;

fn watch(addr: u64, len: u64, kind: WatchKind) -> Watch {
    Watch { addr, len, kind }
}

fn w(addr: u64, len: u64) -> Watch {
    watch(addr, len, WatchKind::Write)
}

/// Every byte the planned slots watch, by asking the a64 decoder (not the planner).
fn watched_set(slots: &[WatchSlot]) -> Vec<u64> {
    let mut v = Vec::new();
    for s in slots {
        match watched_bytes(s.wcr, s.wvr).expect("planned slot must watch something") {
            WatchedBytes::Select { base, bas } => {
                v.extend((0..8).filter(|i| bas & (1 << i) != 0).map(|i| base + i))
            }
            WatchedBytes::Range { base, len } => v.extend(base..base + len),
        }
    }
    v.sort_unstable();
    v.dedup();
    v
}

/// Independent minimum: dynamic programming over every left-to-right choice of a byte-select
/// piece (any contiguous bytes of one doubleword) or an aligned power-of-two block >= 8.
fn min_exact_cover(start: u64, end: u64) -> usize {
    let n = (end - start) as usize;
    let mut best = vec![usize::MAX; n + 1];
    best[n] = 0;
    for off in (0..n).rev() {
        let p = start + off as u64;
        let dw_end = (p & !7) + 8;
        for q in p + 1..=end.min(dw_end) {
            let r = best[(q - start) as usize];
            best[off] = best[off].min(r.saturating_add(1));
        }
        for k in 3..=31u32 {
            let size = 1u64 << k;
            if p % size == 0 && p + size <= end {
                let r = best[(p + size - start) as usize];
                best[off] = best[off].min(r.saturating_add(1));
            }
        }
    }
    best[0]
}

#[test]
fn aligned_doubleword_write_watch_is_the_observed_kvm_value() {
    let slots = plan_watchpoints(&[w(0x4010_0000, 8)], 4).unwrap();
    assert_eq!(
        slots,
        vec![WatchSlot {
            wvr: 0x4010_0000,
            wcr: 0x1ff7,
            watch: 0
        }]
    );
}

#[test]
fn unaligned_watch_is_split_by_byte_select() {
    // 12 bytes from 0x4010_0012: bytes 2..8 of one doubleword, 0..6 of the next.
    let slots = plan_watchpoints(&[watch(0x4010_0012, 12, WatchKind::Access)], 4).unwrap();
    let bas = |s: &WatchSlot| (s.wcr >> 5) & 0xff;
    assert_eq!(slots.len(), 2);
    assert_eq!((slots[0].wvr, bas(&slots[0])), (0x4010_0010, 0b1111_1100));
    assert_eq!((slots[1].wvr, bas(&slots[1])), (0x4010_0018, 0b0011_1111));
    // LSC = 0b11 for an access watch, PAC = 0b11, E = 1, MASK = 0.
    assert_eq!(slots[0].wcr & 0x1f, (0b11 << 3) | (0b11 << 1) | 1);
    assert_eq!(slots[0].wcr >> 24, 0);
}

#[test]
fn large_aligned_ranges_use_mask() {
    let slots = plan_watchpoints(&[watch(0x4000_0000, 0x1000, WatchKind::Read)], 4).unwrap();
    assert_eq!(slots.len(), 1);
    assert_eq!(slots[0].wvr, 0x4000_0000);
    assert_eq!(slots[0].wcr, (12 << 24) | (0xff << 5) | (0b01 << 3) | 0b111);
    // 4 GiB needs two 2 GiB blocks: MASK stops at 31.
    let slots = plan_watchpoints(&[w(0x1_0000_0000, 1 << 32)], 4).unwrap();
    assert_eq!(slots.len(), 2);
    assert!(slots.iter().all(|s| s.wcr >> 24 == 31));
    let ranges: Vec<_> = slots.iter().map(|s| watched_bytes(s.wcr, s.wvr)).collect();
    assert_eq!(
        ranges,
        vec![
            Some(WatchedBytes::Range {
                base: 0x1_0000_0000,
                len: 1 << 31
            }),
            Some(WatchedBytes::Range {
                base: 0x1_8000_0000,
                len: 1 << 31
            })
        ]
    );
}

#[test]
fn every_small_watch_is_covered_exactly_with_the_fewest_slots() {
    for start in BASE..BASE + 40 {
        for len in 1..=200 {
            let slots = plan_watchpoints(&[w(start, len)], 16).unwrap();
            assert_eq!(
                watched_set(&slots),
                (start..start + len).collect::<Vec<_>>(),
                "exact cover of {start:#x}+{len}"
            );
            assert_eq!(
                slots.len(),
                min_exact_cover(start, start + len),
                "slot count for {start:#x}+{len}"
            );
        }
    }
}

#[test]
fn slots_name_their_watch_and_running_out_says_how_many() {
    let ws = [w(BASE + 1, 2), w(BASE + 0x7, 3), w(BASE + 0x40, 0x40)];
    let slots = plan_watchpoints(&ws, 4).unwrap();
    let owners: Vec<usize> = slots.iter().map(|s| s.watch).collect();
    assert_eq!(owners, vec![0, 1, 1, 2]);
    assert_eq!(
        plan_watchpoints(&ws, 3),
        Err(PlanError::OutOfWatchSlots {
            needed: 4,
            available: 3
        })
    );
}

#[test]
fn invalid_watches_are_rejected() {
    assert_eq!(
        plan_watchpoints(&[w(BASE, 8), w(BASE, 0)], 4),
        Err(PlanError::EmptyWatch {
            index: 1,
            addr: BASE
        })
    );
    let bad = [
        w(0x0001_0000_0000_0000, 4),  // bit 48 set, not sign-extended
        w(0x0000_ffff_ffff_fff0, 32), // runs off the low half
        w(0xffff_ffff_ffff_fff8, 16), // wraps past 2^64
    ];
    for b in bad {
        assert!(
            matches!(
                plan_watchpoints(&[b], 4),
                Err(PlanError::WatchOutOfRange { index: 0, .. })
            ),
            "{b:?}"
        );
    }
    // The very top of the address space is fine.
    let top = plan_watchpoints(&[w(0xffff_ffff_ffff_fff8, 8)], 4).unwrap();
    assert_eq!(top[0].wvr, 0xffff_ffff_ffff_fff8);
}

#[test]
fn breakpoints_plan_dedupe_and_fail_clearly() {
    let slots = plan_breakpoints(&[0x4000_0000, 0x4000_0010, 0x4000_0000], 6).unwrap();
    assert_eq!(slots.len(), 2);
    assert!(slots.iter().all(|s| s.bcr == 0x1e7));
    assert_eq!((slots[1].bvr, slots[1].addr), (0x4000_0010, 1));
    assert_eq!(
        plan_breakpoints(&[0x4000_0000, 0x4000_0006], 6),
        Err(PlanError::BadBreakpoint {
            index: 1,
            source: DebugRegError::BvrMisaligned { addr: 0x4000_0006 }
        })
    );
    let many: Vec<u64> = (0..7).map(|i| 0x4000_0000 + 4 * i).collect();
    assert_eq!(
        plan_breakpoints(&many, 6),
        Err(PlanError::OutOfBreakSlots {
            needed: 7,
            available: 6
        })
    );
}

#[test]
fn far_anywhere_in_the_watched_range_finds_the_watch() {
    let ws = [w(BASE, 4), w(BASE + 0x12, 12), w(BASE + 0x100, 0x100)];
    for (i, x) in ws.iter().enumerate() {
        for far in x.addr..x.addr + x.len {
            assert_eq!(hit_watch(&ws, far, None), Some(i), "far {far:#x}");
        }
    }
}

#[test]
fn far_below_the_watch_is_attributed_within_the_access() {
    let ws = [w(BASE + 0x14, 4), w(BASE + 0x40, 8)];
    // An 8-byte store at BASE+0x10 may report any FAR in BASE+0x10..=BASE+0x14.
    assert_eq!(hit_watch(&ws, BASE + 0x10, Some(8)), Some(0));
    // With that hint the window ends at BASE+0x18: too short to reach watch 1.
    assert_eq!(hit_watch(&ws, BASE + 0x20, Some(8)), None);
    // DC ZVA of a 64-byte block at BASE+0x00 reaches watch 0 first.
    assert_eq!(hit_watch(&ws, BASE, Some(64)), Some(0));
    // Without a hint the nearest watch above FAR in its 2 KiB block wins.
    assert_eq!(hit_watch(&ws, BASE + 0x20, None), Some(1));
    // Nothing above FAR in its block: not ours.
    assert_eq!(hit_watch(&ws, BASE + 0x50, None), None);
    let far_block = [w(0x4000_0800, 8)];
    assert_eq!(hit_watch(&far_block, 0x4000_07f8, None), None);
}

#[test]
fn esr_direction_filters_candidates() {
    let ws = [
        watch(BASE, 8, WatchKind::Read),
        watch(BASE, 8, WatchKind::Write),
    ];
    let store_esr = 0xd200_0062; // observed KVM watchpoint ESR: WnR = 1
    let load_esr = store_esr & !esr::DABT_WNR;
    assert_eq!(hit_watch_for_esr(&ws, store_esr, BASE + 3, None), Some(1));
    assert_eq!(hit_watch_for_esr(&ws, load_esr, BASE + 3, None), Some(0));
    assert_eq!(hit_watch(&ws, BASE + 3, None), Some(0));
    let access = [watch(BASE, 8, WatchKind::Access)];
    assert_eq!(hit_watch_for_esr(&access, store_esr, BASE, None), Some(0));
    assert_eq!(hit_watch_for_esr(&access, load_esr, BASE, None), Some(0));
}

#[test]
fn tagged_far_still_matches() {
    let ws = [w(0xffff_8000_0000_1000, 8)];
    // Top byte 0x12 instead of 0xff (TBI): bits [48:0] decide.
    assert_eq!(hit_watch(&ws, 0x12ff_8000_0000_1004, None), Some(0));
}

#[test]
fn hardware_hits_and_hit_watch_agree() {
    // Disjoint watches; for every access touching exactly one watch, the planned comparators
    // fire, and every FAR the architecture allows maps back to that watch.
    let ws = [w(BASE + 3, 5), w(BASE + 0x19, 0x2e), w(BASE + 0x60, 0x20)];
    let slots = plan_watchpoints(&ws, 16).unwrap();
    for a in BASE - 16..BASE + 0x90 {
        for size in [1u64, 2, 4, 8, 16] {
            let access = DataAccess {
                addr: a,
                size,
                kind: AccessKind::Store,
                el: 0,
            };
            let fired = slots.iter().any(|s| wp_matches(s.wcr, s.wvr, &access));
            let touched: Vec<usize> = (0..ws.len())
                .filter(|&i| a < ws[i].addr + ws[i].len && ws[i].addr < a + size)
                .collect();
            assert_eq!(fired, !touched.is_empty(), "access {a:#x}+{size}");
            if let [i] = touched[..] {
                let highest = (a + size).min(ws[i].addr + ws[i].len) - 1;
                for far in a..=highest {
                    assert_eq!(
                        hit_watch(&ws, far, Some(size)),
                        Some(i),
                        "{a:#x} far {far:#x}"
                    );
                }
            }
        }
    }
}

#[test]
fn guest_debug_is_filled_and_stale_slots_cleared() {
    let mut dbg = GuestDebug {
        enable: true,
        bcr: [7; 16],
        wvr: [9; 16],
        ..GuestDebug::default()
    };
    let b = plan_breakpoints(&[0x4000_0000], 6).unwrap();
    let wps = plan_watchpoints(&[w(0x4010_0012, 12)], 4).unwrap();
    to_guest_debug(&b, &wps, &mut dbg).unwrap();
    assert!(dbg.hw && dbg.enable);
    assert_eq!((dbg.bcr[0], dbg.bvr[0]), (0x1e7, 0x4000_0000));
    assert_eq!(&dbg.bcr[1..], &[0; 15]);
    assert_eq!(&dbg.wvr[..3], &[0x4010_0010, 0x4010_0018, 0]);
    assert_eq!(dbg.wcr[1], wps[1].wcr);
    to_guest_debug(&[], &[], &mut dbg).unwrap();
    assert!(!dbg.hw);
    assert_eq!(dbg.wcr, [0; 16]);
    let many = vec![wps[0]; 17];
    assert_eq!(
        to_guest_debug(&[], &many, &mut dbg),
        Err(PlanError::TooManySlots {
            what: "watchpoints",
            count: 17,
            max: 16
        })
    );
}

#[test]
fn planned_watches_catch_kernel_and_user_stores_and_copy_to_user() {
    // A watch on a user buffer stops on the kernel's STTR into it (an EL0-privilege access
    // at EL1: debugregs::access_el), on the user's own store and on a kernel STR; a MASK
    // slot (64 bytes) as much as a byte-select one.
    let user_buf = 0x0041_0008;
    for len in [8, 64] {
        let slots = plan_watchpoints(&[w(user_buf, len)], 4).unwrap();
        for (el, unpriv) in [(1, true), (0, false), (1, false)] {
            let access = DataAccess {
                addr: user_buf,
                size: 8,
                kind: AccessKind::Store,
                el: debugregs::access_el(el, unpriv, false),
            };
            assert!(
                slots.iter().any(|s| wp_matches(s.wcr, s.wvr, &access)),
                "len {len}: EL{el} unprivileged {unpriv}"
            );
        }
    }
}
