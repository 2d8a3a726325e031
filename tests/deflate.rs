//! permessage-deflate (RFC 7692), feature `deflate`: negotiation through real handshakes,
//! round trips under every combination of parameters (a property), and hostile input —
//! compression bombs whole and fragmented, RSV1 misuse, corrupt data, invalid UTF-8 inside
//! compressed text — with the heap counted as in `tests/hostile.rs`.

#[path = "common/heap.rs"]
mod heap;

mod common;

use base64::Engine as _;
use common::pair::{Pair, Seen, Side};
use common::wire::{frames, raw_frame, KEY, T0};
use heap::peak_heap;
use proptest::prelude::*;
use wsmachine::frame::Opcode;
use wsmachine::{
    Accept, ClientRequest, CloseCode, Config, Connection, DeflateConfig, DeflateMode,
    DeflateParams, DeflateResponseError, Error, ErrorKind, Event, Message, MessageKind,
    OwnedMessage, RecvBuffer, Role, State,
};
use zlib_rs::{Deflate, DeflateFlush};

const RSV1: u8 = 0b100;

/// A server that read an upgrade request offering `offer` and accepted it; and its `101`.
fn server_with(config: Config, offer: &str) -> (Connection, String) {
    let mut server = Connection::server(config, T0);
    let request = format!(
        "GET /chat HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Extensions: {offer}\r\n\r\n"
    );
    let mut bytes = request.into_bytes();
    let received = server.receive(&mut bytes, T0).expect("a valid request");
    assert!(matches!(received.event, Some(Event::Request(_))));
    let mut out = [0; 1024];
    let n = server.accept(&Accept::new(), &mut out, T0).expect("accepted").len();
    (server, String::from_utf8(out[..n].to_vec()).unwrap())
}

/// A server that negotiated compression with the server defaults.
fn compressing_server(config: Config) -> Connection {
    let (server, response) = server_with(config, "permessage-deflate; client_max_window_bits");
    assert!(response.contains("Sec-WebSocket-Extensions: permessage-deflate"), "{response}");
    server
}

/// Raw deflate of `data` with a sync flush and the tail removed (RFC 7692 §7.2.1).
fn deflate(data: &[u8]) -> Vec<u8> {
    let mut compressor = Deflate::new(6, false, 15);
    let mut out = vec![0; data.len() + 1024];
    compressor.compress(data, &mut out, DeflateFlush::SyncFlush).unwrap();
    let n = compressor.total_out() as usize;
    assert_eq!(out[n - 4..n], [0, 0, 0xff, 0xff]);
    out.truncate(n - 4);
    out
}

/// A compression bomb: `mebibytes` MiB of zeros, deflated at level 9 in 1 MiB steps.
fn bomb(mebibytes: usize) -> Vec<u8> {
    let zeros = vec![0u8; 1 << 20];
    let mut compressor = Deflate::new(9, false, 15);
    let mut out = vec![0; 1 << 20];
    let mut wire = Vec::new();
    for i in 0..mebibytes {
        let flush =
            if i + 1 == mebibytes { DeflateFlush::SyncFlush } else { DeflateFlush::NoFlush };
        let mut read = 0;
        loop {
            let (in0, out0) = (compressor.total_in(), compressor.total_out());
            compressor.compress(&zeros[read..], &mut out, flush).unwrap();
            read += (compressor.total_in() - in0) as usize;
            let produced = (compressor.total_out() - out0) as usize;
            wire.extend_from_slice(&out[..produced]);
            if read == zeros.len() && produced < out.len() {
                break;
            }
        }
    }
    wire.truncate(wire.len() - 4);
    wire
}

/// A client frame with RSV1 as `rsv1` says.
fn client_frame(fin: bool, rsv1: bool, opcode: Opcode, payload: &[u8]) -> Vec<u8> {
    raw_frame(fin, if rsv1 { RSV1 } else { 0 }, opcode, Some(KEY), payload)
}

