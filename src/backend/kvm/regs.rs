//! The one table between [`Reg`] and KVM `ONE_REG` register ids (arm64).
//!
//! Owns every KVM register id the backend uses, in both directions. Ids follow KVM api.rst
//! 4.68 "KVM_SET_ONE_REG" (arm64 part):
//! - core registers: `KVM_REG_ARM64 | size | KVM_REG_ARM_CORE | offset/4`, where `offset` is the
//!   byte offset of the field in `struct kvm_regs` (`KVM_REG_ARM_CORE_REG()` in
//!   arch/arm64/include/uapi/asm/kvm.h). Offsets are taken with `offset_of!` on the kvm-bindings
//!   types, so they cannot drift from the kernel's layout;
//! - FP/SIMD: `V0`..`V31` (128 bits), `FPSR` and `FPCR` (32 bits) are core registers too
//!   (`fp_regs` member of `struct kvm_regs`);
//! - system registers: `KVM_REG_ARM64 | KVM_REG_SIZE_U64 | KVM_REG_ARM64_SYSREG | encoding`
//!   with the MRS/MSR encoding of [`SysReg`].
//!
//! Must not depend on anything but `a64` and kvm-bindings: no ioctls here.

use std::mem::offset_of;

use kvm_bindings::{
    kvm_regs, user_fpsimd_state, user_pt_regs, KVM_REG_ARM64, KVM_REG_ARM64_SYSREG,
    KVM_REG_ARM_COPROC_MASK, KVM_REG_ARM_CORE, KVM_REG_SIZE_MASK, KVM_REG_SIZE_SHIFT,
    KVM_REG_SIZE_U128, KVM_REG_SIZE_U32, KVM_REG_SIZE_U64, KVM_SPSR_EL1,
};

use crate::a64::{sys, Reg, SysReg};

/// Mask of the architecture field of a register id (`KVM_REG_ARCH_MASK`, include/uapi/linux/kvm.h;
/// kvm-bindings gives it as a negative `i64`).
const ARCH_MASK: u64 = kvm_bindings::KVM_REG_ARCH_MASK as u64;
/// Mask of the index inside a coprocessor group: the low 16 bits (`KVM_REG_ARM_CORE_REG()` values
/// and `ARM64_SYS_REG()` encodings, arch/arm64/include/uapi/asm/kvm.h).
const INDEX_MASK: u64 = 0xffff;

const PT: usize = offset_of!(kvm_regs, regs);
const X0_OFF: usize = PT + offset_of!(user_pt_regs, regs);
const SP_OFF: usize = PT + offset_of!(user_pt_regs, sp);
const PC_OFF: usize = PT + offset_of!(user_pt_regs, pc);
const PSTATE_OFF: usize = PT + offset_of!(user_pt_regs, pstate);
const SP_EL1_OFF: usize = offset_of!(kvm_regs, sp_el1);
const ELR_EL1_OFF: usize = offset_of!(kvm_regs, elr_el1);
/// `spsr[KVM_SPSR_EL1]`: the EL1 SPSR is element 0 of the banked SPSR array.
const SPSR_EL1_OFF: usize = offset_of!(kvm_regs, spsr) + KVM_SPSR_EL1 as usize * 8;
const FP: usize = offset_of!(kvm_regs, fp_regs);
const V0_OFF: usize = FP + offset_of!(user_fpsimd_state, vregs);
const FPSR_OFF: usize = FP + offset_of!(user_fpsimd_state, fpsr);
const FPCR_OFF: usize = FP + offset_of!(user_fpsimd_state, fpcr);

const fn core(offset: usize, size: u64) -> u64 {
    KVM_REG_ARM64 | size | KVM_REG_ARM_CORE as u64 | (offset / 4) as u64
}

const SYSREG_BASE: u64 = KVM_REG_ARM64 | KVM_REG_SIZE_U64 | KVM_REG_ARM64_SYSREG as u64;

/// KVM's virtual-timer registers `KVM_REG_ARM_TIMER_CVAL` and `KVM_REG_ARM_TIMER_CNT` carry each
/// other's encodings: arch/arm64/include/uapi/asm/kvm.h says their values "have been accidentally
/// swapped" and must be used as defined. So CNTVCT_EL0 (3,3,14,0,2) is reached through id
/// (3,3,14,3,2) and CNTV_CVAL_EL0 (3,3,14,3,2) through id (3,3,14,0,2). The swap is its own
/// inverse, so the same function maps both ways.
fn timer_swap(reg: SysReg) -> SysReg {
    match reg {
        r if r == sys::CNTVCT_EL0 => sys::CNTV_CVAL_EL0,
        r if r == sys::CNTV_CVAL_EL0 => sys::CNTVCT_EL0,
        r => r,
    }
}

