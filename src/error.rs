//! The two kinds of failure: the peer's ([`Error`]) and the caller's ([`UsageError`]).
//!
//! An [`Error`] means the connection failed because of what the peer sent (or did not send in
//! time); it says what the peer did and what was queued for the peer in return: a close frame
//! with the code RFC 6455 §7.4.1 asks for, or an HTTP error response during the opening
//! handshake. A [`UsageError`] means a call was refused because it broke the API's rules
//! (sending after close, an invalid local close code, a buffer too small); the connection is
//! unchanged and nothing was written.

use core::fmt;

use crate::wire::close::CloseCode;

/// The connection failed because of the peer.
///
/// Returned once, by the call that found the failure; the reply it describes has been queued,
/// so keep calling [`Connection::poll_transmit`](crate::Connection::poll_transmit) until it
/// says to close the transport.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub struct Error {
    kind: ErrorKind,
    reply: Reply,
}

impl Error {
    pub(crate) const fn new(kind: ErrorKind, reply: Reply) -> Self {
        Self { kind, reply }
    }

    /// What the peer did.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The close code queued for the peer, if a close frame was queued.
    pub fn close_code(&self) -> Option<CloseCode> {
        match self.reply {
            Reply::Close(code) => Some(code),
            _ => None,
        }
    }

    /// The HTTP status of the error response queued for the peer during the opening
    /// handshake, if one was queued.
    pub fn http_status(&self) -> Option<u16> {
        match self.reply {
            Reply::Http(status) => Some(status),
            _ => None,
        }
    }

