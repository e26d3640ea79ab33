#!/usr/bin/env python3
"""Benchmark kvmdbg's gdb stub side by side with QEMU's (scripts/bench-gdb.sh runs this).

For each stub, on the same firmware ELF (started halted, gdb stub on loopback):
  - raw step rate: `s` packets per second from a minimal remote-protocol client;
  - memory read throughput: `m` packets of PACKET bytes over RAM, MB/s;
  - `stepi 2000` in gdb-multiarch (batch), seconds;
  - `next` over cdemo's `loop_1000` (1000 iterations on one source line, from the line to the
    function's end; range stepping makes it one round trip on kvmdbg) in gdb, seconds.
Prints one table with both stubs and the ratio qemu_time / kvmdbg_time (above 1: kvmdbg is
faster).
"""
import os, socket, subprocess, sys, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KVMDBG = os.path.join(ROOT, "target", "release", "kvmdbg")
STEPS = 2000
READ_BYTES = 4 << 20
PACKET = 2048  # QEMU's stub limits packets to 4 KiB (hex doubles the payload)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Rsp:
    def __init__(self, port):
        deadline = time.time() + 20
        while True:
            try:
                self.s = socket.create_connection(("127.0.0.1", port), timeout=20)
                break
            except OSError:
                if time.time() > deadline:
                    raise
                time.sleep(0.05)
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def _read(self):
        data = self.s.recv(65536)
        if not data:
            raise EOFError("stub closed the connection")
        self.buf += data

    def command(self, payload):
        body = payload.encode()
        self.s.sendall(b"$" + body + b"#%02x" % (sum(body) & 0xFF))
        while True:
            start = self.buf.find(b"$")
            end = self.buf.find(b"#", start + 1) if start >= 0 else -1
            if start >= 0 and end >= 0 and len(self.buf) >= end + 3:
                reply = self.buf[start + 1:end]
                self.buf = self.buf[end + 3:]
                self.s.sendall(b"+")
                return expand_rle(reply)
            self._read()


def expand_rle(data):
    """Undoes run-length encoding: `c*n` repeats c (n - 29) more times."""
    out = bytearray()
    i = 0
    while i < len(data):
        if data[i] == ord("*") and out and i + 1 < len(data):
            out += bytes([out[-1]]) * (data[i + 1] - 29)
            i += 2
        else:
            out.append(data[i])
            i += 1
    return bytes(out)


def start(kind, elf, port):
    if kind == "kvmdbg":
        cmd = [KVMDBG, "run", elf, "--backend", "model", "--gdb", f"tcp:127.0.0.1:{port}", "-S"]
    else:
        cmd = ["qemu-system-aarch64", "-M", "virt", "-cpu", "max,sve=off", "-nographic",
               "-monitor", "none", "-serial", "null", "-net", "none", "-S",
               "-gdb", f"tcp:127.0.0.1:{port}", "-kernel", elf]
    return subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


def raw_figures(kind, elf):
    port = free_port()
    proc = start(kind, elf, port)
    try:
        r = Rsp(port)
        r.command("qSupported:swbreak+;hwbreak+")
        r.command("?")
        t0 = time.perf_counter()
        for _ in range(STEPS):
            r.command("s")
        steps = STEPS / (time.perf_counter() - t0)
        t0 = time.perf_counter()
        addr = 0x40000000
        for off in range(0, READ_BYTES, PACKET):
            reply = r.command(f"m{addr + off:x},{PACKET:x}")
            if reply.startswith(b"E") or len(reply) != 2 * PACKET:
                raise RuntimeError(f"{kind}: memory read failed: {reply[:20]!r}")
        mbs = READ_BYTES / (time.perf_counter() - t0) / 1e6
        try:
            r.command("k")
        except (EOFError, OSError):
            pass
        return steps, mbs
    finally:
        proc.kill()
        proc.wait()


def gdb_seconds(kind, elf, commands, check=None):
    """Seconds the timed commands take; `check` = (gdb expression, expected printed value)
    is evaluated afterwards and must match (proof the commands did the work)."""
    port = free_port()
    proc = start(kind, elf, port)
    try:
        args = ["gdb-multiarch", "-nx", "-batch", "-ex", "set pagination off",
                "-ex", f"target remote 127.0.0.1:{port}"]
        setup, timed = commands
        for c in setup:
            args += ["-ex", c]
        args += ["-ex", "python import time; __t0 = time.perf_counter()"]
        for c in timed:
            args += ["-ex", c]
        args += ["-ex", "python print('ELAPSED %.6f' % (time.perf_counter() - __t0))"]
        if check:
            args += ["-ex", f"p {check[0]}"]
        args += ["-ex", "kill", elf]
        out = subprocess.run(args, capture_output=True, text=True, timeout=600).stdout
        if check and f"$1 = {check[1]}" not in out:
            raise RuntimeError(f"{kind}: after the timed commands {check[0]} is not {check[1]}:\n{out}")
        for line in out.splitlines():
            if line.startswith("ELAPSED "):
                return float(line.split()[1])
        raise RuntimeError(f"{kind}: gdb gave no timing:\n{out}")
    finally:
        proc.kill()
        proc.wait()


def main():
    fw = sys.argv[1]
    demo, cdemo = os.path.join(fw, "demo.elf"), os.path.join(fw, "cdemo.elf")
    rows = []
    figures = {}
    for kind in ("kvmdbg", "qemu"):
        steps, mbs = raw_figures(kind, demo)
        stepi = gdb_seconds(kind, demo, ([], [f"stepi {STEPS}"]))
        nxt = gdb_seconds(kind, cdemo, (["break loop_1000", "continue"], ["next"]),
                          check=("loop_acc", 499500))
        figures[kind] = (steps, mbs, stepi, nxt)
    k, q = figures["kvmdbg"], figures["qemu"]
    print(f"{'':36} {'kvmdbg':>12} {'qemu':>12} {'qemu/kvmdbg':>12}")
    print(f"{'raw single-step rate (steps/s)':36} {k[0]:12.0f} {q[0]:12.0f} {k[0] / q[0]:12.2f}  (rate: kvmdbg/qemu)")
    print(f"{f'memory read, {PACKET}-byte m packets (MB/s)':36} {k[1]:12.2f} {q[1]:12.2f} {k[1] / q[1]:12.2f}  (rate: kvmdbg/qemu)")
    print(f"{f'gdb stepi {STEPS} (s)':36} {k[2]:12.3f} {q[2]:12.3f} {q[2] / k[2]:12.2f}")
    print(f"{'gdb next over a 1000-iteration loop (s)':36} {k[3]:12.3f} {q[3]:12.3f} {q[3] / k[3]:12.2f}")
    print("kvmdbg on the model backend; ratios above 1 mean kvmdbg is faster")


if __name__ == "__main__":
    main()
