//! The opening handshake through the connection, for both roles: what is accepted, what is
//! refused and with which HTTP status, and what a client learns from a refusal.

mod common;

use common::drain;
use common::wire::T0;
use wsmachine::{
    Accept, ClientRequest, Config, Connection, ErrorKind, Event, Reject, State, UsageError,
};

const CHROMIUM: &str = "GET /chat?room=1 HTTP/1.1\r\n\
Host: example.com:8080\r\n\
Connection: Upgrade\r\n\
Pragma: no-cache\r\n\
Cache-Control: no-cache\r\n\
User-Agent: Mozilla/5.0 (X11; Linux x86_64) Chrome/156.0.0.0 Safari/537.36\r\n\
Upgrade: websocket\r\n\
Origin: http://example.com\r\n\
Sec-WebSocket-Version: 13\r\n\
Accept-Encoding: gzip, deflate, br\r\n\
Accept-Language: en-US,en;q=0.9\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
Sec-WebSocket-Protocol: chat, superchat\r\n\
Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n";

/// Feeds a request to a fresh server and returns the failure kind, the status line of the
/// response it owes, and whether it then closes the transport.
fn refused(request: &str) -> (ErrorKind, String, bool) {
    let mut server = Connection::server(Config::new(), T0);
    let mut bytes = request.as_bytes().to_vec();
    let e = server.receive(&mut bytes, T0).expect_err("refused");
    let (response, close) = drain(&mut server);
    let response = String::from_utf8(response).unwrap();
    assert_eq!(e.http_status().map(|s| s.to_string()), response.get(9..12).map(String::from));
    (e.kind(), response.lines().next().unwrap_or("").to_string(), close)
}