    /// The close code that describes this failure locally (RFC 6455 §7.1.5): the code sent to
    /// the peer, or 1006 ([`CloseCode::ABNORMAL`]) when the connection ended without one.
    pub fn local_close_code(&self) -> CloseCode {
        self.close_code().unwrap_or(CloseCode::ABNORMAL)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.kind)?;
        match self.reply {
            Reply::Close(code) => write!(f, " (sent close {code})"),
            Reply::Http(status) => write!(f, " (sent HTTP {status})"),
            Reply::Nothing => Ok(()),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for Error {}

/// What was queued for the peer when the connection failed.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub(crate) enum Reply {
    /// A close frame with this code.
    Close(CloseCode),
    /// An HTTP error response with this status.
    Http(u16),
    /// Nothing: the peer is gone or unresponsive, or we are the client of a failed handshake.
    Nothing,
}

/// What the peer did wrong. Each variant's documentation names the rule it broke.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The opening handshake is not valid HTTP/1.1 (or the response to our request is not).
    MalformedHttp,
    /// The upgrade request's method is not GET (RFC 6455 §4.1). Answered with 405.
    MethodNotGet,
    /// The HTTP version is older than HTTP/1.1 (RFC 6455 §4.1).
    HttpVersion,
    /// The request has no `Host` header (RFC 6455 §4.1).
    MissingHost,
    /// A header that may appear once appeared more than once.
    DuplicateHeader(&'static str),
    /// The `Upgrade` header does not contain the token `websocket`.
    MissingUpgrade,
    /// The `Connection` header does not contain the token `Upgrade`.
    MissingConnectionUpgrade,
    /// `Sec-WebSocket-Key` is missing or does not decode to exactly 16 bytes.
    InvalidKey,
    /// `Sec-WebSocket-Version` is missing or not 13. Answered with 426 and
    /// `Sec-WebSocket-Version: 13`.
    UnsupportedVersion,
    /// The opening handshake's head grew past the limit without ending. A server answers
    /// with 431; a client sends nothing and closes.
    HeadTooLarge {
        /// The configured limit in bytes.
        limit: usize,
    },
    /// The opening handshake has more header lines than the limit. A server answers with
    /// 431; a client sends nothing and closes.
    TooManyHeaders {
        /// The configured limit.
        limit: usize,
    },
    /// The server's `Sec-WebSocket-Accept` does not match our key (RFC 6455 §4.1).
    InvalidAccept,
    /// The server chose a subprotocol we did not offer.
    UnofferedSubprotocol,
    /// The server accepted an extension we did not offer.
    UnofferedExtension,
    /// The opening handshake did not finish before its deadline.
    HandshakeTimeout,
    /// An RSV bit is set and no extension defines it (RFC 6455 §5.2).
    ReservedBits,
    /// The frame's opcode is reserved (RFC 6455 §5.2).
    ReservedOpcode(u8),
    /// A client sent an unmasked frame (RFC 6455 §5.1).
    UnmaskedFrame,
    /// A server sent a masked frame (RFC 6455 §5.1).
    MaskedFrame,
    /// A 64-bit payload length has its most significant bit set (RFC 6455 §5.2).
    LengthOutOfRange,
    /// A control frame's payload is longer than 125 bytes (RFC 6455 §5.5).
    ControlFrameTooLong,
    /// A control frame is fragmented (RFC 6455 §5.5).
    FragmentedControlFrame,
    /// A continuation frame arrived with no fragmented message open (RFC 6455 §5.4).
    UnexpectedContinuation,
    /// A new text or binary frame arrived while a fragmented message was open (RFC 6455 §5.4).
    ExpectedContinuation,
    /// A text message or a close reason is not valid UTF-8 (RFC 6455 §8.1).
    InvalidUtf8,
    /// A close frame carries a code that may not be sent (RFC 6455 §7.4).
    InvalidCloseCode(u16),
    /// A close frame's body is a single byte, too short for a code (RFC 6455 §5.5.1).
    OneByteClosePayload,
    /// A frame declared a payload longer than the frame limit; refused from its header.
    FrameTooLarge {
        /// The declared payload length.
        size: u64,
        /// The configured limit.
        limit: u64,
    },
    /// A message grew longer than the message limit; refused from the header of the frame
    /// that would have crossed it.
    MessageTooLarge {
        /// The message's size as charged against the limit, including that frame: its
        /// payload plus [`Config::FRAGMENT_OVERHEAD`](crate::Config::FRAGMENT_OVERHEAD) for
        /// each frame after the first.
        size: u64,
        /// The configured limit.
        limit: u64,
    },
    /// A fragmented message has more frames than the limit.
    TooManyFragments {
        /// The configured limit.
        limit: u32,
    },
    /// The peer did not answer a keepalive ping before the pong deadline.
    PongTimeout,
    /// Nothing was received for longer than the idle timeout. The closing handshake was
    /// started with 1001 (going away); the connection goes on until it completes.
    IdleTimeout,
    /// The closing handshake did not finish before its deadline.
    CloseTimeout,
    /// The transport ended before the closing handshake completed (RFC 6455 §7.1.5: 1006).
    AbnormalClosure,
    /// A compressed message's data does not inflate (RFC 7692 §7.2.2); failed with 1007
    /// (invalid payload data), as for invalid UTF-8.
    #[cfg(feature = "deflate")]
    InflateFailed,
    /// permessage-deflate is [required](crate::DeflateMode::Required) and the peer did not
    /// agree to it. A server answers with 400.
    #[cfg(feature = "deflate")]
    DeflateRequired,
    /// The server's permessage-deflate answer breaks RFC 7692; the reason says how.
    #[cfg(feature = "deflate")]
    InvalidDeflateResponse(crate::handshake::DeflateResponseError),
    /// A compressed message arrived and [`Connection::receive`](crate::Connection::receive)
    /// was given no room to inflate it into: the caller must use
    /// [`receive_with`](crate::Connection::receive_with) (as [`RecvBuffer`](crate::RecvBuffer)
    /// does) once compression can be negotiated. Failed with 1011 (internal error).
    #[cfg(feature = "deflate")]
    NoInflateSpace,
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::MalformedHttp => f.write_str("malformed HTTP in the opening handshake"),
            Self::MethodNotGet => f.write_str("upgrade request method is not GET"),
            Self::HttpVersion => f.write_str("HTTP version older than HTTP/1.1"),
            Self::MissingHost => f.write_str("upgrade request has no Host header"),
            Self::DuplicateHeader(name) => write!(f, "header {name} appears more than once"),
            Self::MissingUpgrade => f.write_str("Upgrade header does not contain \"websocket\""),
            Self::MissingConnectionUpgrade => {
                f.write_str("Connection header does not contain \"Upgrade\"")
            }
            Self::InvalidKey => {
                f.write_str("Sec-WebSocket-Key is missing or does not decode to 16 bytes")
            }
            Self::UnsupportedVersion => f.write_str("Sec-WebSocket-Version is missing or not 13"),
            Self::HeadTooLarge { limit } => {
                write!(f, "opening handshake head exceeds the {limit}-byte limit")
            }
            Self::TooManyHeaders { limit } => {
                write!(f, "opening handshake has more than the limit of {limit} headers")
            }
            Self::InvalidAccept => f.write_str("Sec-WebSocket-Accept does not match the key"),
            Self::UnofferedSubprotocol => f.write_str("server chose a subprotocol not offered"),
            Self::UnofferedExtension => f.write_str("server accepted an extension not offered"),
            Self::HandshakeTimeout => f.write_str("opening handshake timed out"),
            Self::ReservedBits => f.write_str("RSV bits set without a negotiated extension"),
            Self::ReservedOpcode(op) => write!(f, "reserved opcode {op:#x}"),
            Self::UnmaskedFrame => f.write_str("client sent an unmasked frame"),
            Self::MaskedFrame => f.write_str("server sent a masked frame"),
            Self::LengthOutOfRange => f.write_str("64-bit payload length with the top bit set"),
            Self::ControlFrameTooLong => f.write_str("control frame payload over 125 bytes"),
            Self::FragmentedControlFrame => f.write_str("fragmented control frame"),
            Self::UnexpectedContinuation => {
                f.write_str("continuation frame without a message in progress")
            }
            Self::ExpectedContinuation => {
                f.write_str("new data frame while a fragmented message is in progress")
            }
            Self::InvalidUtf8 => f.write_str("invalid UTF-8 in a text message or close reason"),
            Self::InvalidCloseCode(code) => write!(f, "close frame with invalid code {code}"),
            Self::OneByteClosePayload => f.write_str("close frame with a one-byte payload"),
            Self::FrameTooLarge { size, limit } => {
                write!(f, "frame of {size} bytes exceeds the {limit}-byte frame limit")
            }
            Self::MessageTooLarge { size, limit } => {
                write!(f, "message of {size} bytes exceeds the {limit}-byte message limit")
            }
            Self::TooManyFragments { limit } => {
                write!(f, "message has more than the limit of {limit} fragments")
            }
            Self::PongTimeout => f.write_str("peer did not answer a keepalive ping in time"),
            Self::IdleTimeout => f.write_str("nothing received within the idle timeout"),
            Self::CloseTimeout => f.write_str("closing handshake timed out"),
            Self::AbnormalClosure => {
                f.write_str("transport closed without a closing handshake (1006)")
            }
            #[cfg(feature = "deflate")]
            Self::InflateFailed => f.write_str("compressed message data does not inflate"),
            #[cfg(feature = "deflate")]
            Self::DeflateRequired => f.write_str("permessage-deflate required but not agreed"),
            #[cfg(feature = "deflate")]
            Self::InvalidDeflateResponse(why) => {
                write!(f, "invalid permessage-deflate answer: {why}")
            }
            #[cfg(feature = "deflate")]
            Self::NoInflateSpace => {
                f.write_str("compressed message received without inflate space")
            }
        }
    }
}

