#!/usr/bin/env bash
# The nested-KVM test: builds (scripts/nested/build.sh) and runs (scripts/nested/run.sh) the
# cross-built tests on real arm64 KVM nested in qemu-system-aarch64. The single entry point for
# the project's test command.
#
#   scripts/nested/test.sh [--firmware DIR] [--gzip] [--release] [run.sh options...]
#
# The build options go to build.sh, everything else to run.sh (e.g. --only 'test:kvm_*').
# Firmware: unless --firmware names a prebuilt directory, firmware/build.sh (when it exists)
# builds into ${KVMDBG_FIRMWARE_DIR:-target/firmware}, which build.sh then stages as /fw.
# Without the tools (qemu-system-aarch64, the cached kernel, the aarch64 cross toolchain) this
# skips with a message, or fails when CI=true. Exit status: that of build.sh or run.sh.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
CACHE=${KVMDBG_CACHE:-/var/cache/kvmdbg}

say() { echo "[nested-test] $*" >&2; }
now_ms() { date +%s%3N; }
secs() { printf '%d.%01ds' $(($1 / 1000)) $(($1 % 1000 / 100)); }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# Missing tools: skip locally, fail under CI=true.
check_prerequisites() {
  local missing=() t
  for t in qemu-system-aarch64 aarch64-linux-gnu-gcc cpio jq cargo rustup; do
    command -v "$t" >/dev/null || missing+=("$t")
  done
  [ -s "$CACHE/Image" ] || missing+=("$CACHE/Image")
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

main() {
  local build_args=() run_args=() t0 t1 t2 fw_given=0 rc=0
  local fw_dir=${KVMDBG_FIRMWARE_DIR:-$ROOT/target/firmware}
  while [ $# -gt 0 ]; do
    case $1 in
      --firmware) build_args+=("$1" "${2:?--firmware needs a directory}"); fw_given=1; shift 2 ;;
      --gzip|--release) build_args+=("$1"); shift ;;
      -h|--help) sed -n '2,13p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
      *) run_args+=("$1"); shift ;;
    esac
  done
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
  "$HERE/build.sh" "${build_args[@]}"
  t1=$(now_ms)
  "$HERE/run.sh" "${run_args[@]}" || rc=$?
  # The host's gdb and lldb suites against kvmdbg on real KVM in the nested machine: the
  # guest serves a stub launcher, the host tests start their stubs through it (port forwards).
  if [ ${#run_args[@]} -eq 0 ]; then
    say "gdb and lldb suites on the host against kvmdbg on nested KVM"
    local lport gport
    lport=$(free_port)
    gport=$(free_port)
    "$HERE/run.sh" --no-tests --forward "$lport:7000" --forward "$gport:1234" --grace 30 \
      --guest-cmd 'mkdir -p /tmp/stub; nc -ll -p 7000 -e /stub-launcher.sh & echo $! >/tmp/stub/server.pid; wait; exit 0' \
      --host-cmd "NESTED_LAUNCHER_PORT=$lport NESTED_GDB_PORT=$gport $HERE/gdb-remote.sh" || rc=$?
  fi
  t2=$(now_ms)
  say "build $(secs $((t1 - t0))), boot+run $(secs $((t2 - t1))), total $(secs $((t2 - t0)))"
  return $rc
}

main "$@"
