//! The blocking adapter over real loopback sockets: our client and server together, each
//! against tungstenite, timers, refusals, many connections at once, and wss with the
//! wss_echo_server_blocking example's TLS wrapper.

mod adapter_support;
#[path = "../examples/wss_echo_server_blocking.rs"]
#[allow(unreachable_pub)]
mod wss_echo_server_blocking;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::thread::JoinHandle;
use std::time::Duration;

use adapter_support::{big_config, big_payload, bounded, client_frame, REQUEST};
use wsmachine::frame::Opcode;
use wsmachine::{
    blocking, ClientRequest, CloseCode, Config, Decision, ErrorKind, Incoming, MessageKind,
    Outgoing,
};

/// A server on the blocking adapter that accepts `connections` connections, each on its own
/// thread, and echoes messages; each connection's thread returns the close code it received.
fn echo_server(config: Config, connections: usize) -> (SocketAddr, JoinHandle<Vec<Option<u16>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let handle = std::thread::spawn(move || {
        let mut threads = Vec::new();
        for _ in 0..connections {
            let (tcp, _) = listener.accept().unwrap();
            let config = config.clone();
            threads.push(std::thread::spawn(move || serve_echo(tcp, config)));
        }
        threads.into_iter().map(|t| t.join().unwrap()).collect()
    });
    (addr, handle)
}

fn serve_echo(tcp: TcpStream, config: Config) -> Option<u16> {
    let mut ws = blocking::accept_with(tcp, config, |_| Decision::accept()).unwrap();
    let mut close = None;
    while let Some(incoming) = ws.recv().unwrap() {
        match incoming {
            Incoming::Text(text) => ws.send_text(&text).unwrap(),
            Incoming::Binary(data) => ws.send_binary(&data).unwrap(),
            Incoming::Close(frame) => close = Some(frame.code().0),
            _ => {}
        }
    }
    close
}

fn connect(addr: SocketAddr, config: Config) -> blocking::WebSocket<TcpStream> {
    let tcp = TcpStream::connect(addr).unwrap();
    let host = addr.to_string();
    blocking::connect(tcp, &ClientRequest::new(&host, "/echo"), config).unwrap().0
}

/// Runs the shared exchange on a connected client: every message kind, fragments, 16 MiB,
/// ping/pong, then a close with 4000.
fn exchange(ws: &mut blocking::WebSocket<TcpStream>) {
    ws.send_text("hello").unwrap();
    assert_eq!(ws.recv().unwrap(), Some(Incoming::Text("hello".into())));
    ws.send_binary(&[0, 1, 2, 255]).unwrap();
    assert_eq!(ws.recv().unwrap(), Some(Incoming::Binary(vec![0, 1, 2, 255])));
    ws.send_fragment(MessageKind::Text, "frag".as_bytes(), false).unwrap();
    ws.send(&Outgoing::Ping(b"between".to_vec())).unwrap();
    ws.send_fragment(MessageKind::Text, "ment\u{e9}".as_bytes(), true).unwrap();
    assert_eq!(ws.recv().unwrap(), Some(Incoming::Pong(b"between".to_vec())));
    assert_eq!(ws.recv().unwrap(), Some(Incoming::Text("fragment\u{e9}".into())));
    let big = big_payload();
    ws.send_binary(&big).unwrap();
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
    assert!(ws.connection().is_close_handshake_complete());
}

#[test]
fn own_client_and_server() {
    bounded(60, || {
        let (addr, server) = echo_server(big_config(), 1);
        let mut ws = connect(addr, big_config());
        exchange(&mut ws);
        assert_eq!(server.join().unwrap(), [Some(4000)]);
    });
}