/// What a receiver made of some input: the data pieces (payload bytes handed out), the
/// whole messages, and the failure if any, with how many input bytes were taken before it.
#[derive(Debug, Default)]
struct Outcome {
    messages: Vec<OwnedMessage>,
    fragments: Vec<(MessageKind, Vec<u8>, bool, bool)>,
    handed_out: usize,
    consumed: usize,
    error: Option<Error>,
}

/// Feeds `wire` to `conn` through a `RecvBuffer` of `buffer` bytes with `space` bytes to
/// inflate into, `step` bytes at a time, until it is all consumed or the connection fails.
fn feed(conn: &mut Connection, wire: &[u8], buffer: usize, space: usize, step: usize) -> Outcome {
    feed_keeping(conn, wire, buffer, space, step, true)
}

/// [`feed`], keeping the pieces' bytes only if `keep` (a bomb's would fill the heap that
/// the test measures).
fn feed_keeping(
    conn: &mut Connection,
    wire: &[u8],
    buffer: usize,
    space: usize,
    step: usize,
    keep: bool,
) -> Outcome {
    let mut input = RecvBuffer::new(vec![0; buffer]).with_inflate_space(vec![0; space]);
    let mut outcome = Outcome::default();
    let mut rest = wire;
    while !rest.is_empty() {
        let n = input.push(&rest[..step.min(rest.len())]);
        assert!(n > 0, "room must not run out");
        rest = &rest[n..];
        outcome.consumed += n;
        loop {
            match input.next_event(conn, T0) {
                Ok(Some(Event::Message(m))) => {
                    let owned = match m {
                        Message::Text(t) => OwnedMessage::Text(t.to_string()),
                        Message::Binary(b) => OwnedMessage::Binary(b.to_vec()),
                    };
                    outcome.handed_out += owned.as_bytes().len();
                    outcome.messages.push(owned);
                }
                Ok(Some(Event::Fragment(f))) => {
                    outcome.handed_out += f.payload.len();
                    let bytes = if keep { f.payload.to_vec() } else { Vec::new() };
                    outcome.fragments.push((f.kind, bytes, f.is_first, f.is_last));
                }
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(e) => {
                    outcome.consumed -= input.len();
                    outcome.error = Some(e);
                    return outcome;
                }
            }
        }
    }
    outcome.consumed -= input.len();
    outcome
}

/// The close code `conn` owes its peer.
fn owed_close(conn: &mut Connection) -> CloseCode {
    let (bytes, _) = common::drain(conn);
    let sent = frames(Role::Server, &bytes);
    assert_eq!(sent.len(), 1, "one close frame: {sent:?}");
    assert_eq!(sent[0].0, Opcode::Close);
    CloseCode(u16::from_be_bytes([sent[0].1[0], sent[0].1[1]]))
}

#[test]
fn a_250_kib_frame_that_inflates_to_256_mib_is_refused_with_1009_at_the_limit() {
    let bomb = bomb(256);
    assert!(bomb.len() < 300 << 10, "the bomb is {} bytes", bomb.len());
    let wire = client_frame(true, true, Opcode::Binary, &bomb);
    let mut server = compressing_server(Config::new());
    let space = 16 << 10;
    let (outcome, peak) =
        peak_heap(|| feed_keeping(&mut server, &wire, 64 << 10, space, 4096, false));
    let e = outcome.error.expect("refused");
    assert!(matches!(e.kind(), ErrorKind::MessageTooLarge { .. }), "{e}");
    assert_eq!(e.close_code(), Some(CloseCode::MESSAGE_TOO_BIG));
    assert_eq!(owed_close(&mut server), CloseCode::MESSAGE_TOO_BIG);
    // Refused once the inflated bytes passed the limit: at most the limit plus one piece was
    // produced, and only the first kibibytes of the frame were read, never the rest of it.
    assert!(outcome.handed_out <= (1 << 20) + space, "{} bytes handed out", outcome.handed_out);
    assert!(outcome.consumed < 16 << 10, "{} input bytes consumed", outcome.consumed);
    // The heap held the two buffers given, the decompressor (its state and a 32 KiB window,
    // 47 KiB), the copy of the 4 KiB window, and nothing that grows with the frame.
    assert!(peak < (64 << 10) + space + (64 << 10), "peak heap {peak}");
}

