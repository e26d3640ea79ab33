//! The KVM backend's VM and vCPU plumbing against real arm64 KVM: capabilities, registers, the
//! register list, secondary vCPUs with PSCI CPU_ON, VM finalization and kicks.
//!
//! Without usable KVM every test skips with a message, or fails under `CI=true`.
#![cfg(all(target_os = "linux", target_arch = "aarch64"))]

mod kvm_support;

use std::sync::mpsc;
use std::time::Duration;

use kvm_support::*;
use kvmdbg::a64::exception::VectorKind;
use kvmdbg::a64::vcatch::{CatchSource, VectorCatch};
use kvmdbg::a64::{sys, Reg};
use kvmdbg::backend::{GuestDebug, VcpuExit, Vm};
use vm_memory::GuestAddress;

#[test]
fn probe_reports_the_debug_capabilities_the_guest_sees() {
    let Some(caps) = kvm_available("probe") else {
        return;
    };
    eprintln!("KVM caps: {caps:?}");
    assert_eq!(caps.backend, "kvm");
    assert_eq!(caps.api_version, 12);
    assert!(caps.guest_debug && caps.immediate_exit && caps.nisv_to_user);
    assert!(caps.preferred_target.is_some());
    assert!(
        !caps.exact_vector_catch,
        "KVM catches vectors with breakpoints only"
    );
    assert!(caps.ipa_bits >= 40, "{}", caps.ipa_bits);
    // KVM's slot counts come from ID_AA64DFR0_EL1.BRPs [15:12] and WRPs [23:20] (number - 1,
    // Arm ARM D19.2.58), the same register the guest reads.
    let Some(mut g) = GuestBuilder::new(&[&SYSTEM_OFF]).build("probe") else {
        return;
    };
    let dfr0 = g.vcpus[0].get(Reg::Sys(sys::ID_AA64DFR0_EL1)).unwrap();
    assert_eq!(caps.hw_breakpoints as u64, ((dfr0 >> 12) & 0xf) + 1);
    assert_eq!(caps.hw_watchpoints as u64, ((dfr0 >> 20) & 0xf) + 1);
    assert_eq!(g.vm.caps(), &caps);
    // A vector catch at exception entry is not KVM's: refused, never silently ignored.
    let catch = GuestDebug {
        enable: true,
        vector_catch: VectorCatch::NONE.with(VectorKind::Sync, CatchSource::El0),
        ..GuestDebug::default()
    };
    let err = g.vcpus[0].set_guest_debug(&catch).unwrap_err();
    assert!(err.to_string().contains("no vector catch"), "{err}");
    // The nested recipe (QEMU `-cpu max`) has 6 breakpoints and 4 watchpoints.
    if let Ok(want) = std::env::var("KVMDBG_EXPECT_HW_SLOTS") {
        let got = format!("{}/{}", caps.hw_breakpoints, caps.hw_watchpoints);
        assert_eq!(got, want);
    }
}

#[test]
fn kick_before_run_interrupts_exactly_one_run() {
    let code = [
        0xd2a1_2001, // +0x00 mov x1, #0x9000000
        0xb900_0020, // +0x04 str w0, [x1]
    ];
    let Some(mut g) = GuestBuilder::new(&[&code, &SYSTEM_OFF]).build("kick_before") else {
        return;
    };
    let cpu = g.vcpus[0].as_mut();
    let kicker = cpu.kicker();
    kicker.kick();
    kicker.kick();
    let watchdog = Watchdog::new(cpu.kicker(), WATCHDOG);
    assert_eq!(cpu.run().unwrap(), VcpuExit::Interrupted);
    drop(watchdog);
    assert_eq!(pc_off(cpu), 0, "the guest did not run");
    let trace = run_trace(cpu, 0, 4);
    assert_eq!(
        trace,
        [
            "MMIO write addr=0x9000000 len=4 data=0x0 pc=+0x4",
            "SYSTEM_EVENT shutdown"
        ]
    );
}

#[test]
fn kick_from_another_thread_interrupts_a_vcpu_running_elsewhere() {
    let Some(g) = GuestBuilder::new(&[&[SPIN]]).build("kick_thread") else {
        return;
    };
    let mut vcpus = g.vcpus;
    let mut cpu = vcpus.remove(0);
    let kicker = cpu.kicker();
    let (tx, rx) = mpsc::channel();
    // Created on this thread, run on another: the kick must find the running thread.
    let runner = std::thread::spawn(move || {
        for _ in 0..3 {
            tx.send(cpu.run()).unwrap();
        }
        cpu
    });
    for round in 0..3 {
        std::thread::sleep(Duration::from_millis(100));
        assert!(
            rx.try_recv().is_err(),
            "round {round}: the spin loop returned"
        );
        kicker.kick();
        let exit = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("kick ignored");
        assert_eq!(exit.unwrap(), VcpuExit::Interrupted, "round {round}");
    }
    let mut cpu = runner.join().unwrap();
    assert_eq!(pc_off(cpu.as_mut()), 0);
}

