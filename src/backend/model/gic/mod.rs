//! The model's in-kernel GICv3 (as KVM's vGICv3): the distributor, one redistributor per vCPU
//! and the CPU interface system registers, served inside the model and never as an MMIO exit.
//!
//! Owns the GIC state of one VM behind one lock (`state`), the decoding of the distributor
//! (`dist`), redistributor (`redist`) and CPU interface (`cpuif`) registers, and the wake-up
//! of vCPUs whose interrupts another vCPU changed (a notifier the VM installs). The timers'
//! lines are driven by each vCPU's interpreter (`cpu::intr`), the SPI lines by the VMM's
//! devices (`set_spi_level`, behind the backend's `IrqLine`); delivery of the IRQ exception
//! is the run loop's (`model::irq`). Must not depend on the interpreter or the run loop.
//!
//! What a guest sees is what a guest read on KVM 6.1 (nested machine, one and two vCPUs):
//! GICD_CTLR 0x50 at reset (ARE and DS fixed; only EnableGrp1 writable), GICD_TYPER
//! 0x0048_0008, GICD_IIDR 0x4b00_343b, GICD_STATUSR all ones, SPIs group 1 and edge-triggered
//! at reset, GICR_CTLR 0x6, GICR_IIDR 0x4b00_043b, GICR_WAKER RAZ/WI, SGIs enabled and every
//! private INTID group 1 at reset, ICFGR0/1 read-only, 5 priority bits, ICC_SRE_EL1 0x7,
//! ICC_CTLR_EL1 0x8c00, ICC_BPR1_EL1 3, PIDR2 0x3b.
//!
//! Differences from KVM: group 0 interrupts are never signalled (no FIQ); the timer PPIs are
//! ordinary level-sensitive interrupts (KVM maps them to the host's timer interrupts, which
//! shows as GICR_ISPENDR0 not reporting a latch set by software on INTIDs 27 and 30); no LPIs
//! or ITS.

mod cpuif;
mod dist;
mod redist;
mod regs;
pub mod state;

use std::sync::{Mutex, MutexGuard, OnceLock};

use crate::backend::GicLayout;

pub use cpuif::Icc;
use state::GicState;

/// Size of the distributor frame (IHI 0069 12.8: 64 KiB).
pub const DIST_SIZE: u64 = 0x1_0000;
/// One vCPU's redistributor: RD_base and SGI_base, 64 KiB each (IHI 0069 12.10).
pub const REDIST_STRIDE: u64 = 0x2_0000;
/// The timer PPIs on the QEMU virt board (`hw/arm/virt.c` ARCH_TIMER_VIRT_IRQ = 11,
/// ARCH_TIMER_NS_EL1_IRQ = 14, plus 16 for the PPI range): virtual 27, physical 30.
pub const VTIMER_INTID: usize = 27;
pub const PTIMER_INTID: usize = 30;

/// A saved GIC state (opaque outside the GIC).
#[derive(Clone, Debug)]
pub struct GicSaved(GicState);

impl GicSaved {
    /// The heap memory the saved state owns (its per-interrupt tables).
    pub fn heap_bytes(&self) -> usize {
        std::mem::size_of_val(self.0.spis.as_slice())
            + std::mem::size_of_val(self.0.cpus.as_slice())
    }
}

/// Called with a vCPU index after another vCPU changed what that vCPU may be signalled.
pub type Notifier = Box<dyn Fn(usize) + Send + Sync>;

/// The GIC of one VM, shared by its vCPUs.
pub struct Gic {
    layout: GicLayout,
    state: Mutex<GicState>,
    notify: OnceLock<Notifier>,
}

/// The GICR_TYPER affinity value (Aff3.Aff2.Aff1.Aff0) of an MPIDR_EL1 value.
pub fn affinity_of(mpidr: u64) -> u32 {
    ((mpidr >> 32 & 0xff) << 24 | (mpidr & 0xff_ffff)) as u32
}

impl Gic {
    /// A GIC at `layout` with one redistributor per 128 KiB of the redistributor range
    /// (at least one); vCPU i gets the affinity of `mpidr(i)`.
    pub fn new(layout: GicLayout, mpidr: impl Fn(usize) -> u64) -> Self {
        let n = (layout.redist_size / REDIST_STRIDE).max(1) as usize;
        let affinities: Vec<u32> = (0..n).map(|i| affinity_of(mpidr(i))).collect();
        Gic {
            layout,
            state: Mutex::new(GicState::new(&affinities)),
            notify: OnceLock::new(),
        }
    }

    /// The whole GIC state, for a snapshot (`model/snapshot.rs`).
    pub fn save(&self) -> GicSaved {
        GicSaved(self.lock().clone())
    }

    /// Puts back a state [`Gic::save`] returned and wakes every vCPU to re-evaluate.
    pub fn restore(&self, saved: &GicSaved) {
        let n = {
            let mut st = self.lock();
            st.clone_from(&saved.0);
            st.cpus.len()
        };
        self.notify(0..n);
    }

