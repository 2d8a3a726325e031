//! What only the tokio adapter has, over real loopback sockets: split halves, `Stream` and
//! `Sink`, backpressure, the close on drop, and wss with the wss_echo_server example's TLS
//! setup. What every adapter does is in the scenario table (tests/adapter_scenarios.rs).

mod adapter_support;

#[path = "../examples/wss_echo_server.rs"]
#[allow(unreachable_pub)]
mod wss_echo_server;

use std::net::SocketAddr;
use std::time::Duration;

use adapter_support::REQUEST;
use futures_util::{SinkExt, StreamExt};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use wsmachine::tokio as ws;
use wsmachine::{ClientRequest, CloseCode, Config, Decision, Incoming, Outgoing};

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
        assert!(blocked && sent <= 64, "{sent} messages were accepted");
        drop(stalled);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_surface_matches_the_blocking_adapter() {
    bounded(20, async {
        let (addr, server) = echo_server(Config::new(), 1).await;
        let tcp = TcpStream::connect(addr).await.unwrap();
        let host = addr.to_string();
        let (mut socket, _) =
            ws::connect(tcp, &ClientRequest::new(&host, "/"), Config::new()).await.unwrap();
        assert_eq!(socket.get_ref().peer_addr().unwrap(), addr);
        assert_eq!(socket.connection().state(), wsmachine::State::Open);
        socket.send_text("text").await.unwrap();
        assert_eq!(socket.recv().await.unwrap(), Some(Incoming::Text("text".into())));
        socket.send_binary(&[1, 2]).await.unwrap();
        assert_eq!(socket.recv().await.unwrap(), Some(Incoming::Binary(vec![1, 2])));
        socket.close(CloseCode::NORMAL, "").await.unwrap();
        assert_eq!(socket.connection().state(), wsmachine::State::Closing);
        while socket.recv().await.unwrap().is_some() {}
        assert!(socket.connection().is_close_handshake_complete());
        assert_eq!(server.await.unwrap(), [Some(1000)]);
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

/// A server that accepts `n` connections with `config` and returns their split halves.
async fn accept_split(
    listener: &TcpListener,
    config: &Config,
    n: usize,
) -> Vec<(ws::ReadHalf, ws::WriteHalf)> {
    let mut halves = Vec::new();
    for _ in 0..n {
        let (tcp, _) = listener.accept().await.unwrap();
        let socket = ws::accept_with(tcp, config.clone(), |_| Decision::accept()).await.unwrap();
        halves.push(socket.split());
    }
    halves
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broadcast_goes_to_every_connection_by_reference() {
    bounded(30, async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let clients = tokio::spawn(async move {
            let mut clients = Vec::new();
            for _ in 0..3 {
                clients.push(connect(addr, Config::new()).await);
            }
            clients
        });
        let server = accept_split(&listener, &Config::new(), 3).await;
        let mut clients = clients.await.unwrap();
        let messages: Vec<_> = (0..50)
            .map(|i| wsmachine::SharedMessage::text(&format!("{i} {}", "x".repeat(i * 100))))
            .collect();
        for message in &messages {
            for (_, writer) in &server {
                writer.try_send(Outgoing::Shared(message.clone())).unwrap();
            }
        }
        for client in &mut clients {
            for i in 0..50 {
                let expected = format!("{i} {}", "x".repeat(i * 100));
                assert_eq!(client.recv().await.unwrap(), Some(Incoming::Text(expected)));
            }
        }
        // Written, the connections let go of the shared frames (a moment after the client
        // has the bytes): one copy was ever held.
        for message in &messages {
            for _ in 0..100 {
                if message.handles() == 1 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            assert_eq!(message.handles(), 1);
            // The plain frame, and (with compression negotiated, the default with the
            // `deflate` feature, from 64 bytes) one compressed frame for all three.
            let compressed = cfg!(feature = "deflate") && message.payload().len() >= 64;
            assert_eq!(message.encodings(), 1 + usize::from(compressed));
        }
        drop(server);
    })
    .await;
}

/// A client that completes the handshake and never reads.
async fn stalled_client(addr: SocketAddr) -> TcpStream {
    let mut stalled = TcpStream::connect(addr).await.unwrap();
    stalled.write_all(REQUEST).await.unwrap();
    stalled
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_reader_is_closed_with_1008_and_the_others_do_not_wait() {
    bounded(60, async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let limit = 256 * 1024;
        let config = Config::new().send_queue(limit, wsmachine::SendQueueFull::Close);
        let stalled = tokio::spawn(stalled_client(addr));
        let mut halves = accept_split(&listener, &config, 1).await;
        let fast = tokio::spawn(async move { connect(addr, Config::new()).await });
        halves.extend(accept_split(&listener, &config, 1).await);
        let _stalled = stalled.await.unwrap();
        let mut fast = fast.await.unwrap();
        let payload = vec![7u8; 64 * 1024];
        let (mut slow_reader, slow_writer) = halves.remove(0);
        let (_fast_reader, fast_writer) = halves.remove(0);
        let mut overflowed_at = None;
        for i in 0..2_000 {
            let message = wsmachine::SharedMessage::binary(&payload);
            fast_writer.try_send(Outgoing::Shared(message.clone())).unwrap();
            // The fast client reads each message as it comes, whatever the slow one does.
            assert_eq!(fast.recv().await.unwrap(), Some(Incoming::Binary(payload.clone())));
            assert!(slow_writer.queued() <= limit + 64 * 1024 + 64, "{}", slow_writer.queued());
            match slow_writer.try_send(Outgoing::Shared(message)) {
                Ok(()) => {}
                Err(wsmachine::AdapterError::SendQueueFull) => {
                    overflowed_at = Some(i);
                    break;
                }
                Err(e) => panic!("{e}"),
            }
        }
        let at = overflowed_at.expect("the queue never filled for a peer that does not read");
        assert!(at > 3, "the kernel's buffers and the queue took some first ({at})");
        // Closing with 1008: nothing more can be sent; the fast client goes on.
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(matches!(
            slow_writer.try_send(Outgoing::text("late")),
            Err(wsmachine::AdapterError::Closed)
        ));
        fast_writer.try_send(Outgoing::text("still here")).unwrap();
        assert_eq!(fast.recv().await.unwrap(), Some(Incoming::Text("still here".into())));
        // The slow one's close is on its way behind what it was already owed; its reader
        // reports the end once the close deadline cuts it off (it never answers).
        drop(slow_writer);
        drop(_stalled);
        while let Ok(Some(_)) = slow_reader.recv().await {}
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_the_drop_policy_a_slow_reader_misses_messages_and_stays_open() {
    bounded(60, async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let limit = 128 * 1024;
        let config = Config::new().send_queue(limit, wsmachine::SendQueueFull::Drop);
        let client = tokio::spawn(async move {
            let tcp = TcpStream::connect(addr).await.unwrap();
            let host = addr.to_string();
            let request = ClientRequest::new(&host, "/");
            ws::connect(tcp, &request, Config::new()).await.unwrap().0
        });
        let (_reader, mut writer) = accept_split(&listener, &config, 1).await.remove(0);
        let mut client = client.await.unwrap();
        // Incompressible (compression is negotiated with the `deflate` feature).
        let mut seed = 1u32;
        let payload: Vec<u8> = (0..32 * 1024)
            .map(|_| {
                seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                (seed >> 24) as u8
            })
            .collect();
        let mut dropped = 0;
        // The client reads nothing while 4,000 messages (125 MiB) are offered: more than the
        // socket buffers take (the receiver's grows to 32 MiB here) and the queue's limit.
        for _ in 0..4_000 {
            match writer.try_send(Outgoing::Shared(wsmachine::SharedMessage::binary(&payload))) {
                Ok(()) => {}
                Err(wsmachine::AdapterError::SendQueueFull) => dropped += 1,
                Err(e) => panic!("{e}"),
            }
            assert!(writer.queued() <= limit + 32 * 1024 + 64);
        }
        assert!(dropped > 0, "the queue never filled");
        let expected = payload.clone();
        let reading = tokio::spawn(async move {
            let mut received = 0;
            loop {
                match client.recv().await.unwrap() {
                    Some(Incoming::Binary(data)) => {
                        assert_eq!(data, expected);
                        received += 1;
                    }
                    Some(Incoming::Text(text)) if text == "end" => break,
                    other => panic!("{other:?}"),
                }
            }
            (received, client)
        });
        // `send` waits for room (the client reads again now): it is not dropped.
        writer.send(Outgoing::text("end")).await.unwrap();
        let (received, mut client) = reading.await.unwrap();
        assert_eq!(received + dropped, 4_000, "every message either arrived or was dropped");
        writer.try_send(Outgoing::text("open")).unwrap();
        assert_eq!(client.recv().await.unwrap(), Some(Incoming::Text("open".into())));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_split_connection_sends_the_close_its_failure_queued() {
    // A message past the limit (compressed to a few kilobytes when deflate is negotiated, so
    // the whole frame is in hand when the limit is hit): the connection task must write the
    // 1009 it queued, though the failure asked for no read.
    bounded(20, async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (mut reader, _writer) = accept_split(&listener, &Config::new(), 1).await.remove(0);
            let failure = reader.recv().await;
            while let Ok(Some(_)) = reader.recv().await {}
            failure
        });
        let mut client = connect(addr, Config::new()).await;
        client.send(Outgoing::Text("x".repeat((1 << 20) + 1))).await.unwrap();
        match client.recv().await.unwrap() {
            Some(Incoming::Close(frame)) => assert_eq!(frame.code(), CloseCode::MESSAGE_TOO_BIG),
            other => panic!("expected the 1009, got {other:?}"),
        }
        assert!(matches!(
            server.await.unwrap(),
            Err(wsmachine::AdapterError::Protocol(e)) if e.close_code() == Some(CloseCode::MESSAGE_TOO_BIG)
        ));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_split_connection_runs_keepalive_and_the_pong_deadline() {
    // The ping deadline passes, then the pong deadline: the connection task must sleep
    // until the second after running the first.
    bounded(20, async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let config = Config::new()
            .keepalive_interval(Some(wsmachine::Duration::from_millis(200)))
            .pong_timeout(wsmachine::Duration::from_millis(200));
        let silent = tokio::spawn(stalled_client(addr));
        let (mut reader, _writer) = accept_split(&listener, &config, 1).await.remove(0);
        let _silent = silent.await.unwrap();
        let started = std::time::Instant::now();
        let mut failure = None;
        loop {
            match reader.recv().await {
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(e) => failure = Some(e),
            }
        }
        assert!(
            matches!(&failure, Some(wsmachine::AdapterError::Protocol(e)) if e.kind() == wsmachine::ErrorKind::PongTimeout),
            "{failure:?}"
        );
        assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broadcast_from_a_thread_outside_the_runtime() {
    bounded(20, async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let client = tokio::spawn(async move { connect(addr, Config::new()).await });
        let (_reader, writer) = accept_split(&listener, &Config::new(), 1).await.remove(0);
        let mut client = client.await.unwrap();
        // try_send needs no runtime: a plain thread broadcasts (written at once when the
        // connection is idle, queued for its task otherwise).
        let sender = std::thread::spawn(move || {
            for i in 0..200 {
                let message = wsmachine::SharedMessage::text(&format!("from a thread {i}"));
                writer.try_send(Outgoing::Shared(message)).unwrap();
            }
            writer
        });
        for i in 0..200 {
            let expected = format!("from a thread {i}");
            assert_eq!(client.recv().await.unwrap(), Some(Incoming::Text(expected)));
        }
        drop(sender.join().unwrap());
    })
    .await;
}
