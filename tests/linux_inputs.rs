//! The boot inputs at the command line, without booting a kernel: every bad input (initrd,
//! command line, Image header, compressed kernel, DTB) is one error line and exit status 2
//! with nothing started (no guest output); the generated DTB passes `dtc` without a warning;
//! a user's DTB (`--dtb`) comes back with `/chosen` filled in and everything else kept, as
//! `dtc` reads it. Images are synthetic arm64 Image headers (Documentation/arch/arm64/
//! booting.rst), so these tests need no cached kernel.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const MIB: u64 = 1 << 20;

fn kvmdbg(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kvmdbg"))
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("kvmdbg runs")
}

/// Writes a fresh file (a new name per call: the tests run in parallel).
fn temp(name: &str, bytes: &[u8]) -> PathBuf {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("linux-inputs-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(format!("{n}-{name}"));
    std::fs::write(&p, bytes).unwrap();
    p
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// An arm64 Image: the 64-byte header (booting.rst "4. Call the kernel image") whose code0
/// branches past it, then `body` bytes of `b .` (0x14000000).
fn image(text_offset: u64, image_size: u64, flags: u64, body: usize) -> Vec<u8> {
    let mut h = vec![0u8; 64];
    h[0..4].copy_from_slice(&0x1400_0010u32.to_le_bytes()); // b +0x40
    h[8..16].copy_from_slice(&text_offset.to_le_bytes());
    h[16..24].copy_from_slice(&image_size.to_le_bytes());
    h[24..32].copy_from_slice(&flags.to_le_bytes());
    h[0x38..0x3c].copy_from_slice(b"ARM\x64");
    for _ in 0..body / 4 {
        h.extend_from_slice(&0x1400_0000u32.to_le_bytes()); // b .
    }
    h
}

/// A good little-endian, 4K-page Image with 2 MiB reserved (flags 0xa, as Debian's).
fn good_image() -> PathBuf {
    temp("good.Image", &image(0, 2 * MIB, 0xa, 4096))
}

/// Exit status 2, exactly one stderr line containing `needle`, no guest output.
fn assert_bad_input(out: &Output, needle: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr: {err}");
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "expected one line, got: {err}");
    assert!(lines[0].contains(needle), "{:?} lacks {needle:?}", lines[0]);
    assert!(out.stdout.is_empty(), "the guest ran: {:?}", out.stdout);
}

#[test]
fn a_missing_or_unreadable_initrd() {
    let img = good_image();
    let out = kvmdbg(&[
        "run",
        s(&img),
        "--backend",
        "model",
        "--initrd",
        "/nonexistent/rd",
    ]);
    assert_bad_input(&out, "cannot read initrd /nonexistent/rd");
    // A directory cannot be read as a file (and root reads any file, so no chmod test).
    let dir = std::env::temp_dir();
    let out = kvmdbg(&["run", s(&img), "--backend", "model", "--initrd", s(&dir)]);
    assert_bad_input(&out, "cannot read initrd");
}

#[test]
fn an_initrd_that_does_not_fit() {
    let img = good_image();
    let rd = temp("big.cpio", &vec![0u8; 7 * MIB as usize]);
    let out = kvmdbg(&[
        "run",
        s(&img),
        "--backend",
        "model",
        "--memory",
        "8M",
        "--initrd",
        s(&rd),
    ]);
    assert_bad_input(&out, "does not fit");
}

#[test]
fn a_command_line_longer_than_the_kernel_accepts() {
    let img = good_image();
    let long = "x".repeat(2048);
    let out = kvmdbg(&["run", s(&img), "--backend", "model", "--append", &long]);
    assert_bad_input(&out, "command line of 2048 bytes");
    // One byte less fits (COMMAND_LINE_SIZE counts the NUL).
    let ok = kvmdbg(&[
        "dumpdtb",
        s(&temp("ok.dtb", b"")),
        s(&img),
        "--append",
        &long[1..],
    ]);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
}

#[test]
fn corrupt_image_headers() {
    let cases: [(&str, Vec<u8>, &str); 4] = [
        ("be.Image", image(0, 2 * MIB, 0xb, 64), "big-endian"),
        (
            "offset.Image",
            image(0x123, 2 * MIB, 0xa, 64),
            "text_offset",
        ),
        ("size.Image", image(0, 16, 0xa, 4096), "image_size"),
        ("huge.Image", image(0, 64 * MIB, 0xa, 64), "does not fit"),
    ];
    for (name, bytes, needle) in cases {
        let out = kvmdbg(&[
            "run",
            s(&temp(name, &bytes)),
            "--backend",
            "model",
            "--memory",
            "16M",
        ]);
        assert_bad_input(&out, needle);
    }
}

#[test]
fn a_truncated_gzip_kernel() {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &image(0, 2 * MIB, 0xa, 64 * 1024)).unwrap();
    let gz = gz.finish().unwrap();
    let p = temp("trunc.Image.gz", &gz[..gz.len() / 2]);
    let out = kvmdbg(&["run", s(&p), "--backend", "model"]);
    assert_bad_input(&out, "cannot decompress");
}

