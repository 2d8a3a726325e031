//! One scenario table, run against every adapter (the blocking one, tokio, and the embedded
//! one over tokio's TCP through `embedded-io-adapters`), over real loopback sockets: our client and server together, each
//! against tungstenite, subprotocols, refusals, timers, bytes that arrive with the
//! handshake, many connections, failures of the peer's. A scenario is written once, generic
//! over [`Adapter`], so the adapters cannot drift apart; what only one adapter has (split
//! halves, `Sink`, TLS wrappers) is tested in its own file.

mod adapter_support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::thread::JoinHandle;
use std::time::Duration;

use adapter_support::{big_config, big_payload, bounded, client_frame, Adapter, Socket, REQUEST};
use wsmachine::frame::Opcode;
use wsmachine::{
    AdapterError, ClientRequest, CloseCode, Config, Decision, ErrorKind, Incoming, MessageKind,
    Outgoing,
};

/// Each scenario, once per adapter; those after `;` need a heap adapter (name resolution).
macro_rules! scenarios {
    ($($name:ident),* $(,)?; $($heap:ident),* $(,)?) => {
        mod blocking_adapter {
            $(#[test]
            fn $name() {
                super::$name::<super::adapter_support::Blocking>();
            })*
            $(#[test]
            fn $heap() {
                super::$heap::<super::adapter_support::Blocking>();
            })*
        }
        #[cfg(feature = "tokio")]
        mod tokio_adapter {
            $(#[test]
            fn $name() {
                super::$name::<super::adapter_support::Tokio>();
            })*
            $(#[test]
            fn $heap() {
                super::$heap::<super::adapter_support::Tokio>();
            })*
        }
        #[cfg(all(feature = "embedded-io", feature = "tokio"))]
        mod embedded_adapter {
            $(#[test]
            fn $name() {
                super::$name::<super::adapter_support::Embedded>();
            })*
        }
    };
}

scenarios!(
    own_client_and_server,
    server_closes_first_with_its_code,
    tungstenite_client_against_own_server,
    own_client_against_tungstenite_server,
    server_inspects_the_request_and_picks_a_subprotocol,
    server_rejects_with_403_and_client_sees_it,
    tungstenite_client_sees_the_403,
    keepalive_detects_a_silent_peer,
    handshake_deadline_closes_a_client_that_never_finishes,
    frames_sent_with_the_request_are_not_lost,
    frames_sent_with_the_response_are_not_lost,
    a_hundred_concurrent_connections,
    a_protocol_violation_is_returned_once_and_answered_with_1002,
    invalid_utf8_late_in_a_large_frame_fails_with_1007,
    large_messages_through_a_small_buffer_arrive_intact;
    connect_url_and_bad_urls,
);

// ---- Helpers ----

/// A server on adapter `A` that accepts `connections` connections, each on its own thread,
/// and echoes messages; each connection's thread returns the close code it received.
fn echo_server<A: Adapter>(
    config: Config,
    connections: usize,
) -> (SocketAddr, JoinHandle<Vec<Option<u16>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let handle = std::thread::spawn(move || {
        let mut threads = Vec::new();
        for _ in 0..connections {
            let (tcp, _) = listener.accept().unwrap();
            let config = config.clone();
            threads.push(std::thread::spawn(move || serve_echo::<A>(tcp, config)));
        }
        threads.into_iter().map(|t| t.join().unwrap()).collect()
    });
    (addr, handle)
}

fn serve_echo<A: Adapter>(tcp: TcpStream, config: Config) -> Option<u16> {
    let mut ws = A::accept_with(tcp, config, |_| Decision::accept()).unwrap();
    let mut close = None;
    while let Some(incoming) = ws.recv().unwrap() {
        match incoming {
            Incoming::Text(text) => ws.send(Outgoing::Text(text)).unwrap(),
            Incoming::Binary(data) => ws.send(Outgoing::Binary(data)).unwrap(),
            Incoming::Close(frame) => close = Some(frame.code().0),
            _ => {}
        }
    }
    close
}

