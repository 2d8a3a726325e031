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
//!   spawned **connection task** that talks to a [`ReadHalf`] and a [`WriteHalf`] through
//!   two bounded channels, so the halves work from different tasks with no lock between
//!   them. The writer's channel holds at most [`SEND_QUEUE`] messages (the task takes the
//!   next only once the previous ones are written), and the task stops reading while
//!   [`RECEIVE_QUEUE`] items wait for the reader, so TCP pushes back on the peer. The task
//!   decodes the next message only when the reader waits for one, and only after taking
//!   what the writer queued before that: a reply to a message goes out before the task looks
//!   at the bytes after it. Keep a reader running, or drop the [`ReadHalf`] to let the task
//!   read on its own.
//! - **Deadlines.** The handshake deadline (10 s unless configured) bounds `accept` and
//!   `connect`.
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

use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::sync::Arc;
use core::future::{poll_fn, Future};
use core::pin::Pin;
use core::sync::atomic::{AtomicBool, Ordering};
use core::task::{Context, Poll};
use std::io::{self, IoSlice};

use ::tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use ::tokio::net::TcpStream;
use ::tokio::time::{sleep_until, timeout_at, Instant as TokioInstant, Sleep};
use futures_channel::mpsc;
use futures_core::Stream;
use futures_sink::Sink;
use futures_util::task::AtomicWaker;

use crate::adapter::{adapter_config, decide_once, handshake_outcome, os_seed, Clock};
use crate::driver::{Driver, HttpResponse, WsUrl};
use crate::{ClientRequest, CloseCode, Config, Connection, Decision, Incoming, Outgoing, Request};

pub use crate::adapter::AdapterError as Error;

/// How many outgoing messages may wait for the connection task (beyond the one it is
/// writing); past that, sending waits.
pub const SEND_QUEUE: usize = 8;

/// How many received items may wait for the reader; past that, the connection task stops
/// reading from the stream.
pub const RECEIVE_QUEUE: usize = 8;

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
    let conn = Connection::server(adapter_config(config), clock.instant(TokioInstant::now()));
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
    let conn = Connection::client(adapter_config(config), request, os_seed()?, now)?;
    let mut decide = |_: &Request<'_>| Decision::accept();
    let handshake = handshake(stream, Driver::new(conn), clock, &mut decide);
    // On the heap while it runs, as in `accept_with`.
    let (io, response) = Box::pin(handshake).await?;
    // A client's handshake ends with the server's response, or fails.
    let response = response.ok_or(Error::Closed)?;
    Ok((WebSocket::new(io), response))
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

/// An open WebSocket over `S`, driven in the task that calls it: [`recv`](Self::recv) reads,
/// decodes, answers pings and closes and runs the deadlines; [`send`](Self::send) encodes
/// and writes. Receive as a `Stream`, send as a `Sink`, or [`split`](Self::split) it into
/// halves for different tasks.
pub struct WebSocket<S = TcpStream>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    /// `None` only once the connection was handed to a task (by `split` or `drop`).
    io: Option<Io<S>>,
}

impl<S> core::fmt::Debug for WebSocket<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let state = self.io.as_ref().map(|io| io.driver.connection().state());
        f.debug_struct("WebSocket").field("state", &state).finish_non_exhaustive()
    }
}

/// The receiving half of a [`WebSocket`].
#[derive(Debug)]
pub struct ReadHalf {
    incoming: mpsc::Receiver<Result<Incoming, Error>>,
    shared: Arc<Shared>,
}

/// The sending half of a [`WebSocket`].
///
/// Dropping it starts the closing handshake with 1000 if the connection is still open (the
/// [`ReadHalf`] then sees the peer's close and the end): keep it while the connection should
/// stay open.
#[derive(Debug)]
pub struct WriteHalf {
    outgoing: mpsc::Sender<Outgoing>,
    shared: Arc<Shared>,
}

