//! General-register loads and stores in JIT code (`jit_gen.rs`): the address computed in
//! host code, the access through the data TLB's plain path inline (the lookup of
//! `mmu::Tlb::data_lookup` and the read or write of `Ram::read_in`/`Ram::write_in`, on the
//! tables `Ctx` points to), except stores while the dirty-page log is on (snapshots,
//! recording), which take a small trampoline that needs no guest register
//! (`Cpu::write_ram_fast`, which marks the page dirty); and on a miss
//! (TLB miss, misalignment, debug in use, MMIO, a fault) the op's own handler from scratch,
//! as the interpreter runs it (`fast_mem::load`, `fast_mem::store`: the same plain path
//! first, then the full one with its exact exceptions and syndromes).
//!
//! Owns [`Mem`] (which words are compiled so: the single-register forms `decode.rs` routes
//! to `fast_mem::load`/`store` with a base other than SP) and the trampoline
//! [`write_plain`]. Batches, and so compiled blocks, only run with no debug feature in use
//! (`Cpu::debug_quiet`), the one condition of the plain path that is not checked here. Semantics as `fast_mem.rs`: writeback after the access,
//! a loaded value winning over writeback into the same register.

use std::ffi::c_void;

use cranelift_codegen::ir::{
    types, AbiParam, Block, InstBuilder, MemFlagsData, SigRef, Signature, Value,
};

use super::block::Op;
use super::fast_mem::{OFFSET, POST, PRE, REGISTER};
use super::jit::Ctx;
use super::jit_gen::{Gen, OFF_DIRTY_BITS, OFF_DIRTY_ON};
use super::mmu::{DATA_ENTRY_BYTES, DATA_PAGE, DATA_READ_TAG, DATA_WRITE_TAG, TLB_SIZE};

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

/// The store trampoline's signature (imported once per block).
pub struct Sigs {
    write: SigRef,
}

