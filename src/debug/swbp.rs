//! Software breakpoints: `BRK #0` planted in guest physical memory.
//!
//! Owns the table of planted breakpoints, keyed by guest PHYSICAL address (several virtual
//! addresses, and several debugger inserts, may map to one physical word), each with the
//! original instruction bytes and a reference count; the shadowing of debugger reads and
//! writes so the debugger always sees and edits the original code. Memory is reached only
//! through [`PhysAccess`]. Must not depend on `machine` or gdb.
//!
//! Self-modifying guests: if the guest overwrites a planted BRK, memory is the truth. Removal
//! restores the saved bytes only while memory still holds `BRK #0`; reads show the guest's
//! new bytes; debugger writes over such a word go through unchanged.
//!
//! Instruction cache maintenance after planting or restoring is the caller's business
//! (stopped vCPUs re-fetch after the VMM makes the write visible to instruction fetches).

use std::collections::BTreeMap;

use vm_memory::GuestMemoryMmap;

/// `BRK #0`: 0b11010100_001_imm16_00000 with imm16 = 0 (Arm ARM C6.2.38 "BRK").
pub const BRK0: u32 = 0xd420_0000;
/// Its bytes in memory: A64 instructions are always little-endian (Arm ARM B2.6.2
/// "Instruction endianness").
pub const BRK0_BYTES: [u8; 4] = BRK0.to_le_bytes();

/// A failed guest-physical access.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("guest physical {pa:#x} (+{len}): {reason}")]
pub struct PhysAccessError {
    pub pa: u64,
    pub len: usize,
    pub reason: String,
}

/// Guest physical memory as the breakpoint table needs it.
pub trait PhysAccess {
    fn read(&self, pa: u64, buf: &mut [u8]) -> Result<(), PhysAccessError>;
    fn write(&self, pa: u64, buf: &[u8]) -> Result<(), PhysAccessError>;
}

/// Guest RAM, through the atomic accessors of [`super::guest_ram`] (vCPUs may be running).
impl PhysAccess for GuestMemoryMmap {
    fn read(&self, pa: u64, buf: &mut [u8]) -> Result<(), PhysAccessError> {
        super::guest_ram::read(self, pa, buf).map_err(|e| PhysAccessError {
            pa,
            len: buf.len(),
            reason: e.to_string(),
        })
    }
    fn write(&self, pa: u64, buf: &[u8]) -> Result<(), PhysAccessError> {
        super::guest_ram::write(self, pa, buf).map_err(|e| PhysAccessError {
            pa,
            len: buf.len(),
            reason: e.to_string(),
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SwBpError {
    #[error("software breakpoint at {pa:#x}: not 4-byte aligned (A64 instructions are)")]
    Misaligned { pa: u64 },
    #[error("insert software breakpoint at {pa:#x}: {source}")]
    Insert {
        pa: u64,
        #[source]
        source: PhysAccessError,
    },
    #[error("remove software breakpoint at {pa:#x}: {source}")]
    Remove {
        pa: u64,
        #[source]
        source: PhysAccessError,
    },
    #[error("no software breakpoint at {pa:#x}")]
    NotInserted { pa: u64 },
    #[error("write {len} bytes at {pa:#x} through software breakpoints: {source}")]
    Write {
        pa: u64,
        len: usize,
        #[source]
        source: PhysAccessError,
    },
    #[error(
        "remove all software breakpoints: {failed} left planted, first at {first_pa:#x}: {first}"
    )]
    RemoveAll {
        failed: usize,
        first_pa: u64,
        first: PhysAccessError,
    },
}

/// What [`SwBreakpoints::remove`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Removed {
    /// Other inserts still use the breakpoint; this many remain.
    StillReferenced(u32),
    /// The last reference went; the original instruction is back.
    Restored,
    /// The last reference went, but the guest had replaced the BRK with this word: left as is.
    GuestOverwrote(u32),
}

#[derive(Clone, Copy, Debug)]
struct Entry {
    orig: [u8; 4],
    refs: u32,
}

/// The planted software breakpoints.
#[derive(Debug, Default)]
pub struct SwBreakpoints {
    table: BTreeMap<u64, Entry>,
}

impl SwBreakpoints {
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of planted words.
    pub fn len(&self) -> usize {
        self.table.len()
    }

    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    /// True when a breakpoint is planted at `pa`.
    pub fn is_planted(&self, pa: u64) -> bool {
        self.table.contains_key(&pa)
    }

