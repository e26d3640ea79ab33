//! NZCV in JIT code (`jit_gen.rs`), held lazily: a flag-setting op compiled inline
//! (ADDS/SUBS/CMP/CMN, ANDS/BICS/TST: `jit_emit.rs`) keeps its operands instead of writing
//! the four flags into PSTATE; a condition (B.cond, CSEL/CSINC/CSINV/CSNEG) is evaluated
//! straight from them (one comparison for most conditions); NZCV goes into PSTATE only where
//! it is observable: before every handler call and at every exit ([`Gen::materialise`]).
//!
//! Owns [`Lazy`], [`Kind`] and the flag half of [`Gen`]: which form the flags have on the
//! current path (`Gen::lazy`, compile-time) and the variables holding the operands
//! (`Gen::fvars`). A self-loop (`Gen::self_loop`) carries held flags across its back edge:
//! its head is in state [`Lazy::Either`], a variable telling whether the operands or
//! PSTATE hold them, so iterations materialise nothing unless they exit or call.
//! The semantics are those of `fast.rs`: `AddWithCarry` (Arm ARM J1
//! "shared/functions/integer/AddWithCarry") and the conditions of `fast::cond_eval` (Arm ARM
//! C1.2.4 "Condition code"). Knows nothing about blocks, exits or calls beyond that.

use cranelift_codegen::ir::condcodes::{CondCode, IntCC};
use cranelift_codegen::ir::{types, InstBuilder, Value};

use super::block::Op;
use super::fast::COND_TABLE;
use super::jit_gen::Gen;
use super::jit_ops::{classify, Br, Inline};

/// A flag-setting operation whose operands are held.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// SUBS/CMP of `a` and `b` (64-bit when `sf`, else the low 32 bits).
    Sub { sf: bool },
    /// ADDS/CMN of `a` and `b`.
    Add { sf: bool },
    /// ANDS/BICS/TST with result `a` (C and V clear).
    Logic { sf: bool },
}

/// The held form of the flags `inl` sets, if it sets them.
pub fn kind_of(inl: &Inline) -> Option<Kind> {
    match *inl {
        Inline::AddSubImm { sf, sub, s, .. } | Inline::AddSubReg { sf, sub, s, .. } if s => {
            Some(if sub {
                Kind::Sub { sf }
            } else {
                Kind::Add { sf }
            })
        }
        Inline::LogicImm { sf, opc: 3, .. } | Inline::LogicReg { sf, opc: 3, .. } => {
            Some(Kind::Logic { sf })
        }
        _ => None,
    }
}

/// The flags a self-loop's head expects held (`Lazy::Either`): those of the block's last
/// inline flag-setting op, when the block may loop on itself ([`may_loop`]).
pub fn loop_kind(ops: &[Op]) -> Option<Kind> {
    if !may_loop(ops) {
        return None;
    }
    ops.iter()
        .rev()
        .find_map(|op| classify(op.word, op.aux).and_then(|i| kind_of(&i)))
}

/// Whether the block's last op is an inline branch that may go back to its first one
/// (relative branches by their offset; BR, BLR, RET always may), so that `Gen::self_loop`
/// may run it again in place.
pub fn may_loop(ops: &[Op]) -> bool {
    loops_back(ops)
        || ops.last().is_some_and(|op| {
            matches!(
                classify(op.word, op.aux),
                Some(Inline::Branch(Br::Reg { .. }))
            )
        })
}

/// Whether the block's last op is a relative branch (B, B.cond, CBZ/CBNZ, TBZ/TBNZ) to its
/// first one: a loop in the guest's code.
pub fn loops_back(ops: &[Op]) -> bool {
    let Some(last) = ops.len().checked_sub(1) else {
        return false;
    };
    let back = (4 * last as u64).wrapping_neg();
    match classify(ops[last].word, ops[last].aux) {
        Some(Inline::Branch(
            Br::B { off, .. } | Br::Cond { off, .. } | Br::Cbz { off, .. } | Br::Tbz { off, .. },
        )) => off == back,
        _ => false,
    }
}

/// Where the current NZCV is, at one point of generation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lazy {
    /// In PSTATE (its variable or `CpuState::pstate`).
    Pstate,
    /// The flags of `Kind` on the held operands.
    Held(Kind),
    /// At a self-loop's head and after: `Held` when the pending variable is nonzero,
    /// `Pstate` otherwise.
    Either(Kind),
}

/// A condition as one comparison (`Imm`: against zero).
enum Cmp {
    Reg(IntCC, Value, Value),
    Imm(IntCC, Value),
    Const(bool),
}

/// Indices into `Gen::fvars`.
const A: usize = 0;
const B: usize = 1;
const PENDING: usize = 2;

