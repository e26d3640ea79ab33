use super::*;

/// A load/store at EL1 (the common case in the tests below).
fn acc(addr: u64, size: u64, kind: AccessKind) -> DataAccess {
    DataAccess {
        addr,
        size,
        kind,
        el: 1,
    }
}

fn store(addr: u64, size: u64) -> DataAccess {
    acc(addr, size, AccessKind::Store)
}

fn load(addr: u64, size: u64) -> DataAccess {
    acc(addr, size, AccessKind::Load)
}

/// All byte addresses in `[lo, hi)` that a single-byte store hits.
fn hit_bytes(wcr: u64, wvr: u64, lo: u64, hi: u64) -> Vec<u64> {
    (lo..hi)
        .filter(|a| wp_matches(wcr, wvr, &store(*a, 1)))
        .collect()
}

#[test]
fn observed_kvm_control_values() {
    // KVM traces: dbg_bcr = 0x1e7, dbg_wcr = 0x1ff7.
    assert_eq!(Bcr::a64(PRIV_EL0_EL1).encode(), 0x1e7);
    assert_eq!(Wcr::bytes(PRIV_EL0_EL1, LSC_STORE, 0xff).encode(), 0x1ff7);
    let b = Bcr::decode(0x1e7);
    assert!(b.enable);
    assert_eq!(
        (b.pmc, b.bas, b.bt, b.lbn, b.ssc, b.hmc),
        (3, 0xf, 0, 0, 0, false)
    );
    let w = Wcr::decode(0x1ff7);
    assert_eq!((w.pac, w.lsc, w.bas, w.mask, w.wt), (3, 2, 0xff, 0, false));
}

#[test]
fn every_field_lands_in_its_bits() {
    let b = Bcr {
        enable: false,
        pmc: 0,
        bas: 0,
        hmc: true,
        ssc: 0b10,
        lbn: 0b1010,
        bt: 0b0101,
    };
    assert_eq!(
        b.encode(),
        (1 << 13) | (0b10 << 14) | (0b1010 << 16) | (0b0101 << 20)
    );
    let w = Wcr {
        enable: false,
        pac: 0,
        lsc: 0b01,
        bas: 0,
        hmc: false,
        ssc: 0b11,
        lbn: 0b0110,
        wt: true,
        mask: 0b10110,
    };
    assert_eq!(
        w.encode(),
        (0b01 << 3) | (0b11 << 14) | (0b0110 << 16) | (1 << 20) | (0b10110 << 24)
    );
}

#[test]
fn decode_encode_round_trips_over_defined_bits() {
    // Deterministic random values: every defined bit pattern class gets exercised.
    let mut rng = crate::test_rng::Rng(0x9e37_79b9_7f4a_7c15);
    for _ in 0..2000 {
        let x = rng.next();
        assert_eq!(Bcr::decode(x).encode(), x & Bcr::DEFINED, "bcr {x:#x}");
        assert_eq!(Wcr::decode(x).encode(), x & Wcr::DEFINED, "wcr {x:#x}");
        let b = Bcr::decode(x);
        assert_eq!(Bcr::decode(b.encode()), b);
        let w = Wcr::decode(x);
        assert_eq!(Wcr::decode(w.encode()), w);
    }
}

#[test]
fn value_register_rules() {
    assert_eq!(bvr(0x4000_0004), Ok(0x4000_0004));
    assert_eq!(
        bvr(0x4000_0002),
        Err(DebugRegError::BvrMisaligned { addr: 0x4000_0002 })
    );
    assert_eq!(wvr(0xffff_8000_0000_1000), Ok(0xffff_8000_0000_1000));
    assert_eq!(
        wvr(0x4000_0004),
        Err(DebugRegError::WvrMisaligned { addr: 0x4000_0004 })
    );
    // Bit 48 set but bits [63:49] clear: not a sign extension.
    assert_eq!(
        bvr(0x0001_0000_0000_0000),
        Err(DebugRegError::NonCanonical {
            addr: 0x0001_0000_0000_0000
        })
    );
    assert_eq!(sign_extend(0x0001_0000_0000_0000), 0xffff_0000_0000_0000);
    assert_eq!(sign_extend(0x0000_ffff_ffff_fff8), 0x0000_ffff_ffff_fff8);
    assert!(is_canonical(0xffff_0000_0000_0000));
    assert!(!is_canonical(0x8000_0000_0000_0000));
}