#[test]
fn the_same_bomb_in_4000_small_fragments_is_refused_with_1009_as_early() {
    let bomb = bomb(256);
    let pieces: Vec<&[u8]> = bomb.chunks(bomb.len() / 4000 + 1).collect();
    let mut wire = Vec::new();
    for (i, piece) in pieces.iter().enumerate() {
        let opcode = if i == 0 { Opcode::Text } else { Opcode::Continuation };
        wire.extend(client_frame(i + 1 == pieces.len(), i == 0, opcode, piece));
    }
    let config = Config::new().max_fragments(10_000);
    let mut server = compressing_server(config);
    let space = 4096;
    let (outcome, peak) = peak_heap(|| feed_keeping(&mut server, &wire, 4096, space, 1000, false));
    let e = outcome.error.expect("refused");
    assert!(matches!(e.kind(), ErrorKind::MessageTooLarge { .. }), "{e}");
    assert_eq!(owed_close(&mut server), CloseCode::MESSAGE_TOO_BIG);
    assert!(outcome.handed_out <= (1 << 20) + space);
    assert!(outcome.consumed < 32 << 10, "{} input bytes consumed", outcome.consumed);
    // The buffers, the decompressor and the copy of the client's 4 KiB window.
    assert!(peak < 4096 + space + (64 << 10) + 4096, "peak heap {peak}");
    // Zeros are valid UTF-8: every piece was text, in order.
    assert!(outcome.fragments.iter().all(|f| f.0 == MessageKind::Text));
    assert!(outcome.fragments.first().is_some_and(|f| f.2));
}

#[test]
fn rsv1_is_refused_with_1002_on_continuations_control_frames_and_without_negotiation() {
    let text = deflate(b"hello hello hello");
    let cases: Vec<(&str, Vec<u8>, bool)> = vec![
        (
            "a continuation",
            {
                let mut w = client_frame(false, true, Opcode::Text, &text);
                w.extend(client_frame(true, true, Opcode::Continuation, &text));
                w
            },
            true,
        ),
        ("a ping", client_frame(true, true, Opcode::Ping, b"x"), true),
        ("a close", client_frame(true, true, Opcode::Close, &[3, 232]), true),
        ("RSV2 with RSV1", raw_frame(true, 0b110, Opcode::Text, Some(KEY), &text), true),
        ("no negotiation", client_frame(true, true, Opcode::Text, &text), false),
    ];
    for (what, wire, negotiated) in cases {
        let mut server = if negotiated {
            compressing_server(Config::new())
        } else {
            let (server, response) =
                server_with(Config::new().deflate(DeflateConfig::off()), "permessage-deflate");
            assert!(!response.contains("Extensions"), "{response}");
            assert_eq!(server.compression(), None);
            server
        };
        let outcome = feed(&mut server, &wire, 4096, 4096, wire.len());
        let e = outcome.error.unwrap_or_else(|| panic!("{what}: refused"));
        assert_eq!(e.kind(), ErrorKind::ReservedBits, "{what}");
        assert_eq!(owed_close(&mut server), CloseCode::PROTOCOL_ERROR, "{what}");
    }
}

#[test]
fn data_that_does_not_inflate_fails_with_1007() {
    // Block type 3 is reserved (RFC 1951 §3.2.3); a stored block whose NLEN is wrong.
    for bad in [&[0xff, 0xff, 0xff][..], &[0x00, 0x05, 0x00, 0x05, 0x00, b'a']] {
        let mut server = compressing_server(Config::new());
        let wire = client_frame(true, true, Opcode::Binary, bad);
        let e = feed(&mut server, &wire, 4096, 4096, 1).error.expect("refused");
        assert_eq!(e.kind(), ErrorKind::InflateFailed, "{bad:?}");
        assert_eq!(owed_close(&mut server), CloseCode::INVALID_PAYLOAD);
    }
}

