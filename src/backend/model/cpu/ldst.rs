//! Loads and stores of general and SIMD&FP registers: literal, pairs (incl. LDPSW), single
//! registers with unsigned offset, unscaled, unprivileged, pre/post-index and register
//! offset (Arm ARM C4.1.89 "Loads and Stores"). Exclusives, acquire/release and LSE atomics
//! are in `ldst_atomic.rs`, SIMD structure loads/stores (LD1-LD4, ST1-ST4, LDnR) in
//! `simd_ldst.rs`.
//!
//! Syndromes: the single-register general-purpose forms without writeback carry a valid
//! data-abort syndrome (ISV=1: SAS, SSE, SRT, SF, WnR), everything else ISV=0 (Arm ARM
//! D19.2.37 "ISS encoding for an exception from a Data Abort", ISV).

use crate::a64::debugregs;
use crate::a64::esr::{ec, DabtSyndrome};
use crate::a64::fields::sctlr;

use super::alu::extend;
use super::branch::sext;
use super::{Cpu, Exc, Stop};

/// How a single-register load extends its value: none (zero), to 32 or to 64 bits.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Ext {
    Zero,
    Sign32,
    Sign64,
}

impl Cpu {
    pub(super) fn ldst(&mut self, i: u32) -> Result<(), Stop> {
        let v = (i >> 26) & 1 == 1;
        if v {
            self.fp_check()?;
        }
        match (i >> 27) & 7 {
            0b001 if !v && (i >> 24) & 7 == 0 => self.ldst_exclusive_class(i),
            0b001 if v && (i >> 25) & 1 == 0 => self.simd_ldst_struct(i),
            0b011 if (i >> 24) & 3 == 0 => self.ld_literal(i, v),
            0b101 => self.ldst_pair(i, v),
            0b111 => {
                if (i >> 24) & 3 == 1 {
                    let off = ((i >> 10) & 0xfff) as u64;
                    return self.ldst_single(i, v, Mode::Offset(off << self.scale(i, v)));
                }
                if (i >> 24) & 3 != 0 {
                    return Err(self.undef(i));
                }
                let imm9 = sext(((i >> 12) & 0x1ff) as u64, 9);
                match ((i >> 21) & 1, (i >> 10) & 3) {
                    (0, 0) => self.ldst_single(i, v, Mode::Offset(imm9)),
                    (0, 1) => self.ldst_single(i, v, Mode::Post(imm9)),
                    (0, 2) if !v => self.ldst_single(i, v, Mode::Unpriv(imm9)),
                    (0, 3) => self.ldst_single(i, v, Mode::Pre(imm9)),
                    (1, 2) => self.ldst_single(i, v, Mode::Register),
                    (1, 0) if !v => self.lse_atomic(i),
                    _ => Err(self.undef(i)),
                }
            }
            _ => Err(self.undef(i)),
        }
    }

    /// log2 of the access size of a single-register load/store.
    fn scale(&self, i: u32, v: bool) -> u32 {
        let size = i >> 30;
        if v && (i >> 23) & 1 == 1 && size == 0 {
            4
        } else {
            size
        }
    }

    /// The base register value (Rn, 31 = SP with the SP alignment check of SCTLR_EL1.SA/SA0).
    pub(super) fn base(&self, rn: u32) -> Result<u64, Stop> {
        if rn != 31 {
            return Ok(self.st.x[rn as usize]);
        }
        let sp = self.st.sp();
        let check = if self.st.el() == 0 {
            sctlr::SA0
        } else {
            sctlr::SA
        };
        if sp & 15 != 0 && self.st.sys.sctlr & check != 0 {
            return Err(Stop::Exception(Exc::new(ec::SP_ALIGN, 0, self.st.pc)));
        }
        Ok(sp)
    }

    /// Loads `bytes` (1..16) into a SIMD&FP register value (zero-extended to 128 bits).
    pub(super) fn load_vec(&mut self, va: u64, bytes: usize) -> Result<u128, Stop> {
        if bytes == 16 {
            let lo = self.read_mem(va, 8, None, false)?;
            let hi = self.read_mem(va.wrapping_add(8), 8, None, false)?;
            return Ok((hi as u128) << 64 | lo as u128);
        }
        Ok(self.read_mem(va, bytes, None, false)? as u128)
    }

    pub(super) fn store_vec(&mut self, va: u64, bytes: usize, val: u128) -> Result<(), Stop> {
        if bytes == 16 {
            self.write_mem(va, 8, val as u64, None, false)?;
            return self.write_mem(va.wrapping_add(8), 8, (val >> 64) as u64, None, false);
        }
        self.write_mem(va, bytes, val as u64, None, false)
    }

