//! Command-line parsing into a configuration; the entry points for each subcommand.
//!
//! Owns arguments, messages and exit codes (part of the binary, so it prints). Must not use
//! KVM or gdbstub types (the gdb stub is reached through `kvmdbg::gdb::serve`).

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use clap::{Parser, Subcommand, ValueEnum};

use kvmdbg::backend::{self, BackendKind};
use kvmdbg::gdb::{self, Listen, ServeConfig};
use kvmdbg::machine::session::{Session, MIN_RECORD_LIMIT};
use kvmdbg::machine::{
    self, console, file_input, memory, BootConfig, Machine, MachineConfig, MachineError, Outcome,
    TraceSink,
};

/// Process exit status for a run that ended in a guest fault or a runtime error.
pub const EXIT_FAILURE: i32 = 1;
/// Process exit status for bad input (arguments, firmware files).
pub const EXIT_USAGE: i32 = 2;

#[derive(Parser, Debug)]
#[command(
    name = "kvmdbg",
    version,
    about = "ARM64 KVM guest debugger: boot bare-metal firmware under KVM (or a software A64 model) and debug it with gdb"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Boot FIRMWARE (an arm64 Linux kernel Image, gzip'd or not; an AArch64 ELF; or a raw
    /// binary loaded at the start of RAM); without FIRMWARE, boot the embedded demo.
    Run(RunArgs),
    /// Write the device tree a `run` with the same arguments would boot with to FILE, and exit
    /// (as QEMU's `-machine dumpdtb=FILE`).
    Dumpdtb(DumpDtbArgs),
    /// Print the host's KVM capabilities.
    Info,
}

/// What the guest boots with besides its image.
#[derive(clap::Args, Debug, Default)]
pub struct BootArgs {
    /// Initrd / initramfs to load after the image (its range goes to /chosen/linux,initrd-*).
    #[arg(long, value_name = "FILE")]
    pub initrd: Option<PathBuf>,
    /// Kernel command line (/chosen/bootargs).
    #[arg(long, value_name = "STRING")]
    pub append: Option<String>,
    /// Boot with this device tree blob instead of the generated one (kvmdbg still sets
    /// /chosen bootargs and initrd range).
    #[arg(long, value_name = "FILE")]
    pub dtb: Option<PathBuf>,
}

#[derive(clap::Args, Debug)]
pub struct DumpDtbArgs {
    /// Where to write the DTB.
    pub output: PathBuf,
    /// The image the DTB is for (it decides where the initrd goes); the embedded demo if
    /// absent.
    pub firmware: Option<PathBuf>,
    /// Number of vCPUs.
    #[arg(long, default_value_t = 1)]
    pub cpus: usize,
    /// Guest RAM size at 0x4000_0000, e.g. 128M or 1G.
    #[arg(long, default_value = "128M")]
    pub memory: String,
    #[command(flatten)]
    pub boot: BootArgs,
}

#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// Image to boot (arm64 kernel Image, ELF or raw binary).
    pub firmware: Option<PathBuf>,
    /// Which backend runs the vCPUs.
    #[arg(long, value_enum, default_value_t = BackendChoice::Auto)]
    pub backend: BackendChoice,
    /// Number of vCPUs (vCPU 0 boots; the others wait for PSCI CPU_ON).
    #[arg(long, default_value_t = 1)]
    pub cpus: usize,
    /// Guest RAM size at 0x4000_0000, e.g. 128M or 1G.
    #[arg(long, default_value = "128M")]
    pub memory: String,
    /// Print one canonical line per vCPU exit to stderr.
    #[arg(long)]
    pub trace_exits: bool,
    /// Serve gdb: tcp:[HOST:]PORT (host defaults to 127.0.0.1) or unix:PATH (mode 0600).
    #[arg(long, value_name = "SPEC", value_parser = parse_gdb_spec)]
    pub gdb: Option<Listen>,
    /// Shorthand for --gdb tcp:127.0.0.1:1234.
    #[arg(short = 's')]
    pub gdb_default: bool,
    /// Start the vCPUs only when gdb attaches (otherwise the guest runs and is stopped when gdb
    /// connects).
    #[arg(short = 'S', long = "wait-gdb")]
    pub wait_gdb: bool,
    /// Deterministic clock (model backend only): the generic timer counts instructions, WFI
    /// skips ahead, vCPUs run in a fixed round-robin order, inputs are logged.
    #[arg(long)]
    pub icount: bool,
    /// Record the run for reverse execution in gdb (model backend; implies --icount):
    /// snapshots of the whole machine every few million instructions, so gdb's
    /// reverse-stepi, reverse-continue, reverse-finish... work (user guide, "Going backwards").
    #[arg(long)]
    pub record: bool,
    /// Bound of the recording's memory (RAM page copies, snapshot states, input log), e.g.
    /// 512M or 2GiB (default 1G): beyond it the oldest history is dropped, and reverse
    /// execution stops at the new start (user guide, "Going backwards"). With --record, or
    /// --icount for a recording started by `monitor record start`.
    #[arg(long, value_name = "SIZE", value_parser = parse_record_limit)]
    pub record_limit: Option<u64>,
    /// Model backend: run everything on the interpreter (the reference), without compiling
    /// hot code to host code (the JIT tier, on by default).
    #[arg(long)]
    pub no_jit: bool,
    /// At the end of a run without gdb, print the hash of the final state (registers of
    /// every vCPU and RAM) to stderr: with --icount, equal for equal images and inputs.
    #[arg(long)]
    pub state_hash: bool,
    #[command(flatten)]
    pub boot: BootArgs,
}