#[test]
fn breakpoint_matches_only_its_word_at_enabled_levels() {
    let bcr = Bcr::a64(PRIV_EL0_EL1).encode();
    let at = 0x4000_1008;
    assert!(bp_matches(bcr, at, at, 1));
    assert!(bp_matches(bcr, at, at, 0));
    assert!(!bp_matches(bcr, at, at + 4, 1));
    assert!(!bp_matches(bcr, at, at - 4, 1));
    assert!(!bp_matches(Bcr::a64(PRIV_EL1).encode(), at, at, 0));
    assert!(!bp_matches(Bcr::a64(PRIV_EL0).encode(), at, at, 1));
    // Kernel addresses compare on bits [48:2].
    let k = 0xffff_8000_0010_0000;
    assert!(bp_matches(bcr, k, k, 1));
    assert!(!bp_matches(bcr, k, k & VA_MASK & !(1 << 48), 1));
}

#[test]
fn breakpoint_rejects_unsupported_programming() {
    let at = 0x4000_0000;
    let ok = Bcr::a64(PRIV_EL0_EL1);
    let cases = [
        Bcr {
            enable: false,
            ..ok
        },
        Bcr { bas: 0b0011, ..ok },
        Bcr { bas: 0, ..ok },
        Bcr { bt: 0b0001, ..ok },
        Bcr { ssc: 0b10, ..ok },
        Bcr { ssc: 0b11, ..ok },
        Bcr { pmc: 0, ..ok },
    ];
    for c in cases {
        assert!(!bp_matches(c.encode(), at, at, 1), "{c:?}");
    }
    // HMC=1 with SSC=0b01 still covers non-secure EL1.
    let hyp = Bcr {
        hmc: true,
        ssc: 0b01,
        ..ok
    };
    assert!(bp_matches(hyp.encode(), at, at, 1));
}

#[test]
fn bas_selects_bytes_of_the_doubleword() {
    let base = 0x4010_0000;
    let wcr = Wcr::bytes(PRIV_EL0_EL1, LSC_BOTH, 0b0011_1100).encode();
    assert_eq!(
        hit_bytes(wcr, base, base - 8, base + 16),
        vec![base + 2, base + 3, base + 4, base + 5]
    );
    // An 8-byte access at the doubleword hits; one ending just before byte 2 does not.
    assert!(wp_matches(wcr, base, &store(base, 8)));
    assert!(!wp_matches(wcr, base, &store(base - 6, 8)));
    assert!(wp_matches(wcr, base, &store(base - 6, 9)));
    assert!(!wp_matches(wcr, base, &store(base + 6, 2)));
}

#[test]
fn deprecated_word_aligned_wvr_uses_low_bas_for_that_word() {
    let wvr = 0x4010_0004;
    let wcr = Wcr::bytes(PRIV_EL0_EL1, LSC_BOTH, 0b1111_0011).encode();
    assert_eq!(
        hit_bytes(wcr, wvr, 0x4010_0000, 0x4010_0010),
        vec![0x4010_0004, 0x4010_0005]
    );
}

#[test]
fn mask_watches_the_aligned_power_of_two_range() {
    let wcr = Wcr::masked(PRIV_EL0_EL1, LSC_BOTH, 5).encode();
    let base = 0x4010_0040;
    assert_eq!(
        watched_bytes(wcr, base),
        Some(WatchedBytes::Range { base, len: 32 })
    );
    assert_eq!(
        hit_bytes(wcr, base, base - 64, base + 64),
        (base..base + 32).collect::<Vec<_>>()
    );
    // Low WVR bits inside the range are ignored.
    assert_eq!(
        watched_bytes(wcr, base + 8),
        Some(WatchedBytes::Range { base, len: 32 })
    );
}

