//! The embedded adapter (`wsmachine::embedded`) on its own: over an in-memory
//! `embedded-io-async` pipe (small, so writes wait for the reader), client and server of this
//! adapter together through a whole lifecycle, the limits of its buffers, deadlines, and
//! failures; then over loopback TCP (through `embedded-io-adapters`) against this crate's
//! tokio adapter in both roles. The scenario table (tests/adapter_scenarios.rs) runs it
//! against tungstenite and the rest.

#![cfg(all(feature = "embedded-io", feature = "tokio"))]

mod adapter_support;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::task::{Poll, Waker};
use std::time::Duration;

use adapter_support::TokioClock;
use embedded_io_adapters::tokio_1::FromTokio;
use wsmachine::embedded::{self, Buffers, Error};
use wsmachine::{
    Accept, ClientRequest, CloseCode, Config, ErrorKind, Event, Incoming, Message, MessageKind,
    Outgoing, Reject, State,
};

// ---- An in-memory pipe ----

/// One direction of a pipe: at most `capacity` bytes in flight.
#[derive(Debug, Default)]
struct Half {
    bytes: VecDeque<u8>,
    capacity: usize,
    closed: bool,
    reader: Option<Waker>,
    writer: Option<Waker>,
}

/// One end of a duplex in-memory pipe.
#[derive(Debug)]
struct End {
    incoming: Arc<Mutex<Half>>,
    outgoing: Arc<Mutex<Half>>,
}

impl Drop for End {
    fn drop(&mut self) {
        for half in [&self.incoming, &self.outgoing] {
            let mut half = half.lock().unwrap();
            half.closed = true;
            if let Some(waker) = half.reader.take() {
                waker.wake();
            }
            if let Some(waker) = half.writer.take() {
                waker.wake();
            }
        }
    }
}

/// Two connected ends, `capacity` bytes each way.
fn pipe(capacity: usize) -> (End, End) {
    let a = Arc::new(Mutex::new(Half { capacity, ..Half::default() }));
    let b = Arc::new(Mutex::new(Half { capacity, ..Half::default() }));
    (End { incoming: a.clone(), outgoing: b.clone() }, End { incoming: b, outgoing: a })
}

#[derive(Debug)]
struct PipeError;

impl std::fmt::Display for PipeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the other end of the pipe is gone")
    }
}

impl std::error::Error for PipeError {}

impl embedded_io_async::Error for PipeError {
    fn kind(&self) -> embedded_io_async::ErrorKind {
        embedded_io_async::ErrorKind::BrokenPipe
    }
}

impl embedded_io_async::ErrorType for End {
    type Error = PipeError;
}

impl embedded_io_async::Read for End {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, PipeError> {
        std::future::poll_fn(|cx| {
            let mut half = self.incoming.lock().unwrap();
            if half.bytes.is_empty() {
                if half.closed {
                    return Poll::Ready(Ok(0));
                }
                half.reader = Some(cx.waker().clone());
                return Poll::Pending;
            }
            let n = buf.len().min(half.bytes.len());
            for (slot, byte) in buf.iter_mut().zip(half.bytes.drain(..n)) {
                *slot = byte;
            }
            if let Some(waker) = half.writer.take() {
                waker.wake();
            }
            Poll::Ready(Ok(n))
        })
        .await
    }
}

impl embedded_io_async::Write for End {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, PipeError> {
        std::future::poll_fn(|cx| {
            let mut half = self.outgoing.lock().unwrap();
            if half.closed {
                return Poll::Ready(Err(PipeError));
            }
            let room = half.capacity - half.bytes.len();
            if room == 0 {
                half.writer = Some(cx.waker().clone());
                return Poll::Pending;
            }
            let n = room.min(buf.len());
            half.bytes.extend(&buf[..n]);
            if let Some(waker) = half.reader.take() {
                waker.wake();
            }
            Poll::Ready(Ok(n))
        })
        .await
    }

    async fn flush(&mut self) -> Result<(), PipeError> {
        Ok(())
    }
}

// ---- Helpers ----

fn clock() -> TokioClock {
    TokioClock(tokio::time::Instant::now())
}

