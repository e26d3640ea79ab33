//! The KVM backend against real arm64 KVM, exit by exit.
//!
//! Expected values are the traces observed on real KVM (Debian kernel 6.1, nested in
//! qemu-system-aarch64 TCG; see docs/testing.md) and the syndromes the
//! Arm ARM defines (D17.2.37 ESR_EL2: EC 0x30 breakpoint, 0x32 software step, 0x34 watchpoint,
//! 0x3c BRK; IL = bit 25, ISV = bit 24, IFSC/DFSC 0x22 = debug event).
//!
//! Without usable KVM every test skips with a message, or fails under `CI=true`.
#![cfg(all(target_os = "linux", target_arch = "aarch64"))]

mod kvm_support;

use kvm_support::*;
use kvmdbg::a64::Reg;
use kvmdbg::backend::{GuestDebug, VcpuExit, NO_SYNDROME_NISV_OFF};
use vm_memory::{Bytes, GuestAddress};

/// Value the tests return for MMIO reads.
const READ_VALUE: u32 = 0x1234_5678;

/// Stores to and loads from MMIO, stepping through an HVC and a trapped MRS on the way.
const MMIO_PROGRAM: [u32; 12] = [
    0xd2a1_2001, // +0x00 mov  x1, #0x9000000          MMIO address
    0x5280_0820, // +0x04 mov  w0, #0x41
    0x5280_0022, // +0x08 mov  w2, #1
    0x1100_0442, // +0x0c add  w2, w2, #1
    0xb900_0020, // +0x10 str  w0, [x1]                MMIO write
    0x1100_0442, // +0x14 add  w2, w2, #1
    0x1100_0442, // +0x18 add  w2, w2, #1
    0xb940_002c, // +0x1c ldr  w12, [x1]               MMIO read
    0xd538_0503, // +0x20 mrs  x3, id_aa64dfr0_el1     trapped and emulated by KVM (HCR_EL2.TID3)
    0x5280_0000, // +0x24 mov  w0, #0
    0x72b0_8000, // +0x28 movk w0, #0x8400, lsl #16    w0 = 0x8400_0000 PSCI_VERSION
    0xd400_0002, // +0x2c hvc  #0                      handled in the kernel
];

#[test]
fn mmio_write_and_read_exit_with_the_pc_at_the_access() {
    let Some(mut g) = GuestBuilder::new(&[&MMIO_PROGRAM, &SYSTEM_OFF]).build("mmio") else {
        return;
    };
    let cpu = g.vcpus[0].as_mut();
    let trace = run_trace(cpu, READ_VALUE, 8);
    assert_eq!(
        trace,
        [
            "MMIO write addr=0x9000000 len=4 data=0x41 pc=+0x10",
            "MMIO read addr=0x9000000 len=4 pc=+0x1c",
            "SYSTEM_EVENT shutdown",
        ]
    );
    assert_eq!(cpu.get(Reg::X(12)).unwrap(), READ_VALUE as u64);
}

#[test]
fn single_step_stops_once_per_instruction_across_mmio() {
    let Some(mut g) = GuestBuilder::new(&[&MMIO_PROGRAM, &SYSTEM_OFF]).build("single_step") else {
        return;
    };
    let cpu = g.vcpus[0].as_mut();
    let step = GuestDebug {
        enable: true,
        single_step: true,
        ..GuestDebug::default()
    };
    cpu.set_guest_debug(&step).unwrap();
    let trace = run_trace(cpu, READ_VALUE, 32);
    // 0xcb000022: EC 0x32, IL, ISV=1 (the instruction ran); 0xca000022: ISV=0, the step
    // completed without executing an instruction because KVM advanced the PC itself.
    assert_eq!(
        trace,
        [
            "DEBUG esr=0xcb000022 pc=+0x4",
            "DEBUG esr=0xcb000022 pc=+0x8",
            "DEBUG esr=0xcb000022 pc=+0xc",
            "DEBUG esr=0xcb000022 pc=+0x10",
            "MMIO write addr=0x9000000 len=4 data=0x41 pc=+0x10",
            "DEBUG esr=0xca000022 pc=+0x14",
            "DEBUG esr=0xcb000022 pc=+0x18",
            "DEBUG esr=0xcb000022 pc=+0x1c",
            "MMIO read addr=0x9000000 len=4 pc=+0x1c",
            "DEBUG esr=0xca000022 pc=+0x20",
            "DEBUG esr=0xca000022 pc=+0x24",
            "DEBUG esr=0xcb000022 pc=+0x28",
            "DEBUG esr=0xcb000022 pc=+0x2c",
            "DEBUG esr=0xca000022 pc=+0x30",
            "DEBUG esr=0xcb000022 pc=+0x34",
            "DEBUG esr=0xcb000022 pc=+0x38",
            "SYSTEM_EVENT shutdown",
        ]
    );
    assert_eq!(cpu.get(Reg::X(12)).unwrap(), READ_VALUE as u64);
}