/// What the halves and the connection task share, lock-free.
#[derive(Debug, Default)]
struct Shared {
    /// Set by the connection task once no more data can be sent.
    closing: AtomicBool,
    /// Set by the reader when it waits for an item; the task decodes the next one only then.
    wanted: AtomicBool,
    /// The connection task, to wake when the reader wants an item.
    task: AtomicWaker,
}

/// How many bytes [`WebSocket`]'s `Sink` buffers before `poll_ready` writes them out: small
/// messages fed one after another go out in one write.
pub const WRITE_BATCH: usize = 16 * 1024;

impl<S> WebSocket<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    fn new(io: Io<S>) -> Self {
        Self { io: Some(io) }
    }

    /// Receives the next whole message, ping, pong or close frame, writing what is owed
    /// first (replies to pings and closes, messages fed to the `Sink`).
    ///
    /// `Ok(None)` once the connection is over (after the closing handshake, or after an
    /// error was returned and the connection then ended). A protocol violation, a missed
    /// deadline or a transport failure is returned once as an error. Cancel-safe: a
    /// message is decoded only when it is returned.
    pub async fn recv(&mut self) -> Result<Option<Incoming>, Error> {
        poll_fn(|cx| self.poll_recv(cx)).await.transpose()
    }

    /// Sends `message`: writes what is owed, then the message, and returns once it is
    /// written to the stream (so a peer that reads slowly slows the sender: nothing piles
    /// up). Fails with [`Error::Closed`] once a close was sent or received, and with
    /// [`Error::Usage`] for an invalid close code or an oversized control payload.
    ///
    /// Not cancel-safe: cancelled while earlier bytes are written, the message is dropped;
    /// cancelled later, its remaining bytes go out with the next `recv`, `send` or `flush`.
    pub async fn send(&mut self, message: Outgoing) -> Result<(), Error> {
        message.check()?;
        self.flush().await?;
        self.queue(message)?;
        self.flush().await
    }

    /// Writes everything queued (by the `Sink`, or by a cancelled `send`). Cancel-safe.
    pub async fn flush(&mut self) -> Result<(), Error> {
        poll_fn(|cx| self.poll_write_all(cx, 0)).await
    }

    /// Starts the closing handshake with `code` and `reason` (at most 123 bytes); then
    /// [`recv`](Self::recv) until `Ok(None)` to see the peer's close and the end.
    pub async fn close(&mut self, code: CloseCode, reason: &str) -> Result<(), Error> {
        self.send(Outgoing::Close(code, reason.into())).await
    }

    /// Splits the connection into a receiving and a sending half, each usable from its own
    /// task without a lock: a spawned connection task then owns the stream (see the module
    /// docs).
    pub fn split(mut self) -> (ReadHalf, WriteHalf) {
        match self.io.take() {
            Some(io) => Task::new(io).spawn(),
            // Unreachable (the connection is taken only here and in `drop`); halves of a
            // closed connection are the honest answer.
            None => Task::<S>::closed_halves(),
        }
    }

    /// Encodes `message` after what is queued.
    fn queue(&mut self, message: Outgoing) -> Result<(), Error> {
        message.check()?;
        let io = self.io.as_mut().ok_or(Error::Closed)?;
        if io.closing() {
            return Err(Error::Closed);
        }
        let now = io.fresh_now();
        let vectored = io.stream.is_write_vectored();
        io.driver.send_owned(message, now, vectored)?;
        Ok(())
    }

    /// Writes queued bytes until at most `keep` remain, running due deadlines meanwhile.
    fn poll_write_all(&mut self, cx: &mut Context<'_>, keep: usize) -> Poll<Result<(), Error>> {
        let Some(io) = self.io.as_mut() else { return Poll::Ready(Ok(())) };
        loop {
            if io.driver.output_len() <= keep {
                return Poll::Ready(Ok(()));
            }
            io.poll_write_out(cx)?;
            if io.driver.output_len() <= keep {
                return Poll::Ready(Ok(()));
            }
            // A peer that stops reading must not stall the deadlines (keepalive, close).
            if !io.poll_timer(cx)? {
                return Poll::Pending;
            }
        }
    }

    fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Incoming, Error>>> {
        let Some(io) = self.io.as_mut() else { return Poll::Ready(None) };
        io.now = None;
        loop {
            if let Err(e) = io.poll_write_out(cx) {
                return Poll::Ready(Some(Err(e.into())));
            }
            match io.poll_timer(cx) {
                Ok(true) => continue,
                Ok(false) => {}
                Err(e) => return Poll::Ready(Some(Err(e.into()))),
            }
            if io.driver.is_closed() || io.read_done {
                // Over: the last bytes (a close frame) go out, then the transport closes.
                if !io.driver.output().is_empty() {
                    return Poll::Pending;
                }
                if !io.shut_down {
                    // RFC 6455 §7.1.1: the side the connection says closes the transport
                    // does so now; the other side saw the end of the stream.
                    if Pin::new(&mut io.stream).poll_shutdown(cx).is_pending() {
                        return Poll::Pending;
                    }
                    io.shut_down = true;
                }
                io.driver.release_buffers();
                return Poll::Ready(None);
            }
            let now = io.now();
            match io.driver.next_incoming(now) {
                Ok(Some(item)) => return Poll::Ready(Some(Ok(item))),
                Ok(None) => {}
                Err(e) => {
                    // The close frame that answers the failure goes out now if it can.
                    let _unsent = io.poll_write_out(cx);
                    return Poll::Ready(Some(Err(e.into())));
                }
            }
            match io.poll_read(cx) {
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(e)) => return Poll::Ready(Some(Err(e))),
                Poll::Pending => {
                    // Going idle: hold no buffer while waiting.
                    io.driver.release_buffers();
                    return Poll::Pending;
                }
            }
        }
    }
}

