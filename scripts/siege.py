#!/usr/bin/env python3
"""Under attack: runs the resource-exhaustion attacks a public WebSocket server gets against
echo servers (and the chat example) while honest clients keep echoing, and reports per attack
and server: peak RSS and file descriptors, the honest clients' echo p50/p99 and errors,
whether the server survived, and how long after the attack its descriptors and memory came
back to the baseline.

    scripts/siege.py                 # the full comparison (README "Under attack"), ~25 min
    scripts/siege.py --check         # short attacks against wsmachine's servers; fails if a
                                     # bound is broken (a step of .ci/run, ~4 min)
    scripts/siege.py --servers wsmachine,fastwebsockets --attacks slowloris,silent

The load comes from `examples/siege.rs` (one attack per run, one JSON line of results); this
script builds everything, starts each server afresh on a loopback port for each attack
(so every attack starts from the same baseline), runs siege against it, stops it, and prints
a table per attack (`--markdown` for the README, `--json FILE` for the raw results).

Servers: `wsmachine` (examples/echo_server, tokio), `wsmachine-std`
(examples/echo_server_blocking, a thread per connection), `chat` (the chat example; its
honest clients chat in a room the attackers join), `tungstenite` and `fastwebsockets`
(examples/bench_echo_*.rs, the peers' idiomatic echo servers). The fd-exhaustion attack runs
each server under `ulimit -n 1024`. Everything stays on 127.0.0.0/8 and stops by itself.
"""

import argparse
import json
import os
import resource
import signal
import socket
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RELEASE = os.path.join(ROOT, "target", "release", "examples")

MIB = 1 << 20

# name -> (binary, extra arguments, siege arguments)
SERVERS = {
    "wsmachine": ("echo_server", [], []),
    "wsmachine-std": ("echo_server_blocking", [], []),
    "chat": ("chat", [], ["--chat", "--path", "/ws"]),
    "tungstenite": ("bench_echo_tungstenite", [], []),
    "fastwebsockets": ("bench_echo_fastwebsockets", [], []),
}
WSMACHINE = ("wsmachine", "wsmachine-std", "chat")

# The attacks of the full run: (name, siege arguments). Sizes as the issue names them.
FULL = [
    ("slowloris", ["--conns", "5000", "--duration", "15"]),
    ("handshake-flood", ["--workers", "4", "--duration", "10"]),
    ("silent", ["--conns", "5000", "--duration", "15"]),
    ("non-readers", ["--conns", "200", "--size", str(MIB), "--duration", "15"]),
    ("max-messages", ["--conns", "200", "--size", str(MIB), "--duration", "15"]),
    ("garbage", ["--conns", "500", "--duration", "15"]),
    ("fd-exhaustion", ["--duration", "10"]),
]

# The short versions CI runs against wsmachine's servers.
SHORT = [
    ("slowloris", ["--conns", "1000", "--duration", "12"]),
    ("handshake-flood", ["--workers", "2", "--duration", "4"]),
    ("silent", ["--conns", "1000", "--duration", "4"]),
    ("non-readers", ["--conns", "50", "--size", str(MIB), "--duration", "4"]),
    ("max-messages", ["--conns", "20", "--size", str(MIB), "--duration", "4"]),
    ("garbage", ["--conns", "100", "--duration", "4"]),
    ("fd-exhaustion", ["--duration", "3"]),
]

# A server's own deadlines: a connection is released within this after the transport says
# it is gone (the close deadline, 10 s, plus scheduling slack).
RELEASE_WITHIN_S = 12.0
# Honest clients' echo p99 under attack, on loopback.
P99_MS = 50.0
# Memory: limits x connections + a constant (the README explains each term).
CONSTANT_KIB = 64 * 1024


def log(*args):
    print("siege:", *args, file=sys.stderr, flush=True)


