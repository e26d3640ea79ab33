//! The JIT code generator's view of guest registers (`jit_gen.rs`): X0-X30 and PSTATE held
//! in Cranelift variables from their first use in a block, written back to `CpuState` at
//! every exit and before every call into Rust, and read again after one.
//!
//! Owns the register-cache half of [`Gen`]. Compile-time bookkeeping only: which registers
//! the current path holds (`Gen::known`) and which it changed (`Gen::dirty`); the variables
//! let Cranelift merge the paths of a conditional call (`jit_ldst.rs`).

use cranelift_codegen::ir::{types, InstBuilder, MemFlagsData, Value};

use super::jit_flags::Lazy;
use super::jit_gen::{Gen, OFF_PSTATE, OFF_X};

/// The index of PSTATE in `Gen::vars`.
const PSTATE: usize = 31;

/// The register cache's state at one point of generation (for merging two paths).
#[derive(Clone, Copy)]
pub struct Cached {
    known: u32,
    dirty: u32,
    lazy: Lazy,
}

impl Gen<'_> {
    fn offset(n: usize) -> i32 {
        if n == PSTATE {
            OFF_PSTATE
        } else {
            OFF_X + 8 * n as i32
        }
    }

    /// Register `n` (0-30, or PSTATE), loaded on first use.
    fn cached(&mut self, n: usize) -> Value {
        if self.known & (1 << n) != 0 {
            return self.b.use_var(self.vars[n]);
        }
        self.reload(n)
    }

    /// Loads register `n` from memory into its variable.
    fn reload(&mut self, n: usize) -> Value {
        let flags = MemFlagsData::trusted();
        let v = self
            .b
            .ins()
            .load(types::I64, flags, self.cpu, Self::offset(n));
        self.b.def_var(self.vars[n], v);
        self.known |= 1 << n;
        v
    }

    fn define(&mut self, n: usize, v: Value) {
        self.b.def_var(self.vars[n], v);
        self.known |= 1 << n;
        self.dirty |= 1 << n;
    }

    /// Reads X`n` (31: XZR, zero).
    pub fn x(&mut self, n: u32) -> Value {
        let n = (n & 31) as usize;
        if n == 31 {
            return self.b.ins().iconst(types::I64, 0);
        }
        self.cached(n)
    }

    /// Writes X`n` (31: XZR, discarded).
    pub fn set_x(&mut self, n: u32, v: Value) {
        let n = (n & 31) as usize;
        if n < 31 {
            self.define(n, v);
        }
    }

    /// PSTATE (SPSR layout).
    pub fn pstate(&mut self) -> Value {
        self.cached(PSTATE)
    }

    pub fn set_pstate(&mut self, v: Value) {
        self.define(PSTATE, v);
    }

    /// Stores every register changed on this path (they stay cached).
    pub fn store_cached(&mut self) {
        let flags = MemFlagsData::trusted();
        for n in 0..32 {
            if self.dirty & (1 << n) != 0 {
                let v = self.b.use_var(self.vars[n]);
                self.b.ins().store(flags, v, self.cpu, Self::offset(n));
            }
        }
    }

    /// Forgets every cached register (after `materialise` and `store_cached`, before a
    /// call that may change them).
    pub fn forget_cached(&mut self) {
        self.known = 0;
        self.dirty = 0;
        self.lazy = Lazy::Pstate;
    }

    pub fn snapshot(&self) -> Cached {
        Cached {
            known: self.known,
            dirty: self.dirty,
            lazy: self.lazy,
        }
    }

    pub fn restore(&mut self, c: Cached) {
        self.known = c.known;
        self.dirty = c.dirty;
        self.lazy = c.lazy;
    }

    /// After a call (everything stored and forgotten), loads the registers `to` holds so
    /// that this path joins one in state `to` (its dirty registers are stored again at the
    /// next write-back: the same values). Flags held in `to` (`jit_flags.rs`) are held
    /// again: only for calls that write no flags (the load and store handlers of
    /// `jit_ldst.rs`), so the held operands still give the flags PSTATE has now.
    pub fn rejoin(&mut self, to: Cached) {
        for n in 0..32 {
            if to.known & (1 << n) != 0 {
                self.reload(n);
            }
        }
        self.restore(to);
    }
}
