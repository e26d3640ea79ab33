//! Exit-level tests of the model `Vcpu`: KVM-shaped MMIO/NISV exits, single-step traces from
//! the facts file, breakpoints and watchpoints, PSCI, exceptions delivered to the guest and
//! hostile guests. Snippets are assembled with `aarch64-linux-gnu-as` (`testutil::asm`).

use std::time::Duration;

use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use super::testutil::{asm, config, load, ram, RAM, UART};
use crate::a64::{sys, Reg};
use crate::backend::{create_vm, BackendKind, GuestDebug, SystemEvent, Vcpu, VcpuExit, Vm};

const DATA: u64 = RAM + 0x10000;
/// Power the VM off (PSCI SYSTEM_OFF): the end marker of every snippet.
const OFF: &str = "ldr x0, =0x84000008\n hvc #0";
/// Vector table at RAM + 0x800: EL1h and EL0 synchronous handlers record ESR/ELR/SPSR/FAR in
/// x3..x6 and power off.
const VECTORS: &str = ".org 0x800\n .org 0xa00\n mrs x3, esr_el1\n mrs x4, elr_el1\n mrs x5, spsr_el1\n \
     mrs x6, far_el1\n ldr x0, =0x84000008\n hvc #0\n .ltorg\n .org 0xc00\n mrs x3, esr_el1\n mrs x4, elr_el1\n \
     mrs x5, spsr_el1\n mrs x6, far_el1\n ldr x0, =0x84000008\n hvc #0\n .ltorg";

struct Setup {
    vm: Box<dyn Vm>,
    cpu: Box<dyn Vcpu>,
    mem: GuestMemoryMmap,
}

fn setup_with(src: &str, vcpus: usize, nisv: bool) -> Option<Setup> {
    let words = asm(&format!("{src}\n {OFF}\n .ltorg\n {VECTORS}"))?;
    let mem = ram();
    load(&mem, RAM, &words);
    let mut cfg = config(vcpus);
    cfg.nisv_to_user = nisv;
    let vm = create_vm(BackendKind::Model, &mem, &cfg).expect("model VM");
    let mut cpu = vm.create_vcpu(0).expect("vCPU 0");
    cpu.set(Reg::Pc, RAM).unwrap();
    cpu.set(Reg::Sys(sys::VBAR_EL1), RAM + 0x800).unwrap();
    Some(Setup { vm, cpu, mem })
}

fn setup(src: &str) -> Option<Setup> {
    setup_with(src, 1, true)
}

fn x(c: &mut Box<dyn Vcpu>, n: u8) -> u64 {
    c.get(Reg::X(n)).unwrap()
}

fn pc(c: &mut Box<dyn Vcpu>) -> u64 {
    c.get(Reg::Pc).unwrap()
}

const SHUTDOWN: VcpuExit = VcpuExit::SystemEvent(SystemEvent::Shutdown);

#[test]
fn mmio_write_exits_at_the_access_and_advances_on_next_run() {
    let Some(mut s) = setup(&format!(
        "ldr x1, ={UART:#x}\n mov w0, #0x41\n str w0, [x1]\n mov x2, #1"
    )) else {
        return;
    };
    let exit = s.cpu.run().unwrap();
    let mut data = [0u8; 8];
    data[0] = 0x41;
    assert_eq!(
        exit,
        VcpuExit::MmioWrite {
            addr: UART,
            len: 4,
            data
        }
    );
    assert_eq!(pc(&mut s.cpu), RAM + 8, "PC at the access");
    assert_eq!(x(&mut s.cpu, 2), 0);
    assert_eq!(s.cpu.run().unwrap(), SHUTDOWN);
    assert_eq!(x(&mut s.cpu, 2), 1);
}

