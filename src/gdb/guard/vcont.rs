//! Resume packets by the RSP (GDB manual E.2, `vCont`): "for each inferior thread, the
//! leftmost action with a matching thread-id is applied", and an action without a thread-id
//! (or with `-1`) matches every thread. gdbstub refuses a step or range step without a
//! thread ("step all") and ends the session over it, so every packet is rewritten into one
//! explicit action per resumed thread, which gdbstub handles (a thread without an action
//! stays stopped, as under scheduler locking).
//!
//! A vCPU that is powered off cannot execute, so it cannot complete a step: stepping it by
//! name is refused (`E22`), and a step of all threads steps those that are powered on. A
//! packet that would resume nothing is refused too (the stop reply would never come).
//! `t` (stop) belongs to non-stop mode, which we do not offer: refused.

use super::check::{Machine, SplitOnce, Verdict, EINVAL};
use super::syntax::{hex_num, hex_u64, thread_id, Sel};

/// One action kind, as it will be written.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Kind {
    /// `c` or `Csig`: the text to write.
    Continue(String),
    /// `s` or `Ssig`.
    Step(String),
    /// `rSTART,END`.
    Range(String),
}

impl Kind {
    fn text(&self) -> &str {
        match self {
            Kind::Continue(t) | Kind::Step(t) | Kind::Range(t) => t,
        }
    }

    fn steps(&self) -> bool {
        !matches!(self, Kind::Continue(_))
    }
}

/// Parses one action's kind (`c`, `s`, `Cxx`, `Sxx`, `rSTART,END`).
fn kind(s: &[u8]) -> Option<Kind> {
    let text = std::str::from_utf8(s).ok()?.to_string();
    match s.split_first()? {
        (b'c', []) => Some(Kind::Continue(text)),
        (b's', []) => Some(Kind::Step(text)),
        (b'C', sig) => hex_num(sig, 8).map(|_| Kind::Continue(text)),
        (b'S', sig) => hex_num(sig, 8).map(|_| Kind::Step(text)),
        (b'r', range) => {
            let (a, b) = range.split_once_at(b',')?;
            (hex_u64(a).is_some() && hex_u64(b).is_some()).then_some(Kind::Range(text))
        }
        _ => None,
    }
}

/// One parsed action: its kind and the thread it names (None: every thread).
type Action = (Kind, Option<usize>);

/// Parses `;action[:thread-id]...` (the part after `vCont`).
fn actions(args: &[u8], threads: usize) -> Option<Vec<Action>> {
    let list = args.strip_prefix(b";")?;
    let mut out = Vec::new();
    for a in list.split(|&c| c == b';') {
        let (k, tid) = match a.split_once_at(b':') {
            Some((k, t)) => (k, Some(thread_id(t)?.1)),
            None => (a, None),
        };
        let tid = match tid {
            None | Some(Sel::All | Sel::Any) => None,
            Some(Sel::One(t)) if (1..=threads).contains(&t) => Some(t),
            Some(Sel::One(_)) => return None,
        };
        out.push((kind(k)?, tid));
    }
    Some(out)
}

/// Rewrites `vCont;...` into explicit per-thread actions (or refuses it).
pub fn rewrite(args: &[u8], m: &mut dyn Machine) -> Verdict {
    let threads = m.threads();
    let Some(list) = actions(args, threads) else {
        return Verdict::Error(EINVAL);
    };
    let mut out = String::from("vCont");
    for tid in 1..=threads {
        let Some((k, named)) = list.iter().find(|(_, t)| t.is_none_or(|t| t == tid)) else {
            continue;
        };
        if k.steps() && m.powered_off(tid - 1) {
            if named.is_some() {
                return Verdict::Error(EINVAL);
            }
            continue;
        }
        out.push_str(&format!(";{}:{tid:x}", k.text()));
    }
    if out == "vCont" {
        return Verdict::Error(EINVAL);
    }
    Verdict::Rewrite(out.into_bytes())
}

/// `c` and `s` act on the `Hc` thread (all threads after `Hc-1`); as vCont.
pub fn legacy(op: u8, resume: Sel, m: &mut dyn Machine) -> Verdict {
    let args = match resume {
        Sel::One(t) => format!(";{}:{t:x}", op as char),
        Sel::All | Sel::Any => format!(";{}", op as char),
    };
    rewrite(args.as_bytes(), m)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A machine with `n` threads, those in `off` powered off.
    pub struct Fake {
        pub n: usize,
        pub off: Vec<usize>,
    }

    impl Machine for Fake {
        fn threads(&self) -> usize {
            self.n
        }
        fn powered_off(&mut self, vcpu: usize) -> bool {
            self.off.contains(&vcpu)
        }
    }

    fn rw(args: &str, n: usize, off: &[usize]) -> Verdict {
        rewrite(
            args.as_bytes(),
            &mut Fake {
                n,
                off: off.to_vec(),
            },
        )
    }

    fn to(s: &str) -> Verdict {
        Verdict::Rewrite(s.as_bytes().to_vec())
    }

    #[test]
    fn a_step_without_a_thread_steps_every_thread() {
        assert_eq!(rw(";s", 2, &[]), to("vCont;s:1;s:2"));
        assert_eq!(rw(";s:-1", 2, &[]), to("vCont;s:1;s:2"));
        assert_eq!(rw(";r40,50", 1, &[]), to("vCont;r40,50:1"));
    }

    #[test]
    fn the_leftmost_matching_action_wins() {
        assert_eq!(rw(";s:2;c", 3, &[]), to("vCont;c:1;s:2;c:3"));
        assert_eq!(rw(";c;s:2", 2, &[]), to("vCont;c:1;c:2"));
        assert_eq!(rw(";s:p1.1", 2, &[]), to("vCont;s:1"));
        assert_eq!(rw(";C05:1;c", 2, &[]), to("vCont;C05:1;c:2"));
    }

    #[test]
    fn powered_off_vcpus_are_not_stepped() {
        // vCPU 1 (thread 2) is off: stepping it by name is refused, stepping all skips it.
        assert_eq!(rw(";s:2", 2, &[1]), Verdict::Error(EINVAL));
        assert_eq!(rw(";s", 2, &[1]), to("vCont;s:1"));
        assert_eq!(rw(";s", 1, &[0]), Verdict::Error(EINVAL));
        // Continuing it is fine: it waits for CPU_ON.
        assert_eq!(rw(";c:2", 2, &[1]), to("vCont;c:2"));
    }

    #[test]
    fn malformed_or_unknown_threads_are_refused() {
        for bad in [
            "",
            ";",
            ";x",
            ";s:3",
            ";s:0x1",
            ";t",
            ";t:1",
            ";c:",
            ";r40",
            ";r40,zz:1",
            ";Czz",
            "foo",
            ";s;;c",
        ] {
            assert_eq!(rw(bad, 2, &[]), Verdict::Error(EINVAL), "{bad:?}");
        }
    }

    #[test]
    fn legacy_packets_use_the_hc_thread() {
        let mut m = Fake { n: 2, off: vec![] };
        assert_eq!(legacy(b's', Sel::One(2), &mut m), to("vCont;s:2"));
        assert_eq!(legacy(b's', Sel::All, &mut m), to("vCont;s:1;s:2"));
        assert_eq!(legacy(b'c', Sel::Any, &mut m), to("vCont;c:1;c:2"));
    }
}