#[test]
fn step_stop_after_an_mmio_read_already_has_the_loaded_value() {
    let Some(mut g) = GuestBuilder::new(&[&MMIO_PROGRAM, &SYSTEM_OFF]).build("step_mmio") else {
        return;
    };
    let cpu = g.vcpus[0].as_mut();
    cpu.set(Reg::Pc, RAM + 0x1c).unwrap();
    cpu.set(Reg::X(1), MMIO).unwrap();
    let step = GuestDebug {
        enable: true,
        single_step: true,
        ..GuestDebug::default()
    };
    cpu.set_guest_debug(&step).unwrap();
    assert_eq!(
        cpu.run().unwrap(),
        VcpuExit::MmioRead { addr: MMIO, len: 4 }
    );
    assert!(
        cpu.set_mmio_data(&[1, 2]).is_err(),
        "wrong length must be refused"
    );
    cpu.set_mmio_data(&0xfeed_f00du32.to_le_bytes()).unwrap();
    let exit = cpu.run().unwrap();
    assert_eq!(trace_line(&exit, cpu), "DEBUG esr=0xca000022 pc=+0x20");
    assert_eq!(cpu.get(Reg::X(12)).unwrap(), 0xfeed_f00d);
    // The data belongs to one exit only.
    assert!(cpu.set_mmio_data(&[0; 4]).is_err());
}

/// `stp` has no valid syndrome (ISV=0): with NISV_TO_USER the VMM gets it, PC at the stp.
const STP_PROGRAM: [u32; 3] = [
    0xd2a1_2001, // +0x00 mov x1, #0x9000000
    0xd280_0ee0, // +0x04 mov x0, #0x77
    0xa900_0020, // +0x08 stp x0, x0, [x1]
];

#[test]
fn nisv_exit_for_stp_to_mmio() {
    let Some(mut g) = GuestBuilder::new(&[&STP_PROGRAM])
        .nisv_to_user()
        .build("nisv")
    else {
        return;
    };
    let cpu = g.vcpus[0].as_mut();
    let trace = run_trace(cpu, READ_VALUE, 1);
    assert_eq!(trace, ["NISV ipa=0x9000000 iss=0x45 pc=+0x8"]);
}

/// The backend contract of `VmConfig::nisv_to_user` (the model is held to it in its unit
/// tests): an `InternalError` exit with the common message, the PC still at the access.
#[test]
fn stp_to_mmio_without_nisv_to_user_is_an_internal_error() {
    let Some(mut g) = GuestBuilder::new(&[&STP_PROGRAM]).build("no_nisv") else {
        return;
    };
    let cpu = g.vcpus[0].as_mut();
    match cpu.run() {
        Ok(VcpuExit::InternalError(m)) => {
            assert!(m.starts_with(NO_SYNDROME_NISV_OFF), "{m}");
            assert!(m.contains("ENOSYS"), "{m}");
        }
        other => panic!("expected InternalError, got {other:?}"),
    }
    assert_eq!(pc_off(cpu), 0x8, "PC still at the stp");
}

