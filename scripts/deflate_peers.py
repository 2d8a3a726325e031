#!/usr/bin/env python3
"""Python `websockets` peers for the compressed-idle measurement in scripts/e2e.py (run with
the interpreter of .venv, which has `websockets`):

    deflate_peers.py server PORT
        an echo server with websockets' default compression (permessage-deflate answered
        with 12-bit windows both ways, memLevel 5, context takeover); prints "listening"
        once it listens on 127.0.0.1:PORT.
    deflate_peers.py idle PORT CONNECTIONS HOLD
        opens CONNECTIONS clients (compression on, websockets' default offer), each sends
        one 1 KiB JSON-like text message and waits for its echo, checking it; prints
        "ready N" once every connection exchanged its message, holds them HOLD seconds,
        then closes them. Fails unless every connection negotiated permessage-deflate.

Loopback only; every wait is bounded.
"""

import asyncio
import sys

from websockets.asyncio.client import connect
from websockets.asyncio.server import serve

MESSAGE = ('{"user":"ada","room":"lobby","text":"hello, everyone in the room"} ' * 16)[:1024]


async def echo(ws):
    async for message in ws:
        await ws.send(message)


async def run_server(port):
    async with serve(echo, "127.0.0.1", port, max_size=None):
        print("listening", flush=True)
        await asyncio.Future()


async def one_client(port):
    ws = await connect(f"ws://127.0.0.1:{port}/", open_timeout=30, max_size=None)
    extensions = ws.response.headers.get("Sec-WebSocket-Extensions", "")
    if "permessage-deflate" not in extensions:
        raise SystemExit(f"compression was not negotiated: {extensions!r}")
    await ws.send(MESSAGE)
    echoed = await asyncio.wait_for(ws.recv(), 30)
    if echoed != MESSAGE:
        raise SystemExit("the echo differs")
    return ws


async def run_idle(port, connections, hold):
    clients = []
    # Opened in batches, so the server's accept queue is not the limit.
    for start in range(0, connections, 100):
        batch = range(start, min(start + 100, connections))
        clients += await asyncio.gather(*(one_client(port) for _ in batch))
    print(f"ready {len(clients)}", flush=True)
    await asyncio.sleep(hold)
    await asyncio.gather(*(ws.close() for ws in clients), return_exceptions=True)


def main():
    if sys.argv[1] == "server":
        asyncio.run(run_server(int(sys.argv[2])))
    elif sys.argv[1] == "idle":
        asyncio.run(run_idle(int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])))
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main()
