//! An echo server on the tokio adapter: every text or binary message comes back with its
//! type. It is built to face untrusted clients with the crate's defaults: the
//! [`Listener`](wsmachine::tokio::Listener) bounds handshakes in progress (1,024) and open
//! connections (10,000, then 503), and survives running out of file descriptors; the
//! connection's defaults bound each connection (1 MiB messages, a 10 s handshake deadline,
//! keepalive pings after 20 s of silence and a 20 s pong deadline). `scripts/siege.py`
//! measures it under attack.
//!
//! ```text
//! cargo run --release --features tokio,deflate --example echo_server -- [ADDR] [--max-message BYTES] [--max-connections N] [--max-handshakes N] [--keepalive SECS] [--pong-timeout SECS]
//! ```
//!
//! `ADDR` defaults to 127.0.0.1:9001; `--keepalive 0` turns keepalive off. The Autobahn run
//! (`scripts/autobahn.sh`) raises the
//! message and frame limits with `--max-message 16777216` for its 16 MiB cases.

#[path = "support/memory.rs"]
mod memory;

use wsmachine::tokio as ws;
use wsmachine::{Config, Decision, Incoming, Outgoing};

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let options = match Options::parse(std::env::args().skip(1)) {
        Ok(options) => options,
        Err(e) => {
            eprintln!("echo_server: {e}\nusage: echo_server [ADDR] [--max-message BYTES] [--max-connections N] [--max-handshakes N] [--keepalive SECS] [--pong-timeout SECS]");
            std::process::exit(2);
        }
    };
    let listener = ws::Listener::bind(&options.addr)
        .await?
        .max_connections(options.max_connections)
        .max_handshakes(options.max_handshakes);
    println!("echo_server listening on ws://{}", listener.local_addr()?);
    let listener = std::sync::Arc::new(listener);
    // Memory freed by connections that went away goes back to the system (see memory.rs).
    let watched = std::sync::Arc::clone(&listener);
    tokio::spawn(async move {
        let mut trimmer = memory::Trimmer::default();
        loop {
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            trimmer.check(watched.connections());
        }
    });
    let config = options.config();
    loop {
        let pending = listener.accept().await;
        let config = config.clone();
        tokio::spawn(async move {
            if let Err(e) = serve(pending, config).await {
                eprintln!("connection ended: {e}");
            }
        });
    }
}

struct Options {
    addr: String,
    max_message: Option<u64>,
    max_connections: usize,
    max_handshakes: usize,
    keepalive: Option<u64>,
    pong_timeout: Option<u64>,
}

impl Options {
    fn parse(mut args: impl Iterator<Item = String>) -> Result<Self, String> {
        let mut options = Self {
            addr: "127.0.0.1:9001".into(),
            max_message: None,
            max_connections: 10_000,
            max_handshakes: 1_024,
            keepalive: None,
            pong_timeout: None,
        };
        while let Some(arg) = args.next() {
            let mut value = || args.next().ok_or_else(|| format!("{arg} needs a value"));
            let number = |v: String| v.parse().map_err(|_| format!("{arg}: not a number: {v}"));
            match arg.as_str() {
                "--max-message" => options.max_message = Some(number(value()?)?),
                "--max-connections" => options.max_connections = number(value()?)? as usize,
                "--max-handshakes" => options.max_handshakes = number(value()?)? as usize,
                "--keepalive" => options.keepalive = Some(number(value()?)?),
                "--pong-timeout" => options.pong_timeout = Some(number(value()?)?),
                flag if flag.starts_with("--") => return Err(format!("unknown flag {flag}")),
                _ => options.addr = arg,
            }
        }
        Ok(options)
    }

    fn config(&self) -> Config {
        let mut config = Config::new();
        if let Some(max) = self.max_message {
            // Messages and frames up to `max`, in as many fragments as the Autobahn cases use.
            config = config.max_message_size(max).max_frame_size(max).max_fragments(1 << 20);
        }
        if let Some(secs) = self.keepalive {
            let interval = (secs > 0).then(|| wsmachine::Duration::from_secs(secs));
            config = config.keepalive_interval(interval);
        }
        if let Some(secs) = self.pong_timeout {
            config = config.pong_timeout(wsmachine::Duration::from_secs(secs));
        }
        // With `deflate`, permessage-deflate is accepted with the defaults, except that every
        // echo is compressed however small (the default threshold leaves messages under 64
        // bytes uncompressed): the Autobahn compression cases then exercise the compressor
        // at every size.
        #[cfg(feature = "deflate")]
        let config = config.deflate(wsmachine::DeflateConfig::new().threshold(0));
        config
    }
}

async fn serve(pending: ws::Pending, config: Config) -> Result<(), wsmachine::AdapterError> {
    let mut socket = pending.accept_with(config, |_request| Decision::accept()).await?;
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