fn connect<A: Adapter>(addr: SocketAddr, config: Config) -> A::Socket {
    let tcp = TcpStream::connect(addr).unwrap();
    let host = addr.to_string();
    A::connect(tcp, &ClientRequest::new(&host, "/echo"), config).unwrap().0
}

fn fragment(payload: &[u8], is_last: bool) -> Outgoing {
    Outgoing::Fragment { kind: MessageKind::Text, payload: payload.to_vec(), is_last }
}

/// The shared exchange on a connected client: every message kind, fragments with a ping
/// between them, 16 MiB, then a close with 4000.
fn exchange(ws: &mut impl Socket) {
    ws.send(Outgoing::text("hello")).unwrap();
    assert_eq!(ws.recv().unwrap(), Some(Incoming::Text("hello".into())));
    ws.send(Outgoing::binary(vec![0, 1, 2, 255])).unwrap();
    assert_eq!(ws.recv().unwrap(), Some(Incoming::Binary(vec![0, 1, 2, 255])));
    ws.send(fragment(b"frag", false)).unwrap();
    ws.send(Outgoing::Ping(b"between".to_vec())).unwrap();
    ws.send(fragment("ment\u{e9}".as_bytes(), true)).unwrap();
    assert_eq!(ws.recv().unwrap(), Some(Incoming::Pong(b"between".to_vec())));
    assert_eq!(ws.recv().unwrap(), Some(Incoming::Text("fragment\u{e9}".into())));
    let big = big_payload();
    ws.send(Outgoing::Binary(big.clone())).unwrap();
    match ws.recv().unwrap() {
        Some(Incoming::Binary(data)) => assert!(data == big, "16 MiB echo differs"),
        other => panic!("expected the 16 MiB echo, got {other:?}"),
    }
    ws.close(CloseCode(4000), "bye").unwrap();
    match ws.recv().unwrap() {
        Some(Incoming::Close(frame)) => assert_eq!(frame.code(), CloseCode(4000)),
        other => panic!("expected the close reply, got {other:?}"),
    }
    assert_eq!(ws.recv().unwrap(), None);
    assert!(matches!(ws.send(Outgoing::text("late")), Err(AdapterError::Closed)));
}

/// What a raw peer reads until the server closes the stream, after the response head.
fn after_head(peer: &mut TcpStream) -> Vec<u8> {
    peer.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut seen = Vec::new();
    // The server may reset the connection after closing it: what arrived before counts.
    let _ = peer.read_to_end(&mut seen);
    let head_end = seen.windows(4).position(|w| w == b"\r\n\r\n").expect("a response head") + 4;
    assert!(seen.starts_with(b"HTTP/1.1 101"), "accepted");
    seen.split_off(head_end)
}

// ---- The scenarios ----

fn own_client_and_server<A: Adapter>() {
    bounded(60, || {
        let (addr, server) = echo_server::<A>(big_config(), 1);
        let mut ws = connect::<A>(addr, big_config());
        exchange(&mut ws);
        assert_eq!(server.join().unwrap(), [Some(4000)]);
    });
}

fn server_closes_first_with_its_code<A: Adapter>() {
    bounded(20, || {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let mut ws = A::accept(listener.accept().unwrap().0).unwrap();
            assert_eq!(ws.recv().unwrap(), Some(Incoming::Text("bye?".into())));
            ws.close(CloseCode::GOING_AWAY, "restart").unwrap();
            let mut seen = Vec::new();
            while let Some(incoming) = ws.recv().unwrap() {
                seen.push(incoming);
            }
            seen
        });
        let mut ws = connect::<A>(addr, Config::new());
        ws.send(Outgoing::text("bye?")).unwrap();
        match ws.recv().unwrap() {
            Some(Incoming::Close(frame)) => {
                assert_eq!((frame.code(), frame.reason()), (CloseCode::GOING_AWAY, "restart"));
            }
            other => panic!("expected the server's close, got {other:?}"),
        }
        assert_eq!(ws.recv().unwrap(), None);
        assert!(matches!(ws.send(Outgoing::text("late")), Err(AdapterError::Closed)));
        let seen = server.join().unwrap();
        assert!(matches!(&seen[..], [Incoming::Close(f)] if f.code() == CloseCode::GOING_AWAY));
    });
}

