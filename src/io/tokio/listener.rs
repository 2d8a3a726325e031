//! [`Listener`]: a TCP accept loop for a public server, with limits on open connections and on
//! handshakes in progress, that survives running out of file descriptors.

use alloc::sync::Arc;
use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll};
use std::io::{self, IoSlice};
use std::net::SocketAddr;

use ::tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use ::tokio::net::{TcpListener, TcpStream, ToSocketAddrs};
use ::tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::socket::WebSocket;
use crate::connection::config::Config;
use crate::handshake::Request;
use crate::io::error::AdapterError as Error;
use crate::io::listen::{
    busy, Backoff, Count, Slot, DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_HANDSHAKES,
};
use crate::io::owned::Decision;

/// How far ahead the accept loop keeps a timer armed while it waits.
///
/// Every connection arms deadlines 10 s or 20 s ahead (the handshake, keepalive, close). When
/// tokio's timer has nothing due sooner, registering such a deadline must wake the thread
/// parked in the I/O driver so that it sleeps until then: an `eventfd` write, a futex wake
/// and an extra `epoll_wait` per connection, which `strace -c` showed as most of what
/// `echo_server` did per handshake beyond fastwebsockets' server (which arms no deadline).
/// With a timer due within a second always armed, the connections' later deadlines never
/// need that wake; the accept loop is woken once a second to re-arm it.
const TIMER_PRIMER: core::time::Duration = core::time::Duration::from_secs(1);

/// A TCP listener for a WebSocket server that faces the internet.
///
/// ```no_run
/// # async fn run() -> std::io::Result<()> {
/// use wsmachine::{tokio as ws, Config, Decision, Incoming, Outgoing};
///
/// let listener = ws::Listener::bind("127.0.0.1:9001").await?;
/// loop {
///     let pending = listener.accept().await;
///     tokio::spawn(async move {
///         let Ok(mut socket) = pending.accept_with(Config::new(), |_| Decision::accept()).await
///         else { return };
///         while let Ok(Some(Incoming::Text(text))) = socket.recv().await {
///             if socket.send(Outgoing::Text(text)).await.is_err() {
///                 break;
///             }
///         }
///     });
/// }
/// # }
/// ```
///
/// What it adds to `TcpListener::accept`:
///
/// - **`accept` does not fail.** A failed `accept` for want of file descriptors (`EMFILE`,
///   `ENFILE`) or memory is retried after a pause that grows from 5 ms to 500 ms (a loop
///   that retried at once would spin: the kernel keeps the connection in its backlog and
///   fails every attempt); an error that concerns only the connection being accepted (reset
///   or aborted while it waited) is skipped at once. The connection waiting in the backlog is
///   served within 500 ms of descriptors coming back.
/// - **At most [`max_handshakes`](Self::max_handshakes) opening handshakes at once** (1,024 by
///   default). Past it, `accept` waits for one to finish before taking the next connection
///   from the kernel: the connections wait in the listen backlog, costing no descriptor and
///   no memory of the process. A handshake lasts until the request is answered or the
///   configuration's handshake deadline (10 s) passes, so slowloris connections, which send
///   their request a byte at a time, hold at most this many places, each for at most the
///   deadline.
/// - **At most [`max_connections`](Self::max_connections) connections open** (10,000 by
///   default), counted from `accept` until the stream is dropped. A connection accepted past
///   it is answered, once its request is read, with `503 Service Unavailable` and
///   `Retry-After: 1` instead of the upgrade: the client is told, rather than left waiting
///   in the backlog, and a browser's `WebSocket` reports the failure at once.
///
/// Each accepted connection comes out as a [`Pending`], whose
/// [`accept_with`](Pending::accept_with) runs the handshake in the caller's task (usually a
/// task spawned per connection) and gives a [`WebSocket`] over [`Accepted`], the TCP stream
/// with its place in the count.
#[derive(Debug)]
pub struct Listener {
    tcp: TcpListener,
    handshakes: Arc<Semaphore>,
    max_handshakes: usize,
    connections: Count,
    max_connections: usize,
    nodelay: bool,
}

impl Listener {
    /// Binds a TCP listener to `addr`, with the default limits.
    pub async fn bind(addr: impl ToSocketAddrs) -> io::Result<Self> {
        Ok(Self::from_tcp(TcpListener::bind(addr).await?))
    }

    /// Wraps a bound `TcpListener`, with the default limits.
    pub fn from_tcp(tcp: TcpListener) -> Self {
        Self {
            tcp,
            handshakes: Arc::new(Semaphore::new(DEFAULT_MAX_HANDSHAKES)),
            max_handshakes: DEFAULT_MAX_HANDSHAKES,
            connections: Count::default(),
            max_connections: DEFAULT_MAX_CONNECTIONS,
            nodelay: true,
        }
    }

    /// The most connections open at once (10,000 by default); past it, a new connection's
    /// request is answered with 503. Set it below the process's file descriptor limit
    /// (`ulimit -n`), leaving room for the descriptors the application needs itself and for
    /// the handshakes in progress.
    pub fn max_connections(mut self, connections: usize) -> Self {
        self.max_connections = connections;
        self
    }