#[test]
fn mmio_read_result_applied_at_next_run_with_sign_extension() {
    let Some(mut s) = setup(&format!(
        "ldr x1, ={UART:#x}\n ldrsb x12, [x1, #4]\n ldr w13, [x1]\n ldrsh w14, [x1, #2]\n ldar x15, [x1]"
    )) else {
        return;
    };
    assert_eq!(
        s.cpu.run().unwrap(),
        VcpuExit::MmioRead {
            addr: UART + 4,
            len: 1
        }
    );
    assert_eq!(pc(&mut s.cpu), RAM + 4);
    s.cpu.set_mmio_data(&[0x80]).unwrap();
    assert_eq!(
        s.cpu.run().unwrap(),
        VcpuExit::MmioRead { addr: UART, len: 4 }
    );
    assert_eq!(x(&mut s.cpu, 12), 0xffff_ffff_ffff_ff80);
    s.cpu.set_mmio_data(&0xdead_beefu32.to_le_bytes()).unwrap();
    assert_eq!(
        s.cpu.run().unwrap(),
        VcpuExit::MmioRead {
            addr: UART + 2,
            len: 2
        }
    );
    assert_eq!(x(&mut s.cpu, 13), 0xdead_beef);
    s.cpu.set_mmio_data(&[0x00, 0x90]).unwrap();
    assert_eq!(
        s.cpu.run().unwrap(),
        VcpuExit::MmioRead { addr: UART, len: 8 }
    );
    assert_eq!(
        x(&mut s.cpu, 14),
        0xffff_9000,
        "W destination: 32-bit sign extension"
    );
    s.cpu.set_mmio_data(&u64::MAX.to_le_bytes()).unwrap();
    assert_eq!(s.cpu.run().unwrap(), SHUTDOWN);
    assert_eq!(x(&mut s.cpu, 15), u64::MAX);
}

#[test]
fn access_without_syndrome_is_nisv_or_an_error() {
    let src = format!("ldr x1, ={UART:#x}\n stp x0, x0, [x1]");
    let Some(mut s) = setup(&src) else {
        return;
    };
    assert_eq!(
        s.cpu.run().unwrap(),
        VcpuExit::Nisv {
            fault_ipa: UART,
            esr_iss: 0x45
        }
    );
    assert_eq!(pc(&mut s.cpu), RAM + 4, "PC at the stp; not skipped");
    let mut s = setup_with(&src, 1, false).unwrap();
    let err = s.cpu.run().unwrap_err().to_string();
    assert!(err.contains("without a valid syndrome"), "{err}");
    // writeback forms have no syndrome either
    let mut s = setup(&format!("ldr x1, ={UART:#x}\n ldr w2, [x1, #4]!")).unwrap();
    assert_eq!(
        s.cpu.run().unwrap(),
        VcpuExit::Nisv {
            fault_ipa: UART + 4,
            esr_iss: 0x05
        }
    );
}

fn step_dbg() -> GuestDebug {
    GuestDebug {
        enable: true,
        single_step: true,
        ..GuestDebug::default()
    }
}

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
fn exceptions_are_delivered_with_arm_arm_syndromes() {
    let Some(mut s) = setup("svc #0x42") else {
        return;
    };
    assert_eq!(s.cpu.run().unwrap(), SHUTDOWN);
    assert_eq!(x(&mut s.cpu, 3), 0x5600_0042, "ESR: EC 0x15, IL, imm16");
    assert_eq!(x(&mut s.cpu, 4), RAM + 4, "ELR after the SVC");
    assert_eq!(x(&mut s.cpu, 5), 0x3c5, "SPSR");
    assert_eq!(
        s.cpu.get(Reg::Pstate).unwrap() & 0x3cf,
        0x3c5,
        "EL1h, DAIF masked"
    );
    // UNDEFINED (an unallocated word), then BRK without guest debug.
    let mut s = setup("nop\n .word 0x00000000").unwrap();
    assert_eq!(s.cpu.run().unwrap(), SHUTDOWN);
    assert_eq!((x(&mut s.cpu, 3), x(&mut s.cpu, 4)), (0x0200_0000, RAM + 4));
    let mut s = setup("brk #3").unwrap();
    assert_eq!(s.cpu.run().unwrap(), SHUTDOWN);
    assert_eq!((x(&mut s.cpu, 3), x(&mut s.cpu, 4)), (0xf200_0003, RAM));
    // From EL0: eret to EL0t, then svc: the lower-EL vector, SPSR = EL0t.
    let mut s =
        setup("adr x0, 1f\n msr elr_el1, x0\n msr spsr_el1, xzr\n eret\n1: svc #1").unwrap();
    assert_eq!(s.cpu.run().unwrap(), SHUTDOWN);
    assert_eq!((x(&mut s.cpu, 3), x(&mut s.cpu, 5)), (0x5600_0001, 0));
    // Misaligned PC: EC 0x22 with FAR = the PC.
    let mut s = setup("adr x0, 1f\n add x0, x0, #2\n br x0\n1: nop").unwrap();
    assert_eq!(s.cpu.run().unwrap(), SHUTDOWN);
    assert_eq!(
        (x(&mut s.cpu, 3), x(&mut s.cpu, 6)),
        (0x8a00_0000, RAM + 0xe)
    );
    // Data abort with MMU off: unaligned access to Device memory.
    let mut s = setup(&format!("ldr x1, ={DATA:#x}\n ldr x2, [x1, #1]")).unwrap();
    assert_eq!(s.cpu.run().unwrap(), SHUTDOWN);
    assert_eq!(
        (x(&mut s.cpu, 3), x(&mut s.cpu, 6)),
        (0x9600_0021, DATA + 1)
    );
}

