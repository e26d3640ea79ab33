//! A scripted vCPU for unit tests of the layers above the backend: registers in a map, exits
//! from a queue. Test-only.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::{BackendError, GuestDebug, Kick, Result, Vcpu, VcpuExit};
use crate::a64::{pstate, Reg};

#[derive(Default)]
pub struct FakeKick(pub AtomicBool);

impl Kick for FakeKick {
    fn kick(&self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// Registers default to zero except PSTATE (EL1h, DAIF masked, as after KVM vcpu init).
pub struct FakeVcpu {
    pub index: usize,
    pub regs: HashMap<Reg, u128>,
    pub exits: VecDeque<VcpuExit>,
    pub mmio_data: Vec<Vec<u8>>,
    pub debug: Option<GuestDebug>,
    pub kick: Arc<FakeKick>,
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
            debug: None,
            kick: Arc::new(FakeKick::default()),
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
        if !reg.is_valid() {
            return Err(BackendError::Register {
                reg,
                reason: "out of range".into(),
            });
        }
        Ok(self.reg(reg))
    }
    fn set_reg(&mut self, reg: Reg, value: u128) -> Result<()> {
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
        if self.kick.0.swap(false, Ordering::SeqCst) {
            return Ok(VcpuExit::Interrupted);
        }
        self.exits
            .pop_front()
            .ok_or_else(|| BackendError::Unsupported("fake vCPU ran out of scripted exits".into()))
    }
    fn set_mmio_data(&mut self, data: &[u8]) -> Result<()> {
        self.mmio_data.push(data.to_vec());
        Ok(())
    }
    fn set_guest_debug(&mut self, dbg: &GuestDebug) -> Result<()> {
        self.debug = Some(dbg.clone());
        Ok(())
    }
    fn kicker(&self) -> Arc<dyn Kick> {
        self.kick.clone()
    }
}
