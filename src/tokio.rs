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
//! The opening handshake runs in the caller's task. Once it succeeds, a **connection task**
//! (spawned with `tokio::spawn`) owns the stream and the [`Connection`]: it moves bytes, sleeps
//! until [`Connection::poll_timeout`] with `tokio::time`, answers pings and closes, and talks
//! to the [`WebSocket`] through two bounded channels. So the halves from
//! [`WebSocket::split`] work from different tasks with no lock between them, and:
//!
//! - **Backpressure.** The task takes the next outgoing message only once the previous ones
//!   are written to the stream, and the outgoing channel holds at most
//!   [`SEND_QUEUE`] messages: when the peer reads slowly, [`WriteHalf::send`] waits instead of
//!   buffering without bound. Likewise the task stops reading from the stream while
//!   [`RECEIVE_QUEUE`] received items wait for the reader, and TCP pushes back on the peer.
//! - **Idle memory.** The read buffer is allocated when a read is attempted and freed when the
//!   stream has nothing to give and no partial frame is buffered; the output buffer is freed
//!   once written. Neither is zeroed: reads go into uninitialized capacity (tokio's
//!   `read_buf`), and the read buffer starts at 4 KiB and grows, up to
//!   [`Config::receive_buffer_size`], only as frames need. An idle connection holds the task (about 1.2 KiB, the [`Connection`]
//!   inline), its two channels and no buffer.
//! - **Order.** The task decodes the next message only when the reader waits for one, and
//!   only after taking what the writer queued before that: a reply to a message goes out
//!   before the task looks at the bytes after it. Control frames (pings, the peer's close)
//!   are therefore handled while someone calls `recv`; keep a reader running, or drop the
//!   [`ReadHalf`] to let the task read on its own.
//! - **Deadlines.** The handshake deadline (10 s unless configured) bounds `accept` and
//!   `connect`; keepalive, pong, idle and close deadlines run in the connection task.
//!
//! Dropping the [`WebSocket`] (or both halves) closes the connection with 1000 if it is
//! still open; the task finishes the closing handshake on its own.
//!
//! # Cancel safety
//!
//! - [`WebSocket::recv`] / [`ReadHalf::recv`] and the `Stream` impls are cancel-safe: an item
//!   is taken from the queue only when it is returned.
//! - [`WebSocket::send`] / [`WriteHalf::send`] are not: if cancelled while waiting for room in
//!   the queue, the message was not queued and is dropped. To `select!` on sending, wait with
//!   [`WriteHalf::ready`] (cancel-safe) and then call [`WriteHalf::try_send`], or use the
//!   `Sink` impl's `poll_ready`.
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
pub async fn accept<S>(stream: S) -> Result<WebSocket, Error>
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
pub async fn accept_with<S, F>(stream: S, config: Config, decide: F) -> Result<WebSocket, Error>
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
    let handshake = Task::handshake(stream, Driver::new(conn), clock, &mut decide);
    let (task, _) = Box::pin(handshake).await?;
    Ok(task.spawn())
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
) -> Result<(WebSocket, HttpResponse), Error>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let clock = Clock::new(TokioInstant::now());
    let now = clock.instant(TokioInstant::now());
    let conn = Connection::client(adapter_config(config), request, os_seed()?, now)?;
    let mut decide = |_: &Request<'_>| Decision::accept();
    let handshake = Task::handshake(stream, Driver::new(conn), clock, &mut decide);
    // On the heap while it runs, as in `accept_with`.
    let (task, response) = Box::pin(handshake).await?;
    // A client's handshake ends with the server's response, or fails.
    let response = response.ok_or(Error::Closed)?;
    Ok((task.spawn(), response))
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

/// An open WebSocket: receive with [`recv`](Self::recv) or as a `Stream`, send with
/// [`send`](Self::send) or as a `Sink`, or [`split`](Self::split) it into halves for
/// different tasks.
#[derive(Debug)]
pub struct WebSocket {
    reader: ReadHalf,
    writer: WriteHalf,
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

impl WebSocket {
    /// Receives the next whole message, ping, pong or close frame.
    ///
    /// `Ok(None)` once the connection is over (after the closing handshake, or after an
    /// error was returned). A protocol violation, a missed deadline or a transport failure is
    /// returned once as an error. Cancel-safe.
    pub async fn recv(&mut self) -> Result<Option<Incoming>, Error> {
        self.reader.recv().await
    }

