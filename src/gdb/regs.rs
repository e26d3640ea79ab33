//! Registers: the bulk `g`/`G` layout (gdbstub_arch's `AArch64CoreRegs`) and single-register
//! `p`/`P` access, including system registers (`AArch64RegId::System(enc)`, where `enc` is the
//! MRS encoding, the same as [`SysReg`]'s).
//!
//! The stack pointer gdb sees is the one in use: SP_EL1 when PSTATE.M says EL1h, else SP_EL0
//! (Arm ARM D1.5.2 "The stack pointer registers").
//!
//! FPSR/FPCR order: gdb's aarch64 feature numbers fpsr 66 and fpcr 67, so a `g` packet carries
//! fpsr first. gdbstub_arch 0.3.3 serialises its `fpcr` field first (then `fpsr`), so the
//! value gdb calls fpsr travels in the field named `fpcr`. Checked against gdb-multiarch 13
//! (`p $fpsr` / `p $fpcr` after writing distinct values, tests/gdb_session.rs).

use gdbstub::common::Tid;
use gdbstub::target::ext::base::single_register_access::SingleRegisterAccess;
use gdbstub::target::{TargetError, TargetResult};
use gdbstub_arch::aarch64::reg::id::AArch64RegId;
use gdbstub_arch::aarch64::reg::AArch64CoreRegs;

use crate::a64::{pstate, sys, Reg, SysReg};

use super::arch::GdbReg;
use super::{Debugger, GdbError};

/// Registers read for a `g` packet, in this order.
fn core_list() -> Vec<Reg> {
    let mut v: Vec<Reg> = (0..=30).map(Reg::X).collect();
    v.extend([Reg::Pc, Reg::Pstate, Reg::Sp, Reg::SpEl1]);
    v.extend((0..32).map(Reg::V));
    v.extend([Reg::Fpsr, Reg::Fpcr]);
    v
}

/// SP_EL1's MRS encoding (S3_4_C4_C1_0; Arm ARM D19.2 "SP_EL1", accessible from EL2).
pub const SP_EL1: SysReg = SysReg::new(3, 4, 4, 1, 0);

/// The backend register a gdb register id names (`sp` resolved through `pstate_value`).
pub fn backend_reg(id: GdbReg, pstate_value: u64) -> Option<Reg> {
    let id = match id {
        GdbReg::Fpsr => return Some(Reg::Fpsr),
        GdbReg::Fpcr => return Some(Reg::Fpcr),
        GdbReg::Other(id) => id,
    };
    Some(match id {
        AArch64RegId::X(n) if n <= 30 => Reg::X(n),
        AArch64RegId::Sp => active_sp(pstate_value),
        AArch64RegId::Pc => Reg::Pc,
        AArch64RegId::Pstate => Reg::Pstate,
        AArch64RegId::V(n) if n <= 31 => Reg::V(n),
        AArch64RegId::System(enc) => sys_reg(SysReg(enc)),
        _ => return None,
    })
}

/// The backend register for a system register encoding (the banked EL1 registers KVM keeps
/// among the core registers are named by their MRS encodings too).
pub fn sys_reg(r: SysReg) -> Reg {
    match r {
        r if r == sys::ELR_EL1 => Reg::ElrEl1,
        r if r == sys::SPSR_EL1 => Reg::SpsrEl1,
        r if r == sys::SP_EL0 => Reg::Sp,
        r if r == SP_EL1 => Reg::SpEl1,
        r => Reg::Sys(r),
    }
}

/// The stack pointer in use for PSTATE value `ps`.
pub fn active_sp(ps: u64) -> Reg {
    if pstate::uses_sp_elx(ps) {
        Reg::SpEl1
    } else {
        Reg::Sp
    }
}

/// Size in bytes gdb expects for a register.
fn size_of(id: GdbReg) -> usize {
    match id {
        GdbReg::Fpsr | GdbReg::Fpcr => 4,
        GdbReg::Other(id) => id.len().unwrap_or(8),
    }
}