/// The default gdb port (QEMU's `-s`).
pub const DEFAULT_GDB_PORT: u16 = 1234;

/// Parses `--record-limit`: a size with an optional K/M/G suffix, at least one page.
pub fn parse_record_limit(text: &str) -> Result<u64, String> {
    let bytes = memory::parse_bytes(text).map_err(|e| format!("{text:?}: {e}"))?;
    if bytes < MIN_RECORD_LIMIT {
        return Err(format!(
            "{text:?}: a recording needs at least {MIN_RECORD_LIMIT} bytes"
        ));
    }
    Ok(bytes)
}

/// Parses `tcp:[HOST:]PORT` or `unix:PATH`.
pub fn parse_gdb_spec(spec: &str) -> Result<Listen, String> {
    if let Some(path) = spec.strip_prefix("unix:") {
        if path.is_empty() {
            return Err("unix: needs a socket path".into());
        }
        return Ok(Listen::Unix(PathBuf::from(path)));
    }
    let Some(rest) = spec.strip_prefix("tcp:") else {
        return Err(format!("{spec:?}: expected tcp:[HOST:]PORT or unix:PATH"));
    };
    let (host, port) = match rest.rsplit_once(':') {
        Some((h, p)) => (h.trim_start_matches('[').trim_end_matches(']'), p),
        None => ("127.0.0.1", rest),
    };
    let host = if host.is_empty() { "127.0.0.1" } else { host };
    let port: u16 = port
        .parse()
        .map_err(|_| format!("{spec:?}: bad port {port:?}"))?;
    use std::net::ToSocketAddrs;
    let addr = (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("{spec:?}: cannot resolve {host:?}: {e}"))?
        .next()
        .ok_or_else(|| format!("{spec:?}: {host:?} has no address"))?;
    Ok(Listen::Tcp(addr))
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum BackendChoice {
    /// KVM when this host is aarch64 with a usable /dev/kvm, else the model.
    Auto,
    Kvm,
    Model,
}

/// The demo firmware booted when `run` gets no FIRMWARE (source: firmware/demo/; a test checks
/// this copy matches it).
static DEMO_FIRMWARE: &[u8] = include_bytes!("../firmware/prebuilt/demo.elf");

/// Parses arguments and runs; returns the process exit status.
pub fn main_with_args(args: impl IntoIterator<Item = std::ffi::OsString>) -> i32 {
    let cli = match Cli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(
                e.kind(),
                ErrorKind::DisplayHelp
                    | ErrorKind::DisplayVersion
                    | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
            ) {
                let _ = e.print();
                return 0;
            }
            // One line: clap's message without its "For more information" footer.
            let text = e.to_string();
            let line: Vec<&str> = text
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with("For more information"))
                .collect();
            eprintln!("kvmdbg: {}", line.join(" ").trim_start_matches("error: "));
            return EXIT_USAGE;
        }
    };
    match cli.command {
        Command::Run(args) => run(args),
        Command::Dumpdtb(args) => dumpdtb(args),
        Command::Info => info(),
    }
}