#[test]
fn invalid_utf8_inside_compressed_text_fails_with_1007_as_soon_as_it_is_inflated() {
    // In one frame.
    let mut server = compressing_server(Config::new());
    let wire = client_frame(true, true, Opcode::Text, &deflate(b"caf\xc3\xa9 \xff and more"));
    let e = feed(&mut server, &wire, 4096, 4096, 3).error.expect("refused");
    assert_eq!(e.kind(), ErrorKind::InvalidUtf8);
    assert_eq!(owed_close(&mut server), CloseCode::INVALID_PAYLOAD);

    // In the first frame of a fragmented message whose other frames never come: the bytes
    // after the invalid one are not waited for.
    let mut compressor = Deflate::new(6, false, 15);
    let mut out = vec![0; 1024];
    let mut first = b"valid start ".repeat(20);
    first.extend_from_slice(b"\xed\xa0\x80 (a surrogate)");
    compressor.compress(&first, &mut out, DeflateFlush::SyncFlush).unwrap();
    let n = compressor.total_out() as usize;
    let mut server = compressing_server(Config::new());
    let wire = client_frame(false, true, Opcode::Text, &out[..n]);
    let outcome = feed(&mut server, &wire, 4096, 4096, 7);
    let e = outcome.error.expect("refused in the first fragment");
    assert_eq!(e.kind(), ErrorKind::InvalidUtf8);
    assert!(outcome.fragments.is_empty(), "no piece of it was handed out");

    // A code point cut by the end of the message is invalid too.
    let mut server = compressing_server(Config::new());
    let wire = client_frame(true, true, Opcode::Text, &deflate(b"ends inside \xe2\x82"));
    assert_eq!(
        feed(&mut server, &wire, 4096, 4096, 5).error.unwrap().kind(),
        ErrorKind::InvalidUtf8
    );
}

#[test]
fn a_message_comes_out_whole_when_it_fits_the_space_and_in_pieces_otherwise() {
    let small = "a message that fits ".repeat(40);
    let large: String = (0..20_000).map(|i| char::from(b'a' + (i * 7 % 26) as u8)).collect();
    let mut wire = client_frame(true, true, Opcode::Text, &deflate(small.as_bytes()));
    wire.extend(client_frame(true, true, Opcode::Text, &deflate(large.as_bytes())));
    // Fragmented and compressed: RSV1 on the first frame only.
    let data: Vec<u8> = (0..3000u32).flat_map(|i| (i % 251).to_be_bytes()).collect();
    let compressed = deflate(&data);
    let (a, b) = compressed.split_at(compressed.len() / 3);
    wire.extend(client_frame(false, true, Opcode::Binary, a));
    wire.extend(client_frame(true, false, Opcode::Continuation, b));
    for step in [1, 13, 4096, wire.len()] {
        let mut server = compressing_server(Config::new());
        let outcome = feed(&mut server, &wire, 4096, 4096, step);
        assert!(outcome.error.is_none(), "{:?}", outcome.error);
        assert_eq!(outcome.messages, [OwnedMessage::Text(small.clone())], "step {step}");
        let text: Vec<u8> = outcome
            .fragments
            .iter()
            .filter(|f| f.0 == MessageKind::Text)
            .flat_map(|f| f.1.clone())
            .collect();
        assert_eq!(text, large.as_bytes(), "step {step}");
        let binary: Vec<u8> = outcome
            .fragments
            .iter()
            .filter(|f| f.0 == MessageKind::Binary)
            .flat_map(|f| f.1.clone())
            .collect();
        assert_eq!(binary, data, "step {step}");
        // Pieces are never larger than the space; first and last are marked.
        assert!(outcome.fragments.iter().all(|f| f.1.len() <= 4096));
        let firsts = outcome.fragments.iter().filter(|f| f.2).count();
        let lasts = outcome.fragments.iter().filter(|f| f.3).count();
        assert_eq!((firsts, lasts), (2, 2), "step {step}");
    }
}

