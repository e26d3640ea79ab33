//! The session's debug memory access at guest virtual addresses: the stopped vCPU's stage-1
//! tables (its translation registers read once per stop, through the register cache), RAM
//! with planted BRKs hidden, devices only when allowed.
//!
//! An access is planned before any byte moves: the range is cut into pieces that translate
//! contiguously (one walk per page or block, not per byte) and lie in RAM or in one device
//! window, up to the first byte that cannot be reached. A whole access ([`Session::read_virt`],
//! [`Session::write_virt`]) then fails without touching anything unless every piece is
//! reachable; a partial read ([`Session::read_virt_prefix`]) reads exactly the reachable
//! prefix and nothing beyond it. RAM is copied once, straight into the caller's buffer.
//! Devices are accessed in naturally aligned pieces of 8, 4, 2 or 1 bytes (the sizes
//! [`MmioDevice`](crate::machine::bus::MmioDevice) implements), never past the window that claims them.

use std::ops::Range;

use crate::a64::walk::TranslationRegs;
use crate::debug::guest_ram;

use super::*;

/// A run of a debug access that translates contiguously and lies in RAM or in one device
/// window.
struct Piece {
    va: u64,
    pa: u64,
    /// The bytes of the caller's buffer this piece covers.
    range: Range<usize>,
    ram: bool,
}

impl Piece {
    /// The error for physical address `pa` of this piece (not reachable after all: the
    /// memory map changed under the plan, which a stopped machine never does).
    fn unmapped(&self, pa: u64) -> MemError {
        MemError::Unmapped {
            va: self.va + (pa - self.pa),
            pa,
        }
    }
}

/// The reachable pieces of an access, in order, and why the rest is not reachable (if any
/// of it is not).
struct Plan {
    pieces: Vec<Piece>,
    stopped: Option<MemError>,
}

impl Plan {
    /// Bytes from the start of the access that the pieces cover.
    fn reachable(&self) -> usize {
        self.pieces.last().map_or(0, |p| p.range.end)
    }

    /// The pieces when the whole access is reachable, else why not.
    fn whole(self) -> std::result::Result<Vec<Piece>, MemError> {
        match self.stopped {
            Some(e) => Err(e),
            None => Ok(self.pieces),
        }
    }
}

impl Session {
    /// `vcpu`'s stage-1 translation registers, read once per stop (the register cache is
    /// emptied whenever the vCPUs run and updated by every register write).
    pub(super) fn translation_regs(
        &mut self,
        vcpu: usize,
    ) -> std::result::Result<TranslationRegs, MemError> {
        let v = self.read_regs(vcpu, &translate::TRANSLATION_REGS)?;
        let mut values = [0u128; 5];
        values.copy_from_slice(&v);
        Ok(translate::regs_from_values(values))
    }

    /// Reads guest memory at virtual address `va` as `vcpu` sees it: all of `buf`, or an
    /// error and nothing read.
    pub fn read_virt(
        &mut self,
        vcpu: usize,
        va: u64,
        buf: &mut [u8],
    ) -> std::result::Result<(), MemError> {
        let pieces = self.plan(vcpu, va, buf.len())?.whole()?;
        self.read_pieces(&pieces, buf)
    }

    /// Reads as much of `buf` from `va` as `vcpu` can reach, stopping at the first byte it
    /// cannot (unmapped, not RAM or a device, a device while device access is off). Returns
    /// the bytes read; an error when not even the first byte is reachable. Nothing past the
    /// reachable prefix is read.
    pub fn read_virt_prefix(
        &mut self,
        vcpu: usize,
        va: u64,
        buf: &mut [u8],
    ) -> std::result::Result<usize, MemError> {
        if buf.is_empty() {
            return Ok(0);
        }
        let plan = self.plan(vcpu, va, buf.len())?;
        let n = plan.reachable();
        if n == 0 {
            return Err(plan.stopped.unwrap_or(MemError::Unmapped { va, pa: va }));
        }
        self.read_pieces(&plan.pieces, &mut buf[..n])?;
        Ok(n)
    }

    /// Writes guest memory at virtual address `va` as `vcpu` sees it (planted BRKs stay): all
    /// of `data`, or an error and nothing written.
    pub fn write_virt(
        &mut self,
        vcpu: usize,
        va: u64,
        data: &[u8],
    ) -> std::result::Result<(), MemError> {
        self.refuse_in_past("a memory write")?;
        self.write_virt_unrecorded(vcpu, va, data)?;
        let input = Input::MemoryWrite {
            addr: va,
            data: data.to_vec(),
        };
        super::super::record::note(&self._vm.recorder(), vcpu, input);
        Ok(())
    }

