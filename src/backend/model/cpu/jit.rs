//! The JIT tier of instruction batches: hot pre-decoded blocks (`block.rs`) compiled to host
//! code (`jit_gen.rs`, Cranelift: x86-64 and AArch64 hosts) and run in place of the
//! interpreter's op loop (`Cpu::run_block`).
//!
//! Owns [`Jit`] (per vCPU: one slot per block-table index with the block's run count and
//! compiled entry, the executable memory, the code generator) and the trampoline
//! [`call_op`] through which generated code runs the ops it does not compile inline.
//!
//! The contract with the batch (`batch.rs`), which only runs when `Cpu::debug_quiet` (no
//! breakpoint, watchpoint or single-step: every debug feature keeps the interpreter):
//! - Tiering: a block runs interpreted until it has been entered [`HOT`] times, then it is
//!   compiled; a block that fails to compile stays interpreted.
//! - A compiled block runs only when the batch's remaining budget covers all its ops (the
//!   interpreter runs the tail otherwise), so a batch never runs past its `limit`.
//! - Exactness: the words in guest RAM are compared with the words the ops were decoded
//!   from at every entry into the block and again after anything of this vCPU that may
//!   have written them (a call of a handler that may write RAM, `jit_effects.rs`; a store
//!   whose bytes overlap the block's words), so
//!   code changed by the guest (even by a store of the same block into itself, while it
//!   loops) is seen at its next fetch, and code changed by another vCPU or by the VMM
//!   (software breakpoints, gdb writes) at the
//!   next block entry at the latest; a mismatch leaves the block before the next op and
//!   the batch drops it. Across vCPUs this is as strong as the architecture asks: a write by
//!   another PE is only guaranteed to be seen by this one after this one's own context
//!   synchronization event (Arm ARM B2.2.5, "Concurrent modification and execution of
//!   instructions"), and ISB, exception entry and return end blocks and batches. Registers, flags, memory, exceptions (PC at the faulting instruction,
//!   the handler's own syndrome), `Cpu::insns` and `Cpu::next_pc` are exactly the
//!   interpreter's at every exit (`jit_tests.rs` compares them on random programs).
//! - Memory: the compiled code of a block is forgotten when the block is dropped or
//!   replaced; when the executable memory is full every compiled block is forgotten.

use std::collections::{HashMap, HashSet};
use std::ffi::c_void;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64};
use std::sync::Arc;

use super::block::{index_of, Block, Op, BLOCKS};
use super::decode::Handler;
use super::jit_gen::{Compiler, GenError, RAN, STALE};
use super::jit_mem::{self, ArenaError, CodeArena, Entry};
use super::jit_worker::{Job, Taken, Worker};
use super::{Cpu, Stop};
use crate::backend::model::snapshot::DirtyPages;

/// Entries into a block before it is compiled (compiling one costs about half a
/// millisecond): a Linux boot to its init compiles about 9,000 blocks at 32 (5 s of
/// compilation, the boot twice as slow as without the JIT), 1,750 at 1,024 (0.85 s, the boot
/// 7 s against 6.4 s without it) and 950 at 4,096 (0.42 s, the boot 6.2 s), and loops still
/// compile within their first few thousand iterations (docs/benchmarks.md). The environment
/// variable `KVMDBG_JIT_HOT` overrides it (tests use 1: every block compiled on its first
/// entry).
pub const HOT: u32 = 4096;