#[test]
fn a_message_that_fills_the_space_exactly_ends_without_another_call() {
    // Inflated lengths that are exact multiples of the space: the last piece must say it is
    // the last while input remains to be handed over, not on a later call with none (found
    // by a round-trip property: a driver that stops calling once its input is empty stalled).
    for bits in 9..=15 {
        for multiple in 1..=8 {
            let deflate = DeflateConfig::new().client_max_window_bits(bits).threshold(0);
            let mut pair = compressing_pair(deflate, deflate, 512);
            let mut text = "ünïcødé ".repeat(128 * multiple / 3);
            while text.len() < 512 * multiple {
                text.push('.');
            }
            assert_eq!(text.len(), 512 * multiple);
            let mut out = vec![0; 8192];
            let n = pair.client.conn.send_text(&text, &mut out).unwrap().len();
            let server = &mut pair.server.conn;
            let mut input = RecvBuffer::new(vec![0; n]).with_inflate_space(vec![0; 512]);
            assert_eq!(input.push(&out[..n]), n);
            // Events only while input remains, as a driver that waits for a read would do.
            let (mut got, mut ended) = (Vec::new(), false);
            while !input.is_empty() {
                match input.next_event(server, T0).unwrap() {
                    Some(Event::Message(Message::Text(t))) => {
                        got.extend_from_slice(t.as_bytes());
                        ended = true;
                    }
                    Some(Event::Fragment(f)) => {
                        got.extend_from_slice(f.payload);
                        ended = f.is_last;
                    }
                    other => panic!("{other:?}"),
                }
            }
            assert!(ended, "bits {bits} ×{multiple}: the message did not end");
            assert_eq!(got, text.as_bytes());
        }
    }
}

#[test]
fn without_inflate_space_a_compressed_message_fails_with_a_clear_error() {
    let mut server = compressing_server(Config::new());
    let mut wire = client_frame(true, true, Opcode::Text, &deflate(b"hi there"));
    let e = server.receive(&mut wire, T0).expect_err("no space to inflate into");
    assert_eq!(e.kind(), ErrorKind::NoInflateSpace);
    assert_eq!(owed_close(&mut server), CloseCode::INTERNAL_ERROR);
}

#[test]
fn malformed_offers_are_declined_and_the_handshake_succeeds() {
    for offer in [
        "permessage-deflate; foo",
        "permessage-deflate; server_max_window_bits=16",
        "permessage-deflate; client_max_window_bits=7",
        "permessage-deflate; server_no_context_takeover=yes",
        "permessage-deflate; client_no_context_takeover; client_no_context_takeover",
        "permessage-deflate; server_max_window_bits",
    ] {
        let (server, response) = server_with(Config::new(), offer);
        assert!(response.starts_with("HTTP/1.1 101 "), "{offer}");
        assert!(!response.contains("Sec-WebSocket-Extensions"), "{offer}: {response}");
        assert_eq!(server.state(), State::Open);
        assert_eq!(server.compression(), None);
    }
    // The first acceptable offer, in the client's order; an 8-bit window is answered as 8.
    let (server, response) = server_with(
        Config::new(),
        "permessage-deflate; bogus, permessage-deflate; server_max_window_bits=8, \
         permessage-deflate",
    );
    assert!(response.contains("server_max_window_bits=8"), "{response}");
    assert_eq!(server.compression().map(|p| p.server_max_window_bits), Some(8));
}

#[test]
fn offers_spread_over_several_headers_are_taken_in_order() {
    let mut server = Connection::server(Config::new(), T0);
    let mut request = b"GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
        Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
        Sec-WebSocket-Extensions: x-other, permessage-deflate; server_max_window_bits=99\r\n\
        Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=10\r\n\
        Sec-WebSocket-Extensions: permessage-deflate\r\n\r\n"
        .to_vec();
    assert!(matches!(server.receive(&mut request, T0).unwrap().event, Some(Event::Request(_))));
    let mut out = [0; 1024];
    let n = server.accept(&Accept::new(), &mut out, T0).unwrap().len();
    let response = String::from_utf8(out[..n].to_vec()).unwrap();
    // The malformed first offer is declined; the second header's is taken.
    assert!(response.contains("server_max_window_bits=10"), "{response}");
    assert_eq!(server.compression().map(|p| p.server_max_window_bits), Some(10));
}

