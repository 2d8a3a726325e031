//! A telemetry client written the way firmware is: the protocol path (`telemetry` below) uses
//! no `std` and no heap, only two fixed 4 KiB buffers, the transport as
//! `embedded_io_async::{Read, Write}` and the clock passed in. On a device the transport is
//! an embassy-net `TcpSocket` and the clock the chip's timer; here, on the host, they are a
//! tokio `TcpStream` (through `embedded-io-adapters`) and tokio's clock, so it runs against
//! the echo server:
//!
//! ```text
//! cargo run --release --features tokio --example echo_server &
//! cargo run --release --features embedded-io,tokio --example embedded_client -- [HOST:PORT]
//! ```
//!
//! It sends ten readings and checks each echo, then a 16 KiB log (four times its buffers: it
//! streams out through the write buffer and comes back in pieces through the read buffer,
//! checked on the fly), then closes. Exits non-zero if anything differs.

use embedded_io_async::{Read, Write};
use wsmachine::embedded::{self, Buffers, Clock, Error};
use wsmachine::{ClientRequest, CloseCode, Config, Event, Instant, Message};

// ---- The firmware's part: no std, no heap ----

/// How the exchange went.
#[derive(Debug)]
struct Report {
    readings: u32,
    log_bytes: usize,
}

/// The size of the log sent in one message.
const LOG: usize = 16 * 1024;

/// A checksum of `bytes`, continued from `acc`.
fn checksum(bytes: &[u8], acc: u32) -> u32 {
    bytes.iter().fold(acc, |acc, &b| acc.rotate_left(5) ^ u32::from(b))
}

/// Connects to `host` over `tcp`, reports, and closes.
async fn telemetry<T: Read + Write, C: Clock>(
    tcp: T,
    clock: C,
    host: &str,
    seed: [u8; 32],
) -> Result<Report, Error<T::Error>> {
    let (mut read, mut write) = ([0u8; 4096], [0u8; 4096]);
    let request = ClientRequest::new(host, "/telemetry");
    let config = Config::new().receive_buffer_size(read.len());
    let buffers = Buffers::new(&mut read, &mut write);
    let mut ws = embedded::connect(tcp, clock, config, &request, seed, buffers).await?;

    let mut readings = 0;
    let mut line = [0u8; 32];
    for i in 0..10u32 {
        let text = format_reading(&mut line, i, 2150 + i * 3);
        ws.send_text(text).await?;
        let echoed = ws
            .recv_event(|event| matches!(event, Event::Message(Message::Text(t)) if t == text))
            .await?;
        if echoed == Some(true) {
            readings += 1;
        }
    }

    // A log four times the buffers: sent as one message, received in pieces.
    let mut log = [0u8; LOG];
    for (i, b) in log.iter_mut().enumerate() {
        *b = (i % 253) as u8;
    }
    ws.send_binary(&log).await?;
    let (mut got, mut acc) = (0, 0);
    while got < LOG {
        let piece = ws
            .recv_event(|event| match event {
                Event::Message(Message::Binary(data)) => {
                    acc = checksum(data, acc);
                    Some(data.len())
                }
                Event::Fragment(piece) => {
                    acc = checksum(piece.payload, acc);
                    Some(piece.payload.len())
                }
                _ => Some(0),
            })
            .await?;
        match piece {
            Some(Some(n)) => got += n,
            _ => break,
        }
    }
    let log_bytes = if acc == checksum(&log, 0) { got } else { 0 };

    ws.close(CloseCode::NORMAL, "done").await?;
    // Until the server's close frame: then the connection is over.
    while ws.recv_event(|_| ()).await?.is_some() {}
    Ok(Report { readings, log_bytes })
}

/// `reading <i> <centi-degrees>` in `buf`, without a formatter.
fn format_reading(buf: &mut [u8; 32], i: u32, centi: u32) -> &str {
    let mut n = 0;
    let mut put = |bytes: &[u8]| {
        buf[n..n + bytes.len()].copy_from_slice(bytes);
        n += bytes.len();
    };
    put(b"reading ");
    put(&[b'0' + (i % 10) as u8, b' ']);
    let digits = [centi / 1000 % 10, centi / 100 % 10, centi / 10 % 10, centi % 10];
    put(&[b'0' + digits[0] as u8, b'0' + digits[1] as u8, b'.']);
    put(&[b'0' + digits[2] as u8, b'0' + digits[3] as u8]);
    core::str::from_utf8(&buf[..n]).unwrap_or("reading")
}

// ---- The host's part: a TCP stream and a clock ----

/// tokio's clock, counted from the program's start.
struct HostClock(tokio::time::Instant);

impl Clock for HostClock {
    fn now(&self) -> Instant {
        Instant::from_micros(self.0.elapsed().as_micros() as u64)
    }

    async fn sleep_until(&self, deadline: Instant) {
        tokio::time::sleep_until(self.0 + std::time::Duration::from_micros(deadline.as_micros()))
            .await;
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:9001".into());
    let tcp = match tokio::net::TcpStream::connect(&addr).await {
        Ok(tcp) => tcp,
        Err(e) => {
            eprintln!("embedded_client: cannot connect to {addr}: {e}");
            std::process::exit(1);
        }
    };
    // On a device: 32 bytes from the hardware random number generator.
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).expect("the operating system's entropy");
    let host = addr.split(':').next().unwrap_or("localhost");
    let clock = HostClock(tokio::time::Instant::now());
    match telemetry(embedded_io_adapters::tokio_1::FromTokio::new(tcp), clock, host, seed).await {
        Ok(report) if report.readings == 10 && report.log_bytes == LOG => {
            println!(
                "embedded_client: 10 readings echoed, a {LOG}-byte log echoed intact, closed cleanly"
            );
        }
        Ok(report) => {
            eprintln!("embedded_client: echoes differ: {report:?}");
            std::process::exit(1);
        }
        Err(e) => {
            eprintln!("embedded_client: {e}");
            std::process::exit(1);
        }
    }
}
