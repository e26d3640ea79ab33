#!/usr/bin/env bash
# The nested-KVM test: builds (scripts/nested/build.sh) and runs (scripts/nested/run.sh) the
# cross-built tests on real arm64 KVM nested in qemu-system-aarch64, once per host kernel
# (Debian 12's 6.1 and Debian 13's 6.12: scripts/nested/kernels.sh). The single entry point for
# the project's test command.
#
#   scripts/nested/test.sh [--kernel VER]... [--firmware DIR] [--gzip] [--release] [run.sh options...]
#
# --kernel (repeatable) picks host kernels (default $NESTED_KERNELS, else "6.1 6.12"). The build
# options go to build.sh, everything else to run.sh (e.g. --only 'test:kvm_*'; with run.sh
# options the host gdb/lldb run is left out). Firmware: unless --firmware names a prebuilt
# directory, firmware/build.sh builds into ${KVMDBG_FIRMWARE_DIR:-target/firmware}, staged as /fw.
# Console logs: <out>/console-<VER>.log and console-<VER>-gdb.log. Without the tools
# (qemu-system-aarch64, a cached kernel, the aarch64 cross toolchain) this skips with a message,
# or fails when CI=true (also for any one kernel not cached). Ends with one line per kernel.
# Exit status: that of build.sh, or 1 if any run on any kernel failed.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
OUT=${KVMDBG_NESTED_DIR:-${CARGO_TARGET_DIR:-$ROOT/target}/nested}
# shellcheck source=kernels.sh
. "$HERE/kernels.sh"

