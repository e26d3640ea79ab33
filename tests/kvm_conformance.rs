//! Conformance: the model backend must behave like real KVM exit for exit.
//!
//! Each scenario is hand-assembled guest code plus a debug script (the guest-debug
//! configuration and what the VMM does at each debug exit). The runner drives a backend
//! through the `Vcpu` trait only and prints a canonical trace: one line per exit
//! (`machine::exit::trace_line`: kind, syndrome, FAR, absolute PC), the VMM's own actions, and
//! chosen registers and memory at the end. The expected trace of every scenario is
//! `tests/conformance/<name>.trace`, recorded on real arm64 KVM (Debian 6.1 nested in QEMU).
//!
//! On the host the model's trace must equal it; inside the nested machine (CI) KVM's trace must
//! equal it too, so a difference between the backends fails on both sides. Where a later host
//! kernel behaves differently, its own recording `<name>.<major>.<minor>.trace` (GOLDEN_LATER)
//! is what KVM must produce there; the model stays held to the 6.1 trace. Set
//! `KVMDBG_CONFORMANCE_PRINT=1` to print every trace.

mod backends;
mod common;
mod conformance;

use backends::kvm_usable;

use std::sync::{Arc, Mutex};

use conformance::scenarios::{self, Scenario};
use conformance::OnDebug;
use kvmdbg::a64::{esr, Reg};
use kvmdbg::backend::{self, BackendKind, GuestDebug, Vcpu, VcpuExit, Vm, VmConfig};
use kvmdbg::debug::inject_sync_exception;
use kvmdbg::debug::step::StepMachine;
use kvmdbg::machine::bus::{Bus, MmioDevice};
use kvmdbg::machine::emulate::{advance_pc, emulate_nisv};
use kvmdbg::machine::exit::trace_line;
use kvmdbg::machine::guest_mem::GuestView;
use kvmdbg::machine::layout::{gic_layout, RAM_BASE, UART_BASE};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

const RAM_SIZE: usize = 2 << 20;
/// Every MMIO read returns the low bytes of this value.
const MMIO_PATTERN: u64 = 0x8877_6655_f4f3_f2f1;
const MAX_EXITS: usize = 200;

/// Answers reads with [`MMIO_PATTERN`]; ignores writes (the trace records them).
struct Pattern;

impl MmioDevice for Pattern {
    fn read(&mut self, _: u64, data: &mut [u8]) {
        let n = data.len().min(8);
        data[..n].copy_from_slice(&MMIO_PATTERN.to_le_bytes()[..n]);
    }
    fn write(&mut self, _: u64, _: &[u8]) {}
}

struct Rig {
    _vm: Box<dyn Vm>,
    vcpu: Box<dyn Vcpu>,
    mem: GuestMemoryMmap,
    view: GuestView,
    bus: Bus,
}

fn build(kind: BackendKind, s: &Scenario) -> Result<Rig, String> {
    let mem = GuestMemoryMmap::from_ranges(&[(GuestAddress(RAM_BASE), RAM_SIZE)])
        .map_err(|e| e.to_string())?;
    for (offset, code) in &s.code {
        for (i, w) in code.iter().enumerate() {
            mem.write_obj(*w, GuestAddress(RAM_BASE + offset + 4 * i as u64))
                .map_err(|e| e.to_string())?;
        }
    }
    let cfg = VmConfig {
        vcpus: 1,
        gic: gic_layout(1),
        nisv_to_user: true,
        model_keep_ss_bug: false,
        icount: false,
        jit: true,
    };
    let vm = backend::create_vm(kind, &mem, &cfg).map_err(|e| e.to_string())?;
    let mut vcpu = vm.create_vcpu(0).map_err(|e| e.to_string())?;
    vm.finalize().map_err(|e| e.to_string())?;
    vcpu.set(Reg::Pc, RAM_BASE).map_err(|e| e.to_string())?;
    vcpu.set_guest_debug(&s.debug).map_err(|e| e.to_string())?;
    let mut bus = Bus::new();
    bus.add(UART_BASE, 0x1000, Arc::new(Mutex::new(Pattern)));
    Ok(Rig {
        _vm: vm,
        vcpu,
        view: GuestView::new(mem.clone()),
        mem,
        bus,
    })
}

