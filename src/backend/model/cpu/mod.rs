//! The A64 interpreter of one model vCPU: fetch, decode-and-execute, data accesses.
//!
//! Owns the per-vCPU architectural state (`state`), the reference decode-and-execute
//! (`exec`, the top of the per-group files), the decoded-instruction cache and its fast
//! handlers (`decode`, `fast`, `fast_mem`, `fast_simd`), instruction batches of pre-decoded
//! blocks (`batch`, `block`), and the one data-access path (alignment, translation,
//! watchpoints, RAM vs MMIO; `Cpu::read_mem` and `Cpu::write_mem` take a call-free shortcut
//! through the data TLB for plain aligned RAM accesses, `fast_mem`). Instructions
//! never leave the guest half-done: a handler either completes (registers and PC updated)
//! or returns a [`Stop`] with the PC still at the instruction. Knows nothing about threads,
//! PSCI or the `Vcpu` trait (see `model::vcpu`).

pub(crate) mod alu;
pub(crate) mod batch;
pub(crate) mod block;
pub(crate) mod branch;
pub(crate) mod bus;
pub(crate) mod debug;
pub(crate) mod decode;
pub(crate) mod exception;
pub(crate) mod fast;
pub(crate) mod fast_mem;
pub(crate) mod fast_simd;
pub(crate) mod fp;
pub(crate) mod fp_arith;
pub(crate) mod fp_conv;
pub(crate) mod fp_scalar;
pub(crate) mod intr;
pub(crate) mod jit;
pub(crate) mod jit_effects;
pub(crate) mod jit_emit;
pub(crate) mod jit_flags;
pub(crate) mod jit_gen;
pub(crate) mod jit_ldst;
pub(crate) mod jit_mem;
pub(crate) mod jit_ops;
pub(crate) mod jit_regs;
pub(crate) mod jit_simd;
pub(crate) mod jit_simd_emit;
pub(crate) mod jit_simd_mem;
pub(crate) mod jit_worker;
pub(crate) mod ldst;
pub(crate) mod ldst_atomic;
pub(crate) mod mmu;
pub(crate) mod muldiv;
pub(crate) mod ram;
pub(crate) mod simd;
pub(crate) mod simd_across;
pub(crate) mod simd_elem;
pub(crate) mod simd_fp;
pub(crate) mod simd_indexed;
pub(crate) mod simd_int;
pub(crate) mod simd_ldst;
pub(crate) mod simd_perm;
pub(crate) mod simd_shift_imm;
pub(crate) mod simd_three_diff;
pub(crate) mod state;
pub(crate) mod sysregs;
pub(crate) mod system;

use std::cell::Cell;
use std::time::Instant;

use crate::a64::esr::{self, DabtSyndrome};
use crate::a64::fields::sctlr;

use bus::Bus;
use debug::DebugCtl;
pub(crate) use exception::Exc;
use state::CpuState;

/// Why an instruction did not complete inside the model.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Stop {
    /// A synchronous exception to deliver to the guest's EL1 vectors.
    Exception(Exc),
    /// A data access outside RAM with a valid syndrome; the PC is at the access.
    Mmio(MmioReq),
    /// A data access outside RAM without a valid syndrome (KVM: `KVM_EXIT_ARM_NISV`).
    Nisv { ipa: u64, iss: u64 },
    /// HVC #imm from EL1 (PC still at the HVC).
    Hvc(u16),
    /// SMC #imm from EL1 (PC still at the SMC).
    Smc(u16),
    /// WFI (PC still at the WFI).
    Wfi,
    /// A debug exception routed to the VMM (KVM: `KVM_EXIT_DEBUG`); PC at the instruction.
    Debug { esr: u64, far: u64 },
}

/// An MMIO access waiting for the VMM.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MmioReq {
    pub addr: u64,
    pub len: usize,
    pub write: bool,
    pub data: u64,
    pub syn: DabtSyndrome,
}

