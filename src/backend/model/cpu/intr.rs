//! The interpreter's side of interrupts: the generic timer's outputs (Arm ARM D11.2.4
//! "Timers": the condition is met when ENABLE = 1 and the counter is at or past CVAL; the
//! interrupt is asserted when also IMASK = 0), GIC accesses served in the model (the
//! distributor/redistributor frames and the ICC system registers, as KVM serves them in the
//! kernel), ISR_EL1, and the test a WFI makes before it would sleep.
//!
//! Keeps the per-vCPU bookkeeping the run loop polls (`IrqCtl`): the vCPU's GIC index, a
//! flag set whenever something that decides whether an IRQ is signalled may have changed, and
//! the timer levels last given to the GIC. Taking the IRQ exception is `exception.rs`'s;
//! deciding when is the run loop's (`model::irq`).

use crate::a64::esr::{ec, DabtSyndrome};
use crate::a64::SysReg;

use super::bus::PhysKind;
use super::{Cpu, Exc, Stop};
use crate::a64::sys::ISR_EL1;
use crate::backend::model::gic::Icc;

/// CNTx_CTL_EL0 bits (Arm ARM D19.11): ENABLE, IMASK.
const CTL_ENABLE: u64 = 1;
const CTL_IMASK: u64 = 2;
/// ISR_EL1.I (bit 7): an IRQ is pending (Arm ARM D19.2 "ISR_EL1").
const ISR_I: u64 = 1 << 7;

/// Interrupt bookkeeping of one vCPU's interpreter.
#[derive(Clone, Debug)]
pub struct IrqCtl {
    /// This vCPU's index in the GIC.
    pub cpu: usize,
    /// Instructions until the run loop next looks at interrupts (never 0 between two
    /// instructions): its only per-instruction cost is counting this down.
    pub countdown: u32,
    /// Something that decides whether an IRQ is signalled may have changed (a GIC or timer
    /// register access, or another vCPU's action): the run loop re-evaluates.
    dirty: bool,
    /// The timer outputs last given to the GIC (virtual, physical).
    lines: [bool; 2],
}

impl IrqCtl {
    pub fn new(cpu: usize) -> Self {
        IrqCtl {
            cpu,
            countdown: 1,
            dirty: true,
            lines: [false; 2],
        }
    }

    /// Flags a change: the run loop re-evaluates before the next instruction.
    pub fn mark_dirty(&mut self) {
        self.dirty = true;
        self.countdown = 1;
    }

    /// Whether a change is flagged.
    pub fn dirty(&self) -> bool {
        self.dirty
    }

    /// Whether a change was flagged since the last call.
    pub fn take_dirty(&mut self) -> bool {
        std::mem::take(&mut self.dirty)
    }
}

/// Whether a timer with control `ctl` and compare value `cval` asserts its interrupt at
/// counter value `now`.
fn asserted(ctl: u64, cval: u64, now: u64) -> bool {
    ctl & (CTL_ENABLE | CTL_IMASK) == CTL_ENABLE && now >= cval
}

impl Cpu {
    /// The timers (virtual, physical) that are enabled and unmasked, with their CVAL.
    fn armed_timers(&self) -> [Option<u64>; 2] {
        let s = &self.st.sys;
        [(s.cntv_ctl, s.cntv_cval), (s.cntp_ctl, s.cntp_cval)]
            .map(|(ctl, cval)| (ctl & (CTL_ENABLE | CTL_IMASK) == CTL_ENABLE).then_some(cval))
    }

    /// Gives the GIC this vCPU's current timer outputs if they changed (and then flags the
    /// run loop to re-evaluate); true if they did. Reads the counter only while a timer is
    /// armed.
    pub fn sync_timer_lines(&mut self) -> bool {
        let s = &self.st.sys;
        let armed = self.armed_timers();
        let lines = if armed.iter().any(Option::is_some) {
            let now = self.counter();
            [
                asserted(s.cntv_ctl, s.cntv_cval, now),
                asserted(s.cntp_ctl, s.cntp_cval, now),
            ]
        } else {
            [false; 2]
        };
        if lines == self.irq.lines {
            return false;
        }
        self.irq.lines = lines;
        self.irq.mark_dirty();
        self.bus.gic().set_timer_lines(self.irq.cpu, lines);
        true
    }

    /// The counter value at which an armed timer whose output is still low will assert it.
    pub fn timer_deadline(&self) -> Option<u64> {
        self.armed_timers()
            .iter()
            .zip(self.irq.lines)
            .filter_map(|(cval, high)| cval.filter(|_| !high))
            .min()
    }

    /// Whether the GIC signals an IRQ to this vCPU now (timer outputs brought up to date).
    pub fn irq_signalled(&mut self) -> bool {
        self.sync_timer_lines();
        self.bus.gic().signalled(self.irq.cpu)
    }

