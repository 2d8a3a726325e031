//! The listeners a public server accepts through (`tokio::Listener`, `blocking::Listener`):
//! the connection limit answers 503 with `Retry-After` and frees its place when a connection
//! ends; the handshake limit makes `accept` wait while that many handshakes are in progress.
//! (Running out of file descriptors is tested from outside, by `scripts/siege.py`'s
//! fd-exhaustion attack against the echo servers under a low `ulimit -n`.)

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use wsmachine::{blocking, tokio as ws, ClientRequest, Config, Decision, Incoming, Outgoing};

const REQUEST: &[u8] =
    b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";

async fn bounded<T>(secs: u64, future: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(secs), future)
        .await
        .unwrap_or_else(|_| panic!("test did not finish within {secs} s"))
}

/// Sends an upgrade request and returns the response head.
async fn upgrade(addr: SocketAddr) -> (TcpStream, String) {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(REQUEST).await.unwrap();
    let mut head = Vec::new();
    let mut byte = [0; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(tcp.read(&mut byte).await.unwrap(), 1, "the server closed before answering");
        head.push(byte[0]);
    }
    (tcp, String::from_utf8(head).unwrap())
}

/// An echo server on a tokio `Listener` with these limits.
async fn tokio_server(max_connections: usize, max_handshakes: usize) -> SocketAddr {
    let listener = ws::Listener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .max_connections(max_connections)
        .max_handshakes(max_handshakes);
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let pending = listener.accept().await;
            tokio::spawn(async move {
                let Ok(mut socket) =
                    pending.accept_with(Config::new(), |_| Decision::accept()).await
                else {
                    return;
                };
                while let Ok(Some(incoming)) = socket.recv().await {
                    if let Incoming::Text(text) = incoming {
                        let _ = socket.send(Outgoing::Text(text)).await;
                    }
                }
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_max_connections_a_request_gets_503_and_a_place_frees_when_a_connection_ends() {
    bounded(20, async {
        let addr = tokio_server(2, 16).await;
        let (a, head) = upgrade(addr).await;
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        let (_b, head) = upgrade(addr).await;
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        let (_c, head) = upgrade(addr).await;
        assert!(head.starts_with("HTTP/1.1 503"), "{head}");
        assert!(head.contains("\r\nRetry-After: 1\r\n"), "{head}");
        // The refused connection does not keep a place, and a closed one gives its back.
        drop(a);
        let mut served = false;
        for _ in 0..100 {
            let (_d, head) = upgrade(addr).await;
            if head.starts_with("HTTP/1.1 101") {
                served = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(served, "no place was given back");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_max_handshakes_accept_waits_for_a_handshake_to_end() {
    bounded(20, async {
        let addr = tokio_server(100, 1).await;
        // A slow client holds the only handshake place with half a request.
        let mut slow = TcpStream::connect(addr).await.unwrap();
        slow.write_all(&REQUEST[..20]).await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        let waiting = tokio::spawn(upgrade(addr));
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!waiting.is_finished(), "a second handshake ran beside the first");
        // The slow one finishes: the waiting one is served.
        slow.write_all(&REQUEST[20..]).await.unwrap();
        let (_tcp, head) = waiting.await.unwrap();
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        // And an open connection does not hold a handshake place.
        let host = addr.to_string();
        let tcp = TcpStream::connect(addr).await.unwrap();
        let (mut socket, _) =
            ws::connect(tcp, &ClientRequest::new(&host, "/"), Config::new()).await.unwrap();
        socket.send(Outgoing::text("hi")).await.unwrap();
        assert!(matches!(socket.recv().await.unwrap(), Some(Incoming::Text(t)) if t == "hi"));
    })
    .await;
}

/// Sends an upgrade request over a blocking stream and returns the response head.
fn blocking_upgrade(addr: SocketAddr) -> (std::net::TcpStream, String) {
    let mut tcp = std::net::TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    tcp.write_all(REQUEST).unwrap();
    let mut head = Vec::new();
    let mut byte = [0; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(tcp.read(&mut byte).unwrap(), 1, "the server closed before answering");
        head.push(byte[0]);
    }
    (tcp, String::from_utf8(head).unwrap())
}

#[test]
fn the_blocking_listener_has_the_same_limits() {
    let listener =
        blocking::Listener::bind("127.0.0.1:0").unwrap().max_connections(1).max_handshakes(1);
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || loop {
        let pending = listener.accept();
        std::thread::spawn(move || {
            if let Ok(mut ws) = pending.accept_with(Config::new(), |_| Decision::accept()) {
                while let Ok(Some(_)) = ws.recv() {}
            }
        });
    });
    // One handshake at a time: a half-sent request holds the place.
    let mut slow = std::net::TcpStream::connect(addr).unwrap();
    slow.write_all(&REQUEST[..20]).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let waiting = std::thread::spawn(move || blocking_upgrade(addr));
    std::thread::sleep(Duration::from_millis(300));
    assert!(!waiting.is_finished(), "a second handshake ran beside the first");
    slow.write_all(&REQUEST[20..]).unwrap();
    // The slow one took the only connection place: the waiting one is refused with 503.
    let (_refused, head) = waiting.join().unwrap();
    assert!(head.starts_with("HTTP/1.1 503"), "{head}");
    assert!(head.contains("\r\nRetry-After: 1\r\n"), "{head}");
    drop(slow);
    let mut served = false;
    for _ in 0..100 {
        let (_tcp, head) = blocking_upgrade(addr);
        if head.starts_with("HTTP/1.1 101") {
            served = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(served, "the closed connection's place was not given back");
}
