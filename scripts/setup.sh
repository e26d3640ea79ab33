#!/usr/bin/env bash
# Installs every tool kvmdbg's build and tests need, idempotently.
# Debian packages (host + arm64 multiarch), the aarch64 Rust std, and a cached Debian arm64
# kernel for the nested-KVM harness. Safe to run repeatedly: each step checks first.
set -euo pipefail

CACHE="${KVMDBG_CACHE:-/var/cache/kvmdbg}"
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

log() { echo "[setup] $*" >&2; }

# Host packages: tool -> package. Checked by package status, installed in one apt run.
HOST_PKGS=(
  qemu-system-arm            # qemu-system-aarch64: nested KVM machine and TCG reference
  qemu-user-static           # run aarch64 test binaries on the host when needed
  gcc-aarch64-linux-gnu      # linker for the aarch64 build of kvmdbg
  libc6-dev-arm64-cross      # crt1.o/libc.a for static aarch64 links (a Recommends, not pulled in)
  binutils-aarch64-linux-gnu # assembler/linker for firmware
  gdb-multiarch              # real gdb for integration tests
  cpio                       # initramfs for the nested machine
  jq                         # reads cargo --message-format=json in scripts/nested/build.sh
  lldb                       # lldb gdb-remote tests
  bc                         # arithmetic in scripts/bench-model.sh
  device-tree-compiler       # dtc: checks the generated DTB (tests/linux_inputs.rs)
)
ARM64_PKGS=(busybox-static:arm64)

missing=()
for p in "${HOST_PKGS[@]}" "${ARM64_PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -gt 0 ]; then
  if ! dpkg --print-foreign-architectures | grep -qx arm64; then
    log "adding arm64 architecture"
    $SUDO dpkg --add-architecture arm64
  fi
  log "installing: ${missing[*]}"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# aarch64 Rust standard library (cross build of the KVM backend and its tests).
if ! rustup target list --installed | grep -qx aarch64-unknown-linux-gnu; then
  log "adding rust target aarch64-unknown-linux-gnu"
  rustup target add aarch64-unknown-linux-gnu
fi
for c in clippy rustfmt; do
  if ! rustup component list --installed | grep -q "^$c"; then rustup component add "$c"; fi
done

# Debian arm64 kernel for the nested machine (KVM host inside qemu-system-aarch64).
$SUDO mkdir -p "$CACHE"
if [ ! -s "$CACHE/Image" ] || [ ! -d "$CACHE/modules" ]; then
  log "fetching the Debian arm64 kernel package"
  pkg=$(apt-cache search --names-only '^linux-image-6\.1\.0-[0-9]+-arm64$' 2>/dev/null | awk '{print $1}' | sort -V | tail -n1)
  if [ -z "$pkg" ]; then
    $SUDO apt-get update -q
    pkg=$(apt-cache search --names-only '^linux-image-6\.1\.0-[0-9]+-arm64$' | awk '{print $1}' | sort -V | tail -n1)
  fi
  [ -n "$pkg" ] || { echo "setup: no linux-image-6.1.0-*-arm64 package found" >&2; exit 1; }
  tmp=$(mktemp -d); chmod 755 "$tmp"
  (cd "$tmp" && apt-get download "$pkg:arm64" >/dev/null)
  dpkg-deb -x "$tmp"/*.deb "$tmp/root"
  $SUDO cp "$tmp"/root/boot/vmlinuz-* "$CACHE/Image"
  $SUDO rm -rf "$CACHE/modules"
  $SUDO cp -a "$tmp/root/lib/modules" "$CACHE/modules"
  echo "$pkg" | $SUDO tee "$CACHE/kernel-package" >/dev/null
  rm -rf "$tmp"
fi
log "ok ($(cat "$CACHE/kernel-package"))"
