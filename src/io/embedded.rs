//! The embedded adapter (feature `embedded-io`): a [`Connection`] driven over
//! [`embedded_io_async`]'s `Read + Write`, with the caller's two buffers, clock and delay. No
//! heap: it builds with `default-features = false, features = ["embedded-io"]`, and runs on
//! embassy, RTIC or a host executor alike.
//!
//! It is the same driver as the std and tokio adapters' (deadlines, who shuts the transport,
//! a peer's failure reported once after its reply is out), over storage it borrows:
//! - the **read buffer** holds what was read and not yet consumed. A frame that fits it
//!   arrives whole, a larger one (or a fragmented message) in pieces
//!   ([`Event::Fragment`]): a message of any size, up to
//!   [`Config::max_message_size`](crate::Config::max_message_size), streams through a
//!   buffer of a few KiB. It must hold at least [`MIN_RECEIVE_BUFFER`] bytes; the
//!   configuration's receive buffer size is lowered to its length.
//! - the **write buffer** holds what is to be written: the client's upgrade request, frames
//!   sent, pongs and close replies. A message larger than it streams through it: the frame's
//!   header, then its payload a bufferful at a time.
//!
//! ```no_run
//! # async fn demo<T: embedded_io_async::Read + embedded_io_async::Write>(
//! #     tcp: T,
//! #     clock: impl wsmachine::embedded::Clock,
//! # ) -> Result<(), wsmachine::embedded::Error<T::Error>> {
//! use wsmachine::embedded::{self, Buffers};
//! use wsmachine::{ClientRequest, CloseCode, Config, Event, Message};
//!
//! let (mut read, mut write) = ([0u8; 4096], [0u8; 4096]);
//! let seed = [7; 32]; // from the chip's random number generator
//! let request = ClientRequest::new("192.168.1.10", "/telemetry");
//! let buffers = Buffers::new(&mut read, &mut write);
//! let mut ws = embedded::connect(tcp, clock, Config::new(), &request, seed, buffers).await?;
//! ws.send_text("temperature 21.5").await?;
//! while let Some(done) = ws
//!     .recv_event(|event| match event {
//!         Event::Message(Message::Text(text)) => text == "ok",
//!         _ => false,
//!     })
//!     .await?
//! {
//!     if done {
//!         ws.close(CloseCode::NORMAL, "").await?;
//!     }
//! }
//! // `None`: the closing handshake is over; drop the transport.
//! # Ok(())
//! # }
//! ```
//!
//! The transport's `read` must be cancel-safe (a read that waits past a deadline is dropped
//! and started again): embassy-net's TCP socket and `embedded-io-adapters`' wrappers are.
//! `embedded-io` has no shutdown: once [`recv_event`](WebSocket::recv_event) returned `None`,
//! drop the adapter (or take the transport back with [`into_inner`](WebSocket::into_inner))
//! to close the transport. permessage-deflate is not negotiated (it needs a heap).

use core::fmt;
use core::future::{poll_fn, Future};
use core::pin::pin;
use core::task::Poll;

use embedded_io_async::{Read, Write};

use crate::connection::config::{Config, MIN_RECEIVE_BUFFER};
use crate::connection::{Connection, Event, MessageKind};
use crate::error::UsageError;
use crate::handshake::{Accept, ClientRequest, Reject, Request, Response};
use crate::io::driver::fixed::{Fixed, Output};
use crate::io::driver::{Driver, Handshake, Outcome, Step, Want};
use crate::time::Instant;
use crate::wire::close::CloseCode;

/// The time source and the delay the adapter runs its deadlines with (handshake, keepalive,
/// pong and close deadlines).
pub trait Clock {
    /// The current time, on a monotonic clock ([`Instant::from_micros`] of a timer's count,
    /// say).
    fn now(&self) -> Instant;

    /// Waits until `deadline` (or a little later); returns at once if it has passed.
    fn sleep_until(&self, deadline: Instant) -> impl Future<Output = ()>;
}

