//! The session driver: gdbstub's state machine fed by the packet guard. Waits on the
//! connection and the session's event fd together (poll(2)), never spinning; a queued stop
//! raises no event, so `poll_stop` runs first.
//!
//! Every packet goes through `guard::check` first; what gdbstub gets is well formed. Memory
//! packets (`m`, `M`, `X`) are then answered here by `mem_packets`, without gdbstub. Should
//! gdbstub still fail with anything but a connection error, the stub is rebuilt and put back
//! in its protocol state (no-ack mode, qSupported features, Hg/Hc threads) by replaying the
//! recorded packets into a throw-away connection, the packet is answered `E05` (EIO), and the
//! session goes on. Only `D`, `k`, the guest ending, a closed connection or a vCPU thread that
//! died end it.
//!
//! While the guest runs (after a resume, before the stop reply), only the interrupt byte is
//! acted on: another packet is acknowledged and ignored, since any reply would be taken for
//! the stop reply. An interrupt while stopped is ignored (nothing to stop).
//!
//! Used by `server`; depends on the `Debugger` (and its `mem_packets`), the session, `link`
//! and `guard`.

use gdbstub::conn::Connection;
use gdbstub::stub::state_machine::{state, GdbStubStateMachine, GdbStubStateMachineInner};
use gdbstub::stub::{DisconnectReason, GdbStub, GdbStubError, MultiThreadStopReason};

use crate::machine::{MachineError, Outcome};

use super::conn::{Conn, Socket};
use super::guard::syntax::Sel;
use super::guard::{self, Item, Verdict};
use super::link::{self, wait_readable, Link};
use super::server::PACKET_SIZE;
use super::{stop, Debugger, GdbError};

type Stub = GdbStubStateMachine<'static, Debugger, Conn>;
type Inner<S> = GdbStubStateMachineInner<'static, S, Debugger, Conn>;
type StubError = GdbStubError<GdbError, std::io::Error>;
type Reason = MultiThreadStopReason<u64>;

/// EIO: the answer to a packet gdbstub failed on (after the stub was rebuilt).
const EIO: u8 = 5;

/// gdbstub's packet buffer: the packets it still parses (registers, breakpoints, queries; the
/// largest, `G`, is 1,577 bytes: `guard::check::g_block_len`) with room to spare. Not [`PACKET_SIZE`]: gdbstub 0.7 scans
/// the buffer after every packet's checksum for another `#` (gdbstub's `PacketBuf` parser), up to its end
/// when no stale packet stops it, and the memory packets that need the large size never
/// reach it. gdb is told [`PACKET_SIZE`] (`guard::features`).
const STUB_BUFFER: usize = 4 * 1024;

/// How many times gdbstub failed on a packet the guard let through and was rebuilt (in this
/// process). The fuzz harness holds it at zero: every such packet is a gap in the guard.
static REBUILDS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// How many times gdbstub failed on a packet the guard let through and was rebuilt in this
/// process (the fuzz harness holds it at zero).
pub fn stub_rebuilds() -> u64 {
    REBUILDS.load(std::sync::atomic::Ordering::Relaxed)
}

/// How one gdb session ended.
pub enum Ending {
    /// `D`: the guest runs on.
    Detached,
    /// The connection closed (or broke) without `D`.
    Dropped,
    /// `k` or `vKill`.
    Killed,
    /// The guest powered off or reset (gdb was told).
    GuestEnded(Outcome),
    /// The machine failed (a vCPU thread died): nothing can go on.
    Failed(GdbError),
}

/// Why a step of the driver left the loop.
enum Stop {
    End(Ending),
    /// gdbstub failed on the packet being handled (`resume`: it was a resume packet).
    Stub(StubError, bool),
}

impl From<std::io::Error> for Stop {
    fn from(_: std::io::Error) -> Stop {
        Stop::End(Ending::Dropped)
    }
}