impl Gen<'_> {
    /// Defines the flag variables at block entry (nothing held).
    pub fn init_flags(&mut self) {
        let zero = self.b.ins().iconst(types::I64, 0);
        for v in self.fvars {
            self.b.def_var(v, zero);
        }
    }

    /// The flags of `kind` on operands `a` and `b` (operand width; `b` unused for
    /// [`Kind::Logic`], whose `a` is the result) become the current NZCV.
    pub fn set_flags(&mut self, kind: Kind, a: Value, b: Value) {
        let sf = matches!(
            kind,
            Kind::Sub { sf: true } | Kind::Add { sf: true } | Kind::Logic { sf: true }
        );
        for (i, v) in [(A, a), (B, b)] {
            let v = if sf {
                v
            } else {
                self.b.ins().uextend(types::I64, v)
            };
            self.b.def_var(self.fvars[i], v);
        }
        self.lazy = Lazy::Held(kind);
    }

    /// Before a self-loop's back edge: the flags in the form its head expects
    /// (`Lazy::Either(kind)`), or in PSTATE when the head expects nothing held.
    pub fn flags_for_loop(&mut self, head: Option<Kind>) {
        match (self.lazy, head) {
            (Lazy::Held(k), Some(h)) if k == h => {
                let one = self.b.ins().iconst(types::I64, 1);
                self.b.def_var(self.fvars[PENDING], one);
            }
            (Lazy::Either(k), Some(h)) if k == h => {}
            (_, Some(_)) => {
                self.materialise();
                let zero = self.b.ins().iconst(types::I64, 0);
                self.b.def_var(self.fvars[PENDING], zero);
            }
            (_, None) => self.materialise(),
        }
    }

    /// Writes held flags into the PSTATE variable (stored at the next write-back).
    pub fn materialise(&mut self) {
        match self.lazy {
            Lazy::Pstate => {}
            Lazy::Held(k) => {
                let f = self.nzcv(k);
                let p = self.pstate();
                let p = with_nzcv(self, p, f);
                self.set_pstate(p);
            }
            Lazy::Either(k) => {
                let f = self.nzcv(k);
                let p = self.pstate();
                let merged = with_nzcv(self, p, f);
                let pending = self.b.use_var(self.fvars[PENDING]);
                let p = self.b.ins().select(pending, merged, p);
                self.set_pstate(p);
            }
        }
        self.lazy = Lazy::Pstate;
    }

    /// Whether condition `cond` holds for the current flags: an i8 truth value.
    pub fn holds(&mut self, cond: u32) -> Value {
        let cond = cond & 15;
        if cond >> 1 == 7 {
            return self.b.ins().iconst(types::I8, 1); // AL, NV
        }
        if let Lazy::Either(_) = self.lazy {
            self.materialise();
        }
        let Lazy::Held(k) = self.lazy else {
            let p = self.pstate();
            let f = self.b.ins().ushr_imm_u(p, 28);
            let f = self.b.ins().band_imm_s(f, 15);
            return table(self, cond, f);
        };
        let (a, b) = self.operands(k);
        use Cmp::{Const, Imm, Reg};
        let base = match (k, cond >> 1) {
            (Kind::Sub { .. }, 0) => Reg(IntCC::Equal, a, b),
            (Kind::Sub { .. }, 1) => Reg(IntCC::UnsignedGreaterThanOrEqual, a, b),
            (Kind::Sub { .. }, 4) => Reg(IntCC::UnsignedGreaterThan, a, b),
            (Kind::Sub { .. }, 5) => Reg(IntCC::SignedGreaterThanOrEqual, a, b),
            (Kind::Sub { .. }, 6) => Reg(IntCC::SignedGreaterThan, a, b),
            (Kind::Sub { .. } | Kind::Add { .. }, 2) => {
                Imm(IntCC::SignedLessThan, self.result(k, a, b))
            }
            (Kind::Sub { .. } | Kind::Add { .. }, 3) => {
                let r = self.result(k, a, b);
                Imm(IntCC::SignedLessThan, overflow(self, k, a, b, r))
            }
            (Kind::Add { .. }, 0) => Imm(IntCC::Equal, self.result(k, a, b)),
            (Kind::Add { .. }, 1) => {
                let r = self.result(k, a, b);
                Reg(IntCC::UnsignedLessThan, r, a)
            }
            (Kind::Logic { .. }, 0) => Imm(IntCC::Equal, a),
            (Kind::Logic { .. }, 2) => Imm(IntCC::SignedLessThan, a),
            (Kind::Logic { .. }, 5) => Imm(IntCC::SignedGreaterThanOrEqual, a),
            (Kind::Logic { .. }, 6) => Imm(IntCC::SignedGreaterThan, a),
            // CS, VS, HI after ANDS: C and V are clear.
            (Kind::Logic { .. }, _) => Const(false),
            // AL and NV, returned above.
            (Kind::Sub { .. }, _) => return self.b.ins().iconst(types::I8, 1),
            // HI, GE, GT after ADDS: through the four flags.
            (Kind::Add { .. }, _) => {
                let f = self.nzcv(k);
                return table(self, cond, f);
            }
        };
        // Odd conditions (but NV, handled above) are the even ones negated.
        let odd = cond & 1 == 1;
        let cc = |cc: IntCC| if odd { cc.complement() } else { cc };
        match base {
            Reg(c, a, b) => self.b.ins().icmp(cc(c), a, b),
            Imm(c, a) => self.b.ins().icmp_imm_s(cc(c), a, 0),
            Const(v) => self.b.ins().iconst(types::I8, (v != odd) as i64),
        }
    }

    /// The held operands of `k` in its operand width.
    fn operands(&mut self, k: Kind) -> (Value, Value) {
        let sf = matches!(
            k,
            Kind::Sub { sf: true } | Kind::Add { sf: true } | Kind::Logic { sf: true }
        );
        let a = self.b.use_var(self.fvars[A]);
        let b = self.b.use_var(self.fvars[B]);
        if sf {
            (a, b)
        } else {
            let a = self.b.ins().ireduce(types::I32, a);
            let b = self.b.ins().ireduce(types::I32, b);
            (a, b)
        }
    }

    fn result(&mut self, k: Kind, a: Value, b: Value) -> Value {
        match k {
            Kind::Sub { .. } => self.b.ins().isub(a, b),
            Kind::Add { .. } => self.b.ins().iadd(a, b),
            Kind::Logic { .. } => a,
        }
    }

    /// NZCV of the held operands of `k` (N = bit 3), an i64 value.
    fn nzcv(&mut self, k: Kind) -> Value {
        let (a, b) = self.operands(k);
        let r = self.result(k, a, b);
        let neg = self.b.ins().icmp_imm_s(IntCC::SignedLessThan, r, 0);
        let zero = self.b.ins().icmp_imm_s(IntCC::Equal, r, 0);
        let n = flag(self, neg, 3);
        let z = flag(self, zero, 2);
        let nz = self.b.ins().bor(n, z);
        let c = match k {
            Kind::Sub { .. } => self.b.ins().icmp(IntCC::UnsignedGreaterThanOrEqual, a, b),
            Kind::Add { .. } => self.b.ins().icmp(IntCC::UnsignedLessThan, r, a),
            Kind::Logic { .. } => return nz,
        };
        let v = overflow(self, k, a, b, r);
        let v = self.b.ins().icmp_imm_s(IntCC::SignedLessThan, v, 0);
        let c = flag(self, c, 1);
        let v = flag(self, v, 0);
        let cv = self.b.ins().bor(c, v);
        self.b.ins().bor(nz, cv)
    }
}

