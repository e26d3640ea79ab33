//! Kicking a vCPU thread out of `KVM_RUN`.
//!
//! Owns the kick signal (a real-time signal with a no-op handler, installed once per process
//! without `SA_RESTART`) and the per-vCPU [`KickState`]. A kick sets `kvm_run.immediate_exit`
//! and signals the thread that is inside (or about to enter) `KVM_RUN`:
//! - kick before `KVM_RUN`: `immediate_exit = 1` makes `KVM_RUN` return `EINTR` at once
//!   (KVM api.rst 5 "The kvm_run structure", `immediate_exit`);
//! - kick during `KVM_RUN`: the signal makes the kernel leave the guest with `EINTR`
//!   (api.rst 4.10 "KVM_RUN": "an unmasked signal is pending").
//!
//! A kick that arrives between two runs stays pending (`pending`) and makes the next run return
//! `Interrupted` at once, so no kick is ever lost; a kick may cost at most one extra
//! `Interrupted` when it races with an ordinary exit.
//!
//! `immediate_exit` is written by kickers while the vCPU thread may be inside `KVM_RUN` or
//! reading the exit. That is sound because nobody holds a reference to `kvm_run`: the vCPU
//! side reads and writes its fields through raw pointers only (`run::RunArea`), and every
//! Rust access to `immediate_exit`, on either side, is an atomic byte store
//! (`store_immediate_exit`), so there is no data race and no `&mut` for the store to alias.
//!
//! Must not depend on the rest of the backend but `Kick`.

use std::cell::Cell;
use std::ffi::c_void;
use std::os::raw::c_int;
use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError};

use nix::libc;
use nix::sys::pthread::{pthread_self, Pthread};
use vmm_sys_util::signal::{register_signal_handler, unblock_signal, SIGRTMIN};

use crate::backend::{BackendError, Kick, Result};

/// The kick signal is `SIGRTMIN + KICK_SIGNAL_OFFSET` (real-time signals are not used by the
/// C library or by Rust's runtime; glibc reserves the ones below `SIGRTMIN`).
pub const KICK_SIGNAL_OFFSET: c_int = 0;

/// The signal number used for kicks.
pub fn kick_signal() -> c_int {
    SIGRTMIN() + KICK_SIGNAL_OFFSET
}

/// Does nothing: its only purpose is to make a blocking `KVM_RUN` return `EINTR`.
extern "C" fn on_kick_signal(_num: c_int, _info: *mut libc::siginfo_t, _ctx: *mut c_void) {}

/// Installs the no-op handler once per process. `register_signal_handler` uses `SA_SIGINFO`
/// only, i.e. no `SA_RESTART`, so the interrupted ioctl is not restarted.
fn install_handler() -> Result<()> {
    static INSTALLED: OnceLock<std::result::Result<(), String>> = OnceLock::new();
    INSTALLED
        .get_or_init(|| {
            register_signal_handler(kick_signal(), on_kick_signal)
                .map_err(|e| format!("installing the vCPU kick signal handler: {e}"))
        })
        .clone()
        .map_err(BackendError::Unavailable)
}

thread_local! {
    /// Whether this thread has already unblocked the kick signal.
    static UNBLOCKED: Cell<bool> = const { Cell::new(false) };
}

/// Makes sure the calling thread can receive the kick signal (a thread inherits its creator's
/// signal mask, which might block it).
fn unblock_on_this_thread() -> Result<()> {
    if UNBLOCKED.with(Cell::get) {
        return Ok(());
    }
    unblock_signal(kick_signal()).map_err(|e| {
        BackendError::Unavailable(format!(
            "unblocking the vCPU kick signal on this thread: {e}"
        ))
    })?;
    UNBLOCKED.with(|u| u.set(true));
    Ok(())
}

