//! PSCI over HVC handled inside the model, as KVM 6.1's in-kernel PSCI for vCPUs created
//! with the PSCI 0.2 feature (`arch/arm64/kvm/psci.c`, `include/kvm/arm_psci.h`,
//! `arch/arm64/kvm/hypercalls.c`). Function ids: PSCI specification (DEN0022) 5.1.

use crate::backend::{SystemEvent, VcpuExit};

use super::cpu::state::{mpidr_for, CpuState};
use super::vcpu::{ModelVcpu, StepEvent};
use super::Power;

/// PSCI 1.1: KVM 6.1 reports `KVM_ARM_PSCI_LATEST` = `PSCI_VERSION(1, 1)` for PSCI 0.2 vCPUs.
pub const PSCI_VERSION_1_1: u64 = 0x1_0001;
/// SMCCC 1.1 (`ARM_SMCCC_VERSION_1_1`), KVM's answer to SMCCC_VERSION.
pub const SMCCC_VERSION_1_1: u64 = 0x1_0001;

pub mod fid {
    pub const SMCCC_VERSION: u32 = 0x8000_0000;
    pub const SMCCC_ARCH_FEATURES: u32 = 0x8000_0001;
    pub const VERSION: u32 = 0x8400_0000;
    pub const CPU_SUSPEND: u32 = 0x8400_0001;
    pub const CPU_OFF: u32 = 0x8400_0002;
    pub const CPU_ON: u32 = 0x8400_0003;
    pub const AFFINITY_INFO: u32 = 0x8400_0004;
    pub const MIGRATE: u32 = 0x8400_0005;
    pub const MIGRATE_INFO_TYPE: u32 = 0x8400_0006;
    pub const MIGRATE_INFO_UP_CPU: u32 = 0x8400_0007;
    pub const SYSTEM_OFF: u32 = 0x8400_0008;
    pub const SYSTEM_RESET: u32 = 0x8400_0009;
    pub const FEATURES: u32 = 0x8400_000A;
    pub const SYSTEM_RESET2: u32 = 0x8400_0012;
    /// The SMC64/HVC64 variant of a function id (bit 30).
    pub const SMC64: u32 = 0x4000_0000;
}

/// PSCI return codes (DEN0022 5.2.2), as 64-bit register values.
pub mod ret {
    pub const SUCCESS: u64 = 0;
    pub const NOT_SUPPORTED: u64 = -1i64 as u64;
    pub const INVALID_PARAMETERS: u64 = -2i64 as u64;
    pub const ALREADY_ON: u64 = -4i64 as u64;
    pub const INTERNAL_FAILURE: u64 = -6i64 as u64;
}

/// MPIDR_EL1 affinity fields (Aff3, Aff2, Aff1, Aff0): Linux `MPIDR_HWID_BITMASK`.
const MPIDR_HWID_BITMASK: u64 = 0xff_00ff_ffff;
/// AFFINITY_INFO's "ON" and "OFF" answers.
const AFFINITY_ON: u64 = 0;
const AFFINITY_OFF: u64 = 1;

impl ModelVcpu {
    /// Handles the HVC at the (already advanced) PC; x0 receives the result. Returns an exit
    /// for SYSTEM_OFF/SYSTEM_RESET.
    pub(super) fn psci_call(&mut self) -> Option<VcpuExit> {
        let f = self.cpu.st.x[0] as u32;
        let smc32 = f & fid::SMC64 == 0;
        if smc32 && matches!(f, fid::CPU_ON | fid::AFFINITY_INFO | fid::SYSTEM_RESET2) {
            // `kvm_psci_narrow_to_32bit`: the SMC32 forms truncate x1..x3 in the guest too.
            for r in 1..4 {
                self.cpu.st.x[r] &= 0xffff_ffff;
            }
        }
        let x = self.cpu.st.x;
        let arg = |n: usize| if smc32 { x[n] & 0xffff_ffff } else { x[n] };
        let base = f & !fid::SMC64;
        let (val, exit) = match (base, smc32) {
            (fid::VERSION, true) => (PSCI_VERSION_1_1, None),
            (fid::SMCCC_VERSION, true) => (SMCCC_VERSION_1_1, None),
            (fid::CPU_SUSPEND, _) => {
                // KVM treats CPU_SUSPEND as WFI.
                let exit = self.wait_for_interrupt();
                (ret::SUCCESS, exit.filter(|e| *e != VcpuExit::Idle))
            }
            (fid::CPU_OFF, true) => {
                self.power_off_self();
                (ret::SUCCESS, None)
            }
            (fid::CPU_ON, _) => (self.cpu_on(arg(1), arg(2), arg(3)), None),
            (fid::AFFINITY_INFO, _) => (self.affinity_info(arg(1), arg(2)), None),
            (fid::MIGRATE_INFO_TYPE, true) => (2, None), // PSCI_0_2_TOS_MP: no trusted OS
            (fid::SYSTEM_OFF, true) => self.system_event(SystemEvent::Shutdown),
            (fid::SYSTEM_RESET, true) => self.system_event(SystemEvent::Reset),
            (fid::SYSTEM_RESET2, _) => {
                let ty = arg(1);
                if ty == 0 || ty >= 0x8000_0000 {
                    self.system_event(SystemEvent::Reset)
                } else {
                    (ret::INVALID_PARAMETERS, None)
                }
            }
            (fid::FEATURES, true) => (features(arg(1) as u32), None),
            _ => (ret::NOT_SUPPORTED, None),
        };
        // KVM answers every HVC with smccc_set_retval(vcpu, val, 0, 0, 0): x1..x3 are zeroed
        // too (arch/arm64/kvm/psci.c, kvm_psci_0_2_call / kvm_psci_1_x_call; observed on 6.1).
        self.cpu.st.x[0] = val;
        self.cpu.st.x[1] = 0;
        self.cpu.st.x[2] = 0;
        self.cpu.st.x[3] = 0;
        exit
    }

