//! Runs every test firmware on QEMU (the reference machine) and checks its verdict: exit
//! status 0 after PSCI SYSTEM_OFF and exactly one verdict line, `PASS <name>`. This pins down
//! that the firmware itself is right, so a failure under kvmdbg is kvmdbg's.

mod common;

use std::time::Duration;

/// Generous: TCG with 4 vCPUs on a loaded 2-core machine; the firmware needs well under 1 s.
const TIMEOUT: Duration = Duration::from_secs(60);

/// Every firmware this file runs; `every_firmware_is_run_here` keeps it complete.
const COVERED: &[&str] = &[
    "cbench",
    "cdemo",
    "compute",
    "csimd",
    "demo",
    "echo",
    "echosmp",
    "exceptions",
    "hello",
    "highmem",
    "longrun",
    "mmio",
    "smp",
    "stepmmio",
    "timer",
];

/// Boots `name` with `cpus` CPUs and asserts a clean PASS. None if a tool is missing (skip).
fn run_firmware(name: &str, cpus: u32) -> Option<common::RunOutput> {
    if !common::require_firmware_tools() || !common::require_tool(common::QEMU) {
        return None;
    }
    let elf = common::firmware_elf(name);
    let out = common::run_with_timeout(&mut common::qemu_command(&elf, cpus), TIMEOUT);
    assert!(
        out.status.is_some(),
        "{name} (-smp {cpus}) did not power off within {TIMEOUT:?}\n{}",
        out.describe()
    );
    assert!(
        out.success(),
        "{name} (-smp {cpus}): QEMU failed\n{}",
        out.describe()
    );
    let expected = format!("PASS {name}");
    assert_eq!(
        out.verdicts(),
        [expected.as_str()],
        "{name} (-smp {cpus}): wrong verdict\n{}",
        out.describe()
    );
    Some(out)
}

#[test]
fn hello_passes() {
    if let Some(out) = run_firmware("hello", 1) {
        assert!(
            out.lines().contains(&"Hello from kvmdbg firmware"),
            "greeting missing\n{}",
            out.describe()
        );
    }
}

#[test]
fn echo_reads_piped_input_through_the_uart_interrupt() {
    if !common::require_firmware_tools() || !common::require_tool(common::QEMU) {
        return;
    }
    let elf = common::firmware_elf("echo");
    let pause = Duration::from_millis(300);
    let out = common::run_with_input(
        &mut common::qemu_command(&elf, 1),
        &[(pause, b"ab"), (pause, b"c\n")],
        TIMEOUT,
    );
    assert!(out.success(), "echo: QEMU failed\n{}", out.describe());
    assert_eq!(out.verdicts(), ["PASS echo"], "{}", out.describe());
    // 'a' + 'b' + 'c' + '\n' = 97 + 98 + 99 + 10.
    assert!(out.lines().contains(&"sum=304"), "{}", out.describe());
}

#[test]
fn echosmp_reads_piped_input_while_secondaries_run() {
    if !common::require_firmware_tools() || !common::require_tool(common::QEMU) {
        return;
    }
    let elf = common::firmware_elf("echosmp");
    let pause = Duration::from_millis(300);
    for cpus in [1, 4] {
        let out = common::run_with_input(
            &mut common::qemu_command(&elf, cpus),
            &[(pause, b"ab"), (pause, b"c\n")],
            TIMEOUT,
        );
        assert!(out.success(), "echosmp: QEMU failed\n{}", out.describe());
        assert_eq!(out.verdicts(), ["PASS echosmp"], "{}", out.describe());
        let lines = out.lines();
        assert!(lines.contains(&"sum=304"), "{}", out.describe());
        let all = format!("cpus={cpus}");
        assert!(lines.contains(&all.as_str()), "{}", out.describe());
    }
}

#[test]
fn highmem_passes() {
    if let Some(out) = run_firmware("highmem", 1) {
        assert!(
            out.lines().contains(&"highmem: running at the high alias"),
            "never ran at the high alias\n{}",
            out.describe()
        );
    }
}

#[test]
fn mmio_passes() {
    if let Some(out) = run_firmware("mmio", 1) {
        assert!(
            out.lines().contains(&"mmio: register-offset forms ok"),
            "last mmio group did not report\n{}",
            out.describe()
        );
    }
}

#[test]
fn cbench_passes() {
    run_firmware("cbench", 1);
}

/// 67 million instructions: about 1 s under TCG on this machine kind, within the timeout.
#[test]
fn longrun_passes() {
    run_firmware("longrun", 1);
}

#[test]
fn cdemo_passes() {
    run_firmware("cdemo", 1);
}

#[test]
fn csimd_passes() {
    run_firmware("csimd", 1);
}

#[test]
fn compute_passes() {
    run_firmware("compute", 1);
}

#[test]
fn stepmmio_passes() {
    run_firmware("stepmmio", 1);
}

#[test]
fn timer_passes() {
    for cpus in [1, 2] {
        if let Some(out) = run_firmware("timer", cpus) {
            assert!(
                out.lines().contains(&"timer: interrupts taken: 6"),
                "interrupt count missing\n{}",
                out.describe()
            );
        }
    }
}

#[test]
fn exceptions_passes() {
    if let Some(out) = run_firmware("exceptions", 1) {
        assert!(
            out.lines().contains(&"exceptions: svc, brk, udf handled"),
            "exception summary missing\n{}",
            out.describe()
        );
    }
}

#[test]
fn demo_passes() {
    if let Some(out) = run_firmware("demo", 1) {
        assert!(
            out.lines()
                .contains(&"fibonacci: 0 1 1 2 3 5 8 13 21 34 55 89"),
            "fibonacci line missing\n{}",
            out.describe()
        );
    }
}

/// `smp` must find exactly `cpus` CPUs, each secondary reporting once.
fn check_smp(cpus: u32) {
    let Some(out) = run_firmware("smp", cpus) else {
        return;
    };
    let lines = out.lines();
    for cpu in 1..cpus {
        let alive = format!("cpu {cpu} alive");
        let count = lines.iter().filter(|l| **l == alive).count();
        assert_eq!(count, 1, "`{alive}` seen {count} times\n{}", out.describe());
    }
    let reports = lines.iter().filter(|l| l.ends_with(" alive")).count();
    assert_eq!(
        reports,
        cpus as usize - 1,
        "extra CPUs reported\n{}",
        out.describe()
    );
    let online = format!("smp: cpus online: {cpus}");
    assert!(
        lines.contains(&online.as_str()),
        "`{online}` missing\n{}",
        out.describe()
    );
}

#[test]
fn smp_passes_with_1_cpu() {
    check_smp(1);
}

#[test]
fn smp_passes_with_2_cpus() {
    check_smp(2);
}

#[test]
fn smp_passes_with_4_cpus() {
    check_smp(4);
}

#[test]
fn every_firmware_is_run_here() {
    let names = common::firmware_names();
    assert_eq!(
        names, COVERED,
        "firmware/*.S, *.c and this file's tests differ: add a test for each new firmware"
    );
}
