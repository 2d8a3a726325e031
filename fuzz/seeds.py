#!/usr/bin/env python3
"""Writes the seed corpora (fuzz/corpus/<target>/seed-*) from the RFC 6455 examples and the
cases the tests use. Run from anywhere: python3 fuzz/seeds.py. The layout of each target's
input (the bytes before the stream) is described in fuzz/README.md."""

import os

HERE = os.path.dirname(os.path.abspath(__file__))
KEY = b"\x37\xfa\x21\x3d"  # RFC 6455 §5.7's masking key


def mask(payload, key=KEY):
    return bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def frame(opcode, payload, fin=True, masked=True, rsv=0):
    b0 = (0x80 if fin else 0) | (rsv << 4) | opcode
    m = 0x80 if masked else 0
    n = len(payload)
    if n < 126:
        head = bytes([b0, m | n])
    elif n < 65536:
        head = bytes([b0, m | 126]) + n.to_bytes(2, "big")
    else:
        head = bytes([b0, m | 127]) + n.to_bytes(8, "big")
    return head + (KEY + mask(payload) if masked else payload)


def close(code, reason=b"", masked=True):
    return frame(8, code.to_bytes(2, "big") + reason, masked=masked)


def conversation(masked):
    """RFC 6455 §5.7's examples, then a close."""
    return (
        frame(1, b"Hello", masked=masked)
        + frame(1, b"Hel", fin=False, masked=masked)
        + frame(9, b"Hello", masked=masked)
        + frame(0, b"lo", masked=masked)
        + frame(2, bytes(range(256)), masked=masked)
        + frame(10, b"Hello", masked=masked)
        + close(1000, b"bye", masked=masked)
    )


REQUEST = (
    b"GET /chat HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\n"
    b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    b"Origin: http://example.com\r\nSec-WebSocket-Protocol: chat, superchat\r\n"
    b"Sec-WebSocket-Version: 13\r\n\r\n"
)

# frame_decoder: limit indexes (buffer, frame, message, fragments, auto_pong), drain, 9 bytes
# of read sizes (a count, then indexes into the size table), then the stream.
def decoder(buffer=1, frame_limit=7, message=7, fragments=4, pong=0, drain=1, reads=(1, 0, 12)):
    reads = bytes(reads) + bytes(9 - len(reads))
    return bytes([buffer, frame_limit, message, fragments, pong, drain]) + reads

# inflate_frames: limit indexes (buffer, frame, message, fragments, auto_pong), drain, 9 bytes
# of read sizes, a settings index, an offer choice (< 0x80: the table; else the raw bytes
# that follow), the raw offer's length and bytes, then operations: (op, length, header byte,
# body), where op % 7 picks the kind (0/1 compressed, 2 fragmented, 3 corrupted, 4 plain,
# 5 a run of bytes compressed, 6 any header) and op's low bit text or binary.
def inflate(settings=0, offer=1, raw=b"", reads=(1, 0, 15), buffer=3, message=7):
    reads = bytes(reads) + bytes(9 - len(reads))
    return bytes([buffer, 7, message, 4, 0, 1]) + reads + bytes([settings, offer, len(raw)]) + raw


def op(kind, body, head=0):
    return bytes([kind, len(body), head]) + body


CHAT = "{\"user\":\"ada\",\"text\":\"héllo wörld 😀\"} ".encode()