impl<C: Clock> Clock for &C {
    fn now(&self) -> Instant {
        (**self).now()
    }

    fn sleep_until(&self, deadline: Instant) -> impl Future<Output = ()> {
        (**self).sleep_until(deadline)
    }
}

/// Why a call failed. Each variant says who failed and what happened; `E` is the transport's
/// error. The same variants as [`AdapterError`](crate::AdapterError) where they apply, with a
/// refusal's status only (there is no heap to keep its headers; see [`connect_with`] to read
/// them).
#[derive(Debug)]
#[non_exhaustive]
pub enum Error<E> {
    /// The peer broke the protocol, or a deadline passed (handshake, pong, idle, close). The
    /// reply the RFC asks for (a close frame or an HTTP error status) was sent if it could
    /// be; [`crate::Error::kind`] says what the peer did.
    Protocol(crate::error::Error),
    /// The call broke the API's rules (an invalid close code, a message after close, a read
    /// buffer smaller than [`MIN_RECEIVE_BUFFER`], a write buffer too small for the upgrade
    /// request); nothing was sent.
    Usage(UsageError),
    /// The transport failed. The connection is over.
    Io(E),
    /// Client: the server refused the upgrade with this non-`101` status.
    Refused {
        /// The status the server sent.
        status: u16,
    },
    /// Server: the application rejected the request with this HTTP status; the response was
    /// sent.
    Rejected {
        /// The status sent.
        status: u16,
    },
    /// The connection is closed (or the transport stopped taking bytes): nothing more can be
    /// sent.
    Closed,
}

impl<E: fmt::Debug> fmt::Display for Error<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Protocol(e) => write!(f, "WebSocket protocol failure: {e}"),
            Self::Usage(e) => write!(f, "refused call: {e}"),
            Self::Io(e) => write!(f, "transport error: {e:?}"),
            Self::Refused { status } => {
                write!(f, "server refused the WebSocket upgrade with HTTP {status}")
            }
            Self::Rejected { status } => write!(f, "upgrade request rejected with HTTP {status}"),
            Self::Closed => f.write_str("the WebSocket connection is closed"),
        }
    }
}

// `embedded-io` 0.7 itself needs Rust 1.81 (its errors are `core::error::Error`s), so this
// feature does too, whatever the crate's minimum.
#[allow(clippy::incompatible_msrv)]
impl<E: fmt::Debug> core::error::Error for Error<E> {}

impl<E> From<crate::error::Error> for Error<E> {
    fn from(e: crate::error::Error) -> Self {
        Self::Protocol(e)
    }
}

impl<E> From<UsageError> for Error<E> {
    fn from(e: UsageError) -> Self {
        match e {
            UsageError::Closed | UsageError::Closing => Self::Closed,
            e => Self::Usage(e),
        }
    }
}

impl<E> Outcome<u16> for Error<E> {
    fn outcome(ended: Handshake<u16>) -> Result<Option<u16>, Self> {
        match ended {
            Handshake::Open(status) => Ok(status),
            Handshake::Refused(status) => Err(Self::Refused { status }),
            Handshake::Rejected(status) => Err(Self::Rejected { status }),
            Handshake::Failed(e) => Err(Self::Protocol(e)),
            Handshake::Usage(e) => Err(e.into()),
            Handshake::Closed => Err(Self::Closed),
        }
    }
}

/// The caller's read and write buffers (a few KiB each is typical; see the
/// [module](self) docs).
#[derive(Debug)]
pub struct Buffers<'b> {
    read: &'b mut [u8],
    write: &'b mut [u8],
}

impl<'b> Buffers<'b> {
    /// `read` for what is read from the transport, `write` for what is written to it.
    pub fn new(read: &'b mut [u8], write: &'b mut [u8]) -> Self {
        Self { read, write }
    }
}

