use std::cell::{Cell, RefCell};

use super::*;
use vm_memory::{Bytes, GuestAddress};

const RAM: u64 = 0x4000_0000;
/// Recognisable instruction words: `nop`, `mov x0, #1`.
const NOP: u32 = 0xd503_201f;
const MOV_X0_1: u32 = 0xd280_0020;
/// `mov x1, #2`.
const MOV_X1_2: u32 = 0xd280_0041;

/// 256 bytes of "RAM" at `RAM`, filled with `nop`, with switchable failures.
struct FakeMem {
    bytes: RefCell<Vec<u8>>,
    fail_writes: Cell<bool>,
    writes: Cell<usize>,
}

impl FakeMem {
    fn new() -> Self {
        FakeMem {
            bytes: RefCell::new(NOP.to_le_bytes().repeat(64)),
            fail_writes: Cell::new(false),
            writes: Cell::new(0),
        }
    }

    fn range(&self, pa: u64, len: usize) -> Result<std::ops::Range<usize>, PhysAccessError> {
        let off = pa.wrapping_sub(RAM) as usize;
        if pa < RAM || off + len > self.bytes.borrow().len() {
            return Err(PhysAccessError {
                pa,
                len,
                reason: "outside fake RAM".into(),
            });
        }
        Ok(off..off + len)
    }

    fn word(&self, pa: u64) -> u32 {
        let mut b = [0u8; 4];
        self.read(pa, &mut b).unwrap();
        u32::from_le_bytes(b)
    }

    fn set_word(&self, pa: u64, w: u32) {
        let r = self.range(pa, 4).unwrap();
        self.bytes.borrow_mut()[r].copy_from_slice(&w.to_le_bytes());
    }
}

impl PhysAccess for FakeMem {
    fn read(&self, pa: u64, buf: &mut [u8]) -> Result<(), PhysAccessError> {
        let r = self.range(pa, buf.len())?;
        buf.copy_from_slice(&self.bytes.borrow()[r]);
        Ok(())
    }
    fn write(&self, pa: u64, buf: &[u8]) -> Result<(), PhysAccessError> {
        let r = self.range(pa, buf.len())?;
        if self.fail_writes.get() {
            return Err(PhysAccessError {
                pa,
                len: buf.len(),
                reason: "injected write failure".into(),
            });
        }
        self.writes.set(self.writes.get() + 1);
        self.bytes.borrow_mut()[r].copy_from_slice(buf);
        Ok(())
    }
}

/// A table with breakpoints planted at each of `pas`.
fn planted(mem: &FakeMem, pas: &[u64]) -> SwBreakpoints {
    let mut t = SwBreakpoints::new();
    for &pa in pas {
        t.insert(mem, pa).unwrap();
    }
    t
}

#[test]
fn brk0_encoding() {
    // BRK: bits 31..21 = 0b11010100_001, imm16 at 20..5, bits 4..0 = 0.
    assert_eq!(BRK0 >> 21, 0b110_1010_0001);
    assert_eq!((BRK0 >> 5) & 0xffff, 0);
    assert_eq!(BRK0_BYTES, [0x00, 0x00, 0x20, 0xd4]);
}

#[test]
fn insert_plants_once_and_counts_references() {
    let mem = FakeMem::new();
    mem.set_word(RAM + 8, MOV_X0_1);
    let mut t = SwBreakpoints::new();
    assert_eq!(t.insert(&mem, RAM + 8), Ok(1));
    assert_eq!(mem.word(RAM + 8), BRK0);
    assert_eq!(t.original(RAM + 8), Some(MOV_X0_1));
    let writes = mem.writes.get();
    assert_eq!(t.insert(&mem, RAM + 8), Ok(2));
    assert_eq!(mem.writes.get(), writes, "second insert must not write");
    assert_eq!(t.refs(RAM + 8), 2);
    assert_eq!(t.addrs().collect::<Vec<_>>(), vec![RAM + 8]);
}

#[test]
fn remove_restores_only_at_zero() {
    let mem = FakeMem::new();
    mem.set_word(RAM + 8, MOV_X0_1);
    let mut t = planted(&mem, &[RAM + 8, RAM + 8]);
    assert_eq!(t.remove(&mem, RAM + 8), Ok(Removed::StillReferenced(1)));
    assert_eq!(mem.word(RAM + 8), BRK0);
    assert_eq!(t.remove(&mem, RAM + 8), Ok(Removed::Restored));
    assert_eq!(mem.word(RAM + 8), MOV_X0_1);
    assert!(t.is_empty());
    assert_eq!(
        t.remove(&mem, RAM + 8),
        Err(SwBpError::NotInserted { pa: RAM + 8 })
    );
}

