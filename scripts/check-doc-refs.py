#!/usr/bin/env python3
"""Checks that the docs and source comments name only files and Rust items that exist.

Scans docs/*.md, README.md, firmware/README.md and every full-line comment (`//`, `///`,
`//!`) in src/ and tests/ for

- file references (`src/gdb/server.rs`, `cpu/debug.rs`, `ram.rs`, `scripts/test.sh`,
  `[text](docs/testing.md)`): each must be a file of this repository, found relative to the
  referring file, to the repository root, or as the tail of a tracked path;
- Rust paths in backticks (`debug::inject::inject_sync_exception`, `Outcome::of_stop`,
  `crate::test_rng`): the leading modules must exist, the item after the last module must be
  defined or imported in that module, and any further segments (methods, variants, fields)
  must be defined somewhere in the crate or its tests.

And docs/architecture.md's module map: its layer table names every module of src/ down to the
files of each layer and of backend/kvm and backend/model (test-only modules aside), and each
bare module name in backticks there is a module that exists.

References into other projects (Linux, QEMU, KVM documentation) are allowed only when listed
in EXTERNAL_FILES; paths into external crates are skipped by crate name (Cargo.toml). Exits 1
and lists every unresolved reference as `file:line: reference (reason)`.

Usage: scripts/check-doc-refs.py   (from anywhere; no arguments)
"""

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Files of other projects that our comments cite for facts. Each is checked against this list
# exactly, so a typo in one of our own paths is not hidden by a pattern.
EXTERNAL_FILES = {
    # Linux
    "api.rst",
    "Documentation/virt/kvm/api.rst",
    "arm-vgic-v3.rst",
    "devices/vm.rst",
    "arch/arm64/include/uapi/asm/kvm.h",
    "arch/arm64/kvm/debug.c",
    "arch/arm64/kvm/guest.c",
    "Documentation/arch/arm64/booting.rst",
    "booting.rst",
    "drivers/of/fdt.c",
    "arch/arm64/include/uapi/asm/setup.h",
    "arch/arm64/include/asm/image.h",
    "drivers/firmware/efi/libstub/zboot-header.S",
    "zboot-header.S",
    "arch/arm64/kernel/head.S",
    "Documentation/driver-api/early-userspace/buffer-format.rst",
    "buffer-format.rst",
    "Documentation/arch/arm64/memory.rst",
    "vmlinux-gdb.py",
    "include/linux/export.h",
    "include/linux/jiffies.h",
    "include/uapi/asm-generic/unistd.h",
    "include/uapi/linux/time.h",
    "arch/arm64/kvm/hyp/include/hyp/adjust_pc.h",
    "arch/arm64/kvm/hypercalls.c",
    "arch/arm64/kvm/mmio.c",
    "arch/arm64/kvm/mmu.c",
    "arch/arm64/kvm/psci.c",
    "arch/arm64/kvm/reset.c",
    "arch/arm64/kvm/sys_regs.c",
    "sys_regs.c",
    "handle_exit.c",
    "debug-exceptions.c",
    "include/uapi/linux/kvm.h",
    "include/kvm/arm_psci.h",
    "include/dt-bindings/interrupt-controller/irq.h",
    "arm/psci.yaml",
    "interrupt-controller/arm,gic-v3.yaml",
    "arm,gic-v3.yaml",
    "timer/arm,arch_timer.yaml",
    "serial/arm,pl011.yaml",
    # QEMU
    "hw/arm/virt.c",
    "hw/arm/virt.h",
    "hw/arm/boot.c",
    "hw/char/pl011.c",
    "memory.c",
    "softmmu/memory.c",
    "target/arm/internals.h",
    "target/arm/translate-a64.c",
}