    /// Queues `message` for sending, waiting while [`SEND_QUEUE`] messages are already
    /// waiting. Not cancel-safe (see the module docs).
    pub async fn send(&mut self, message: Outgoing) -> Result<(), Error> {
        self.writer.send(message).await
    }

    /// Starts the closing handshake with `code` and `reason`; then [`recv`](Self::recv)
    /// until `Ok(None)` to see the peer's close and the end.
    pub async fn close(&mut self, code: CloseCode, reason: &str) -> Result<(), Error> {
        self.writer.close(code, reason).await
    }

    /// Splits the connection into a receiving and a sending half, each usable from its own
    /// task.
    pub fn split(self) -> (ReadHalf, WriteHalf) {
        (self.reader, self.writer)
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

impl Stream for WebSocket {
    type Item = Result<Incoming, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        Pin::new(&mut self.reader).poll_next(cx)
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

impl Sink<Outgoing> for WebSocket {
    type Error = Error;

    fn poll_ready(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        Pin::new(&mut self.writer).poll_ready(cx)
    }

    fn start_send(mut self: Pin<&mut Self>, item: Outgoing) -> Result<(), Error> {
        Pin::new(&mut self.writer).start_send(item)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        Pin::new(&mut self.writer).poll_flush(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        Pin::new(&mut self.writer).poll_close(cx)
    }
}

/// How many rounds the connection task makes per poll before yielding to other tasks.
const ROUNDS: usize = 32;

/// The connection task: owns the stream and the driver.
struct Task<S> {
    stream: S,
    driver: Driver,
    clock: Clock<TokioInstant>,
    sleep: Option<Pin<Box<Sleep>>>,
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
    /// Whether the stream was shut down.
    shut_down: bool,
    /// Whether reading is over (end of stream, or the stream failed).
    read_done: bool,
    /// The time read during this poll of the task, if it was.
    now: Option<crate::Instant>,
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send + 'static> Task<S> {
    /// Runs the opening handshake in the caller's task.
    async fn handshake(
        mut stream: S,
        mut driver: Driver,
        clock: Clock<TokioInstant>,
        decide: &mut (dyn FnMut(&Request<'_>) -> Decision + Send),
    ) -> Result<(Self, Option<HttpResponse>), Error> {
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
        let task = Self {
            stream,
            driver,
            clock,
            sleep: None,
            commands: None,
            incoming: None,
            pending: VecDeque::new(),
            shared: Arc::new(Shared::default()),
            commands_idle: true,
            reader_waits: false,
            shut_down: false,
            read_done: false,
            now: None,
        };
        Ok((task, response))
    }

    /// Spawns the connection task and returns the handle to it.
    fn spawn(mut self) -> WebSocket {
        let (command_tx, command_rx) = mpsc::channel(SEND_QUEUE.saturating_sub(1));
        let (incoming_tx, incoming_rx) = mpsc::channel(RECEIVE_QUEUE.saturating_sub(1));
        self.commands = Some(command_rx);
        self.incoming = Some(incoming_tx);
        let shared = Arc::clone(&self.shared);
        ::tokio::spawn(self);
        WebSocket {
            reader: ReadHalf { incoming: incoming_rx, shared: Arc::clone(&shared) },
            writer: WriteHalf { outgoing: command_tx, shared },
        }
    }

    /// The time, read once per poll of the task (reading the clock is a measurable part of
    /// a small message's cost); [`fresh_now`](Self::fresh_now) reads it again.
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

    /// Reports `item` to the reader (or drops it if the reader is gone).
    fn report(&mut self, item: Result<Incoming, Error>) {
        if self.incoming.is_some() {
            self.pending.push_back(item);
        }
    }

    /// Marks the connection as no longer able to send, once a close is under way.
    fn update_closing(&mut self) {
        let conn = self.driver.connection();
        if conn.sent_close().is_some() || conn.received_close().is_some() || self.driver.is_closed()
        {
            self.shared.closing.store(true, Ordering::Release);
        }
    }

    /// Fires due deadlines, and arms the sleep for the next one. `true` if one fired.
    fn poll_timer(&mut self, cx: &mut Context<'_>) -> bool {
        let Some(deadline) = self.driver.poll_timeout() else {
            self.sleep = None;
            return false;
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
                return false;
            }
        }
        let now = self.fresh_now();
        if let Err(e) = self.driver.on_timeout(now) {
            self.report(Err(e.into()));
            return true;
        }
        // Progress only if the deadline moved, so a clock that rounds cannot spin the task.
        self.driver.poll_timeout() != Some(deadline)
    }

    /// Writes pending output. `true` if bytes were written.
    fn poll_write_out(&mut self, cx: &mut Context<'_>) -> bool {
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
                    self.transport_failed(io::ErrorKind::WriteZero.into());
                    return true;
                }
                Poll::Ready(Ok(n)) => {
                    self.driver.wrote(n);
                    progress = true;
                }
                Poll::Ready(Err(e)) => {
                    self.transport_failed(e);
                    return true;
                }
                Poll::Pending => return progress,
            }
        }
        progress
    }

    fn transport_failed(&mut self, e: io::Error) {
        let now = self.now();
        self.driver.on_transport_error(now);
        self.read_done = true;
        self.report(Err(Error::Io(e)));
    }

    /// Takes the next message from the writer, once the output is written. `true` if one
    /// was taken.
    fn poll_commands(&mut self, cx: &mut Context<'_>) -> bool {
        self.commands_idle = false;
        if !self.driver.output().is_empty() {
            return false;
        }
        let Some(commands) = &mut self.commands else {
            self.commands_idle = true;
            return false;
        };
        match Pin::new(commands).poll_next(cx) {
            Poll::Ready(Some(message)) => {
                let now = self.now();
                // A message queued just before a close may find the connection closing;
                // the writer was told through `closing`, so it is dropped.
                let vectored = self.stream.is_write_vectored();
                let _refused = self.driver.send_owned(message, now, vectored);
                true
            }
            Poll::Ready(None) => {
                // Every writer is gone: close normally if nobody did.
                self.commands = None;
                let now = self.now();
                if self.driver.connection().state() == crate::State::Open {
                    let _closing = self.driver.close(CloseCode::NORMAL, "", now);
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
        let writer_done = self.commands_idle || !self.driver.output().is_empty();
        if !reader_waits || !writer_done {
            return false;
        }
        let now = self.now();
        match self.driver.next_incoming(now) {
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
        if self.read_done || self.driver.is_closed() {
            self.driver.release_buffers();
            return false;
        }
        let stream = &mut self.stream;
        match self.driver.read_with(|buf| poll_read_vec(stream, cx, buf)) {
            Poll::Ready(Ok(n)) => {
                if n == 0 {
                    self.read_done = true;
                    let now = self.now();
                    if let Err(e) = self.driver.on_eof(now) {
                        self.report(Err(e.into()));
                    }
                }
                true
            }
            Poll::Ready(Err(e)) => {
                self.transport_failed(e);
                true
            }
            Poll::Pending => {
                self.driver.release_buffers();
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
        this.now = None;
        for _ in 0..ROUNDS {
            // Read the reader's wish before the writer's queue: whatever the writer queued
            // before the reader asked is then seen by `poll_commands` below.
            this.reader_waits = this.shared.wanted.load(Ordering::Acquire);
            let mut progress = this.poll_timer(cx);
            progress |= this.poll_write_out(cx);
            progress |= this.poll_commands(cx);
            progress |= this.poll_receive(cx);
            this.update_closing();
            if this.driver.is_closed() && this.driver.output().is_empty() {
                if !this.shut_down {
                    // RFC 6455 §7.1.1: the side the connection says closes the transport
                    // does so now; the other side saw the end of the stream.
                    match Pin::new(&mut this.stream).poll_shutdown(cx) {
                        Poll::Pending => return Poll::Pending,
                        Poll::Ready(_) => this.shut_down = true,
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
                this.driver.release_buffers();
                return Poll::Pending;
            }
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    }
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

    /// An idle connection should cost at most about 2 KiB: the task (which holds the
    /// `Connection` inline), its channels and no buffers (they are released when idle).
    #[test]
    fn the_connection_task_is_small() {
        let size = core::mem::size_of::<Task<TcpStream>>();
        assert!(size <= 1536, "the connection task takes {size} bytes");
    }
}