#[test]
fn misaligned_and_unbacked_addresses_fail_without_change() {
    let mem = FakeMem::new();
    let mut t = SwBreakpoints::new();
    assert_eq!(
        t.insert(&mem, RAM + 2),
        Err(SwBpError::Misaligned { pa: RAM + 2 })
    );
    assert!(matches!(
        t.insert(&mem, RAM + 0x1000),
        Err(SwBpError::Insert { pa, .. }) if pa == RAM + 0x1000
    ));
    assert!(t.is_empty());
}

#[test]
fn write_failures_leave_table_and_memory_unchanged() {
    let mem = FakeMem::new();
    let mut t = SwBreakpoints::new();
    mem.fail_writes.set(true);
    assert!(matches!(t.insert(&mem, RAM), Err(SwBpError::Insert { .. })));
    assert!(t.is_empty());
    assert_eq!(mem.word(RAM), NOP);

    mem.fail_writes.set(false);
    t.insert(&mem, RAM).unwrap();
    mem.fail_writes.set(true);
    assert!(matches!(t.remove(&mem, RAM), Err(SwBpError::Remove { .. })));
    assert_eq!((t.refs(RAM), mem.word(RAM)), (1, BRK0));
    mem.fail_writes.set(false);
    assert_eq!(t.remove(&mem, RAM), Ok(Removed::Restored));
    assert_eq!(mem.word(RAM), NOP);
}

#[test]
fn guest_overwrite_is_not_clobbered() {
    let mem = FakeMem::new();
    let mut t = planted(&mem, &[RAM + 4]);
    mem.set_word(RAM + 4, MOV_X0_1); // the guest rewrote its code
    assert_eq!(
        t.remove(&mem, RAM + 4),
        Ok(Removed::GuestOverwrote(MOV_X0_1))
    );
    assert_eq!(mem.word(RAM + 4), MOV_X0_1);
    assert!(t.is_empty());
}

#[test]
fn remove_all_restores_everything_it_can() {
    let mem = FakeMem::new();
    mem.set_word(RAM + 0x10, MOV_X0_1);
    let mut t = planted(&mem, &[RAM, RAM + 0x10, RAM + 0x10, RAM + 0x20]);
    mem.set_word(RAM + 0x20, MOV_X0_1); // guest-owned now
    assert_eq!(t.remove_all(&mem), Ok(3));
    assert!(t.is_empty());
    assert_eq!(
        [mem.word(RAM), mem.word(RAM + 0x10), mem.word(RAM + 0x20)],
        [NOP, MOV_X0_1, MOV_X0_1]
    );
}

#[test]
fn remove_all_keeps_and_reports_failures() {
    let mem = FakeMem::new();
    let mut t = planted(&mem, &[RAM, RAM + 4]);
    mem.fail_writes.set(true);
    match t.remove_all(&mem) {
        Err(SwBpError::RemoveAll {
            failed, first_pa, ..
        }) => assert_eq!((failed, first_pa), (2, RAM)),
        other => panic!("expected RemoveAll error, got {other:?}"),
    }
    assert_eq!((t.len(), t.refs(RAM)), (2, 1));
    mem.fail_writes.set(false);
    assert_eq!(t.remove_all(&mem), Ok(2));
    assert_eq!(mem.word(RAM + 4), NOP);
}

#[test]
fn shadow_shows_originals_including_partial_overlaps() {
    let mem = FakeMem::new();
    mem.set_word(RAM + 4, MOV_X0_1);
    let t = planted(&mem, &[RAM + 4, RAM + 8]);
    // Whole range.
    let mut buf = [0u8; 16];
    mem.read(RAM, &mut buf).unwrap();
    t.shadow(RAM, &mut buf);
    let mut want = NOP.to_le_bytes().repeat(4);
    want[4..8].copy_from_slice(&MOV_X0_1.to_le_bytes());
    assert_eq!(buf.to_vec(), want);
    // From the middle of one breakpoint to the middle of the next.
    let mut mid = [0u8; 4];
    mem.read(RAM + 6, &mut mid).unwrap();
    t.shadow(RAM + 6, &mut mid);
    assert_eq!(mid.to_vec(), want[6..10].to_vec());
    // A read that touches nothing planted is untouched.
    let mut far = [0u8; 4];
    mem.read(RAM + 0x40, &mut far).unwrap();
    t.shadow(RAM + 0x40, &mut far);
    assert_eq!(u32::from_le_bytes(far), NOP);
}

