#!/usr/bin/env python3
"""The chat example in a real browser: headless Chromium driven over the DevTools protocol.

Starts the chat example (built beforehand: target/release/examples/chat) on a free loopback
port and two pages in one room, then checks, failing with a message if any does not hold:

- messages go both ways between the two pages, with names, over permessage-deflate;
- a 1 MiB WebSocket message (the largest the server takes) arrives intact;
- markup in a message shows as text (no element is created, no script runs);
- the server is restarted and both pages reconnect by themselves, and chat on.

With --screenshot FILE, a short conversation is staged and the page saved as a PNG (the
README's docs/chat.png). Every wait is bounded; the whole run stops within about two
minutes. Needs Chromium (chromium or chromium-browser on PATH, or $CHROMIUM) and Python's
`websockets` (scripts/test.sh installs both).
"""

import argparse
import asyncio
import base64
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--remote-debugging-port=0",
]


def fail(message):
    print(f"browser_chat: FAILED: {message}", file=sys.stderr)
    sys.exit(1)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def chromium():
    for name in [os.environ.get("CHROMIUM"), "chromium", "chromium-browser", "google-chrome"]:
        if name and shutil.which(name):
            return shutil.which(name)
    fail("no Chromium on PATH (scripts/test.sh installs Debian's chromium)")


