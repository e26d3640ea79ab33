//! Compilation off the vCPU's thread for the JIT tier (`jit.rs`): a thread per vCPU that
//! turns blocks into host code while the vCPU goes on interpreting them.
//!
//! Owns [`Worker`] (the vCPU's end: the job queue, the results, how many are outstanding)
//! and the thread's loop. A job carries everything the code generator needs (the block's
//! ops and the trampoline index of each handler they call, interned by the vCPU's thread, the
//! only one that touches `Jit::handlers`); a result carries the code bytes, which the vCPU's
//! thread copies into its executable memory itself (`Jit::poll`), so the thread never
//! touches the arena, the block table or the CPU. The thread ends when the vCPU's `Jit` is
//! dropped (its job queue closes).
//!
//! Used only when no determinism is asked for (`Bus::jit_background`): when a block's
//! compiled code starts to run then depends on the host's scheduling, which is invisible to
//! the guest (compiled code is exactly the interpreter, `jit.rs`), but with the
//! deterministic clock blocks are compiled on the vCPU's own thread, as before, so that runs
//! repeat host instruction for host instruction.

use std::sync::mpsc::{channel, Receiver, Sender, TryRecvError};
use std::time::{Duration, Instant};

use super::block::Op;
use super::decode::Handler;
use super::jit_gen::{Compiler, GenError};

/// One block to compile: its physical address (the key it is installed under), its ops,
/// and (handler address, trampoline index) for each handler they use.
pub struct Job {
    pub pa: u64,
    pub ops: Vec<Op>,
    pub ids: Vec<(usize, u32)>,
}

/// A compiled (or failed) block, and the time the compilation took.
pub struct Done {
    pub pa: u64,
    pub code: Result<Vec<u8>, GenError>,
    pub took: Duration,
}

/// The vCPU's end of its compiler thread (see the module docs).
pub struct Worker {
    jobs: Sender<Job>,
    done: Receiver<Done>,
    /// Jobs sent whose result has not been taken yet.
    queued: usize,
}

/// What became of a [`Worker::take`].
pub enum Taken {
    Done(Done),
    /// Nothing is ready (or nothing is outstanding).
    Nothing,
    /// The thread is gone (it can only end by a panic in the code generator): its
    /// outstanding jobs are lost.
    Gone,
}

impl Worker {
    /// Starts the thread; generated code will call trampoline `call_op` (`Compiler::new`).
    pub fn spawn(call_op: u64) -> std::io::Result<Self> {
        let (jobs, jobs_rx) = channel::<Job>();
        let (done_tx, done) = channel::<Done>();
        std::thread::Builder::new()
            .name("kvmdbg-jit".into())
            .spawn(move || serve(call_op, jobs_rx, done_tx))?;
        Ok(Worker {
            jobs,
            done,
            queued: 0,
        })
    }

    /// Queues `job`; false when the thread is gone.
    pub fn send(&mut self, job: Job) -> bool {
        let sent = self.jobs.send(job).is_ok();
        self.queued += sent as usize;
        sent
    }

    /// Whether results may be waiting (one compare: the batch asks before every run).
    #[inline(always)]
    pub fn busy(&self) -> bool {
        self.queued != 0
    }

    /// The next result: one that is ready, or (`wait`) the next one to arrive.
    pub fn take(&mut self, wait: bool) -> Taken {
        if self.queued == 0 {
            return Taken::Nothing;
        }
        let next = if wait {
            self.done.recv().map_err(|_| TryRecvError::Disconnected)
        } else {
            self.done.try_recv()
        };
        match next {
            Ok(d) => {
                self.queued -= 1;
                Taken::Done(d)
            }
            Err(TryRecvError::Empty) => Taken::Nothing,
            Err(TryRecvError::Disconnected) => {
                self.queued = 0;
                Taken::Gone
            }
        }
    }
}

/// The thread: compiles jobs in order until the queue closes or the results' receiver is
/// gone.
fn serve(call_op: u64, jobs: Receiver<Job>, done: Sender<Done>) {
    let mut compiler = Compiler::new(call_op);
    for job in jobs {
        let t0 = Instant::now();
        let code = match compiler.as_mut() {
            Ok(c) => c.compile(&job.ops, &mut |h: Handler| index_of(&job.ids, h)),
            Err(e) => Err(GenError::Host(e.to_string())),
        };
        let result = Done {
            pa: job.pa,
            code,
            took: t0.elapsed(),
        };
        if done.send(result).is_err() {
            break;
        }
    }
}

/// The trampoline index of handler `h` in `ids` (every handler of a job's ops is there:
/// `Jit::queue` interns them all; an absent one would make `jit::call_op` stop the block
/// with an error, never run another handler).
fn index_of(ids: &[(usize, u32)], h: Handler) -> u32 {
    ids.iter()
        .find(|&&(a, _)| a == h as usize)
        .map_or(u32::MAX, |&(_, id)| id)
}

#[cfg(test)]
#[path = "jit_worker_tests.rs"]
mod tests;
