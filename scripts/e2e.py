#!/usr/bin/env python3
"""End-to-end comparison of echo servers over loopback: wsmachine's tokio `echo_server`,
a tokio-tungstenite one and a fastwebsockets one (examples/bench_echo_*.rs), all driven by
the same load generator (examples/bench_load.rs, tokio-tungstenite clients).

    python3 scripts/e2e.py [--seconds 3] [--rounds 2] [--idle 10000] [--quick]
                           [--also NAME=PATH/TO/echo_server ...]

For each connection count and message size it runs the servers in turn, alternating
A B C A B C for --rounds rounds, and reports per server the median of the rounds:
messages per second, p50/p99 round-trip latency, and the **server's CPU time per message**
(user + system time from /proc/PID/stat before and after the round: on 2 cores the load
generator saturates first, so this is the number that compares servers). Then it opens
--idle idle connections to each server and reports its resident memory per connection
(VmRSS from /proc/PID/status before and after).

Everything runs on 127.0.0.0/8, every step is bounded in time, and every process started
here is stopped here. Linux only (it reads /proc). Needs nothing beyond the standard library.

--also adds another echo server binary to the same run (for instance an `echo_server` built
from an earlier commit in a worktree), so a before/after comparison comes from one run.

--deflate-idle N (default 1000; 0 skips) measures memory per idle connection with
permessage-deflate negotiated: N Python `websockets` clients (compression on, its default)
each exchange one compressed 1 KiB text message with the server and then stay open, against
examples/bench_echo_deflate with the default settings and with the low-memory profile, and
against a Python `websockets` echo server (its default: 12-bit windows, memLevel 5, context
takeover) — the same window bits as wsmachine's default. This part needs the virtual
environment scripts/test.sh makes (.venv with `websockets`). --deflate-only runs only it.
"""

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLES = os.path.join(ROOT, "target", "release", "examples")
TICK = os.sysconf("SC_CLK_TCK")

SERVERS = [
    # (name, example binary, port)
    ("wsmachine", "echo_server", 9101),
    ("tungstenite", "bench_echo_tungstenite", 9102),
    ("fastwebsockets", "bench_echo_fastwebsockets", 9103),
]


PYTHON = os.path.join(ROOT, ".venv", "bin", "python3")
PEERS = os.path.join(ROOT, "scripts", "deflate_peers.py")


def build():
    cmd = ["cargo", "build", "--release", "--features", "tokio", "--example", "echo_server",
           "--example", "bench_echo_tungstenite", "--example", "bench_echo_fastwebsockets",
           "--example", "bench_load"]
    subprocess.run(cmd, cwd=ROOT, check=True, timeout=1800)


def build_deflate():
    cmd = ["cargo", "build", "--release", "--features", "tokio,deflate", "--example",
           "bench_echo_deflate"]
    subprocess.run(cmd, cwd=ROOT, check=True, timeout=1800)


