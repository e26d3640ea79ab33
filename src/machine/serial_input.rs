//! The host side of the UART's receive line ([`SerialInput`]): bytes typed or piped in,
//! waiting for the guest.
//!
//! Without the deterministic clock, host bytes go to the backlog as they arrive, and the UART
//! moves them into its receive FIFO as soon as it has room ([`super::pl011`]'s flow control).
//! With it (`--icount`, [`SerialInput::set_clocked`]), what the host delivers waits in an
//! arrival queue that the guest cannot see; the vCPU holding the clock's turn admits it
//! ([`HostInput::admit`], at the start of each of its quanta and when the machine is idle)
//! into the backlog, and the backend records it as [`Input::Console`] with the clock. The
//! backlog is then part of the machine's state (admitted bytes the FIFO has no room for yet):
//! snapshots save it with the UART. While a recorded history replays
//! ([`SerialInput::replay`]), live arrivals keep waiting and the recorded bytes are admitted
//! at their clock instead; [`SerialInput::go_live`] ends the replay.
//!
//! Owns the host-side queues only; must not depend on backends beyond the clock's
//! `HostInput` interface.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, Weak};

use super::pl011::Pl011;
use crate::backend::icount::{HostInput, HostWake, Input};

/// The host side of the serial line (module docs). Shared by every build of the machine
/// (input survives `monitor reset`).
#[derive(Default)]
pub struct SerialInput {
    inner: Mutex<InputState>,
    waker: Mutex<Option<Box<dyn Fn() + Send + Sync>>>,
}

#[derive(Default)]
struct InputState {
    /// Bytes the UART takes when it has room.
    backlog: VecDeque<u8>,
    /// The UART of the current build.
    uart: Weak<Mutex<Pl011>>,
    /// With the deterministic clock: the UART's address (the input log's device).
    clocked: Option<u64>,
    /// With the deterministic clock: bytes delivered by the host, not admitted yet.
    arrived: VecDeque<u8>,
    /// A host reader may still deliver bytes.
    open: bool,
    /// While a recorded history replays: the recorded input still to admit, with its clock.
    replay: Option<VecDeque<(u64, Vec<u8>)>>,
}

impl SerialInput {
    pub fn new() -> Arc<SerialInput> {
        Arc::new(SerialInput::default())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, InputState> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Bytes from the host. Without the deterministic clock they are queued for the guest
    /// and what fits moves into the UART's FIFO; with it they wait for admission.
    pub fn push(&self, bytes: &[u8]) {
        let clocked = {
            let mut st = self.lock();
            if st.clocked.is_some() {
                st.arrived.extend(bytes);
                true
            } else {
                false
            }
        };
        if clocked {
            self.notify_waker();
        } else {
            self.inject(bytes);
        }
    }

    /// Queues bytes for the guest now and moves what fits into the UART's FIFO (also how a
    /// recorded console input is applied again).
    pub fn inject(&self, bytes: &[u8]) {
        let uart = {
            let mut st = self.lock();
            st.backlog.extend(bytes);
            st.uart.clone()
        };
        // Lock order: UART, then input (the UART pulls from the backlog under its own lock).
        if let Some(u) = uart.upgrade() {
            u.lock().unwrap_or_else(|p| p.into_inner()).refill();
        }
    }

    /// Bytes not yet taken by the guest (admitted or not).
    pub fn pending(&self) -> usize {
        let st = self.lock();
        st.backlog.len() + st.arrived.len()
    }

    /// Whether a host reader may still deliver bytes (the console reader sets it while it
    /// reads; an idle machine under the deterministic clock waits for input only then).
    pub fn set_open(&self, open: bool) {
        self.lock().open = open;
        self.notify_waker();
    }

    /// Puts the input under the deterministic clock, for the UART at `device` (`None`: not).
    pub fn set_clocked(&self, device: Option<u64>) {
        let mut st = self.lock();
        st.clocked = device;
        // A new build replays nothing (`monitor reset` ends a recording).
        st.replay = None;
        if device.is_none() {
            // Back to immediate delivery: nothing waits for an admission any more.
            let arrived: Vec<u8> = st.arrived.drain(..).collect();
            st.backlog.extend(arrived);
        }
    }

    /// A recorded history replays from here: admit `schedule` (clock, bytes) at its clock
    /// and keep live arrivals waiting.
    pub fn replay(&self, schedule: Vec<(u64, Vec<u8>)>) {
        self.lock().replay = Some(schedule.into());
    }

    /// The replay reached the end of the recording: live arrivals are admitted again.
    pub fn go_live(&self) {
        let left = self.lock().replay.take();
        for (at, bytes) in left.into_iter().flatten() {
            log::warn!("console: recorded input at clock {at} was not replayed: applied now");
            self.inject(&bytes);
        }
    }

    /// The admitted bytes the FIFO has not taken (the machine's state under the clock; empty
    /// without it, where the backlog is input still to come).
    pub fn admitted(&self) -> Vec<u8> {
        let st = self.lock();
        if st.clocked.is_some() {
            st.backlog.iter().copied().collect()
        } else {
            Vec::new()
        }
    }

    /// Puts back [`SerialInput::admitted`] (under the clock only).
    pub fn set_admitted(&self, bytes: &[u8]) {
        let mut st = self.lock();
        if st.clocked.is_some() {
            st.backlog = bytes.iter().copied().collect();
        }
    }

    fn notify_waker(&self) {
        let waker = self.waker.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(w) = waker.as_ref() {
            w();
        }
    }

    pub(super) fn attach(&self, uart: &Arc<Mutex<Pl011>>) {
        self.lock().uart = Arc::downgrade(uart);
    }

    /// Queues bytes without moving them into the FIFO (tests of the UART's refill points).
    #[cfg(test)]
    pub(super) fn queue_only(&self, bytes: &[u8]) {
        self.lock().backlog.extend(bytes);
    }

    pub(super) fn pop(&self) -> Option<u8> {
        self.lock().backlog.pop_front()
    }
}

impl HostInput for SerialInput {
    fn admit(&self, now: u64) -> Option<Input> {
        let (bytes, device, live) = {
            let mut st = self.lock();
            let device = st.clocked?;
            match st.replay.as_mut() {
                Some(schedule) => {
                    let mut bytes = Vec::new();
                    while schedule.front().is_some_and(|(at, _)| *at <= now) {
                        bytes.extend(schedule.pop_front().map(|(_, b)| b).unwrap_or_default());
                    }
                    (bytes, device, false)
                }
                None => (st.arrived.drain(..).collect::<Vec<u8>>(), device, true),
            }
        };
        if bytes.is_empty() {
            return None;
        }
        log::debug!("console: {} byte(s) admitted at clock {now}", bytes.len());
        self.inject(&bytes);
        live.then_some(Input::Console { device, bytes })
    }

    fn wake(&self, now: u64) -> HostWake {
        let st = self.lock();
        match &st.replay {
            Some(s) if s.front().is_some_and(|(at, _)| *at <= now) => HostWake::Ready,
            Some(_) => HostWake::Never,
            None if !st.arrived.is_empty() => HostWake::Ready,
            None if st.open => HostWake::Later,
            None => HostWake::Never,
        }
    }

    fn set_waker(&self, waker: Box<dyn Fn() + Send + Sync>) {
        *self.waker.lock().unwrap_or_else(|p| p.into_inner()) = Some(waker);
    }
}

#[cfg(test)]
#[path = "serial_input_tests.rs"]
mod tests;