say() { echo "[nested-test] $*" >&2; }
now_ms() { date +%s%3N; }
secs() {
  local s=$(($1 / 1000))
  if [ $s -ge 60 ]; then printf '%dm%02ds' $((s / 60)) $((s % 60)); else printf '%d.%01ds' $s $(($1 % 1000 / 100)); fi
}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# Missing tools: skip locally, fail under CI=true. A host kernel that is not cached is left out
# locally (with a message) while another one is there; KERNELS keeps the cached ones.
check_prerequisites() {
  local missing=() t k cached=()
  for t in qemu-system-aarch64 aarch64-linux-gnu-gcc cpio jq cargo rustup xz; do
    command -v "$t" >/dev/null || missing+=("$t")
  done
  for k in $KERNELS; do
    if [ -s "$(nested_kernel_dir "$k")/Image" ]; then cached+=("$k")
    elif [ "${CI:-}" = true ]; then missing+=("kernel $k ($(nested_kernel_dir "$k")/Image)")
    else
      say "SKIPPED host kernel $k: $(nested_kernel_dir "$k")/Image missing (run scripts/setup.sh; CI=true fails instead)"
      SUMMARY+=("$k: SKIPPED (not cached; run scripts/setup.sh)")
    fi
  done
  [ ${#cached[@]} -gt 0 ] || missing+=("a cached host kernel (any of $KERNELS)")
  KERNELS="${cached[*]}"
  [ -e /usr/aarch64-linux-gnu/lib/crt1.o ] || missing+=("libc6-dev-arm64-cross")
  [ -x /bin/busybox ] || missing+=("busybox-static:arm64")
  if command -v rustup >/dev/null && ! rustup target list --installed | grep -qx aarch64-unknown-linux-gnu; then
    missing+=("rust target aarch64-unknown-linux-gnu")
  fi
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "${CI:-}" = true ]; then
    say "FAIL: missing ${missing[*]} (run scripts/setup.sh)"
    exit 1
  fi
  say "SKIPPED: the nested-KVM tests need ${missing[*]} (run scripts/setup.sh; CI=true fails instead)"
  exit 0
}

# Runs run.sh with arguments $2..., logging the console to $1; prints run.sh's verdict line
# ("N passed, M failed, K skipped") or "no verdict", and returns its exit status.
run_once() {
  local log=$1 out rc=0
  shift
  out=$(mktemp)
  "$HERE/run.sh" --log "$log" "$@" | tee "$out" >&2 || rc=$?
  grep -E '^[0-9]+ passed, [0-9]+ failed, [0-9]+ skipped$' "$out" | tail -n1 | grep . || echo "no verdict"
  rm -f "$out"
  return $rc
}

# The whole suite on host kernel $1: the guest test list, then (without run.sh options) the
# host's gdb and lldb suites against kvmdbg on that kernel's KVM. Appends a line to SUMMARY.
run_kernel() {
  local k=$1 t0 t1 t2 rc=0 verdict gverdict="" release line
  shift
  say "==== host kernel $k: $(cat "$(nested_kernel_dir "$k")/kernel-package" 2>/dev/null || nested_kernel_dir "$k")"
  t0=$(now_ms)
  verdict=$(run_once "$OUT/console-$k.log" --kernel "$k" "$@") || rc=$?
  t1=$(now_ms)
  # The host's gdb and lldb suites against kvmdbg on real KVM in the nested machine: the
  # guest serves a stub launcher, the host tests start their stubs through it (port forwards).
  if [ $# -eq 0 ]; then
    say "gdb and lldb suites on the host against kvmdbg on nested KVM (host kernel $k)"
    local lport gport
    lport=$(free_port)
    gport=$(free_port)
    gverdict=$(run_once "$OUT/console-$k-gdb.log" --kernel "$k" --no-tests \
      --forward "$lport:7000" --forward "$gport:1234" --grace 30 \
      --guest-cmd 'mkdir -p /tmp/stub; nc -ll -p 7000 -e /stub-launcher.sh & echo $! >/tmp/stub/server.pid; wait; exit 0' \
      --host-cmd "NESTED_LAUNCHER_PORT=$lport NESTED_GDB_PORT=$gport $HERE/gdb-remote.sh") || rc=$?
  fi
  t2=$(now_ms)
  release=$(tr -d '\r' <"$OUT/console-$k.log" | sed -n 's/^NESTED-BOOT .*kernel=\([^ ]*\).*/\1/p' | head -n1)
  line="$k (${release:-no NESTED-BOOT}): $([ $rc = 0 ] && echo PASS || echo FAIL)"
  line+="; suite: $verdict in $(secs $((t1 - t0))), console-$k.log"
  [ -z "$gverdict" ] || line+="; gdb/lldb: $gverdict in $(secs $((t2 - t1))), console-$k-gdb.log"
  SUMMARY+=("$line")
  return $rc
}

main() {
  local build_args=() run_args=() kernels=() t0 t1 t2 fw_given=0 rc=0 k line
  local fw_dir=${KVMDBG_FIRMWARE_DIR:-$ROOT/target/firmware}
  while [ $# -gt 0 ]; do
    case $1 in
      --firmware) build_args+=("$1" "${2:?--firmware needs a directory}"); fw_given=1; shift 2 ;;
      --gzip|--release) build_args+=("$1"); shift ;;
      --kernel)
        nested_kernel_known "${2:-}" || { say "--kernel needs one of: $NESTED_KERNELS_ALL"; exit 2; }
        kernels+=("$2"); shift 2 ;;
      -h|--help) sed -n '2,16p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
      *) run_args+=("$1"); shift ;;
    esac
  done
  KERNELS=${kernels[*]:-$NESTED_KERNELS}
  SUMMARY=()
  check_prerequisites
  t0=$(now_ms)
  if [ $fw_given = 0 ]; then
    if [ -x "$ROOT/firmware/build.sh" ]; then
      say "building firmware: firmware/build.sh $fw_dir"
      "$ROOT/firmware/build.sh" "$fw_dir"
    else
      say "no firmware/build.sh in this tree: firmware checks will SKIP (FAIL under CI=true)"
    fi
    build_args+=(--firmware "$fw_dir")
  fi
  NESTED_KERNELS=$KERNELS "$HERE/build.sh" "${build_args[@]}"
  t1=$(now_ms)
  for k in $KERNELS; do
    run_kernel "$k" "${run_args[@]}" || rc=1
  done
  t2=$(now_ms)
  say "---- results per host kernel (logs in $OUT)"
  for line in "${SUMMARY[@]}"; do say "$line"; done
  say "build $(secs $((t1 - t0))), boot+run $(secs $((t2 - t1))), total $(secs $((t2 - t0)))"
  return $rc
}

main "$@"
