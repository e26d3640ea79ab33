//! The GICv3 state of one VM and its prioritization rules: per-INTID state (group, enable,
//! pending latch and line level, active, priority, trigger, route), the distributor's group
//! enable, and each vCPU's redistributor (SGIs and PPIs) and CPU interface (PMR, binary points,
//! group enables, active priorities).
//!
//! Rules from the GICv3 architecture specification (IHI 0069): 4.1 "Interrupt prioritization"
//! (highest priority pending interrupt, ties to the lowest INTID; preemption by group
//! priority), 4.4 "Running priority" (ICC_AP1R0_EL1 bits), 4.8 "Preemption" (binary points),
//! 4.1.2 / 12.11 ICC_IAR1_EL1, ICC_EOIR1_EL1, ICC_DIR_EL1, ICC_HPPIR1_EL1, ICC_RPR_EL1. Reset
//! values are what KVM 6.1's vGICv3 shows a guest (read on the nested machine, see
//! `gic/mod.rs`). Pure data: no locking, no MMIO decoding.

/// INTIDs the distributor implements: 32 private (SGIs 0-15, PPIs 16-31) and 256 SPIs, as
/// the KVM backend configures its vGIC (QEMU virt `NUM_IRQS` = 256 plus `GIC_INTERNAL`).
pub const NR_IRQS: usize = 32 + 256;
/// Private INTIDs per vCPU.
pub const PRIVATE: usize = 32;
/// SGIs are INTIDs 0-15.
pub const SGIS: usize = 16;
/// Priority bits implemented: 5 (ICC_CTLR_EL1.PRIbits = 4, KVM 6.1 `VGIC_PRI_BITS`), so every
/// priority and the priority mask keep bits \[7:3\].
pub const PRIO_MASK: u8 = 0xf8;
/// The INTID of "no interrupt" (IHI 0069 2.2.1 "Special INTIDs").
pub const SPURIOUS: u32 = 1023;
/// The idle running priority (no active interrupt).
pub const IDLE_PRIORITY: u8 = 0xff;
/// Minimum binary points with 5 priority bits (IHI 0069 12.11.3/12.11.4: BPR0 min 2,
/// BPR1 min = BPR0 min + 1); also the reset values KVM shows.
pub const BPR0_MIN: u8 = 2;
pub const BPR1_MIN: u8 = 3;

/// One INTID's state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Irq {
    pub group1: bool,
    pub enabled: bool,
    /// The pending latch (edge events, ISPENDR writes, SGIs); cleared on acknowledge.
    pub latch: bool,
    /// The input line (level-sensitive interrupts: the timers).
    pub level: bool,
    pub active: bool,
    pub priority: u8,
    /// Edge-triggered (ICFGR bit 1 of the field).
    pub edge: bool,
    /// SPIs: the routing affinity, Aff2.Aff1.Aff0 of GICD_IROUTER (KVM keeps bits \[23:0\]).
    pub route: u32,
}

impl Irq {
    /// Pending: the latch, or a level-sensitive line held high.
    pub fn pending(&self) -> bool {
        self.latch || (!self.edge && self.level)
    }

    /// A candidate for signalling: pending, enabled, not already active.
    fn candidate(&self, group1: bool) -> bool {
        self.pending() && self.enabled && !self.active && self.group1 == group1
    }

    /// Reset state of a private INTID under KVM 6.1: group 1, SGIs enabled and edge-triggered,
    /// PPIs level-sensitive.
    fn private_reset(intid: usize) -> Self {
        Irq {
            group1: true,
            enabled: intid < SGIS,
            edge: intid < SGIS,
            ..Irq::default()
        }
    }

    /// Reset state of an SPI under KVM 6.1: group 1, disabled, edge-triggered.
    fn spi_reset() -> Self {
        Irq {
            group1: true,
            edge: true,
            ..Irq::default()
        }
    }
}

/// One vCPU's CPU interface registers (ICC_*_EL1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CpuIf {
    pub pmr: u8,
    pub bpr0: u8,
    pub bpr1: u8,
    /// ICC_CTLR_EL1.CBPR: BPR0 also governs group 1 preemption.
    pub cbpr: bool,
    /// ICC_CTLR_EL1.EOImode: EOIR only drops the priority; DIR deactivates.
    pub eoimode: bool,
    pub grpen0: bool,
    pub grpen1: bool,
    /// ICC_AP1R0_EL1: bit n = group priority n << 3 is active (5 priority bits: 32 levels).
    pub ap1r0: u32,
}

