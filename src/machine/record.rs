//! Determinism at the machine level: the final-state hash of a run, and the machine's handle
//! on the backend's input log (`backend::icount`).
//!
//! The state hash is FNV-1a (64-bit; offset basis and prime from the FNV reference, Fowler,
//! Noll and Vo, draft-eastlake-fnv section 2) over every vCPU's readable registers (in
//! `reg_list` order, each as 16 little-endian bytes) and then every byte of guest RAM: two
//! runs that end in the same state give the same hash. Owns nothing else; the clock and the
//! vCPU interleaving are the backend's (`backend/model/icount.rs`).

use std::sync::Arc;

use vm_memory::{Bytes, GuestAddress};

use crate::backend::icount::{Input, Recorder};
use crate::backend::Vcpu;

use super::control::Control;
use super::{Machine, Outcome, Result};

/// FNV-1a 64-bit offset basis.
const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
/// FNV-1a 64-bit prime.
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// An FNV-1a hash being computed.
#[derive(Clone, Copy, Debug)]
pub struct StateHasher(u64);

impl Default for StateHasher {
    fn default() -> Self {
        StateHasher(FNV_OFFSET)
    }
}

impl StateHasher {
    pub fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(FNV_PRIME);
        }
    }

    pub fn finish(self) -> u64 {
        self.0
    }
}

/// Adds one stopped vCPU's registers to `h`.
pub fn hash_vcpu(h: &mut StateHasher, vcpu: &mut dyn Vcpu) -> crate::backend::Result<()> {
    for reg in vcpu.reg_list()? {
        h.write(&vcpu.get_reg(reg)?.to_le_bytes());
    }
    Ok(())
}

/// Adds every byte of guest RAM (the machine's one region at `layout::RAM_BASE`) to `h`.
pub fn hash_ram(h: &mut StateHasher, mem: &vm_memory::GuestMemoryMmap) {
    const CHUNK: u64 = 1 << 20;
    let end = super::memory::ram_end(mem);
    let mut buf = vec![0u8; CHUNK as usize];
    let mut addr = super::layout::RAM_BASE;
    while addr < end {
        let n = (end - addr).min(CHUNK) as usize;
        if mem.read_slice(&mut buf[..n], GuestAddress(addr)).is_err() {
            break;
        }
        h.write(&buf[..n]);
        addr += n as u64;
    }
}

/// The hash of the whole machine's state: every vCPU (stopped) and RAM.
pub(super) fn hash_state(ctl: &Control, mem: &vm_memory::GuestMemoryMmap) -> Result<u64> {
    let mut h = StateHasher::default();
    for i in 0..ctl.vcpu_count() {
        let regs = ctl.with_vcpu(i, |v| {
            let mut hv = StateHasher::default();
            hash_vcpu(&mut hv, v).map(|()| hv.finish())
        })??;
        h.write(&regs.to_le_bytes());
    }
    hash_ram(&mut h, mem);
    Ok(h.finish())
}

impl Machine {
    /// The deterministic clock's input log, when the machine runs with `--icount`.
    pub fn recorder(&self) -> Option<Arc<dyn Recorder>> {
        self.vm.recorder()
    }

    /// As [`Machine::run`], then stops every vCPU and returns the hash of the final state
    /// (see the module docs) with the outcome.
    pub fn run_hashed(self) -> Result<(Outcome, u64)> {
        let mem = self.view.mem().clone();
        let ctl = super::control::Control::start(
            self.vcpus,
            self.view,
            self.bus,
            self.trace,
            super::run::no_debugger(),
            self.spec.test_hooks,
        )?;
        let end = super::run::run_until_end(&ctl)?;
        ctl.stop_all()?;
        let hash = hash_state(&ctl, &mem)?;
        Ok((end, hash))
    }
}

/// Records a debugger's write on the log, if the machine has one.
pub(super) fn note(recorder: &Option<Arc<dyn Recorder>>, vcpu: usize, input: Input) {
    if let Some(r) = recorder {
        r.record(Some(vcpu), input);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_matches_the_reference_vectors() {
        // FNV-1a 64 of "" and "a" (draft-eastlake-fnv test vectors).
        assert_eq!(StateHasher::default().finish(), 0xcbf2_9ce4_8422_2325);
        let mut h = StateHasher::default();
        h.write(b"a");
        assert_eq!(h.finish(), 0xaf63_dc4c_8601_ec8c);
    }
}
