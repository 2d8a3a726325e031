//! A sans-IO WebSocket (RFC 6455) state machine, for clients and servers: the bytes you read
//! and the current time go in; events and the bytes to write come out.
//!
//! The core never touches a socket, a clock, randomness, a thread or an async runtime, so the
//! same conformance, limits and timers hold under any I/O layer: blocking sockets, tokio, an
//! embedded network stack, a fuzzer, a simulated network in a test. It is `no_std` with
//! `alloc`, and needs only `httparse`, `sha1_smol` and `base64`; every other dependency is
//! optional, behind a feature.
//!
//! # The shape of it
//!
//! A [`Connection`] is one WebSocket, client or server, from the opening handshake to the
//! transport's close. You own every buffer:
//!
//! - [`Connection::receive`] takes `&mut [u8]` of bytes you read, unmasks payload in place,
//!   and returns how many bytes it consumed plus at most one [`Event`] that borrows your
//!   buffer (a whole message arrives as `&str` or `&[u8]`, without a copy).
//! - Commands ([`send_text`](Connection::send_text), [`close`](Connection::close), ...) write
//!   frames into an output buffer you pass; [`poll_transmit`](Connection::poll_transmit)
//!   writes the bytes the protocol owes (pongs, close replies, error responses) and tells you
//!   when to close the transport.
//! - Time is an argument: [`poll_timeout`](Connection::poll_timeout) says when to call
//!   [`handle_timeout`](Connection::handle_timeout) for the handshake, close, keepalive, pong
//!   and idle deadlines.
//!
//! # Driving a server
//!
//! ```no_run
//! use std::io::{Read, Write};
//! use std::net::TcpListener;
//! use wsmachine::{Accept, Config, Connection, Event, Instant, Message, Transmit};
//!
//! let listener = TcpListener::bind("127.0.0.1:9000")?;
//! let (mut tcp, _) = listener.accept()?;
//! let start = std::time::Instant::now();
//! let now = || Instant::from_micros(start.elapsed().as_micros() as u64);
//!
//! let config = Config::new();
//! let mut conn = Connection::server(config.clone(), now());
//! let mut buf = vec![0; config.receive_buffer_len()];
//! let (mut start_at, mut end) = (0, 0);
//! let mut out = vec![0; 64 * 1024];
//! loop {
//!     // 1. Write what the protocol owes; close the socket when told to.
//!     while let Some(transmit) = conn.poll_transmit(&mut out) {
//!         match transmit {
//!             Transmit::Bytes(n) => tcp.write_all(&out[..n])?,
//!             Transmit::CloseTransport => tcp.shutdown(std::net::Shutdown::Both)?,
//!         }
//!     }
//!     if conn.state() == wsmachine::State::Closed {
//!         break;
//!     }
//!     // 2. Hand over the unconsumed bytes; handle at most one event.
//!     let received = conn.receive(&mut buf[start_at..end], now())?;
//!     start_at += received.consumed;
//!     match received.event {
//!         Some(Event::Request(_request)) => {
//!             // Inspect the path, Origin, subprotocols... then accept or reject.
//!             let n = conn.accept(&Accept::new(), &mut out, now())?;
//!             tcp.write_all(&out[..n])?;
//!         }
//!         Some(Event::Message(Message::Text(text))) => {
//!             let n = conn.send_text(text, &mut out)?; // echo, while `text` borrows `buf`
//!             tcp.write_all(&out[..n])?;
//!         }
//!         Some(_) => {}
//!         None if received.consumed == 0 => {
//!             // 3. Need more bytes: make room at the front, then read.
//!             buf.copy_within(start_at..end, 0);
//!             end -= start_at;
//!             start_at = 0;
//!             match tcp.read(&mut buf[end..])? {
//!                 0 => {
//!                     conn.receive_eof(now())?;
//!                 }
//!                 n => end += n,
//!             }
//!         }
//!         None => {}
//!     }
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! A real driver also sleeps no longer than [`poll_timeout`](Connection::poll_timeout) (a
//! socket read timeout, a `tokio::time::sleep_until`) and then calls
//! [`handle_timeout`](Connection::handle_timeout).
//!
//! # Driving a client
//!
//! The same loop, started with [`Connection::client`] and a [`ClientRequest`]. Its first
//! [`poll_transmit`](Connection::poll_transmit) yields the upgrade request; the server's
//! answer arrives as [`Event::Accepted`] (the connection is open) or [`Event::Rejected`]
//! (status, headers and the start of the body, say for a redirect). The client needs a
//! 32-byte seed from a strong entropy source: the crate draws no randomness of its own.
//!
//! ```no_run
//! use std::io::{Read, Write};
//! use std::net::TcpStream;
//! use wsmachine::{
//!     ClientRequest, CloseCode, Config, Connection, Event, Instant, Message, State, Transmit,
//! };
//!
//! let mut tcp = TcpStream::connect("127.0.0.1:9001")?;
//! let clock = std::time::Instant::now();
//! let now = || Instant::from_micros(clock.elapsed().as_micros() as u64);
//! let seed = [0x5A; 32]; // use the operating system's randomness, e.g. getrandom
//!
//! let config = Config::new();
//! let request = ClientRequest::new("127.0.0.1:9001", "/chat").subprotocols(&["chat"]);
//! let mut conn = Connection::client(config.clone(), &request, seed, now())?;
//! let (mut buf, mut out) = (vec![0; config.receive_buffer_len()], vec![0; 1 << 16]);
//! let (mut start, mut end) = (0, 0);
//! loop {
//!     while let Some(transmit) = conn.poll_transmit(&mut out) {
//!         match transmit {
//!             Transmit::Bytes(n) => tcp.write_all(&out[..n])?,
//!             Transmit::CloseTransport => tcp.shutdown(std::net::Shutdown::Both)?,
//!         }
//!     }
//!     if conn.state() == State::Closed {
//!         break;
//!     }
//!     let received = conn.receive(&mut buf[start..end], now())?;
//!     start += received.consumed;
//!     match received.event {
//!         Some(Event::Accepted(_response)) => {
//!             let n = conn.send_text("hello", &mut out)?;
//!             tcp.write_all(&out[..n])?;
//!         }
//!         Some(Event::Rejected(response)) => {
//!             eprintln!("refused with {}", response.status());
//!         }
//!         Some(Event::Message(Message::Text(text))) => {
//!             println!("{text}");
//!             let n = conn.close(CloseCode::NORMAL, "bye", now(), &mut out)?;
//!             tcp.write_all(&out[..n])?;
//!         }
//!         Some(_) => {}
//!         None if received.consumed == 0 => {
//!             buf.copy_within(start..end, 0);
//!             (end, start) = (end - start, 0);
//!             match tcp.read(&mut buf[end..])? {
//!                 // The server closes TCP first (RFC 6455 §7.1.1): for a client, EOF after
//!                 // the closing handshake is the normal end.
//!                 0 => conn.receive_eof(now())?,
//!                 n => end += n,
//!             }
//!         }
//!         None => {}
//!     }
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Messages larger than the buffer
//!
//! A frame that fits [`Config::receive_buffer_size`] is handed out whole; a larger one in
//! [`Event::Fragment`] pieces as its bytes arrive, so a 16 MiB message passes through a
//! 4 KiB buffer. Fragmented messages arrive as pieces too. [`Reassembler`] turns events
//! into whole owned messages when you would rather have those.
//!
//! # Failures
//!
//! A peer that breaks the protocol gets the close code RFC 6455 §7.4.1 asks for (or the right
//! HTTP status during the handshake), and the call returns an [`Error`] saying what it did.
//! A call that breaks the API's rules returns a [`UsageError`] and changes nothing.
//!
//! # Features
//!
//! - `simdutf8` (default): UTF-8 validation with the `simdutf8` crate's SIMD validator
//!   (no_std), many times faster on text than the portable validator used without it.
//! - `std` (default): `std::error::Error` for the error types, the blocking adapter
//!   ([`blocking`]: accept and connect over any `Read + Write`) and operating-system seeding.
//! - `tokio`: the async adapter ([`tokio`]: accept and connect over any
//!   `AsyncRead + AsyncWrite`, `Stream` and `Sink`, split halves with bounded buffering).
//!
//! Both adapters share the owned types [`Incoming`], [`Outgoing`], [`Decision`] and
//! [`HttpResponse`], and report failures as an `AdapterError`.

#![no_std]
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![warn(unreachable_pub)]

extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

// The layers, from the bottom up; each imports only from the ones above it in this list.
mod buffer;
mod connection;
mod error;
mod handshake;
mod http;
mod io;
mod time;
mod wire;

#[cfg(feature = "std")]
pub use crate::io::blocking;
#[cfg(feature = "tokio")]
pub use crate::io::tokio;
pub use crate::wire::frame;

/// The README's examples, compiled as doctests so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

// The vocabulary every layer shares.
pub use crate::error::{Error, ErrorKind, UsageError};
pub use crate::time::{Duration, Instant};
// The wire layer.
pub use crate::wire::close::{CloseCode, CloseFrame, MAX_CLOSE_REASON};
// The handshake.
pub use crate::handshake::{Accept, ClientRequest, Header, Reject, Request, Response};
// The connection.
pub use crate::connection::config::{Config, MIN_RECEIVE_BUFFER};
pub use crate::connection::{
    Connection, Event, Fragment, Message, MessageKind, Received, Role, State, Transmit,
};
// Buffers.
pub use crate::buffer::reassemble::{OwnedMessage, Reassembler};
// The I/O layer: what every adapter shares.
#[cfg(feature = "std")]
pub use crate::io::error::AdapterError;
pub use crate::io::owned::{Decision, HttpResponse, Incoming, Outgoing};
