//! How the process ends on SIGTERM, SIGINT and SIGHUP: cleanly, on every backend. The
//! signals are blocked in every thread ([`install`], before any thread starts) and one thread
//! waits for them; it runs the exit hooks (a Unix socket to remove, a terminal to restore:
//! whatever was registered with [`on_exit`]) and exits with status 128 + the signal number
//! (the shell convention: 130 for SIGINT, 143 for SIGTERM, 129 for SIGHUP).
//!
//! Owns the process-wide exit hooks. Depends on nothing else in the crate; any layer that
//! leaves something behind registers its cleanup here and cancels it when it cleans up
//! itself.

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use nix::sys::signal::{SigSet, SigmaskHow, Signal};

type Cleanup = Box<dyn FnOnce() + Send>;

static HOOKS: Mutex<Vec<(u64, Cleanup)>> = Mutex::new(Vec::new());
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// The signals that end kvmdbg cleanly.
pub const ENDING_SIGNALS: [Signal; 3] = [Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP];

/// A registered exit hook; [`Hook::cancel`] removes it without running it.
#[derive(Debug)]
#[must_use = "cancel the hook once its cleanup has been done"]
pub struct Hook(u64);

impl Hook {
    /// Removes the hook (its cleanup was done another way, or is no longer needed).
    pub fn cancel(self) {
        lock().retain(|(id, _)| *id != self.0);
    }
}

fn lock() -> std::sync::MutexGuard<'static, Vec<(u64, Cleanup)>> {
    HOOKS.lock().unwrap_or_else(|p| p.into_inner())
}

/// Registers `cleanup` to run if the process ends by one of [`ENDING_SIGNALS`] (or when
/// [`run_exit_hooks`] is called). Hooks run in reverse order of registration.
pub fn on_exit(cleanup: impl FnOnce() + Send + 'static) -> Hook {
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    lock().push((id, Box::new(cleanup)));
    Hook(id)
}

/// Runs every registered hook once (newest first) and forgets them.
pub fn run_exit_hooks() {
    let hooks = std::mem::take(&mut *lock());
    for (_, cleanup) in hooks.into_iter().rev() {
        cleanup();
    }
}

/// The exit status for a process ended by `sig`.
pub fn exit_status(sig: Signal) -> i32 {
    128 + sig as i32
}

/// Blocks [`ENDING_SIGNALS`] in the calling thread (and so in every thread it starts later)
/// and starts the thread that waits for them. Call once, first thing in `main`.
pub fn install() -> std::io::Result<()> {
    let mut set = SigSet::empty();
    for s in ENDING_SIGNALS {
        set.add(s);
    }
    nix::sys::signal::pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&set), None)
        .map_err(std::io::Error::from)?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || wait_and_exit(set))?;
    Ok(())
}

fn wait_and_exit(set: SigSet) {
    let sig = loop {
        match set.wait() {
            Ok(sig) => break sig,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => {
                log::error!("waiting for signals: {e}; SIGTERM/SIGINT/SIGHUP stay blocked");
                return;
            }
        }
    };
    log::warn!("{sig}: cleaning up and exiting ({})", exit_status(sig));
    run_exit_hooks();
    let _ = std::io::stdout().flush();
    std::process::exit(exit_status(sig));
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn hooks_run_newest_first_once_and_cancelled_ones_never() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let add = |name: &'static str| {
            let log = log.clone();
            on_exit(move || log.lock().unwrap().push(name))
        };
        let _first = add("first");
        let cancelled = add("cancelled");
        let _last = add("last");
        cancelled.cancel();
        run_exit_hooks();
        run_exit_hooks();
        assert_eq!(*log.lock().unwrap(), ["last", "first"]);
    }

    #[test]
    fn the_status_is_128_plus_the_signal() {
        assert_eq!(exit_status(Signal::SIGINT), 130);
        assert_eq!(exit_status(Signal::SIGTERM), 143);
        assert_eq!(exit_status(Signal::SIGHUP), 129);
    }
}
