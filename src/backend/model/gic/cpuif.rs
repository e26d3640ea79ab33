//! The GICv3 CPU interface system registers (ICC_*_EL1, IHI 0069 12.11; encodings from the
//! register pages, op0 = 3, op1 = 0): which register an MRS/MSR names and what reading or
//! writing it does to the GIC state. Group 0 is never signalled (no FIQs in the model), so
//! its registers are the idle ones.

use crate::a64::SysReg;

use super::state::{GicState, BPR0_MIN, BPR1_MIN, PRIO_MASK, SPURIOUS};

/// ICC_SRE_EL1: SRE, DFB, DIB set and fixed (KVM 6.1 reads 0x7; the memory-mapped CPU
/// interface is not offered).
const SRE: u64 = 0x7;
/// ICC_CTLR_EL1 read-only fields: A3V (15), IDbits 0b001 (24-bit INTIDs, \[13:11\]), PRIbits
/// 0b100 (5 priority bits, \[10:8\]) (KVM 6.1 reads 0x8c00).
const CTLR_RO: u64 = 1 << 15 | 1 << 11 | 4 << 8;
const CTLR_CBPR: u64 = 1 << 0;
const CTLR_EOIMODE: u64 = 1 << 1;

/// The CPU interface registers the model implements.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Icc {
    Pmr,
    Iar0,
    Eoir0,
    Hppir0,
    Bpr0,
    Ap0r0,
    Ap1r0,
    Dir,
    Rpr,
    Sgi1r,
    Asgi1r,
    Sgi0r,
    Iar1,
    Eoir1,
    Hppir1,
    Bpr1,
    Ctlr,
    Sre,
    Igrpen0,
    Igrpen1,
}

impl Icc {
    /// The register `reg` names, if it is one of the CPU interface's.
    pub fn decode(reg: SysReg) -> Option<Icc> {
        if reg.op0() != 3 || reg.op1() != 0 {
            return None;
        }
        Some(match (reg.crn(), reg.crm(), reg.op2()) {
            (4, 6, 0) => Icc::Pmr,
            (12, 8, 0) => Icc::Iar0,
            (12, 8, 1) => Icc::Eoir0,
            (12, 8, 2) => Icc::Hppir0,
            (12, 8, 3) => Icc::Bpr0,
            (12, 8, 4) => Icc::Ap0r0,
            (12, 9, 0) => Icc::Ap1r0,
            (12, 11, 1) => Icc::Dir,
            (12, 11, 3) => Icc::Rpr,
            (12, 11, 5) => Icc::Sgi1r,
            (12, 11, 6) => Icc::Asgi1r,
            (12, 11, 7) => Icc::Sgi0r,
            (12, 12, 0) => Icc::Iar1,
            (12, 12, 1) => Icc::Eoir1,
            (12, 12, 2) => Icc::Hppir1,
            (12, 12, 3) => Icc::Bpr1,
            (12, 12, 4) => Icc::Ctlr,
            (12, 12, 5) => Icc::Sre,
            (12, 12, 6) => Icc::Igrpen0,
            (12, 12, 7) => Icc::Igrpen1,
            _ => return None,
        })
    }

    /// Whether KVM traps this register and emulates it (so a step over the access ends with
    /// ISV = 0): the SGI generation registers, which trap to EL2 while HCR_EL2.IMO is set
    /// (IHI 0069 12.11.15; KVM `access_gic_sgi`). The others are served by the virtual CPU
    /// interface in the guest (tests/conformance/irq_step_*.trace).
    pub fn trapped_by_kvm(self) -> bool {
        matches!(self, Icc::Sgi1r | Icc::Asgi1r | Icc::Sgi0r)
    }
}

/// MRS of `r` by vCPU `cpu`; `None` for a write-only register (UNDEFINED).
pub fn read(st: &mut GicState, cpu: usize, r: Icc) -> Option<u64> {
    let icc = st.cpus.get(cpu)?.icc;
    Some(match r {
        Icc::Pmr => u64::from(icc.pmr),
        Icc::Iar1 => u64::from(st.acknowledge(cpu)),
        Icc::Hppir1 => u64::from(st.highest_pending(cpu)),
        Icc::Iar0 | Icc::Hppir0 => u64::from(SPURIOUS),
        Icc::Bpr0 => u64::from(icc.bpr0),
        Icc::Bpr1 if icc.cbpr => u64::from((icc.bpr0 + 1).min(7)),
        Icc::Bpr1 => u64::from(icc.bpr1),
        Icc::Ap0r0 => 0,
        Icc::Ap1r0 => u64::from(icc.ap1r0),
        Icc::Rpr => u64::from(icc.running_priority()),
        Icc::Ctlr => {
            CTLR_RO
                | if icc.cbpr { CTLR_CBPR } else { 0 }
                | if icc.eoimode { CTLR_EOIMODE } else { 0 }
        }
        Icc::Sre => SRE,
        Icc::Igrpen0 => u64::from(icc.grpen0),
        Icc::Igrpen1 => u64::from(icc.grpen1),
        Icc::Eoir0 | Icc::Eoir1 | Icc::Dir | Icc::Sgi1r | Icc::Asgi1r | Icc::Sgi0r => return None,
    })
}

/// MSR of `v` to `r` by vCPU `cpu`: the other vCPUs whose interrupts it may have changed
/// (SGI targets), or `None` for a read-only register (UNDEFINED).
pub fn write(st: &mut GicState, cpu: usize, r: Icc, v: u64) -> Option<Vec<usize>> {
    let icc = &mut st.cpus.get_mut(cpu)?.icc;
    match r {
        Icc::Pmr => icc.pmr = v as u8 & PRIO_MASK,
        Icc::Bpr0 => icc.bpr0 = (v as u8 & 7).max(BPR0_MIN),
        Icc::Bpr1 if icc.cbpr => {}
        Icc::Bpr1 => icc.bpr1 = (v as u8 & 7).max(BPR1_MIN),
        Icc::Ap1r0 => icc.ap1r0 = v as u32,
        Icc::Ctlr => {
            icc.cbpr = v & CTLR_CBPR != 0;
            icc.eoimode = v & CTLR_EOIMODE != 0;
        }
        Icc::Igrpen0 => icc.grpen0 = v & 1 != 0,
        Icc::Igrpen1 => icc.grpen1 = v & 1 != 0,
        Icc::Eoir1 => st.end_of_interrupt(cpu, v as u32 & 0xff_ffff),
        Icc::Dir => st.deactivate(cpu, v as u32 & 0xff_ffff),
        Icc::Sgi1r => {
            let mut targets = st.send_sgi(cpu, v);
            targets.retain(|&t| t != cpu);
            return Some(targets);
        }
        // Group 0 is never active or signalled; SRE is fixed; the group 0 SGI registers
        // generate nothing the model delivers.
        Icc::Eoir0 | Icc::Ap0r0 | Icc::Sre | Icc::Sgi0r | Icc::Asgi1r => {}
        Icc::Iar0 | Icc::Iar1 | Icc::Hppir0 | Icc::Hppir1 | Icc::Rpr => return None,
    }
    Some(Vec::new())
}