    /// How many inserts hold the breakpoint at `pa` (0 when none).
    pub fn refs(&self, pa: u64) -> u32 {
        self.table.get(&pa).map_or(0, |e| e.refs)
    }

    /// The original instruction under the breakpoint at `pa` (to step over it).
    pub fn original(&self, pa: u64) -> Option<u32> {
        self.table.get(&pa).map(|e| u32::from_le_bytes(e.orig))
    }

    /// Planted physical addresses, ascending.
    pub fn addrs(&self) -> impl Iterator<Item = u64> + '_ {
        self.table.keys().copied()
    }

    /// Adds a reference to the breakpoint at `pa`, planting `BRK #0` on the first one.
    /// Returns the new reference count. On a memory error nothing changes.
    pub fn insert(&mut self, mem: &dyn PhysAccess, pa: u64) -> Result<u32, SwBpError> {
        if pa & 3 != 0 {
            return Err(SwBpError::Misaligned { pa });
        }
        if let Some(e) = self.table.get_mut(&pa) {
            e.refs = e.refs.saturating_add(1);
            return Ok(e.refs);
        }
        let mut orig = [0u8; 4];
        let insert_err = |source| SwBpError::Insert { pa, source };
        mem.read(pa, &mut orig).map_err(insert_err)?;
        mem.write(pa, &BRK0_BYTES).map_err(insert_err)?;
        self.table.insert(pa, Entry { orig, refs: 1 });
        Ok(1)
    }

    /// Drops one reference to the breakpoint at `pa`; on the last one restores the original
    /// instruction if memory still holds `BRK #0`. On a memory error nothing changes.
    pub fn remove(&mut self, mem: &dyn PhysAccess, pa: u64) -> Result<Removed, SwBpError> {
        let entry = *self.table.get(&pa).ok_or(SwBpError::NotInserted { pa })?;
        if entry.refs > 1 {
            let left = entry.refs - 1;
            self.table.insert(
                pa,
                Entry {
                    refs: left,
                    ..entry
                },
            );
            return Ok(Removed::StillReferenced(left));
        }
        let done =
            unplant(mem, pa, &entry.orig).map_err(|source| SwBpError::Remove { pa, source })?;
        self.table.remove(&pa);
        Ok(done)
    }

    /// Removes every breakpoint whatever its count (detach, kill, disconnect). Words whose
    /// restore failed stay in the table (count 1) and the error names them; the rest are gone.
    /// Returns how many words were dropped.
    pub fn remove_all(&mut self, mem: &dyn PhysAccess) -> Result<usize, SwBpError> {
        let mut dropped = 0;
        let mut failed: Vec<(u64, PhysAccessError)> = Vec::new();
        for (pa, e) in std::mem::take(&mut self.table) {
            match unplant(mem, pa, &e.orig) {
                Ok(_) => dropped += 1,
                Err(err) => {
                    failed.push((pa, err));
                    self.table.insert(pa, Entry { refs: 1, ..e });
                }
            }
        }
        match failed.into_iter().next() {
            None => Ok(dropped),
            Some((first_pa, first)) => Err(SwBpError::RemoveAll {
                failed: self.table.len(),
                first_pa,
                first,
            }),
        }
    }

    /// Patches `buf`, just read from guest memory at `pa`, so every planted BRK shows its
    /// original bytes. A word whose visible bytes are no longer BRK (the guest rewrote it)
    /// is shown as it is.
    pub fn shadow(&self, pa: u64, buf: &mut [u8]) {
        for (e_pa, e) in self.overlapping(pa, buf.len()) {
            let idx = overlap(pa, buf.len(), e_pa);
            if idx.iter().all(|&(b, j)| buf[b] == BRK0_BYTES[j]) {
                for (b, j) in idx {
                    buf[b] = e.orig[j];
                }
            }
        }
    }