#[test]
fn server_accepts_a_chromium_request_and_exposes_it() {
    let mut server = Connection::server(Config::new(), T0);
    let mut bytes = CHROMIUM.as_bytes().to_vec();
    let r = server.receive(&mut bytes, T0).unwrap();
    assert_eq!(r.consumed, CHROMIUM.len());
    let Some(Event::Request(request)) = r.event else { panic!() };
    assert_eq!((request.path(), request.query()), ("/chat", Some("room=1")));
    assert_eq!(request.origin(), Some(&b"http://example.com"[..]));
    assert_eq!(request.subprotocols().collect::<Vec<_>>(), ["chat", "superchat"]);
    assert_eq!(
        request.extensions().collect::<Vec<_>>(),
        ["permessage-deflate; client_max_window_bits"]
    );
    assert_eq!(server.state(), State::Handshaking);
    let mut out = [0; 512];
    let n = server.accept(&Accept::new().subprotocol("superchat"), &mut out, T0).unwrap().len();
    let response = std::str::from_utf8(&out[..n]).unwrap();
    assert!(response.starts_with("HTTP/1.1 101 Switching Protocols\r\n"));
    // RFC 6455 §1.3's example key and accept value.
    assert!(response.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
    assert!(response.contains("Sec-WebSocket-Protocol: superchat\r\n"));
    assert!(response.ends_with("\r\n\r\n"));
    assert_eq!(server.state(), State::Open);
}

#[test]
fn server_accept_refuses_an_unoffered_subprotocol_and_can_retry() {
    let mut server = Connection::server(Config::new(), T0);
    let mut bytes = CHROMIUM.as_bytes().to_vec();
    let _ = server.receive(&mut bytes, T0).unwrap();
    let mut out = [0; 512];
    let bogus = Accept::new().subprotocol("mqtt");
    assert_eq!(server.accept(&bogus, &mut out, T0), Err(UsageError::SubprotocolNotOffered));
    assert_eq!(server.state(), State::Handshaking);
    assert!(server.accept(&Accept::new(), &mut out, T0).is_ok());
}

#[test]
fn server_rejects_with_any_status_headers_and_body() {
    let mut server = Connection::server(Config::new(), T0);
    let mut bytes = CHROMIUM.as_bytes().to_vec();
    let _ = server.receive(&mut bytes, T0).unwrap();
    let mut out = [0; 256];
    let reject = Reject::new(403).headers(&[("X-Why", b"origin")]).body(b"forbidden");
    let n = server.reject(&reject, &mut out).unwrap().len();
    let response = std::str::from_utf8(&out[..n]).unwrap();
    assert!(response.starts_with("HTTP/1.1 403 Forbidden\r\n"), "{response}");
    assert!(response.contains("X-Why: origin\r\n") && response.ends_with("\r\n\r\nforbidden"));
    assert_eq!(drain(&mut server), (Vec::new(), true));
    assert_eq!(server.state(), State::Closed);
}

#[test]
fn server_answers_a_malformed_request_with_400() {
    let (kind, status, close) = refused("GET / HTTP/1.1\r\nHost x\r\n\r\n");
    assert_eq!(
        (kind, status.as_str(), close),
        (ErrorKind::MalformedHttp, "HTTP/1.1 400 Bad Request", true)
    );
}

#[test]
fn server_answers_a_post_with_405() {
    let request = CHROMIUM.replacen("GET", "POST", 1);
    let (kind, status, _) = refused(&request);
    assert_eq!(
        (kind, status.as_str()),
        (ErrorKind::MethodNotGet, "HTTP/1.1 405 Method Not Allowed")
    );
}

#[test]
fn server_answers_another_version_with_426_naming_13() {
    let request = CHROMIUM.replace("Sec-WebSocket-Version: 13", "Sec-WebSocket-Version: 8");
    let mut server = Connection::server(Config::new(), T0);
    let mut bytes = request.into_bytes();
    let e = server.receive(&mut bytes, T0).unwrap_err();
    assert_eq!((e.kind(), e.http_status()), (ErrorKind::UnsupportedVersion, Some(426)));
    let response = String::from_utf8(drain(&mut server).0).unwrap();
    assert!(response.starts_with("HTTP/1.1 426 Upgrade Required\r\n"));
    assert!(response.contains("Sec-WebSocket-Version: 13\r\n"));
}

#[test]
fn server_answers_each_missing_piece_with_400() {
    let cases = [
        ("Host: example.com:8080\r\n", "", ErrorKind::MissingHost),
        ("Upgrade: websocket\r\n", "Upgrade: h2c\r\n", ErrorKind::MissingUpgrade),
        ("Connection: Upgrade\r\n", "Connection: keep-alive\r\n", ErrorKind::MissingConnectionUpgrade),
        ("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n", "Sec-WebSocket-Key: c2hvcnQ=\r\n", ErrorKind::InvalidKey),
        (
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n",
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n",
            ErrorKind::DuplicateHeader("Sec-WebSocket-Key"),
        ),
    ];
    for (from, to, expected) in cases {
        let (kind, status, _) = refused(&CHROMIUM.replace(from, to));
        assert_eq!((kind, status.as_str()), (expected, "HTTP/1.1 400 Bad Request"), "{from}");
    }
    let (kind, _, _) = refused(&CHROMIUM.replace("HTTP/1.1", "HTTP/1.0"));
    assert_eq!(kind, ErrorKind::HttpVersion);
}

#[test]
fn server_tolerates_case_and_token_lists() {
    let request = CHROMIUM
        .replace("Upgrade: websocket", "upgrade: WebSocket")
        .replace("Connection: Upgrade", "connection: keep-alive, UPGRADE");
    let mut server = Connection::server(Config::new(), T0);
    let mut bytes = request.into_bytes();
    assert!(matches!(server.receive(&mut bytes, T0).unwrap().event, Some(Event::Request(_))));
}

#[test]
fn server_answers_an_oversized_head_with_431() {
    let config = Config::new().max_head_size(1024);
    let mut server = Connection::server(config, T0);
    let mut bytes =
        CHROMIUM.replace("Pragma: no-cache", &format!("X-Big: {}", "a".repeat(2000))).into_bytes();
    let e = server.receive(&mut bytes, T0).unwrap_err();
    assert_eq!((e.kind(), e.http_status()), (ErrorKind::HeadTooLarge { limit: 1024 }, Some(431)));
    let response = String::from_utf8(drain(&mut server).0).unwrap();
    assert!(response.starts_with("HTTP/1.1 431 "));
}

#[test]
fn server_answers_too_many_headers_with_431() {
    let config = Config::new().max_headers(10);
    let mut server = Connection::server(config, T0);
    let mut bytes = CHROMIUM.as_bytes().to_vec();
    let e = server.receive(&mut bytes, T0).unwrap_err();
    assert_eq!((e.kind(), e.http_status()), (ErrorKind::TooManyHeaders { limit: 10 }, Some(431)));
}

#[test]
fn server_reads_a_request_split_over_many_reads() {
    let mut server = Connection::server(Config::new(), T0);
    let bytes = CHROMIUM.as_bytes();
    let mut buf = Vec::new();
    for (i, byte) in bytes.iter().enumerate() {
        buf.push(*byte);
        let r = server.receive(&mut buf, T0).unwrap();
        if i + 1 < bytes.len() {
            assert!(r.event.is_none() && r.consumed == 0, "at {i}");
        } else {
            assert!(matches!(r.event, Some(Event::Request(_))));
        }
    }
}

fn new_client(subprotocols: &'static [&'static str]) -> (Connection, String) {
    let request = ClientRequest::new("example.com", "/chat?x=1")
        .subprotocols(subprotocols)
        .headers(&[("Authorization", b"Bearer t")]);
    let mut client = Connection::client(Config::new(), &request, [42; 32], T0).unwrap();
    let (bytes, close) = drain(&mut client);
    assert!(!close);
    (client, String::from_utf8(bytes).unwrap())
}

/// What a server would answer to `request`: (accept value, full 101 response).
fn accept_for(request: &str, protocol: Option<&str>) -> String {
    let mut server = Connection::server(Config::new(), T0);
    let mut bytes = request.as_bytes().to_vec();
    let _ = server.receive(&mut bytes, T0).unwrap();
    let mut out = [0; 512];
    let accept = match protocol {
        Some(p) => Accept::new().subprotocol(p),
        None => Accept::new(),
    };
    let n = server.accept(&accept, &mut out, T0).unwrap().len();
    String::from_utf8(out[..n].to_vec()).unwrap()
}

