//! The data-TLB plain path of the JIT's inline SIMD&FP loads and stores (`jit_simd.rs`):
//! the host address of an access, or a branch to the op's handler.
//!
//! Owns [`plain_host`]: the conditions of `fast_mem::vector`'s plain case (`Cpu::plain_page`
//! and `Ram::data_host`), the lookup as `jit_ldst.rs` compiles it for general registers
//! (the same `Ctx` tables), except that a store to a page the dirty-page log has not yet
//! marked goes to the handler (which marks it) rather than to a trampoline. The register
//! transfers themselves are `jit_simd.rs`'s. Batches, and so compiled blocks, only run with
//! no debug feature in use (`Cpu::debug_quiet`).

use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{types, Block, InstBuilder, MemFlagsData, Value};

use super::jit_gen::{Gen, OFF_DATA_END, OFF_RAM_HOST, OFF_TLB};
use super::jit_ldst::marked_or;
use super::mmu::{DATA_ENTRY_BYTES, DATA_PAGE, DATA_READ_TAG, DATA_WRITE_TAG, TLB_SIZE};

/// The host address of a plain access at `addr` aligned to `align` bytes (a power of two,
/// at most 16: a Q access is two 8-byte halves in one page), with PSTATE `p`: naturally
/// aligned, the data-TLB entry of the page tagged for this access from this EL
/// (`mmu::Tlb::data_lookup`), the page inside the first RAM window (`Ram::data_host`), and
/// for a write while the dirty-page log is on, the page already marked. Otherwise a branch
/// to `miss`, with nothing accessed.
pub fn plain_host(
    g: &mut Gen,
    p: Value,
    addr: Value,
    align: u32,
    write: bool,
    miss: Block,
) -> Value {
    let flags = MemFlagsData::trusted();
    let low = g.b.ins().band_imm_u(addr, align as i64 - 1);
    let aligned = g.b.create_block();
    g.b.ins().brif(low, miss, &[], aligned, &[]);
    g.b.switch_to_block(aligned);
    // Tag: the VA page | 1 at EL0 (PSTATE.M[3:2] = 0: Arm ARM C5.2.19 "SPSR_EL1").
    let el = g.b.ins().band_imm_u(p, 0b1100);
    let el0 = g.b.ins().icmp_imm_s(IntCC::Equal, el, 0);
    let el0 = g.b.ins().uextend(types::I64, el0);
    let page = g.b.ins().band_imm_s(addr, !0xfff);
    let tag = g.b.ins().bor(page, el0);
    let slot = g.b.ins().ushr_imm_u(addr, 12);
    let slot = g.b.ins().band_imm_u(slot, TLB_SIZE as i64 - 1);
    let at = g.b.ins().imul_imm_u(slot, DATA_ENTRY_BYTES as i64);
    let table = g.b.ins().load(types::I64, flags, g.ctx, OFF_TLB);
    let entry = g.b.ins().iadd(table, at);
    let tag_at = if write { DATA_WRITE_TAG } else { DATA_READ_TAG };
    let have = g.b.ins().load(types::I64, flags, entry, tag_at);
    let off = g.b.ins().load(types::I64, flags, entry, DATA_PAGE);
    let end = g.b.ins().load(types::I64, flags, g.ctx, OFF_DATA_END);
    let tag_ok = g.b.ins().icmp(IntCC::Equal, have, tag);
    let in_ram = g.b.ins().icmp(IntCC::UnsignedLessThan, off, end);
    let ok = g.b.ins().band(tag_ok, in_ram);
    let access = g.b.create_block();
    g.b.ins().brif(ok, access, &[], miss, &[]);
    g.b.switch_to_block(access);
    if write {
        marked_or(g, off, miss);
    }
    let host = g.b.ins().load(types::I64, flags, g.ctx, OFF_RAM_HOST);
    let within = g.b.ins().band_imm_u(addr, 0xfff);
    let h = g.b.ins().iadd(host, off);
    g.b.ins().iadd(h, within)
}