def build(servers):
    examples = {SERVERS[s][0] for s in servers} | {"siege"}
    cmd = ["cargo", "build", "--release", "--features", "tokio,axum,deflate"]
    for e in sorted(examples):
        cmd += ["--example", e]
    log("building:", " ".join(cmd))
    subprocess.run(cmd, cwd=ROOT, check=True, timeout=1800)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"server did not listen on {port}")


def start(server, port, nofile=None, extra=()):
    binary, args, _ = SERVERS[server]
    cmd = [os.path.join(RELEASE, binary), f"127.0.0.1:{port}", *args, *extra]

    def limits():
        if nofile:
            resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))

    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            preexec_fn=limits)
    wait_port(port, proc)
    # Let the server settle (the first connection of the port probe is gone).
    time.sleep(0.3)
    return proc


def stop(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)


def run_attack(server, attack, args, server_extra=(), siege_extra=()):
    if server == "chat" and attack != "non-readers":
        # The attackers join rooms of their own: a thousand joins into the honest clients'
        # room is another attack (a presence storm; see the README), and only non-readers
        # are meant to sit in the busy room.
        siege_extra = (*siege_extra, "--own-rooms")
    port = free_port()
    nofile = 1024 if attack == "fd-exhaustion" else None
    proc = start(server, port, nofile, server_extra)
    try:
        cmd = [os.path.join(RELEASE, "siege"), "--target", f"127.0.0.1:{port}",
               "--pid", str(proc.pid), "--attack", attack, *args, *SERVERS[server][2],
               *siege_extra]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=400)
        lines = [line for line in out.stdout.splitlines() if line.startswith("{")]
        if not lines:
            raise RuntimeError(f"siege printed no result (exit {out.returncode}): "
                               f"{out.stderr[-2000:]}")
        result = json.loads(lines[-1])
        result["server"] = server
        result["server_alive"] = proc.poll() is None
        return result
    finally:
        stop(proc)


def fmt(v, unit=""):
    if v is None:
        return "never"
    if isinstance(v, bool):
        return "yes" if v else "**no**"
    if isinstance(v, float):
        return f"{v:.1f}{unit}"
    return f"{v}{unit}"


def row(r):
    lost = r["honest_sent"] - r["honest_received"]
    return [
        r["server"],
        f"{r['peak_rss_kib'] / 1024:.0f} MiB",
        str(r["peak_fds"]),
        f"{r['p50_ms']:.2f} / {r['p99_ms']:.2f} ms" if r["p99_ms"] is not None else "-",
        f"{r['honest_errors']} / {lost}",
        fmt(r["survived"]),
        fmt(r["fds_recovered_s"], " s") + " / " + fmt(r["rss_recovered_s"], " s"),
        f"{r['end_rss_kib'] / 1024:.0f} MiB",
        detail(r),
    ]


def detail(r):
    a = r.get("attack") or {}
    name = r["name"]
    if name == "slowloris":
        return (f"{a.get('closed_by_server', 0)} of {a.get('opened', 0)} closed by the server "
                f"(median {fmt((a.get('closed_by_server_at_s') or {}).get('median'), ' s')}); "
                f"{a.get('held_at_end', 0)} held at the end")
    if name == "handshake-flood":
        us = a.get("server_cpu_us_per_handshake")
        return (f"{a.get('completed', 0)} handshakes, {fmt(a.get('handshakes_per_s'))}/s, "
                f"server CPU {fmt(us, ' µs')} per handshake")
    if name == "silent":
        return (f"{a.get('handshaken', 0)} held; {a.get('closed_by_server', 0)} reaped "
                f"(median {fmt((a.get('reaped_at_s') or {}).get('median'), ' s')})")
    if name == "non-readers":
        return (f"{a.get('bytes_sent', 0) / MIB:.0f} MiB sent; "
                f"{a.get('closed_by_server', 0)} closed by the server")
    if name == "max-messages":
        return (f"{a.get('messages_sent', 0)} messages; close codes "
                f"{json.dumps(a.get('close_codes', {}))}")
    if name == "garbage":
        codes = {}
        statuses = {}
        for b in a.values():
            if isinstance(b, dict):
                for k, v in (b.get("close_codes") or {}).items():
                    codes[k] = codes.get(k, 0) + v
                for k, v in (b.get("http_status") or {}).items():
                    statuses[k] = statuses.get(k, 0) + v
        bomb = "bomb sent" if a.get("deflate_accepted") else "no deflate: no bomb"
        return (f"close codes {json.dumps(codes, sort_keys=True)}, HTTP "
                f"{json.dumps(statuses, sort_keys=True)}; {bomb}")
    if name == "fd-exhaustion":
        return (f"{a.get('held', 0)} held; served after release: "
                f"{fmt(a.get('served_after_release'))}")
    return ""


