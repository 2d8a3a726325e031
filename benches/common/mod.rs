//! Inputs shared by the benchmarks: wire bytes built by a tiny independent encoder (so a bug
//! in the crate's own encoder cannot make its decoder look right), mixed UTF-8 text, and
//! in-memory streams for the peers.

#![allow(dead_code)]

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

/// Payload sizes of the `receive/*` and `send/*` groups.
pub const SIZES: [usize; 6] = [16, 125, 1024, 16384, 65536, 1048576];

/// How many messages one benchmark iteration handles: about 256 KiB of payload (at least one
/// message), so per-iteration overhead is negligible and small messages are measured in bulk.
pub fn messages_for(size: usize) -> usize {
    (256 * 1024 / size).max(1)
}

/// Text of exactly `len` bytes mixing ASCII with 2-, 3- and 4-byte UTF-8 sequences.
pub fn mixed_text(len: usize) -> String {
    const SAMPLE: &str = "The quick brown fox jumps over the lazy dog. Zwölf Boxkämpfer \
        jagen Viktor quer über den großen Sylter Deich; Ζεύς πάτερ, съешь же ещё этих \
        мягких французских булок; 日本語のテキストと中文字符 — 🦀🚀🎉 ok! ";
    let mut out = String::with_capacity(len);
    'fill: loop {
        for c in SAMPLE.chars() {
            if out.len() + c.len_utf8() > len {
                break 'fill;
            }
            out.push(c);
        }
    }
    while out.len() < len {
        out.push('.');
    }
    out
}

/// Binary payload of `len` bytes (all byte values, no pattern the XOR could shortcut).
pub fn binary(len: usize) -> Vec<u8> {
    let mut state = 0x2545_f491_u32;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            state as u8
        })
        .collect()
}