impl Debugger {
    pub(super) fn read_core(&mut self, vcpu: usize) -> Result<AArch64CoreRegs, GdbError> {
        let list = core_list();
        let vals = self.session.read_regs(vcpu, &list)?;
        let get = |r: Reg| {
            list.iter()
                .position(|x| *x == r)
                .map(|i| vals[i])
                .unwrap_or(0)
        };
        let mut regs = AArch64CoreRegs::default();
        for (i, x) in regs.x.iter_mut().enumerate() {
            *x = get(Reg::X(i as u8)) as u64;
        }
        let ps = get(Reg::Pstate) as u64;
        regs.pc = get(Reg::Pc) as u64;
        regs.cpsr = ps as u32;
        regs.sp = get(active_sp(ps)) as u64;
        for (i, v) in regs.v.iter_mut().enumerate() {
            *v = get(Reg::V(i as u8));
        }
        // Swapped on purpose: see the module docs (gdbstub_arch writes `fpcr` where gdb
        // expects fpsr).
        regs.fpcr = get(Reg::Fpsr) as u32;
        regs.fpsr = get(Reg::Fpcr) as u32;
        Ok(regs)
    }

    /// Writes the registers whose value differs from what the vCPU holds.
    pub(super) fn write_core(
        &mut self,
        vcpu: usize,
        new: &AArch64CoreRegs,
    ) -> Result<(), GdbError> {
        let old = self.read_core(vcpu)?;
        let ps = old.cpsr as u64;
        let mut writes: Vec<(Reg, u128)> = Vec::new();
        if old.cpsr != new.cpsr {
            // First: the backend may refuse the mode (KVM: EINVAL), and then nothing changes.
            // PSTATE is 64-bit in the backend; gdb's cpsr is its low 32 bits.
            writes.push((Reg::Pstate, new.cpsr as u128));
        }
        for i in 0..31 {
            if old.x[i] != new.x[i] {
                writes.push((Reg::X(i as u8), new.x[i] as u128));
            }
        }
        if old.sp != new.sp {
            writes.push((active_sp(ps), new.sp as u128));
        }
        if old.pc != new.pc {
            writes.push((Reg::Pc, new.pc as u128));
        }
        for i in 0..32 {
            if old.v[i] != new.v[i] {
                writes.push((Reg::V(i as u8), new.v[i]));
            }
        }
        if old.fpcr != new.fpcr {
            writes.push((Reg::Fpsr, new.fpcr as u128));
        }
        if old.fpsr != new.fpsr {
            writes.push((Reg::Fpcr, new.fpsr as u128));
        }
        for (r, v) in writes {
            self.session.write_reg(vcpu, r, v)?;
        }
        Ok(())
    }

    fn reg_for(&mut self, vcpu: usize, id: GdbReg) -> Result<Option<Reg>, GdbError> {
        let ps = if matches!(id, GdbReg::Other(AArch64RegId::Sp)) {
            self.session.read_reg(vcpu, Reg::Pstate)? as u64
        } else {
            0
        };
        Ok(backend_reg(id, ps))
    }
}

impl SingleRegisterAccess<Tid> for Debugger {
    fn read_register(&mut self, tid: Tid, id: GdbReg, buf: &mut [u8]) -> TargetResult<usize, Self> {
        let vcpu = self.vcpu_or_err(tid)?;
        let Some(reg) = self.reg_for(vcpu, id).map_err(TargetError::Fatal)? else {
            return Ok(0);
        };
        // A register the backend cannot read is "unavailable" to gdb, not an error.
        let Ok(value) = self.session.read_reg(vcpu, reg) else {
            return Ok(0);
        };
        let n = size_of(id).min(buf.len());
        buf[..n].copy_from_slice(&value.to_le_bytes()[..n]);
        Ok(n)
    }

    fn write_register(&mut self, tid: Tid, id: GdbReg, val: &[u8]) -> TargetResult<(), Self> {
        let vcpu = self.vcpu_or_err(tid)?;
        let Some(reg) = self.reg_for(vcpu, id).map_err(TargetError::Fatal)? else {
            return Err(TargetError::Errno(super::EINVAL));
        };
        // The value must be the register's size: a shorter one is a malformed packet, not a
        // value to zero-extend.
        if val.len() != size_of(id) {
            return Err(TargetError::Errno(super::EINVAL));
        }
        let mut bytes = [0u8; 16];
        bytes[..val.len()].copy_from_slice(val);
        self.session
            .write_reg(vcpu, reg, u128::from_le_bytes(bytes))
            .map_err(|_| TargetError::Errno(super::EINVAL))
    }
}
