//! Seeded random A64 instruction-stream generator for lockstep co-simulation.
//!
//! A program is: a vector table of `b .` (VBAR_EL1 points at it, so an unexpected exception
//! parks the CPU visibly), a prologue that enables FP/SIMD, sets the reserved base registers,
//! loads V0-V31 and the general registers with random values and NZCV, a random body, and an
//! epilogue that calls PSCI SYSTEM_OFF over HVC (so QEMU exits when run freely).
//!
//! Register conventions in the body: X28 = data buffer base (never written), X27 = scratch
//! base for writeback and exclusive/atomic forms (reset by `ADD X27, X28, #off` right before
//! each use), X26 = small aligned index for register-offset forms. SP points into the buffer.
//! All memory accesses are naturally aligned: with SCTLR_EL1.M = 0 data memory is
//! Device-nGnRnE, where unaligned accesses are architecturally alignment faults (Arm ARM
//! D8.2.10) but QEMU 7.2 does not fault them, so they are not a meaningful comparison.

use super::{
    gen_alu, gen_branch, gen_fp, gen_mem, gen_simd, gen_simd_int, gen_simd_more, gen_sys, mmu,
};

/// Vector table (VBAR_EL1 must be 2 KiB aligned) at a RAM address clear of the DTB QEMU
/// places at the RAM base 0x4000_0000 (QEMU `hw/arm/virt.c` memmap, `hw/arm/boot.c`).
pub const CODE_BASE: u64 = 0x4020_0000;
/// The synchronous-exception handler at VBAR_EL1 + 0x200: returns to ELR_EL1 for SVC (whose
/// preferred return address is already the next instruction), to ELR_EL1 + 4 otherwise.
/// Clobbers X25 and NZCV (restored by ERET from SPSR_EL1).
pub const SYNC_HANDLER: [u32; 8] = [
    0xd538_5219, // mrs x25, esr_el1
    0xd35a_ff39, // lsr x25, x25, #26 (EC)
    0xf100_573f, // cmp x25, #0x15 (EC_SVC64)
    0xd538_4039, // mrs x25, elr_el1
    0x5400_0040, // b.eq +8
    0x9100_1339, // add x25, x25, #4
    0xd518_4039, // msr elr_el1, x25
    0xd69f_03e0, // eret
];
/// Where SYNC_HANDLER lives.
pub const HANDLER: u64 = CODE_BASE + 0x200;

/// The first instruction executed (after the 0x800-byte vector table).
pub const ENTRY: u64 = CODE_BASE + 0x800;
/// Data buffer: 16 KiB of random bytes.
pub const DATA_BASE: u64 = 0x4060_0000;
pub const DATA_SIZE: usize = 0x4000;
/// X28 points at the middle of the buffer; SP 4 KiB below it.
pub const BUF: u64 = DATA_BASE + 0x2000;
pub const SP_VALUE: u64 = BUF - 0x1000;
/// V0-V31 initial values come from the last 512 bytes of the buffer.
const VINIT_OFF: u64 = 0x1e00;

/// Destination registers the body may write (X26-X28 are reserved, see module docs).
pub const DST: [u32; 28] = [
    0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25,
    29, 30,
];

/// splitmix64: deterministic per seed, no external crate.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in 0..n (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    pub fn bit(&mut self) -> u32 {
        (self.next() & 1) as u32
    }
    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }
    /// An "interesting" 64-bit value: often 0, all ones, sign boundaries or small numbers.
    pub fn value(&mut self) -> u64 {
        match self.below(8) {
            0 => self.pick(&[0, u64::MAX, 1, 0x8000_0000_0000_0000, 0x7fff_ffff_ffff_ffff]),
            1 => self.pick(&[0x8000_0000, 0xffff_ffff, 0x7fff_ffff, 0xffff_ffff_8000_0000]),
            2 => self.below(256),
            _ => self.next(),
        }
    }
}

/// A generated test image.
#[derive(Clone, Debug)]
pub struct Program {
    pub seed: u64,
    /// Words from CODE_BASE (vector table, prologue, body, epilogue).
    pub code: Vec<u32>,
    pub data: Vec<u8>,
    /// Translation tables at `mmu::TABLE_BASE` (empty when the MMU stays off).
    pub tables: Vec<u8>,
    /// Address of the first body instruction.
    pub body_start: u64,
    /// Address of the epilogue: lockstep ends when both CPUs reach it.
    pub end_pc: u64,
    /// Random programs take exceptions on purpose (SVC, UDF) and return through
    /// SYNC_HANDLER; regression programs end at their first exception.
    pub handlers: bool,
    /// For each SIMD instruction address, the V registers it writes (sorted, deduplicated);
    /// `None` means "unknown: compare all V registers after every step".
    pub vwrites: Option<std::collections::HashMap<u64, Vec<u8>>>,
}

