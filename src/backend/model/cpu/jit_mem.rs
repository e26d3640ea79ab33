//! Executable memory for the JIT tier (`jit.rs`): one anonymous mapping per vCPU that
//! compiled blocks are copied into, and the one call into generated code.
//!
//! Owns [`CodeArena`]. The mapping is never writable and executable at once: it is made
//! read-write to copy a block's code in, then read-execute again (and on AArch64 hosts the
//! copied range is cleaned to the point of unification and invalidated in the instruction
//! cache) before any of it runs. Code is only appended; when the arena is full the owner
//! forgets every compiled block and calls [`CodeArena::reset`], so no entry point into
//! overwritten code survives. Knows nothing about guest state or Cranelift: bytes in, entry
//! points out.

use std::ffi::c_void;
use std::num::NonZeroUsize;
use std::ptr::NonNull;

use nix::sys::mman::{mmap_anonymous, mprotect, munmap, MapFlags, ProtFlags};

/// Bytes of code per vCPU (address space: pages are only backed once written). A block
/// compiles to about 1 KiB, so this holds some 60,000 blocks (a Linux boot to its init
/// compiles fewer than 10,000, `jit::HOT`); when it is full every compiled block is forgotten and recompiled when hot
/// again.
pub const ARENA_BYTES: usize = 64 << 20;

/// Alignment of each function's entry (enough for every Cranelift host ISA's minimum).
const FN_ALIGN: usize = 64;

/// What failed while setting up or filling executable memory.
#[derive(Debug, thiserror::Error)]
pub enum ArenaError {
    #[error("mapping {0} bytes for JIT code: {1}")]
    Map(usize, nix::Error),
    #[error("changing the protection of JIT code: {0}")]
    Protect(nix::Error),
}

/// The entry point of one compiled block (see `jit.rs` for its contract): its address in
/// the arena that produced it, valid until that arena's next [`CodeArena::reset`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry(usize);

/// The signature of generated code: the CPU, the block's first word in guest RAM, the call
/// context of the trampolines (`jit.rs`); the packed outcome.
type BlockFn = unsafe extern "C" fn(*mut c_void, *const u32, *mut c_void) -> u64;

/// One vCPU's executable memory (see the module docs).
pub struct CodeArena {
    base: NonNull<c_void>,
    len: usize,
    used: usize,
}

// SAFETY: the arena exclusively owns its mapping (nothing else holds its address but the
// `Entry` values handed out, which are plain integers); moving it to another thread moves
// that ownership, as for a `Vec`.
unsafe impl Send for CodeArena {}

impl CodeArena {
    pub fn new() -> Result<Self, ArenaError> {
        let len = NonZeroUsize::new(ARENA_BYTES).unwrap_or(NonZeroUsize::MIN);
        // SAFETY: a fresh private anonymous mapping at an address the kernel chooses: it
        // aliases no Rust object.
        let base = unsafe {
            mmap_anonymous(
                None,
                len,
                ProtFlags::PROT_READ | ProtFlags::PROT_EXEC,
                MapFlags::MAP_PRIVATE | MapFlags::MAP_NORESERVE,
            )
        }
        .map_err(|e| ArenaError::Map(ARENA_BYTES, e))?;
        Ok(CodeArena {
            base,
            len: ARENA_BYTES,
            used: 0,
        })
    }

    /// Copies `code` in; its entry point, or None when the arena is full.
    pub fn add(&mut self, code: &[u8]) -> Result<Option<Entry>, ArenaError> {
        let start = self.used.next_multiple_of(FN_ALIGN);
        if start + code.len() > self.len {
            return Ok(None);
        }
        // Whole pages around the new code (the mapping is page-aligned).
        let page = 4096;
        let first = start / page * page;
        let end = (start + code.len()).next_multiple_of(page).min(self.len);
        let at = self.base.as_ptr() as usize + first;
        let pages =
            NonNull::new(at as *mut c_void).ok_or(ArenaError::Protect(nix::Error::EINVAL))?;
        // SAFETY: `pages` lies in the arena's own mapping; no Rust reference points into it
        // and no generated code runs while it is writable (this vCPU's thread is here).
        unsafe {
            mprotect(
                pages,
                end - first,
                ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
            )
        }
        .map_err(ArenaError::Protect)?;
        let dst = (self.base.as_ptr() as usize + start) as *mut u8;
        // SAFETY: `dst..dst + code.len()` is inside the mapping (checked above), now
        // writable, and does not overlap `code` (a Rust allocation).
        unsafe { std::ptr::copy_nonoverlapping(code.as_ptr(), dst, code.len()) };
        // SAFETY: as for the mprotect above.
        unsafe {
            mprotect(
                pages,
                end - first,
                ProtFlags::PROT_READ | ProtFlags::PROT_EXEC,
            )
        }
        .map_err(ArenaError::Protect)?;
        sync_icache(dst as usize, code.len());
        self.used = start + code.len();
        Ok(Some(Entry(dst as usize)))
    }

