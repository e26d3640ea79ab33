//! The machine: memory map, loader, device tree, devices, vCPU threads and the run loop.
//!
//! Owns everything between the CLI and the backend: it builds a QEMU `virt`-compatible
//! machine on a backend, loads firmware, runs one thread per vCPU and turns exits into device
//! accesses or a machine stop. Must not depend on gdbstub types.

pub mod boot;
pub mod bus;
pub mod console;
pub mod control;
mod control_handoff;
pub mod emulate;
mod error;
pub mod event;
pub mod exit;
pub mod fdt;
pub mod fdt_tree;
pub mod file_input;
pub mod guest_mem;
pub mod layout;
pub mod linux_image;
pub mod loader;
pub mod memory;
pub mod pl011;
pub mod record;
mod run;
pub mod serial_input;
pub mod session;
mod test_hooks;
mod vcpu_thread;

use std::io::Write;
use std::sync::{Arc, Mutex};

use vm_memory::GuestMemoryMmap;

use crate::a64::{regs::sys, Reg};
use crate::backend::{self, BackendKind, Caps, Vcpu, Vm, VmConfig};

pub use boot::BootConfig;
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
    /// The model's JIT tier (`backend::VmConfig::jit`); KVM ignores it.
    pub jit: bool,
}

/// What a machine is built from, kept so that the same machine can be built again
/// (`Session::reset`): the UART's output sink is shared by every build.
#[derive(Clone)]
pub struct Spec {
    backend: BackendKind,
    vcpus: usize,
    ram_size: u64,
    firmware: Arc<[u8]>,
    boot: BootConfig,
    uart_out: Arc<Mutex<Box<dyn Write + Send>>>,
    /// The host side of the UART's receive line, shared by every build.
    uart_in: Arc<pl011::SerialInput>,
    trace: Option<TraceSink>,
    test_hooks: TestHooks,
    icount: bool,
    jit: bool,
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
    initrd: Option<std::ops::Range<u64>>,
    trace: Option<TraceSink>,
}

impl Machine {
    /// Builds the machine and loads `firmware` (kernel Image, ELF or raw binary).
    pub fn new(cfg: MachineConfig, firmware: &[u8]) -> Result<Machine> {
        Machine::with_boot(cfg, firmware.into(), BootConfig::default())
    }

    /// Like [`Machine::new`], keeping `firmware` without copying it (a large image read from a
    /// file is held once).
    pub fn with_firmware(cfg: MachineConfig, firmware: Arc<[u8]>) -> Result<Machine> {
        Machine::with_boot(cfg, firmware, BootConfig::default())
    }

