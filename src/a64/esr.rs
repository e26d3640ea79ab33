//! Exception Syndrome Register fields (Arm ARM D19.2.37 "ESR_EL1", and D19.2.36 "ESR_EL2" for
//! the classes KVM reports to userspace).
//!
//! Owns the EC values, the IL/ISV bits and the ISS sub-fields the debugger and the model read
//! or build. Pure functions; no I/O.

/// Exception class values (ESR_ELx.EC, bits 31..26). Arm ARM D19.2.37 table "EC".
pub mod ec {
    pub const UNKNOWN: u8 = 0x00;
    pub const WFX: u8 = 0x01;
    pub const FP_ACCESS: u8 = 0x07;
    pub const ILLEGAL_STATE: u8 = 0x0e;
    pub const SVC64: u8 = 0x15;
    pub const HVC64: u8 = 0x16;
    pub const SMC64: u8 = 0x17;
    pub const SYS64: u8 = 0x18;
    pub const IABT_LOW: u8 = 0x20;
    pub const IABT_CUR: u8 = 0x21;
    pub const PC_ALIGN: u8 = 0x22;
    pub const DABT_LOW: u8 = 0x24;
    pub const DABT_CUR: u8 = 0x25;
    pub const SP_ALIGN: u8 = 0x26;
    pub const BREAKPT_LOW: u8 = 0x30;
    pub const BREAKPT_CUR: u8 = 0x31;
    pub const SOFTSTP_LOW: u8 = 0x32;
    pub const SOFTSTP_CUR: u8 = 0x33;
    pub const WATCHPT_LOW: u8 = 0x34;
    pub const WATCHPT_CUR: u8 = 0x35;
    pub const BRK64: u8 = 0x3c;
}

/// ESR_ELx.IL (bit 25): 32-bit instruction length; set for every A64 trapped instruction.
pub const IL: u64 = 1 << 25;
/// ISS bit 24 for data aborts (ISV) and software step (ISV: EX is valid).
pub const ISS_ISV: u64 = 1 << 24;
/// Software step ISS.EX (bit 6): the stepped instruction was a load-exclusive.
pub const SS_EX: u64 = 1 << 6;
/// Debug-exception ISS IFSC/DFSC value 0b100010 ("debug exception").
pub const DEBUG_FSC: u64 = 0x22;
/// Data abort ISS.WnR (bit 6): the abort was caused by a write.
pub const DABT_WNR: u64 = 1 << 6;

/// The exception class of an ESR value.
pub fn class(esr: u64) -> u8 {
    ((esr >> 26) & 0x3f) as u8
}

/// The instruction specific syndrome (ESR\[24:0\]).
pub fn iss(esr: u64) -> u64 {
    esr & 0x1ff_ffff
}

/// Builds an ESR from class, IL and ISS.
pub fn make(ec: u8, il: bool, iss: u64) -> u64 {
    ((ec as u64) << 26) | if il { IL } else { 0 } | (iss & 0x1ff_ffff)
}

/// A short readable name for an exception class (for traces and error messages).
pub fn class_name(ec: u8) -> &'static str {
    match ec {
        ec::UNKNOWN => "unknown/undefined",
        ec::WFX => "WFI/WFE",
        ec::FP_ACCESS => "FP access",
        ec::ILLEGAL_STATE => "illegal execution state",
        ec::SVC64 => "SVC",
        ec::HVC64 => "HVC",
        ec::SMC64 => "SMC",
        ec::SYS64 => "MSR/MRS trap",
        ec::IABT_LOW | ec::IABT_CUR => "instruction abort",
        ec::PC_ALIGN => "PC alignment fault",
        ec::DABT_LOW | ec::DABT_CUR => "data abort",
        ec::SP_ALIGN => "SP alignment fault",
        ec::BREAKPT_LOW | ec::BREAKPT_CUR => "hardware breakpoint",
        ec::SOFTSTP_LOW | ec::SOFTSTP_CUR => "software step",
        ec::WATCHPT_LOW | ec::WATCHPT_CUR => "watchpoint",
        ec::BRK64 => "BRK",
        _ => "other",
    }
}

/// Data-abort ISS fields when ISV=1 (Arm ARM D19.2.37 "ISS encoding for an exception from a
/// Data Abort"): SAS (23..22), SSE (21), SRT (20..16), SF (15), AR (14), WnR (6).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DabtSyndrome {
    pub size_log2: u8,
    pub sign_extend: bool,
    pub rt: u8,
    pub sixty_four: bool,
    pub acq_rel: bool,
    pub write: bool,
}

impl DabtSyndrome {
    /// Decodes the ISV-valid fields, or `None` when ISV is clear.
    pub fn decode(iss: u64) -> Option<Self> {
        if iss & ISS_ISV == 0 {
            return None;
        }
        Some(DabtSyndrome {
            size_log2: ((iss >> 22) & 3) as u8,
            sign_extend: iss & (1 << 21) != 0,
            rt: ((iss >> 16) & 0x1f) as u8,
            sixty_four: iss & (1 << 15) != 0,
            acq_rel: iss & (1 << 14) != 0,
            write: iss & DABT_WNR != 0,
        })
    }

    /// Encodes the fields back into an ISS with ISV set (DFSC left to the caller).
    pub fn encode(&self) -> u64 {
        ISS_ISV
            | ((self.size_log2 as u64 & 3) << 22)
            | if self.sign_extend { 1 << 21 } else { 0 }
            | ((self.rt as u64 & 0x1f) << 16)
            | if self.sixty_four { 1 << 15 } else { 0 }
            | if self.acq_rel { 1 << 14 } else { 0 }
            | if self.write { DABT_WNR } else { 0 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observed_kvm_step_syndromes_decode() {
        // Values from real KVM 6.1 traces: step with ISV=1 and with ISV=0.
        assert_eq!(class(0xcb00_0022), ec::SOFTSTP_LOW);
        assert_eq!(iss(0xcb00_0022) & ISS_ISV, ISS_ISV);
        assert_eq!(iss(0xca00_0022) & ISS_ISV, 0);
        assert_eq!(class(0xf200_0000), ec::BRK64);
        assert_eq!(class(0xd200_0062), ec::WATCHPT_LOW);
        assert_eq!(
            make(ec::SOFTSTP_LOW, true, ISS_ISV | DEBUG_FSC),
            0xcb00_0022
        );
    }

    #[test]
    fn dabt_syndrome_round_trips() {
        let s = DabtSyndrome {
            size_log2: 2,
            sign_extend: true,
            rt: 12,
            sixty_four: false,
            acq_rel: false,
            write: true,
        };
        assert_eq!(DabtSyndrome::decode(s.encode()), Some(s));
        assert_eq!(DabtSyndrome::decode(0x45), None);
    }
}
