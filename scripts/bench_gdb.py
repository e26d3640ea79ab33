#!/usr/bin/env python3
"""Benchmark kvmdbg's gdb stub side by side with QEMU's (scripts/bench-gdb.sh runs this).

For each stub, on the same firmware ELF (started halted, gdb stub on loopback TCP, the
client negotiating as gdb does: qSupported, QStartNoAckMode when offered):
  - raw step rate: `s` packets per second from a minimal remote-protocol client;
  - small-packet latency: the mean round trip of `m<ram>,4`, microseconds;
  - write throughput: 8 MiB of pseudo-random data into RAM with the stub's largest write
    packets (`X` when the stub accepts it, as gdb prefers, else `M`), MB/s;
  - read throughput: the same 8 MiB read back with the largest `m` packets (PacketSize / 2
    bytes, what gdb asks for) and compared byte for byte with what was written, MB/s
    (packets are built before the clock starts and replies decoded after it stops, so the
    Python client's own encoding is not measured);
  - binary read throughput: the same with `x` packets (PacketSize bytes asked, the reply `b`
    and the escaped data) when the stub offers `binary-upload+` in qSupported, as GDB 16 and
    later then read; with `m` packets otherwise (what any gdb uses with that stub);
  - `stepi 2000` in gdb-multiarch (batch), seconds;
  - `next` over cdemo's `loop_1000` (1000 iterations on one source line; range stepping
    makes it one round trip on kvmdbg) in gdb, seconds (both gdb figures skipped with
    BENCH_QUICK=1).
KVMDBG=path benchmarks another kvmdbg binary (e.g. a build of an earlier commit).
And, with the same client, the machine's loopback round-trip rate against a trivial echo
server (target/release/examples/echo): the physical limit of a one-packet-per-step protocol.
Prints one table with both stubs, kvmdbg/qemu ratios, and the step rate as a share of the
loopback rate.
"""
import os, random, re, socket, subprocess, sys, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RELEASE = os.path.join(os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target")), "release")
KVMDBG = os.environ.get("KVMDBG", os.path.join(RELEASE, "kvmdbg"))
ECHO = os.path.join(RELEASE, "examples", "echo")
STEPS = 5000
SMALL_READS = 5000
ECHOES = 20000
XFER_BYTES = 8 << 20
XFER_ADDR = 0x4100_0000  # RAM base + 16 MiB: above the firmware, inside 128 MiB of RAM
SEED = 13
# BENCH_QUICK=1: the raw-protocol figures only (no gdb-multiarch runs).
QUICK = os.environ.get("BENCH_QUICK") == "1"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def connect(port):
    deadline = time.time() + 20
    while True:
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=60)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return s
        except OSError:
            if time.time() > deadline:
                raise
            time.sleep(0.05)


def checksum(body):
    return b"#%02x" % (sum(body) & 0xFF)


SPECIAL = re.compile(rb"[#$}*]")


def escape_binary(data):
    """RSP binary escaping: `}` then the byte xor 0x20 for # $ } *."""
    return SPECIAL.sub(lambda m: bytes((0x7D, m.group()[0] ^ 0x20)), data)


def specials(data):
    return sum(data.count(c) for c in (b"#", b"$", b"}", b"*"))


class Rsp:
    def __init__(self, port):
        self.s = connect(port)
        self.buf = bytearray()
        self.ack = True
        # One receive buffer for the whole run: `recv(1 << 20)` would allocate (and fault in)
        # a megabyte per call, which cost the client 20 us a packet, more than a stub's step.
        self.chunk = memoryview(bytearray(1 << 20))

    def _read(self):
        n = self.s.recv_into(self.chunk)
        if not n:
            raise EOFError("stub closed the connection")
        self.buf += self.chunk[:n]

    def command(self, body):
        """Sends one packet (str or bytes payload) and returns the reply payload."""
        if isinstance(body, str):
            body = body.encode()
        return expand_rle(self.exchange(b"$" + body + checksum(body)))

    def exchange(self, frame):
        """Sends a framed packet and returns the raw reply payload (run-length encoded)."""
        self.s.sendall(frame)
        while True:
            start = self.buf.find(b"$")
            end = self.buf.find(b"#", start + 1) if start >= 0 else -1
            if start >= 0 and end >= 0 and len(self.buf) >= end + 3:
                reply = bytes(self.buf[start + 1:end])
                del self.buf[:end + 3]
                if self.ack:
                    self.s.sendall(b"+")
                return reply
            self._read()

    def negotiate(self):
        """qSupported as gdb sends it; returns the stub's PacketSize. Enters no-ack mode
        when the stub offers it (gdb does); notes whether it offers `x` (binary-upload+)."""
        reply = self.command("qSupported:multiprocess+;swbreak+;hwbreak+;vContSupported+")
        feats = dict(f.split("=", 1) if "=" in f else (f, "") for f in reply.decode().split(";"))
        if "QStartNoAckMode+" in feats and self.command("QStartNoAckMode") == b"OK":
            self.ack = False
        self.binary_upload = "binary-upload+" in feats
        self.command("?")
        return int(feats["PacketSize"], 16)


