//! `Session::reset`: the machine built again from scratch under the same debugger session.

use super::*;

/// What a reset carried over and what it could not.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ResetReport {
    /// The boot vCPU's PC after the reset (the firmware's entry point).
    pub entry: u64,
    /// Software breakpoints, hardware breakpoints and watchpoints set again.
    pub restored: usize,
    /// Requests that could not be set again, each with the reason.
    pub dropped: Vec<String>,
}

impl Session {
    /// Resets the machine, like a power cycle: a new VM with every vCPU at its reset state
    /// (vCPU 0 at the firmware's entry, the others powered off), new RAM with the firmware and
    /// the device tree loaded again, the interrupt controller, timers and devices at reset.
    /// The UART output continues on the same sink. Breakpoints and watchpoints are set again
    /// at the same virtual addresses (software ones translated by vCPU 0 at reset, so with
    /// the MMU off; one that cannot be planted is dropped and reported), and so is the vector
    /// catch. The MMIO access setting is kept. Every vCPU is stopped afterwards.
    pub fn reset(&mut self) -> Result<ResetReport> {
        let machine = Machine::build(self.spec.clone())?;
        let (sw, hw, watches) = self.state.requests();
        let catch = self.state.catch();
        let mmio_access = self.mmio_access;
        let fresh = Session::new(machine)?;
        // The old session's threads stop and its VM is released here.
        drop(std::mem::replace(self, fresh));
        self.mmio_access = mmio_access;
        let mut report = ResetReport {
            entry: self.read_reg(0, Reg::Pc)? as u64,
            ..ResetReport::default()
        };
        for va in sw {
            let r = self.insert_sw_breakpoint(0, va).map_err(|e| e.to_string());
            report.note(r, || format!("software breakpoint at {va:#x}"));
        }
        for va in hw {
            let r = self.insert_hw_breakpoint(va).map_err(|e| e.to_string());
            report.note(r, || format!("hardware breakpoint at {va:#x}"));
        }
        for w in watches {
            let r = self.insert_watchpoint(w).map_err(|e| e.to_string());
            report.note(r, || {
                format!("watchpoint at {:#x} ({} bytes)", w.addr, w.len)
            });
        }
        if !catch.is_empty() {
            let r = self.state.set_catch(catch).map_err(|e| e.to_string());
            report.note(r, || format!("vector catch ({})", catch.describe()));
        }
        Ok(report)
    }
}

impl ResetReport {
    fn note(&mut self, r: std::result::Result<(), String>, what: impl FnOnce() -> String) {
        match r {
            Ok(()) => self.restored += 1,
            Err(e) => {
                let line = format!("{}: {e}", what());
                log::warn!("reset: dropped {line}");
                self.dropped.push(line);
            }
        }
    }
}