/// Server: what [`accept_with`]'s `decide` answers a request with. It writes the answer
/// into the write buffer; the [`Answered`] it returns is the proof.
#[derive(Debug)]
pub struct Responder<'r, 'b> {
    conn: &'r mut Connection,
    output: &'r mut Output<'b>,
    now: Instant,
}

impl Responder<'_, '_> {
    /// Accepts the upgrade with `accept` (a subprotocol the client offered, extra headers).
    pub fn accept(self, accept: &Accept<'_>) -> Result<Answered, UsageError> {
        let Self { conn, output, now } = self;
        output.command(|out| conn.accept(accept, out, now))?;
        Ok(Answered { rejected: None })
    }

    /// Rejects the upgrade with `reject`'s status, headers and body; the transport is then
    /// shut.
    pub fn reject(self, reject: &Reject<'_>) -> Result<Answered, UsageError> {
        let Self { conn, output, .. } = self;
        output.command(|out| conn.reject(reject, out))?;
        Ok(Answered { rejected: Some(reject.status()) })
    }

    /// Answers with a [`Decision`](crate::Decision), as the std and tokio adapters' `decide`
    /// does (feature `alloc`).
    #[cfg(feature = "alloc")]
    pub fn decision(self, decision: &crate::Decision) -> Result<Answered, UsageError> {
        decision.answer(|answer| match answer {
            crate::io::owned::Answer::Accept(accept) => self.accept(&accept),
            crate::io::owned::Answer::Reject(reject) => self.reject(&reject),
        })
    }
}

/// A request answered (by [`Responder::accept`] or [`Responder::reject`]).
#[derive(Debug)]
pub struct Answered {
    rejected: Option<u16>,
}

/// An open WebSocket over the transport `T`, with the clock `C`, borrowing its buffers for
/// `'b`.
#[derive(Debug)]
pub struct WebSocket<'b, T, C> {
    io: T,
    clock: C,
    driver: Driver<Fixed<'b>>,
}

/// The configuration as the buffers allow: the receive buffer no larger than `read`, no
/// compression. Fails if `read` cannot hold a control frame.
fn fit<E>(config: Config, read: &[u8]) -> Result<Config, Error<E>> {
    if read.len() < MIN_RECEIVE_BUFFER {
        return Err(Error::Usage(UsageError::BufferTooSmall { required: MIN_RECEIVE_BUFFER }));
    }
    #[allow(unused_mut)]
    let mut config = if config.receive_buffer_size > read.len() {
        config.receive_buffer_size(read.len())
    } else {
        config
    };
    #[cfg(feature = "deflate")]
    {
        config.deflate.mode = crate::handshake::DeflateMode::Off;
    }
    Ok(config)
}

/// Client: sends the upgrade request over `io` and waits for the server's `101`, within the
/// handshake deadline. `seed` feeds the masking keys and the handshake key: 32 bytes from a
/// random number generator.
pub async fn connect<'b, T: Read + Write, C: Clock>(
    io: T,
    clock: C,
    config: Config,
    request: &ClientRequest<'_>,
    seed: [u8; 32],
    buffers: Buffers<'b>,
) -> Result<WebSocket<'b, T, C>, Error<T::Error>> {
    connect_with(io, clock, config, request, seed, buffers, |_| {}).await
}

