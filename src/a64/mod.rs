//! Pure A64 architecture knowledge shared by every layer: register names and encodings, PSTATE,
//! ESR and system-register fields, exception entry, vector catch, debug-register encoders, instruction
//! decoding for emulation, the stage-1 walker.
//!
//! Must not depend on any other kvmdbg module, on I/O, or on `unsafe`.

pub mod debugregs;
pub mod esr;
pub mod exception;
pub mod fields;
pub mod ldst;
pub mod pstate;
pub mod regs;
pub mod vcatch;
pub mod walk;

pub use regs::{sys, Reg, SysReg};
