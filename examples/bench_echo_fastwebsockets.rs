//! fastwebsockets echo server, the peer in the end-to-end comparison (`scripts/e2e.py`):
//! echoes every text and binary message, one task per connection, on a multi-thread runtime
//! like `echo_server`.
//!
//! fastwebsockets does its server handshake through hyper (its `upgrade` feature); to keep
//! the peers' dependencies small this answers the upgrade request itself (httparse, SHA-1,
//! base64) and then hands the socket to `WebSocket::after_handshake`.
//!
//! ```text
//! bench_echo_fastwebsockets [ADDR]   # default 127.0.0.1:9003
//! ```

use base64::Engine as _;
use fastwebsockets::{FragmentCollector, OpCode, Role, WebSocket};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:9003".into());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("bench_echo_fastwebsockets listening on ws://{}", listener.local_addr()?);
    loop {
        let (tcp, _) = listener.accept().await?;
        tokio::spawn(async move {
            let _ = tcp.set_nodelay(true);
            let Ok(tcp) = handshake(tcp).await else { return };
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

/// Reads the upgrade request (the client sends nothing more before the answer) and writes the
/// `101` answer.
async fn handshake(mut tcp: TcpStream) -> std::io::Result<TcpStream> {
    let bad = || std::io::Error::new(std::io::ErrorKind::InvalidData, "bad upgrade request");
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = tcp.read(&mut buf).await?;
        if n == 0 || head.len() > 16 * 1024 {
            return Err(bad());
        }
        head.extend_from_slice(&buf[..n]);
    }
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut request = httparse::Request::new(&mut headers);
    request.parse(&head).map_err(|_| bad())?;
    let key = request
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("Sec-WebSocket-Key"))
        .ok_or_else(bad)?
        .value;
    let mut sha = sha1_smol::Sha1::new();
    sha.update(key);
    sha.update(b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
    let accept = base64::engine::general_purpose::STANDARD.encode(sha.digest().bytes());
    let response = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {accept}\r\n\r\n"
    );
    tcp.write_all(response.as_bytes()).await?;
    Ok(tcp)
}