#[test]
fn shadow_leaves_guest_rewritten_words() {
    let mem = FakeMem::new();
    let t = planted(&mem, &[RAM + 4]);
    mem.set_word(RAM + 4, MOV_X0_1);
    let mut buf = [0u8; 4];
    mem.read(RAM + 4, &mut buf).unwrap();
    t.shadow(RAM + 4, &mut buf);
    assert_eq!(u32::from_le_bytes(buf), MOV_X0_1);
}

#[test]
fn patch_write_updates_original_and_keeps_brk() {
    let mem = FakeMem::new();
    let mut t = planted(&mem, &[RAM + 4]);
    // 6 bytes from RAM+2: two bytes of word 0, all of the breakpoint word.
    let mut data = [0x11, 0x22, 0x20, 0x00, 0x80, 0xd2];
    t.patch_write(RAM + 2, &mut data);
    assert_eq!(&data[2..], &BRK0_BYTES);
    assert_eq!(&data[..2], &[0x11, 0x22]);
    assert_eq!(t.original(RAM + 4), Some(MOV_X0_1));
}

#[test]
fn write_through_keeps_breakpoints_and_is_transactional() {
    let mem = FakeMem::new();
    let mut t = planted(&mem, &[RAM + 4, RAM + 8]);
    // Overwrite the upper half of word 4 and the lower half of word 8.
    t.write_through(&mem, RAM + 6, &[0x80, 0xd2, 0xaa, 0xbb])
        .unwrap();
    assert_eq!((mem.word(RAM + 4), mem.word(RAM + 8)), (BRK0, BRK0));
    let orig4 = t.original(RAM + 4).unwrap().to_le_bytes();
    let orig8 = t.original(RAM + 8).unwrap().to_le_bytes();
    assert_eq!(&orig4[2..], &[0x80, 0xd2]);
    assert_eq!(&orig8[..2], &[0xaa, 0xbb]);
    // A failed write changes neither memory nor the saved originals.
    mem.fail_writes.set(true);
    assert!(matches!(
        t.write_through(&mem, RAM + 4, &[1, 2, 3, 4]),
        Err(SwBpError::Write { len: 4, .. })
    ));
    assert_eq!(t.original(RAM + 4).unwrap().to_le_bytes(), orig4);
    mem.fail_writes.set(false);
    // Removing now restores the debugger-written bytes.
    assert_eq!(t.remove(&mem, RAM + 4), Ok(Removed::Restored));
    assert_eq!(mem.word(RAM + 4).to_le_bytes(), orig4);
}

#[test]
fn write_through_over_a_guest_rewritten_word_writes_data_as_is() {
    let mem = FakeMem::new();
    mem.set_word(RAM + 4, MOV_X1_2);
    let mut t = planted(&mem, &[RAM + 4]);
    mem.set_word(RAM + 4, MOV_X0_1);
    t.write_through(&mem, RAM + 4, &NOP.to_le_bytes()).unwrap();
    assert_eq!(mem.word(RAM + 4), NOP);
    assert_eq!(
        t.original(RAM + 4),
        Some(MOV_X1_2),
        "stale entry not updated"
    );
    assert_eq!(t.remove(&mem, RAM + 4), Ok(Removed::GuestOverwrote(NOP)));
}

#[test]
fn guest_memory_mmap_implements_phys_access() {
    let mem = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(RAM), 0x1000)]).unwrap();
    mem.write_slice(&MOV_X0_1.to_le_bytes(), GuestAddress(RAM + 0x10))
        .unwrap();
    let mut t = SwBreakpoints::new();
    t.insert(&mem, RAM + 0x10).unwrap();
    let mut b = [0u8; 4];
    PhysAccess::read(&mem, RAM + 0x10, &mut b).unwrap();
    assert_eq!(u32::from_le_bytes(b), BRK0);
    assert_eq!(t.remove(&mem, RAM + 0x10), Ok(Removed::Restored));
    PhysAccess::read(&mem, RAM + 0x10, &mut b).unwrap();
    assert_eq!(u32::from_le_bytes(b), MOV_X0_1);
    let err = PhysAccess::read(&mem, RAM + 0xffe, &mut b).unwrap_err();
    assert_eq!((err.pa, err.len), (RAM + 0xffe, 4));
    assert!(matches!(
        t.insert(&mem, RAM + 0x2000),
        Err(SwBpError::Insert { .. })
    ));
}
