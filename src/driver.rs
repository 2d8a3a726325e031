//! The I/O-independent half of every adapter: buffers around a [`Connection`], and owned
//! results.
//!
//! An adapter (blocking std, tokio, or your own) only moves bytes between a transport and a
//! [`Driver`], sleeps until [`Driver::poll_timeout`], and maps errors. The driver keeps the read
//! buffer as [`Connection::receive`] requires (unconsumed bytes re-presented at the front, room
//! for a whole frame that fits
//! [`Config::receive_buffer_size`](crate::Config::receive_buffer_size); it starts at 4 KiB and
//! grows as frames need), gathers what the connection writes into one output buffer, reassembles whole messages, and
//! answers the opening handshake. This module is `alloc`-only, so a `no_std` adapter can use the
//! owned types too.

// Without `std` no adapter uses the driver yet; a `no_std` adapter would.
#![cfg_attr(not(feature = "std"), allow(dead_code))]

use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;

use crate::{
    Accept, CloseCode, CloseFrame, Connection, Error, Event, Instant, MessageKind, OwnedMessage,
    Reassembler, Reject, Request, Response, Role, State, Transmit, UsageError,
};

/// A message or control frame received from the peer, owned.
///
/// Pings are answered by the connection itself (unless automatic pongs are off); they are
/// reported for information. After [`Close`](Self::Close) no more messages arrive; keep
/// receiving until the adapter reports the end, so the closing handshake completes.
#[derive(Clone, Debug, Eq, PartialEq)]
#[non_exhaustive]
pub enum Incoming {
    /// A whole text message (valid UTF-8).
    Text(String),
    /// A whole binary message.
    Binary(Vec<u8>),
    /// A ping with its payload (already answered when pongs are automatic).
    Ping(Vec<u8>),
    /// A pong with its payload.
    Pong(Vec<u8>),
    /// The peer's close frame; the reply, if one is owed, is already on its way. Boxed: it
    /// comes once per connection, and keeps every `Incoming` (and every future holding one)
    /// 32 bytes instead of 128.
    Close(Box<CloseFrame>),
}

impl Incoming {
    /// The data message, if this is one (text or binary).
    pub fn into_message(self) -> Option<OwnedMessage> {
        match self {
            Self::Text(text) => Some(OwnedMessage::Text(text)),
            Self::Binary(data) => Some(OwnedMessage::Binary(data)),
            _ => None,
        }
    }
}

impl From<OwnedMessage> for Incoming {
    fn from(message: OwnedMessage) -> Self {
        match message {
            OwnedMessage::Text(text) => Self::Text(text),
            OwnedMessage::Binary(data) => Self::Binary(data),
        }
    }
}

/// Something to send to the peer, owned: what an adapter's `send` (or `Sink`) takes.
#[derive(Clone, Debug, Eq, PartialEq)]
#[non_exhaustive]
pub enum Outgoing {
    /// A whole text message, sent as one frame.
    Text(String),
    /// A whole binary message, sent as one frame.
    Binary(Vec<u8>),
    /// One frame of a fragmented message of `kind`; the one with `is_last` ends it (see
    /// [`Connection::send_fragment`]).
    Fragment {
        /// The message's kind.
        kind: MessageKind,
        /// This frame's payload.
        payload: Vec<u8>,
        /// Whether this frame ends the message.
        is_last: bool,
    },
    /// A ping (at most 125 bytes of payload).
    Ping(Vec<u8>),
    /// A pong (at most 125 bytes of payload).
    Pong(Vec<u8>),
    /// Starts (or answers) the closing handshake with a code and a reason of at most 123
    /// bytes. Nothing can be sent after it.
    Close(CloseCode, String),
}

impl Outgoing {
    /// A text message.
    pub fn text(text: impl Into<String>) -> Self {
        Self::Text(text.into())
    }

    /// A binary message.
    pub fn binary(data: impl Into<Vec<u8>>) -> Self {
        Self::Binary(data.into())
    }

    /// A close with `code` and no reason.
    pub fn close(code: CloseCode) -> Self {
        Self::Close(code, String::new())
    }

    /// The checks that do not depend on the connection's state: a close code that may be
    /// sent, a close reason of at most 123 bytes, control payloads of at most 125 bytes.
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    pub(crate) fn check(&self) -> Result<(), UsageError> {
        match self {
            Self::Close(code, _) if !code.is_sendable() => {
                Err(UsageError::InvalidCloseCode(code.0))
            }
            Self::Close(_, reason) if reason.len() > crate::MAX_CLOSE_REASON => {
                Err(UsageError::CloseReasonTooLong { len: reason.len() })
            }
            Self::Ping(payload) | Self::Pong(payload) if payload.len() > 125 => {
                Err(UsageError::ControlPayloadTooLong { len: payload.len() })
            }
            _ => Ok(()),
        }
    }
}

impl From<OwnedMessage> for Outgoing {
    fn from(message: OwnedMessage) -> Self {
        match message {
            OwnedMessage::Text(text) => Self::Text(text),
            OwnedMessage::Binary(data) => Self::Binary(data),
        }
    }
}

/// A server's answer to an upgrade request: accept it (optionally choosing a subprotocol and
/// adding headers) or reject it with an HTTP status.
///
/// The adapters' `accept_with` functions hand the [`Request`] (path, headers, `Origin`,
/// offered subprotocols) to a callback that returns one of these.
#[derive(Clone, Debug, Eq, PartialEq)]
pub struct Decision {
    /// `None` to accept; the status to reject with.
    reject: Option<u16>,
    subprotocol: Option<String>,
    headers: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
}

