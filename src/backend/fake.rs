//! A scripted vCPU for unit tests of the layers above the backend: registers in a map, exits
//! from a queue. Test-only.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Condvar, Mutex};

use super::{BackendError, GuestDebug, Kick, Result, Vcpu, VcpuExit};
use crate::a64::{pstate, Reg};

/// A kick flag a blocked fake `run` waits on.
#[derive(Default)]
pub struct FakeKick {
    pending: Mutex<bool>,
    cv: Condvar,
}

impl FakeKick {
    /// Consumes a pending kick; with `block`, waits for one first.
    fn take(&self, block: bool) -> bool {
        let mut p = self.pending.lock().unwrap();
        while block && !*p {
            p = self.cv.wait(p).unwrap();
        }
        std::mem::replace(&mut *p, false)
    }
}

impl Kick for FakeKick {
    fn kick(&self) {
        *self.pending.lock().unwrap() = true;
        self.cv.notify_all();
    }
}

/// Registers default to zero except PSTATE (EL1h, DAIF masked, as after KVM vcpu init).
pub struct FakeVcpu {
    pub index: usize,
    pub regs: HashMap<Reg, u128>,
    pub exits: VecDeque<VcpuExit>,
    pub mmio_data: Vec<Vec<u8>>,
    /// Every configuration loaded with `set_guest_debug`, shared so tests can keep a handle.
    pub debug_log: Arc<Mutex<Vec<GuestDebug>>>,
    pub kick: Arc<FakeKick>,
    /// When the script is exhausted: block until kicked (like a powered-off vCPU) instead of
    /// failing the run.
    pub block_when_done: bool,
    /// Registers whose reads fail (error-path tests).
    pub fail_get: HashSet<Reg>,
    /// Registers whose writes fail (error-path tests).
    pub fail_set: HashSet<Reg>,
    /// `Vcpu::any_thread` (the model's answer; false, KVM's, by default).
    pub any_thread: bool,
}

impl FakeVcpu {
    pub fn new(index: usize) -> Self {
        let mut regs = HashMap::new();
        regs.insert(Reg::Pstate, pstate::RESET_EL1H_DAIF as u128);
        FakeVcpu {
            index,
            regs,
            exits: VecDeque::new(),
            mmio_data: Vec::new(),
            debug_log: Arc::default(),
            kick: Arc::new(FakeKick::default()),
            block_when_done: false,
            fail_get: HashSet::new(),
            fail_set: HashSet::new(),
            any_thread: false,
        }
    }

    pub fn with_exits(mut self, exits: impl IntoIterator<Item = VcpuExit>) -> Self {
        self.exits.extend(exits);
        self
    }

    pub fn reg(&self, r: Reg) -> u128 {
        self.regs.get(&r).copied().unwrap_or(0)
    }
}

impl Vcpu for FakeVcpu {
    fn index(&self) -> usize {
        self.index
    }
    fn get_reg(&mut self, reg: Reg) -> Result<u128> {
        if !reg.is_valid() || self.fail_get.contains(&reg) {
            return Err(BackendError::Register {
                reg,
                reason: "out of range".into(),
            });
        }
        Ok(self.reg(reg))
    }
    fn set_reg(&mut self, reg: Reg, value: u128) -> Result<()> {
        if self.fail_set.contains(&reg) {
            return Err(BackendError::Register {
                reg,
                reason: "write refused (test)".into(),
            });
        }
        let v = if reg.is_vector() {
            value
        } else {
            value as u64 as u128
        };
        self.regs.insert(reg, v);
        Ok(())
    }
    fn reg_list(&mut self) -> Result<Vec<Reg>> {
        Ok(self.regs.keys().copied().collect())
    }
    fn run(&mut self) -> Result<VcpuExit> {
        if self.kick.take(false) {
            return Ok(VcpuExit::Interrupted);
        }
        if let Some(e) = self.exits.pop_front() {
            return Ok(e);
        }
        if self.block_when_done {
            self.kick.take(true);
            return Ok(VcpuExit::Interrupted);
        }
        Err(BackendError::Unsupported(
            "fake vCPU ran out of scripted exits".into(),
        ))
    }
    fn set_mmio_data(&mut self, data: &[u8]) -> Result<()> {
        self.mmio_data.push(data.to_vec());
        Ok(())
    }
    fn commit_pending(&mut self) -> Result<()> {
        Ok(())
    }
    /// Off once its script is exhausted and it blocks (what `block_when_done` stands for).
    fn powered_off(&mut self) -> Result<bool> {
        Ok(self.block_when_done && self.exits.is_empty())
    }
    fn set_guest_debug(&mut self, dbg: &GuestDebug) -> Result<()> {
        self.debug_log.lock().unwrap().push(dbg.clone());
        Ok(())
    }
    fn kicker(&self) -> Arc<dyn Kick> {
        self.kick.clone()
    }

    fn any_thread(&self) -> bool {
        self.any_thread
    }
}