/// Runs `s` on `kind` and returns its canonical trace.
fn trace(kind: BackendKind, s: &Scenario) -> Result<Vec<String>, String> {
    let mut r = build(kind, s)?;
    let mut out = Vec::new();
    let mut dbg = s.debug.clone();
    let v = r.vcpu.as_mut();
    for _ in 0..MAX_EXITS {
        let exit = v.run().map_err(|e| format!("run: {e}"))?;
        let pc = v.get(Reg::Pc).map_err(|e| e.to_string())?;
        out.push(trace_line(&exit, pc));
        match exit {
            VcpuExit::MmioRead { len, .. } => {
                let n = len.min(8);
                v.set_mmio_data(&MMIO_PATTERN.to_le_bytes()[..n])
                    .map_err(|e| e.to_string())?;
            }
            VcpuExit::MmioWrite { .. } | VcpuExit::Interrupted => {}
            VcpuExit::Nisv { fault_ipa, .. } => {
                // The raw backend's behaviour is recorded: no step completion by the VMM here.
                emulate_nisv(v, &r.view, &r.bus, fault_ipa, &mut StepMachine::default())
                    .map_err(|e| e.to_string())?;
                let pc = v.get(Reg::Pc).map_err(|e| e.to_string())?;
                out.push(format!("VMM emulated; pc={pc:#x}"));
            }
            VcpuExit::Debug { esr, far } => {
                on_debug(v, s.on_debug, esr, far, pc, &mut dbg, &mut out)?
            }
            VcpuExit::SystemEvent(_) => break,
            other => return Err(format!("unexpected exit {other:?}")),
        }
    }
    for &n in s.regs {
        let x = v.get(Reg::X(n)).map_err(|e| e.to_string())?;
        out.push(format!("x{n}={x:#x}"));
    }
    for &addr in s.words {
        let w: u64 = r
            .mem
            .read_obj(GuestAddress(addr))
            .map_err(|e| e.to_string())?;
        out.push(format!("mem[{addr:#x}]={w:#x}"));
    }
    Ok(out)
}

/// The VMM's action at a debug exit (syndrome `esr`, `far`, at `pc`).
fn on_debug(
    v: &mut dyn Vcpu,
    action: OnDebug,
    esr: u64,
    far: u64,
    pc: u64,
    dbg: &mut GuestDebug,
    out: &mut Vec<String>,
) -> Result<(), String> {
    let e = |e: kvmdbg::backend::BackendError| e.to_string();
    let own_bp = dbg.enable && dbg.hw && dbg.bcr[0] & 1 == 1 && dbg.bvr[0] == pc;
    let action = match action {
        OnDebug::OwnOrReinject if own_bp => OnDebug::DisarmHw,
        OnDebug::OwnOrReinject => OnDebug::Reinject,
        other => other,
    };
    match action {
        OnDebug::Continue => {}
        OnDebug::SkipInstruction => {
            advance_pc(v, &mut StepMachine::default()).map_err(e)?;
            let pc = v.get(Reg::Pc).map_err(e)?;
            out.push(format!("VMM skipped the instruction; pc={pc:#x}"));
        }
        OnDebug::DisarmHw => {
            dbg.hw = false;
            dbg.bcr = [0; 16];
            dbg.wcr = [0; 16];
            v.set_guest_debug(dbg).map_err(e)?;
            out.push("VMM disarmed hardware breakpoints and watchpoints".into());
        }
        OnDebug::Reinject | OnDebug::OwnOrReinject => {
            // Watchpoints carry the FAR (Arm ARM D2.10); other debug exceptions leave it.
            let watch = matches!(esr::class(esr), esr::ec::WATCHPT_LOW | esr::ec::WATCHPT_CUR);
            let at = inject_sync_exception(v, esr, watch.then_some(far)).map_err(e)?;
            out.push(format!(
                "VMM re-injected esr_el1={:#x} vector={:#x}",
                at.esr, at.vector
            ));
        }
        OnDebug::StopStepping => {
            dbg.single_step = false;
            v.set_guest_debug(dbg).map_err(e)?;
            out.push("VMM stopped stepping".into());
        }
    }
    Ok(())
}

/// The recorded traces, compiled in (the nested machine has no source tree).
const GOLDEN: &[(&str, &str)] = &[
    ("step_mmio", include_str!("conformance/step_mmio.trace")),
    ("mmio_sizes", include_str!("conformance/mmio_sizes.trace")),
    (
        "step_mmio_sizes",
        include_str!("conformance/step_mmio_sizes.trace"),
    ),
    ("nisv", include_str!("conformance/nisv.trace")),
    ("step_nisv", include_str!("conformance/step_nisv.trace")),
    ("brk", include_str!("conformance/brk.trace")),
    (
        "hw_breakpoint",
        include_str!("conformance/hw_breakpoint.trace"),
    ),
    ("watch_store", include_str!("conformance/watch_store.trace")),
    ("watch_bytes", include_str!("conformance/watch_bytes.trace")),
    ("watch_load", include_str!("conformance/watch_load.trace")),
    ("watch_mask", include_str!("conformance/watch_mask.trace")),
    ("watch_pair", include_str!("conformance/watch_pair.trace")),
    ("watch_ldp", include_str!("conformance/watch_ldp.trace")),
    ("watch_half", include_str!("conformance/watch_half.trace")),
    ("step_svc", include_str!("conformance/step_svc.trace")),
    ("guest_brk", include_str!("conformance/guest_brk.trace")),
    (
        "guest_brk_reinjected",
        include_str!("conformance/guest_brk_reinjected.trace"),
    ),
    (
        "guest_hw_breakpoint",
        include_str!("conformance/guest_hw_breakpoint.trace"),
    ),
    (
        "guest_watchpoint",
        include_str!("conformance/guest_watchpoint.trace"),
    ),
    ("guest_step", include_str!("conformance/guest_step.trace")),
    (
        "guest_step_el0",
        include_str!("conformance/guest_step_el0.trace"),
    ),
    (
        "guest_bp_vmm_hw",
        include_str!("conformance/guest_bp_vmm_hw.trace"),
    ),
    (
        "guest_bp_vmm_swbp",
        include_str!("conformance/guest_bp_vmm_swbp.trace"),
    ),
    (
        "guest_watch_vmm_swbp",
        include_str!("conformance/guest_watch_vmm_swbp.trace"),
    ),
    (
        "guest_step_vmm_step",
        include_str!("conformance/guest_step_vmm_step.trace"),
    ),
    (
        "guest_step_vmm_swbp",
        include_str!("conformance/guest_step_vmm_swbp.trace"),
    ),
    ("irq_run", include_str!("conformance/irq_run.trace")),
    (
        "irq_step_unmask",
        include_str!("conformance/irq_step_unmask.trace"),
    ),
    (
        "irq_step_masked",
        include_str!("conformance/irq_step_masked.trace"),
    ),
    (
        "irq_step_wfi",
        include_str!("conformance/irq_step_wfi.trace"),
    ),
    ("smc_calls", include_str!("conformance/smc_calls.trace")),
    (
        "step_smc_calls",
        include_str!("conformance/step_smc_calls.trace"),
    ),
];

