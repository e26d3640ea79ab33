#!/usr/bin/env bash
# Host side of the gdb suite on nested KVM (run by scripts/nested/test.sh through
# run.sh --host-cmd): the host's gdb and lldb integration tests (tests/gdb_*.rs,
# tests/lldb_session.rs) run unchanged, but each stub they start is kvmdbg on real arm64 KVM
# inside the nested machine, started by the guest's launcher (scripts/nested/stub-launcher.sh)
# and reached through QEMU user-network port forwards; tests/gdb_linux.rs boots the staged
# kernel there. Stops the launcher at the end so the guest command exits.
#   env NESTED_LAUNCHER_PORT  host port forwarded to the launcher
#       NESTED_GDB_PORT       host port forwarded to the stubs' gdb port
#       NESTED_GDB_TESTS      the cargo test targets to run (default: all of them, below)
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
: "${NESTED_LAUNCHER_PORT:?run through scripts/nested/test.sh}" "${NESTED_GDB_PORT:?}"
export KVMDBG_TEST_STUB_LAUNCHER=127.0.0.1:$NESTED_LAUNCHER_PORT
export KVMDBG_TEST_STUB_GDB_PORT=$NESTED_GDB_PORT
cd "$ROOT"
rc=0
targets=()
for t in ${NESTED_GDB_TESTS:-gdb_protocol gdb_session gdb_firmware gdb_vs_qemu gdb_mi gdb_linux record_gdb lldb_session}; do
  targets+=(--test "$t")
done
cargo test --no-fail-fast "${targets[@]}" -- --test-threads=1 || rc=$?
echo "gdb-remote: cargo test exit status $rc"
# Stop the launcher (and any stub still running): the guest command ends, then the machine.
exec 3<>"/dev/tcp/127.0.0.1/$NESTED_LAUNCHER_PORT" && echo quit >&3 && cat <&3
exit $rc
