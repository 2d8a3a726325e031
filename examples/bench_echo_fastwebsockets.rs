//! fastwebsockets echo server, the peer in the end-to-end comparison (`scripts/e2e.py`):
//! echoes every text and binary message, one task per connection, on a multi-thread runtime
//! like `echo_server`.
//!
//! fastwebsockets does its server handshake through hyper (its `upgrade` feature); to keep
//! the peers' dependencies small this answers the upgrade request itself (httparse, SHA-1,
//! base64; `support/upgrade.rs`) and then hands the socket to `WebSocket::after_handshake`.
//!
//! ```text
//! bench_echo_fastwebsockets [ADDR]   # default 127.0.0.1:9003
//! ```

#[path = "support/upgrade.rs"]
mod support;

use fastwebsockets::{FragmentCollector, OpCode, Role, WebSocket};

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:9003".into());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("bench_echo_fastwebsockets listening on ws://{}", listener.local_addr()?);
    loop {
        let (tcp, _) = listener.accept().await?;
        tokio::spawn(async move {
            let mut tcp = tcp;
            let _ = tcp.set_nodelay(true);
            if support::upgrade(&mut tcp).await.is_err() {
                return;
            }
            let mut ws = WebSocket::after_handshake(tcp, Role::Server);
            ws.set_auto_close(true);
            ws.set_auto_pong(true);
            let mut ws = FragmentCollector::new(ws);
            while let Ok(frame) = ws.read_frame().await {
                let echo = matches!(frame.opcode, OpCode::Text | OpCode::Binary);
                if frame.opcode == OpCode::Close || (echo && ws.write_frame(frame).await.is_err()) {
                    break;
                }
            }
        });
    }
}