    /// [`Session::write_virt`] without the input log (a recorded write replayed).
    pub(super) fn write_virt_unrecorded(
        &mut self,
        vcpu: usize,
        va: u64,
        data: &[u8],
    ) -> std::result::Result<(), MemError> {
        let pieces = self.plan(vcpu, va, data.len())?.whole()?;
        for p in pieces {
            let part = &data[p.range.clone()];
            if p.ram {
                self.state.write_through(p.pa, part)?;
                self.note_vmm_write(p.pa, part.len());
            } else {
                for (off, size) in guest_ram::pieces(p.pa, part.len()) {
                    let at = p.pa + off as u64;
                    self.bus
                        .write(at, &part[off..off + size])
                        .map_err(|_| p.unmapped(at))?;
                }
            }
        }
        Ok(())
    }

    fn read_pieces(&self, pieces: &[Piece], buf: &mut [u8]) -> std::result::Result<(), MemError> {
        for p in pieces {
            let part = &mut buf[p.range.clone()];
            if p.ram {
                guest_ram::read(&self.mem, p.pa, part).map_err(|_| p.unmapped(p.pa))?;
                self.state.shadow(p.pa, part);
            } else {
                for (off, size) in guest_ram::pieces(p.pa, part.len()) {
                    let at = p.pa + off as u64;
                    self.bus
                        .read(at, &mut part[off..off + size])
                        .map_err(|_| p.unmapped(at))?;
                }
            }
        }
        Ok(())
    }

    /// Cuts `[va, va + len)` into reachable pieces, up to the first unreachable byte. The
    /// translation registers are read first (a failure there is the only error returned
    /// directly); nothing is accessed but the page tables.
    fn plan(&mut self, vcpu: usize, va: u64, len: usize) -> std::result::Result<Plan, MemError> {
        let regs = self.translation_regs(vcpu)?;
        let mut pieces = Vec::new();
        let mut done = 0usize;
        while done < len {
            let cur = va.wrapping_add(done as u64);
            let piece = translate::translate_with(&regs, &self.mem, cur)
                .map_err(MemError::from)
                .and_then(|t| {
                    let (n, ram) = self.place(cur, t.pa, chunk(cur, t.size_log2, len - done))?;
                    Ok(Piece {
                        va: cur,
                        pa: t.pa,
                        range: done..done + n,
                        ram,
                    })
                });
            match piece {
                Ok(p) => {
                    done = p.range.end;
                    pieces.push(p);
                }
                Err(e) => {
                    return Ok(Plan {
                        pieces,
                        stopped: Some(e),
                    })
                }
            }
        }
        Ok(Plan {
            pieces,
            stopped: None,
        })
    }

    /// How many of the `n` bytes at physical `pa` lie in the same RAM region or device
    /// window, and whether that is RAM; an error when `pa` is neither or device access is off.
    fn place(&self, va: u64, pa: u64, n: usize) -> std::result::Result<(usize, bool), MemError> {
        if let Some(left) = ram_left(&self.mem, pa) {
            return Ok((clamp(n, left), true));
        }
        let Some(left) = self.bus.window_left(pa) else {
            return Err(MemError::Unmapped { va, pa });
        };
        if !self.mmio_access {
            return Err(MemError::Device { pa });
        }
        Ok((clamp(n, left), false))
    }
}

fn clamp(n: usize, left: u64) -> usize {
    usize::try_from(left).map_or(n, |l| n.min(l))
}

/// Bytes from `va` that translate contiguously: to the end of its page or block of
/// 2^`size_log2` bytes, at most `left`.
fn chunk(va: u64, size_log2: u8, left: usize) -> usize {
    let block = 1u64 << size_log2.min(63);
    let to_end = block - (va & (block - 1));
    clamp(left, to_end)
}

/// Bytes from physical `pa` to the end of the RAM region holding it; None when `pa` is not
/// RAM.
pub(super) fn ram_left(mem: &GuestMemoryMmap, pa: u64) -> Option<u64> {
    use vm_memory::GuestMemoryRegion;
    let region = mem.find_region(GuestAddress(pa))?;
    let start = region.start_addr().0;
    Some(region.len() - (pa - start))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_end_at_the_page_or_block() {
        assert_eq!(chunk(0x1000, 12, 0x10_0000), 0x1000);
        assert_eq!(chunk(0x1ff8, 12, 0x10_0000), 8);
        assert_eq!(chunk(0x1ff8, 12, 4), 4);
        assert_eq!(chunk(0x20_0000, 21, usize::MAX), 0x20_0000);
        // A 64-bit-wide "block" (MMU off: identity) never overflows.
        assert_eq!(chunk(u64::MAX, 64, 16), 1);
    }
}