impl<S> Drop for WebSocket<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    /// An open connection is closed with 1000; a task finishes the closing handshake (and
    /// writes whatever was still queued), when there is a tokio runtime to run it on.
    fn drop(&mut self) {
        let Some(mut io) = self.io.take() else { return };
        if io.shut_down {
            return;
        }
        let Ok(runtime) = ::tokio::runtime::Handle::try_current() else { return };
        if io.driver.connection().state() == crate::State::Open {
            let now = io.fresh_now();
            let _closing = io.driver.close(CloseCode::NORMAL, "", now);
        }
        runtime.spawn(Task::new(io));
    }
}

impl<S> Stream for WebSocket<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Item = Result<Incoming, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.poll_recv(cx)
    }
}

impl<S> Sink<Outgoing> for WebSocket<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Error = Error;

    /// Ready while less than [`WRITE_BATCH`] bytes are queued (writing them out otherwise).
    fn poll_ready(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.poll_write_all(cx, WRITE_BATCH - 1)
    }

    /// Encodes the message behind what is queued; `poll_flush` writes it.
    fn start_send(mut self: Pin<&mut Self>, item: Outgoing) -> Result<(), Error> {
        self.queue(item)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.poll_write_all(cx, 0)
    }

    /// Starts the closing handshake with 1000 (if it has not started) and writes it; read
    /// on to see the peer's close.
    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        if let Some(io) = self.io.as_mut() {
            if !io.closing() {
                let now = io.fresh_now();
                let _closing = io.driver.close(CloseCode::NORMAL, "", now);
            }
        }
        self.poll_write_all(cx, 0)
    }
}

impl ReadHalf {
    /// Receives the next item; as [`WebSocket::recv`]. Cancel-safe.
    pub async fn recv(&mut self) -> Result<Option<Incoming>, Error> {
        poll_fn(|cx| self.poll_item(cx)).await.transpose()
    }

