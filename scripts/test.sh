#!/usr/bin/env bash
# kvmdbg's test command: sets up missing tools, then runs everything: formatting, lints, docs
# (rustdoc warnings, references in docs and comments), the aarch64 build, firmware, unit and
# integration tests (model backend, QEMU reference, real gdb), and the nested real-KVM suite.
# Exits non-zero on the first failure.
#
#   scripts/test.sh            everything
#   KVMDBG_SKIP_NESTED=1 ...   everything but the nested KVM suite (local iteration only)
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==== %s ====\n' "$*"; }

step "setup (idempotent)"
bash scripts/setup.sh

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (host)"
cargo clippy --all-targets -- -D warnings

step "cargo doc (host and aarch64, private items, warnings are errors)"
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --document-private-items
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --document-private-items \
  --target aarch64-unknown-linux-gnu

step "doc references (files and Rust paths named in docs and comments exist)"
python3 scripts/check-doc-refs.py

step "cargo check (aarch64, KVM backend)"
cargo check --target aarch64-unknown-linux-gnu --all-targets

step "the model's JIT on an AArch64 host (its tests under qemu-user)"
bash scripts/jit-aarch64.sh

step "firmware"
bash firmware/build.sh target/firmware

step "cargo test (host)"
cargo test --all-targets

step "fuzz smoke (about a minute)"
bash scripts/fuzz.sh smoke 60

if [ "${KVMDBG_SKIP_NESTED:-0}" = 1 ] && [ "${CI:-}" != true ]; then
  echo "KVMDBG_SKIP_NESTED=1: skipping the nested real-KVM suite (never skipped in CI)"
else
  step "nested real-KVM suite"
  bash scripts/nested/test.sh
fi

step "all tests passed"
