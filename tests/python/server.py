#!/usr/bin/env python3
"""The Python `websockets` echo server of tests/interop_python.rs, for this crate's tokio
client:

    server.py

Listens on 127.0.0.1, on a port the system picks, with websockets' default compression
(permessage-deflate), and echoes every message with its type. Prints "listening PORT" once
it listens; then, for each connection that ends, a line with the extension it answered,
the messages it echoed and the close code it got. Stops when its standard input reaches
its end (the test closes it), or after 120 s whatever happens, and prints "echoed N
messages" with the total.
"""

import asyncio
import os
import sys

from websockets.asyncio.server import serve
from websockets.exceptions import ConnectionClosed

LIFETIME = 120
echoed = 0


async def echo(ws):
    global echoed
    count = 0
    try:
        async for message in ws:
            await ws.send(message)
            count += 1
    except ConnectionClosed:
        pass
    echoed += count
    extensions = ws.response.headers.get("Sec-WebSocket-Extensions", "")
    print(f"connection: extensions {extensions!r}, {count} messages, close {ws.close_code}",
          flush=True)


async def main():
    loop = asyncio.get_running_loop()
    stop = loop.create_future()

    def on_stdin():
        if not os.read(sys.stdin.fileno(), 4096) and not stop.done():
            stop.set_result(None)

    loop.add_reader(sys.stdin.fileno(), on_stdin)
    async with serve(echo, "127.0.0.1", 0, max_size=4 * 1024 * 1024) as server:
        port = server.sockets[0].getsockname()[1]
        print(f"listening {port}", flush=True)
        try:
            await asyncio.wait_for(stop, LIFETIME)
        except asyncio.TimeoutError:
            print(f"stopping after {LIFETIME} s: standard input never ended", flush=True)
    print(f"echoed {echoed} messages", flush=True)


if __name__ == "__main__":
    asyncio.run(main())
