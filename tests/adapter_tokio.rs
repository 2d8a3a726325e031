//! The tokio adapter over real loopback sockets: our client and server together, each against
//! tokio-tungstenite, split halves, Stream and Sink, timers, refusals, backpressure, many
//! connections at once, and wss with the wss_echo_server example's TLS setup.

mod adapter_support;

#[path = "../examples/wss_echo_server.rs"]
#[allow(unreachable_pub)]
mod wss_echo_server;

use std::net::SocketAddr;
use std::time::Duration;

use adapter_support::{big_config, big_payload, client_frame, REQUEST};
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use wsmachine::frame::Opcode;
use wsmachine::tokio as ws;
use wsmachine::{
    ClientRequest, CloseCode, Config, Decision, ErrorKind, Incoming, MessageKind, Outgoing,
};

/// Fails the test if `future` takes longer than `secs` seconds.
async fn bounded<T>(secs: u64, future: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(secs), future)
        .await
        .unwrap_or_else(|_| panic!("test did not finish within {secs} s"))
}

/// A server on the tokio adapter that accepts `connections` connections and echoes
/// messages; returns the close code each connection received.
async fn echo_server(
    config: Config,
    connections: usize,
) -> (SocketAddr, JoinHandle<Vec<Option<u16>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let handle = tokio::spawn(async move {
        let mut tasks = Vec::new();
        for _ in 0..connections {
            let (tcp, _) = listener.accept().await.unwrap();
            tasks.push(tokio::spawn(serve_echo(tcp, config.clone())));
        }
        let mut closes = Vec::new();
        for task in tasks {
            closes.push(task.await.unwrap());
        }
        closes
    });
    (addr, handle)
}

async fn serve_echo(tcp: TcpStream, config: Config) -> Option<u16> {
    let mut socket = ws::accept_with(tcp, config, |_| Decision::accept()).await.unwrap();
    let mut close = None;
    while let Some(incoming) = socket.recv().await.unwrap() {
        match incoming {
            Incoming::Text(text) => socket.send(Outgoing::Text(text)).await.unwrap(),
            Incoming::Binary(data) => socket.send(Outgoing::Binary(data)).await.unwrap(),
            Incoming::Close(frame) => close = Some(frame.code().0),
            _ => {}
        }
    }
    close
}

async fn connect(addr: SocketAddr, config: Config) -> ws::WebSocket {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let host = addr.to_string();
    ws::connect(tcp, &ClientRequest::new(&host, "/echo"), config).await.unwrap().0
}

