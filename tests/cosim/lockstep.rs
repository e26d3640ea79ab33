//! The lockstep driver: runs one program in QEMU (through its gdb stub, one `s` per
//! instruction) and in the model backend (guest-debug single-step, one `Debug` exit per
//! instruction) and compares the architectural state after every instruction.
//!
//! Compared after every step: X0-X30, SP (the current one: SP_EL1 in EL1h), PC and PSTATE
//! bits NZCV, DAIF and M[3:0] (mask 0xf00003cf; BTYPE, SS and the other bits are left out).
//! V0-V31 are read through `p` one register per round trip, so they are compared only where
//! they can change: after each SIMD instruction, the registers the generator recorded it as
//! writing; all 32 every `full_every` steps (plus the data buffer), and at the end; FPSR
//! whenever V registers are compared. Programs without that record (regressions) compare
//! all V registers after every step.

use std::collections::VecDeque;
use std::path::Path;

use kvmdbg::a64::{esr, Reg};
use kvmdbg::backend::{
    create_vm, BackendError, BackendKind, GicLayout, GuestDebug, Vcpu, VcpuExit, Vm, VmConfig,
};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use super::disasm::disasm;
use super::gen::{Program, CODE_BASE, DATA_BASE, DATA_SIZE, SYNC_HANDLER};
use super::qemu_side::{QemuSide, SYNDROME_NAMES};
use crate::common::elf::Segment;