impl Program {
    pub fn code_bytes(&self) -> Vec<u8> {
        self.code.iter().flat_map(|w| w.to_le_bytes()).collect()
    }

    /// Everything to load: (address, bytes) of code, data and, with the MMU, the tables.
    pub fn segments(&self) -> Vec<(u64, Vec<u8>)> {
        let mut v = vec![
            (CODE_BASE, self.code_bytes()),
            (DATA_BASE, self.data.clone()),
        ];
        if !self.tables.is_empty() {
            v.push((mmu::TABLE_BASE, self.tables.clone()));
        }
        v
    }

    /// The instruction word at `pc`, if it is in the image.
    pub fn word_at(&self, pc: u64) -> Option<u32> {
        let i = pc.checked_sub(CODE_BASE)? / 4;
        self.code.get(i as usize).copied()
    }
}

/// Instruction emitter with the random source and the SIMD write metadata.
pub struct Gen {
    pub rng: Rng,
    pub words: Vec<u32>,
    /// The program runs with the stage-1 MMU on (Normal memory): plain loads and stores may
    /// then be unaligned.
    pub mmu: bool,
    vwrites: std::collections::HashMap<u64, Vec<u8>>,
}

impl Gen {
    fn new(seed: u64, mmu: bool) -> Self {
        Gen {
            rng: Rng::new(seed),
            words: Vec::new(),
            mmu,
            vwrites: Default::default(),
        }
    }

    pub fn pc(&self) -> u64 {
        CODE_BASE + 4 * self.words.len() as u64
    }

    pub fn emit(&mut self, w: u32) {
        self.words.push(w);
    }

    /// Emits a SIMD instruction that writes V registers `regs` (numbers taken mod 32).
    pub fn emit_v(&mut self, w: u32, regs: &[u32]) {
        let mut v: Vec<u8> = regs.iter().map(|r| (r % 32) as u8).collect();
        v.sort_unstable();
        v.dedup();
        self.vwrites.insert(self.pc(), v);
        self.emit(w);
    }

    /// A destination register (never X26-X28 or SP).
    pub fn dst(&mut self) -> u32 {
        self.rng.pick(&DST)
    }
    /// A destination where 31 encodes XZR (writes discarded).
    pub fn dst_or_zr(&mut self) -> u32 {
        if self.rng.below(16) == 0 {
            31
        } else {
            self.dst()
        }
    }
    /// Any source register (31 = XZR or SP depending on the encoding).
    pub fn src(&mut self) -> u32 {
        self.rng.below(32) as u32
    }
    /// A source register other than X27 (for stores with writeback to X27).
    pub fn src_not27(&mut self) -> u32 {
        loop {
            let r = self.src();
            if r != 27 {
                return r;
            }
        }
    }

    /// Alignment for X27 as the base of plain (non-exclusive, non-atomic) accesses: 16, or 1
    /// with the MMU on.
    pub fn plain_align(&self) -> u64 {
        if self.mmu {
            1
        } else {
            16
        }
    }

    /// X27 = X28 + `lo` + a random multiple of `align` below `span`.
    pub fn x27_random(&mut self, lo: u64, align: u64, span: u64) {
        let off = lo + align * self.rng.below(span / align);
        self.set_x27(off);
    }

    /// `ADD X27, X28, #off` (Arm ARM C6.2.4 ADD (immediate), 64-bit).
    pub fn set_x27(&mut self, off: u64) {
        assert!(off < 0x1000);
        self.emit(0x9100_0000 | (off as u32) << 10 | 28 << 5 | 27); // add x27, x28, #off
    }
}

/// MOVZ/MOVK sequence loading a 64-bit constant into Xd (C6.2.191 MOVZ, C6.2.190 MOVK).
pub fn mov64(g: &mut Gen, rd: u32, v: u64) {
    g.emit(0xd280_0000 | ((v & 0xffff) as u32) << 5 | rd); // movz xd, #v[15:0]
    for hw in 1..4u32 {
        let part = (v >> (16 * hw)) & 0xffff;
        if part != 0 {
            g.emit(0xf280_0000 | hw << 21 | (part as u32) << 5 | rd); // movk xd, #part, lsl #16*hw
        }
    }
}

