//! The JIT tier's code generator: one pre-decoded block (`block.rs`) to host code through
//! Cranelift, for whatever host ISA kvmdbg runs on (x86-64 or AArch64).
//!
//! Owns [`Compiler`]. The generated function (`jit_mem::Entry::call`) takes the CPU, the
//! block's first word in guest RAM and the trampolines' context, and returns
//! `n | status << 32`: [`RAN`] (every op ran), [`STALE`] (op `n`'s word no longer matches
//! RAM), [`STOPPED`] (op `n`'s handler returned a stop, kept in the context); `n` ops
//! completed in every case, with `CpuState::pc`, `Cpu::insns` and `Cpu::next_pc` stored
//! exactly as the interpreter's `Cpu::run_block` leaves them.
//!
//! The block's words are loaded from guest RAM and compared with the words its ops were
//! decoded from at entry and after every call of a handler that may write RAM
//! (`jit_effects.rs`) or store into the block's own words
//! (`Gen::check_words`: a mismatch leaves the block before the next op); the ops run in
//! between. The
//! forms `jit_ops.rs`, `jit_ldst.rs` and `jit_simd.rs` classify are compiled inline (the
//! last two with the op's handler as the fallback), with guest registers and PSTATE kept
//! in host registers from their first use to the block's exit (written back at every exit
//! and before every call; NZCV held as its setter's operands until observed: `jit_flags.rs`);
//! every other op calls its decoded handler through the
//! `extern "C"` trampoline `jit::call_op` (call-threading), so no instruction is
//! unsupported. Knows nothing about block caches, tiering or executable memory.

use std::mem::offset_of;

use cranelift_codegen::control::ControlPlane;
use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{
    types, AbiParam, Function, InstBuilder, MemFlagsData, Signature, UserFuncName, Value,
};
use cranelift_codegen::isa::OwnedTargetIsa;
use cranelift_codegen::settings::{self, Configurable};
use cranelift_codegen::Context;
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext, Variable};

use super::block::Op;
use super::decode::Handler;
use super::jit::Ctx;
use super::jit_effects::may_write_ram;
use super::jit_emit::emit;
use super::jit_flags::{self, Kind, Lazy};
use super::jit_ldst;
use super::jit_ops::classify;
use super::jit_regs::Cached;
use super::jit_simd;
use super::jit_simd_emit;
use super::state::CpuState;
use super::Cpu;

/// Outcome statuses of generated code (bits 63:32 of its result).
pub const RAN: u64 = 0;
pub const STALE: u64 = 1;
pub const STOPPED: u64 = 2;

/// Byte offsets into `Cpu` that generated code uses.
pub const OFF_X: i32 = (offset_of!(Cpu, st) + offset_of!(CpuState, x)) as i32;
pub const OFF_PC: i32 = (offset_of!(Cpu, st) + offset_of!(CpuState, pc)) as i32;
pub const OFF_PSTATE: i32 = (offset_of!(Cpu, st) + offset_of!(CpuState, pstate)) as i32;
const OFF_NEXT_PC: i32 = offset_of!(Cpu, next_pc) as i32;
const OFF_INSNS: i32 = offset_of!(Cpu, insns) as i32;
const OFF_BUDGET: i32 = offset_of!(Ctx, budget) as i32;
const OFF_ATTENTION: i32 = offset_of!(Ctx, attention) as i32;
pub const OFF_TLB: i32 = offset_of!(Ctx, tlb) as i32;
pub const OFF_RAM_HOST: i32 = offset_of!(Ctx, ram_host) as i32;
pub const OFF_DATA_END: i32 = offset_of!(Ctx, data_end) as i32;
pub const OFF_DIRTY_ON: i32 = offset_of!(Ctx, dirty_on) as i32;
pub const OFF_DIRTY_BITS: i32 = offset_of!(Ctx, dirty_bits) as i32;