fn tungstenite_client_against_own_server<A: Adapter>() {
    use tungstenite::protocol::frame::coding::CloseCode as TCode;
    use tungstenite::protocol::{CloseFrame, WebSocketConfig};
    use tungstenite::Message;
    bounded(60, || {
        let (addr, server) = echo_server::<A>(big_config(), 1);
        let tcp = TcpStream::connect(addr).unwrap();
        let config = WebSocketConfig::default().max_message_size(Some(32 << 20));
        let url = format!("ws://{addr}/");
        let (mut ws, response) =
            tungstenite::client::client_with_config(url.as_str(), tcp, Some(config)).unwrap();
        assert_eq!(response.status(), 101);
        ws.send(Message::text("hello")).unwrap();
        assert_eq!(ws.read().unwrap(), Message::text("hello"));
        ws.send(Message::binary(vec![9u8; 70_000])).unwrap();
        assert_eq!(ws.read().unwrap(), Message::binary(vec![9u8; 70_000]));
        let big = big_payload();
        ws.send(Message::binary(big.clone())).unwrap();
        assert!(ws.read().unwrap().into_data() == big, "16 MiB echo differs");
        ws.send(Message::Ping(b"p".to_vec().into())).unwrap();
        assert_eq!(ws.read().unwrap(), Message::Pong(b"p".to_vec().into()));
        ws.close(Some(CloseFrame { code: TCode::from(4001), reason: "done".into() })).unwrap();
        loop {
            match ws.read() {
                Ok(Message::Close(Some(frame))) => assert_eq!(u16::from(frame.code), 4001),
                Ok(other) => panic!("unexpected {other:?}"),
                Err(tungstenite::Error::ConnectionClosed) => break,
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(server.join().unwrap(), [Some(4001)]);
    });
}

fn own_client_against_tungstenite_server<A: Adapter>() {
    use tungstenite::protocol::WebSocketConfig;
    bounded(60, || {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let tcp = listener.accept().unwrap().0;
            let config = WebSocketConfig::default().max_message_size(Some(32 << 20));
            let mut ws = tungstenite::accept_with_config(tcp, Some(config)).unwrap();
            loop {
                match ws.read() {
                    Ok(message) if message.is_text() || message.is_binary() => {
                        ws.send(message).unwrap()
                    }
                    Ok(_) => {}
                    Err(tungstenite::Error::ConnectionClosed) => return,
                    Err(e) => panic!("tungstenite server: {e}"),
                }
            }
        });
        let mut ws = connect::<A>(addr, big_config());
        exchange(&mut ws);
        server.join().unwrap();
    });
}

fn server_inspects_the_request_and_picks_a_subprotocol<A: Adapter>() {
    bounded(20, || {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let (seen_tx, seen_rx) = std::sync::mpsc::channel();
        let server = std::thread::spawn(move || {
            let tcp = listener.accept().unwrap().0;
            let ws = A::accept_with(tcp, Config::new(), move |request| {
                let seen = (
                    request.path().to_owned(),
                    request.query().map(str::to_owned),
                    request.origin().map(<[u8]>::to_vec),
                    request.subprotocols().map(str::to_owned).collect::<Vec<_>>(),
                    request.header("X-Token").map(<[u8]>::to_vec),
                );
                seen_tx.send(seen).unwrap();
                Decision::accept().subprotocol("chat.v2").header("X-Server", "wsmachine")
            });
            drop(ws.unwrap());
        });
        let tcp = TcpStream::connect(addr).unwrap();
        let headers: &[(&str, &[u8])] = &[("X-Token", b"secret")];
        let request = ClientRequest::new("localhost", "/room?id=7")
            .origin("https://example.com")
            .subprotocols(&["chat.v1", "chat.v2"])
            .headers(headers);
        let (_ws, response) = A::connect(tcp, &request, Config::new()).unwrap();
        assert_eq!(response.status(), 101);
        assert_eq!(response.subprotocol(), Some("chat.v2"));
        assert_eq!(response.header("x-server"), Some(&b"wsmachine"[..]));
        server.join().unwrap();
        let (path, query, origin, protocols, token) = seen_rx.recv().unwrap();
        assert_eq!((path.as_str(), query.as_deref()), ("/room", Some("id=7")));
        assert_eq!(origin.as_deref(), Some(&b"https://example.com"[..]));
        assert_eq!(protocols, ["chat.v1", "chat.v2"]);
        assert_eq!(token.as_deref(), Some(&b"secret"[..]));
    });
}