/// Client: [`connect`], with `inspect` shown the server's response (its `101`, or a refusal:
/// status, headers and the start of the body) while it is in the read buffer.
pub async fn connect_with<'b, T: Read + Write, C: Clock>(
    io: T,
    clock: C,
    config: Config,
    request: &ClientRequest<'_>,
    seed: [u8; 32],
    buffers: Buffers<'b>,
    inspect: impl FnOnce(&Response<'_>),
) -> Result<WebSocket<'b, T, C>, Error<T::Error>> {
    let config = fit(config, buffers.read)?;
    let now = clock.now();
    let (conn, written) = Connection::client_into(config, request, seed, now, buffers.write)?;
    let store = Fixed::with_output(buffers.read, buffers.write, written.len());
    let mut ws = WebSocket { io, clock, driver: Driver::with_store(conn, store) };
    let mut inspect = Some(inspect);
    ws.run(|driver, now| {
        driver.handshake_step_with(now, &mut |event, _, _, _| {
            let (response, open) = match &event {
                Event::Accepted(response) => (response, true),
                Event::Rejected(response) => (response, false),
                _ => return Ok(Handshake::Open(None)),
            };
            if let Some(inspect) = inspect.take() {
                inspect(response);
            }
            let status = response.status();
            Ok(if open { Handshake::Open(Some(status)) } else { Handshake::Refused(status) })
        })
    })
    .await?;
    Ok(ws)
}

/// Server: reads the upgrade request from `io` and accepts it (any path, no subprotocol),
/// within the handshake deadline; an invalid request gets its HTTP error status.
pub async fn accept<'b, T: Read + Write, C: Clock>(
    io: T,
    clock: C,
    config: Config,
    buffers: Buffers<'b>,
) -> Result<WebSocket<'b, T, C>, Error<T::Error>> {
    accept_with(io, clock, config, buffers, |_, responder| responder.accept(&Accept::new())).await
}

/// Server: [`accept`], with `decide` answering the request (path, headers, offered
/// subprotocols) through its [`Responder`]. A rejection is sent, the transport shut, and
/// [`Error::Rejected`] returned.
pub async fn accept_with<'b, T: Read + Write, C: Clock>(
    io: T,
    clock: C,
    config: Config,
    buffers: Buffers<'b>,
    decide: impl FnOnce(&Request<'_>, Responder<'_, 'b>) -> Result<Answered, UsageError>,
) -> Result<WebSocket<'b, T, C>, Error<T::Error>> {
    let config = fit(config, buffers.read)?;
    let conn = Connection::server(config, clock.now());
    let store = Fixed::new(buffers.read, buffers.write);
    let mut ws = WebSocket { io, clock, driver: Driver::with_store(conn, store) };
    let mut decide = Some(decide);
    ws.run(|driver, now| {
        driver.handshake_step_with(now, &mut |event, conn, output, now| {
            let Event::Request(request) = event else { return Ok(Handshake::Open(None)) };
            // A connection carries one request: there is no second call.
            let Some(decide) = decide.take() else { return Ok(Handshake::Closed) };
            let answered = decide(&request, Responder { conn, output, now })?;
            Ok(match answered.rejected {
                None => Handshake::Open(None),
                Some(status) => Handshake::Rejected(status),
            })
        })
    })
    .await?;
    Ok(ws)
}

/// The longest frame header (a masked frame with a 64-bit length).
const FRAME_HEADER_MAX: usize = 14;

/// The longest control frame (125 bytes of payload, a masked header).
const CONTROL_FRAME_MAX: usize = 131;

/// Waits for `future`, or until `deadline`: `None` if the deadline came first (and the
/// future was dropped).
async fn until<C: Clock, F: Future>(
    clock: &C,
    deadline: Option<Instant>,
    future: F,
) -> Option<F::Output> {
    let Some(deadline) = deadline else { return Some(future.await) };
    let mut future = pin!(future);
    let mut sleep = pin!(clock.sleep_until(deadline));
    poll_fn(|cx| {
        if let Poll::Ready(output) = future.as_mut().poll(cx) {
            return Poll::Ready(Some(output));
        }
        match sleep.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    })
    .await
}