impl Decision {
    /// Accept the request, with no subprotocol and no extra headers.
    pub fn accept() -> Self {
        Self { reject: None, subprotocol: None, headers: Vec::new(), body: Vec::new() }
    }

    /// Reject the request with `status` (200–599, e.g. 403 for a forbidden origin); the
    /// transport is closed after the response.
    pub fn reject(status: u16) -> Self {
        Self { reject: Some(status), ..Self::accept() }
    }

    /// When accepting: choose `name`, which must be one of the client's
    /// [`subprotocols`](Request::subprotocols).
    pub fn subprotocol(mut self, name: impl Into<String>) -> Self {
        self.subprotocol = Some(name.into());
        self
    }

    /// Adds a header line to the response (a `Set-Cookie` on acceptance, a `Location` on a
    /// redirect...). Names must be HTTP tokens and values free of CR, LF and NUL.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<Vec<u8>>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// When rejecting: the response body.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// Whether this decision accepts the request.
    pub fn is_accept(&self) -> bool {
        self.reject.is_none()
    }
}

/// An HTTP response to an upgrade request, owned: the server's `101` on success, or its
/// refusal (status, headers and the start of the body).
#[derive(Clone, Debug, Eq, PartialEq)]
pub struct HttpResponse {
    status: u16,
    reason: String,
    headers: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
}

impl HttpResponse {
    /// The status code.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The reason phrase as sent.
    pub fn reason(&self) -> &str {
        &self.reason
    }

    /// Every header line (name, value), in the order sent.
    pub fn headers(&self) -> &[(String, Vec<u8>)] {
        &self.headers
    }

    /// The value of the first header called `name` (compared case-insensitively).
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| &v[..])
    }

    /// The subprotocol the server chose, if any.
    pub fn subprotocol(&self) -> Option<&str> {
        self.header("Sec-WebSocket-Protocol").and_then(|v| core::str::from_utf8(v).ok())
    }

    /// The start of the body: what had arrived with the head (empty for a `101`).
    pub fn body(&self) -> &[u8] {
        &self.body
    }
}

impl From<&Response<'_>> for HttpResponse {
    fn from(response: &Response<'_>) -> Self {
        Self {
            status: response.status(),
            reason: response.reason().into(),
            headers: response.headers().iter().map(|h| (h.name.into(), h.value.into())).collect(),
            body: response.body().into(),
        }
    }
}

impl core::fmt::Display for HttpResponse {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "HTTP {} {}", self.status, self.reason)
    }
}

/// How an opening handshake ended.
#[derive(Debug)]
pub(crate) enum Handshake {
    /// The connection is open; a client gets the server's `101`.
    Open(Option<HttpResponse>),
    /// Client: the server answered with another status.
    Refused(HttpResponse),
    /// Server: the application rejected the request with this status.
    Rejected(u16),
}

/// A `ws://` or `wss://` URL, split into what connecting needs.
#[derive(Clone, Debug, Eq, PartialEq)]
pub(crate) struct WsUrl {
    /// `wss`.
    pub(crate) secure: bool,
    /// `host:port` to connect to (IPv6 literals keep their brackets).
    pub(crate) address: String,
    /// The `Host` header: the authority, without the port when it is the scheme's default.
    pub(crate) host: String,
    /// The request target: path and query, starting with `/`.
    pub(crate) target: String,
}

impl WsUrl {
    /// Parses `ws://host[:port][/path][?query]` (or `wss://`); `None` if it is not one.
    pub(crate) fn parse(url: &str) -> Option<Self> {
        let (scheme, rest) = url.split_once("://")?;
        let secure = match scheme {
            s if s.eq_ignore_ascii_case("ws") => false,
            s if s.eq_ignore_ascii_case("wss") => true,
            _ => return None,
        };
        let split = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(split);
        let tail = tail.split('#').next().unwrap_or("");
        let target = match tail {
            "" => String::from("/"),
            t if t.starts_with('?') => alloc::format!("/{t}"),
            t => String::from(t),
        };
        if authority.is_empty() || authority.contains('@') {
            return None;
        }
        let default_port = if secure { 443 } else { 80 };
        // The port follows the last colon, unless that colon is inside an IPv6 literal.
        let (name, port) = match authority.rfind(':') {
            Some(colon) if !authority[colon..].contains(']') => {
                let port: u16 = authority[colon + 1..].parse().ok()?;
                (&authority[..colon], port)
            }
            _ => (authority, default_port),
        };
        if name.is_empty() {
            return None;
        }
        let host =
            if port == default_port { String::from(name) } else { alloc::format!("{name}:{port}") };
        Some(Self { secure, address: alloc::format!("{name}:{port}"), host, target })
    }
}