def expand_rle(data):
    """Undoes run-length encoding: `c*n` repeats c (n - 29) more times. Python work only per
    `*` (the count character may itself be `*`)."""
    if b"*" not in data:
        return data
    out = bytearray()
    at = 0
    while True:
        star = data.find(b"*", at)
        if star < 0 or star + 1 >= len(data):
            out += data[at:]
            return bytes(out)
        out += data[at:star]
        out += out[-1:] * (data[star + 1] - 29)
        at = star + 2


def start(kind, elf, port):
    if kind == "kvmdbg":
        cmd = [KVMDBG, "run", elf, "--backend", "model", "--gdb", f"tcp:127.0.0.1:{port}", "-S"]
    else:
        cmd = ["qemu-system-aarch64", "-M", "virt", "-cpu", "max,sve=off", "-m", "128M",
               "-nographic", "-monitor", "none", "-serial", "null", "-net", "none", "-S",
               "-gdb", f"tcp:127.0.0.1:{port}", "-kernel", elf]
    return subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


def write_packets(r, size, data):
    """The packets that write `data` at XFER_ADDR with the largest packets `size` allows
    (`X` when the stub accepts it, else `M`), framed; and the packet kind."""
    binary = r.command(b"X%x,0:" % XFER_ADDR) == b"OK"
    frames = []
    off = 0
    while off < len(data):
        addr = XFER_ADDR + off
        # What is left of the packet for the payload: `$`, the header, `#` and a checksum.
        if binary:
            header_room = len(b"$X%x,%x:#00" % (addr, len(data) - off))
            room = size - header_room
            # The most bytes whose escaped form fits: shrink by the excess until it does.
            n = min(room, len(data) - off)
            while n + specials(data[off:off + n]) > room:
                n -= n + specials(data[off:off + n]) - room
            pkt = b"X%x,%x:" % (addr, n) + escape_binary(data[off:off + n])
        else:
            header_room = len(b"$M%x,%x:#00" % (addr, len(data) - off))
            n = min((size - header_room) // 2, len(data) - off)
            pkt = b"M%x,%x:" % (addr, n) + data[off:off + n].hex().encode()
        frames.append(b"$" + pkt + checksum(pkt))
        off += n
    return frames, "X" if binary else "M"


def send_all(r, frames):
    for f in frames:
        reply = r.exchange(f)
        if reply != b"OK":
            raise RuntimeError(f"write {f[:24]!r} failed: {reply[:20]!r}")


def read_all(r, size, length):
    """Reads `length` bytes at XFER_ADDR with `m` packets of what gdb asks for (a hex reply
    of PacketSize characters); returns the raw replies, decoded later."""
    n = size // 2
    replies, got = [], 0
    while got < length:
        want = min(n, length - got)
        reply = r.exchange(b"$" + b"m%x,%x" % (XFER_ADDR + got, want) +
                           checksum(b"m%x,%x" % (XFER_ADDR + got, want)))
        # Each hex digit pair is one byte; run-length encoding only shortens the text, so
        # the byte count needs the expansion (cheap: Python work per `*` only).
        count = len(expand_rle(reply)) // 2
        if reply.startswith(b"E") or count == 0:
            raise RuntimeError(f"read at {XFER_ADDR + got:#x} failed: {reply[:20]!r}")
        replies.append(reply)
        got += count
    return replies


def read_all_binary(r, size, length):
    """Reads `length` bytes at XFER_ADDR with `x` packets asking PacketSize bytes each (the
    stub returns as many as fit once escaped); returns the raw replies, unescaped later."""
    replies, got = [], 0
    while got < length:
        want = min(size, length - got)
        body = b"x%x,%x" % (XFER_ADDR + got, want)
        reply = r.exchange(b"$" + body + checksum(body))
        # `b`, then one byte per character except the `}` of each escape.
        count = len(reply) - 1 - reply.count(b"}")
        if not reply.startswith(b"b") or count <= 0:
            raise RuntimeError(f"binary read at {XFER_ADDR + got:#x} failed: {reply[:20]!r}")
        replies.append(reply)
        got += count
    return replies


def unescape_binary(data):
    return re.sub(rb"}(.)", lambda m: bytes((m.group(1)[0] ^ 0x20,)), data, flags=re.S)


def decode(replies):
    return b"".join(bytes.fromhex(expand_rle(r).decode()) for r in replies)


def cpu_seconds(pid):
    """User + system CPU time of process `pid` and its threads so far (/proc/PID/stat fields
    14 and 15, proc(5)), seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def raw_figures(kind, elf):
    port = free_port()
    proc = start(kind, elf, port)
    try:
        r = Rsp(port)
        size = r.negotiate()
        c0, t0 = cpu_seconds(proc.pid), time.perf_counter()
        for _ in range(STEPS):
            r.command("s")
        steps = STEPS / (time.perf_counter() - t0)
        step_cpu_us = (cpu_seconds(proc.pid) - c0) / STEPS * 1e6
        c0, t0 = cpu_seconds(proc.pid), time.perf_counter()
        for _ in range(SMALL_READS):
            if len(r.command("m40000000,4")) != 8:
                raise RuntimeError(f"{kind}: small read failed")
        small_us = (time.perf_counter() - t0) / SMALL_READS * 1e6
        small_cpu_us = (cpu_seconds(proc.pid) - c0) / SMALL_READS * 1e6
        data = random.Random(SEED).randbytes(XFER_BYTES)
        # Packets are built before the clock starts and replies decoded after it stops: the
        # figures are the stub's and the wire's, not the Python client's encoding.
        frames, wkind = write_packets(r, size, data)
        c0, t0 = cpu_seconds(proc.pid), time.perf_counter()
        send_all(r, frames)
        write_mbs = XFER_BYTES / (time.perf_counter() - t0) / 1e6
        write_cpu = cpu_seconds(proc.pid) - c0
        c0, t0 = cpu_seconds(proc.pid), time.perf_counter()
        replies = read_all(r, size, XFER_BYTES)
        read_mbs = XFER_BYTES / (time.perf_counter() - t0) / 1e6
        read_cpu = cpu_seconds(proc.pid) - c0
        verify(kind, "m", decode(replies), data)
        c0, t0 = cpu_seconds(proc.pid), time.perf_counter()
        if r.binary_upload:
            replies = read_all_binary(r, size, XFER_BYTES)
        else:
            replies = read_all(r, size, XFER_BYTES)
        bread_mbs = XFER_BYTES / (time.perf_counter() - t0) / 1e6
        bread_cpu = cpu_seconds(proc.pid) - c0
        if r.binary_upload:
            back = b"".join(unescape_binary(rep[1:]) for rep in replies)
        else:
            back = decode(replies)
        verify(kind, "x" if r.binary_upload else "m", back, data)
        try:
            r.command("k")
        except (EOFError, OSError):
            pass
        return dict(steps=steps, small_us=small_us, write=write_mbs, read=read_mbs,
                    bread=bread_mbs, bkind="x" if r.binary_upload else "m",
                    packet=size, wkind=wkind, step_cpu_us=step_cpu_us,
                    small_cpu_us=small_cpu_us, write_cpu=write_cpu, read_cpu=read_cpu,
                    bread_cpu=bread_cpu)
    finally:
        proc.kill()
        proc.wait()


def verify(kind, how, back, data):
    if back != data:
        bad = next((i for i in range(min(len(back), len(data))) if back[i] != data[i]),
                   min(len(back), len(data)))
        raise RuntimeError(f"{kind}: 8 MiB read back with {how} differs from what was written at +{bad:#x}")


def loopback_rate():
    """Round trips per second through the echo server, a step-sized packet each way."""
    port = free_port()
    proc = subprocess.Popen([ECHO, f"127.0.0.1:{port}"], stdin=subprocess.DEVNULL)
    try:
        s = connect(port)
        msg = b"$s#73"
        t0 = time.perf_counter()
        for _ in range(ECHOES):
            s.sendall(msg)
            got = b""
            while len(got) < len(msg):
                chunk = s.recv(4096)
                if not chunk:
                    raise EOFError("echo server closed the connection")
                got += chunk
        rate = ECHOES / (time.perf_counter() - t0)
        s.close()
        return rate
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
    fig = {}
    loop = loopback_rate()
    for kind in ("kvmdbg", "qemu"):
        f = raw_figures(kind, demo)
        if QUICK:
            f["stepi"] = f["next"] = float("nan")
        else:
            f["stepi"] = gdb_seconds(kind, demo, ([], ["stepi 2000"]))
            f["next"] = gdb_seconds(kind, cdemo, (["break loop_1000", "continue"], ["next"]),
                                    check=("loop_acc", 499500))
        fig[kind] = f
    k, q = fig["kvmdbg"], fig["qemu"]
    row = lambda name, a, b, fmt, ratio: print(
        f"{name:44} {a:{fmt}} {b:{fmt}} {ratio:12.2f}")
    print(f"{'':44} {'kvmdbg':>12} {'qemu':>12} {'kvmdbg/qemu':>12}")
    row("raw single-step rate (steps/s)", k["steps"], q["steps"], "12.0f", k["steps"] / q["steps"])
    row("small m round trip (us, lower is better)", k["small_us"], q["small_us"], "12.1f",
        k["small_us"] / q["small_us"])
    row(f"write 8 MiB random, {k['wkind']}/{q['wkind']} packets (MB/s)", k["write"], q["write"],
        "12.2f", k["write"] / q["write"])
    row("read 8 MiB back, verified, m packets (MB/s)", k["read"], q["read"], "12.2f",
        k["read"] / q["read"])
    row(f"read 8 MiB, verified, {k['bkind']}/{q['bkind']} (GDB 16+) (MB/s)", k["bread"],
        q["bread"], "12.2f", k["bread"] / q["bread"])
    row("gdb stepi 2000 (s, lower is better)", k["stepi"], q["stepi"], "12.3f", k["stepi"] / q["stepi"])
    row("gdb next over a 1000-iteration loop (s)", k["next"], q["next"], "12.3f", k["next"] / q["next"])
    print("stub CPU time (user + system, all threads; steadier than wall time on a busy host):")
    row("  per step (us)", k["step_cpu_us"], q["step_cpu_us"], "12.1f", k["step_cpu_us"] / q["step_cpu_us"])
    row("  per small m (us)", k["small_cpu_us"], q["small_cpu_us"], "12.1f",
        k["small_cpu_us"] / max(q["small_cpu_us"], 1e-9))
    row("  8 MiB write (s)", k["write_cpu"], q["write_cpu"], "12.3f", k["write_cpu"] / max(q["write_cpu"], 1e-9))
    row("  8 MiB read (s)", k["read_cpu"], q["read_cpu"], "12.3f", k["read_cpu"] / max(q["read_cpu"], 1e-9))
    row(f"  8 MiB read, {k['bkind']}/{q['bkind']} (s)", k["bread_cpu"], q["bread_cpu"], "12.3f",
        k["bread_cpu"] / max(q["bread_cpu"], 1e-9))
    print(f"{'PacketSize (bytes)':44} {k['packet']:12d} {q['packet']:12d}")
    print(f"{'loopback echo round trips/s (same client)':44} {loop:12.0f}")
    print(f"{'step rate / loopback rate':44} {k['steps'] / loop:12.2f} {q['steps'] / loop:12.2f}")
    print("kvmdbg on the model backend; both stubs on loopback TCP, one client")


if __name__ == "__main__":
    main()
