//! Hand-offs between the thread that drives the machine and the vCPU threads: a command
//! mailbox per vCPU thread and a one-shot reply slot for a job's result, each waited for by
//! spinning briefly and then sleeping (`thread::park`), and woken by `Thread::unpark`, which
//! makes no system call when the waiter is still spinning.
//!
//! A debugger's exchanges with a stopped vCPU come back to back (a step's stop, register
//! reads, the next step, tens of microseconds apart): a sleep and a wake-up per hand-off (a
//! futex wait and wake and a context switch each way, as with a channel) cost more than the
//! work handed over. The spin is bounded ([`SPIN`]), so a vCPU that stays stopped, or a wait
//! for a guest that runs on, sleeps after it as before.
//!
//! Owns only the waiting; what is handed over is `control`'s and `vcpu_thread`'s. Depends on
//! nothing else of the machine.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

use super::control::lock;

/// How long a waiter spins before it sleeps: a few client round trips on loopback (one is
/// 20-40 us on the machines measured in docs/benchmarks.md), so a debugger's next packet
/// usually arrives while the vCPU thread still spins.
pub(super) const SPIN: Duration = Duration::from_micros(200);

/// Spin iterations between two looks at the clock (each look is a vDSO call).
const SPINS_PER_CLOCK_READ: u32 = 64;

/// Spins until `ready()` holds or [`SPIN`] has passed; true when it holds. Yields the core
/// between rounds of [`SPINS_PER_CLOCK_READ`] looks, so a spinner does not keep a runnable
/// thread (the one it waits for, on a machine with few busy cores) from running: measured
/// on the 2-core machine, a spinner that does not yield for even 20 us halves the step rate
/// as soon as other processes keep the cores busy.
pub(super) fn spin_until(ready: impl Fn() -> bool) -> bool {
    let start = Instant::now();
    loop {
        for _ in 0..SPINS_PER_CLOCK_READ {
            if ready() {
                return true;
            }
            std::hint::spin_loop();
        }
        if start.elapsed() >= SPIN {
            return ready();
        }
        thread::yield_now();
    }
}

/// Waits until `ready()` holds: spins, then parks (the party that makes it hold unparks the
/// waiting thread).
fn spin_then_park(ready: impl Fn() -> bool) {
    if spin_until(&ready) {
        return;
    }
    while !ready() {
        thread::park();
    }
}

/// Commands for one receiving thread, in order. Closed when the receiver ends: what waits
/// in it then is dropped, and posting fails.
pub(super) struct Mailbox<T> {
    queue: Mutex<Queue<T>>,
    /// The queue is not empty (read without the lock while spinning).
    ready: AtomicBool,
    receiver: OnceLock<Thread>,
}

struct Queue<T> {
    items: VecDeque<T>,
    closed: bool,
}

/// Posting to a mailbox whose receiver has ended.
#[derive(Debug)]
pub(super) struct Closed;

/// Why there is nothing to take.
enum Empty {
    Waiting,
    Closed,
}

impl<T> Mailbox<T> {
    pub fn new() -> Mailbox<T> {
        Mailbox {
            queue: Mutex::new(Queue {
                items: VecDeque::new(),
                closed: false,
            }),
            ready: AtomicBool::new(false),
            receiver: OnceLock::new(),
        }
    }

    /// Names the thread that takes from this mailbox (before anything is posted).
    pub fn bind(&self, receiver: Thread) {
        let _ = self.receiver.set(receiver);
    }

    pub fn post(&self, item: T) -> Result<(), Closed> {
        {
            let mut q = lock(&self.queue);
            if q.closed {
                return Err(Closed);
            }
            q.items.push_back(item);
            self.ready.store(true, Ordering::SeqCst);
        }
        if let Some(t) = self.receiver.get() {
            t.unpark();
        }
        Ok(())
    }

    /// The next item, waiting for one (receiver only); `spin`: spins briefly before sleeping
    /// (the next item is expected soon). `None` once the mailbox is closed.
    pub fn take(&self, spin: bool) -> Option<T> {
        loop {
            match self.try_take() {
                Ok(item) => return Some(item),
                Err(Empty::Closed) => return None,
                Err(Empty::Waiting) => {}
            }
            let ready = || self.ready.load(Ordering::SeqCst);
            if !spin || !spin_until(ready) {
                while !ready() {
                    thread::park();
                }
            }
        }
    }

