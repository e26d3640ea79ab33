//! Exit-level tests of the model `Vcpu`: KVM-shaped MMIO/NISV exits, single-step traces from
//! the facts file, breakpoints and watchpoints, PSCI, exceptions delivered to the guest and
//! hostile guests. Snippets are assembled with `aarch64-linux-gnu-as` (`testutil::asm`).

use std::time::Duration;

use vm_memory::GuestMemoryMmap;

use super::testutil::{asm, config, load, ram, RAM, UART};
use crate::a64::{sys, Reg};
use crate::backend::{create_vm, BackendKind, GuestDebug, SystemEvent, Vcpu, VcpuExit, Vm};

pub(super) const DATA: u64 = RAM + 0x10000;
/// Power the VM off (PSCI SYSTEM_OFF): the end marker of every snippet.
const OFF: &str = "ldr x0, =0x84000008\n hvc #0";
/// Vector table at RAM + 0x800: EL1h and EL0 synchronous handlers record ESR/ELR/SPSR/FAR in
/// x3..x6 and power off.
const VECTORS: &str = ".org 0x800\n .org 0xa00\n mrs x13, esr_el1\n mrs x4, elr_el1\n mrs x5, spsr_el1\n \
     mrs x6, far_el1\n ldr x0, =0x84000008\n hvc #0\n .ltorg\n .org 0xc00\n mrs x13, esr_el1\n mrs x4, elr_el1\n \
     mrs x5, spsr_el1\n mrs x6, far_el1\n ldr x0, =0x84000008\n hvc #0\n .ltorg";

pub(super) struct Setup {
    pub vm: Box<dyn Vm>,
    pub cpu: Box<dyn Vcpu>,
    pub mem: GuestMemoryMmap,
}

