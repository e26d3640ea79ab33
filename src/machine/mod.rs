//! The machine: memory map, loader, device tree, devices, vCPU threads and the run loop.
//!
//! Owns everything between the CLI and the backend: it builds a QEMU `virt`-compatible
//! machine on a backend, loads firmware, runs one thread per vCPU and turns exits into device
//! accesses or a machine stop. Must not depend on gdbstub types.

pub mod bus;
pub mod control;
pub mod emulate;
mod error;
pub mod event;
pub mod exit;
pub mod fdt;
pub mod file_input;
pub mod guest_mem;
pub mod layout;
pub mod loader;
pub mod memory;
pub mod pl011;
pub mod record;
mod run;
pub mod session;
mod test_hooks;
mod vcpu_thread;

use std::io::Write;
use std::sync::{Arc, Mutex};

use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use crate::a64::Reg;
use crate::backend::{self, BackendKind, Caps, Vcpu, Vm, VmConfig};

pub use error::{MachineError, Result};
pub use event::{Fault, Outcome};
pub use session::ResetReport;
pub use test_hooks::TestHooks;

use bus::Bus;
use guest_mem::GuestView;
use loader::LoadedImage;

/// Where canonical exit-trace lines go (`--trace-exits`).
pub type TraceSink = Arc<Mutex<dyn Write + Send>>;

/// How to build the machine.
pub struct MachineConfig {
    pub backend: BackendKind,
    pub vcpus: usize,
    pub ram_size: u64,
    /// Receives the UART's output.
    pub uart_out: Box<dyn Write + Send>,
    /// Receives one canonical line per vCPU exit, if set.
    pub trace: Option<TraceSink>,
    /// Mechanisms switched off by the tests that prove the suite bites (default: none).
    pub test_hooks: TestHooks,
    /// The deterministic clock (model backend only: `backend::VmConfig::icount`).
    pub icount: bool,
}

/// What a machine is built from, kept so that the same machine can be built again
/// (`Session::reset`): the UART's output sink is shared by every build.
#[derive(Clone)]
pub struct Spec {
    backend: BackendKind,
    vcpus: usize,
    ram_size: u64,
    firmware: Arc<[u8]>,
    uart_out: Arc<Mutex<Box<dyn Write + Send>>>,
    trace: Option<TraceSink>,
    test_hooks: TestHooks,
    icount: bool,
}

/// One build's handle on the shared UART output.
struct SharedOut(Arc<Mutex<Box<dyn Write + Send>>>);

impl Write for SharedOut {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).flush()
    }
}

/// A built machine, ready to run.
pub struct Machine {
    spec: Spec,
    vm: Box<dyn Vm>,
    vcpus: Vec<Box<dyn Vcpu>>,
    view: GuestView,
    bus: Arc<Bus>,
    image: LoadedImage,
    dtb_addr: u64,
    trace: Option<TraceSink>,
}

impl Machine {
    /// Builds the machine and loads `firmware` (ELF or raw binary).
    pub fn new(cfg: MachineConfig, firmware: &[u8]) -> Result<Machine> {
        Machine::with_firmware(cfg, firmware.into())
    }

    /// Like [`Machine::new`], keeping `firmware` without copying it (a large image read from a
    /// file is held once).
    pub fn with_firmware(cfg: MachineConfig, firmware: Arc<[u8]>) -> Result<Machine> {
        Machine::build(Spec {
            backend: cfg.backend,
            vcpus: cfg.vcpus,
            ram_size: cfg.ram_size,
            firmware,
            uart_out: Arc::new(Mutex::new(cfg.uart_out)),
            trace: cfg.trace,
            test_hooks: cfg.test_hooks,
            icount: cfg.icount,
        })
    }

    /// Builds a machine from scratch: a new VM, new vCPUs at their reset state, new RAM with
    /// the firmware and device tree loaded, devices at reset.
    pub fn build(spec: Spec) -> Result<Machine> {
        let cfg = &spec;
        if cfg.vcpus == 0 || cfg.vcpus > layout::MAX_VCPUS {
            return Err(MachineError::VcpuCount(cfg.vcpus, layout::MAX_VCPUS));
        }
        let mem = memory::allocate(cfg.ram_size)?;
        let image = loader::load(&mem, &cfg.firmware)?;
        let dtb = fdt::build(&fdt::FdtConfig {
            ram_size: cfg.ram_size,
            vcpus: cfg.vcpus,
        })?;
        let dtb_addr = place_dtb(&mem, &image, &dtb)?;
        let vm = backend::create_vm(
            cfg.backend,
            &mem,
            &VmConfig {
                vcpus: cfg.vcpus,
                gic: layout::gic_layout(cfg.vcpus),
                nisv_to_user: true,
                model_keep_ss_bug: cfg.test_hooks.model_keep_ss,
                icount: cfg.icount,
            },
        )?;
        let mut vcpus = Vec::with_capacity(cfg.vcpus);
        for i in 0..cfg.vcpus {
            vcpus.push(vm.create_vcpu(i)?);
        }
        vm.finalize()?;
        let boot = &mut vcpus[0];
        boot.set(Reg::Pc, image.entry)?;
        boot.set(Reg::X(0), dtb_addr)?;
        let mut bus = Bus::new();
        let out = Box::new(SharedOut(cfg.uart_out.clone()));
        let uart = Arc::new(Mutex::new(pl011::Pl011::new(out)));
        bus.add(layout::UART_BASE, layout::UART_SIZE, uart);
        let trace = cfg.trace.clone();
        Ok(Machine {
            spec,
            vm,
            vcpus,
            view: GuestView::new(mem),
            bus: Arc::new(bus),
            image,
            dtb_addr,
            trace,
        })
    }

    /// What this machine was built from.
    pub fn spec(&self) -> &Spec {
        &self.spec
    }

    pub fn caps(&self) -> &Caps {
        self.vm.caps()
    }

    pub fn image(&self) -> &LoadedImage {
        &self.image
    }

    pub fn dtb_addr(&self) -> u64 {
        self.dtb_addr
    }

    pub fn memory(&self) -> &GuestMemoryMmap {
        self.view.mem()
    }

    /// Runs every vCPU on its own thread until the guest powers off, resets or faults (a
    /// fault is an [`Outcome`]; an `Err` is a failure of the machine itself).
    pub fn run(self) -> Result<Outcome> {
        let ctl = control::Control::start(
            self.vcpus,
            self.view,
            self.bus,
            self.trace,
            run::no_debugger(),
            self.spec.test_hooks,
        )?;
        run::run_plain(ctl)
    }
}

/// Places the DTB at the top of RAM, 4 KiB aligned (the arm64 boot protocol only asks for
/// 8-byte alignment; the top keeps it away from images loaded low), and checks it does not
/// overlap the image.
fn place_dtb(mem: &GuestMemoryMmap, image: &LoadedImage, dtb: &[u8]) -> Result<u64> {
    let end = memory::ram_end(mem);
    let size = (dtb.len() as u64 + 0xfff) & !0xfff;
    let addr = end - size;
    if addr < image.end || addr < layout::RAM_BASE {
        return Err(MachineError::NoRoomForDtb { size: dtb.len() });
    }
    mem.write_slice(dtb, GuestAddress(addr))
        .map_err(|e| MachineError::Fdt(e.to_string()))?;
    Ok(addr)
}
