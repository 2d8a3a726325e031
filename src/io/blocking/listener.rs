//! [`Listener`]: the blocking adapter's accept loop for a public server, with the tokio
//! listener's limits and its answer to running out of file descriptors.

use alloc::sync::Arc;
use std::io::{self, IoSlice, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::{Condvar, Mutex, PoisonError};

use super::{Transport, WebSocket};
use crate::connection::config::Config;
use crate::handshake::Request;
use crate::io::error::AdapterError as Error;
use crate::io::listen::{
    busy, Backoff, Count, Slot, DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_HANDSHAKES,
};
use crate::io::owned::Decision;

/// A TCP listener for a blocking WebSocket server that faces the internet (usually a thread
/// per connection), with the same behaviour as the tokio adapter's
/// [`Listener`](crate::tokio::Listener):
///
/// - [`accept`](Self::accept) does not fail: out of descriptors (`EMFILE`, `ENFILE`) or
///   memory it retries after a pause growing from 5 ms to 500 ms, and it skips a connection
///   reset while it waited in the backlog;
/// - at most [`max_handshakes`](Self::max_handshakes) opening handshakes run at once (1,024
///   by default): past it `accept` blocks until one ends, and new connections wait in the
///   kernel's backlog;
/// - at most [`max_connections`](Self::max_connections) connections are open (10,000 by
///   default); a connection past it gets `503 Service Unavailable` with `Retry-After: 1`
///   once its request is read.
///
/// ```no_run
/// use wsmachine::{blocking, Config, Decision, Incoming};
///
/// let listener = blocking::Listener::bind("127.0.0.1:9002")?.max_connections(2_000);
/// loop {
///     let pending = listener.accept();
///     std::thread::spawn(move || {
///         let Ok(mut ws) = pending.accept_with(Config::new(), |_| Decision::accept()) else {
///             return;
///         };
///         while let Ok(Some(Incoming::Text(text))) = ws.recv() {
///             if ws.send_text(&text).is_err() {
///                 break;
///             }
///         }
///     });
/// }
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct Listener {
    tcp: TcpListener,
    handshakes: Arc<Places>,
    connections: Count,
    max_connections: usize,
    nodelay: bool,
}

/// Handshake places: how many are taken, and a condition to wait for one.
#[derive(Debug)]
struct Places {
    max: usize,
    taken: Mutex<usize>,
    freed: Condvar,
}

impl Places {
    fn new(max: usize) -> Self {
        Self { max: max.max(1), taken: Mutex::new(0), freed: Condvar::new() }
    }

    /// Waits for a place and takes it.
    fn take(self: &Arc<Self>) -> Place {
        let mut taken = self.taken.lock().unwrap_or_else(PoisonError::into_inner);
        while *taken >= self.max {
            taken = self.freed.wait(taken).unwrap_or_else(PoisonError::into_inner);
        }
        *taken += 1;
        Place(self.clone())
    }
}

/// One handshake place, given back when dropped.
#[derive(Debug)]
struct Place(Arc<Places>);

impl Drop for Place {
    fn drop(&mut self) {
        let mut taken = self.0.taken.lock().unwrap_or_else(PoisonError::into_inner);
        *taken -= 1;
        self.0.freed.notify_one();
    }
}

impl Listener {
    /// Binds a TCP listener to `addr`, with the default limits.
    pub fn bind(addr: impl ToSocketAddrs) -> io::Result<Self> {
        Ok(Self::from_tcp(TcpListener::bind(addr)?))
    }

    /// Wraps a bound `TcpListener`, with the default limits.
    pub fn from_tcp(tcp: TcpListener) -> Self {
        Self {
            tcp,
            handshakes: Arc::new(Places::new(DEFAULT_MAX_HANDSHAKES)),
            connections: Count::default(),
            max_connections: DEFAULT_MAX_CONNECTIONS,
            nodelay: true,
        }
    }

    /// The most connections open at once (10,000 by default); past it, a new connection's
    /// request is answered with 503. With a thread per connection, this is also the most
    /// threads serving connections.
    pub fn max_connections(mut self, connections: usize) -> Self {
        self.max_connections = connections;
        self
    }

    /// The most opening handshakes in progress at once (1,024 by default, at least 1); past
    /// it, `accept` blocks until one ends.
    pub fn max_handshakes(mut self, handshakes: usize) -> Self {
        self.handshakes = Arc::new(Places::new(handshakes));
        self
    }

    /// Whether accepted streams get `TCP_NODELAY` (on by default).
    pub fn nodelay(mut self, on: bool) -> Self {
        self.nodelay = on;
        self
    }

    /// The address the listener is bound to.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.tcp.local_addr()
    }

    /// The connections open now, those being refused with 503 included.
    pub fn connections(&self) -> usize {
        self.connections.get()
    }

    /// The next connection, once fewer than `max_handshakes` handshakes are in progress.
    /// Never fails.
    pub fn accept(&self) -> Pending {
        let place = self.handshakes.take();
        let mut backoff = Backoff::default();
        loop {
            match self.tcp.accept() {
                Ok((tcp, peer)) => {
                    if self.nodelay {
                        let _ = tcp.set_nodelay(true);
                    }
                    let (slot, over) = self.connections.admit(self.max_connections);
                    let stream = Accepted { tcp, _slot: slot };
                    return Pending { stream, peer, over, _place: place };
                }
                Err(e) => {
                    if let Some(pause) = backoff.after(&e) {
                        std::thread::sleep(pause);
                    }
                }
            }
        }
    }
}

/// An accepted TCP connection whose opening handshake has not run yet, holding a handshake
/// place of its [`Listener`] until [`accept_with`](Self::accept_with) returns.
#[derive(Debug)]
pub struct Pending {
    stream: Accepted,
    peer: SocketAddr,
    over: bool,
    _place: Place,
}

impl Pending {
    /// The client's address.
    pub fn peer_addr(&self) -> SocketAddr {
        self.peer
    }

    /// Whether the connection came past `max_connections` (and gets 503).
    pub fn is_over_limit(&self) -> bool {
        self.over
    }

    /// Runs the opening handshake as [`accept_with`](super::accept_with) does; past the
    /// listener's `max_connections`, answers `503` with `Retry-After: 1` instead (and returns
    /// [`Error::Rejected`]).
    pub fn accept_with<F>(self, config: Config, decide: F) -> Result<WebSocket<Accepted>, Error>
    where
        F: FnOnce(&Request<'_>) -> Decision,
    {
        let Pending { stream, over, _place, .. } = self;
        if over {
            super::accept_with(stream, config, busy)
        } else {
            super::accept_with(stream, config, decide)
        }
    }

    /// [`accept_with`](Self::accept_with) with [`Config::new`], accepting every request.
    pub fn accept(self) -> Result<WebSocket<Accepted>, Error> {
        self.accept_with(Config::new(), |_| Decision::accept())
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

impl Read for Accepted {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.tcp.read(buf)
    }
}

impl Write for Accepted {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.tcp.write(buf)
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.tcp.write_vectored(bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.tcp.flush()
    }
}

impl Transport for Accepted {
    fn set_read_timeout(&mut self, timeout: Option<std::time::Duration>) -> io::Result<()> {
        self.tcp.set_read_timeout(timeout)
    }

    fn set_write_timeout(&mut self, timeout: Option<std::time::Duration>) -> io::Result<()> {
        self.tcp.set_write_timeout(timeout)
    }

    fn close(&mut self) -> io::Result<()> {
        Transport::close(&mut self.tcp)
    }
}
