//! The client's reading of the server's answer (RFC 6455 §4.1): parse any status, and check a
//! `101` against what was offered.

use super::client::ClientOffer;
use super::extension::{extension_name, extension_offers, split_offers};
use crate::error::ErrorKind;
#[cfg(not(feature = "alloc"))]
use crate::http::list::INLINE_HEADERS;
use crate::http::list::{header_limit, HeaderList};
use crate::http::{count_headers, find_header, header_contains_token, header_values, Header};

/// The server's answer to an upgrade request, borrowing the bytes it was parsed from.
///
/// Any status can be held: a `101` is checked against what was offered before the connection
/// opens; anything else is the server's refusal, to be handled "per HTTP procedures" (RFC 6455 §4.1), e.g. by
/// following a redirect's [`location`](Self::location).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response<'i> {
    status: u16,
    reason: &'i str,
    headers: HeaderList<'i>,
    body: &'i [u8],
    content_length: Option<usize>,
}

impl<'i> Response<'i> {
    /// The status code, e.g. 101.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The reason phrase as sent (empty if it was missing or not valid UTF-8).
    pub fn reason(&self) -> &'i str {
        self.reason
    }

    /// Every header line, in the order sent.
    pub fn headers(&self) -> &[Header<'i>] {
        &self.headers
    }

    /// The value of the first header called `name` (compared case-insensitively).
    pub fn header(&self, name: &str) -> Option<&'i [u8]> {
        find_header(&self.headers, name)
    }

    /// The subprotocol the server chose: the first `Sec-WebSocket-Protocol` value, if it is
    /// UTF-8.
    pub fn subprotocol(&self) -> Option<&'i str> {
        self.header("Sec-WebSocket-Protocol").and_then(|v| core::str::from_utf8(v).ok())
    }

    /// The extensions the server accepted, each as its raw string with parameters, from every
    /// `Sec-WebSocket-Extensions` header; ones that are not UTF-8 are skipped.
    pub fn extensions(&self) -> impl Iterator<Item = &'i str> + '_ {
        extension_offers(&self.headers, "Sec-WebSocket-Extensions")
    }

    /// The `Location` header, for a redirect.
    pub fn location(&self) -> Option<&'i [u8]> {
        self.header("Location")
    }

    /// The start of the body: the bytes that followed the head in the input, cut at
    /// `Content-Length` if the response has one. Possibly incomplete: only what had arrived.
    /// Always empty for 1xx, 204 and 304 responses, which have no body (after a `101` the
    /// bytes belong to the WebSocket connection).
    pub fn body(&self) -> &'i [u8] {
        self.body
    }

    /// This response with its body taken from `after_head`, the bytes that followed the head,
    /// by the rules of [`body`](Self::body).
    pub(crate) fn with_body(mut self, after_head: &'i [u8]) -> Self {
        self.body = if self.status < 200 || self.status == 204 || self.status == 304 {
            &[]
        } else {
            match self.content_length {
                Some(len) => after_head.get(..len).unwrap_or(after_head),
                None => after_head,
            }
        };
        self
    }
}

/// A `Content-Length` value's number, or `None` if it is not all digits or overflows.
fn parse_content_length(value: &[u8]) -> Option<usize> {
    if value.is_empty() {
        return None;
    }
    value.iter().try_fold(0usize, |n, &b| {
        if b.is_ascii_digit() {
            n.checked_mul(10)?.checked_add(usize::from(b - b'0'))
        } else {
            None
        }
    })
}

/// Parses the server's answer to an upgrade request.
///
/// `input` starts with the complete head (ending in `\r\n\r\n`); any bytes after the head
/// become the [`body`](Response::body). More than `max_headers` header lines is
/// [`ErrorKind::TooManyHeaders`]; HTTP/1.0 is [`ErrorKind::HttpVersion`] (RFC 6455 §4.1: the
/// version "MUST be at least 1.1"); anything else that is not a complete HTTP/1.1 response
/// head is [`ErrorKind::MalformedHttp`]. The answer is not validated: see
/// [`validate_response`].
pub(crate) fn parse_response(input: &[u8], max_headers: usize) -> Result<Response<'_>, ErrorKind> {
    // A header line takes at least three bytes, so this many slots always suffice. Without
    // `alloc` they are on the stack, and no more than `INLINE_HEADERS` of them.
    let max_headers = header_limit(max_headers);
    let slots = max_headers.min(input.len() / 3 + 1);
    #[cfg(feature = "alloc")]
    let mut raw = alloc::vec![httparse::EMPTY_HEADER; slots];
    #[cfg(not(feature = "alloc"))]
    let mut raw = [httparse::EMPTY_HEADER; INLINE_HEADERS];
    let mut parsed = httparse::Response::new(&mut raw[..slots]);
    let head_len = match parsed.parse(input) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Err(ErrorKind::MalformedHttp),
        Err(httparse::Error::TooManyHeaders) => {
            return Err(ErrorKind::TooManyHeaders { limit: max_headers })
        }
        Err(_) => return Err(ErrorKind::MalformedHttp),
    };
    let (Some(version), Some(status)) = (parsed.version, parsed.code) else {
        return Err(ErrorKind::MalformedHttp);
    };
    if version < 1 {
        return Err(ErrorKind::HttpVersion);
    }
    let headers = HeaderList::from_parsed(parsed.headers);
    let content_length = find_header(&headers, "Content-Length").and_then(parse_content_length);
    let response = Response {
        status,
        reason: parsed.reason.unwrap_or(""),
        headers,
        body: &[],
        content_length,
    };
    Ok(response.with_body(input.get(head_len..).unwrap_or(&[])))
}

