//! Register access for the model `Vcpu` (`get_reg`/`set_reg`/`reg_list`), with KVM's view:
//! `Sp` is SP_EL0, PSTATE is the guest's own (its SS bit is separate from the VMM's step).
//!
//! Free functions over the interpreter (`cpu`); `vcpu.rs` calls them, and this module does not
//! depend on it.

use crate::a64::{Reg, SysReg};
use crate::backend::{BackendError, Result};

use super::cpu::{state, sysregs, Cpu};

/// Every register `get_reg` can read.
pub fn list() -> Vec<Reg> {
    let mut v: Vec<Reg> = (0..=30).map(Reg::X).collect();
    v.extend(Reg::NAMED_CORE);
    v.extend((0..32).map(Reg::V));
    v.extend([Reg::Fpsr, Reg::Fpcr]);
    v.extend(sysregs::all_readable().into_iter().map(Reg::Sys));
    v
}

fn listed(r: SysReg) -> bool {
    sysregs::LISTED.contains(&r) || sysregs::all_readable().contains(&r)
}

fn reg_error(index: usize, reg: Reg, reason: &str) -> BackendError {
    BackendError::Register {
        reg,
        reason: format!("vCPU {index}: {reason}"),
    }
}

/// `get_reg` of vCPU `index`, whose interpreter is `cpu`.
pub(super) fn read(cpu: &Cpu, index: usize, reg: Reg) -> Result<u128> {
    if !reg.is_valid() {
        return Err(reg_error(index, reg, "register number out of range"));
    }
    let st = &cpu.st;
    let v = match reg {
        Reg::X(n) => st.x[n as usize],
        Reg::Sp => st.sp_el0,
        Reg::Pc => st.pc,
        Reg::Pstate => st.pstate,
        Reg::SpEl1 => st.sp_el1,
        Reg::ElrEl1 => st.sys.elr,
        Reg::SpsrEl1 => st.sys.spsr,
        Reg::V(n) => return Ok(st.v[n as usize]),
        Reg::Fpsr => st.fpsr,
        Reg::Fpcr => st.fpcr,
        Reg::Sys(r) => {
            if !listed(r) {
                return Err(reg_error(index, reg, "not implemented by the model"));
            }
            cpu.read_sysreg(r)
                .ok_or_else(|| reg_error(index, reg, "not readable"))?
        }
    };
    Ok(v as u128)
}

/// `set_reg` of vCPU `index`, whose interpreter is `cpu`.
pub(super) fn write(cpu: &mut Cpu, index: usize, reg: Reg, value: u128) -> Result<()> {
    if !reg.is_valid() {
        return Err(reg_error(index, reg, "register number out of range"));
    }
    let v = value as u64;
    let st = &mut cpu.st;
    match reg {
        Reg::X(n) => st.x[n as usize] = v,
        Reg::Sp => st.sp_el0 = v,
        Reg::Pc => st.pc = v,
        // The model has no EL2 and no AArch32: KVM refuses such a PSTATE with EINVAL.
        Reg::Pstate if !crate::a64::pstate::mode_allowed(v, false, false) => {
            return Err(reg_error(
                index,
                reg,
                &format!("PSTATE {v:#x}: a mode this vCPU cannot be in (EINVAL on KVM)"),
            ))
        }
        Reg::Pstate => st.pstate = v,
        Reg::SpEl1 => st.sp_el1 = v,
        Reg::ElrEl1 => st.sys.elr = v,
        Reg::SpsrEl1 => st.sys.spsr = v,
        Reg::V(n) => st.v[n as usize] = value,
        Reg::Fpsr => st.fpsr = v & state::FPSR_MASK,
        Reg::Fpcr => st.fpcr = v & state::FPCR_MASK,
        Reg::Sys(crate::a64::sys::MPIDR_EL1) => st.sys.mpidr = v,
        Reg::Sys(r) => {
            if cpu.write_sysreg(r, v).is_none() {
                return Err(reg_error(index, reg, "not writable in the model"));
            }
        }
    }
    Ok(())
}