/// A frame header: FIN, opcode, mask bit and the shortest length encoding (RFC 6455 §5.2).
pub fn header(fin: bool, opcode: u8, mask: Option<[u8; 4]>, len: usize) -> Vec<u8> {
    let mut out = vec![u8::from(fin) << 7 | opcode];
    let mask_bit = if mask.is_some() { 0x80 } else { 0 };
    if len < 126 {
        out.push(mask_bit | len as u8);
    } else if len <= 0xFFFF {
        out.push(mask_bit | 126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(mask_bit | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    if let Some(key) = mask {
        out.extend_from_slice(&key);
    }
    out
}

/// The `n`-th masking key of a run: varied, never all zero.
pub fn key(n: usize) -> [u8; 4] {
    let x = (n as u32).wrapping_mul(0x9E37_79B9) ^ 0xA5A5_5A5A;
    x.to_le_bytes()
}

/// A masked frame (client to server) carrying `payload`, the naive way.
pub fn masked_frame(fin: bool, opcode: u8, payload: &[u8], key: [u8; 4]) -> Vec<u8> {
    let mut out = header(fin, opcode, Some(key), payload.len());
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    out
}

/// Wire bytes of `count` whole messages of `payload` (opcode 1 text, 2 binary), each in one
/// masked frame, with the byte range of each payload and its key.
pub struct Wire {
    pub bytes: Vec<u8>,
    pub payloads: Vec<(std::ops::Range<usize>, [u8; 4])>,
}

pub fn masked_messages(opcode: u8, payload: &[u8], count: usize) -> Wire {
    let mut bytes = Vec::new();
    let mut payloads = Vec::with_capacity(count);
    for n in 0..count {
        let frame = masked_frame(true, opcode, payload, key(n));
        let start = bytes.len() + frame.len() - payload.len();
        bytes.extend_from_slice(&frame);
        payloads.push((start..bytes.len(), key(n)));
    }
    Wire { bytes, payloads }
}

/// One text message split into `fragments` masked frames of (nearly) equal length; the cuts
/// fall wherever they fall, inside code points too.
pub fn fragmented_text(text: &str, fragments: usize) -> Vec<u8> {
    let bytes = text.as_bytes();
    let step = bytes.len().div_ceil(fragments);
    let mut out = Vec::new();
    for (n, piece) in bytes.chunks(step).enumerate() {
        let opcode = if n == 0 { 1 } else { 0 };
        let fin = (n + 1) * step >= bytes.len();
        out.extend_from_slice(&masked_frame(fin, opcode, piece, key(n)));
    }
    out
}

/// The baseline XOR: what unmasking costs with no parsing at all, over 32-byte blocks
/// against a 32-byte key pattern, which LLVM turns into vector loads, XORs and stores.
pub fn xor_payload(buf: &mut [u8], key: [u8; 4]) {
    let pattern: [u8; 32] = std::array::from_fn(|i| key[i % 4]);
    let mut blocks = buf.chunks_exact_mut(32);
    for block in &mut blocks {
        for i in 0..32 {
            block[i] ^= pattern[i];
        }
    }
    for (b, k) in blocks.into_remainder().iter_mut().zip(pattern) {
        *b ^= k;
    }
}

/// The baseline copy and mask: `dst = src ^ key`, in one pass, over 32-byte blocks against
/// a 32-byte key pattern, which LLVM turns into vector loads, XORs and stores.
pub fn copy_and_mask(dst: &mut [u8], src: &[u8], key: [u8; 4]) {
    let pattern: [u8; 32] = std::array::from_fn(|i| key[i % 4]);
    let mut d = dst.chunks_exact_mut(32);
    let mut s = src.chunks_exact(32);
    for (d, s) in (&mut d).zip(&mut s) {
        for i in 0..32 {
            d[i] = s[i] ^ pattern[i];
        }
    }
    for ((d, s), k) in d.into_remainder().iter_mut().zip(s.remainder()).zip(pattern) {
        *d = s ^ k;
    }
}

/// Parses the masked or unmasked frames in `wire` (whole messages, one frame each) and
/// returns their unmasked payloads: the check that a send benchmark produced real frames.
pub fn decode_frames(wire: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < wire.len() {
        let b0 = wire[at];
        let b1 = wire[at + 1];
        let (len, mut pos) = match b1 & 0x7F {
            126 => (u16::from_be_bytes([wire[at + 2], wire[at + 3]]) as usize, at + 4),
            127 => {
                let mut be = [0; 8];
                be.copy_from_slice(&wire[at + 2..at + 10]);
                (u64::from_be_bytes(be) as usize, at + 10)
            }
            n => (n as usize, at + 2),
        };
        let mut payload = wire[pos + if b1 & 0x80 != 0 { 4 } else { 0 }..][..len].to_vec();
        if b1 & 0x80 != 0 {
            let key = [wire[pos], wire[pos + 1], wire[pos + 2], wire[pos + 3]];
            pos += 4;
            for (i, b) in payload.iter_mut().enumerate() {
                *b ^= key[i % 4];
            }
        }
        assert_eq!(b0 & 0x80, 0x80, "benchmarks send whole messages");
        out.push((b0 & 0x0F, payload));
        at = pos + len;
    }
    out
}

/// A Chromium-like upgrade request (13 headers).
pub const CHROMIUM_REQUEST: &[u8] = b"GET /chat?room=lobby HTTP/1.1\r\n\
Host: server.example.com:8080\r\n\
Connection: Upgrade\r\n\
Pragma: no-cache\r\n\
Cache-Control: no-cache\r\n\
User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36\r\n\
Upgrade: websocket\r\n\
Origin: https://server.example.com\r\n\
Sec-WebSocket-Version: 13\r\n\
Accept-Encoding: gzip, deflate, br, zstd\r\n\
Accept-Language: en-US,en;q=0.9\r\n\
Cookie: session=8f14e45fceea167a5a36dedd4bea2543; theme=dark\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\
\r\n";

/// The `Sec-WebSocket-Accept` for the key above (RFC 6455 §1.3's example).
pub const CHROMIUM_ACCEPT: &[u8] = b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

/// An in-memory transport for the peers: reads copy out of `data` (as a socket read copies
/// out of the kernel) and start over from its beginning once it is used up, so a peer that
/// owns its stream sees the same bytes again on every iteration; writes are discarded unless
/// `capture` is set.
pub struct MemStream {
    pub data: Vec<u8>,
    pub pos: usize,
    pub written: usize,
    pub capture: Option<Vec<u8>>,
}

impl MemStream {
    pub fn new(data: Vec<u8>) -> Self {
        Self { data, pos: 0, written: 0, capture: None }
    }

    /// Rewinds to the start of `data` for the next iteration.
    pub fn rewind(&mut self) {
        self.pos = 0;
        self.written = 0;
    }

    /// The next at most `max` bytes to read.
    fn next_chunk(&mut self, max: usize) -> &[u8] {
        if self.pos == self.data.len() {
            self.pos = 0;
        }
        let start = self.pos;
        self.pos += max.min(self.data.len() - start);
        &self.data[start..self.pos]
    }

    fn write_from(&mut self, buf: &[u8]) -> usize {
        self.written += buf.len();
        if let Some(capture) = &mut self.capture {
            capture.extend_from_slice(buf);
        }
        buf.len()
    }
}

impl io::Read for MemStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let chunk = self.next_chunk(buf.len());
        buf[..chunk.len()].copy_from_slice(chunk);
        Ok(chunk.len())
    }
}

impl io::Write for MemStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        Ok(self.write_from(buf))
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl tokio::io::AsyncRead for MemStream {
    fn poll_read(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        // `put_slice` copies only the bytes read, never initializing the rest of the buffer.
        buf.put_slice(self.get_mut().next_chunk(buf.remaining()));
        Poll::Ready(Ok(()))
    }
}

impl tokio::io::AsyncWrite for MemStream {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Poll::Ready(Ok(self.get_mut().write_from(buf)))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        Poll::Ready(Ok(bufs.iter().map(|b| this.write_from(b)).sum()))
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// Connections that negotiated permessage-deflate through a real handshake in memory.
#[cfg(feature = "deflate")]
pub mod deflate {
    use wsmachine::{
        Accept, ClientRequest, Config, Connection, DeflateConfig, Event, Instant, Transmit,
    };

    /// A client and a server that negotiated permessage-deflate: the server with the
    /// defaults, the client without context takeover (each message compressed on its own),
    /// both with limits out of the benchmarks' way.
    pub fn negotiated() -> (Connection, Connection) {
        negotiated_at(1, true)
    }

    /// [`negotiated`], the client compressing at `level`, with context takeover unless
    /// `reset`.
    pub fn negotiated_at(level: u8, reset: bool) -> (Connection, Connection) {
        let now = Instant::from_micros(0);
        let deflate = DeflateConfig::new().client_no_context_takeover(reset).level(level);
        let config = |deflate| {
            Config::new()
                .receive_buffer_size(1 << 17)
                .max_frame_size(64 << 20)
                .max_message_size(64 << 20)
                .deflate(deflate)
        };
        let request = ClientRequest::new("example.com", "/");
        let mut client = Connection::client(config(deflate), &request, [7; 32], now).unwrap();
        let mut buf = vec![0; 4096];
        let mut head = Vec::new();
        while let Some(Transmit::Bytes(n)) = client.poll_transmit(&mut buf) {
            head.extend_from_slice(&buf[..n]);
        }
        let mut server = Connection::server(config(DeflateConfig::new()), now);
        assert!(matches!(server.receive(&mut head, now).unwrap().event, Some(Event::Request(_))));
        let n = server.accept(&Accept::new(), &mut buf, now).unwrap().len();
        let mut response = buf[..n].to_vec();
        let accepted = client.receive(&mut response, now).unwrap().event;
        assert!(matches!(accepted, Some(Event::Accepted(_))));
        let agreed = server.compression().expect("negotiated");
        assert_eq!(client.compression(), Some(agreed));
        assert_eq!(agreed.client_max_window_bits, 12);
        assert_eq!(agreed.client_no_context_takeover, reset);
        (client, server)
    }
}