HEADER = ["server", "peak RSS", "peak fds", "honest p50 / p99", "errors / lost", "survived",
          "recovered (fds / RSS)", "RSS after", "attack"]


def table(results, markdown):
    lines = []
    if markdown:
        lines.append("| " + " | ".join(HEADER) + " |")
        lines.append("|" + "---|" * len(HEADER))
        for r in results:
            lines.append("| " + " | ".join(row(r)) + " |")
    else:
        for r in results:
            lines.append("  " + "  ".join(row(r)))
    return "\n".join(lines)


def bounds(r, args):
    """What a wsmachine server must hold to: the broken bounds, as sentences."""
    broken = []
    name = r["name"]
    if not r["survived"] or not r["server_alive"]:
        broken.append("did not survive")
    if r["honest_errors"] or r["honest_received"] < r["honest_sent"]:
        broken.append(f"honest clients: {r['honest_errors']} errors, "
                      f"{r['honest_sent'] - r['honest_received']} echoes lost")
    if r["honest_received"] == 0:
        broken.append("no honest echo at all")
    if r["p99_ms"] is not None and r["p99_ms"] > P99_MS * args.slack:
        broken.append(f"honest p99 {r['p99_ms']:.1f} ms > {P99_MS * args.slack:.0f} ms")
    conns = int(dict(zip(args_of(name)[::2], args_of(name)[1::2])).get("--conns", "0"))
    size = int(dict(zip(args_of(name)[::2], args_of(name)[1::2])).get("--size", "0"))
    if name in ("non-readers", "max-messages"):
        # Each connection: a message being received (the limit), one being echoed (the
        # limit), the receive buffer (64 KiB) and the socket's kernel buffers (not RSS).
        bound_kib = r["baseline_rss_kib"] + conns * (2 * size + 64 * 1024) // 1024 + CONSTANT_KIB
    else:
        # A connection or handshake in progress costs a few KiB (README: 1.9 KiB idle, a
        # 4 KiB read buffer while reading).
        bound_kib = r["baseline_rss_kib"] + max(conns, 1000) * 16 + CONSTANT_KIB
    if r["peak_rss_kib"] > bound_kib:
        broken.append(f"peak RSS {r['peak_rss_kib']} KiB > bound {bound_kib} KiB")
    if r["fds_recovered_s"] is None or r["fds_recovered_s"] > RELEASE_WITHIN_S:
        broken.append(f"connections released after {fmt(r['fds_recovered_s'], ' s')}")
    if r["rss_recovered_s"] is None:
        broken.append(f"RSS stayed above 2x the baseline ({r['end_rss_kib']} KiB vs "
                      f"{r['baseline_rss_kib']} KiB)")
    a = r.get("attack") or {}
    if name == "slowloris" and a.get("held_at_end", 0):
        broken.append(f"{a['held_at_end']} slowloris connections still held past the "
                      f"handshake deadline")
    if name == "fd-exhaustion" and not a.get("served_after_release"):
        broken.append("not serving again after descriptors were freed")
    if name == "silent-reaped" and a.get("closed_by_server", 0) < a.get("handshaken", 1):
        broken.append(f"only {a.get('closed_by_server', 0)} of {a.get('handshaken')} silent "
                      f"peers reaped")
    return broken


