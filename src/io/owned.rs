//! The owned types every adapter speaks: what is received and sent, a server's decision on
//! an upgrade request, and the HTTP response a client gets.

use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;

use crate::buffer::reassemble::OwnedMessage;
use crate::buffer::shared::SharedMessage;
use crate::connection::{send, MessageKind};
use crate::error::UsageError;
#[cfg(doc)]
use crate::handshake::Request;
use crate::handshake::{Accept, Reject, Response};
use crate::wire::close::{CloseCode, CloseFrame};

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
    /// [`Connection::send_fragment`](crate::Connection::send_fragment)).
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
    /// Server: a whole message encoded once for many connections (a broadcast); its frame is
    /// written by reference, never copied per connection (see [`SharedMessage`]).
    Shared(SharedMessage),
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
    /// They are the connection's own checks ([`send::close_frame`],
    /// [`send::check_control_payload`]), for a sender that has no connection at hand.
    pub(crate) fn check(&self) -> Result<(), UsageError> {
        match self {
            Self::Close(code, reason) => send::close_frame(*code, reason).map(|_frame| ()),
            Self::Ping(payload) | Self::Pong(payload) => send::check_control_payload(payload),
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
    pub(crate) reject: Option<u16>,
    pub(crate) subprotocol: Option<String>,
    pub(crate) headers: Vec<(String, Vec<u8>)>,
    pub(crate) body: Vec<u8>,
}

/// A [`Decision`] as the core's builders.
pub(crate) enum Answer<'a> {
    /// Accept the upgrade.
    Accept(Accept<'a>),
    /// Reject it.
    Reject(Reject<'a>),
}

impl Decision {
    /// Hands the decision, as the core's [`Accept`] or [`Reject`], to `write`.
    pub(crate) fn answer<R>(&self, write: impl FnOnce(Answer<'_>) -> R) -> R {
        let headers: Vec<(&str, &[u8])> =
            self.headers.iter().map(|(n, v)| (n.as_str(), v.as_slice())).collect();
        match self.reject {
            None => {
                let mut accept = Accept::new().headers(&headers);
                if let Some(name) = &self.subprotocol {
                    accept = accept.subprotocol(name);
                }
                write(Answer::Accept(accept))
            }
            Some(status) => {
                write(Answer::Reject(Reject::new(status).headers(&headers).body(&self.body)))
            }
        }
    }

    /// About how many bytes the response takes (the output grows if it takes more).
    pub(crate) fn size_guess(&self) -> usize {
        256 + self.body.len()
            + self.headers.iter().map(|(n, v)| n.len() + v.len() + 4).sum::<usize>()
            + self.subprotocol.as_ref().map_or(0, String::len)
    }

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