#[test]
fn mask_needs_full_bas_and_a_valid_size() {
    let partial = Wcr {
        bas: 0x0f,
        ..Wcr::masked(PRIV_EL0_EL1, LSC_BOTH, 4)
    };
    assert_eq!(watched_bytes(partial.encode(), 0x4000_0000), None);
    for m in [1, 2] {
        let w = Wcr::masked(PRIV_EL0_EL1, LSC_BOTH, m).encode();
        assert_eq!(watched_bytes(w, 0x4000_0000), None, "mask {m}");
    }
    let big = Wcr::masked(PRIV_EL0_EL1, LSC_BOTH, MASK_MAX).encode();
    assert_eq!(
        watched_bytes(big, 0x8000_1234),
        Some(WatchedBytes::Range {
            base: 0x8000_0000,
            len: 1 << 31
        })
    );
}

#[test]
fn lsc_filters_loads_and_stores() {
    let a = 0x4010_0000;
    let st = Wcr::bytes(PRIV_EL0_EL1, LSC_STORE, 0xff).encode();
    let ld = Wcr::bytes(PRIV_EL0_EL1, LSC_LOAD, 0xff).encode();
    let both = Wcr::bytes(PRIV_EL0_EL1, LSC_BOTH, 0xff).encode();
    // The KVM trace: a store triggers the 0x1ff7 watchpoint, a load does not.
    assert!(wp_matches(st, a, &store(a, 4)));
    assert!(!wp_matches(st, a, &load(a, 4)));
    assert!(wp_matches(ld, a, &load(a, 4)));
    assert!(!wp_matches(ld, a, &store(a, 4)));
    assert!(wp_matches(both, a, &load(a, 1)));
    let rmw = acc(a, 8, AccessKind::LoadStore);
    assert!(wp_matches(st, a, &rmw) && wp_matches(ld, a, &rmw));
    let none = Wcr::bytes(PRIV_EL0_EL1, 0, 0xff).encode();
    assert!(!wp_matches(none, a, &rmw));
}

#[test]
fn pac_filters_privilege() {
    let a = 0x4010_0000;
    let el1 = Wcr::bytes(PRIV_EL1, LSC_BOTH, 0xff).encode();
    let el0 = Wcr::bytes(PRIV_EL0, LSC_BOTH, 0xff).encode();
    let user = DataAccess {
        el: 0,
        ..store(a, 4)
    };
    assert!(wp_matches(el1, a, &store(a, 4)));
    assert!(!wp_matches(el1, a, &user));
    assert!(wp_matches(el0, a, &user));
    assert!(!wp_matches(el0, a, &store(a, 4)));
}

#[test]
fn unprivileged_accesses_at_el1_match_pac_as_el0() {
    // LDTR/STTR at EL1 (PSTATE.UAO 0) are checked as EL0 accesses; with UAO 1, and any
    // ordinary access, at the PE's EL. For each PAC: (plain EL1, STTR at EL1, STTR with UAO,
    // STTR at EL0) hit or not. PAC 0b00 is reserved with HMC 0, SSC 0b00: never matches here.
    let a = 0x4010_0000;
    let want = [
        (0b00, [false, false, false, false]),
        (PRIV_EL1, [true, false, true, false]),
        (PRIV_EL0, [false, true, false, true]),
        (PRIV_EL0_EL1, [true, true, true, true]),
    ];
    for (pac, hits) in want {
        let wcr = Wcr::bytes(pac, LSC_BOTH, 0xff).encode();
        let cases = [
            access_el(1, false, false),
            access_el(1, true, false),
            access_el(1, true, true),
            access_el(0, true, false),
        ];
        for (kind, (el, hit)) in [AccessKind::Load, AccessKind::Store]
            .into_iter()
            .flat_map(|k| cases.into_iter().zip(hits).map(move |c| (k, c)))
        {
            let access = DataAccess {
                el,
                ..acc(a, 8, kind)
            };
            assert_eq!(
                wp_matches(wcr, a, &access),
                hit,
                "PAC {pac:#b} {kind:?} at EL{el}"
            );
        }
    }
}

