//! The GIC's register maps as a guest sees them: the values a guest read on KVM 6.1 (nested
//! machine), read/write semantics of the banks, RAZ/WI for holes and wrong sizes, the ICC
//! registers, and the wake-ups of other vCPUs.

use std::sync::{Arc, Mutex};

use super::*;
use crate::backend::model::cpu::state::mpidr_for;

const GICD: u64 = 0x0800_0000;
const GICR: u64 = 0x080a_0000;
const SGI: u64 = 0x1_0000;

fn gic(vcpus: u64) -> Gic {
    Gic::new(
        GicLayout {
            dist_base: GICD,
            redist_base: GICR,
            redist_size: REDIST_STRIDE * vcpus,
        },
        mpidr_for,
    )
}

#[test]
fn reset_values_are_what_a_guest_read_on_kvm() {
    let g = gic(1);
    let rd = |off, size| g.mmio_read(off, size);
    assert_eq!(rd(GICD, 4), 0x50, "GICD_CTLR: ARE, DS");
    assert_eq!(rd(GICD + 4, 4), 0x0048_0008, "GICD_TYPER");
    assert_eq!(rd(GICD + 8, 4), 0x4b00_343b, "GICD_IIDR");
    assert_eq!(rd(GICD + 0xc, 4), 0, "GICD_TYPER2");
    assert_eq!(rd(GICD + 0x10, 4), 0xffff_ffff, "GICD_STATUSR");
    assert_eq!(
        rd(GICD + 0x84, 4),
        0xffff_ffff,
        "GICD_IGROUPR1: SPIs group 1"
    );
    assert_eq!(rd(GICD + 0x100, 4), 0, "GICD_ISENABLER0: RAZ");
    assert_eq!(rd(GICD + 0xc08, 4), 0xaaaa_aaaa, "GICD_ICFGR2: SPIs edge");
    assert_eq!(rd(GICD + 0x6100, 8), 0, "GICD_IROUTER32");
    assert_eq!(rd(GICD + 0xffe8, 4), 0x3b, "GICD_PIDR2");
    assert_eq!(rd(GICD + 0x8000, 4), 0, "a hole");
    assert_eq!(rd(GICR, 4), 0x6, "GICR_CTLR");
    assert_eq!(rd(GICR + 4, 4), 0x4b00_043b, "GICR_IIDR");
    assert_eq!(rd(GICR + 8, 4), 0x10, "GICR_TYPER: Last");
    assert_eq!(rd(GICR + 0xc, 4), 0, "GICR_TYPER: affinity 0");
    assert_eq!(rd(GICR + 0x14, 4), 0, "GICR_WAKER");
    assert_eq!(rd(GICR + 0xffe8, 4), 0x3b, "GICR_PIDR2");
    assert_eq!(rd(GICR + SGI + 0x80, 4), 0xffff_ffff, "GICR_IGROUPR0");
    assert_eq!(rd(GICR + SGI + 0x100, 4), 0xffff, "GICR_ISENABLER0: SGIs");
    assert_eq!(rd(GICR + SGI + 0x200, 4), 0, "GICR_ISPENDR0");
    assert_eq!(rd(GICR + SGI + 0xc00, 4), 0xaaaa_aaaa, "GICR_ICFGR0");
    assert_eq!(rd(GICR + SGI + 0xc04, 4), 0, "GICR_ICFGR1");
    let icc = |r| g.icc_read(0, r);
    assert_eq!(icc(Icc::Sre), Some(0x7));
    assert_eq!(icc(Icc::Ctlr), Some(0x8c00));
    assert_eq!(icc(Icc::Pmr), Some(0));
    assert_eq!(icc(Icc::Bpr1), Some(3));
    assert_eq!(icc(Icc::Igrpen1), Some(0));
    assert_eq!(icc(Icc::Rpr), Some(0xff));
    assert_eq!(icc(Icc::Hppir1), Some(1023));
    assert_eq!(icc(Icc::Iar1), Some(1023));
}