impl<'b, T: Read + Write, C: Clock> WebSocket<'b, T, C> {
    /// Receives the next event as the connection hands it out, borrowing the read buffer:
    /// a message that fits the buffer arrives whole ([`Event::Message`]), a larger or
    /// fragmented one as [`Event::Fragment`] pieces. `handle` sees the event and returns what
    /// `recv_event` returns. Pings are answered, and keepalive pings sent, while it waits.
    ///
    /// `Ok(None)` once the connection is over: after the closing handshake completed, or
    /// after an error was returned. A peer's protocol violation, a missed deadline, or a
    /// transport that ended without a close is an error, returned once; the close frame the
    /// RFC asks for has been sent. Call it again after [`Event::Close`] (or an error) to
    /// complete the close.
    pub async fn recv_event<R>(
        &mut self,
        mut handle: impl FnMut(Event<'_>) -> R,
    ) -> Result<Option<R>, Error<T::Error>> {
        self.run(|driver, now| {
            driver.receive_step(&mut || now, |d, now| d.next_raw(now, &mut handle))
        })
        .await
    }

    /// Sends a text message, and returns once it is written. A message larger than the write
    /// buffer streams through it (one frame). Do not drop the future before it completes:
    /// the frame would be cut short.
    pub async fn send_text(&mut self, text: &str) -> Result<(), Error<T::Error>> {
        self.send_message(MessageKind::Text, text.as_bytes(), Some(text)).await
    }

    /// Sends a binary message, and returns once it is written. A message larger than the
    /// write buffer streams through it (one frame), as for [`send_text`](Self::send_text).
    pub async fn send_binary(&mut self, data: &[u8]) -> Result<(), Error<T::Error>> {
        self.send_message(MessageKind::Binary, data, None).await
    }

    /// Sends one piece of a fragmented message (the first names its `kind`; continue until
    /// `is_last`). A piece larger than the write buffer goes out as several fragments.
    pub async fn send_fragment(
        &mut self,
        kind: MessageKind,
        payload: &[u8],
        is_last: bool,
    ) -> Result<(), Error<T::Error>> {
        // Room for the frame's header and for control frames owed ahead of it.
        let reserve = FRAME_HEADER_MAX + 2 * CONTROL_FRAME_MAX;
        let piece_max = self.driver.output_capacity().saturating_sub(reserve).max(1);
        let mut rest = payload;
        loop {
            let (piece, after) = rest.split_at(rest.len().min(piece_max));
            let last = is_last && after.is_empty();
            self.command(|c, out| c.send_fragment(kind, piece, last, out)).await?;
            if after.is_empty() {
                return Ok(());
            }
            rest = after;
        }
    }

    /// Sends a ping (at most 125 bytes of payload).
    pub async fn send_ping(&mut self, payload: &[u8]) -> Result<(), Error<T::Error>> {
        self.command(|c, out| c.send_ping(payload, out)).await
    }

    /// Sends an unsolicited pong (at most 125 bytes of payload).
    pub async fn send_pong(&mut self, payload: &[u8]) -> Result<(), Error<T::Error>> {
        self.command(|c, out| c.send_pong(payload, out)).await
    }

    /// Starts the closing handshake with `code` and `reason`; keep calling
    /// [`recv_event`](Self::recv_event) until it returns `None` to complete it (the close
    /// deadline bounds the wait).
    pub async fn close(&mut self, code: CloseCode, reason: &str) -> Result<(), Error<T::Error>> {
        let now = self.clock.now();
        self.command(|c, out| c.close(code, reason, out, now)).await
    }

    /// The connection (state, close frames, role).
    pub fn connection(&self) -> &Connection {
        self.driver.connection()
    }

    /// The transport.
    pub fn get_ref(&self) -> &T {
        &self.io
    }

    /// The transport, mutably (reading or writing it directly corrupts the stream).
    pub fn get_mut(&mut self) -> &mut T {
        &mut self.io
    }

    /// The transport back, to close it (what is not yet written is dropped).
    pub fn into_inner(self) -> T {
        self.io
    }

    /// Sends a whole message: one frame if it fits the write buffer, fragments otherwise.
    /// `text` is `payload` as text, for a text message.
    async fn send_message(
        &mut self,
        kind: MessageKind,
        payload: &[u8],
        text: Option<&str>,
    ) -> Result<(), Error<T::Error>> {
        let whole = self.driver.connection().encoded_len(payload.len());
        if whole <= self.driver.output_capacity() {
            return self
                .command(|c, out| match text {
                    Some(text) => c.send_text(text, out),
                    None => c.send_binary(payload, out),
                })
                .await;
        }
        // Larger than the write buffer: one frame still, its payload streamed through the
        // buffer behind the header (masked piece by piece for a client).
        let key = match self.driver.streamed_header(kind, payload.len()) {
            Err(UsageError::BufferTooSmall { .. }) if self.driver.has_output() => {
                self.flush().await?;
                self.driver.streamed_header(kind, payload.len())?
            }
            result => result?,
        };
        let mut offset = 0;
        while offset < payload.len() {
            if self.driver.output_room() == 0 {
                self.flush().await?;
            }
            offset += self.driver.push_payload(&payload[offset..], key, offset);
        }
        self.flush().await
    }

    /// Runs `command` with the write buffer's room (writing what is queued first if it does
    /// not fit), then writes everything.
    async fn command(
        &mut self,
        mut command: impl FnMut(&mut Connection, &mut [u8]) -> Result<crate::Written, UsageError>,
    ) -> Result<(), Error<T::Error>> {
        match self.driver.command(&mut command) {
            Err(UsageError::BufferTooSmall { .. }) if self.driver.has_output() => {
                self.flush().await?;
                self.driver.command(&mut command)?;
            }
            result => result?,
        }
        self.flush().await
    }

    /// Writes everything queued, running deadlines that fall due meanwhile.
    async fn flush(&mut self) -> Result<(), Error<T::Error>> {
        self.run(|driver, now| driver.flush_step(now)).await
    }

    /// Runs a driver loop, doing the I/O each step asks for.
    async fn run<R>(
        &mut self,
        mut step: impl FnMut(&mut Driver<Fixed<'b>>, Instant) -> Step<Result<R, Error<T::Error>>>,
    ) -> Result<R, Error<T::Error>> {
        loop {
            let now = self.clock.now();
            match step(&mut self.driver, now) {
                Step::Ready(result) => return result,
                Step::Io(Want::Write) => self.write().await?,
                Step::Io(Want::Read { deadline }) => self.read(deadline).await?,
                Step::Io(Want::Shutdown) => {
                    // embedded-io has no shutdown: the transport closes when it is dropped.
                    let _flushed = self.io.flush().await;
                    self.driver.shut_down();
                }
            }
        }
    }

    /// Writes once, bounded by the next deadline; flushes the transport once everything is
    /// written.
    async fn write(&mut self) -> Result<(), Error<T::Error>> {
        let deadline = self.driver.poll_timeout();
        let written = until(&self.clock, deadline, self.io.write(self.driver.output())).await;
        match written {
            None => self.driver.write_stalled(self.clock.now()),
            Some(Ok(0)) => {
                self.driver.on_transport_error();
                return Err(Error::Closed);
            }
            Some(Ok(n)) => {
                self.driver.wrote(n);
                if !self.driver.has_output() {
                    if let Err(e) = self.io.flush().await {
                        self.driver.on_transport_error();
                        return Err(Error::Io(e));
                    }
                }
            }
            Some(Err(e)) => {
                self.driver.on_transport_error();
                return Err(Error::Io(e));
            }
        }
        Ok(())
    }

    /// Reads once into the read buffer, waiting no longer than `deadline`.
    async fn read(&mut self, deadline: Option<Instant>) -> Result<(), Error<T::Error>> {
        let read = until(&self.clock, deadline, self.io.read(self.driver.input_space())).await;
        match read {
            // The deadline passed: the next step runs it.
            None => {}
            Some(Ok(0)) => self.driver.read_eof(),
            Some(Ok(n)) => self.driver.filled(n),
            Some(Err(e)) => {
                self.driver.on_transport_error();
                return Err(Error::Io(e));
            }
        }
        Ok(())
    }
}
