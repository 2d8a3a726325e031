//! The blocking echo server over TLS (`wss://`): rustls in front of the blocking adapter, a
//! thread per connection, with a self-signed certificate for `localhost` and `127.0.0.1`
//! made at start.
//!
//! ```text
//! cargo run --release --example wss_echo_server_blocking -- [ADDR]   # default 127.0.0.1:9444
//! ```
//!
//! It prints the certificate in PEM, for a client to trust. The part to copy is [`Tls`]: the
//! blocking adapter runs its deadlines through the socket's read and write timeouts, so a
//! TLS stream needs a wrapper that forwards them to the TCP socket underneath (and sends
//! `close_notify` when the adapter closes the transport).

#![allow(dead_code)] // The test (tests/adapter_std.rs) uses the helpers, not `main`.

#[path = "support/tls.rs"]
pub mod tls;

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::ops::{Deref, DerefMut};
use std::sync::Arc;
use std::time::Duration;

use rustls::{ConnectionCommon, SideData, StreamOwned};
use wsmachine::blocking::{self, Transport};
use wsmachine::Incoming;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:9444".into());
    let (config, _cert, pem) = tls::self_signed_server()?;
    let listener = TcpListener::bind(&addr)?;
    println!("{pem}");
    println!("wss_echo_server_blocking listening on wss://{}", listener.local_addr()?);
    for tcp in listener.incoming() {
        let tcp = tcp?;
        let config = Arc::clone(&config);
        std::thread::spawn(move || {
            if let Err(e) = serve(tcp, config) {
                eprintln!("connection ended: {e}");
            }
        });
    }
    Ok(())
}

/// Wraps `tcp` in a server-side TLS session, then echoes WebSocket messages over it. The TLS
/// handshake runs inside the WebSocket handshake's first read, so the adapter's handshake
/// deadline (10 s) bounds both.
pub fn serve(
    tcp: TcpStream,
    config: Arc<rustls::ServerConfig>,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    tcp.set_nodelay(true)?;
    let stream = Tls(StreamOwned::new(rustls::ServerConnection::new(config)?, tcp));
    let mut ws = blocking::accept(stream)?;
    while let Some(incoming) = ws.recv()? {
        match incoming {
            Incoming::Text(text) => ws.send_text(&text)?,
            Incoming::Binary(data) => ws.send_binary(&data)?,
            _ => {}
        }
    }
    Ok(())
}

/// A rustls stream over TCP that the blocking adapter can drive: reads and writes go through
/// TLS, timeouts and the close go to the socket. `C` is `rustls::ServerConnection` or
/// `rustls::ClientConnection`.
pub struct Tls<C>(pub StreamOwned<C, TcpStream>);

impl<C, S> Read for Tls<C>
where
    C: DerefMut + Deref<Target = ConnectionCommon<S>>,
    S: SideData,
{
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf)
    }
}

impl<C, S> Write for Tls<C>
where
    C: DerefMut + Deref<Target = ConnectionCommon<S>>,
    S: SideData,
{
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

impl<C, S> Transport for Tls<C>
where
    C: DerefMut + Deref<Target = ConnectionCommon<S>>,
    S: SideData,
{
    fn set_read_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        self.0.sock.set_read_timeout(timeout)
    }

    fn set_write_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        self.0.sock.set_write_timeout(timeout)
    }

    fn close(&mut self) -> io::Result<()> {
        // Tell the peer the TLS session ended on purpose, as far as the socket takes it now.
        self.0.conn.send_close_notify();
        let _best_effort = self.0.conn.complete_io(&mut self.0.sock);
        self.0.sock.shutdown(Shutdown::Both)
    }
}
