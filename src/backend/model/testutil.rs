//! Test builders shared by the model's unit tests: a small RAM, a VM, and an assembler
//! helper that turns GNU-as source into instruction words (`aarch64-linux-gnu-as`).
//!
//! A test needing the assembler fails when `CI=true` and it is missing; locally it is skipped
//! with a message (`crate::test_require`).

use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use super::cpu::bus::Bus;
use super::cpu::Cpu;
use crate::backend::{GicLayout, VmConfig};
use crate::test_require::require_tool;

/// RAM base (QEMU virt `VIRT_MEM`) and the size used by the tests.
pub const RAM: u64 = 0x4000_0000;
pub const RAM_SIZE: usize = 4 << 20;
/// The PL011 address (QEMU virt `VIRT_UART`): outside RAM, so MMIO.
pub const UART: u64 = 0x0900_0000;

pub fn gic() -> GicLayout {
    GicLayout {
        dist_base: 0x0800_0000,
        redist_base: 0x080A_0000,
        redist_size: 0x2_0000,
    }
}

/// A VM of `vcpus` vCPUs with a redistributor for each (QEMU virt's GIC layout).
pub fn config(vcpus: usize) -> VmConfig {
    VmConfig {
        vcpus,
        gic: GicLayout {
            redist_size: 0x2_0000 * vcpus.max(1) as u64,
            ..gic()
        },
        nisv_to_user: true,
        model_keep_ss_bug: false,
        icount: false,
        jit: true,
    }
}

pub fn ram() -> GuestMemoryMmap {
    GuestMemoryMmap::from_ranges(&[(GuestAddress(RAM), RAM_SIZE)]).expect("test RAM")
}

/// Writes instruction words at `addr`.
pub fn load(mem: &GuestMemoryMmap, addr: u64, words: &[u32]) {
    for (k, w) in words.iter().enumerate() {
        mem.write_obj(*w, GuestAddress(addr + 4 * k as u64))
            .expect("code in RAM");
    }
}

/// A bare interpreter over fresh RAM with `words` at RAM base, PC there.
pub fn cpu_with(words: &[u32]) -> (Cpu, GuestMemoryMmap) {
    let mem = ram();
    load(&mem, RAM, words);
    let mut cpu = Cpu::new(0, Bus::new(&mem, gic()), Instant::now());
    cpu.st.pc = RAM;
    (cpu, mem)
}

static SEQ: AtomicUsize = AtomicUsize::new(0);

/// Assembles `src` (GNU as syntax, `.text` at offset 0) into words, or None when the
/// assembler is not installed (a failure under CI=true).
pub fn asm(src: &str) -> Option<Vec<u32>> {
    if !require_tool("aarch64-linux-gnu-as") || !require_tool("aarch64-linux-gnu-objcopy") {
        return None;
    }
    let n = SEQ.fetch_add(1, Ordering::SeqCst);
    let dir = std::env::temp_dir().join(format!("kvmdbg-model-asm-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let s = dir.join("t.s");
    let o = dir.join("t.o");
    let b = dir.join("t.bin");
    std::fs::write(&s, format!(".text\n{src}\n")).expect("write source");
    let out = Command::new("aarch64-linux-gnu-as")
        .arg("-march=armv8.1-a")
        .arg("-o")
        .arg(&o)
        .arg(&s)
        .output()
        .expect("run as");
    assert!(
        out.status.success(),
        "assembler failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let st = Command::new("aarch64-linux-gnu-objcopy")
        .args(["-O", "binary", "-j", ".text"])
        .arg(&o)
        .arg(&b)
        .status()
        .expect("run objcopy");
    assert!(st.success(), "objcopy failed");
    let bytes = std::fs::read(&b).expect("read binary");
    let _ = std::fs::remove_dir_all(&dir);
    Some(
        bytes
            .chunks(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
    )
}