    fn try_take(&self) -> Result<T, Empty> {
        let mut q = lock(&self.queue);
        if q.closed {
            return Err(Empty::Closed);
        }
        let item = q.items.pop_front();
        if q.items.is_empty() {
            self.ready.store(false, Ordering::SeqCst);
        }
        item.ok_or(Empty::Waiting)
    }

    /// True once [`Mailbox::close`] was called.
    pub fn is_closed(&self) -> bool {
        lock(&self.queue).closed
    }

    /// The receiver ends: nothing more is accepted, and what waits is dropped (a job's reply
    /// slot then tells its waiter the job never ran).
    pub fn close(&self) {
        let dropped = {
            let mut q = lock(&self.queue);
            q.closed = true;
            std::mem::take(&mut q.items)
        };
        drop(dropped);
        // A closed mailbox is ready: its receiver wakes and sees it closed.
        self.ready.store(true, Ordering::SeqCst);
        if let Some(t) = self.receiver.get() {
            t.unpark();
        }
    }
}

/// The result of one job, waited for by the thread that made it.
pub(super) struct Reply<R> {
    value: Mutex<Option<R>>,
    /// The value is there, or the job was dropped without running.
    done: AtomicBool,
    waiter: Thread,
}

/// The job's end of a [`Reply`]: [`ReplyTx::send`] fills it; dropping it unsent (the job
/// never ran) wakes the waiter with nothing.
pub(super) struct ReplyTx<R>(Arc<Reply<R>>);

/// A reply slot for the calling thread, and its sending end.
pub(super) fn reply<R>() -> (Arc<Reply<R>>, ReplyTx<R>) {
    let r = Arc::new(Reply {
        value: Mutex::new(None),
        done: AtomicBool::new(false),
        waiter: thread::current(),
    });
    (r.clone(), ReplyTx(r))
}

impl<R> Reply<R> {
    /// Waits for the job (calling thread only); `None` when it was dropped without running.
    pub fn wait(&self) -> Option<R> {
        spin_then_park(|| self.done.load(Ordering::SeqCst));
        lock(&self.value).take()
    }
}

impl<R> ReplyTx<R> {
    pub fn send(self, value: R) {
        *lock(&self.0.value) = Some(value);
        // Drop marks the reply done and wakes the waiter.
    }
}

impl<R> Drop for ReplyTx<R> {
    fn drop(&mut self) {
        self.0.done.store(true, Ordering::SeqCst);
        self.0.waiter.unpark();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_arrive_in_order_across_threads() {
        let mb = Arc::new(Mailbox::new());
        let rx = mb.clone();
        let t = thread::spawn(move || {
            (0..1000)
                .map(|i| rx.take(i % 2 == 0).unwrap())
                .collect::<Vec<u32>>()
        });
        mb.bind(t.thread().clone());
        for i in 0..1000 {
            mb.post(i).unwrap();
            if i % 100 == 0 {
                // Long enough for the receiver to go to sleep now and then.
                thread::sleep(SPIN * 2);
            }
        }
        assert_eq!(t.join().unwrap(), (0..1000).collect::<Vec<_>>());
    }

    #[test]
    fn a_closed_mailbox_refuses_and_drops_what_waits() {
        let mb = Mailbox::new();
        let (slot, tx) = reply::<u8>();
        mb.post(tx).unwrap();
        mb.close();
        assert!(mb.is_closed());
        assert!(mb.post(reply::<u8>().1).is_err());
        // The queued sender was dropped unsent: the waiter learns the job never ran.
        assert_eq!(slot.wait(), None);
        assert!(mb.take(true).is_none());
    }

    #[test]
    fn closing_wakes_a_sleeping_receiver() {
        let mb = Arc::new(Mailbox::<u8>::new());
        let rx = mb.clone();
        let t = thread::spawn(move || rx.take(false));
        mb.bind(t.thread().clone());
        thread::sleep(SPIN * 2);
        mb.close();
        assert_eq!(t.join().unwrap(), None);
    }

    #[test]
    fn a_reply_sent_from_another_thread_is_received() {
        let (slot, tx) = reply();
        let t = thread::spawn(move || {
            thread::sleep(SPIN * 2);
            tx.send(7u64);
        });
        assert_eq!(slot.wait(), Some(7));
        t.join().unwrap();
    }
}