    /// Installs the function that wakes a vCPU (once; later calls are ignored).
    pub fn set_notifier(&self, f: Notifier) {
        let _ = self.notify.set(f);
    }

    fn lock(&self) -> MutexGuard<'_, GicState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn notify(&self, cpus: impl IntoIterator<Item = usize>) {
        if let Some(f) = self.notify.get() {
            cpus.into_iter().for_each(f);
        }
    }

    /// Which frame `pa` falls in: `Some(None)` for the distributor, `Some(Some((cpu,
    /// offset)))` for a redistributor, with the offset inside it.
    fn frame(&self, pa: u64) -> Option<(Option<usize>, u64)> {
        let l = &self.layout;
        if pa >= l.dist_base && pa < l.dist_base + DIST_SIZE {
            return Some((None, pa - l.dist_base));
        }
        if pa >= l.redist_base && pa < l.redist_base + l.redist_size {
            let off = pa - l.redist_base;
            return Some((Some((off / REDIST_STRIDE) as usize), off % REDIST_STRIDE));
        }
        None
    }

    /// A guest read of `size` bytes at `pa` in the GIC ranges; RAZ where no register is.
    pub fn mmio_read(&self, pa: u64, size: usize) -> u64 {
        let st = self.lock();
        let v = match self.frame(pa) {
            Some((None, off)) => dist::read(&st, off, size),
            Some((Some(cpu), off)) => redist::read(&st, cpu, off, size),
            None => None,
        };
        v.unwrap_or_else(|| {
            log::debug!("model GIC: read of {size} bytes at {pa:#x}: no register, RAZ");
            0
        })
    }

    /// A guest write by vCPU `sender`; ignored (with a debug message) where no register is.
    /// Wakes the vCPUs the write may concern.
    pub fn mmio_write(&self, sender: usize, pa: u64, size: usize, val: u64) {
        let mut st = self.lock();
        let n = st.cpus.len();
        let (done, concerned): (bool, Vec<usize>) = match self.frame(pa) {
            Some((None, off)) => (dist::write(&mut st, off, size, val), (0..n).collect()),
            Some((Some(cpu), off)) => (redist::write(&mut st, cpu, off, size, val), vec![cpu]),
            None => (false, Vec::new()),
        };
        drop(st);
        if !done {
            log::debug!("model GIC: write of {size} bytes ({val:#x}) at {pa:#x}: no register, WI");
            return;
        }
        self.notify(concerned.into_iter().filter(|&c| c != sender));
    }

    /// MRS of a CPU interface register by vCPU `cpu`; `None` if it is write-only.
    pub fn icc_read(&self, cpu: usize, r: Icc) -> Option<u64> {
        cpuif::read(&mut self.lock(), cpu, r)
    }

    /// MSR of a CPU interface register by vCPU `cpu`; `None` if it is read-only.
    pub fn icc_write(&self, cpu: usize, r: Icc, v: u64) -> Option<()> {
        let targets = cpuif::write(&mut self.lock(), cpu, r, v)?;
        self.notify(targets);
        Some(())
    }

    /// Drives vCPU `cpu`'s timer lines (virtual, physical).
    pub fn set_timer_lines(&self, cpu: usize, lines: [bool; 2]) {
        let mut st = self.lock();
        for (intid, level) in [(VTIMER_INTID, lines[0]), (PTIMER_INTID, lines[1])] {
            if let Some(i) = st.irq_mut(cpu, intid) {
                i.level = level;
            }
        }
    }

    /// Drives the input line of SPI `intid` (a device's interrupt): a level-sensitive SPI is
    /// pending while it is high, an edge-triggered one latches on a rising edge (IHI 0069
    /// 4.2.1 "Level-sensitive and edge-triggered interrupts"). Wakes the vCPUs; false if
    /// `intid` is not an SPI.
    pub fn set_spi_level(&self, intid: usize, level: bool) -> bool {
        let mut st = self.lock();
        let n = st.cpus.len();
        let Some(i) = intid
            .checked_sub(state::PRIVATE)
            .and_then(|spi| st.spis.get_mut(spi))
        else {
            return false;
        };
        if i.edge && level && !i.level {
            i.latch = true;
        }
        i.level = level;
        drop(st);
        self.notify(0..n);
        true
    }

    /// Whether the CPU interface signals an IRQ to vCPU `cpu` (ISR_EL1.I; taken when
    /// PSTATE.I is clear).
    pub fn signalled(&self, cpu: usize) -> bool {
        self.lock().signalled(cpu).is_some()
    }

    /// Whether KVM would wake vCPU `cpu` from a blocking WFI.
    pub fn wakes_from_wfi(&self, cpu: usize) -> bool {
        self.lock().wakes_from_wfi(cpu)
    }
}

#[cfg(test)]
mod tests;
