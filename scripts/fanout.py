#!/usr/bin/env python3
"""Fan-out benchmark: one sender, many subscribers in one chat room, over loopback.

The same load (examples/bench_fanout.rs, tokio-tungstenite clients) against four servers
speaking the chat protocol of examples/chat:

- wsmachine: the chat broadcast on the tokio adapter over plain TCP, as the peers are
  served (examples/bench_chat_wsmachine.rs: each message encoded once, shared by
  reference, several queued frames written with one vectored write);
- wsmachine-axum: the chat example itself, the same broadcast behind axum and hyper's
  upgraded stream;
- tungstenite: tokio-tungstenite written the idiomatic way (examples/bench_chat_tungstenite.rs);
- fastwebsockets: the same, with one shared allocation per message written as a borrowed
  payload (examples/bench_chat_fastwebsockets.rs);
- floor: no WebSocket code in the fan-out loop, one write call per socket with the
  pre-encoded frame (examples/bench_chat_floor.rs).

For each scenario and server it reports the server's CPU time per delivered message (user +
system, from /proc, between the generator's `start` and its result), the latency of a
delivery and the time for a message to reach every subscriber (p50/p99), and the server's
peak RSS. Every run checks that each subscriber got every message once and in order.

    scripts/fanout.py [--servers wsmachine,tungstenite,...] [--scenarios 1k,64k,burst]
    scripts/fanout.py --load-test     # the chat load test of .ci/run: 1,000 subscribers

Run it alone on a quiet machine; it builds the examples in release mode first. Every run
stops by itself; traffic stays on 127.0.0.0/8.
"""

import argparse
import json
import os
import socket
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "release", "examples")
TICKS = os.sysconf("SC_CLK_TCK")

# name -> (example, extra flags)
SERVERS = {
    # The same broadcast over plain TCP, as the peers are served.
    "wsmachine": ("bench_chat_wsmachine", []),
    # The chat example with its protections opened up for the load: one sender at up to
    # 1,000 messages a second, 1,000 connections from 16 loopback addresses.
    "wsmachine-axum": ("chat", ["--rate", "1000000", "--burst", "1000000", "--byte-rate", str(1 << 40),
                                 "--max-per-address", "100000"]),
    "tungstenite": ("bench_chat_tungstenite", []),
    "fastwebsockets": ("bench_chat_fastwebsockets", []),
    "floor": ("bench_chat_floor", []),
}

# name -> (subscribers, message size, messages per second, messages)
SCENARIOS = {
    "1k": (1000, 1024, 40, 400),
    "64k": (1000, 64 * 1024, 10, 100),
    "burst": (100, 1024, 1000, 10000),
    # Faster than the servers fan out on two cores: frames queue for each connection.
    "flood": (100, 1024, 5000, 20000),
}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def peak_rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def build(examples):
    command = ["cargo", "build", "--release", "--features", "axum,deflate"]
    for example in examples:
        command += ["--example", example]
    subprocess.run(command, cwd=ROOT, check=True)


def run(server, scenario):
    example, flags = SERVERS[server]
    subscribers, size, rate, count = SCENARIOS[scenario]
    port = free_port()
    proc = subprocess.Popen([os.path.join(BIN, example), f"127.0.0.1:{port}", *flags],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        proc.stdout.readline()
        load = subprocess.Popen(
            [os.path.join(BIN, "bench_fanout"), f"127.0.0.1:{port}", str(subscribers), str(size),
             str(rate), str(count)],
            stdout=subprocess.PIPE, text=True)
        before = None
        result = None
        deadline = time.monotonic() + count / rate + 180
        for line in load.stdout:
            if line.strip() == "start":
                before = cpu_seconds(proc.pid)
            elif line.startswith("{"):
                after = cpu_seconds(proc.pid)
                result = json.loads(line)
            if time.monotonic() > deadline:
                load.kill()
                break
        load.wait(timeout=60)
        if result is None or before is None:
            raise SystemExit(f"fanout: {server}/{scenario}: the load generator gave no result")
        result["server"] = server
        result["scenario"] = scenario
        result["cpu_us_per_delivery"] = (after - before) * 1e6 / result["expected"]
        result["peak_rss_mib"] = peak_rss_mib(proc.pid)
        result["ok"] = load.returncode == 0
        return result
    finally:
        proc.kill()
        proc.wait(timeout=30)


def table(results):
    print("\n| scenario | server | CPU µs/delivery | delivery p50 / p99 | all reached p50 / p99 | peak RSS | complete |")
    print("|---|---|---:|---:|---:|---:|---|")
    for r in results:
        print(f"| {r['scenario']} | {r['server']} | {r['cpu_us_per_delivery']:.2f} | "
              f"{r['p50_us'] / 1000:.1f} / {r['p99_us'] / 1000:.1f} ms | "
              f"{r['all_p50_us'] / 1000:.1f} / {r['all_p99_us'] / 1000:.1f} ms | "
              f"{r['peak_rss_mib']:.0f} MiB | {'yes' if r['ok'] else 'NO'} |")


def load_test():
    """1,000 subscribers and one sender through the chat example: every message reaches every
    client once and in order; prints the time for a message to reach all 1,000."""
    example = os.path.join(BIN, "chat")
    port = free_port()
    proc = subprocess.Popen([example, f"127.0.0.1:{port}", "--max-per-address", "100000"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        proc.stdout.readline()
        # 100 messages of 1 KiB at 20 a second: within the default rate limit (a burst of
        # 100, 50 a second).
        out = subprocess.run(
            [os.path.join(BIN, "bench_fanout"), f"127.0.0.1:{port}", "1000", "1024", "20", "100"],
            capture_output=True, text=True, timeout=300)
        line = [l for l in out.stdout.splitlines() if l.startswith("{")]
        if out.returncode != 0 or not line:
            raise SystemExit(f"fanout: the chat load test failed: {out.stdout}{out.stderr}")
        r = json.loads(line[0])
        print(f"fanout: 1,000 clients got all {r['messages']} messages in order; a message "
              f"reached all of them in p50 {r['all_p50_us'] / 1000:.1f} ms, "
              f"p99 {r['all_p99_us'] / 1000:.1f} ms")
    finally:
        proc.kill()
        proc.wait(timeout=30)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--servers", default=",".join(SERVERS))
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument("--load-test", action="store_true")
    parser.add_argument("--no-build", action="store_true")
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args()
    if not args.no_build:
        peers = [example for example, _ in SERVERS.values()]
        build(["chat", "bench_fanout"] if args.load_test else ["bench_fanout", *peers])
    if args.load_test:
        load_test()
        return
    results = []
    for scenario in args.scenarios.split(","):
        for server in args.servers.split(","):
            r = run(server, scenario)
            print(json.dumps(r), flush=True)
            results.append(r)
    table(results)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    if not all(r["ok"] for r in results):
        sys.exit(1)


if __name__ == "__main__":
    main()
