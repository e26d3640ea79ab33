//! General-register loads and stores in JIT code (`jit_gen.rs`): the address computed in
//! host code, the access through the data TLB's plain path (`Cpu::read_ram_fast`,
//! `Cpu::write_ram_fast`) by a small trampoline that needs no guest register, and on a miss
//! (TLB miss, misalignment, debug in use, MMIO, a fault) the op's own handler from scratch,
//! as the interpreter runs it (`fast_mem::load`, `fast_mem::store`: the same plain path
//! first, then the full one with its exact exceptions and syndromes).
//!
//! Owns [`Mem`] (which words are compiled so: the single-register forms `decode.rs` routes
//! to `fast_mem::load`/`store` with a base other than SP) and the trampolines
//! [`read_plain`], [`write_plain`]. Semantics as `fast_mem.rs`: writeback after the access,
//! a loaded value winning over writeback into the same register.

use std::ffi::c_void;

use cranelift_codegen::ir::{types, AbiParam, InstBuilder, MemFlagsData, SigRef, Signature, Value};

use super::block::Op;
use super::fast_mem::{OFFSET, POST, PRE, REGISTER};
use super::jit::Ctx;
use super::jit_gen::{Gen, OFF_VALUE};

/// A load or store compiled with the plain-path trampoline.
#[derive(Clone, Copy, Debug)]
pub struct Mem {
    pub load: bool,
    /// log2 of the access size.
    pub size: u32,
    /// `fast_mem::OFFSET`, `PRE`, `POST` or `REGISTER`.
    pub mode: u8,
    /// Loads: sign-extend to 64 bits, to 32 bits, or neither.
    pub sign64: bool,
    pub sign32: bool,
    pub rt: u32,
    pub rn: u32,
    pub aux: u64,
    pub word: u32,
}

/// The load/store form of `i` (operand `aux` from `decode.rs`), as `decode::ldst` routes
/// general-register single loads and stores, with a base other than SP.
pub fn classify(i: u32, aux: u64) -> Option<Mem> {
    if (i >> 25) & 5 != 0b100 || (i >> 26) & 1 != 0 || (i >> 27) & 7 != 0b111 {
        return None;
    }
    let (size, opc) = (i >> 30, (i >> 22) & 3);
    let (load, sign64, sign32) = match (size, opc) {
        (_, 0) => (false, false, false),
        (_, 1) => (true, false, false),
        (0..=2, 2) => (true, true, false),
        (0 | 1, 3) => (true, false, true),
        _ => return None,
    };
    let mode = if (i >> 24) & 3 == 1 {
        OFFSET
    } else if (i >> 24) & 3 != 0 {
        return None;
    } else {
        match ((i >> 21) & 1, (i >> 10) & 3) {
            (0, 0) => OFFSET,
            (0, 1) => POST,
            (0, 3) => PRE,
            (1, 2) if (i >> 13) & 2 != 0 => REGISTER,
            _ => return None,
        }
    };
    let rn = (i >> 5) & 31;
    if rn == 31 {
        return None; // SP: its alignment check stays with the handler
    }
    Some(Mem {
        load,
        size,
        mode,
        sign64,
        sign32,
        rt: i & 31,
        rn,
        aux,
        word: i,
    })
}

/// Signatures of the two trampolines (imported once per block).
pub struct Sigs {
    read: SigRef,
    write: SigRef,
}

impl Sigs {
    pub fn import(g: &mut Gen, call_conv: cranelift_codegen::isa::CallConv) -> Self {
        let ptr = g.ptr;
        let mut read = Signature::new(call_conv);
        read.params.extend([
            AbiParam::new(ptr),
            AbiParam::new(types::I64),
            AbiParam::new(types::I32),
        ]);
        read.returns.push(AbiParam::new(types::I32));
        let mut write = read.clone();
        write.params.push(AbiParam::new(types::I64));
        Sigs {
            read: g.b.import_signature(read),
            write: g.b.import_signature(write),
        }
    }
}