#[test]
fn brk_exits_with_ec_0x3c_and_the_pc_at_the_brk() {
    let code = [
        NOP,         // +0x00 nop
        NOP,         // +0x04 nop
        0xd420_0000, // +0x08 brk #0
    ];
    let Some(mut g) = GuestBuilder::new(&[&code]).build("brk") else {
        return;
    };
    let cpu = g.vcpus[0].as_mut();
    let dbg = GuestDebug {
        enable: true,
        sw_breakpoints: true,
        ..GuestDebug::default()
    };
    cpu.set_guest_debug(&dbg).unwrap();
    assert_eq!(run_trace(cpu, 0, 1), ["DEBUG esr=0xf2000000 pc=+0x8"]);
}

/// DBGBCR<n>_EL1 = E | PMC=0b11 | BAS=0xf (Arm ARM D19.3.2): an address match at EL0 and EL1.
const BCR_EXEC: u64 = 0x1e7;

#[test]
fn hw_breakpoint_exits_with_ec_0x30_and_rehits_while_armed() {
    let code = [
        NOP, // +0x00 nop
        NOP, // +0x04 nop
        NOP, // +0x08 nop      breakpoint here
        NOP, // +0x0c nop
    ];
    let Some(mut g) = GuestBuilder::new(&[&code, &SYSTEM_OFF]).build("hw_bp") else {
        return;
    };
    let cpu = g.vcpus[0].as_mut();
    let mut dbg = GuestDebug {
        enable: true,
        hw: true,
        ..GuestDebug::default()
    };
    dbg.bcr[0] = BCR_EXEC;
    dbg.bvr[0] = RAM + 8;
    cpu.set_guest_debug(&dbg).unwrap();
    assert_eq!(run_trace(cpu, 0, 1), ["DEBUG esr=0xc2000022 pc=+0x8"]);
    assert_eq!(run_trace(cpu, 0, 1), ["DEBUG esr=0xc2000022 pc=+0x8"]);
    dbg.bcr[0] = 0;
    cpu.set_guest_debug(&dbg).unwrap();
    assert_eq!(run_trace(cpu, 0, 4), ["SYSTEM_EVENT shutdown"]);
}

/// DBGWCR<n>_EL1 = E | PAC=0b11 | LSC=0b10 (store) | BAS=0xff (Arm ARM D19.3.12).
const WCR_STORE_8: u64 = 0x1ff7;

#[test]
fn store_watchpoint_stops_before_the_write_and_loads_do_not_trigger() {
    let code = [
        0xd2a8_0201, // +0x00 mov x1, #0x40100000
        0xf940_0023, // +0x04 ldr x3, [x1]          load of the watched word: no stop
        0xd280_0ee0, // +0x08 mov x0, #0x77
        0xf900_0020, // +0x0c str x0, [x1]          store: watchpoint
    ];
    let Some(mut g) = GuestBuilder::new(&[&code, &SYSTEM_OFF]).build("watchpoint") else {
        return;
    };
    let old = 0x5555_aaaa_1234_5678u64;
    g.mem.write_obj(old, GuestAddress(DATA)).unwrap();
    let cpu = g.vcpus[0].as_mut();
    let mut dbg = GuestDebug {
        enable: true,
        hw: true,
        ..GuestDebug::default()
    };
    dbg.wcr[0] = WCR_STORE_8;
    dbg.wvr[0] = DATA;
    cpu.set_guest_debug(&dbg).unwrap();
    assert_eq!(
        run_trace(cpu, 0, 1),
        ["DEBUG esr=0xd2000062 far=0x40100000 pc=+0xc"]
    );
    assert_eq!(cpu.get(Reg::X(3)).unwrap(), old, "the load ran");
    assert_eq!(g.mem.read_obj::<u64>(GuestAddress(DATA)).unwrap(), old);
    dbg.wcr[0] = 0;
    cpu.set_guest_debug(&dbg).unwrap();
    assert_eq!(run_trace(cpu, 0, 4), ["SYSTEM_EVENT shutdown"]);
    assert_eq!(g.mem.read_obj::<u64>(GuestAddress(DATA)).unwrap(), 0x77);
}

#[test]
fn psci_system_off_is_a_shutdown_event() {
    let Some(mut g) = GuestBuilder::new(&[&SYSTEM_OFF]).build("system_off") else {
        return;
    };
    let trace = run_trace(g.vcpus[0].as_mut(), 0, 1);
    assert_eq!(trace, ["SYSTEM_EVENT shutdown"]);
}
