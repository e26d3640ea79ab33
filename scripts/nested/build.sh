#!/usr/bin/env bash
# Builds everything the nested-KVM machine runs and packs it into an initramfs.
#
#   scripts/nested/build.sh [--firmware DIR] [--out DIR] [--gzip] [--release]
#
# - cross-builds (static, aarch64) the `kvmdbg` binary, the lib unit tests and every integration
#   test whose target name starts with `kvm`; dev profile by default: the test binaries need the
#   dev-profile dependencies anyway, so `kvmdbg` shares them instead of compiling them twice;
# - stages them (debug info stripped, symbols kept for backtraces) with busybox (arm64), the
#   virtio-net modules of every cached host kernel (kernels.sh), the 6.1 kernel itself
#   gzip-compressed as /linux/Image.gz (the guest kernel of tests/kvm_linux.rs), firmware ELFs,
#   /init (init.sh) and /guest-tests.sh and /stub-launcher.sh under OUT/root;
# - packs OUT/root into OUT/initramfs.cpio (newc; .gz with --gzip), only when something changed.
#
# Inputs: CARGO_TARGET_DIR (default ./target), KVMDBG_CACHE (default /var/cache/kvmdbg; filled by
# scripts/setup.sh), NESTED_KERNELS (default "6.1 6.12", scripts/nested/kernels.sh),
# KVMDBG_FIRMWARE_DIR (default target/firmware, built by firmware/build.sh).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
TRIPLE=aarch64-unknown-linux-gnu
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
CACHE=${KVMDBG_CACHE:-/var/cache/kvmdbg}
FW_DIR=${KVMDBG_FIRMWARE_DIR:-$ROOT/target/firmware}
# shellcheck source=kernels.sh
. "$HERE/kernels.sh"
OUT=${KVMDBG_NESTED_DIR:-$TARGET_DIR/nested}
GZIP=0
PROFILE_ARGS=()
# Kernel modules for virtio-net over virtio-mmio (QEMU virt board); dependencies are added from
# each module's .modinfo "depends=" field, dependencies first.
NET_MODULES=(virtio_mmio virtio_net)

log() { echo "[nested-build] $*" >&2; }
die() { echo "[nested-build] error: $*" >&2; exit 1; }
usage() { sed -n '2,16p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }

while [ $# -gt 0 ]; do
  case $1 in
    --firmware) FW_DIR=${2:?--firmware needs a directory}; shift 2 ;;
    --out) OUT=${2:?--out needs a directory}; shift 2 ;;
    --gzip) GZIP=1; shift ;;
    --release) PROFILE_ARGS=(--release); shift ;;
    -h|--help) usage 0 ;;
    *) echo "unknown option: $1" >&2; usage 2 ;;
  esac
done

# True when $1 is an aarch64 ELF (e_machine at offset 18 = 183, EM_AARCH64 in the ELF gABI).
is_aarch64_elf() {
  [ "$(od -An -tx1 -j0 -N4 "$1" | tr -d ' ')" = 7f454c46 ] &&
    [ "$(od -An -tx1 -j18 -N2 "$1" | tr -d ' ')" = b700 ]
}

