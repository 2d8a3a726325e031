//! The testee for Autobahn|Testsuite's fuzzingserver (run by `kosoku -m fuzzingserver`): asks
//! for the number of cases, runs each one echoing every message with its type, then asks the
//! server to write its reports.
//!
//! ```text
//! cargo run --release --features tokio,deflate --example autobahn_client -- [ws://127.0.0.1:9001]
//! cargo run --release --features tokio,embedded-io --example autobahn_client -- --embedded [ws://127.0.0.1:9001]
//! ```
//!
//! With `--embedded` every connection runs on the embedded adapter (`wsmachine::embedded`,
//! over tokio's TCP through `embedded-io-adapters`) with two 4 KiB buffers: messages larger
//! than the read buffer arrive in pieces, which this testee gathers (on the host's heap) to
//! echo each message whole once its last piece is in, streamed out through the write buffer.
//! (Echoing each piece at once would deadlock against the suite, which does not read while it
//! writes a 16 MiB message.) It offers no compression (the embedded adapter has no heap for
//! it).

use wsmachine::tokio as ws;
use wsmachine::{Config, Incoming, Outgoing};

const AGENT: &str = "wsmachine";

#[tokio::main]
async fn main() -> Result<(), wsmachine::AdapterError> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let embedded_mode = args.first().is_some_and(|a| a == "--embedded");
    if embedded_mode {
        args.remove(0);
    }
    let base = args.first().cloned().unwrap_or_else(|| "ws://127.0.0.1:9001".into());
    let base = base.trim_end_matches('/');
    if embedded_mode {
        #[cfg(feature = "embedded-io")]
        return embedded::main(base).await;
        #[cfg(not(feature = "embedded-io"))]
        panic!("--embedded needs the embedded-io feature");
    }
    // The fuzzingserver may listen a moment before it serves: retry for up to 20 s.
    let mut tries = 0;
    let count = loop {
        match case_count(base).await {
            Ok(count) => break count,
            Err(e) if tries < 100 => {
                tries += 1;
                println!("getCaseCount: {e}; retrying");
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
            Err(e) => return Err(e),
        }
    };
    println!("running {count} cases against {base}");
    for case in 1..=count {
        let url = format!("{base}/runCase?case={case}&agent={AGENT}");
        if let Err(e) = run_case(&url).await {
            println!("case {case}: {e}");
        }
    }
    let url = format!("{base}/updateReports?agent={AGENT}");
    let (mut socket, _) = ws::connect_url(&url, config()).await?;
    // The server may end this connection without a closing handshake; the reports are
    // written either way.
    while let Ok(Some(_)) = socket.recv().await {}
    println!("reports updated");
    Ok(())
}

fn config() -> Config {
    let config =
        Config::new().max_message_size(16 << 20).max_frame_size(16 << 20).max_fragments(1 << 20);
    // With `deflate`: offer permessage-deflate with every parameter the suite's server may
    // ask for (client_no_context_takeover, client_max_window_bits), and compress every
    // message, however small, so that the compressing side is exercised too.
    #[cfg(feature = "deflate")]
    let config = config.deflate(
        wsmachine::DeflateConfig::new()
            .server_no_context_takeover(false)
            .server_max_window_bits(15)
            .client_max_window_bits(15)
            .client_no_context_takeover(true)
            .threshold(0),
    );
    config
}

async fn case_count(base: &str) -> Result<u32, wsmachine::AdapterError> {
    let (mut socket, _) = ws::connect_url(&format!("{base}/getCaseCount"), config()).await?;
    let mut count = None;
    while let Some(incoming) = socket.recv().await? {
        if let Incoming::Text(text) = incoming {
            count = text.trim().parse().ok();
        }
    }
    count
        .ok_or_else(|| wsmachine::AdapterError::Io(std::io::Error::other("no case count received")))
}

async fn run_case(url: &str) -> Result<(), wsmachine::AdapterError> {
    let (mut socket, _) = ws::connect_url(url, config()).await?;
    loop {
        match socket.recv().await {
            Ok(Some(Incoming::Text(text))) => {
                let _closing = socket.send(Outgoing::Text(text)).await;
            }
            Ok(Some(Incoming::Binary(data))) => {
                let _closing = socket.send(Outgoing::Binary(data)).await;
            }
            Ok(Some(_)) => {}
            Ok(None) => return Ok(()),
            // Keep driving after a failure so the closing handshake completes.
            Err(e) => println!("{url}: {e}"),
        }
    }
}

/// The same testee on the embedded adapter.
#[cfg(feature = "embedded-io")]
mod embedded {
    use embedded_io_adapters::tokio_1::FromTokio;
    use wsmachine::embedded::{self as ws, Buffers, Clock};
    use wsmachine::{ClientRequest, Config, Event, Instant, Message, MessageKind};