/// Checks a `101 Switching Protocols` answer against what was offered (RFC 6455 §4.1, where
/// each failure means "the client MUST _Fail the WebSocket Connection_"):
///
/// - the status is 101 ([`ErrorKind::MalformedHttp`] otherwise: other statuses are not
///   answers to validate but refusals to handle);
/// - "If the response lacks an |Upgrade| header field or the |Upgrade| header field contains
///   a value that is not an ASCII case-insensitive match for the value "websocket"" — here:
///   unless some `Upgrade` lists `websocket` ([`ErrorKind::MissingUpgrade`]);
/// - "If the response lacks a |Connection| header field or the |Connection| header field
///   doesn't contain a token that is an ASCII case-insensitive match for the value
///   "Upgrade"" ([`ErrorKind::MissingConnectionUpgrade`]);
/// - "If the response lacks a |Sec-WebSocket-Accept| header field or the
///   |Sec-WebSocket-Accept| contains a value other than the base64-encoded SHA-1 of the
///   concatenation of the |Sec-WebSocket-Key| (as a string, not base64-decoded) with the
///   string "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"" — or has it more than once
///   ([`ErrorKind::InvalidAccept`]);
/// - "If the response includes a |Sec-WebSocket-Protocol| header field and this header field
///   indicates the use of a subprotocol that was not present in the client's handshake" —
///   or holds more than one value, or appears more than once
///   ([`ErrorKind::UnofferedSubprotocol`]);
/// - "If the response includes a |Sec-WebSocket-Extensions| header field and this header
///   field indicates the use of an extension that was not present in the client's
///   handshake" ([`ErrorKind::UnofferedExtension`]).
///
/// Subprotocols are compared exactly, extension names ASCII case-insensitively.
pub(crate) fn validate_response(
    response: &Response<'_>,
    offer: &ClientOffer,
) -> Result<Agreed, ErrorKind> {
    if response.status != 101 {
        return Err(ErrorKind::MalformedHttp);
    }
    let headers = &response.headers;
    if !header_contains_token(headers, "Upgrade", "websocket") {
        return Err(ErrorKind::MissingUpgrade);
    }
    if !header_contains_token(headers, "Connection", "Upgrade") {
        return Err(ErrorKind::MissingConnectionUpgrade);
    }
    if count_headers(headers, "Sec-WebSocket-Accept") != 1
        || find_header(headers, "Sec-WebSocket-Accept") != Some(&offer.accept[..])
    {
        return Err(ErrorKind::InvalidAccept);
    }
    match count_headers(headers, "Sec-WebSocket-Protocol") {
        0 => {}
        1 => {
            // RFC 6455 §4.1: the client MUST fail the connection if the server "has indicated
            // a subprotocol not requested by the client"; §4.2.2 lets the server select "at
            // most one". So the whole value must be one offered name, exactly what
            // `Response::subprotocol` reports ("chat," or "chat, chat" is not).
            let value = find_header(headers, "Sec-WebSocket-Protocol").unwrap_or(&[]);
            if !offer.subprotocols.contains(value) {
                return Err(ErrorKind::UnofferedSubprotocol);
            }
        }
        _ => return Err(ErrorKind::UnofferedSubprotocol),
    }
    for extension in header_values(headers, "Sec-WebSocket-Extensions").flat_map(split_offers) {
        let name = core::str::from_utf8(extension).map(extension_name).unwrap_or("");
        if name.is_empty() || !offer.extensions.contains_ignore_case(name.as_bytes()) {
            return Err(ErrorKind::UnofferedExtension);
        }
    }
    #[cfg(feature = "deflate")]
    if let Some(config) = &offer.deflate {
        let answers = extension_offers(headers, "Sec-WebSocket-Extensions");
        let deflate = super::deflate::check_answer(answers, config)
            .map_err(ErrorKind::InvalidDeflateResponse)?;
        if deflate.is_none() && config.mode == super::DeflateMode::Required {
            return Err(ErrorKind::DeflateRequired);
        }
        return Ok(Agreed { deflate });
    }
    Ok(Agreed::default())
}

/// What a valid `101` agreed to beyond the upgrade itself.
#[derive(Clone, Copy, Debug, Default, Eq, PartialEq)]
pub(crate) struct Agreed {
    /// permessage-deflate, if the server accepted it.
    #[cfg(feature = "deflate")]
    pub(crate) deflate: Option<super::DeflateParams>,
}