/// The KVM `ONE_REG` id of `reg`, or `None` for an out-of-range `X(n)`/`V(n)`.
pub(super) fn id_of(reg: Reg) -> Option<u64> {
    let id = match reg {
        Reg::X(n) if n <= 30 => core(X0_OFF + 8 * n as usize, KVM_REG_SIZE_U64),
        Reg::Sp => core(SP_OFF, KVM_REG_SIZE_U64),
        Reg::Pc => core(PC_OFF, KVM_REG_SIZE_U64),
        Reg::Pstate => core(PSTATE_OFF, KVM_REG_SIZE_U64),
        Reg::SpEl1 => core(SP_EL1_OFF, KVM_REG_SIZE_U64),
        Reg::ElrEl1 => core(ELR_EL1_OFF, KVM_REG_SIZE_U64),
        Reg::SpsrEl1 => core(SPSR_EL1_OFF, KVM_REG_SIZE_U64),
        Reg::V(n) if n <= 31 => core(V0_OFF + 16 * n as usize, KVM_REG_SIZE_U128),
        Reg::Fpsr => core(FPSR_OFF, KVM_REG_SIZE_U32),
        Reg::Fpcr => core(FPCR_OFF, KVM_REG_SIZE_U32),
        Reg::Sys(r) => SYSREG_BASE | timer_swap(r).0 as u64,
        Reg::X(_) | Reg::V(_) => return None,
    };
    Some(id)
}

/// The [`Reg`] a KVM id names, or `None` for ids outside our vocabulary (the SPSRs of other
/// modes, firmware pseudo-registers, SVE, cache-geometry demux registers, ...).
pub(super) fn reg_of(id: u64) -> Option<Reg> {
    if id & ARCH_MASK != KVM_REG_ARM64 {
        return None;
    }
    let group = id & KVM_REG_ARM_COPROC_MASK as u64;
    let candidate = if group == KVM_REG_ARM_CORE as u64 {
        core_reg_at((id & INDEX_MASK) as usize * 4)?
    } else if group == KVM_REG_ARM64_SYSREG as u64 {
        Reg::Sys(timer_swap(SysReg((id & INDEX_MASK) as u16)))
    } else {
        return None;
    };
    // Reject ids whose size field (or stray bits) differ from the id we would use ourselves.
    (id_of(candidate) == Some(id)).then_some(candidate)
}

/// The core register that starts at byte `offset` of `struct kvm_regs`.
fn core_reg_at(offset: usize) -> Option<Reg> {
    let fixed = [
        (SP_OFF, Reg::Sp),
        (PC_OFF, Reg::Pc),
        (PSTATE_OFF, Reg::Pstate),
        (SP_EL1_OFF, Reg::SpEl1),
        (ELR_EL1_OFF, Reg::ElrEl1),
        (SPSR_EL1_OFF, Reg::SpsrEl1),
        (FPSR_OFF, Reg::Fpsr),
        (FPCR_OFF, Reg::Fpcr),
    ];
    if let Some((_, r)) = fixed.iter().find(|(o, _)| *o == offset) {
        return Some(*r);
    }
    if (X0_OFF..X0_OFF + 31 * 8).contains(&offset) && (offset - X0_OFF) % 8 == 0 {
        return Some(Reg::X(((offset - X0_OFF) / 8) as u8));
    }
    if (V0_OFF..V0_OFF + 32 * 16).contains(&offset) && (offset - V0_OFF) % 16 == 0 {
        return Some(Reg::V(((offset - V0_OFF) / 16) as u8));
    }
    None
}

