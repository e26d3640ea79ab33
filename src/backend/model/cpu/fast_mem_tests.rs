//! The data TLB (`mmu::Tlb` data entries, filled by `Cpu::fill_data_tlb`) never lets an
//! access through that the full path would refuse: a page read first and then written
//! read-only, an EL1 page then touched from EL0, a mapping changed and flushed by a TTBR
//! write.

use super::super::{Cpu, Stop};
use crate::a64::esr;
use crate::a64::regs::sys;
use crate::backend::model::testutil::{cpu_with, RAM};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

/// Stage-1 tables (Arm ARM D8.3 "Translation table descriptor formats", 4 KiB granule):
/// the level-0 table and the level-1 table it points to.
const L0: u64 = RAM + 0x10_0000;
const L1: u64 = RAM + 0x10_1000;
/// Table descriptor: bits 1:0 = 0b11, next-level address.
const TABLE: u64 = 0b11;
/// Level-1 block descriptor: bits 1:0 = 0b01, AF (bit 10), AttrIndx 0.
const BLOCK: u64 = 0b01 | 1 << 10;
/// AP\[2:1\] (bits 7:6): 0b00 EL1 read/write, 0b01 read/write at EL0 too, 0b10 EL1 read-only.
const AP_EL1_RW: u64 = 0b00 << 6;
const AP_ALL_RW: u64 = 0b01 << 6;
const AP_EL1_RO: u64 = 0b10 << 6;
/// TCR_EL1: T0SZ = 16 (48-bit VAs, a level-0 start), TG0 = 4 KiB, EPD1 (bit 23): no TTBR1
/// walks, IPS (bits 34:32) = 0b101, 48 bits (Arm ARM D19.2.139 "TCR_EL1").
const TCR: u64 = 16 | 1 << 23 | 0b101 << 32;
/// MAIR_EL1 attribute 0: Normal, write-back (0xff).
const MAIR: u64 = 0xff;
/// PSTATE of EL1h and of EL0t, DAIF masked.
const EL1H: u64 = 0x3c5;
const EL0T: u64 = 0x3c0;

/// Level-1 entry `n` (VA n GiB) mapping RAM's first GiB with `ap`.
fn map(mem: &GuestMemoryMmap, n: u64, ap: u64) {
    mem.write_obj(RAM | BLOCK | ap, GuestAddress(L1 + 8 * n))
        .expect("table in RAM");
}

/// A CPU at EL1 with the MMU on: VA 1 GiB (= RAM) EL1 read/write, VA 2 GiB the same RAM
/// read-only, VA 3 GiB the same RAM read/write from EL0 too.
fn mmu_cpu() -> (Cpu, GuestMemoryMmap) {
    let (mut cpu, mem) = cpu_with(&[0]);
    mem.write_obj(L1 | TABLE, GuestAddress(L0)).expect("L0");
    map(&mem, 1, AP_EL1_RW);
    map(&mem, 2, AP_EL1_RO);
    map(&mem, 3, AP_ALL_RW);
    for (reg, v) in [
        (sys::MAIR_EL1, MAIR),
        (sys::TCR_EL1, TCR),
        (sys::TTBR0_EL1, L0),
        (sys::SCTLR_EL1, super::super::state::SCTLR_RESET | 1),
    ] {
        cpu.write_sysreg(reg, v).expect("writable");
    }
    cpu.st.pstate = EL1H;
    (cpu, mem)
}

fn is_permission_fault(r: Result<impl std::fmt::Debug, Stop>) -> bool {
    match r {
        Err(Stop::Exception(e)) => {
            (e.ec == esr::ec::DABT_CUR || e.ec == esr::ec::DABT_LOW) && e.iss & 0x3c == 0x0c
        }
        _ => false,
    }
}

#[test]
fn the_data_tlb_keeps_permissions_els_and_flushes() {
    let (mut cpu, mem) = mmu_cpu();
    let (rw, ro, user) = (RAM + 0x8000, (2 << 30) + 0x8000, (3 << 30) + 0x8000);
    cpu.write_mem(rw, 8, 0x1111, None, false)
        .expect("EL1 write");
    assert_eq!(
        cpu.read_mem(ro, 8, None, false),
        Ok(0x1111),
        "the alias reads"
    );
    assert_eq!(
        cpu.read_mem(ro, 8, None, false),
        Ok(0x1111),
        "from the data TLB"
    );
    assert!(
        is_permission_fault(cpu.write_mem(ro, 8, 0x2222, None, false)),
        "a read-only page read before is still not writable"
    );
    assert_eq!(mem.read_obj::<u64>(GuestAddress(rw)).ok(), Some(0x1111));
    // EL0: the EL1 page, just read and written from EL1 (its data-TLB entry is tagged
    // EL1; the three VAs share one slot, so it is filled again here).
    cpu.write_mem(rw, 8, 0x1111, None, false)
        .expect("EL1 write");
    assert_eq!(cpu.read_mem(rw, 8, None, false), Ok(0x1111));
    cpu.st.pstate = EL0T;
    assert!(is_permission_fault(cpu.read_mem(rw, 8, None, false)));
    assert!(is_permission_fault(cpu.write_mem(rw, 8, 3, None, false)));
    cpu.write_mem(user, 8, 0x3333, None, false)
        .expect("EL0 page");
    assert_eq!(cpu.read_mem(user, 8, None, false), Ok(0x3333));
    // Back at EL1, make the alias writable: only after the TTBR write (a flush) does it
    // take effect, as on the full path.
    cpu.st.pstate = EL1H;
    map(&mem, 2, AP_EL1_RW);
    cpu.write_sysreg(sys::TTBR0_EL1, L0).expect("TTBR0");
    cpu.write_mem(ro, 8, 0x4444, None, false)
        .expect("writable now");
    assert_eq!(mem.read_obj::<u64>(GuestAddress(rw)).ok(), Some(0x4444));
    // And the other way round: read-only again, flushed by a TLBI-equivalent flush.
    map(&mem, 2, AP_EL1_RO);
    cpu.tlb.flush();
    assert!(is_permission_fault(cpu.write_mem(ro, 8, 5, None, false)));
    assert_eq!(mem.read_obj::<u64>(GuestAddress(rw)).ok(), Some(0x4444));
}
