//! Host debug through the model: the single-step trace of the facts file, software and
//! hardware breakpoints, watchpoints, self-modifying code and VMM-patched BRKs.

use vm_memory::{Bytes, GuestAddress};

use super::*;
use crate::backend::GuestDebug;

#[test]
fn single_step_trace_matches_kvm() {
    // +0x00 ldr x1 (literal), +0x04 mov, +0x08 nop, +0x0c nop, +0x10 str (MMIO),
    // +0x14 nop, +0x18 nop, +0x1c ldr (MMIO), +0x20 hvc PSCI_VERSION, +0x24 mrs ID reg,
    // +0x28 mrs TPIDR_EL1.
    let Some(mut s) = setup(&format!(
        "ldr x1, ={UART:#x}\n mov w0, #0x41\n nop\n nop\n str w0, [x1]\n nop\n nop\n ldr w12, [x1]\n \
         movz w0, #0x8400, lsl #16\n hvc #0\n mrs x7, id_aa64pfr0_el1\n mrs x8, tpidr_el1"
    )) else {
        return;
    };
    s.cpu.set_guest_debug(&step_dbg()).unwrap();
    let step = |esr: u64| VcpuExit::Debug { esr, far: 0 };
    for off in [4, 8, 0xc, 0x10] {
        assert_eq!(s.cpu.run().unwrap(), step(0xcb00_0022));
        assert_eq!(pc(&mut s.cpu), RAM + off);
    }
    assert!(matches!(
        s.cpu.run().unwrap(),
        VcpuExit::MmioWrite {
            addr: UART,
            len: 4,
            ..
        }
    ));
    assert_eq!(pc(&mut s.cpu), RAM + 0x10, "MMIO exit is not a step end");
    assert_eq!(s.cpu.run().unwrap(), step(0xca00_0022));
    assert_eq!(pc(&mut s.cpu), RAM + 0x14);
    assert_eq!(s.cpu.get(Reg::Pstate).unwrap() & crate::a64::pstate::SS, 0);
    for off in [0x18, 0x1c] {
        assert_eq!(s.cpu.run().unwrap(), step(0xcb00_0022));
        assert_eq!(pc(&mut s.cpu), RAM + off);
    }
    assert_eq!(
        s.cpu.run().unwrap(),
        VcpuExit::MmioRead { addr: UART, len: 4 }
    );
    s.cpu.set_mmio_data(&[1, 2, 3, 4]).unwrap();
    assert_eq!(s.cpu.run().unwrap(), step(0xca00_0022));
    assert_eq!(
        (pc(&mut s.cpu), x(&mut s.cpu, 12)),
        (RAM + 0x20, 0x0403_0201)
    );
    assert_eq!(s.cpu.run().unwrap(), step(0xcb00_0022), "movz");
    assert_eq!(s.cpu.run().unwrap(), step(0xca00_0022), "in-kernel hvc");
    assert_eq!((pc(&mut s.cpu), x(&mut s.cpu, 0)), (RAM + 0x28, 0x1_0001));
    assert_eq!(
        s.cpu.run().unwrap(),
        step(0xca00_0022),
        "trapped ID register"
    );
    assert_eq!(s.cpu.run().unwrap(), step(0xcb00_0022), "untrapped sysreg");
    assert_eq!(pc(&mut s.cpu), RAM + 0x30);
}

#[test]
fn software_and_hardware_breakpoints_and_watchpoints() {
    let Some(mut s) = setup(&format!(
        "ldr x1, ={DATA:#x}\n mov x0, #7\n ldr x2, [x1]\n str x0, [x1]\n brk #0x12"
    )) else {
        return;
    };
    let mut dbg = GuestDebug {
        enable: true,
        hw: true,
        sw_breakpoints: true,
        ..GuestDebug::default()
    };
    dbg.bcr[0] = 0x1e7;
    dbg.bvr[0] = RAM + 4;
    dbg.wcr[0] = 0x1ff7;
    dbg.wvr[0] = DATA;
    s.cpu.set_guest_debug(&dbg).unwrap();
    let bp = VcpuExit::Debug {
        esr: 0xc200_0022,
        far: 0,
    };
    assert_eq!(s.cpu.run().unwrap(), bp);
    assert_eq!(pc(&mut s.cpu), RAM + 4);
    assert_eq!(s.cpu.run().unwrap(), bp, "re-hits while armed");
    dbg.bcr[0] = 0;
    s.cpu.set_guest_debug(&dbg).unwrap();
    assert_eq!(
        s.cpu.run().unwrap(),
        VcpuExit::Debug {
            esr: 0xd200_0062,
            far: DATA
        },
        "store watchpoint; the load before it did not trigger"
    );
    assert_eq!(pc(&mut s.cpu), RAM + 0xc);
    assert_eq!(
        s.mem.read_obj::<u64>(GuestAddress(DATA)).unwrap(),
        0,
        "not written"
    );
    dbg.wcr[0] = 0;
    s.cpu.set_guest_debug(&dbg).unwrap();
    assert_eq!(
        s.cpu.run().unwrap(),
        VcpuExit::Debug {
            esr: 0xf200_0012,
            far: 0
        }
    );
    assert_eq!(pc(&mut s.cpu), RAM + 0x10, "PC at the BRK");
    assert_eq!(s.mem.read_obj::<u64>(GuestAddress(DATA)).unwrap(), 7);
}

