#!/usr/bin/env python3
"""The Python `websockets` client of tests/interop_python.rs, run against this crate's tokio
echo server:

    client.py URL [--no-compression]

Sends text and binary messages of 0 B to 1 MiB (compressible and random), fragmented ones,
and 500 small messages pipelined on the same connection (so the server inflates with the
client's context taken over from message to message), checks every echo byte for byte, then
closes with 1000. With compression (websockets' default, permessage-deflate) it checks that
the server's 101 accepted permessage-deflate and left the client its context takeover;
with --no-compression that no extension was answered.

Prints one line per problem and a summary; the last line is "OK N messages" when every echo
matched. Exits 0 then, 1 on any mismatch, 2 when the connection itself failed. Every wait is
bounded (60 s in all); traffic goes only to URL (127.0.0.1 in the tests).
"""

import asyncio
import random
import sys

from websockets.asyncio.client import connect

KIB = 1024
MIB = 1024 * KIB
SIZES = [0, 1, 100, 10 * KIB, 100 * KIB, MIB]
SMALL_MESSAGES = 500
TOTAL_TIMEOUT = 60
WORDS = (
    "the quick brown fox jumps over a lazy dog while wörld café naïve "
    "日本語 テキスト 🎉 🦀 ⚡ message frame deflate window context inflate"
).split()


def text_of(size, rng):
    """A text message of exactly `size` UTF-8 bytes: words (some multi-byte), so it
    compresses the way text does."""
    parts, length = [], 0
    while length < size:
        word = rng.choice(WORDS) + " "
        parts.append(word)
        length += len(word.encode())
    text = "".join(parts).encode()[:size].decode("utf-8", "ignore")
    return text + "x" * (size - len(text.encode()))


def compressible_bytes(size, rng):
    """Binary that compresses: a short pattern repeated, with some bytes changed."""
    pattern = bytes(rng.randrange(256) for _ in range(61))
    data = bytearray((pattern * (size // len(pattern) + 1))[:size])
    for _ in range(size // 97):
        data[rng.randrange(size)] = rng.randrange(256)
    return bytes(data)


def split(message, cuts):
    """`message` cut at the fractions `cuts` (on characters for text): the fragments."""
    points = [0] + [int(len(message) * c) for c in cuts] + [len(message)]
    return [message[a:b] for a, b in zip(points, points[1:])]


def cases(rng):
    """(name, message or list of fragments) for every single message sent."""
    out = []
    for size in SIZES:
        out.append((f"text {size} B", text_of(size, rng)))
        out.append((f"binary {size} B compressible", compressible_bytes(size, rng)))
        out.append((f"binary {size} B random", rng.randbytes(size)))
    out.append(("text 100 KiB in 7 fragments", split(text_of(100 * KIB, rng),
                                                    [0.01, 0.1, 0.3, 0.31, 0.7, 0.99])))
    out.append(("text 10 KiB in 3 fragments, one empty", split(text_of(10 * KIB, rng),
                                                               [0.5, 0.5])))
    out.append(("text 1 B in 1 fragment", [text_of(1, rng)]))
    out.append(("binary 1 MiB random in 16 fragments", split(rng.randbytes(MIB),
                                                             [i / 16 for i in range(1, 16)])))
    out.append(("binary 100 KiB compressible in 4 fragments",
                split(compressible_bytes(100 * KIB, rng), [0.25, 0.5, 0.75])))
    return out


def small_messages(rng):
    """Chat-like messages, 1 to ~300 bytes, text and binary alternating: alike enough that
    the client's compressor refers back to earlier messages (context takeover)."""
    out = []
    for i in range(SMALL_MESSAGES):
        if i % 3 == 2:
            out.append(bytes([i % 256]) * rng.randrange(1, 200))
        else:
            words = " ".join(rng.choice(WORDS) for _ in range(rng.randrange(0, 30)))
            out.append(f'{{"seq":{i},"user":"ada","room":"lobby","text":"{words}"}}')
    return out


def describe(message):
    kind = "text" if isinstance(message, str) else "binary"
    data = message.encode() if isinstance(message, str) else message
    return kind, data


def mismatch(name, sent, got):
    """What differs between the message sent and its echo, or None when they match."""
    if isinstance(sent, list):
        sent = "".join(sent) if sent and isinstance(sent[0], str) else b"".join(sent)
    if type(sent) is not type(got):
        return f"{name}: sent {describe(sent)[0]}, echo is {describe(got)[0]}"
    if sent == got:
        return None
    _, a = describe(sent)
    _, b = describe(got)
    first = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
    return f"{name}: sent {len(a)} bytes, echo has {len(b)}, first difference at byte {first}"


async def run(url, compression):
    rng = random.Random(7692)
    problems = []
    options = {} if compression else {"compression": None}
    async with connect(url, open_timeout=10, close_timeout=10, max_size=4 * MIB,
                       **options) as ws:
        extensions = ws.response.headers.get("Sec-WebSocket-Extensions", "")
        print(f"Sec-WebSocket-Extensions: {extensions!r}")
        if compression:
            if "permessage-deflate" not in extensions:
                problems.append(f"compression was not negotiated: {extensions!r}")
            if "client_no_context_takeover" in extensions:
                problems.append(f"the server took away the client's context: {extensions!r}")
        elif extensions:
            problems.append(f"an extension was answered to a client offering none: "
                            f"{extensions!r}")

        count = 0
        for name, message in cases(rng):
            await ws.send(message)
            echo = await asyncio.wait_for(ws.recv(), 20)
            count += 1
            if (problem := mismatch(name, message, echo)) is not None:
                problems.append(problem)

        # Pipelined: the echoes are read while the next messages are still being sent.
        small = small_messages(rng)

        async def send_all():
            for message in small:
                await ws.send(message)

        async def receive_all():
            return [await asyncio.wait_for(ws.recv(), 20) for _ in small]

        _, echoes = await asyncio.gather(send_all(), receive_all())
        for i, (message, echo) in enumerate(zip(small, echoes)):
            count += 1
            if (problem := mismatch(f"small message {i}", message, echo)) is not None:
                problems.append(problem)

        await ws.close(1000)
        if ws.close_code != 1000:
            problems.append(f"the server answered the close with {ws.close_code}, not 1000")

    for problem in problems:
        print("MISMATCH " + problem)
    if problems:
        print(f"FAILED: {len(problems)} problems in {count} messages")
        return 1
    print(f"OK {count} messages")
    return 0


def main():
    args = sys.argv[1:]
    if len(args) not in (1, 2) or (len(args) == 2 and args[1] != "--no-compression"):
        print(__doc__, file=sys.stderr)
        return 2
    compression = len(args) == 1
    try:
        return asyncio.run(asyncio.wait_for(run(args[0], compression), TOTAL_TIMEOUT))
    except Exception as e:  # noqa: BLE001 - reported, and the exit status says it failed
        print(f"ERROR: the connection failed: {type(e).__name__}: {e}")
        return 2


if __name__ == "__main__":
    sys.exit(main())
