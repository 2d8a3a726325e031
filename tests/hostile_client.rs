//! Hostile servers, through the public API: tests/hostile.rs for the client role. Each test
//! names what it proves, checks the error, the close code sent (or that nothing is sent
//! during the opening handshake, where a client has no way to answer), the connection's
//! state, and that the heap stayed bounded.
//!
//! The heap is measured per thread by a counting global allocator in this test binary, so
//! tests running in parallel do not pollute each other's figures.

mod common;
#[path = "common/heap.rs"]
mod heap;

use base64::Engine as _;
use common::drain;
use common::wire::{self, frame, frames, scan_head_byte_by_byte, T0};
use heap::{peak_heap, FRAME_PATH_HEAP};

use wsmachine::frame::Opcode;
use wsmachine::{
    ClientRequest, CloseCode, Config, Connection, Duration, Error, ErrorKind, Event, Reassembler,
    RecvBuffer, Role, State,
};

// ---- Helpers ----

/// The client's seed: fixed, so every run sends the same key and masks.
const SEED: [u8; 32] = [0x5A; 32];

/// What RFC 6455 §1.3 appends to the key before hashing it.
const GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// The `Sec-WebSocket-Accept` value for `key` (RFC 6455 §4.2.2): the base64 of the SHA-1 of
/// the key, as sent, followed by the GUID. Computed here, independently of the crate.
fn accept_value(key: &str) -> String {
    let mut sha = sha1_smol::Sha1::new();
    sha.update(key.as_bytes());
    sha.update(GUID.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(sha.digest().bytes())
}

/// A new client, its request drained, and the `101` a server would answer it with: the
/// accept value is computed for the key in that request.
fn client_and_101(config: Config) -> (Connection, String) {
    let request = ClientRequest::new("server.example.com", "/chat");
    let mut conn = Connection::client(config, &request, SEED, T0).expect("a valid request");
    let (request, close) = drain(&mut conn);
    assert!(!close);
    let request = String::from_utf8(request).expect("an ASCII request");
    assert!(request.starts_with("GET /chat HTTP/1.1\r\n"), "{request}");
    let key = request
        .lines()
        .find_map(|line| line.strip_prefix("Sec-WebSocket-Key: "))
        .expect("the request carries a key");
    let response = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {}\r\n\r\n",
        accept_value(key)
    );
    assert_eq!(conn.state(), State::Handshaking);
    (conn, response)
}

/// `response` with the header lines `extra` added before its blank line.
fn with_headers(response: &str, extra: &str) -> String {
    let head = response.strip_suffix("\r\n").expect("a whole head");
    format!("{head}{extra}\r\n")
}

/// A client whose opening handshake went through against a well-behaved `101`: where the
/// frames that follow are the point.
fn connected(config: Config) -> Connection {
    let (mut conn, response) = client_and_101(config);
    let mut bytes = response.into_bytes();
    let len = bytes.len();
    let r = conn.receive(&mut bytes, T0).expect("the 101 is accepted");
    assert_eq!(r.consumed, len);
    assert!(matches!(r.event, Some(Event::Accepted(_))), "{:?}", r.event);
    assert_eq!(conn.state(), State::Open);
    conn
}

/// Asserts that the client abandoned its opening handshake because of `e`: a client has no
/// WebSocket to close yet and never answers in HTTP, so nothing is sent back; the transport's
/// close is owed at once, and later input is discarded.
fn assert_handshake_abandoned(conn: &mut Connection, e: &Error) {
    assert_eq!((e.http_status(), e.close_code()), (None, None), "{e}");
    assert_eq!(e.local_close_code(), CloseCode::ABNORMAL);
    assert_eq!(conn.state(), State::Closing);
    assert_eq!(drain(conn), (Vec::new(), true), "nothing sent, the transport closed");
    assert_eq!(conn.state(), State::Closed);
    assert_eq!(conn.poll_timeout(), None);
    let mut more = b"HTTP/1.1 101 Switching Protocols\r\n\r\n".to_vec();
    let r = conn.receive(&mut more, T0).expect("discarded");
    assert!(r.event.is_none() && r.consumed == more.len());
}

