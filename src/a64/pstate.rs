//! PSTATE / SPSR_ELx bit fields (Arm ARM C5.2.18 "SPSR_EL1", D1.4 "Process state, PSTATE").
//!
//! Pure constants and helpers; no I/O.

/// Negative, Zero, Carry, oVerflow flags: SPSR bits 31..28.
pub const N: u64 = 1 << 31;
pub const Z: u64 = 1 << 30;
pub const C: u64 = 1 << 29;
pub const V: u64 = 1 << 28;
pub const NZCV_MASK: u64 = 0xf << 28;
/// Tag Check Override (FEAT_MTE): bit 25.
pub const TCO: u64 = 1 << 25;
/// User Access Override (FEAT_UAO): bit 23.
pub const UAO: u64 = 1 << 23;
/// Privileged Access Never (FEAT_PAN): bit 22.
pub const PAN: u64 = 1 << 22;
/// Software Step: SPSR bit 21 (Arm ARM D2.12 "Software Step exceptions").
pub const SS: u64 = 1 << 21;
/// Illegal Execution state: bit 20.
pub const IL: u64 = 1 << 20;
/// Branch type (BTI): bits 11..10.
pub const BTYPE_MASK: u64 = 0b11 << 10;
/// Speculative Store Bypass Safe (FEAT_SSBS): bit 12.
pub const SSBS: u64 = 1 << 12;
/// Interrupt masks: Debug, SError, IRQ, FIQ at bits 9..6.
pub const D: u64 = 1 << 9;
pub const A: u64 = 1 << 8;
pub const I: u64 = 1 << 7;
pub const F: u64 = 1 << 6;
pub const DAIF_MASK: u64 = 0xf << 6;
/// M\[4\] (nRW): set when the interrupted state was AArch32.
pub const NRW: u64 = 1 << 4;
/// M\[3:0\]: exception level and stack pointer selection.
pub const M_MASK: u64 = 0xf;
pub const MODE_EL0T: u64 = 0b0000;
pub const MODE_EL1T: u64 = 0b0100;
pub const MODE_EL1H: u64 = 0b0101;
pub const MODE_EL2T: u64 = 0b1000;
pub const MODE_EL2H: u64 = 0b1001;
/// M\[4:0\] of AArch32 User mode (Arm ARM G1.9.1 "AArch32 PE modes": usr = 0b10000).
pub const MODE_AA32_USR: u64 = 0b1_0000;

/// PSTATE after `KVM_ARM_VCPU_INIT` and at QEMU's bare-metal entry: EL1h with DAIF masked
/// (observed 0x3c5 on KVM 6.1; `arch/arm64/kvm/reset.c` VCPU_RESET_PSTATE_EL1).
pub const RESET_EL1H_DAIF: u64 = DAIF_MASK | MODE_EL1H;

/// Whether PSTATE `value` names a mode a vCPU can be in, as KVM's `set_core_reg`
/// (arch/arm64/kvm/guest.c) decides on `KVM_SET_ONE_REG` of PSTATE: on M\[4:0\], EL0t, EL1t
/// and EL1h always (AArch64 EL1 here); EL2t/EL2h only with nested virtualization
/// (`has_el2`); AArch32 User only where the CPU has AArch32 EL0; other AArch32 modes never
/// (they need an AArch32 EL1); everything else (EL3, reserved encodings) never. KVM answers
/// the rest with EINVAL.
pub fn mode_allowed(value: u64, has_el2: bool, aarch32_el0: bool) -> bool {
    match value & (NRW | M_MASK) {
        MODE_EL0T | MODE_EL1T | MODE_EL1H => true,
        MODE_EL2T | MODE_EL2H => has_el2,
        MODE_AA32_USR => aarch32_el0,
        _ => false,
    }
}

/// The exception level encoded in M\[3:2\].
pub fn el(pstate: u64) -> u8 {
    ((pstate >> 2) & 3) as u8
}

/// True when SP_ELx (not SP_EL0) is the stack pointer in use (M\[0\] = 1, at EL1 or above).
pub fn uses_sp_elx(pstate: u64) -> bool {
    el(pstate) > 0 && pstate & 1 == 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_modes_the_vcpu_can_have_are_allowed() {
        for m in [MODE_EL0T, MODE_EL1T, MODE_EL1H] {
            assert!(mode_allowed(m | DAIF_MASK | N, false, false), "{m:#x}");
        }
        for m in [MODE_EL2T, MODE_EL2H] {
            assert!(!mode_allowed(m, false, false) && mode_allowed(m, true, false));
        }
        // EL3t/EL3h, a reserved encoding, AArch32 SVC (0b10011) and User.
        for m in [0b1100, 0b1101, 0b0001, 0b1_0011] {
            assert!(!mode_allowed(m, true, true), "{m:#x}");
        }
        assert!(!mode_allowed(MODE_AA32_USR, true, false));
        assert!(mode_allowed(MODE_AA32_USR, false, true));
    }
}