    fn poll_item(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Incoming, Error>>> {
        let item = Pin::new(&mut self.incoming).poll_next(cx);
        if item.is_pending() && !self.shared.wanted.swap(true, Ordering::AcqRel) {
            self.shared.task.wake();
        }
        item
    }
}

impl WriteHalf {
    /// Waits until a message can be queued without waiting. Cancel-safe.
    pub async fn ready(&mut self) -> Result<(), Error> {
        poll_fn(|cx| self.poll_ready_inner(cx)).await
    }

    /// Queues `message` if there is room right now (after [`ready`](Self::ready)); fails
    /// with an I/O error of kind `WouldBlock` when the queue is full.
    pub fn try_send(&mut self, message: Outgoing) -> Result<(), Error> {
        self.check_open()?;
        message.check()?;
        self.outgoing.try_send(message).map_err(|e| {
            if e.is_disconnected() {
                Error::Closed
            } else {
                Error::Io(io::ErrorKind::WouldBlock.into())
            }
        })
    }

    /// Queues `message`, waiting for room while [`SEND_QUEUE`] messages wait. Fails with
    /// [`Error::Closed`] once a close was sent or received (or the connection ended), and with
    /// [`Error::Usage`] for an invalid close code or an oversized control payload. A
    /// queued message is written in order; one queued just as the connection closes may be
    /// dropped. Not cancel-safe.
    pub async fn send(&mut self, message: Outgoing) -> Result<(), Error> {
        self.ready().await?;
        self.try_send(message)
    }

    /// Starts the closing handshake with `code` and `reason` (at most 123 bytes).
    pub async fn close(&mut self, code: CloseCode, reason: &str) -> Result<(), Error> {
        let close = Outgoing::Close(code, reason.into());
        close.check()?;
        self.send(close).await
    }

    fn check_open(&self) -> Result<(), Error> {
        if self.shared.closing.load(Ordering::Acquire) {
            Err(Error::Closed)
        } else {
            Ok(())
        }
    }

    fn poll_ready_inner(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.check_open()?;
        self.outgoing.poll_ready(cx).map_err(|_| Error::Closed)
    }
}

impl Stream for ReadHalf {
    type Item = Result<Incoming, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.poll_item(cx)
    }
}

impl Sink<Outgoing> for WriteHalf {
    type Error = Error;

    fn poll_ready(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.poll_ready_inner(cx)
    }

    fn start_send(mut self: Pin<&mut Self>, item: Outgoing) -> Result<(), Error> {
        self.check_open()?;
        item.check()?;
        self.outgoing.start_send(item).map_err(|_| Error::Closed)
    }

    /// Ready once queued messages are handed to the connection task (which writes them in
    /// order, as fast as the peer reads).
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        Pin::new(&mut self.outgoing).poll_flush(cx).map_err(|_| Error::Closed)
    }

    /// Starts the closing handshake with 1000 (if it has not started) and stops sending.
    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        if !self.shared.closing.load(Ordering::Acquire) {
            match self.outgoing.poll_ready(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(())) => {
                    let _gone = self.outgoing.start_send(Outgoing::close(CloseCode::NORMAL));
                }
                Poll::Ready(Err(_)) => {}
            }
        }
        self.outgoing.close_channel();
        Poll::Ready(Ok(()))
    }
}

