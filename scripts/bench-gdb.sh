#!/usr/bin/env bash
# Benchmark: kvmdbg's gdb stub (model backend) side by side with QEMU's gdbstub on the same
# firmware, in one run: raw step rate, small `m` round-trip latency, write and read (`m`, and
# `x` where the stub offers it) throughput of 8 MiB of pseudo-random data (verified) with each
# stub's largest packets,
# `stepi 2000` and a `next` in gdb-multiarch, and the machine's own loopback round-trip rate
# (examples/echo.rs). See scripts/bench_gdb.py.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet --bin kvmdbg --example echo
bash firmware/build.sh target/bench/firmware >/dev/null
exec python3 scripts/bench_gdb.py target/bench/firmware