/// The exclusive monitor of one vCPU: the physical address, size and value(s) LDXR saw.
/// STXR succeeds when memory still holds those values (compare-and-swap), which is how the
/// model's monitor works across vCPUs without a global lock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Monitor {
    pub pa: u64,
    pub size: usize,
    pub vals: [u64; 2],
    pub pair: bool,
}

/// One vCPU's interpreter.
pub struct Cpu {
    pub st: CpuState,
    pub bus: Bus,
    pub dbg: DebugCtl,
    pub monitor: Option<Monitor>,
    /// PC of the next instruction, set before each instruction runs; branches overwrite it.
    pub next_pc: u64,
    /// Set when the last instruction is one KVM traps and completes outside the guest (its
    /// step exception then carries ISV=0).
    pub emulated: bool,
    pub tlb: mmu::Tlb,
    /// Decoded instructions, validated against the fetched word on every fetch.
    pub icache: decode::DecodeCache,
    /// Pre-decoded blocks for batches (`block.rs`), allocated on the first batch; taken out
    /// while a batch runs.
    pub blocks: Option<block::BlockCache>,
    /// The epoch of the generic counter (CNTVCT_EL0 = ticks since this instant).
    pub epoch: Instant,
    /// UNDEFINED instructions seen (for warning rate limiting).
    undef_count: Cell<u32>,
    /// Interrupt bookkeeping (timer lines, GIC index, re-evaluation flag): `intr.rs`.
    pub irq: intr::IrqCtl,
    /// Instructions this vCPU retired (completed in the guest, or by the backend outside
    /// it: MMIO completion, HVC, SMC, WFI). Exact: counted once per instruction.
    pub insns: u64,
    /// The deterministic clock, when the VM runs with one (`model::icount`): the generic
    /// counter then counts instructions instead of host time.
    pub vclock: Option<sysregs::VClock>,
}

/// How many UNDEFINED instructions per vCPU are logged as warnings.
const UNDEF_WARNINGS: u32 = 32;

impl Cpu {
    pub fn new(index: usize, bus: Bus, epoch: Instant) -> Self {
        Cpu {
            st: CpuState::reset(index),
            bus,
            dbg: DebugCtl::default(),
            monitor: None,
            next_pc: 0,
            emulated: false,
            tlb: mmu::Tlb::default(),
            icache: decode::DecodeCache::default(),
            blocks: None,
            epoch,
            undef_count: Cell::new(0),
            irq: intr::IrqCtl::new(index),
            insns: 0,
            vclock: None,
        }
    }

    /// Executes one instruction at PC: fetch (translation, then the word from RAM), the
    /// decoded-instruction cache (`decode.rs`), the handler.
    #[inline]
    pub fn step(&mut self) -> Result<(), Stop> {
        self.emulated = false;
        let pa = self.fetch_phys()?;
        self.step_at(pa).map(|_| ())
    }

    /// The exception for PSTATE.IL set (illegal execution state) or a misaligned PC.
    #[cold]
    #[inline(never)]
    fn fetch_state_fault(&self, pc: u64) -> Stop {
        if self.st.pstate & crate::a64::pstate::IL != 0 {
            return Stop::Exception(Exc::new(esr::ec::ILLEGAL_STATE, 0, pc));
        }
        Stop::Exception(Exc::new(esr::ec::PC_ALIGN, 0, pc).with_far(pc))
    }

    /// A fetch outside RAM: an external instruction abort, as KVM injects for a fetch from
    /// outside every memslot (`arch/arm64/kvm/mmu.c` `kvm_handle_guest_abort` ->
    /// `kvm_inject_pabt`).
    #[cold]
    #[inline(never)]
    fn fetch_outside_ram(&self, pc: u64) -> Stop {
        Stop::Exception(self.iabt(pc, exception::FSC_EXTERNAL))
    }

    /// Reads the instruction word at `pc` (translation, then RAM; outside RAM an external
    /// instruction abort).
    pub fn fetch(&mut self, pc: u64) -> Result<u32, Stop> {
        let pa = self.translate(pc, mmu::Access::Fetch)?;
        match self.bus.read(pa, 4) {
            Some(w) => Ok(w as u32),
            None => Err(self.fetch_outside_ram(pc)),
        }
    }