#[test]
fn a_dtb_file_that_is_not_a_dtb() {
    let img = good_image();
    let not = temp("not.dtb", b"/dts-v1/; / { };\n");
    let out = kvmdbg(&["run", s(&img), "--backend", "model", "--dtb", s(&not)]);
    assert_bad_input(&out, "DTB: bad magic");
    let out = kvmdbg(&[
        "run",
        s(&img),
        "--backend",
        "model",
        "--dtb",
        "/nonexistent.dtb",
    ]);
    assert_bad_input(&out, "cannot read DTB /nonexistent.dtb");
}

/// `dtc -I dtb -O dts` of `dtb`: the source, after checking dtc printed no warning.
fn decompile(dtb: &Path) -> Option<String> {
    if !common::require_tool("dtc") {
        return None;
    }
    let out = Command::new("dtc")
        .args(["-I", "dtb", "-O", "dts", "-o", "-"])
        .arg(dtb)
        .output()
        .expect("dtc runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && err.is_empty(), "dtc: {err}");
    Some(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn the_generated_dtb_passes_dtc_without_warnings() {
    let img = good_image();
    let rd = temp("rd.cpio", &[0x5a; 1000]);
    let dtb = temp("gen.dtb", b"");
    let out = kvmdbg(&[
        "dumpdtb",
        s(&dtb),
        s(&img),
        "--cpus",
        "4",
        "--memory",
        "64M",
        "--initrd",
        s(&rd),
        "--append",
        "console=ttyAMA0 rdinit=/init",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let Some(dts) = decompile(&dtb) else { return };
    for want in [
        "bootargs = \"console=ttyAMA0 rdinit=/init\";",
        "stdout-path = \"/pl011@9000000\";",
        // The initrd at the first 2 MiB boundary after the 2 MiB kernel, 1000 bytes long.
        "linux,initrd-start = <0x00 0x40200000>;",
        "linux,initrd-end = <0x00 0x402003e8>;",
        "reg = <0x00 0x40000000 0x00 0x4000000>;",
        "cpu@3 {",
        "interrupts = <0x00 0x01 0x04>;",
    ] {
        assert!(dts.contains(want), "{want:?} missing from\n{dts}");
    }
    // Without --initrd or --append the generated tree and every other machine shape pass too.
    let plain = temp("plain.dtb", b"");
    let out = kvmdbg(&["dumpdtb", s(&plain)]);
    assert!(out.status.success());
    let dts = decompile(&plain).unwrap();
    assert!(
        !dts.contains("bootargs") && !dts.contains("initrd"),
        "{dts}"
    );
}

#[test]
fn a_user_dtb_gets_chosen_filled_in_and_keeps_the_rest() {
    if !common::require_tool("dtc") {
        return;
    }
    let src = temp(
        "user.dts",
        b"/dts-v1/;\n/memreserve/ 0x48000000 0x1000;\n/ {\n  #address-cells = <2>;\n  \
          #size-cells = <2>;\n  model = \"users board\";\n  chosen {\n    \
          bootargs = \"from the file\";\n    linux,initrd-start = <0x0 0x1>;\n    \
          linux,initrd-end = <0x0 0x2>;\n  };\n  soc { compatible = \"simple-bus\"; };\n};\n",
    );
    let user = temp("user.dtb", b"");
    let st = Command::new("dtc")
        .args(["-I", "dts", "-O", "dtb", "-o"])
        .args([&user, &src])
        .status()
        .unwrap();
    assert!(st.success());
    let img = good_image();
    let rd = temp("rd2.cpio", &[1; 16]);
    let out_dtb = temp("patched.dtb", b"");
    let out = kvmdbg(&[
        "dumpdtb",
        s(&out_dtb),
        s(&img),
        "--dtb",
        s(&user),
        "--initrd",
        s(&rd),
        "--append",
        "ours",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dts = decompile(&out_dtb).unwrap();
    for want in [
        "/memreserve/\t0x0000000048000000 0x0000000000001000;",
        "model = \"users board\";",
        "bootargs = \"ours\";",
        "linux,initrd-start = <0x00 0x40200000>;",
        "linux,initrd-end = <0x00 0x40200010>;",
        "compatible = \"simple-bus\";",
    ] {
        assert!(dts.contains(want), "{want:?} missing from\n{dts}");
    }
    assert!(
        !dts.contains("from the file") && !dts.contains("stdout-path"),
        "{dts}"
    );
    // No --initrd: the file's stale range goes, its bootargs stay.
    let out = kvmdbg(&["dumpdtb", s(&out_dtb), s(&img), "--dtb", s(&user)]);
    assert!(out.status.success());
    let dts = decompile(&out_dtb).unwrap();
    assert!(
        dts.contains("bootargs = \"from the file\";") && !dts.contains("initrd"),
        "{dts}"
    );
}

#[test]
fn dumpdtb_to_an_unwritable_path_is_one_line() {
    let out = kvmdbg(&["dumpdtb", "/nonexistent/dir/x.dtb"]);
    assert_bad_input(&out, "cannot write /nonexistent/dir/x.dtb");
}