#[test]
fn writes_behave_as_on_kvm() {
    let g = gic(1);
    g.mmio_write(0, GICD, 4, 0x13);
    assert_eq!(g.mmio_read(GICD, 4), 0x52, "only EnableGrp1 is kept");
    g.icc_write(0, Icc::Pmr, 0xff).unwrap();
    assert_eq!(g.icc_read(0, Icc::Pmr), Some(0xf8), "5 priority bits");
    g.icc_write(0, Icc::Bpr1, 0).unwrap();
    assert_eq!(g.icc_read(0, Icc::Bpr1), Some(3), "clamped to the minimum");
    g.mmio_write(0, GICR + SGI + 0x400, 4, 0xffff_ffff);
    assert_eq!(g.mmio_read(GICR + SGI + 0x400, 4), 0xf8f8_f8f8);
    g.mmio_write(0, GICR + SGI + 0x41b, 1, 0xa0);
    assert_eq!(g.mmio_read(GICR + SGI + 0x418, 4), 0xa000_0000);
    g.mmio_write(0, GICR + SGI + 0xc04, 4, 0xffff_ffff);
    g.mmio_write(0, GICR + SGI + 0xc00, 4, 0);
    assert_eq!(g.mmio_read(GICR + SGI + 0xc04, 4), 0, "ICFGR1 read-only");
    assert_eq!(
        g.mmio_read(GICR + SGI + 0xc00, 4),
        0xaaaa_aaaa,
        "ICFGR0 read-only"
    );
    g.mmio_write(0, GICR + SGI + 0x180, 4, 0xffff_ffff);
    g.mmio_write(0, GICR + SGI + 0x100, 4, 1 << 27);
    assert_eq!(g.mmio_read(GICR + SGI + 0x100, 4), 1 << 27);
    g.mmio_write(0, GICR + SGI + 0x200, 4, 0b1010);
    assert_eq!(
        g.mmio_read(GICR + SGI + 0x280, 4),
        0b1010,
        "ICPENDR reads pending"
    );
    g.mmio_write(0, GICR + SGI + 0x280, 4, 0b10);
    assert_eq!(g.mmio_read(GICR + SGI + 0x200, 4), 0b1000);
    g.mmio_write(0, GICR + SGI + 0x300, 4, 1);
    assert_eq!(
        g.mmio_read(GICR + SGI + 0x380, 4),
        1,
        "ICACTIVER reads active"
    );
    g.mmio_write(0, GICR + SGI + 0x80, 4, 0);
    assert_eq!(g.mmio_read(GICR + SGI + 0x80, 4), 0, "IGROUPR0 writable");
    g.mmio_write(0, GICR + 0x14, 4, 0x2);
    assert_eq!(g.mmio_read(GICR + 0x14, 4), 0, "WAKER is RAZ/WI");
}

#[test]
fn spi_registers_and_routing() {
    let g = gic(2);
    // SPI 33: enable, priority, level, pending, routed to Aff0 = 1.
    g.mmio_write(0, GICD + 0x104, 4, 1 << 1);
    assert_eq!(g.mmio_read(GICD + 0x104, 4), 0b10);
    g.mmio_write(0, GICD + 0x421, 1, 0x4c);
    assert_eq!(g.mmio_read(GICD + 0x420, 4), 0x4800, "priority bits [7:3]");
    g.mmio_write(0, GICD + 0xc08, 4, 0);
    assert_eq!(
        g.mmio_read(GICD + 0xc08, 4),
        0,
        "SPIs configurable as level"
    );
    g.mmio_write(0, GICD + 0x6108, 8, 0xff_8000_0001);
    assert_eq!(g.mmio_read(GICD + 0x6108, 8), 1, "Aff2.Aff1.Aff0 kept");
    g.mmio_write(0, GICD + 0x610c, 4, 0x12);
    g.mmio_write(0, GICD + 0x6108, 4, 0x0002_0301);
    assert_eq!(g.mmio_read(GICD + 0x6108, 4), 0x0002_0301);
    assert_eq!(g.mmio_read(GICD + 0x610c, 4), 0);
    g.mmio_write(0, GICD + 0x6108, 4, 1);
    g.mmio_write(0, GICD + 0x204, 4, 1 << 1);
    assert_eq!(g.mmio_read(GICD + 0x204, 4), 0b10);
    g.mmio_write(0, GICD, 4, 2);
    for c in 0..2 {
        g.icc_write(c, Icc::Igrpen1, 1).unwrap();
        g.icc_write(c, Icc::Pmr, 0xff).unwrap();
    }
    assert!(!g.signalled(0));
    assert!(g.signalled(1));
    assert_eq!(g.icc_read(1, Icc::Iar1), Some(33));
    assert_eq!(g.mmio_read(GICD + 0x304, 4), 0b10, "active");
    // Beyond the last SPI and the private banks of GICD: RAZ/WI.
    g.mmio_write(0, GICD + 0x100, 4, 0xffff_ffff);
    assert_eq!(g.mmio_read(GICD + 0x100, 4), 0);
    assert_eq!(g.mmio_read(GICD + 0x124, 4), 0, "INTIDs 288.. do not exist");
    assert_eq!(g.mmio_read(GICD + 0x400, 4), 0, "private priorities: RAZ");
}

#[test]
fn wrong_sizes_and_holes_are_raz_wi() {
    let g = gic(1);
    g.mmio_write(0, GICD, 2, 0x12);
    assert_eq!(g.mmio_read(GICD, 4), 0x50, "16-bit write ignored");
    assert_eq!(g.mmio_read(GICD + 4, 2), 0, "16-bit read: RAZ");
    assert_eq!(
        g.mmio_read(GICD + 4, 8),
        0,
        "64-bit read of a 32-bit register"
    );
    assert_eq!(g.mmio_read(GICR + 0x8, 8), 0x10, "GICR_TYPER takes 64 bits");
    assert_eq!(
        g.mmio_read(GICR + SGI + 0x100, 1),
        0,
        "byte read of a bit bank"
    );
    g.mmio_write(0, GICR + SGI + 0x5000, 4, 1);
    assert_eq!(g.mmio_read(GICR + SGI + 0x5000, 4), 0);
    assert_eq!(g.mmio_read(0x0900_0000, 4), 0, "outside the GIC");
    assert_eq!(g.icc_read(0, Icc::Eoir1), None, "write-only: UNDEFINED");
    assert_eq!(g.icc_write(0, Icc::Iar1, 0), None, "read-only: UNDEFINED");
    assert_eq!(g.icc_write(0, Icc::Rpr, 0), None);
}