#[test]
fn fetch_outside_ram_injects_an_external_instruction_abort() {
    let Some(mut s) = setup("nop") else {
        return;
    };
    s.cpu.set(Reg::Pc, 0x1000).unwrap();
    assert_eq!(s.cpu.run().unwrap(), SHUTDOWN);
    assert_eq!(
        x(&mut s.cpu, 3),
        0x8600_0010,
        "EC 0x21, IL, IFSC external abort"
    );
    assert_eq!((x(&mut s.cpu, 4), x(&mut s.cpu, 6)), (0x1000, 0x1000));
}

#[test]
fn psci_calls_like_kvm() {
    let Some(mut s) = setup(
        "movz w0, #0x8400, lsl #16\n hvc #0\n mov x10, x0\n \
         ldr x0, =0x8400000a\n ldr x1, =0xc4000003\n hvc #0\n mov x11, x0\n \
         ldr x0, =0x8400000a\n mov x1, #0x1234\n hvc #0\n mov x12, x0\n \
         ldr x0, =0x840000ff\n hvc #0\n mov x13, x0\n \
         mov x0, #0\n smc #0\n mov x14, x0\n \
         ldr x0, =0xc4000004\n mov x1, #0\n mov x2, #0\n hvc #0\n mov x15, x0",
    ) else {
        return;
    };
    assert_eq!(s.cpu.run().unwrap(), SHUTDOWN);
    let r: Vec<u64> = (10..=15).map(|n| x(&mut s.cpu, n)).collect();
    assert_eq!(r, vec![0x1_0001, 0, u64::MAX, u64::MAX, u64::MAX, 0]);
    assert_eq!(
        x(&mut s.cpu, 0),
        (-6i64) as u64,
        "SYSTEM_OFF returns INTERNAL_FAILURE if resumed"
    );
}

#[test]
fn cpu_on_powers_on_the_target_and_reports_errors() {
    let Some(mut s) = setup_with(
        &format!(
            "ldr x0, =0xc4000003\n mov x1, #1\n adr x2, 2f\n mov x3, #0x55\n hvc #0\n mov x10, x0\n \
             ldr x0, =0xc4000003\n mov x1, #1\n adr x2, 2f\n hvc #0\n mov x11, x0\n \
             ldr x0, =0xc4000003\n mov x1, #7\n hvc #0\n mov x12, x0\n \
             ldr x0, =0xc4000004\n mov x1, #1\n mov x2, #0\n hvc #0\n mov x13, x0\n \
             ldr x1, ={UART:#x}\n str x13, [x1]\n b 3f\n \
             2: ldr x1, ={UART:#x}\n mrs x9, mpidr_el1\n str x0, [x1]\n movz w0, #0x8400, lsl #16\n add x0, x0, #2\n hvc #0\n b .\n 3:"
        ),
        2,
        true,
    ) else {
        return;
    };
    let mut c1 = s.vm.create_vcpu(1).unwrap();
    let kick1 = c1.kicker();
    let t = std::thread::spawn(move || {
        let e = c1.run().unwrap();
        (e, c1)
    });
    assert!(matches!(
        s.cpu.run().unwrap(),
        VcpuExit::MmioWrite { addr: UART, .. }
    ));
    let r: Vec<u64> = (10..=13).map(|n| x(&mut s.cpu, n)).collect();
    let neg = |v: i64| v as u64;
    assert_eq!(r, vec![0, neg(-4), neg(-2), 0]);
    let (e, mut c1) = t.join().unwrap();
    let mut data = [0u8; 8];
    data[0] = 0x55;
    assert_eq!(
        e,
        VcpuExit::MmioWrite {
            addr: UART,
            len: 8,
            data
        },
        "x0 = context id"
    );
    assert_eq!(x(&mut c1, 9), 0x8000_0001, "MPIDR Aff0 = 1");
    assert_eq!(c1.get(Reg::Pstate).unwrap(), 0x3c5);
    // vCPU 1 calls CPU_OFF and then blocks in run() until kicked.
    let t = std::thread::spawn(move || c1.run().unwrap());
    std::thread::sleep(Duration::from_millis(50));
    kick1.kick();
    assert_eq!(t.join().unwrap(), VcpuExit::Interrupted);
    assert_eq!(s.cpu.run().unwrap(), SHUTDOWN);
}