/// The read buffer: bytes read but not yet consumed by the connection, kept at the front.
///
/// It starts at [`INPUT_START`] bytes and grows (doubling, at most to
/// [`Config::receive_buffer_size`](crate::Config::receive_buffer_size)) when the connection
/// says it needs more room for a frame, or when a read filled all the room it was offered.
/// Memory is never zeroed just to be overwritten: an async adapter reads into the `Vec`'s
/// spare capacity ([`Driver::read_with`]), and a blocking read (which needs an initialized
/// slice) zeroes only space that was never initialized before
/// ([`Driver::input_space`]).
#[derive(Debug)]
struct InputBuffer {
    /// `buf[start..end]` holds the unconsumed bytes; `buf[..buf.len()]` is initialized
    /// (`buf.len() == end` after an async read, possibly more after a blocking one).
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// How large the buffer may be for the next read: grows from [`INPUT_START`] to `max`
    /// and is remembered when the buffer is released.
    size: usize,
    /// The receive buffer size the connection was configured with.
    max: usize,
    /// How many more bytes the connection said it needs, after its last look at the input.
    needed: usize,
    /// Whether the last read filled all the room it was offered.
    full_read: bool,
}

/// The read buffer's first size: enough for a handshake request and for small messages; it
/// grows when frames need more.
const INPUT_START: usize = 4096;

impl InputBuffer {
    fn new(max: usize) -> Self {
        Self {
            buf: Vec::new(),
            start: 0,
            end: 0,
            size: INPUT_START.min(max),
            max,
            needed: 0,
            full_read: false,
        }
    }

    fn is_empty(&self) -> bool {
        self.start == self.end
    }

    /// Moves the unconsumed bytes to the front, and decides how large the buffer must be
    /// for the next read: large enough for what the connection needs (a frame that fits
    /// the receive buffer must fit whole), doubled after a read that filled it.
    fn prepare(&mut self) {
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        let want = self.end + self.needed;
        if want > self.size || self.full_read {
            self.size = want.max(self.size.saturating_mul(2)).min(self.max);
        }
        self.needed = 0;
        self.full_read = false;
    }

    /// Free initialized space after the unconsumed bytes, for a read that needs an
    /// initialized slice; space is zeroed only the first time it is used.
    fn spare(&mut self) -> &mut [u8] {
        self.prepare();
        if self.buf.len() < self.size {
            self.buf.resize(self.size, 0);
        }
        &mut self.buf[self.end..]
    }

    /// `n` bytes were read into [`spare`](Self::spare).
    fn filled(&mut self, n: usize) {
        self.end = (self.end + n).min(self.buf.len());
        self.full_read = n > 0 && self.end == self.buf.len();
    }

    /// The buffer as a `Vec` holding just the unconsumed bytes, with spare capacity for the
    /// next read; `read` appends to it (through `BufMut`, without zeroing).
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    fn read_with<R>(&mut self, read: impl FnOnce(&mut Vec<u8>) -> R) -> R {
        self.prepare();
        self.buf.truncate(self.end);
        if self.buf.capacity() < self.size {
            self.buf.reserve_exact(self.size - self.end);
        }
        let before = self.end;
        let result = read(&mut self.buf);
        self.end = self.buf.len();
        self.full_read = self.end > before && self.end >= self.size;
        result
    }

    /// Appends `bytes` after the unconsumed bytes.
    fn append(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        self.prepare();
        self.buf.truncate(self.end);
        self.buf.extend_from_slice(bytes);
        self.end = self.buf.len();
    }

    /// Frees the buffer when it holds nothing, so an idle connection costs no buffer. The
    /// size it had grown to is kept for the next read.
    fn release_if_empty(&mut self) {
        if self.is_empty() {
            self.buf = Vec::new();
            self.start = 0;
            self.end = 0;
            self.needed = 0;
            self.full_read = false;
        }
    }
}

/// Bytes to write to the transport, in order: `buf[written..end]`, then a message's payload
/// kept as it is (the tail), then what was queued behind that payload.
#[derive(Debug, Default)]
struct OutputBuffer {
    /// `buf[written..end]` is still to be written. `buf[..buf.len()]` is initialized, and
    /// space past `end` is reused as it is: it is zeroed once per allocation, not per frame.
    buf: Vec<u8>,
    /// How many bytes at the front were already written.
    written: usize,
    /// Where the bytes to write end.
    end: usize,
    /// A server's message payload, written after `buf` without being copied (for a stream
    /// that takes vectored writes); empty when there is none.
    tail: Vec<u8>,
    /// How much of `tail` was written.
    tail_written: usize,
    /// Bytes queued while a tail waits, which go after it.
    after: Vec<u8>,
}

/// Output capacity kept between writes; a larger buffer (after a big message) is freed once
/// written, so an idle connection holds little.
const OUTPUT_KEEP: usize = 1024;

/// The smallest payload a server sends without copying it (when the stream takes vectored
/// writes): below it, copying is cheaper than another slice to write.
const ZERO_COPY_MIN: usize = 4096;

impl OutputBuffer {
    /// The next bytes to write (empty when everything was written).
    fn pending(&self) -> &[u8] {
        let head = &self.buf[self.written..self.end];
        if head.is_empty() {
            &self.tail[self.tail_written..]
        } else {
            head
        }
    }

    /// Everything still to write, in order, as three slices (some may be empty).
    fn parts(&self) -> [&[u8]; 3] {
        [&self.buf[self.written..self.end], &self.tail[self.tail_written..], &self.after]
    }

    /// Appends `bytes`, reusing initialized space first.
    fn append(&mut self, bytes: &[u8]) {
        if !self.tail.is_empty() {
            self.after.extend_from_slice(bytes);
            return;
        }
        let reuse = (self.buf.len() - self.end).min(bytes.len());
        let (now, rest) = bytes.split_at(reuse);
        self.buf[self.end..self.end + reuse].copy_from_slice(now);
        self.buf.extend_from_slice(rest);
        self.end += bytes.len();
    }