pub(super) fn setup_with(src: &str, vcpus: usize, nisv: bool) -> Option<Setup> {
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

pub(super) fn setup(src: &str) -> Option<Setup> {
    setup_with(src, 1, true)
}

pub(super) fn x(c: &mut Box<dyn Vcpu>, n: u8) -> u64 {
    c.get(Reg::X(n)).unwrap()
}

/// Host debug with single-step on.
pub(super) fn step_dbg() -> GuestDebug {
    GuestDebug {
        enable: true,
        single_step: true,
        ..GuestDebug::default()
    }
}

/// Host debug with software breakpoints (BRK exits to the VMM) on.
pub(super) fn sw_bp_dbg() -> GuestDebug {
    GuestDebug {
        enable: true,
        sw_breakpoints: true,
        ..GuestDebug::default()
    }
}

pub(super) fn pc(c: &mut Box<dyn Vcpu>) -> u64 {
    c.get(Reg::Pc).unwrap()
}

pub(super) const SHUTDOWN: VcpuExit = VcpuExit::SystemEvent(SystemEvent::Shutdown);

#[test]
fn mmio_write_exits_at_the_access_and_advances_on_next_run() {
    let Some(mut s) = setup(&format!(
        "ldr x1, ={UART:#x}\n mov w0, #0x41\n str w0, [x1]\n mov x7, #1"
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
    assert_eq!(x(&mut s.cpu, 7), 0);
    assert_eq!(s.cpu.run().unwrap(), SHUTDOWN);
    assert_eq!(x(&mut s.cpu, 7), 1);
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
    // NISV to user off: the backend contract (`VmConfig::nisv_to_user`), as on KVM.
    let mut s = setup_with(&src, 1, false).unwrap();
    match s.cpu.run() {
        Ok(VcpuExit::InternalError(m)) => {
            assert!(m.starts_with(crate::backend::NO_SYNDROME_NISV_OFF), "{m}")
        }
        other => panic!("expected InternalError, got {other:?}"),
    }
    assert_eq!(pc(&mut s.cpu), RAM + 4, "PC still at the stp");
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

#[test]
fn exceptions_are_delivered_with_arm_arm_syndromes() {
    let Some(mut s) = setup("svc #0x42") else {
        return;
    };
    assert_eq!(s.cpu.run().unwrap(), SHUTDOWN);
    assert_eq!(x(&mut s.cpu, 13), 0x5600_0042, "ESR: EC 0x15, IL, imm16");
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
    assert_eq!(
        (x(&mut s.cpu, 13), x(&mut s.cpu, 4)),
        (0x0200_0000, RAM + 4)
    );
    let mut s = setup("brk #3").unwrap();
    assert_eq!(s.cpu.run().unwrap(), SHUTDOWN);
    assert_eq!((x(&mut s.cpu, 13), x(&mut s.cpu, 4)), (0xf200_0003, RAM));
    // From EL0: eret to EL0t, then svc: the lower-EL vector, SPSR = EL0t.
    let mut s =
        setup("adr x0, 1f\n msr elr_el1, x0\n msr spsr_el1, xzr\n eret\n1: svc #1").unwrap();
    assert_eq!(s.cpu.run().unwrap(), SHUTDOWN);
    assert_eq!((x(&mut s.cpu, 13), x(&mut s.cpu, 5)), (0x5600_0001, 0));
    // Misaligned PC: EC 0x22 with FAR = the PC.
    let mut s = setup("adr x0, 1f\n add x0, x0, #2\n br x0\n1: nop").unwrap();
    assert_eq!(s.cpu.run().unwrap(), SHUTDOWN);
    assert_eq!(
        (x(&mut s.cpu, 13), x(&mut s.cpu, 6)),
        (0x8a00_0000, RAM + 0xe)
    );
    // Data abort with MMU off: unaligned access to Device memory.
    let mut s = setup(&format!("ldr x1, ={DATA:#x}\n ldr x2, [x1, #1]")).unwrap();
    assert_eq!(s.cpu.run().unwrap(), SHUTDOWN);
    assert_eq!(
        (x(&mut s.cpu, 13), x(&mut s.cpu, 6)),
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
        x(&mut s.cpu, 13),
        0x8600_0010,
        "EC 0x21, IL, IFSC external abort"
    );
    assert_eq!((x(&mut s.cpu, 4), x(&mut s.cpu, 6)), (0x1000, 0x1000));
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
    // An encoding of a feature the model does not implement (FADD (half precision) needs
    // FEAT_FP16) with FP enabled: UNDEFINED in the guest.
    let mut s = setup("mov x0, #0x300000\n msr cpacr_el1, x0\n isb\n .inst 0x1ee22820").unwrap();
    assert_eq!(s.cpu.run().unwrap(), SHUTDOWN);
    assert_eq!(
        (x(&mut s.cpu, 13), x(&mut s.cpu, 4)),
        (0x0200_0000, RAM + 0xc)
    );
    // FP disabled by CPACR_EL1 (reset value): EC 0x07.
    let mut s = setup("fmov d0, x1").unwrap();
    assert_eq!(s.cpu.run().unwrap(), SHUTDOWN);
    assert_eq!(x(&mut s.cpu, 13), 0x1e00_0000);
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

/// Throughput of the interpreter (run with `--ignored --nocapture`, ideally `--release`):
/// a load/store loop with the MMU off, then with RAM identity-mapped read-write.
#[test]
#[ignore = "benchmark: prints a throughput figure, asserts nothing about time"]
fn bench_loop_throughput() {
    let body = "ldr x1, =10000000\n mov x0, #0\n \
                1: add x0, x0, #1\n str x0, [sp, #-16]\n ldr x2, [sp, #-16]\n cmp x0, x1\n b.ne 1b";
    // Block descriptor 0x40000701: RAM's 1 GiB, AttrIdx 0, AP = 00 (read-write at EL1), SH
    // inner, AF (Arm ARM D8.3 "Translation table descriptor formats").
    let mmu_on = mmu_snippet(body).replace("=0x40000781", "=0x40000701");
    for (name, src) in [("MMU off", body.to_string()), ("MMU on", mmu_on)] {
        let Some(mut s) = setup(&src) else {
            return;
        };
        s.cpu.set(Reg::SpEl1, DATA + 0x1000).unwrap();
        let t = std::time::Instant::now();
        assert_eq!(s.cpu.run().unwrap(), SHUTDOWN);
        let secs = t.elapsed().as_secs_f64();
        eprintln!("{name}: {:.1} M instructions/s", 50.0 / secs);
    }
}

/// Identity-maps RAM's 1 GiB read-only (4 KiB granule, T0SZ = 25: level-1 blocks, MAIR
/// attr 0 = Normal WB) with the table at DATA, enables the MMU, then runs `tail`.
fn mmu_snippet(tail: &str) -> String {
    format!(
        "ldr x1, ={DATA:#x}\n ldr x2, =0x40000781\n str x2, [x1, #8]\n msr ttbr0_el1, x1\n \
         ldr x3, =0x800019\n msr tcr_el1, x3\n mov x4, #0xff\n msr mair_el1, x4\n isb\n \
         mrs x5, sctlr_el1\n orr x5, x5, #1\n msr sctlr_el1, x5\n isb\n ldr x9, [x1, #8]\n {tail}"
    )
}

#[test]
fn stage1_faults_reach_the_guest_with_walker_syndromes() {
    let Some(mut s) = setup(&mmu_snippet("mov x7, #0x1000\n ldr x8, [x7]")) else {
        return;
    };
    assert_eq!(s.cpu.run().unwrap(), SHUTDOWN);
    assert_eq!(
        x(&mut s.cpu, 9),
        0x4000_0781,
        "RAM readable through the block"
    );
    assert_eq!(x(&mut s.cpu, 13), 0x9600_0005, "translation fault, level 1");
    assert_eq!(x(&mut s.cpu, 6), 0x1000, "FAR");
    let mut s = setup(&mmu_snippet("str x0, [x1]")).unwrap();
    assert_eq!(s.cpu.run().unwrap(), SHUTDOWN);
    assert_eq!(
        x(&mut s.cpu, 13),
        0x9600_004d,
        "permission fault, level 1, write"
    );
    assert_eq!(x(&mut s.cpu, 6), DATA);
    // SP alignment (SCTLR_EL1.SA is set at reset): EC 0x26.
    let mut s = setup(&format!(
        "ldr x0, ={:#x}\n mov sp, x0\n ldr x1, [sp]",
        DATA + 8
    ))
    .unwrap();
    assert_eq!(s.cpu.run().unwrap(), SHUTDOWN);
    assert_eq!(
        (x(&mut s.cpu, 13), x(&mut s.cpu, 4)),
        (0x9a00_0000, RAM + 8)
    );
}

mod debug;
mod guest_debug;
mod icache;
mod irq;
mod psci;
mod vcatch;

#[test]
fn gic_ranges_are_served_in_the_model_and_vcpu_creation_is_checked() {
    // GICD_TYPER and GICR_TYPER (low word) read in the model, no exit; a GICD write too.
    let Some(mut s) = setup(
        "ldr x1, =0x08000000\n ldr w5, [x1, #4]\n mov w0, #2\n str w0, [x1]\n ldr w6, [x1]\n \
         ldr x1, =0x080a0000\n ldr w7, [x1, #8]",
    ) else {
        return;
    };
    assert_eq!(s.cpu.run().unwrap(), SHUTDOWN);
    assert_eq!(x(&mut s.cpu, 5), 0x0048_0008, "GICD_TYPER");
    assert_eq!(x(&mut s.cpu, 6), 0x52, "GICD_CTLR: ARE | DS | EnableGrp1");
    assert_eq!(x(&mut s.cpu, 7), 0x10, "GICR_TYPER: Last");
    assert!(s.vm.create_vcpu(0).is_err(), "vCPU 0 exists already");
    assert!(s.vm.create_vcpu(1).is_err(), "the VM has one vCPU");
    assert!(create_vm(BackendKind::Model, &s.mem, &config(0)).is_err());
    let mut too_many = config(2);
    too_many.gic.redist_size = 0x2_0000;
    assert!(
        create_vm(BackendKind::Model, &s.mem, &too_many).is_err(),
        "two vCPUs need two redistributors"
    );
}

#[test]
fn unprivileged_access_faults_are_taken_from_el1() {
    // The snippet maps RAM read-only at EL1 and inaccessible at EL0 (AP = 0b10): LDTR at EL1
    // checks EL0's permissions and faults, but the abort is taken from EL1 (EC 0x25).
    let Some(mut s) = setup(&mmu_snippet(&format!(
        "ldr x7, ={DATA:#x}\n ldtrh w1, [x7]"
    ))) else {
        return;
    };
    assert_eq!(s.cpu.run().unwrap(), SHUTDOWN);
    assert_eq!(
        x(&mut s.cpu, 13),
        0x9600_000d,
        "permission fault, level 1, from EL1"
    );
    assert_eq!(x(&mut s.cpu, 6), DATA);
}
