//! permessage-deflate's receive path: a server reads an upgrade request whose
//! `Sec-WebSocket-Extensions` offer comes from the input (a valid offer from a table, or the
//! input's bytes), answers it, and then receives frames built from the input: messages
//! compressed with the window the server answered (with or without context takeover, whole
//! or fragmented, optionally corrupted by a flipped byte), uncompressed ones, pings, highly
//! compressible runs (small bombs), and frames with arbitrary header bits.
//!
//! Invariants: the handshake always succeeds — a malformed offer is declined, never fatal —
//! and an agreement never names a window larger than offered; then everything
//! `FrameChecker` checks for `frame_decoder` (documented errors with their close codes —
//! 1007 for data that does not inflate —, progress, limits, UTF-8 of text pieces, sequencing,
//! owed frames), with inflated messages held to the message limit; and the heap stays within
//! `FRAME_PATH_HEAP + INFLATE_HEAP`: nothing grows with what the frames inflate to.

#![no_main]

use libfuzzer_sys::fuzz_target;
use wsmachine::frame::{FrameHeader, Opcode};
use wsmachine::{Accept, Connection, DeflateConfig, Event, Role};
use wsmachine_fuzz::{
    run_frames, Chunks, Feed, FrameChecker, HeapWatch, Input, Limits, FRAME_PATH_HEAP,
    INFLATE_HEAP, NOW,
};
use zlib_rs::{Deflate, DeflateFlush};

const OFFERS: [&str; 8] = [
    "permessage-deflate",
    "permessage-deflate; client_max_window_bits",
    "permessage-deflate; client_max_window_bits=9; server_max_window_bits=8",
    "permessage-deflate; client_no_context_takeover; server_no_context_takeover",
    "permessage-deflate; client_max_window_bits=15; server_max_window_bits=15",
    "permessage-deflate; bogus, permessage-deflate; client_max_window_bits=8",
    "x-webkit-deflate-frame, permessage-deflate; server_max_window_bits=10",
    "permessage-deflate; client_max_window_bits=12; client_no_context_takeover",
];

const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

fn frame(fin: bool, rsv: u8, opcode: Opcode, payload: &[u8], out: &mut Vec<u8>) {
    let header =
        FrameHeader { fin, rsv, opcode, mask: Some(KEY), payload_len: payload.len() as u64 };
    let mut head = [0u8; 14];
    let n = header.encode(&mut head).expect("fits");
    out.extend_from_slice(&head[..n]);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ KEY[i % 4]));
}

