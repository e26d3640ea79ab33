//! Every test firmware boots on kvmdbg's model backend, passes, and prints exactly what it
//! prints on QEMU (the reference), line for line (smp: the same set of lines, since secondary
//! CPUs race for the UART).

mod common;

use std::process::Command;
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(120);

fn kvmdbg_model(name: &str, cpus: u32) -> Option<common::RunOutput> {
    if !common::require_firmware_tools() {
        return None;
    }
    let elf = common::firmware_elf(name);
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kvmdbg"));
    cmd.arg("run")
        .arg(&elf)
        .args(["--backend", "model", "--cpus", &cpus.to_string()]);
    let out = common::run_with_timeout(&mut cmd, TIMEOUT);
    assert!(
        out.success(),
        "{name} on the model (--cpus {cpus}) failed\n{}",
        out.describe()
    );
    let expected = format!("PASS {name}");
    assert_eq!(out.verdicts(), [expected.as_str()], "{}", out.describe());
    Some(out)
}

/// Asserts the model's output equals QEMU's (as a sorted multiset when `any_order`).
fn same_as_qemu(name: &str, cpus: u32, any_order: bool) {
    let Some(model) = kvmdbg_model(name, cpus) else {
        return;
    };
    if !common::require_tool(common::QEMU) {
        return;
    }
    let elf = common::firmware_elf(name);
    let qemu = common::run_with_timeout(&mut common::qemu_command(&elf, cpus), TIMEOUT);
    assert!(qemu.success(), "QEMU reference failed\n{}", qemu.describe());
    let (mut a, mut b) = (model.lines(), qemu.lines());
    if any_order {
        a.sort_unstable();
        b.sort_unstable();
    }
    assert_eq!(a, b, "{name}: model output differs from QEMU's");
}

#[test]
fn hello_matches_qemu() {
    same_as_qemu("hello", 1, false);
}

#[test]
fn highmem_matches_qemu() {
    same_as_qemu("highmem", 1, false);
}

#[test]
fn mmio_matches_qemu() {
    same_as_qemu("mmio", 1, false);
}

#[test]
fn exceptions_matches_qemu() {
    same_as_qemu("exceptions", 1, false);
}

/// Firmware in C compiled at -O2 by a standard cross compiler, not hand-written assembly.
#[test]
fn cdemo_in_c_matches_qemu() {
    same_as_qemu("cdemo", 1, false);
}

/// C at -O3: vectorised loops (UADDL, UADDW, SMULL, FMLA, ADDV...) and scalar FP.
#[test]
fn csimd_vectorised_c_matches_qemu() {
    same_as_qemu("csimd", 1, false);
}

/// The C workload of scripts/bench-model.sh (MMU and caches on, -O2: a sieve, a
/// table-driven CRC-32, a matrix multiply).
#[test]
fn cbench_matches_qemu() {
    same_as_qemu("cbench", 1, false);
}

/// The recording benchmark's loop (scripts/bench-record.sh): 67 million instructions.
#[test]
fn longrun_matches_qemu() {
    same_as_qemu("longrun", 1, false);
}

#[test]
fn compute_matches_qemu() {
    same_as_qemu("compute", 1, false);
}

#[test]
fn stepmmio_matches_qemu() {
    same_as_qemu("stepmmio", 1, false);
}

/// The generic timer interrupting through the in-model GICv3 (on 2 vCPUs too: the
/// firmware finds its own redistributor).
#[test]
fn timer_matches_qemu() {
    for cpus in [1, 2] {
        same_as_qemu("timer", cpus, false);
    }
}

#[test]
fn demo_matches_qemu() {
    same_as_qemu("demo", 1, false);
}

#[test]
fn smp_matches_qemu_on_1_2_and_4_cpus() {
    for cpus in [1, 2, 4] {
        same_as_qemu("smp", cpus, true);
    }
}

/// Console input through the UART interrupt, the same lines as QEMU's with the same input:
/// `echo` (1 vCPU) and `echosmp` (4 vCPUs, the secondaries running while vCPU 0 reads), with
/// and without the deterministic clock. The bytes come in two pieces while every vCPU may sit
/// in WFI with no timer armed: the model must wait for the UART's interrupt, not report that
/// nothing can wake the machine.
#[test]
fn echo_firmware_matches_qemu_with_piped_input() {
    if !common::require_firmware_tools() || !common::require_tool(common::QEMU) {
        return;
    }
    let input: &[(Duration, &'static [u8])] = &[
        (Duration::from_millis(300), b"ab"),
        (Duration::from_millis(300), b"c\n"),
    ];
    for (name, cpus) in [("echo", 1), ("echosmp", 4)] {
        let elf = common::firmware_elf(name);
        let qemu = common::run_with_input(&mut common::qemu_command(&elf, cpus), input, TIMEOUT);
        assert!(qemu.success(), "QEMU reference failed\n{}", qemu.describe());
        for clock in [&["--icount"][..], &[]] {
            let mut cmd = Command::new(env!("CARGO_BIN_EXE_kvmdbg"));
            cmd.arg("run")
                .arg(&elf)
                .args(["--backend", "model", "--cpus", &cpus.to_string()])
                .args(clock);
            let model = common::run_with_input(&mut cmd, input, TIMEOUT);
            let what = format!("{name} on the model {clock:?}");
            assert!(model.success(), "{what}\n{}", model.describe());
            assert_eq!(
                model.verdicts(),
                [format!("PASS {name}")],
                "{what}\n{}",
                model.describe()
            );
            assert_eq!(
                model.lines(),
                qemu.lines(),
                "{what}: output differs from QEMU's"
            );
        }
    }
}

#[test]
fn the_embedded_demo_runs_without_arguments() {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kvmdbg"));
    cmd.args(["run", "--backend", "model"]);
    let out = common::run_with_timeout(&mut cmd, TIMEOUT);
    assert!(out.success(), "{}", out.describe());
    assert_eq!(out.verdicts(), ["PASS demo"], "{}", out.describe());
}
