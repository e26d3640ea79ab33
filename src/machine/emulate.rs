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

/// Why emulation failed. The vCPU's registers are unchanged when this is returned: every
/// register is read (and every register to be written is checked readable) before the device
/// is accessed, and the results are written last, the ones already written restored if a
/// later write fails (see `Writes`). A device access that happened before a failed write
/// is not undone (devices have side effects; the machine stops with a fault).
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

/// Register writes planned before any is made, applied together by [`Writes::commit`]:
/// (register, value before, value after), in the order planned; the last value planned for a
/// register wins.
#[derive(Default)]
struct Writes(Vec<(Reg, u128, u128)>);

impl Writes {
    /// The value `reg` will have once committed.
    fn get(&self, vcpu: &mut dyn Vcpu, reg: Reg) -> Result<u128, BackendError> {
        match self.0.iter().find(|(r, ..)| *r == reg) {
            Some(&(_, _, new)) => Ok(new),
            None => vcpu.get_reg(reg),
        }
    }

    /// Plans `reg = value` (reading its current value, so an inaccessible register fails now).
    fn set(&mut self, vcpu: &mut dyn Vcpu, reg: Reg, value: u128) -> Result<(), BackendError> {
        if let Some(w) = self.0.iter_mut().find(|(r, ..)| *r == reg) {
            w.2 = value;
            return Ok(());
        }
        let old = vcpu.get_reg(reg)?;
        self.0.push((reg, old, value));
        Ok(())
    }

    /// Plans a write of `reg` whose value is known only later (checks it is accessible now).
    fn reserve(&mut self, vcpu: &mut dyn Vcpu, reg: Reg) -> Result<(), BackendError> {
        let v = self.get(vcpu, reg)?;
        self.set(vcpu, reg, v)
    }

    /// Plans pc += 4 with PSTATE.BTYPE and PSTATE.SS cleared (see [`advance_pc`]).
    fn advance_pc(&mut self, vcpu: &mut dyn Vcpu) -> Result<(), BackendError> {
        let pc = self.get(vcpu, Reg::Pc)? as u64;
        let ps = self.get(vcpu, Reg::Pstate)? as u64;
        self.set(vcpu, Reg::Pc, pc.wrapping_add(4) as u128)?;
        self.set(
            vcpu,
            Reg::Pstate,
            (ps & !(pstate::BTYPE_MASK | pstate::SS)) as u128,
        )
    }

    /// Makes the planned writes; if one fails, restores the registers already written (best
    /// effort: a restore that fails too is logged) and returns the failure.
    fn commit(self, vcpu: &mut dyn Vcpu) -> Result<(), BackendError> {
        let changed: Vec<_> = self
            .0
            .into_iter()
            .filter(|(_, old, new)| old != new)
            .collect();
        for (i, &(reg, _, new)) in changed.iter().enumerate() {
            if let Err(e) = vcpu.set_reg(reg, new) {
                for &(done, old, _) in changed[..i].iter().rev() {
                    if let Err(r) = vcpu.set_reg(done, old) {
                        log::error!("restoring {done:?} after a failed emulation: {r}");
                    }
                }
                return Err(e);
            }
        }
        Ok(())
    }
}

/// Advances the PC past an instruction emulated outside the guest: pc += 4, PSTATE.BTYPE and
/// PSTATE.SS cleared (as KVM's `kvm_skip_instr`, arch/arm64/kvm/hyp/include/hyp/adjust_pc.h).
/// Every emulation path uses this rule and nothing else writes the PC to emulate.
///
/// It also moves the VMM's step state machine to active-pending: the emulated instruction is
/// a completed step, reported without re-entering the guest (real KVM ignores the PSTATE.SS
/// write above; see `debug::step`). On error the registers are unchanged.
pub fn advance_pc(vcpu: &mut dyn Vcpu, step: &mut StepMachine) -> Result<(), BackendError> {
    let mut w = Writes::default();
    w.advance_pc(vcpu)?;
    w.commit(vcpu)?;
    step.pc_advanced_by_vmm();
    Ok(())
}

/// Performs a DAIF access at the PC for the guest (`debug::irqmask::Plan::Emulate`): writes
/// the resulting PSTATE and, for `MRS`, the destination register, then advances the PC. On
/// error the registers are unchanged.
pub fn emulate_daif_access(
    vcpu: &mut dyn Vcpu,
    new_pstate: u64,
    xt: Option<(u8, u64)>,
    step: &mut StepMachine,
) -> Result<(), BackendError> {
    let mut w = Writes::default();
    if let Some((rt, value)) = xt {
        w.set(vcpu, Reg::X(rt), value as u128)?;
    }
    w.set(vcpu, Reg::Pstate, new_pstate as u128)?;
    w.advance_pc(vcpu)?;
    w.commit(vcpu)?;
    step.pc_advanced_by_vmm();
    Ok(())
}

