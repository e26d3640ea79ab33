#!/usr/bin/env bash
# Boots the nested-KVM machine (Debian arm64 kernel at EL2 in qemu-system-aarch64 TCG, so the
# guest has a real arm64 /dev/kvm), runs the guest tests from the initramfs that
# scripts/nested/build.sh made, and judges the console.
#
#   scripts/nested/run.sh [options]
#     --only GLOB          run only guest tests whose name matches (repeatable), e.g. 'test:kvm_*'
#     --no-tests           do not run the guest test list (/guest-tests.sh)
#     --guest-cmd CMD      shell command to run in the guest; its exit status is result `guest-cmd`
#     --host-cmd CMD       with --guest-cmd: run CMD in the background in the guest, wait until it
#                          listens on the first forwarded guest port (or --ready-port), then run
#                          CMD on the host (env NESTED_HOST_PORT, NESTED_LOG); its exit status is
#                          result `host-cmd`; the guest command must then exit within --grace
#     --forward H:G        forward 127.0.0.1:H on the host to guest TCP port G (repeatable;
#                          implies --net)
#     --net                virtio-net with QEMU user networking; guest eth0 = 10.0.2.15/24
#     --ready-port PORT    guest port that means "guest command ready" (default: first G)
#     --grace SECS         time the guest gets to finish after the host command (default 60)
#     --timeout SECS       overall limit, boot included (default $NESTED_TIMEOUT or 1200)
#     --test-timeout SECS  limit per guest test (default 300)
#     --kernel VER|FILE    host kernel: a cached version (6.1, 6.12: scripts/nested/kernels.sh,
#                          cached by scripts/setup.sh) or an Image file (default: the first of
#                          $NESTED_KERNELS, 6.1)
#     --initrd FILE        default <out>/initramfs (from build.sh)
#     --log FILE           console log (default <out>/console-<VER>.log, or console.log with
#                          an Image file)
#     --smp N / --mem SIZE guest CPUs / memory (default 2 / 1G)
#     --kernel-arg ARG     extra kernel command line argument (repeatable)
#     --quiet              do not stream the console (it is still logged)
# Exit status: 0 when every result passed (or skipped) and the guest reached NESTED-DONE;
# 1 on any FAIL, a missing NESTED-DONE, a timeout or a kernel panic; 2 on bad usage or inputs.
# Env CI=true turns guest prerequisite skips into failures.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
OUT=${KVMDBG_NESTED_DIR:-$TARGET_DIR/nested}
# shellcheck source=kernels.sh
. "$HERE/kernels.sh"
KERNEL=""
KVER=""
INITRD=$OUT/initramfs
LOG=""
TIMEOUT=${NESTED_TIMEOUT:-1200}
TEST_TIMEOUT=300
GRACE=60
SMP=2
MEM=1G
NET=0
TESTS=1
QUIET=0
GUEST_CMD=""
HOST_CMD=""
READY_PORT=""
FORWARDS=()
ONLY=()
KARGS=()