/// Scenarios whose KVM behaviour changed in a later host kernel: (scenario, kernel (major,
/// minor) the trace was recorded on, trace). KVM must produce the entry with the newest kernel
/// not newer than the one it runs on, else the GOLDEN trace (6.1); the model mirrors 6.1 and
/// is always held to GOLDEN.
const GOLDEN_LATER: &[(&str, (u32, u32), &str)] = &[
    (
        "smc_calls",
        (6, 12),
        include_str!("conformance/smc_calls.6.12.trace"),
    ),
    (
        "step_smc_calls",
        (6, 12),
        include_str!("conformance/step_smc_calls.6.12.trace"),
    ),
];

fn trace_lines(text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(str::to_string)
        .collect()
}

fn golden(name: &str) -> Option<Vec<String>> {
    Some(trace_lines(GOLDEN.iter().find(|(n, _)| *n == name)?.1))
}

/// The trace KVM must produce for `name` on host kernel `host`.
fn golden_kvm(name: &str, host: (u32, u32)) -> Option<Vec<String>> {
    GOLDEN_LATER
        .iter()
        .filter(|(n, since, _)| *n == name && *since <= host)
        .max_by_key(|(_, since, _)| *since)
        .map(|(_, _, text)| trace_lines(text))
        .or_else(|| golden(name))
}

/// The running kernel's (major, minor) from `/proc/sys/kernel/osrelease` (e.g.
/// "6.12.117+deb13-arm64").
fn host_kernel() -> Result<(u32, u32), String> {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map_err(|e| format!("reading /proc/sys/kernel/osrelease: {e}"))?;
    let mut parts = release.trim().split(|c: char| !c.is_ascii_digit());
    let mut number = || parts.next().and_then(|p| p.parse().ok());
    match (number(), number()) {
        (Some(major), Some(minor)) => Ok((major, minor)),
        _ => Err(format!(
            "kernel release {:?} is not MAJOR.MINOR...",
            release.trim()
        )),
    }
}

#[test]
fn every_scenario_matches_real_kvm_on_both_backends() {
    let print = std::env::var("KVMDBG_CONFORMANCE_PRINT").is_ok();
    let kvm = kvm_usable();
    let host = if kvm {
        Some(host_kernel().expect("host kernel version"))
    } else {
        None
    };
    let all = scenarios::all();
    let mut failures = Vec::new();
    for (name, _, _) in GOLDEN_LATER {
        if !all.iter().any(|s| s.name == *name) {
            failures.push(format!("{name}: in GOLDEN_LATER but not a scenario"));
        }
    }
    for s in &all {
        let model = trace(BackendKind::Model, s);
        let real = kvm.then(|| trace(BackendKind::Kvm, s));
        if print {
            eprintln!("=== {} (model)\n{}", s.name, show(&model));
            if let Some(r) = &real {
                eprintln!("=== {} (kvm)\n{}", s.name, show(r));
            }
        }
        let (Some(want), Some(want_kvm)) =
            (golden(s.name), golden_kvm(s.name, host.unwrap_or((6, 1))))
        else {
            failures.push(format!("{}: no recorded trace in GOLDEN", s.name));
            continue;
        };
        for (who, got, want) in [("model", Some(model), want), ("kvm", real, want_kvm)] {
            match got {
                Some(Ok(t)) if t == want => {}
                Some(got) => failures.push(format!(
                    "{} on {who} differs from the KVM trace\n--- expected\n{}\n--- got\n{}",
                    s.name,
                    want.join("\n"),
                    show(&got)
                )),
                None => {}
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

fn show(t: &Result<Vec<String>, String>) -> String {
    match t {
        Ok(lines) => lines.join("\n"),
        Err(e) => format!("ERROR {e}"),
    }
}
