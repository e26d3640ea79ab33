//! The blocking event loop: waits on the connection and the session's event fd together
//! (poll(2)), never spinning. A queued stop raises no event, so `poll_stop` runs first.
//!
//! Used by `server`; depends only on the `Debugger` and the session, not on `server`.

use std::os::fd::AsFd;

use gdbstub::conn::ConnectionExt;
use gdbstub::stub::run_blocking::{BlockingEventLoop, Event, WaitForStopReasonError};
use gdbstub::stub::MultiThreadStopReason;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use crate::machine::Outcome;

use super::conn::Conn;
use super::{stop, Debugger, GdbError};

pub enum EventLoop {}

type WaitError = WaitForStopReasonError<GdbError, std::io::Error>;

impl BlockingEventLoop for EventLoop {
    type Target = Debugger;
    type Connection = Conn;
    type StopReason = MultiThreadStopReason<u64>;

    fn wait_for_stop_reason(
        target: &mut Debugger,
        conn: &mut Conn,
    ) -> Result<Event<Self::StopReason>, WaitError> {
        // The ack of the resume packet may still sit in the write buffer.
        gdbstub::conn::Connection::flush(conn).map_err(WaitError::Connection)?;
        loop {
            let polled = target.session.poll_stop();
            if let Some(s) = polled.map_err(|e| WaitError::Target(e.into()))? {
                log::debug!("gdb: stop {s:?}");
                // gdb is told the guest exited (and the connection ends) only when it did.
                if let Some(end) = Outcome::of_stop(s.vcpu, &s.reason).filter(Outcome::guest_ended)
                {
                    target.guest_end = Some(end);
                }
                if let Some(note) = stop::console_note(&target.session, &s) {
                    let packet = stop::console_packet(&note);
                    gdbstub::conn::Connection::write_all(conn, &packet)
                        .map_err(WaitError::Connection)?;
                }
                return Ok(Event::TargetStopped(stop::to_gdb(&target.session, &s)));
            }
            if conn.has_buffered() {
                return conn
                    .read()
                    .map(Event::IncomingData)
                    .map_err(WaitError::Connection);
            }
            let (conn_ready, _) = wait_readable(conn, &target.session)
                .map_err(|e| WaitError::Target(GdbError::Poll(e)))?;
            if conn_ready {
                return conn
                    .read()
                    .map(Event::IncomingData)
                    .map_err(WaitError::Connection);
            }
        }
    }

    fn on_interrupt(target: &mut Debugger) -> Result<Option<Self::StopReason>, GdbError> {
        // Reported as SIGINT by wait_for_stop_reason once every vCPU has stopped.
        target.session.interrupt();
        Ok(None)
    }
}

/// Blocks until the connection or the session's event fd is readable (or hung up); returns
/// which of them is.
fn wait_readable(
    conn: &Conn,
    session: &crate::machine::session::Session,
) -> nix::Result<(bool, bool)> {
    let ev = session.event_fd();
    let mut fds = [
        PollFd::new(conn.as_fd(), PollFlags::POLLIN),
        PollFd::new(ev, PollFlags::POLLIN),
    ];
    loop {
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) => break,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e),
        }
    }
    let ready = |f: &PollFd| f.revents().is_some_and(|r| !r.is_empty());
    Ok((ready(&fds[0]), ready(&fds[1])))
}
