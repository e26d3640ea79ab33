#!/usr/bin/env bash
# Benchmark: the model backend against QEMU TCG (`-M virt -cpu max`), side by side in one run,
# best of RUNS (default 3) for each figure:
# (a) firmware/compute.S: a compute-bound loop, about 16.8 million instructions, MMU off;
# (b) firmware/cbench.c: C at -O2 with the MMU and caches on (a sieve, a table-driven CRC-32,
#     a matrix multiply), about 52 million instructions;
# each as wall time, raw and with each tool's start-up time (measured on firmware/hello.S)
# subtracted, and the model's speed as a fraction of QEMU's. Then, unless BENCH_CALLGRIND=0,
# host instructions per guest instruction on (a): callgrind's instruction count of the whole
# run divided by the instructions the vCPU retired (the model logs them at exit); unlike wall
# time, repeatable whatever the machine's load.
#
# Then, unless BENCH_KERNEL=0, (c) a kernel-boot figure: Debian's arm64 kernel (the one
# scripts/setup.sh caches, KERNEL= to override) with a busybox initramfs whose /init powers
# off at once (`poweroff -f`: PSCI SYSTEM_OFF), 1 vCPU, 512 MiB, on the model and on QEMU TCG
# (`-M virt,gic-version=3 -cpu max`, `-nic none` as above: no NIC, no option ROM), wall time
# from start to exit, best of RUNS.
#
#   scripts/bench-model.sh [RUNS]
#   BENCH_KERNEL=0 BENCH_CALLGRIND=0 BENCH_NOJIT=0 scripts/bench-model.sh [RUNS]
#
# The model runs with its JIT tier (the default); unless BENCH_NOJIT=0, (a) and (b) also
# run with --no-jit (the interpreter alone) for comparison.
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

m_hello=$(best_of "$KVMDBG" run "$OUT/firmware/hello.elf" --backend model)
q_hello=$(best_of "${QEMU[@]}" "$OUT/firmware/hello.elf")
printf '%-38s %12s %12s %10s\n' "" "model" "qemu-tcg" "model/qemu"
printf '%-38s %11.3fs %11.3fs\n' "hello.elf (start-up, best of $RUNS)" "$m_hello" "$q_hello"

# side_by_side NAME: the raw and net rows of firmware NAME.
side_by_side() {
  local m q
  m=$(best_of "$KVMDBG" run "$OUT/firmware/$1.elf" --backend model)
  q=$(best_of "${QEMU[@]}" "$OUT/firmware/$1.elf")
  printf '%-38s %11.3fs %11.3fs %10.3f\n' "$1.elf (wall, best of $RUNS)" "$m" "$q" \
    "$(echo "$q / $m" | bc -l)"
  printf '%-38s %11.3fs %11.3fs %10.3f\n' "$1 minus start-up" "$(echo "$m - $m_hello" | bc -l)" \
    "$(echo "$q - $q_hello" | bc -l)" "$(echo "($q - $q_hello) / ($m - $m_hello)" | bc -l)"
}
side_by_side compute
side_by_side cbench

# The interpreter alone (--no-jit: the JIT tier off), against QEMU the same way.
nojit() {
  local m q
  m=$(best_of "$KVMDBG" run "$OUT/firmware/$1.elf" --backend model --no-jit)
  q=$(best_of "${QEMU[@]}" "$OUT/firmware/$1.elf")
  printf '%-38s %11.3fs %11.3fs %10.3f\n' "$1 --no-jit minus start-up" \
    "$(echo "$m - $m_hello" | bc -l)" "$(echo "$q - $q_hello" | bc -l)" \
    "$(echo "($q - $q_hello) / ($m - $m_hello)" | bc -l)"
}
[ "${BENCH_NOJIT:-1}" = 0 ] || { nojit compute; nojit cbench; }
echo "model/qemu is the model's speed as a fraction of QEMU TCG's (goals: 0.5 on compute, 1.0 on cbench)"