class Server:
    """The chat example, started and stopped on one port."""

    def __init__(self, binary, port):
        self.binary, self.port, self.process = binary, port, None

    def start(self):
        self.process = subprocess.Popen(
            [self.binary, f"127.0.0.1:{self.port}"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        line = self.process.stdout.readline()
        if "open http://" not in line:
            fail(f"the chat example did not start: {line!r}")

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)


class Browser:
    """One Chromium, its DevTools connection, and pages as flattened sessions."""

    def __init__(self, ws):
        self.ws, self.next_id, self.pending = ws, 0, {}
        self.reader = asyncio.create_task(self.read())

    async def read(self):
        try:
            async for raw in self.ws:
                message = json.loads(raw)
                future = self.pending.pop(message.get("id"), None)
                if future and not future.done():
                    future.set_result(message)
        except ConnectionClosed:
            # The browser went away (at the end, or it crashed: the pending call times out).
            pass

    async def call(self, method, session=None, **params):
        self.next_id += 1
        future = asyncio.get_running_loop().create_future()
        self.pending[self.next_id] = future
        command = {"id": self.next_id, "method": method, "params": params}
        if session:
            command["sessionId"] = session
        await self.ws.send(json.dumps(command))
        reply = await asyncio.wait_for(future, 30)
        if "error" in reply:
            fail(f"{method}: {reply['error']}")
        return reply["result"]

    async def page(self, url):
        target = await self.call("Target.createTarget", url="about:blank")
        attached = await self.call(
            "Target.attachToTarget", targetId=target["targetId"], flatten=True
        )
        page = Page(self, attached["sessionId"])
        await page.call("Page.enable")
        await page.call("Runtime.enable")
        await page.call(
            "Emulation.setDeviceMetricsOverride",
            width=820,
            height=560,
            deviceScaleFactor=1,
            mobile=False,
        )
        await page.call("Page.navigate", url=url)
        return page


class Page:
    def __init__(self, browser, session):
        self.browser, self.session = browser, session

    async def call(self, method, **params):
        return await self.browser.call(method, self.session, **params)

    async def eval(self, expression):
        result = await self.call(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
        )
        if "exceptionDetails" in result:
            fail(f"{expression[:80]}: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def wait(self, expression, what, timeout=20):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if await self.eval(expression):
                    return
            except SystemExit:
                raise
            await asyncio.sleep(0.1)
        fail(f"timed out waiting for {what}")

    async def state(self):
        return await self.eval("document.getElementById('status').dataset.state")

    async def send(self, text):
        sent = await self.eval(f"window.chat.send({json.dumps(text)})")
        if not sent:
            fail("the page could not send (not connected)")

    async def texts(self):
        return await self.eval(
            "[...document.querySelectorAll('#messages li.message')]"
            ".map(li => [li.dataset.name, li.querySelector('.text').textContent])"
        )


async def run(args):
    binary = os.path.join(ROOT, "target", "release", "examples", "chat")
    if not os.path.exists(binary):
        fail(f"{binary} is missing: cargo build --release --features axum,deflate --example chat")
    port = free_port()
    server = Server(binary, port)
    server.start()
    profile = tempfile.mkdtemp(prefix="wsmachine-chromium-")
    browser_process = subprocess.Popen(
        [chromium(), *FLAGS, f"--user-data-dir={profile}", "about:blank"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        active = os.path.join(profile, "DevToolsActivePort")
        deadline = time.monotonic() + 30
        while not (os.path.exists(active) and len(open(active).read().split()) >= 2):
            if time.monotonic() > deadline or browser_process.poll() is not None:
                fail("Chromium did not open its DevTools port")
            await asyncio.sleep(0.1)
        devtools_port, path = open(active).read().split()[:2]
        async with connect(f"ws://127.0.0.1:{devtools_port}{path}", max_size=None) as ws:
            browser = Browser(ws)
            await check(browser, server, port, args)
    finally:
        browser_process.kill()
        browser_process.wait(timeout=10)
        server.stop()
        shutil.rmtree(profile, ignore_errors=True)


async def check(browser, server, port, args):
    base = f"http://127.0.0.1:{port}"
    ann = await browser.page(f"{base}/?room=tea&name=ann")
    bob = await browser.page(f"{base}/?room=tea&name=bob")
    for page in (ann, bob):
        await page.wait("document.getElementById('status').dataset.state === 'open'", "a page to connect")

    # Both ways, with names.
    await ann.send("hello bob")
    await bob.wait("[...document.querySelectorAll('#messages li.message .text')].some(e => e.textContent === 'hello bob')", "bob to see ann's message")
    await bob.send("hi ann!")
    await ann.wait("[...document.querySelectorAll('#messages li.message .text')].some(e => e.textContent === 'hi ann!')", "ann to see bob's message")
    if ["ann", "hello bob"] not in await bob.texts() or ["bob", "hi ann!"] not in await ann.texts():
        fail(f"names or texts wrong: {await bob.texts()}")
    print("browser_chat: two pages exchange messages both ways")
    extensions = await ann.eval("window.chat.extensions")
    if not (extensions or "").startswith("permessage-deflate"):
        fail(f"Chromium and the server did not agree on permessage-deflate: {extensions!r}")
    print(f"browser_chat: Chromium negotiated {extensions}")

    # The largest message the server takes: a 1 MiB WebSocket message.
    overhead = len('{"type":"message","text":""}')
    size = (1 << 20) - overhead
    await ann.eval(f"window.chat.send('0123456789abcdef'.repeat({size // 16}) + 'x'.repeat({size % 16}))")
    await bob.wait(f"[...document.querySelectorAll('#messages li.message .text')].some(e => e.textContent.length === {size})", "the 1 MiB message", timeout=30)
    intact = await bob.eval(
        f"[...document.querySelectorAll('#messages li.message .text')].find(e => e.textContent.length === {size}).textContent"
        f" === '0123456789abcdef'.repeat({size // 16}) + 'x'.repeat({size % 16})"
    )
    if not intact:
        fail("the 1 MiB message arrived altered")
    print(f"browser_chat: a {size + overhead}-byte message arrived intact")

    # Markup is shown as text.
    markup = '<img src=x onerror="window.pwned=1"><b>bold</b><script>window.pwned=2</script>'
    await ann.send(markup)
    await bob.wait(f"[...document.querySelectorAll('#messages li.message .text')].some(e => e.textContent === {json.dumps(markup)})", "the markup message")
    elements = await bob.eval("document.querySelectorAll('#messages img, #messages b, #messages script').length")
    pwned = await bob.eval("typeof window.pwned")
    if elements != 0 or pwned != "undefined":
        fail(f"markup was interpreted: {elements} elements, window.pwned is {pwned}")
    print("browser_chat: markup shows as text")

    # The server goes away and comes back: the pages reconnect by themselves.
    server.stop()
    for page in (ann, bob):
        await page.wait("document.getElementById('status').dataset.state !== 'open'", "a page to see the server gone")
    server.start()
    for page in (ann, bob):
        await page.wait("document.getElementById('status').dataset.state === 'open'", "a page to reconnect", timeout=30)
    await bob.send("back again")
    await ann.wait("[...document.querySelectorAll('#messages li.message .text')].some(e => e.textContent === 'back again')", "a message after the restart")
    print("browser_chat: both pages reconnected after a server restart and chat on")

    if args.screenshot:
        await screenshot(browser, base, args.screenshot)


async def screenshot(browser, base, path):
    """Two people chatting, saved as a PNG."""
    ann = await browser.page(f"{base}/?room=lobby&name=ann")
    await ann.wait("document.getElementById('status').dataset.state === 'open'", "ann to connect")
    bob = await browser.page(f"{base}/?room=lobby&name=bob")
    await bob.wait("document.getElementById('status').dataset.state === 'open'", "bob to connect")
    lines = [
        (ann, "hi bob! this page is served by axum, the chat by wsmachine"),
        (bob, "hey ann. each message here is encoded once for the whole room"),
        (ann, "and compressed once, too: permessage-deflate without context takeover"),
        (bob, "<b>markup</b> stays text, by the way"),
        (ann, "nice. see you in the lobby"),
    ]
    for page, text in lines:
        await page.send(text)
        await asyncio.sleep(0.2)
    await bob.wait("document.querySelectorAll('#messages li.message').length >= 5", "the conversation")
    shot = await bob.call("Page.captureScreenshot", format="png")
    with open(path, "wb") as f:
        f.write(base64.b64decode(shot["data"]))
    print(f"browser_chat: screenshot saved to {path}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--screenshot", metavar="FILE", help="save two people chatting as a PNG")
    args = parser.parse_args()
    try:
        asyncio.run(asyncio.wait_for(run(args), 150))
    except asyncio.TimeoutError:
        fail("the browser test did not finish within 150 s")
    print("browser_chat: OK")


if __name__ == "__main__":
    main()