/// Asserts that the client failed the open connection because of `e`, with `code`: exactly
/// one close frame went out, masked (as all a client's frames are), and then the client waits
/// for the server to close TCP (RFC 6455 §7.1.1) until the close deadline, when it closes the
/// transport itself. Input after the failure is discarded.
fn assert_failed_with_close(conn: &mut Connection, e: &Error, code: CloseCode) {
    assert_eq!(e.close_code(), Some(code), "{e}");
    assert_eq!(e.http_status(), None);
    let (sent, close) = drain(conn);
    wire::assert_close_sent(Role::Client, &sent, code);
    assert!(!close, "a client waits for the server to close TCP");
    assert_eq!(conn.state(), State::Closing);
    let mut more = frame(Role::Server, true, Opcode::Ping, b"still there?");
    more.extend(frame(Role::Server, true, Opcode::Text, b"late"));
    let r = conn.receive(&mut more, T0).expect("discarded");
    assert!(r.event.is_none() && r.consumed == more.len());
    assert_eq!(drain(conn), (Vec::new(), false), "no pong, nothing more");
    assert_eq!(conn.poll_timeout(), Some(T0 + Duration::from_secs(10)));
    // The failure was reported once; the deadline only ends it.
    conn.handle_timeout(T0 + Duration::from_secs(10)).expect("no second failure");
    assert_eq!(drain(conn), (Vec::new(), true));
    assert_eq!(conn.state(), State::Closed);
}