#[test]
fn registers_round_trip_and_reach_the_guest() {
    let code = [
        0xd53b_e345, // +0x00 mrs x5, cntv_cval_el0
        0xd538_d086, // +0x04 mrs x6, tpidr_el1
        0x9e67_0067, // +0x08 fmov d7, x3
    ];
    let Some(mut g) = GuestBuilder::new(&[&code, &SYSTEM_OFF]).build("registers") else {
        return;
    };
    let cpu = g.vcpus[0].as_mut();
    // Reset state: EL1h with D, A, I, F masked (KVM_ARM_VCPU_INIT, arch/arm64/kvm/reset.c).
    assert_eq!(cpu.get(Reg::Pstate).unwrap(), 0x3c5);
    let v = 0x0123_4567_89ab_cdef_fedc_ba98_7654_3210u128;
    cpu.set_reg(Reg::V(31), v).unwrap();
    assert_eq!(cpu.get_reg(Reg::V(31)).unwrap(), v);
    cpu.set(Reg::Fpcr, 0x0300_0000).unwrap();
    assert_eq!(cpu.get(Reg::Fpcr).unwrap(), 0x0300_0000);
    cpu.set(Reg::ElrEl1, 0x4000_1234).unwrap();
    assert_eq!(cpu.get(Reg::ElrEl1).unwrap(), 0x4000_1234);
    cpu.set(Reg::X(3), 0x1111_2222_3333_4444).unwrap();
    // CPACR_EL1.FPEN = 0b11 (Arm ARM D19.2.30): no trap of the guest's FP/SIMD instructions.
    cpu.set(Reg::Sys(sys::CPACR_EL1), 3 << 20).unwrap();
    cpu.set(Reg::Sys(sys::TPIDR_EL1), 0xfeed_beef).unwrap();
    // CNTV_CVAL_EL0 goes through KVM_REG_ARM_TIMER_CVAL, whose id carries CNTVCT's encoding.
    cpu.set(Reg::Sys(sys::CNTV_CVAL_EL0), 0xdead_0000_beef)
        .unwrap();
    assert_eq!(run_trace(cpu, 0, 4), ["SYSTEM_EVENT shutdown"]);
    assert_eq!(cpu.get(Reg::X(5)).unwrap(), 0xdead_0000_beef);
    assert_eq!(cpu.get(Reg::X(6)).unwrap(), 0xfeed_beef);
    assert_eq!(cpu.get_reg(Reg::V(7)).unwrap(), 0x1111_2222_3333_4444);
    let c1 = cpu.get(Reg::Sys(sys::CNTVCT_EL0)).unwrap();
    std::thread::sleep(Duration::from_millis(5));
    let c2 = cpu.get(Reg::Sys(sys::CNTVCT_EL0)).unwrap();
    assert!(c2 > c1, "the virtual counter runs ({c1:#x} -> {c2:#x})");
    assert!(cpu.get(Reg::X(31)).is_err());
}

#[test]
fn reg_list_maps_kvm_ids_to_registers() {
    let Some(mut g) = GuestBuilder::new(&[&SYSTEM_OFF]).build("reg_list") else {
        return;
    };
    let list = g.vcpus[0].reg_list().unwrap();
    eprintln!("{} registers", list.len());
    for r in [
        Reg::X(0),
        Reg::X(30),
        Reg::Sp,
        Reg::Pc,
        Reg::Pstate,
        Reg::SpEl1,
        Reg::ElrEl1,
        Reg::SpsrEl1,
        Reg::V(0),
        Reg::V(31),
        Reg::Fpsr,
        Reg::Fpcr,
        Reg::Sys(sys::SCTLR_EL1),
        Reg::Sys(sys::MIDR_EL1),
        Reg::Sys(sys::dbgbcr(0)),
        Reg::Sys(sys::CNTVCT_EL0),
        Reg::Sys(sys::CNTV_CVAL_EL0),
    ] {
        assert!(list.contains(&r), "{r:?} missing");
    }
    for r in &list {
        g.vcpus[0]
            .get_reg(*r)
            .unwrap_or_else(|e| panic!("{r:?}: {e}"));
    }
}

