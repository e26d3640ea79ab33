//! The debug layer: what the user asked for (software and hardware breakpoints, watchpoints,
//! stepping) decided once, for every backend.
//!
//! Owns the hardware slot plan (`hwplan`: DBGBCR/DBGWCR values, BAS/MASK splitting, which
//! watch a watchpoint exception belongs to), the software breakpoint table (`swbp`: BRK #0
//! planted in guest physical memory with reference counts and shadowed reads) and the
//! re-injection of debug exceptions the guest owns (`inject`: an emulated EL1 synchronous
//! exception entry) and the vector catch (`vcatch`: stop when the guest takes an exception).
//!
//! Also the one translation path for accesses made on a vCPU's behalf (`translate`), and the
//! VMM's atomic accesses to guest RAM while vCPUs run (`guest_ram`).
//!
//! May depend on `backend` traits and `a64`. Must not depend on `machine`, `gdb`, gdbstub or
//! KVM types.

pub mod guest_ram;
pub mod hwplan;
pub mod inject;
pub mod irqmask;
pub mod policy;
pub mod state;
pub mod step;
pub mod swbp;
pub mod translate;
pub mod vcatch;

pub use hwplan::{
    hit_watch, hit_watch_for_esr, plan_breakpoints, plan_watchpoints, to_guest_debug, BreakSlot,
    PlanError, Watch, WatchKind, WatchSlot,
};
pub use inject::{inject_sync_exception, InjectedAt};
pub use swbp::{PhysAccess, PhysAccessError, Removed, SwBpError, SwBreakpoints};
