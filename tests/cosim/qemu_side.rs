//! QEMU's side of the lockstep: its gdb stub driven through the test RSP client.

use std::path::Path;

use crate::common::qemu::Qemu;
use crate::common::rsp::Rsp;

use super::lockstep::Regs;

/// QEMU aarch64 gdb register numbers (gdb-xml/aarch64-fpu.xml follows the 34 core ones).
const GDB_V0: u32 = 34;

pub struct QemuSide {
    pub rsp: Rsp,
    /// gdb register numbers of ESR_EL1, FAR_EL1, ELR_EL1, SPSR_EL1 (QEMU's generated
    /// system-registers.xml).
    sysregs: [u32; 4],
    _qemu: Qemu,
}

pub const SYNDROME_NAMES: [&str; 4] = ["ESR_EL1", "FAR_EL1", "ELR_EL1", "SPSR_EL1"];

/// The `regnum` of `<reg name="NAME" ... regnum="N"` in a gdb target description.
fn find_regnum(xml: &str, name: &str) -> Option<u32> {
    let at = xml.find(&format!("<reg name=\"{name}\""))?;
    let tag = &xml[at..at + xml[at..].find('>')?];
    let n = tag.split("regnum=\"").nth(1)?.split('"').next()?;
    n.parse().ok()
}

impl QemuSide {
    /// Starts QEMU and connects; retried twice, since the free port picked for the stub
    /// can be taken by another process before QEMU binds it.
    pub fn start(image: &Path) -> Result<Self, String> {
        let mut last = String::new();
        for _ in 0..3 {
            let mut qemu = Qemu::start_halted(image).map_err(|e| format!("starting QEMU: {e}"))?;
            match qemu.connect() {
                Ok(mut rsp) => {
                    let xml = rsp
                        .qxfer_read("features", "system-registers.xml")
                        .map_err(|e| format!("QEMU system register description: {e}"))?;
                    let xml = String::from_utf8_lossy(&xml);
                    let mut sysregs = [0u32; 4];
                    for (slot, name) in sysregs.iter_mut().zip(SYNDROME_NAMES) {
                        *slot = find_regnum(&xml, name)
                            .ok_or_else(|| format!("QEMU describes no {name}"))?;
                    }
                    return Ok(QemuSide {
                        rsp,
                        sysregs,
                        _qemu: qemu,
                    });
                }
                Err(e) => last = format!("QEMU gdb stub: {e}"),
            }
        }
        Err(last)
    }

    pub fn regs(&mut self) -> Result<Regs, String> {
        let g = self.rsp.read_registers().map_err(|e| e.to_string())?;
        if g.len() < 268 {
            return Err(format!("QEMU `g` returned {} bytes, expected 268", g.len()));
        }
        let at = |n: usize| u64::from_le_bytes(g[8 * n..8 * n + 8].try_into().unwrap());
        Ok(Regs {
            x: std::array::from_fn(at),
            sp: at(31),
            pc: at(32),
            pstate: u32::from_le_bytes(g[264..268].try_into().unwrap()) as u64,
        })
    }

    pub fn v(&mut self, n: u8) -> Result<u128, String> {
        let b = self
            .rsp
            .read_register(GDB_V0 + n as u32)
            .map_err(|e| e.to_string())?;
        let b: [u8; 16] = b
            .try_into()
            .map_err(|b: Vec<u8>| format!("V{n}: {} bytes", b.len()))?;
        Ok(u128::from_le_bytes(b))
    }

    /// FPSR (gdb register 66, after V0-V31; 32 bits).
    pub fn fpsr(&mut self) -> Result<u64, String> {
        let b = self
            .rsp
            .read_register(GDB_V0 + 32)
            .map_err(|e| e.to_string())?;
        let mut raw = [0u8; 8];
        raw[..b.len().min(8)].copy_from_slice(&b[..b.len().min(8)]);
        Ok(u64::from_le_bytes(raw))
    }

    /// ESR_EL1, FAR_EL1, ELR_EL1, SPSR_EL1.
    pub fn syndrome(&mut self) -> Result<[u64; 4], String> {
        let mut out = [0u64; 4];
        for (slot, n) in out.iter_mut().zip(self.sysregs) {
            let b = self.rsp.read_register(n).map_err(|e| e.to_string())?;
            let mut raw = [0u8; 8];
            raw[..b.len().min(8)].copy_from_slice(&b[..b.len().min(8)]);
            *slot = u64::from_le_bytes(raw);
        }
        Ok(out)
    }

    pub fn step(&mut self) -> Result<(), String> {
        match self.rsp.step().map_err(|e| format!("QEMU step: {e}"))? {
            crate::common::rsp::Stop::Signal { sig: 5, .. } => Ok(()),
            other => Err(format!("QEMU stopped with {other:?}")),
        }
    }
}