    /// The top-level A64 decode (Arm ARM C4.1 "A64 instruction set encoding", op0 = 28:25).
    fn exec(&mut self, i: u32) -> Result<(), Stop> {
        match (i >> 25) & 0xf {
            0b1000 | 0b1001 => self.dp_imm(i),
            0b1010 | 0b1011 => self.branch_sys(i),
            0b0100 | 0b0110 | 0b1100 | 0b1110 => self.ldst(i),
            0b0101 | 0b1101 => self.dp_reg(i),
            0b0111 | 0b1111 => self.simd_dp(i),
            _ => Err(self.undef(i)),
        }
    }

    /// Logs an encoding the model does not implement (or that is UNDEFINED) and returns the
    /// UNDEFINED exception (EC 0) the hardware would take.
    /// The first `UNDEF_WARNINGS` occurrences per vCPU are warnings, later ones debug
    /// messages (a guest looping on an UNDEFINED instruction must not flood the log). At EL0
    /// they are always debug messages: Linux traps user reads of ID registers (`mrs
    /// midr_el1`) and emulates them, an ordinary event.
    pub fn undef(&self, i: u32) -> Stop {
        let n = self.undef_count.get();
        self.undef_count.set(n.saturating_add(1));
        let pc = self.st.pc;
        if n < UNDEF_WARNINGS && self.st.el() != 0 {
            log::warn!(
                "model: undefined or unimplemented instruction {i:#010x} at pc {pc:#x}; \
                 delivering UNDEFINED (EC 0) to the guest"
            );
            if n + 1 == UNDEF_WARNINGS {
                log::warn!(
                    "model: further undefined-instruction warnings are logged at debug level"
                );
            }
        } else {
            log::debug!("model: undefined instruction {i:#010x} at pc {pc:#x}");
        }
        Stop::Exception(Exc::new(esr::ec::UNKNOWN, 0, pc))
    }

    /// Reads `size` bytes at virtual address `va`. `syn` is the syndrome hardware would report
    /// for this instruction (None: not valid); `strict` forces the alignment check
    /// (exclusives, atomics, acquire/release).
    #[inline]
    pub fn read_mem(
        &mut self,
        va: u64,
        size: usize,
        syn: Option<DabtSyndrome>,
        strict: bool,
    ) -> Result<u64, Stop> {
        if let Some(v) = self.read_ram_fast(va, size) {
            return Ok(v);
        }
        if let Some(page) = self.fill_data_tlb(va, size, false) {
            if let Some(v) = self.bus.read_in(page, va, size) {
                return Ok(v);
            }
        }
        if self.crosses_page(va, size) {
            return self.read_mem_bytes(va, size);
        }
        let pa = self.data_pa(va, size, false, strict)?;
        match self.bus.read(pa, size) {
            Some(v) => Ok(v),
            None => self.read_outside_ram(pa, size, syn),
        }
    }

    /// Writes the low `size` bytes of `val` at `va` (see [`Cpu::read_mem`]).
    #[inline]
    pub fn write_mem(
        &mut self,
        va: u64,
        size: usize,
        val: u64,
        syn: Option<DabtSyndrome>,
        strict: bool,
    ) -> Result<(), Stop> {
        if self.write_ram_fast(va, size, val) {
            return Ok(());
        }
        if let Some(page) = self.fill_data_tlb(va, size, true) {
            if self.bus.write_in(page, va, size, val).is_some() {
                return Ok(());
            }
        }
        if self.crosses_page(va, size) {
            return self.write_mem_bytes(va, size, val);
        }
        let pa = self.data_pa(va, size, true, strict)?;
        match self.bus.write(pa, size, val) {
            Some(()) => Ok(()),
            None => self.write_outside_ram(pa, size, val, syn),
        }
    }