impl Sigs {
    pub fn import(g: &mut Gen, call_conv: cranelift_codegen::isa::CallConv) -> Self {
        let ptr = g.ptr;
        let mut write = Signature::new(call_conv);
        write.params.extend([
            AbiParam::new(ptr),
            AbiParam::new(types::I64),
            AbiParam::new(types::I32),
            AbiParam::new(types::I64),
        ]);
        write.returns.push(AbiParam::new(types::I32));
        Sigs {
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
    let store = (!m.load).then(|| g.x(m.rt));
    let (r, raw, host) = access_inline(g, sigs, addr, m.size, store);
    let raw = m.load.then_some(raw);
    let (miss, hit) = (g.b.create_block(), g.b.create_block());
    g.b.ins().brif(r, miss, &[], hit, &[]);
    g.b.switch_to_block(hit);
    if let Some(wb) = wb {
        g.set_x(m.rn, wb);
    }
    if let Some(raw) = raw {
        let v = extend(g, m, raw);
        g.set_x(m.rt, v);
    }
    if store.is_some() {
        // A store into the block's own words (or through the trampoline: `host` then
        // aims at the block) leaves it before the next op if a word changed.
        g.check_store_into_block(host, 1 << m.size, k + 1);
    }
    g.join_handler_fallback(miss, before, tramp, k, pc, id, op);
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
            let e = if drop == 0 {
                rm // a 64-bit index: nothing to extend
            } else {
                let top = g.b.ins().ishl_imm_u(rm, drop);
                if m.aux & (1 << 8) != 0 {
                    g.b.ins().sshr_imm_u(top, drop)
                } else {
                    g.b.ins().ushr_imm_u(top, drop)
                }
            };
            let scale = (m.aux >> 16) as i64;
            let e = if scale == 0 {
                e
            } else {
                g.b.ins().ishl_imm_u(e, scale)
            };
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

/// The plain access of 2^`size` bytes at `addr`, inline: a read, or a write of the low bytes
/// of `store`. Returns (miss: nonzero when the plain path does not apply and nothing was
/// accessed, the value read otherwise). As `Cpu::read_ram_fast` and `Cpu::write_ram_fast`:
/// naturally aligned, the data-TLB entry of the page tagged for this access from this EL
/// (`mmu::Tlb::data_lookup`), the page inside the first RAM window (`Ram::data_host`). The
/// entry is only read when the address is aligned, and RAM only on a hit; RAM is accessed
/// by plain aligned loads and stores, which on x86-64 and AArch64 are the single-copy atomic
/// accesses `Ram::read_in` and `Ram::write_in` make. A write while the dirty-page log is on
/// goes through [`write_plain`] (`Ram::write_in` marks the page); while it is off a write
/// marks nothing, as `DirtyPages::mark`. The third value is the host address written (the
/// block's first word after [`write_plain`], whose address is not known here; 0 on a miss
/// or for a read).
fn access_inline(
    g: &mut Gen,
    sigs: &Sigs,
    addr: Value,
    size: u32,
    store: Option<Value>,
) -> (Value, Value, Value) {
    use cranelift_codegen::ir::condcodes::IntCC;
    let flags = MemFlagsData::trusted();
    let (hit, join) = (g.b.create_block(), g.b.create_block());
    let miss = g.b.append_block_param(join, types::I32);
    let value = g.b.append_block_param(join, types::I64);
    let host_at = g.b.append_block_param(join, g.ptr);
    let one = g.b.ins().iconst(types::I32, 1);
    let zero = g.b.ins().iconst(types::I64, 0);
    // A store to a page not yet marked in the dirty-page log: through the trampoline
    // (filled below, once the current block is).
    let logged = store.map(|_| g.b.create_block());
    if size > 0 {
        let low = g.b.ins().band_imm_u(addr, (1i64 << size) - 1);
        g.b.ins()
            .brif(low, join, &[one.into(), zero.into(), zero.into()], hit, &[]);
    } else {
        // A byte is always aligned.
        g.b.ins().jump(hit, &[]);
    }
    g.b.switch_to_block(hit);
    let page = g.b.ins().band_imm_s(addr, !0xfff);
    let tag = g.b.ins().bor(page, g.el0_tag);
    let slot = g.b.ins().ushr_imm_u(addr, 12);
    let slot = g.b.ins().band_imm_u(slot, TLB_SIZE as i64 - 1);
    let at = g.b.ins().imul_imm_u(slot, DATA_ENTRY_BYTES as i64);
    let table = g.b.use_var(g.tlb);
    let entry = g.b.ins().iadd(table, at);
    let tag_at = if store.is_some() {
        DATA_WRITE_TAG
    } else {
        DATA_READ_TAG
    };
    let have = g.b.ins().load(types::I64, flags, entry, tag_at);
    let off = g.b.ins().load(types::I64, flags, entry, DATA_PAGE);
    let tag_ok = g.b.ins().icmp(IntCC::Equal, have, tag);
    let in_ram = g.b.ins().icmp(IntCC::UnsignedLessThan, off, g.data_end);
    let ok = g.b.ins().band(tag_ok, in_ram);
    let access = g.b.create_block();
    g.b.ins().brif(
        ok,
        access,
        &[],
        join,
        &[one.into(), zero.into(), zero.into()],
    );
    g.b.switch_to_block(access);
    let within = g.b.ins().band_imm_u(addr, 0xfff);
    let h = g.b.ins().iadd(g.ram_host, off);
    let h = g.b.ins().iadd(h, within);
    if let Some(logged) = logged {
        marked_or(g, off, logged);
    }
    let v = match (store, size) {
        (Some(v), 0) => {
            g.b.ins().istore8(flags, v, h, 0);
            zero
        }
        (Some(v), 1) => {
            g.b.ins().istore16(flags, v, h, 0);
            zero
        }
        (Some(v), 2) => {
            g.b.ins().istore32(flags, v, h, 0);
            zero
        }
        (Some(v), _) => {
            g.b.ins().store(flags, v, h, 0);
            zero
        }
        (None, 0) => g.b.ins().uload8(types::I64, flags, h, 0),
        (None, 1) => g.b.ins().uload16(types::I64, flags, h, 0),
        (None, 2) => g.b.ins().uload32(flags, h, 0),
        (None, _) => g.b.ins().load(types::I64, flags, h, 0),
    };
    let no = g.b.ins().iconst(types::I32, 0);
    let at = if store.is_some() { h } else { zero };
    g.b.ins().jump(join, &[no.into(), v.into(), at.into()]);
    if let (Some(logged), Some(v)) = (logged, store) {
        g.b.switch_to_block(logged);
        let sz = g.b.ins().iconst(types::I32, size as i64);
        let f = g.b.ins().iconst(g.ptr, write_plain as *const () as i64);
        let call =
            g.b.ins()
                .call_indirect(sigs.write, f, &[g.ctx, addr, sz, v]);
        let r = g.b.inst_results(call)[0];
        let words = g.words();
        g.b.ins().jump(join, &[r.into(), zero.into(), words.into()]);
    }
    g.b.switch_to_block(join);
    (miss, value, host_at)
}

/// The data-TLB tag bit of the EL in `pstate` (an i64 value): 1 at EL0 (PSTATE.M\[3:2\] =
/// 0: Arm ARM C5.2.19 "SPSR_EL1"), as `mmu::Tlb::data_lookup` tags entries.
pub fn el0_tag(b: &mut cranelift_frontend::FunctionBuilder, pstate: Value) -> Value {
    use cranelift_codegen::ir::condcodes::IntCC;
    let el = b.ins().band_imm_u(pstate, 0b1100);
    let el0 = b.ins().icmp_imm_s(IntCC::Equal, el, 0);
    b.ins().uextend(types::I64, el0)
}

/// Goes on in a new block when the dirty-page log is off or already has the bit of the page
/// at offset `off` of the first RAM window (`DirtyPages::bitmap`), else to `logged`: a
/// page's first store of a snapshot interval takes the trampoline, which sets the bit.
pub(super) fn marked_or(g: &mut Gen, off: Value, logged: Block) {
    let flags = MemFlagsData::trusted();
    let (check, store) = (g.b.create_block(), g.b.create_block());
    let on = g.b.ins().load(g.ptr, flags, g.ctx, OFF_DIRTY_ON);
    let on = g.b.ins().uload8(types::I32, flags, on, 0);
    g.b.ins().brif(on, check, &[], store, &[]);
    g.b.switch_to_block(check);
    let bits = g.b.ins().load(g.ptr, flags, g.ctx, OFF_DIRTY_BITS);
    let page = g.b.ins().ushr_imm_u(off, 12);
    let word = g.b.ins().ushr_imm_u(page, 6);
    let at = g.b.ins().ishl_imm_u(word, 3);
    let at = g.b.ins().iadd(bits, at);
    let w = g.b.ins().load(types::I64, flags, at, 0);
    let bit = g.b.ins().band_imm_u(page, 63);
    let w = g.b.ins().ushr(w, bit);
    let set = g.b.ins().band_imm_u(w, 1);
    g.b.ins().brif(set, store, &[], logged, &[]);
    g.b.switch_to_block(store);
}

/// The plain write of the low 2^`size` bytes of `val` at `va`: 0, or 1 when the plain path
/// does not apply (nothing written).
pub extern "C" fn write_plain(ctx: *mut c_void, va: u64, size: u32, val: u64) -> u32 {
    // SAFETY: as in `read_plain`.
    let ctx = unsafe { &mut *ctx.cast::<Ctx>() };
    (!ctx.cpu().write_ram_fast(va, 1 << size, val)) as u32
}