#[test]
fn server_closes_first_with_its_code() {
    bounded(20, || {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let mut ws = blocking::accept(listener.accept().unwrap().0).unwrap();
            assert_eq!(ws.recv().unwrap(), Some(Incoming::Text("bye?".into())));
            ws.close(CloseCode::GOING_AWAY, "restart").unwrap();
            let mut seen = Vec::new();
            while let Some(incoming) = ws.recv().unwrap() {
                seen.push(incoming);
            }
            seen
        });
        let mut ws = connect(addr, Config::new());
        ws.send_text("bye?").unwrap();
        match ws.recv().unwrap() {
            Some(Incoming::Close(frame)) => {
                assert_eq!((frame.code(), frame.reason()), (CloseCode::GOING_AWAY, "restart"));
            }
            other => panic!("expected the server's close, got {other:?}"),
        }
        assert_eq!(ws.recv().unwrap(), None);
        assert!(matches!(ws.send_text("late"), Err(wsmachine::AdapterError::Closed)));
        let seen = server.join().unwrap();
        assert!(matches!(&seen[..], [Incoming::Close(f)] if f.code() == CloseCode::GOING_AWAY));
    });
}

#[test]
fn tungstenite_client_against_own_server() {
    use tungstenite::protocol::frame::coding::CloseCode as TCode;
    use tungstenite::protocol::{CloseFrame, WebSocketConfig};
    use tungstenite::Message;
    bounded(60, || {
        let (addr, server) = echo_server(big_config(), 1);
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

#[test]
fn own_client_against_tungstenite_server() {
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
        let mut ws = connect(addr, big_config());
        exchange(&mut ws);
        server.join().unwrap();
    });
}

#[test]
fn server_inspects_the_request_and_picks_a_subprotocol() {
    bounded(20, || {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let tcp = listener.accept().unwrap().0;
            let mut seen = None;
            let ws = blocking::accept_with(tcp, Config::new(), |request| {
                seen = Some((
                    request.path().to_owned(),
                    request.query().map(str::to_owned),
                    request.origin().map(<[u8]>::to_vec),
                    request.subprotocols().map(str::to_owned).collect::<Vec<_>>(),
                    request.header("X-Token").map(<[u8]>::to_vec),
                ));
                Decision::accept().subprotocol("chat.v2").header("X-Server", "wsmachine")
            });
            drop(ws.unwrap());
            seen.unwrap()
        });
        let tcp = TcpStream::connect(addr).unwrap();
        let headers: &[(&str, &[u8])] = &[("X-Token", b"secret")];
        let request = ClientRequest::new("localhost", "/room?id=7")
            .origin("https://example.com")
            .subprotocols(&["chat.v1", "chat.v2"])
            .headers(headers);
        let (_ws, response) = blocking::connect(tcp, &request, Config::new()).unwrap();
        assert_eq!(response.status(), 101);
        assert_eq!(response.subprotocol(), Some("chat.v2"));
        assert_eq!(response.header("x-server"), Some(&b"wsmachine"[..]));
        let (path, query, origin, protocols, token) = server.join().unwrap();
        assert_eq!((path.as_str(), query.as_deref()), ("/room", Some("id=7")));
        assert_eq!(origin.as_deref(), Some(&b"https://example.com"[..]));
        assert_eq!(protocols, ["chat.v1", "chat.v2"]);
        assert_eq!(token.as_deref(), Some(&b"secret"[..]));
    });
}

#[test]
fn server_rejects_with_403_and_client_sees_it() {
    bounded(20, || {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let tcp = listener.accept().unwrap().0;
            let result = blocking::accept_with(tcp, Config::new(), |request| {
                if request.origin() == Some(b"https://evil.example") {
                    Decision::reject(403).body("forbidden origin")
                } else {
                    Decision::accept()
                }
            });
            match result {
                Err(wsmachine::AdapterError::Rejected { status }) => status,
                other => panic!("expected a rejection, got {other:?}"),
            }
        });
        let tcp = TcpStream::connect(addr).unwrap();
        let request = ClientRequest::new("localhost", "/").origin("https://evil.example");
        match blocking::connect(tcp, &request, Config::new()) {
            Err(wsmachine::AdapterError::Refused(response)) => {
                assert_eq!(response.status(), 403);
                assert_eq!(response.body(), b"forbidden origin");
            }
            other => panic!("expected a refusal, got {:?}", other.map(|(_, r)| r)),
        }
        assert_eq!(server.join().unwrap(), 403);
    });
}

