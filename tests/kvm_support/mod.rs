//! Shared builder for the real-KVM tests: a VM with RAM at 0x4000_0000 holding hand-assembled
//! A64 code, one vCPU (or more) at the start of RAM, the QEMU `virt` GIC layout, and helpers
//! that render exits as one-line traces (the canonical trace of docs/architecture.md, with PCs
//! relative to the start of RAM).

#![allow(dead_code)]

#[path = "../../src/test_require.rs"]
mod require;

use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use kvmdbg::a64::Reg;
use kvmdbg::backend::kvm::{probe, KvmVm, REDIST_SIZE_PER_VCPU};
use kvmdbg::backend::{Caps, GicLayout, Kick, SystemEvent, Vcpu, VcpuExit, Vm, VmConfig};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

/// Start of RAM (QEMU `virt`: `base_memmap[VIRT_MEM]`, hw/arm/virt.c).
pub const RAM: u64 = 0x4000_0000;
/// 2 MiB: code at the start, data (the watched word) at +1 MiB.
pub const RAM_SIZE: usize = 2 << 20;
/// An address outside every memslot: the PL011 UART of QEMU `virt` (`VIRT_UART`).
pub const MMIO: u64 = 0x0900_0000;
/// A RAM word the data tests use.
pub const DATA: u64 = 0x4010_0000;

/// PSCI SYSTEM_OFF over HVC (PSCI spec DEN0022 5.1.9, function id 0x8400_0008).
pub const SYSTEM_OFF: [u32; 3] = [
    0x5280_0100, // mov  w0, #0x8
    0x72b0_8000, // movk w0, #0x8400, lsl #16      w0 = 0x8400_0008 SYSTEM_OFF
    0xd400_0002, // hvc  #0
];

/// `b .`: spins forever.
pub const SPIN: u32 = 0x1400_0000;
/// `nop`.
pub const NOP: u32 = 0xd503_201f;

/// QEMU `virt` GIC addresses (hw/arm/virt.c `base_memmap`: VIRT_GIC_DIST, VIRT_GIC_REDIST).
pub fn gic() -> GicLayout {
    GicLayout {
        dist_base: 0x0800_0000,
        redist_base: 0x080A_0000,
        redist_size: 0x00F6_0000,
    }
}

/// The probed capabilities when real KVM is usable; otherwise `None` (the test returns
/// early) after a skip message, or a failure where KVM is required (`KVMDBG_REQUIRE_KVM=1`, or
/// CI on aarch64: `src/test_require.rs`). `test` names the caller.
pub fn kvm_available(test: &str) -> Option<Caps> {
    require::require_kvm(probe().map_err(|e| format!("{test}: {e}")))
}

/// A running test guest.
pub struct Guest {
    pub mem: GuestMemoryMmap,
    pub vm: KvmVm,
    pub vcpus: Vec<Box<dyn Vcpu>>,
}

/// Builds a [`Guest`].
pub struct GuestBuilder {
    code: Vec<u32>,
    extra: Vec<(u64, Vec<u32>)>,
    vcpus: usize,
    nisv_to_user: bool,
}

impl GuestBuilder {
    /// Code placed at the start of RAM, where vCPU 0 starts.
    pub fn new(code: &[&[u32]]) -> Self {
        GuestBuilder {
            code: code.concat(),
            extra: Vec::new(),
            vcpus: 1,
            nisv_to_user: false,
        }
    }

    /// More code at `RAM + offset`.
    pub fn code_at(mut self, offset: u64, code: &[u32]) -> Self {
        self.extra.push((offset, code.to_vec()));
        self
    }

    pub fn vcpus(mut self, n: usize) -> Self {
        self.vcpus = n;
        self
    }

    pub fn nisv_to_user(mut self) -> Self {
        self.nisv_to_user = true;
        self
    }