if [ "${BENCH_CALLGRIND:-1}" != 0 ]; then
  command -v valgrind >/dev/null || { echo "bench: no valgrind (scripts/setup.sh installs it; BENCH_CALLGRIND=0 skips)" >&2; exit 1; }
  log=$OUT/callgrind.log
  # --fair-sched: the JIT compiles on a thread of its own; valgrind runs one thread at a
  # time, and without fair scheduling the vCPU's thread can keep the lock long after a
  # block was queued, so its count would depend on valgrind's scheduling.
  RUST_LOG=kvmdbg::backend::model::cpu=debug valgrind --tool=callgrind --fair-sched=yes \
    --callgrind-out-file=/dev/null "$KVMDBG" run "$OUT/firmware/compute.elf" --backend model \
    >"$OUT/callgrind.out" 2>"$log"
  grep -q '^PASS ' "$OUT/callgrind.out" || { echo "bench: compute under callgrind did not PASS" >&2; exit 1; }
  host=$(sed -n 's/.*Collected : \([0-9]*\).*/\1/p' "$log")
  guest=$(sed -n 's/.*retired \([0-9]*\) instructions.*/\1/p' "$log")
  [ -n "$host" ] && [ -n "$guest" ] || { echo "bench: no counts in $log" >&2; exit 1; }
  printf 'compute.elf under callgrind: %s host instructions, %s guest: %.1f per guest instruction\n' \
    "$host" "$guest" "$(echo "$host / $guest" | bc -l)"
fi

[ "${BENCH_KERNEL:-1}" = 0 ] && exit 0

# The kernel-boot figure.
KERNEL=${KERNEL:-/var/cache/kvmdbg/Image}
[ -r "$KERNEL" ] || { echo "bench: no kernel at $KERNEL (scripts/setup.sh caches it; BENCH_KERNEL=0 skips)" >&2; exit 1; }
BUSYBOX=$(dpkg -L busybox-static:arm64 2>/dev/null | grep 'bin/busybox$' | head -n1 || true)
[ -n "$BUSYBOX" ] || { echo "bench: no busybox-static:arm64 (scripts/setup.sh installs it)" >&2; exit 1; }
APPEND="console=ttyAMA0 rdinit=/init quiet"

# The initramfs: /bin/busybox, an /init that powers off at once, /dev/console when mknod is
# allowed (the kernel only warns without it).
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root/bin" "$root/dev"
cp "$BUSYBOX" "$root/bin/busybox"
printf '#!/bin/busybox sh\n/bin/busybox poweroff -f\n' >"$root/init"
chmod 755 "$root/init" "$root/bin/busybox"
mknod "$root/dev/console" c 5 1 2>/dev/null || true
INITRD=$PWD/$OUT/poweroff.cpio
(cd "$root" && find . | cpio -o -H newc --quiet) >"$INITRD"

# boot_best CMD...: the fastest wall-clock seconds of RUNS runs; each must exit 0 within 300 s.
boot_best() {
  local best="" t0 t1 dt
  for _ in $(seq "$RUNS"); do
    t0=$(date +%s.%N)
    timeout 300 "$@" </dev/null >"$OUT/boot.log" 2>&1 ||
      { echo "bench: $* failed (status $?), output in $OUT/boot.log" >&2; exit 1; }
    t1=$(date +%s.%N)
    dt=$(echo "$t1 - $t0" | bc -l)
    if [ -z "$best" ] || [ "$(echo "$dt < $best" | bc -l)" = 1 ]; then best=$dt; fi
  done
  echo "$best"
}

m_boot=$(boot_best "$KVMDBG" run "$KERNEL" --initrd "$INITRD" --append "$APPEND" \
  --cpus 1 --memory 512M --backend model)
q_boot=$(boot_best qemu-system-aarch64 -M virt,gic-version=3 -cpu max -m 512M -nographic \
  -no-reboot -nic none -kernel "$KERNEL" -initrd "$INITRD" -append "$APPEND")
printf '%-38s %11.3fs %11.3fs %10.3f\n' "kernel boot to poweroff (best of $RUNS)" "$m_boot" \
  "$q_boot" "$(echo "$q_boot / $m_boot" | bc -l)"
echo "kernel: $KERNEL, 1 vCPU, 512 MiB, append \"$APPEND\", /init = poweroff -f"
