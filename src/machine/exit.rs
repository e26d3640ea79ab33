//! Exit dispatch: what the machine does with each `VcpuExit` when no debugger owns the vCPU.
//!
//! A free function over a vCPU, the guest view and the device bus, so it is testable with
//! synthetic exits. Owns the policy for MMIO, NISV, system events and unexpected exits.

use crate::a64::{esr, Reg};
use crate::backend::{SystemEvent, Vcpu, VcpuExit};
use crate::debug::step::StepMachine;

use super::bus::Bus;
use super::emulate::{device_read, device_write, emulate_nisv};
use super::event::{Fault, StopReason};
use super::guest_mem::GuestView;

/// What the vCPU thread does next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Flow {
    /// Re-enter the guest.
    Continue,
    /// A debug exception for the debug policy to classify.
    Debug { esr: u64, far: u64 },
    /// The run was interrupted (kick): check for a machine-wide stop, then continue.
    Interrupted,
    /// This vCPU waits in WFI and nothing can wake it.
    Idle,
    /// The vCPU stops for good: power off, reset or a fault.
    Stop(StopReason),
}

/// Handles one exit of `vcpu`.
/// `step` is the vCPU's step state machine: emulating an instruction advances it.
pub fn handle_exit(
    vcpu: &mut dyn Vcpu,
    view: &GuestView,
    bus: &Bus,
    exit: VcpuExit,
    step: &mut StepMachine,
) -> Flow {
    match exit {
        VcpuExit::MmioRead { addr, len } => {
            let mut buf = [0u8; 8];
            let n = len.min(8);
            device_read(bus, addr, &mut buf[..n]);
            match vcpu
                .set_mmio_data(&buf[..n])
                .and_then(|_| fix_sign_extension(vcpu, view, &buf[..n], step))
            {
                Ok(()) => Flow::Continue,
                Err(e) => fault(vcpu, format!("completing MMIO read of {addr:#x}: {e}")),
            }
        }
        VcpuExit::MmioWrite { addr, len, data } => {
            device_write(bus, addr, &data[..len.min(8)]);
            Flow::Continue
        }
        VcpuExit::Nisv { fault_ipa, esr_iss } => {
            match emulate_nisv(vcpu, view, bus, fault_ipa, step) {
                Ok(()) => Flow::Continue,
                Err(e) => fault(
                    vcpu,
                    format!("data abort at {fault_ipa:#x} (iss {esr_iss:#x}) not emulable: {e}"),
                ),
            }
        }
        VcpuExit::Debug { esr, far } => Flow::Debug { esr, far },
        VcpuExit::SystemEvent(SystemEvent::Shutdown) => Flow::Stop(StopReason::PowerOff),
        VcpuExit::SystemEvent(SystemEvent::Reset) => Flow::Stop(StopReason::Reset),
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
        VcpuExit::ClockReached => Flow::Stop(StopReason::ClockReached),
        VcpuExit::InternalError(msg) => fault(vcpu, msg),
    }
}

