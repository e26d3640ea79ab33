//! kvmdbg: an aarch64 VMM that boots bare-metal firmware under KVM (or a software model of an
//! A64 CPU) and lets gdb debug it over the GDB remote protocol.
//!
//! Layers, top to bottom (dependencies only point down): `gdb` (the remote protocol over a
//! debugging session), `machine` (memory map, loader, devices, vCPU threads, the session),
//! `debug` (breakpoints, watchpoints, stepping, decided once for every backend), `backend` (the
//! `Vm`/`Vcpu` traits and their KVM and model implementations), `a64` (pure architecture
//! knowledge). The binary's `cli` sits on top; `signals` (how the process ends on a signal,
//! and the exit hooks any layer may register) stands apart. See docs/architecture.md.

pub mod a64;
pub mod backend;
pub mod debug;
pub mod gdb;
pub mod machine;
pub mod signals;
#[cfg(test)]
pub(crate) mod test_require;
#[cfg(test)]
mod test_require_tests;
#[cfg(test)]
pub(crate) mod test_rng;
