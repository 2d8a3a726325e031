//! The blocking adapter (feature `std`): a WebSocket over any `Read + Write` stream.
//!
//! ```no_run
//! use std::net::TcpListener;
//! use wsmachine::blocking;
//! use wsmachine::Incoming;
//!
//! let listener = TcpListener::bind("127.0.0.1:9002")?;
//! let (tcp, _) = listener.accept()?;
//! let mut ws = blocking::accept(tcp)?;
//! while let Some(incoming) = ws.recv()? {
//!     match incoming {
//!         Incoming::Text(text) => ws.send_text(&text)?,
//!         Incoming::Binary(data) => ws.send_binary(&data)?,
//!         _ => {}
//!     }
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Timers
//!
//! The connection's deadlines (handshake, keepalive, pong, idle, close) are honoured while a
//! call waits for bytes: before each read the adapter bounds the stream's read timeout by the
//! time left until [`Connection::poll_timeout`], and a read that times out calls
//! [`Connection::handle_timeout`]. They are honoured while a call waits to write, too: while
//! a deadline is armed, the write timeout is set the same way, so a peer that stops reading
//! cannot stall a `send` past the pong or close deadline (with keepalive configured, such a
//! send fails with [`ErrorKind::PongTimeout`](crate::ErrorKind::PongTimeout)). Until a
//! deadline is first armed the write timeout stays as the caller set it; after that, while
//! none is armed, it is none.
//!
//! A generic `Read` has no timeout, so the stream must implement [`Transport`], which says
//! how to set one (and how to close the stream). It is implemented for `TcpStream` (and
//! `UnixStream`); for a TLS stream over a socket, implement it on a wrapper by forwarding to
//! the socket (`examples/wss_echo_server_blocking.rs` has one for rustls). [`NoTimeout`]
//! wraps a stream that cannot time out: deadlines are then only checked when bytes arrive.
//!
//! One thread drives the connection: keepalive pings go out only while a call is running
//! (typically [`WebSocket::recv`]). For concurrent reading and writing, use the tokio adapter.

mod listener;

use alloc::boxed::Box;
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};

use super::clock::{os_seed, Clock};
use super::driver::{decide_once, HeapDriver as Driver, Step, Want};
use super::error::AdapterError as Error;
use super::owned::{Decision, HttpResponse, Incoming, Outgoing};
use super::url::WsUrl;

/// The most slices one vectored write takes.
const WRITE_PARTS: usize = 64;
use crate::connection::config::Config;
use crate::connection::{Connection, Event, MessageKind};
use crate::handshake::{ClientRequest, Request};
use crate::wire::close::CloseCode;

pub use self::listener::{Accepted, Listener, Pending};

/// What the blocking adapter needs of a stream besides `Read + Write`: a way to bound how long
/// a read waits, and a way to close it.
pub trait Transport {
    /// Makes reads fail with `WouldBlock` or `TimedOut` after `timeout` (`None`: wait
    /// forever).
    fn set_read_timeout(&mut self, timeout: Option<std::time::Duration>) -> io::Result<()>;

    /// Makes writes fail with `WouldBlock` or `TimedOut` after `timeout` (`None`: wait
    /// forever). The default does nothing: writes then wait for the peer however long it
    /// takes, and deadlines are checked once a write returns.
    fn set_write_timeout(&mut self, timeout: Option<std::time::Duration>) -> io::Result<()> {
        let _unbounded = timeout;
        Ok(())
    }

