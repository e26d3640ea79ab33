#!/usr/bin/env bash
# Benchmark: the model backend against QEMU TCG on the same compute-bound firmware
# (firmware/compute.S, about 16.8 million instructions). Prints both times side by side and
# the model's speed as a fraction of QEMU's, raw and with each tool's start-up time (measured
# on firmware/hello.S) subtracted. Best of RUNS (default 3) for each figure.
#
#   scripts/bench-model.sh [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-3}
OUT=target/bench
mkdir -p "$OUT"

cargo build --release --quiet
bash firmware/build.sh "$OUT/firmware" >/dev/null
KVMDBG=${CARGO_TARGET_DIR:-target}/release/kvmdbg
QEMU=(qemu-system-aarch64 -M virt -cpu max -nographic -no-reboot -nic none -kernel)

# best_of CMD...: the fastest wall-clock seconds of RUNS runs (each must print a PASS line).
best_of() {
  local best="" t0 t1 dt
  for _ in $(seq "$RUNS"); do
    t0=$(date +%s.%N)
    "$@" | grep -q '^PASS ' || { echo "bench: $* did not PASS" >&2; exit 1; }
    t1=$(date +%s.%N)
    dt=$(echo "$t1 - $t0" | bc -l)
    if [ -z "$best" ] || [ "$(echo "$dt < $best" | bc -l)" = 1 ]; then best=$dt; fi
  done
  echo "$best"
}

m_compute=$(best_of "$KVMDBG" run "$OUT/firmware/compute.elf" --backend model)
m_hello=$(best_of "$KVMDBG" run "$OUT/firmware/hello.elf" --backend model)
q_compute=$(best_of "${QEMU[@]}" "$OUT/firmware/compute.elf")
q_hello=$(best_of "${QEMU[@]}" "$OUT/firmware/hello.elf")

m_net=$(echo "$m_compute - $m_hello" | bc -l)
q_net=$(echo "$q_compute - $q_hello" | bc -l)
printf '%-34s %12s %12s %10s\n' "" "model" "qemu-tcg" "model/qemu"
printf '%-34s %11.3fs %11.3fs %10.3f\n' "compute.elf (wall, best of $RUNS)" "$m_compute" "$q_compute" \
  "$(echo "$q_compute / $m_compute" | bc -l)"
printf '%-34s %11.3fs %11.3fs\n' "hello.elf (start-up)" "$m_hello" "$q_hello"
printf '%-34s %11.3fs %11.3fs %10.3f\n' "compute minus start-up" "$m_net" "$q_net" \
  "$(echo "$q_net / $m_net" | bc -l)"
echo "model/qemu is the model's speed as a fraction of QEMU TCG's (goal: 0.5 or more)"