#[test]
fn disabled_linked_or_empty_watchpoints_never_match() {
    let a = 0x4010_0000;
    let ok = Wcr::bytes(PRIV_EL0_EL1, LSC_BOTH, 0xff);
    for c in [
        Wcr {
            enable: false,
            ..ok
        },
        Wcr { wt: true, ..ok },
        Wcr { bas: 0, ..ok },
        Wcr { ssc: 0b10, ..ok },
    ] {
        assert!(!wp_matches(c.encode(), a, &store(a, 8)), "{c:?}");
    }
}

#[test]
fn first_in_reports_the_lowest_watched_byte() {
    let sel = WatchedBytes::Select {
        base: 0x100,
        bas: 0b1010_0000,
    };
    assert_eq!(sel.first_in(0x100, 8), Some(0x105));
    assert_eq!(sel.first_in(0x106, 2), Some(0x107));
    assert_eq!(sel.first_in(0x100, 5), None);
    let r = WatchedBytes::Range {
        base: 0x200,
        len: 0x40,
    };
    assert_eq!(r.first_in(0x1f0, 0x20), Some(0x200));
    assert_eq!(r.first_in(0x220, 1), Some(0x220));
    assert_eq!(r.first_in(0x240, 8), None);
    assert_eq!(r.first_in(0x1f0, 0x10), None);
}

#[test]
fn far_is_the_first_watched_byte_accessed() {
    let wcr = Wcr::bytes(PRIV_EL0_EL1, LSC_STORE, 0b1111_0000).encode();
    let base = 0xffff_8000_0010_0000;
    // An 8-byte store at the doubleword touches bytes 4..8 first at +4.
    assert_eq!(wp_hit_far(wcr, base, &store(base, 8)), Some(base + 4));
    assert_eq!(wp_hit_far(wcr, base, &store(base + 6, 2)), Some(base + 6));
    assert_eq!(wp_hit_far(wcr, base, &store(base, 4)), None);
    assert_eq!(wp_hit_far(wcr, base, &load(base, 8)), None);
    // The KVM trace: a store at the watched address reports that address.
    let kvm = 0x1ff7;
    assert_eq!(
        wp_hit_far(kvm, 0x4010_0000, &store(0x4010_0000, 4)),
        Some(0x4010_0000)
    );
}

#[test]
fn first_hit_scans_slots_in_order() {
    let off = 0;
    let bp = Bcr::a64(PRIV_EL0_EL1).encode();
    let bcrs = [off, bp, bp];
    let bvrs = [0x4000_0000, 0x4000_0010, 0x4000_0000];
    assert_eq!(first_bp_hit(&bcrs, &bvrs, 0x4000_0000, 1), Some(2));
    assert_eq!(first_bp_hit(&bcrs, &bvrs, 0x4000_0010, 0), Some(1));
    assert_eq!(first_bp_hit(&bcrs, &bvrs, 0x4000_0014, 1), None);
    let wp = Wcr::bytes(PRIV_EL0_EL1, LSC_BOTH, 0xff).encode();
    let wcrs = [wp, wp];
    let wvrs = [0x4010_0000, 0x4010_0008];
    assert_eq!(
        first_wp_hit(&wcrs, &wvrs, &load(0x4010_000c, 4)),
        Some((1, 0x4010_000c))
    );
    assert_eq!(
        first_wp_hit(&wcrs, &wvrs, &load(0x4010_0006, 4)),
        Some((0, 0x4010_0006))
    );
    assert_eq!(first_wp_hit(&wcrs, &wvrs, &load(0x4010_0010, 4)), None);
}