    /// LDR (literal) for W/X/SW/PRFM and S/D/Q.
    fn ld_literal(&mut self, i: u32, v: bool) -> Result<(), Stop> {
        let opc = i >> 30;
        let rt = i & 31;
        let va = self
            .st
            .pc
            .wrapping_add(sext(((i >> 5) & 0x7ffff) as u64, 19) << 2);
        if v {
            if opc == 3 {
                return Err(self.undef(i));
            }
            let val = self.load_vec(va, 4 << opc)?;
            self.st.v[rt as usize] = val;
            return Ok(());
        }
        let (size, ext) = match opc {
            0 => (2, Ext::Zero),
            1 => (3, Ext::Zero),
            2 => (2, Ext::Sign64),
            _ => return Ok(()), // PRFM: a hint
        };
        let syn = load_syndrome(rt, size, ext);
        let raw = self.read_mem(va, 1 << size, Some(syn), false)?;
        self.st.set_x(rt, extend_loaded(raw, size, ext));
        Ok(())
    }

    /// STP/LDP/STNP/LDNP/LDPSW (general) and S/D/Q pairs, offset/pre/post-index.
    pub(super) fn ldst_pair(&mut self, i: u32, v: bool) -> Result<(), Stop> {
        let opc = i >> 30;
        let load = (i >> 22) & 1 == 1;
        let kind = (i >> 23) & 3; // 00 non-temporal, 01 post, 10 offset, 11 pre
        let (scale, signed) = match (v, opc) {
            (false, 0) => (2, false),
            (false, 1) if load && kind != 0 => (2, true),
            (false, 2) => (3, false),
            (true, 0..=2) => (2 + opc, false),
            _ => return Err(self.undef(i)),
        };
        let (rt, rt2, rn) = (i & 31, (i >> 10) & 31, (i >> 5) & 31);
        let off = sext(((i >> 15) & 0x7f) as u64, 7) << scale;
        let base = self.base(rn)?;
        let addr = if kind == 1 {
            base
        } else {
            base.wrapping_add(off)
        };
        let bytes = 1usize << scale;
        let addr2 = addr.wrapping_add(bytes as u64);
        if v {
            if load {
                let a = self.load_vec(addr, bytes)?;
                let b = self.load_vec(addr2, bytes)?;
                self.st.v[rt as usize] = a;
                self.st.v[rt2 as usize] = b;
            } else {
                let (a, b) = (self.st.v[rt as usize], self.st.v[rt2 as usize]);
                self.store_vec(addr, bytes, a)?;
                self.store_vec(addr2, bytes, b)?;
            }
        } else if load {
            let a = self.read_mem(addr, bytes, None, false)?;
            let b = self.read_mem(addr2, bytes, None, false)?;
            let fix = |x: u64| if signed { x as i32 as i64 as u64 } else { x };
            self.st.set_x(rt, fix(a));
            self.st.set_x(rt2, fix(b));
        } else {
            let (a, b) = (self.st.xr(rt), self.st.xr(rt2));
            self.write_mem(addr, bytes, a, None, false)?;
            self.write_mem(addr2, bytes, b, None, false)?;
        }
        if kind == 1 || kind == 3 {
            self.st.set_xsp(rn, base.wrapping_add(off));
        }
        Ok(())
    }

    /// Single-register loads and stores in every addressing mode.
    fn ldst_single(&mut self, i: u32, v: bool, mode: Mode) -> Result<(), Stop> {
        let size = i >> 30;
        let opc = (i >> 22) & 3;
        let (rt, rn) = (i & 31, (i >> 5) & 31);
        let scale = self.scale(i, v);
        if !v
            && size == 3
            && opc == 2
            && matches!(mode, Mode::Pre(_) | Mode::Post(_) | Mode::Unpriv(_))
        {
            // PRFM exists only with an unsigned, unscaled or register offset.
            return Err(self.undef(i));
        }
        let base = self.base(rn)?;
        let (addr, wb) = match mode {
            Mode::Offset(o) | Mode::Unpriv(o) => (base.wrapping_add(o), None),
            Mode::Pre(o) => (base.wrapping_add(o), Some(base.wrapping_add(o))),
            Mode::Post(o) => (base, Some(base.wrapping_add(o))),
            Mode::Register => {
                let option = (i >> 13) & 7;
                if option & 2 == 0 {
                    return Err(self.undef(i));
                }
                let sh = if (i >> 12) & 1 == 1 { scale } else { 0 };
                let m = self.st.xr((i >> 16) & 31);
                (base.wrapping_add(extend(m, option, sh)), None)
            }
        };
        // LDTR/STTR at EL1 access memory as EL0 does: EL0 permissions, and watchpoints match
        // them as EL0 accesses (`watchpoint` checks PAC at the EL it sees). PSTATE.UAO is RES0
        // in the model (exception.rs), so they are always unprivileged there.
        let el = self.st.el();
        let unpriv = debugregs::access_el(el, matches!(mode, Mode::Unpriv(_)), false) != el;
        let saved = self.st.pstate;
        if unpriv {
            self.st.pstate &= !crate::a64::pstate::M_MASK;
        }
        let r = if v {
            self.ldst_single_vec(i, opc, scale, rt, addr).map(|()| None)
        } else {
            self.ldst_single_gpr(i, size, opc, rt, addr, wb.is_none())
        };
        self.st.pstate = saved;
        // The abort or watchpoint of an unprivileged access at EL1 is taken from EL1: "current
        // EL" classes (Arm ARM D19.2.37, EC 0x25 and 0x35; the EL0 view above only selects the
        // permissions and the watchpoint privilege).
        let loaded = r.map_err(|stop| match stop {
            Stop::Exception(mut e)
                if unpriv && (e.ec == ec::DABT_LOW || e.ec == ec::WATCHPT_LOW) =>
            {
                e.ec = if e.ec == ec::DABT_LOW {
                    ec::DABT_CUR
                } else {
                    ec::WATCHPT_CUR
                };
                Stop::Exception(e)
            }
            other => other,
        })?;
        if let Some(w) = wb {
            self.st.set_xsp(rn, w);
        }
        // A load with writeback into its own base keeps the loaded value (one of the
        // CONSTRAINED UNPREDICTABLE choices, Arm ARM K1.2.6).
        if let Some(val) = loaded {
            self.st.set_x(rt, val);
        }
        Ok(())
    }