/// Runs one session; the first packet is already framed in `link`.
pub fn run(dbg: &mut Debugger, link: &mut Link) -> Ending {
    let mut gdb = match build(dbg, link) {
        Ok(g) => g,
        Err(end) => return end,
    };
    let mut pending = Some(Item::Packet);
    loop {
        let step = match gdb {
            GdbStubStateMachine::Disconnected(g) => return ending_of(dbg, g.get_reason()),
            GdbStubStateMachine::CtrlCInterrupt(g) => {
                // Reported as SIGINT by `running` once every vCPU has stopped.
                dbg.session.interrupt();
                g.interrupt_handled(dbg, None::<Reason>)
                    .map_err(|e| Stop::Stub(e, false))
            }
            GdbStubStateMachine::Idle(g) => idle(dbg, link, g.into(), pending.take()),
            GdbStubStateMachine::Running(g) => running(dbg, link, g),
        };
        gdb = match step.and_then(flushed) {
            Ok(g) => g,
            Err(Stop::End(end)) => return end,
            Err(Stop::Stub(e, resume)) => match recover(dbg, link, e, resume) {
                Ok(g) => g,
                Err(end) => return end,
            },
        };
    }
}

/// Sends what gdbstub (or the guard, through the same connection) wrote.
fn flushed(mut gdb: Stub) -> Result<Stub, Stop> {
    conn_of(&mut gdb).flush()?;
    Ok(gdb)
}

fn conn_of(gdb: &mut Stub) -> &mut Conn {
    match gdb {
        GdbStubStateMachine::Idle(g) => g.borrow_conn(),
        GdbStubStateMachine::Running(g) => g.borrow_conn(),
        GdbStubStateMachine::CtrlCInterrupt(g) => g.borrow_conn(),
        GdbStubStateMachine::Disconnected(g) => g.borrow_conn(),
    }
}

/// The stub is stopped: the next item from gdb.
fn idle(
    dbg: &mut Debugger,
    link: &mut Link,
    mut gdb: Stub,
    pending: Option<Item>,
) -> Result<Stub, Stop> {
    let item = match pending {
        Some(i) => i,
        None => link.next_item()?,
    };
    let no_ack = link.proto.no_ack;
    match item {
        Item::Packet => return packet(dbg, link, gdb),
        Item::BadChecksum | Item::Abandoned => link::nak(conn_of(&mut gdb), no_ack)?,
        Item::Overlong => link::reply(conn_of(&mut gdb), no_ack, &link::einval())?,
        Item::Nack if !no_ack => link::resend(conn_of(&mut gdb))?,
        Item::Interrupt => log::debug!("gdb: interrupt while stopped, ignored"),
        Item::Nack | Item::Ack => {}
    }
    Ok(gdb)
}

/// One packet with a good checksum: checked, then answered here or handed to gdbstub.
fn packet(dbg: &mut Debugger, link: &mut Link, mut gdb: Stub) -> Result<Stub, Stop> {
    let verdict = guard::check(link.framer.body(), &link.proto, dbg);
    if let Some(reply) = guard::reply_body(&verdict) {
        log::debug!(
            "gdb: {:?} answered {:?} by the guard",
            String::from_utf8_lossy(link.framer.body()),
            String::from_utf8_lossy(&reply)
        );
        link::reply(conn_of(&mut gdb), link.proto.no_ack, &reply)?;
        return Ok(gdb);
    }
    let body = match &verdict {
        Verdict::Rewrite(b) => b.as_slice(),
        _ => link.framer.body(),
    };
    if memory_packet(dbg, link, &mut gdb, body)? {
        return Ok(gdb);
    }
    if body.len() + 4 > STUB_BUFFER {
        // Only a packet gdbstub does not take could be this long.
        link::reply(conn_of(&mut gdb), link.proto.no_ack, &link::einval())?;
        return Ok(gdb);
    }
    let resume = guard::is_resume(body);
    let supported = body.starts_with(b"qSupported");
    let from = conn_of(&mut gdb).pending_out().len();
    if supported {
        conn_of(&mut gdb).hold();
    }
    let mut gdb = feed(gdb, dbg, body).map_err(|e| {
        log::warn!("gdb: gdbstub failed on {:?}", String::from_utf8_lossy(body));
        Stop::Stub(e, resume)
    })?;
    if supported {
        let conn = conn_of(&mut gdb);
        if !guard::features::patch_supported_reply(conn.pending_out(), from, PACKET_SIZE) {
            log::warn!("gdb: no qSupported reply from gdbstub to complete");
        }
        conn.release()?;
    }
    link.proto.note(body);
    Ok(gdb)
}

