//! The echo server over TLS (`wss://`): tokio-rustls in front of the tokio adapter, with a
//! self-signed certificate for `localhost` and `127.0.0.1` generated at start with rcgen.
//! WebSockets without TLS are open to interception; this is how `wss` is done: terminate TLS,
//! then hand the TLS stream to `accept` like any other stream.
//!
//! ```text
//! cargo run --release --features tokio --example wss_echo_server -- [ADDR]   # default 127.0.0.1:9443
//! ```
//!
//! It prints the certificate in PEM, for a client to trust (e.g. `curl --cacert`, or a
//! rustls `RootCertStore`). A real server loads its certificate and key from files instead.

#![allow(dead_code)] // The test (tests/adapter_tokio.rs) uses the helpers, not `main`.

#[path = "support/tls.rs"]
pub mod tls;

use rustls::pki_types::CertificateDer;
use tokio_rustls::TlsAcceptor;
use wsmachine::tokio as ws;
use wsmachine::{Config, Incoming, Outgoing};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:9443".into());
    let (acceptor, _cert, pem) = self_signed_acceptor()?;
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("{pem}");
    println!("wss_echo_server listening on wss://{}", listener.local_addr()?);
    loop {
        let (tcp, _) = listener.accept().await?;
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            if let Err(e) = serve(tcp, acceptor).await {
                eprintln!("connection ended: {e}");
            }
        });
    }
}

/// A TLS acceptor with a fresh self-signed certificate, the certificate (for clients to
/// trust) and its PEM text.
pub fn self_signed_acceptor(
) -> Result<(TlsAcceptor, CertificateDer<'static>, String), Box<dyn std::error::Error>> {
    let (config, cert, pem) = tls::self_signed_server()?;
    Ok((TlsAcceptor::from(config), cert, pem))
}

/// Terminates TLS on `tcp`, then echoes WebSocket messages over the TLS stream.
pub async fn serve(
    tcp: tokio::net::TcpStream,
    acceptor: TlsAcceptor,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    tcp.set_nodelay(true)?;
    let tls = acceptor.accept(tcp).await?;
    let mut socket = ws::accept_with(tls, Config::new(), |_| wsmachine::Decision::accept()).await?;
    while let Some(incoming) = socket.recv().await? {
        match incoming {
            Incoming::Text(text) => socket.send(Outgoing::Text(text)).await?,
            Incoming::Binary(data) => socket.send(Outgoing::Binary(data)).await?,
            _ => {}
        }
    }
    Ok(())
}
