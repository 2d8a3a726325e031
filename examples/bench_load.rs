//! Load generator for the end-to-end comparison (`scripts/e2e.py`): many WebSocket clients
//! over loopback against one echo server. The client is tokio-tungstenite for every server,
//! so each server under test faces the same peer.
//!
//! ```text
//! bench_load echo ADDR CONNECTIONS SIZE SECONDS   # echo round trips; prints one JSON line
//! bench_load idle ADDR CONNECTIONS SECONDS        # open connections, print "ready", hold them
//! ```
//!
//! Connections are spread over the source addresses 127.0.0.1 to 127.0.0.16, so tens of
//! thousands of them fit in the ephemeral port range. Everything stays on 127.0.0.0/8, and
//! every mode ends by itself after SECONDS.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize| -> &str {
        args.get(i).map(String::as_str).unwrap_or_else(|| {
            eprintln!("usage: bench_load echo ADDR CONNECTIONS SIZE SECONDS | idle ADDR CONNECTIONS SECONDS");
            std::process::exit(2)
        })
    };
    let addr: SocketAddr = arg(1).parse().expect("ADDR as IP:PORT");
    assert!(addr.ip().is_loopback(), "the load generator only targets loopback addresses");
    let connections: usize = arg(2).parse().expect("CONNECTIONS");
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    match arg(0) {
        "echo" => {
            let size: usize = arg(3).parse().expect("SIZE");
            let seconds: f64 = arg(4).parse().expect("SECONDS");
            rt.block_on(echo(addr, connections, size, Duration::from_secs_f64(seconds)));
        }
        "idle" => {
            let seconds: f64 = arg(3).parse().expect("SECONDS");
            rt.block_on(idle(addr, connections, Duration::from_secs_f64(seconds)));
        }
        other => panic!("unknown mode {other}"),
    }
}

/// Connects from source address 127.0.0.(1 + n % 16).
async fn open(addr: SocketAddr, n: usize) -> WebSocketStream<TcpStream> {
    let source = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1 + (n % 16) as u8));
    let socket = TcpSocket::new_v4().expect("socket");
    socket.bind(SocketAddr::new(source, 0)).expect("bind source address");
    let tcp = socket.connect(addr).await.expect("connect");
    tcp.set_nodelay(true).expect("nodelay");
    let url = format!("ws://{addr}/");
    let (ws, _) = tokio_tungstenite::client_async(url, tcp).await.expect("handshake");
    ws
}

async fn echo(addr: SocketAddr, connections: usize, size: usize, duration: Duration) {
    let payload: Vec<u8> = (0..size).map(|i| (i * 31 + 7) as u8).collect();
    let mut sockets = Vec::with_capacity(connections);
    for n in 0..connections {
        sockets.push(open(addr, n).await);
    }
    let start = Instant::now();
    let deadline = start + duration;
    let tasks: Vec<_> = sockets
        .into_iter()
        .map(|mut ws| {
            let payload = payload.clone();
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                while Instant::now() < deadline {
                    let sent = Instant::now();
                    ws.send(Message::Binary(payload.clone().into())).await.expect("send");
                    loop {
                        match ws.next().await.expect("open").expect("message") {
                            Message::Binary(echoed) => {
                                assert_eq!(echoed.len(), payload.len());
                                break;
                            }
                            Message::Ping(_) | Message::Pong(_) => {}
                            other => panic!("unexpected {other:?}"),
                        }
                    }
                    latencies.push(sent.elapsed().as_micros() as u64);
                }
                let _ = ws.close(None).await;
                latencies
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.expect("client task"));
    }
    let elapsed = start.elapsed().as_secs_f64();
    latencies.sort_unstable();
    let pct = |p: f64| latencies.get(((latencies.len() as f64 - 1.0) * p) as usize).copied();
    println!(
        "{{\"messages\": {}, \"seconds\": {:.3}, \"p50_us\": {}, \"p99_us\": {}}}",
        latencies.len(),
        elapsed,
        pct(0.50).unwrap_or(0),
        pct(0.99).unwrap_or(0)
    );
}

async fn idle(addr: SocketAddr, connections: usize, hold: Duration) {
    let mut sockets = Vec::with_capacity(connections);
    // A few hundred handshakes in flight at once keeps the accept queue from overflowing.
    let mut pending =
        futures_util::stream::iter(0..connections).map(|n| open(addr, n)).buffer_unordered(256);
    while let Some(ws) = pending.next().await {
        sockets.push(ws);
    }
    println!("ready {}", sockets.len());
    tokio::time::sleep(hold).await;
    drop(sockets);
}
