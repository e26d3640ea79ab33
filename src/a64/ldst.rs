//! Decoding of single A64 load/store instructions for emulation outside the guest (data
//! aborts without a valid syndrome: `KVM_EXIT_ARM_NISV`).
//!
//! Owns the translation of a `yaxpeax-arm` decode into a small, execution-ready description
//! (`MemOp`): direction, transfer registers, element size, sign extension, addressing mode and
//! writeback. Pure; no I/O. Exclusives, atomics and literal loads are not emulable on a device
//! (Arm ARM B2.9.3: exclusives to Device memory are CONSTRAINED UNPREDICTABLE) and are refused.

use yaxpeax_arch::{Decoder, U8Reader};
use yaxpeax_arm::armv8::a64::{InstDecoder, Opcode, Operand, SIMDSizeCode, SizeCode};

/// A register moved by a load or store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum XferReg {
    /// General-purpose register `n` (31 = the zero register), `wide` = X (64-bit) view.
    Gpr { n: u8, wide: bool },
    /// SIMD&FP register `n`, accessed as `bytes` bytes (1, 2, 4, 8 or 16).
    Simd { n: u8, bytes: u8 },
}

/// How the address is formed and whether the base register is written back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Addressing {
    /// `[base, #imm]` or `[base, #imm]!` (pre-index when `writeback`).
    Offset { base: u8, imm: i64, writeback: bool },
    /// `[base], #imm`: access at base, then base += imm.
    PostIndex { base: u8, imm: i64 },
    /// `[base, Rm{, extend/shift}]`: no writeback.
    RegOffset {
        base: u8,
        index: u8,
        index_wide: bool,
        extend: Extend,
        shift: u8,
    },
}

/// Index-register extension for register-offset addressing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Extend {
    Lsl,
    Uxtw,
    Sxtw,
    Sxtx,
}

/// One decoded load or store (single register or pair).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemOp {
    pub load: bool,
    /// One or two transfer registers (`regs[1]` set for pairs).
    pub regs: [Option<XferReg>; 2],
    /// Bytes per register transferred.
    pub size: u8,
    /// Sign-extend the loaded value into the destination register.
    pub sign_extend: bool,
    pub addressing: Addressing,
}

impl MemOp {
    /// Total bytes accessed.
    pub fn total_bytes(&self) -> u64 {
        self.size as u64 * if self.regs[1].is_some() { 2 } else { 1 }
    }
}

/// Why an instruction could not be turned into a `MemOp`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("{word:#010x} is not a valid A64 instruction")]
    Invalid { word: u32 },
    #[error("{word:#010x} ({text}) is not a load/store that can be emulated on a device")]
    NotEmulable { word: u32, text: String },
}

/// Decodes `word` as a load/store that can be performed on a device.
pub fn decode(word: u32) -> Result<MemOp, DecodeError> {
    let bytes = word.to_le_bytes();
    let mut reader = U8Reader::new(&bytes);
    let inst = InstDecoder::default()
        .decode(&mut reader)
        .map_err(|_| DecodeError::Invalid { word })?;
    let refuse = || DecodeError::NotEmulable {
        word,
        text: inst.to_string(),
    };
    let (load, fixed, sign) = classify(inst.opcode).ok_or_else(refuse)?;
    let ops = &inst.operands;
    let pair = matches!(
        inst.opcode,
        Opcode::LDP | Opcode::STP | Opcode::LDPSW | Opcode::LDNP | Opcode::STNP
    );
    let n_regs = if pair { 2 } else { 1 };
    let mut regs = [None, None];
    let mut reg_bytes = 0u8;
    for (slot, op) in regs.iter_mut().zip(ops.iter()).take(n_regs) {
        let (r, bytes) = xfer_reg(op).ok_or_else(refuse)?;
        *slot = Some(r);
        reg_bytes = bytes;
    }
    let size = fixed.unwrap_or(reg_bytes);
    let addressing = addressing(&ops[n_regs]).ok_or_else(refuse)?;
    Ok(MemOp {
        load,
        regs,
        size,
        sign_extend: sign,
        addressing,
    })
}

/// (is_load, fixed access size if not implied by the register, sign-extending).
fn classify(op: Opcode) -> Option<(bool, Option<u8>, bool)> {
    use Opcode::*;
    Some(match op {
        LDR | LDUR | LDP | LDNP => (true, None, false),
        STR | STUR | STP | STNP => (false, None, false),
        LDRB | LDURB => (true, Some(1), false),
        LDRH | LDURH => (true, Some(2), false),
        LDRSB | LDURSB => (true, Some(1), true),
        LDRSH | LDURSH => (true, Some(2), true),
        LDRSW | LDURSW | LDPSW => (true, Some(4), true),
        STRB | STURB => (false, Some(1), false),
        STRH | STURH => (false, Some(2), false),
        _ => return None,
    })
}

fn xfer_reg(op: &Operand) -> Option<(XferReg, u8)> {
    match *op {
        Operand::Register(size, n) => {
            let wide = size == SizeCode::X;
            Some((XferReg::Gpr { n: n as u8, wide }, if wide { 8 } else { 4 }))
        }
        Operand::SIMDRegister(size, n) => {
            let bytes = match size {
                SIMDSizeCode::B => 1,
                SIMDSizeCode::H => 2,
                SIMDSizeCode::S => 4,
                SIMDSizeCode::D => 8,
                SIMDSizeCode::Q => 16,
            };
            Some((XferReg::Simd { n: n as u8, bytes }, bytes))
        }
        _ => None,
    }
}

fn addressing(op: &Operand) -> Option<Addressing> {
    match *op {
        Operand::RegPreIndex(base, imm, writeback) => Some(Addressing::Offset {
            base: base as u8,
            imm: imm as i64,
            writeback,
        }),
        Operand::RegPostIndex(base, imm) => Some(Addressing::PostIndex {
            base: base as u8,
            imm: imm as i64,
        }),
        Operand::RegRegOffset(base, index, size, style, shift) => {
            use yaxpeax_arm::armv8::a64::ShiftStyle;
            let extend = match style {
                ShiftStyle::LSL | ShiftStyle::UXTX => Extend::Lsl,
                ShiftStyle::UXTW => Extend::Uxtw,
                ShiftStyle::SXTW => Extend::Sxtw,
                ShiftStyle::SXTX => Extend::Sxtx,
                _ => return None,
            };
            Some(Addressing::RegOffset {
                base: base as u8,
                index: index as u8,
                index_wide: size == SizeCode::X,
                extend,
                shift,
            })
        }
        _ => None,
    }
}

/// Applies a register-offset extension and shift to the index register's value.
pub fn extend_index(value: u64, extend: Extend, shift: u8) -> u64 {
    let v = match extend {
        Extend::Lsl | Extend::Sxtx => value,
        Extend::Uxtw => value & 0xffff_ffff,
        Extend::Sxtw => value as u32 as i32 as i64 as u64,
    };
    v.wrapping_shl(shift as u32)
}

#[cfg(test)]
#[path = "ldst_tests.rs"]
mod tests;