/// Answers `m`, `x`, `M` and `X` without gdbstub (`mem_packets`: gdbstub's byte-at-a-time state
/// machine and response writer are most of the cost of a large transfer), with the memory of
/// the thread gdbstub would use: the `Hg` thread, the first thread for `Hg0` (gdbstub's
/// "any" thread is the first it lists, vCPU 0). The reply is built in the connection's
/// output buffer, after the ack, and flushed as one write. False for every other packet.
fn memory_packet(
    dbg: &mut Debugger,
    link: &Link,
    gdb: &mut Stub,
    body: &[u8],
) -> std::io::Result<bool> {
    if !matches!(body.first(), Some(b'm' | b'x' | b'M' | b'X')) {
        return Ok(false);
    }
    let vcpu = match link.proto.mem {
        Sel::One(tid) => tid.wrapping_sub(1),
        Sel::Any => 0,
        // Never the memory thread: the guard refuses `Hg-1`.
        Sel::All => return Ok(false),
    };
    let conn = conn_of(gdb);
    link::ack(conn, link.proto.no_ack)?;
    dbg.answer_memory_packet(vcpu, body, conn.pending_out());
    conn.flush()?;
    Ok(true)
}

/// Hands one packet body to gdbstub, framed.
fn feed(mut gdb: Stub, dbg: &mut Debugger, body: &[u8]) -> Result<Stub, StubError> {
    for &b in &guard::frame(body) {
        gdb = match gdb {
            GdbStubStateMachine::Idle(g) => g.incoming_data(dbg, b)?,
            GdbStubStateMachine::Running(g) => g.incoming_data(dbg, b)?,
            other => return Ok(other),
        };
    }
    Ok(gdb)
}

/// The guest runs: a stop to report, or a byte from gdb.
fn running(
    dbg: &mut Debugger,
    link: &mut Link,
    mut g: Inner<state::Running>,
) -> Result<Stub, Stop> {
    // The ack of the resume packet may still wait to be sent.
    g.borrow_conn().flush()?;
    // A step ends within microseconds: spin for its stop once before sleeping in poll(2).
    let mut spin = true;
    loop {
        let polled = dbg.session.poll_stop().map_err(machine_failure)?;
        if let Some(s) = polled {
            log::debug!("gdb: stop {s:?}");
            // gdb is told the guest exited (and the connection ends) only when it did.
            if let Some(end) = Outcome::of_stop(s.vcpu, &s.reason).filter(Outcome::guest_ended) {
                dbg.guest_end = Some(end);
            }
            if let Some(note) = stop::console_note(&dbg.session, &s) {
                gdbstub::conn::Connection::write_all(
                    g.borrow_conn(),
                    &stop::console_packet(&note),
                )?;
            }
            let reason = stop::to_gdb(&dbg.session, &s);
            if let Some(tid) = stop_tid(&reason) {
                link.proto.stopped(tid);
            }
            return g.report_stop(dbg, reason).map_err(|e| Stop::Stub(e, false));
        }
        if std::mem::take(&mut spin) && !link.has_buffered() && dbg.session.stop_soon() {
            continue;
        }
        if !link.has_buffered() {
            let (conn_ready, _) = wait_readable(link.conn(), &dbg.session)
                .map_err(|e| Stop::End(Ending::Failed(GdbError::Poll(e))))?;
            if !conn_ready {
                continue;
            }
        }
        let no_ack = link.proto.no_ack;
        match link.next_byte()? {
            Some(Item::Interrupt) => {
                return g
                    .incoming_data(dbg, guard::INTERRUPT)
                    .map_err(|e| Stop::Stub(e, false))
            }
            Some(Item::Packet | Item::Overlong) => {
                log::warn!(
                    "gdb: packet {:?} while the guest runs, ignored (only Ctrl-C is read)",
                    String::from_utf8_lossy(link.framer.body())
                );
                link::ack(g.borrow_conn(), no_ack)?;
                g.borrow_conn().flush()?;
            }
            Some(Item::BadChecksum | Item::Abandoned) => link::nak(g.borrow_conn(), no_ack)?,
            Some(Item::Ack | Item::Nack) | None => {}
        }
    }
}