fn server_rejects_with_403_and_client_sees_it<A: Adapter>() {
    bounded(20, || {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let tcp = listener.accept().unwrap().0;
            let result = A::accept_with(tcp, Config::new(), |request| {
                if request.origin() == Some(b"https://evil.example") {
                    Decision::reject(403).body("forbidden origin")
                } else {
                    Decision::accept()
                }
            });
            match result {
                Err(AdapterError::Rejected { status }) => status,
                Err(other) => panic!("expected a rejection, got {other:?}"),
                Ok(_) => panic!("expected a rejection, got a connection"),
            }
        });
        let tcp = TcpStream::connect(addr).unwrap();
        let request = ClientRequest::new("localhost", "/").origin("https://evil.example");
        match A::connect(tcp, &request, Config::new()) {
            Err(AdapterError::Refused(response)) => {
                assert_eq!(response.status(), 403);
                assert_eq!(response.body(), b"forbidden origin");
            }
            Err(other) => panic!("expected a refusal, got {other:?}"),
            Ok((_, response)) => panic!("expected a refusal, got {response:?}"),
        }
        assert_eq!(server.join().unwrap(), 403);
    });
}

fn tungstenite_client_sees_the_403<A: Adapter>() {
    bounded(20, || {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let tcp = listener.accept().unwrap().0;
            A::accept_with(tcp, Config::new(), |_| Decision::reject(403)).err()
        });
        let tcp = TcpStream::connect(addr).unwrap();
        match tungstenite::client::client(format!("ws://{addr}/").as_str(), tcp) {
            Err(tungstenite::HandshakeError::Failure(tungstenite::Error::Http(response))) => {
                assert_eq!(response.status(), 403);
            }
            other => panic!("expected HTTP 403, got {:?}", other.map(|(_, r)| r)),
        }
        assert!(matches!(server.join().unwrap(), Some(AdapterError::Rejected { status: 403 })));
    });
}

fn keepalive_detects_a_silent_peer<A: Adapter>() {
    bounded(20, || {
        // A peer that completes the handshake and then never answers anything.
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut silent = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        silent.write_all(REQUEST).unwrap();
        let config = Config::new()
            .keepalive_interval(Some(wsmachine::Duration::from_millis(100)))
            .pong_timeout(wsmachine::Duration::from_millis(200));
        let tcp = listener.accept().unwrap().0;
        let mut ws = A::accept_with(tcp, config, |_| Decision::accept()).unwrap();
        let started = std::time::Instant::now();
        match ws.recv() {
            Err(AdapterError::Protocol(e)) => assert_eq!(e.kind(), ErrorKind::PongTimeout),
            other => panic!("expected a pong timeout, got {other:?}"),
        }
        assert!(started.elapsed() < Duration::from_secs(5));
        assert_eq!(ws.recv().unwrap(), None);
        // The silent peer got the 101 and the keepalive ping, then the end of the stream.
        let seen = after_head(&mut silent);
        assert_eq!(seen.first(), Some(&0x89), "a ping follows the handshake");
    });
}

fn handshake_deadline_closes_a_client_that_never_finishes<A: Adapter>() {
    bounded(20, || {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let mut slow = TcpStream::connect(addr).unwrap();
        slow.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n").unwrap();
        let config = Config::new().handshake_timeout(Some(wsmachine::Duration::from_millis(200)));
        let started = std::time::Instant::now();
        match A::accept_with(listener.accept().unwrap().0, config, |_| Decision::accept()) {
            Err(AdapterError::Protocol(e)) => assert_eq!(e.kind(), ErrorKind::HandshakeTimeout),
            Err(other) => panic!("expected a handshake timeout, got {other:?}"),
            Ok(_) => panic!("expected a handshake timeout, got a connection"),
        }
        assert!(started.elapsed() < Duration::from_secs(5));
        slow.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut rest = Vec::new();
        assert_eq!(slow.read_to_end(&mut rest).unwrap(), 0, "closed without a response");
    });
}