/// Raw deflate of `data` with a sync flush and the tail removed, continuing `compressor`'s
/// stream (context takeover) unless `reset`.
fn compress(compressor: &mut Deflate, data: &[u8], reset: bool) -> Vec<u8> {
    if reset {
        compressor.reset();
    }
    let mut out = vec![0; data.len() + data.len() / 8 + 64];
    let (in0, out0) = (compressor.total_in(), compressor.total_out());
    let _ = compressor.compress(data, &mut out, DeflateFlush::SyncFlush);
    let produced = (compressor.total_out() - out0) as usize;
    debug_assert_eq!((compressor.total_in() - in0) as usize, data.len());
    out.truncate(produced.saturating_sub(4));
    out
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let limits = Limits::from_input(&mut input);
    let drain_every = usize::from(input.byte() % 4);
    let chunk_input = input.take(9).to_vec();
    let settings = input.choose(&[
        DeflateConfig::new(),
        DeflateConfig::low_memory(),
        DeflateConfig::new().server_max_window_bits(15).client_max_window_bits(15),
    ]);
    let which = input.byte();
    let offer_len = usize::from(input.byte() % 64);
    let raw_offer = input.take(offer_len).to_vec();
    let offer = if which & 0x80 != 0 {
        // Visible ASCII as it is; other bytes become the characters offers are made of.
        raw_offer
            .iter()
            .map(|&b| match b {
                0x20..=0x7e => char::from(b),
                _ => [';', '=', ',', '"', ' ', '\t', '1', '8'][usize::from(b % 8)],
            })
            .collect::<String>()
    } else {
        String::from(OFFERS[usize::from(which) % OFFERS.len()])
    };

    // The handshake: always accepted, compressed or not.
    let config = limits.config().receive_buffer_size(limits.buffer.max(1024)).deflate(settings);
    let limits = Limits { buffer: limits.buffer.max(1024), ..limits };
    let mut conn = Connection::server(config, NOW);
    let mut request = format!(
        "GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Extensions: {offer}\r\n\r\n"
    )
    .into_bytes();
    let received = conn.receive(&mut request, NOW).expect("a valid request is never refused");
    assert!(matches!(received.event, Some(Event::Request(_))), "the request is handed out");
    let mut out = vec![0u8; 2048];
    let _ = conn.accept(&Accept::new(), &mut out, NOW).expect("accepted");
    let agreed = conn.compression();
    if let Some(p) = agreed {
        assert!(p.server_max_window_bits <= 15 && p.client_max_window_bits >= 8, "windows 8–15");
        if offer.contains("server_max_window_bits=8") && !offer.contains("bogus") {
            assert_eq!(p.server_max_window_bits, 8, "never a window larger than offered");
        }
    }
    let client_bits = agreed.map_or(15, |p| p.client_max_window_bits).max(9);
    let takeover = agreed.is_some_and(|p| !p.client_no_context_takeover);

    // The frames.
    let mut compressor = Deflate::new(6, false, client_bits);
    let mut stream = Vec::new();
    while stream.len() < 1 << 20 {
        let op = input.byte();
        let len = usize::from(input.byte()) * usize::from(op >> 4 | 1);
        let head = input.byte();
        let body = input.take(len);
        if body.is_empty() && op == 0 {
            break;
        }
        let opcode = if op & 1 == 0 { Opcode::Text } else { Opcode::Binary };
        match op % 7 {
            0 | 1 => {
                frame(true, 0b100, opcode, &compress(&mut compressor, body, !takeover), &mut stream)
            }
            2 => {
                // Fragmented: RSV1 on the first frame only.
                let data = compress(&mut compressor, body, !takeover);
                let cut = usize::from(op) % (data.len() + 1);
                frame(false, 0b100, opcode, &data[..cut], &mut stream);
                frame(true, 0, Opcode::Continuation, &data[cut..], &mut stream);
            }
            3 => {
                // Corrupted: one byte flipped.
                let mut data = compress(&mut compressor, body, true);
                if let Some(b) = data.get_mut(usize::from(op) % (body.len() + 1)) {
                    *b ^= op | 1;
                }
                frame(true, 0b100, opcode, &data, &mut stream);
            }
            4 => frame(true, 0, opcode, body, &mut stream),
            5 => {
                // A small bomb: a run of one byte, 256 times the body's length.
                let run = vec![op; (body.len() + 1) * 256];
                frame(
                    true,
                    0b100,
                    Opcode::Binary,
                    &compress(&mut compressor, &run, !takeover),
                    &mut stream,
                );
            }
            _ => {
                let opcode = Opcode::from_bits(head & 0x0f).unwrap_or(Opcode::Ping);
                let body = &body[..body.len().min(125)];
                frame(head & 0x80 != 0, (head >> 4) & 0x7, opcode, body, &mut stream);
            }
        }
    }

    let chunks = Chunks::from_input(&mut Input::new(&chunk_input));
    let mut feed = Feed::with_inflate_space(&stream, chunks, limits.buffer);
    // No message can be longer than the message limit, however far it would inflate.
    let longest = usize::try_from(limits.message).unwrap_or(usize::MAX).min(stream.len() << 10);
    let mut checker = FrameChecker::new(Role::Server, limits, longest + 1);
    checker.compressed = agreed.is_some();
    let heap = HeapWatch::start();
    run_frames(&mut conn, &mut feed, &mut checker, drain_every);
    heap.assert_within(FRAME_PATH_HEAP + INFLATE_HEAP, "the connection inflating frames");
});