    /// tokio's clock, counted from the start.
    struct TokioClock(tokio::time::Instant);

    impl Clock for TokioClock {
        fn now(&self) -> Instant {
            Instant::from_micros(self.0.elapsed().as_micros() as u64)
        }

        async fn sleep_until(&self, deadline: Instant) {
            let at = self.0 + std::time::Duration::from_micros(deadline.as_micros());
            tokio::time::sleep_until(at).await;
        }
    }

    type Socket<'b> = ws::WebSocket<'b, FromTokio<tokio::net::TcpStream>, TokioClock>;

    fn io_error(e: impl std::fmt::Display) -> wsmachine::AdapterError {
        wsmachine::AdapterError::Io(std::io::Error::other(e.to_string()))
    }

    /// Connects to `base` + `path` with `read` and `write` as the buffers.
    async fn connect<'b>(
        base: &str,
        path: &str,
        read: &'b mut [u8],
        write: &'b mut [u8],
    ) -> Result<Socket<'b>, wsmachine::AdapterError> {
        let host = base.trim_start_matches("ws://");
        let tcp = tokio::net::TcpStream::connect(host).await?;
        let config = Config::new()
            .max_message_size(16 << 20)
            .max_frame_size(16 << 20)
            .max_fragments(1 << 20);
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(io_error)?;
        let request = ClientRequest::new(host, path);
        let clock = TokioClock(tokio::time::Instant::now());
        ws::connect(FromTokio::new(tcp), clock, config, &request, seed, Buffers::new(read, write))
            .await
            .map_err(io_error)
    }

    pub(super) async fn main(base: &str) -> Result<(), wsmachine::AdapterError> {
        let (mut read, mut write) = ([0u8; 4096], [0u8; 4096]);
        let mut tries = 0;
        let count: u32 = loop {
            match case_count(base, &mut read, &mut write).await {
                Ok(count) => break count,
                Err(e) if tries < 100 => {
                    tries += 1;
                    println!("getCaseCount: {e}; retrying");
                    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                }
                Err(e) => return Err(e),
            }
        };
        println!("running {count} cases against {base} on the embedded adapter");
        for case in 1..=count {
            let path = format!("/runCase?case={case}&agent={}", super::AGENT);
            if let Err(e) = run_case(base, &path, &mut read, &mut write).await {
                println!("case {case}: {e}");
            }
        }
        let path = format!("/updateReports?agent={}", super::AGENT);
        let mut socket = connect(base, &path, &mut read, &mut write).await?;
        while let Ok(Some(())) = socket.recv_event(|_| ()).await {}
        println!("reports updated");
        Ok(())
    }

    async fn case_count(
        base: &str,
        read: &mut [u8],
        write: &mut [u8],
    ) -> Result<u32, wsmachine::AdapterError> {
        let mut socket = connect(base, "/getCaseCount", read, write).await?;
        let mut count = None;
        while let Some(got) = socket
            .recv_event(|event| match event {
                Event::Message(Message::Text(text)) => text.trim().parse().ok(),
                _ => None,
            })
            .await
            .map_err(io_error)?
        {
            count = count.or(got);
        }
        count.ok_or_else(|| io_error("no case count received"))
    }

    /// Echoes every message once its last piece is in.
    async fn run_case(
        base: &str,
        path: &str,
        read: &mut [u8],
        write: &mut [u8],
    ) -> Result<(), wsmachine::AdapterError> {
        let mut socket = connect(base, path, read, write).await?;
        let mut message: Vec<u8> = Vec::new();
        loop {
            let got = socket
                .recv_event(|event| match event {
                    Event::Message(Message::Text(t)) => {
                        message.clear();
                        message.extend_from_slice(t.as_bytes());
                        Some(MessageKind::Text)
                    }
                    Event::Message(Message::Binary(b)) => {
                        message.clear();
                        message.extend_from_slice(b);
                        Some(MessageKind::Binary)
                    }
                    Event::Fragment(piece) => {
                        if piece.is_first {
                            message.clear();
                        }
                        message.extend_from_slice(piece.payload);
                        piece.is_last.then_some(piece.kind)
                    }
                    _ => None,
                })
                .await;
            let sent = match got {
                Ok(None) => return Ok(()),
                Ok(Some(None)) => Ok(()),
                Ok(Some(Some(MessageKind::Text))) => match std::str::from_utf8(&message) {
                    Ok(text) => socket.send_text(text).await,
                    Err(_) => Ok(()),
                },
                Ok(Some(Some(MessageKind::Binary))) => socket.send_binary(&message).await,
                // Keep driving after a failure so the closing handshake completes.
                Err(e) => {
                    println!("{path}: {e}");
                    Ok(())
                }
            };
            // Sending after the peer's close is refused: nothing to do then.
            let _closing = sent;
        }
    }
}