/// The RAM size, the image (or the demo) and the boot files; the error is one line for
/// [`usage`].
fn read_inputs(
    memory: &str,
    firmware: &Option<PathBuf>,
    boot: &BootArgs,
) -> Result<(u64, Arc<[u8]>, BootConfig), String> {
    let ram_size = memory::parse_size(memory).map_err(|e| e.to_string())?;
    // Nothing loaded into RAM can be larger than RAM; files are read with that bound.
    let read = |what: &str, path: &PathBuf| {
        file_input::read_bounded(path, ram_size, "guest RAM (--memory)")
            .map_err(|e| format!("cannot read {what} {}: {e}", path.display()))
    };
    let image: Arc<[u8]> = match firmware {
        Some(path) => read("firmware", path)?,
        None => DEMO_FIRMWARE.into(),
    };
    let initrd = boot
        .initrd
        .as_ref()
        .map(|p| read("initrd", p))
        .transpose()?;
    let dtb = boot.dtb.as_ref().map(|p| read("DTB", p)).transpose()?;
    Ok((
        ram_size,
        image,
        BootConfig {
            initrd,
            cmdline: boot.append.clone(),
            dtb,
        },
    ))
}

/// Exit status and message for a machine that could not be built.
fn build_error(e: MachineError) -> i32 {
    eprintln!("kvmdbg: error: {e}");
    if e.is_bad_input() {
        EXIT_USAGE
    } else {
        EXIT_FAILURE
    }
}

fn dumpdtb(args: DumpDtbArgs) -> i32 {
    let (ram_size, image, boot) = match read_inputs(&args.memory, &args.firmware, &args.boot) {
        Ok(v) => v,
        Err(e) => return usage(e),
    };
    let dtb = match machine::boot_dtb(args.cpus, ram_size, &image, &boot) {
        Ok(d) => d,
        Err(e) => return build_error(e),
    };
    if let Err(e) = std::fs::write(&args.output, &dtb) {
        return usage(format!("cannot write {}: {e}", args.output.display()));
    }
    0
}

fn run(args: RunArgs) -> i32 {
    let (ram_size, firmware, boot) = match read_inputs(&args.memory, &args.firmware, &args.boot) {
        Ok(v) => v,
        Err(e) => return usage(e),
    };
    let backend = match args.backend {
        BackendChoice::Auto => backend::auto_kind(),
        BackendChoice::Kvm => BackendKind::Kvm,
        BackendChoice::Model => BackendKind::Model,
    };
    let trace: Option<TraceSink> = if args.trace_exits {
        Some(Arc::new(Mutex::new(std::io::stderr())))
    } else {
        None
    };
    let cfg = MachineConfig {
        backend,
        vcpus: args.cpus,
        ram_size,
        uart_out: Box::new(std::io::stdout()),
        trace,
        test_hooks: Default::default(),
        icount: args.icount || args.record,
        jit: !args.no_jit,
    };
    if args.record_limit.is_some() && !(args.record || args.icount) {
        return usage(
            "--record-limit bounds a recording: use it with --record (or --icount, for \
             `monitor record start`)",
        );
    }
    if args.record && backend != BackendKind::Model {
        return usage("--record needs the model backend (--backend model): KVM cannot record");
    }
    let machine = match Machine::with_boot(cfg, firmware, boot) {
        Ok(m) => m,
        Err(e) => return build_error(e),
    };
    log::info!(
        "booting on the {} backend: entry {:#x}, DTB at {:#x}, initrd {:x?}",
        machine.caps().backend,
        machine.image().entry,
        machine.dtb_addr(),
        machine.initrd()
    );
    let _terminal = match start_console(&machine) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("kvmdbg: error: console input: {e}");
            return EXIT_FAILURE;
        }
    };
    let listen = args.gdb.clone().or_else(|| {
        args.gdb_default.then(|| {
            Listen::Tcp(std::net::SocketAddr::from((
                [127, 0, 0, 1],
                DEFAULT_GDB_PORT,
            )))
        })
    });
    if let Some(listen) = listen {
        let exec_file = args
            .firmware
            .as_ref()
            .and_then(|p| std::fs::canonicalize(p).ok())
            .map(|p| p.display().to_string());
        if args.state_hash {
            return usage("--state-hash is for runs without gdb");
        }
        let record = Record {
            start: args.record,
            limit: args.record_limit,
        };
        return run_gdb(machine, listen, args.wait_gdb, record, exec_file);
    }
    if args.record || args.record_limit.is_some() {
        return usage("--record and --record-limit are for sessions with gdb (--gdb or -s)");
    }
    if args.wait_gdb {
        return usage("-S/--wait-gdb needs --gdb or -s");
    }
    if args.state_hash {
        return finish(machine.run_hashed().map(|(end, hash)| {
            eprintln!("kvmdbg: final state hash {hash:#018x}");
            end
        }));
    }
    finish(machine.run())
}

