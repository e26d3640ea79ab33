#!/usr/bin/env bash
# The model's JIT tier on an AArch64 host: builds the library's unit tests for
# aarch64-unknown-linux-gnu (static, see .cargo/config.toml) and runs the JIT's tests
# (`backend::model::cpu::jit`: the differential test against the interpreter on random
# programs, self-modifying code, budgets, loads and stores) under qemu-aarch64 user mode, so
# Cranelift's AArch64 back end and the AArch64 cache maintenance of `jit_mem.rs` run.
#
#   scripts/jit-aarch64.sh
set -euo pipefail
cd "$(dirname "$0")/.."
QEMU=$(command -v qemu-aarch64-static || command -v qemu-aarch64 || true)
if [ -z "$QEMU" ]; then
  echo "jit-aarch64: qemu-aarch64(-static) is missing (scripts/setup.sh installs qemu-user-static)" >&2
  exit 1
fi
BIN=$(cargo test --target aarch64-unknown-linux-gnu --lib --no-run --message-format=json 2>/dev/null |
  python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["kind"] == ["lib"]:
        print(m["executable"])
')
[ -n "$BIN" ] || { echo "jit-aarch64: no aarch64 test binary was built" >&2; exit 1; }
"$QEMU" "$BIN" backend::model::cpu::jit