    /// The most opening handshakes in progress at once (1,024 by default, at least 1); past
    /// it, `accept` waits for one to end.
    pub fn max_handshakes(mut self, handshakes: usize) -> Self {
        let handshakes = handshakes.clamp(1, Semaphore::MAX_PERMITS);
        self.handshakes = Arc::new(Semaphore::new(handshakes));
        self.max_handshakes = handshakes;
        self
    }

    /// Whether accepted streams get `TCP_NODELAY` (on by default: a WebSocket message is
    /// written whole, and Nagle's algorithm would only delay small ones).
    pub fn nodelay(mut self, on: bool) -> Self {
        self.nodelay = on;
        self
    }

    /// The address the listener is bound to.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.tcp.local_addr()
    }

    /// The connections open now (their streams not yet dropped), the ones over the limit
    /// that are being answered with 503 included.
    pub fn connections(&self) -> usize {
        self.connections.get()
    }

    /// The next connection, once fewer than [`max_handshakes`](Self::max_handshakes)
    /// handshakes are in progress. Never fails (see the type's documentation). Cancel-safe.
    pub async fn accept(&self) -> Pending {
        let handshake = match self.handshakes.clone().acquire_owned().await {
            Ok(permit) => permit,
            // The semaphore is never closed.
            Err(_) => unreachable!("the handshake semaphore is never closed"),
        };
        let mut backoff = Backoff::default();
        // See `TIMER_PRIMER`.
        let mut primer = core::pin::pin!(::tokio::time::sleep(TIMER_PRIMER));
        loop {
            let accepted = core::future::poll_fn(|cx| {
                while primer.as_mut().poll(cx).is_ready() {
                    primer.as_mut().reset(::tokio::time::Instant::now() + TIMER_PRIMER);
                }
                self.tcp.poll_accept(cx)
            });
            match accepted.await {
                Ok((tcp, peer)) => {
                    if self.nodelay {
                        // Fails only for a connection already gone; its handshake says so.
                        let _ = tcp.set_nodelay(true);
                    }
                    let (slot, over) = self.connections.admit(self.max_connections);
                    let stream = Accepted { tcp, _slot: slot };
                    return Pending { stream, peer, over, _handshake: handshake };
                }
                Err(e) => {
                    if let Some(pause) = backoff.after(&e) {
                        ::tokio::time::sleep(pause).await;
                    }
                }
            }
        }
    }
}

/// An accepted TCP connection whose opening handshake has not run yet; it holds one of the
/// listener's handshake places until [`accept_with`](Self::accept_with) finishes (or it is
/// dropped).
#[derive(Debug)]
pub struct Pending {
    stream: Accepted,
    peer: SocketAddr,
    /// Accepted past `max_connections`: to be answered with 503.
    over: bool,
    _handshake: OwnedSemaphorePermit,
}

impl Pending {
    /// The client's address.
    pub fn peer_addr(&self) -> SocketAddr {
        self.peer
    }

    /// Whether this connection came past the listener's `max_connections` and will be
    /// answered with 503 by [`accept_with`](Self::accept_with).
    pub fn is_over_limit(&self) -> bool {
        self.over
    }

    /// Runs the server's opening handshake as [`accept_with`](super::accept_with) does,
    /// with `decide` choosing; past the listener's `max_connections` the request is read and
    /// answered with `503` and `Retry-After: 1` instead (and [`Error::Rejected`] returned),
    /// whatever `decide` would say. The handshake place is given back when this returns.
    pub async fn accept_with<F>(
        self,
        config: Config,
        decide: F,
    ) -> Result<WebSocket<Accepted>, Error>
    where
        F: FnOnce(&Request<'_>) -> Decision + Send,
    {
        let Pending { stream, over, _handshake, .. } = self;
        if over {
            super::accept_with(stream, config, busy).await
        } else {
            super::accept_with(stream, config, decide).await
        }
    }

    /// [`accept_with`](Self::accept_with) with [`Config::new`], accepting every request.
    pub async fn accept(self) -> Result<WebSocket<Accepted>, Error> {
        self.accept_with(Config::new(), |_| Decision::accept()).await
    }

    /// The TCP stream and its place in the listener's count, without a handshake: for a
    /// server that answers HTTP itself (hyper, axum) before upgrading. The handshake place is
    /// given back now.
    pub fn into_stream(self) -> Accepted {
        self.stream
    }
}

/// A TCP stream accepted by a [`Listener`], counted among its connections until dropped.
#[derive(Debug)]
pub struct Accepted {
    tcp: TcpStream,
    _slot: Slot,
}

impl Accepted {
    /// The TCP stream.
    pub fn get_ref(&self) -> &TcpStream {
        &self.tcp
    }
}

impl AsyncRead for Accepted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_read(cx, buf)
    }
}

impl AsyncWrite for Accepted {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.tcp).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.tcp).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_shutdown(cx)
    }
}