/// What failed while compiling a block (the block then stays with the interpreter).
#[derive(Debug, thiserror::Error)]
pub enum GenError {
    #[error("no Cranelift back end for this host: {0}")]
    Host(String),
    #[error("compiling a block of {ops} instructions: {msg}")]
    Compile { ops: usize, msg: String },
}

/// The code generator of one vCPU (see the module docs).
pub struct Compiler {
    /// The back end for most blocks (no mid-end optimisation) and the one for blocks that
    /// branch back to their own start (`jit_flags::loops_back`: Cranelift's "speed" passes;
    /// see [`host_isa`]).
    isa: OwnedTargetIsa,
    loop_isa: OwnedTargetIsa,
    ctx: Context,
    fctx: FunctionBuilderContext,
    /// The address of the trampoline generated code calls for non-inline ops.
    call_op: u64,
}

impl Compiler {
    /// A code generator for the host, calling `call_op` (the trampoline
    /// `extern "C" fn(ctx, handler index, word, aux) -> u32`: 0 done, else stopped).
    pub fn new(call_op: u64) -> Result<Self, GenError> {
        Ok(Compiler {
            isa: host_isa("none")?,
            loop_isa: host_isa("speed")?,
            ctx: Context::new(),
            fctx: FunctionBuilderContext::new(),
            call_op,
        })
    }

    /// Host code for `ops` (a block: every op but the last falls through); `intern` gives
    /// each called handler its index for the trampoline.
    pub fn compile(
        &mut self,
        ops: &[Op],
        intern: &mut dyn FnMut(Handler) -> u32,
    ) -> Result<Vec<u8>, GenError> {
        let isa = if jit_flags::loops_back(ops) {
            &self.loop_isa
        } else {
            &self.isa
        };
        let ptr = isa.pointer_type();
        let call_conv = isa.default_call_conv();
        let mut sig = Signature::new(call_conv);
        sig.params.extend([AbiParam::new(ptr); 3]);
        sig.returns.push(AbiParam::new(types::I64));
        let mut tramp = Signature::new(call_conv);
        tramp.params.extend([
            AbiParam::new(ptr),
            AbiParam::new(types::I32),
            AbiParam::new(types::I32),
            AbiParam::new(types::I64),
        ]);
        tramp.returns.push(AbiParam::new(types::I32));
        self.ctx.clear();
        self.ctx.func = Function::with_name_signature(UserFuncName::default(), sig);
        {
            let b = FunctionBuilder::new(&mut self.ctx.func, &mut self.fctx);
            let mut g = Gen::new(b, ptr, self.call_op);
            let tramp = g.b.import_signature(tramp);
            let sigs = jit_ldst::Sigs::import(&mut g, call_conv);
            g.block(ops, tramp, &sigs, intern);
            g.b.seal_all_blocks();
            g.b.finalize(isa.frontend_config());
        }
        let err = |msg: String| GenError::Compile {
            ops: ops.len(),
            msg,
        };
        let code = self
            .ctx
            .compile(&**isa, &mut ControlPlane::default())
            .map_err(|e| err(format!("{:?}", e.inner)))?;
        if !code.buffer.relocs().is_empty() {
            return Err(err("the code needs relocations".into()));
        }
        Ok(code.code_buffer().to_vec())
    }
}

/// The Cranelift back end for the host with mid-end optimisation level `opt` ("none" or
/// "speed"). Measured on cbench and compute.S (docs/benchmarks.md): "speed" for every block
/// took a third more compile time on a Linux boot (which compiles about 900 blocks, most
/// run a few thousand times) for 3-5 % fewer host instructions, most of it in loops; so
/// only blocks whose last op is a relative branch back to their start get it (a RET or
/// BR, which ends most function bodies, rarely returns to its own block). Cranelift's IR verifier runs in debug
/// builds (every test), not in release ones, where it cost a sixth of each compilation.
fn host_isa(opt: &str) -> Result<OwnedTargetIsa, GenError> {
    let mut flags = settings::builder();
    flags
        .set("opt_level", opt)
        .map_err(|e| GenError::Host(e.to_string()))?;
    flags
        .set(
            "enable_verifier",
            if cfg!(debug_assertions) {
                "true"
            } else {
                "false"
            },
        )
        .map_err(|e| GenError::Host(e.to_string()))?;
    cranelift_native::builder()
        .map_err(|e| GenError::Host(e.to_string()))?
        .finish(settings::Flags::new(flags))
        .map_err(|e| GenError::Host(e.to_string()))
}

