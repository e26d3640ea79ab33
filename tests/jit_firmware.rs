//! The model's JIT tier against its interpreter on every test firmware: each runs with the
//! deterministic clock (`--icount`, so timer interrupts, WFI wake-ups and the vCPUs' turns
//! depend on instruction counts alone) once with the JIT (every block compiled on its first
//! entry: `KVMDBG_JIT_HOT=1`) and once with `--no-jit`; the UART output, the exit trace
//! (`--trace-exits`: every exit with its PC and data, per vCPU) and the final-state hash (registers
//! of every vCPU and RAM) must be identical. Any difference in a register, a flag, memory, an exception's PC or syndrome,
//! or an instruction count shows up in one of them. `smp` runs on four vCPUs (PSCI CPU_ON,
//! the vCPUs' turns under the deterministic clock), the others on one.

mod common;

use std::process::Command;
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(180);

/// (stdout, exit trace and hash lines) of `name` on `cpus` vCPUs, JIT on or off.
fn run(name: &str, cpus: u32, jit: bool) -> (String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kvmdbg"));
    cmd.arg("run").arg(common::firmware_elf(name)).args([
        "--backend",
        "model",
        "--cpus",
        &cpus.to_string(),
        "--icount",
        "--state-hash",
        "--trace-exits",
    ]);
    if jit {
        // Every block compiled on its first entry: the most compiled code per run.
        cmd.env("KVMDBG_JIT_HOT", "1");
    } else {
        cmd.arg("--no-jit");
    }
    let out = common::run_with_timeout(&mut cmd, TIMEOUT);
    assert!(
        out.success(),
        "{name} (jit {jit}) failed\n{}",
        out.describe()
    );
    assert_eq!(out.verdicts(), [format!("PASS {name}").as_str()]);
    let mut trace: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| !l.contains("INFO") && !l.contains("WARN"))
        .collect();
    // Each vCPU's exits in their order; across vCPUs the lines interleave as their threads
    // print them (at power-off each vCPU thread reports its kick when it gets to it), so
    // they are grouped by vCPU (a stable sort: lines without a vCPU, the hash, last).
    trace.sort_by_key(|l| {
        l.strip_prefix("vcpu")
            .and_then(|r| r.split(' ').next())
            .and_then(|n| n.parse::<u32>().ok())
            .unwrap_or(u32::MAX)
    });
    assert!(
        trace.iter().any(|l| l.contains("final state hash")),
        "{name}: no state hash\n{}",
        out.describe()
    );
    (out.stdout.clone(), trace.join("\n"))
}

fn same_with_and_without_jit(name: &str, cpus: u32) {
    if !common::require_firmware_tools() {
        return;
    }
    let jit = run(name, cpus, true);
    let interp = run(name, cpus, false);
    assert_eq!(jit.0, interp.0, "{name} --cpus {cpus}: output differs");
    if jit.1 != interp.1 {
        let first = jit
            .1
            .lines()
            .zip(interp.1.lines())
            .position(|(a, b)| a != b);
        panic!(
            "{name} --cpus {cpus}: exit trace or final state differs (first at line {first:?})\n\
             --- jit:\n{}\n--- interpreter:\n{}",
            tail(&jit.1),
            tail(&interp.1)
        );
    }
}

fn tail(s: &str) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

#[test]
fn compute_and_c_workloads() {
    same_with_and_without_jit("compute", 1);
    same_with_and_without_jit("cbench", 1);
    same_with_and_without_jit("cdemo", 1);
    same_with_and_without_jit("csimd", 1);
}

#[test]
fn exceptions_mmio_and_memory() {
    same_with_and_without_jit("hello", 1);
    same_with_and_without_jit("demo", 1);
    same_with_and_without_jit("exceptions", 1);
    same_with_and_without_jit("mmio", 1);
    same_with_and_without_jit("stepmmio", 1);
    same_with_and_without_jit("highmem", 1);
}

#[test]
fn timer_interrupts_and_wfi() {
    same_with_and_without_jit("timer", 1);
}

#[test]
fn smp_on_four_vcpus() {
    same_with_and_without_jit("smp", 4);
}
