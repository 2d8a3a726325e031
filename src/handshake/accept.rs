//! The server's acceptance of an upgrade request: the `101 Switching Protocols` answer.

use super::request::Offer;
use crate::error::UsageError;
use crate::http::valid_header;
use crate::http::write::{put_header, Counter, Sink, SliceWriter};

/// The application's acceptance of an upgrade request: the `101 Switching Protocols` answer.
///
/// By default no subprotocol is chosen and no headers are added.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Accept<'a> {
    subprotocol: Option<&'a str>,
    headers: &'a [(&'a str, &'a [u8])],
}

impl<'a> Accept<'a> {
    /// An acceptance with no subprotocol and no extra headers.
    pub fn new() -> Self {
        Self::default()
    }

    /// Chooses `name`, which must be one the client offered ([`Request::subprotocols`](crate::Request::subprotocols)).
    ///
    /// RFC 6455 §4.2.2: the value "MUST be derived from" the client's list, "and thus MUST
    /// be one of the values" it offered; otherwise the answer is refused with
    /// [`UsageError::SubprotocolNotOffered`].
    pub fn subprotocol(mut self, name: &'a str) -> Self {
        self.subprotocol = Some(name);
        self
    }

    /// Adds header lines (name, value) after the handshake's own.
    ///
    /// Names must be HTTP tokens and values free of CR, LF and NUL, and the headers the
    /// handshake writes itself (`Upgrade`, `Connection`, `Sec-WebSocket-Accept`,
    /// `Sec-WebSocket-Protocol`) may not be repeated; otherwise the answer is refused with
    /// [`UsageError::InvalidHeader`].
    pub fn headers(mut self, headers: &'a [(&'a str, &'a [u8])]) -> Self {
        self.headers = headers;
        self
    }

    /// The chosen subprotocol, if any.
    #[cfg(test)]
    pub(crate) fn selected_subprotocol(&self) -> Option<&'a str> {
        self.subprotocol
    }

    /// The extra header lines.
    #[cfg(test)]
    pub(crate) fn extra_headers(&self) -> &'a [(&'a str, &'a [u8])] {
        self.headers
    }
}

/// Headers an acceptance may not add, because the handshake writes them.
const ACCEPT_RESERVED: [&str; 4] =
    ["Upgrade", "Connection", "Sec-WebSocket-Accept", "Sec-WebSocket-Protocol"];

/// Whether every extra header is valid and none is one of `reserved`.
pub(super) fn valid_extra_headers(headers: &[(&str, &[u8])], reserved: &[&str]) -> bool {
    headers.iter().all(|&(name, value)| {
        valid_header(name, value) && !reserved.iter().any(|r| r.eq_ignore_ascii_case(name))
    })
}

/// Writes the `101` answer.
fn emit_accept(sink: &mut impl Sink, offer: &Offer, accept: &Accept<'_>) {
    sink.put(b"HTTP/1.1 101 Switching Protocols\r\n");
    sink.put(b"Upgrade: websocket\r\n");
    sink.put(b"Connection: Upgrade\r\n");
    put_header(sink, "Sec-WebSocket-Accept", &offer.accept);
    if let Some(name) = accept.subprotocol {
        put_header(sink, "Sec-WebSocket-Protocol", name.as_bytes());
    }
    #[cfg(feature = "deflate")]
    if let Some(params) = &offer.deflate {
        sink.put(b"Sec-WebSocket-Extensions: ");
        super::deflate::write_answer(sink, params);
        sink.put(b"\r\n");
    }
    for &(name, value) in accept.headers {
        put_header(sink, name, value);
    }
    sink.put(b"\r\n");
}

/// The exact length [`write_accept`] writes for this answer (valid or not).
pub(crate) fn accept_len(offer: &Offer, accept: &Accept<'_>) -> usize {
    let mut counter = Counter(0);
    emit_accept(&mut counter, offer, accept);
    counter.0
}

/// Writes the `101 Switching Protocols` answer to `offer` into `out`, returning its length.
///
/// RFC 6455 §4.2.2 lists what the answer holds: the status line, "an |Upgrade| header field
/// with value "websocket"", "a |Connection| header field with value "Upgrade"", "a
/// |Sec-WebSocket-Accept| header field" with the key's hash, and optionally "a
/// |Sec-WebSocket-Protocol| header field, with a value /subprotocol/". The application's
/// extra headers follow.
///
/// Errors, with nothing written: a subprotocol the client did not offer
/// ([`UsageError::SubprotocolNotOffered`]); an invalid or reserved extra header
/// ([`UsageError::InvalidHeader`]); `out` shorter than the answer
/// ([`UsageError::BufferTooSmall`] with the exact length).
pub(crate) fn write_accept(
    offer: &Offer,
    accept: &Accept<'_>,
    out: &mut [u8],
) -> Result<usize, UsageError> {
    if let Some(name) = accept.subprotocol {
        if !offer.offers_subprotocol(name) {
            return Err(UsageError::SubprotocolNotOffered);
        }
    }
    if !valid_extra_headers(accept.headers, &ACCEPT_RESERVED) {
        return Err(UsageError::InvalidHeader);
    }
    // The extensions header is the handshake's own once it agreed to compression.
    #[cfg(feature = "deflate")]
    if offer.deflate.is_some()
        && !valid_extra_headers(accept.headers, &["Sec-WebSocket-Extensions"])
    {
        return Err(UsageError::InvalidHeader);
    }
    let required = accept_len(offer, accept);
    if out.len() < required {
        return Err(UsageError::BufferTooSmall { required });
    }
    emit_accept(&mut SliceWriter { buf: out, pos: 0 }, offer, accept);
    Ok(required)
}
