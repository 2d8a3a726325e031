//! Arbitrary bytes as a server's first input, in read sizes taken from the input.
//!
//! Invariants: the server ends in an `Event::Request` (a GET with a Host, a 16-byte key and
//! version 13, whose head is exactly the bytes up to the first blank line and within the
//! limit, and which `accept` answers with a 101), or an `Error` whose HTTP status is the one
//! documented for its kind (400, 405, 426 or 431), whose owed bytes are exactly a response
//! starting `HTTP/1.1 <status>` followed by the transport's close, after which input is
//! discarded; or it needs more bytes, only while the input is under the head limit and holds
//! no blank line. It never consumes a byte before the head is whole, and the heap it holds
//! stays within `handshake_heap_bound`.

#![no_main]

use libfuzzer_sys::fuzz_target;
use wsmachine::{Accept, Config, Connection, Event, State};
use wsmachine_fuzz::{
    assert_waiting_for_head, drain_into, expected_http_status, handshake_heap_bound,
    BlankLineSearch, Chunks, Feed, HeapWatch, Input, NOW,
};

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let buffer = input.choose(&[256usize, 1000, 4096, 16384]);
    let max_head = input.choose(&[0usize, 16, 100, 300, 1024, 4096, 16384]);
    let max_headers = input.choose(&[0usize, 1, 3, 8, 64, 128, 100_000]);
    let chunks = Chunks::from_input(&mut input);
    let stream = input.rest();
    let config = Config::new()
        .receive_buffer_size(buffer)
        .max_head_size(max_head)
        .max_headers(max_headers)
        .deflate(wsmachine::DeflateConfig::off());
    let limit = max_head.min(buffer);
    let mut conn = Connection::server(config.clone(), NOW);
    let mut feed = Feed::new(stream, chunks, buffer);
    let mut owed = Vec::with_capacity(4096);
    let mut out = vec![0u8; 4096];
    let heap = HeapWatch::start();
    let mut search = BlankLineSearch::default();
    loop {
        let input_len = feed.len();
        let pending = feed.pending();
        let blank_line = search.end_of_head(pending);
        match conn.receive(pending, NOW) {
            Ok(r) => match r.event {
                Some(Event::Request(request)) => {
                    let head = blank_line.expect("a request ends at a blank line");
                    assert_eq!(r.consumed, head, "the request is the bytes to the blank line");
                    assert!(head <= limit, "a request is within the head limit");
                    assert_eq!(request.method(), "GET", "only GET is accepted");
                    assert_eq!(request.key().len(), 24, "the key is 16 bytes in base64");
                    assert!(request.path().starts_with('/'), "the path is absolute");
                    assert!(request.headers().len() <= max_headers, "within the header limit");
                    let host =
                        request.headers().iter().filter(|h| h.name.eq_ignore_ascii_case("host"));
                    assert_eq!(host.count(), 1, "exactly one Host");
                    assert_eq!(request.header("sec-websocket-version"), Some(&b"13"[..]));
                    let _ = (request.subprotocols().count(), request.extensions().count());
                    assert_eq!(conn.state(), State::Handshaking);
                    drop(request);
                    let n = conn.accept(&Accept::new(), &mut out, NOW).expect("accept").len();
                    assert!(out[..n].starts_with(b"HTTP/1.1 101 Switching Protocols\r\n"));
                    assert_eq!(conn.state(), State::Open, "open once accepted");
                    break;
                }
                Some(other) => panic!("a server's first event is a request, not {other:?}"),
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
                let status = expected_http_status(e.kind());
                assert_eq!(e.http_status(), Some(status), "the status matches the kind");
                assert_eq!(e.close_code(), None, "no close frame during the handshake");
                assert!(
                    blank_line.is_some_and(|end| end <= limit) || input_len >= limit,
                    "an error needs a whole head or a head over the limit"
                );
                if status == 431 && blank_line.is_none() {
                    assert!(input_len >= limit, "431 for a head that reached the limit");
                }
                let closed = drain_into(&mut conn, &mut owed);
                let line = format!("HTTP/1.1 {status} ");
                assert!(owed.starts_with(line.as_bytes()), "the response starts with the status");
                assert!(owed.ends_with(b"\r\n\r\n"), "the response is one whole head");
                assert!(closed, "the transport closes after the error response");
                let mut more = *b"GET / HTTP/1.1\r\n\r\n";
                let r = conn.receive(&mut more, NOW).expect("no second error");
                assert!(r.event.is_none(), "input after a failure is discarded");
                break;
            }
        }
    }
    heap.assert_within(handshake_heap_bound(max_headers, limit), "parsing a request");
});