    /// Closes the transport (for TCP: shuts down both directions), when the protocol says
    /// so. The default does nothing; the stream is closed when dropped.
    fn close(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Transport for TcpStream {
    fn set_read_timeout(&mut self, timeout: Option<std::time::Duration>) -> io::Result<()> {
        TcpStream::set_read_timeout(self, timeout)
    }

    fn set_write_timeout(&mut self, timeout: Option<std::time::Duration>) -> io::Result<()> {
        TcpStream::set_write_timeout(self, timeout)
    }

    fn close(&mut self) -> io::Result<()> {
        self.shutdown(Shutdown::Both)
    }
}

#[cfg(unix)]
impl Transport for std::os::unix::net::UnixStream {
    fn set_read_timeout(&mut self, timeout: Option<std::time::Duration>) -> io::Result<()> {
        std::os::unix::net::UnixStream::set_read_timeout(self, timeout)
    }

    fn set_write_timeout(&mut self, timeout: Option<std::time::Duration>) -> io::Result<()> {
        std::os::unix::net::UnixStream::set_write_timeout(self, timeout)
    }

    fn close(&mut self) -> io::Result<()> {
        self.shutdown(Shutdown::Both)
    }
}

impl<T: Transport + ?Sized> Transport for &mut T {
    fn set_read_timeout(&mut self, timeout: Option<std::time::Duration>) -> io::Result<()> {
        (**self).set_read_timeout(timeout)
    }

    fn set_write_timeout(&mut self, timeout: Option<std::time::Duration>) -> io::Result<()> {
        (**self).set_write_timeout(timeout)
    }

    fn close(&mut self) -> io::Result<()> {
        (**self).close()
    }
}

impl<T: Transport + ?Sized> Transport for Box<T> {
    fn set_read_timeout(&mut self, timeout: Option<std::time::Duration>) -> io::Result<()> {
        (**self).set_read_timeout(timeout)
    }

    fn set_write_timeout(&mut self, timeout: Option<std::time::Duration>) -> io::Result<()> {
        (**self).set_write_timeout(timeout)
    }

    fn close(&mut self) -> io::Result<()> {
        (**self).close()
    }
}

/// A stream that cannot time out its reads. Deadlines are then checked only when a read
/// returns, so a silent peer is not detected: prefer a stream that implements [`Transport`].
#[derive(Debug)]
pub struct NoTimeout<S>(pub S);

impl<S: Read> Read for NoTimeout<S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf)
    }
}

impl<S: Write> Write for NoTimeout<S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

impl<S> Transport for NoTimeout<S> {
    fn set_read_timeout(&mut self, _timeout: Option<std::time::Duration>) -> io::Result<()> {
        Ok(())
    }
}

/// Server: answers the upgrade request on `stream`, accepting any request, with
/// [`Config::new`] and a 10 s handshake deadline.
///
/// Next: [`WebSocket::recv`] and the `send_*` methods.
pub fn accept<S: Read + Write + Transport>(stream: S) -> Result<WebSocket<S>, Error> {
    accept_with(stream, Config::new(), |_| Decision::accept())
}