/// What a kick needs to reach: guarded by the mutex so that the thread cannot leave `run` (and
/// possibly exit) and the `kvm_run` mapping cannot go away while a kick uses them.
struct Target {
    /// The thread inside `KvmVcpu::run`, if any.
    thread: Option<Pthread>,
    /// `&kvm_run.immediate_exit` inside the vCPU's mmap'd `kvm_run`; null once the vCPU is gone.
    immediate_exit: *mut u8,
}

// SAFETY: `immediate_exit` points into the vCPU's `kvm_run` mapping, which is shared with the
// kernel and valid from any thread until `KickState::detach` nulls it (under the mutex) before the
// mapping is unmapped. It is only dereferenced with the mutex held, atomically, and no thread
// holds a reference to the `kvm_run` it lies in (`run::RunArea` uses raw pointers only).
unsafe impl Send for Target {}

/// Shared between a vCPU and its kickers.
pub(super) struct KickState {
    target: Mutex<Target>,
    /// A kick happened that no `run` has answered with `Interrupted` yet.
    pending: AtomicBool,
}

impl KickState {
    /// `immediate_exit` must point at `kvm_run.immediate_exit` of a mapping that stays valid
    /// until [`KickState::detach`] is called.
    pub(super) fn new(immediate_exit: *mut u8) -> Result<Self> {
        install_handler()?;
        Ok(KickState {
            target: Mutex::new(Target {
                thread: None,
                immediate_exit,
            }),
            pending: AtomicBool::new(false),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Target> {
        self.target.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Called by `run` right before `KVM_RUN`: records the calling thread and re-arms
    /// `immediate_exit` if a kick is still pending.
    pub(super) fn enter(&self) -> Result<()> {
        unblock_on_this_thread()?;
        let mut t = self.lock();
        t.thread = Some(pthread_self());
        if self.pending.load(Ordering::SeqCst) {
            store_immediate_exit(&t, 1);
        }
        Ok(())
    }

    /// Called by `run` right after `KVM_RUN`: forgets the thread and clears `immediate_exit`.
    /// `interrupted` says the run ended because of a kick, which consumes the pending kick.
    pub(super) fn leave(&self, interrupted: bool) {
        let mut t = self.lock();
        t.thread = None;
        store_immediate_exit(&t, 0);
        if interrupted {
            self.pending.store(false, Ordering::SeqCst);
        }
    }

    /// Called when the vCPU (and its `kvm_run` mapping) is dropped.
    pub(super) fn detach(&self) {
        let mut t = self.lock();
        t.immediate_exit = ptr::null_mut();
        t.thread = None;
    }
}

fn store_immediate_exit(t: &Target, value: u8) {
    if t.immediate_exit.is_null() {
        return;
    }
    // SAFETY: non-null means the vCPU's `kvm_run` mapping is alive (see `Target`). The byte is
    // shared with the kernel (which only reads it, in KVM_RUN) and with the other threads that
    // kick or run this vCPU; all of them access it only through this atomic store, and no
    // `&`/`&mut kvm_run` exists anywhere (`run::RunArea`), so the atomic view aliases nothing.
    // A `u8` is always suitably aligned for `AtomicU8`.
    let flag = unsafe { AtomicU8::from_ptr(t.immediate_exit) };
    flag.store(value, Ordering::SeqCst);
}

impl Kick for KickState {
    fn kick(&self) {
        let t = self.lock();
        self.pending.store(true, Ordering::SeqCst);
        store_immediate_exit(&t, 1);
        if let Some(thread) = t.thread {
            // SAFETY: `thread` is inside `KvmVcpu::run` and cannot leave it (it must take this
            // lock in `leave` first), so the thread is alive; the signal has a no-op handler.
            let rc = unsafe { libc::pthread_kill(thread, kick_signal()) };
            if rc != 0 {
                log::warn!(
                    "vCPU kick: pthread_kill failed: {}",
                    std::io::Error::from_raw_os_error(rc)
                );
            }
        }
    }
}