/// Receives the next whole message or control frame, reassembling pieces.
async fn next<T, C>(
    ws: &mut embedded::WebSocket<'_, T, C>,
) -> Result<Option<Incoming>, Error<T::Error>>
where
    T: embedded_io_async::Read + embedded_io_async::Write,
    C: embedded::Clock,
{
    let mut partial: Option<(MessageKind, Vec<u8>)> = None;
    loop {
        let got = ws
            .recv_event(|event| match event {
                Event::Message(Message::Text(text)) => Some(Incoming::Text(text.to_owned())),
                Event::Message(Message::Binary(data)) => Some(Incoming::Binary(data.to_vec())),
                Event::Fragment(piece) => {
                    let (_, bytes) = partial.get_or_insert_with(|| (piece.kind, Vec::new()));
                    bytes.extend_from_slice(piece.payload);
                    if !piece.is_last {
                        return None;
                    }
                    let (kind, bytes) = partial.take().unwrap();
                    Some(match kind {
                        MessageKind::Text => Incoming::Text(String::from_utf8(bytes).unwrap()),
                        MessageKind::Binary => Incoming::Binary(bytes),
                    })
                }
                Event::Ping(p) => Some(Incoming::Ping(p.to_vec())),
                Event::Pong(p) => Some(Incoming::Pong(p.to_vec())),
                Event::Close(frame) => Some(Incoming::Close(Box::new(frame))),
                other => panic!("unexpected {other:?}"),
            })
            .await?;
        match got {
            Some(Some(incoming)) => return Ok(Some(incoming)),
            Some(None) => {}
            None => return Ok(None),
        }
    }
}

/// Runs `test` on a current-thread runtime, failing after `secs` seconds.
fn run<F: std::future::Future<Output = ()>>(secs: u64, test: F) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        tokio::time::timeout(Duration::from_secs(secs), test)
            .await
            .expect("the test did not finish in time");
    });
}

// ---- In memory ----

#[test]
fn client_and_server_through_a_whole_lifecycle_in_memory() {
    run(20, async {
        // 512 bytes in flight each way: a write of the 4 KiB buffer waits for the reader.
        let (client_end, server_end) = pipe(512);
        let server = async {
            let (mut read, mut write) = ([0u8; 4096], [0u8; 4096]);
            let config =
                Config::new().keepalive_interval(Some(wsmachine::Duration::from_millis(200)));
            let mut ws = embedded::accept_with(
                server_end,
                clock(),
                config,
                Buffers::new(&mut read, &mut write),
                |request, responder| {
                    assert_eq!(request.path(), "/lifecycle");
                    let offered: Vec<&str> = request.subprotocols().collect();
                    assert_eq!(offered, ["v1", "v2"]);
                    responder.accept(&Accept::new().subprotocol("v2"))
                },
            )
            .await
            .unwrap();
            // Echo everything until the client closes.
            let mut seen = Vec::new();
            while let Some(incoming) = next(&mut ws).await.unwrap() {
                match &incoming {
                    Incoming::Text(text) => ws.send_text(text).await.unwrap(),
                    Incoming::Binary(data) => ws.send_binary(data).await.unwrap(),
                    _ => {}
                }
                seen.push(incoming);
            }
            assert_eq!(ws.connection().state(), State::Closed);
            seen
        };
        let client = async {
            let (mut read, mut write) = ([0u8; 4096], [0u8; 4096]);
            let mut protocol = None;
            let request =
                ClientRequest::new("device.local", "/lifecycle").subprotocols(&["v1", "v2"]);
            let mut ws = embedded::connect_with(
                client_end,
                clock(),
                Config::new(),
                &request,
                [3; 32],
                Buffers::new(&mut read, &mut write),
                |response| protocol = response.subprotocol().map(str::to_owned),
            )
            .await
            .unwrap();
            assert_eq!(protocol.as_deref(), Some("v2"));
            ws.send_text("hello").await.unwrap();
            assert_eq!(next(&mut ws).await.unwrap(), Some(Incoming::Text("hello".into())));
            // 100 KB: 25 times the buffers, one frame each way, streamed through them.
            let big: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect();
            ws.send_binary(&big).await.unwrap();
            assert_eq!(next(&mut ws).await.unwrap(), Some(Incoming::Binary(big.clone())));
            // A fragmented text whose pieces split a character.
            let text = "ünïcödé ".repeat(1000);
            let (a, b) = text.as_bytes().split_at(4001);
            ws.send_fragment(MessageKind::Text, a, false).await.unwrap();
            ws.send_fragment(MessageKind::Text, b, true).await.unwrap();
            assert_eq!(next(&mut ws).await.unwrap(), Some(Incoming::Text(text.clone())));
            // The server's keepalive ping (200 ms) is answered while the client waits.
            ws.send_ping(b"are you there").await.unwrap();
            assert_eq!(
                next(&mut ws).await.unwrap(),
                Some(Incoming::Pong(b"are you there".to_vec()))
            );
            let ping = tokio::time::timeout(Duration::from_secs(2), next(&mut ws)).await;
            assert!(matches!(ping, Ok(Ok(Some(Incoming::Ping(_))))), "{ping:?}");
            ws.close(CloseCode::NORMAL, "bye").await.unwrap();
            let reply = next(&mut ws).await.unwrap();
            assert!(
                matches!(&reply, Some(Incoming::Close(frame)) if frame.code() == CloseCode::NORMAL),
                "{reply:?}"
            );
            assert_eq!(next(&mut ws).await.unwrap(), None);
            assert!(ws.connection().is_close_handshake_complete());
            (big, text)
        };
        let (seen, (big, text)) = tokio::join!(server, client);
        assert_eq!(seen[0], Incoming::Text("hello".into()));
        assert_eq!(seen[1], Incoming::Binary(big));
        assert_eq!(seen[2], Incoming::Text(text));
        assert!(matches!(seen.last(), Some(Incoming::Close(frame)) if frame.reason() == "bye"));
    });
}

