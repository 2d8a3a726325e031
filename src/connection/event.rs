//! What flows out of a [`Connection`]: what `receive` did and the event it found (borrowing
//! the caller's input), what a command wrote, and what `poll_transmit` asks for.

#[cfg(doc)]
use super::Connection;
use crate::handshake::{Request, Response};
use crate::wire::close::CloseFrame;

/// What [`Connection::receive`] did with the input.
#[derive(Debug)]
#[must_use = "drop `consumed` bytes from the front of the input and handle the event"]
#[non_exhaustive]
pub struct Received<'i> {
    /// How many bytes at the front of the input were used; drop them before the next call.
    pub consumed: usize,
    /// At most one event.
    pub event: Option<Event<'i>>,
    /// When there is no event: at least this many more bytes are needed for the next one
    /// (0 when no input is wanted, e.g. while a server's accept or reject is awaited).
    pub needed: usize,
}

impl<'i> Received<'i> {
    pub(super) const fn nothing(needed: usize) -> Self {
        Self { consumed: 0, event: None, needed }
    }

    pub(super) const fn event(consumed: usize, event: Event<'i>) -> Self {
        Self { consumed, event: Some(event), needed: 0 }
    }
}

/// Something the peer did, borrowing the caller's input.
#[derive(Debug)]
#[non_exhaustive]
pub enum Event<'i> {
    /// Server: a validated upgrade request. Answer it with [`Connection::accept`] or
    /// [`Connection::reject`]; until then the machine reads nothing more.
    Request(Request<'i>),
    /// Client: the server accepted the upgrade (101 with a valid `Sec-WebSocket-Accept`).
    /// The connection is open.
    Accepted(Response<'i>),
    /// Client: the server answered with another status. The response carries its status,
    /// headers and the start of its body (for a redirect or an error page). The connection is
    /// over: nothing more is sent or read, and the transport's close is owed to
    /// [`poll_transmit`](Connection::poll_transmit). A `1xx` interim answer counts as a
    /// refusal too (a WebSocket server sends none before its `101`).
    Rejected(Response<'i>),
    /// A whole message that arrived in one frame and is wholly in the input: the zero-copy
    /// fast path. Text is validated UTF-8.
    Message(Message<'i>),
    /// A piece of a message that is fragmented, or whose frame is larger than the receive
    /// buffer. Text pieces have been validated as far as they go.
    Fragment(Fragment<'i>),
    /// A ping; when pongs are automatic its pong is already owed to
    /// [`poll_transmit`](Connection::poll_transmit).
    Ping(&'i [u8]),
    /// A pong (solicited or not).
    Pong(&'i [u8]),
    /// The peer's close frame. If we had not sent one, the reply is already owed to
    /// [`poll_transmit`](Connection::poll_transmit).
    Close(CloseFrame),
}

/// A whole message, borrowing the caller's input.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub enum Message<'i> {
    /// A text message (valid UTF-8).
    Text(&'i str),
    /// A binary message.
    Binary(&'i [u8]),
}

/// The kind of a data message.
#[derive(Clone, Copy, Debug, Eq, Hash, PartialEq)]
pub enum MessageKind {
    /// Text (UTF-8).
    Text,
    /// Binary.
    Binary,
}

/// A piece of a message, borrowing the caller's input.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub struct Fragment<'i> {
    /// The message's kind.
    pub kind: MessageKind,
    /// The bytes of this piece (possibly empty), unmasked.
    pub payload: &'i [u8],
    /// Whether this is the message's first piece.
    pub is_first: bool,
    /// Whether this is the message's last piece.
    pub is_last: bool,
}

/// What a command wrote: the first [`len`](Self::len) bytes of the `out` buffer it was given
/// (owed bytes, then the command's frame). They must reach the transport: the connection
/// already counts the frame as sent (a close, say, starts the close deadline), so dropping
/// this without writing them loses the frame.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
#[must_use = "write these bytes of `out` to the transport, or the frame is lost"]
pub struct Written(pub(super) usize);

impl Written {
    #[cfg(test)]
    pub(crate) const fn new(len: usize) -> Self {
        Self(len)
    }

    /// How many bytes at the front of `out` to write.
    pub const fn len(self) -> usize {
        self.0
    }

    /// Whether nothing was written (never the case for a command that succeeded).
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The bytes to write: the front of the `out` buffer the command wrote into.
    pub fn bytes(self, out: &[u8]) -> &[u8] {
        &out[..self.0.min(out.len())]
    }
}

/// What [`Connection::poll_transmit`] asks of the caller.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
#[must_use]
pub enum Transmit {
    /// Write the first `n` bytes of the output buffer to the transport.
    Bytes(usize),
    /// Close the transport now (for TCP: shut down the write side and close the socket).
    /// RFC 6455 §7.1.1: the server closes the TCP connection first; a client does so only
    /// when the server did not within the close deadline, or the handshake failed.
    CloseTransport,
}
