//! The gdb packet path as one function of bytes: a model machine (the demo firmware, two
//! vCPUs, 1 MiB of RAM) is built once per process; each input is what a client sends on one
//! connection (an in-memory `UnixStream::pair`), served by kvmdbg's real connection code
//! (`kvmdbg::gdb::serve_stream`: guard, gdbstub, debugger) until the input ends; then the
//! machine is reset for the next input.
//!
//! Fails (panics) if serving returns an error or if gdbstub failed on a packet the guard let
//! through (`kvmdbg::gdb::stub_rebuilds`): both are bugs. Shared by the fuzz target
//! (fuzz/fuzz_targets/gdb_packets.rs) and the replay of saved crashes
//! (tests/fuzz_regressions.rs).

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::{Mutex, OnceLock};

use kvmdbg::backend::BackendKind;
use kvmdbg::gdb::{serve_stream, stub_rebuilds};
use kvmdbg::machine::session::Session;
use kvmdbg::machine::{Machine, MachineConfig};

static DEMO: &[u8] = include_bytes!("../../firmware/prebuilt/demo.elf");

fn debugger() -> &'static Mutex<kvmdbg::gdb::Debugger> {
    static DBG: OnceLock<Mutex<kvmdbg::gdb::Debugger>> = OnceLock::new();
    DBG.get_or_init(|| {
        let cfg = MachineConfig {
            backend: BackendKind::Model,
            vcpus: 2,
            ram_size: 1 << 20,
            uart_out: Box::new(std::io::sink()),
            trace: None,
            test_hooks: Default::default(),
            icount: false,
            jit: true,
        };
        let machine = Machine::new(cfg, DEMO).expect("the demo machine");
        let session = Session::new(machine).expect("a session");
        Mutex::new(kvmdbg::gdb::Debugger::new(session, None).expect("a debugger"))
    })
}

/// Serves `input` as one connection's bytes.
pub fn serve(input: &[u8]) {
    let mut dbg = debugger().lock().unwrap_or_else(|p| p.into_inner());
    let before = stub_rebuilds();
    let (mut client, server) = UnixStream::pair().expect("socketpair");
    let data = input.to_vec();
    // The client: sends the input, then reads every reply until kvmdbg closes its end.
    let peer = std::thread::spawn(move || {
        let _ = client.write_all(&data);
        let _ = client.shutdown(std::net::Shutdown::Write);
        let mut sink = Vec::new();
        let _ = client.read_to_end(&mut sink);
    });
    let served = serve_stream(&mut dbg, server);
    peer.join().expect("the client thread");
    if let Err(e) = served {
        panic!("serving failed: {e}");
    }
    assert_eq!(
        stub_rebuilds(),
        before,
        "gdbstub failed on a packet the guard passed"
    );
    // The next input finds the machine as at boot, stopped.
    let s = dbg.session();
    let _ = s.stop_and_clear();
    s.reset().expect("reset");
}
