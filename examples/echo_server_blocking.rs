//! An echo server on the blocking adapter, one thread per connection: every text or binary
//! message comes back with its type. As `echo_server`, it faces untrusted clients with the
//! crate's defaults: the [`Listener`](wsmachine::blocking::Listener) bounds handshakes in
//! progress (1,024) and open connections (here 4,000 threads, then 503) and survives running
//! out of file descriptors; each connection has the default limits and deadlines.
//!
//! ```text
//! cargo run --release --example echo_server_blocking -- [ADDR] [--max-message BYTES] [--max-connections N]
//! ```
//!
//! `ADDR` defaults to 127.0.0.1:9002; the Autobahn run passes `--max-message 16777216`.

#[path = "support/memory.rs"]
mod memory;

use wsmachine::{blocking, Config, Decision, Incoming, Outgoing};

fn main() -> std::io::Result<()> {
    // Buffers of large messages go back to the system once freed (see memory.rs).
    memory::return_large_buffers();
    // A thread per connection: few arenas, so that their memory goes back too.
    memory::few_arenas();
    let (addr, max_message, max_connections) = match parse(std::env::args().skip(1)) {
        Ok(parsed) => parsed,
        Err(e) => {
            eprintln!("echo_server_blocking: {e}\nusage: echo_server_blocking [ADDR] [--max-message BYTES] [--max-connections N]");
            std::process::exit(2)
        }
    };
    let listener = blocking::Listener::bind(&addr)?.max_connections(max_connections);
    println!("echo_server_blocking listening on ws://{}", listener.local_addr()?);
    let listener = std::sync::Arc::new(listener);
    // Memory freed by connections that went away goes back to the system (see memory.rs).
    let watched = std::sync::Arc::clone(&listener);
    std::thread::spawn(move || {
        let mut trimmer = memory::Trimmer::default();
        loop {
            std::thread::sleep(std::time::Duration::from_secs(1));
            trimmer.check(watched.connections());
        }
    });
    let config = config(max_message);
    loop {
        let pending = listener.accept();
        let config = config.clone();
        // The default stack size: 2 MiB of address space, of which a connection touches a
        // few KiB.
        let spawned = std::thread::Builder::new().spawn(move || {
            if let Err(e) = serve(pending, config) {
                eprintln!("connection ended: {e}");
            }
        });
        if let Err(e) = spawned {
            // Out of threads: the connection (moved into the closure) is dropped.
            eprintln!("no thread for a connection: {e}");
        }
    }
}

/// The address, the message limit and the connection limit from the command line.
fn parse(mut args: impl Iterator<Item = String>) -> Result<(String, Option<u64>, usize), String> {
    let (mut addr, mut max_message, mut max_connections) = ("127.0.0.1:9002".into(), None, 4_000);
    while let Some(arg) = args.next() {
        let mut number = || -> Result<u64, String> {
            let v = args.next().ok_or_else(|| format!("{arg} needs a value"))?;
            v.parse().map_err(|_| format!("{arg}: not a number: {v}"))
        };
        match arg.as_str() {
            "--max-message" => max_message = Some(number()?),
            "--max-connections" => max_connections = number()? as usize,
            flag if flag.starts_with("--") => return Err(format!("unknown flag {flag}")),
            _ => addr = arg,
        }
    }
    Ok((addr, max_message, max_connections))
}

fn config(max_message: Option<u64>) -> Config {
    let mut config = Config::new();
    if let Some(max) = max_message {
        config = config.max_message_size(max).max_frame_size(max).max_fragments(1 << 20);
    }
    // With `deflate`: compression accepted, every echo compressed (as in `echo_server`).
    #[cfg(feature = "deflate")]
    let config = config.deflate(wsmachine::DeflateConfig::new().threshold(0));
    config
}

fn serve(pending: blocking::Pending, config: Config) -> Result<(), wsmachine::AdapterError> {
    let mut ws = pending.accept_with(config, |_request| Decision::accept())?;
    while let Some(incoming) = ws.recv()? {
        match incoming {
            // Taken: each message's allocation takes the next one received.
            Incoming::Text(text) => ws.send_owned(Outgoing::Text(text))?,
            Incoming::Binary(data) => ws.send_owned(Outgoing::Binary(data))?,
            // Pings are answered by the connection; a close is answered too, and the next
            // `recv` completes the closing handshake.
            _ => {}
        }
    }
    Ok(())
}
