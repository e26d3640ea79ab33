//! target.xml (qXfer:features:read), generated from the registers the backend reports, so gdb
//! shows exactly the system registers that can be read (`info registers system`,
//! `p $sctlr_el1`).
//!
//! Features: `org.gnu.gdb.aarch64.core` (x0-x30, sp, pc, cpsr; regnums 0-33) and
//! `org.gnu.gdb.aarch64.fpu` (v0-v31, fpsr, fpcr; regnums 34-67) as gdb's aarch64 target
//! requires them (gdb/features/aarch64-core.xml, aarch64-fpu.xml), then
//! `org.kvmdbg.aarch64.sysregs` with one 64-bit register per system register, numbered by
//! its MRS encoding (op0<<14 | op1<<11 | CRn<<7 | CRm<<3 | op2, always >= 0x8000 since op0 is
//! 2 or 3), which gdbstub_arch decodes as `AArch64RegId::System`.

use std::fmt::Write;

use gdbstub::target::ext::target_description_xml_override::TargetDescriptionXmlOverride;
use gdbstub::target::TargetResult;

use crate::a64::{sys, Reg, SysReg};

use super::regs::SP_EL1;
use super::Debugger;

/// The vector register type gdb's aarch64 support expects (named `aarch64v`).
const VECTOR_TYPES: &str = concat!(
    r#"<vector id="v2d" type="ieee_double" count="2"/>"#,
    r#"<vector id="v2u" type="uint64" count="2"/>"#,
    r#"<vector id="v2i" type="int64" count="2"/>"#,
    r#"<vector id="v4f" type="ieee_single" count="4"/>"#,
    r#"<vector id="v4u" type="uint32" count="4"/>"#,
    r#"<vector id="v4i" type="int32" count="4"/>"#,
    r#"<vector id="v8u" type="uint16" count="8"/>"#,
    r#"<vector id="v8i" type="int16" count="8"/>"#,
    r#"<vector id="v16u" type="uint8" count="16"/>"#,
    r#"<vector id="v16i" type="int8" count="16"/>"#,
    r#"<vector id="v1u" type="uint128" count="1"/>"#,
    r#"<vector id="v1i" type="int128" count="1"/>"#,
    r#"<union id="vnd"><field name="f" type="v2d"/><field name="u" type="v2u"/><field name="s" type="v2i"/></union>"#,
    r#"<union id="vns"><field name="f" type="v4f"/><field name="u" type="v4u"/><field name="s" type="v4i"/></union>"#,
    r#"<union id="vnh"><field name="u" type="v8u"/><field name="s" type="v8i"/></union>"#,
    r#"<union id="vnb"><field name="u" type="v16u"/><field name="s" type="v16i"/></union>"#,
    r#"<union id="vnq"><field name="u" type="v1u"/><field name="s" type="v1i"/></union>"#,
    r#"<union id="aarch64v"><field name="d" type="vnd"/><field name="s" type="vns"/>"#,
    r#"<field name="h" type="vnh"/><field name="b" type="vnb"/><field name="q" type="vnq"/></union>"#,
);

/// The system registers gdb gets, in encoding order: every `Reg::Sys` the backend lists, plus
/// the banked EL1 registers the backends keep as core registers.
pub fn system_registers(list: &[Reg]) -> Vec<SysReg> {
    let mut out: Vec<SysReg> = list
        .iter()
        .filter_map(|r| match r {
            Reg::Sys(s) if s.op0() >= 2 => Some(*s),
            Reg::ElrEl1 => Some(sys::ELR_EL1),
            Reg::SpsrEl1 => Some(sys::SPSR_EL1),
            Reg::Sp => Some(sys::SP_EL0),
            Reg::SpEl1 => Some(SP_EL1),
            _ => None,
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

/// The name gdb shows for a system register.
pub fn reg_name(r: SysReg) -> String {
    if r == SP_EL1 {
        "sp_el1".into()
    } else {
        r.name()
    }
}

/// The whole target.xml for a vCPU with register list `list`.
pub fn build(list: &[Reg]) -> String {
    let mut x = String::with_capacity(16 * 1024);
    x.push_str(r#"<?xml version="1.0"?><!DOCTYPE target SYSTEM "gdb-target.dtd">"#);
    x.push_str(r#"<target version="1.0"><architecture>aarch64</architecture>"#);
    x.push_str(r#"<feature name="org.gnu.gdb.aarch64.core">"#);
    for n in 0..31 {
        let _ = write!(x, r#"<reg name="x{n}" bitsize="64" regnum="{n}"/>"#);
    }
    x.push_str(r#"<reg name="sp" bitsize="64" type="data_ptr" regnum="31"/>"#);
    x.push_str(r#"<reg name="pc" bitsize="64" type="code_ptr" regnum="32"/>"#);
    x.push_str(r#"<reg name="cpsr" bitsize="32" regnum="33"/>"#);
    x.push_str("</feature>");
    x.push_str(r#"<feature name="org.gnu.gdb.aarch64.fpu">"#);
    x.push_str(VECTOR_TYPES);
    for n in 0..32 {
        let _ = write!(
            x,
            r#"<reg name="v{n}" bitsize="128" type="aarch64v" regnum="{}"/>"#,
            34 + n
        );
    }
    x.push_str(r#"<reg name="fpsr" bitsize="32" regnum="66"/>"#);
    x.push_str(r#"<reg name="fpcr" bitsize="32" regnum="67"/>"#);
    x.push_str("</feature>");
    x.push_str(r#"<feature name="org.kvmdbg.aarch64.sysregs">"#);
    for r in system_registers(list) {
        let _ = write!(
            x,
            r#"<reg name="{}" bitsize="64" regnum="{}" group="system" save-restore="no"/>"#,
            reg_name(r),
            r.0
        );
    }
    x.push_str("</feature></target>");
    x
}

impl TargetDescriptionXmlOverride for Debugger {
    fn target_description_xml(
        &self,
        annex: &[u8],
        offset: u64,
        length: usize,
        buf: &mut [u8],
    ) -> TargetResult<usize, Self> {
        if annex != b"target.xml" {
            return Err(gdbstub::target::TargetError::Errno(super::EINVAL));
        }
        Ok(super::xfer(self.target_xml.as_bytes(), offset, length, buf))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_registers_are_numbered_by_encoding_and_named() {
        let list = vec![
            Reg::X(0),
            Reg::Sys(sys::TTBR0_EL1),
            Reg::Sys(sys::SCTLR_EL1),
            Reg::ElrEl1,
            Reg::SpEl1,
        ];
        let xml = build(&list);
        assert!(xml.contains(&format!(
            r#"name="ttbr0_el1" bitsize="64" regnum="{}""#,
            0xc100
        )));
        assert!(xml.contains(&format!(
            r#"name="sctlr_el1" bitsize="64" regnum="{}""#,
            0xc080
        )));
        assert!(xml.contains(r#"name="elr_el1""#));
        assert!(xml.contains(&format!(r#"regnum="{}""#, SP_EL1.0)));
        assert!(!xml.contains("tcr_el1"), "only listed registers");
        assert!(xml.find(r#"name="fpsr""#) < xml.find(r#"name="fpcr""#));
    }
}
