//! The gdb (and lldb) remote stub: the GDB remote serial protocol over a [`Session`].
//!
//! Owns the protocol side of debugging: threads (vCPU i is thread i + 1), resume actions,
//! register layout and the target description, memory access errors, breakpoint packets,
//! monitor commands, the event loop and the listening socket. Structured like gdbstub's
//! `armv4t` example: one file per gdb extension, one function turning session stops into stop
//! reasons (`stop`).
//!
//! Depends on `machine::session` (the debugging API it drives), the value types of
//! `machine::event` (`Resume`, `StopReason`, `Outcome`), `machine::layout` (the memory map it
//! reports) and `MachineError`; on value types of `debug` (`hwplan` watch kinds,
//! `policy::StopKind`, `translate` errors) and on `a64` (registers, walk traces). Must never
//! touch a vCPU handle, `machine::control` or a backend type.

mod arch;
mod base;
mod breakpoints;
mod conn;
mod event_loop;
mod guard;
mod link;
mod mem_packets;
mod monitor;
mod regs;
mod resume;
mod reverse;
pub mod server;
mod stop;
mod target_xml;

use std::num::NonZeroUsize;

use gdbstub::common::Tid;
use gdbstub::target::ext::base::BaseOps;
use gdbstub::target::{Target, TargetError};

use crate::machine::session::{Action, Session};
use crate::machine::{MachineError, Outcome};

pub use event_loop::stub_rebuilds;
pub use server::{serve, serve_stream, Listen, ServeConfig};

/// Errors of the gdb layer.
#[derive(Debug, thiserror::Error)]
pub enum GdbError {
    #[error("gdb stub: {0}")]
    Machine(#[from] MachineError),
    #[error("gdb stub: cannot listen on {addr}: {source}")]
    Listen {
        addr: String,
        source: std::io::Error,
    },
    #[error("gdb stub: accepting a connection: {0}")]
    Accept(std::io::Error),
    #[error("gdb stub: waiting for events: {0}")]
    Poll(nix::Error),
    #[error("gdb stub: protocol: {0}")]
    Protocol(String),
}

impl GdbError {
    /// True for errors of the user's input (a listen address that cannot be used).
    pub fn is_bad_input(&self) -> bool {
        matches!(self, GdbError::Listen { .. })
    }
}

/// EFAULT: the errno gdb gets for memory it cannot access (`E14`).
pub(crate) const EFAULT: u8 = 14;
/// ENOSPC: no hardware slot left for a breakpoint or watchpoint.
pub(crate) const ENOSPC: u8 = 28;
/// EINVAL: a request gdb should not have made (bad thread, bad length).
pub(crate) const EINVAL: u8 = 22;

/// The debugger: the session plus what the protocol needs between packets.
pub struct Debugger {
    session: Session,
    /// Resume actions collected from a `vCont` packet, applied by `resume`.
    actions: Vec<(usize, Action)>,
    /// The last `vCont` had no default action: threads without one stay stopped.
    sched_lock: bool,
    /// The vCPU of gdb's current thread for memory (software breakpoints translate with it).
    mem_vcpu: usize,
    /// target.xml, built once from the boot vCPU's register list.
    target_xml: String,
    /// qXfer:memory-map.
    memory_map: String,
    /// The firmware path, for qXfer:exec-file.
    exec_file: Option<String>,
    /// Set when gdb was told the guest exited: power off or reset.
    guest_end: Option<Outcome>,
    /// Scratch buffer of the memory packets answered without gdbstub (`mem_packets`).
    mem_buf: Vec<u8>,
}

impl Debugger {
    /// Wraps a session whose vCPUs are all stopped (reads the register list of vCPU 0).
    pub fn new(mut session: Session, exec_file: Option<String>) -> Result<Debugger, GdbError> {
        let regs = session.reg_list(0)?;
        let target_xml = target_xml::build(&regs);
        let memory_map = base::memory_map_xml();
        Ok(Debugger {
            session,
            actions: Vec::new(),
            sched_lock: false,
            mem_vcpu: 0,
            target_xml,
            memory_map,
            exec_file,
            guest_end: None,
            mem_buf: Vec::new(),
        })
    }

    pub fn session(&mut self) -> &mut Session {
        &mut self.session
    }

    /// The vCPU index of a thread id, if such a vCPU exists.
    fn vcpu(&self, tid: Tid) -> Option<usize> {
        let v = tid.get() - 1;
        (v < self.session.vcpu_count()).then_some(v)
    }

    /// Like [`Debugger::vcpu`], as a target error gdb sees as `E22`.
    fn vcpu_or_err(&mut self, tid: Tid) -> Result<usize, TargetError<GdbError>> {
        let v = self.vcpu(tid).ok_or(TargetError::Errno(EINVAL))?;
        self.mem_vcpu = v;
        Ok(v)
    }
}

/// The thread id of vCPU `vcpu`.
pub(crate) fn tid_of(vcpu: usize) -> Tid {
    NonZeroUsize::new(vcpu + 1).unwrap_or(NonZeroUsize::MIN)
}

impl Target for Debugger {
    type Arch = arch::KvmdbgAArch64;
    type Error = GdbError;

    fn base_ops(&mut self) -> BaseOps<'_, Self::Arch, Self::Error> {
        BaseOps::MultiThread(self)
    }

    fn support_breakpoints(
        &mut self,
    ) -> Option<gdbstub::target::ext::breakpoints::BreakpointsOps<'_, Self>> {
        Some(self)
    }

    fn support_monitor_cmd(
        &mut self,
    ) -> Option<gdbstub::target::ext::monitor_cmd::MonitorCmdOps<'_, Self>> {
        Some(self)
    }

    fn support_target_description_xml_override(
        &mut self,
    ) -> Option<
        gdbstub::target::ext::target_description_xml_override::TargetDescriptionXmlOverrideOps<
            '_,
            Self,
        >,
    > {
        Some(self)
    }

    fn support_memory_map(
        &mut self,
    ) -> Option<gdbstub::target::ext::memory_map::MemoryMapOps<'_, Self>> {
        Some(self)
    }

    fn support_exec_file(
        &mut self,
    ) -> Option<gdbstub::target::ext::exec_file::ExecFileOps<'_, Self>> {
        if self.exec_file.is_some() {
            Some(self)
        } else {
            None
        }
    }
}

/// Copies the part of `data` gdb asked for (`offset`, `length`) into `buf` (qXfer reads).
pub(crate) fn xfer(data: &[u8], offset: u64, length: usize, buf: &mut [u8]) -> usize {
    let Ok(start) = usize::try_from(offset) else {
        return 0;
    };
    if start >= data.len() {
        return 0;
    }
    let n = (data.len() - start).min(length).min(buf.len());
    buf[..n].copy_from_slice(&data[start..start + n]);
    n
}