#[test]
fn buffers_too_small_are_refused_before_anything_is_sent() {
    run(5, async {
        let (client_end, _server_end) = pipe(512);
        let (mut read, mut write) = ([0u8; 100], [0u8; 4096]);
        let request = ClientRequest::new("h", "/");
        let e = embedded::connect(
            client_end,
            clock(),
            Config::new(),
            &request,
            [0; 32],
            Buffers::new(&mut read, &mut write),
        )
        .await
        .unwrap_err();
        assert!(matches!(e, Error::Usage(wsmachine::UsageError::BufferTooSmall { required: 256 })));
        // A write buffer that cannot hold the upgrade request.
        let (client_end, server_end) = pipe(512);
        let (mut read, mut write) = ([0u8; 1024], [0u8; 64]);
        let e = embedded::connect(
            client_end,
            clock(),
            Config::new(),
            &request,
            [0; 32],
            Buffers::new(&mut read, &mut write),
        )
        .await
        .unwrap_err();
        assert!(matches!(e, Error::Usage(wsmachine::UsageError::BufferTooSmall { .. })), "{e:?}");
        drop(server_end);
    });
}

#[test]
fn a_refusal_shows_its_status_and_body() {
    run(10, async {
        let (client_end, server_end) = pipe(4096);
        let server = async {
            let (mut read, mut write) = ([0u8; 1024], [0u8; 1024]);
            let e = embedded::accept_with(
                server_end,
                clock(),
                Config::new(),
                Buffers::new(&mut read, &mut write),
                |_, responder| responder.reject(&Reject::new(403).body(b"not you")),
            )
            .await
            .unwrap_err();
            assert!(matches!(e, Error::Rejected { status: 403 }), "{e:?}");
        };
        let client = async {
            let (mut read, mut write) = ([0u8; 1024], [0u8; 1024]);
            let mut body = Vec::new();
            let e = embedded::connect_with(
                client_end,
                clock(),
                Config::new(),
                &ClientRequest::new("h", "/"),
                [1; 32],
                Buffers::new(&mut read, &mut write),
                |response| body = response.body().to_vec(),
            )
            .await
            .unwrap_err();
            assert!(matches!(e, Error::Refused { status: 403 }), "{e:?}");
            assert_eq!(body, b"not you");
        };
        tokio::join!(server, client);
    });
}

#[test]
fn the_handshake_deadline_ends_a_silent_client() {
    run(10, async {
        let (_client_end, server_end) = pipe(512);
        let (mut read, mut write) = ([0u8; 1024], [0u8; 1024]);
        let config = Config::new().handshake_timeout(Some(wsmachine::Duration::from_millis(200)));
        let started = std::time::Instant::now();
        let e = embedded::accept(server_end, clock(), config, Buffers::new(&mut read, &mut write))
            .await
            .unwrap_err();
        assert!(
            matches!(&e, Error::Protocol(p) if p.kind() == ErrorKind::HandshakeTimeout),
            "{e:?}"
        );
        assert!(started.elapsed() < Duration::from_secs(3));
    });
}

#[test]
fn a_violation_is_answered_with_1002_and_reported_once() {
    run(10, async {
        let (mut raw, server_end) = pipe(4096);
        let server = async {
            let (mut read, mut write) = ([0u8; 1024], [0u8; 1024]);
            let mut ws = embedded::accept(
                server_end,
                clock(),
                Config::new(),
                Buffers::new(&mut read, &mut write),
            )
            .await
            .unwrap();
            let e = next(&mut ws).await.unwrap_err();
            assert!(
                matches!(&e, Error::Protocol(p) if p.kind() == ErrorKind::ReservedOpcode(3)),
                "{e:?}"
            );
            // Once: then the end.
            assert!(matches!(next(&mut ws).await, Ok(None)));
        };
        let peer = async {
            use embedded_io_async::{Read, Write};
            raw.write_all(adapter_support::REQUEST).await.unwrap();
            // Reserved opcode 3.
            raw.write_all(&[0x83, 0x80, 0, 0, 0, 0]).await.unwrap();
            let mut got = Vec::new();
            let mut buf = [0u8; 512];
            loop {
                let n = raw.read(&mut buf).await.unwrap();
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&buf[..n]);
                if got.ends_with(&[0x88, 0x02, 0x03, 0xea]) {
                    break;
                }
            }
            let head_end = got.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
            assert!(got.starts_with(b"HTTP/1.1 101"));
            // The close frame with 1002 follows the 101.
            assert_eq!(&got[head_end..], [0x88, 0x02, 0x03, 0xea]);
        };
        tokio::join!(server, peer);
    });
}

