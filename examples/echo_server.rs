//! An echo server on the tokio adapter: every text or binary message comes back with its
//! type. The limits are high enough for the Autobahn 9.* cases (16 MiB messages and frames,
//! many fragments), and it sends no keepalive pings (Autobahn ends a case when it receives an
//! unsolicited ping).
//!
//! ```text
//! cargo run --release --features tokio,deflate --example echo_server -- [ADDR]   # default 127.0.0.1:9001
//! ```

use wsmachine::tokio as ws;
use wsmachine::{Config, Decision, Incoming, Outgoing};

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:9001".into());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("echo_server listening on ws://{}", listener.local_addr()?);
    loop {
        let (tcp, _) = listener.accept().await?;
        tokio::spawn(async move {
            if let Err(e) = serve(tcp).await {
                eprintln!("connection ended: {e}");
            }
        });
    }
}

fn config() -> Config {
    let config =
        Config::new().max_message_size(16 << 20).max_frame_size(16 << 20).max_fragments(1 << 20);
    // With `deflate`, permessage-deflate is accepted with the defaults, except that every
    // echo is compressed however small (the default threshold leaves messages under 64 bytes
    // uncompressed): the Autobahn compression cases then exercise the compressor at every
    // size.
    #[cfg(feature = "deflate")]
    let config = config.deflate(wsmachine::DeflateConfig::new().threshold(0));
    config
}

async fn serve(tcp: tokio::net::TcpStream) -> Result<(), wsmachine::AdapterError> {
    tcp.set_nodelay(true)?;
    let mut socket = ws::accept_with(tcp, config(), |_request| Decision::accept()).await?;
    while let Some(incoming) = socket.recv().await? {
        match incoming {
            Incoming::Text(text) => socket.send(Outgoing::Text(text)).await?,
            Incoming::Binary(data) => socket.send(Outgoing::Binary(data)).await?,
            // Pings are answered by the connection; a close is answered too, and the next
            // `recv` returns the end once the closing handshake is over.
            _ => {}
        }
    }
    Ok(())
}