#[test]
fn tungstenite_client_sees_the_403() {
    bounded(20, || {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let tcp = listener.accept().unwrap().0;
            blocking::accept_with(tcp, Config::new(), |_| Decision::reject(403)).unwrap_err()
        });
        let tcp = TcpStream::connect(addr).unwrap();
        match tungstenite::client::client(format!("ws://{addr}/").as_str(), tcp) {
            Err(tungstenite::HandshakeError::Failure(tungstenite::Error::Http(response))) => {
                assert_eq!(response.status(), 403);
            }
            other => panic!("expected HTTP 403, got {:?}", other.map(|(_, r)| r)),
        }
        assert!(matches!(
            server.join().unwrap(),
            wsmachine::AdapterError::Rejected { status: 403 }
        ));
    });
}

/// A server connection with a 100 ms keepalive (200 ms pong deadline), and its peer's raw
/// socket, which has sent the upgrade request and will do nothing else unless told to.
fn server_with_a_silent_peer() -> (TcpStream, blocking::WebSocket<TcpStream>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut peer = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    peer.write_all(REQUEST).unwrap();
    let config = Config::new()
        .keepalive_interval(Some(wsmachine::Duration::from_millis(100)))
        .pong_timeout(wsmachine::Duration::from_millis(200));
    let ws = blocking::accept_with(listener.accept().unwrap().0, config, |_| Decision::accept())
        .unwrap();
    (peer, ws)
}

#[test]
fn keepalive_detects_a_silent_peer() {
    bounded(20, || {
        // A peer that completes the handshake and then never answers anything.
        let (mut silent, mut ws) = server_with_a_silent_peer();
        let started = std::time::Instant::now();
        match ws.recv() {
            Err(wsmachine::AdapterError::Protocol(e)) => {
                assert_eq!(e.kind(), ErrorKind::PongTimeout)
            }
            other => panic!("expected a pong timeout, got {other:?}"),
        }
        assert!(started.elapsed() < Duration::from_secs(5));
        assert_eq!(ws.recv().unwrap(), None);
        // The silent peer got the 101 and the keepalive ping, then the end of the stream.
        silent.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut seen = Vec::new();
        silent.read_to_end(&mut seen).unwrap();
        let head_end = seen.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        assert!(seen.starts_with(b"HTTP/1.1 101"));
        assert_eq!(seen[head_end], 0x89, "a ping follows the handshake");
    });
}

#[test]
fn handshake_deadline_closes_a_client_that_never_finishes() {
    bounded(20, || {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let mut slow = TcpStream::connect(addr).unwrap();
        slow.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n").unwrap();
        let config = Config::new().handshake_timeout(Some(wsmachine::Duration::from_millis(200)));
        let started = std::time::Instant::now();
        match blocking::accept_with(listener.accept().unwrap().0, config, |_| Decision::accept()) {
            Err(wsmachine::AdapterError::Protocol(e)) => {
                assert_eq!(e.kind(), ErrorKind::HandshakeTimeout)
            }
            other => panic!("expected a handshake timeout, got {:?}", other.map(|_| ())),
        }
        assert!(started.elapsed() < Duration::from_secs(5));
        slow.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut rest = Vec::new();
        assert_eq!(slow.read_to_end(&mut rest).unwrap(), 0, "closed without a response");
    });
}

/// A stream that never delivers a byte: it records the read timeouts the adapter sets, and
/// its reads end at once (the stream ended), so the test needs no 10 s wait.
#[derive(Default)]
struct SilentStream {
    read_timeouts: Vec<Option<Duration>>,
}

impl std::io::Read for SilentStream {
    fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
        Ok(0)
    }
}