/// The stream and the driver, with what moving bytes between them needs: used by a
/// [`WebSocket`] in its caller's task, and by the connection task of split halves.
struct Io<S> {
    stream: S,
    driver: Driver,
    clock: Clock<TokioInstant>,
    sleep: Option<Pin<Box<Sleep>>>,
    /// Whether the stream was shut down.
    shut_down: bool,
    /// Whether reading is over (end of stream, or the stream failed).
    read_done: bool,
    /// The time read during this poll, if it was.
    now: Option<crate::Instant>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Io<S> {
    /// The time, read once per poll (reading the clock is a measurable part of a small
    /// message's cost); [`fresh_now`](Self::fresh_now) reads it again.
    fn now(&mut self) -> crate::Instant {
        match self.now {
            Some(now) => now,
            None => self.fresh_now(),
        }
    }

    fn fresh_now(&mut self) -> crate::Instant {
        let now = self.clock.instant(TokioInstant::now());
        self.now = Some(now);
        now
    }

    /// Whether no more data may be sent (a close was sent or received, or it is over).
    fn closing(&self) -> bool {
        let conn = self.driver.connection();
        conn.sent_close().is_some() || conn.received_close().is_some() || self.driver.is_closed()
    }

    /// Fires due deadlines, and arms the sleep for the next one. `Ok(true)` if one fired.
    fn poll_timer(&mut self, cx: &mut Context<'_>) -> Result<bool, crate::Error> {
        let Some(deadline) = self.driver.poll_timeout() else {
            self.sleep = None;
            return Ok(false);
        };
        // Deadlines are checked against the clock itself, never against a time read
        // earlier in this poll: a sleep that fired must find its deadline passed.
        let now = self.fresh_now();
        if deadline > now {
            let at = self.clock.at(deadline);
            let sleep = match &mut self.sleep {
                Some(sleep) => {
                    if sleep.deadline() != at {
                        sleep.as_mut().reset(at);
                    }
                    sleep
                }
                None => self.sleep.insert(Box::pin(sleep_until(at))),
            };
            if sleep.as_mut().poll(cx).is_pending() {
                return Ok(false);
            }
        }
        let now = self.fresh_now();
        self.driver.on_timeout(now)?;
        // Progress only if the deadline moved, so a clock that rounds cannot spin.
        Ok(self.driver.poll_timeout() != Some(deadline))
    }

    /// Writes pending output until the stream would block. `Ok(true)` if bytes were
    /// written; on a failure the connection is over (and the error is returned once).
    fn poll_write_out(&mut self, cx: &mut Context<'_>) -> Result<bool, io::Error> {
        let mut progress = false;
        while !self.driver.output().is_empty() {
            let stream = Pin::new(&mut self.stream);
            let [head, tail, after] = self.driver.output_parts();
            let written = if tail.is_empty() {
                stream.poll_write(cx, self.driver.output())
            } else {
                // A large message's payload, after its header, not copied (there is a tail
                // only when the stream takes vectored writes).
                let parts = [IoSlice::new(head), IoSlice::new(tail), IoSlice::new(after)];
                stream.poll_write_vectored(cx, &parts)
            };
            match written {
                Poll::Ready(Ok(0)) => {
                    return Err(self.transport_failed(io::ErrorKind::WriteZero.into()))
                }
                Poll::Ready(Ok(n)) => {
                    self.driver.wrote(n);
                    progress = true;
                }
                Poll::Ready(Err(e)) => return Err(self.transport_failed(e)),
                Poll::Pending => return Ok(progress),
            }
        }
        Ok(progress)
    }

    /// The stream failed: the connection is over, nothing more is read or written.
    fn transport_failed(&mut self, e: io::Error) -> io::Error {
        let now = self.now();
        self.driver.on_transport_error(now);
        self.read_done = true;
        e
    }

    /// Reads more input. `Ready(Ok(()))` after bytes or the end of the stream (whose
    /// failure, if it ends the connection too early, is the error).
    fn poll_read(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        let stream = &mut self.stream;
        // The rest of a large frame goes straight into the message it belongs to (never
        // past the frame's end); anything else into the read buffer.
        let direct = self.driver.direct_read(|buf, limit| {
            let mut frame_rest = (&mut *stream).take(limit as u64);
            poll_read_vec(&mut frame_rest, cx, buf)
        });
        let read = match direct {
            Some(read) => read,
            None => self.driver.read_with(|buf| poll_read_vec(stream, cx, buf)),
        };
        match read {
            Poll::Ready(Ok(0)) => {
                self.read_done = true;
                let now = self.now();
                Poll::Ready(self.driver.on_eof(now).map_err(Error::from))
            }
            Poll::Ready(Ok(_)) => Poll::Ready(Ok(())),
            Poll::Ready(Err(e)) => Poll::Ready(Err(Error::Io(self.transport_failed(e)))),
            Poll::Pending => Poll::Pending,
        }
    }
}

/// How many rounds the connection task makes per poll before yielding to other tasks.
const ROUNDS: usize = 32;

/// The connection task of split halves (and of a dropped [`WebSocket`] finishing its
/// closing handshake): owns the stream and the driver, and talks to the halves through two
/// bounded channels.
struct Task<S> {
    io: Io<S>,
    /// Messages from the writer; `None` once every writer is gone.
    commands: Option<mpsc::Receiver<Outgoing>>,
    /// Items for the reader; `None` once the reader is gone.
    incoming: Option<mpsc::Sender<Result<Incoming, Error>>>,
    /// Items waiting for room in the reader's queue.
    pending: VecDeque<Result<Incoming, Error>>,
    shared: Arc<Shared>,
    /// Whether the writer's queue was found empty this round.
    commands_idle: bool,
    /// Whether the reader wanted an item when this round started, before the writer's queue
    /// was looked at.
    reader_waits: bool,
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send + 'static> Task<S> {
    fn new(io: Io<S>) -> Self {
        Self {
            io,
            commands: None,
            incoming: None,
            pending: VecDeque::new(),
            shared: Arc::new(Shared::default()),
            commands_idle: true,
            reader_waits: false,
        }
    }