#[test]
fn secondary_vcpu_starts_powered_off_and_runs_after_psci_cpu_on() {
    let boot = [
        0x5280_0060, // +0x00 mov  w0, #3
        0x72b8_8000, // +0x04 movk w0, #0xc400, lsl #16   w0 = 0xc400_0003 CPU_ON (SMC64)
        0xd280_0021, // +0x08 mov  x1, #1                 target MPIDR: Aff0 = 1
        0xd280_2002, // +0x0c mov  x2, #0x100
        0xf2a8_0002, // +0x10 movk x2, #0x4000, lsl #16   entry = 0x4000_0100
        0xd280_0ee3, // +0x14 mov  x3, #0x77              context id
        0xd400_0002, // +0x18 hvc  #0
        0xd2a1_2001, // +0x1c mov  x1, #0x9000000
        0xf900_0420, // +0x20 str  x0, [x1, #8]           report CPU_ON's result
        SPIN,        // +0x24 b    .
    ];
    let secondary = [
        0xd2a1_2001, // +0x100 mov x1, #0x9000000
        0xf900_0020, // +0x104 str x0, [x1]               x0 = context id
        SPIN,        // +0x108 b   .
    ];
    let builder = GuestBuilder::new(&[&boot])
        .code_at(0x100, &secondary)
        .vcpus(2);
    let Some(g) = builder.build("cpu_on") else {
        return;
    };
    assert!(g.vm.create_vcpu(2).is_err(), "only 2 vCPUs configured");
    let mut vcpus = g.vcpus;
    let mut cpu1 = vcpus.remove(1);
    let mut cpu0 = vcpus.remove(0);
    assert_eq!(cpu1.get(Reg::Sys(sys::MPIDR_EL1)).unwrap() & 0xff, 1);
    let kick1 = cpu1.kicker();
    let (tx, rx) = mpsc::channel();
    let runner = std::thread::spawn(move || {
        let exit = cpu1.run();
        let pc = cpu1.get(Reg::Pc);
        tx.send((exit, pc)).unwrap();
    });
    let watchdog = Watchdog::new(cpu0.kicker(), WATCHDOG);
    let exit0 = cpu0.run().unwrap();
    drop(watchdog);
    assert_eq!(
        trace_line(&exit0, cpu0.as_mut()),
        "MMIO write addr=0x9000008 len=8 data=0x0 pc=+0x20"
    );
    let got = rx.recv_timeout(Duration::from_secs(10));
    if got.is_err() {
        kick1.kick();
    }
    let (exit1, pc1) = got.expect("vCPU 1 never started");
    let expected = VcpuExit::MmioWrite {
        addr: MMIO,
        len: 8,
        data: 0x77u64.to_le_bytes(),
    };
    assert_eq!(exit1.unwrap(), expected);
    assert_eq!(pc1.unwrap(), RAM + 0x104);
    runner.join().unwrap();
}

#[test]
fn finalize_requires_every_vcpu() {
    if kvm_available("finalize").is_none() {
        return;
    }
    let mem = vm_memory::GuestMemoryMmap::from_ranges(&[(GuestAddress(RAM), RAM_SIZE)]).unwrap();
    let cfg = kvmdbg::backend::VmConfig {
        vcpus: 2,
        gic: gic(),
        nisv_to_user: false,
        model_keep_ss_bug: false,
        icount: false,
        jit: true,
    };
    let vm = kvmdbg::backend::kvm::KvmVm::new(&mem, &cfg).unwrap();
    let _cpu0 = vm.create_vcpu(0).unwrap();
    assert!(vm.create_vcpu(0).is_err(), "vCPU 0 twice");
    assert!(vm.finalize().is_err(), "vCPU 1 missing");
    let _cpu1 = vm.create_vcpu(1).unwrap();
    vm.finalize().unwrap();
}

/// Kicks racing with a stream of MMIO exits: every kick ends exactly one run with
/// `Interrupted`, none is lost between two runs, and none is counted twice.
#[test]
fn every_kick_interrupts_exactly_one_run_while_exits_stream() {
    let code = [
        0xd2a1_2001, // +0x00 mov x1, #0x9000000
        0xb900_0020, // +0x04 str w0, [x1]        MMIO write exit
        0x17ff_ffff, // +0x08 b   +0x04
    ];
    let Some(g) = GuestBuilder::new(&[&code]).build("kick_race") else {
        return;
    };
    let mut vcpus = g.vcpus;
    let mut cpu = vcpus.remove(0);
    let kicker = cpu.kicker();
    let (tx, rx) = mpsc::channel();
    let runner = std::thread::spawn(move || {
        let mut writes = 0u64;
        loop {
            match cpu.run().expect("KVM_RUN") {
                VcpuExit::MmioWrite { .. } => writes += 1,
                VcpuExit::Interrupted => {
                    if tx.send(()).is_err() {
                        return writes;
                    }
                }
                other => panic!("unexpected exit {other:?}"),
            }
        }
    });
    const KICKS: u64 = 200;
    for i in 0..KICKS {
        kicker.kick();
        rx.recv_timeout(Duration::from_secs(10))
            .unwrap_or_else(|_| panic!("kick {i} lost"));
        std::thread::sleep(Duration::from_micros(i * 37 % 400));
    }
    std::thread::sleep(Duration::from_millis(50));
    assert!(rx.try_recv().is_err(), "a kick interrupted two runs");
    drop(rx);
    kicker.kick();
    let writes = runner.join().unwrap();
    eprintln!("{KICKS} kicks across {writes} MMIO exits");
    assert!(writes > KICKS, "the guest kept running between kicks");
}