/// QEMU virt RAM (hw/arm/virt.c memmap VIRT_MEM = 0x4000_0000), 128 MiB as started.
const RAM_BASE: u64 = 0x4000_0000;
const RAM_SIZE: usize = 128 << 20;
/// PSTATE bits compared: N Z C V (31:28), D A I F (9:6), M[3:0] (Arm ARM C5.2.18).
pub const PSTATE_MASK: u64 = 0xf000_03cf;

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
    /// Both took the same exception (same vector, registers, ESR, ELR, SPSR and, for
    /// aborts, FAR) at step `steps`.
    Exception { steps: u64, esr: u64, elr: u64 },
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
    fn start(p: &Program, init: &Regs, v: &[u128; 32]) -> Result<Self, String> {
        let mem = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(RAM_BASE), RAM_SIZE)])
            .map_err(|e| format!("allocating model RAM: {e}"))?;
        for (addr, bytes) in p.segments() {
            mem.write_slice(&bytes, GuestAddress(addr))
                .map_err(|e| format!("loading {addr:#x}: {e}"))?;
        }
        let cfg = VmConfig {
            vcpus: 1,
            // QEMU virt memmap: GIC distributor 0x0800_0000, redistributors 0x080A_0000.
            gic: GicLayout {
                dist_base: 0x0800_0000,
                redist_base: 0x080a_0000,
                redist_size: 0x2_0000,
            },
            nisv_to_user: false,
            model_keep_ss_bug: false,
            icount: false,
            jit: true,
        };
        let vm = create_vm(BackendKind::Model, &mem, &cfg).map_err(berr("creating VM"))?;
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
        Ok(ModelSide { vcpu, _vm: vm, mem })
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

    fn inject(&mut self, what: Inject) -> Result<(), String> {
        match what {
            Inject::X(n) => {
                let v = self.vcpu.get(Reg::X(n)).map_err(berr("get X"))?;
                self.vcpu.set(Reg::X(n), v ^ 1).map_err(berr("set X"))
            }
            Inject::V(n) => {
                let v = self.vcpu.get_reg(Reg::V(n)).map_err(berr("get V"))?;
                self.vcpu
                    .set_reg(Reg::V(n), v ^ (1 << 127))
                    .map_err(berr("set V"))
            }
            Inject::Mem(addr) => {
                let b: u8 = self
                    .mem
                    .read_obj(GuestAddress(addr))
                    .map_err(|e| format!("inject read: {e}"))?;
                self.mem
                    .write_obj(!b, GuestAddress(addr))
                    .map_err(|e| format!("inject write: {e}"))
            }
        }
    }

    /// ESR_EL1, FAR_EL1, ELR_EL1, SPSR_EL1.
    fn syndrome(&mut self) -> Result<[u64; 4], String> {
        use kvmdbg::a64::sys;
        Ok([
            self.vcpu
                .get(Reg::Sys(sys::ESR_EL1))
                .map_err(berr("get ESR_EL1"))?,
            self.vcpu
                .get(Reg::Sys(sys::FAR_EL1))
                .map_err(berr("get FAR_EL1"))?,
            self.vcpu.get(Reg::ElrEl1).map_err(berr("get ELR_EL1"))?,
            self.vcpu.get(Reg::SpsrEl1).map_err(berr("get SPSR_EL1"))?,
        ])
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

fn diff_regs(q: &Regs, m: &Regs, pstate_mask: u64) -> Vec<String> {
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
    if q.pstate & pstate_mask != m.pstate & pstate_mask {
        d.push(format!(
            "pstate  qemu {:#010x}  model {:#010x} (compared bits {pstate_mask:#x})",
            q.pstate, m.pstate
        ));
    }
    d
}

/// Writes `p` as an ELF (one PT_LOAD per segment) into the temp dir; returns its path.
pub fn write_image(p: &Program, tag: &str) -> std::path::PathBuf {
    let segments = p.segments();
    let segs: Vec<Segment> = segments
        .iter()
        .map(|(addr, data)| Segment { addr: *addr, data })
        .collect();
    let elf = crate::common::elf::build(super::gen::ENTRY, &segs);
    let path = std::env::temp_dir().join(format!(
        "kvmdbg-cosim-{}-{tag}-{:x}.elf",
        std::process::id(),
        p.seed
    ));
    if let Err(e) = std::fs::write(&path, elf) {
        panic!("writing test image {}: {e}", path.display());
    }
    path
}

/// Runs `p` (already written as an ELF at `image`) in lockstep for at most `max_steps`.
/// `Err` carries a full divergence report.
pub fn run(p: &Program, image: &Path, max_steps: u64, full_every: u64) -> Result<Outcome, String> {
    let opts = Options {
        max_steps,
        full_every,
        inject: None,
    };
    run_with(p, image, &opts)
}

/// A deliberate corruption of the model's state after a given step, to prove that the
/// comparison catches each kind of divergence.
#[derive(Clone, Copy, Debug)]
pub enum Inject {
    /// Flip bit 0 of X(n).
    X(u8),
    /// Flip bit 127 of V(n).
    V(u8),
    /// Flip every bit of the byte at this guest address.
    Mem(u64),
}

pub struct Options {
    pub max_steps: u64,
    /// Full V-register and memory comparison period, in steps.
    pub full_every: u64,
    /// (step, corruption) applied to the model right after that step.
    pub inject: Option<(u64, Inject)>,
}

/// [`run`] with every option.
pub fn run_with(p: &Program, image: &Path, opts: &Options) -> Result<Outcome, String> {
    let (max_steps, full_every) = (opts.max_steps, opts.full_every);
    let mut q = QemuSide::start(image)?;
    let init = q.regs()?;
    let mut v0 = [0u128; 32];
    for (n, slot) in v0.iter_mut().enumerate() {
        *slot = q.v(n as u8)?;
    }
    let mut m = ModelSide::start(p, &init, &v0)?;
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
        if let Some((at, what)) = opts.inject {
            if at == steps + 1 {
                m.inject(what)?;
            }
        }
        let mr = m.regs()?;
        prof.0 += t1 - t;
        prof.1 += t1.elapsed();
        steps += 1;
        // At a vector both took an exception. QEMU 7.2 clears NZCV on exception entry
        // (`pstate_write(env, PSTATE_DAIF | new_mode)`) where the architecture leaves them
        // unchanged (AArch64.TakeException), so NZCV is compared through SPSR_EL1 there.
        let at_vector = (CODE_BASE..super::gen::ENTRY).contains(&qr.pc) && qr.pc == mr.pc;
        let handler = super::gen::HANDLER..super::gen::HANDLER + 4 * SYNC_HANDLER.len() as u64;
        let in_handler = p.handlers && handler.contains(&qr.pc);
        let mask = if at_vector {
            PSTATE_MASK & !0xf000_0000
        } else {
            PSTATE_MASK
        };
        let d = diff_regs(&qr, &mr, mask);
        if !d.is_empty() {
            let what = format!(
                "register divergence:\n    {}{}",
                d.join("\n    "),
                m.exception()
            );
            return Err(ctx(what, &hist));
        }
        if at_vector && !(in_handler && qr.pc != super::gen::HANDLER) {
            let outcome = exception_outcome(&mut q, &mut m, steps).map_err(|e| ctx(e, &hist))?;
            if !in_handler {
                return Ok(outcome);
            }
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
        if !in_handler && (qr.pc < super::gen::ENTRY || qr.pc > p.end_pc) {
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

/// Compares the syndrome registers of an exception both sides took.
fn exception_outcome(q: &mut QemuSide, m: &mut ModelSide, steps: u64) -> Result<Outcome, String> {
    let (mut qs, mut ms) = (q.syndrome()?, m.syndrome()?);
    // SPSR_EL1.BTYPE (bits 11:10): QEMU's `max` CPU implements FEAT_BTI and saves the BTYPE
    // a BR/BLR set; the model implements no BTI (BTYPE always 0), as PSTATE compares show.
    // SPSR_EL1.SS (bit 21): the model is single-stepped as KVM steps (PSTATE.SS set at each
    // entry), so an exception from a stepped instruction other than SVC saves SS = 1, as real
    // KVM shows (tests/conformance/guest_step_vmm_step.trace); QEMU's gdbstub steps without
    // the architectural step machine and saves SS = 0.
    qs[3] &= !(0xc00 | 1 << 21);
    ms[3] &= !(0xc00 | 1 << 21);
    // FAR_EL1 is UNKNOWN except for aborts, PC and watchpoint faults (Arm ARM D19.2.40).
    let far_valid = matches!(
        esr::class(qs[0]),
        0x20 | 0x21 | 0x22 | 0x24 | 0x25 | 0x34 | 0x35
    );
    let d: Vec<String> = SYNDROME_NAMES
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 1 || far_valid)
        .filter(|(i, _)| qs[*i] != ms[*i])
        .map(|(i, n)| format!("{n:<8} qemu {:#018x}  model {:#018x}", qs[i], ms[i]))
        .collect();
    if d.is_empty() {
        Ok(Outcome::Exception {
            steps,
            esr: qs[0],
            elr: qs[2],
        })
    } else {
        Err(format!(
            "exception syndrome divergence:\n    {}",
            d.join("\n    ")
        ))
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
    // FPSR (QC from saturating SIMD instructions) whenever V registers are compared.
    if !regs.is_empty() {
        let qf = q.fpsr()?;
        let mf = m.vcpu.get(Reg::Fpsr).map_err(berr("get FPSR"))?;
        if qf != mf {
            d.push(format!("fpsr    qemu {qf:#010x}  model {mf:#010x}"));
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