/// The sign bit of this value is V of `r` = `a` - `b` or `a` + `b`: the operands' signs
/// differ (SUB) or agree (ADD) and the result's differs from `a`'s.
fn overflow(g: &mut Gen, k: Kind, a: Value, b: Value, r: Value) -> Value {
    let ar = g.b.ins().bxor(a, r);
    let other = match k {
        Kind::Sub { .. } => g.b.ins().bxor(a, b),
        _ => g.b.ins().bxor(b, r),
    };
    g.b.ins().band(ar, other)
}

/// Bit `cond` of `COND_TABLE` at NZCV `f` (an i64 of 4 bits): an i8 truth value.
fn table(g: &mut Gen, cond: u32, f: Value) -> Value {
    let t =
        g.b.ins()
            .iconst(types::I64, COND_TABLE[cond as usize] as i64);
    let bit = g.b.ins().ushr(t, f);
    let bit = g.b.ins().band_imm_s(bit, 1);
    g.b.ins().icmp_imm_s(IntCC::NotEqual, bit, 0)
}

/// `p` with bits 31:28 replaced by `f` (an i64 of 4 bits, N = bit 3).
fn with_nzcv(g: &mut Gen, p: Value, f: Value) -> Value {
    let cleared = g.b.ins().band_imm_s(p, !(0xf_i64 << 28));
    let f = g.b.ins().ishl_imm_u(f, 28);
    g.b.ins().bor(cleared, f)
}

/// A truth value (i8) as bit `pos` of an i64.
fn flag(g: &mut Gen, c: Value, pos: i64) -> Value {
    let c = g.b.ins().uextend(types::I64, c);
    if pos == 0 {
        c
    } else {
        g.b.ins().ishl_imm_u(c, pos)
    }
}

#[cfg(test)]
#[path = "jit_flags_tests.rs"]
mod tests;