fn prologue(g: &mut Gen) {
    // Vector table: 16 entries of 0x80 bytes of `b .` (0x14000000), parking the CPU on any
    // unexpected exception, except "current EL with SP_ELx, synchronous" (+0x200, Arm ARM
    // D1.10.2 "Exception vectors"), which returns past the faulting instruction.
    for _ in 0..(0x800 / 4) {
        g.emit(0x1400_0000); // b . (park on any unexpected exception)
    }
    for (i, w) in SYNC_HANDLER.iter().enumerate() {
        g.words[0x200 / 4 + i] = *w;
    }
    mov64(g, 0, CODE_BASE);
    g.emit(0xd518_c000); // msr vbar_el1, x0
    g.emit(0xd2a0_0600); // movz x0, #0x30, lsl #16: CPACR_EL1.FPEN = 0b11 (bits 21:20)
    g.emit(0xd518_1040); // msr cpacr_el1, x0
    g.emit(0xd503_3fdf); // isb
    if g.mmu {
        mmu::enable(g);
    }
    mov64(g, 28, BUF);
    g.emit(0xd140_079f); // sub sp, x28, #1, lsl #12 (SP = BUF - 0x1000)
    mov64(g, 27, DATA_BASE + VINIT_OFF);
    for i in 0..16u32 {
        // ldp q(2i), q(2i+1), [x27, #32*i]: opc=10 V=1 mode=010 L=1, imm7 = 2i (scaled by 16).
        g.emit(0xad40_0000 | (2 * i) << 15 | (2 * i + 1) << 10 | 27 << 5 | (2 * i));
    }
    let nzcv = g.rng.below(16) << 28;
    mov64(g, 0, nzcv);
    g.emit(0xd51b_4200); // msr nzcv, x0
    for r in DST {
        let v = g.rng.value();
        mov64(g, r, v);
    }
    let idx = 16 * g.rng.below(16);
    mov64(g, 26, idx);
    g.set_x27(0);
}

fn epilogue(g: &mut Gen) {
    g.emit(0xd2b0_8000); // movz x0, #0x8400, lsl #16
    g.emit(0xf280_0100); // movk x0, #0x8: x0 = PSCI SYSTEM_OFF 0x84000008
    g.emit(0xd400_0002); // hvc #0
    g.emit(0x1400_0000); // b . (not reached)
}

fn random_data(rng: &mut Rng) -> Vec<u8> {
    (0..DATA_SIZE / 8)
        .flat_map(|_| rng.value().to_le_bytes())
        .collect()
}

