//! The lockstep driver: runs one program in QEMU (through its gdb stub, one `s` per
//! instruction) and in the model backend (guest-debug single-step, one `Debug` exit per
//! instruction) and compares the architectural state after every instruction.
//!
//! Compared after every step: X0-X30, SP (the current one: SP_EL1 in EL1h), PC and PSTATE
//! bits NZCV, DAIF and M[3:0] (mask 0xf00003cf; BTYPE, SS and the other bits are left out).
//! V0-V31 are read through `p` one register per round trip, so they are compared only where
//! they can change: after each SIMD instruction, the registers the generator recorded it as
//! writing; all 32 every `full_every` steps (plus the data buffer), and at the end. Programs
//! without that record (regressions) compare all V registers after every step.

use std::collections::VecDeque;
use std::path::Path;

use kvmdbg::a64::{esr, Reg};
use kvmdbg::backend::{
    create_vm, BackendError, BackendKind, GicLayout, GuestDebug, Vcpu, VcpuExit, Vm, VmConfig,
};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use super::disasm::disasm;
use super::gen::{Program, CODE_BASE, DATA_BASE, DATA_SIZE};
use crate::common::qemu::Qemu;
use crate::common::rsp::Rsp;

/// QEMU virt RAM (hw/arm/virt.c memmap VIRT_MEM = 0x4000_0000), 128 MiB as started.
const RAM_BASE: u64 = 0x4000_0000;
const RAM_SIZE: usize = 128 << 20;
/// PSTATE bits compared: N Z C V (31:28), D A I F (9:6), M[3:0] (Arm ARM C5.2.18).
pub const PSTATE_MASK: u64 = 0xf000_03cf;
/// QEMU aarch64 gdb register numbers (gdb-xml/aarch64-fpu.xml follows the 34 core ones).
const GDB_V0: u32 = 34;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Regs {
    pub x: [u64; 31],
    pub sp: u64,
    pub pc: u64,
    pub pstate: u64,
}

pub enum Outcome {
    /// Both reached the epilogue after `steps` instructions with equal state.
    Done { steps: u64 },
    /// The model backend is not available in this build.
    ModelUnavailable(String),
}

struct QemuSide {
    rsp: Rsp,
    _qemu: Qemu,
}

impl QemuSide {
    fn start(image: &Path) -> Result<Self, String> {
        let mut qemu = Qemu::start_halted(image).map_err(|e| format!("starting QEMU: {e}"))?;
        let rsp = qemu.connect().map_err(|e| format!("QEMU gdb stub: {e}"))?;
        Ok(QemuSide { rsp, _qemu: qemu })
    }

    fn regs(&mut self) -> Result<Regs, String> {
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

    fn v(&mut self, n: u8) -> Result<u128, String> {
        let b = self
            .rsp
            .read_register(GDB_V0 + n as u32)
            .map_err(|e| e.to_string())?;
        let b: [u8; 16] = b
            .try_into()
            .map_err(|b: Vec<u8>| format!("V{n}: {} bytes", b.len()))?;
        Ok(u128::from_le_bytes(b))
    }

    fn step(&mut self) -> Result<(), String> {
        match self.rsp.step().map_err(|e| format!("QEMU step: {e}"))? {
            crate::common::rsp::Stop::Signal { sig: 5, .. } => Ok(()),
            other => Err(format!("QEMU stopped with {other:?}")),
        }
    }
}

struct ModelSide {
    vcpu: Box<dyn Vcpu>,
    _vm: Box<dyn Vm>,
    mem: GuestMemoryMmap,
}

fn berr(what: &str) -> impl Fn(BackendError) -> String + '_ {
    move |e| format!("model: {what}: {e}")
}

