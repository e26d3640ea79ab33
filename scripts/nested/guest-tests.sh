#!/bin/sh
# The nested guest's test list (busybox sh, run by /init inside the nested-KVM machine; packed by
# scripts/nested/build.sh as /guest-tests.sh). Add new guest checks here.
#
# Prints one machine-parsable line per test, parsed by scripts/nested/run.sh:
#   NESTED-RESULT <name> PASS|FAIL|SKIP <rc>
# Names: `test:<cargo target>` for the cross-built cargo test binaries in /tests (lib unit tests:
# `test:kvmdbg-lib`), plain names for the command checks below.
# A check whose prerequisite is missing (a firmware ELF not built, a kvmdbg subcommand not yet
# implemented) is SKIP, or FAIL with rc 77 when NESTED_CI=1 (run.sh sets it from CI=true).
# Environment from /init: NESTED_CI, NESTED_TEST_TIMEOUT (seconds per test); /nested/only holds
# name globs to select (empty or missing: everything).
set -u

export PATH=/bin
# Test binaries must fail, not skip, when /dev/kvm is missing here (see tests/kvm_smoke.rs).
export KVMDBG_REQUIRE_KVM=1
# Test binaries that boot firmware find the prebuilt ELFs here (no assembler in the guest).
export KVMDBG_FIRMWARE_DIR=/fw
# The kernel tests/kvm_linux.rs boots as kvmdbg's guest (staged by build.sh).
export KVMDBG_LINUX_IMAGE=/linux/Image.gz
export RUST_BACKTRACE=1
TIMEOUT=${NESTED_TEST_TIMEOUT:-300}
CI_MODE=${NESTED_CI:-0}
OUT=/tmp/check

result() { echo "NESTED-RESULT $1 $2 $3"; }

# True when test $1 is selected by /nested/only.
selected() {
  local g
  [ -s /nested/only ] || return 0
  while read -r g; do
    # shellcheck disable=SC2254
    case $1 in $g) return 0 ;; esac
  done </nested/only
  return 1
}

# Reports test $1 as skipped (or failed under CI) because of the reason in $2.
missing() {
  echo "nested: $1: prerequisite missing: $2"
  if [ "$CI_MODE" = 1 ]; then
    result "$1" FAIL 77
  else
    echo "nested: $1: SKIPPED (FAILS under CI=true)"
    result "$1" SKIP 0
  fi
}

# need_file NAME PATH / need_subcommand NAME SUBCOMMAND: prerequisites of check NAME.
need_file() {
  [ -e "$2" ] && return 0
  missing "$1" "$2 not in the initramfs"
  return 1
}
need_subcommand() {
  kvmdbg --help 2>&1 | grep -Eq "^[[:space:]]+$2([[:space:]]|\$)" && return 0
  missing "$1" "kvmdbg has no '$2' subcommand yet (kvmdbg --help)"
  return 1
}

# Says so when test $1, started at $2 (epoch seconds), ran into the per-test timeout (busybox
# timeout sends SIGTERM; the test then exits 143).
timed_out() {
  [ $(($(date +%s) - $2)) -ge "$TIMEOUT" ] && echo "nested: $1: killed by the ${TIMEOUT}s per-test timeout"
  return 0
}

# Runs every cargo test binary, one test thread each for a deterministic console.
# The library's unit tests skip the model's JIT tests here (every `jit*` module: the same
# filter as scripts/jit-aarch64.sh): they do not touch KVM, they are
# the slowest tests under this machine's emulated CPU (the lib binary then ran into the
# per-test timeout), and scripts/jit-aarch64.sh runs them on an AArch64 build under
# qemu-user in every CI run.
run_test_binaries() {
  local t name rc start skip
  for t in /tests/*; do
    [ -x "$t" ] || continue
    name=test:${t##*/}
    selected "$name" || continue
    skip=""
    [ "$name" = test:kvmdbg-lib ] && skip="--skip backend::model::cpu::jit"
    echo "nested: === $name"
    start=$(date +%s)
    # shellcheck disable=SC2086
    timeout "$TIMEOUT" "$t" --test-threads=1 $skip
    rc=$?
    timed_out "$name" "$start"
    if [ $rc = 0 ]; then result "$name" PASS 0; else result "$name" FAIL $rc; fi
  done
}

# check [-i] NAME RC REGEX CMD [ARGS...]: runs CMD (output streamed to the console) and passes
# when it exits with RC and its output (stdout and stderr) matches the extended regex REGEX
# (-i: ignoring case).
check() {
  local icase="" name want_rc regex rc start
  [ "$1" = -i ] && { icase=-i; shift; }
  name=$1 want_rc=$2 regex=$3
  shift 3
  echo "nested: === $name: $*"
  start=$(date +%s)
  { timeout "$TIMEOUT" "$@" 2>&1; echo $? >"$OUT.rc"; } | tee "$OUT.log"
  rc=$(cat "$OUT.rc")
  timed_out "$name" "$start"
  if [ "$rc" = "$want_rc" ] && grep -Eq $icase -- "$regex" "$OUT.log"; then
    result "$name" PASS "$rc"
  else
    echo "nested: $name: expected exit $want_rc and output matching /$regex/${icase:+ (ignoring case)}, got exit $rc"
    result "$name" FAIL "$rc"
  fi
}

# The command checks: kvmdbg on real KVM.
run_checks() {
  local n fw
  n=kvmdbg-info
  if selected $n && need_subcommand $n info; then
    check -i $n 0 'api[ _-]*version[^0-9]*12' kvmdbg info
  fi
  # The debug slots KVM offers on this (nested) host: 6 breakpoints, 4 watchpoints.
  n=kvmdbg-info-hw-breakpoints
  if selected $n && need_subcommand $n info; then
    check $n 0 '^hw_breakpoints: 6$' kvmdbg info
  fi
  n=kvmdbg-info-hw-watchpoints
  if selected $n && need_subcommand $n info; then
    check $n 0 '^hw_watchpoints: 4$' kvmdbg info
  fi
  # No FIRMWARE: the embedded demo.
  n=kvmdbg-run-embedded-demo
  if selected $n && need_subcommand $n run; then
    check $n 0 '^PASS demo$' kvmdbg run --backend kvm
  fi
  # Every firmware ELF (firmware/README.md): exactly one verdict line, `PASS <name>` on success,
  # then PSCI SYSTEM_OFF, which ends `kvmdbg run` with status 0.
  n=kvmdbg-run-firmware
  if [ ! -e /fw ]; then
    selected "$n" && missing $n "/fw (no firmware ELFs in the initramfs)"
    return
  fi
  # Each run gets one line on its standard input: `echo` reads a line through the UART's
  # receive interrupt before its verdict (the others never read the UART).
  printf 'kvm\n' >/tmp/fw-input
  for fw in /fw/*.elf; do
    [ -e "$fw" ] || continue
    fw=${fw##*/}
    fw=${fw%.elf}
    n=kvmdbg-run-$fw
    if selected "$n" && need_subcommand "$n" run; then
      check "$n" 0 "^PASS $fw([[:space:]]|\$)" kvmdbg run "/fw/$fw.elf" --backend kvm </tmp/fw-input
    fi
  done
}

run_test_binaries
run_checks