fn frames_sent_with_the_request_are_not_lost<A: Adapter>() {
    bounded(20, || {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let mut raw = TcpStream::connect(addr).unwrap();
        let mut bytes = REQUEST.to_vec();
        bytes.extend(client_frame(Opcode::Text, b"early"));
        bytes.extend(client_frame(Opcode::Binary, b"bird"));
        raw.write_all(&bytes).unwrap();
        let mut ws = A::accept(listener.accept().unwrap().0).unwrap();
        assert_eq!(ws.recv().unwrap(), Some(Incoming::Text("early".into())));
        assert_eq!(ws.recv().unwrap(), Some(Incoming::Binary(b"bird".to_vec())));
    });
}

fn frames_sent_with_the_response_are_not_lost<A: Adapter>() {
    bounded(20, || {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let mut tcp = listener.accept().unwrap().0;
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") {
                tcp.read_exact(&mut byte).unwrap();
                head.push(byte[0]);
            }
            let text = String::from_utf8(head).unwrap();
            let key = text
                .lines()
                .find_map(|l| l.strip_prefix("Sec-WebSocket-Key: "))
                .unwrap()
                .trim()
                .to_owned();
            let accept = tungstenite::handshake::derive_accept_key(key.as_bytes());
            let mut reply = format!(
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
                 Connection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
            )
            .into_bytes();
            // An unmasked text frame "first", in the same write as the response.
            reply.extend_from_slice(&[0x81, 5]);
            reply.extend_from_slice(b"first");
            tcp.write_all(&reply).unwrap();
            std::thread::sleep(Duration::from_millis(200));
        });
        let mut ws = connect::<A>(addr, Config::new());
        assert_eq!(ws.recv().unwrap(), Some(Incoming::Text("first".into())));
        server.join().unwrap();
    });
}

fn a_hundred_concurrent_connections<A: Adapter>() {
    bounded(60, || {
        const N: usize = 100;
        let (addr, server) = echo_server::<A>(Config::new(), N);
        let clients: Vec<_> = (0..N)
            .map(|i| {
                std::thread::spawn(move || {
                    let mut ws = connect::<A>(addr, Config::new());
                    for round in 0..5 {
                        let text = format!("client {i} round {round}");
                        ws.send(Outgoing::Text(text.clone())).unwrap();
                        assert_eq!(ws.recv().unwrap(), Some(Incoming::Text(text)));
                    }
                    ws.close(CloseCode::NORMAL, "").unwrap();
                    while ws.recv().unwrap().is_some() {}
                })
            })
            .collect();
        for client in clients {
            client.join().unwrap();
        }
        let closes = server.join().unwrap();
        assert_eq!(closes.len(), N);
        assert!(closes.iter().all(|c| *c == Some(1000)));
    });
}

fn connect_url_and_bad_urls<A: Adapter>() {
    bounded(20, || {
        let (addr, server) = echo_server::<A>(Config::new(), 1);
        let (mut ws, response) =
            A::connect_url(&format!("ws://{addr}/path?q=1"), Config::new()).unwrap();
        assert_eq!(response.status(), 101);
        ws.send(Outgoing::text("url")).unwrap();
        assert_eq!(ws.recv().unwrap(), Some(Incoming::Text("url".into())));
        ws.close(CloseCode::NORMAL, "").unwrap();
        while ws.recv().unwrap().is_some() {}
        server.join().unwrap();
        for bad in ["http://localhost/", "wss://localhost/", "ws://"] {
            match A::connect_url(bad, Config::new()) {
                Err(AdapterError::InvalidUrl(_)) => {}
                Err(other) => panic!("{bad}: expected InvalidUrl, got {other}"),
                Ok(_) => panic!("{bad}: connected"),
            }
        }
    });
}