impl ModelSide {
    /// `Ok(None)` when the model backend is unavailable in this build.
    fn start(p: &Program, init: &Regs, v: &[u128; 32]) -> Result<Result<Self, String>, String> {
        let mem = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(RAM_BASE), RAM_SIZE)])
            .map_err(|e| format!("allocating model RAM: {e}"))?;
        mem.write_slice(&p.code_bytes(), GuestAddress(CODE_BASE))
            .map_err(|e| format!("loading code: {e}"))?;
        mem.write_slice(&p.data, GuestAddress(DATA_BASE))
            .map_err(|e| format!("loading data: {e}"))?;
        let cfg = VmConfig {
            vcpus: 1,
            // QEMU virt memmap: GIC distributor 0x0800_0000, redistributors 0x080A_0000.
            gic: GicLayout {
                dist_base: 0x0800_0000,
                redist_base: 0x080a_0000,
                redist_size: 0x2_0000,
            },
            nisv_to_user: false,
        };
        let vm = match create_vm(BackendKind::Model, &mem, &cfg) {
            Ok(vm) => vm,
            Err(BackendError::Unavailable(why)) => return Ok(Err(why)),
            Err(e) => return Err(format!("model: creating VM: {e}")),
        };
        let mut vcpu = vm.create_vcpu(0).map_err(berr("creating vCPU"))?;
        vm.finalize().map_err(berr("finalize"))?;
        for (n, x) in init.x.iter().enumerate() {
            vcpu.set(Reg::X(n as u8), *x).map_err(berr("set X"))?;
        }
        vcpu.set(Reg::SpEl1, init.sp).map_err(berr("set SP_EL1"))?;
        vcpu.set(Reg::Pc, init.pc).map_err(berr("set PC"))?;
        vcpu.set(Reg::Pstate, init.pstate)
            .map_err(berr("set PSTATE"))?;
        for (n, val) in v.iter().enumerate() {
            vcpu.set_reg(Reg::V(n as u8), *val).map_err(berr("set V"))?;
        }
        let dbg = GuestDebug {
            enable: true,
            single_step: true,
            ..Default::default()
        };
        vcpu.set_guest_debug(&dbg)
            .map_err(berr("set_guest_debug"))?;
        Ok(Ok(ModelSide { vcpu, _vm: vm, mem }))
    }

    fn regs(&mut self) -> Result<Regs, String> {
        let mut x = [0u64; 31];
        for (n, slot) in x.iter_mut().enumerate() {
            *slot = self.vcpu.get(Reg::X(n as u8)).map_err(berr("get X"))?;
        }
        let pstate = self.vcpu.get(Reg::Pstate).map_err(berr("get PSTATE"))?;
        // The current stack pointer: SP_EL0 when PSTATE.SP (bit 0) is 0 or at EL0.
        let sp_reg = if pstate & 1 == 1 && pstate & 0xc != 0 {
            Reg::SpEl1
        } else {
            Reg::Sp
        };
        Ok(Regs {
            x,
            sp: self.vcpu.get(sp_reg).map_err(berr("get SP"))?,
            pc: self.vcpu.get(Reg::Pc).map_err(berr("get PC"))?,
            pstate,
        })
    }

    /// ESR/FAR/ELR_EL1 when the model's PC is at a vector (it took an exception).
    fn exception(&mut self) -> String {
        use kvmdbg::a64::sys;
        let pc = self.vcpu.get(Reg::Pc).unwrap_or(0);
        if !(CODE_BASE..CODE_BASE + 0x800).contains(&pc) {
            return String::new();
        }
        let mut get = |r| self.vcpu.get(Reg::Sys(r)).unwrap_or(u64::MAX);
        format!(
            "\n    model took an exception: ESR_EL1 {:#x} FAR_EL1 {:#x} ELR_EL1 {:#x}",
            get(sys::ESR_EL1),
            get(sys::FAR_EL1),
            self.vcpu.get(Reg::ElrEl1).unwrap_or(0)
        )
    }

    fn step(&mut self) -> Result<(), String> {
        match self.vcpu.run().map_err(berr("run"))? {
            VcpuExit::Debug { esr: e, .. }
                if matches!(esr::class(e), esr::ec::SOFTSTP_LOW | esr::ec::SOFTSTP_CUR) =>
            {
                Ok(())
            }
            other => Err(format!("model exit {other:?} instead of a step")),
        }
    }
}

/// The last instructions executed, for context in reports.
struct History(VecDeque<u64>);

impl History {
    fn push(&mut self, pc: u64) {
        if self.0.len() == 8 {
            self.0.pop_front();
        }
        self.0.push_back(pc);
    }
    fn render(&self, p: &Program) -> String {
        self.0
            .iter()
            .map(|pc| match p.word_at(*pc) {
                Some(w) => format!("    {pc:#x}: {w:08x}  {}\n", disasm(w)),
                None => format!("    {pc:#x}: <outside the image>\n"),
            })
            .collect()
    }
}

fn diff_regs(q: &Regs, m: &Regs) -> Vec<String> {
    let mut d = Vec::new();
    for n in 0..31 {
        if q.x[n] != m.x[n] {
            d.push(format!(
                "x{n:<6} qemu {:#018x}  model {:#018x}",
                q.x[n], m.x[n]
            ));
        }
    }
    if q.sp != m.sp {
        d.push(format!("sp      qemu {:#018x}  model {:#018x}", q.sp, m.sp));
    }
    if q.pc != m.pc {
        d.push(format!("pc      qemu {:#018x}  model {:#018x}", q.pc, m.pc));
    }
    if q.pstate & PSTATE_MASK != m.pstate & PSTATE_MASK {
        d.push(format!(
            "pstate  qemu {:#010x}  model {:#010x} (compared bits {PSTATE_MASK:#x})",
            q.pstate, m.pstate
        ));
    }
    d
}

