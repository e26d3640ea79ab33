//! The guest console's input side on the host: kvmdbg's stdin feeds the UART's
//! [`SerialInput`].
//!
//! - stdin and stdout both a terminal, and kvmdbg its foreground job: the terminal is put in
//!   raw mode for the run (no echo, no line editing, no signals from keys: Ctrl-C goes to the
//!   guest; output processing stays on so kvmdbg's own messages keep their line breaks) and
//!   restored on every exit path: normal return ([`TerminalGuard`]'s drop), a panic in any
//!   thread (a panic hook), SIGTERM/SIGHUP/SIGINT (an exit hook of `crate::signals`), SIGQUIT (a
//!   handler that restores and re-raises).
//!   `Ctrl-A x` ends kvmdbg and `Ctrl-A Ctrl-A` sends one Ctrl-A, as in QEMU's `-nographic`.
//! - stdin not a terminal: read as bytes and passed on untouched; end of input just ends the
//!   reading (the guest keeps running).
//! - stdin a terminal that kvmdbg must not take (a background job, or stdout redirected, as
//!   when tests spawn it): not read at all, so kvmdbg never stops on SIGTTIN or leaves a
//!   terminal in raw mode behind.
//!
//! Owns the host terminal's state; the escape parsing is a pure function. Must not depend on
//! backends.

use std::io::Read;
use std::os::fd::AsFd;
use std::sync::{Arc, OnceLock};

use nix::libc;
use nix::sys::termios::{
    self, InputFlags, LocalFlags, OutputFlags, SetArg, SpecialCharacterIndices,
};

use super::pl011::SerialInput;

/// The escape prefix: Ctrl-A (ASCII SOH), as QEMU's character devices use.
pub const ESCAPE: u8 = 0x01;
/// After the prefix: quit.
pub const QUIT: u8 = b'x';

/// What a chunk of terminal input means.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Bytes for the guest.
    Forward(Vec<u8>),
    /// The user asked kvmdbg to end (`Ctrl-A x`).
    Quit,
}

/// Splits terminal input into bytes for the guest and escape commands. Keeps the state of an
/// escape prefix across reads.
#[derive(Default)]
pub struct EscapeParser {
    pending_escape: bool,
}

impl EscapeParser {
    /// Parses one chunk; a `Quit` ends the list (what follows it is dropped).
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<Action> {
        let mut out = Vec::new();
        let mut fwd = Vec::new();
        for &b in bytes {
            if self.pending_escape {
                self.pending_escape = false;
                match b {
                    QUIT | b'X' => {
                        if !fwd.is_empty() {
                            out.push(Action::Forward(std::mem::take(&mut fwd)));
                        }
                        out.push(Action::Quit);
                        return out;
                    }
                    ESCAPE => fwd.push(ESCAPE),
                    other => fwd.extend_from_slice(&[ESCAPE, other]),
                }
            } else if b == ESCAPE {
                self.pending_escape = true;
            } else {
                fwd.push(b);
            }
        }
        if !fwd.is_empty() {
            out.push(Action::Forward(fwd));
        }
        out
    }
}

/// How stdin is used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// An interactive terminal in raw mode, with the escape sequence.
    Terminal,
    /// A pipe or file, passed on as bytes.
    Bytes,
    /// Not read.
    Off,
}

/// Decides how to use stdin (see the module docs).
pub fn stdin_mode() -> Mode {
    let stdin = std::io::stdin();
    if !nix::unistd::isatty(stdin.as_fd()).unwrap_or(false) {
        return Mode::Bytes;
    }
    let stdout_tty = nix::unistd::isatty(std::io::stdout().as_fd()).unwrap_or(false);
    let foreground = nix::unistd::tcgetpgrp(stdin.as_fd())
        .map(|pg| pg == nix::unistd::getpgrp())
        .unwrap_or(false);
    if stdout_tty && foreground {
        Mode::Terminal
    } else {
        log::info!("stdin is a terminal kvmdbg does not own (background job or redirected stdout): console input off");
        Mode::Off
    }
}

/// The terminal settings to restore, for the signal handlers and the panic hook.
static SAVED: OnceLock<libc::termios> = OnceLock::new();

/// Restores the saved terminal settings (async-signal-safe: one `tcsetattr`).
fn restore_saved() {
    if let Some(t) = SAVED.get() {
        // SAFETY: tcsetattr reads a valid termios from a live static; fd 0 is stdin. It is
        // async-signal-safe (POSIX.1 2.4.3), so the signal handlers may call this.
        unsafe {
            libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, t);
        }
    }
}

extern "C" fn restore_and_reraise(sig: libc::c_int) {
    restore_saved();
    // SAFETY: signal() and raise() are async-signal-safe; the default action of these signals
    // ends the process with the status the shell expects.
    unsafe {
        libc::signal(sig, libc::SIG_DFL);
        libc::raise(sig);
    }
}

/// Keeps the terminal in raw mode while alive; restores it when dropped.
pub struct TerminalGuard(Option<crate::signals::Hook>);

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        restore_saved();
        if let Some(hook) = self.0.take() {
            hook.cancel();
        }
    }
}