#[test]
fn client_request_is_a_valid_upgrade_and_the_server_accepts_it() {
    let (mut client, request) = new_client(&["chat"]);
    assert!(request.starts_with("GET /chat?x=1 HTTP/1.1\r\nHost: example.com\r\n"));
    assert!(request.contains("Authorization: Bearer t\r\n"));
    assert!(request.contains("Sec-WebSocket-Protocol: chat\r\n"));
    let mut response = accept_for(&request, Some("chat")).into_bytes();
    // The server's first frame arrives in the same read as its response.
    let head_len = response.len();
    response.extend_from_slice(&[0x81, 0x02, b'h', b'i']);
    let r = client.receive(&mut response, T0).unwrap();
    assert_eq!(r.consumed, head_len);
    let Some(Event::Accepted(accepted)) = r.event else { panic!() };
    assert_eq!(accepted.subprotocol(), Some("chat"));
    assert_eq!(client.state(), State::Open);
    let r = client.receive(&mut response[head_len..], T0).unwrap();
    assert!(matches!(r.event, Some(Event::Message(wsmachine::Message::Text("hi")))));
}

#[test]
fn client_refuses_a_wrong_accept_value() {
    let (mut client, request) = new_client(&[]);
    let response = accept_for(&request, None);
    let start = response.find("Sec-WebSocket-Accept: ").unwrap() + 22;
    let mut bad = response.into_bytes();
    bad[start] = if bad[start] == b'A' { b'B' } else { b'A' };
    let e = client.receive(&mut bad, T0).unwrap_err();
    assert_eq!((e.kind(), e.http_status(), e.close_code()), (ErrorKind::InvalidAccept, None, None));
    assert_eq!(drain(&mut client), (Vec::new(), true), "the client closes the transport");
}

#[test]
fn client_refuses_an_unoffered_subprotocol_or_extension() {
    let (mut client, request) = new_client(&["chat"]);
    let mut response = accept_for(&request, Some("chat"))
        .replace("Sec-WebSocket-Protocol: chat", "Sec-WebSocket-Protocol: other")
        .into_bytes();
    assert_eq!(
        client.receive(&mut response, T0).unwrap_err().kind(),
        ErrorKind::UnofferedSubprotocol
    );
    // A list, even of one offered name, is not a choice of one (found by fuzzing).
    for value in ["chat,", "chat, chat", ", chat"] {
        let (mut client, request) = new_client(&["chat"]);
        let mut response = accept_for(&request, Some("chat"))
            .replace("Sec-WebSocket-Protocol: chat", &format!("Sec-WebSocket-Protocol: {value}"))
            .into_bytes();
        let e = client.receive(&mut response, T0).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::UnofferedSubprotocol, "{value}");
    }
    let (mut client, request) = new_client(&[]);
    let mut response = accept_for(&request, None)
        .replacen("\r\n\r\n", "\r\nSec-WebSocket-Extensions: x-unoffered\r\n\r\n", 1)
        .into_bytes();
    assert_eq!(
        client.receive(&mut response, T0).unwrap_err().kind(),
        ErrorKind::UnofferedExtension
    );
}

#[test]
fn client_surfaces_a_refusal_with_status_headers_and_body() {
    let (mut client, _) = new_client(&[]);
    let mut response =
        b"HTTP/1.1 302 Found\r\nLocation: wss://elsewhere/\r\nContent-Length: 5\r\n\r\nmovedEXTRA"
            .to_vec();
    let r = client.receive(&mut response, T0).unwrap();
    let Some(Event::Rejected(rejected)) = r.event else { panic!() };
    assert_eq!(rejected.status(), 302);
    assert_eq!(rejected.location(), Some(&b"wss://elsewhere/"[..]));
    assert_eq!(rejected.body(), b"moved");
    assert_eq!(r.consumed, response.len() - 5);
    assert_eq!(drain(&mut client), (Vec::new(), true));
    assert_eq!(client.state(), State::Closed);
}

#[test]
fn client_request_refuses_header_injection() {
    let request = ClientRequest::new("example.com", "/").headers(&[("X-A", b"1\r\nEvil: 1")]);
    let e = Connection::client(Config::new(), &request, [1; 32], T0).unwrap_err();
    assert_eq!(e, UsageError::InvalidHeader);
}

#[test]
fn different_seeds_give_different_keys() {
    let request = ClientRequest::new("h", "/");
    let key = |seed| {
        let mut c = Connection::client(Config::new(), &request, seed, T0).unwrap();
        let text = String::from_utf8(drain(&mut c).0).unwrap();
        text.lines().find(|l| l.starts_with("Sec-WebSocket-Key")).unwrap().to_string()
    };
    assert_eq!(key([1; 32]), key([1; 32]));
    assert_ne!(key([1; 32]), key([2; 32]));
}
