//! The testee for Autobahn|Testsuite's fuzzingserver (run by `kosoku -m fuzzingserver`): asks
//! for the number of cases, runs each one echoing every message with its type, then asks the
//! server to write its reports.
//!
//! ```text
//! cargo run --release --features tokio,deflate --example autobahn_client -- [ws://127.0.0.1:9001]
//! ```

use wsmachine::tokio as ws;
use wsmachine::{Config, Incoming, Outgoing};

const AGENT: &str = "wsmachine";

#[tokio::main]
async fn main() -> Result<(), wsmachine::AdapterError> {
    let base = std::env::args().nth(1).unwrap_or_else(|| "ws://127.0.0.1:9001".into());
    let base = base.trim_end_matches('/');
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
