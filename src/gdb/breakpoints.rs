//! Breakpoint and watchpoint packets: Z0/z0 (software: BRK planted through the session), Z1/z1
//! (hardware breakpoints), Z2/Z3/Z4 (write/read/access watchpoints of any length). Running out
//! of hardware slots answers an error, so gdb reports it instead of silently not stopping.

use gdbstub::target::ext::breakpoints::{
    Breakpoints, HwBreakpoint, HwBreakpointOps, HwWatchpoint, HwWatchpointOps, SwBreakpoint,
    SwBreakpointOps, WatchKind as GdbWatchKind,
};
use gdbstub::target::{TargetError, TargetResult};

use crate::debug::hwplan::{Watch, WatchKind};

use super::{Debugger, EFAULT, EINVAL, ENOSPC};

/// The session's watch kind for gdb's.
pub fn watch_kind(kind: GdbWatchKind) -> WatchKind {
    match kind {
        GdbWatchKind::Write => WatchKind::Write,
        GdbWatchKind::Read => WatchKind::Read,
        GdbWatchKind::ReadWrite => WatchKind::Access,
    }
}

/// gdb's watch kind for the session's.
pub fn gdb_watch_kind(kind: WatchKind) -> GdbWatchKind {
    match kind {
        WatchKind::Write => GdbWatchKind::Write,
        WatchKind::Read => GdbWatchKind::Read,
        WatchKind::Access => GdbWatchKind::ReadWrite,
    }
}

/// A64 instructions are 4 bytes: the only breakpoint kind gdb sends for AArch64.
const A64_BP_KIND: usize = 4;

impl Breakpoints for Debugger {
    fn support_sw_breakpoint(&mut self) -> Option<SwBreakpointOps<'_, Self>> {
        Some(self)
    }

    fn support_hw_breakpoint(&mut self) -> Option<HwBreakpointOps<'_, Self>> {
        Some(self)
    }

    fn support_hw_watchpoint(&mut self) -> Option<HwWatchpointOps<'_, Self>> {
        Some(self)
    }
}

impl SwBreakpoint for Debugger {
    fn add_sw_breakpoint(&mut self, addr: u64, kind: usize) -> TargetResult<bool, Self> {
        if kind != A64_BP_KIND || addr % 4 != 0 {
            return Err(TargetError::Errno(EINVAL));
        }
        let vcpu = self.mem_vcpu;
        match self.session.insert_sw_breakpoint(vcpu, addr) {
            Ok(()) => Ok(true),
            Err(e) => {
                log::info!("gdb: software breakpoint at {addr:#x}: {e}");
                Err(TargetError::Errno(EFAULT))
            }
        }
    }

    fn remove_sw_breakpoint(&mut self, addr: u64, _kind: usize) -> TargetResult<bool, Self> {
        match self.session.remove_sw_breakpoint(addr) {
            Ok(removed) => Ok(removed),
            Err(e) => {
                log::warn!("gdb: removing the software breakpoint at {addr:#x}: {e}");
                Err(TargetError::Errno(EFAULT))
            }
        }
    }
}

impl HwBreakpoint for Debugger {
    fn add_hw_breakpoint(&mut self, addr: u64, kind: usize) -> TargetResult<bool, Self> {
        if kind != A64_BP_KIND || addr % 4 != 0 {
            return Err(TargetError::Errno(EINVAL));
        }
        self.session.insert_hw_breakpoint(addr).map_err(|e| {
            log::info!("gdb: hardware breakpoint at {addr:#x}: {e}");
            TargetError::Errno(ENOSPC)
        })?;
        Ok(true)
    }

    fn remove_hw_breakpoint(&mut self, addr: u64, _kind: usize) -> TargetResult<bool, Self> {
        Ok(self.session.remove_hw_breakpoint(addr))
    }
}

impl HwWatchpoint for Debugger {
    fn add_hw_watchpoint(
        &mut self,
        addr: u64,
        len: u64,
        kind: GdbWatchKind,
    ) -> TargetResult<bool, Self> {
        if len == 0 || addr.checked_add(len - 1).is_none() {
            return Err(TargetError::Errno(EINVAL));
        }
        let w = Watch {
            addr,
            len,
            kind: watch_kind(kind),
        };
        self.session.insert_watchpoint(w).map_err(|e| {
            log::info!("gdb: watchpoint {w:?}: {e}");
            TargetError::Errno(ENOSPC)
        })?;
        Ok(true)
    }

    fn remove_hw_watchpoint(
        &mut self,
        addr: u64,
        len: u64,
        kind: GdbWatchKind,
    ) -> TargetResult<bool, Self> {
        Ok(self.session.remove_watchpoint(Watch {
            addr,
            len,
            kind: watch_kind(kind),
        }))
    }
}
