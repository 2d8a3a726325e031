//! Arbitrary bytes as a client's first input after its upgrade request, in read sizes taken
//! from the input. The first `{accept}` in the input is replaced by the right
//! `Sec-WebSocket-Accept` value for the client's key, so the fuzzer can reach the open state.
//!
//! Invariants: the client ends in `Event::Accepted` (a 101 whose head is the bytes to the
//! first blank line, within the limit; the connection is open, and the bytes after the head
//! are then checked as frames with `FrameChecker`), `Event::Rejected` (any other status; the
//! body is what followed the head, cut at Content-Length; the transport is to be closed and
//! nothing sent), or an `Error` from the documented set that sends nothing (neither close
//! frame nor HTTP status) and closes the transport; or it needs more bytes, only under the
//! head limit and without a blank line. The heap stays within `handshake_heap_bound`, and
//! then within `FRAME_PATH_HEAP` more once open.

#![no_main]

use base64::Engine as _;
use libfuzzer_sys::fuzz_target;
use wsmachine::{ClientRequest, Connection, ErrorKind, Event, Role, State};
use wsmachine_fuzz::{
    assert_waiting_for_head, drain_into, handshake_heap_bound, run_frames, BlankLineSearch, Chunks,
    Feed, FrameChecker, HeapWatch, Input, Limits, FRAME_PATH_HEAP, NOW,
};

fn accept_for(request: &[u8]) -> String {
    let text = std::str::from_utf8(request).expect("the request is ASCII");
    let key = text
        .lines()
        .find_map(|l| l.strip_prefix("Sec-WebSocket-Key: "))
        .expect("the request has a key");
    let mut sha = sha1_smol::Sha1::new();
    sha.update(key.as_bytes());
    sha.update(b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
    base64::engine::general_purpose::STANDARD.encode(sha.digest().bytes())
}

fn with_accept(stream: &[u8], accept: &str) -> Vec<u8> {
    const MARK: &[u8] = b"{accept}";
    match stream.windows(MARK.len()).position(|w| w == MARK) {
        Some(at) => [&stream[..at], accept.as_bytes(), &stream[at + MARK.len()..]].concat(),
        None => stream.to_vec(),
    }
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let limits = Limits {
        buffer: input.choose(&[256usize, 1000, 4096, 16384]),
        frame: 1 << 20,
        message: 1 << 20,
        fragments: 4096,
        auto_pong: true,
    };
    let max_head = input.choose(&[0usize, 16, 100, 300, 1024, 4096, 16384]);
    let max_headers = input.choose(&[0usize, 1, 3, 8, 64, 128, 100_000]);
    let offer = input.byte();
    let chunks = Chunks::from_input(&mut input);
    let config = limits.config().max_head_size(max_head).max_headers(max_headers);
    let limit = max_head.min(limits.buffer);
    let subprotocols: &[&str] = if offer & 1 == 1 { &["chat", "superchat"] } else { &[] };
    let extensions: &[&str] = if offer & 2 == 2 { &["permessage-deflate"] } else { &[] };
    let request = ClientRequest::new("example.com", "/chat")
        .subprotocols(subprotocols)
        .extensions(extensions);
    let mut conn = Connection::client(config, &request, [5; 32], NOW).expect("a valid request");
    let mut owed = Vec::with_capacity(4096);
    let closed = drain_into(&mut conn, &mut owed);
    assert!(!closed && owed.starts_with(b"GET /chat HTTP/1.1\r\n") && owed.ends_with(b"\r\n\r\n"));
    let stream = with_accept(input.rest(), &accept_for(&owed));
    let mut feed = Feed::new(&stream, chunks, limits.buffer);
    let mut checker = FrameChecker::new(Role::Client, limits, stream.len());
    let heap = HeapWatch::start();
    let mut search = BlankLineSearch::default();
    loop {
        let input_len = feed.len();
        let pending = feed.pending();
        let blank_line = search.end_of_head(pending);
        match conn.receive(pending, NOW) {
            Ok(r) => match r.event {
                Some(Event::Accepted(response)) => {
                    assert_eq!(response.status(), 101, "accepted means 101");
                    assert_eq!(
                        Some(r.consumed),
                        blank_line,
                        "the head is the bytes to the blank line"
                    );
                    assert!(r.consumed <= limit, "the head is within the limit");
                    assert!(response.body().is_empty(), "a 101 has no body");
                    if let Some(chosen) = response.subprotocol() {
                        assert!(subprotocols.contains(&chosen), "only an offered subprotocol");
                    }
                    let (consumed, needed) = (r.consumed, r.needed);
                    drop(response);
                    assert_eq!(conn.state(), State::Open, "open once accepted");
                    feed.consume(consumed, needed);
                    heap.assert_within(handshake_heap_bound(max_headers, limit), "a response");
                    let frames = HeapWatch::start();
                    run_frames(&mut conn, &mut feed, &mut checker, 1);
                    frames.assert_within(FRAME_PATH_HEAP, "the client receiving frames");
                    return;
                }
                Some(Event::Rejected(response)) => {
                    let head = blank_line.expect("a response ends at a blank line");
                    assert_ne!(response.status(), 101, "rejected means another status");
                    assert!(head <= limit, "the head is within the limit");
                    assert_eq!(r.consumed, head + response.body().len(), "head and body consumed");
                    assert!(r.consumed <= input_len);
                    drop(response);
                    assert_eq!(conn.state(), State::Closing, "the transport is to be closed");
                    assert!(drain_into(&mut conn, &mut owed), "the transport's close is owed");
                    assert!(owed.is_empty(), "nothing is sent after a refusal");
                    break;
                }
                Some(other) => panic!("a client's first event is an answer, not {other:?}"),
                None => {
                    let (consumed, needed) = (r.consumed, r.needed);
                    assert_waiting_for_head(consumed, needed, input_len, limit, blank_line);
                    feed.consume(consumed, needed);
                    if feed.stream_done() {
                        break;
                    }
                    feed.read();
                }
            },
            Err(e) => {
                assert!(
                    matches!(
                        e.kind(),
                        ErrorKind::MalformedHttp
                            | ErrorKind::HttpVersion
                            | ErrorKind::HeadTooLarge { .. }
                            | ErrorKind::TooManyHeaders { .. }
                            | ErrorKind::MissingUpgrade
                            | ErrorKind::MissingConnectionUpgrade
                            | ErrorKind::InvalidAccept
                            | ErrorKind::UnofferedSubprotocol
                            | ErrorKind::UnofferedExtension
                    ),
                    "documented errors: {:?}",
                    e.kind()
                );
                assert_eq!(
                    (e.http_status(), e.close_code()),
                    (None, None),
                    "a client sends nothing"
                );
                assert!(
                    blank_line.is_some_and(|end| end <= limit) || input_len >= limit,
                    "an error needs a whole head or a head over the limit"
                );
                assert!(drain_into(&mut conn, &mut owed), "the transport closes");
                assert!(owed.is_empty(), "nothing is sent after a failed handshake");
                break;
            }
        }
    }
    heap.assert_within(handshake_heap_bound(max_headers, limit), "parsing a response");
});