/// The threshold in force: `KVMDBG_JIT_HOT` if set to a number, else [`HOT`].
fn hot_threshold() -> u32 {
    std::env::var("KVMDBG_JIT_HOT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(HOT)
        .max(1)
}

/// A slot's run count once the block failed to compile (never retried).
const NEVER: u32 = u32::MAX;

/// A slot's run count while its block is being compiled by the worker thread
/// (`jit_worker.rs`): interpreted until the code arrives.
const QUEUED: u32 = u32::MAX - 1;

/// One block-table index's JIT state.
#[derive(Clone, Copy)]
struct Slot {
    /// Physical address of the block the state is for (`u64::MAX`: none).
    pa: u64,
    runs: u32,
    code: Option<Entry>,
}

const EMPTY: Slot = Slot {
    pa: u64::MAX,
    runs: 0,
    code: None,
};

/// What failed in the JIT (the blocks concerned stay with the interpreter).
#[derive(Debug, thiserror::Error)]
pub enum JitError {
    #[error(transparent)]
    Gen(#[from] GenError),
    #[error(transparent)]
    Arena(#[from] ArenaError),
}

/// One vCPU's JIT tier (see the module docs).
pub struct Jit {
    slots: Box<[Slot]>,
    /// Every compiled block by physical address, so that a block evicted from the block
    /// table (a conflict in its direct map) finds its code again when it is rebuilt from
    /// the same words (its ops then are the same; changed words fail the per-op check).
    by_pa: HashMap<u64, Entry>,
    /// The executable memory, created on the first compilation.
    arena: Option<CodeArena>,
    /// The code generator on this thread (created on the first compilation here), or the
    /// thread that compiles (`background`: created on the first compilation).
    compiler: Option<Compiler>,
    worker: Option<Worker>,
    /// Compile on the worker thread (`Bus::jit_background`), else on this one.
    pub background: bool,
    /// Blocks sent to the worker whose code has not arrived, by physical address.
    queued: HashSet<u64>,
    /// Handlers called by generated code, by the index it passes to [`call_op`].
    handlers: Vec<Handler>,
    ids: HashMap<usize, u32>,
    /// Entries before compiling ([`HOT`]; tests lower it).
    pub hot: u32,
    /// Blocks compiled so far and the time it took (statistics and tests).
    pub compiled: u64,
    pub compile_time: std::time::Duration,
    /// The first failure is logged as a warning, later ones at debug level.
    warned: bool,
    /// `Ram::data_window` of the VM's RAM.
    window: (usize, u64),
    /// The RAM's dirty-page log (`Ram::dirty`): generated code stores inline while it is off.
    dirty: Arc<DirtyPages>,
}

impl Jit {
    /// The JIT state of a vCPU whose RAM has data window `window` (`Ram::data_window`) and
    /// dirty-page log `dirty` (`Ram::dirty`).
    pub fn new(window: (usize, u64), dirty: Arc<DirtyPages>) -> Self {
        Jit {
            slots: vec![EMPTY; BLOCKS].into_boxed_slice(),
            by_pa: HashMap::new(),
            arena: None,
            compiler: None,
            worker: None,
            background: false,
            queued: HashSet::new(),
            handlers: Vec::new(),
            ids: HashMap::new(),
            hot: hot_threshold(),
            compiled: 0,
            compile_time: std::time::Duration::ZERO,
            warned: false,
            window,
            dirty,
        }
    }
}

/// The context generated code passes to [`call_op`]: the CPU it runs on, the handlers by
/// index, and the stop of the op that stopped.
pub struct Ctx<'a> {
    cpu: *mut Cpu,
    handlers: &'a [Handler],
    stop: Option<Stop>,
    /// The batch's remaining budget at block entry (read by generated code: a self-loop
    /// starts another run only within it).
    pub budget: u64,
    /// The vCPU's attention word (read by generated code before another run of a
    /// self-loop).
    pub attention: *const AtomicU32,
    /// The data TLB's entries (`mmu::Tlb::data_table`), refreshed after every handler call,
    /// and the first RAM window (`Ram::data_window`), for loads in generated code.
    pub tlb: usize,
    pub ram_host: usize,
    pub data_end: u64,
    /// The dirty-page log's on flag (`DirtyPages::on_flag`) and bitmap
    /// (`DirtyPages::bitmap`): while the log is on, stores in generated code write RAM
    /// inline only when their page's bit is already set, through `jit_ldst::write_plain`
    /// (which sets it) otherwise.
    pub dirty_on: *const AtomicBool,
    pub dirty_bits: *const AtomicU64,
}

impl Ctx<'_> {
    /// The CPU the block runs on.
    pub fn cpu(&mut self) -> &mut Cpu {
        // SAFETY: `cpu` is the `Cpu` exclusively borrowed by `Cpu::run_compiled` for the
        // call of generated code that passed this context to a trampoline; generated code
        // does not touch it while the trampoline runs, and the reference does not outlive
        // the trampoline (it borrows the context).
        unsafe { &mut *self.cpu }
    }
}

/// The trampoline generated code calls for an op it does not compile inline: as one op of
/// `Cpu::run_block` (next PC, the handler, then PC and count, or the stop kept in the
/// context). Returns 0 when the op completed, 1 when it stopped. A handler that panicked
/// would abort the process here (no unwinding through generated code); handlers return
/// stops for everything the guest can cause.
pub extern "C" fn call_op(ctx: *mut c_void, handler: u32, word: u32, aux: u64) -> u32 {
    // SAFETY: generated code passes the `Ctx` that `Cpu::run_compiled` created for this
    // call and holds no other reference to it while the trampoline runs.
    let ctx = unsafe { &mut *ctx.cast::<Ctx>() };
    let Some(&h) = ctx.handlers.get(handler as usize) else {
        let pc = ctx.cpu().st.pc;
        ctx.stop = Some(Stop::Exception(super::Exc::new(0, 0, pc)));
        return 1;
    };
    let cpu = ctx.cpu();
    cpu.next_pc = cpu.st.pc.wrapping_add(4);
    match h(cpu, word, aux) {
        Ok(()) => {
            cpu.st.pc = cpu.next_pc;
            cpu.insns += 1;
            ctx.tlb = ctx.cpu().tlb.data_table();
            0
        }
        Err(stop) => {
            ctx.stop = Some(stop);
            1
        }
    }
}

/// How a compiled block's run ended, for the batch.
pub enum Outcome {
    /// `n` ops ran: the whole block, once or more (a self-loop).
    Ran(u32),
    /// The word of op `n` changed: `n` ops ran, the block is to be dropped.
    Stale(u32),
}

impl Jit {
    /// The compiled code to run for `block` (at physical address `pa`) now, if any: counts
    /// the entry, compiles the block when it becomes hot, and answers None when the
    /// remaining `budget` does not cover the whole block. Every batch calls it once per
    /// block run: the common cases (compiled; still counting) are inline, the rest
    /// ([`Jit::entry_slow`]) out of line, away from the compiler's large stack frame.
    #[inline(always)]
    pub fn entry(&mut self, pa: u64, block: &Block, budget: u32) -> Option<Entry> {
        let hot = self.hot;
        let slot = &mut self.slots[block.index];
        if slot.pa == pa {
            if let Some(code) = slot.code {
                return (block.ops.len() <= budget as usize).then_some(code);
            }
            if slot.runs >= QUEUED {
                return None;
            }
            // `runs` < QUEUED here: no overflow.
            if slot.runs + 1 < hot {
                slot.runs += 1;
                return None;
            }
        }
        self.entry_slow(pa, block, budget)
    }

    /// [`Jit::entry`] for a slot that holds another block, or a block that becomes hot.
    #[cold]
    #[inline(never)]
    fn entry_slow(&mut self, pa: u64, block: &Block, budget: u32) -> Option<Entry> {
        let slot = &mut self.slots[block.index];
        if slot.pa != pa {
            let queued = self.queued.contains(&pa);
            *slot = Slot {
                pa,
                runs: if queued { QUEUED } else { 0 },
                code: self.by_pa.get(&pa).copied(),
            };
        }
        if slot.code.is_none() {
            if slot.runs >= QUEUED {
                return None;
            }
            slot.runs += 1;
            if slot.runs < self.hot {
                return None;
            }
            if self.background && self.queue(pa, block.ops) {
                self.slots[block.index].runs = QUEUED;
                return None;
            }
            let t0 = std::time::Instant::now();
            let r = self.compile(block.ops);
            self.compile_time += t0.elapsed();
            match r {
                Ok(e) => {
                    log::trace!(
                        "model: JIT: block at {pa:#x} ({} ops) compiled to {:#x}",
                        block.ops.len(),
                        e.addr()
                    );
                    self.slots[block.index].code = Some(e);
                    self.by_pa.insert(pa, e);
                }
                Err(e) => {
                    self.failed(&e);
                    self.slots[block.index].runs = NEVER;
                    return None;
                }
            }
        }
        let code = self.slots[block.index].code;
        code.filter(|_| block.ops.len() <= budget as usize)
    }

    /// Forgets block `index` (dropped from the block table: one of its words changed) and
    /// its code.
    pub fn forget(&mut self, index: usize) {
        self.by_pa.remove(&self.slots[index].pa);
        self.slots[index] = EMPTY;
    }

    /// Compiles `ops` on this thread and copies the code into the executable memory.
    fn compile(&mut self, ops: &[Op]) -> Result<Entry, JitError> {
        if self.compiler.is_none() {
            self.compiler = Some(Compiler::new(call_op as *const () as u64)?);
        }
        let Some(compiler) = self.compiler.as_mut() else {
            unreachable!("created above");
        };
        let (handlers, ids) = (&mut self.handlers, &mut self.ids);
        let code = compiler.compile(ops, &mut |h| intern(handlers, ids, h))?;
        self.install(&code)
    }

    /// Copies compiled `code` into the executable memory; when it is full, every compiled
    /// block is forgotten first.
    fn install(&mut self, code: &[u8]) -> Result<Entry, JitError> {
        if self.arena.is_none() {
            self.arena = Some(CodeArena::new()?);
        }
        let Some(arena) = self.arena.as_mut() else {
            unreachable!("created above");
        };
        if let Some(e) = arena.add(code)? {
            self.compiled += 1;
            return Ok(e);
        }
        // Full: forget every compiled block, then start again from the beginning.
        log::debug!(
            "model: JIT code memory full ({} bytes), starting over",
            arena.used()
        );
        for s in self.slots.iter_mut() {
            s.code = None;
        }
        self.by_pa.clear();
        arena.reset();
        let e = arena
            .add(code)?
            .ok_or(JitError::Arena(ArenaError::Protect(nix::Error::ENOMEM)))?;
        self.compiled += 1;
        Ok(e)
    }

    /// Sends block `ops` at `pa` to the worker thread (started on first use); false when
    /// there is no worker (it could not be started, or it is gone): compile here instead.
    fn queue(&mut self, pa: u64, ops: &[Op]) -> bool {
        if self.worker.is_none() {
            match Worker::spawn(call_op as *const () as u64) {
                Ok(w) => self.worker = Some(w),
                Err(e) => {
                    log::warn!("model: JIT: no compiler thread ({e}); compiling on the vCPU's");
                    self.background = false;
                    return false;
                }
            }
        }
        let (handlers, ids) = (&mut self.handlers, &mut self.ids);
        let mut used: Vec<(usize, u32)> = Vec::with_capacity(ops.len());
        for op in ops {
            let id = intern(handlers, ids, op.handler);
            used.push((op.handler as usize, id));
        }
        let job = Job {
            pa,
            ops: ops.to_vec(),
            ids: used,
        };
        let sent = self.worker.as_mut().is_some_and(|w| w.send(job));
        if sent {
            self.queued.insert(pa);
        } else {
            self.worker_gone();
        }
        sent
    }

    /// Installs whatever code the worker thread has finished (the batch calls this before
    /// it runs blocks). A block whose words changed since it was queued is still installed:
    /// its entry check finds the change and the batch drops it, as for any stale block.
    #[inline(always)]
    pub fn poll(&mut self) {
        if self.worker.as_ref().is_some_and(Worker::busy) {
            self.take_done();
        }
    }

    #[cold]
    #[inline(never)]
    fn take_done(&mut self) {
        self.install_done(false);
    }

    /// Waits until every block sent to the worker has been compiled and installed (tests:
    /// the vCPU's thread itself never waits for its compiler).
    #[cfg(test)]
    pub fn wait_for_worker(&mut self) {
        self.install_done(true);
    }

    /// Installs the worker's results: those ready, or (`wait`) all outstanding ones.
    fn install_done(&mut self, wait: bool) {
        loop {
            let taken = match self.worker.as_mut() {
                Some(w) => w.take(wait),
                None => return,
            };
            let done = match taken {
                Taken::Done(d) => d,
                Taken::Nothing => return,
                Taken::Gone => return self.worker_gone(),
            };
            self.queued.remove(&done.pa);
            self.compile_time += done.took;
            let index = index_of(done.pa);
            let code = done.code.map_err(JitError::from);
            match code.and_then(|c| self.install(&c)) {
                Ok(e) => {
                    log::trace!(
                        "model: JIT: block at {:#x} compiled to {:#x}",
                        done.pa,
                        e.addr()
                    );
                    self.by_pa.insert(done.pa, e);
                    let slot = &mut self.slots[index];
                    if slot.pa == done.pa {
                        slot.code = Some(e);
                    }
                }
                Err(e) => {
                    self.failed(&e);
                    let slot = &mut self.slots[index];
                    if slot.pa == done.pa {
                        slot.runs = NEVER;
                    }
                }
            }
        }
    }

    /// The worker thread is gone (only a panic in the code generator ends it early): its
    /// queued blocks count their entries again and compile on this thread from now on.
    #[cold]
    fn worker_gone(&mut self) {
        log::warn!("model: JIT: the compiler thread is gone; compiling on the vCPU's");
        self.worker = None;
        self.background = false;
        self.queued.clear();
        for s in self.slots.iter_mut().filter(|s| s.runs == QUEUED) {
            s.runs = 0;
        }
    }

    /// Bytes of code in the executable memory now.
    pub fn code_bytes(&self) -> usize {
        self.arena.as_ref().map_or(0, CodeArena::used)
    }

    #[cold]
    fn failed(&mut self, e: &JitError) {
        if self.warned {
            log::debug!("model: JIT: {e}; the block stays interpreted");
        } else {
            self.warned = true;
            log::warn!("model: JIT: {e}; the block stays interpreted");
        }
    }
}

impl Cpu {
    /// Runs compiled `entry` of `block` (all its ops: `Jit::entry` checked the budget).
    /// A block that loops on itself runs again while `budget` and `attention` allow.
    pub(super) fn run_compiled(
        &mut self,
        jit: &Jit,
        entry: Entry,
        block: &Block,
        budget: u32,
        attention: &AtomicU32,
    ) -> Result<Outcome, Stop> {
        jit_mem::sync_before_run();
        let tlb = self.tlb.data_table();
        let (ram_host, data_end) = jit.window;
        let cpu: *mut Cpu = self;
        let mut ctx = Ctx {
            cpu,
            handlers: &jit.handlers,
            stop: None,
            budget: budget as u64,
            attention,
            tlb,
            ram_host,
            data_end,
            dirty_on: jit.dirty.on_flag(),
            dirty_bits: jit.dirty.bitmap(),
        };
        let words = block.words.as_ptr().cast::<u32>();
        // SAFETY: `entry` comes from `jit`'s live arena (entries are forgotten before any
        // reset); `cpu` is `self`, not used otherwise during the call; `ctx` lives across
        // the call; `words` is the block's first word in guest RAM with the rest of its page
        // after it (at least as many words as the block has ops: `block.rs`), and an
        // `AtomicU32` has the layout of a `u32`.
        let r = unsafe { entry.call(cpu.cast(), words, (&mut ctx as *mut Ctx).cast()) };
        let n = r as u32;
        match r >> 32 {
            RAN => Ok(Outcome::Ran(n)),
            STALE => Ok(Outcome::Stale(n)),
            _ => Err(ctx
                .stop
                .take()
                .unwrap_or_else(|| Stop::Exception(super::Exc::new(0, 0, self.st.pc)))),
        }
    }
}

/// The trampoline index of handler `h`, added to `handlers` on first use.
fn intern(handlers: &mut Vec<Handler>, ids: &mut HashMap<usize, u32>, h: Handler) -> u32 {
    *ids.entry(h as usize).or_insert_with(|| {
        handlers.push(h);
        handlers.len() as u32 - 1
    })
}

#[cfg(test)]
#[path = "jit_tests.rs"]
pub(crate) mod tests;