/// Emits op `k` (at `pc`) `m`: the plain access inline with its trampoline, the full handler
/// (`call` with trampoline signature `tramp` and handler index `id`) when it misses.
#[allow(clippy::too_many_arguments)]
pub fn emit(
    g: &mut Gen,
    sigs: &Sigs,
    tramp: SigRef,
    k: usize,
    pc: Value,
    id: u32,
    op: &Op,
    m: &Mem,
) {
    let before = g.snapshot();
    let base = g.x(m.rn);
    let (addr, wb) = address(g, m, base);
    let size = g.b.ins().iconst(types::I32, m.size as i64);
    let r = if m.load {
        let f = g.b.ins().iconst(g.ptr, read_plain as *const () as i64);
        let call = g.b.ins().call_indirect(sigs.read, f, &[g.ctx, addr, size]);
        g.b.inst_results(call)[0]
    } else {
        let v = g.x(m.rt);
        let f = g.b.ins().iconst(g.ptr, write_plain as *const () as i64);
        let call =
            g.b.ins()
                .call_indirect(sigs.write, f, &[g.ctx, addr, size, v]);
        g.b.inst_results(call)[0]
    };
    let (miss, hit, join) = (g.b.create_block(), g.b.create_block(), g.b.create_block());
    g.b.ins().brif(r, miss, &[], hit, &[]);
    g.b.switch_to_block(hit);
    if let Some(wb) = wb {
        g.set_x(m.rn, wb);
    }
    if m.load {
        let flags = MemFlagsData::trusted();
        let raw = g.b.ins().load(types::I64, flags, g.ctx, OFF_VALUE);
        let v = extend(g, m, raw);
        g.set_x(m.rt, v);
    }
    let after = g.snapshot();
    g.b.ins().jump(join, &[]);
    g.b.switch_to_block(miss);
    g.restore(before);
    g.call(tramp, k, pc, id, op);
    g.rejoin(after);
    g.b.ins().jump(join, &[]);
    g.b.switch_to_block(join);
}

/// The access address and the writeback value (PRE, POST), as `Cpu::mode_addr`.
fn address(g: &mut Gen, m: &Mem, base: Value) -> (Value, Option<Value>) {
    match m.mode {
        OFFSET => (g.b.ins().iadd_imm_s(base, m.aux as i64), None),
        PRE => {
            let a = g.b.ins().iadd_imm_s(base, m.aux as i64);
            (a, Some(a))
        }
        POST => (base, Some(g.b.ins().iadd_imm_s(base, m.aux as i64))),
        _ => {
            // `aux` from `fast_mem::reg_offset_aux`: bits 5:0 the high bits dropped, bit 8
            // sign extension, bits 17:16 the scale.
            let rm = g.x((m.word >> 16) & 31);
            let drop = (m.aux & 63) as i64;
            let top = g.b.ins().ishl_imm_u(rm, drop);
            let e = if m.aux & (1 << 8) != 0 {
                g.b.ins().sshr_imm_u(top, drop)
            } else {
                g.b.ins().ushr_imm_u(top, drop)
            };
            let e = g.b.ins().ishl_imm_u(e, (m.aux >> 16) as i64);
            (g.b.ins().iadd(base, e), None)
        }
    }
}

/// `ldst::extend_loaded` of a raw little-endian value of 2^size bytes.
fn extend(g: &mut Gen, m: &Mem, raw: Value) -> Value {
    if !m.sign64 && !m.sign32 {
        return raw;
    }
    let sh = 64 - (8i64 << m.size);
    let top = g.b.ins().ishl_imm_u(raw, sh);
    let v = g.b.ins().sshr_imm_u(top, sh);
    if m.sign32 {
        g.b.ins().band_imm_u(v, 0xffff_ffff)
    } else {
        v
    }
}

/// The plain read of 2^`size` bytes at `va` for generated code: 0 and the value in
/// `Ctx::value`, or 1 when the plain path does not apply (nothing changed).
pub extern "C" fn read_plain(ctx: *mut c_void, va: u64, size: u32) -> u32 {
    // SAFETY: as in `jit::call_op`: the context of the running block, not otherwise used
    // during the call.
    let ctx = unsafe { &mut *ctx.cast::<Ctx>() };
    match ctx.cpu().read_ram_fast(va, 1 << size) {
        Some(v) => {
            ctx.value = v;
            0
        }
        None => 1,
    }
}

/// The plain write of the low 2^`size` bytes of `val` at `va`: 0, or 1 when the plain path
/// does not apply (nothing written).
pub extern "C" fn write_plain(ctx: *mut c_void, va: u64, size: u32, val: u64) -> u32 {
    // SAFETY: as in `read_plain`.
    let ctx = unsafe { &mut *ctx.cast::<Ctx>() };
    (!ctx.cpu().write_ram_fast(va, 1 << size, val)) as u32
}