need_tools() {
  local t missing=()
  for t in cargo jq cpio od aarch64-linux-gnu-gcc aarch64-linux-gnu-strip aarch64-linux-gnu-objcopy; do
    command -v "$t" >/dev/null || missing+=("$t")
  done
  [ ${#missing[@]} -eq 0 ] || die "missing tools: ${missing[*]} (run scripts/setup.sh)"
}

# Copies $1 to $2 only if the content differs, so unchanged inputs keep their mtime.
CHANGED=0
stage() {
  local src=$1 dst=$2 mode=${3:-0644}
  mkdir -p "$(dirname "$dst")"
  if ! cmp -s "$src" "$dst"; then
    install -m "$mode" "$src" "$dst"
    CHANGED=1
  fi
  WANTED+=("$dst")
}

# Stages an aarch64 executable with its debug info stripped (symbol names stay for backtraces).
stage_exe() {
  local src=$1 dst=$2 tmp
  is_aarch64_elf "$src" || die "$src is not an aarch64 ELF"
  tmp=$(mktemp "$OUT/.strip.XXXXXX")
  aarch64-linux-gnu-strip --strip-debug -o "$tmp" "$src"
  stage "$tmp" "$dst" 0755
  rm -f "$tmp"
}

# Runs cargo; prints the executables of the artifacts selected by the jq filter $1.
cargo_json() {
  local filter=$1; shift
  (cd "$ROOT" && cargo "$@" --target "$TRIPLE" "${PROFILE_ARGS[@]}" \
      --message-format=json-render-diagnostics) |
    jq -r "select(.reason == \"compiler-artifact\" and .executable != null) | $filter"
}

build_rust() {
  local tests=() names=() t
  while read -r t; do tests+=(--test "$t"); names+=("$t"); done < <(
    cd "$ROOT" && cargo metadata --no-deps --format-version 1 |
      jq -r '.packages[].targets[] | select(.kind == ["test"] and ((.name | startswith("kvm")) or (.name | startswith("step_over_mmio")))) | .name')
  log "cargo build kvmdbg + cargo test --no-run (lib ${names[*]}) for $TRIPLE"
  KVMDBG_EXE=$(cargo_json 'select(.target.kind == ["bin"] and .target.name == "kvmdbg") | .executable' \
    build --bin kvmdbg) || die "cargo build for $TRIPLE failed"
  TEST_EXES=$(cargo_json 'select(.profile.test) | "\(.target.name)\(if .target.kind == ["lib"] then "-lib" else "" end) \(.executable)"' \
    test --no-run --lib "${tests[@]}") || die "cargo test --no-run for $TRIPLE failed"
  [ -n "$KVMDBG_EXE" ] || die "cargo reported no kvmdbg executable"
}

# The virtio-net modules of every cached host kernel (kernels.sh), staged under
# /lib/modules/<release>/ (init.sh picks the running kernel's) with their load order, so one
# initramfs serves them all; a kernel in NESTED_KERNELS must be cached.
stage_modules() {
  local v
  for v in $NESTED_KERNELS_ALL; do
    if [ -n "$(nested_kernel_release "$v")" ]; then
      stage_kernel_modules "$v"
    elif [[ " $NESTED_KERNELS " == *" $v "* ]]; then
      die "host kernel $v is not cached in $(nested_kernel_dir "$v") (run scripts/setup.sh)"
    fi
  done
}

# Stages the modules of kernel version $1 from its cache directory (lib/modules or, on 6.12,
# usr/lib/modules of the package: scripts/setup.sh copies either to modules/). Compressed
# modules (.ko.xz on 6.12) are decompressed here: busybox insmod loads plain ELF only.
stage_kernel_modules() {
  local release moddir name order=() seen=" "
  release=$(nested_kernel_release "$1") || true
  [ -n "$release" ] || die "no modules for kernel $1 under $(nested_kernel_dir "$1")/modules (run scripts/setup.sh)"
  moddir=$(nested_kernel_dir "$1")/modules/$release
  add_module() {
    local m=$1 file ko deps d
    case $seen in *" $m "*) return ;; esac
    seen="$seen$m "
    file=$(find "$moddir" -type f \( -name "$m.ko" -o -name "$m.ko.xz" -o -name "$m.ko.zst" \
      -o -name "${m//_/-}.ko" -o -name "${m//_/-}.ko.xz" \) | head -n1)
    [ -n "$file" ] || die "module $m not found under $moddir"
    ko=$(mktemp "$OUT/.ko.XXXXXX")
    case $file in
      *.xz) xz -dc "$file" >"$ko" ;;
      *.zst) zstd -qdc "$file" >"$ko" ;;
      *) cp "$file" "$ko" ;;
    esac
    deps=$(aarch64-linux-gnu-objcopy -O binary --only-section=.modinfo "$ko" /dev/stdout |
      tr '\0' '\n' | sed -n 's/^depends=//p' | tr ',' ' ')
    for d in $deps; do add_module "$d"; done
    stage "$ko" "$OUT/root/lib/modules/$release/$m.ko"
    rm -f "$ko"
    order+=("$m")
  }
  for name in "${NET_MODULES[@]}"; do add_module "$name"; done
  printf '%s\n' "${order[@]}" >"$OUT/.order"
  stage "$OUT/.order" "$OUT/root/lib/modules/$release/order"
  log "net modules of $release (load order): ${order[*]}"
}