/// The state of one block's generation: the builder, the CPU and context pointers, and the
/// guest registers held in SSA values.
pub struct Gen<'a> {
    pub b: FunctionBuilder<'a>,
    pub ptr: types::Type,
    call_op: u64,
    pub cpu: Value,
    words: Value,
    pub ctx: Value,
    /// The PC at block entry (every iteration of a self-loop starts there).
    pc0: Value,
    /// The instruction count at the start of this iteration, and at the call.
    ins0: Value,
    ins_entry: Value,
    /// The count up to which another iteration may start (`Ctx::budget`), and the
    /// attention word.
    limit: Value,
    attention: Value,
    /// The loop head (a block with the iteration's count as its parameter).
    head: cranelift_codegen::ir::Block,
    /// X0-X30 and PSTATE (index 31) as variables, and which of them hold the register on
    /// the current path (`known`) and were written and not yet stored (`dirty`):
    /// `jit_regs.rs`.
    pub vars: [Variable; 32],
    pub known: u32,
    pub dirty: u32,
    /// The words the block's ops were decoded from.
    expected: Vec<u32>,
    /// Whether SIMD&FP is known to be enabled on the current path (an Advanced SIMD op
    /// ran since the loop head and the last handler call: `jit_simd_emit.rs`).
    pub fp_ok: bool,
    /// Per-block values of the inline data-TLB path (`jit_ldst.rs`), computed once at
    /// block entry: the tag bit of this EL (1 at EL0), the first RAM window's host address
    /// and size; and the data TLB's table (`Ctx::tlb`), loaded again after every handler
    /// call (`jit::call_op` refreshes it).
    pub el0_tag: Value,
    pub ram_host: Value,
    pub data_end: Value,
    pub tlb: Variable,
    /// Where NZCV is on the current path, the variables holding flag operands, and the
    /// form a self-loop's head expects: `jit_flags.rs`.
    pub lazy: Lazy,
    pub fvars: [Variable; 3],
    loop_kind: Option<Kind>,
}

impl<'a> Gen<'a> {
    fn new(mut b: FunctionBuilder<'a>, ptr: types::Type, call_op: u64) -> Self {
        let entry = b.create_block();
        b.append_block_params_for_function_params(entry);
        b.switch_to_block(entry);
        let p = b.block_params(entry).to_vec();
        let flags = MemFlagsData::trusted();
        let pc0 = b.ins().load(types::I64, flags, p[0], OFF_PC);
        let ins_entry = b.ins().load(types::I64, flags, p[0], OFF_INSNS);
        let budget = b.ins().load(types::I64, flags, p[2], OFF_BUDGET);
        let limit = b.ins().iadd(ins_entry, budget);
        let attention = b.ins().load(ptr, flags, p[2], OFF_ATTENTION);
        let vars = std::array::from_fn(|_| b.declare_var(types::I64));
        // PSTATE.EL changes only by exception entry or return and system instructions,
        // which end blocks (`block.rs`) and batches: it holds for the whole run.
        let pstate = b.ins().load(types::I64, flags, p[0], OFF_PSTATE);
        let el0_tag = jit_ldst::el0_tag(&mut b, pstate);
        let ram_host = b.ins().load(ptr, flags, p[2], OFF_RAM_HOST);
        let data_end = b.ins().load(types::I64, flags, p[2], OFF_DATA_END);
        let tlb = b.declare_var(ptr);
        let table = b.ins().load(ptr, flags, p[2], OFF_TLB);
        b.def_var(tlb, table);
        let fvars = std::array::from_fn(|_| b.declare_var(types::I64));
        let head = b.create_block();
        let ins0 = b.append_block_param(head, types::I64);
        Gen {
            b,
            ptr,
            call_op,
            cpu: p[0],
            words: p[1],
            ctx: p[2],
            pc0,
            ins0,
            ins_entry,
            limit,
            attention,
            head,
            vars,
            known: 0,
            dirty: 0,
            expected: Vec::new(),
            fp_ok: false,
            el0_tag,
            ram_host,
            data_end,
            tlb,
            lazy: Lazy::Pstate,
            fvars,
            loop_kind: None,
        }
    }