/// Size in bytes of the register an id names (the `KVM_REG_SIZE` field: log2 of the size).
pub(super) fn id_size(id: u64) -> usize {
    1usize << ((id & KVM_REG_SIZE_MASK) >> KVM_REG_SIZE_SHIFT)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Expected ids from the arm64 core-register table in KVM api.rst 4.68 "KVM_SET_ONE_REG".
    #[test]
    fn core_ids_match_the_documented_table() {
        assert_eq!(id_of(Reg::X(0)), Some(0x6030_0000_0010_0000));
        assert_eq!(id_of(Reg::X(30)), Some(0x6030_0000_0010_003c));
        assert_eq!(id_of(Reg::Sp), Some(0x6030_0000_0010_003e));
        assert_eq!(id_of(Reg::Pc), Some(0x6030_0000_0010_0040));
        assert_eq!(id_of(Reg::Pstate), Some(0x6030_0000_0010_0042));
        assert_eq!(id_of(Reg::SpEl1), Some(0x6030_0000_0010_0044));
        assert_eq!(id_of(Reg::ElrEl1), Some(0x6030_0000_0010_0046));
        assert_eq!(id_of(Reg::SpsrEl1), Some(0x6030_0000_0010_0048));
        assert_eq!(id_of(Reg::V(0)), Some(0x6040_0000_0010_0054));
        assert_eq!(id_of(Reg::V(31)), Some(0x6040_0000_0010_00d0));
        assert_eq!(id_of(Reg::Fpsr), Some(0x6020_0000_0010_00d4));
        assert_eq!(id_of(Reg::Fpcr), Some(0x6020_0000_0010_00d5));
        assert_eq!(id_of(Reg::X(31)), None);
        assert_eq!(id_of(Reg::V(32)), None);
    }

    /// System-register ids: `ARM64_SYS_REG(op0, op1, CRn, CRm, op2)`, api.rst 4.68.
    #[test]
    fn sysreg_ids_use_the_mrs_encoding() {
        assert_eq!(id_of(Reg::Sys(sys::MDSCR_EL1)), Some(0x6030_0000_0013_8012));
        assert_eq!(id_of(Reg::Sys(sys::SCTLR_EL1)), Some(0x6030_0000_0013_c080));
        assert_eq!(id_of(Reg::Sys(sys::TCR_EL1)), Some(0x6030_0000_0013_c102));
        assert_eq!(id_of(Reg::Sys(sys::dbgbcr(0))), Some(0x6030_0000_0013_8005));
    }

    /// `KVM_REG_ARM_TIMER_CNT` is `ARM64_SYS_REG(3, 3, 14, 3, 2)` and `KVM_REG_ARM_TIMER_CVAL`
    /// is `ARM64_SYS_REG(3, 3, 14, 0, 2)` (arch/arm64/include/uapi/asm/kvm.h).
    #[test]
    fn timer_counter_and_compare_ids_are_swapped_as_kvm_defines_them() {
        let timer_cnt = SYSREG_BASE | SysReg::new(3, 3, 14, 3, 2).0 as u64;
        let timer_cval = SYSREG_BASE | SysReg::new(3, 3, 14, 0, 2).0 as u64;
        assert_eq!(id_of(Reg::Sys(sys::CNTVCT_EL0)), Some(timer_cnt));
        assert_eq!(id_of(Reg::Sys(sys::CNTV_CVAL_EL0)), Some(timer_cval));
        assert_eq!(reg_of(timer_cnt), Some(Reg::Sys(sys::CNTVCT_EL0)));
        assert_eq!(reg_of(timer_cval), Some(Reg::Sys(sys::CNTV_CVAL_EL0)));
    }

    #[test]
    fn every_register_round_trips() {
        let mut regs: Vec<Reg> = (0..=30).map(Reg::X).collect();
        regs.extend((0..=31).map(Reg::V));
        regs.extend(Reg::NAMED_CORE);
        regs.extend([
            Reg::Fpsr,
            Reg::Fpcr,
            Reg::Sys(sys::TTBR1_EL1),
            Reg::Sys(sys::dbgwvr(15)),
        ]);
        for reg in regs {
            let id = id_of(reg).expect("valid register");
            assert_eq!(reg_of(id), Some(reg), "{reg:?} id {id:#x}");
        }
    }

    #[test]
    fn ids_outside_the_vocabulary_are_ignored() {
        // spsr[1] (SPSR_ABT), right after SPSR_EL1.
        assert_eq!(reg_of(0x6030_0000_0010_004a), None);
        // The padding word between spsr[] and fp_regs.
        assert_eq!(reg_of(0x6030_0000_0010_0052), None);
        // KVM_REG_ARM_PSCI_VERSION firmware pseudo-register (group 0x0014).
        assert_eq!(reg_of(0x6030_0000_0014_0000), None);
        // X0 with a 32-bit size field.
        assert_eq!(reg_of(0x6020_0000_0010_0000), None);
        // Another architecture's id (x86, KVM_REG_X86).
        assert_eq!(reg_of(0x2030_0000_0010_0000), None);
    }

    #[test]
    fn sizes_come_from_the_id() {
        assert_eq!(id_size(id_of(Reg::X(3)).unwrap()), 8);
        assert_eq!(id_size(id_of(Reg::V(3)).unwrap()), 16);
        assert_eq!(id_size(id_of(Reg::Fpcr).unwrap()), 4);
    }
}