/// A client with `config` after its request went out, and the key it sent.
fn client(config: Config) -> (Connection, String) {
    let request = ClientRequest::new("example.com", "/chat");
    let mut client = Connection::client(config, &request, [5; 32], T0).unwrap();
    let (bytes, _) = common::drain(&mut client);
    let text = String::from_utf8(bytes).unwrap();
    let key = text
        .lines()
        .find_map(|l| l.strip_prefix("Sec-WebSocket-Key: "))
        .expect("a key")
        .to_string();
    assert!(text.contains("Sec-WebSocket-Extensions: permessage-deflate"), "{text}");
    (client, key)
}

fn accept_for(key: &str, extensions: &str) -> Vec<u8> {
    let mut sha = sha1_smol::Sha1::new();
    sha.update(key.as_bytes());
    sha.update(b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
    let accept = base64::engine::general_purpose::STANDARD.encode(sha.digest().bytes());
    let mut response = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {accept}\r\n"
    );
    if !extensions.is_empty() {
        response.push_str(&format!("Sec-WebSocket-Extensions: {extensions}\r\n"));
    }
    response.push_str("\r\n");
    response.into_bytes()
}

#[test]
fn a_bad_answer_fails_the_client_handshake_with_an_error_that_says_which() {
    use DeflateResponseError::*;
    let granted = "permessage-deflate; server_no_context_takeover; server_max_window_bits=12";
    for (answer, why) in [
        ("permessage-deflate; mystery", UnknownParameter),
        ("permessage-deflate; server_max_window_bits=99", InvalidValue),
        ("permessage-deflate; server_no_context_takeover=1", InvalidValue),
        (
            "permessage-deflate; server_no_context_takeover; server_no_context_takeover; \
             server_max_window_bits=12",
            DuplicateParameter,
        ),
        ("permessage-deflate; server_max_window_bits=12", RequestNotGranted),
        (
            "permessage-deflate; server_no_context_takeover; server_max_window_bits=14",
            ServerWindowTooLarge,
        ),
        (
            "permessage-deflate; server_no_context_takeover; server_max_window_bits=12; \
             client_max_window_bits=15",
            ClientWindowNotAllowed,
        ),
        ("permessage-deflate; server_no_context_takeover; server_max_window_bits=12, permessage-deflate; server_no_context_takeover; server_max_window_bits=12", Repeated),
    ] {
        let (mut conn, key) = client(Config::new());
        let mut response = accept_for(&key, answer);
        let e = conn.receive(&mut response, T0).expect_err(answer);
        assert_eq!(e.kind(), ErrorKind::InvalidDeflateResponse(why), "{answer}");
        assert_eq!(conn.state(), State::Closing, "{answer}");
    }
    // An extension that was not offered at all.
    let (mut conn, key) = client(Config::new());
    let mut response = accept_for(&key, "x-other");
    assert_eq!(conn.receive(&mut response, T0).unwrap_err().kind(), ErrorKind::UnofferedExtension);
    // A valid answer, and a declined one.
    let (mut conn, key) = client(Config::new());
    let mut response = accept_for(&key, granted);
    assert!(conn.receive(&mut response, T0).is_ok());
    assert_eq!(
        conn.compression(),
        Some(DeflateParams {
            server_no_context_takeover: true,
            client_no_context_takeover: false,
            server_max_window_bits: 12,
            client_max_window_bits: 12,
        })
    );
    let (mut conn, key) = client(Config::new());
    let mut response = accept_for(&key, "");
    assert!(conn.receive(&mut response, T0).is_ok());
    assert_eq!(conn.compression(), None);
}