fn a_protocol_violation_is_returned_once_and_answered_with_1002<A: Adapter>() {
    bounded(20, || {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let mut raw = TcpStream::connect(addr).unwrap();
        let mut bytes = REQUEST.to_vec();
        bytes.extend(client_frame(Opcode::Text, b"fine"));
        // Reserved opcode 3.
        bytes.extend([0x83, 0x80, 0, 0, 0, 0]);
        raw.write_all(&bytes).unwrap();
        let mut ws = A::accept(listener.accept().unwrap().0).unwrap();
        assert_eq!(ws.recv().unwrap(), Some(Incoming::Text("fine".into())));
        match ws.recv() {
            Err(AdapterError::Protocol(e)) => {
                assert_eq!(e.kind(), ErrorKind::ReservedOpcode(3));
                assert_eq!(e.close_code(), Some(CloseCode::PROTOCOL_ERROR));
            }
            other => panic!("expected a protocol error, got {other:?}"),
        }
        // Returned once; the server closes the transport after its close frame.
        assert_eq!(ws.recv().unwrap(), None);
        assert_eq!(after_head(&mut raw), [0x88, 0x02, 0x03, 0xEA], "one close frame with 1002");
    });
}

fn invalid_utf8_late_in_a_large_frame_fails_with_1007<A: Adapter>() {
    bounded(20, || {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let mut raw = TcpStream::connect(addr).unwrap();
        let mut text = "valid text ".repeat(10_000).into_bytes();
        let at = text.len() - 10;
        text[at] = 0xFF;
        let mut bytes = REQUEST.to_vec();
        bytes.extend(client_frame(Opcode::Text, &text));
        let writer = std::thread::spawn(move || {
            // The server may fail and close before the whole frame is written.
            let _ = raw.write_all(&bytes);
            after_head(&mut raw)
        });
        let config = Config::new().receive_buffer_size(4096);
        let tcp = listener.accept().unwrap().0;
        let mut ws = A::accept_with(tcp, config, |_| Decision::accept()).unwrap();
        match ws.recv() {
            Err(AdapterError::Protocol(e)) => {
                assert_eq!(e.kind(), ErrorKind::InvalidUtf8);
                assert_eq!(e.close_code(), Some(CloseCode::INVALID_PAYLOAD));
            }
            other => panic!("expected invalid UTF-8, got {other:?}"),
        }
        assert_eq!(ws.recv().unwrap(), None);
        assert_eq!(writer.join().unwrap(), [0x88, 0x02, 0x03, 0xEF], "one close with 1007");
    });
}

fn large_messages_through_a_small_buffer_arrive_intact<A: Adapter>() {
    bounded(30, || {
        // A 4 KiB read buffer: every frame below is larger, so it arrives in pieces (the
        // tokio adapter reads the rest of each straight into the message).
        let config = Config::new().receive_buffer_size(4096).max_message_size(8 << 20);
        let (addr, server) = echo_server::<A>(config.clone(), 1);
        let mut ws = connect::<A>(addr, config);
        let text: String = "é ascii ∑ 😀 ".repeat(20_000);
        ws.send(Outgoing::Text(text.clone())).unwrap();
        assert_eq!(ws.recv().unwrap(), Some(Incoming::Text(text)));
        // A fragmented binary message: three large frames with a ping between two of them.
        let data: Vec<u8> = (0..300_000u32).map(|i| (i % 253) as u8).collect();
        let piece = |range: std::ops::Range<usize>, is_last| Outgoing::Fragment {
            kind: MessageKind::Binary,
            payload: data[range].to_vec(),
            is_last,
        };
        ws.send(piece(0..100_000, false)).unwrap();
        ws.send(Outgoing::Ping(b"mid".to_vec())).unwrap();
        ws.send(piece(100_000..200_001, false)).unwrap();
        ws.send(piece(200_001..300_000, true)).unwrap();
        assert_eq!(ws.recv().unwrap(), Some(Incoming::Pong(b"mid".to_vec())));
        assert_eq!(ws.recv().unwrap(), Some(Incoming::Binary(data)));
        ws.close(CloseCode::NORMAL, "").unwrap();
        while ws.recv().unwrap().is_some() {}
        assert_eq!(server.join().unwrap(), [Some(1000)]);
    });
}