impl TerminalGuard {
    /// Puts stdin's terminal in raw mode and installs the restore paths.
    pub fn enter() -> Result<TerminalGuard, String> {
        let stdin = std::io::stdin();
        let saved = termios::tcgetattr(stdin.as_fd()).map_err(|e| format!("tcgetattr: {e}"))?;
        if SAVED.set(libc::termios::from(saved.clone())).is_err() {
            return Err("the terminal is already in raw mode".into());
        }
        let prev = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            restore_saved();
            prev(info);
        }));
        // SIGTERM, SIGINT and SIGHUP are handled by `crate::signals` (blocked everywhere, one
        // thread runs the exit hooks, then exits 128 + signo): the restore is such a hook.
        // SIGQUIT keeps its default action (a core dump) after a restore here.
        let hook = crate::signals::on_exit(restore_saved);
        use nix::sys::signal::{signal, SigHandler, Signal};
        // SAFETY: the handler only calls async-signal-safe functions (tcsetattr, signal,
        // raise) on a static initialized before it is installed.
        if let Err(e) = unsafe { signal(Signal::SIGQUIT, SigHandler::Handler(restore_and_reraise)) }
        {
            log::warn!("cannot install the SIGQUIT handler that restores the terminal: {e}");
        }
        let mut raw = saved;
        raw.input_flags &= !(InputFlags::IGNBRK
            | InputFlags::BRKINT
            | InputFlags::PARMRK
            | InputFlags::ISTRIP
            | InputFlags::INLCR
            | InputFlags::IGNCR
            | InputFlags::ICRNL
            | InputFlags::IXON);
        raw.output_flags |= OutputFlags::OPOST;
        raw.local_flags &= !(LocalFlags::ECHO
            | LocalFlags::ECHONL
            | LocalFlags::ICANON
            | LocalFlags::ISIG
            | LocalFlags::IEXTEN);
        raw.control_chars[SpecialCharacterIndices::VMIN as usize] = 1;
        raw.control_chars[SpecialCharacterIndices::VTIME as usize] = 0;
        termios::tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &raw)
            .map_err(|e| format!("tcsetattr: {e}"))?;
        Ok(TerminalGuard(Some(hook)))
    }
}

/// Starts feeding stdin to `input` in the background, as `mode` says. `on_quit` runs (on the
/// reader thread, terminal restored) when the user types the quit sequence.
pub fn spawn_stdin(
    mode: Mode,
    input: Arc<SerialInput>,
    on_quit: Box<dyn FnOnce() + Send>,
) -> std::io::Result<()> {
    if mode == Mode::Off {
        return Ok(());
    }
    input.set_open(true);
    let reader = input.clone();
    let spawned = std::thread::Builder::new()
        .name("console-in".into())
        .spawn(move || {
            pump(mode, &reader, on_quit);
            reader.set_open(false);
        });
    if spawned.is_err() {
        input.set_open(false);
    }
    spawned.map(|_| ())
}

fn pump(mode: Mode, input: &SerialInput, on_quit: Box<dyn FnOnce() + Send>) {
    let mut stdin = std::io::stdin().lock();
    let mut buf = [0u8; 4096];
    let mut parser = EscapeParser::default();
    loop {
        let n = match stdin.read(&mut buf) {
            Ok(0) => {
                log::debug!("console input: end of stdin");
                return;
            }
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                // A closed fd 0 (EBADF) is "no input", not a problem worth a warning.
                if e.raw_os_error() == Some(libc::EBADF) {
                    log::debug!("console input: no stdin: {e}");
                } else {
                    log::warn!("console input: cannot read stdin: {e}");
                }
                return;
            }
        };
        if mode == Mode::Bytes {
            input.push(&buf[..n]);
            continue;
        }
        for action in parser.feed(&buf[..n]) {
            match action {
                Action::Forward(bytes) => input.push(&bytes),
                Action::Quit => {
                    restore_saved();
                    on_quit();
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_bytes_pass_through() {
        let mut p = EscapeParser::default();
        assert_eq!(p.feed(b"ls /\r"), vec![Action::Forward(b"ls /\r".to_vec())]);
        assert_eq!(p.feed(b""), vec![]);
        // Ctrl-C and other control characters are the guest's.
        assert_eq!(p.feed(&[3, 4]), vec![Action::Forward(vec![3, 4])]);
    }

    #[test]
    fn ctrl_a_x_quits_after_what_came_before() {
        let mut p = EscapeParser::default();
        assert_eq!(
            p.feed(b"ab\x01xcd"),
            vec![Action::Forward(b"ab".to_vec()), Action::Quit]
        );
        assert_eq!(EscapeParser::default().feed(b"\x01X"), vec![Action::Quit]);
    }

    #[test]
    fn the_prefix_survives_a_read_boundary() {
        let mut p = EscapeParser::default();
        assert_eq!(p.feed(b"a\x01"), vec![Action::Forward(b"a".to_vec())]);
        assert_eq!(p.feed(b"x"), vec![Action::Quit]);
    }

    #[test]
    fn ctrl_a_twice_sends_one_and_other_keys_pass_with_the_prefix() {
        let mut p = EscapeParser::default();
        assert_eq!(p.feed(b"\x01\x01"), vec![Action::Forward(vec![1])]);
        assert_eq!(p.feed(b"\x01c"), vec![Action::Forward(vec![1, b'c'])]);
    }
}