#[test]
fn two_redistributors_have_their_own_typer() {
    let g = gic(2);
    assert_eq!(g.mmio_read(GICR + 8, 8), 0, "vCPU 0: not last");
    assert_eq!(
        g.mmio_read(GICR + REDIST_STRIDE + 8, 8),
        1 << 32 | 1 << 8 | 0x10,
        "vCPU 1: Aff0 1, processor 1, last"
    );
}

#[test]
fn other_vcpus_are_woken_for_what_concerns_them() {
    let g = gic(2);
    let woken = Arc::new(Mutex::new(Vec::new()));
    let w = woken.clone();
    g.set_notifier(Box::new(move |i| w.lock().unwrap().push(i)));
    let take = || std::mem::take(&mut *woken.lock().unwrap());
    g.mmio_write(0, GICD, 4, 2);
    assert_eq!(take(), vec![1], "a distributor write: everyone else");
    g.mmio_write(0, GICR + REDIST_STRIDE + SGI + 0x100, 4, 1);
    assert_eq!(take(), vec![1], "vCPU 1's redistributor");
    g.mmio_write(0, GICR + SGI + 0x100, 4, 1);
    assert_eq!(take(), Vec::<usize>::new(), "its own: nobody");
    g.icc_write(0, Icc::Sgi1r, 2 << 24 | 0b11).unwrap();
    assert_eq!(take(), vec![1], "SGI to vCPUs 0 and 1: the other one");
    g.mmio_write(0, GICD + 0x9000, 4, 1);
    assert_eq!(take(), Vec::<usize>::new(), "a hole: nobody");
    assert!(
        !g.signalled(1),
        "group 1 still off in vCPU 1's CPU interface"
    );
    g.icc_write(1, Icc::Igrpen1, 1).unwrap();
    g.icc_write(1, Icc::Pmr, 0xff).unwrap();
    assert!(g.signalled(1));
    assert_eq!(g.icc_read(1, Icc::Hppir1), Some(2));
}

#[test]
fn timer_lines_drive_ppis_27_and_30() {
    let g = gic(1);
    g.mmio_write(0, GICD, 4, 2);
    g.mmio_write(0, GICR + SGI + 0x100, 4, 1 << 27 | 1 << 30);
    g.icc_write(0, Icc::Igrpen1, 1).unwrap();
    g.icc_write(0, Icc::Pmr, 0xff).unwrap();
    g.set_timer_lines(0, [false, true]);
    assert_eq!(g.mmio_read(GICR + SGI + 0x200, 4), 1 << 30);
    g.set_timer_lines(0, [true, true]);
    assert_eq!(g.icc_read(0, Icc::Iar1), Some(27));
    assert!(g.wakes_from_wfi(0), "30 still pending");
    g.icc_write(0, Icc::Eoir1, 27).unwrap();
    g.set_timer_lines(0, [false, false]);
    assert!(!g.signalled(0) && !g.wakes_from_wfi(0));
}

#[test]
fn spi_lines_are_level_or_edge_as_configured_and_wake_the_vcpus() {
    let g = gic(2);
    let woken = Arc::new(Mutex::new(Vec::new()));
    let w = woken.clone();
    g.set_notifier(Box::new(move |i| w.lock().unwrap().push(i)));
    g.mmio_write(0, GICD, 4, 2); // GICD_CTLR.EnableGrp1
    g.mmio_write(0, GICD + 0x104, 4, 0b11); // GICD_ISENABLER1: INTIDs 32, 33
    g.mmio_write(0, GICD + 0xc08, 4, 0b10); // GICD_ICFGR2: 32 edge, 33 level
    g.icc_write(0, Icc::Igrpen1, 1).unwrap();
    g.icc_write(0, Icc::Pmr, 0xff).unwrap();
    woken.lock().unwrap().clear();
    // Level-sensitive 33: pending exactly while the line is high.
    assert!(g.set_spi_level(33, true));
    assert_eq!(*woken.lock().unwrap(), vec![0, 1]);
    assert_eq!(g.mmio_read(GICD + 0x204, 4), 0b10, "GICD_ISPENDR1");
    assert!(g.set_spi_level(33, false));
    assert!(!g.signalled(0));
    // Edge-triggered 32: a rising edge latches; the line going low keeps it pending.
    assert!(g.set_spi_level(32, true));
    assert!(g.set_spi_level(32, false));
    assert_eq!(g.icc_read(0, Icc::Iar1), Some(32));
    // Not SPIs.
    assert!(!g.set_spi_level(27, true));
    assert!(!g.set_spi_level(32 + 256, true));
}