    /// The whole block.
    fn block(
        &mut self,
        ops: &[Op],
        tramp: cranelift_codegen::ir::SigRef,
        sigs: &jit_ldst::Sigs,
        intern: &mut dyn FnMut(Handler) -> u32,
    ) {
        let last = ops.len() - 1;
        self.expected = ops.iter().map(|op| op.word).collect();
        self.init_flags();
        // In the entry block (before the loop head) the iteration's count is the entry's.
        let ins0 = std::mem::replace(&mut self.ins0, self.ins_entry);
        self.check_words(0);
        self.ins0 = ins0;
        self.b.ins().jump(self.head, &[self.ins_entry.into()]);
        self.b.switch_to_block(self.head);
        self.loop_kind = jit_flags::loop_kind(ops);
        if let Some(k) = self.loop_kind {
            self.lazy = Lazy::Either(k);
        }
        for (k, op) in ops.iter().enumerate() {
            let pc = self.pc_at(k);
            match classify(op.word, op.aux) {
                Some(inl) => {
                    if let Some(target) = emit(self, &inl, pc) {
                        if k == last {
                            self.self_loop(target, ops.len());
                        }
                        self.exit(target, k + 1, RAN);
                        return;
                    }
                }
                None if jit_simd::classify(op.word, op.aux).is_some() => {
                    let id = intern(op.handler);
                    if let Some(s) = jit_simd::classify(op.word, op.aux) {
                        jit_simd_emit::emit(self, tramp, k, pc, id, op, &s);
                    }
                }
                None if jit_ldst::classify(op.word, op.aux).is_some() => {
                    let id = intern(op.handler);
                    if let Some(m) = jit_ldst::classify(op.word, op.aux) {
                        jit_ldst::emit(self, sigs, tramp, k, pc, id, op, &m);
                    }
                }
                None => {
                    let id = intern(op.handler);
                    self.call(tramp, k, pc, id, op);
                    if k == last {
                        // The trampoline stored the PC, count and next PC.
                        let r = self.done(k + 1, RAN);
                        self.b.ins().return_(&[r]);
                        return;
                    }
                }
            }
        }
        let end = self.pc_at(ops.len());
        self.exit(end, ops.len(), RAN);
    }

    /// A block whose branch goes back to its own first instruction runs again in place
    /// (the batch loop would find the same block) while the batch's budget covers another
    /// whole run and no attention bit is raised (`batch.rs` checks both after every
    /// block). The cached state is written back first; the next iteration reloads it.
    fn self_loop(&mut self, target: Value, len: usize) {
        self.flags_for_loop(self.loop_kind);
        self.store_cached();
        let next = self.b.ins().iadd_imm_s(self.ins0, len as i64);
        let again = self.b.ins().icmp(IntCC::Equal, target, self.pc0);
        let end = self.b.ins().iadd_imm_s(next, len as i64);
        let room = self
            .b
            .ins()
            .icmp(IntCC::UnsignedLessThanOrEqual, end, self.limit);
        let flags = MemFlagsData::trusted();
        let att = self.b.ins().load(types::I32, flags, self.attention, 0);
        let quiet = self.b.ins().icmp_imm_s(IntCC::Equal, att, 0);
        let go = self.b.ins().band(again, room);
        let go = self.b.ins().band(go, quiet);
        let out = self.b.create_block();
        self.b.ins().brif(go, self.head, &[next.into()], out, &[]);
        self.b.switch_to_block(out);
    }

