#!/usr/bin/env bash
# Host side of the nested gdb check (run by scripts/nested/test.sh through run.sh --host-cmd):
# the host's gdb-multiarch debugs the demo firmware running on real arm64 KVM inside the
# nested machine, through the QEMU user-network port forward ($NESTED_HOST_PORT). Checks a
# breakpoint at a symbol, a backtrace, registers (a system register included), stepi, a
# write watchpoint with old and new values, and detach (the guest then runs to power-off).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
ELF=${KVMDBG_DEMO_ELF:-$ROOT/target/firmware/demo.elf}
: "${NESTED_HOST_PORT:?run through scripts/nested/run.sh --host-cmd}"

out=$(timeout 300 gdb-multiarch -nx -batch \
  -ex "set pagination off" \
  -ex "target remote 127.0.0.1:$NESTED_HOST_PORT" \
  -ex "break fib" -ex "continue" -ex "bt" \
  -ex "info registers pc" -ex "p/x \$sctlr_el1" \
  -ex "stepi" -ex "p/x \$pc" -ex "p/x &fib" \
  -ex "delete" -ex "watch *(long *)&demo_counter" -ex "continue" \
  -ex "delete" -ex "detach" \
  "$ELF" 2>&1) || { echo "$out"; echo "gdb-host: gdb failed"; exit 1; }
echo "$out"

fail=0
expect() {
  if ! grep -Eq -- "$1" <<<"$out"; then
    echo "gdb-host: missing /$1/ ($2)"
    fail=1
  fi
}
expect '^Breakpoint 1, .*fib' "breakpoint at fib"
expect '^#1 .* main' "backtrace through main"
expect '^pc +0x[0-9a-f]+ +0x[0-9a-f]+ <fib>' "pc at fib"
expect '^\$1 = 0x[0-9a-f]+' "sctlr_el1 readable"
expect '^\$2 = 0x[0-9a-f]*4$' "stepi moved to fib+4"
expect '^Hardware watchpoint 2: \*\(long \*\)&demo_counter' "watchpoint set"
expect '^Old value = 0$' "watchpoint old value"
expect '^New value = 1$' "watchpoint new value"
[ $fail = 0 ] && echo "gdb-host: all checks passed"
exit $fail
