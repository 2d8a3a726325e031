//! Hostile peers, through the public API: each test names what it proves, checks the error,
//! the close code or HTTP status sent, and that the heap stayed bounded.
//!
//! The heap is measured per thread by a counting global allocator in this test binary, so
//! tests running in parallel do not pollute each other's figures.

mod common;
#[path = "common/heap.rs"]
mod heap;

use common::drain;
use common::wire::{self, frame, scan_head_byte_by_byte, T0};
use heap::{live_heap, peak_heap, FRAME_PATH_HEAP};

use wsmachine::frame::Opcode;
use wsmachine::{CloseCode, Config, Connection, Error, ErrorKind, Event, Reassembler, Role};

// ---- Helpers ----

/// Asserts that `bytes` is exactly one close frame, sent by the server, with `code`.
fn assert_close_sent(bytes: &[u8], code: CloseCode) {
    wire::assert_close_sent(Role::Server, bytes, code);
}

/// Asserts that the server failed its handshake with `status`: the error says so, the owed
/// bytes are that response, and the transport is to be closed.
fn assert_http_refusal(conn: &mut Connection, e: Error, status: u16) {
    assert_eq!(e.http_status(), Some(status));
    assert_eq!(e.close_code(), None);
    let (bytes, close) = drain(conn);
    let line = format!("HTTP/1.1 {status} ");
    assert!(bytes.starts_with(line.as_bytes()), "{}", String::from_utf8_lossy(&bytes));
    assert!(close, "the transport is closed after the refusal");
}

const REQUEST: &str = "GET /chat HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\n\
                       Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
                       Sec-WebSocket-Version: 13\r\n\r\n";

/// Feeds a whole request to a new server and returns the error it fails with, and the most
/// heap the server held meanwhile.
fn refuse(config: Config, request: &str) -> (Connection, Error, usize) {
    let mut conn = Connection::server(config, T0);
    let mut input = request.as_bytes().to_vec();
    let (e, peak) = peak_heap(|| conn.receive(&mut input, T0).expect_err("the request is refused"));
    (conn, e, peak)
}

// ---- The opening handshake ----

#[test]
fn a_head_sent_one_byte_at_a_time_is_scanned_once_then_refused_with_431() {
    let config = Config::new();
    let limit = 16 * 1024;
    let mut conn = Connection::server(config, T0);
    let line = b"GET / HTTP/1.1\r\nX-Filler: ";
    let mut buf = vec![0u8; limit];
    let ((result, calls), peak) =
        peak_heap(|| scan_head_byte_by_byte(&mut conn, &mut buf, line, limit));
    assert_eq!(calls, limit, "one call per byte, each examining only its new byte");
    assert_eq!(result.kind(), ErrorKind::HeadTooLarge { limit });
    assert_http_refusal(&mut conn, result, 431);
    assert!(peak <= 1024, "scanning holds no heap ({peak} bytes)");
}

#[test]
fn a_hundred_thousand_headers_are_refused_with_431_without_a_table_for_each() {
    let mut request = String::from("GET / HTTP/1.1\r\nHost: a\r\n");
    request.push_str(&"X: y\r\n".repeat(100_000));
    request.push_str("\r\n");
    // Under the default 16 KiB head limit: refused by size, before any parsing.
    let (mut conn, e, peak) = refuse(Config::new(), &request);
    assert_eq!(e.kind(), ErrorKind::HeadTooLarge { limit: 16 * 1024 });
    assert_http_refusal(&mut conn, e, 431);
    assert!(peak <= 1024, "refused without allocating ({peak} bytes)");
    // With room for the whole head: refused by count, with a table of only `max_headers`.
    let config = Config::new().max_head_size(1 << 20).receive_buffer_size(1 << 20);
    let (mut conn, e, peak) = refuse(config, &request);
    assert_eq!(e.kind(), ErrorKind::TooManyHeaders { limit: 128 });
    assert_http_refusal(&mut conn, e, 431);
    assert!(peak <= 128 * 32 + 1024, "a header table of 128 slots at most ({peak} bytes)");
}