/// The shared exchange on a connected client: every message kind, fragments, 16 MiB,
/// ping/pong, then a close with 4000.
async fn exchange(socket: &mut ws::WebSocket) {
    socket.send(Outgoing::text("hello")).await.unwrap();
    assert_eq!(socket.recv().await.unwrap(), Some(Incoming::Text("hello".into())));
    socket.send(Outgoing::binary(vec![0, 1, 2, 255])).await.unwrap();
    assert_eq!(socket.recv().await.unwrap(), Some(Incoming::Binary(vec![0, 1, 2, 255])));
    let fragment = |payload: &str, is_last| Outgoing::Fragment {
        kind: MessageKind::Text,
        payload: payload.as_bytes().to_vec(),
        is_last,
    };
    socket.send(fragment("frag", false)).await.unwrap();
    socket.send(Outgoing::Ping(b"between".to_vec())).await.unwrap();
    socket.send(fragment("ment\u{e9}", true)).await.unwrap();
    assert_eq!(socket.recv().await.unwrap(), Some(Incoming::Pong(b"between".to_vec())));
    assert_eq!(socket.recv().await.unwrap(), Some(Incoming::Text("fragment\u{e9}".into())));
    let big = big_payload();
    socket.send(Outgoing::Binary(big.clone())).await.unwrap();
    match socket.recv().await.unwrap() {
        Some(Incoming::Binary(data)) => assert!(data == big, "16 MiB echo differs"),
        other => panic!("expected the 16 MiB echo, got {other:?}"),
    }
    socket.close(CloseCode(4000), "bye").await.unwrap();
    match socket.recv().await.unwrap() {
        Some(Incoming::Close(frame)) => assert_eq!(frame.code(), CloseCode(4000)),
        other => panic!("expected the close reply, got {other:?}"),
    }
    assert_eq!(socket.recv().await.unwrap(), None);
    assert!(matches!(
        socket.send(Outgoing::text("late")).await,
        Err(wsmachine::AdapterError::Closed)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn own_client_and_server() {
    bounded(60, async {
        let (addr, server) = echo_server(big_config(), 1).await;
        let mut socket = connect(addr, big_config()).await;
        exchange(&mut socket).await;
        assert_eq!(server.await.unwrap(), [Some(4000)]);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn split_halves_in_separate_tasks() {
    bounded(30, async {
        let (addr, server) = echo_server(Config::new(), 1).await;
        let (mut reader, mut writer) = connect(addr, Config::new()).await.split();
        let sender = tokio::spawn(async move {
            for i in 0..1000 {
                writer.send(Outgoing::Text(format!("message {i}"))).await.unwrap();
            }
            writer
        });
        for i in 0..1000 {
            assert_eq!(reader.recv().await.unwrap(), Some(Incoming::Text(format!("message {i}"))));
        }
        let mut writer = sender.await.unwrap();
        writer.close(CloseCode::NORMAL, "").await.unwrap();
        assert!(matches!(reader.recv().await.unwrap(), Some(Incoming::Close(_))));
        assert_eq!(reader.recv().await.unwrap(), None);
        assert_eq!(server.await.unwrap(), [Some(1000)]);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_and_sink() {
    bounded(30, async {
        let (addr, server) = echo_server(Config::new(), 1).await;
        let mut socket = connect(addr, Config::new()).await;
        socket
            .send_all(&mut futures_util::stream::iter(
                ["a", "b", "c"].map(|t| Ok(Outgoing::text(t))),
            ))
            .await
            .unwrap();
        let echoed: Vec<_> = (&mut socket).take(3).map(Result::unwrap).collect().await;
        let expected: Vec<_> = ["a", "b", "c"].map(|t| Incoming::Text(t.into())).into();
        assert_eq!(echoed, expected);
        SinkExt::close(&mut socket).await.unwrap();
        let rest: Vec<_> = socket.collect().await;
        assert!(matches!(&rest[..], [Ok(Incoming::Close(f))] if f.code() == CloseCode::NORMAL));
        assert_eq!(server.await.unwrap(), [Some(1000)]);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tungstenite_client_against_own_server() {
    use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode as TCode;
    use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
    use tokio_tungstenite::tungstenite::Message;
    bounded(60, async {
        let (addr, server) = echo_server(big_config(), 1).await;
        let tcp = TcpStream::connect(addr).await.unwrap();
        let config = WebSocketConfig::default().max_message_size(Some(32 << 20));
        let url = format!("ws://{addr}/");
        let (mut peer, response) =
            tokio_tungstenite::client_async_with_config(url, tcp, Some(config)).await.unwrap();
        assert_eq!(response.status(), 101);
        peer.send(Message::text("hello")).await.unwrap();
        assert_eq!(peer.next().await.unwrap().unwrap(), Message::text("hello"));
        peer.send(Message::binary(vec![7u8; 70_000])).await.unwrap();
        assert_eq!(peer.next().await.unwrap().unwrap(), Message::binary(vec![7u8; 70_000]));
        let big = big_payload();
        peer.send(Message::binary(big.clone())).await.unwrap();
        assert!(peer.next().await.unwrap().unwrap().into_data() == big, "16 MiB echo differs");
        peer.send(Message::Ping(b"p".to_vec().into())).await.unwrap();
        assert_eq!(peer.next().await.unwrap().unwrap(), Message::Pong(b"p".to_vec().into()));
        peer.close(Some(CloseFrame { code: TCode::from(4001), reason: "done".into() }))
            .await
            .unwrap();
        while let Some(message) = peer.next().await {
            match message {
                Ok(Message::Close(Some(frame))) => assert_eq!(u16::from(frame.code), 4001),
                Ok(other) => panic!("unexpected {other:?}"),
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(server.await.unwrap(), [Some(4001)]);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn own_client_against_tungstenite_server() {
    use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
    bounded(60, async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let tcp = listener.accept().await.unwrap().0;
            let config = WebSocketConfig::default().max_message_size(Some(32 << 20));
            let mut peer =
                tokio_tungstenite::accept_async_with_config(tcp, Some(config)).await.unwrap();
            while let Some(message) = peer.next().await {
                let message = message.unwrap();
                if message.is_text() || message.is_binary() {
                    peer.send(message).await.unwrap();
                }
            }
        });
        let mut socket = connect(addr, big_config()).await;
        exchange(&mut socket).await;
        server.await.unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_closes_first_with_its_code() {
    bounded(20, async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let mut socket = ws::accept(listener.accept().await.unwrap().0).await.unwrap();
            assert_eq!(socket.recv().await.unwrap(), Some(Incoming::Text("bye?".into())));
            socket.close(CloseCode::GOING_AWAY, "restart").await.unwrap();
            let mut seen = Vec::new();
            while let Some(incoming) = socket.recv().await.unwrap() {
                seen.push(incoming);
            }
            seen
        });
        let mut socket = connect(addr, Config::new()).await;
        socket.send(Outgoing::text("bye?")).await.unwrap();
        match socket.recv().await.unwrap() {
            Some(Incoming::Close(frame)) => {
                assert_eq!((frame.code(), frame.reason()), (CloseCode::GOING_AWAY, "restart"));
            }
            other => panic!("expected the server's close, got {other:?}"),
        }
        assert_eq!(socket.recv().await.unwrap(), None);
        let seen = server.await.unwrap();
        assert!(matches!(&seen[..], [Incoming::Close(f)] if f.code() == CloseCode::GOING_AWAY));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_rejects_with_403_and_client_sees_it() {
    bounded(20, async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let tcp = listener.accept().await.unwrap().0;
            let result = ws::accept_with(tcp, Config::new(), |request| {
                if request.path() == "/admin" {
                    Decision::reject(403).body("forbidden")
                } else {
                    Decision::accept()
                }
            })
            .await;
            match result {
                Err(wsmachine::AdapterError::Rejected { status }) => status,
                other => panic!("expected a rejection, got {:?}", other.map(|_| ())),
            }
        });
        let tcp = TcpStream::connect(addr).await.unwrap();
        match ws::connect(tcp, &ClientRequest::new("localhost", "/admin"), Config::new()).await {
            Err(wsmachine::AdapterError::Refused(response)) => {
                assert_eq!(response.status(), 403);
                assert_eq!(response.body(), b"forbidden");
            }
            other => panic!("expected a refusal, got {:?}", other.map(|(_, r)| r)),
        }
        assert_eq!(server.await.unwrap(), 403);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keepalive_detects_a_silent_peer() {
    bounded(20, async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut silent = TcpStream::connect(addr).await.unwrap();
        silent.write_all(REQUEST).await.unwrap();
        let config = Config::new()
            .keepalive_interval(Some(wsmachine::Duration::from_millis(100)))
            .pong_timeout(wsmachine::Duration::from_millis(200));
        let tcp = listener.accept().await.unwrap().0;
        let mut socket = ws::accept_with(tcp, config, |_| Decision::accept()).await.unwrap();
        let started = std::time::Instant::now();
        match socket.recv().await {
            Err(wsmachine::AdapterError::Protocol(e)) => {
                assert_eq!(e.kind(), ErrorKind::PongTimeout)
            }
            other => panic!("expected a pong timeout, got {other:?}"),
        }
        assert!(started.elapsed() < Duration::from_secs(5));
        assert_eq!(socket.recv().await.unwrap(), None);
        let mut seen = Vec::new();
        silent.read_to_end(&mut seen).await.unwrap();
        let head_end = seen.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        assert_eq!(seen[head_end], 0x89, "a ping follows the handshake");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshake_deadline_closes_a_client_that_never_finishes() {
    bounded(20, async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut slow = TcpStream::connect(addr).await.unwrap();
        slow.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n").await.unwrap();
        let config = Config::new().handshake_timeout(Some(wsmachine::Duration::from_millis(200)));
        let tcp = listener.accept().await.unwrap().0;
        let started = std::time::Instant::now();
        match ws::accept_with(tcp, config, |_| Decision::accept()).await {
            Err(wsmachine::AdapterError::Protocol(e)) => {
                assert_eq!(e.kind(), ErrorKind::HandshakeTimeout)
            }
            other => panic!("expected a handshake timeout, got {:?}", other.map(|_| ())),
        }
        assert!(started.elapsed() < Duration::from_secs(5));
        let mut rest = Vec::new();
        assert_eq!(slow.read_to_end(&mut rest).await.unwrap(), 0, "closed without a response");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frames_sent_with_the_request_are_not_lost() {
    bounded(20, async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut raw = TcpStream::connect(addr).await.unwrap();
        let mut bytes = REQUEST.to_vec();
        bytes.extend(client_frame(Opcode::Text, b"early"));
        bytes.extend(client_frame(Opcode::Binary, b"bird"));
        raw.write_all(&bytes).await.unwrap();
        let mut socket = ws::accept(listener.accept().await.unwrap().0).await.unwrap();
        assert_eq!(socket.recv().await.unwrap(), Some(Incoming::Text("early".into())));
        assert_eq!(socket.recv().await.unwrap(), Some(Incoming::Binary(b"bird".to_vec())));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sending_to_a_peer_that_never_reads_applies_backpressure() {
    bounded(60, async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        // A peer that completes the handshake and then never reads.
        let mut stalled = TcpStream::connect(addr).await.unwrap();
        stalled.write_all(REQUEST).await.unwrap();
        let mut socket = ws::accept(listener.accept().await.unwrap().0).await.unwrap();
        let message = vec![0u8; 1 << 20];
        let mut sent = 0;
        let blocked = loop {
            let send = socket.send(Outgoing::Binary(message.clone()));
            match tokio::time::timeout(Duration::from_millis(500), send).await {
                Ok(result) => {
                    result.unwrap();
                    sent += 1;
                    assert!(sent < 256, "256 MiB queued for a peer that never reads");
                }
                Err(_) => break true,
            }
        };
        // Bounded: the socket buffers plus the queue, not everything that was offered.
        assert!(blocked && sent <= ws::SEND_QUEUE + 64, "{sent} messages were accepted");
        drop(stalled);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_concurrent_connections() {
    bounded(60, async {
        const N: usize = 100;
        let (addr, server) = echo_server(Config::new(), N).await;
        let clients: Vec<_> = (0..N)
            .map(|i| {
                tokio::spawn(async move {
                    let mut socket = connect(addr, Config::new()).await;
                    for round in 0..5 {
                        let text = format!("client {i} round {round}");
                        socket.send(Outgoing::Text(text.clone())).await.unwrap();
                        assert_eq!(socket.recv().await.unwrap(), Some(Incoming::Text(text)));
                    }
                    socket.close(CloseCode::NORMAL, "").await.unwrap();
                    while socket.recv().await.unwrap().is_some() {}
                })
            })
            .collect();
        for client in clients {
            client.await.unwrap();
        }
        let closes = server.await.unwrap();
        assert_eq!(closes.len(), N);
        assert!(closes.iter().all(|c| *c == Some(1000)));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_socket_closes_normally() {
    bounded(20, async {
        let (addr, server) = echo_server(Config::new(), 1).await;
        let (socket, _) = ws::connect_url(&format!("ws://{addr}/"), Config::new()).await.unwrap();
        drop(socket);
        assert_eq!(server.await.unwrap(), [Some(1000)]);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wss_with_the_example_server() {
    bounded(30, async {
        let (acceptor, cert, _pem) = wss_echo_server::self_signed_acceptor().unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            wss_echo_server::serve(tcp, acceptor).await.unwrap();
        });
        let tls_config = wss_echo_server::tls::client_trusting(cert).unwrap();
        let connector = tokio_rustls::TlsConnector::from(tls_config);
        let tcp = TcpStream::connect(addr).await.unwrap();
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let tls = connector.connect(name, tcp).await.unwrap();
        let host = format!("localhost:{}", addr.port());
        let (mut socket, response) =
            ws::connect(tls, &ClientRequest::new(&host, "/"), Config::new()).await.unwrap();
        assert_eq!(response.status(), 101);
        socket.send(Outgoing::text("over TLS")).await.unwrap();
        assert_eq!(socket.recv().await.unwrap(), Some(Incoming::Text("over TLS".into())));
        socket.send(Outgoing::binary(vec![1u8; 100_000])).await.unwrap();
        assert_eq!(socket.recv().await.unwrap(), Some(Incoming::Binary(vec![1u8; 100_000])));
        socket.close(CloseCode::NORMAL, "").await.unwrap();
        assert!(matches!(socket.recv().await.unwrap(), Some(Incoming::Close(_))));
        assert_eq!(socket.recv().await.unwrap(), None);
        server.await.unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_sends_are_refused_before_queueing() {
    bounded(20, async {
        let (addr, server) = echo_server(Config::new(), 1).await;
        let mut socket = connect(addr, Config::new()).await;
        let refused = [
            Outgoing::close(CloseCode(1005)),
            Outgoing::Close(CloseCode::NORMAL, "x".repeat(124)),
            Outgoing::Ping(vec![0; 126]),
        ];
        for message in refused {
            assert!(matches!(socket.send(message).await, Err(wsmachine::AdapterError::Usage(_))));
        }
        assert!(matches!(
            socket.close(CloseCode(999), "").await,
            Err(wsmachine::AdapterError::Usage(_))
        ));
        socket.send(Outgoing::text("still open")).await.unwrap();
        assert_eq!(socket.recv().await.unwrap(), Some(Incoming::Text("still open".into())));
        socket.close(CloseCode::NORMAL, "").await.unwrap();
        while socket.recv().await.unwrap().is_some() {}
        assert_eq!(server.await.unwrap(), [Some(1000)]);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fed_messages_wait_for_a_flush_and_a_drop_finishes_them() {
    bounded(20, async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let mut socket = ws::accept(listener.accept().await.unwrap().0).await.unwrap();
            for text in ["one", "two", "three"] {
                socket.feed(Outgoing::text(text)).await.unwrap();
            }
            // Fed, not flushed: nothing is written until the socket is flushed or dropped.
            tokio::time::sleep(Duration::from_millis(200)).await;
            drop(socket);
        });
        let mut client = connect(addr, Config::new()).await;
        let early = tokio::time::timeout(Duration::from_millis(100), client.recv()).await;
        assert!(early.is_err(), "a fed message went out before a flush: {early:?}");
        for text in ["one", "two", "three"] {
            assert_eq!(client.recv().await.unwrap(), Some(Incoming::Text(text.into())));
        }
        match client.recv().await.unwrap() {
            Some(Incoming::Close(frame)) => assert_eq!(frame.code(), CloseCode::NORMAL),
            other => panic!("expected the dropped server's close, got {other:?}"),
        }
        assert_eq!(client.recv().await.unwrap(), None);
        server.await.unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_protocol_violation_is_returned_once_and_answered_with_1002() {
    bounded(20, async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut raw = TcpStream::connect(addr).await.unwrap();
        let mut bytes = REQUEST.to_vec();
        bytes.extend(client_frame(Opcode::Text, b"fine"));
        // Reserved opcode 3.
        bytes.extend([0x83, 0x80, 0, 0, 0, 0]);
        raw.write_all(&bytes).await.unwrap();
        let mut socket = ws::accept(listener.accept().await.unwrap().0).await.unwrap();
        assert_eq!(socket.recv().await.unwrap(), Some(Incoming::Text("fine".into())));
        match socket.recv().await {
            Err(wsmachine::AdapterError::Protocol(e)) => {
                assert_eq!(e.close_code(), Some(CloseCode::PROTOCOL_ERROR));
            }
            other => panic!("expected a protocol error, got {other:?}"),
        }
        // The server closes the transport after its close frame, without waiting.
        assert_eq!(socket.recv().await.unwrap(), None);
        let mut seen = Vec::new();
        raw.read_to_end(&mut seen).await.unwrap();
        let head_end = seen.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        assert_eq!(&seen[head_end..], [0x88, 0x02, 0x03, 0xEA], "one close frame with 1002");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_frames_read_straight_into_the_message_arrive_intact() {
    bounded(30, async {
        // A 4 KiB read buffer: every frame below is larger, so its payload after the first
        // read goes straight into the message being reassembled.
        let config = Config::new().receive_buffer_size(4096).max_message_size(8 << 20);
        let (addr, server) = echo_server(config.clone(), 1).await;
        let mut socket = connect(addr, config).await;
        let text: String = "é ascii ∑ 😀 ".repeat(20_000);
        socket.send(Outgoing::Text(text.clone())).await.unwrap();
        assert_eq!(socket.recv().await.unwrap(), Some(Incoming::Text(text)));
        // A fragmented binary message: three large frames with a ping between two of them.
        let data: Vec<u8> = (0..300_000u32).map(|i| (i % 253) as u8).collect();
        let fragment = |range: std::ops::Range<usize>, is_last| Outgoing::Fragment {
            kind: MessageKind::Binary,
            payload: data[range].to_vec(),
            is_last,
        };
        socket.send(fragment(0..100_000, false)).await.unwrap();
        socket.send(Outgoing::Ping(b"mid".to_vec())).await.unwrap();
        socket.send(fragment(100_000..200_001, false)).await.unwrap();
        socket.send(fragment(200_001..300_000, true)).await.unwrap();
        assert_eq!(socket.recv().await.unwrap(), Some(Incoming::Pong(b"mid".to_vec())));
        assert_eq!(socket.recv().await.unwrap(), Some(Incoming::Binary(data)));
        socket.close(CloseCode::NORMAL, "").await.unwrap();
        while socket.recv().await.unwrap().is_some() {}
        assert_eq!(server.await.unwrap(), [Some(1000)]);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_utf8_late_in_a_large_frame_fails_with_1007() {
    bounded(20, async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut raw = TcpStream::connect(addr).await.unwrap();
        let mut text = "valid text ".repeat(10_000).into_bytes();
        let at = text.len() - 10;
        text[at] = 0xFF;
        let mut bytes = REQUEST.to_vec();
        bytes.extend(client_frame(Opcode::Text, &text));
        let writer = tokio::spawn(async move {
            // The server may fail and close before the whole frame is written.
            let _ = raw.write_all(&bytes).await;
            let mut seen = Vec::new();
            let _ = raw.read_to_end(&mut seen).await;
            seen
        });
        let config = Config::new().receive_buffer_size(4096);
        let tcp = listener.accept().await.unwrap().0;
        let mut socket = ws::accept_with(tcp, config, |_| Decision::accept()).await.unwrap();
        match socket.recv().await {
            Err(wsmachine::AdapterError::Protocol(e)) => {
                assert_eq!(e.kind(), ErrorKind::InvalidUtf8)
            }
            other => panic!("expected invalid UTF-8, got {other:?}"),
        }
        assert_eq!(socket.recv().await.unwrap(), None);
        let seen = writer.await.unwrap();
        let head_end = seen.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        assert_eq!(&seen[head_end..], [0x88, 0x02, 0x03, 0xEF], "one close frame with 1007");
    })
    .await;
}