ATTACK_ARGS = {}


def args_of(name):
    return ATTACK_ARGS.get(name, [])


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--servers", default=None, help="comma-separated (default: all; "
                   "with --check: wsmachine's)")
    p.add_argument("--attacks", default=None, help="comma-separated attack names")
    p.add_argument("--check", action="store_true",
                   help="short attacks against wsmachine's servers; exit 1 if a bound breaks")
    p.add_argument("--markdown", action="store_true", help="tables in Markdown")
    p.add_argument("--json", help="write every result to this file")
    p.add_argument("--no-build", action="store_true")
    p.add_argument("--slack", type=float, default=1.0,
                   help="multiplies the p99 bound (a loaded CI machine)")
    args = p.parse_args()

    plan = SHORT if args.check else FULL
    servers = (args.servers.split(",") if args.servers
               else list(WSMACHINE) if args.check else list(SERVERS))
    for s in servers:
        if s not in SERVERS:
            p.error(f"unknown server {s}")
    if args.attacks:
        wanted = args.attacks.split(",")
        plan = [a for a in plan if a[0] in wanted]
    for name, a in plan:
        ATTACK_ARGS[name] = a

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 65536 and hard >= 65536:
        resource.setrlimit(resource.RLIMIT_NOFILE, (65536, hard))
    if not args.no_build:
        build(servers)

    results, failures = [], []
    started = time.time()
    for name, attack_args in plan:
        group = []
        for server in servers:
            log(f"{name} against {server}")
            try:
                r = run_attack(server, name, attack_args)
            except Exception as e:  # a harness failure is a failure, with the reason
                failures.append(f"{name} against {server}: {e}")
                log(f"  failed: {e}")
                continue
            group.append(r)
            results.append(r)
            log("  " + "  ".join(row(r)))
            if args.check and server in WSMACHINE:
                for b in bounds(r, args):
                    failures.append(f"{name} against {server}: {b}")
        print(f"\n### {name}\n" if args.markdown else f"\n{name}:")
        print(table(group, args.markdown), flush=True)

    if args.check and "wsmachine" in servers:
        # Silent peers are reaped by the default keepalive; with it shortened here (2 s, and
        # 2 s for the pong) the run stays short.
        log("silent peers reaped by keepalive (wsmachine, --keepalive 2 --pong-timeout 2)")
        port = free_port()
        proc = start("wsmachine", port, extra=["--keepalive", "2", "--pong-timeout", "2"])
        try:
            out = subprocess.run(
                [os.path.join(RELEASE, "siege"), "--target", f"127.0.0.1:{port}", "--pid",
                 str(proc.pid), "--attack", "silent", "--conns", "500", "--duration", "2",
                 "--hold-until-reaped", "--recovery-timeout", "15"],
                capture_output=True, text=True, timeout=120)
            r = json.loads([ln for ln in out.stdout.splitlines() if ln.startswith("{")][-1])
            a = r.get("attack") or {}
            reaped = a.get("reaped_at_s") or {}
            log(f"  {a.get('closed_by_server')} of {a.get('handshaken')} reaped, median "
                f"{reaped.get('median')} s, max {reaped.get('max')} s")
            if a.get("closed_by_server", 0) < a.get("handshaken", 1):
                failures.append(f"silent peers: only {a.get('closed_by_server')} of "
                                f"{a.get('handshaken')} reaped by keepalive")
            elif (reaped.get("max") or 99) > 2 + 2 + 3:
                failures.append(f"silent peers reaped after {reaped.get('max')} s "
                                f"(keepalive 2 s + pong 2 s)")
        except Exception as e:
            failures.append(f"silent peers reaped: {e}")
        finally:
            stop(proc)

    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    log(f"done in {time.time() - started:.0f} s")
    if failures:
        for f in failures:
            log("FAILED:", f)
        sys.exit(1)
    if args.check:
        log("every bound held")


if __name__ == "__main__":
    main()
