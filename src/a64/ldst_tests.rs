//! Decoder tests; each word was produced by GNU as (armv8.1-a) and is commented with its text.

use super::*;

fn gpr(n: u8, wide: bool) -> Option<XferReg> {
    Some(XferReg::Gpr { n, wide })
}

#[test]
fn pairs_and_writeback_forms_decode() {
    // stp x0, x0, [x1]
    let op = decode(0xa900_0020).unwrap();
    assert!(!op.load);
    assert_eq!(op.regs, [gpr(0, true), gpr(0, true)]);
    assert_eq!(op.size, 8);
    assert_eq!(
        op.addressing,
        Addressing::Offset {
            base: 1,
            imm: 0,
            writeback: false
        }
    );
    // ldp w2, w3, [x1, #8]!
    let op = decode(0x29c1_0c22).unwrap();
    assert!(op.load);
    assert_eq!(op.regs, [gpr(2, false), gpr(3, false)]);
    assert_eq!(op.total_bytes(), 8);
    assert_eq!(
        op.addressing,
        Addressing::Offset {
            base: 1,
            imm: 8,
            writeback: true
        }
    );
    // ldr x4, [x1], #16
    let op = decode(0xf841_0424).unwrap();
    assert_eq!(op.addressing, Addressing::PostIndex { base: 1, imm: 16 });
    // strb w10, [x1, #-1]!
    let op = decode(0x381f_fc2a).unwrap();
    assert_eq!((op.load, op.size), (false, 1));
    assert_eq!(
        op.addressing,
        Addressing::Offset {
            base: 1,
            imm: -1,
            writeback: true
        }
    );
}

#[test]
fn sign_extension_and_register_offsets_decode() {
    // ldrsb x5, [x1, #4081]
    let op = decode(0x39bf_c425).unwrap();
    assert_eq!((op.size, op.sign_extend), (1, true));
    assert_eq!(op.regs[0], gpr(5, true));
    // ldrsh w6, [x1, x2, lsl #1]
    let op = decode(0x78e2_7826).unwrap();
    assert_eq!((op.size, op.sign_extend), (2, true));
    assert_eq!(
        op.addressing,
        Addressing::RegOffset {
            base: 1,
            index: 2,
            index_wide: true,
            extend: Extend::Lsl,
            shift: 1
        }
    );
    // ldr w7, [x1, w2, sxtw #2]
    let op = decode(0xb862_d827).unwrap();
    assert!(matches!(
        op.addressing,
        Addressing::RegOffset {
            extend: Extend::Sxtw,
            shift: 2,
            index_wide: false,
            ..
        }
    ));
    // ldpsw x8, x9, [x1]
    let op = decode(0x6940_2428).unwrap();
    assert_eq!((op.size, op.sign_extend), (4, true));
    assert_eq!(op.regs, [gpr(8, true), gpr(9, true)]);
}

#[test]
fn simd_transfers_decode() {
    // str q0, [x1]
    let op = decode(0x3d80_0020).unwrap();
    assert_eq!(op.regs[0], Some(XferReg::Simd { n: 0, bytes: 16 }));
    assert_eq!(op.size, 16);
    // ldur h3, [x1, #-3]
    let op = decode(0x7c5f_d023).unwrap();
    assert_eq!(op.regs[0], Some(XferReg::Simd { n: 3, bytes: 2 }));
    assert!(matches!(op.addressing, Addressing::Offset { imm: -3, .. }));
}

#[test]
fn exclusives_atomics_literals_and_non_memory_are_refused() {
    for word in [
        0xc85f_7c20, // ldxr x0, [x1]
        0xf820_0041, // ldadd x0, x1, [x2]
        0x5800_0000, // ldr x0, . (literal)
        0xd503_201f, // nop
    ] {
        assert!(
            matches!(decode(word), Err(DecodeError::NotEmulable { .. })),
            "{word:#x} accepted"
        );
    }
    assert!(decode(0x0000_0000).is_err()); // udf #0
}

#[test]
fn index_extension() {
    assert_eq!(extend_index(0xffff_ffff, Extend::Sxtw, 2), (-4i64) as u64);
    assert_eq!(extend_index(0x1_0000_0001, Extend::Uxtw, 0), 1);
    assert_eq!(extend_index(3, Extend::Lsl, 3), 24);
}
