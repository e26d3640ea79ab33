//! What the debugger asked for, shared by the session and every vCPU thread: software
//! breakpoints (planted BRKs), hardware breakpoints, watchpoints, the guest-debug
//! configuration computed from them (with the vector catch's slots, `vcatch`), and the
//! classification of debug exits (ours: stop; the guest's: re-inject as the EL1 exception the
//! hardware would have raised).
//!
//! Must not depend on `machine` or gdb.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};

use vm_memory::GuestMemoryMmap;

use crate::a64::esr::{self, ec};
use crate::a64::exception::VectorKind;
use crate::a64::vcatch::{CatchSource, VectorCatch};
use crate::a64::Reg;
use crate::backend::{Caps, GuestDebug, Vcpu};

use super::hwplan::{self, PlanError, Watch};
use super::inject::inject_sync_exception;
use super::policy::{DebugPolicy, StopKind, Verdict};
use super::swbp::{SwBpError, SwBreakpoints};
use super::translate;
use super::vcatch::{self, AtVector, CatchRecord};

/// Errors from breakpoint and watchpoint requests.
#[derive(Debug, thiserror::Error)]
pub enum DebugError {
    #[error("software breakpoint: {0}")]
    SwBreakpoint(#[from] SwBpError),
    #[error("hardware plan: {0}")]
    Plan(#[from] PlanError),
}

#[derive(Default)]
struct Inner {
    generation: u64,
    sw: SwBreakpoints,
    /// Virtual address -> (physical address it was planted at, insert count).
    sw_by_va: BTreeMap<u64, (u64, u32)>,
    /// Hardware breakpoint addresses, one entry per insert.
    hw_bps: Vec<u64>,
    watches: Vec<Watch>,
    /// A hardware breakpoint address left out of the plan while a vCPU steps off it.
    hw_suspended: Option<u64>,
    /// The planned user breakpoint addresses (without the suspended one).
    bp_addrs: Vec<u64>,
    /// Exceptions to stop on (`vcatch`).
    catch: VectorCatch,
    /// What the last catch saw.
    last_catch: Option<CatchRecord>,
    dbg: GuestDebug,
}

/// The debugger's requests and the resulting hardware configuration.
pub struct DebugState {
    mem: GuestMemoryMmap,
    bp_slots: usize,
    wp_slots: usize,
    /// The backend catches vectors itself (`Caps::exact_vector_catch`); else hardware
    /// breakpoints on the vector entries do.
    exact_catch: bool,
    inner: Mutex<Inner>,
}

impl DebugState {
    pub fn new(mem: GuestMemoryMmap, caps: &Caps) -> Self {
        let state = DebugState {
            mem,
            bp_slots: caps.hw_breakpoints as usize,
            wp_slots: caps.hw_watchpoints as usize,
            exact_catch: caps.exact_vector_catch,
            inner: Mutex::new(Inner::default()),
        };
        {
            let mut g = state.lock();
            // With a debugger attached, BRKs always exit to the VMM: planting one never needs
            // a reconfiguration, and the guest's own are re-injected (KVM api.rst 4.87).
            g.dbg.enable = true;
            g.dbg.sw_breakpoints = true;
            g.generation = 1;
        }
        state
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn hw_slots(&self) -> (usize, usize) {
        (self.bp_slots, self.wp_slots)
    }

    /// Plants a BRK for virtual address `va`, which translates to `pa`.
    pub fn insert_sw(&self, va: u64, pa: u64) -> Result<(), DebugError> {
        let mut g = self.lock();
        let entry = g.sw_by_va.get(&va).copied();
        let pa = entry.map(|(p, _)| p).unwrap_or(pa);
        g.sw.insert(&self.mem, pa)?;
        let count = entry.map(|(_, c)| c).unwrap_or(0) + 1;
        g.sw_by_va.insert(va, (pa, count));
        Ok(())
    }

    /// Removes one insert of the BRK at `va`; false if none was planted there.
    pub fn remove_sw(&self, va: u64) -> Result<bool, DebugError> {
        let mut g = self.lock();
        let Some((pa, count)) = g.sw_by_va.get(&va).copied() else {
            return Ok(false);
        };
        g.sw.remove(&self.mem, pa)?;
        if count > 1 {
            g.sw_by_va.insert(va, (pa, count - 1));
        } else {
            g.sw_by_va.remove(&va);
        }
        Ok(true)
    }

    /// True when a BRK of ours is planted at physical address `pa`.
    pub fn sw_planted(&self, pa: u64) -> bool {
        self.lock().sw.is_planted(pa)
    }

    /// Patches bytes read from RAM at `pa` so planted BRKs show the original instructions.
    pub fn shadow(&self, pa: u64, buf: &mut [u8]) {
        self.lock().sw.shadow(pa, buf);
    }

    /// Writes RAM at `pa` for the debugger, keeping planted BRKs planted.
    pub fn write_through(&self, pa: u64, data: &[u8]) -> Result<(), DebugError> {
        Ok(self.lock().sw.write_through(&self.mem, pa, data)?)
    }

    /// Temporarily restores the original instruction at `pa` (to step off a breakpoint);
    /// [`DebugState::replant`] puts the BRK back.
    pub fn lift(&self, pa: u64) -> Result<bool, DebugError> {
        let g = self.lock();
        let Some(orig) = g.sw.original(pa) else {
            return Ok(false);
        };
        use super::swbp::PhysAccess;
        self.mem
            .write(pa, &orig.to_le_bytes())
            .map_err(|source| SwBpError::Write { pa, len: 4, source })?;
        Ok(true)
    }

    /// Re-plants the BRK at `pa` after [`DebugState::lift`].
    pub fn replant(&self, pa: u64) -> Result<(), DebugError> {
        let g = self.lock();
        if g.sw.is_planted(pa) {
            use super::swbp::{PhysAccess, BRK0_BYTES};
            self.mem
                .write(pa, &BRK0_BYTES)
                .map_err(|source| SwBpError::Write { pa, len: 4, source })?;
        }
        Ok(())
    }

    pub fn insert_hw_bp(&self, va: u64) -> Result<(), DebugError> {
        let mut g = self.lock();
        g.hw_bps.push(va);
        if let Err(e) = self.replan(&mut g) {
            g.hw_bps.pop();
            return Err(e);
        }
        Ok(())
    }

    pub fn remove_hw_bp(&self, va: u64) -> bool {
        let mut g = self.lock();
        let Some(i) = g.hw_bps.iter().position(|a| *a == va) else {
            return false;
        };
        g.hw_bps.remove(i);
        self.replan(&mut g).is_ok()
    }

    /// True when `pc` is one of our hardware breakpoints.
    pub fn is_hw_bp(&self, pc: u64) -> bool {
        self.lock().hw_bps.contains(&pc)
    }

    /// True when a hardware breakpoint of ours sits at `pc` for a vCPU whose VBAR_EL1 is
    /// `vbar`: a user's, or a vector catch entry planted as a breakpoint.
    pub fn hw_bp_at(&self, pc: u64, vbar: u64) -> bool {
        let g = self.lock();
        g.hw_bps.contains(&pc) || (!self.exact_catch && g.catch.slots(vbar).contains(&pc))
    }

    /// Sets the vector catch (an empty set clears it). Fails, leaving the old set, when the
    /// hardware breakpoints it needs (none on a backend with exact catch) do not fit beside
    /// the user's.
    pub fn set_catch(&self, set: VectorCatch) -> Result<(), DebugError> {
        let mut g = self.lock();
        let old = std::mem::replace(&mut g.catch, set);
        if let Err(e) = self.replan(&mut g) {
            g.catch = old;
            return Err(e);
        }
        Ok(())
    }

    pub fn catch(&self) -> VectorCatch {
        self.lock().catch
    }

    /// Hardware breakpoint slots the catch uses (0 when the backend catches exactly).
    pub fn catch_slots(&self) -> usize {
        if self.exact_catch {
            0
        } else {
            self.lock().catch.slot_count()
        }
    }

    /// True when the backend catches vectors at exception entry itself.
    pub fn exact_catch(&self) -> bool {
        self.exact_catch
    }

    /// What the last vector catch saw.
    pub fn last_catch(&self) -> Option<CatchRecord> {
        self.lock().last_catch
    }

    /// Leaves hardware breakpoint `addr` out of the configuration (or puts every one back).
    pub fn suspend_hw_bp(&self, addr: Option<u64>) -> Result<(), DebugError> {
        let mut g = self.lock();
        g.hw_suspended = addr;
        self.replan(&mut g)
    }

    pub fn insert_watch(&self, w: Watch) -> Result<(), DebugError> {
        let mut g = self.lock();
        g.watches.push(w);
        if let Err(e) = self.replan(&mut g) {
            g.watches.pop();
            return Err(e);
        }
        Ok(())
    }

    pub fn remove_watch(&self, w: Watch) -> bool {
        let mut g = self.lock();
        let Some(i) = g.watches.iter().position(|x| *x == w) else {
            return false;
        };
        g.watches.remove(i);
        self.replan(&mut g).is_ok()
    }

    pub fn watches(&self) -> Vec<Watch> {
        self.lock().watches.clone()
    }

    /// Everything requested, to carry over to a rebuilt machine: software breakpoint
    /// addresses (one entry per insert), hardware breakpoint addresses, watchpoints.
    pub fn requests(&self) -> (Vec<u64>, Vec<u64>, Vec<Watch>) {
        let g = self.lock();
        let sw = g
            .sw_by_va
            .iter()
            .flat_map(|(va, (_, count))| std::iter::repeat_n(*va, *count as usize))
            .collect();
        (sw, g.hw_bps.clone(), g.watches.clone())
    }

    /// Counts of (software breakpoints, hardware breakpoints, watchpoints) in use.
    pub fn counts(&self) -> (usize, usize, usize) {
        let g = self.lock();
        (g.sw_by_va.len(), g.hw_bps.len(), g.watches.len())
    }

    /// Removes every breakpoint and watchpoint (detach, kill, disconnect); returns an error
    /// naming what could not be restored, after restoring everything else.
    pub fn clear(&self) -> Result<(), DebugError> {
        let mut g = self.lock();
        g.sw_by_va.clear();
        g.hw_bps.clear();
        g.watches.clear();
        g.hw_suspended = None;
        g.catch = VectorCatch::NONE;
        let restored = g.sw.remove_all(&self.mem);
        self.replan(&mut g)?;
        restored.map(|_| ()).map_err(DebugError::from)
    }

    fn replan(&self, g: &mut Inner) -> Result<(), DebugError> {
        let bps: Vec<u64> = g
            .hw_bps
            .iter()
            .copied()
            .filter(|a| Some(*a) != g.hw_suspended)
            .collect();
        let breaks = hwplan::plan_breakpoints(&bps, self.bp_slots)?;
        let catch_slots = if self.exact_catch {
            0
        } else {
            g.catch.slot_count()
        };
        if breaks.len() + catch_slots > self.bp_slots {
            return Err(PlanError::OutOfBreakSlots {
                needed: breaks.len() + catch_slots,
                available: self.bp_slots,
            }
            .into());
        }
        let watches = hwplan::plan_watchpoints(&g.watches, self.wp_slots)?;
        let mut dbg = g.dbg.clone();
        hwplan::to_guest_debug(&breaks, &watches, &mut dbg)?;
        dbg.vector_catch = if self.exact_catch {
            g.catch
        } else {
            VectorCatch::NONE
        };
        g.dbg = dbg;
        g.bp_addrs = bps;
        g.generation += 1;
        Ok(())
    }

    /// The configuration for a vCPU whose VBAR_EL1 is `vbar`: the plan, plus the vector
    /// catch's entries as hardware breakpoints when the backend does not catch exactly.
    fn config_for(&self, g: &Inner, vbar: Option<u64>) -> GuestDebug {
        let mut dbg = g.dbg.clone();
        let Some(vbar) = vbar.filter(|_| !self.exact_catch && !g.catch.is_empty()) else {
            return dbg;
        };
        let mut addrs = g.bp_addrs.clone();
        addrs.extend(
            g.catch
                .slots(vbar)
                .into_iter()
                .filter(|a| Some(*a) != g.hw_suspended),
        );
        let breaks = hwplan::plan_breakpoints(&addrs, self.bp_slots);
        let watches = hwplan::plan_watchpoints(&g.watches, self.wp_slots);
        match breaks.and_then(|b| Ok((b, watches?))) {
            Ok((b, w)) => {
                if let Err(e) = hwplan::to_guest_debug(&b, &w, &mut dbg) {
                    log::warn!("vector catch at VBAR_EL1 {vbar:#x} not planted: {e}");
                }
            }
            Err(e) => log::warn!("vector catch at VBAR_EL1 {vbar:#x} not planted: {e}"),
        }
        dbg
    }

    /// Records a catch and returns its stop.
    fn caught(&self, rec: CatchRecord) -> Verdict {
        log::info!("{}", rec.describe());
        self.lock().last_catch = Some(rec);
        Verdict::Stop(StopKind::VectorCatch {
            kind: rec.kind,
            source: rec.source,
        })
    }

    /// A breakpoint exit at `pc`: a vector catch, one of the user's hardware breakpoints, a
    /// vector entry reached by a branch (passed over), or the guest's own (`None`).
    fn on_breakpoint(
        &self,
        vcpu: &mut dyn Vcpu,
        pc: Option<u64>,
    ) -> Result<Option<StopKind>, Verdict> {
        let Some(pc) = pc else {
            return Ok(None);
        };
        match vcatch::classify(vcpu, self.catch(), pc) {
            Ok(AtVector::Caught(rec)) => Err(self.caught(rec)),
            Ok(AtVector::Branch) if !self.is_hw_bp(pc) => Err(Verdict::PassOver),
            Ok(_) => Ok(self.is_hw_bp(pc).then_some(StopKind::HwBreak)),
            Err(e) => Err(Verdict::Fault(format!(
                "vector catch: cannot read the vCPU at {pc:#x}: {e}"
            ))),
        }
    }

    /// After re-injecting a synchronous exception taken from `from_el`: the catch's stop at
    /// the vector, if the set has it (KVM would also hit the entry's breakpoint on the next
    /// entry; the model's own catch does not see injected exceptions).
    fn catch_injected(&self, vcpu: &mut dyn Vcpu, vector: u64, from_el: u8) -> Option<Verdict> {
        let source = if from_el == 0 {
            CatchSource::El0
        } else {
            CatchSource::El1
        };
        if !self.catch().catches(VectorKind::Sync, source) {
            return None;
        }
        Some(
            match CatchRecord::read(vcpu, VectorKind::Sync, source, vector) {
                Ok(rec) => self.caught(rec),
                Err(e) => Verdict::Fault(format!("vector catch: cannot read the vCPU: {e}")),
            },
        )
    }

    /// Classifies a BRK: ours when BRK #0 sits at a planted physical address.
    fn is_our_brk(&self, vcpu: &mut dyn Vcpu, esr_value: u64) -> bool {
        if esr::iss(esr_value) & 0xffff != 0 {
            return false;
        }
        let Ok(pc) = vcpu.get(Reg::Pc) else {
            return false;
        };
        match translate::translate(vcpu, &self.mem, pc) {
            Ok(t) => self.sw_planted(t.pa),
            Err(_) => false,
        }
    }
}

impl DebugPolicy for DebugState {
    fn on_debug_exit(
        &self,
        vcpu: &mut dyn Vcpu,
        esr_value: u64,
        far: u64,
        stepping: bool,
    ) -> Verdict {
        // An unreadable PC matches no breakpoint of ours: the exception goes to the guest.
        let pc = vcpu.get(Reg::Pc).ok();
        let ours = match esr::class(esr_value) {
            ec::BRK64 => self
                .is_our_brk(vcpu, esr_value)
                .then_some(StopKind::SwBreak),
            ec::BREAKPT_LOW | ec::BREAKPT_CUR => match self.on_breakpoint(vcpu, pc) {
                Ok(kind) => kind,
                Err(verdict) => return verdict,
            },
            ec::WATCHPT_LOW | ec::WATCHPT_CUR => {
                let watches = self.watches();
                hwplan::hit_watch_for_esr(&watches, esr_value, far, None)
                    .map(|index| StopKind::Watch { index, addr: far })
            }
            ec::SOFTSTP_LOW | ec::SOFTSTP_CUR => stepping.then_some(StopKind::Step),
            other => {
                return Verdict::Fault(format!(
                    "unexpected debug exit class {other:#x} (esr {esr_value:#x})"
                ))
            }
        };
        if let Some(kind) = ours {
            return Verdict::Stop(kind);
        }
        let is_watch = matches!(esr::class(esr_value), ec::WATCHPT_LOW | ec::WATCHPT_CUR);
        match inject_sync_exception(vcpu, esr_value, is_watch.then_some(far)) {
            Ok(at) => match self.catch_injected(vcpu, at.vector, at.from_el) {
                Some(verdict) => verdict,
                // A step that raises an exception stops at the vector, as on hardware.
                None => Verdict::Handled {
                    step_complete: true,
                },
            },
            Err(e) => Verdict::Fault(format!(
                "cannot re-inject the guest's debug exception (esr {esr_value:#x}): {e}"
            )),
        }
    }

    fn guest_debug(&self, vbar: Option<u64>) -> (u64, GuestDebug) {
        let g = self.lock();
        (g.generation, self.config_for(&g, vbar))
    }

    fn needs_vbar(&self) -> bool {
        !self.exact_catch && !self.lock().catch.is_empty()
    }
}

#[cfg(test)]
#[path = "state_tests.rs"]
mod tests;
