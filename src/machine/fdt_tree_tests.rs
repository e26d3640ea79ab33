//! FDT reader/writer tests: round trips through vm-fdt's writer and our own, edits, and
//! hostile blobs (truncated, corrupted, deeply nested) that must give errors, never panics.

use super::*;
use crate::test_rng::Rng;
use vm_fdt::FdtWriter;

/// A small tree written by vm-fdt (an independent writer): a reservation, nested nodes,
/// string, cell and empty properties.
fn sample() -> Vec<u8> {
    let mut f =
        FdtWriter::new_with_mem_reserv(&[vm_fdt::FdtReserveEntry::new(0x1000, 0x2000).unwrap()])
            .unwrap();
    let root = f.begin_node("").unwrap();
    f.property_u32("#address-cells", 2).unwrap();
    f.property_string("compatible", "linux,dummy-virt").unwrap();
    let chosen = f.begin_node("chosen").unwrap();
    f.property_string("stdout-path", "/pl011@9000000").unwrap();
    f.end_node(chosen).unwrap();
    let uart = f.begin_node("pl011@9000000").unwrap();
    f.property_array_u64("reg", &[0x900_0000, 0x1000]).unwrap();
    f.property_null("always-on").unwrap();
    f.end_node(uart).unwrap();
    f.end_node(root).unwrap();
    f.finish().unwrap()
}

#[test]
fn a_vm_fdt_blob_reads_back_as_written() {
    let t = Tree::parse(&sample()).unwrap();
    assert_eq!(t.reserved, vec![(0x1000, 0x2000)]);
    assert_eq!(t.root.name, "");
    assert_eq!(t.root.prop_u64("#address-cells"), Some(2));
    assert_eq!(t.root.prop_str("compatible"), Some("linux,dummy-virt"));
    let chosen = t.node("/chosen").unwrap();
    assert_eq!(chosen.prop_str("stdout-path"), Some("/pl011@9000000"));
    let uart = t.node("/pl011@9000000").unwrap();
    assert_eq!(uart.prop("reg").unwrap().len(), 16);
    assert_eq!(uart.prop("always-on"), Some(&[][..]));
    assert!(t.node("/nothing").is_none());
}

#[test]
fn our_writer_round_trips_and_keeps_what_it_did_not_touch() {
    let t = Tree::parse(&sample()).unwrap();
    let again = Tree::parse(&t.to_bytes()).unwrap();
    assert_eq!(again, t);
    // The same bytes after one more round: the writer is deterministic.
    assert_eq!(again.to_bytes(), t.to_bytes());
}

#[test]
fn edits_set_replace_remove_and_create() {
    let mut t = Tree::parse(&sample()).unwrap();
    let chosen = t.node_or_insert("/chosen");
    chosen.set_prop("bootargs", b"console=ttyAMA0\0".to_vec());
    chosen.set_prop("bootargs", b"quiet\0".to_vec());
    assert!(chosen.remove_prop("stdout-path"));
    assert!(!chosen.remove_prop("stdout-path"));
    t.node_or_insert("/a/b")
        .set_prop("x", 7u32.to_be_bytes().to_vec());
    let back = Tree::parse(&t.to_bytes()).unwrap();
    let chosen = back.node("/chosen").unwrap();
    assert_eq!(chosen.prop_str("bootargs"), Some("quiet"));
    assert_eq!(chosen.props.len(), 1);
    assert_eq!(back.node("/a/b").unwrap().prop_u64("x"), Some(7));
}

#[test]
fn header_errors_name_the_problem() {
    let good = sample();
    assert_eq!(Tree::parse(&good[..3]), Err(DtbError::Short(3)));
    assert_eq!(
        Tree::parse(b"\x7fELF\0\0\0\0"),
        Err(DtbError::Magic(0x7f45_4c46))
    );
    let mut v = good.clone();
    v[20..24].copy_from_slice(&15u32.to_be_bytes()); // version 15
    assert!(matches!(Tree::parse(&v), Err(DtbError::Version { .. })));
    let mut v = good.clone();
    v[4..8].copy_from_slice(&(good.len() as u32 + 1).to_be_bytes()); // totalsize past the end
    assert!(matches!(Tree::parse(&v), Err(DtbError::Bounds { .. })));
    let mut v = good.clone();
    v[12..16].copy_from_slice(&u32::MAX.to_be_bytes()); // strings offset
    assert!(matches!(Tree::parse(&v), Err(DtbError::Bounds { .. })));
}

#[test]
fn every_truncation_and_random_corruption_is_an_error_or_a_tree_never_a_panic() {
    let good = sample();
    for n in 0..good.len() {
        let mut v = good[..n].to_vec();
        // Keep totalsize consistent so the structure checks, not only the size check, run.
        if n >= 8 {
            v[4..8].copy_from_slice(&(n as u32).to_be_bytes());
        }
        let _ = Tree::parse(&v);
    }
    let mut rng = Rng(0x5eed_f00d);
    for _ in 0..20_000 {
        let mut v = good.clone();
        for _ in 0..1 + rng.below(4) {
            let i = rng.below(v.len() as u64) as usize;
            v[i] = rng.next() as u8;
        }
        if let Ok(t) = Tree::parse(&v) {
            // Whatever parsed writes back and reads again to the same tree.
            assert_eq!(Tree::parse(&t.to_bytes()).unwrap(), t);
        }
    }
}

#[test]
fn structure_errors_are_reported_with_their_offset() {
    let mut t = Tree::default();
    t.node_or_insert("/x");
    let good = t.to_bytes();
    let off_struct = u32::from_be_bytes(good[8..12].try_into().unwrap()) as usize;
    let mut v = good.clone();
    v[off_struct..off_struct + 4].copy_from_slice(&0x7u32.to_be_bytes());
    let e = Tree::parse(&v).unwrap_err().to_string();
    assert!(e.contains("unknown token 0x7"), "{e}");
    // A root with a name.
    let mut named = Tree::default();
    named.root.name = "root".into();
    let e = Tree::parse(&named.to_bytes()).unwrap_err().to_string();
    assert!(e.contains("root node named"), "{e}");
}

#[test]
fn nesting_deeper_than_the_bound_is_rejected() {
    let deep = |levels: usize| {
        let mut t = Tree::default();
        t.node_or_insert(&"/n".repeat(levels));
        t.to_bytes()
    };
    assert!(Tree::parse(&deep(MAX_DEPTH - 1)).is_ok());
    let e = Tree::parse(&deep(MAX_DEPTH)).unwrap_err().to_string();
    assert!(e.contains("nested deeper"), "{e}");
}