SEEDS = {
    "inflate_frames": {
        "messages": inflate() + op(14, CHAT) + op(14, CHAT) + op(0x11, bytes(range(200))),
        "fragmented": inflate(offer=3) + op(0x10, CHAT * 3) + op(14, CHAT),
        "window-8": inflate(offer=2, reads=(2, 0, 3)) + op(14, CHAT * 4),
        "bomb": inflate(message=4) + op(5, b"z" * 200),
        "corrupt": inflate() + op(14, CHAT) + op(3, CHAT),
        "raw-offer": inflate(offer=0x80, raw=b"permessage-deflate; client_max_window_bits=10")
        + op(14, CHAT) + op(6, b"ping", head=0x89),
        "rsv1-on-control": inflate() + op(6, b"x", head=0xC9) + op(14, CHAT),
        # Found by the fuzzer: 15-bit windows, so the copy of the window kept for context
        # takeover grew (by doubling) past the window and the heap past its bound.
        "regression-window-copy": bytes.fromhex(
            "030707040001010000000f00002d2e2f30313233343536373839413a3c3e3b403d3f42434445464748494a4b4c4d4e4f505152535455565758595a0a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728292aadaeafb0b1b2b3b4b5b6b7b8b928292aadae0b0c0d0e0f1011121314b9babbbcbdbe7ec0c1c2ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffc3c4c5c6c7"
        ),
    },
    "frame_decoder": {
        "rfc-masked": decoder() + conversation(True),
        "rfc-unmasked": decoder(reads=(0, 15)) + conversation(False),
        "big-text-in-pieces": decoder(buffer=0, reads=(2, 7, 3, 12))
        + frame(1, "é ascii ∑ 😀 ".encode() * 100)
        + close(1001),
        "invalid-utf8-first-fragment": decoder()
        + frame(1, b"ok \xed\xa0\x80 surrogate", fin=False)
        + frame(0, b"more"),
        "huge-length": decoder() + bytes([0x82, 0xFF, 0x7F]) + b"\xff" * 7 + KEY,
        "many-fragments": decoder(message=2, fragments=5)
        + frame(2, b"a", fin=False)
        + b"".join(frame(0, b"b", fin=False) for _ in range(40)),
        "ping-flood": decoder(drain=0) + b"".join(frame(9, bytes([i])) for i in range(50)),
        "bad-close": decoder() + frame(8, b"\x03\xed") + close(1000, b"\xff"),
    },
    # handshake_request: buffer, head limit, header limit indexes; reads; the stream.
    "handshake_request": {
        "rfc": bytes([3, 6, 5, 0, 15]) + REQUEST + frame(1, b"Hello"),
        "byte-at-a-time": bytes([3, 6, 5, 0, 0]) + REQUEST,
        "post": bytes([3, 6, 5, 0, 15]) + REQUEST.replace(b"GET", b"POST", 1),
        "version-8": bytes([3, 6, 5, 0, 15]) + REQUEST.replace(b"Version: 13", b"Version: 8"),
        "no-host": bytes([3, 6, 5, 0, 15]) + REQUEST.replace(b"Host: server.example.com\r\n", b""),
        "two-keys": bytes([3, 6, 5, 0, 15])
        + REQUEST.replace(b"Origin", b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nOrigin"),
        "many-headers": bytes([3, 6, 3, 0, 15]) + REQUEST.replace(b"\r\n\r\n", b"\r\nX: y" * 20 + b"\r\n\r\n"),
        "head-too-large": bytes([3, 3, 5, 0, 15]) + b"GET / HTTP/1.1\r\nX: " + b"a" * 400,
    },
    # handshake_response: buffer, head limit, header limit, offer bits; reads; the stream,
    # where `{accept}` stands for the right Sec-WebSocket-Accept.
    "handshake_response": {
        "rfc": bytes([3, 6, 5, 1, 0, 15])
        + b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: {accept}\r\nSec-WebSocket-Protocol: chat\r\n\r\n"
        + conversation(False),
        "extension": bytes([3, 6, 5, 3, 1, 0, 2])
        + b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: upgrade\r\n"
        b"Sec-WebSocket-Accept: {accept}\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n",
        "redirect": bytes([3, 6, 5, 0, 0, 15])
        + b"HTTP/1.1 302 Found\r\nLocation: /elsewhere\r\nContent-Length: 5\r\n\r\nmovedextra",
        "wrong-accept": bytes([3, 6, 5, 0, 0, 15])
        + b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n",
        "http-1.0": bytes([3, 6, 5, 0, 0, 15]) + b"HTTP/1.0 200 OK\r\n\r\n",
    },
    # differential_tungstenite: frame and message limit indexes, then the stream (masked,
    # as a client sends).
    "differential_tungstenite": {
        "rfc": bytes([6, 7]) + conversation(True),
        "small-limits": bytes([3, 4]) + frame(9, b"0123456789ab") + frame(2, b"x" * 150),
        "fragment-overhead": bytes([6, 5])
        + frame(2, b"a" * 400, fin=False)
        + frame(0, b"b" * 500, fin=False)
        + frame(0, b"c" * 90),
        "close-codes": bytes([6, 7]) + close(1014) + close(1004) + close(2999),
        "utf8-across-fragments": bytes([6, 7])
        + frame(1, "😀".encode()[:2], fin=False)
        + frame(9, b"")
        + frame(0, "😀".encode()[2:]),
        "unmasked": bytes([6, 7]) + frame(1, b"Hello", masked=False),
        # A ping whose 108-byte length is in the 64-bit form, under a frame limit of 0, cut
        # short: tungstenite rejects it from the header, wsmachine waits (README (5)).
        "control-extended-length": bytes([0, 3])
        + bytes([0x89, 0xFF])
        + (108).to_bytes(8, "big")
        + KEY
        + mask(b"p" * 60),
    },
}


def main():
    for target, seeds in SEEDS.items():
        folder = os.path.join(HERE, "corpus", target)
        os.makedirs(folder, exist_ok=True)
        for name, data in seeds.items():
            with open(os.path.join(folder, "seed-" + name), "wb") as f:
                f.write(data)


if __name__ == "__main__":
    main()
