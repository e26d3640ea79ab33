//! Stage-1 permission model: AP[2:1], APTable, PXN/UXN (+ table forms), WXN, HPD.

use super::*;

const VA: u64 = 0x0000_0040_0020_3000;

/// A 4K, 48-bit regime mapping VA with a page whose attributes are `leaf`, with `table`
/// ORed into the level-1 table descriptor; `extra_tcr` ORed into TCR.
fn setup(leaf: u64, table: u64, extra_tcr: u64, wxn: bool) -> (Tables, TranslationRegs) {
    let mut t = Tables::new(Granule::K4, 48);
    t.map(t.root, VA, 0x4040_0000, 3, leaf);
    t.or_table(t.root, VA, 1, table);
    let mut r = regs(
        tcr(Granule::K4, 16, Granule::K4, 16, 5) | extra_tcr,
        t.root,
        0,
    );
    if wxn {
        r.sctlr |= SCTLR_WXN;
    }
    (t, r)
}

fn allowed(leaf: u64, table: u64, extra_tcr: u64, wxn: bool, a: Access, el0: bool) -> bool {
    let (t, r) = setup(leaf, table, extra_tcr, wxn);
    match translate(&r, VA, a, el0, &t.mem) {
        Ok(_) => true,
        Err(f) => {
            assert_eq!(
                f,
                Fault {
                    kind: FaultKind::Permission,
                    level: 3
                }
            );
            false
        }
    }
}

#[test]
fn ap_matrix() {
    // (AP[2:1], EL1 read, EL1 write, EL0 read, EL0 write): Arm ARM D8.4.1.1 table
    // "Data access permissions for stage 1 translations".
    let table = [
        (0b00, true, true, false, false),
        (0b01, true, true, true, true),
        (0b10, true, false, false, false),
        (0b11, true, false, true, false),
    ];
    for (ap, pr, pw, ur, uw) in table {
        let leaf = RW_EL1 | ap << 6;
        assert_eq!(
            allowed(leaf, 0, 0, false, Access::Read, false),
            pr,
            "AP {ap:02b}"
        );
        assert_eq!(
            allowed(leaf, 0, 0, false, Access::Write, false),
            pw,
            "AP {ap:02b}"
        );
        assert_eq!(
            allowed(leaf, 0, 0, false, Access::Read, true),
            ur,
            "AP {ap:02b}"
        );
        assert_eq!(
            allowed(leaf, 0, 0, false, Access::Write, true),
            uw,
            "AP {ap:02b}"
        );
    }
}

#[test]
fn execute_never_rules() {
    let ro_all = RW_EL1 | 0b11 << 6;
    assert!(allowed(ro_all, 0, 0, false, Access::Fetch, false));
    assert!(allowed(ro_all, 0, 0, false, Access::Fetch, true));
    // PXN (53) blocks EL1 only, UXN (54) EL0 only.
    assert!(!allowed(
        ro_all | 1 << 53,
        0,
        0,
        false,
        Access::Fetch,
        false
    ));
    assert!(allowed(ro_all | 1 << 53, 0, 0, false, Access::Fetch, true));
    assert!(allowed(ro_all | 1 << 54, 0, 0, false, Access::Fetch, false));
    assert!(!allowed(ro_all | 1 << 54, 0, 0, false, Access::Fetch, true));
    // EL0-writable memory is never executable at EL1.
    let rw_all = RW_EL1 | 0b01 << 6;
    assert!(!allowed(rw_all, 0, 0, false, Access::Fetch, false));
    assert!(allowed(rw_all, 0, 0, false, Access::Fetch, true));
    // WXN: writable => execute-never at the EL that can write.
    assert!(allowed(RW_EL1, 0, 0, false, Access::Fetch, false));
    assert!(!allowed(RW_EL1, 0, 0, true, Access::Fetch, false));
    assert!(!allowed(rw_all, 0, 0, true, Access::Fetch, true));
    assert!(allowed(ro_all, 0, 0, true, Access::Fetch, false));
}

#[test]
fn hierarchical_table_attributes_and_hpd() {
    let rw_all = RW_EL1 | 0b01 << 6;
    // APTable (62:61) = 01: no EL0 access below.
    assert!(!allowed(rw_all, 1 << 61, 0, false, Access::Read, true));
    assert!(allowed(rw_all, 1 << 61, 0, false, Access::Write, false));
    // APTable = 10: no writes below.
    assert!(!allowed(rw_all, 2 << 61, 0, false, Access::Write, false));
    assert!(!allowed(rw_all, 2 << 61, 0, false, Access::Write, true));
    assert!(allowed(rw_all, 2 << 61, 0, false, Access::Read, true));
    // PXNTable (59) and UXNTable (60).
    let ro_all = RW_EL1 | 0b11 << 6;
    assert!(!allowed(ro_all, 1 << 59, 0, false, Access::Fetch, false));
    assert!(allowed(ro_all, 1 << 59, 0, false, Access::Fetch, true));
    assert!(!allowed(ro_all, 1 << 60, 0, false, Access::Fetch, true));
    // TCR.HPD0 (bit 41) disables all of them for TTBR0.
    let hpd0 = 1 << 41;
    assert!(allowed(
        rw_all,
        3 << 61 | 3 << 59,
        hpd0,
        false,
        Access::Write,
        true
    ));
    assert!(allowed(ro_all, 3 << 59, hpd0, false, Access::Fetch, true));
    // The effective values are reported.
    let (t, r) = setup(rw_all, 2 << 61 | 1 << 60, 0, false);
    let tr = translate(&r, VA, Access::Read, true, &t.mem).unwrap();
    assert_eq!((tr.ap, tr.uxn, tr.pxn), (0b11, true, false));
    assert!(tr.readable(true) && !tr.writable(false) && tr.executable(false));
}

#[test]
fn contiguous_bit_is_reported_but_ignored() {
    let (t, r) = setup(RW_EL1 | 1 << 52, 0, 0, false);
    let tr = translate(&r, VA + 0x123, Access::Write, false, &t.mem).unwrap();
    assert_eq!(tr.pa, 0x4040_0123);
    assert!(tr.contiguous && tr.size_log2 == 12);
}
