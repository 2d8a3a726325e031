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
//!   buffer (a whole message arrives as `&str` or `&[u8]`, without a copy). A
//!   [`RecvBuffer`] over any storage keeps the bytes as `receive` needs them and hands out
//!   the next event.
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
//! An echo server over any blocking stream, every event handled: a fragmented message, or
//! one larger than the buffer, is echoed piece by piece as it arrives. Commands take what to
//! send, then the output buffer, then `now` when they start a timer, and return a
//! `#[must_use]` [`Written`]: the bytes to write (the frame already counts as sent).
//!
//! ```rust
//! use std::io::{self, Read, Write};
//! use wsmachine::blocking::Transport;
//! use wsmachine::{Accept, Config, Connection, Error, Event, Instant, Message, RecvBuffer, State, Transmit};
//!
//! /// Serves one WebSocket on `stream` (a `TcpStream`, say), echoing every message in the
//! /// pieces it arrives in, until the connection is closed. Returns how the peer failed, if it
//! /// did.
//! fn echo<S: Read + Write + Transport>(stream: &mut S, config: Config) -> io::Result<Option<Error>> {
//!     let clock = std::time::Instant::now();
//!     let now = || Instant::from_micros(clock.elapsed().as_micros() as u64);
//!     let mut conn = Connection::server(config.clone(), now());
//!     let mut input = RecvBuffer::for_config(&config);
//!     // Room for an echo of the largest piece (compressed, with `deflate`, it may grow by an
//!     // eighth), and the control frames owed ahead of it.
//!     let mut out = vec![0; input.capacity() * 5 / 4 + 512];
//!     let mut failure = None;
//!     while conn.state() != State::Closed {
//!         // 1. Handle every event the buffered bytes hold. A failure has queued its close
//!         //    frame for step 2; the loop goes on until the transport is closed.
//!         loop {
//!             let event = match input.next_event(&mut conn, now()) {
//!                 Ok(Some(event)) => event,
//!                 Ok(None) => break,
//!                 Err(e) => {
//!                     failure.get_or_insert(e);
//!                     break;
//!                 }
//!             };
//!             let written = match event {
//!                 Event::Request(_request) => conn.accept(&Accept::new(), &mut out, now()),
//!                 Event::Message(Message::Text(text)) => conn.send_text(text, &mut out),
//!                 Event::Message(Message::Binary(data)) => conn.send_binary(data, &mut out),
//!                 // Fragmented, or larger than the buffer: echoed piece by piece.
//!                 Event::Fragment(f) => conn.send_fragment(f.kind, f.payload, f.is_last, &mut out),
//!                 // Pings are answered and a close is echoed by the connection (step 2).
//!                 _ => continue,
//!             };
//!             // Refused only once a close is under way: nothing more is echoed then.
//!             if let Ok(written) = written {
//!                 stream.write_all(written.bytes(&out))?;
//!             }
//!         }
//!         // 2. Write what the protocol owes (pongs, close replies); close when told to.
//!         while let Some(transmit) = conn.poll_transmit(&mut out) {
//!             match transmit {
//!                 Transmit::Bytes(n) => stream.write_all(&out[..n])?,
//!                 Transmit::CloseTransport => stream.close()?,
//!             }
//!         }
//!         if conn.state() == State::Closed {
//!             break;
//!         }
//!         // 3. Read, waiting no longer than the next deadline (keepalive, close, handshake).
//!         let wait = conn.poll_timeout().map(|at| {
//!             std::time::Duration::from(at - now()).max(std::time::Duration::from_millis(1))
//!         });
//!         stream.set_read_timeout(wait)?;
//!         let result = match stream.read(input.spare()) {
//!             Ok(0) => conn.receive_eof(),
//!             Ok(n) => {
//!                 input.filled(n);
//!                 Ok(())
//!             }
//!             Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
//!                 conn.handle_timeout(now())
//!             }
//!             Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(()),
//!             Err(e) => return Err(e),
//!         };
//!         if let Err(e) = result {
//!             failure.get_or_insert(e);
//!         }
//!     }
//!     Ok(failure)
//! }
//! #
//! # // The test: an in-memory transport carrying a client's request, a fragmented message, a
//! # // message larger than the server's buffer and a close; the echo must carry them back.
//! # struct Pipe { input: Vec<u8>, at: usize, output: Vec<u8>, closed: bool }
//! # impl Read for Pipe {
//! #     fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
//! #         let n = buf.len().min(self.input.len() - self.at).min(1000);
//! #         buf[..n].copy_from_slice(&self.input[self.at..self.at + n]);
//! #         self.at += n;
//! #         Ok(n)
//! #     }
//! # }
//! # impl Write for Pipe {
//! #     fn write(&mut self, buf: &[u8]) -> io::Result<usize> { self.output.extend_from_slice(buf); Ok(buf.len()) }
//! #     fn flush(&mut self) -> io::Result<()> { Ok(()) }
//! # }
//! # impl Transport for Pipe {
//! #     fn set_read_timeout(&mut self, _: Option<std::time::Duration>) -> io::Result<()> { Ok(()) }
//! #     fn close(&mut self) -> io::Result<()> { self.closed = true; Ok(()) }
//! # }
//! # use wsmachine::{CloseCode, MessageKind, OwnedMessage, Reassembler};
//! # let mut wire = b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
//! #     Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n".to_vec();
//! # let mut client = Connection::open_client(Config::new(), [1; 32], Instant::ZERO);
//! # let mut out = vec![0; 200_000];
//! # let big = vec![7u8; 100_000];
//! # let n = client.send_fragment(MessageKind::Text, "Hello, ".as_bytes(), false, &mut out)?;
//! # wire.extend_from_slice(n.bytes(&out));
//! # let n = client.send_fragment(MessageKind::Text, "wörld".as_bytes(), true, &mut out)?;
//! # wire.extend_from_slice(n.bytes(&out));
//! # let n = client.send_binary(&big, &mut out)?;
//! # wire.extend_from_slice(n.bytes(&out));
//! # let n = client.close(CloseCode::NORMAL, "bye", &mut out, Instant::ZERO)?;
//! # wire.extend_from_slice(n.bytes(&out));
//! # let mut pipe = Pipe { input: wire, at: 0, output: Vec::new(), closed: false };
//! # let failure = echo(&mut pipe, Config::new().receive_buffer_size(4096)).unwrap();
//! # assert!(failure.is_none(), "{failure:?}");
//! # assert!(pipe.closed, "the server closes the transport after the closing handshake");
//! # let head = pipe.output.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
//! # assert!(pipe.output.starts_with(b"HTTP/1.1 101 Switching Protocols\r\n"));
//! # let mut input = RecvBuffer::new(vec![0; 1 << 16]);
//! # let (mut reassembler, mut got, mut rest) = (Reassembler::new(), Vec::new(), &pipe.output[head..]);
//! # let mut closed = None;
//! # loop {
//! #     while let Some(event) = input.next_event(&mut client, Instant::ZERO).unwrap() {
//! #         if let Event::Close(frame) = &event { closed = Some(frame.code()); }
//! #         got.extend(reassembler.push(&event));
//! #     }
//! #     if rest.is_empty() { break; }
//! #     rest = &rest[input.push(rest)..];
//! # }
//! # assert!(got == [OwnedMessage::Text("Hello, wörld".into()), OwnedMessage::Binary(big)], "{} messages echoed, {} bytes out", got.len(), pipe.output.len());
//! # assert_eq!(closed, Some(CloseCode::NORMAL));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Driving a client
//!
//! The same loop, started with [`Connection::client`] and a [`ClientRequest`]. Its first
//! [`poll_transmit`](Connection::poll_transmit) yields the upgrade request; the server's
//! answer arrives as [`Event::Accepted`] (the connection is open) or [`Event::Rejected`]
//! (status, headers and the start of the body, say for a redirect). The client needs a
//! 32-byte seed from a strong entropy source: the crate draws no randomness of its own.
//! Here whole messages are wanted, so a [`Reassembler`] collects the pieces.
//!
//! ```no_run
//! use std::io::{self, Read, Write};
//! use std::net::{Shutdown, TcpStream};
//! use wsmachine::{
//!     ClientRequest, CloseCode, Config, Connection, Event, Instant, OwnedMessage, Reassembler,
//!     RecvBuffer, State, Transmit,
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
//! let mut input = RecvBuffer::for_config(&config);
//! let mut out = vec![0; 4096];
//! let mut messages = Reassembler::new();
//! while conn.state() != State::Closed {
//!     while let Some(event) = input.next_event(&mut conn, now())? {
//!         let written = match event {
//!             Event::Accepted(_response) => conn.send_text("hello", &mut out)?,
//!             Event::Rejected(response) => {
//!                 eprintln!("refused with {}", response.status());
//!                 continue;
//!             }
//!             event => match messages.push(&event) {
//!                 Some(OwnedMessage::Text(text)) => {
//!                     println!("{text}");
//!                     conn.close(CloseCode::NORMAL, "bye", &mut out, now())?
//!                 }
//!                 _ => continue, // pieces of a message, pings, pongs, the server's close
//!             },
//!         };
//!         tcp.write_all(written.bytes(&out))?;
//!     }
//!     while let Some(transmit) = conn.poll_transmit(&mut out) {
//!         match transmit {
//!             Transmit::Bytes(n) => tcp.write_all(&out[..n])?,
//!             Transmit::CloseTransport => tcp.shutdown(Shutdown::Both)?,
//!         }
//!     }
//!     if conn.state() == State::Closed {
//!         break;
//!     }
//!     let wait = conn.poll_timeout().map(|at| {
//!         std::time::Duration::from(at - now()).max(std::time::Duration::from_millis(1))
//!     });
//!     tcp.set_read_timeout(wait)?;
//!     match tcp.read(input.spare()) {
//!         // The server closes TCP first (RFC 6455 §7.1.1): for a client, EOF after the
//!         // closing handshake is the normal end.
//!         Ok(0) => conn.receive_eof()?,
//!         Ok(n) => input.filled(n),
//!         Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
//!             conn.handle_timeout(now())?
//!         }
//!         Err(e) => return Err(e.into()),
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
//! - `alloc` (default, through `std`): the [`Reassembler`], [`SharedMessage`], boxed
//!   handshake and close state, offers of any length and [`Connection::client`]. Without it
//!   the core needs no allocator: [`Connection::client_into`] writes the upgrade request into
//!   the caller's buffer, heads have at most 32 header lines, 128 bytes of offered names are
//!   kept, and a [`Connection`] holds its state inline.
//! - `std` (default): `std::error::Error` for the error types, the blocking adapter
//!   ([`blocking`]: accept and connect over any `Read + Write`) and operating-system seeding.
//! - `tokio`: the async adapter ([`tokio`]: accept and connect over any
//!   `AsyncRead + AsyncWrite`, `Stream` and `Sink`, split halves with bounded buffering).
//!
//! - `embedded-io`: the embedded adapter (`embedded`: accept and connect over any
//!   `embedded_io_async::{Read, Write}`, with the caller's two fixed buffers, clock and delay;
//!   no heap, so it builds with `default-features = false`; Rust 1.81, as `embedded-io` 0.7).
//!
//! All three adapters run on one I/O-free driver, over heap buffers that grow (std, tokio)
//! or the caller's fixed ones (embedded). The std and tokio adapters share the owned types
//! [`Incoming`], [`Outgoing`], [`Decision`] and [`HttpResponse`], and report failures as an
//! [`AdapterError`], generic over the transport's error; the embedded one hands out borrowed
//! [`Event`]s and has its own error with the same variants, a refusal's status only.
//!
//! # Where things are
//!
//! Each folder of `src/` is a layer, and each imports only from the layers below it:
//!
//! | folder | layer |
//! |---|---|
//! | `error.rs`, `time.rs` | the vocabulary every layer shares: errors, `Instant`, `Duration` |
//! | `wire/` | stateless frame headers, masking, UTF-8, close codes |
//! | `http/` | the HTTP/1.1 head: header lines and tokens, writing a head, finding its end, reason phrases |
//! | `handshake/` | RFC 6455 §4: request validation, accept, reject, the client's request and the response, key, extension negotiation |
//! | `connection/` | [`Connection`], the only place state changes: receive, send, timers, configuration |
//! | `buffer/` | caller storage: [`RecvBuffer`], the adapters' read and output buffers, [`Reassembler`] |
//! | `io/` | the driver every adapter runs on, owned types, [`AdapterError`], URLs, and the adapters |

