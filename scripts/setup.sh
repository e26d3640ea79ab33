#!/usr/bin/env bash
# Installs every tool kvmdbg's build and tests need, idempotently.
# Debian packages (host + arm64 multiarch), the aarch64 Rust std, and the cached Debian arm64
# kernels for the nested-KVM harness (Debian 12's 6.1 and Debian 13's 6.12). Safe to run
# repeatedly: each step checks first.
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
  valgrind                   # callgrind: host instructions per guest instruction (bench-model.sh)
  xz-utils                   # the 6.12 kernel's modules are .ko.xz (scripts/nested/build.sh)
  python3                    # scripts/check-doc-refs.py, scripts/nested/test.sh, bench_gdb.py
  g++                        # libFuzzer, built by the fuzz targets' libfuzzer-sys
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

# Debian arm64 kernels for the nested machine (the KVM host inside qemu-system-aarch64): the
# nested suite runs on each (scripts/nested/kernels.sh). Each cache directory holds `Image`,
# `modules/<release>/` and `kernel-package` (the package it came from).

# Copies the kernel and its modules out of the package file $1 into the cache directory $2.
# The modules are under lib/modules (6.1) or usr/lib/modules (merged /usr, 6.12).
unpack_kernel() {
  local deb=$1 dest=$2 root
  root=$(mktemp -d)
  dpkg-deb -x "$deb" "$root"
  $SUDO mkdir -p "$dest"
  $SUDO cp "$root"/boot/vmlinuz-* "$dest/Image"
  $SUDO rm -rf "$dest/modules"
  if [ -d "$root/usr/lib/modules" ]; then
    $SUDO cp -a "$root/usr/lib/modules" "$dest/modules"
  else
    $SUDO cp -a "$root/lib/modules" "$dest/modules"
  fi
  rm -rf "$root"
}

# As root, apt downloads as the unprivileged _apt user: let it write into directory $1.
let_apt_write() {
  if [ "$(id -u)" = 0 ]; then chown _apt "$1" 2>/dev/null || true; fi
}

# Newest package matching the extended regex $1 in the package lists apt (with the environment
# given) sees.
newest_package() {
  apt-cache search --names-only "$1" 2>/dev/null | awk '{print $1}' | sort -V | tail -n1
}

# The host release's kernel (6.1 on Debian 12) from the host's own apt sources.
fetch_host_kernel() {
  local dest=$1 regex=$2 pkg tmp
  pkg=$(newest_package "$regex")
  if [ -z "$pkg" ]; then
    $SUDO apt-get update -q
    pkg=$(newest_package "$regex")
  fi
  [ -n "$pkg" ] || { echo "setup: no package matching $regex found" >&2; exit 1; }
  tmp=$(mktemp -d); chmod 755 "$tmp"
  let_apt_write "$tmp"
  (cd "$tmp" && apt-get download "$pkg:arm64" >/dev/null)
  unpack_kernel "$tmp"/*.deb "$dest"
  echo "$pkg" | $SUDO tee "$dest/kernel-package" >/dev/null
  rm -rf "$tmp"
}

# The archive URI the host's apt uses for its own release (deb822 and one-line sources alike),
# so that other suites come from the same mirror and no mirror is named here.
host_archive_uri() {
  local codename
  codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
  apt-get indextargets --format '$(RELEASE) $(REPO_URI)' 'Identifier: Packages' 2>/dev/null |
    awk -v c="$codename" '$1 == c { print $2; exit }'
}

# A kernel from another suite ($2, e.g. trixie for 6.12) of the host's archive, through a
# private apt configuration (APT_CONFIG, read before anything else): its own sources list with
# that one suite, package lists, cache and an empty dpkg status, none of the host's apt.conf.d
# (no update hooks, no extra index targets) except its Acquire settings (proxies, validity
# checks). The host's apt sources, lists and preferences are not touched.
fetch_suite_kernel() {
  local dest=$1 suite=$2 regex=$3 uri work pkg
  uri=$(host_archive_uri)
  [ -n "$uri" ] || { echo "setup: no Debian archive for this release in apt's sources (apt-get indextargets)" >&2; exit 1; }
  work=$(mktemp -d); chmod 755 "$work"
  mkdir -p "$work/lists/partial" "$work/cache/archives/partial" "$work/empty" "$work/deb"
  let_apt_write "$work/deb"
  : >"$work/status"
  echo "deb [arch=arm64] $uri $suite main" >"$work/sources.list"
  {
    apt-config dump Acquire | grep -v '^Acquire::IndexTargets'
    cat <<EOF
Dir::Etc::main "/dev/null";
Dir::Etc::parts "$work/empty";
Dir::Etc::sourcelist "$work/sources.list";
Dir::Etc::sourceparts "$work/empty";
Dir::Etc::preferences "/dev/null";
Dir::Etc::preferencesparts "$work/empty";
Dir::State::lists "$work/lists";
Dir::State::status "$work/status";
Dir::Cache "$work/cache";
APT::Architecture "arm64";
APT::Architectures { "arm64"; };
EOF
  } >"$work/apt.conf"
  log "package lists of $suite (arm64, private apt configuration in $work)"
  APT_CONFIG=$work/apt.conf apt-get update -q >/dev/null
  pkg=$(APT_CONFIG=$work/apt.conf newest_package "$regex")
  [ -n "$pkg" ] || { echo "setup: no package matching $regex in $suite" >&2; exit 1; }
  log "downloading $pkg from $suite"
  (cd "$work/deb" && APT_CONFIG=$work/apt.conf apt-get download -q "$pkg" >/dev/null)
  unpack_kernel "$work"/deb/*.deb "$dest"
  echo "$pkg ($suite)" | $SUDO tee "$dest/kernel-package" >/dev/null
  rm -rf "$work"
}

# 6.1 (Debian 12) stays at the top of the cache, where the tests have always found it.
$SUDO mkdir -p "$CACHE"
if [ ! -s "$CACHE/Image" ] || [ ! -d "$CACHE/modules" ]; then
  log "fetching the Debian 12 arm64 kernel package (6.1)"
  fetch_host_kernel "$CACHE" '^linux-image-6\.1\.0-[0-9]+-arm64$'
fi
# 6.12 (Debian 13, trixie): modules are .ko.xz under usr/lib/modules.
if [ ! -s "$CACHE/6.12/Image" ] || [ ! -d "$CACHE/6.12/modules" ]; then
  log "fetching the Debian 13 arm64 kernel package (6.12)"
  fetch_suite_kernel "$CACHE/6.12" trixie '^linux-image-6\.12\.[0-9]+\+[a-z0-9]+-arm64$'
fi
# cargo-fuzz for scripts/fuzz.sh (the fuzz targets build on stable with RUSTC_BOOTSTRAP=1;
# libfuzzer-sys compiles libFuzzer with the host C++ compiler).
if ! command -v cargo-fuzz >/dev/null 2>&1; then
  log "installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi

log "ok ($(cat "$CACHE/kernel-package"); $(cat "$CACHE/6.12/kernel-package"))"
