//! Instructions kvmdbg emulates itself: loads and stores without a valid syndrome
//! (`KVM_EXIT_ARM_NISV`, KVM api.rst 5 "KVM_EXIT_ARM_NISV": "userspace has to emulate any change
//! to the processing state"), and the one helper that advances the PC past an emulated
//! instruction.
//!
//! Owns register and device effects of emulation. Decoding is `a64::ldst`; device access is
//! the `Bus`; must not depend on gdb.

use crate::a64::ldst::{self, Addressing, MemOp, XferReg};
use crate::a64::{pstate, Reg};
use crate::backend::{BackendError, Vcpu};
use crate::debug::step::StepMachine;

use super::bus::Bus;
use super::guest_mem::{FetchError, GuestView};

/// Why emulation failed; the guest state is left unchanged when this is returned.
#[derive(Debug, thiserror::Error)]
pub enum EmulateError {
    #[error("cannot fetch the instruction at pc {pc:#x}: {source}")]
    Fetch {
        pc: u64,
        #[source]
        source: FetchError,
    },
    #[error("cannot emulate the instruction at pc {pc:#x}: {source}")]
    Decode {
        pc: u64,
        #[source]
        source: ldst::DecodeError,
    },
    #[error("register access failed: {0}")]
    Backend(#[from] BackendError),
}

/// Advances the PC past an instruction emulated outside the guest: pc += 4, PSTATE.BTYPE and
/// PSTATE.SS cleared (as KVM's `kvm_skip_instr`, arch/arm64/kvm/hyp/include/hyp/adjust_pc.h).
/// Every emulation path uses this helper and nothing else writes the PC to emulate.
///
/// It also moves the VMM's step state machine to active-pending: the emulated instruction is
/// a completed step, reported without re-entering the guest (real KVM ignores the PSTATE.SS
/// write above; see `debug::step`).
pub fn advance_pc(vcpu: &mut dyn Vcpu, step: &mut StepMachine) -> Result<(), BackendError> {
    let pc = vcpu.get(Reg::Pc)?;
    let ps = vcpu.get(Reg::Pstate)?;
    vcpu.set(Reg::Pc, pc.wrapping_add(4))?;
    vcpu.set(Reg::Pstate, ps & !(pstate::BTYPE_MASK | pstate::SS))?;
    step.pc_advanced_by_vmm();
    Ok(())
}

/// Performs a DAIF access at the PC for the guest (`debug::irqmask::Plan::Emulate`): writes
/// the resulting PSTATE and, for `MRS`, the destination register, then advances the PC.
pub fn emulate_daif_access(
    vcpu: &mut dyn Vcpu,
    new_pstate: u64,
    xt: Option<(u8, u64)>,
    step: &mut StepMachine,
) -> Result<(), BackendError> {
    if let Some((rt, value)) = xt {
        vcpu.set(Reg::X(rt), value)?;
    }
    vcpu.set(Reg::Pstate, new_pstate)?;
    advance_pc(vcpu, step)
}

/// Emulates the load/store at the vCPU's PC whose access to `fault_ipa` faulted without a
/// valid syndrome, on the device bus, then advances the PC.
pub fn emulate_nisv(
    vcpu: &mut dyn Vcpu,
    view: &GuestView,
    bus: &Bus,
    fault_ipa: u64,
    step: &mut StepMachine,
) -> Result<(), EmulateError> {
    let pc = vcpu.get(Reg::Pc)?;
    let word = view
        .fetch_insn(vcpu, pc)
        .map_err(|source| EmulateError::Fetch { pc, source })?;
    let op = ldst::decode(word).map_err(|source| EmulateError::Decode { pc, source })?;
    perform(vcpu, bus, &op, fault_ipa)?;
    advance_pc(vcpu, step)?;
    Ok(())
}

/// The stack pointer register in use for the current PSTATE.
fn sp_reg(vcpu: &mut dyn Vcpu) -> Result<Reg, BackendError> {
    let ps = vcpu.get(Reg::Pstate)?;
    Ok(if pstate::uses_sp_elx(ps) {
        Reg::SpEl1
    } else {
        Reg::Sp
    })
}

/// Reads a base register (31 = SP).
fn read_base(vcpu: &mut dyn Vcpu, n: u8) -> Result<u64, BackendError> {
    if n == 31 {
        let sp = sp_reg(vcpu)?;
        vcpu.get(sp)
    } else {
        vcpu.get(Reg::X(n))
    }
}

fn write_base(vcpu: &mut dyn Vcpu, n: u8, value: u64) -> Result<(), BackendError> {
    if n == 31 {
        let sp = sp_reg(vcpu)?;
        vcpu.set(sp, value)
    } else {
        vcpu.set(Reg::X(n), value)
    }
}

/// Performs `op`: computes the address, moves the data, writes back the base.
fn perform(vcpu: &mut dyn Vcpu, bus: &Bus, op: &MemOp, fault_ipa: u64) -> Result<(), EmulateError> {
    let (base, va, new_base) = match op.addressing {
        Addressing::Offset {
            base,
            imm,
            writeback,
        } => {
            let b = read_base(vcpu, base)?;
            let a = b.wrapping_add(imm as u64);
            (base, a, writeback.then_some(a))
        }
        Addressing::PostIndex { base, imm } => {
            let b = read_base(vcpu, base)?;
            (base, b, Some(b.wrapping_add(imm as u64)))
        }
        Addressing::RegOffset {
            base,
            index,
            extend,
            shift,
            ..
        } => {
            let b = read_base(vcpu, base)?;
            let i = if index == 31 {
                0
            } else {
                vcpu.get(Reg::X(index))?
            };
            (
                base,
                b.wrapping_add(ldst::extend_index(i, extend, shift)),
                None,
            )
        }
    };
    // The access lies in one page (device accesses are aligned), so each element's physical
    // address is the faulting IPA's page plus the element's page offset.
    let page = fault_ipa & !0xfff;
    let mut values = [0u128; 2];
    if !op.load {
        for (v, r) in values.iter_mut().zip(op.regs.iter()) {
            if let Some(r) = r {
                *v = read_xfer(vcpu, *r)?;
            }
        }
    }
    for (i, r) in op.regs.iter().enumerate() {
        let Some(r) = *r else { continue };
        let elem_va = va.wrapping_add(i as u64 * op.size as u64);
        let pa = page | (elem_va & 0xfff);
        let mut buf = [0u8; 16];
        let data = &mut buf[..op.size as usize];
        if op.load {
            device_read(bus, pa, data);
            let raw = u128::from_le_bytes(buf);
            write_xfer(vcpu, r, extend_loaded(raw, op.size, op.sign_extend))?;
        } else {
            data.copy_from_slice(&values[i].to_le_bytes()[..op.size as usize]);
            device_write(bus, pa, data);
        }
    }
    if let Some(nb) = new_base {
        write_base(vcpu, base, nb)?;
    }
    Ok(())
}

fn extend_loaded(raw: u128, size: u8, sign: bool) -> u128 {
    if !sign || size >= 16 {
        return raw;
    }
    let bits = size as u32 * 8;
    let shift = 64 - bits;
    (((raw as u64) << shift) as i64 >> shift) as u64 as u128
}

fn read_xfer(vcpu: &mut dyn Vcpu, r: XferReg) -> Result<u128, BackendError> {
    match r {
        XferReg::Gpr { n: 31, .. } => Ok(0),
        XferReg::Gpr { n, .. } => Ok(vcpu.get(Reg::X(n))? as u128),
        XferReg::Simd { n, .. } => vcpu.get_reg(Reg::V(n)),
    }
}

/// Writes a loaded value: a W destination zero-extends to 64 bits (sign-extending loads into
/// W registers keep only the low 32 bits); a SIMD scalar load zeroes the rest of the vector.
fn write_xfer(vcpu: &mut dyn Vcpu, r: XferReg, value: u128) -> Result<(), BackendError> {
    match r {
        XferReg::Gpr { n: 31, .. } => Ok(()),
        XferReg::Gpr { n, wide } => {
            let v = value as u64;
            vcpu.set(Reg::X(n), if wide { v } else { v & 0xffff_ffff })
        }
        XferReg::Simd { n, .. } => vcpu.set_reg(Reg::V(n), value),
    }
}

/// Device read; an address no device claims reads as zero (logged).
pub fn device_read(bus: &Bus, pa: u64, data: &mut [u8]) {
    if let Err(e) = bus.read(pa, data) {
        log::warn!("MMIO read of {} bytes: {e}; reading as zero", data.len());
        data.fill(0);
    }
}

/// Device write; a write no device claims is ignored (logged).
pub fn device_write(bus: &Bus, pa: u64, data: &[u8]) {
    if let Err(e) = bus.write(pa, data) {
        log::warn!("MMIO write of {} bytes: {e}; ignored", data.len());
    }
}

#[cfg(test)]
#[path = "emulate_tests.rs"]
mod tests;