    /// Builds the machine and loads `firmware` (held once, not copied) with an initrd, a
    /// command line or a DTB.
    pub fn with_boot(cfg: MachineConfig, firmware: Arc<[u8]>, boot: BootConfig) -> Result<Machine> {
        Machine::build(Spec {
            backend: cfg.backend,
            vcpus: cfg.vcpus,
            ram_size: cfg.ram_size,
            firmware,
            boot,
            uart_out: Arc::new(Mutex::new(cfg.uart_out)),
            uart_in: pl011::SerialInput::new(),
            trace: cfg.trace,
            test_hooks: cfg.test_hooks,
            icount: cfg.icount,
            jit: cfg.jit,
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
        let layout = boot::prepare(&mem, &cfg.firmware, cfg.shape(), &cfg.boot)?;
        let vm = backend::create_vm(
            cfg.backend,
            &mem,
            &VmConfig {
                vcpus: cfg.vcpus,
                gic: layout::gic_layout(cfg.vcpus),
                nisv_to_user: true,
                model_keep_ss_bug: cfg.test_hooks.model_keep_ss,
                icount: cfg.icount,
                jit: cfg.jit,
            },
        )?;
        let mut vcpus = Vec::with_capacity(cfg.vcpus);
        for i in 0..cfg.vcpus {
            vcpus.push(vm.create_vcpu(i)?);
        }
        vm.finalize()?;
        let boot = &mut vcpus[0];
        if let Some(h) = &layout.image.linux {
            check_granule(boot.as_mut(), h.page_size)?;
        }
        // booting.rst "4. Call the kernel image": x0 = DTB, x1-x3 = 0; the reset state already
        // has the MMU and caches off and DAIF masked at EL1h.
        boot.set(Reg::Pc, layout.image.entry)?;
        boot.set(Reg::X(0), layout.dtb_addr)?;
        for x in 1..=3 {
            boot.set(Reg::X(x), 0)?;
        }
        let mut bus = Bus::new();
        let out = Box::new(SharedOut(cfg.uart_out.clone()));
        let irq = pl011::IrqOut {
            line: vm.irq_line(),
            intid: layout::UART_SPI + layout::SPI_BASE,
        };
        // Under the deterministic clock the clock's turn holder admits host input.
        let clocked = vm.attach_host_input(cfg.uart_in.clone());
        cfg.uart_in
            .set_clocked(clocked.then_some(layout::UART_BASE));
        let uart = pl011::Pl011::connected(out, cfg.uart_in.clone(), Some(irq));
        bus.add(layout::UART_BASE, layout::UART_SIZE, uart);
        let trace = cfg.trace.clone();
        Ok(Machine {
            spec,
            vm,
            vcpus,
            view: GuestView::new(mem),
            bus: Arc::new(bus),
            image: layout.image,
            dtb_addr: layout.dtb_addr,
            initrd: layout.initrd,
            trace,
        })
    }

    /// What this machine was built from.
    pub fn spec(&self) -> &Spec {
        &self.spec
    }

    /// Where host input for the guest's serial console goes (stdin, a script): shared by
    /// every build of this machine, so a session's `monitor reset` keeps it.
    pub fn serial_input(&self) -> Arc<pl011::SerialInput> {
        self.spec.uart_in.clone()
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

    /// Where the initrd went, if there is one.
    pub fn initrd(&self) -> Option<std::ops::Range<u64>> {
        self.initrd.clone()
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

impl Spec {
    fn shape(&self) -> boot::MachineShape {
        boot::MachineShape {
            vcpus: self.vcpus,
            ram_size: self.ram_size,
        }
    }
}

/// The DTB a machine with these parameters boots with, built without creating a VM
/// (`kvmdbg dumpdtb`): the image, initrd and DTB are placed in scratch RAM exactly as
/// [`Machine::build`] places them.
pub fn boot_dtb(
    vcpus: usize,
    ram_size: u64,
    firmware: &[u8],
    boot: &BootConfig,
) -> Result<Vec<u8>> {
    if vcpus == 0 || vcpus > layout::MAX_VCPUS {
        return Err(MachineError::VcpuCount(vcpus, layout::MAX_VCPUS));
    }
    let mem = memory::allocate(ram_size)?;
    let shape = boot::MachineShape { vcpus, ram_size };
    Ok(boot::prepare(&mem, firmware, shape, boot)?.dtb)
}

/// Checks that the vCPU supports the translation granule a kernel Image was built for: a
/// kernel started without it spins in its early boot code (arch/arm64/kernel/head.S
/// `__no_granule_support`). ID_AA64MMFR0_EL1 (Arm ARM D19.2): TGran4 \[31:28\] 0b1111 = not
/// supported, TGran64 \[27:24\] 0b1111 = not supported, TGran16 \[23:20\] 0b0000 = not supported.
fn check_granule(vcpu: &mut dyn Vcpu, page: linux_image::PageSize) -> Result<()> {
    use linux_image::PageSize;
    let mmfr0 = match vcpu.get(Reg::Sys(sys::ID_AA64MMFR0_EL1)) {
        Ok(v) => v,
        Err(e) => {
            log::warn!("cannot read ID_AA64MMFR0_EL1 to check the kernel's page size: {e}");
            return Ok(());
        }
    };
    let field = |lsb: u32| (mmfr0 >> lsb) & 0xf;
    let (name, supported) = match page {
        PageSize::Unspecified => return Ok(()),
        PageSize::K4 => ("4K", field(28) != 0xf),
        PageSize::K16 => ("16K", field(20) != 0),
        PageSize::K64 => ("64K", field(24) != 0xf),
    };
    if supported {
        Ok(())
    } else {
        Err(MachineError::BadImage(format!(
            "built for {name} pages, which this vCPU does not support (ID_AA64MMFR0_EL1 {mmfr0:#x})"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::fake::FakeVcpu;
    use linux_image::PageSize;

    fn vcpu_with_mmfr0(v: u64) -> FakeVcpu {
        let mut c = FakeVcpu::new(0);
        c.regs.insert(Reg::Sys(sys::ID_AA64MMFR0_EL1), v as u128);
        c
    }

    #[test]
    fn a_kernel_for_a_granule_the_vcpu_lacks_is_refused() {
        // The model's value: 4K, 16K and 64K supported.
        let mut all = vcpu_with_mmfr0(0x0010_0025);
        for p in [
            PageSize::K4,
            PageSize::K16,
            PageSize::K64,
            PageSize::Unspecified,
        ] {
            check_granule(&mut all, p).unwrap();
        }
        // TGran16 0 (not supported), TGran4 and TGran64 0xf (not supported).
        let mut none = vcpu_with_mmfr0(0xff00_0025);
        for (p, name) in [
            (PageSize::K4, "4K"),
            (PageSize::K16, "16K"),
            (PageSize::K64, "64K"),
        ] {
            let e = check_granule(&mut none, p).unwrap_err();
            assert!(e.is_bad_input() && e.to_string().contains(name), "{e}");
        }
        check_granule(&mut none, PageSize::Unspecified).unwrap();
    }
}