    /// A WFI completes at once, in the guest, when a wake-up event is already there: an
    /// interrupt the CPU interface signals, whatever PSTATE.I (Arm ARM D1.6.2; HCR_EL2.TWI
    /// and SCTLR_EL1.nTWI trap a WFI only "if it would otherwise enter a low-power state").
    pub(super) fn wfi_completes_at_once(&mut self) -> bool {
        self.irq_signalled()
    }

    /// A data read outside RAM: served by the in-model GIC when it targets the GIC frames
    /// with a valid syndrome (KVM handles those in the kernel, then advances the PC outside
    /// the guest), else an MMIO or NISV exit. Without a valid syndrome KVM cannot emulate
    /// the access in the kernel either and exits with NISV.
    pub(super) fn read_outside_ram(
        &mut self,
        pa: u64,
        size: usize,
        syn: Option<DabtSyndrome>,
    ) -> Result<u64, Stop> {
        if syn.is_some() && self.bus.kind(pa, size as u64) == PhysKind::Gic {
            self.emulated = true;
            return Ok(self.bus.gic().mmio_read(pa, size));
        }
        Err(self.mmio_stop(pa, size, false, 0, syn))
    }

    /// A data write outside RAM (see [`Cpu::read_outside_ram`]).
    pub(super) fn write_outside_ram(
        &mut self,
        pa: u64,
        size: usize,
        val: u64,
        syn: Option<DabtSyndrome>,
    ) -> Result<(), Stop> {
        if syn.is_some() && self.bus.kind(pa, size as u64) == PhysKind::Gic {
            self.emulated = true;
            self.irq.mark_dirty();
            self.bus.gic().mmio_write(self.irq.cpu, pa, size, val);
            return Ok(());
        }
        Err(self.mmio_stop(pa, size, true, val, syn))
    }

    /// MRS/MSR of a CPU interface register or of ISR_EL1; `None` for any other register.
    /// An access in the wrong direction is UNDEFINED.
    pub(super) fn gic_sysreg(
        &mut self,
        i: u32,
        reg: SysReg,
        read: bool,
        rt: u32,
    ) -> Option<Result<(), Stop>> {
        if reg == ISR_EL1 {
            if !read {
                return Some(Err(self.undef(i)));
            }
            let v = if self.irq_signalled() { ISR_I } else { 0 };
            self.st.set_x(rt, v);
            return Some(Ok(()));
        }
        let r = Icc::decode(reg)?;
        self.irq.mark_dirty();
        self.sync_timer_lines();
        let gic = self.bus.gic();
        let done = if read {
            gic.icc_read(self.irq.cpu, r).map(|v| self.st.set_x(rt, v))
        } else {
            gic.icc_write(self.irq.cpu, r, self.st.xr(rt))
        };
        Some(done.ok_or_else(|| self.undef(i)))
    }

    /// An EL0 access to a generic timer register that CNTKCTL_EL1 does not allow: trapped to
    /// EL1 with EC 0x18 (Arm ARM D11.2.2 "Accessing the timer registers" and D19.2
    /// ESR_ELx "ISS encoding for an exception from MSR, MRS, or System instruction": Op0
    /// \[21:20\], Op2 \[19:17\], Op1 \[16:14\], CRn \[13:10\], Rt \[9:5\], CRm \[4:1\],
    /// Direction \[0\] = 1 for a read). `None` for any other disallowed access (UNDEFINED),
    /// including writes to the read-only counters.
    pub(super) fn el0_timer_trap(&self, reg: SysReg, read: bool, rt: u32) -> Option<Exc> {
        let timer = reg.op0() == 3 && reg.op1() == 3 && reg.crn() == 14;
        // CRm = 0: CNTFRQ_EL0, CNTPCT_EL0, CNTVCT_EL0, read-only at EL0.
        let writable = reg.crm() != 0;
        if self.st.el() != 0 || !timer || !(read || writable) || self.read_sysreg(reg).is_none() {
            return None;
        }
        let iss = u64::from(reg.op0()) << 20
            | u64::from(reg.op2()) << 17
            | u64::from(reg.op1()) << 14
            | u64::from(reg.crn()) << 10
            | u64::from(rt) << 5
            | u64::from(reg.crm()) << 1
            | u64::from(read);
        Some(Exc::new(ec::SYS64, iss, self.st.pc))
    }

    /// ISR_EL1 as the VMM reads it: the GIC's current view, without bringing the timer
    /// outputs up to date.
    pub(super) fn isr(&self) -> u64 {
        if self.bus.gic().signalled(self.irq.cpu) {
            ISR_I
        } else {
            0
        }
    }
}