#[test]
fn the_accept_helper_gives_rfc_6455s_example_and_the_client_takes_it() {
    // RFC 6455 §1.3's example key and accept value.
    assert_eq!(accept_value("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    let conn = connected(Config::new());
    assert_eq!(conn.role(), Role::Client);
}

// ---- The opening handshake ----

#[test]
fn a_101_head_far_larger_than_the_limit_sent_whole_is_refused_without_an_answer() {
    let limit = 16 * 1024;
    let (mut conn, ok) = client_and_101(Config::new());
    // A valid 101 but for one header of 1 MiB: 64 times the default head limit.
    let response = with_headers(&ok, &format!("X-Filler: {}\r\n", "a".repeat(1 << 20)));
    // All of it in one slice, its end included.
    let mut input = response.clone().into_bytes();
    let (e, peak) = peak_heap(|| conn.receive(&mut input, T0).expect_err("refused"));
    assert_eq!(e.kind(), ErrorKind::HeadTooLarge { limit });
    assert_handshake_abandoned(&mut conn, &e);
    // The scanner's state is inline in a box made with the connection, and a refusal
    // allocates nothing: far less than the head limit a head could have cost to hold.
    assert!(peak <= 1024, "refused without allocating ({peak} bytes)");

    // Read as a driver would, into the 64 KiB receive buffer: refused from its first read.
    let (mut conn, _) = client_and_101(Config::new());
    let mut buffer = RecvBuffer::for_config(conn.config());
    let taken = buffer.push(response.as_bytes());
    assert_eq!(taken, 64 * 1024);
    let (e, peak) = peak_heap(|| buffer.next_event(&mut conn, T0).expect_err("refused"));
    assert_eq!(e.kind(), ErrorKind::HeadTooLarge { limit });
    assert_handshake_abandoned(&mut conn, &e);
    assert!(peak <= 1024, "refused without allocating ({peak} bytes)");
}

#[test]
fn a_101_head_sent_one_byte_at_a_time_is_scanned_once_then_refused_at_the_limit() {
    let limit = 16 * 1024;
    let (mut conn, ok) = client_and_101(Config::new());
    // The 101's status line and headers, then a header that never ends.
    let line = with_headers(&ok, "X-Filler: ").into_bytes();
    let line = &line[..line.len() - 2];
    let mut buf = vec![0u8; limit];
    let ((result, calls), peak) =
        peak_heap(|| scan_head_byte_by_byte(&mut conn, &mut buf, line, limit));
    assert_eq!(calls, limit, "one call per byte, each examining only its new byte");
    assert_eq!(result.kind(), ErrorKind::HeadTooLarge { limit });
    assert_handshake_abandoned(&mut conn, &result);
    assert!(peak <= 1024, "scanning holds no heap ({peak} bytes)");
}

#[test]
fn a_response_with_a_hundred_thousand_headers_is_refused_without_a_table_for_each() {
    let flood = "X: y\r\n".repeat(100_000);
    // Under the default 16 KiB head limit: refused by size, before any parsing.
    let (mut conn, ok) = client_and_101(Config::new());
    let mut input = with_headers(&ok, &flood).into_bytes();
    let (e, peak) = peak_heap(|| conn.receive(&mut input, T0).expect_err("refused"));
    assert_eq!(e.kind(), ErrorKind::HeadTooLarge { limit: 16 * 1024 });
    assert_handshake_abandoned(&mut conn, &e);
    assert!(peak <= 1024, "refused without allocating ({peak} bytes)");
    // With room for the whole 600 KB head: refused by count, with a table of only
    // `max_headers` slots (an httparse header is two slices: 32 bytes).
    let config = Config::new().max_head_size(1 << 20).receive_buffer_size(1 << 20);
    let (mut conn, ok) = client_and_101(config);
    let mut input = with_headers(&ok, &flood).into_bytes();
    assert!(input.len() < 1 << 20);
    let (e, peak) = peak_heap(|| conn.receive(&mut input, T0).expect_err("refused"));
    assert_eq!(e.kind(), ErrorKind::TooManyHeaders { limit: 128 });
    assert_handshake_abandoned(&mut conn, &e);
    assert!(peak <= 128 * 32 + 1024, "a header table of 128 slots at most ({peak} bytes)");
}

#[test]
fn a_101_with_the_accept_for_another_key_is_refused_without_an_answer() {
    let (mut conn, ok) = client_and_101(Config::new());
    // A replayed answer: right for RFC 6455's example key, not for this client's.
    let start = ok.find("Sec-WebSocket-Accept: ").unwrap() + 22;
    let replayed = format!("{}s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n", &ok[..start]);
    assert_ne!(replayed, ok);
    let mut input = replayed.into_bytes();
    let (e, peak) = peak_heap(|| conn.receive(&mut input, T0).expect_err("refused"));
    assert_eq!(e.kind(), ErrorKind::InvalidAccept);
    assert_handshake_abandoned(&mut conn, &e);
    // The parsed headers' table (at most `max_headers` slots of 32 bytes, and the copy the
    // response keeps of them) is all the refusal costs.
    assert!(peak <= 2 * 32 * 128 + 1024, "{peak} bytes");
}

#[test]
fn a_server_that_never_finishes_its_answer_is_dropped_at_the_handshake_deadline() {
    let (mut conn, ok) = client_and_101(Config::new());
    // Half of the 101, then silence.
    let mut input = ok.as_bytes()[..ok.len() / 2].to_vec();
    let r = conn.receive(&mut input, T0).expect("more is needed");
    assert!(r.event.is_none() && r.consumed == 0);
    assert_eq!(conn.poll_timeout(), Some(T0 + Duration::from_secs(10)));
    conn.handle_timeout(T0 + Duration::from_secs(9)).expect("not yet");
    assert_eq!(conn.state(), State::Handshaking);
    let e = conn.handle_timeout(T0 + Duration::from_secs(10)).expect_err("the deadline");
    assert_eq!(e.kind(), ErrorKind::HandshakeTimeout);
    assert_handshake_abandoned(&mut conn, &e);
}

#[test]
fn a_refusal_with_a_huge_body_holds_only_what_arrived_with_the_head_and_closes() {
    // A 403 followed by 10 MiB of error page, read as a driver would into the 64 KiB
    // receive buffer: the refusal is handed out from the first read, its body the bytes that
    // arrived with the head, and the rest is never waited for.
    let head = "HTTP/1.1 403 Forbidden\r\nContent-Type: text/html\r\n\r\n";
    for declared in [None, Some(10 << 20)] {
        let (mut conn, _) = client_and_101(Config::new());
        let mut head = head.to_string();
        if let Some(len) = declared {
            head = with_headers(&head, &format!("Content-Length: {len}\r\n"));
        }
        let mut wire = head.clone().into_bytes();
        wire.resize(head.len() + (10 << 20), b'x');
        let mut buffer = RecvBuffer::for_config(conn.config());
        let taken = buffer.push(&wire);
        assert_eq!(taken, 64 * 1024);
        let ((status, body), peak) = peak_heap(|| {
            match buffer.next_event(&mut conn, T0).expect("a refusal is no failure") {
                Some(Event::Rejected(response)) => {
                    let body = response.body();
                    assert!(body.iter().all(|&b| b == b'x'), "the body, from its start");
                    (response.status(), body.len())
                }
                other => panic!("{other:?}"),
            }
        });
        assert_eq!(status, 403);
        assert_eq!(body, taken - head.len(), "the body that arrived, no more ({declared:?})");
        assert!(buffer.is_empty(), "the head and that body were consumed");
        // The response's header table, at most `max_headers` slots of 32 bytes, and the
        // copy of them it keeps: nothing in proportion to the body.
        assert!(peak <= 2 * 32 * 128 + 1024, "{peak} bytes");
        // Nothing is sent back; the transport is to be closed, and the rest of the body is
        // discarded.
        assert_eq!(conn.state(), State::Closing);
        assert_eq!(drain(&mut conn), (Vec::new(), true));
        assert_eq!(conn.state(), State::Closed);
        assert_eq!(buffer.push(&wire[taken..]), 64 * 1024);
        assert!(buffer.next_event(&mut conn, T0).expect("discarded").is_none());
        assert!(buffer.is_empty());
    }
}

// ---- Frame sizes ----

#[test]
fn frames_declaring_2_pow_63_minus_1_and_2_pow_40_bytes_are_refused_from_the_header_with_1009() {
    for size in [(1u64 << 63) - 1, 1 << 40] {
        let mut conn = connected(Config::new());
        // Only the header: no payload has been sent, and none is needed to refuse it.
        let mut header = wire::header(Role::Server, Opcode::Binary, size);
        let (e, peak) = peak_heap(|| conn.receive(&mut header, T0).expect_err("refused"));
        assert_eq!(e.kind(), ErrorKind::FrameTooLarge { size, limit: 1 << 20 });
        assert_failed_with_close(&mut conn, &e, CloseCode::MESSAGE_TOO_BIG);
        assert!(peak <= FRAME_PATH_HEAP, "nothing buffered ({peak} bytes)");
    }
}

/// Sends a binary message as one 1-byte frame and then continuations of `piece` bytes
/// (up to `count`), frame by frame as they would arrive, through a reassembler; returns the
/// error, the number of continuations accepted and the peak heap.
fn fragments_until_refused(config: Config, piece: usize, count: usize) -> (Error, usize, usize) {
    let mut conn = connected(config);
    let mut reassembler = Reassembler::new();
    let mut first = frame(Role::Server, false, Opcode::Binary, b"x");
    let continuation = frame(Role::Server, false, Opcode::Continuation, &vec![b'y'; piece]);
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
    assert_failed_with_close(&mut conn, &e, CloseCode::MESSAGE_TOO_BIG);
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
    // The reassembler's copy of the message (at most the limit, twice while it grows).
    assert!(peak <= FRAME_PATH_HEAP + 2 * 1000, "{peak} bytes");
    // With the default limits, the fragment count stops them first: 4096 frames.
    let (e, accepted, peak) = fragments_until_refused(Config::new(), 1, 1_000_000);
    assert_eq!(accepted, 4095);
    assert_eq!(e.kind(), ErrorKind::TooManyFragments { limit: 4096 });
    assert!(peak <= FRAME_PATH_HEAP + 2 * 4096, "{peak} bytes");
}

// ---- Framing ----

#[test]
fn a_masked_frame_from_the_server_is_refused_with_1002() {
    // RFC 6455 §5.1: "A client MUST close a connection if it detects a masked frame."
    let mut conn = connected(Config::new());
    let mut masked = frame(Role::Client, true, Opcode::Text, b"masked");
    let (e, peak) = peak_heap(|| conn.receive(&mut masked, T0).expect_err("refused"));
    assert_eq!(e.kind(), ErrorKind::MaskedFrame);
    assert_failed_with_close(&mut conn, &e, CloseCode::PROTOCOL_ERROR);
    assert!(peak <= FRAME_PATH_HEAP, "{peak} bytes");

    // The same, right behind the 101 in one read.
    let (mut conn, ok) = client_and_101(Config::new());
    let mut input = ok.clone().into_bytes();
    input.extend(frame(Role::Client, true, Opcode::Ping, b"masked"));
    let r = conn.receive(&mut input, T0).expect("the 101 is accepted");
    assert!(matches!(r.event, Some(Event::Accepted(_))));
    assert_eq!(r.consumed, ok.len());
    let e = conn.receive(&mut input[ok.len()..], T0).expect_err("refused");
    assert_eq!(e.kind(), ErrorKind::MaskedFrame);
    assert_failed_with_close(&mut conn, &e, CloseCode::PROTOCOL_ERROR);
}

// ---- UTF-8 ----

#[test]
fn invalid_utf8_in_the_first_fragment_of_a_long_message_is_refused_with_1007_at_once() {
    // A text message whose first fragment declares 1 MiB (more than the 4 KiB buffer, so it
    // is handed out in pieces); only its first 100 bytes have arrived, with a surrogate.
    let mut conn = connected(Config::new().receive_buffer_size(4096));
    let mut payload = vec![b'a'; 1 << 20];
    payload[10..13].copy_from_slice(b"\xed\xa0\x80");
    let first = frame(Role::Server, false, Opcode::Text, &payload);
    // An unmasked header with a 64-bit length: 10 bytes.
    let mut arrived = first[..10 + 100].to_vec();
    let (e, peak) = peak_heap(|| conn.receive(&mut arrived, T0).expect_err("refused at once"));
    assert_eq!(e.kind(), ErrorKind::InvalidUtf8);
    assert!(peak <= FRAME_PATH_HEAP, "{peak} bytes");
    // The rest of the frame and later fragments are discarded.
    let mut rest = first[10 + 100..10 + 5000].to_vec();
    rest.extend(frame(Role::Server, true, Opcode::Continuation, b"later"));
    let r = conn.receive(&mut rest, T0).unwrap();
    assert!(r.event.is_none() && r.consumed == rest.len());
    assert_failed_with_close(&mut conn, &e, CloseCode::INVALID_PAYLOAD);
}

// ---- Control frames ----

#[test]
fn a_close_flood_is_answered_with_one_close_and_the_rest_discarded_in_constant_memory() {
    let close = frame(Role::Server, true, Opcode::Close, b"\x03\xe8bye");
    let ping = frame(Role::Server, true, Opcode::Ping, b"after close");
    // The reply: the code echoed (RFC 6455 §5.5.1), masked.
    let reply = [(Opcode::Close, CloseCode::NORMAL.0.to_be_bytes().to_vec())];

    // Frame by frame: 10,000 closes and 10,000 pings after the first close.
    let mut conn = connected(Config::new());
    let (mut close_in, mut ping_in) = (close.clone(), ping.clone());
    let ((), peak) = peak_heap(|| {
        let r = conn.receive(&mut close_in, T0).expect("the first close");
        let Some(Event::Close(frame)) = r.event else { panic!("{:?}", r.event) };
        assert_eq!((frame.code(), frame.reason()), (CloseCode::NORMAL, "bye"));
        let (sent, close) = drain(&mut conn);
        assert_eq!(frames(Role::Client, &sent), reply);
        assert!(!close, "a client waits for the server to close TCP");
        for i in 0..20_000 {
            let input = if i % 2 == 0 { &mut close_in } else { &mut ping_in };
            let r = conn.receive(input, T0).expect("discarded");
            assert!(r.event.is_none() && r.consumed == input.len(), "frame {i}");
            if i % 1_000 == 999 {
                assert_eq!(drain(&mut conn), (Vec::new(), false), "nothing more, no pong");
            }
        }
    });
    assert!(peak <= FRAME_PATH_HEAP, "{peak} bytes for 20,001 frames");
    assert!(conn.is_close_handshake_complete());
    assert_eq!(conn.state(), State::Closing);
    // The server closes TCP: the end the client was waiting for.
    conn.receive_eof().expect("a clean end");
    assert_eq!(conn.state(), State::Closed);

    // All in one read: the first close is handed out, the rest consumed unseen.
    let mut conn = connected(Config::new());
    let mut flood = close.repeat(5_000);
    flood.extend(ping.repeat(5_000));
    let (consumed, peak) = peak_heap(|| {
        let r = conn.receive(&mut flood, T0).expect("the first close");
        assert!(matches!(r.event, Some(Event::Close(_))));
        let consumed = r.consumed;
        let r = conn.receive(&mut flood[consumed..], T0).expect("discarded");
        assert!(r.event.is_none());
        consumed + r.consumed
    });
    assert_eq!(consumed, flood.len());
    assert!(peak <= FRAME_PATH_HEAP, "{peak} bytes");
    let (sent, close_transport) = drain(&mut conn);
    assert_eq!(frames(Role::Client, &sent), reply, "exactly one close answered");
    assert!(!close_transport);

    // After the client's own close: the server's first close completes the handshake, and
    // nothing at all is owed for the flood.
    let mut conn = connected(Config::new());
    let mut out = [0; 64];
    let written = conn.close(CloseCode::NORMAL, "done", &mut out, T0).expect("close");
    let ours = frames(Role::Client, written.bytes(&out));
    assert_eq!(ours, [(Opcode::Close, b"\x03\xe8done".to_vec())]);
    let mut flood = close.repeat(5_000);
    let r = conn.receive(&mut flood, T0).expect("the reply");
    assert!(matches!(r.event, Some(Event::Close(_))));
    let consumed = r.consumed;
    let r = conn.receive(&mut flood[consumed..], T0).expect("discarded");
    assert_eq!(consumed + r.consumed, flood.len());
    assert!(conn.is_close_handshake_complete());
    assert_eq!(drain(&mut conn), (Vec::new(), false), "no second close");
}

#[test]
fn a_ping_flood_owes_one_pong_and_holds_constant_memory() {
    let mut conn = connected(Config::new());
    let peak = heap::ping_flood(&mut conn);
    assert!(peak <= FRAME_PATH_HEAP + 1024, "{peak} bytes for 100,000 pings");
    // Nothing more is owed after the last drain, and the connection is still open.
    assert_eq!(drain(&mut conn), (Vec::new(), false));
    assert_eq!(conn.state(), State::Open);
}
