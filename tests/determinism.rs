//! The deterministic clock (`--icount`, docs/architecture.md "Deterministic clock"): two runs
//! of the same firmware print the same bytes and end in the same state (the final-state hash
//! of every vCPU's registers and RAM), with 4 vCPUs racing for a spinlock and the UART
//! (`smp`), and with timer interrupts and WFI (`timer`); and the inputs a debugger applies are
//! logged with the guest clock at which they took effect.

mod common;

use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kvmdbg::a64::Reg;
use kvmdbg::backend::icount::Input;
use kvmdbg::backend::BackendKind;
use kvmdbg::machine::session::Session;
use kvmdbg::machine::{Machine, MachineConfig};

const TIMEOUT: Duration = Duration::from_secs(120);

/// Runs `name` with `--icount --state-hash`; (stdout, the hash line).
fn icount_run(name: &str, cpus: u32) -> Option<(String, String)> {
    if !common::require_firmware_tools() {
        return None;
    }
    let elf = common::firmware_elf(name);
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kvmdbg"));
    cmd.arg("run").arg(&elf).args([
        "--backend",
        "model",
        "--cpus",
        &cpus.to_string(),
        "--icount",
        "--state-hash",
    ]);
    Some(passed_with_hash(
        name,
        common::run_with_timeout(&mut cmd, TIMEOUT),
    ))
}

/// Checks that `name` passed; (stdout, the hash line).
fn passed_with_hash(name: &str, out: common::RunOutput) -> (String, String) {
    assert!(out.success(), "{name} --icount failed\n{}", out.describe());
    assert_eq!(out.verdicts(), [format!("PASS {name}").as_str()]);
    let hash = out
        .stderr
        .lines()
        .find(|l| l.contains("final state hash"))
        .unwrap_or_else(|| panic!("no state hash\n{}", out.describe()))
        .to_string();
    (out.stdout, hash)
}

fn twice_identical(name: &str, cpus: u32) {
    let Some(first) = icount_run(name, cpus) else {
        return;
    };
    let second = icount_run(name, cpus).expect("tools checked");
    assert_eq!(
        first.0, second.0,
        "{name} --cpus {cpus}: output bytes differ"
    );
    assert_eq!(
        first.1, second.1,
        "{name} --cpus {cpus}: final states differ"
    );
}

#[test]
fn smp_with_four_vcpus_is_reproducible() {
    twice_identical("smp", 4);
}

#[test]
fn timer_interrupts_and_wfi_are_reproducible() {
    twice_identical("timer", 1);
    twice_identical("timer", 4);
}

#[test]
fn cdemo_is_reproducible() {
    twice_identical("cdemo", 2);
}

