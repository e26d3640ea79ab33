//! Advanced SIMD structure loads and stores: LD1-LD4/ST1-ST4 (multiple structures), single
//! structures (one lane) and LD1R-LD4R (replicate), with and without post-index (Arm ARM
//! C4.1.89 "Advanced SIMD load/store multiple structures", "... single structure").
//! Every element is its own access (ISV=0 syndromes: SIMD&FP accesses have no valid one).

use super::alu::ones;
use super::{Cpu, Stop};

/// Replaces element `idx` (of `esize` bits) of `v` with `val`.
fn set_elem(v: u128, idx: u32, esize: u32, val: u64) -> u128 {
    let sh = idx * esize;
    let m = (ones(esize) as u128) << sh;
    (v & !m) | (((val & ones(esize)) as u128) << sh)
}

fn get_elem(v: u128, idx: u32, esize: u32) -> u64 {
    (v >> (idx * esize)) as u64 & ones(esize)
}

impl Cpu {
    /// Dispatch of the structure load/store class (0 Q 0011 0 0/1 ...).
    pub(super) fn simd_ldst_struct(&mut self, i: u32) -> Result<(), Stop> {
        if i >> 31 != 0 {
            return Err(self.undef(i));
        }
        let post = (i >> 23) & 1 == 1;
        if !post && (i >> 16) & 31 != 0 {
            return Err(self.undef(i));
        }
        if (i >> 24) & 1 == 0 {
            if (i >> 21) & 1 != 0 {
                return Err(self.undef(i));
            }
            self.simd_ldst_multiple(i, post)
        } else {
            self.simd_ldst_single(i, post)
        }
    }

    /// Post-index writeback: Rm = 31 means the immediate `bytes`, else add Xm.
    fn struct_writeback(&mut self, i: u32, post: bool, base: u64, bytes: u64) {
        if post {
            let rm = (i >> 16) & 31;
            let off = if rm == 31 {
                bytes
            } else {
                self.st.x[rm as usize]
            };
            self.st.set_xsp((i >> 5) & 31, base.wrapping_add(off));
        }
    }

    fn simd_ldst_multiple(&mut self, i: u32, post: bool) -> Result<(), Stop> {
        let q = (i >> 30) & 1 == 1;
        let load = (i >> 22) & 1 == 1;
        let size = (i >> 10) & 3;
        let (rpt, selem) = match (i >> 12) & 15 {
            0b0000 => (1, 4),
            0b0010 => (4, 1),
            0b0100 => (1, 3),
            0b0110 => (3, 1),
            0b0111 => (1, 1),
            0b1000 => (1, 2),
            0b1010 => (2, 1),
            _ => return Err(self.undef(i)),
        };
        if size == 3 && !q && selem != 1 {
            return Err(self.undef(i));
        }
        let esize = 8u32 << size;
        let ebytes = (esize / 8) as u64;
        let elements = if q { 128 } else { 64 } / esize;
        let rt = i & 31;
        let base = self.base((i >> 5) & 31)?;
        let mut regs = [0u128; 4];
        let nregs = rpt * selem;
        for (k, r) in regs.iter_mut().enumerate().take(nregs as usize) {
            *r = self.st.v[((rt + k as u32) & 31) as usize];
        }
        let mut addr = base;
        for r in 0..rpt {
            for e in 0..elements {
                for s in 0..selem {
                    let slot = (r + s) as usize;
                    if load {
                        let v = self.read_mem(addr, ebytes as usize, None, false)?;
                        regs[slot] = set_elem(regs[slot], e, esize, v);
                    } else {
                        let v = get_elem(regs[slot], e, esize);
                        self.write_mem(addr, ebytes as usize, v, None, false)?;
                    }
                    addr = addr.wrapping_add(ebytes);
                }
            }
        }
        if load {
            for (k, r) in regs.iter().enumerate().take(nregs as usize) {
                let v = if q { *r } else { *r & u64::MAX as u128 };
                self.st.v[((rt + k as u32) & 31) as usize] = v;
            }
        }
        self.struct_writeback(i, post, base, addr.wrapping_sub(base));
        Ok(())
    }

    fn simd_ldst_single(&mut self, i: u32, post: bool) -> Result<(), Stop> {
        let q = (i >> 30) & 1;
        let load = (i >> 22) & 1 == 1;
        let r = (i >> 21) & 1;
        let opcode = (i >> 13) & 7;
        let s = (i >> 12) & 1;
        let size = (i >> 10) & 3;
        let selem = ((opcode & 1) << 1 | r) + 1;
        let (scale, index, replicate) = match opcode >> 1 {
            0 => (0, q << 3 | s << 2 | size, false),
            1 if size & 1 == 0 => (1, q << 2 | s << 1 | size >> 1, false),
            2 if size == 0 => (2, q << 1 | s, false),
            2 if size == 1 && s == 0 => (3, q, false),
            3 if load && s == 0 => (size, 0, true),
            _ => return Err(self.undef(i)),
        };
        let esize = 8u32 << scale;
        let ebytes = (esize / 8) as u64;
        let rt = i & 31;
        let base = self.base((i >> 5) & 31)?;
        let mut addr = base;
        let mut vals = [0u64; 4];
        for v in vals.iter_mut().take(selem as usize) {
            if load {
                *v = self.read_mem(addr, ebytes as usize, None, false)?;
            }
            addr = addr.wrapping_add(ebytes);
        }
        addr = base;
        for (k, val) in vals.iter().enumerate().take(selem as usize) {
            let t = ((rt + k as u32) & 31) as usize;
            if replicate {
                let mut v = 0u128;
                for e in 0..(if q == 1 { 128 } else { 64 }) / esize {
                    v = set_elem(v, e, esize, *val);
                }
                self.st.v[t] = v;
            } else if load {
                self.st.v[t] = set_elem(self.st.v[t], index, esize, *val);
            } else {
                let v = get_elem(self.st.v[t], index, esize);
                self.write_mem(addr, ebytes as usize, v, None, false)?;
            }
            addr = addr.wrapping_add(ebytes);
        }
        self.struct_writeback(i, post, base, selem as u64 * ebytes);
        Ok(())
    }
}