/// Server: reads the upgrade request on `stream` and hands it to `decide`, which inspects it
/// (path, headers, `Origin`, offered subprotocols) and accepts or rejects it.
///
/// A configuration without a handshake deadline gets 10 s. A request that is not a valid
/// upgrade is answered with the right HTTP error and fails with [`Error::Protocol`]; a
/// rejection is sent, the stream closed, and [`Error::Rejected`] returned. Bytes the client
/// sent after its request are kept for [`WebSocket::recv`].
pub fn accept_with<S, F>(stream: S, config: Config, decide: F) -> Result<WebSocket<S>, Error>
where
    S: Read + Write + Transport,
    F: FnOnce(&Request<'_>) -> Decision,
{
    let clock = Clock::new(std::time::Instant::now());
    let conn = Connection::server(config, clock.instant(std::time::Instant::now()));
    let mut ws = WebSocket::new(stream, conn, clock);
    ws.handshake(&mut decide_once(decide))?;
    Ok(ws)
}

/// Client: sends the upgrade `request` on `stream` (already connected, TLS already set up)
/// and waits for the server's answer, with a client seed from the operating system.
///
/// Returns the connection and the server's `101` response (its headers, the chosen
/// subprotocol). A refusal is [`Error::Refused`] with the server's response; an invalid
/// answer (a bad `Sec-WebSocket-Accept`, say) is [`Error::Protocol`]. Bytes the server sent
/// right after its response are kept for [`WebSocket::recv`].
pub fn connect<S: Read + Write + Transport>(
    stream: S,
    request: &ClientRequest<'_>,
    config: Config,
) -> Result<(WebSocket<S>, HttpResponse), Error> {
    let clock = Clock::new(std::time::Instant::now());
    let now = clock.instant(std::time::Instant::now());
    let conn = Connection::client(config, request, os_seed()?, now)?;
    let mut ws = WebSocket::new(stream, conn, clock);
    // A client's handshake ends with the server's response, or fails.
    let response = ws.handshake(&mut |_| Decision::accept())?.ok_or(Error::Closed)?;
    Ok((ws, response))
}

/// Client: connects a TCP stream to a `ws://host:port/path` URL and performs the handshake
/// with [`connect`].
pub fn connect_url(
    url: &str,
    config: Config,
) -> Result<(WebSocket<TcpStream>, HttpResponse), Error> {
    let parsed =
        WsUrl::parse(url).filter(|u| !u.secure).ok_or_else(|| Error::InvalidUrl(url.into()))?;
    let tcp = TcpStream::connect(&parsed.address)?;
    tcp.set_nodelay(true)?;
    connect(tcp, &ClientRequest::new(&parsed.host, &parsed.target), config)
}

/// An open WebSocket over a blocking stream, for either role.
///
/// Receive with [`recv`](Self::recv) (whole messages) or [`recv_event`](Self::recv_event)
/// (pieces, zero-copy); send with [`send_text`](Self::send_text),
/// [`send_binary`](Self::send_binary), [`send_fragment`](Self::send_fragment) or
/// [`send`](Self::send); close with [`close`](Self::close), then `recv` until `Ok(None)`.
#[derive(Debug)]
pub struct WebSocket<S> {
    stream: S,
    driver: Driver,
    clock: Clock<std::time::Instant>,
    /// The read timeout last set on the stream.
    read_timeout: Option<std::time::Duration>,
    /// The write timeout this adapter last set on the stream, `None` while it leaves the
    /// caller's setting alone.
    write_timeout: Option<std::time::Duration>,
}

impl<S: Read + Write + Transport> WebSocket<S> {
    fn new(stream: S, conn: Connection, clock: Clock<std::time::Instant>) -> Self {
        Self { stream, driver: Driver::new(conn), clock, read_timeout: None, write_timeout: None }
    }

    fn now(&self) -> crate::time::Instant {
        self.clock.instant(std::time::Instant::now())
    }

    fn handshake(
        &mut self,
        decide: &mut dyn FnMut(&Request<'_>) -> Decision,
    ) -> Result<Option<HttpResponse>, Error> {
        self.run(|driver, now| driver.handshake_step(now, decide))
    }

    /// Receives the next whole message, ping, pong or close frame, waiting for it.
    ///
    /// Returns `Ok(None)` once the connection is over: after the closing handshake
    /// completed and the transport closed, or after an error was returned. A peer's protocol
    /// violation, a missed deadline, or a transport that ended without a close is an error,
    /// returned once; the close frame the RFC asks for has been sent. Call `recv` again after
    /// [`Incoming::Close`] (or an error) to complete the close.
    pub fn recv(&mut self) -> Result<Option<Incoming>, Error> {
        self.run(|driver, now| driver.receive_step(&mut || now, Driver::next_incoming))
    }

    /// Receives the next event as the connection hands it out, borrowing this adapter's read
    /// buffer: a message that fits the buffer arrives whole, a larger or fragmented one as
    /// [`Event::Fragment`] pieces, so a message of any size streams through a fixed buffer.
    /// `handle` sees the event and returns what `recv_event` returns; `Ok(None)` as for
    /// [`recv`](Self::recv).
    ///
    /// `handle` is called once, with the one event this call returns.
    pub fn recv_event<R>(
        &mut self,
        mut handle: impl FnMut(Event<'_>) -> R,
    ) -> Result<Option<R>, Error> {
        self.run(|driver, now| {
            driver.receive_step(&mut || now, |d, now| d.next_raw(now, &mut handle))
        })
    }

    /// Writes everything queued (then flushes the stream: a TLS stream writes its records
    /// there), running deadlines that fall due meanwhile.
    fn flush(&mut self) -> Result<(), Error> {
        self.run(Driver::flush_step)
    }

    /// Runs a driver loop, doing the I/O each step asks for.
    fn run<T>(
        &mut self,
        mut step: impl FnMut(&mut Driver, crate::time::Instant) -> Step<Result<T, Error>>,
    ) -> Result<T, Error> {
        loop {
            let now = self.now();
            match step(&mut self.driver, now) {
                Step::Ready(result) => return result,
                Step::Io(Want::Write) => self.write()?,
                Step::Io(Want::Read { deadline }) => self.read(deadline)?,
                Step::Io(Want::Shutdown) => {
                    // The peer may have closed first; either way the connection is over.
                    let _already = self.stream.close();
                    self.driver.shut_down();
                }
            }
        }
    }

    /// Writes once, bounded by the next deadline; flushes the stream once everything is
    /// written.
    fn write(&mut self) -> Result<(), Error> {
        let bounded = self.bound_write()?;
        let written = if self.driver.output_is_one_slice() {
            self.stream.write(self.driver.output())
        } else {
            // A header and the payload kept behind it as it is (or frames queued behind
            // each other) leave in one write, none of them copied.
            let mut parts = [&[][..]; WRITE_PARTS];
            let n = self.driver.output_parts(&mut parts);
            let slices: [io::IoSlice<'_>; WRITE_PARTS] =
                core::array::from_fn(|i| io::IoSlice::new(parts[i]));
            self.stream.write_vectored(&slices[..n])
        };
        let result = written.and_then(|n| {
            if n > 0 {
                self.driver.wrote(n);
                if !self.driver.has_output() {
                    self.stream.flush()?;
                }
            }
            Ok(n)
        });
        match result {
            Ok(0) => self.transport_failed(io::ErrorKind::WriteZero.into()),
            Ok(_) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(()),
            // Our own timeout: a deadline is due (one that fires a little early runs
            // nothing, and the write is tried again).
            Err(e)
                if bounded
                    && matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) =>
            {
                let now = self.now();
                self.driver.write_stalled(now);
                Ok(())
            }
            Err(e) => self.transport_failed(e),
        }
    }

    /// Sets the write timeout to the time left until the next deadline, if one is armed;
    /// otherwise restores the caller's setting (none) if this adapter had changed it.
    /// Returns whether a write that times out means a deadline is due.
    fn bound_write(&mut self) -> Result<bool, Error> {
        let timeout = self.wait_limit(self.driver.poll_timeout());
        if must_reset(self.write_timeout, timeout) {
            if let Err(e) = self.stream.set_write_timeout(timeout) {
                return self.transport_failed(e);
            }
            self.write_timeout = timeout;
        }
        Ok(timeout.is_some())
    }

    /// How long a read or write may wait for `deadline`: at least 1 ms, so a deadline that
    /// is due still bounds the wait; `None` while none is armed.
    fn wait_limit(&self, deadline: Option<crate::time::Instant>) -> Option<std::time::Duration> {
        let now = self.now();
        deadline.map(|at| {
            let left: std::time::Duration = (at - now).into();
            left.max(std::time::Duration::from_millis(1))
        })
    }

    fn transport_failed<T>(&mut self, e: io::Error) -> Result<T, Error> {
        self.driver.on_transport_error();
        if !self.driver.is_shut_down() {
            let _already = self.stream.close();
            self.driver.shut_down();
        }
        Err(Error::Io(e))
    }

    /// Reads once, waiting no longer than `deadline`; a read that times out reports
    /// nothing, and the next step runs the deadline.
    fn read(&mut self, deadline: Option<crate::time::Instant>) -> Result<(), Error> {
        let timeout = self.wait_limit(deadline);
        if must_reset(self.read_timeout, timeout) {
            if let Err(e) = self.stream.set_read_timeout(timeout) {
                return self.transport_failed(e);
            }
            self.read_timeout = timeout;
        }
        match self.stream.read(self.driver.input_space()) {
            Ok(0) => self.driver.read_eof(),
            Ok(n) => self.driver.filled(n),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) => {}
            Err(e) => return self.transport_failed(e),
        }
        Ok(())
    }

    /// Sends a text message as one frame.
    pub fn send_text(&mut self, text: &str) -> Result<(), Error> {
        self.driver.send_text(text)?;
        self.flush()
    }

    /// Sends a binary message as one frame.
    pub fn send_binary(&mut self, data: &[u8]) -> Result<(), Error> {
        self.driver.send_binary(data)?;
        self.flush()
    }

    /// Sends one frame of a fragmented message of `kind`, to stream a message piece by
    /// piece; the frame with `is_last` ends it. Control frames may go in between.
    pub fn send_fragment(
        &mut self,
        kind: MessageKind,
        payload: &[u8],
        is_last: bool,
    ) -> Result<(), Error> {
        self.driver.send_fragment(kind, payload, is_last)?;
        self.flush()
    }

    /// Sends `message` (a message, a fragment, a ping, a pong or a close).
    pub fn send(&mut self, message: &Outgoing) -> Result<(), Error> {
        let now = self.now();
        self.driver.send(message, now)?;
        self.flush()
    }

    /// Sends `message`, taking it. A server writes a large payload (64 KiB or more,
    /// uncompressed) from its own allocation behind the frame's header, in one vectored
    /// write and without a copy; a smaller one is copied as by [`send`](Self::send). Either
    /// way the allocation then takes the next message [`recv`](Self::recv) returns when it
    /// is large enough, so an echo allocates nothing per message. With a thread per
    /// connection that matters beyond the copy: every allocation of a large buffer is a
    /// turn at the allocator's lock (glibc maps it while holding the lock), and a thread
    /// preempted there holds up all the others (measured with `scripts/siege.py`'s
    /// max-messages attack, 200 clients of 1 MiB messages: the other clients' echo p99 fell
    /// from 528 ms to the figure in the README).
    pub fn send_owned(&mut self, message: Outgoing) -> Result<(), Error> {
        let now = self.now();
        self.driver.send_owned(message, now, true)?;
        self.flush()
    }

    /// Starts the closing handshake with `code` and `reason` (at most 123 bytes). Then call
    /// [`recv`](Self::recv) until it returns `Ok(None)`: messages the peer sent before its
    /// close still arrive, then its close, then the end.
    pub fn close(&mut self, code: CloseCode, reason: &str) -> Result<(), Error> {
        let now = self.now();
        self.driver.close(code, reason, now)?;
        self.flush()
    }

    /// The connection's state machine: its state, the close frames sent and received.
    pub fn connection(&self) -> &Connection {
        self.driver.connection()
    }

    /// The stream.
    pub fn get_ref(&self) -> &S {
        &self.stream
    }

    /// The stream, mutably (writing to it directly corrupts the connection).
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.stream
    }
}

/// Whether a stream timeout last set to `set` has to change (a system call) so that a wait
/// ends by `wanted`. One a little shorter than needed is kept: it only costs a wake-up that
/// finds no deadline due, and the wait starts again. One that would fire late or far too
/// early is replaced, as is any change to or from no timeout.
fn must_reset(set: Option<std::time::Duration>, wanted: Option<std::time::Duration>) -> bool {
    match (set, wanted) {
        (Some(set), Some(wanted)) => set > wanted || set < wanted / 2,
        (set, wanted) => set != wanted,
    }
}

#[cfg(test)]
mod tests {
    use super::must_reset;
    use std::time::Duration;

    #[test]
    fn a_timeout_is_reset_only_when_it_would_fire_late_or_far_too_early() {
        let ms = Duration::from_millis;
        assert!(!must_reset(None, None));
        assert!(must_reset(None, Some(ms(100))));
        assert!(must_reset(Some(ms(100)), None));
        assert!(!must_reset(Some(ms(100)), Some(ms(100))));
        assert!(!must_reset(Some(ms(60)), Some(ms(100))), "a little early is kept");
        assert!(must_reset(Some(ms(40)), Some(ms(100))), "far too early is replaced");
        assert!(must_reset(Some(ms(101)), Some(ms(100))), "late is replaced");
    }
}