impl std::io::Write for SilentStream {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl blocking::Transport for SilentStream {
    fn set_read_timeout(&mut self, timeout: Option<Duration>) -> std::io::Result<()> {
        self.read_timeouts.push(timeout);
        Ok(())
    }
}

#[test]
fn a_default_accept_bounds_the_handshake_by_ten_seconds() {
    let mut stream = SilentStream::default();
    let result = blocking::accept(&mut stream);
    assert!(matches!(result, Err(wsmachine::AdapterError::Protocol(_))));
    // The first read waited no longer than the opening-handshake deadline of the default
    // configuration: 10 s from the connection's start, less the little time since.
    let first = stream.read_timeouts.first().copied().flatten().expect("a bounded read");
    assert!(first <= Duration::from_secs(10) && first > Duration::from_secs(9), "{first:?}");
}

#[test]
fn frames_sent_with_the_request_are_not_lost() {
    bounded(20, || {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let mut raw = TcpStream::connect(addr).unwrap();
        let mut bytes = REQUEST.to_vec();
        bytes.extend(client_frame(Opcode::Text, b"early"));
        bytes.extend(client_frame(Opcode::Binary, b"bird"));
        raw.write_all(&bytes).unwrap();
        let mut ws = blocking::accept(listener.accept().unwrap().0).unwrap();
        assert_eq!(ws.recv().unwrap(), Some(Incoming::Text("early".into())));
        assert_eq!(ws.recv().unwrap(), Some(Incoming::Binary(b"bird".to_vec())));
    });
}

#[test]
fn frames_sent_with_the_response_are_not_lost() {
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
        let mut ws = connect(addr, Config::new());
        assert_eq!(ws.recv().unwrap(), Some(Incoming::Text("first".into())));
        server.join().unwrap();
    });
}