say() { echo "[nested-run] $*" >&2; }
usage() { sed -n '2,32p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }
bad() { echo "[nested-run] error: $*" >&2; exit 2; }
num() { [[ $2 =~ ^[0-9]+$ ]] || bad "$1 needs a number, got '$2'"; }

parse_args() {
  while [ $# -gt 0 ]; do
    case $1 in
      --only) ONLY+=("${2:?--only needs a glob}"); shift ;;
      --no-tests) TESTS=0 ;;
      --guest-cmd) GUEST_CMD=${2:?--guest-cmd needs a command}; shift ;;
      --host-cmd) HOST_CMD=${2:?--host-cmd needs a command}; shift ;;
      --forward)
        [[ ${2:-} =~ ^[0-9]+:[0-9]+$ ]] || bad "--forward needs HOSTPORT:GUESTPORT"
        FORWARDS+=("$2"); NET=1; shift ;;
      --net) NET=1 ;;
      --ready-port) num "$1" "${2:-}"; READY_PORT=$2; shift ;;
      --grace) num "$1" "${2:-}"; GRACE=$2; shift ;;
      --timeout) num "$1" "${2:-}"; TIMEOUT=$2; shift ;;
      --test-timeout) num "$1" "${2:-}"; TEST_TIMEOUT=$2; shift ;;
      --kernel) KERNEL=${2:?--kernel needs a version or a file}; shift ;;
      --initrd) INITRD=${2:?}; shift ;;
      --log) LOG=${2:?}; shift ;;
      --smp) num "$1" "${2:-}"; SMP=$2; shift ;;
      --mem) MEM=${2:?}; shift ;;
      --kernel-arg) KARGS+=("${2:?}"); shift ;;
      --quiet) QUIET=1 ;;
      -h|--help) usage 0 ;;
      *) echo "unknown option: $1" >&2; usage 2 ;;
    esac
    shift
  done
  if [ -z "$KERNEL" ]; then KERNEL=${NESTED_KERNELS%% *}; fi
  if nested_kernel_known "$KERNEL"; then
    KVER=$KERNEL
    KERNEL=$(nested_kernel_dir "$KVER")/Image
  fi
  LOG=${LOG:-$OUT/console${KVER:+-$KVER}.log}
  [ -z "$HOST_CMD" ] || [ -n "$GUEST_CMD" ] || bad "--host-cmd needs --guest-cmd (the guest side it talks to)"
  if [ -n "$HOST_CMD" ] && [ -z "$READY_PORT" ] && [ ${#FORWARDS[@]} -gt 0 ]; then
    READY_PORT=${FORWARDS[0]#*:}
  fi
  command -v qemu-system-aarch64 >/dev/null || bad "qemu-system-aarch64 not found (run scripts/setup.sh)"
  [ -s "$KERNEL" ] || bad "kernel ${KVER:+$KVER }$KERNEL missing (run scripts/setup.sh)"
  [ -s "$INITRD" ] || bad "initramfs $INITRD missing (run scripts/nested/build.sh)"
}

# The run configuration for /init, as a second cpio archive appended to the initramfs (the
# kernel unpacks concatenated archives in order: Documentation/driver-api/early-userspace/
# buffer-format.rst).
make_initrd() {
  local ov=$RUN_DIR/overlay g
  mkdir -p "$ov/nested"
  {
    echo "NESTED_TESTS=$TESTS"
    echo "NESTED_CI=$([ "${CI:-}" = true ] && echo 1 || echo 0)"
    echo "NESTED_GUEST_BG=$([ -n "$HOST_CMD" ] && echo 1 || echo 0)"
    echo "NESTED_READY_PORT=$READY_PORT"
    echo "NESTED_TEST_TIMEOUT=$TEST_TIMEOUT"
  } >"$ov/nested/config"
  [ -z "$GUEST_CMD" ] || printf '%s\n' "$GUEST_CMD" >"$ov/nested/guest-cmd"
  for g in "${ONLY[@]}"; do printf '%s\n' "$g"; done >"$ov/nested/only"
  (cd "$ov" && find . -mindepth 1 | LC_ALL=C sort | cpio --quiet -o -H newc --owner=0:0) >"$RUN_DIR/overlay.cpio"
  cat "$INITRD" "$RUN_DIR/overlay.cpio" >"$RUN_DIR/initrd"
}

qemu_args() {
  local append="console=ttyAMA0 panic=-1 rdinit=/init" netdev f
  [ "$NET" = 1 ] && append="$append net"
  [ ${#KARGS[@]} -eq 0 ] || append="$append ${KARGS[*]}"
  QEMU=(qemu-system-aarch64 -M virt,virtualization=on,gic-version=3
    -cpu max,sve=off,pauth-impdef=on -smp "$SMP" -m "$MEM" -accel tcg,thread=multi
    -nographic -no-reboot -kernel "$KERNEL" -initrd "$RUN_DIR/initrd" -append "$append"
    -nic none) # no default NIC: it would be virtio-net-pci, which wants an option ROM
  if [ "$NET" = 1 ]; then
    netdev=user,id=n0
    for f in "${FORWARDS[@]}"; do netdev="$netdev,hostfwd=tcp:127.0.0.1:${f%%:*}-:${f#*:}"; done
    QEMU+=(-netdev "$netdev" -device virtio-net-device,netdev=n0)
  fi
}

now_ms() { date +%s%3N; }
seen() { grep -q "$1" "$LOG" 2>/dev/null; }

QPID="" TPID="" HPID=""
cleanup() {
  [ -z "$HPID" ] || kill -TERM -- "-$HPID" 2>/dev/null || true
  [ -z "$QPID" ] || kill "$QPID" 2>/dev/null || true
  [ -z "$TPID" ] || kill "$TPID" 2>/dev/null || true
  rm -rf "$RUN_DIR"
}

start_host_cmd() {
  say "guest ready after $(( ($(now_ms) - T0) / 1000 ))s; host command: $HOST_CMD"
  local hport=""
  [ ${#FORWARDS[@]} -eq 0 ] || hport=${FORWARDS[0]%%:*}
  NESTED_HOST_PORT=$hport NESTED_LOG=$LOG setsid bash -c "$HOST_CMD" </dev/null &
  HPID=$!
}

# Polls the console log until QEMU exits, starting the host command when the guest is ready and
# enforcing the overall timeout and the grace period after the host command.
supervise() {
  local now host_done=""
  while kill -0 "$QPID" 2>/dev/null; do
    now=$(now_ms)
    [ -n "$BOOT_MS" ] || ! seen NESTED-BOOT || BOOT_MS=$((now - T0))
    if [ -n "$HOST_CMD" ] && [ -z "$HPID" ] && [ -z "$HOST_RC" ] && seen NESTED-READY; then
      start_host_cmd
    fi
    if [ -n "$HPID" ] && ! kill -0 "$HPID" 2>/dev/null; then
      HOST_RC=0; wait "$HPID" || HOST_RC=$?
      HPID="" host_done=$now
      say "host command exited with $HOST_RC"
    fi
    if [ -n "$host_done" ] && [ $((now - host_done)) -gt $((GRACE * 1000)) ]; then
      PROBLEMS+=("the guest did not finish within ${GRACE}s after the host command")
      kill "$QPID"; break
    fi
    if [ $((now - T0)) -gt $((TIMEOUT * 1000)) ]; then
      PROBLEMS+=("timeout: the machine ran longer than ${TIMEOUT}s")
      kill "$QPID"; break
    fi
    sleep 0.2
  done
  QRC=0; wait "$QPID" || QRC=$?
  QPID=""
  if [ -n "$HPID" ]; then
    # The host command may end the guest itself as its last act: give it 5 s to exit.
    local i=0
    while kill -0 "$HPID" 2>/dev/null && [ $i -lt 25 ]; do sleep 0.2; i=$((i + 1)); done
    if kill -0 "$HPID" 2>/dev/null; then
      PROBLEMS+=("the host command was still running when the machine stopped")
      kill -TERM -- "-$HPID" 2>/dev/null || true
      HOST_RC=143; wait "$HPID" || true
    else
      HOST_RC=0; wait "$HPID" || HOST_RC=$?
      say "host command exited with $HOST_RC"
    fi
    HPID=""
  fi
}

# Tallies NESTED-RESULT lines (plus host-cmd) and decides the exit status.
judge() {
  local results line name status rc pass=0 fail=0 skip=0 failed=() total_ms release
  results=$(tr -d '\r' <"$LOG" | grep -oE 'NESTED-RESULT [^ ]+ (PASS|FAIL|SKIP) [-0-9]+' || true)
  if [ -n "$HOST_CMD" ]; then
    if [ -z "$HOST_RC" ]; then results+=$'\n'"NESTED-RESULT host-cmd FAIL -1"
    elif [ "$HOST_RC" = 0 ]; then results+=$'\n'"NESTED-RESULT host-cmd PASS 0"
    else results+=$'\n'"NESTED-RESULT host-cmd FAIL $HOST_RC"; fi
  fi
  while read -r _ name status rc; do
    [ -n "${name:-}" ] || continue
    case $status in
      PASS) pass=$((pass + 1)) ;;
      SKIP) skip=$((skip + 1)) ;;
      *) fail=$((fail + 1)); failed+=("$name (rc $rc)") ;;
    esac
  done <<<"$results"
  seen NESTED-DONE || PROBLEMS+=("no NESTED-DONE: the guest did not finish its test list")
  ! seen 'Kernel panic - not syncing' || PROBLEMS+=("kernel panic (see the log)")
  [ $((pass + fail + skip)) -gt 0 ] || PROBLEMS+=("no test results at all")
  [ "$QRC" = 0 ] || seen NESTED-DONE || PROBLEMS+=("qemu-system-aarch64 exited with $QRC")
  total_ms=$(($(now_ms) - T0))
  echo "[nested-run] ---- results"
  sed 's/^NESTED-RESULT /  /' <<<"$results" | grep -v '^$' || true
  for line in "${failed[@]}"; do echo "[nested-run] FAILED: $line"; done
  for line in "${PROBLEMS[@]}"; do echo "[nested-run] PROBLEM: $line"; done
  if [ ${#PROBLEMS[@]} -gt 0 ] && [ "$QUIET" = 1 ]; then
    echo "[nested-run] last console lines:"; tail -n 30 "$LOG" | tr -d '\r' | sed 's/^/  | /'
  fi
  release=$(tr -d '\r' <"$LOG" | sed -n 's/^NESTED-BOOT .*kernel=\([^ ]*\).*/\1/p' | head -n1)
  echo "[nested-run] kernel ${release:-unknown (no NESTED-BOOT)}: boot to /init: $(fmt_ms "$BOOT_MS"), total: $(fmt_ms "$total_ms"), console log: $LOG"
  echo "$pass passed, $fail failed, $skip skipped"
  [ "$fail" = 0 ] && [ ${#PROBLEMS[@]} -eq 0 ]
}

fmt_ms() { if [ -n "$1" ]; then printf '%d.%01ds' $(($1 / 1000)) $(($1 % 1000 / 100)); else echo "n/a"; fi; }

main() {
  parse_args "$@"
  RUN_DIR=$(mktemp -d "${TMPDIR:-/tmp}/kvmdbg-nested.XXXXXX")
  trap cleanup EXIT
  trap 'exit 130' INT TERM
  make_initrd
  qemu_args
  mkdir -p "$(dirname "$LOG")"
  : >"$LOG"
  say "booting: ${QEMU[*]}"
  BOOT_MS="" HOST_RC="" QRC="" PROBLEMS=()
  T0=$(now_ms)
  "${QEMU[@]}" </dev/null >"$LOG" 2>&1 &
  QPID=$!
  if [ "$QUIET" = 0 ]; then
    tail -n +1 -s 0.2 -F --pid="$QPID" "$LOG" 2>/dev/null &
    TPID=$!
  fi
  supervise
  if [ -n "$TPID" ]; then wait "$TPID" || true; TPID=""; fi
  judge
}

main "$@"
