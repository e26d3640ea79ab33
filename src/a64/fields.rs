//! Field layouts of the system registers that more than one layer reads or writes: SCTLR_EL1,
//! MDSCR_EL1 and the ID register fields that change exception entry.
//!
//! Owns bit positions only (register encodings are in [`crate::a64::sys`]). Pure constants and
//! helpers; no I/O.

/// SCTLR_EL1 fields (Arm ARM D19.2 "SCTLR_EL1").
pub mod sctlr {
    /// M (bit 0): stage 1 MMU enable.
    pub const M: u64 = 1 << 0;
    /// A (bit 1): alignment check enable.
    pub const A: u64 = 1 << 1;
    /// SA (bit 3): SP alignment check at EL1.
    pub const SA: u64 = 1 << 3;
    /// SA0 (bit 4): SP alignment check at EL0.
    pub const SA0: u64 = 1 << 4;
    /// UMA (bit 9): EL0 access to DAIF.
    pub const UMA: u64 = 1 << 9;
    /// I (bit 12): instruction access cacheability (for the walker's attributes).
    pub const I: u64 = 1 << 12;
    /// UCT (bit 15): EL0 access to CTR_EL0.
    pub const UCT: u64 = 1 << 15;
    /// nTWI (bit 16): WFI at EL0 not trapped.
    pub const NTWI: u64 = 1 << 16;
    /// WXN (bit 19): write permission implies execute-never.
    pub const WXN: u64 = 1 << 19;
    /// SPAN (bit 23): set PAN on exception entry to EL1 when 0 (FEAT_PAN).
    pub const SPAN: u64 = 1 << 23;
    /// DSSBS (bit 44): the PSTATE.SSBS value on exception entry to EL1 (FEAT_SSBS).
    pub const DSSBS: u64 = 1 << 44;
}

/// MDSCR_EL1 fields (Arm ARM D19.3 "MDSCR_EL1").
pub mod mdscr {
    /// SS (bit 0): software step enable.
    pub const SS: u64 = 1 << 0;
    /// KDE (bit 13): local (kernel) debug enable, debug exceptions at EL1.
    pub const KDE: u64 = 1 << 13;
    /// MDE (bit 15): monitor debug events, breakpoints and watchpoints enable.
    pub const MDE: u64 = 1 << 15;
}

/// The 4-bit ID register field at bit `lo` is not 0 (the feature is implemented; Arm ARM
/// D19.1.3 "Principles of the ID scheme for fields in ID registers").
pub const fn id_field_nonzero(value: u64, lo: u32) -> bool {
    (value >> lo) & 0xf != 0
}

/// ID_AA64MMFR1_EL1 field positions (Arm ARM D19.2 "ID_AA64MMFR1_EL1").
pub mod id_aa64mmfr1 {
    /// PAN, bits 23:20: FEAT_PAN.
    pub const PAN_SHIFT: u32 = 20;
}

/// ID_AA64PFR1_EL1 field positions (Arm ARM D19.2 "ID_AA64PFR1_EL1").
pub mod id_aa64pfr1 {
    /// SSBS, bits 7:4: FEAT_SSBS.
    pub const SSBS_SHIFT: u32 = 4;
    /// MTE, bits 11:8: FEAT_MTE.
    pub const MTE_SHIFT: u32 = 8;
}