#![no_std]
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![warn(unreachable_pub)]

#[cfg(any(feature = "alloc", test))]
extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

// The layers, from the bottom up; each imports only from the ones above it in this list.
mod buffer;
mod connection;
mod error;
mod handshake;
mod http;
#[cfg(any(feature = "alloc", feature = "embedded-io"))]
mod io;
mod slot;
mod time;
mod wire;

#[cfg(feature = "axum")]
pub use crate::io::axum;
#[cfg(feature = "std")]
pub use crate::io::blocking;
#[cfg(feature = "embedded-io")]
pub use crate::io::embedded;
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
#[cfg(feature = "deflate")]
pub use crate::connection::compress::DeflateSpare;
pub use crate::handshake::{Accept, ClientRequest, Header, Reject, Request, Response};
#[cfg(feature = "deflate")]
pub use crate::handshake::{DeflateConfig, DeflateMode, DeflateParams, DeflateResponseError};
// The connection.
pub use crate::connection::config::{Config, SendQueueFull, MIN_RECEIVE_BUFFER};
pub use crate::connection::{
    Connection, Event, Fragment, Message, MessageKind, Received, Role, State, Transmit, Written,
};
// Buffers.
#[cfg(feature = "alloc")]
pub use crate::buffer::reassemble::{OwnedMessage, Reassembler};
pub use crate::buffer::recv::RecvBuffer;
#[cfg(feature = "alloc")]
pub use crate::buffer::shared::{Encoding, SharedMessage, SharedSend};
// The I/O layer: what every adapter shares.
#[cfg(feature = "alloc")]
pub use crate::io::error::{AdapterError, DefaultTransportError};
#[cfg(feature = "alloc")]
pub use crate::io::owned::{Decision, HttpResponse, Incoming, Outgoing};
