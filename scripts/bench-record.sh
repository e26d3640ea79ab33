#!/usr/bin/env bash
# bench-record.sh: what recording costs on the model (docs/benchmarks.md, "Recording"), with
# gdb-multiarch driving kvmdbg (release build) on firmware/longrun.S (about one second of
# guest execution: 67 million instructions):
# - the run to `loop_end` with --icount and with --record (wall time of gdb's `continue`,
#   best of RUNS each, interleaved), and the ratio;
# - `monitor record` at the end: span, snapshots and RAM page copies held;
# - the latency of one `reverse-stepi` there, and of a `reverse-continue` back to the
#   breakpoint at `loop_start`, across the whole loop (timed in gdb's Python);
# - the memory a recording holds per second of guest time, without a cap (the default
#   --record-limit, 1 GiB, not reached) and with a small one, on longrun (one hot page) and
#   firmware/cbench.c (52 million instructions writing about 1.5 MiB of RAM): `monitor
#   record` at `pass`, and the wall time of the run with either.
#
#   scripts/bench-record.sh [RUNS]        (PORT= to change the gdb port, default 4591)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-3}
PORT=${PORT:-4591}
TARGET=${CARGO_TARGET_DIR:-target}
cargo build --release --quiet
bash firmware/build.sh "$TARGET/firmware" >/dev/null
KVMDBG=$TARGET/release/kvmdbg
FW=$TARGET/firmware/longrun.elf
FWDIR=$TARGET/firmware

# session EXTRA-KVMDBG-ARGS GDB-COMMAND...: prints gdb's output.
session() {
  local extra=$1
  shift
  # shellcheck disable=SC2086 # EXTRA is a list of arguments
  "$KVMDBG" run --backend model $extra -S --gdb "tcp:127.0.0.1:$PORT" "$FW" >/dev/null 2>&1 &
  local pid=$!
  for _ in $(seq 400); do
    ss -ltn | grep -q "127.0.0.1:$PORT " && break
    sleep 0.05
  done
  local args=()
  for c in "$@"; do args+=(-ex "$c"); done
  gdb-multiarch -nx -batch -ex "set pagination off" -ex "set confirm off" \
    -ex "target remote 127.0.0.1:$PORT" "${args[@]}" -ex kill "$FW" 2>&1
  wait "$pid" 2>/dev/null || true
}

# gdb commands that time the next command (T0) and print its wall time (T1).
T0='python import time; t0 = time.monotonic()'
T1='python print("wall %.3f" % (time.monotonic() - t0))'

# The wall time of the Nth timed command in gdb's output.
wall() { grep '^wall ' | sed -n "${1}p" | cut -d' ' -f2; }

best() { sort -g | head -1; }

icount=()
record=()
for _ in $(seq "$RUNS"); do
  icount+=("$(session --icount 'break loop_end' "$T0" continue "$T1" | wall 1)")
  record+=("$(session --record 'break loop_end' "$T0" continue "$T1" | wall 1)")
done
i=$(printf '%s\n' "${icount[@]}" | best)
r=$(printf '%s\n' "${record[@]}" | best)
echo "run to loop_end, best of $RUNS: --icount ${i}s, --record ${r}s, ratio $(echo "scale=3; $r / $i" | bc)"

out=$(session --record 'break loop_end' continue 'monitor record' "$T0" reverse-stepi "$T1" \
  'break loop_start' "$T0" reverse-continue "$T1" 'p $pc == &loop_start')
echo "$out" | sed -n '/^recording:/,/^inputs logged/p'
echo "reverse-stepi: $(echo "$out" | wall 1)s wall"
echo "reverse-continue back over the loop: $(echo "$out" | wall 2)s wall"
echo "$out" | grep -q '= 1$' || { echo "reverse-continue did not reach loop_start" >&2; exit 1; }

# memory FIRMWARE CAP: the recording at `pass` without a cap and with --record-limit CAP.
memory() {
  local fw=$1 cap=$2
  for extra in "--record" "--record --record-limit $cap"; do
    out=$(FW=$FWDIR/$fw.elf session "$extra" 'break pass' "$T0" continue "$T1" 'monitor record')
    local span kib secs
    span=$(echo "$out" | sed -n 's/^recording: clock \([0-9]*\) to \([0-9]*\) .*/\1 \2/p')
    kib=$(echo "$out" | sed -n 's/^memory: \([0-9]*\) KiB.*/\1/p')
    # Guest seconds since the start of the run: the end clock at 62.5 MHz.
    secs=$(echo "scale=3; ${span#* } / 62500000" | bc)
    printf '%s %-32s %5s KiB after %s s of guest time (%s KiB/s), run %ss wall; %s; %s\n' \
      "$fw" "($extra)" "$kib" "$secs" "$(echo "scale=0; $kib / $secs" | bc)" \
      "$(echo "$out" | wall 1)" \
      "$(echo "$out" | grep '^snapshots:' | cut -d' ' -f2) snapshots kept" \
      "$(echo "$out" | grep '^history dropped:' | sed 's/ to stay within the limit//')"
  done
}
memory longrun 100K
memory cbench 2M