#[test]
fn self_modifying_code_and_eret_step() {
    // Overwrite the `mov x7, #1` at 1: with `mov x7, #2` (0xd2800047), then run it. (x1-x3
    // are zeroed by the PSCI SYSTEM_OFF call, as on KVM.)
    let Some(mut s) = setup("ldr w3, =0xd2800047\n adr x4, 1f\n str w3, [x4]\n 1: mov x7, #1")
    else {
        return;
    };
    assert_eq!(s.cpu.run().unwrap(), SHUTDOWN);
    assert_eq!(x(&mut s.cpu, 7), 2, "the stored instruction ran");
    // The VMM patching memory (a software breakpoint) is seen at once.
    let mut s = setup("nop\n nop\n mov x2, #1").unwrap();
    s.mem
        .write_obj(0xd420_0000u32, GuestAddress(RAM + 8))
        .unwrap();
    s.cpu.set_guest_debug(&sw_bp_dbg()).unwrap();
    assert_eq!(
        s.cpu.run().unwrap(),
        VcpuExit::Debug {
            esr: 0xf200_0000,
            far: 0
        }
    );
    assert_eq!(pc(&mut s.cpu), RAM + 8);
    // Stepping an ERET ends at the return address with ISV = 1: the ERET itself was the
    // stepped instruction (as real KVM reports: tests/conformance/step_svc.trace).
    let mut s = setup(
        "adr x0, 1f\n msr elr_el1, x0\n mov x1, #0x3c5\n msr spsr_el1, x1\n eret\n nop\n 1: nop",
    )
    .unwrap();
    s.cpu.set_guest_debug(&step_dbg()).unwrap();
    for _ in 0..5 {
        assert_eq!(
            s.cpu.run().unwrap(),
            VcpuExit::Debug {
                esr: 0xcb00_0022,
                far: 0
            }
        );
    }
    assert_eq!(pc(&mut s.cpu), RAM + 0x18);
    // Stepping into an SVC stops at the vector (exception entry, ISV = 0).
    let mut s = setup("svc #0").unwrap();
    s.cpu.set_guest_debug(&step_dbg()).unwrap();
    assert_eq!(
        s.cpu.run().unwrap(),
        VcpuExit::Debug {
            esr: 0xca00_0022,
            far: 0
        }
    );
    assert_eq!(pc(&mut s.cpu), RAM + 0xa00);
}

#[test]
fn read_modify_write_atomics_trigger_load_watchpoints() {
    let Some(mut s) = setup(&format!(
        "ldr x1, ={DATA:#x}\n mov x0, #1\n ldadd x0, x2, [x1]"
    )) else {
        return;
    };
    let mut dbg = GuestDebug {
        enable: true,
        hw: true,
        ..GuestDebug::default()
    };
    dbg.wcr[0] = 0x1fef; // E | PAC=0b11 | LSC=0b01 (load) | BAS=0xff
    dbg.wvr[0] = DATA;
    s.cpu.set_guest_debug(&dbg).unwrap();
    assert_eq!(
        s.cpu.run().unwrap(),
        VcpuExit::Debug {
            esr: 0xd200_0022,
            far: DATA
        }
    );
    assert_eq!(pc(&mut s.cpu), RAM + 8);
}

/// The exit (if any) of `src` at EL1, MMU off, with one VMM-owned watchpoint on DATA:
/// `dbg_wcr` = E | PAC | LSC = 0b11 | BAS = 0xff.
fn vmm_watch(src: &str, pac: u64) -> Option<(VcpuExit, u64)> {
    let mut s = setup(&format!("ldr x1, ={DATA:#x}\n mov x0, #7\n {src}"))?;
    let mut dbg = GuestDebug {
        enable: true,
        hw: true,
        ..GuestDebug::default()
    };
    dbg.wcr[0] = 0x1fe1 | pac << 1 | 0b11 << 3;
    dbg.wvr[0] = DATA;
    s.cpu.set_guest_debug(&dbg).unwrap();
    let exit = s.cpu.run().unwrap();
    Some((exit, pc(&mut s.cpu)))
}

#[test]
fn unprivileged_accesses_at_el1_hit_watchpoints_as_el0_accesses() {
    // STTR/LDTR at EL1 are checked against PAC as EL0 accesses (a64::debugregs::access_el,
    // Arm ARM D2.10 and C6.2): PAC 0b10 (EL0) and 0b11 hit them, 0b01 (EL1) does not; a
    // plain STR at EL1 is the other way round. The hit is the exit KVM gives (EC 0x35 from
    // the VMM's view, WnR for the store) with the PC at the access.
    let hit = |write: bool, far: u64| VcpuExit::Debug {
        esr: if write { 0xd200_0062 } else { 0xd200_0022 },
        far,
    };
    for (src, write, unpriv) in [
        ("sttr x0, [x1]", true, true),
        ("ldtr x2, [x1]", false, true),
        ("sttrb w0, [x1, #3]", true, true),
        ("str x0, [x1]", true, false),
    ] {
        for pac in [0b01, 0b10, 0b11] {
            let Some((exit, at)) = vmm_watch(src, pac) else {
                return;
            };
            let expect_hit = pac & if unpriv { 0b10 } else { 0b01 } != 0;
            if expect_hit {
                let far = if src.contains("#3") { DATA + 3 } else { DATA };
                assert_eq!(exit, hit(write, far), "{src} PAC {pac:#b}");
                assert_eq!(at, RAM + 8, "{src}: stopped before the access");
            } else {
                assert_eq!(exit, SHUTDOWN, "{src} PAC {pac:#b}: no hit");
            }
        }
    }
}