impl Default for CpuIf {
    fn default() -> Self {
        CpuIf {
            pmr: 0,
            bpr0: BPR0_MIN,
            bpr1: BPR1_MIN,
            cbpr: false,
            eoimode: false,
            grpen0: false,
            grpen1: false,
            ap1r0: 0,
        }
    }
}

impl CpuIf {
    /// The group priority of a group 1 priority: bits \[7:BPR1\] (IHI 0069 4.8.1, table 4-5:
    /// group 1 uses one more group-priority bit than group 0 for the same value), or
    /// bits [7:BPR0+1] with CBPR set.
    pub fn group_priority(&self, priority: u8) -> u8 {
        let point = if self.cbpr { self.bpr0 + 1 } else { self.bpr1 };
        priority & (0xffu8.checked_shl(point as u32).unwrap_or(0))
    }

    /// ICC_RPR_EL1: the lowest active group priority, or idle.
    pub fn running_priority(&self) -> u8 {
        if self.ap1r0 == 0 {
            IDLE_PRIORITY
        } else {
            (self.ap1r0.trailing_zeros() as u8) << 3
        }
    }
}

/// One vCPU's redistributor and CPU interface.
#[derive(Clone, Debug)]
pub struct Redist {
    pub private: [Irq; PRIVATE],
    pub icc: CpuIf,
    /// GICR_TYPER.Affinity_Value: Aff3.Aff2.Aff1.Aff0 of this vCPU's MPIDR_EL1.
    pub affinity: u32,
}

/// The whole GIC of one VM.
#[derive(Clone, Debug)]
pub struct GicState {
    /// GICD_CTLR.EnableGrp1 (KVM 6.1 keeps only this enable bit).
    pub grp1_enabled: bool,
    pub spis: Vec<Irq>,
    pub cpus: Vec<Redist>,
}

impl GicState {
    /// The reset state for vCPUs with the given affinities.
    pub fn new(affinities: &[u32]) -> Self {
        GicState {
            grp1_enabled: false,
            spis: vec![Irq::spi_reset(); NR_IRQS - PRIVATE],
            cpus: affinities
                .iter()
                .map(|&affinity| Redist {
                    private: std::array::from_fn(Irq::private_reset),
                    icc: CpuIf::default(),
                    affinity,
                })
                .collect(),
        }
    }

    /// The vCPU an SPI is routed to, if any has its affinity.
    fn spi_target(&self, spi: &Irq) -> Option<usize> {
        self.cpus
            .iter()
            .position(|c| c.affinity & 0x00ff_ffff == spi.route)
    }

    /// The state of `intid` as vCPU `cpu` sees it (private INTIDs are banked).
    pub fn irq_mut(&mut self, cpu: usize, intid: usize) -> Option<&mut Irq> {
        if intid < PRIVATE {
            self.cpus.get_mut(cpu)?.private.get_mut(intid)
        } else {
            self.spis.get_mut(intid - PRIVATE)
        }
    }

    /// The highest priority pending interrupt of `group1` for vCPU `cpu`: (INTID, priority),
    /// ties to the lowest INTID.
    pub fn hppi(&self, cpu: usize, group1: bool) -> Option<(usize, u8)> {
        let r = self.cpus.get(cpu)?;
        let private = r.private.iter().enumerate();
        let spis = self
            .spis
            .iter()
            .enumerate()
            .map(|(n, i)| (n + PRIVATE, i))
            .filter(|(_, i)| i.candidate(group1) && self.spi_target(i) == Some(cpu));
        private
            .filter(|(_, i)| i.candidate(group1))
            .chain(spis)
            .fold(None, |best: Option<(usize, u8)>, (n, i)| match best {
                Some((_, p)) if p <= i.priority => best,
                _ => Some((n, i.priority)),
            })
    }

    /// The group 1 interrupt the CPU interface signals to vCPU `cpu`: group 1 enabled in the
    /// distributor and the CPU interface, priority above the mask and group priority above
    /// the running priority (IHI 0069 4.1, 4.8).
    pub fn signalled(&self, cpu: usize) -> Option<(usize, u8)> {
        let icc = &self.cpus.get(cpu)?.icc;
        if !self.grp1_enabled || !icc.grpen1 {
            return None;
        }
        let (n, p) = self.hppi(cpu, true)?;
        (p < icc.pmr && icc.group_priority(p) < icc.running_priority()).then_some((n, p))
    }