/// The thread a stop reply names (gdbstub then selects it for `Hg` and `Hc`).
fn stop_tid(r: &Reason) -> Option<usize> {
    match r {
        MultiThreadStopReason::SignalWithThread { tid, .. }
        | MultiThreadStopReason::SwBreak(tid)
        | MultiThreadStopReason::HwBreak(tid)
        | MultiThreadStopReason::Watch { tid, .. } => Some(tid.get()),
        _ => None,
    }
}

/// A new gdbstub in the protocol state `link.proto` records, writing to `link`'s socket.
fn build(dbg: &mut Debugger, link: &Link) -> Result<Stub, Ending> {
    let lost = |e: std::io::Error| {
        log::warn!("gdb connection: {e}");
        Ending::Dropped
    };
    // The replies to the replayed packets go to a throw-away connection.
    let (sink, peer) = std::os::unix::net::UnixStream::pair().map_err(lost)?;
    let stub = GdbStub::builder(Conn::new(Socket::Unix(sink)))
        .packet_buffer_size(STUB_BUFFER)
        .build()
        .map_err(|e| Ending::Failed(GdbError::Protocol(e.to_string())))?;
    let failed = |e: StubError| Ending::Failed(GdbError::Protocol(e.to_string()));
    let mut gdb: Stub = stub.run_state_machine(dbg).map_err(failed)?;
    for p in link.proto.replay() {
        gdb = feed(gdb, dbg, &p).map_err(failed)?;
    }
    let mut writer = link.writer().map_err(lost)?;
    std::mem::swap(conn_of(&mut gdb), &mut writer);
    drop(peer);
    Ok(gdb)
}

/// gdbstub failed on a packet: a connection error ends the session; otherwise the stub is
/// rebuilt, the packet answered `E05`, and the session goes on.
fn recover(
    dbg: &mut Debugger,
    link: &mut Link,
    e: StubError,
    resume: bool,
) -> Result<Stub, Ending> {
    if e.is_connection_error() {
        log::warn!("gdb connection lost: {e}");
        return Err(Ending::Dropped);
    }
    let text = e.to_string();
    if let Some(GdbError::Machine(
        m @ (MachineError::VcpuThreadGone { .. } | MachineError::AllVcpuThreadsGone),
    )) = e.into_target_error()
    {
        return Err(Ending::Failed(GdbError::Machine(m)));
    }
    log::warn!("gdb stub failed ({text}); rebuilt it, answering E{EIO:02x}");
    REBUILDS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    if resume {
        // Whatever part of the resume happened is undone: the stub is stopped again.
        dbg.session.interrupt();
        if let Err(e) = dbg.session.wait_stop() {
            log::debug!("gdb: stopping after a failed resume: {e}");
        }
    }
    let mut gdb = build(dbg, link)?;
    link::reply(
        conn_of(&mut gdb),
        link.proto.no_ack,
        format!("E{EIO:02x}").as_bytes(),
    )
    .map_err(|_| Ending::Dropped)?;
    Ok(gdb)
}

fn machine_failure(e: MachineError) -> Stop {
    Stop::End(Ending::Failed(GdbError::Machine(e)))
}

fn ending_of(dbg: &mut Debugger, reason: DisconnectReason) -> Ending {
    match reason {
        DisconnectReason::Disconnect => Ending::Detached,
        DisconnectReason::TargetExited(_) => {
            Ending::GuestEnded(dbg.guest_end.take().unwrap_or(Outcome::PowerOff))
        }
        DisconnectReason::TargetTerminated(sig) => {
            log::info!("guest terminated ({sig})");
            Ending::Killed
        }
        DisconnectReason::Kill => Ending::Killed,
    }
}

impl guard::Machine for Debugger {
    fn threads(&self) -> usize {
        self.session.vcpu_count()
    }

    fn powered_off(&mut self, vcpu: usize) -> bool {
        self.session.powered_off(vcpu).unwrap_or(false)
    }
}