    /// A page-crossing read, one byte at a time (each byte translated and checked).
    #[inline(never)]
    fn read_mem_bytes(&mut self, va: u64, size: usize) -> Result<u64, Stop> {
        let mut v = 0u64;
        for k in 0..size {
            v |= self.read_mem(va.wrapping_add(k as u64), 1, None, false)? << (8 * k);
        }
        Ok(v)
    }

    /// A page-crossing write, one byte at a time.
    #[inline(never)]
    fn write_mem_bytes(&mut self, va: u64, size: usize, val: u64) -> Result<(), Stop> {
        for k in 0..size {
            self.write_mem(va.wrapping_add(k as u64), 1, val >> (8 * k), None, false)?;
        }
        Ok(())
    }

    #[inline(always)]
    fn crosses_page(&self, va: u64, size: usize) -> bool {
        size > 1 && (va & 0xfff) + size as u64 > 0x1000 && self.st.sys.sctlr & sctlr::M != 0
    }

    /// Alignment check, translation and watchpoints for a data access; the physical address.
    #[inline(never)]
    pub fn data_pa(
        &mut self,
        va: u64,
        size: usize,
        write: bool,
        strict: bool,
    ) -> Result<u64, Stop> {
        let misaligned = va & (size as u64 - 1) != 0;
        if misaligned && (strict || self.st.sys.sctlr & sctlr::A != 0) {
            return Err(self.alignment_fault(va, write));
        }
        let access = if write {
            mmu::Access::Write
        } else {
            mmu::Access::Read
        };
        let (pa, device) = self.translate_attr(va, access)?;
        // Unaligned accesses to Device memory fault (Arm ARM B2.5.2 "Alignment of data
        // accesses"); with stage 1 off every data access is Device-nGnRnE.
        if misaligned && device {
            return Err(self.alignment_fault(va, write));
        }
        self.watchpoint(va, size, write)?;
        Ok(pa)
    }

    #[cold]
    #[inline(never)]
    fn alignment_fault(&self, va: u64, write: bool) -> Stop {
        Stop::Exception(self.dabt(va, write, exception::FSC_ALIGNMENT))
    }

    /// The exit for an access outside RAM that the model does not serve itself (the GIC
    /// frames are served in `intr.rs`): MMIO with a valid syndrome, else NISV with the ISS KVM
    /// reports (`kvm_vcpu_dabt_iss_nisv_sanitized`: CM | WnR | FSC).
    #[cold]
    #[inline(never)]
    pub fn mmio_stop(
        &self,
        pa: u64,
        size: usize,
        write: bool,
        data: u64,
        syn: Option<DabtSyndrome>,
    ) -> Stop {
        match syn {
            Some(syn) => Stop::Mmio(MmioReq {
                addr: pa,
                len: size,
                write,
                data: if size == 8 {
                    data
                } else {
                    data & alu::ones(8 * size as u32)
                },
                syn,
            }),
            None => Stop::Nisv {
                ipa: pa,
                iss: if write { esr::DABT_WNR } else { 0 }
                    | (0x04 + self.bus.stage2_fault_level(pa) as u64),
            },
        }
    }
}

/// The retired-instruction count at the end of a vCPU's life, at debug level
/// (`RUST_LOG=kvmdbg::backend::model::cpu=debug`): `scripts/bench-model.sh` divides the host
/// instructions of a run by it.
impl Drop for Cpu {
    fn drop(&mut self) {
        let builds = self.blocks.as_ref().map_or(0, |b| b.table.builds());
        let jit = self.blocks.as_ref().and_then(|b| b.jit.as_ref());
        log::debug!(
            "model: vCPU MPIDR {:#x} retired {} instructions ({} blocks built, {} compiled in {:?}, {} bytes of code)",
            self.st.sys.mpidr,
            self.insns,
            builds,
            jit.map_or(0, |j| j.compiled),
            jit.map_or(std::time::Duration::ZERO, |j| j.compile_time),
            jit.map_or(0, |j| j.code_bytes())
        );
    }
}

#[cfg(test)]
mod tests;