/// Makes a sign-extending MMIO load's result right even on hosts whose data-abort syndrome
/// omits ISS.SSE (observed: arm64 KVM nested in QEMU 7.2 TCG loads `ldrsb w1, [x]` from a
/// device zero-extended).
///
/// Where it can matter, and only there, is decided before any register is read:
/// - a load of 8 bytes has nothing to extend (it fills the whole register);
/// - when the data's top bit is clear, sign and zero extension give the same value, so even a
///   host that ignores SSE leaves the right result (a UART status read such as UARTFR = 0x90
///   through a 16- or 32-bit load is such a case);
/// - a host seen once to sign-extend by itself always does: ISS.SSE is part of the syndrome
///   whenever ISS.ISV is 1 (Arm ARM D17.2.40 ESR_EL2, ISS encoding for a Data Abort: "SSE,
///   bit 21 ... when ISV is 1") and KVM applies it (`kvm_handle_mmio_return`, Linux
///   arch/arm64/kvm/mmio.c), so only an emulated host gets it wrong; from then on this check
///   is off for the machine (`GuestView::host_sign_extends`).
///
/// Otherwise the instruction is fetched (PC and translation registers: six register reads on
/// KVM) and decoded; for a sign-extending load the completion is committed without running
/// the guest and the destination is checked against our own extension, which teaches the
/// view what the host does. Committing advances the PC outside the guest, so it completes a
/// step in progress (KVM re-arms PSTATE.SS on the next entry after an `immediate_exit` run:
/// re-entering would run one more instruction before the step exception).
fn fix_sign_extension(
    vcpu: &mut dyn Vcpu,
    view: &GuestView,
    data: &[u8],
    step: &mut StepMachine,
) -> crate::backend::Result<()> {
    use crate::a64::ldst::{self, XferReg};
    let top_bit_set = data.last().is_some_and(|b| b & 0x80 != 0);
    if data.len() >= 8 || !top_bit_set || view.host_sign_extends() == Some(true) {
        return Ok(());
    }
    let Ok(pc) = vcpu.get(Reg::Pc) else {
        return Ok(());
    };
    let Ok(word) = view.fetch_insn(vcpu, pc) else {
        return Ok(());
    };
    let Ok(op) = ldst::decode(word) else {
        return Ok(());
    };
    let (true, [Some(XferReg::Gpr { n, wide }), None]) = (op.load && op.sign_extend, op.regs)
    else {
        return Ok(());
    };
    if n == 31 || data.len() != op.size as usize {
        return Ok(());
    }
    let mut raw = [0u8; 8];
    raw[..data.len()].copy_from_slice(data);
    let shift = 64 - 8 * data.len() as u32;
    let extended = ((u64::from_le_bytes(raw) << shift) as i64 >> shift) as u64;
    let want = if wide {
        extended
    } else {
        extended & 0xffff_ffff
    };
    vcpu.commit_pending()?;
    step.pc_advanced_by_vmm();
    // The top bit is set, so `want` differs from the zero-extended value: what the register
    // holds tells which the host did.
    let host_extended = vcpu.get(Reg::X(n))? == want;
    view.note_host_sign_extends(host_extended);
    if !host_extended {
        log::debug!("host did not sign-extend the MMIO load at {pc:#x}; fixing x{n}");
        vcpu.set(Reg::X(n), want)?;
    }
    Ok(())
}

fn fault(vcpu: &mut dyn Vcpu, reason: String) -> Flow {
    Flow::Stop(StopReason::Fault(Fault::at(vcpu, reason)))
}

