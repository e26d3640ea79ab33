#!/usr/bin/env bash
# Benchmark: the model backend against QEMU TCG on the same compute-bound firmware
# (firmware/compute.S, about 16.8 million instructions). Prints both times side by side and
# the model's speed as a fraction of QEMU's, raw and with each tool's start-up time (measured
# on firmware/hello.S) subtracted. Best of RUNS (default 3) for each figure.
#
# Then, unless BENCH_KERNEL=0, a kernel-boot figure: Debian's arm64 kernel (the one
# scripts/setup.sh caches, KERNEL= to override) with a busybox initramfs whose /init powers
# off at once (`poweroff -f`: PSCI SYSTEM_OFF), 1 vCPU, 512 MiB, on the model and on QEMU TCG
# (`-M virt,gic-version=3 -cpu max`, `-nic none` as above: no NIC, no option ROM), wall time
# from start to exit, best of RUNS.
#
#   scripts/bench-model.sh [RUNS]
#   BENCH_KERNEL=0 scripts/bench-model.sh [RUNS]
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
printf '%-34s %11.3fs %11.3fs %10.3f\n' "kernel boot to poweroff (best of $RUNS)" "$m_boot" \
  "$q_boot" "$(echo "$q_boot / $m_boot" | bc -l)"
echo "kernel: $KERNEL, 1 vCPU, 512 MiB, append \"$APPEND\", /init = poweroff -f"