#[test]
fn a_transport_that_ends_without_a_close_is_an_abnormal_closure() {
    run(10, async {
        let (client_end, server_end) = pipe(4096);
        let server = async {
            let (mut read, mut write) = ([0u8; 1024], [0u8; 1024]);
            let ws = embedded::accept(
                server_end,
                clock(),
                Config::new(),
                Buffers::new(&mut read, &mut write),
            )
            .await
            .unwrap();
            // Gone without a close frame.
            drop(ws);
        };
        let client = async {
            let (mut read, mut write) = ([0u8; 1024], [0u8; 1024]);
            let mut ws = embedded::connect(
                client_end,
                clock(),
                Config::new(),
                &ClientRequest::new("h", "/"),
                [2; 32],
                Buffers::new(&mut read, &mut write),
            )
            .await
            .unwrap();
            let e = next(&mut ws).await.unwrap_err();
            assert!(
                matches!(&e, Error::Protocol(p) if p.kind() == ErrorKind::AbnormalClosure),
                "{e:?}"
            );
            assert!(matches!(ws.send_text("late").await, Err(Error::Closed)));
        };
        tokio::join!(server, client);
    });
}

// ---- Over loopback TCP, against the tokio adapter ----

#[test]
fn embedded_client_against_the_tokio_server() {
    run(30, async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            let mut ws = wsmachine::tokio::accept(tcp).await.unwrap();
            let mut close = None;
            while let Some(incoming) = ws.recv().await.unwrap() {
                match incoming {
                    Incoming::Close(frame) => close = Some(frame.code().0),
                    incoming => {
                        if let Some(message) = incoming.into_message() {
                            ws.send(Outgoing::from(message)).await.unwrap();
                        }
                    }
                }
            }
            close
        });
        let tcp = FromTokio::new(tokio::net::TcpStream::connect(addr).await.unwrap());
        let (mut read, mut write) = ([0u8; 4096], [0u8; 4096]);
        let mut ws = embedded::connect(
            tcp,
            clock(),
            Config::new(),
            &ClientRequest::new("127.0.0.1", "/"),
            [9; 32],
            Buffers::new(&mut read, &mut write),
        )
        .await
        .unwrap();
        let big = "x".repeat(1_000_000);
        for message in ["small", big.as_str()] {
            ws.send_text(message).await.unwrap();
            assert_eq!(next(&mut ws).await.unwrap(), Some(Incoming::Text(message.into())));
        }
        ws.close(CloseCode::NORMAL, "").await.unwrap();
        while next(&mut ws).await.unwrap().is_some() {}
        assert_eq!(server.await.unwrap(), Some(1000));
    });
}

#[test]
fn tokio_client_against_the_embedded_server() {
    run(30, async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            let (mut read, mut write) = (vec![0u8; 4096], vec![0u8; 4096]);
            let mut ws = embedded::accept(
                FromTokio::new(tcp),
                clock(),
                Config::new(),
                Buffers::new(&mut read, &mut write),
            )
            .await
            .unwrap();
            let mut count = 0;
            while let Some(incoming) = next(&mut ws).await.unwrap() {
                match incoming {
                    Incoming::Text(text) => ws.send_text(&text).await.unwrap(),
                    Incoming::Binary(data) => ws.send_binary(&data).await.unwrap(),
                    _ => continue,
                }
                count += 1;
            }
            count
        });
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let request = ClientRequest::new("127.0.0.1", "/");
        let (mut ws, _) = wsmachine::tokio::connect(tcp, &request, Config::new()).await.unwrap();
        // Within the default 1 MiB limits, 220 times the embedded server's buffers.
        let big: Vec<u8> = (0..900_000).map(|i: u32| (i % 249) as u8).collect();
        ws.send(Outgoing::Binary(big.clone())).await.unwrap();
        let echoed = ws.recv().await.unwrap();
        assert!(echoed == Some(Incoming::Binary(big)), "the echo differs");
        ws.send(Outgoing::Text("done".into())).await.unwrap();
        assert_eq!(ws.recv().await.unwrap(), Some(Incoming::Text("done".into())));
        ws.close(CloseCode::NORMAL, "").await.unwrap();
        while ws.recv().await.unwrap().is_some() {}
        assert_eq!(server.await.unwrap(), 2);
    });
}
