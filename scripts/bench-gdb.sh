#!/usr/bin/env bash
# Benchmark: kvmdbg's gdb stub (model backend) side by side with QEMU's gdbstub on the same
# firmware: raw step rate, memory read MB/s, `stepi 2000` and a `next` in
# gdb-multiarch. See scripts/bench_gdb.py.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
bash firmware/build.sh target/bench/firmware >/dev/null
exec python3 scripts/bench_gdb.py target/bench/firmware
