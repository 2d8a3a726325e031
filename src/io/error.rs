//! The heap adapters' error type: who failed, and how. Generic over the transport's error;
//! `std` is needed only for the conversions to and from `std::io::Error`.

use alloc::boxed::Box;
use alloc::string::String;
use core::fmt;
#[cfg(feature = "std")]
use std::io;

use crate::error::UsageError;
use crate::io::driver::Handshake;
use crate::io::owned::HttpResponse;

/// Why an adapter call failed. Each variant says who failed and what happened. `E` is the
/// transport's error: `std::io::Error` for the std and tokio adapters. (The embedded adapter,
/// which has no heap for a refusal's headers, has its own
/// `wsmachine::embedded::Error`, with the same variants.)
#[derive(Debug)]
#[non_exhaustive]
pub enum AdapterError<E = DefaultTransportError> {
    /// The peer broke the protocol, or a deadline passed (handshake, pong, idle, close). The
    /// reply the RFC asks for (a close frame or an HTTP error status) was sent if it could
    /// be; [`crate::error::Error::kind`] says what the peer did.
    Protocol(crate::error::Error),
    /// The call broke the API's rules (an invalid close code, a message after close, an
    /// invalid header); nothing was sent.
    Usage(UsageError),
    /// The transport failed (connection reset, broken pipe, ...). The connection is over.
    Io(E),
    /// Client: the server refused the upgrade with this non-`101` response (status, headers
    /// and the start of its body).
    Refused(Box<HttpResponse>),
    /// Server: the application's decision rejected the request with this HTTP status; the
    /// response was sent and the transport closed.
    Rejected {
        /// The status sent.
        status: u16,
    },
    /// The connection is closed: nothing more can be sent.
    Closed,
    /// The connection's send queue is full (the peer reads more slowly than messages come):
    /// the message was not queued. With [`SendQueueFull::Close`](crate::SendQueueFull) the
    /// connection is being closed with 1008 as well.
    SendQueueFull,
    /// The URL is not a `ws://host[:port]/path` URL (or it is `wss://`, which needs a TLS
    /// stream: connect one yourself and call `connect`).
    InvalidUrl(String),
}

/// The transport error [`AdapterError`] carries when none is named: `std::io::Error` with
/// `std`, and without it an uninhabited type (name the embedded transport's error then).
#[cfg(feature = "std")]
pub type DefaultTransportError = io::Error;

/// The transport error [`AdapterError`] carries when none is named: `std::io::Error` with
/// `std`, and without it an uninhabited type (name the embedded transport's error then).
#[cfg(not(feature = "std"))]
pub type DefaultTransportError = core::convert::Infallible;

impl<E: fmt::Display> fmt::Display for AdapterError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Protocol(e) => write!(f, "WebSocket protocol failure: {e}"),
            Self::Usage(e) => write!(f, "refused call: {e}"),
            Self::Io(e) => write!(f, "transport error: {e}"),
            Self::Refused(response) => {
                write!(f, "server refused the WebSocket upgrade with {response}")
            }
            Self::Rejected { status } => write!(f, "upgrade request rejected with HTTP {status}"),
            Self::Closed => f.write_str("the WebSocket connection is closed"),
            Self::SendQueueFull => f.write_str("the WebSocket connection's send queue is full"),
            Self::InvalidUrl(url) => write!(f, "not a ws:// URL: {url:?}"),
        }
    }
}

#[cfg(feature = "std")]
impl<E: std::error::Error + 'static> std::error::Error for AdapterError<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Protocol(e) => Some(e),
            Self::Usage(e) => Some(e),
            Self::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl<E> From<crate::error::Error> for AdapterError<E> {
    fn from(e: crate::error::Error) -> Self {
        Self::Protocol(e)
    }
}

impl<E> From<UsageError> for AdapterError<E> {
    fn from(e: UsageError) -> Self {
        match e {
            UsageError::Closed | UsageError::Closing => Self::Closed,
            e => Self::Usage(e),
        }
    }
}

#[cfg(feature = "std")]
impl From<io::Error> for AdapterError {
    fn from(e: io::Error) -> Self {
        Self::Io(e)
    }
}

#[cfg(feature = "std")]
impl From<AdapterError> for io::Error {
    fn from(e: AdapterError) -> Self {
        match e {
            AdapterError::Io(e) => e,
            e => io::Error::other(e),
        }
    }
}

/// What a finished opening handshake means for the caller: the connection is open (with the
/// server's `101` for a client), or the error saying who refused or failed.
pub(crate) fn handshake_outcome<E>(
    ended: Handshake<HttpResponse>,
) -> Result<Option<HttpResponse>, AdapterError<E>> {
    match ended {
        Handshake::Open(response) => Ok(response),
        Handshake::Refused(response) => Err(AdapterError::Refused(Box::new(response))),
        Handshake::Rejected(status) => Err(AdapterError::Rejected { status }),
        Handshake::Failed(e) => Err(AdapterError::Protocol(e)),
        Handshake::Usage(e) => Err(e.into()),
        Handshake::Closed => Err(AdapterError::Closed),
    }
}
