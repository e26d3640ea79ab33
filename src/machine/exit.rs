//! Exit dispatch: what the machine does with each `VcpuExit` when no debugger owns the vCPU.
//!
//! A free function over a vCPU, the guest view and the device bus, so it is testable with
//! synthetic exits. Owns the policy for MMIO, NISV, system events and unexpected exits.

use crate::a64::{esr, Reg};
use crate::backend::{SystemEvent, Vcpu, VcpuExit};

use super::bus::Bus;
use super::emulate::{device_read, device_write, emulate_nisv};
use super::guest_mem::GuestView;

/// What the vCPU thread does next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Flow {
    /// Re-enter the guest.
    Continue,
    /// The run was interrupted (kick): check for a machine-wide stop, then continue.
    Interrupted,
    /// This vCPU waits in WFI and nothing can wake it.
    Idle,
    /// The machine stops with this outcome.
    Stop(Stop),
}

/// Why the machine stops.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Stop {
    PowerOff,
    Reset,
    Fault { pc: u64, reason: String },
}

/// Handles one exit of `vcpu`.
pub fn handle_exit(vcpu: &mut dyn Vcpu, view: &GuestView, bus: &Bus, exit: VcpuExit) -> Flow {
    match exit {
        VcpuExit::MmioRead { addr, len } => {
            let mut buf = [0u8; 8];
            let n = len.min(8);
            device_read(bus, addr, &mut buf[..n]);
            match vcpu.set_mmio_data(&buf[..n]) {
                Ok(()) => Flow::Continue,
                Err(e) => fault(vcpu, format!("completing MMIO read of {addr:#x}: {e}")),
            }
        }
        VcpuExit::MmioWrite { addr, len, data } => {
            device_write(bus, addr, &data[..len.min(8)]);
            Flow::Continue
        }
        VcpuExit::Nisv { fault_ipa, esr_iss } => match emulate_nisv(vcpu, view, bus, fault_ipa) {
            Ok(()) => Flow::Continue,
            Err(e) => fault(
                vcpu,
                format!("data abort at {fault_ipa:#x} (iss {esr_iss:#x}) not emulable: {e}"),
            ),
        },
        VcpuExit::Debug { esr, far } => {
            let ec = esr::class(esr);
            fault(
                vcpu,
                format!(
                    "unexpected debug exit ({}, esr {esr:#x}, far {far:#x}) with no debugger",
                    esr::class_name(ec)
                ),
            )
        }
        VcpuExit::SystemEvent(SystemEvent::Shutdown) => Flow::Stop(Stop::PowerOff),
        VcpuExit::SystemEvent(SystemEvent::Reset) => Flow::Stop(Stop::Reset),
        VcpuExit::SystemEvent(ev) => fault(vcpu, format!("guest system event {ev:?}")),
        VcpuExit::Hypercall { nr, smc, imm } => fault(
            vcpu,
            format!(
                "unexpected {} #{imm:#x} forwarded to userspace (function {nr:#x})",
                if smc { "SMC" } else { "HVC" }
            ),
        ),
        VcpuExit::Interrupted => Flow::Interrupted,
        VcpuExit::Idle => Flow::Idle,
        VcpuExit::InternalError(msg) => fault(vcpu, msg),
    }
}

fn fault(vcpu: &mut dyn Vcpu, reason: String) -> Flow {
    let pc = vcpu.get(Reg::Pc).unwrap_or(u64::MAX);
    Flow::Stop(Stop::Fault { pc, reason })
}

/// One canonical line describing an exit, identical for every backend (conformance traces):
/// kind, syndrome, addresses and the PC, all absolute, lower-case hex.
pub fn trace_line(exit: &VcpuExit, pc: u64) -> String {
    match exit {
        VcpuExit::MmioRead { addr, len } => {
            format!("MMIO read addr={addr:#x} len={len} pc={pc:#x}")
        }
        VcpuExit::MmioWrite { addr, len, data } => {
            let mut b = [0u8; 8];
            b[..(*len).min(8)].copy_from_slice(&data[..(*len).min(8)]);
            let v = u64::from_le_bytes(b);
            format!("MMIO write addr={addr:#x} len={len} data={v:#x} pc={pc:#x}")
        }
        VcpuExit::Nisv { fault_ipa, esr_iss } => {
            format!("NISV ipa={fault_ipa:#x} iss={esr_iss:#x} pc={pc:#x}")
        }
        VcpuExit::Debug { esr, far } => format!(
            "DEBUG ec={:#x} esr={esr:#x} far={far:#x} pc={pc:#x}",
            esr::class(*esr)
        ),
        VcpuExit::SystemEvent(ev) => format!("SYSTEM_EVENT {ev:?} pc={pc:#x}"),
        VcpuExit::Hypercall { nr, smc, imm } => {
            format!("HYPERCALL nr={nr:#x} smc={smc} imm={imm:#x} pc={pc:#x}")
        }
        VcpuExit::Interrupted => format!("INTERRUPTED pc={pc:#x}"),
        VcpuExit::Idle => format!("IDLE pc={pc:#x}"),
        VcpuExit::InternalError(m) => format!("INTERNAL_ERROR {m} pc={pc:#x}"),
    }
}