    /// Spawns the connection task and returns the halves that talk to it.
    fn spawn(mut self) -> (ReadHalf, WriteHalf) {
        let (command_tx, command_rx) = mpsc::channel(SEND_QUEUE.saturating_sub(1));
        let (incoming_tx, incoming_rx) = mpsc::channel(RECEIVE_QUEUE.saturating_sub(1));
        self.commands = Some(command_rx);
        self.incoming = Some(incoming_tx);
        self.update_closing();
        let shared = Arc::clone(&self.shared);
        ::tokio::spawn(self);
        (
            ReadHalf { incoming: incoming_rx, shared: Arc::clone(&shared) },
            WriteHalf { outgoing: command_tx, shared },
        )
    }

    /// Halves of a connection that is over: the reader sees the end, the writer
    /// [`Error::Closed`].
    fn closed_halves() -> (ReadHalf, WriteHalf) {
        let (outgoing, _) = mpsc::channel(0);
        let (_, incoming) = mpsc::channel(0);
        let shared = Arc::new(Shared::default());
        shared.closing.store(true, Ordering::Release);
        (ReadHalf { incoming, shared: Arc::clone(&shared) }, WriteHalf { outgoing, shared })
    }

    /// Reports `item` to the reader (or drops it if the reader is gone).
    fn report(&mut self, item: Result<Incoming, Error>) {
        if self.incoming.is_some() {
            self.pending.push_back(item);
        }
    }

    /// Marks the connection as no longer able to send, once a close is under way.
    fn update_closing(&mut self) {
        if self.io.closing() {
            self.shared.closing.store(true, Ordering::Release);
        }
    }

    /// Fires due deadlines. `true` if one fired.
    fn poll_timer(&mut self, cx: &mut Context<'_>) -> bool {
        match self.io.poll_timer(cx) {
            Ok(fired) => fired,
            Err(e) => {
                self.report(Err(e.into()));
                true
            }
        }
    }

    /// Writes pending output. `true` if bytes were written (or the stream failed).
    fn poll_write_out(&mut self, cx: &mut Context<'_>) -> bool {
        match self.io.poll_write_out(cx) {
            Ok(progress) => progress,
            Err(e) => {
                self.report(Err(Error::Io(e)));
                true
            }
        }
    }

