//! Runs the project's test firmware (firmware/*.S, built by firmware/build.sh) on the model
//! with a minimal ELF loader and a transmit-only PL011 stand-in, one thread per vCPU, and
//! checks each firmware's verdict line. The machine proper (loader, devices) lives in
//! `machine`; this is only a backend conformance harness.

use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, Mutex};

use object::{Object, ObjectSegment};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use super::testutil::{config, UART};
use crate::a64::Reg;
use crate::backend::{create_vm, BackendKind, Kick, Vcpu, VcpuExit};
use crate::test_require::require_tool;

/// PL011 data register offset (PL011 TRM DDI 0183, table 3-1).
const UARTDR: u64 = 0x000;

/// Builds the firmware into a temporary directory, or None (skip, a failure under CI) when
/// its tools are missing (`crate::test_require`). Panics if the build itself fails.
fn build_firmware() -> Option<PathBuf> {
    let tools = [
        "aarch64-linux-gnu-as",
        "aarch64-linux-gnu-ld",
        "aarch64-linux-gnu-gcc",
    ];
    if !tools.iter().all(|t| require_tool(t)) {
        return None;
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let out = std::env::temp_dir().join(format!("kvmdbg-model-fw-{}", std::process::id()));
    let r = Command::new("bash")
        .arg(root.join("firmware/build.sh"))
        .arg(&out)
        .output()
        .expect("running firmware/build.sh");
    assert!(
        r.status.success(),
        "firmware/build.sh failed: {}",
        String::from_utf8_lossy(&r.stderr)
    );
    Some(out)
}

/// Loads the PT_LOAD segments of an ELF into RAM; returns the entry point.
fn load_elf(mem: &GuestMemoryMmap, bytes: &[u8]) -> u64 {
    let elf = object::File::parse(bytes).expect("ELF");
    for seg in elf.segments() {
        let data = seg.data().expect("segment data");
        mem.write_slice(data, GuestAddress(seg.address()))
            .expect("segment in RAM");
    }
    elf.entry()
}

/// Runs one vCPU until a system event, serving the UART. Returns the last exit.
fn serve(mut cpu: Box<dyn Vcpu>, out: Arc<Mutex<String>>) -> VcpuExit {
    loop {
        let exit = match cpu.run() {
            Ok(e) => e,
            Err(e) => return VcpuExit::InternalError(e.to_string()),
        };
        match exit {
            VcpuExit::MmioWrite { addr, data, .. } if addr == UART + UARTDR => {
                out.lock().unwrap().push(data[0] as char);
            }
            VcpuExit::MmioWrite { .. } => {}
            VcpuExit::MmioRead { len, .. } => {
                // Every register reads as zero; for UARTFR that means "TXFF clear".
                cpu.set_mmio_data(&vec![0; len]).unwrap();
            }
            other => return other,
        }
    }
}

/// Boots `name`.elf on `vcpus` model vCPUs and returns the UART output and boot exit.
fn boot(dir: &std::path::Path, name: &str, vcpus: usize) -> (String, VcpuExit) {
    let bytes = std::fs::read(dir.join(format!("{name}.elf"))).expect("firmware ELF");
    let mem = GuestMemoryMmap::from_ranges(&[(GuestAddress(0x4000_0000), 128 << 20)]).unwrap();
    let entry = load_elf(&mem, &bytes);
    let vm = create_vm(BackendKind::Model, &mem, &config(vcpus)).unwrap();
    let out = Arc::new(Mutex::new(String::new()));
    let mut boot_cpu = vm.create_vcpu(0).unwrap();
    boot_cpu.set(Reg::Pc, entry).unwrap();
    let mut kicks: Vec<Arc<dyn Kick>> = Vec::new();
    let mut threads = Vec::new();
    for i in 1..vcpus {
        let c = vm.create_vcpu(i).unwrap();
        kicks.push(c.kicker());
        let o = out.clone();
        threads.push(std::thread::spawn(move || serve(c, o)));
    }
    let exit = serve(boot_cpu, out.clone());
    for k in &kicks {
        k.kick();
    }
    for t in threads {
        let e = t.join().unwrap();
        assert!(
            matches!(e, VcpuExit::Interrupted | VcpuExit::SystemEvent(_)),
            "secondary ended with {e:?}"
        );
    }
    let s = out.lock().unwrap().clone();
    (s, exit)
}

#[test]
fn test_firmware_passes_on_the_model() {
    let Some(dir) = build_firmware() else {
        return;
    };
    for (name, vcpus) in [("hello", 1), ("exceptions", 1), ("demo", 1), ("smp", 4)] {
        let (out, exit) = boot(&dir, name, vcpus);
        assert_eq!(
            exit,
            VcpuExit::SystemEvent(crate::backend::SystemEvent::Shutdown),
            "{name}: output so far:\n{out}"
        );
        assert!(
            out.lines().any(|l| l == format!("PASS {name}")),
            "{name} did not pass:\n{out}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