/// A call was refused because it broke the rules of the API. Nothing was written and the
/// connection's state is unchanged; the connection goes on.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
#[non_exhaustive]
pub enum UsageError {
    /// The output buffer is too small; `required` bytes would fit what was asked.
    BufferTooSmall {
        /// The number of bytes needed.
        required: usize,
    },
    /// The opening handshake has not completed, so no frame can be sent yet.
    NotOpen,
    /// A close frame was sent (or queued), so no data frame can follow it (RFC 6455 §5.5.1).
    Closing,
    /// The connection is closed.
    Closed,
    /// This close code may not be sent (RFC 6455 §7.4): 1004–1006, 1015, below 1000, and
    /// unassigned codes below 3000 are refused, never rewritten.
    InvalidCloseCode(u16),
    /// A close reason is longer than 123 bytes.
    CloseReasonTooLong {
        /// The reason's length in bytes.
        len: usize,
    },
    /// A ping or pong payload is longer than 125 bytes (RFC 6455 §5.5).
    ControlPayloadTooLong {
        /// The payload's length in bytes.
        len: usize,
    },
    /// `accept` or `reject` was called with no validated request waiting for an answer.
    NoPendingRequest,
    /// The call is for the other role (a client cannot accept, a server cannot connect).
    WrongRole,
    /// `accept` chose a subprotocol the client did not offer.
    SubprotocolNotOffered,
    /// A header name is not an HTTP token, or a value contains CR, LF or NUL (which would let
    /// a caller's data inject headers).
    InvalidHeader,
    /// A rejection status outside 200–599.
    InvalidStatus(u16),
    /// A new message was started while a fragmented one is still open.
    MessageInProgress,
    /// Without `alloc`: the client's subprotocols, or its extensions' names, take more than
    /// the 128 bytes a connection keeps to check the server's answer against.
    OfferTooLong,
}

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::BufferTooSmall { required } => {
                write!(f, "output buffer too small: {required} bytes required")
            }
            Self::NotOpen => f.write_str("the opening handshake has not completed"),
            Self::Closing => f.write_str("a close frame was already sent"),
            Self::Closed => f.write_str("the connection is closed"),
            Self::InvalidCloseCode(code) => write!(f, "close code {code} may not be sent"),
            Self::CloseReasonTooLong { len } => {
                write!(f, "close reason of {len} bytes exceeds 123 bytes")
            }
            Self::ControlPayloadTooLong { len } => {
                write!(f, "control frame payload of {len} bytes exceeds 125 bytes")
            }
            Self::NoPendingRequest => f.write_str("no upgrade request is waiting for an answer"),
            Self::WrongRole => f.write_str("this call is for the other role"),
            Self::SubprotocolNotOffered => f.write_str("subprotocol was not offered by the client"),
            Self::InvalidHeader => f.write_str("invalid header name or value"),
            Self::InvalidStatus(status) => write!(f, "invalid rejection status {status}"),
            Self::MessageInProgress => f.write_str("a fragmented message is still in progress"),
            Self::OfferTooLong => {
                f.write_str("the offered subprotocols or extension names exceed 128 bytes")
            }
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for UsageError {}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn display_names_the_limit_and_the_reply() {
        let e = Error::new(
            ErrorKind::FrameTooLarge { size: 20_000, limit: 16_384 },
            Reply::Close(CloseCode::MESSAGE_TOO_BIG),
        );
        assert_eq!(
            e.to_string(),
            "frame of 20000 bytes exceeds the 16384-byte frame limit (sent close 1009)"
        );
        assert_eq!(e.close_code(), Some(CloseCode::MESSAGE_TOO_BIG));
        assert_eq!(e.http_status(), None);
        let h = Error::new(ErrorKind::UnsupportedVersion, Reply::Http(426));
        assert_eq!(h.http_status(), Some(426));
        assert_eq!(h.local_close_code(), CloseCode::ABNORMAL);
    }
}
