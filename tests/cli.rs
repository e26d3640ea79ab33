//! The command line on bad input: one clear error line, a non-zero status, no panic.

use std::process::{Command, Output};

fn kvmdbg(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kvmdbg"))
        .args(args)
        .output()
        .expect("kvmdbg runs")
}

/// Asserts exit status `code` and exactly one stderr line containing `needle`.
fn assert_one_line_error(out: &Output, code: i32, needle: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "stderr: {err}");
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "expected one line, got: {err}");
    assert!(lines[0].contains(needle), "{:?} lacks {needle:?}", lines[0]);
    assert!(!err.contains("panicked"), "{err}");
}

fn temp_file(name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("kvmdbg-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

#[test]
fn missing_firmware_file() {
    let out = kvmdbg(&["run", "/nonexistent/fw.elf", "--backend", "model"]);
    assert_one_line_error(&out, 2, "cannot read firmware /nonexistent/fw.elf");
}

#[test]
fn truncated_and_foreign_elf_files() {
    let mut hdr = b"\x7fELF\x02\x01\x01".to_vec();
    hdr.resize(40, 0);
    let p = temp_file("trunc.elf", &hdr);
    let out = kvmdbg(&["run", p.to_str().unwrap(), "--backend", "model"]);
    assert_one_line_error(&out, 2, "not a valid AArch64 ELF");
}

#[test]
fn empty_firmware_file() {
    let p = temp_file("empty.bin", b"");
    let out = kvmdbg(&["run", p.to_str().unwrap(), "--backend", "model"]);
    assert_one_line_error(&out, 2, "empty firmware");
}

#[test]
fn zero_and_absurd_memory_sizes() {
    for size in ["0", "1000000G", "12Q", "-5", "18446744073709551617"] {
        let arg = format!("--memory={size}");
        let out = kvmdbg(&["run", &arg, "--backend", "model"]);
        assert_one_line_error(&out, 2, "memory size");
    }
}

#[test]
fn unknown_backend() {
    let out = kvmdbg(&["run", "--backend", "hyperv"]);
    assert_one_line_error(&out, 2, "possible values: auto, kvm, model");
}

#[test]
fn zero_and_absurd_cpu_counts() {
    for n in ["0", "100000"] {
        let out = kvmdbg(&["run", "--cpus", n, "--backend", "model"]);
        assert_one_line_error(&out, 2, "vCPU count");
    }
}

#[test]
fn kvm_backend_on_a_host_without_arm64_kvm() {
    if cfg!(target_arch = "aarch64") {
        return; // the nested suite covers the real thing
    }
    let out = kvmdbg(&["run", "--backend", "kvm"]);
    assert_one_line_error(&out, 1, "aarch64 Linux host");
}