KEYWORDS = {"unsafe", "mod", "crate", "self", "super", "async", "const", "static"}
FILE_EXTS = "rs|sh|py|md|toml|S|ld|c|h|rst|json|yml|yaml"
FILE_RE = re.compile(
    r"(?<![\w/.-])((?:\.\.\./)?(?:[\w.,-]+/)*[\w-]+(?:[.,][\w-]+)*\.(?:%s))(?![\w/])" % FILE_EXTS
)
CODE_RE = re.compile(r"`([^`\n]+)`")
PATH_RE = re.compile(r"(?<![\w:])((?:[A-Za-z_]\w*::)+[A-Za-z_]\w*)")
ITEM_RE = re.compile(
    r"\b(?:fn|struct|enum|union|trait|type|const|static|mod)\s+(\w+)|macro_rules!\s*(\w+)"
)
MEMBER_RE = re.compile(r"^\s*(?:pub(?:\([\w:]+\))?\s+)?(\w+)\s*[,({:=]", re.M)
USE_RE = re.compile(r"\buse\s+([^;]*);", re.S)


def tracked_files():
    out = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT, check=True, capture_output=True, text=True,
    ).stdout
    return [p for p in out.splitlines() if (ROOT / p).is_file()]


def external_crates():
    names = {"std", "core", "alloc", "bool", "char", "str", "f32", "f64"}
    names.update("%s%s" % (s, b) for s in "ui" for b in ("8", "16", "32", "64", "128", "size"))
    for line in (ROOT / "Cargo.toml").read_text().splitlines():
        m = re.match(r"\s*([A-Za-z][\w-]*)\s*=\s*[\"{]", line)
        if m:
            names.add(m.group(1).replace("-", "_"))
    return names


class Crate:
    """Modules and item names of src/ and tests/, read with regexes (no full parse)."""

    def __init__(self, files):
        self.modules = {}  # module path tuple -> file (tests/ under the root "<tests>")
        self.by_name = {}  # last module segment -> [module path tuple]
        self.scope = {}  # module path tuple -> names defined or imported there
        self.inline = set()  # modules written inline (`mod name { ... }`)
        self.defined = set()  # every item defined anywhere
        self.members = set()  # every defined or member-like name anywhere
        self.texts = {}  # module path tuple -> texts of its files (lib.rs and main.rs share ())
        for f in files:
            if not f.endswith(".rs") or not f.startswith(("src/", "tests/")):
                continue
            parts = f[:-3].split("/")[1:]
            if parts[-1] in ("mod", "lib", "main"):
                parts = parts[:-1]
            # Each test target is a crate of its own: its modules under a root of their own.
            key = tuple(parts) if f.startswith("src/") else ("<tests>",) + tuple(parts)
            text = (ROOT / f).read_text()
            names = {a or b for a, b in ITEM_RE.findall(text)}
            self.defined.update(names)
            for use in USE_RE.findall(text):
                names.update(re.findall(r"\w+", use))
            self.modules[key] = f
            self.texts.setdefault(key, []).append(text)
            self.scope.setdefault(key, set()).update(names)
            if key and key != ("<tests>",):
                self.by_name.setdefault(key[-1], []).append(key)
            self.members.update(names)
            self.members.update(MEMBER_RE.findall(text))
            # Inline `mod name { ... }` blocks: their items count as the file's own.
            for m in re.findall(r"\bmod\s+(\w+)\s*\{", text):
                self.inline.add(key + (m,))
                self.modules.setdefault(key + (m,), f)
                self.scope.setdefault(key + (m,), set()).update(names)
                self.by_name.setdefault(m, []).append(key + (m,))

    def resolve(self, segs):
        """None when `segs` names something that exists, else the reason it does not."""
        if segs[0] == "crate":
            starts = [((), segs[1:])]
        else:
            if segs[0] in ("self", "super"):
                segs = segs[1:]
            keys = sorted(self.by_name.get(segs[0], []), key=len)  # top-level first
            starts = [(key, segs[1:]) for key in keys]
        if not starts and segs[0] not in self.defined and segs[0] in self.members:
            return None  # a type imported from an external crate: not ours to check
        if not starts:  # `Type::member`
            missing = [s for s in segs if s not in self.members]
            return "no item named %s" % missing[0] if missing else None
        reasons = [self.walk(module, rest) for module, rest in starts]
        return None if None in reasons else reasons[0]

    def test_only(self, key):
        """True for a `*_tests.rs` file or a module its parent declares under `#[cfg(test)]`."""
        decl = re.compile(r"#\[cfg\(test\)\]\s*(?:pub(?:\([\w:]+\))?\s+)?mod\s+%s\s*;" % key[-1])
        return key[-1].endswith("_tests") or any(
            decl.search(t) for t in self.texts.get(key[:-1], [])
        )

    def walk(self, module, rest):
        for i, seg in enumerate(rest):
            if module + (seg,) in self.modules:
                module = module + (seg,)
                continue
            if seg not in self.scope.get(module, set()):
                where = "::".join(module) or "the crate root"
                return "%s is not defined or imported in %s" % (seg, where)
            missing = [s for s in rest[i + 1:] if s not in self.members]
            return "no item named %s" % missing[0] if missing else None
        return None