    /// `n | status << 32` with `n` the ops run since block entry: this iteration's `k` plus
    /// earlier iterations'.
    fn done(&mut self, k: usize, status: u64) -> Value {
        let ins = self.b.ins().iadd_imm_s(self.ins0, k as i64);
        let n = self.b.ins().isub(ins, self.ins_entry);
        self.b.ins().bor_imm_s(n, (status << 32) as i64)
    }

    /// `pc0 + 4k`.
    fn pc_at(&mut self, k: usize) -> Value {
        self.b.ins().iadd_imm_s(self.pc0, 4 * k as i64)
    }

    /// Leaves the block before op `next` (`next` ops done: [`STALE`]) unless every op's
    /// word in RAM is still the word it was decoded from. At block entry (`next` = 0), and
    /// after anything that may have written guest RAM since: a call of a handler that may
    /// write RAM (`jit_effects::may_write_ram`), a store into
    /// the block's own words (see `jit_ldst.rs`). Between those nothing this vCPU does
    /// changes the words, and another vCPU's or the VMM's write is seen at the next entry
    /// (within one batch), as the architecture allows: an executing PE is only guaranteed
    /// to see modified instructions after a context synchronization event of its own (Arm
    /// ARM B2.2.5, "Concurrent modification and execution of instructions"), and ISB and
    /// exceptions end blocks and batches.
    pub fn check_words(&mut self, next: usize) {
        let flags = MemFlagsData::trusted();
        let stale = self.b.create_block();
        for k in 0..self.expected.len() {
            let w = self
                .b
                .ins()
                .load(types::I32, flags, self.words, (4 * k) as i32);
            let expected = self.b.ins().iconst(types::I32, self.expected[k] as i64);
            let changed = self.b.ins().icmp(IntCC::NotEqual, w, expected);
            let go = self.b.create_block();
            self.b.ins().brif(changed, stale, &[], go, &[]);
            self.b.switch_to_block(go);
        }
        let go = self.b.create_block();
        self.b.ins().jump(go, &[]);
        self.b.switch_to_block(stale);
        let pc = self.pc_at(next);
        self.exit(pc, next, STALE);
        self.b.switch_to_block(go);
    }

    /// The host address of the block's first word in guest RAM.
    pub fn words(&self) -> Value {
        self.words
    }

    /// After a store of `len` bytes at host address `host` by op `next - 1`: leaves the
    /// block before op `next` if the store overlapped the block's words and changed one
    /// ([`Gen::check_words`]).
    pub fn check_store_into_block(&mut self, host: Value, len: u32, next: usize) {
        let hit = self.hits_block(host, len);
        let (check, go) = (self.b.create_block(), self.b.create_block());
        self.b.ins().brif(hit, check, &[], go, &[]);
        self.b.switch_to_block(check);
        self.check_words(next);
        self.b.ins().jump(go, &[]);
        self.b.switch_to_block(go);
    }

    /// Ends an op compiled inline whose inline path is the current block and whose fallback
    /// starts at `miss` (entered in register-cache state `before`): the fallback runs op
    /// `k` (at `pc`) through its handler ([`Gen::call`] with trampoline `tramp` and handler
    /// index `id`), then both paths join in the inline path's state.
    #[allow(clippy::too_many_arguments)]
    pub fn join_handler_fallback(
        &mut self,
        miss: cranelift_codegen::ir::Block,
        before: Cached,
        tramp: cranelift_codegen::ir::SigRef,
        k: usize,
        pc: Value,
        id: u32,
        op: &Op,
    ) {
        let after = self.snapshot();
        let join = self.b.create_block();
        self.b.ins().jump(join, &[]);
        self.b.switch_to_block(miss);
        self.restore(before);
        self.call(tramp, k, pc, id, op);
        self.rejoin(after);
        self.b.ins().jump(join, &[]);
        self.b.switch_to_block(join);
    }

