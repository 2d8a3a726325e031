//! A chat server you open in a browser: rooms, names, messages broadcast to everyone in the
//! room, served with axum on one port. Each message is encoded once (and compressed once per
//! window size) for all the room's members.
//!
//! ```text
//! cargo run --release --features axum,deflate --example chat -- [ADDR] [FLAGS]   # default 127.0.0.1:8080
//! ```
//!
//! Then open the URL it prints; `/?room=lobby&name=ann` joins room `lobby` as `ann`.
//!
//! - `GET /` is the page (self-contained: no external scripts, fonts or styles);
//! - `GET /ws?room=R&name=N` is the WebSocket endpoint, speaking JSON text frames with a
//!   `type` field. Server to clients, for every member of the room (the sender included):
//!   `{"type":"message","room":R,"name":N,"text":T,"time":MS}`, and `{"type":"join",...}` /
//!   `{"type":"leave",...}` with `room`, `name`, `time` (`time` in milliseconds since the
//!   Unix epoch). Client to server: `{"type":"message","text":T}`. Anything else (not JSON,
//!   wrong types, an unknown `type`, a binary frame) is answered with
//!   `{"type":"error","text":...}` to that client and otherwise ignored;
//! - any other request gets 404.
//!
//! Flags (the defaults suit a public deployment):
//!
//! | flag | default | |
//! |---|---|---|
//! | `--max-message BYTES` | 1048576 | larger WebSocket messages are refused with 1009 |
//! | `--burst N` | 100 | messages a connection may send at once... |
//! | `--rate N` | 50 | ...and per second, sustained; past either, 1008 |
//! | `--byte-rate BYTES` | 1048576 | bytes of messages a connection may send per second, sustained; past it its next message is read later (backpressure, nothing refused) |
//! | `--keepalive SECS` | 30 | ping interval (0: off) |
//! | `--pong-timeout SECS` | 30 | a client that does not answer a ping in time is closed |
//! | `--max-per-address N` | 32 | connections per client address; past it, 429 |
//! | `--max-connections N` | 10000 | TCP connections open at once (HTTP and WebSocket); past it, 503 with `Retry-After: 1` |
//! | `--allow-origin ORIGIN` | none | an `Origin` allowed besides the served host (repeatable); others get 403 |
//! | `--any-origin` | off | allow every `Origin` (no cross-site check) |
//! | `--send-queue BYTES` | 4194304 | what a slow reader may have waiting |
//! | `--slow-client close\|drop` | close | close a client whose queue is full with 1008, or drop messages for it |
//! | `--no-deflate` | off | do not negotiate permessage-deflate |
//! | `--redis URL` | off | share the rooms with other servers over Redis pub/sub (`redis://HOST:PORT`) |
//! | `--trusted-proxy ADDR[/LEN]` | none | a reverse proxy whose `X-Forwarded-For` gives the client's address (repeatable) |
//!
//! Requests without `Origin` (non-browser clients) are allowed.
//!
//! Several servers behind a load balancer share their rooms through Redis (`--redis`; see
//! `examples/chat/nginx.conf` and the README's "Scaling out"). On SIGTERM or Ctrl-C the
//! server stops accepting, closes every connection with 1001 (going away) so that clients
//! reconnect to another server, and exits once they are gone (at most 10 s).

#[path = "../support/memory.rs"]
mod memory;

#[path = "server.rs"]
#[allow(dead_code)] // the tests (tests/chat.rs) use more of it than the binary
mod server;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use server::Options;
use wsmachine::SendQueueFull;