#[test]
fn a_header_line_of_one_mebibyte_is_refused_with_431_at_the_limit() {
    let mut request = String::from("GET / HTTP/1.1\r\nHost: a\r\nX-Long: ");
    request.push_str(&"a".repeat(1 << 20));
    request.push_str("\r\n\r\n");
    let mut conn = Connection::server(Config::new(), T0);
    // Read in 64 KiB pieces into the 64 KiB buffer, as a driver would.
    let mut buf = request.as_bytes()[..64 * 1024].to_vec();
    let (e, peak) = peak_heap(|| conn.receive(&mut buf, T0).expect_err("refused"));
    assert_eq!(e.kind(), ErrorKind::HeadTooLarge { limit: 16 * 1024 });
    assert_http_refusal(&mut conn, e, 431);
    assert!(peak <= 1024, "refused without allocating ({peak} bytes)");
}

#[test]
fn a_request_without_host_is_refused_with_400() {
    let request = REQUEST.replace("Host: server.example.com\r\n", "");
    let (mut conn, e, peak) = refuse(Config::new(), &request);
    assert_eq!(e.kind(), ErrorKind::MissingHost);
    assert_http_refusal(&mut conn, e, 400);
    assert!(peak <= 2 * 32 * 128 + 1024, "{peak} bytes");
}

#[test]
fn a_request_with_two_keys_is_refused_with_400() {
    let request = REQUEST.replace(
        "Sec-WebSocket-Version",
        "Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA==\r\nSec-WebSocket-Version",
    );
    let (mut conn, e, peak) = refuse(Config::new(), &request);
    assert_eq!(e.kind(), ErrorKind::DuplicateHeader("Sec-WebSocket-Key"));
    assert_http_refusal(&mut conn, e, 400);
    assert!(peak <= 2 * 32 * 128 + 1024, "{peak} bytes");
}

#[test]
fn offered_subprotocols_are_held_in_at_most_the_head_size() {
    // A head full of one-letter subprotocols: what the server keeps until it answers must be
    // proportional to the head, not to the number of offers times a per-offer overhead.
    let offers = vec!["a"; 5_000].join(",");
    let request = REQUEST.replace(
        "Sec-WebSocket-Version",
        &format!("Sec-WebSocket-Protocol: {offers}\r\nSec-WebSocket-Version"),
    );
    assert!(request.len() < 16 * 1024);
    let mut conn = Connection::server(Config::new(), T0);
    let mut input = request.into_bytes();
    let head = input.len();
    let (held, _) = peak_heap(|| {
        let before = live_heap();
        let r = conn.receive(&mut input, T0).expect("a valid request");
        assert!(matches!(r.event, Some(Event::Request(_))));
        drop(r);
        // Held after the event is dropped: what the connection keeps to answer it.
        live_heap() - before
    });
    assert!(held as usize <= head, "{held} bytes held for a {head}-byte head");
}

// ---- Frame sizes ----

#[test]
fn frames_declaring_2_pow_63_minus_1_and_2_pow_40_bytes_are_refused_from_the_header_with_1009() {
    for size in [(1u64 << 63) - 1, 1 << 40] {
        let mut conn = Connection::open_server(Config::new(), T0);
        // Only the header: no payload has been sent, and none is needed to refuse it.
        let mut header = wire::header(Role::Client, Opcode::Binary, size);
        let (e, peak) = peak_heap(|| conn.receive(&mut header, T0).expect_err("refused"));
        assert_eq!(e.kind(), ErrorKind::FrameTooLarge { size, limit: 1 << 20 });
        assert_eq!(e.close_code(), Some(CloseCode::MESSAGE_TOO_BIG));
        let (sent, close) = drain(&mut conn);
        assert_close_sent(&sent, CloseCode::MESSAGE_TOO_BIG);
        assert!(close, "the server closes the transport");
        assert!(peak <= FRAME_PATH_HEAP, "{peak} bytes");
    }
}

/// Sends a binary message as one 1-byte frame and then continuations of `piece` bytes
/// (up to `count`), frame by frame as they would arrive, through a reassembler; returns the
/// error, the number of continuations accepted and the peak heap.
fn fragments_until_refused(config: Config, piece: usize, count: usize) -> (Error, usize, usize) {
    let mut conn = Connection::open_server(config, T0);
    let mut reassembler = Reassembler::new();
    let mut first = frame(Role::Client, false, Opcode::Binary, b"x");
    let continuation = frame(Role::Client, false, Opcode::Continuation, &vec![b'y'; piece]);
    let ((e, accepted), peak) = peak_heap(|| {
        let r = conn.receive(&mut first, T0).expect("first fragment");
        reassembler.push(&r.event.expect("a piece"));
        let mut frame = continuation.clone();
        for accepted in 0..count {
            frame.copy_from_slice(&continuation);
            match conn.receive(&mut frame, T0) {
                Ok(r) => {
                    let event = r.event.expect("a piece");
                    assert!(reassembler.push(&event).is_none());
                }
                Err(e) => return (e, accepted),
            }
        }
        panic!("{count} fragments accepted");
    });
    assert_eq!(e.close_code(), Some(CloseCode::MESSAGE_TOO_BIG));
    let (sent, close) = drain(&mut conn);
    assert_close_sent(&sent, CloseCode::MESSAGE_TOO_BIG);
    assert!(close);
    // Input after the failure is discarded.
    let mut more = continuation.clone();
    let r = conn.receive(&mut more, T0).unwrap();
    assert!(r.event.is_none() && r.consumed == more.len());
    (e, accepted, peak)
}

