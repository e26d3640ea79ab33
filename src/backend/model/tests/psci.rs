//! PSCI through the model (like KVM's in-kernel PSCI) and multi-vCPU behaviour: CPU_ON,
//! CPU_OFF, AFFINITY_INFO, SYSTEM_OFF, and exclusives/atomics racing across vCPUs.

use std::time::Duration;

use super::*;

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
fn exclusives_and_atomics_are_atomic_across_vcpus() {
    const N: u64 = 20_000;
    let Some(mut s) = setup_with(
        &format!(
            "ldr x0, =0xc4000003\n mov x1, #1\n adr x2, 5f\n hvc #0\n \
             5: ldr x1, ={DATA:#x}\n ldr x5, ={N}\n \
             1: ldxr x2, [x1]\n add x2, x2, #1\n stxr w3, x2, [x1]\n cbnz w3, 1b\n \
             mov x6, #1\n add x8, x1, #8\n ldadd x6, x7, [x8]\n subs x5, x5, #1\n b.ne 1b\n \
             mrs x9, mpidr_el1\n and x9, x9, #0xff\n cbz x9, 6f\n \
             mov x6, #1\n add x8, x1, #16\n stlr x6, [x8]\n movz w0, #0x8400, lsl #16\n add x0, x0, #2\n hvc #0\n \
             6: add x8, x1, #16\n 7: ldar x6, [x8]\n cbz x6, 7b\n ldr x10, [x1]\n ldr x11, [x1, #8]"
        ),
        2,
        true,
    ) else {
        return;
    };
    let c1 = s.vm.create_vcpu(1).unwrap();
    let k1 = c1.kicker();
    let t = std::thread::spawn(move || {
        let mut c1 = c1;
        c1.run().unwrap()
    });
    assert_eq!(s.cpu.run().unwrap(), SHUTDOWN);
    assert_eq!((x(&mut s.cpu, 10), x(&mut s.cpu, 11)), (2 * N, 2 * N));
    // vCPU 1 powered itself off (CPU_OFF) and blocks in run(): a kick ends it.
    k1.kick();
    assert_eq!(t.join().unwrap(), VcpuExit::Interrupted);
}