    /// Whether `len` bytes at host address `host` overlap the block's words in RAM.
    fn hits_block(&mut self, host: Value, len: u32) -> Value {
        let end = self.b.ins().iadd_imm_s(host, len as i64);
        let after = self
            .b
            .ins()
            .icmp(IntCC::UnsignedGreaterThan, end, self.words);
        let last = self
            .b
            .ins()
            .iadd_imm_s(self.words, 4 * self.expected.len() as i64);
        let before = self.b.ins().icmp(IntCC::UnsignedLessThan, host, last);
        self.b.ins().band(after, before)
    }

    /// Writes back the cached state and returns `n | status << 32` with the PC at `pc` and
    /// `n` more instructions counted (the current block is then filled).
    fn exit(&mut self, pc: Value, n: usize, status: u64) {
        // The generation state of the path that goes on past this exit is unchanged.
        let before = self.snapshot();
        self.materialise();
        self.store_cached();
        let flags = MemFlagsData::trusted();
        self.b.ins().store(flags, pc, self.cpu, OFF_PC);
        let next_pc = if n > 0 {
            pc
        } else {
            // As the interpreter: the next PC of the last op run, if any ran.
            let old = self.b.ins().load(types::I64, flags, self.cpu, OFF_NEXT_PC);
            let ran = self
                .b
                .ins()
                .icmp(IntCC::NotEqual, self.ins0, self.ins_entry);
            self.b.ins().select(ran, pc, old)
        };
        self.b.ins().store(flags, next_pc, self.cpu, OFF_NEXT_PC);
        let ins = self.b.ins().iadd_imm_s(self.ins0, n as i64);
        self.b.ins().store(flags, ins, self.cpu, OFF_INSNS);
        let r = self.done(n, status);
        self.b.ins().return_(&[r]);
        self.restore(before);
    }

    /// Op `k` (at `pc`) through its handler: the cached state is written back and
    /// forgotten, the PC and count stored, then the trampoline; a stop leaves the block.
    pub fn call(
        &mut self,
        tramp: cranelift_codegen::ir::SigRef,
        k: usize,
        pc: Value,
        id: u32,
        op: &Op,
    ) {
        self.materialise();
        self.store_cached();
        self.forget_cached();
        // A handler may change CPACR_EL1 or the EL.
        self.fp_ok = false;
        let flags = MemFlagsData::trusted();
        self.b.ins().store(flags, pc, self.cpu, OFF_PC);
        let ins = self.b.ins().iadd_imm_s(self.ins0, k as i64);
        self.b.ins().store(flags, ins, self.cpu, OFF_INSNS);
        let callee = self.b.ins().iconst(self.ptr, self.call_op as i64);
        let id = self.b.ins().iconst(types::I32, id as i64);
        let word = self.b.ins().iconst(types::I32, op.word as i64);
        let aux = self.b.ins().iconst(types::I64, op.aux as i64);
        let call = self
            .b
            .ins()
            .call_indirect(tramp, callee, &[self.ctx, id, word, aux]);
        let r = self.b.inst_results(call)[0];
        let (stop, go) = (self.b.create_block(), self.b.create_block());
        self.b.ins().brif(r, stop, &[], go, &[]);
        self.b.switch_to_block(stop);
        let s = self.done(k, STOPPED);
        self.b.ins().return_(&[s]);
        self.b.switch_to_block(go);
        let table = self.b.ins().load(self.ptr, flags, self.ctx, OFF_TLB);
        self.b.def_var(self.tlb, table);
        if k + 1 < self.expected.len() && may_write_ram(op.word) {
            // The handler may have written the block's words (nothing is cached now); a
            // load's or a data-processing op's handler never writes RAM.
            self.check_words(k + 1);
        }
    }
}