#[test]
fn kick_wfi_and_hostile_guests() {
    let Some(mut s) = setup("wfi\n mov x2, #2") else {
        return;
    };
    s.cpu.kicker().kick();
    assert_eq!(
        s.cpu.run().unwrap(),
        VcpuExit::Interrupted,
        "kick before run"
    );
    assert_eq!(pc(&mut s.cpu), RAM);
    assert_eq!(
        s.cpu.run().unwrap(),
        VcpuExit::Idle,
        "WFI with nothing to wake it"
    );
    assert_eq!(pc(&mut s.cpu), RAM + 4);
    assert_eq!(s.cpu.run().unwrap(), SHUTDOWN);
    // PC and VBAR outside RAM: an endless abort loop, as on hardware; a kick ends the run.
    let mut s = setup("nop").unwrap();
    s.cpu.set(Reg::Pc, 0x10).unwrap();
    s.cpu.set(Reg::Sys(sys::VBAR_EL1), 0).unwrap();
    let k = s.cpu.kicker();
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(50));
        k.kick();
    });
    assert_eq!(s.cpu.run().unwrap(), VcpuExit::Interrupted);
    t.join().unwrap();
    // An unimplemented encoding (FADD) with FP enabled: UNDEFINED in the guest.
    let mut s = setup("mov x0, #0x300000\n msr cpacr_el1, x0\n isb\n fadd s0, s1, s2").unwrap();
    assert_eq!(s.cpu.run().unwrap(), SHUTDOWN);
    assert_eq!(
        (x(&mut s.cpu, 3), x(&mut s.cpu, 4)),
        (0x0200_0000, RAM + 0xc)
    );
    // FP disabled by CPACR_EL1 (reset value): EC 0x07.
    let mut s = setup("fmov d0, x1").unwrap();
    assert_eq!(s.cpu.run().unwrap(), SHUTDOWN);
    assert_eq!(x(&mut s.cpu, 3), 0x1e00_0000);
}

#[test]
fn registers_and_reg_list() {
    let Some(mut s) = setup("nop") else {
        return;
    };
    let list = s.cpu.reg_list().unwrap();
    for r in &list {
        s.cpu
            .get_reg(*r)
            .unwrap_or_else(|e| panic!("{r:?} listed but unreadable: {e}"));
    }
    assert!(list.contains(&Reg::Sys(sys::dbgbcr(5))));
    assert!(!list.contains(&Reg::Sys(sys::dbgbcr(6))));
    assert!(s.cpu.get_reg(Reg::Sys(sys::dbgbcr(6))).is_err());
    assert!(s.cpu.get_reg(Reg::X(31)).is_err());
    assert_eq!(s.cpu.get(Reg::Sys(sys::SCTLR_EL1)).unwrap(), 0x00c5_0078);
    assert_eq!(s.cpu.get(Reg::Sys(sys::MPIDR_EL1)).unwrap(), 0x8000_0000);
    assert_eq!(
        s.cpu.get(Reg::Sys(sys::ID_AA64DFR0_EL1)).unwrap() >> 12 & 0xf,
        5
    );
    s.cpu.set_reg(Reg::V(3), u128::MAX - 1).unwrap();
    assert_eq!(s.cpu.get_reg(Reg::V(3)).unwrap(), u128::MAX - 1);
    let caps = s.vm.caps();
    assert_eq!(
        (caps.hw_breakpoints, caps.hw_watchpoints, caps.ipa_bits),
        (6, 4, 48)
    );
}
