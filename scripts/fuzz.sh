#!/usr/bin/env bash
# Runs a cargo-fuzz target of kvmdbg for a given time, on the stable toolchain.
#
#   scripts/fuzz.sh TARGET SECONDS [libFuzzer options...]
#   scripts/fuzz.sh all SECONDS        every target, SECONDS each
#   scripts/fuzz.sh smoke [TOTAL]      every target, TOTAL seconds (default 60) shared out
#   scripts/fuzz.sh list               the targets
#
# Targets are the [[bin]] entries of fuzz/Cargo.toml (a file in fuzz/fuzz_targets/ each);
# adding one needs no change here. cargo-fuzz needs nightly features: RUSTC_BOOTSTRAP=1
# enables them on stable. cargo-fuzz is installed (idempotently) if missing. The seeds of
# TARGET are fuzz/corpus/TARGET (committed); what a run adds goes to fuzz/work/TARGET (not
# committed). Crashes land in fuzz/artifacts/TARGET: copy each into fuzz/regressions/TARGET/
# (tests/fuzz_regressions.rs replays them) and fix the bug.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"

if ! command -v cargo-fuzz >/dev/null 2>&1; then
  echo "[fuzz] installing cargo-fuzz" >&2
  cargo install cargo-fuzz --locked
fi
export RUSTC_BOOTSTRAP=1

targets() { (cd fuzz && cargo fuzz list); }

run() {
  local target=$1 seconds=$2
  shift 2
  mkdir -p "fuzz/work/$target" "fuzz/corpus/$target" "fuzz/regressions/$target"
  echo "[fuzz] $target for ${seconds}s" >&2
  # Optimised, with debug assertions (overflow checks) on; no sanitizer (the few `unsafe`
  # blocks are ioctls and mmap, and AddressSanitizer would cost most of the speed).
  cargo fuzz run --fuzz-dir fuzz --sanitizer none --debug-assertions "$target" \
    "fuzz/work/$target" "fuzz/corpus/$target" "fuzz/regressions/$target" -- \
    -max_total_time="$seconds" -timeout=20 -rss_limit_mb=4096 -print_final_stats=1 "$@"
}

case "${1:-}" in
  list) targets ;;
  all)
    [ $# -ge 2 ] || { echo "usage: $0 all SECONDS" >&2; exit 2; }
    for t in $(targets); do run "$t" "$2"; done
    ;;
  smoke)
    list=$(targets)
    n=$(echo "$list" | wc -w)
    each=$(( ${2:-60} / n ))
    for t in $list; do run "$t" "$((each > 1 ? each : 1))"; done
    ;;
  "" | -h | --help)
    echo "usage: $0 TARGET SECONDS [libFuzzer options] | all SECONDS | list" >&2
    exit 2
    ;;
  *)
    [ $# -ge 2 ] || { echo "usage: $0 TARGET SECONDS" >&2; exit 2; }
    run "$@"
    ;;
esac
