//! The tokio adapter (feature `tokio`): a WebSocket over any `AsyncRead + AsyncWrite + Unpin`.
//!
//! ```no_run
//! # async fn run() -> Result<(), wsmachine::AdapterError> {
//! use wsmachine::{tokio as ws, Incoming, Outgoing};
//!
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:9001").await?;
//! let (tcp, _) = listener.accept().await?;
//! let mut socket = ws::accept(tcp).await?;
//! while let Some(incoming) = socket.recv().await? {
//!     match incoming {
//!         Incoming::Text(text) => socket.send(Outgoing::Text(text)).await?,
//!         Incoming::Binary(data) => socket.send(Outgoing::Binary(data)).await?,
//!         _ => {}
//!     }
//! }
//! # Ok(()) }
//! ```
//!
//! # Design
//!
//! The opening handshake, and then the [`WebSocket`], run **in the caller's task**, as in
//! tokio-tungstenite and fastwebsockets: no task is spawned and no channel sits between the
//! application and the stream.
//!
//! - **Receiving.** [`WebSocket::recv`] (or the `Stream` impl) first writes what is owed (a
//!   pong, the reply to a close, messages fed to the `Sink`), then decodes the next item
//!   from the bytes already read, and reads only when they hold none. Pings and closes are
//!   answered, and keepalive, pong, idle and close deadlines run (sleeping with
//!   `tokio::time` until [`Connection::poll_timeout`]), while a task waits in `recv`: keep
//!   one there, as with any WebSocket library that answers pings by itself.
//! - **Sending and backpressure.** [`WebSocket::send`] returns once the message is written
//!   to the stream, so a peer that reads slowly slows the sender and nothing piles up. The
//!   `Sink` impl batches: `start_send` encodes behind what is queued, `poll_ready` writes only
//!   once [`WRITE_BATCH`] bytes wait, `poll_flush` writes everything.
//! - **Idle memory.** The read buffer is allocated when a read is attempted and freed when
//!   the stream has nothing to give and no partial frame is buffered; the output buffer is
//!   freed once written. Neither is zeroed: reads go into uninitialized capacity (tokio's
//!   `read_buf`), and the read buffer starts at 4 KiB and grows, up to
//!   [`Config::receive_buffer_size`], only as frames need. An idle connection holds the
//!   [`WebSocket`] (about 740 bytes, the [`Connection`] inline) in the application's task,
//!   and no buffer.
//! - **Split halves.** [`WebSocket::split`] hands the stream and the connection to a
//!   spawned **connection task** that talks to a [`ReadHalf`] through a bounded channel and
//!   to a [`WriteHalf`] through a queue (a lock taken once per message by the writer and once
//!   per batch by the task), so the halves work from different tasks. A shared frame
//!   ([`Outgoing::Shared`](crate::Outgoing::Shared)) for an idle connection is written at
//!   once by the writer instead (one send, no wake of the task). The writer's queue is bounded in bytes ([`Config::send_queue`], 2 MiB by default):
//!   [`WriteHalf::send`] waits for room, [`WriteHalf::try_send`] never waits and, once the
//!   queue is full, drops the message or closes the connection with 1008 as configured. The
//!   task takes queued messages until a batch ([`WRITE_BATCH`]) waits to be written, and
//!   writes them in one vectored write; it stops reading while
//!   [`RECEIVE_QUEUE`] items wait for the reader, so TCP pushes back on the peer. The task
//!   decodes the next message only when the reader waits for one, and only after taking
//!   what the writer queued before that: a reply to a message goes out before the task looks
//!   at the bytes after it. Keep a reader running, or drop the [`ReadHalf`] to let the task
//!   read on its own.
//! - **Deadlines.** The handshake deadline (10 s unless configured) bounds `accept` and
//!   `connect`.
//! - **Fairness.** Besides the unit of tokio's cooperative budget the stream charges per read
//!   or write, the adapter charges one per 8 KiB moved, so a connection streaming large
//!   messages yields its worker thread after about a mebibyte rather than after 128 reads of
//!   any size, and other connections' small messages wait less behind it.
//! - **Public servers.** [`Listener`] accepts with limits on handshakes in progress and on
//!   open connections (503 past it), and survives running out of file descriptors.
//!
//! Dropping the [`WebSocket`] (or both halves) closes the connection with 1000 if it is
//! still open; a spawned task writes what was queued and finishes the closing handshake.
//!
//! # Cancel safety
//!
//! - [`WebSocket::recv`], [`WebSocket::flush`], [`ReadHalf::recv`] and the `Stream` impls
//!   are cancel-safe: an item is decoded (or taken from the queue) only when it is returned,
//!   and bytes being written stay queued.
//! - [`WebSocket::send`] and [`WriteHalf::send`] are not. Cancelled while earlier bytes
//!   are still written (or, for a half, while waiting for room in the queue), the message is
//!   dropped; once encoded, a [`WebSocket`]'s message goes out with the next `recv`, `send`
//!   or `flush`. To `select!` on sending, use the `Sink` impls (`poll_ready`, then
//!   `start_send`), or wait with [`WriteHalf::ready`] (cancel-safe) and then call
//!   [`WriteHalf::try_send`].
//! - [`accept`], [`accept_with`], [`connect`] and [`connect_url`] are not: cancelling them
//!   abandons the handshake and drops the stream.

mod halves;
mod handshake;
mod listener;
mod pump;
mod socket;
mod task;

use alloc::boxed::Box;