#[test]
fn a_hundred_concurrent_connections() {
    bounded(60, || {
        const N: usize = 100;
        let (addr, server) = echo_server(Config::new(), N);
        let clients: Vec<_> = (0..N)
            .map(|i| {
                std::thread::spawn(move || {
                    let mut ws = connect(addr, Config::new());
                    for round in 0..5 {
                        let text = format!("client {i} round {round}");
                        ws.send_text(&text).unwrap();
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

#[test]
fn connect_url_and_bad_urls() {
    bounded(20, || {
        let (addr, server) = echo_server(Config::new(), 1);
        let (mut ws, response) =
            blocking::connect_url(&format!("ws://{addr}/path?q=1"), Config::new()).unwrap();
        assert_eq!(response.status(), 101);
        ws.send_text("url").unwrap();
        assert_eq!(ws.recv().unwrap(), Some(Incoming::Text("url".into())));
        ws.close(CloseCode::NORMAL, "").unwrap();
        while ws.recv().unwrap().is_some() {}
        server.join().unwrap();
        for bad in ["http://localhost/", "wss://localhost/", "ws://"] {
            let err = blocking::connect_url(bad, Config::new()).map(|_| ()).unwrap_err();
            assert!(matches!(err, wsmachine::AdapterError::InvalidUrl(_)), "{bad}: {err}");
        }
    });
}

#[test]
fn a_large_message_streams_through_a_small_buffer() {
    use wsmachine::Event;
    bounded(30, || {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let config = big_config().receive_buffer_size(4096);
            let tcp = listener.accept().unwrap().0;
            let mut ws = blocking::accept_with(tcp, config, |_| Decision::accept()).unwrap();
            let (mut pieces, mut bytes, mut checksum) = (0usize, 0usize, 0u64);
            loop {
                let last = ws
                    .recv_event(|event| match event {
                        Event::Fragment(piece) => {
                            pieces += 1;
                            bytes += piece.payload.len();
                            checksum += piece.payload.iter().map(|&b| u64::from(b)).sum::<u64>();
                            piece.is_last
                        }
                        other => panic!("expected pieces, got {other:?}"),
                    })
                    .unwrap()
                    .unwrap();
                if last {
                    break;
                }
            }
            (pieces, bytes, checksum)
        });
        let mut ws = connect(addr, Config::new());
        let payload = big_payload();
        // Streamed as 16 frames of 1 MiB, each larger than the server's 4 KiB buffer.
        for (i, chunk) in payload.chunks(1 << 20).enumerate() {
            ws.send_fragment(MessageKind::Binary, chunk, i == 15).unwrap();
        }
        let (pieces, bytes, checksum) = server.join().unwrap();
        assert_eq!(bytes, payload.len());
        assert_eq!(checksum, payload.iter().map(|&b| u64::from(b)).sum::<u64>());
        assert!(pieces >= payload.len() / 4096, "{pieces} pieces");
    });
}

#[test]
fn keepalive_bounds_a_send_to_a_peer_that_stops_reading() {
    bounded(30, || {
        // A peer that completes the handshake and then neither reads nor answers.
        let (stuck, mut ws) = server_with_a_silent_peer();
        let message = vec![0x5a; 1 << 20];
        let started = std::time::Instant::now();
        // Loopback buffers hold a few MiB at most; well before 256 MiB a send must block,
        // and then the keepalive's pong deadline has to end it.
        let mut sent = 0;
        let error = loop {
            match ws.send_binary(&message) {
                Ok(()) => sent += 1,
                Err(e) => break e,
            }
            assert!(sent < 256, "every send went through to a peer that reads nothing");
        };
        match error {
            wsmachine::AdapterError::Protocol(e) => assert_eq!(e.kind(), ErrorKind::PongTimeout),
            other => panic!("expected a pong timeout, got {other:?}"),
        }
        assert!(started.elapsed() < Duration::from_secs(10), "took {:?}", started.elapsed());
        assert_eq!(ws.connection().state(), wsmachine::State::Closed);
        assert_eq!(ws.recv().unwrap(), None);
        drop(stuck);
    });
}

/// A blocking client over rustls, through the example's `Tls` wrapper, trusting `cert`.
fn tls_client(
    addr: SocketAddr,
    cert: rustls::pki_types::CertificateDer<'static>,
    config: Config,
) -> blocking::WebSocket<wss_echo_server_blocking::Tls<rustls::ClientConnection>> {
    let tls_config = wss_echo_server_blocking::tls::client_trusting(cert).unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let session = rustls::ClientConnection::new(tls_config, name).unwrap();
    let tcp = TcpStream::connect(addr).unwrap();
    let stream = wss_echo_server_blocking::Tls(rustls::StreamOwned::new(session, tcp));
    let host = format!("localhost:{}", addr.port());
    let (ws, response) =
        blocking::connect(stream, &ClientRequest::new(&host, "/"), config).unwrap();
    assert_eq!(response.status(), 101);
    ws
}

#[test]
fn wss_with_the_blocking_example_server() {
    bounded(30, || {
        let (server_config, cert, _pem) =
            wss_echo_server_blocking::tls::self_signed_server().unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let (tcp, _) = listener.accept().unwrap();
            wss_echo_server_blocking::serve(tcp, server_config).unwrap();
        });
        let mut ws = tls_client(addr, cert, Config::new());
        ws.send_text("over TLS").unwrap();
        assert_eq!(ws.recv().unwrap(), Some(Incoming::Text("over TLS".into())));
        ws.send_binary(&[7u8; 100_000]).unwrap();
        assert_eq!(ws.recv().unwrap(), Some(Incoming::Binary(vec![7u8; 100_000])));
        ws.close(CloseCode::NORMAL, "").unwrap();
        match ws.recv().unwrap() {
            Some(Incoming::Close(frame)) => assert_eq!(frame.code(), CloseCode::NORMAL),
            other => panic!("expected the echoed close, got {other:?}"),
        }
        assert_eq!(ws.recv().unwrap(), None);
        server.join().unwrap();
    });
}

#[test]
fn keepalive_runs_through_the_tls_wrapper() {
    bounded(30, || {
        let (server_config, cert, _pem) =
            wss_echo_server_blocking::tls::self_signed_server().unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        // A server that completes the TLS and WebSocket handshakes, then reads nothing more
        // (so never answers a ping) until the client is done.
        let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
        let server = std::thread::spawn(move || {
            let (tcp, _) = listener.accept().unwrap();
            let session = rustls::ServerConnection::new(server_config).unwrap();
            let stream = wss_echo_server_blocking::Tls(rustls::StreamOwned::new(session, tcp));
            let ws = blocking::accept(stream).unwrap();
            let _ = done_rx.recv_timeout(Duration::from_secs(20));
            drop(ws);
        });
        let config = Config::new()
            .keepalive_interval(Some(wsmachine::Duration::from_millis(100)))
            .pong_timeout(wsmachine::Duration::from_millis(200));
        let mut ws = tls_client(addr, cert, config);
        let started = std::time::Instant::now();
        match ws.recv() {
            Err(wsmachine::AdapterError::Protocol(e)) => {
                assert_eq!(e.kind(), ErrorKind::PongTimeout)
            }
            other => panic!("expected a pong timeout, got {other:?}"),
        }
        assert!(started.elapsed() < Duration::from_secs(5), "took {:?}", started.elapsed());
        assert_eq!(ws.recv().unwrap(), None);
        done_tx.send(()).unwrap();
        server.join().unwrap();
    });
}
