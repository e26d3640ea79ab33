//! Exclusives (LDXR/STXR/LDAXR/STLXR and pairs), load-acquire/store-release (LDAR/STLR and
//! the LORegion-free forms), compare-and-swap (CAS/CASP) and the LSE atomic memory
//! operations (LDADD, LDCLR, LDEOR, LDSET, LDSMAX, LDSMIN, LDUMAX, LDUMIN, SWP) (Arm ARM
//! C4.1.89 "Load/store exclusive", "Atomic memory operations").
//!
//! The exclusive monitor is value-based: STXR is a compare-and-swap against the value LDXR
//! saw, which is atomic against other vCPUs and the VMM. Atomics outside RAM have no valid
//! syndrome (NISV), as on hardware.

use crate::a64::esr::DabtSyndrome;

use super::alu::ones;
use super::bus::PhysKind;
use super::{Cpu, Monitor, Stop};

impl Cpu {
    /// Physical address of an atomic/exclusive access; outside RAM it is a NISV abort.
    /// Read-modify-writes (`rmw`) also trigger load watchpoints (WnR = 0 then).
    fn atomic_pa(&mut self, va: u64, size: usize, write: bool, rmw: bool) -> Result<u64, Stop> {
        let pa = self.data_pa(va, size, write, true)?;
        if rmw {
            self.watchpoint(va, size, false)?;
        }
        if self.bus.kind(pa, size as u64) != PhysKind::Ram {
            return Err(self.mmio_stop(pa, size, write, 0, None));
        }
        Ok(pa)
    }

    pub(super) fn ldst_exclusive_class(&mut self, i: u32) -> Result<(), Stop> {
        let size = i >> 30;
        let (o2, l, o1, o0) = ((i >> 23) & 1, (i >> 22) & 1, (i >> 21) & 1, (i >> 15) & 1);
        let (rs, rt2, rn, rt) = ((i >> 16) & 31, (i >> 10) & 31, (i >> 5) & 31, i & 31);
        if o1 == 1 && (o2 == 1 || size < 2) && rt2 != 31 {
            // CAS and CASP have Rt2 = 0b11111 in their encodings.
            return Err(self.undef(i));
        }
        let va = self.base(rn)?;
        match (o2, o1) {
            (0, 0) => self.exclusive(size, l == 1, rs, rt, va),
            (0, 1) if size >= 2 => self.exclusive_pair(size, l == 1, rs, rt, rt2, va),
            (0, 1) => self.casp(i, size, rs, rt, va),
            (1, 0) => self.acquire_release(size, l == 1, o0 == 1, rt, va),
            _ => self.cas(size, rs, rt, va),
        }
    }

    fn exclusive(&mut self, size: u32, load: bool, rs: u32, rt: u32, va: u64) -> Result<(), Stop> {
        let bytes = 1usize << size;
        let pa = self.atomic_pa(va, bytes, !load, false)?;
        if load {
            let v = self.bus.read(pa, bytes).unwrap_or(0);
            self.monitor = Some(Monitor {
                pa,
                size: bytes,
                vals: [v, 0],
                pair: false,
            });
            self.st.set_x(rt, v);
            return Ok(());
        }
        let new = self.st.xr(rt) & ones(8 * bytes as u32);
        let ok = match self.monitor.take() {
            Some(m) if m.pa == pa && m.size == bytes && !m.pair => {
                self.bus.cas(pa, bytes, m.vals[0], new) == Some(m.vals[0])
            }
            _ => false,
        };
        self.st.set_x(rs, (!ok) as u64);
        Ok(())
    }

    fn exclusive_pair(
        &mut self,
        size: u32,
        load: bool,
        rs: u32,
        rt: u32,
        rt2: u32,
        va: u64,
    ) -> Result<(), Stop> {
        let elem = 1usize << size;
        let total = 2 * elem;
        let pa = self.atomic_pa(va, total, !load, false)?;
        if load {
            let (a, b) = if elem == 4 {
                let v = self.bus.read(pa, 8).unwrap_or(0);
                (v & 0xffff_ffff, v >> 32)
            } else {
                (
                    self.bus.read(pa, 8).unwrap_or(0),
                    self.bus.read(pa + 8, 8).unwrap_or(0),
                )
            };
            self.monitor = Some(Monitor {
                pa,
                size: total,
                vals: [a, b],
                pair: true,
            });
            self.st.set_x(rt, a);
            self.st.set_x(rt2, b);
            return Ok(());
        }
        let (a, b) = (self.st.xr(rt), self.st.xr(rt2));
        let ok = match self.monitor.take() {
            Some(m) if m.pa == pa && m.size == total && m.pair => {
                if elem == 4 {
                    let exp = m.vals[0] | m.vals[1] << 32;
                    let new = (a & 0xffff_ffff) | b << 32;
                    self.bus.cas(pa, 8, exp, new) == Some(exp)
                } else {
                    self.bus.cas128(pa, m.vals, [a, b]) == Some(m.vals)
                }
            }
            _ => false,
        };
        self.st.set_x(rs, (!ok) as u64);
        Ok(())
    }