use ::tokio::io::{AsyncRead, AsyncWrite};
use ::tokio::net::TcpStream;
use ::tokio::time::Instant as TokioInstant;

pub use self::halves::{ReadHalf, WriteHalf, RECEIVE_QUEUE};
pub use self::listener::{Accepted, Listener, Pending};
pub use self::socket::{WebSocket, WRITE_BATCH};

use self::handshake::handshake;
use super::clock::{os_seed, Clock};
use super::driver::{decide_once, HeapDriver as Driver};
use super::error::AdapterError as Error;
use super::owned::{Decision, HttpResponse};
use super::url::WsUrl;
use crate::connection::config::Config;
use crate::connection::Connection;
use crate::handshake::{ClientRequest, Request};

/// Server: answers the upgrade request on `stream`, accepting any request, with
/// [`Config::new`] and a 10 s handshake deadline.
///
/// Next: [`WebSocket::recv`] and [`WebSocket::send`], or [`WebSocket::split`].
pub async fn accept<S>(stream: S) -> Result<WebSocket<S>, Error>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    accept_with(stream, Config::new(), |_| Decision::accept()).await
}

/// Server: reads the upgrade request on `stream` and hands it to `decide`, which inspects it
/// (path, headers, `Origin`, offered subprotocols) and accepts or rejects it.
///
/// A configuration without a handshake deadline gets 10 s. An invalid request is answered
/// with the right HTTP error and fails with [`Error::Protocol`]; a rejection is sent, the
/// stream closed, and [`Error::Rejected`] returned. Bytes the client sent right after its
/// request are kept for [`WebSocket::recv`].
pub async fn accept_with<S, F>(stream: S, config: Config, decide: F) -> Result<WebSocket<S>, Error>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    F: FnOnce(&Request<'_>) -> Decision + Send,
{
    let clock = Clock::new(TokioInstant::now());
    let conn = Connection::server(config, clock.instant(TokioInstant::now()));
    let mut decide = decide_once(decide);
    // The handshake's state (the stream, the connection, the buffers) lives on the heap
    // while it runs, so the caller's future stays small once it is over: it matters for the
    // memory of a task that holds an idle connection.
    let handshake = handshake(stream, Driver::new(conn), clock, &mut decide);
    let (io, _) = Box::pin(handshake).await?;
    Ok(WebSocket::new(io))
}

/// Client: sends the upgrade `request` on `stream` (already connected, TLS already set up)
/// and waits for the server's answer, with a client seed from the operating system.
///
/// Returns the connection and the server's `101` response. A refusal is
/// [`Error::Refused`] with the server's response (status, headers, body start); an invalid
/// answer is [`Error::Protocol`]. Bytes the server sent right after its response are kept.
pub async fn connect<S>(
    stream: S,
    request: &ClientRequest<'_>,
    config: Config,
) -> Result<(WebSocket<S>, HttpResponse), Error>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let clock = Clock::new(TokioInstant::now());
    let now = clock.instant(TokioInstant::now());
    let conn = Connection::client(config, request, os_seed()?, now)?;
    let mut decide = |_: &Request<'_>| Decision::accept();
    let handshake = handshake(stream, Driver::new(conn), clock, &mut decide);
    // On the heap while it runs, as in `accept_with`.
    let (io, response) = Box::pin(handshake).await?;
    // A client's handshake ends with the server's response, or fails.
    let response = response.ok_or(Error::Closed)?;
    Ok((WebSocket::new(io), response))
}

/// Server: a [`WebSocket`] over `stream` whose opening handshake was done elsewhere (over
/// HTTP/2 as RFC 8441 describes, or by a framework that answered the upgrade): frames flow
/// from the start, as with [`Connection::open_server`].
pub fn open_server<S>(stream: S, config: Config) -> WebSocket<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let clock = Clock::new(TokioInstant::now());
    let conn = Connection::open_server(config, clock.instant(TokioInstant::now()));
    open_socket(stream, Driver::new(conn), clock)
}

/// Client: a [`WebSocket`] over `stream` whose opening handshake was done elsewhere (an
/// HTTP/2 extended CONNECT, RFC 8441), with masking keys seeded from the operating system;
/// as [`Connection::open_client`].
pub fn open_client<S>(stream: S, config: Config) -> Result<WebSocket<S>, Error>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let clock = Clock::new(TokioInstant::now());
    let conn = Connection::open_client(config, os_seed()?, clock.instant(TokioInstant::now()));
    Ok(open_socket(stream, Driver::new(conn), clock))
}

/// A [`WebSocket`] over `stream` for a connection whose opening handshake the driver has
/// already done (the axum integration answers the request itself, then hands over the
/// upgraded stream).
pub(crate) fn open_socket<S>(stream: S, driver: Driver, clock: Clock<TokioInstant>) -> WebSocket<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    WebSocket::new(pump::Io { stream, driver, clock, sleep: None, now: None })
}

/// Client: connects a TCP stream to a `ws://host:port/path` URL and performs the handshake
/// with [`connect`].
pub async fn connect_url(url: &str, config: Config) -> Result<(WebSocket, HttpResponse), Error> {
    let parsed =
        WsUrl::parse(url).filter(|u| !u.secure).ok_or_else(|| Error::InvalidUrl(url.into()))?;
    let tcp = TcpStream::connect(&parsed.address).await?;
    tcp.set_nodelay(true)?;
    connect(tcp, &ClientRequest::new(&parsed.host, &parsed.target), config).await
}
