//! The server's refusal of an upgrade request: any HTTP status, headers and body.

use super::accept::valid_extra_headers;
use crate::error::UsageError;
use crate::http::status::reason_phrase;
use crate::http::write::{put_decimal, put_header, Counter, Sink, SliceWriter};

/// The application's refusal of an upgrade request: an HTTP response that closes the
/// connection (RFC 6455 §4.2.2: "If the server chooses not to accept the connection, it MUST
/// return an appropriate HTTP error code").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reject<'a> {
    status: u16,
    headers: &'a [(&'a str, &'a [u8])],
    body: &'a [u8],
}

impl<'a> Reject<'a> {
    /// A refusal with `status`, which must be in 200–599 (for example 403, or a 3xx redirect
    /// with a `Location` header), no extra headers and an empty body.
    pub fn new(status: u16) -> Self {
        Self { status, headers: &[], body: &[] }
    }

    /// Adds header lines (name, value) after the status line.
    ///
    /// Names must be HTTP tokens and values free of CR, LF and NUL, and the framing headers
    /// the response writes itself (`Content-Length`, `Transfer-Encoding`, `Connection`) may
    /// not be added; otherwise the refusal is refused with [`UsageError::InvalidHeader`].
    pub fn headers(mut self, headers: &'a [(&'a str, &'a [u8])]) -> Self {
        self.headers = headers;
        self
    }

    /// Sets the response body; `Content-Length` is written from its length.
    pub fn body(mut self, body: &'a [u8]) -> Self {
        self.body = body;
        self
    }

    /// The status code.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The extra header lines.
    #[cfg(test)]
    pub(crate) fn extra_headers(&self) -> &'a [(&'a str, &'a [u8])] {
        self.headers
    }

    /// The body.
    #[cfg(test)]
    pub(crate) fn body_bytes(&self) -> &'a [u8] {
        self.body
    }
}

/// Headers a refusal may not add, because the response writes its own framing.
const REJECT_RESERVED: [&str; 3] = ["Content-Length", "Transfer-Encoding", "Connection"];

/// Whether a response with `status` may carry neither a body nor (for 204) a
/// `Content-Length` (RFC 9110 §6.4.1 and §8.6).
fn bodiless(status: u16) -> bool {
    status == 204 || status == 304
}

/// Writes the refusal.
fn emit_reject(sink: &mut impl Sink, reject: &Reject<'_>) {
    sink.put(b"HTTP/1.1 ");
    put_decimal(sink, usize::from(reject.status));
    sink.put(b" ");
    sink.put(reason_phrase(reject.status).as_bytes());
    sink.put(b"\r\n");
    for &(name, value) in reject.headers {
        put_header(sink, name, value);
    }
    if !bodiless(reject.status) {
        sink.put(b"Content-Length: ");
        put_decimal(sink, reject.body.len());
        sink.put(b"\r\n");
    }
    sink.put(b"Connection: close\r\n\r\n");
    sink.put(reject.body);
}

/// The exact length [`write_reject`] writes for this refusal (valid or not).
pub(crate) fn reject_len(reject: &Reject<'_>) -> usize {
    let mut counter = Counter(0);
    emit_reject(&mut counter, reject);
    counter.0
}

/// Writes the refusal into `out`, returning its length: `HTTP/1.1 {status} {reason}`, the
/// extra headers, `Content-Length` (left out for 204 and 304, which have no body),
/// `Connection: close`, then the body.
///
/// Errors, with nothing written: a status outside 200–599, or a body with 204 or 304
/// ([`UsageError::InvalidStatus`]); an invalid or reserved header
/// ([`UsageError::InvalidHeader`]); `out` shorter than the response
/// ([`UsageError::BufferTooSmall`] with the exact length).
pub(crate) fn write_reject(reject: &Reject<'_>, out: &mut [u8]) -> Result<usize, UsageError> {
    let status = reject.status;
    if !(200..=599).contains(&status) || (bodiless(status) && !reject.body.is_empty()) {
        return Err(UsageError::InvalidStatus(status));
    }
    if !valid_extra_headers(reject.headers, &REJECT_RESERVED) {
        return Err(UsageError::InvalidHeader);
    }
    let required = reject_len(reject);
    if out.len() < required {
        return Err(UsageError::BufferTooSmall { required });
    }
    emit_reject(&mut SliceWriter { buf: out, pos: 0 }, reject);
    Ok(required)
}