/// The instruction classes, with relative weights.
/// One instruction class: name (for `KVMDBG_COSIM_SKIP`), weight, emitter.
pub type Class = (&'static str, u32, fn(&mut Gen));

pub const CLASSES: &[Class] = &[
    ("alu_imm", 6, gen_alu::add_sub_imm),
    ("logic_imm", 4, gen_alu::logical_imm),
    ("move_wide", 3, gen_alu::move_wide),
    ("adr", 2, gen_alu::adr),
    ("bitfield", 4, gen_alu::bitfield),
    ("extr", 2, gen_alu::extr),
    ("alu_shifted", 6, gen_alu::add_sub_shifted),
    ("alu_extended", 4, gen_alu::add_sub_extended),
    ("logic_shifted", 5, gen_alu::logical_shifted),
    ("adc", 3, gen_alu::adc),
    ("ccmp", 3, gen_alu::ccmp),
    ("csel", 4, gen_alu::csel),
    ("dp2", 5, gen_alu::dp2),
    ("dp1", 4, gen_alu::dp1),
    ("dp3", 4, gen_alu::dp3),
    ("sdiv_overflow", 1, gen_alu::sdiv_overflow),
    ("branch", 6, gen_branch::branch),
    ("ldst_imm", 6, gen_mem::ldst_unsigned),
    ("ldst_unscaled", 3, gen_mem::ldst_unscaled),
    ("ldst_index", 4, gen_mem::ldst_indexed),
    ("ldst_regoff", 3, gen_mem::ldst_regoff),
    ("ldr_literal", 2, gen_mem::ldr_literal),
    ("ldst_pair", 4, gen_mem::ldst_pair),
    ("exclusive", 3, gen_mem::exclusive),
    ("acq_rel", 2, gen_mem::acquire_release),
    ("lse", 4, gen_mem::lse),
    ("cas", 3, gen_mem::cas),
    ("simd_ldst", 4, gen_simd::ldst),
    ("simd_pair", 2, gen_simd::ldst_pair),
    ("simd_ld1st1", 2, gen_simd::ld1_st1),
    ("simd_logic", 4, gen_simd::logic),
    ("simd_movi", 2, gen_simd::movi),
    ("simd_dup_ins", 3, gen_simd::dup_ins),
    ("simd_umov", 2, gen_simd::umov_smov),
    ("simd_fmov", 2, gen_simd::fmov_general),
    ("simd_add_sub", 2, gen_simd::add_sub),
    ("simd_fmov_reg", 1, gen_simd::fmov_reg),
    ("simd_fmov_imm_scalar", 1, gen_simd::fmov_imm_scalar),
    ("simd_fmov_imm_vector", 1, gen_simd::fmov_imm_vector),
    ("simd_three_same", 4, gen_simd_int::three_same),
    ("simd_two_misc", 3, gen_simd_int::two_misc),
    ("simd_across", 1, gen_simd_int::across_lanes),
    ("simd_shift_imm", 3, gen_simd_int::shift_imm),
    ("simd_permute", 2, gen_simd_int::permute),
    ("simd_saturating", 2, gen_simd_int::saturating),
    ("simd_three_diff", 3, gen_simd_more::three_diff),
    ("simd_by_element", 2, gen_simd_more::by_element),
    ("simd_scalar_int", 3, gen_simd_more::scalar_int),
    ("fp_special", 2, gen_fp::fp_special),
    ("fp_scalar", 4, gen_fp::scalar),
    ("fp_convert", 3, gen_fp::convert),
    ("simd_fp", 4, gen_fp::vector),
    ("system", 3, gen_sys::system),
    ("exception", 1, exception),
];

/// Classes the model does not implement yet, skipped by default (each has an ignored
/// regression test in tests/cosim_regressions.rs). Remove a name once the model runs it.
/// (LD1/ST1, the first entry, was implemented by the model after the cosim found it.)
pub const DEFAULT_SKIP: &str = "";

/// Classes excluded by `KVMDBG_COSIM_SKIP` (comma-separated class names; unset means
/// [`DEFAULT_SKIP`], empty means none).
fn skipped() -> Vec<String> {
    let list = std::env::var("KVMDBG_COSIM_SKIP").unwrap_or_else(|_| DEFAULT_SKIP.into());
    list.split(',')
        .map(|c| c.trim().to_string())
        .filter(|c| !c.is_empty())
        .collect()
}

/// Emits one random unit (one instruction or a short fixed-shape sequence) from `classes`.
pub fn random_unit(g: &mut Gen, classes: &[&Class]) {
    let total: u32 = classes.iter().map(|c| c.1).sum();
    let mut x = g.rng.below(total as u64) as u32;
    for (_, w, f) in classes {
        if x < *w {
            return f(g);
        }
        x -= w;
    }
}

/// A random program of about `body_len` body instructions of every class not excluded by
/// `KVMDBG_COSIM_SKIP`.
pub fn generate(seed: u64, body_len: usize) -> Program {
    let skip = skipped();
    let classes: Vec<&Class> = CLASSES
        .iter()
        .filter(|(n, _, _)| !skip.iter().any(|s| s == n))
        .collect();
    generate_from(seed, body_len, &classes)
}

/// A random program drawing only from `classes`; odd seeds run with the MMU on.
pub fn generate_from(seed: u64, body_len: usize, classes: &[&Class]) -> Program {
    let mut g = Gen::new(seed, seed & 1 == 1);
    let data = random_data(&mut g.rng);
    prologue(&mut g);
    let body_start = g.pc();
    let end = g.words.len() + body_len;
    while g.words.len() < end {
        random_unit(&mut g, classes);
    }
    finish(g, seed, data, body_start, true)
}

/// SVC #imm16 (0xd4000001 | imm16 << 5) or UDF #imm16 (imm16): synchronous exceptions to
/// the current EL, handled by SYNC_HANDLER.
pub fn exception(g: &mut Gen) {
    let imm16 = g.rng.below(0x1_0000) as u32;
    if g.rng.bit() == 1 {
        g.emit(0xd400_0001 | imm16 << 5); // svc #imm16
    } else {
        g.emit(imm16); // udf #imm16
    }
}

/// A program whose body is exactly `body` (for regression tests), with or without the MMU:
/// every step compares all V registers.
pub fn with_body(seed: u64, body: &[u32], mmu: bool) -> Program {
    let mut g = Gen::new(seed, mmu);
    let data = random_data(&mut g.rng);
    prologue(&mut g);
    let body_start = g.pc();
    for w in body {
        g.emit(*w);
    }
    finish(g, seed, data, body_start, false)
}

fn finish(mut g: Gen, seed: u64, data: Vec<u8>, body_start: u64, random: bool) -> Program {
    let end_pc = g.pc();
    epilogue(&mut g);
    Program {
        seed,
        tables: if g.mmu { mmu::tables() } else { Vec::new() },
        code: g.words,
        data,
        body_start,
        end_pc,
        handlers: random,
        vwrites: random.then_some(g.vwrites),
    }
}