#[test]
fn a_million_one_byte_fragments_are_refused_once_payload_and_overhead_exceed_the_limit() {
    // The message limit alone (fragments unlimited): 1 byte, then continuations charged
    // 1 + 16 bytes each. 1 + 58 × 17 = 987 fits 1000; the 59th makes 1004.
    let config = Config::new().max_message_size(1000).max_fragments(u32::MAX);
    let (e, accepted, peak) = fragments_until_refused(config, 1, 1_000_000);
    assert_eq!(accepted, 58);
    assert_eq!(e.kind(), ErrorKind::MessageTooLarge { size: 1004, limit: 1000 });
    assert!(peak <= FRAME_PATH_HEAP + 2 * 1000, "{peak} bytes");
    // Empty fragments cost their overhead too: 1 + 16 × 62 = 993 fits, the 63rd makes 1009.
    let config = Config::new().max_message_size(1000).max_fragments(u32::MAX);
    let (e, accepted, _) = fragments_until_refused(config, 0, 1_000_000);
    assert_eq!(accepted, 62);
    assert_eq!(e.kind(), ErrorKind::MessageTooLarge { size: 1009, limit: 1000 });
    // With the default limits, the fragment count stops them first: 4096 frames.
    let (e, accepted, peak) = fragments_until_refused(Config::new(), 1, 1_000_000);
    assert_eq!(accepted, 4095);
    assert_eq!(e.kind(), ErrorKind::TooManyFragments { limit: 4096 });
    assert!(peak <= FRAME_PATH_HEAP + 2 * 4096, "{peak} bytes");
}

// ---- UTF-8 ----

#[test]
fn invalid_utf8_in_the_first_fragment_of_a_long_message_is_refused_with_1007_at_once() {
    // A text message whose first fragment declares 1 MiB (more than the 4 KiB buffer, so it
    // is handed out in pieces); only its first 100 bytes have arrived, with a surrogate.
    let config = Config::new().receive_buffer_size(4096);
    let mut conn = Connection::open_server(config, T0);
    let mut payload = vec![b'a'; 1 << 20];
    payload[10..13].copy_from_slice(b"\xed\xa0\x80");
    let first = frame(Role::Client, false, Opcode::Text, &payload);
    let mut arrived = first[..14 + 100].to_vec();
    let (e, peak) = peak_heap(|| conn.receive(&mut arrived, T0).expect_err("refused at once"));
    assert_eq!(e.kind(), ErrorKind::InvalidUtf8);
    assert_eq!(e.close_code(), Some(CloseCode::INVALID_PAYLOAD));
    let (sent, close) = drain(&mut conn);
    assert_close_sent(&sent, CloseCode::INVALID_PAYLOAD);
    assert!(close);
    assert!(peak <= FRAME_PATH_HEAP, "{peak} bytes");
    // The rest of the frame and later fragments are discarded.
    let mut rest = first[14 + 100..14 + 5000].to_vec();
    rest.extend(frame(Role::Client, true, Opcode::Continuation, b"later"));
    let r = conn.receive(&mut rest, T0).unwrap();
    assert!(r.event.is_none() && r.consumed == rest.len());
}

// ---- Control frames ----

#[test]
fn a_ping_flood_owes_one_pong_and_holds_constant_memory() {
    let mut conn = Connection::open_server(Config::new(), T0);
    let peak = heap::ping_flood(&mut conn);
    assert!(peak <= FRAME_PATH_HEAP + 1024, "{peak} bytes for 100,000 pings");
    // Nothing more is owed after the last drain.
    assert_eq!(drain(&mut conn), (Vec::new(), false));
}
