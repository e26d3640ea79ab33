#!/usr/bin/env bash
# Builds every kvmdbg test firmware: each top-level firmware/<name>.S, linked with all of
# firmware/common/*.S, becomes OUTDIR/<name>.elf (with symbols and DWARF line info).
#
#   usage: firmware/build.sh [OUTDIR]        (default OUTDIR: <repo>/target/firmware)
#
# Output is byte-for-byte reproducible for a given binutils: sources are named relative to
# firmware/, the repository's absolute path is mapped to "." in the debug info, inputs are
# taken in a fixed (C locale) order, and no build id or timestamp is written.
# Tools: aarch64-linux-gnu-as / -ld from binutils-aarch64-linux-gnu (scripts/setup.sh);
# override with AARCH64_AS / AARCH64_LD.
set -euo pipefail
export LC_ALL=C

FW_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$FW_DIR/.." && pwd)"
OUT="${1:-$ROOT/target/firmware}"
AS="${AARCH64_AS:-aarch64-linux-gnu-as}"
LD="${AARCH64_LD:-aarch64-linux-gnu-ld}"
CC="${AARCH64_CC:-aarch64-linux-gnu-gcc}"

for tool in "$AS" "$LD" "$CC"; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "build.sh: $tool not found (install binutils-aarch64-linux-gnu, see scripts/setup.sh)" >&2
    exit 127
  fi
done

mkdir -p "$OUT/obj/common"
OUT="$(cd "$OUT" && pwd)"
OBJ="$OUT/obj"
cd "$FW_DIR"

ASFLAGS=(-g --noexecstack -I common --debug-prefix-map "$ROOT=.")
LDFLAGS=(-T common/link.ld --build-id=none -z max-page-size=4096 -z noexecstack)

common_objs=()
for src in common/*.S; do
  obj="$OBJ/common/$(basename "${src%.S}").o"
  "$AS" "${ASFLAGS[@]}" -o "$obj" "$src"
  common_objs+=("$obj")
done

count=0
for src in *.S; do
  name="${src%.S}"
  "$AS" "${ASFLAGS[@]}" -o "$OBJ/$name.o" "$src"
  "$LD" "${LDFLAGS[@]}" -o "$OUT/$name.elf.tmp" "$OBJ/$name.o" "${common_objs[@]}"
  mv -f "$OUT/$name.elf.tmp" "$OUT/$name.elf"
  echo "built $OUT/$name.elf"
  count=$((count + 1))
done
# Firmware written in C: compiled at -O2 like ordinary freestanding code (the compiler's own
# choices, SIMD included), with the same common objects and layout.
CFLAGS=(-O2 -g -ffreestanding -fno-builtin -nostdlib -fno-pic -mstrict-align
  -ffile-prefix-map="$ROOT=.")
for src in *.c; do
  [ -e "$src" ] || continue
  name="${src%.c}"
  "$CC" "${CFLAGS[@]}" -c -o "$OBJ/$name.o" "$src"
  "$LD" "${LDFLAGS[@]}" -o "$OUT/$name.elf.tmp" "$OBJ/$name.o" "${common_objs[@]}"
  mv -f "$OUT/$name.elf.tmp" "$OUT/$name.elf"
  echo "built $OUT/$name.elf"
  count=$((count + 1))
done
if [ "$count" -eq 0 ]; then
  echo "build.sh: no firmware sources in $FW_DIR" >&2
  exit 1
fi