    /// LDAR/LDLAR/STLR/STLLR: single-register with a valid syndrome (AR set).
    fn acquire_release(
        &mut self,
        size: u32,
        load: bool,
        o0: bool,
        rt: u32,
        va: u64,
    ) -> Result<(), Stop> {
        let bytes = 1usize << size;
        let syn = DabtSyndrome {
            size_log2: size as u8,
            sign_extend: false,
            rt: rt as u8,
            sixty_four: size == 3,
            acq_rel: o0,
            write: !load,
        };
        if load {
            let v = self.read_mem(va, bytes, Some(syn), true)?;
            self.st.set_x(rt, v);
        } else {
            let v = self.st.xr(rt);
            self.write_mem(va, bytes, v, Some(syn), true)?;
        }
        Ok(())
    }

    /// CAS{A,L,AL}{B,H,}: compare Ws/Xs with memory, store Wt/Xt if equal; Rs = old value.
    fn cas(&mut self, size: u32, rs: u32, rt: u32, va: u64) -> Result<(), Stop> {
        let bytes = 1usize << size;
        let pa = self.atomic_pa(va, bytes, true, true)?;
        let mask = ones(8 * bytes as u32);
        let exp = self.st.xr(rs) & mask;
        let new = self.st.xr(rt) & mask;
        let old = self.bus.cas(pa, bytes, exp, new).unwrap_or(0);
        self.st.set_x(rs, old);
        Ok(())
    }

    /// CASP{A,L,AL} (size 0: W pairs, 1: X pairs); Rs and Rt must be even.
    fn casp(&mut self, i: u32, size: u32, rs: u32, rt: u32, va: u64) -> Result<(), Stop> {
        if rs & 1 == 1 || rt & 1 == 1 {
            return Err(self.undef(i));
        }
        let elem = 4usize << size;
        let pa = self.atomic_pa(va, 2 * elem, true, true)?;
        let (e0, e1) = (self.st.xr(rs), self.st.xr(rs + 1));
        let (n0, n1) = (self.st.xr(rt), self.st.xr(rt + 1));
        let (o0, o1) = if elem == 4 {
            let m = 0xffff_ffff;
            let exp = (e0 & m) | (e1 & m) << 32;
            let old = self
                .bus
                .cas(pa, 8, exp, (n0 & m) | (n1 & m) << 32)
                .unwrap_or(0);
            (old & m, old >> 32)
        } else {
            let old = self.bus.cas128(pa, [e0, e1], [n0, n1]).unwrap_or([0, 0]);
            (old[0], old[1])
        };
        self.st.set_x(rs, o0);
        self.st.set_x(rs + 1, o1);
        Ok(())
    }

    /// LSE atomic memory operations and SWP (LDAPR/RCpc is not implemented: UNDEFINED).
    pub(super) fn lse_atomic(&mut self, i: u32) -> Result<(), Stop> {
        let size = i >> 30;
        let bytes = 1usize << size;
        let bits = 8 * bytes as u32;
        let (rs, rn, rt) = ((i >> 16) & 31, (i >> 5) & 31, i & 31);
        let o3 = (i >> 15) & 1;
        let opc = (i >> 12) & 7;
        if o3 == 1 && opc != 0 {
            return Err(self.undef(i));
        }
        let va = self.base(rn)?;
        let pa = self.atomic_pa(va, bytes, true, true)?;
        let mask = ones(bits);
        let operand = self.st.xr(rs) & mask;
        let sx = |v: u64| super::branch::sext(v, bits) as i64;
        loop {
            let old = self.bus.read(pa, bytes).unwrap_or(0) & mask;
            let new = if o3 == 1 {
                operand
            } else {
                match opc {
                    0 => old.wrapping_add(operand),
                    1 => old & !operand,
                    2 => old ^ operand,
                    3 => old | operand,
                    4 => sx(old).max(sx(operand)) as u64,
                    5 => sx(old).min(sx(operand)) as u64,
                    6 => old.max(operand),
                    _ => old.min(operand),
                }
            } & mask;
            match self.bus.cas(pa, bytes, old, new) {
                Some(seen) if seen & mask == old => {
                    self.st.set_x(rt, old);
                    return Ok(());
                }
                Some(_) => continue,
                None => return Err(self.mmio_stop(pa, bytes, true, 0, None)),
            }
        }
    }
}