/// Runs `p` (already written as an ELF at `image`) in lockstep for at most `max_steps`.
/// `Err` carries a full divergence report.
pub fn run(p: &Program, image: &Path, max_steps: u64, full_every: u64) -> Result<Outcome, String> {
    let mut q = QemuSide::start(image)?;
    let init = q.regs()?;
    let mut v0 = [0u128; 32];
    for (n, slot) in v0.iter_mut().enumerate() {
        *slot = q.v(n as u8)?;
    }
    let mut m = match ModelSide::start(p, &init, &v0)? {
        Ok(m) => m,
        Err(why) => return Ok(Outcome::ModelUnavailable(why)),
    };
    let mut hist = History(VecDeque::new());
    let mut steps = 0u64;
    let mut pc = init.pc;
    let mut prof = (std::time::Duration::ZERO, std::time::Duration::ZERO);
    loop {
        hist.push(pc);
        let step_no = steps + 1;
        let ctx = |what: String, hist: &History| {
            format!(
                "seed {:#x}: step {step_no}: {what}\n  last instructions (the last one diverged):\n{}",
                p.seed,
                hist.render(p)
            )
        };
        let t = std::time::Instant::now();
        q.step().map_err(|e| ctx(e, &hist))?;
        let qr = q.regs()?;
        let t1 = std::time::Instant::now();
        m.step().map_err(|e| ctx(e, &hist))?;
        let mr = m.regs()?;
        prof.0 += t1 - t;
        prof.1 += t1.elapsed();
        steps += 1;
        let d = diff_regs(&qr, &mr);
        if !d.is_empty() {
            let what = format!(
                "register divergence:\n    {}{}",
                d.join("\n    "),
                m.exception()
            );
            return Err(ctx(what, &hist));
        }
        let done = qr.pc == p.end_pc;
        let vregs: Vec<u8> = match &p.vwrites {
            _ if done || steps % full_every == 0 => (0..32).collect(),
            None => (0..32).collect(),
            Some(map) => map.get(&pc).cloned().unwrap_or_default(),
        };
        compare_v(&mut q, &mut m, &vregs).map_err(|e| ctx(e, &hist))?;
        if done || steps % full_every == 0 {
            compare_memory(&mut q, &m).map_err(|e| ctx(e, &hist))?;
        }
        if done {
            if std::env::var_os("KVMDBG_COSIM_PROFILE").is_some() {
                eprintln!(
                    "cosim profile: qemu step+g {:?}, model step+regs {:?}, {steps} steps",
                    prof.0, prof.1
                );
            }
            return Ok(Outcome::Done { steps });
        }
        if qr.pc < super::gen::ENTRY || qr.pc > p.end_pc {
            return Err(ctx(
                format!("left the program: pc {:#x} (exception?)", qr.pc),
                &hist,
            ));
        }
        if steps >= max_steps {
            return Err(ctx(format!("no end after {max_steps} steps"), &hist));
        }
        pc = qr.pc;
    }
}

fn compare_v(q: &mut QemuSide, m: &mut ModelSide, regs: &[u8]) -> Result<(), String> {
    let mut d = Vec::new();
    for &n in regs {
        let qv = q.v(n)?;
        let mv = m.vcpu.get_reg(Reg::V(n)).map_err(berr("get V"))?;
        if qv != mv {
            d.push(format!("v{n:<6} qemu {qv:#034x}  model {mv:#034x}"));
        }
    }
    if d.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "SIMD register divergence:\n    {}",
            d.join("\n    ")
        ))
    }
}

fn compare_memory(q: &mut QemuSide, m: &ModelSide) -> Result<(), String> {
    let qm = q
        .rsp
        .read_memory(DATA_BASE, DATA_SIZE)
        .map_err(|e| format!("QEMU memory read: {e}"))?;
    let mut mm = vec![0u8; DATA_SIZE];
    m.mem
        .read_slice(&mut mm, GuestAddress(DATA_BASE))
        .map_err(|e| format!("model memory read: {e}"))?;
    match qm.iter().zip(&mm).position(|(a, b)| a != b) {
        None => Ok(()),
        Some(i) => {
            let at = i & !7;
            let end = (at + 16).min(DATA_SIZE);
            Err(format!(
                "data buffer divergence at {:#x}: qemu {:02x?} model {:02x?}",
                DATA_BASE + at as u64,
                &qm[at..end],
                &mm[at..end]
            ))
        }
    }
}
