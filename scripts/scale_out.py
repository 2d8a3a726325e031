#!/usr/bin/env python3
"""Chat across machines: two chat servers sharing their rooms over Redis, behind nginx.

    scripts/scale_out.py             # the integration test (.ci/run)
    scripts/scale_out.py --measure   # the README's "Scaling out" figures

Installs Debian's redis-server and nginx with apt-get when they are missing (and fails if it
cannot), builds the chat example, and runs Redis, the chat servers and nginx on loopback
ports of their own, with configuration of their own in a temporary directory (nginx's is
examples/chat/nginx.conf with those ports put in). Everything it starts is stopped when it
ends; every wait has a deadline; traffic stays on 127.0.0.0/8.

The test, with 200 clients (Python's websockets, run with the .venv that scripts/test.sh
makes) connected through nginx from ten loopback addresses:

1. the clients are spread over both servers (each holds 60 to 140), and every message any
   client sends reaches all 200 exactly once, in the order its sender sent it;
2. X-Forwarded-For: the per-address limit (25 here, per server) counts the client address
   nginx forwards (the 200 clients come from 10 addresses through one proxy), a forged one
   from a client is ignored (through nginx, or sent straight to a chat server), and a
   malformed one from the proxy gets 400;
3. Redis is killed: every client is told the backplane is down; a message sent meanwhile
   reaches its own server's members only, and the other server's members are told it was
   missed once the link is back; Redis is started again, every client is told the link is
   up, and rooms span both servers again (every message to all 200, once);
4. one chat server is killed: its clients reconnect through nginx to the other and every
   message again reaches all 200 exactly once;
5. the killed server is started again and the other one is stopped with SIGTERM: it closes
   its clients with 1001, they reconnect to the first, and keep chatting.
"""

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "release", "examples")
CHAT = os.path.join(BIN, "chat")
ROOM = "scale"
CLIENTS = 200
SOURCES = [f"127.0.0.{10 + i}" for i in range(10)]  # 20 clients from each
MAX_PER_ADDRESS = 25


def log(*args):
    print("scale-out:", *args, flush=True)


class Failure(Exception):
    pass


def fail(message):
    raise Failure(message)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def which(tool):
    return shutil.which(tool) or shutil.which(tool, path="/usr/sbin:/usr/bin:/sbin:/bin")