/// One canonical line describing an exit, identical for every backend (conformance traces):
/// kind, syndrome, addresses and the PC, all absolute, lower-case hex (`pc=?` when the PC
/// could not be read).
pub fn trace_line(exit: &VcpuExit, pc: impl Into<Option<u64>>) -> String {
    let pc = match pc.into() {
        Some(pc) => format!("{pc:#x}"),
        None => "?".into(),
    };
    match exit {
        VcpuExit::MmioRead { addr, len } => {
            format!("MMIO read addr={addr:#x} len={len} pc={pc}")
        }
        VcpuExit::MmioWrite { addr, len, data } => {
            let mut b = [0u8; 8];
            b[..(*len).min(8)].copy_from_slice(&data[..(*len).min(8)]);
            let v = u64::from_le_bytes(b);
            format!("MMIO write addr={addr:#x} len={len} data={v:#x} pc={pc}")
        }
        VcpuExit::Nisv { fault_ipa, esr_iss } => {
            format!("NISV ipa={fault_ipa:#x} iss={esr_iss:#x} pc={pc}")
        }
        VcpuExit::Debug { esr, far } => format!(
            "DEBUG ec={:#x} esr={esr:#x} far={far:#x} pc={pc}",
            esr::class(*esr)
        ),
        VcpuExit::SystemEvent(ev) => format!("SYSTEM_EVENT {ev:?} pc={pc}"),
        VcpuExit::Hypercall { nr, smc, imm } => {
            format!("HYPERCALL nr={nr:#x} smc={smc} imm={imm:#x} pc={pc}")
        }
        VcpuExit::Interrupted => format!("INTERRUPTED pc={pc}"),
        VcpuExit::Idle => format!("IDLE pc={pc}"),
        VcpuExit::ClockReached => format!("CLOCK pc={pc}"),
        VcpuExit::InternalError(m) => format!("INTERNAL_ERROR {m} pc={pc}"),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::backend::fake::FakeVcpu;
    use crate::machine::layout::{RAM_BASE, UART_BASE};
    use crate::machine::memory::allocate;
    use crate::machine::pl011::Pl011;

    struct Rig {
        vcpu: FakeVcpu,
        view: GuestView,
        bus: Bus,
        out: Arc<Mutex<Vec<u8>>>,
    }

    #[derive(Clone)]
    struct Sink(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Sink {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn rig() -> Rig {
        let out = Arc::new(Mutex::new(Vec::new()));
        let mut bus = Bus::new();
        let uart = Pl011::new(Box::new(Sink(out.clone())));
        bus.add(UART_BASE, 0x1000, Arc::new(Mutex::new(uart)));
        let mut vcpu = FakeVcpu::new(0);
        vcpu.set(Reg::Pc, RAM_BASE + 0x10).unwrap();
        Rig {
            vcpu,
            view: GuestView::new(allocate(1 << 20).unwrap()),
            bus,
            out,
        }
    }

    impl Rig {
        fn handle(&mut self, exit: VcpuExit) -> Flow {
            handle_exit(
                &mut self.vcpu,
                &self.view,
                &self.bus,
                exit,
                &mut StepMachine::default(),
            )
        }
    }

    #[test]
    fn mmio_write_reaches_the_uart_and_read_is_completed() {
        let mut r = rig();
        let mut data = [0u8; 8];
        data[0] = b'K';
        let flow = r.handle(VcpuExit::MmioWrite {
            addr: UART_BASE,
            len: 1,
            data,
        });
        assert_eq!(flow, Flow::Continue);
        assert_eq!(&*r.out.lock().unwrap(), b"K");
        let flow = r.handle(VcpuExit::MmioRead {
            addr: UART_BASE + 0xfe0,
            len: 4,
        });
        assert_eq!(flow, Flow::Continue);
        assert_eq!(r.vcpu.mmio_data, vec![vec![0x11, 0, 0, 0]]);
        // The backend applies the PC advance, not the VMM.
        assert_eq!(r.vcpu.reg(Reg::Pc) as u64, RAM_BASE + 0x10);
    }

    /// Puts `word` at the PC (RAM_BASE + 0x10) and completes an MMIO read of `len` bytes at
    /// the UART's PCellID1 (0xf0, top bit set) or UARTFR (0x90 in the low byte) with x1 =
    /// `x1` beforehand (what the host left there); returns x1 afterwards.
    fn load_into_x1(r: &mut Rig, word: u32, addr: u64, len: usize, x1: u64) -> u64 {
        use vm_memory::{Bytes, GuestAddress};
        r.view
            .mem()
            .write_obj(word, GuestAddress(RAM_BASE + 0x10))
            .unwrap();
        r.vcpu.set(Reg::X(1), x1).unwrap();
        assert_eq!(r.handle(VcpuExit::MmioRead { addr, len }), Flow::Continue);
        r.vcpu.reg(Reg::X(1)) as u64
    }

    /// `ldrsb w1, [x0]` (Arm ARM C6.2.176 LDRSB (immediate), unsigned offset, opc 11: 32-bit).
    const LDRSB_W1: u32 = 0x39c0_0001;
    /// `ldrb w1, [x0]` (Arm ARM C6.2.174 LDRB (immediate), unsigned offset).
    const LDRB_W1: u32 = 0x3940_0001;
    /// `ldrsh w1, [x0]` (Arm ARM C6.2.178 LDRSH (immediate), unsigned offset, opc 11: 32-bit).
    const LDRSH_W1: u32 = 0x79c0_0001;
    const PCELLID1: u64 = UART_BASE + 0xff4;

    #[test]
    fn sign_extension_is_repaired_only_where_it_can_matter() {
        // The fake host never extends: a sign-extending byte load of 0xf0 is repaired.
        let mut r = rig();
        assert_eq!(
            load_into_x1(&mut r, LDRSB_W1, PCELLID1, 1, 0xf0),
            0xffff_fff0
        );
        assert_eq!(r.view.host_sign_extends(), Some(false));
        // A zero-extending load of the same byte is left alone.
        assert_eq!(load_into_x1(&mut r, LDRB_W1, PCELLID1, 1, 0xf0), 0xf0);
        // A sign-extending halfword load of UARTFR's low half (0x0090, top bit clear): sign
        // and zero extension agree, so nothing is read or repaired. The sentinel in x1 shows
        // the register was not even compared (a check would have written 0x90).
        let fr = UART_BASE + 0x18;
        assert_eq!(load_into_x1(&mut r, LDRSH_W1, fr, 2, 0x5555), 0x5555);
    }

    #[test]
    fn a_host_seen_to_sign_extend_is_trusted_from_then_on() {
        let mut r = rig();
        // The host extended by itself: nothing to repair, and the host is known to be right.
        assert_eq!(
            load_into_x1(&mut r, LDRSB_W1, PCELLID1, 1, 0xffff_fff0),
            0xffff_fff0
        );
        assert_eq!(r.view.host_sign_extends(), Some(true));
        // From then on, no check at all (the sentinel stays).
        assert_eq!(load_into_x1(&mut r, LDRSB_W1, PCELLID1, 1, 0x5555), 0x5555);
    }

    #[test]
    fn unclaimed_mmio_reads_as_zero() {
        let mut r = rig();
        r.handle(VcpuExit::MmioRead {
            addr: 0x0a00_0000,
            len: 8,
        });
        assert_eq!(r.vcpu.mmio_data, vec![vec![0; 8]]);
    }

    #[test]
    fn system_events_stop_the_machine() {
        let mut r = rig();
        let off = r.handle(VcpuExit::SystemEvent(SystemEvent::Shutdown));
        assert_eq!(off, Flow::Stop(StopReason::PowerOff));
        let reset = r.handle(VcpuExit::SystemEvent(SystemEvent::Reset));
        assert_eq!(reset, Flow::Stop(StopReason::Reset));
        let crash = r.handle(VcpuExit::SystemEvent(SystemEvent::Crash));
        assert!(matches!(crash, Flow::Stop(StopReason::Fault(_))));
    }

    #[test]
    fn debug_exits_go_to_the_debug_policy() {
        let mut r = rig();
        let flow = r.handle(VcpuExit::Debug {
            esr: 0xf200_0000,
            far: 0,
        });
        assert_eq!(
            flow,
            Flow::Debug {
                esr: 0xf200_0000,
                far: 0
            }
        );
    }

    #[test]
    fn nisv_that_cannot_be_fetched_is_a_fault_not_a_panic() {
        let mut r = rig();
        r.vcpu.set(Reg::Pc, 0x10).unwrap(); // outside RAM
        let flow = r.handle(VcpuExit::Nisv {
            fault_ipa: UART_BASE,
            esr_iss: 0x45,
        });
        assert!(matches!(flow, Flow::Stop(StopReason::Fault(_))));
    }

    #[test]
    fn trace_lines_are_canonical() {
        let mut data = [0u8; 8];
        data[0] = 0x41;
        let w = VcpuExit::MmioWrite {
            addr: 0x900_0000,
            len: 4,
            data,
        };
        assert_eq!(
            trace_line(&w, 0x4000_0010),
            "MMIO write addr=0x9000000 len=4 data=0x41 pc=0x40000010"
        );
        let d = VcpuExit::Debug {
            esr: 0xcb00_0022,
            far: 0,
        };
        assert_eq!(
            trace_line(&d, 0x4000_0014),
            "DEBUG ec=0x32 esr=0xcb000022 far=0x0 pc=0x40000014"
        );
        assert_eq!(trace_line(&VcpuExit::Idle, None), "IDLE pc=?");
    }

    #[test]
    fn a_fault_with_an_unreadable_pc_says_so() {
        let mut r = rig();
        r.vcpu.fail_get.insert(Reg::Pc);
        let flow = r.handle(VcpuExit::InternalError("boom".into()));
        let Flow::Stop(StopReason::Fault(f)) = flow else {
            panic!("{flow:?}")
        };
        assert_eq!((f.pc, f.reason.as_str()), (None, "boom"));
    }
}