    /// Queues `payload` to be written as it is, after everything queued so far.
    fn push_tail(&mut self, payload: Vec<u8>) {
        if self.tail.is_empty() {
            self.tail = payload;
            self.tail_written = 0;
        } else {
            self.after.extend_from_slice(&payload);
        }
    }

    /// Runs `command` on at least `need` bytes of space at the end, keeping what it wrote;
    /// when the guess was short, tries once more with the size the command asked for.
    fn command(
        &mut self,
        need: usize,
        mut command: impl FnMut(&mut [u8]) -> Result<usize, UsageError>,
    ) -> Result<(), UsageError> {
        // Behind a tail (rare: a reply queued while a large message is being written), the
        // space comes from `after`, the plain way.
        let behind_tail = !self.tail.is_empty();
        let (buf, at) = if behind_tail {
            let at = self.after.len();
            (&mut self.after, at)
        } else {
            (&mut self.buf, self.end)
        };
        let mut size = need;
        let mut result = Err(UsageError::BufferTooSmall { required: size });
        for _ in 0..2 {
            if buf.len() < at + size {
                buf.resize(at + size, 0);
            }
            match command(&mut buf[at..]) {
                Ok(n) => {
                    result = Ok(at + n);
                    break;
                }
                Err(UsageError::BufferTooSmall { required }) if required > size => {
                    size = required;
                    result = Err(UsageError::BufferTooSmall { required });
                }
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        match (result, behind_tail) {
            (Ok(end), true) => self.after.truncate(end),
            (Ok(end), false) => self.end = end,
            (Err(e), true) => {
                self.after.truncate(at);
                return Err(e);
            }
            (Err(e), false) => return Err(e),
        }
        Ok(())
    }

    fn advance(&mut self, mut n: usize) {
        loop {
            let head = n.min(self.end - self.written);
            self.written += head;
            n -= head;
            let tail = n.min(self.tail.len() - self.tail_written);
            self.tail_written += tail;
            n -= tail;
            if self.written < self.end || self.tail_written < self.tail.len() {
                return;
            }
            // `buf` and the tail are written: free the payload, and what waited behind it
            // comes next.
            self.tail = Vec::new();
            self.tail_written = 0;
            self.written = 0;
            if self.after.is_empty() {
                self.end = 0;
                if self.buf.capacity() > OUTPUT_KEEP {
                    self.buf = Vec::new();
                }
                return;
            }
            self.buf = core::mem::take(&mut self.after);
            self.end = self.buf.len();
            if n == 0 {
                return;
            }
        }
    }
}

/// A [`Connection`] with its buffers: everything an adapter does that is not I/O.
#[derive(Debug)]
pub(crate) struct Driver {
    conn: Connection,
    input: InputBuffer,
    core: Parts,
    /// After a read straight into the message being reassembled
    /// ([`direct_read`](Self::direct_read)): the length of its buffer before the read; the
    /// bytes after it are input the connection has not seen yet.
    direct: Option<usize>,
}

/// The parts an event handler may touch while the event borrows the input.
#[derive(Debug)]
struct Parts {
    output: OutputBuffer,
    reassembler: Reassembler,
}

impl Driver {
    /// Wraps `conn`, and gathers what it owes already (a client's request).
    pub(crate) fn new(conn: Connection) -> Self {
        let capacity = conn.config().receive_buffer_len();
        let mut driver = Self {
            conn,
            input: InputBuffer::new(capacity),
            core: Parts { output: OutputBuffer::default(), reassembler: Reassembler::new() },
            direct: None,
        };
        driver.drain_transmit();
        driver
    }

    /// The connection.
    pub(crate) fn connection(&self) -> &Connection {
        &self.conn
    }

    /// Whether the connection is over (the transport is to be, or was, closed).
    pub(crate) fn is_closed(&self) -> bool {
        self.conn.state() == State::Closed
    }

    /// The bytes to write now.
    pub(crate) fn output(&self) -> &[u8] {
        self.core.output.pending()
    }

    /// How many bytes are still to write, in all.
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    pub(crate) fn output_len(&self) -> usize {
        self.core.output.parts().iter().map(|part| part.len()).sum()
    }

    /// Everything still to write, in order, for a vectored write (some slices may be empty);
    /// [`output`](Self::output) is the first non-empty one.
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    pub(crate) fn output_parts(&self) -> [&[u8]; 3] {
        self.core.output.parts()
    }

    /// `n` bytes of [`output`](Self::output) (or of [`output_parts`](Self::output_parts))
    /// were written.
    pub(crate) fn wrote(&mut self, n: usize) {
        self.core.output.advance(n);
    }

    /// Free space to read into, after the unconsumed bytes, for a read that needs an
    /// initialized slice (`std::io::Read`); call [`filled`](Self::filled) with how many were
    /// read. Space is zeroed only the first time it is offered.
    pub(crate) fn input_space(&mut self) -> &mut [u8] {
        self.input.spare()
    }

    /// `n` bytes were read into [`input_space`](Self::input_space).
    pub(crate) fn filled(&mut self, n: usize) {
        self.input.filled(n);
    }

    /// Lets `read` append to the read buffer, a `Vec` holding the unconsumed bytes with
    /// spare capacity for the read (for a reader that fills uninitialized memory, such as
    /// tokio's `read_buf`): nothing is zeroed.
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    pub(crate) fn read_with<R>(&mut self, read: impl FnOnce(&mut Vec<u8>) -> R) -> R {
        self.input.read_with(read)
    }

    /// Frees the read buffer if it holds nothing, and the output buffer if everything was
    /// written: call before going idle, so an idle connection holds no buffer.
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    pub(crate) fn release_buffers(&mut self) {
        self.input.release_if_empty();
        if self.output().is_empty() {
            self.core.output = OutputBuffer::default();
        }
    }

    /// The next deadline, for [`on_timeout`](Self::on_timeout).
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        self.conn.poll_timeout()
    }

    /// A deadline may have passed.
    pub(crate) fn on_timeout(&mut self, now: Instant) -> Result<(), Error> {
        let result = self.conn.handle_timeout(now);
        self.drain_transmit();
        result
    }

    /// The transport's read side ended.
    pub(crate) fn on_eof(&mut self, now: Instant) -> Result<(), Error> {
        let result = self.conn.receive_eof(now);
        self.drain_transmit();
        result
    }

    /// The transport failed: the connection is over, with nothing more to write.
    pub(crate) fn on_transport_error(&mut self, now: Instant) {
        let _ended = self.conn.receive_eof(now);
        self.core.output = OutputBuffer::default();
        self.input.release_if_empty();
    }

    /// Moves what the connection owes into the output buffer.
    fn drain_transmit(&mut self) {
        drain_transmit(&mut self.conn, &mut self.core.output);
    }

    /// Hands the buffered input to the connection until it yields an event, which `handle`
    /// turns into a result; `None` when more input is needed.
    fn next_event<R>(
        &mut self,
        now: Instant,
        handle: impl FnOnce(Event<'_>, &mut Connection, &mut Parts) -> R,
    ) -> Result<Option<R>, Error> {
        loop {
            let input = &mut self.input.buf[self.input.start..self.input.end];
            let received = match self.conn.receive(input, now) {
                Ok(received) => received,
                Err(e) => {
                    drain_transmit(&mut self.conn, &mut self.core.output);
                    return Err(e);
                }
            };
            self.input.start += received.consumed;
            self.input.needed = received.needed;
            if let Some(event) = received.event {
                let result = handle(event, &mut self.conn, &mut self.core);
                self.drain_transmit();
                return Ok(Some(result));
            }
            if received.consumed == 0 {
                self.drain_transmit();
                return Ok(None);
            }
        }
    }

    /// The next event from the buffered input, handed to `handle` as it is (zero-copy
    /// streaming); `None` when more input is needed.
    pub(crate) fn next_raw<R>(
        &mut self,
        now: Instant,
        handle: &mut dyn FnMut(Event<'_>) -> R,
    ) -> Result<Option<R>, Error> {
        self.next_event(now, |event, _, _| handle(event))
    }

    /// The next whole message or control frame from the buffered input; `None` when more
    /// input is needed.
    pub(crate) fn next_incoming(&mut self, now: Instant) -> Result<Option<Incoming>, Error> {
        if let Some(before) = self.direct.take() {
            if let Some(incoming) = self.receive_direct(before, now)? {
                return Ok(Some(incoming));
            }
        }
        loop {
            let next = self.next_event(now, |event, conn, parts| match event {
                Event::Message(_) => parts.reassembler.push(&event).map(Incoming::from),
                Event::Fragment(fragment) => {
                    // Room for the whole frame when its first piece comes (within the limits
                    // the connection checked against the frame's header): one allocation,
                    // and each byte copied once.
                    let rest = usize::try_from(conn.frame_remaining()).unwrap_or(0);
                    parts.reassembler.reserve(fragment.payload.len().saturating_add(rest));
                    parts.reassembler.push(&event).map(Incoming::from)
                }
                Event::Ping(payload) => Some(Incoming::Ping(payload.into())),
                Event::Pong(payload) => Some(Incoming::Pong(payload.into())),
                Event::Close(frame) => Some(Incoming::Close(Box::new(frame))),
                _ => None,
            })?;
            match next {
                Some(Some(incoming)) => return Ok(Some(incoming)),
                Some(None) => {}
                None => return Ok(None),
            }
        }
    }

    /// Lets `read` append up to `limit` bytes straight to the message being reassembled,
    /// when the read buffer is empty and the connection is in the middle of a data frame
    /// handed out in pieces (a frame larger than the read buffer): the frame's remaining
    /// payload then lands where the message is kept, and is unmasked and validated there
    /// by the next [`next_incoming`](Self::next_incoming), without being copied. `None` (and
    /// `read` not called) otherwise: read into the read buffer then.
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    pub(crate) fn direct_read<R>(
        &mut self,
        read: impl FnOnce(&mut Vec<u8>, usize) -> R,
    ) -> Option<R> {
        let rest = usize::try_from(self.conn.frame_remaining()).unwrap_or(0);
        let reassembler = &mut self.core.reassembler;
        if rest == 0
            || !self.input.is_empty()
            || self.direct.is_some()
            || !reassembler.in_progress()
        {
            return None;
        }
        // The read that filled the read buffer was the start of this frame, whose rest comes
        // here: no reason to grow the read buffer, which would only make the next large
        // frame's first read (and its copy into the message) larger.
        self.input.full_read = false;
        let buffer = reassembler.buffer_mut();
        // Reserved when the frame's first piece came (then a no-op): room for one read to
        // take the whole rest.
        buffer.reserve(rest);
        let before = buffer.len();
        let result = read(buffer, rest);
        if buffer.len() > before {
            self.direct = Some(before);
        }
        Some(result)
    }

    /// Hands the bytes read by [`direct_read`](Self::direct_read) (after `before` in the
    /// reassembly buffer) to the connection. In the middle of a frame handed out in pieces,
    /// the connection hands out every byte it is given as one piece, in place: the bytes stay
    /// where they are. Bytes it did not take (only if a read went past the frame) move to
    /// the read buffer.
    fn receive_direct(&mut self, before: usize, now: Instant) -> Result<Option<Incoming>, Error> {
        let buffer = self.core.reassembler.buffer_mut();
        let region = &mut buffer[before..];
        let start = region.as_ptr();
        let received = match self.conn.receive(region, now) {
            Ok(received) => received,
            Err(e) => {
                buffer.truncate(before);
                self.drain_transmit();
                return Err(e);
            }
        };
        let consumed = received.consumed;
        let piece = match received.event {
            Some(Event::Fragment(f))
                if f.payload.as_ptr() == start && f.payload.len() == consumed =>
            {
                Some(f.is_last)
            }
            _ => None,
        };
        debug_assert!(piece.is_some() || consumed == 0, "a piece of the frame, or nothing");
        let kept = if piece.is_some() { before + consumed } else { before };
        self.input.append(&buffer[before + consumed..]);
        buffer.truncate(kept);
        let message = piece.and_then(|is_last| self.core.reassembler.adopt(is_last));
        self.drain_transmit();
        Ok(message.map(Incoming::from))
    }

    /// Advances the opening handshake with the buffered input; `decide` answers a server's
    /// request. `None` when more input is needed.
    pub(crate) fn handshake(
        &mut self,
        now: Instant,
        decide: &mut dyn FnMut(&Request<'_>) -> Decision,
    ) -> Result<Option<Result<Handshake, UsageError>>, Error> {
        if self.conn.state() != State::Handshaking {
            return Ok(Some(Ok(Handshake::Open(None))));
        }
        self.next_event(now, |event, conn, parts| match event {
            Event::Request(request) => {
                let decision = decide(&request);
                answer(conn, &mut parts.output, &decision, now)
            }
            Event::Accepted(response) => Ok(Handshake::Open(Some((&response).into()))),
            Event::Rejected(response) => Ok(Handshake::Refused((&response).into())),
            // Nothing else comes before the handshake ends.
            _ => Ok(Handshake::Open(None)),
        })
    }

    /// Queues `message`.
    pub(crate) fn send(&mut self, message: &Outgoing, now: Instant) -> Result<(), UsageError> {
        match message {
            Outgoing::Text(text) => self.send_text(text),
            Outgoing::Binary(data) => self.send_binary(data),
            Outgoing::Fragment { kind, payload, is_last } => {
                self.send_fragment(*kind, payload, *is_last)
            }
            Outgoing::Ping(payload) => {
                self.command(payload.len(), |c, out| c.send_ping(payload, out))
            }
            Outgoing::Pong(payload) => {
                self.command(payload.len(), |c, out| c.send_pong(payload, out))
            }
            Outgoing::Close(code, reason) => self.close(*code, reason, now),
        }
    }

    /// Queues `message`, which the caller gives up: with `vectored` (the adapter writes
    /// [`output_parts`](Self::output_parts) with vectored writes), a server keeps a large
    /// message's payload as it is and writes it after the header, without copying it.
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    pub(crate) fn send_owned(
        &mut self,
        message: Outgoing,
        now: Instant,
        vectored: bool,
    ) -> Result<(), UsageError> {
        let zero_copy = |payload: &[u8]| {
            vectored && payload.len() >= ZERO_COPY_MIN && self.conn.role() == Role::Server
        };
        let (kind, payload) = match message {
            Outgoing::Binary(data) if zero_copy(&data) => (MessageKind::Binary, data),
            Outgoing::Text(text) if zero_copy(text.as_bytes()) => {
                (MessageKind::Text, text.into_bytes())
            }
            message => return self.send(&message, now),
        };
        let conn = &mut self.conn;
        let header = conn.send_capacity(payload.len()) - payload.len();
        let output = &mut self.core.output;
        output.command(header, |out| conn.send_header(kind, payload.len() as u64, out))?;
        output.push_tail(payload);
        Ok(())
    }

    /// Queues a text message.
    pub(crate) fn send_text(&mut self, text: &str) -> Result<(), UsageError> {
        if self.conn.role() == Role::Server {
            return self.send_unmasked(MessageKind::Text, text.as_bytes());
        }
        self.command(text.len(), |c, out| c.send_text(text, out))
    }

    /// Queues a binary message.
    pub(crate) fn send_binary(&mut self, data: &[u8]) -> Result<(), UsageError> {
        if self.conn.role() == Role::Server {
            return self.send_unmasked(MessageKind::Binary, data);
        }
        self.command(data.len(), |c, out| c.send_binary(data, out))
    }

    /// Server: queues a whole message as its header, then its payload appended as it is (a
    /// server does not mask), so the payload is copied once and no space is zeroed for it.
    fn send_unmasked(&mut self, kind: MessageKind, payload: &[u8]) -> Result<(), UsageError> {
        let conn = &mut self.conn;
        let header = conn.send_capacity(payload.len()) - payload.len();
        let output = &mut self.core.output;
        let want = output.end + header + payload.len();
        output.buf.reserve(want.saturating_sub(output.buf.len()));
        output.command(header, |out| conn.send_header(kind, payload.len() as u64, out))?;
        output.append(payload);
        Ok(())
    }

    /// Queues one frame of a fragmented message.
    pub(crate) fn send_fragment(
        &mut self,
        kind: MessageKind,
        payload: &[u8],
        is_last: bool,
    ) -> Result<(), UsageError> {
        self.command(payload.len(), |c, out| c.send_fragment(kind, payload, is_last, out))
    }

    /// Queues a close frame.
    pub(crate) fn close(
        &mut self,
        code: CloseCode,
        reason: &str,
        now: Instant,
    ) -> Result<(), UsageError> {
        self.command(reason.len() + 2, |c, out| c.close(code, reason, now, out))
    }

    /// Runs a command on the connection with room for a frame of `payload_len` bytes.
    fn command(
        &mut self,
        payload_len: usize,
        mut command: impl FnMut(&mut Connection, &mut [u8]) -> Result<usize, UsageError>,
    ) -> Result<(), UsageError> {
        let conn = &mut self.conn;
        let need = conn.send_capacity(payload_len);
        self.core.output.command(need, |out| command(conn, out))
    }
}

/// Writes the server's answer to a request into `output`.
fn answer(
    conn: &mut Connection,
    output: &mut OutputBuffer,
    decision: &Decision,
    now: Instant,
) -> Result<Handshake, UsageError> {
    let headers: Vec<(&str, &[u8])> =
        decision.headers.iter().map(|(n, v)| (n.as_str(), v.as_slice())).collect();
    let guess = 256
        + decision.body.len()
        + headers.iter().map(|(n, v)| n.len() + v.len() + 4).sum::<usize>();
    match decision.reject {
        None => {
            let mut accept = Accept::new().headers(&headers);
            if let Some(name) = &decision.subprotocol {
                accept = accept.subprotocol(name);
            }
            output.command(guess, |out| conn.accept(&accept, out, now))?;
            Ok(Handshake::Open(None))
        }
        Some(status) => {
            let reject = Reject::new(status).headers(&headers).body(&decision.body);
            output.command(guess, |out| conn.reject(&reject, out))?;
            Ok(Handshake::Rejected(status))
        }
    }
}

/// Moves what `conn` owes into `output`, through a small scratch buffer (small, because it is
/// zeroed on every call and usually nothing is owed; longer owed bytes take several turns).
fn drain_transmit(conn: &mut Connection, output: &mut OutputBuffer) {
    let mut scratch = [0u8; 128];
    while let Some(transmit) = conn.poll_transmit(&mut scratch) {
        match transmit {
            Transmit::Bytes(n) => output.append(&scratch[..n]),
            // The adapter closes the transport once the output is written and the state says
            // closed.
            Transmit::CloseTransport => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    #[test]
    fn urls() {
        let url = WsUrl::parse("ws://127.0.0.1:9001/runCase?case=1&agent=a").unwrap();
        assert_eq!(url.address, "127.0.0.1:9001");
        assert_eq!(url.host, "127.0.0.1:9001");
        assert_eq!(url.target, "/runCase?case=1&agent=a");
        assert!(!url.secure);
        let url = WsUrl::parse("WSS://example.com").unwrap();
        assert_eq!(
            (url.address.as_str(), url.host.as_str(), url.target.as_str()),
            ("example.com:443", "example.com", "/")
        );
        let url = WsUrl::parse("ws://[::1]:80?x#frag").unwrap();
        assert_eq!(
            (url.address.as_str(), url.host.as_str(), url.target.as_str()),
            ("[::1]:80", "[::1]", "/?x")
        );
        let url = WsUrl::parse("ws://[::1]/a").unwrap();
        assert_eq!(url.address, "[::1]:80");
        for bad in
            ["http://x/", "ws://", "ws://:80/", "ws://u@h/", "ws://h:port/", "ws://h:99999/", "x"]
        {
            assert_eq!(WsUrl::parse(bad), None, "{bad}");
        }
    }

    /// Masked client frames for `messages`, and a server driver to receive them.
    fn server_and_frames(config: crate::Config, messages: &[Vec<u8>]) -> (Driver, Vec<u8>) {
        let now = Instant::from_micros(0);
        let mut client = Connection::open_client(config.clone(), [7; 32], now);
        let mut wire = Vec::new();
        for message in messages {
            let mut out = vec![0; client.send_capacity(message.len())];
            let n = client.send_binary(message, &mut out).unwrap();
            wire.extend_from_slice(&out[..n]);
        }
        (Driver::new(Connection::open_server(config, now)), wire)
    }

    /// Feeds `wire` through `read` (which offers room and returns how much it took) and
    /// collects the messages, and the largest room offered.
    fn receive_all(
        driver: &mut Driver,
        mut wire: &[u8],
        mut read: impl FnMut(&mut Driver, &[u8]) -> (usize, usize),
    ) -> (Vec<Vec<u8>>, usize) {
        let now = Instant::from_micros(0);
        let (mut messages, mut largest) = (Vec::new(), 0);
        loop {
            while let Some(incoming) = driver.next_incoming(now).unwrap() {
                match incoming {
                    Incoming::Binary(data) => messages.push(data),
                    other => panic!("unexpected {other:?}"),
                }
            }
            if wire.is_empty() {
                return (messages, largest);
            }
            let (taken, room) = read(driver, wire);
            assert!(taken > 0, "no room offered");
            largest = largest.max(room);
            wire = &wire[taken..];
        }
    }

    #[test]
    fn the_read_buffer_starts_small_and_grows_for_a_whole_frame() {
        // 60,000 bytes of payload fit the default 64 KiB receive buffer: the frame must
        // arrive whole, so the buffer has to grow from 4 KiB.
        let messages = [vec![1; 10], vec![2; 60_000], vec![3; 100], vec![4; 200_000]];
        for blocking in [true, false] {
            let (mut driver, wire) = server_and_frames(crate::Config::new(), &messages);
            let (got, largest) = receive_all(&mut driver, &wire, |driver, wire| {
                if blocking {
                    let space = driver.input_space();
                    let room = space.len();
                    let n = room.min(wire.len());
                    space[..n].copy_from_slice(&wire[..n]);
                    driver.filled(n);
                    (n, room)
                } else {
                    driver.read_with(|buf| {
                        let room = buf.capacity() - buf.len();
                        let n = room.min(wire.len());
                        buf.extend_from_slice(&wire[..n]);
                        (n, room)
                    })
                }
            });
            assert_eq!(got, messages, "blocking: {blocking}");
            assert!(largest <= 64 * 1024 + 64, "offered {largest} bytes");
        }
    }

    #[test]
    fn the_first_read_is_small() {
        let (mut driver, _) = server_and_frames(crate::Config::new(), &[]);
        assert_eq!(driver.input_space().len(), INPUT_START);
        let (mut driver, _) =
            server_and_frames(crate::Config::new().receive_buffer_size(1000), &[]);
        assert_eq!(driver.read_with(|buf| buf.capacity()), 1000);
    }

    #[test]
    fn a_payload_kept_as_it_is_goes_out_in_order() {
        let mut out = OutputBuffer::default();
        out.append(b"H");
        out.push_tail(b"payload".to_vec());
        // Queued behind the payload: a reply, then another message copied.
        out.append(b"P");
        out.command(2, |buf| {
            buf[..2].copy_from_slice(b"QR");
            Ok(2)
        })
        .unwrap();
        out.push_tail(b"xy".to_vec());
        let expected = b"HpayloadPQRxy";
        assert_eq!(out.parts().concat(), expected);
        // Written in uneven steps, across the parts as a vectored write would.
        let mut sent = Vec::new();
        for step in [2, 3, 5, 1, 100] {
            let all = out.parts().concat();
            let n = step.min(all.len());
            sent.extend_from_slice(&all[..n]);
            out.advance(n);
            assert_eq!(out.pending().is_empty(), out.parts().concat().is_empty());
        }
        assert_eq!(sent, expected);
        assert!(out.pending().is_empty() && out.tail.is_empty() && out.after.is_empty());
    }

    #[test]
    fn a_server_sends_a_large_payload_without_copying_it() {
        let now = Instant::from_micros(0);
        let config = crate::Config::new();
        let mut server = Driver::new(Connection::open_server(config.clone(), now));
        let payload: Vec<u8> = (0..100_000u32).map(|i| i as u8).collect();
        let sent = payload.clone();
        let pointer = sent.as_ptr();
        server.send_owned(Outgoing::Binary(sent), now, true).unwrap();
        let [head, tail, after] = server.output_parts();
        assert_eq!((head.len(), tail.as_ptr(), after.len()), (10, pointer, 0));
        let mut wire = server.output_parts().concat();
        server.wrote(wire.len());
        assert!(server.output().is_empty());
        let mut client = Driver::new(Connection::open_client(config, [1; 32], now));
        wire.extend_from_slice(&[0x81, 0x02, b'o', b'k']);
        let mut received = Vec::new();
        let mut rest = &wire[..];
        while !rest.is_empty() {
            let n = client.read_with(|buf| {
                let n = (buf.capacity() - buf.len()).min(rest.len());
                buf.extend_from_slice(&rest[..n]);
                n
            });
            rest = &rest[n..];
            while let Some(incoming) = client.next_incoming(now).unwrap() {
                received.push(incoming);
            }
        }
        assert_eq!(received, [Incoming::Binary(payload), Incoming::Text("ok".into())]);
    }

    #[test]
    fn output_buffer_retries_with_the_required_size() {
        let mut out = OutputBuffer::default();
        let mut calls = 0;
        out.command(1, |buf| {
            calls += 1;
            if buf.len() < 10 {
                return Err(UsageError::BufferTooSmall { required: 10 });
            }
            buf[..10].copy_from_slice(b"0123456789");
            Ok(10)
        })
        .unwrap();
        assert_eq!((calls, out.pending()), (2, &b"0123456789"[..]));
        out.advance(4);
        assert_eq!(out.pending(), b"456789");
        out.advance(6);
        assert!(out.pending().is_empty() && out.written == 0);
        // The space is reused as it is, not zeroed again.
        out.append(b"ab");
        out.command(3, |buf| {
            assert_eq!(&buf[..3], b"234");
            buf[..3].copy_from_slice(b"cde");
            Ok(3)
        })
        .unwrap();
        assert_eq!(out.pending(), b"abcde");
    }
}