def cpu_split(pid):
    """(user, system) CPU seconds of process `pid`."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # Fields 14 and 15 (utime, stime) counted from 1 including pid and comm; the split above
    # starts at field 3 (state).
    return int(fields[11]) / TICK, int(fields[12]) / TICK


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class Server:
    def __init__(self, binary, port, argv=None):
        self.port = port
        argv = argv or [binary if os.path.isabs(binary) else os.path.join(EXAMPLES, binary),
                        f"127.0.0.1:{port}"]
        self.proc = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        # Each server prints one line once it listens.
        line = self.proc.stdout.readline()
        if "listening" not in line:
            self.stop()
            raise RuntimeError(f"{binary} did not start: {line!r}")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def load(*args, timeout):
    cmd = [os.path.join(EXAMPLES, "bench_load"), *map(str, args)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=True)


def echo_round(server, connections, size, seconds):
    user0, sys0 = cpu_split(server.proc.pid)
    out = load("echo", f"127.0.0.1:{server.port}", connections, size, seconds,
               timeout=seconds + 120)
    # The clients close before the load generator exits; give the server a moment to finish
    # those closes so they are charged to this round.
    time.sleep(0.2)
    user1, sys1 = cpu_split(server.proc.pid)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    messages = max(result["messages"], 1)
    result["cpu_us_per_message"] = (user1 - user0 + sys1 - sys0) * 1e6 / messages
    # The kernel's share (TCP over loopback, epoll) is the same work for every server.
    result["user_us_per_message"] = (user1 - user0) * 1e6 / messages
    result["messages_per_s"] = result["messages"] / result["seconds"]
    return result


def idle_round(server, connections, hold, clients=None):
    """Resident memory per connection of `server` while `connections` idle clients are open:
    the load generator's, or the command `clients` (which prints "ready N" once they are)."""
    before = rss_kib(server.proc.pid)
    cmd = clients or [os.path.join(EXAMPLES, "bench_load"), "idle", f"127.0.0.1:{server.port}",
                      str(connections), str(hold)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        if not line.startswith("ready"):
            raise RuntimeError(f"idle load failed: {line!r} {proc.stderr.read()[-2000:]}")
        opened = int(line.split()[1])
        time.sleep(1.0)  # let every server task settle into waiting for input
        after = rss_kib(server.proc.pid)
    finally:
        proc.wait(timeout=hold + 120)
    return {"connections": opened, "rss_before_kib": before, "rss_after_kib": after,
            "kib_per_connection": (after - before) / max(opened, 1)}


def deflate_idle(connections):
    """Memory per idle connection with compression negotiated, for each deflate server."""
    if subprocess.run([PYTHON, "-c", "import websockets"], capture_output=True).returncode:
        raise SystemExit(f"{PYTHON} cannot import websockets: run scripts/test.sh first")
    example = os.path.join(EXAMPLES, "bench_echo_deflate")
    servers = [
        ("wsmachine (default)", [example, "127.0.0.1:9131", "default"], 9131),
        ("wsmachine (low-memory)", [example, "127.0.0.1:9132", "low-memory"], 9132),
        ("python-websockets", [PYTHON, PEERS, "server", "9133"], 9133),
    ]
    rows = []
    for name, argv, port in servers:
        server = Server(None, port, argv)
        try:
            # Python clients that negotiate compression and each exchange one compressed
            # message first.
            clients = [PYTHON, PEERS, "idle", str(port), str(connections), "3"]
            row = {"server": name, **idle_round(server, connections, 3, clients)}
        finally:
            server.stop()
        rows.append(row)
        print(f"deflate idle {row['connections']} conns  {name:<22} "
              f"{row['kib_per_connection']:.2f} KiB per connection "
              f"(RSS {row['rss_before_kib']} -> {row['rss_after_kib']} KiB)", flush=True)
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="length of one round")
    parser.add_argument("--rounds", type=int, default=2, help="rounds per server and case")
    parser.add_argument("--idle", type=int, default=10000, help="idle connections (0: skip)")
    parser.add_argument("--quick", action="store_true", help="64 connections × 16 B only")
    parser.add_argument("--no-build", action="store_true")
    parser.add_argument("--json", help="also write the results to this file")
    parser.add_argument("--also", action="append", default=[], metavar="NAME=PATH",
                        help="another echo server binary to measure in the same run")
    parser.add_argument("--deflate-idle", type=int, default=1000,
                        help="idle connections with compression negotiated (0: skip)")
    parser.add_argument("--deflate-only", action="store_true",
                        help="only the compressed-idle measurement")
    args = parser.parse_args()
    for i, extra in enumerate(args.also):
        name, _, path = extra.partition("=")
        if not name or not path:
            parser.error(f"--also takes NAME=PATH, not {extra!r}")
        SERVERS.append((name, os.path.abspath(path), 9111 + i))

    # Each idle connection is a socket in the load generator and one in the server.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, args.idle + 1000)), hard))
    if not args.no_build:
        if not args.deflate_only:
            build()
        if args.deflate_idle:
            build_deflate()
    if args.deflate_only:
        results = {"deflate_idle": deflate_idle(args.deflate_idle)}
        if args.json:
            with open(args.json, "w") as f:
                json.dump(results, f, indent=1)
        return

    cases = [(64, 16)] if args.quick else [
        (c, s) for c in (1, 64, 512) for s in (16, 1024, 65536)]
    results = {"echo": [], "idle": []}
    servers = {name: Server(binary, port) for name, binary, port in SERVERS}
    try:
        for connections, size in cases:
            rounds = {name: [] for name in servers}
            for _ in range(args.rounds):
                for name, server in servers.items():
                    rounds[name].append(echo_round(server, connections, size, args.seconds))
            for name, rs in rounds.items():
                row = {"server": name, "connections": connections, "size": size}
                for key in ("messages_per_s", "p50_us", "p99_us", "cpu_us_per_message",
                            "user_us_per_message"):
                    row[key] = statistics.median(r[key] for r in rs)
                results["echo"].append(row)
                print(f"{connections:>4} conns {size:>6} B  {name:<15} "
                      f"{row['messages_per_s']:>10.0f} msg/s  p50 {row['p50_us']:>6} µs  "
                      f"p99 {row['p99_us']:>6} µs  server CPU {row['cpu_us_per_message']:.2f} µs/msg "
                      f"(user {row['user_us_per_message']:.2f})",
                      flush=True)
    finally:
        for server in servers.values():
            server.stop()
    # Memory per idle connection, each server fresh (so no allocator high-water mark left by
    # the echo rounds hides the cost), one at a time.
    for name, binary, port in SERVERS if args.idle else []:
        server = Server(binary, port + 100)
        try:
            row = {"server": name, **idle_round(server, args.idle, 5)}
        finally:
            server.stop()
        results["idle"].append(row)
        print(f"idle {row['connections']} conns  {name:<15} "
              f"{row['kib_per_connection']:.2f} KiB per connection "
              f"(RSS {row['rss_before_kib']} -> {row['rss_after_kib']} KiB)", flush=True)
    if args.deflate_idle:
        results["deflate_idle"] = deflate_idle(args.deflate_idle)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