/// Feeds stdin to the guest's UART (raw terminal with `Ctrl-A x` to quit, or bytes from a
/// pipe); the returned guard restores the terminal when the run ends.
fn start_console(machine: &Machine) -> std::io::Result<Option<console::TerminalGuard>> {
    let mut mode = console::stdin_mode();
    let guard = match mode {
        console::Mode::Terminal => match console::TerminalGuard::enter() {
            Ok(g) => Some(g),
            Err(e) => {
                log::warn!("cannot put the terminal in raw mode ({e}); reading it line by line");
                mode = console::Mode::Bytes;
                None
            }
        },
        _ => None,
    };
    let quit = Box::new(|| {
        eprintln!("\r\nkvmdbg: terminated (Ctrl-A x)");
        std::process::exit(0);
    });
    console::spawn_stdin(mode, machine.serial_input(), quit)?;
    if guard.is_some() {
        eprintln!("kvmdbg: console on this terminal; Ctrl-A x quits");
    }
    Ok(guard)
}

/// What `run_gdb` is asked to record: start at once (`--record`), and the memory bound of
/// any recording (`--record-limit`; the session's default without it).
struct Record {
    start: bool,
    limit: Option<u64>,
}

fn run_gdb(
    machine: Machine,
    listen: Listen,
    wait: bool,
    record: Record,
    exec_file: Option<String>,
) -> i32 {
    if let Listen::Tcp(addr) = &listen {
        if !addr.ip().is_loopback() {
            eprintln!(
                "kvmdbg: WARNING: the gdb stub listens on {addr}, reachable from other hosts; \
                 anyone who connects controls the guest and can read all its memory"
            );
        }
    }
    let mut session = match Session::new(machine) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("kvmdbg: error: {e}");
            return EXIT_FAILURE;
        }
    };
    let limit = record.limit.map_or(Ok(()), |l| session.set_record_limit(l));
    let started = limit.and_then(|()| {
        if record.start {
            session.start_recording()
        } else {
            Ok(())
        }
    });
    if let Err(e) = started {
        eprintln!("kvmdbg: error: {e}");
        return EXIT_FAILURE;
    }
    let cfg = ServeConfig {
        listen,
        wait_for_gdb: wait,
        exec_file,
    };
    match gdb::serve(session, cfg) {
        // A listen address that cannot be used is bad input.
        Err(e) if e.is_bad_input() => usage(e),
        end => finish(end),
    }
}

/// Reports how a run ended (with or without gdb) and returns the exit status: 0 for power off,
/// reset and a kill by gdb; 1 for a guest fault or a runtime error.
fn finish<E: std::fmt::Display>(end: Result<Outcome, E>) -> i32 {
    match end {
        Ok(out @ Outcome::PowerOff) => {
            log::info!("{out}");
            0
        }
        // The gdb server has logged the kill.
        Ok(Outcome::Killed) => 0,
        Ok(out @ Outcome::Reset) => {
            eprintln!("kvmdbg: {out}");
            0
        }
        Ok(out @ Outcome::Fault { .. }) => {
            eprintln!("kvmdbg: error: {out}");
            EXIT_FAILURE
        }
        Err(e) => {
            eprintln!("kvmdbg: error: {e}");
            EXIT_FAILURE
        }
    }
}

fn usage(e: impl std::fmt::Display) -> i32 {
    eprintln!("kvmdbg: error: {e}");
    EXIT_USAGE
}

fn info() -> i32 {
    match backend::probe_kvm() {
        Ok(c) => {
            log_caps(&c);
            0
        }
        Err(e) => {
            eprintln!("kvmdbg: error: KVM: {e}");
            eprintln!("kvmdbg: the model backend works on every host (--backend model)");
            EXIT_FAILURE
        }
    }
}

fn log_caps(c: &backend::Caps) {
    let lines = [
        format!("backend: {}", c.backend),
        format!("api_version: {}", c.api_version),
        format!("guest_debug: {}", c.guest_debug),
        format!("hw_breakpoints: {}", c.hw_breakpoints),
        format!("hw_watchpoints: {}", c.hw_watchpoints),
        format!("nisv_to_user: {}", c.nisv_to_user),
        format!("ipa_bits: {}", c.ipa_bits),
        format!("immediate_exit: {}", c.immediate_exit),
        format!(
            "preferred_target: {}",
            c.preferred_target
                .map(|t| t.to_string())
                .unwrap_or_else(|| "none".into())
        ),
    ];
    for l in lines {
        println!("{l}");
    }
}