#[test]
fn required_compression_refuses_peers_without_it() {
    let required = Config::new().deflate(DeflateConfig::new().mode(DeflateMode::Required));
    let mut server = Connection::server(required.clone(), T0);
    let mut request = b"GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
        Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        .to_vec();
    let e = server.receive(&mut request, T0).expect_err("refused");
    assert_eq!(e.kind(), ErrorKind::DeflateRequired);
    assert_eq!(e.http_status(), Some(400));
    let (mut conn, key) = client(required);
    let mut response = accept_for(&key, "");
    assert_eq!(conn.receive(&mut response, T0).unwrap_err().kind(), ErrorKind::DeflateRequired);
}

/// A pair that negotiated compression with these settings on both sides.
fn compressing_pair(client: DeflateConfig, server: DeflateConfig, buffer: usize) -> Pair {
    // Without keepalive: the tests drive the pair until nothing is left to do, and keepalive
    // pings would never let an open connection settle.
    let config = |deflate| {
        Config::new().receive_buffer_size(buffer).deflate(deflate).keepalive_interval(None)
    };
    let mut pair = Pair::new(config(client), config(server));
    pair.connect();
    pair
}

#[test]
fn an_idle_connection_without_context_takeover_holds_no_compression_state() {
    let low = DeflateConfig::low_memory();
    let mut pair = compressing_pair(low, low, 4096);
    let text = "the same words again and again; ".repeat(20);
    for side in [Side::Client, Side::Server] {
        pair.command(side, |c, out, _| c.send_text(&text, out)).unwrap();
    }
    pair.drive();
    for side in [Side::Client, Side::Server] {
        let endpoint = pair.side(side);
        assert_eq!(endpoint.messages(), [OwnedMessage::Text(text.clone())]);
        assert!(endpoint.conn.holds_compression_state());
        let spare = endpoint.conn.release_compression();
        assert!(!endpoint.conn.holds_compression_state(), "{side:?}");
        assert!(!spare.is_empty());
    }
    // With the defaults the client keeps its context: the server drops its decompressor
    // and keeps the window, which the client's next message (the same text, so nearly all
    // back-references into the last one) needs.
    let mut sizes = compressing_pair(DeflateConfig::new(), DeflateConfig::new(), 4096);
    let mut out = vec![0; 4096];
    let first = sizes.client.conn.send_text(&text, &mut out).unwrap().len();
    let second = sizes.client.conn.send_text(&text, &mut out).unwrap().len();
    assert!(second < first, "the second refers to the first: {second} vs {first} bytes");
    let mut pair = compressing_pair(DeflateConfig::new(), DeflateConfig::new(), 4096);
    for _ in 0..3 {
        pair.command(Side::Client, |c, out, _| c.send_text(&text, out)).unwrap();
        pair.drive();
        pair.server.conn.release_compression();
        assert!(!pair.server.conn.holds_compression_state());
    }
    pair.command(Side::Server, |c, out, _| c.send_text(&text, out)).unwrap();
    pair.drive();
    assert_eq!(pair.server.messages(), vec![OwnedMessage::Text(text.clone()); 3]);
    assert_eq!(pair.client.messages(), [OwnedMessage::Text(text.clone())]);
    assert!(pair.server.errors.is_empty() && pair.client.errors.is_empty());
}

#[test]
fn compressed_frames_are_smaller_and_marked_with_rsv1_and_small_messages_go_plain() {
    let mut pair = compressing_pair(DeflateConfig::new(), DeflateConfig::new(), 65536);
    let text = "{\"user\":\"ada\",\"text\":\"hello, room\"} ".repeat(100);
    let mut out = vec![0; 65536];
    let conn = &mut pair.server.conn;
    let n = conn.send_text(&text, &mut out).unwrap().len();
    assert_eq!(out[0], 0x80 | 0x40 | 0x01, "FIN, RSV1, text");
    assert!(n < text.len() / 10, "{n} bytes for {}", text.len());
    let n = conn.send_text("hi", &mut out).unwrap().len();
    assert_eq!(out[..n], [0x81, 2, b'h', b'i'], "under the threshold: uncompressed");
    assert!(conn.encoded_len(text.len()) >= text.len());
}