    fn power_off_self(&mut self) {
        let mut power = self.shared.lock_power();
        power[self.index] = Power::Off;
        drop(power);
        self.shared.power_changed(self.index);
    }

    /// CPU_ON(target MPIDR, entry, context id).
    fn cpu_on(&mut self, target: u64, entry: u64, context: u64) -> u64 {
        if target & !MPIDR_HWID_BITMASK != 0 {
            return ret::INVALID_PARAMETERS;
        }
        let mut power = self.shared.lock_power();
        let Some(idx) = (0..power.len()).find(|&i| mpidr_for(i) & MPIDR_HWID_BITMASK == target)
        else {
            return ret::INVALID_PARAMETERS;
        };
        if power[idx] != Power::Off {
            return ret::ALREADY_ON;
        }
        power[idx] = Power::Starting { entry, context };
        drop(power);
        self.shared.power_changed(idx);
        ret::SUCCESS
    }

    /// With the deterministic clock: applies a CPU_ON accepted for this vCPU (`Starting`,
    /// noted at `run` entry), called by the run loop while this vCPU holds the turn and after
    /// the clock's stop check. The reset is one tick, as an exception entry: the states
    /// before and after it are two points of history. So a CPU_ON takes effect where the
    /// turn first reaches the target after the caller's HVC (`icount.rs`), whenever the
    /// target's host thread wakes. True if it applied one.
    pub(super) fn start_if_pending(&mut self) -> bool {
        if !std::mem::take(&mut self.start_pending) {
            return false;
        }
        let mut power = self.shared.lock_power();
        let Power::Starting { entry, context } = power[self.index] else {
            return false;
        };
        power[self.index] = Power::On;
        drop(power);
        self.cpu_on_reset(entry, context);
        self.tick_exception();
        true
    }

    /// The CPU_ON reset (KVM 6.1 resets the target on its next entry: `kvm_psci_vcpu_on`
    /// makes a `KVM_REQ_VCPU_RESET` request, arch/arm64/kvm/psci.c): the
    /// architectural reset state, PC = entry, x0 = context id, no exclusive monitor, no MMIO
    /// being completed, no step pending.
    pub(super) fn cpu_on_reset(&mut self, entry: u64, context: u64) {
        self.cpu.st = CpuState::reset(self.index);
        self.cpu.st.pc = entry;
        self.cpu.st.x[0] = context;
        self.cpu.monitor = None;
        self.cpu.tlb.flush();
        self.cpu.irq.mark_dirty();
        self.set_run_state(None, 0, false);
        self.step_event(StepEvent::Reset);
    }

    /// AFFINITY_INFO(target affinity, lowest affinity level), KVM's matching rule.
    fn affinity_info(&self, target: u64, level: u64) -> u64 {
        if level > 3 {
            return ret::INVALID_PARAMETERS;
        }
        let mask = MPIDR_HWID_BITMASK & !((1u64 << (level * 8)) - 1);
        let target = target & mask;
        let power = self.shared.lock_power();
        let on = (0..power.len()).any(|i| mpidr_for(i) & mask == target && power[i] != Power::Off);
        if on {
            AFFINITY_ON
        } else {
            AFFINITY_OFF
        }
    }

    /// SYSTEM_OFF / SYSTEM_RESET: every vCPU stops (`kvm_prepare_system_event`), x0 =
    /// INTERNAL_FAILURE (what the guest sees if it is ever resumed), and the run exits.
    fn system_event(&mut self, ev: SystemEvent) -> (u64, Option<VcpuExit>) {
        let mut power = self.shared.lock_power();
        let n = power.len();
        for p in power.iter_mut() {
            *p = Power::Off;
        }
        drop(power);
        for i in 0..n {
            if i != self.index {
                self.shared.power_changed(i);
            }
        }
        (ret::INTERNAL_FAILURE, Some(VcpuExit::SystemEvent(ev)))
    }
}

/// PSCI_FEATURES: the functions KVM 6.1 implements for PSCI 1.1.
fn features(f: u32) -> u64 {
    let base = f & !fid::SMC64;
    let both = matches!(
        base,
        fid::CPU_SUSPEND | fid::CPU_ON | fid::AFFINITY_INFO | fid::SYSTEM_RESET2
    );
    let only32 = f & fid::SMC64 == 0
        && matches!(
            f,
            fid::VERSION
                | fid::CPU_OFF
                | fid::MIGRATE_INFO_TYPE
                | fid::SYSTEM_OFF
                | fid::SYSTEM_RESET
                | fid::FEATURES
                | fid::SMCCC_VERSION
        );
    if both || only32 {
        ret::SUCCESS
    } else {
        ret::NOT_SUPPORTED
    }
}

#[allow(dead_code)]
const _UNUSED: (u32, u32, u32) = (
    fid::MIGRATE,
    fid::MIGRATE_INFO_UP_CPU,
    fid::SMCCC_ARCH_FEATURES,
);