    /// Takes the next message from the writer, once the output is written. `true` if one
    /// was taken.
    fn poll_commands(&mut self, cx: &mut Context<'_>) -> bool {
        self.commands_idle = false;
        if !self.io.driver.output().is_empty() {
            return false;
        }
        let Some(commands) = &mut self.commands else {
            self.commands_idle = true;
            return false;
        };
        match Pin::new(commands).poll_next(cx) {
            Poll::Ready(Some(message)) => {
                let now = self.io.now();
                // A message queued just before a close may find the connection closing;
                // the writer was told through `closing`, so it is dropped.
                let vectored = self.io.stream.is_write_vectored();
                let _refused = self.io.driver.send_owned(message, now, vectored);
                true
            }
            Poll::Ready(None) => {
                // Every writer is gone: close normally if nobody did.
                self.commands = None;
                let now = self.io.now();
                if self.io.driver.connection().state() == crate::State::Open {
                    let _closing = self.io.driver.close(CloseCode::NORMAL, "", now);
                }
                true
            }
            Poll::Pending => {
                self.commands_idle = true;
                false
            }
        }
    }

    /// Hands pending items to the reader. `false` while the reader's queue is full.
    fn poll_deliver(&mut self, cx: &mut Context<'_>) -> bool {
        while let Some(item) = self.pending.pop_front() {
            let Some(tx) = &mut self.incoming else {
                self.pending.clear();
                return true;
            };
            match tx.poll_ready(cx) {
                Poll::Ready(Ok(())) => {
                    let _gone = tx.start_send(item);
                }
                Poll::Ready(Err(_)) => {
                    self.incoming = None;
                    self.pending.clear();
                }
                Poll::Pending => {
                    self.pending.push_front(item);
                    return false;
                }
            }
        }
        true
    }

