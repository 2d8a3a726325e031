//! An echo server on the blocking adapter, one thread per connection: every text or binary
//! message comes back with its type. The limits are high enough for the Autobahn 9.* cases
//! (16 MiB messages, many fragments), and it sends no keepalive pings.
//!
//! ```text
//! cargo run --release --example echo_server_blocking -- [ADDR]   # default 127.0.0.1:9002
//! ```

use std::net::{TcpListener, TcpStream};

use wsmachine::{blocking, Config, Decision, Incoming};

fn main() -> std::io::Result<()> {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:9002".into());
    let listener = TcpListener::bind(&addr)?;
    println!("echo_server_blocking listening on ws://{}", listener.local_addr()?);
    for tcp in listener.incoming() {
        match tcp {
            Ok(tcp) => {
                std::thread::spawn(move || {
                    if let Err(e) = serve(tcp) {
                        eprintln!("connection ended: {e}");
                    }
                });
            }
            Err(e) => eprintln!("accept failed: {e}"),
        }
    }
    Ok(())
}

fn config() -> Config {
    let config =
        Config::new().max_message_size(16 << 20).max_frame_size(16 << 20).max_fragments(1 << 20);
    // With `deflate`: compression accepted, every echo compressed (as in `echo_server`).
    #[cfg(feature = "deflate")]
    let config = config.deflate(wsmachine::DeflateConfig::new().threshold(0));
    config
}

fn serve(tcp: TcpStream) -> Result<(), wsmachine::AdapterError> {
    tcp.set_nodelay(true)?;
    let mut ws = blocking::accept_with(tcp, config(), |_request| Decision::accept())?;
    while let Some(incoming) = ws.recv()? {
        match incoming {
            Incoming::Text(text) => ws.send_text(&text)?,
            Incoming::Binary(data) => ws.send_binary(&data)?,
            // Pings are answered by the connection; a close is answered too, and the next
            // `recv` completes the closing handshake.
            _ => {}
        }
    }
    Ok(())
}