/// What one side of a pair sends in the round-trip property.
#[derive(Clone, Debug)]
enum Send {
    Text(String),
    Binary(Vec<u8>),
}

fn payload() -> impl Strategy<Value = Send> {
    prop_oneof![
        // Repetitive text (compresses) and arbitrary text.
        (prop::sample::select(vec!["chat ", "{\"a\":1}", "ünïcødé ", "x"]), 0usize..3000)
            .prop_map(|(word, n)| Send::Text(word.repeat(n))),
        any::<String>().prop_map(Send::Text),
        prop::collection::vec(any::<u8>(), 0..2000).prop_map(Send::Binary),
        (any::<u8>(), 0usize..40_000).prop_map(|(b, n)| Send::Binary(vec![b; n])),
    ]
}

fn settings() -> impl Strategy<Value = DeflateConfig> {
    (8u8..=15, 8u8..=15, any::<bool>(), any::<bool>(), prop::sample::select(vec![0usize, 64, 500]))
        .prop_map(|(s, c, snct, cnct, threshold)| {
            DeflateConfig::new()
                .server_max_window_bits(s)
                .client_max_window_bits(c)
                .server_no_context_takeover(snct)
                .client_no_context_takeover(cnct)
                .threshold(threshold)
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    /// Any sequence of messages, sent both ways, arrives intact under any negotiated
    /// parameters (windows 8–15 each way, context takeover on or off each way, any
    /// threshold), whatever the receive buffer, however the link splits the bytes, and
    /// whether or not the ends release their compression state between messages.
    #[test]
    fn messages_round_trip_under_every_combination_of_parameters(
        client in settings(),
        server in settings(),
        sends in prop::collection::vec((any::<bool>(), payload(), any::<bool>()), 1..12),
        // The smallest holds the opening handshake's heads with every parameter named.
        buffer in prop::sample::select(vec![512usize, 1000, 4096, 65536]),
        piece in prop::sample::select(vec![1usize, 7, 100, 1500, usize::MAX]),
    ) {
        let mut pair = compressing_pair(client, server, buffer);
        let agreed = pair.server.conn.compression();
        prop_assert_eq!(agreed, pair.client.conn.compression());
        prop_assert!(agreed.is_some());
        pair.link.max_piece = piece;
        let mut expected = [Vec::new(), Vec::new()];
        for (from_client, send, release) in &sends {
            let side = if *from_client { Side::Client } else { Side::Server };
            if *release {
                // Going idle between messages must not change what arrives, nor must taking
                // the other end's released state (a spare from another connection).
                let mut from_client = pair.client.conn.release_compression();
                let mut from_server = pair.server.conn.release_compression();
                pair.client.conn.reuse_compression(&mut from_server);
                pair.server.conn.reuse_compression(&mut from_client);
            }
            let len = match send { Send::Text(t) => t.len(), Send::Binary(b) => b.len() };
            let need = pair.side(side).conn.encoded_len(len);
            pair.reserve(side, need);
            match send {
                Send::Text(t) => {
                    pair.command(side, |c, out, _| c.send_text(t, out)).unwrap();
                    expected[usize::from(!*from_client)].push(OwnedMessage::Text(t.clone()));
                }
                Send::Binary(b) => {
                    pair.command(side, |c, out, _| c.send_binary(b, out)).unwrap();
                    expected[usize::from(!*from_client)].push(OwnedMessage::Binary(b.clone()));
                }
            }
            pair.drive();
        }
        prop_assert!(pair.client.errors.is_empty(), "{:?}", pair.client.errors);
        prop_assert!(pair.server.errors.is_empty(), "{:?}", pair.server.errors);
        prop_assert_eq!(pair.server.messages(), expected[0].clone());
        prop_assert_eq!(pair.client.messages(), expected[1].clone());
        let closes = pair.server.seen.iter().filter(|s| matches!(s, Seen::Close(_))).count();
        prop_assert_eq!(closes, 0);
    }
}
