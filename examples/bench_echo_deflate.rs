//! The echo server of the compressed-idle measurement (`scripts/e2e.py --deflate-idle`):
//! `echo_server` with permessage-deflate in one of two documented settings, the defaults
//! ([`DeflateConfig::new`]) or the low-memory profile ([`DeflateConfig::low_memory`]).
//!
//! ```text
//! cargo run --release --features tokio,deflate --example bench_echo_deflate -- ADDR [default|low-memory]
//! ```

use wsmachine::tokio as ws;
use wsmachine::{Config, Decision, DeflateConfig, Incoming, Outgoing};

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:9001".into());
    let deflate = match args.next().as_deref() {
        None | Some("default") => DeflateConfig::new(),
        Some("low-memory") => DeflateConfig::low_memory(),
        Some(other) => {
            eprintln!("unknown setting {other:?}: default or low-memory");
            std::process::exit(2);
        }
    };
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("bench_echo_deflate listening on ws://{}", listener.local_addr()?);
    loop {
        let (tcp, _) = listener.accept().await?;
        tokio::spawn(async move {
            let _ = serve(tcp, Config::new().deflate(deflate)).await;
        });
    }
}

async fn serve(tcp: tokio::net::TcpStream, config: Config) -> Result<(), wsmachine::AdapterError> {
    tcp.set_nodelay(true)?;
    let mut socket = ws::accept_with(tcp, config, |_request| Decision::accept()).await?;
    while let Some(incoming) = socket.recv().await? {
        match incoming {
            Incoming::Text(text) => socket.send(Outgoing::Text(text)).await?,
            Incoming::Binary(data) => socket.send(Outgoing::Binary(data)).await?,
            _ => {}
        }
    }
    Ok(())
}
