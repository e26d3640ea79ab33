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

#[test]
fn bad_gdb_specs_and_wait_without_gdb() {
    let out = kvmdbg(&["run", "--backend", "model", "--gdb", "foo"]);
    assert_one_line_error(&out, 2, "expected tcp:[HOST:]PORT or unix:PATH");
    let out = kvmdbg(&["run", "--backend", "model", "--gdb", "tcp:127.0.0.1:99999"]);
    assert_one_line_error(&out, 2, "bad port");
    let out = kvmdbg(&["run", "--backend", "model", "--gdb", "unix:"]);
    assert_one_line_error(&out, 2, "needs a socket path");
    let out = kvmdbg(&["run", "--backend", "model", "-S"]);
    assert_one_line_error(&out, 2, "-S/--wait-gdb needs --gdb or -s");
}

#[test]
fn gdb_on_an_unbindable_address_is_a_clear_error() {
    // Bind a port, then ask kvmdbg for the same one.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let spec = format!("tcp:127.0.0.1:{port}");
    let out = kvmdbg(&["run", "--backend", "model", "--gdb", &spec, "-S"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "bad input: {err}");
    assert!(err.contains("cannot listen on tcp:127.0.0.1:"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn unix_socket_is_private_and_serves_gdb() {
    use std::io::{Read, Write};
    use std::os::unix::fs::PermissionsExt;
    let dir = std::env::temp_dir().join(format!("kvmdbg-cli-unix-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let sock = dir.join("gdb.sock");
    let _ = std::fs::remove_file(&sock);
    let mut child = Command::new(env!("CARGO_BIN_EXE_kvmdbg"))
        .args(["run", "--backend", "model", "-S", "--gdb"])
        .arg(format!("unix:{}", sock.display()))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !sock.exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let mode = std::fs::metadata(&sock).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "socket mode {mode:o}");
    let mut s = std::os::unix::net::UnixStream::connect(&sock).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .unwrap();
    // `?` (checksum 0x3f): the halt reason of the stopped guest, thread 1.
    s.write_all(b"$?#3f").unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 256];
    while !got.windows(1).any(|w| w == b"#") {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0, "closed: {:?}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("+$T05thread:"), "{text}");
    // `k` (checksum 0x6b) ends kvmdbg.
    s.write_all(b"+$k#6b").unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    assert!(!sock.exists(), "socket removed on exit");
}

#[test]
fn special_and_oversized_firmware_files_are_refused_before_reading() {
    let fifo = std::env::temp_dir().join(format!("kvmdbg-cli-{}-fifo", std::process::id()));
    let _ = std::fs::remove_file(&fifo);
    let made = Command::new("mkfifo").arg(&fifo).status().expect("mkfifo");
    assert!(made.success());
    let dir = std::env::temp_dir();
    for (path, kind) in [
        ("/dev/zero", "a character device"),
        (fifo.to_str().unwrap(), "a FIFO"),
        (dir.to_str().unwrap(), "a directory"),
    ] {
        let out = kvmdbg(&["run", path, "--backend", "model"]);
        assert_one_line_error(&out, 2, &format!("{kind}, not a regular file"));
    }
    let _ = std::fs::remove_file(&fifo);
    // A file larger than RAM: refused by its size (a sparse file: nothing is written).
    let big = temp_file("big.bin", b"");
    std::fs::File::options()
        .write(true)
        .open(&big)
        .unwrap()
        .set_len(2 << 20)
        .unwrap();
    let out = kvmdbg(&["run", big.to_str().unwrap(), "--memory", "1M"]);
    assert_one_line_error(
        &out,
        2,
        "2097152 bytes, more than the 1048576 bytes of guest RAM",
    );
}

#[test]
fn record_needs_the_model_and_gdb() {
    let demo = concat!(env!("CARGO_MANIFEST_DIR"), "/firmware/prebuilt/demo.elf");
    let out = kvmdbg(&["run", demo, "--backend", "kvm", "--record", "-s"]);
    assert_one_line_error(&out, 2, "--record needs the model backend");
    let out = kvmdbg(&["run", demo, "--backend", "model", "--record"]);
    assert_one_line_error(
        &out,
        2,
        "--record and --record-limit are for sessions with gdb",
    );
}

#[test]
fn bad_recording_limits() {
    let demo = concat!(env!("CARGO_MANIFEST_DIR"), "/firmware/prebuilt/demo.elf");
    let run = |limit: &str| {
        kvmdbg(&[
            "run",
            demo,
            "--backend",
            "model",
            "--record",
            "-s",
            "--record-limit",
            limit,
        ])
    };
    assert_one_line_error(&run("1K"), 2, "a recording needs at least 4096 bytes");
    assert_one_line_error(&run("12X"), 2, "unknown unit");
    assert_one_line_error(&run("99999999999G"), 2, "size overflows");
    let out = kvmdbg(&["run", demo, "--backend", "model", "--record-limit", "1G"]);
    assert_one_line_error(
        &out,
        2,
        "--record-limit bounds a recording: use it with --record",
    );
    // With --icount (for `monitor record start`), still for gdb only.
    let out = kvmdbg(&[
        "run",
        demo,
        "--backend",
        "model",
        "--icount",
        "--record-limit",
        "1G",
    ]);
    assert_one_line_error(&out, 2, "are for sessions with gdb");
}
