//! A trivial TCP echo server for `scripts/bench-gdb.sh`: the machine's own loopback
//! round-trip rate, the physical limit of a one-packet-per-step protocol.
//!
//! Usage: `echo 127.0.0.1:PORT` — accepts one connection after another and sends every byte
//! it receives straight back (TCP_NODELAY, as a gdb stub's connection).

use std::io::{Read, Write};
use std::net::TcpListener;

fn main() {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:0".to_string());
    let listener = match TcpListener::bind(&addr) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("echo: cannot listen on {addr}: {e}");
            std::process::exit(2);
        }
    };
    for conn in listener.incoming() {
        let Ok(mut s) = conn else { continue };
        let _ = s.set_nodelay(true);
        let mut buf = [0u8; 4096];
        loop {
            match s.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if s.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            }
        }
    }
}