    fn ldst_single_vec(
        &mut self,
        i: u32,
        opc: u32,
        scale: u32,
        rt: u32,
        addr: u64,
    ) -> Result<(), Stop> {
        if scale > 4 || (opc >> 1 == 1 && scale != 4) {
            return Err(self.undef(i));
        }
        let bytes = 1usize << scale;
        if opc & 1 == 1 {
            let val = self.load_vec(addr, bytes)?;
            self.st.v[rt as usize] = val;
        } else {
            let val = self.st.v[rt as usize];
            self.store_vec(addr, bytes, val)?;
        }
        Ok(())
    }

    fn ldst_single_gpr(
        &mut self,
        i: u32,
        size: u32,
        opc: u32,
        rt: u32,
        addr: u64,
        isv: bool,
    ) -> Result<Option<u64>, Stop> {
        let ext = match (size, opc) {
            (_, 0) => {
                let syn = store_syndrome(rt, size);
                let val = self.st.xr(rt);
                self.write_mem(addr, 1 << size, val, isv.then_some(syn), false)?;
                return Ok(None);
            }
            (_, 1) => Ext::Zero,
            (3, 2) => return Ok(None), // PRFM / PRFUM: a hint
            (0..=2, 2) => Ext::Sign64,
            (0 | 1, 3) => Ext::Sign32,
            _ => return Err(self.undef(i)),
        };
        let syn = load_syndrome(rt, size, ext);
        let raw = self.read_mem(addr, 1 << size, isv.then_some(syn), false)?;
        Ok(Some(extend_loaded(raw, size, ext)))
    }
}

/// Addressing mode of a single-register load/store.
#[derive(Clone, Copy)]
enum Mode {
    Offset(u64),
    Unpriv(u64),
    Pre(u64),
    Post(u64),
    Register,
}

/// The valid syndrome of a general-register load (SSE for sign-extending loads, SF when the
/// destination is an X register).
pub(super) fn load_syndrome(rt: u32, size: u32, ext: Ext) -> DabtSyndrome {
    DabtSyndrome {
        size_log2: size as u8,
        sign_extend: ext != Ext::Zero,
        rt: rt as u8,
        sixty_four: size == 3 || ext == Ext::Sign64,
        acq_rel: false,
        write: false,
    }
}

/// The valid syndrome of a general-register store of 2^size bytes (SF for an X register).
pub(super) fn store_syndrome(rt: u32, size: u32) -> DabtSyndrome {
    DabtSyndrome {
        size_log2: size as u8,
        sign_extend: false,
        rt: rt as u8,
        sixty_four: size == 3,
        acq_rel: false,
        write: true,
    }
}

/// Applies the load's extension to a raw little-endian value of 2^size bytes.
pub(super) fn extend_loaded(raw: u64, size: u32, ext: Ext) -> u64 {
    let bits = 8u32 << size;
    match ext {
        Ext::Zero => raw,
        Ext::Sign64 => sext(raw, bits),
        Ext::Sign32 => sext(raw, bits) & 0xffff_ffff,
    }
}

/// Completes an MMIO load as KVM's `kvm_handle_mmio_return` does: sign-extend per SSE from
/// the access size, then truncate to 32 bits unless SF.
pub fn mmio_load_value(data: u64, syn: &DabtSyndrome) -> u64 {
    let bits = 8u32 << syn.size_log2;
    let mut v = if bits == 64 {
        data
    } else {
        data & ((1u64 << bits) - 1)
    };
    if syn.sign_extend && bits < 64 {
        v = sext(v, bits);
    }
    if !syn.sixty_four {
        v &= 0xffff_ffff;
    }
    v
}