def ensure_installed():
    """redis-server and nginx, from Debian's packages when they are missing."""
    missing = [pkg for tool, pkg in (("redis-server", "redis-server"), ("nginx", "nginx"))
               if not which(tool)]
    if not missing:
        return
    log("installing with apt-get:", " ".join(missing))
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    # A package's install script may start the distribution's own service (on the usual
    # ports); this test never talks to it.
    for command in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", *missing]):
        result = subprocess.run(sudo + command, env=env, timeout=900,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if result.returncode != 0:
            fail(f"{' '.join(command)} failed: {result.stderr[-2000:]}")
    for tool in ("redis-server", "nginx"):
        if not which(tool):
            fail(f"{tool} could not be installed")


def build(examples=("chat",)):
    command = ["cargo", "build", "--release", "--features", "axum,deflate"]
    for example in examples:
        command += ["--example", example]
    subprocess.run(command, cwd=ROOT, check=True, timeout=1800)


def wait_port(port, proc, what, timeout=15):
    until = time.monotonic() + timeout
    while time.monotonic() < until:
        if proc.poll() is not None:
            fail(f"{what} exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    fail(f"{what} did not listen on port {port} within {timeout} s")


class Cluster:
    """Redis, chat servers and nginx, each a process of ours on a port of ours."""

    def __init__(self, servers=2, chat_flags=()):
        self.dir = tempfile.mkdtemp(prefix="wsmachine-scale-")
        self.redis_port = free_port()
        self.front = free_port()
        self.ports = [free_port() for _ in range(servers)]
        self.chat_flags = list(chat_flags)
        self.procs = {}

    def __enter__(self):
        self.start_redis()
        for i in range(len(self.ports)):
            self.start_chat(i)
        self.start_nginx()
        return self

    def __exit__(self, *exc):
        for name in list(self.procs):
            self.kill(name)
        if os.environ.get("SCALE_OUT_KEEP"):
            log(f"kept {self.dir}")
        else:
            shutil.rmtree(self.dir, ignore_errors=True)

    def spawn(self, name, command, port, **kwargs):
        out = open(os.path.join(self.dir, f"{name}.log"), "a")
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, **kwargs)
        self.procs[name] = proc
        wait_port(port, proc, name)
        return proc

    def kill(self, name, sig=signal.SIGKILL):
        proc = self.procs.pop(name, None)
        if proc is None:
            return None
        if proc.poll() is None:
            proc.send_signal(sig)
        try:
            return proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
            fail(f"{name} did not stop within 20 s of signal {sig}")

    def start_redis(self):
        self.spawn("redis", [which("redis-server"), "--port", str(self.redis_port),
                             "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                             "--dir", self.dir], self.redis_port)

    def chat_name(self, i):
        return f"chat{i}"

    def start_chat(self, i):
        self.spawn(self.chat_name(i), [
            CHAT, f"127.0.0.1:{self.ports[i]}",
            "--redis", f"redis://127.0.0.1:{self.redis_port}",
            "--trusted-proxy", "127.0.0.1",
            "--max-per-address", str(MAX_PER_ADDRESS),
            *self.chat_flags,
        ], self.ports[i])

    def start_nginx(self):
        with open(os.path.join(ROOT, "examples", "chat", "nginx.conf")) as f:
            conf = f.read()
        servers = [f"127.0.0.1:{8081 + i}" for i in range(2)]
        for placeholder in servers:
            if placeholder not in conf:
                fail(f"examples/chat/nginx.conf no longer names {placeholder}")
        conf = conf.replace("listen 127.0.0.1:8080;", f"listen 127.0.0.1:{self.front};")
        lines = []
        for line in conf.splitlines():
            stripped = line.strip()
            if stripped.startswith("server 127.0.0.1:808"):
                i = servers.index(stripped.split()[1])
                if i >= len(self.ports):
                    continue  # fewer servers than the committed configuration
                line = line.replace(servers[i], f"127.0.0.1:{self.ports[i]}")
            lines.append(line)
        prefix = os.path.join(self.dir, "nginx")
        os.makedirs(prefix, exist_ok=True)
        path = os.path.join(prefix, "nginx.conf")
        with open(path, "w") as f:
            f.write("\n".join(lines) + "\n")
        self.spawn("nginx", [which("nginx"), "-e", "stderr", "-p", prefix, "-c", path],
                   self.front)

    def health(self, i):
        url = f"http://127.0.0.1:{self.ports[i]}/health"
        with urllib.request.urlopen(url, timeout=5) as response:
            return json.loads(response.read())

    def url(self, name, port=None):
        return f"ws://127.0.0.1:{port or self.front}/ws?room={ROOM}&name={name}"

    def logs(self):
        out = []
        for name in sorted(os.listdir(self.dir)):
            if name.endswith(".log"):
                with open(os.path.join(self.dir, name), errors="replace") as f:
                    out.append(f"--- {name}\n{f.read()[-3000:]}")
        return "\n".join(out)


# --- the test -------------------------------------------------------------------------------

class Client:
    """A chat client that reconnects (through nginx) whenever its connection ends."""

    def __init__(self, cluster, n):
        self.name = f"c{n}"
        self.source = SOURCES[n % len(SOURCES)]
        self.url = cluster.url(self.name)
        self.messages = []       # (sender, text) of every chat message, in arrival order
        self.events = []         # every other event
        self.closes = []         # close codes of the connections that ended
        self.ws = None
        self.connected = asyncio.Event()
        self.stopped = False
        self.task = None

    async def run(self):
        from websockets.asyncio.client import connect
        from websockets.exceptions import ConnectionClosed, WebSocketException
        while not self.stopped:
            try:
                async with connect(self.url, local_addr=(self.source, 0), open_timeout=10,
                                   ping_interval=None, max_size=None, compression=None) as ws:
                    self.ws = ws
                    self.connected.set()
                    try:
                        async for raw in ws:
                            self.handle(json.loads(raw))
                    except ConnectionClosed:
                        pass
                    self.closes.append(ws.close_code)
            except (OSError, asyncio.TimeoutError, WebSocketException):
                pass
            self.ws = None
            self.connected.clear()
            if not self.stopped:
                await asyncio.sleep(0.2)

    def handle(self, event):
        if event["type"] == "message":
            self.messages.append((event["name"], event["text"]))
        else:
            self.events.append(event)

    async def send(self, text):
        await self.ws.send(json.dumps({"type": "message", "text": text}))

    def saw(self, kind, **fields):
        return any(e["type"] == kind and all(e.get(k) == v for k, v in fields.items())
                   for e in self.events)


async def until(what, predicate, timeout):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            fail(f"{what}: not within {timeout} s")
        await asyncio.sleep(0.05)


async def connect_all(clients, timeout=60):
    await until(f"all {len(clients)} clients connected",
                lambda: all(c.connected.is_set() for c in clients), timeout)


async def exchange(clients, label, per_client, receivers=None, timeout=60):
    """Every client sends `per_client` messages; every receiver must get every one of them
    exactly once, each sender's in the order sent."""
    receivers = receivers or clients
    start = {id(c): len(c.messages) for c in receivers}
    for i in range(per_client):
        await asyncio.gather(*(c.send(f"{label} {c.name} {i}") for c in clients))
    expected = {(c.name, f"{label} {c.name} {i}") for c in clients for i in range(per_client)}

    def got(c):
        return [m for m in c.messages[start[id(c)]:] if m[1].startswith(label + " ")]

    await until(f"{label}: {len(expected)} messages to {len(receivers)} clients",
                lambda: all(len(got(c)) >= len(expected) for c in receivers), timeout)
    await asyncio.sleep(0.3)  # anything extra (a duplicate) would arrive by now
    for c in receivers:
        seen = got(c)
        if len(seen) != len(expected) or set(seen) != expected:
            fail(f"{label}: {c.name} got {len(seen)} messages, {len(set(seen))} distinct, "
                 f"of {len(expected)}")
        by_sender = {}
        for sender, text in seen:
            by_sender.setdefault(sender, []).append(int(text.rsplit(" ", 1)[1]))
        if any(v != sorted(v) for v in by_sender.values()):
            fail(f"{label}: {c.name} got a sender's messages out of order")
    log(f"{label}: {len(expected)} messages reached all {len(receivers)} clients exactly once, "
        f"in each sender's order")


async def handshake_status(url, source, headers=None):
    """The HTTP status a WebSocket handshake gets (101 if it opens)."""
    from websockets.asyncio.client import connect
    from websockets.exceptions import InvalidStatus
    try:
        ws = await connect(url, local_addr=(source, 0), open_timeout=10,
                           additional_headers=headers or {}, ping_interval=None)
    except InvalidStatus as e:
        return e.response.status_code, None
    return 101, ws


async def until_routed(cluster, i, timeout):
    """Opens connections through nginx until one lands on server `i`; returns it open."""
    deadline = time.monotonic() + timeout
    before = cluster.health(i)["connections"]
    while True:
        status, ws = await handshake_status(cluster.url("canary"), "127.0.0.40")
        if status == 101:
            await asyncio.sleep(0.05)
            if cluster.health(i)["connections"] > before:
                return ws
            await ws.close()
        if time.monotonic() > deadline:
            fail(f"nginx sent no new connection to the restarted server within {timeout} s")
        await asyncio.sleep(0.2)


async def address_limits(cluster):
    """The per-address limit (per server) counts the address the trusted proxy forwards;
    X-Forwarded-For from anyone else, or written by the client itself, counts for nothing."""
    held = []

    async def fill(url, source, forwarded, what):
        for i in range(MAX_PER_ADDRESS):
            status, ws = await handshake_status(url(i), source, forwarded(i))
            if status != 101:
                fail(f"{what}: connection {i + 1} got {status}")
            held.append(ws)
        status, ws = await handshake_status(url(MAX_PER_ADDRESS), source,
                                            forwarded(MAX_PER_ADDRESS))
        held.append(ws)
        if status != 429:
            fail(f"{what}: connection {MAX_PER_ADDRESS + 1} got {status}, not 429")

    try:
        direct = lambda i: cluster.url(f"d{i}", cluster.ports[0])  # noqa: E731
        # From the trusted proxy's address, the forwarded address is the client's.
        await fill(direct, "127.0.0.1", lambda i: {"X-Forwarded-For": "10.1.0.7"},
                   "straight from the proxy's address, forwarded for 10.1.0.7")
        status, ws = await handshake_status(direct(0), "127.0.0.1",
                                            {"X-Forwarded-For": "10.9.9.9, 10.1.0.8"})
        held.append(ws)
        if status != 101:
            fail(f"another forwarded client address got {status}")
        # From anyone else, forged values do not make it several clients.
        await fill(direct, "127.0.0.60", lambda i: {"X-Forwarded-For": f"10.2.0.{i}"},
                   "straight from 127.0.0.60 with forged X-Forwarded-For")
        # Through nginx a client's own X-Forwarded-For comes before the address nginx
        # appends: with forged values, 127.0.0.50 still gets at most the limit on each of the
        # two servers.
        refused = None
        for i in range(2 * MAX_PER_ADDRESS + 1):
            status, ws = await handshake_status(cluster.url(f"p{i}"), "127.0.0.50",
                                                {"X-Forwarded-For": f"10.3.0.{i}"})
            held.append(ws)
            if status != 101:
                refused = (i, status)
                break
        if refused is None or refused[1] != 429:
            fail(f"through nginx, forged X-Forwarded-For values got 127.0.0.50 "
                 f"{2 * MAX_PER_ADDRESS + 1} connections (or another status: {refused})")
        # From the trusted proxy's address, a malformed header is refused.
        status, ws = await handshake_status(direct(0), "127.0.0.1", {"X-Forwarded-For": "bogus"})
        held.append(ws)
        if status != 400:
            fail(f"a malformed X-Forwarded-For from the trusted proxy got {status}, not 400")
        log(f"X-Forwarded-For: {MAX_PER_ADDRESS} connections per forwarded client address "
            f"and server, then 429; forged values from a client ignored, through nginx or "
            f"not; a malformed header from the proxy refused with 400 "
            f"(nginx refused 127.0.0.50 at connection {refused[0] + 1})")
    finally:
        await asyncio.gather(*(ws.close() for ws in held if ws is not None))


async def scenario(cluster):
    clients = [Client(cluster, n) for n in range(CLIENTS)]
    for c in clients:
        c.task = asyncio.create_task(c.run())
    try:
        await connect_all(clients)
        await until("both servers report their share of the clients",
                    lambda: sum(cluster.health(i)["connections"] for i in range(2)) == CLIENTS,
                    20)
        counts = [cluster.health(i)["connections"] for i in range(2)]
        if not all(60 <= n <= 140 for n in counts):
            fail(f"nginx spread the clients {counts[0]} / {counts[1]}, not evenly")
        log(f"{CLIENTS} clients through nginx: {counts[0]} on one server, {counts[1]} on the other")
        # Probes until one reaches everyone: the servers' subscriptions are in place.
        deadline = time.monotonic() + 20
        while not all(any(t == "probe" for _, t in c.messages) for c in clients):
            if time.monotonic() > deadline:
                fail("no probe message reached every client within 20 s")
            await clients[0].send("probe")
            await asyncio.sleep(0.1)
        await exchange(clients, "round1", 2)

        await address_limits(cluster)

        # Redis goes away.
        await asyncio.to_thread(cluster.kill, "redis")
        await until("every client told the backplane is down",
                    lambda: all(c.saw("backplane", state="down") for c in clients), 15)
        log("Redis killed: every client was told the backplane is down")
        # A message sent meanwhile reaches its own server's members only.
        lonely = clients[0]
        await lonely.send("while-down")
        await asyncio.sleep(1.0)
        reached = [c for c in clients if ("c0", "while-down") in c.messages]
        if not 60 <= len(reached) <= 140:
            fail(f"a message sent while Redis was down reached {len(reached)} clients, "
                 f"not only its own server's members")
        strangers = [c for c in clients if c not in reached]
        await asyncio.to_thread(cluster.start_redis)
        await until("every client told the backplane is up again",
                    lambda: all(c.saw("backplane", state="up") for c in clients), 30)
        log("Redis restarted: every client was told the backplane is up")
        # The next message from c0's server shows the other server's members the gap.
        await lonely.send("after-down")
        await until("the other server's members told what they missed",
                    lambda: all(c.saw("missed", room=ROOM) for c in strangers), 10)
        await until("the message after the outage",
                    lambda: all(("c0", "after-down") in c.messages for c in clients), 10)
        if any(("c0", "while-down") in c.messages for c in strangers):
            fail("a message published while Redis was down arrived late on the other server")
        log(f"a message sent while Redis was down reached the {len(reached)} members of its "
            f"server; the other {len(strangers)} were told it was missed")
        await exchange(clients, "round2", 1)

        # A chat server dies.
        await asyncio.to_thread(cluster.kill, cluster.chat_name(0))
        survivors = 1
        await until("the killed server's clients noticed",
                    lambda: sum(not c.connected.is_set() for c in clients) > 0, 10)
        await connect_all(clients)
        await until("all clients on the remaining server",
                    lambda: cluster.health(survivors)["connections"] == CLIENTS, 30)
        log(f"one server killed: all {CLIENTS} clients reconnected through nginx to the other")
        await exchange(clients, "round3", 1)

        # Draining on deploy: the killed server comes back, the other is stopped (SIGTERM).
        await asyncio.to_thread(cluster.start_chat, 0)
        await until("the restarted server linked to Redis",
                    lambda: cluster.health(0)["backplane"] == "up", 20)
        # As a deploy does: the old server is drained only once the load balancer sends
        # new connections to the new one (nginx left it out for a while after it died).
        canary = await until_routed(cluster, 0, 30)
        before = [len(c.closes) for c in clients]
        # (In a thread: the clients answer the closing handshakes meanwhile.)
        code = await asyncio.to_thread(cluster.kill, cluster.chat_name(1), signal.SIGTERM)
        if code != 0:
            fail(f"the stopped server exited with {code}")
        # The server has exited; the clients' own tasks note the close codes as they run.
        closed = lambda: all(len(c.closes) > b for c, b in zip(clients, before))  # noqa: E731
        await until("every client of the stopped server saw its connection end", closed, 10)
        codes = sorted({c.closes[-1] for c in clients}, key=str)
        if codes != [1001]:
            fail(f"the stopped server's clients were closed with {codes}, not only 1001")
        await connect_all(clients)
        await until("all clients (and the canary) on the restarted server",
                    lambda: cluster.health(0)["connections"] == CLIENTS + 1, 30)
        log(f"SIGTERM: the server closed its {CLIENTS} clients with 1001 and exited; they "
            f"reconnected to the other")
        await exchange(clients, "round4", 1)
        await canary.close()
    finally:
        for c in clients:
            c.stopped = True
            if c.ws is not None:
                await c.ws.close()
        for c in clients:
            c.task.cancel()
        await asyncio.gather(*(c.task for c in clients), return_exceptions=True)


def test():
    try:
        import websockets  # noqa: F401
    except ImportError:
        venv = os.path.join(ROOT, ".venv")
        python = os.path.join(venv, "bin", "python3")
        if os.path.exists(python) and os.path.realpath(sys.prefix) != os.path.realpath(venv):
            os.execv(python, [python, *sys.argv])
        fail("Python's websockets is missing: run scripts/test.sh first (it makes .venv)")
    ensure_installed()
    build()
    started = time.monotonic()
    with Cluster() as cluster:
        try:
            asyncio.run(asyncio.wait_for(scenario(cluster), 300))
        except asyncio.TimeoutError:
            print(cluster.logs(), file=sys.stderr)
            raise SystemExit("scale-out: FAILED: the scenario did not finish within 300 s")
        except Failure as e:
            print(cluster.logs(), file=sys.stderr)
            raise SystemExit(f"scale-out: FAILED: {e}")
    log(f"passed in {time.monotonic() - started:.1f} s")


# --- the figures ----------------------------------------------------------------------------

def fanout(cluster, subscribers, size, rate, count):
    load = subprocess.run(
        [os.path.join(BIN, "bench_fanout"), f"127.0.0.1:{cluster.front}", str(subscribers),
         str(size), str(rate), str(count)],
        capture_output=True, text=True, timeout=count / rate + 300)
    line = [l for l in load.stdout.splitlines() if l.startswith("{")]
    if not line:
        fail(f"bench_fanout gave no result: {load.stdout}{load.stderr}")
    result = json.loads(line[0])
    result["ok"] = load.returncode == 0
    return result


def measure():
    ensure_installed()
    build(("chat", "bench_fanout"))
    # The protections opened up for one sender at thousands of messages a second and 1,000
    # connections from 16 addresses; and a send queue that holds the whole throughput run, so
    # that what is measured is what the servers deliver, not the 100 load-generating clients
    # (on the same two cores) being closed as slow readers.
    flags = ["--rate", "1000000", "--burst", "1000000", "--byte-rate", str(1 << 40),
             "--max-per-address", "100000", "--send-queue", str(1 << 30)]
    rows = []
    for servers in (1, 2):
        for label, params in (("throughput", (100, 1024, 5000, 20000)),
                              ("latency", (1000, 1024, 20, 200))):
            with Cluster(servers, flags) as cluster:
                time.sleep(1.0)  # the links to Redis are up
                r = fanout(cluster, *params)
                r["servers"], r["label"] = servers, label
                r["per_second"] = r["delivered"] / r["seconds"]
                rows.append(r)
                print(json.dumps(r), flush=True)
    print("\n| servers | load | deliveries/s | delivery p50 / p99 | all reached p50 / p99 | complete |")
    print("|---:|---|---:|---:|---:|---|")
    for r in rows:
        load = (f"{r['subscribers']} subscribers, {r['messages']} × 1 KiB"
                f" at {'5,000' if r['label'] == 'throughput' else '20'}/s")
        print(f"| {r['servers']} | {load} | {r['per_second']:,.0f} | "
              f"{r['p50_us'] / 1000:.1f} / {r['p99_us'] / 1000:.1f} ms | "
              f"{r['all_p50_us'] / 1000:.1f} / {r['all_p99_us'] / 1000:.1f} ms | "
              f"{'yes' if r['ok'] else 'NO'} |")


def main():
    try:
        run_main()
    except Failure as e:
        raise SystemExit(f"scale-out: FAILED: {e}")


def run_main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--measure", action="store_true", help="the README's figures")
    args = parser.parse_args()
    if args.measure:
        measure()
    else:
        test()


if __name__ == "__main__":
    main()