    /// Prepares a debugger write of `data` at `pa`: bytes falling on a planted breakpoint
    /// update its saved original and are replaced by the BRK bytes, so the breakpoint stays.
    /// Assumes the BRKs are in place; [`SwBreakpoints::write_through`] checks memory first.
    pub fn patch_write(&mut self, pa: u64, data: &mut [u8]) {
        let hits: Vec<u64> = self.overlapping(pa, data.len()).map(|(a, _)| a).collect();
        for e_pa in hits {
            self.patch_one(pa, data, e_pa);
        }
    }

    /// Writes `data` at `pa` as the debugger asked, keeping planted breakpoints planted (see
    /// [`SwBreakpoints::patch_write`]); words the guest rewrote get the data unchanged. The
    /// table changes only if the write succeeds.
    pub fn write_through(
        &mut self,
        mem: &dyn PhysAccess,
        pa: u64,
        data: &[u8],
    ) -> Result<(), SwBpError> {
        let err = |source| SwBpError::Write {
            pa,
            len: data.len(),
            source,
        };
        let mut out = data.to_vec();
        let mut updated = BTreeMap::new();
        let hits: Vec<(u64, Entry)> = self.overlapping(pa, data.len()).collect();
        for (e_pa, mut e) in hits {
            let mut now = [0u8; 4];
            mem.read(e_pa, &mut now).map_err(err)?;
            if now == BRK0_BYTES {
                for (b, j) in overlap(pa, data.len(), e_pa) {
                    e.orig[j] = out[b];
                    out[b] = BRK0_BYTES[j];
                }
                updated.insert(e_pa, e);
            }
        }
        mem.write(pa, &out).map_err(err)?;
        self.table.extend(updated);
        Ok(())
    }

    fn patch_one(&mut self, pa: u64, data: &mut [u8], e_pa: u64) {
        let idx = overlap(pa, data.len(), e_pa);
        if let Some(e) = self.table.get_mut(&e_pa) {
            for (b, j) in idx {
                e.orig[j] = data[b];
                data[b] = BRK0_BYTES[j];
            }
        }
    }

    /// Entries whose 4 bytes intersect `[pa, pa + len)`.
    fn overlapping(&self, pa: u64, len: usize) -> impl Iterator<Item = (u64, Entry)> + '_ {
        let lo = pa.saturating_sub(3);
        let hi = pa.saturating_add(len as u64);
        let empty = len == 0;
        self.table
            .range(lo..hi)
            .filter(move |(a, _)| !empty && a.saturating_add(4) > pa)
            .map(|(a, e)| (*a, *e))
    }
}

/// Pairs (index in the buffer at `pa`, index in the word at `e_pa`) for their common bytes.
fn overlap(pa: u64, len: usize, e_pa: u64) -> Vec<(usize, usize)> {
    (0..4u64)
        .filter_map(|j| {
            let a = e_pa.checked_add(j)?;
            let b = a.checked_sub(pa)?;
            (b < len as u64).then_some((b as usize, j as usize))
        })
        .collect()
}

/// Restores `orig` at `pa` if memory still holds BRK #0.
fn unplant(mem: &dyn PhysAccess, pa: u64, orig: &[u8; 4]) -> Result<Removed, PhysAccessError> {
    let mut now = [0u8; 4];
    mem.read(pa, &mut now)?;
    if now != BRK0_BYTES {
        log::info!(
            "software breakpoint at {pa:#x}: guest replaced BRK with {:#010x}; leaving it",
            u32::from_le_bytes(now)
        );
        return Ok(Removed::GuestOverwrote(u32::from_le_bytes(now)));
    }
    mem.write(pa, orig)?;
    Ok(Removed::Restored)
}

#[cfg(test)]
#[path = "swbp_tests.rs"]
mod tests;
