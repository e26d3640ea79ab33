//! The packet guard: everything gdb sends passes through here before gdbstub sees it, so that
//! the session follows the rules in docs/user-guide.md ("Session rules") whatever arrives.
//!
//! gdbstub 0.7 ends its session (an error of its state machine) on a bad checksum, a `-`, a
//! packet it cannot parse, and some valid packets it does not support. The guard frames the
//! bytes itself (`frame`), answers `-` to a bad checksum (in ack mode) and retransmits on a
//! `-` from gdb, checks every packet's syntax (`check`, `syntax`) and answers the malformed
//! and unknown ones itself, and rewrites resume packets by the RSP (`vcont`). It mirrors the
//! protocol state gdbstub keeps (`syntax::Proto`) so that, should gdbstub still fail, the
//! event loop can rebuild it in the same state.
//!
//! Depends on nothing of the machine: the event loop passes it a [`check::Machine`].

pub mod check;
pub mod features;
pub mod frame;
pub mod syntax;
mod vcont;

pub use check::{check, Machine, Verdict, EINVAL};
pub use frame::{frame, Framer, Item, INTERRUPT};
pub use syntax::Proto;

/// The reply a verdict answers with, when the guard answers (`E22` or empty).
pub fn reply_body(v: &Verdict) -> Option<Vec<u8>> {
    match v {
        Verdict::Error(code) => Some(format!("E{code:02x}").into_bytes()),
        Verdict::Empty => Some(Vec::new()),
        Verdict::Pass | Verdict::Rewrite(_) => None,
    }
}

/// True for packets that resume the guest (after the rewrite, all are `vCont;...`).
pub fn is_resume(body: &[u8]) -> bool {
    body.starts_with(b"vCont;")
}

/// The start of the last whole packet in `sent` (bytes written to gdb), for a retransmission.
pub fn last_packet(sent: &[u8]) -> Option<&[u8]> {
    let end = sent.len();
    if end < 4 || sent[end - 3] != b'#' {
        return None;
    }
    let start = sent.iter().rposition(|&c| c == b'$')?;
    Some(&sent[start..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_and_retransmissions() {
        assert_eq!(reply_body(&Verdict::Error(22)), Some(b"E16".to_vec()));
        assert_eq!(reply_body(&Verdict::Empty), Some(Vec::new()));
        assert_eq!(reply_body(&Verdict::Pass), None);
        assert_eq!(last_packet(b"+$OK#9a"), Some(&b"$OK#9a"[..]));
        assert_eq!(last_packet(b"$O41#a5$OK#9a"), Some(&b"$OK#9a"[..]));
        assert_eq!(last_packet(b"+"), None);
    }
}