#[tokio::main]
async fn main() -> ExitCode {
    // Every thread in the main arena, whose free top a trim gives back (see memory.rs).
    memory::one_arena();
    let (addr, options, max_connections) = match parse(std::env::args().skip(1)) {
        Ok(parsed) => parsed,
        Err(e) => {
            eprintln!("chat: {e}\nusage: chat [ADDR] [--max-message BYTES] [--burst N] [--rate N] [--byte-rate BYTES] [--keepalive SECS] [--pong-timeout SECS] [--max-per-address N] [--max-connections N] [--allow-origin ORIGIN]... [--any-origin] [--send-queue BYTES] [--slow-client close|drop] [--no-deflate] [--redis URL] [--trusted-proxy ADDR[/LEN]]...");
            return ExitCode::from(2);
        }
    };
    let chat = match server::Chat::start(options) {
        Ok(chat) => chat,
        Err(e) => {
            eprintln!("chat: {e}");
            return ExitCode::from(2);
        }
    };
    let listener = match tokio::net::TcpListener::bind(&addr).await {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("chat: cannot listen on {addr}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let local = listener.local_addr().expect("a bound listener has an address");
    println!("chat: open http://{local}/?room=lobby in a browser");
    // The crate's listener: `accept` survives running out of descriptors, and connections
    // past the limit get 503 (TCP_NODELAY is on: messages are small and latency matters).
    let listener =
        Arc::new(wsmachine::tokio::Listener::from_tcp(listener).max_connections(max_connections));
    // Memory freed by connections that went away goes back to the system (see memory.rs).
    let watched = Arc::clone(&listener);
    tokio::spawn(async move {
        let mut trimmer = memory::Trimmer::default();
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            trimmer.check(watched.connections());
        }
    });
    let stopping = {
        let chat = Arc::clone(&chat);
        async move {
            stop_signal().await;
            println!("chat: stopping: closing {} connections", chat.connections());
            chat.close_all();
        }
    };
    serve(listener, server::router_with(Arc::clone(&chat)), stopping).await;
    // Connection draining: the closing handshakes finish, or the clients are cut off.
    if !chat.drained(Duration::from_secs(10)).await {
        eprintln!("chat: {} connections did not close within 10 s", chat.connections());
    }
    ExitCode::SUCCESS
}

/// How long a client has to send a whole HTTP request head (a page, or the upgrade request):
/// a slowloris client that sends it a byte at a time is cut off then, as the WebSocket
/// handshake deadline does for `echo_server`.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves HTTP/1.1 and HTTP/2 connections from `listener` with `router` until `stopping`
/// completes, then lets the HTTP requests in progress finish (up to 5 s).
///
/// This is `axum::serve` with what a public server needs and `axum::serve` does not set: a
/// deadline for the request head (hyper applies one only when given a timer), and the
/// listener's connection limit, past which a connection is answered with 503.
async fn serve(
    listener: Arc<wsmachine::tokio::Listener>,
    router: axum::Router,
    stopping: impl std::future::Future<Output = ()>,
) {
    use hyper::body::Incoming;
    use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
    use tower_service::Service;

    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new()).header_read_timeout(HEADER_TIMEOUT);
    // RFC 8441: WebSockets over HTTP/2 need the extended CONNECT method.
    builder.http2().timer(TokioTimer::new()).enable_connect_protocol();
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut stopping = std::pin::pin!(stopping);
    loop {
        let pending = tokio::select! {
            pending = listener.accept() => pending,
            () = &mut stopping => break,
        };
        let peer = pending.peer_addr();
        let over = pending.is_over_limit();
        let io = TokioIo::new(pending.into_stream());
        if over {
            let busy = hyper::service::service_fn(|_: hyper::Request<Incoming>| async {
                let mut response = hyper::Response::new(axum::body::Body::from("server busy\n"));
                *response.status_mut() = hyper::StatusCode::SERVICE_UNAVAILABLE;
                response
                    .headers_mut()
                    .insert("retry-after", hyper::header::HeaderValue::from_static("1"));
                Ok::<_, std::convert::Infallible>(response)
            });
            tokio::spawn(graceful.watch(builder.serve_connection(io, busy).into_owned()));
            continue;
        }
        let router = router.clone();
        // The route reads the client's address as axum's `ConnectInfo`.
        let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
            request.extensions_mut().insert(axum::extract::ConnectInfo(peer));
            router.clone().call(request)
        });
        let connection = builder.serve_connection_with_upgrades(io, service).into_owned();
        tokio::spawn(graceful.watch(connection));
    }
    let _ = tokio::time::timeout(Duration::from_secs(5), graceful.shutdown()).await;
}

/// SIGTERM (what a deploy or a service manager sends) or Ctrl-C.
async fn stop_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

/// The address and options from the command line.
fn parse(mut args: impl Iterator<Item = String>) -> Result<(String, Options, usize), String> {
    let mut addr = None;
    let mut options = Options::default();
    let mut max_connections = 10_000;
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "--max-message" => options.max_message = number(&value(&arg)?)?,
            "--burst" => options.burst = number(&value(&arg)?)?,
            "--rate" => options.rate = number(&value(&arg)?)?,
            "--byte-rate" => options.byte_rate = number(&value(&arg)?)?,
            "--keepalive" => options.keepalive = Duration::from_secs(number(&value(&arg)?)?),
            "--pong-timeout" => {
                options.pong_timeout = Duration::from_secs(number(&value(&arg)?)?);
            }
            "--max-per-address" => options.max_per_address = number(&value(&arg)?)?,
            "--max-connections" => max_connections = number(&value(&arg)?)?,
            "--allow-origin" => {
                let origin = value(&arg)?;
                options.allowed_origins.get_or_insert_with(Vec::new).push(origin);
            }
            "--any-origin" => options.allowed_origins = None,
            "--send-queue" => options.send_queue = number(&value(&arg)?)?,
            "--slow-client" => {
                options.slow_client = match value(&arg)?.as_str() {
                    "close" => SendQueueFull::Close,
                    "drop" => SendQueueFull::Drop,
                    other => return Err(format!("--slow-client takes close or drop, not {other}")),
                }
            }
            "--no-deflate" => options.deflate = false,
            "--redis" => options.redis = Some(value(&arg)?),
            "--trusted-proxy" => options.trusted_proxies.push(value(&arg)?.parse()?),
            flag if flag.starts_with('-') => return Err(format!("unknown flag {flag}")),
            _ if addr.is_none() => addr = Some(arg),
            _ => return Err(format!("unexpected argument {arg}")),
        }
    }
    Ok((addr.unwrap_or_else(|| "127.0.0.1:8080".into()), options, max_connections))
}

fn number<T: std::str::FromStr>(s: &str) -> Result<T, String> {
    s.parse().map_err(|_| format!("not a number: {s}"))
}