    /// Takes the next item from the buffered input, or reads more. `true` on progress.
    fn poll_receive(&mut self, cx: &mut Context<'_>) -> bool {
        if !self.poll_deliver(cx) {
            return false;
        }
        // Decode only when the reader waits for an item, and after taking what the writer
        // queued before it asked: an echo of a message goes out before a failure found in
        // the bytes after that message (the order a sequential recv/send loop would give).
        // With the output busy the writer's queue cannot be taken; decoding goes on then, so
        // two peers sending large messages to each other cannot deadlock.
        let reader_waits = self.incoming.is_none() || self.reader_waits;
        let writer_done = self.commands_idle || !self.io.driver.output().is_empty();
        if !reader_waits || !writer_done {
            return false;
        }
        let now = self.io.now();
        match self.io.driver.next_incoming(now) {
            Ok(Some(item)) => {
                self.shared.wanted.store(false, Ordering::Release);
                self.report(Ok(item));
                return true;
            }
            Ok(None) => {}
            Err(e) => {
                self.report(Err(e.into()));
                return true;
            }
        }
        if self.io.read_done || self.io.driver.is_closed() {
            self.io.driver.release_buffers();
            return false;
        }
        match self.io.poll_read(cx) {
            Poll::Ready(Ok(())) => true,
            Poll::Ready(Err(e)) => {
                self.report(Err(e));
                true
            }
            Poll::Pending => {
                self.io.driver.release_buffers();
                false
            }
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send + 'static> Future for Task<S> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        this.shared.task.register(cx.waker());
        this.io.now = None;
        for _ in 0..ROUNDS {
            // Read the reader's wish before the writer's queue: whatever the writer queued
            // before the reader asked is then seen by `poll_commands` below.
            this.reader_waits = this.shared.wanted.load(Ordering::Acquire);
            let mut progress = this.poll_timer(cx);
            progress |= this.poll_write_out(cx);
            progress |= this.poll_commands(cx);
            progress |= this.poll_receive(cx);
            this.update_closing();
            if this.io.driver.is_closed() && this.io.driver.output().is_empty() {
                if !this.io.shut_down {
                    // RFC 6455 §7.1.1: the side the connection says closes the transport
                    // does so now; the other side saw the end of the stream.
                    match Pin::new(&mut this.io.stream).poll_shutdown(cx) {
                        Poll::Pending => return Poll::Pending,
                        Poll::Ready(_) => this.io.shut_down = true,
                    }
                }
                if this.pending.is_empty() || this.incoming.is_none() {
                    return Poll::Ready(());
                }
                if !this.poll_deliver(cx) {
                    return Poll::Pending;
                }
                continue;
            }
            if !progress {
                // Going idle: hold no buffer while waiting.
                this.io.driver.release_buffers();
                return Poll::Pending;
            }
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

/// Runs the opening handshake in the caller's task.
async fn handshake<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    mut driver: Driver,
    clock: Clock<TokioInstant>,
    decide: &mut (dyn FnMut(&Request<'_>) -> Decision + Send),
) -> Result<(Io<S>, Option<HttpResponse>), Error> {
    let response = loop {
        write_out(&mut stream, &mut driver).await?;
        let now = clock.instant(TokioInstant::now());
        match driver.handshake(now, decide) {
            Ok(Some(result)) => {
                write_out(&mut stream, &mut driver).await?;
                match handshake_outcome(result) {
                    Ok(response) => break response,
                    Err(e) => {
                        let _gone = stream.shutdown().await;
                        return Err(e);
                    }
                }
            }
            Ok(None) => {}
            Err(e) => {
                let _unsent = write_out(&mut stream, &mut driver).await;
                let _gone = stream.shutdown().await;
                return Err(e.into());
            }
        }
        if driver.is_closed() {
            return Err(Error::Closed);
        }
        let deadline = driver.poll_timeout().map(|at| clock.at(at));
        let read = poll_fn(|cx| driver.read_with(|buf| poll_read_vec(&mut stream, cx, buf)));
        let read = match deadline {
            Some(at) => timeout_at(at, read).await.ok(),
            None => Some(read.await),
        };
        let now = clock.instant(TokioInstant::now());
        let step = match read {
            None => driver.on_timeout(now),
            Some(Ok(0)) => driver.on_eof(now),
            Some(Ok(_)) => Ok(()),
            Some(Err(e)) => {
                driver.on_transport_error(now);
                return Err(e.into());
            }
        };
        if let Err(e) = step {
            let _unsent = write_out(&mut stream, &mut driver).await;
            let _gone = stream.shutdown().await;
            return Err(e.into());
        }
    };
    let io =
        Io { stream, driver, clock, sleep: None, shut_down: false, read_done: false, now: None };
    Ok((io, response))
}

/// Reads from `stream` into `buf`'s spare capacity, which is not zeroed first (tokio's
/// `read_buf`; the `ReadBuf` it uses tracks what the read initialized).
fn poll_read_vec<S: AsyncRead + Unpin>(
    stream: &mut S,
    cx: &mut Context<'_>,
    buf: &mut alloc::vec::Vec<u8>,
) -> Poll<io::Result<usize>> {
    core::pin::pin!(stream.read_buf(buf)).poll(cx)
}

/// Writes the driver's pending output (used during the handshake).
async fn write_out<S: AsyncWrite + Unpin>(
    stream: &mut S,
    driver: &mut Driver,
) -> Result<(), Error> {
    while !driver.output().is_empty() {
        let n = stream.write(driver.output()).await?;
        if n == 0 {
            return Err(Error::Io(io::ErrorKind::WriteZero.into()));
        }
        driver.wrote(n);
    }
    stream.flush().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An idle connection should cost at most about 2 KiB: the [`WebSocket`] (which holds
    /// the `Connection` inline) in the application's task, and no buffers (they are
    /// released when idle).
    #[test]
    fn an_idle_websocket_is_small() {
        let size = core::mem::size_of::<WebSocket<TcpStream>>();
        assert!(size <= 768, "a WebSocket over TCP takes {size} bytes");
    }
}