def module_map_errors(crate):
    """docs/architecture.md's module map: it names every module of src/ down to the files of
    each layer and of backend/kvm and backend/model (test-only modules aside), and each module
    name in backticks in its layer table is a module that exists."""
    doc = "docs/architecture.md"
    lines = (ROOT / doc).read_text().splitlines()
    named = {code.rstrip("/") for line in lines for code in CODE_RE.findall(line)}
    errors = []
    for n, line in enumerate(lines, 1):
        if not line.startswith("| `"):
            continue
        for code in CODE_RE.findall(line):
            name = code.rstrip("/")
            if re.fullmatch(r"[a-z_]+/?", code) and name not in crate.by_name.keys() | KEYWORDS:
                errors.append("%s:%d: `%s` (no such module)" % (doc, n, code))
    for key, f in sorted(crate.modules.items()):
        if not f.startswith("src/") or not key or key in crate.inline or crate.test_only(key):
            continue
        mapped = len(key) <= 2 or (len(key) == 3 and key[:2] in (("backend", "kvm"), ("backend", "model")))
        if mapped and key[-1] not in named:
            errors.append("%s: module %s (%s) is missing from the module map" % (doc, "::".join(key), f))
    return errors


def comment_lines(path):
    """(line number, text) of the doc text in `path`: all of a Markdown file, the full-line
    comments of a Rust file."""
    lines = (ROOT / path).read_text().splitlines()
    if path.endswith(".md"):
        return list(enumerate(lines, 1))
    out = []
    for n, line in enumerate(lines, 1):
        m = re.match(r"\s*//[/!]?(.*)", line)
        if m:
            out.append((n, m.group(1)))
    return out


def file_exists(ref, referrer, files, tails):
    ref = ref.removeprefix(".../")
    if ref in EXTERNAL_FILES:
        return True
    for base in (ROOT / referrer).parent, ROOT:
        if (base / ref).is_file():
            return True
    return ref in tails


def main():
    files = tracked_files()
    tails = set()
    for f in files:
        parts = f.split("/")
        for i in range(len(parts)):
            tails.add("/".join(parts[i:]))
    crate = Crate(files)
    crates = external_crates()
    sources = sorted(
        f for f in files
        if f in ("README.md", "firmware/README.md")
        or (f.startswith("docs/") and f.endswith(".md"))
        or (f.startswith(("src/", "tests/")) and f.endswith(".rs"))
    )
    errors = []
    checked = 0
    for src in sources:
        for n, text in comment_lines(src):
            for ref in FILE_RE.findall(text):
                checked += 1
                if not file_exists(ref, src, files, tails):
                    errors.append("%s:%d: %s (no such file)" % (src, n, ref))
            for code in CODE_RE.findall(text):
                for path in PATH_RE.findall(code):
                    segs = path.split("::")
                    if segs[0] in crates:
                        continue
                    checked += 1
                    reason = crate.resolve(segs)
                    if reason:
                        errors.append("%s:%d: %s (%s)" % (src, n, path, reason))
    errors += module_map_errors(crate)
    for e in errors:
        print(e)
    print(
        "check-doc-refs: %d references in %d files, %d unresolved"
        % (checked, len(sources), len(errors))
    )
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