    /// Forgets every entry point (the caller has dropped all of them): new code is written
    /// from the start again.
    pub fn reset(&mut self) {
        self.used = 0;
    }

    /// Bytes in use.
    pub fn used(&self) -> usize {
        self.used
    }
}

impl Drop for CodeArena {
    fn drop(&mut self) {
        // SAFETY: the mapping is the arena's own and no entry point into it is used after
        // the arena is gone (the compiled blocks live in the same `Jit`).
        if let Err(e) = unsafe { munmap(self.base, self.len) } {
            log::warn!("model: unmapping JIT code: {e}");
        }
    }
}

impl Entry {
    /// The code's host address (logs and profiles).
    pub fn addr(self) -> usize {
        self.0
    }

    /// Runs the block's code.
    ///
    /// # Safety
    /// `self` comes from an arena that is alive and was not reset since; `cpu` and `ctx` are
    /// what the code generator compiled the block for (`jit.rs`: a `Cpu` and a `Ctx`, both
    /// exclusively borrowed for the call) and `words` the block's first word in guest RAM
    /// with all of the block's words after it.
    pub unsafe fn call(self, cpu: *mut c_void, words: *const u32, ctx: *mut c_void) -> u64 {
        // SAFETY: the arena holds code compiled with exactly this signature at this address
        // (`jit_gen.rs` declares it with the host's C calling convention).
        let f: BlockFn = unsafe { std::mem::transmute::<usize, BlockFn>(self.0) };
        // SAFETY: the caller's contract above.
        unsafe { f(cpu, words, ctx) }
    }
}

/// Makes freshly written code visible to instruction fetch. AArch64: clean the data cache
/// to the point of unification, invalidate the instruction cache for the range, then a
/// context synchronisation (Arm ARM B2.4.4, "Synchronization and coherency issues between
/// data and instruction accesses": DC CVAU, DSB ISH, IC IVAU, DSB ISH, ISB). Line sizes from
/// CTR_EL0 (Arm ARM D19.2.34: DminLine bits 19:16, IminLine bits 3:0, log2 of words).
/// x86-64 keeps instruction fetch coherent with stores.
#[cfg(target_arch = "aarch64")]
fn sync_icache(start: usize, len: usize) {
    let ctr: u64;
    // SAFETY: CTR_EL0 is readable at EL0 on Linux (SCTLR_EL1.UCT set, or trapped and
    // emulated); the read has no side effect.
    unsafe { std::arch::asm!("mrs {}, ctr_el0", out(reg) ctr, options(nomem, nostack)) };
    let dline = 4usize << ((ctr >> 16) & 15);
    let iline = 4usize << (ctr & 15);
    let end = start + len;
    let mut a = start & !(dline - 1);
    while a < end {
        // SAFETY: a cache clean by address of our own mapped code; no memory changes.
        unsafe { std::arch::asm!("dc cvau, {}", in(reg) a, options(nostack)) };
        a += dline;
    }
    // SAFETY: barriers only.
    unsafe { std::arch::asm!("dsb ish", options(nostack)) };
    let mut a = start & !(iline - 1);
    while a < end {
        // SAFETY: an instruction-cache invalidation by address of our own mapped code.
        unsafe { std::arch::asm!("ic ivau, {}", in(reg) a, options(nostack)) };
        a += iline;
    }
    // SAFETY: barriers only.
    unsafe { std::arch::asm!("dsb ish", "isb", options(nostack)) };
}

#[cfg(not(target_arch = "aarch64"))]
fn sync_icache(_start: usize, _len: usize) {}

/// A context synchronisation event before running code another thread of this process may
/// have written (a vCPU moves between threads): AArch64 `ISB` (Arm ARM B2.4.4, as above;
/// the writer already completed its cache maintenance with DSB ISH). Nothing on x86-64.
#[inline(always)]
pub fn sync_before_run() {
    #[cfg(target_arch = "aarch64")]
    // SAFETY: a barrier only.
    unsafe {
        std::arch::asm!("isb", options(nostack))
    };
}
