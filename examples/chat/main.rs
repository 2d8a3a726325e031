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
//! | `--keepalive SECS` | 30 | ping interval (0: off) |
//! | `--pong-timeout SECS` | 30 | a client that does not answer a ping in time is closed |
//! | `--max-per-address N` | 32 | connections per client address; past it, 429 |
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

#[path = "server.rs"]
#[allow(dead_code)] // the tests (tests/chat.rs) use more of it than the binary
mod server;

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use axum::serve::ListenerExt;
use server::Options;
use wsmachine::SendQueueFull;

#[tokio::main]
async fn main() -> ExitCode {
    let (addr, options) = match parse(std::env::args().skip(1)) {
        Ok(parsed) => parsed,
        Err(e) => {
            eprintln!("chat: {e}\nusage: chat [ADDR] [--max-message BYTES] [--burst N] [--rate N] [--keepalive SECS] [--pong-timeout SECS] [--max-per-address N] [--allow-origin ORIGIN]... [--any-origin] [--send-queue BYTES] [--slow-client close|drop] [--no-deflate] [--redis URL] [--trusted-proxy ADDR[/LEN]]...");
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
    // Messages are small and latency matters: no Nagle delay on the connections.
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    let app =
        server::router_with(Arc::clone(&chat)).into_make_service_with_connect_info::<SocketAddr>();
    let stopping = {
        let chat = Arc::clone(&chat);
        async move {
            stop_signal().await;
            println!("chat: stopping: closing {} connections", chat.connections());
            chat.close_all();
        }
    };
    if let Err(e) = axum::serve(listener, app).with_graceful_shutdown(stopping).await {
        eprintln!("chat: {e}");
        return ExitCode::FAILURE;
    }
    // Connection draining: the closing handshakes finish, or the clients are cut off.
    if !chat.drained(Duration::from_secs(10)).await {
        eprintln!("chat: {} connections did not close within 10 s", chat.connections());
    }
    ExitCode::SUCCESS
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
fn parse(mut args: impl Iterator<Item = String>) -> Result<(String, Options), String> {
    let mut addr = None;
    let mut options = Options::default();
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "--max-message" => options.max_message = number(&value(&arg)?)?,
            "--burst" => options.burst = number(&value(&arg)?)?,
            "--rate" => options.rate = number(&value(&arg)?)?,
            "--keepalive" => options.keepalive = Duration::from_secs(number(&value(&arg)?)?),
            "--pong-timeout" => {
                options.pong_timeout = Duration::from_secs(number(&value(&arg)?)?);
            }
            "--max-per-address" => options.max_per_address = number(&value(&arg)?)?,
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
    Ok((addr.unwrap_or_else(|| "127.0.0.1:8080".into()), options))
}

fn number<T: std::str::FromStr>(s: &str) -> Result<T, String> {
    s.parse().map_err(|_| format!("not a number: {s}"))
}
