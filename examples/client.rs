//! A command-line client on the tokio adapter: sends each line of standard input as a text
//! message and prints each message received (text as a line, binary as `<binary N bytes>`).
//! At the end of input it closes with 1000 and waits for the closing handshake.
//!
//! ```text
//! cargo run --release --features tokio --example client -- ws://HOST:PORT/PATH
//! ```
//!
//! Exit status 0 after a clean close; otherwise a message on standard error saying what went
//! wrong (refused handshake, invalid accept, protocol error, abnormal close) and status 1.

use std::process::ExitCode;

use tokio::io::{AsyncBufReadExt, BufReader};
use wsmachine::tokio as ws;
use wsmachine::{CloseCode, Config, Incoming, Outgoing};

#[tokio::main]
async fn main() -> ExitCode {
    let Some(url) = std::env::args().nth(1) else {
        eprintln!("usage: client ws://HOST:PORT/PATH");
        return ExitCode::from(2);
    };
    match run(&url).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(url: &str) -> Result<(), wsmachine::AdapterError> {
    let (socket, _response) = ws::connect_url(url, Config::new()).await?;
    let (mut reader, mut writer) = socket.split();
    let sender = tokio::spawn(async move {
        let mut lines = BufReader::new(tokio::io::stdin()).lines();
        while let Some(line) = lines.next_line().await? {
            writer.send(Outgoing::Text(line)).await?;
        }
        writer.close(CloseCode::NORMAL, "").await?;
        // Keep the writer until the connection ends: dropping it is no close of its own.
        Ok::<_, wsmachine::AdapterError>(writer)
    });
    let mut closed_by_peer = None;
    while let Some(incoming) = reader.recv().await? {
        match incoming {
            Incoming::Text(text) => println!("{text}"),
            Incoming::Binary(data) => println!("<binary {} bytes>", data.len()),
            Incoming::Close(frame) => closed_by_peer = Some(frame),
            _ => {}
        }
    }
    match closed_by_peer {
        Some(frame) if frame.code() == CloseCode::NORMAL => Ok(()),
        Some(frame) => Err(wsmachine::AdapterError::Io(std::io::Error::other(format!(
            "server closed with code {} ({:?})",
            frame.code(),
            frame.reason()
        )))),
        None => Err(wsmachine::AdapterError::Closed),
    }
    .and_then(|()| {
        if sender.is_finished() {
            Ok(())
        } else {
            sender.abort();
            Err(wsmachine::AdapterError::Io(std::io::Error::other(
                "the server closed before the input ended",
            )))
        }
    })
}