    /// The guest, or `None` when the test is skipped (see [`kvm_available`]).
    pub fn build(self, test: &str) -> Option<Guest> {
        kvm_available(test)?;
        let mem =
            GuestMemoryMmap::from_ranges(&[(GuestAddress(RAM), RAM_SIZE)]).expect("map guest RAM");
        write_code(&mem, 0, &self.code);
        for (offset, code) in &self.extra {
            write_code(&mem, *offset, code);
        }
        let cfg = VmConfig {
            vcpus: self.vcpus,
            gic: gic(),
            nisv_to_user: self.nisv_to_user,
            model_keep_ss_bug: false,
            icount: false,
            jit: true,
        };
        assert!(cfg.gic.redist_size >= REDIST_SIZE_PER_VCPU * self.vcpus as u64);
        let vm = KvmVm::new(&mem, &cfg).expect("create KVM VM");
        let mut vcpus = Vec::new();
        for i in 0..self.vcpus {
            vcpus.push(vm.create_vcpu(i).expect("create vCPU"));
        }
        vm.finalize().expect("finalize VM");
        vcpus[0].set(Reg::Pc, RAM).expect("set PC");
        Some(Guest { mem, vm, vcpus })
    }
}

fn write_code(mem: &GuestMemoryMmap, offset: u64, code: &[u32]) {
    let bytes: Vec<u8> = code.iter().flat_map(|w| w.to_le_bytes()).collect();
    mem.write_slice(&bytes, GuestAddress(RAM + offset))
        .expect("write guest code");
}

/// PC relative to the start of RAM.
pub fn pc_off(vcpu: &mut dyn Vcpu) -> u64 {
    vcpu.get(Reg::Pc).expect("read PC").wrapping_sub(RAM)
}

/// One exit as a trace line.
pub fn trace_line(exit: &VcpuExit, vcpu: &mut dyn Vcpu) -> String {
    let pc = pc_off(vcpu);
    match exit {
        VcpuExit::Debug { esr, far } if esr >> 26 == 0x34 => {
            format!("DEBUG esr={esr:#x} far={far:#x} pc=+{pc:#x}")
        }
        VcpuExit::Debug { esr, .. } => format!("DEBUG esr={esr:#x} pc=+{pc:#x}"),
        VcpuExit::MmioWrite { addr, len, data } => {
            let mut v = [0u8; 8];
            v[..*len].copy_from_slice(&data[..*len]);
            let value = u64::from_le_bytes(v);
            format!("MMIO write addr={addr:#x} len={len} data={value:#x} pc=+{pc:#x}")
        }
        VcpuExit::MmioRead { addr, len } => {
            format!("MMIO read addr={addr:#x} len={len} pc=+{pc:#x}")
        }
        VcpuExit::Nisv { fault_ipa, esr_iss } => {
            format!("NISV ipa={fault_ipa:#x} iss={esr_iss:#x} pc=+{pc:#x}")
        }
        VcpuExit::SystemEvent(SystemEvent::Shutdown) => "SYSTEM_EVENT shutdown".into(),
        other => format!("{other:?} pc=+{pc:#x}"),
    }
}

/// Kicks a vCPU if it is still running when the watchdog expires, so that a guest stuck in a
/// loop fails its test (with an `Interrupted` exit) instead of hanging it.
pub struct Watchdog {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Watchdog {
    pub fn new(kicker: Arc<dyn Kick>, timeout: Duration) -> Self {
        let (stop, rx) = mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            if rx.recv_timeout(timeout) == Err(mpsc::RecvTimeoutError::Timeout) {
                eprintln!("watchdog: vCPU still running after {timeout:?}; kicking it");
                kicker.kick();
            }
        });
        Watchdog {
            stop: Some(stop),
            thread: Some(thread),
        }
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// How long a test guest may run before the watchdog kicks it (the nested, TCG-emulated host
/// is slow, but every test program finishes in well under a second).
pub const WATCHDOG: Duration = Duration::from_secs(20);

/// Runs the vCPU until a shutdown (or `max` exits), answering MMIO reads with `read_value`,
/// and returns the trace. A watchdog kick shows up as an `Interrupted` line.
pub fn run_trace(vcpu: &mut dyn Vcpu, read_value: u32, max: usize) -> Vec<String> {
    let _watchdog = Watchdog::new(vcpu.kicker(), WATCHDOG);
    let mut trace = Vec::new();
    for _ in 0..max {
        let exit = vcpu.run().expect("KVM_RUN");
        trace.push(trace_line(&exit, vcpu));
        match exit {
            VcpuExit::MmioRead { len, .. } => {
                let bytes = read_value.to_le_bytes();
                vcpu.set_mmio_data(&bytes[..len]).expect("set MMIO data");
            }
            VcpuExit::SystemEvent(_) | VcpuExit::InternalError(_) | VcpuExit::Interrupted => break,
            _ => {}
        }
    }
    trace
}