    /// What KVM 6.1 wakes a blocked vCPU for (`kvm_vgic_vcpu_pending_irq`): the distributor
    /// enabled and a pending, enabled, inactive interrupt above the priority mask; the running
    /// priority and the CPU interface's group enable are not looked at.
    pub fn wakes_from_wfi(&self, cpu: usize) -> bool {
        let Some(r) = self.cpus.get(cpu) else {
            return false;
        };
        self.grp1_enabled && self.hppi(cpu, true).is_some_and(|(_, p)| p < r.icc.pmr)
    }

    /// ICC_IAR1_EL1: acknowledges the signalled interrupt (pending latch cleared, active set,
    /// its group priority marked active) and returns its INTID, or 1023.
    pub fn acknowledge(&mut self, cpu: usize) -> u32 {
        let Some((n, p)) = self.signalled(cpu) else {
            return SPURIOUS;
        };
        let gp = self.cpus[cpu].icc.group_priority(p);
        self.cpus[cpu].icc.ap1r0 |= 1 << (gp >> 3);
        if let Some(i) = self.irq_mut(cpu, n) {
            i.latch = false;
            i.active = true;
        }
        n as u32
    }

    /// ICC_EOIR1_EL1: drops the running priority (the lowest active priority bit) and, with
    /// EOImode 0, deactivates `intid`. Special INTIDs (1020-1023) are ignored.
    pub fn end_of_interrupt(&mut self, cpu: usize, intid: u32) {
        if intid >= 1020 {
            return;
        }
        let Some(r) = self.cpus.get_mut(cpu) else {
            return;
        };
        if r.icc.ap1r0 != 0 {
            r.icc.ap1r0 &= r.icc.ap1r0 - 1;
        }
        if !r.icc.eoimode {
            self.deactivate(cpu, intid);
        }
    }

    /// ICC_DIR_EL1 (and EOI with EOImode 0): clears the active state of `intid`.
    pub fn deactivate(&mut self, cpu: usize, intid: u32) {
        if let Some(i) = self.irq_mut(cpu, intid as usize) {
            i.active = false;
        }
    }

    /// ICC_HPPIR1_EL1: the highest priority pending group 1 INTID while group 1 is enabled
    /// (the priority mask and running priority are not applied), else 1023.
    pub fn highest_pending(&self, cpu: usize) -> u32 {
        let enabled = self.grp1_enabled && self.cpus.get(cpu).is_some_and(|r| r.icc.grpen1);
        match self.hppi(cpu, true) {
            Some((n, _)) if enabled => n as u32,
            _ => SPURIOUS,
        }
    }

    /// ICC_SGI1R_EL1 from vCPU `sender`: the vCPUs it targets (IHI 0069 12.11.15: IRM = 1
    /// means every vCPU but the sender; else Aff3.Aff2.Aff1 plus Aff0 = RS * 16 + each set
    /// bit of TargetList) and the SGI number. Sets the pending latch of the SGI on each target
    /// where it is group 1; returns the targets.
    pub fn send_sgi(&mut self, sender: usize, value: u64) -> Vec<usize> {
        let intid = ((value >> 24) & 0xf) as usize;
        let targets: Vec<usize> = if value & (1 << 40) != 0 {
            (0..self.cpus.len()).filter(|&c| c != sender).collect()
        } else {
            let upper = ((value >> 48) & 0xff) << 24 | ((value >> 32) & 0xff) << 16;
            let aff1 = ((value >> 16) & 0xff) << 8;
            let rs = (value >> 44) & 0xf;
            (0..16u64)
                .filter(|b| value & (1 << b) != 0)
                .filter_map(|b| {
                    let aff = (upper | aff1 | (rs * 16 + b)) as u32;
                    self.cpus.iter().position(|c| c.affinity == aff)
                })
                .collect()
        };
        for &t in &targets {
            let irq = &mut self.cpus[t].private[intid];
            if irq.group1 {
                irq.latch = true;
            }
        }
        targets
    }
}

#[cfg(test)]
#[path = "state_tests.rs"]
mod tests;