/// Emulates the load/store at the vCPU's PC whose access to `fault_ipa` faulted without a
/// valid syndrome, on the device bus, then advances the PC. See [`EmulateError`] for what an
/// error leaves behind.
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
    let mut w = Writes::default();
    let access = plan(vcpu, &op, fault_ipa, &mut w)?;
    w.advance_pc(vcpu)?;
    // Nothing has changed so far; from here the device is accessed.
    let loaded = access.perform(bus, &op);
    if op.load {
        for (r, v) in op.regs.iter().zip(loaded) {
            if let Some(r) = *r {
                plan_xfer(vcpu, &mut w, r, extend_loaded(v, op.size, op.sign_extend))?;
            }
        }
    }
    if let Some((reg, value)) = access.new_base {
        w.set(vcpu, reg, value as u128)?;
    }
    w.commit(vcpu)?;
    step.pc_advanced_by_vmm();
    Ok(())
}

/// One emulated access, planned: where each element goes and what a store writes.
struct Access {
    /// Physical address of element 0's page.
    page: u64,
    va: u64,
    /// Values stored (registers read before the access).
    values: [u128; 2],
    /// The base register's writeback, if any: (the register, 31 resolved to SP), new value.
    new_base: Option<(Reg, u64)>,
}

impl Access {
    /// Moves the data; returns the loaded values (zero for a store).
    fn perform(&self, bus: &Bus, op: &MemOp) -> [u128; 2] {
        let mut loaded = [0u128; 2];
        for (i, r) in op.regs.iter().enumerate() {
            if r.is_none() {
                continue;
            }
            let elem_va = self.va.wrapping_add(i as u64 * op.size as u64);
            let pa = self.page | (elem_va & 0xfff);
            let mut buf = [0u8; 16];
            let data = &mut buf[..op.size as usize];
            if op.load {
                device_read(bus, pa, data);
                loaded[i] = u128::from_le_bytes(buf);
            } else {
                data.copy_from_slice(&self.values[i].to_le_bytes()[..op.size as usize]);
                device_write(bus, pa, data);
            }
        }
        loaded
    }
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

/// The register a base field names (31 = the SP in use).
fn base_reg(vcpu: &mut dyn Vcpu, n: u8) -> Result<Reg, BackendError> {
    if n == 31 {
        sp_reg(vcpu)
    } else {
        Ok(Reg::X(n))
    }
}

fn read_base(vcpu: &mut dyn Vcpu, n: u8) -> Result<u64, BackendError> {
    let reg = base_reg(vcpu, n)?;
    vcpu.get(reg)
}

/// Plans `op` without any effect: computes the address, reads what a store writes, and
/// reserves every register the access will write (destinations, base writeback).
fn plan(
    vcpu: &mut dyn Vcpu,
    op: &MemOp,
    fault_ipa: u64,
    w: &mut Writes,
) -> Result<Access, BackendError> {
    let (base, va, writeback) = match op.addressing {
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
    let mut values = [0u128; 2];
    for (v, r) in values.iter_mut().zip(op.regs.iter()) {
        match (*r, op.load) {
            (Some(r), false) => *v = read_xfer(vcpu, r)?,
            (Some(r), true) => {
                if let Some(reg) = xfer_reg(r) {
                    w.reserve(vcpu, reg)?;
                }
            }
            (None, _) => {}
        }
    }
    let new_base = match writeback {
        Some(nb) => {
            let reg = base_reg(vcpu, base)?;
            w.reserve(vcpu, reg)?;
            Some((reg, nb))
        }
        None => None,
    };
    // The access lies in one page (device accesses are aligned), so each element's physical
    // address is the faulting IPA's page plus the element's page offset.
    Ok(Access {
        page: fault_ipa & !0xfff,
        va,
        values,
        new_base,
    })
}

fn extend_loaded(raw: u128, size: u8, sign: bool) -> u128 {
    if !sign || size >= 16 {
        return raw;
    }
    let bits = size as u32 * 8;
    let shift = 64 - bits;
    (((raw as u64) << shift) as i64 >> shift) as u64 as u128
}

/// The register a transfer names; `None` for XZR.
fn xfer_reg(r: XferReg) -> Option<Reg> {
    match r {
        XferReg::Gpr { n: 31, .. } => None,
        XferReg::Gpr { n, .. } => Some(Reg::X(n)),
        XferReg::Simd { n, .. } => Some(Reg::V(n)),
    }
}

fn read_xfer(vcpu: &mut dyn Vcpu, r: XferReg) -> Result<u128, BackendError> {
    match r {
        XferReg::Gpr { n: 31, .. } => Ok(0),
        XferReg::Gpr { n, .. } => Ok(vcpu.get(Reg::X(n))? as u128),
        XferReg::Simd { n, .. } => vcpu.get_reg(Reg::V(n)),
    }
}

/// Plans writing a loaded value: a W destination zero-extends to 64 bits (sign-extending
/// loads into W registers keep only the low 32 bits); a SIMD scalar load zeroes the rest of
/// the vector; XZR discards it.
fn plan_xfer(
    vcpu: &mut dyn Vcpu,
    w: &mut Writes,
    r: XferReg,
    value: u128,
) -> Result<(), BackendError> {
    match r {
        XferReg::Gpr { n: 31, .. } => Ok(()),
        XferReg::Gpr { n, wide } => {
            let v = value as u64;
            let v = if wide { v } else { v & 0xffff_ffff };
            w.set(vcpu, Reg::X(n), v as u128)
        }
        XferReg::Simd { n, .. } => w.set(vcpu, Reg::V(n), value),
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