# The cached kernel, gzip'd (deterministic: no name or time in the header), as the guest
# kernel that tests/kvm_linux.rs boots with kvmdbg on KVM.
stage_kernel() {
  local gz
  [ -s "$CACHE/Image" ] || die "no kernel at $CACHE/Image (run scripts/setup.sh)"
  gz=$OUT/.Image.gz
  if [ ! -s "$gz" ] || [ "$CACHE/Image" -nt "$gz" ]; then
    gzip -n -6 <"$CACHE/Image" >"$gz.tmp" && mv "$gz.tmp" "$gz"
  fi
  stage "$gz" "$OUT/root/linux/Image.gz"
  log "guest kernel: /linux/Image.gz ($(du -h "$gz" | cut -f1)) from $CACHE/Image"
}

stage_firmware() {
  local f n=0
  if [ ! -d "$FW_DIR" ]; then
    log "firmware directory $FW_DIR not found: no /fw in the guest (build it with firmware/build.sh," \
      "or pass --firmware DIR); guest checks that need firmware will SKIP (FAIL under CI=true)"
    return
  fi
  for f in "$FW_DIR"/*.elf; do
    [ -e "$f" ] || continue
    stage "$f" "$OUT/root/fw/$(basename "$f")"
    n=$((n + 1))
  done
  log "firmware: $n ELF file(s) from $FW_DIR"
}

# Removes staged files that are no longer wanted (e.g. a deleted test).
prune() {
  local f keep
  keep=$(printf '%s\n' "${WANTED[@]}" | sort)
  while read -r f; do
    if ! grep -qxF "$f" <<<"$keep"; then rm -f "$f"; CHANGED=1; log "removed stale $f"; fi
  done < <(find "$OUT/root" -type f | sort)
}

pack() {
  local cpio=$OUT/initramfs.cpio other=$OUT/initramfs.cpio.gz out
  [ "$GZIP" = 1 ] && { cpio=$OUT/initramfs.cpio.gz; other=$OUT/initramfs.cpio; }
  rm -f "$other"
  if [ "$CHANGED" = 0 ] && [ -s "$cpio" ] && [ -z "$(find "$OUT/root" -newer "$cpio" | head -n1)" ]; then
    log "initramfs up to date: $cpio"
  else
    out=$(mktemp "$OUT/.cpio.XXXXXX")
    (cd "$OUT/root" && find . -mindepth 1 | LC_ALL=C sort |
      cpio --quiet -o -H newc --owner=0:0 --reproducible) >"$out"
    if [ "$GZIP" = 1 ]; then gzip -n -6 <"$out" >"$out.gz" && mv "$out.gz" "$out"; fi
    mv "$out" "$cpio"
    log "initramfs: $cpio ($(du -h "$cpio" | cut -f1))"
  fi
  ln -sfn "$(basename "$cpio")" "$OUT/initramfs"
}

main() {
  local busybox=/bin/busybox name exe
  need_tools
  mkdir -p "$OUT/root"
  WANTED=()
  build_rust
  is_aarch64_elf "$busybox" || die "$busybox is not the arm64 busybox-static (run scripts/setup.sh)"
  stage "$busybox" "$OUT/root/bin/busybox" 0755
  stage "$HERE/init.sh" "$OUT/root/init" 0755
  stage "$HERE/guest-tests.sh" "$OUT/root/guest-tests.sh" 0755
  stage "$HERE/stub-launcher.sh" "$OUT/root/stub-launcher.sh" 0755
  stage_exe "$KVMDBG_EXE" "$OUT/root/bin/kvmdbg"
  while read -r name exe; do
    [ -n "$name" ] && stage_exe "$exe" "$OUT/root/tests/$name"
  done <<<"$TEST_EXES"
  log "test binaries: $(cd "$OUT/root/tests" && echo *)"
  stage_modules
  stage_kernel
  stage_firmware
  prune
  pack
}

main
