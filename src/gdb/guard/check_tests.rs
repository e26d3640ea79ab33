use super::*;

struct Fake(usize);

impl Machine for Fake {
    fn threads(&self) -> usize {
        self.0
    }
    fn powered_off(&mut self, _vcpu: usize) -> bool {
        false
    }
}

fn verdict(body: &str) -> Verdict {
    check(body.as_bytes(), &Proto::default(), &mut Fake(2))
}

fn err() -> Verdict {
    Verdict::Error(EINVAL)
}

#[test]
fn well_formed_packets_pass() {
    let g = format!("G{}", "00".repeat(g_block_len()));
    for ok in [
        "?",
        "g",
        &g,
        "k",
        "D",
        "D;1",
        "m40000000,40",
        "m0000000040000000,10020",
        "x40000000,40",
        "x0,0",
        "xffffffffffffffff,ffffffff",
        "M40000000,2:0aff",
        "M40000000,0:",
        "X40000000,2:}]a",
        "p20",
        "P20=0000004000000000",
        "T1",
        "Tp1.2",
        "Z0,40000000,4",
        "z1,40000000,4",
        "Z2,40000000,8;X2,ab",
        "Hg0",
        "Hc0",
        "qfThreadInfo",
        "qsThreadInfo",
        "qAttached",
        "qAttached:1",
        "qSupported:multiprocess+;swbreak+",
        "QStartNoAckMode",
        "qRcmd,68656c70",
        "qRcmd",
        "qXfer:features:read:target.xml:0,ffb",
        "qXfer:memory-map:read::0,1000",
        "qXfer:exec-file:read::0,100",
        "qXfer:exec-file:read:1:0,100",
        "vCont?",
        "vKill;1",
    ] {
        assert_eq!(verdict(ok), Verdict::Pass, "{ok}");
    }
}

#[test]
fn malformed_packets_get_einval() {
    for bad in [
        "?x",
        "gg",
        "G00",
        "kill",
        "Dx",
        "D;0",
        "m",
        "mzz",
        "m4000",
        "m4000,",
        "m10000000000000000,4",
        "m4000,4,5",
        "M4000,4",
        "M4000,1:0",
        "M4000,1:zz",
        "X4000,1",
        "X4000,1:}",
        "p",
        "pzz",
        "P20",
        "P20=",
        "P=00",
        "T",
        "T-1",
        "T0",
        "Hx1",
        "Hg-1",
        "Hg3",
        "Hg",
        "Hcz",
        "c40000000",
        "s0",
        "Z0,4000",
        "Z0,4000,4,5",
        "Z100,4000,4",
        "Zz,4000,4",
        "z0,10000000000000000,4",
        "qAttached:0",
        "qAttached:x",
        "qfThreadInfo:1",
        "QStartNoAckMode:1",
        "vKill",
        "vKill;0",
        "qRcmd,6",
        "qRcmd,zz",
        "qThreadExtraInfo,3",
        "qThreadExtraInfo,-1",
        "qThreadExtraInfo,0",
        "qThreadExtraInfo",
        "qXfer:features:read:target.xml:0",
        "qXfer:features:read:target.xml:zz,1",
        "qXfer:exec-file:read:zz:0,1",
        // Found by the fuzzer (fuzz/regressions/gdb_packets/crash-0efdc48d...).
        "qXfer:memory-map:read:x:0,ffb",
        "qSupported;x",
        "vCont",
        "vCont;s:9",
        "vCont;t",
        "x40000000",
        "x40000000,",
        "x,4",
        "x4000000z,4",
        "x10000000000000000,1",
    ] {
        assert_eq!(verdict(bad), err(), "{bad}");
    }
}

#[test]
fn unknown_packets_are_answered_empty_here() {
    // Names that only share a prefix with a gdbstub command must not reach it.
    for unknown in [
        "",
        "qSupportedX",
        "qAttachedX",
        "vKillX",
        "vContX",
        "qC",
        "qTStatus",
        "qOffsets",
        "vMustReplyEmpty",
        "qXfer:auxv:read::0,10",
        "qXfer:features:write:x:0,1",
        "qXfer:features:read",
        "QFoo",
        "vFile:open:x",
        "C05",
        "S05",
        "!",
        "R00",
        "i",
        "\x01",
    ] {
        assert_eq!(verdict(unknown), Verdict::Empty, "{unknown:?}");
    }
}

#[test]
fn packets_gdbstub_mishandles_are_rewritten() {
    let to = |s: &str| Verdict::Rewrite(s.as_bytes().to_vec());
    assert_eq!(verdict("qSupported"), to("qSupported:multiprocess-"));
    assert_eq!(verdict("qSupported:"), to("qSupported:multiprocess-"));
    assert_eq!(verdict("qSupported:a+;;b-;"), to("qSupported:a+;b-"));
    assert_eq!(verdict("Hgp1.2"), to("Hg2"));
    assert_eq!(verdict("Hc-1"), to("Hc-1"));
    assert_eq!(verdict("qThreadExtraInfo,p1.2"), to("qThreadExtraInfo,2"));
    assert_eq!(verdict("vCont;s"), to("vCont;s:1;s:2"));
    assert_eq!(verdict("s"), to("vCont;s:1"));
    assert_eq!(verdict("c"), to("vCont;c:1"));
}

#[test]
fn reads_are_cut_to_one_packet() {
    let to = |s: String| Verdict::Rewrite(s.into_bytes());
    assert_eq!(MAX_READ, 0x10020);
    assert_eq!(
        verdict("m40000000,10021"),
        to(format!("m40000000,{MAX_READ:x}"))
    );
    assert_eq!(
        verdict("m40000000,ffffffff"),
        to(format!("m40000000,{MAX_READ:x}"))
    );
    assert_eq!(
        verdict("mffffffffffffffff,ffffffffffffffff"),
        to(format!("mffffffffffffffff,{MAX_READ:x}"))
    );
    // Leading zeros beyond 16 digits would shrink gdbstub's buffer for the data.
    assert_eq!(
        verdict("m0000000000000000000040000000,4"),
        to("m40000000,4".into())
    );
}

#[test]
fn the_g_block_is_the_aarch64_core_layout() {
    // x0-x30, sp, pc (8 bytes each), cpsr (4), v0-v31 (16 each), fpsr and fpcr (4 each).
    assert_eq!(g_block_len(), 33 * 8 + 4 + 32 * 16 + 2 * 4);
}

#[test]
fn reverse_step_and_continue_pass_without_arguments() {
    assert_eq!(verdict("bs"), Verdict::Pass);
    assert_eq!(verdict("bc"), Verdict::Pass);
    for bad in ["b", "bs1", "bc;", "bx"] {
        assert_eq!(verdict(bad), Verdict::Error(EINVAL), "{bad:?}");
    }
}