/// A shared UART sink.
#[derive(Clone, Default)]
struct Sink(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn machine(icount: bool) -> Option<Machine> {
    if !common::require_firmware_tools() {
        return None;
    }
    let bytes = std::fs::read(common::firmware_elf("demo")).unwrap();
    let cfg = MachineConfig {
        backend: BackendKind::Model,
        vcpus: 1,
        ram_size: 128 << 20,
        uart_out: Box::new(Sink::default()),
        trace: None,
        test_hooks: Default::default(),
        icount,
        jit: true,
    };
    Some(Machine::new(cfg, &bytes).unwrap())
}

#[test]
fn debugger_writes_are_logged_with_the_guest_clock() {
    let Some(m) = machine(true) else {
        return;
    };
    let rec = m.recorder().expect("--icount machines have an input log");
    let mut s = Session::new(m).unwrap();
    let entry = s.image().entry;
    s.write_reg(0, Reg::X(3), 0x1234).unwrap();
    s.write_virt(0, entry + 0x100, &[1, 2, 3, 4]).unwrap();
    let log = rec.inputs();
    assert_eq!(log.len(), 2, "{log:?}");
    assert_eq!(log[0].vcpu, Some(0));
    assert_eq!(log[0].at, 0, "nothing ran yet");
    assert_eq!(
        log[0].input,
        Input::RegisterWrite {
            reg: Reg::X(3),
            value: 0x1234
        }
    );
    assert_eq!(
        log[1].input,
        Input::MemoryWrite {
            addr: entry + 0x100,
            data: vec![1, 2, 3, 4]
        }
    );
}

#[test]
fn without_icount_there_is_no_log() {
    if let Some(m) = machine(false) {
        assert!(m.recorder().is_none());
    }
}

/// A run's UART output, final-state hash, and console inputs logged with their clock.
type EchoRun = (Vec<u8>, u64, Vec<(u64, Vec<u8>)>);

/// Runs the `echo` firmware (`--icount`) with `chunks` of console input delivered by the
/// host after a delay each, while the guest waits idle in WFI; (UART output, final-state
/// hash, the console inputs logged with their clock).
fn echo_with_input(chunks: &'static [&'static [u8]]) -> Option<EchoRun> {
    if !common::require_firmware_tools() {
        return None;
    }
    let bytes = std::fs::read(common::firmware_elf("echo")).unwrap();
    let sink = Sink::default();
    let cfg = MachineConfig {
        backend: BackendKind::Model,
        vcpus: 2,
        ram_size: 128 << 20,
        uart_out: Box::new(sink.clone()),
        trace: None,
        test_hooks: Default::default(),
        icount: true,
        jit: true,
    };
    let m = Machine::new(cfg, &bytes).unwrap();
    let rec = m.recorder().expect("--icount machines have an input log");
    let input = m.serial_input();
    input.set_open(true);
    let feeder = std::thread::spawn(move || {
        for c in chunks {
            std::thread::sleep(Duration::from_millis(150));
            input.push(c);
        }
        input.set_open(false);
    });
    let (end, hash) = m.run_hashed().unwrap();
    feeder.join().unwrap();
    assert_eq!(end, kvmdbg::machine::Outcome::PowerOff);
    let console = rec
        .inputs()
        .into_iter()
        .filter_map(|ev| match ev.input {
            Input::Console { device, bytes } => {
                assert_eq!(device, 0x0900_0000, "the PL011 of the virt layout");
                Some((ev.at, bytes))
            }
            _ => None,
        })
        .collect();
    let out = sink.0.lock().unwrap().clone();
    Some((out, hash, console))
}

#[test]
fn console_input_is_admitted_at_fixed_clocks_and_logged() {
    let chunks: &[&[u8]] = &[b"ab", b"c\n"];
    let Some(first) = echo_with_input(chunks) else {
        return;
    };
    let text = String::from_utf8_lossy(&first.0).to_string();
    // 'a' + 'b' + 'c' + '\n' = 97 + 98 + 99 + 10.
    assert!(text.contains("abc\nsum=304\nPASS echo"), "{text}");
    // Each chunk arrived while every vCPU waited: admitted where the clock stood, logged.
    assert_eq!(first.2.len(), 2, "{:?}", first.2);
    assert_eq!(first.2[0].1, b"ab");
    assert_eq!(first.2[1].1, b"c\n");
    assert!(
        first.2[0].0 > 0 && first.2[0].0 < first.2[1].0,
        "{:?}",
        first.2
    );
    // The guest waited idle between the chunks: the second one is admitted where the clock
    // stood after the first was handled, a few hundred instructions on, not at the start of
    // a later quantum (as for a guest spinning while the host is slow).
    let between = first.2[1].0 - first.2[0].0;
    assert!(between < 1000, "{:?}", first.2);
    let second = echo_with_input(chunks).expect("tools checked");
    assert_eq!(
        first, second,
        "same input, same clocks, same output and state"
    );
}

/// `kvmdbg run echo --icount --state-hash` with console input through a pipe, delivered late
/// in two chunks (the guest waits idle for each); (stdout, the hash line).
fn echo_through_a_pipe() -> Option<(String, String)> {
    if !common::require_firmware_tools() {
        return None;
    }
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kvmdbg"));
    cmd.arg("run").arg(common::firmware_elf("echo")).args([
        "--backend",
        "model",
        "--icount",
        "--state-hash",
    ]);
    let pause = Duration::from_millis(200);
    let out = common::run_with_input(&mut cmd, &[(pause, b"kvm"), (pause, b"dbg\n")], TIMEOUT);
    let (stdout, hash) = passed_with_hash("echo", out);
    // 'k' 'v' 'm' 'd' 'b' 'g' '\n' = 107 + 118 + 109 + 100 + 98 + 103 + 10.
    assert!(stdout.contains("kvmdbg\nsum=645"), "{stdout}");
    Some((stdout, hash))
}

#[test]
fn console_input_through_a_pipe_is_reproducible() {
    let Some(first) = echo_through_a_pipe() else {
        return;
    };
    let second = echo_through_a_pipe().expect("tools checked");
    assert_eq!(
        first, second,
        "same piped input: same output and final state"
    );
}
