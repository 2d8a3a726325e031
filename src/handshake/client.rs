//! The client side of the opening handshake (RFC 6455 §4.1): write the upgrade request, then
//! parse and validate the server's answer.

use super::names::Names;

use super::extension::{extension_name, split_offers};
use super::key::{accept_key, encode_key};
use crate::error::UsageError;
use crate::http::write::{put_header, Counter, Sink, SliceWriter};
use crate::http::{is_token, trim_ows, valid_header, valid_value};

/// The upgrade request a client sends: where to connect and what to offer.
///
/// Built with [`new`](Self::new) and the builder methods; nothing is checked until the request
/// is written, when any invalid part is refused with [`UsageError::InvalidHeader`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientRequest<'a> {
    host: &'a str,
    target: &'a str,
    origin: Option<&'a str>,
    subprotocols: &'a [&'a str],
    extensions: &'a [&'a str],
    headers: &'a [(&'a str, &'a [u8])],
}

impl<'a> ClientRequest<'a> {
    /// A request for `target` (path and query, e.g. `/chat?x=1`; it must start with `/`) on
    /// `host` (the authority, with `:port` if not the scheme's default), offering nothing.
    ///
    /// RFC 6455 §4.1: "The request MUST contain a |Host| header field whose value contains
    /// /host/ plus optionally ":" followed by /port/ (when not using the default port)".
    pub fn new(host: &'a str, target: &'a str) -> Self {
        Self { host, target, origin: None, subprotocols: &[], extensions: &[], headers: &[] }
    }

    /// Sends an `Origin` header (RFC 6455 §4.1: browser clients "MUST" send one; others may).
    pub fn origin(mut self, origin: &'a str) -> Self {
        self.origin = Some(origin);
        self
    }

    /// Offers these subprotocols, most preferred first, in `Sec-WebSocket-Protocol`. Each
    /// must be an HTTP token and they must be distinct (RFC 6455 §4.1: the elements "MUST be
    /// non-empty strings with characters in the range U+0021 to U+007E not including
    /// separator characters ... and MUST all be unique strings").
    pub fn subprotocols(mut self, subprotocols: &'a [&'a str]) -> Self {
        self.subprotocols = subprotocols;
        self
    }

    /// Offers these extensions in `Sec-WebSocket-Extensions`, each a full offer with its
    /// parameters, e.g. `permessage-deflate; client_max_window_bits`.
    pub fn extensions(mut self, extensions: &'a [&'a str]) -> Self {
        self.extensions = extensions;
        self
    }

    /// Adds header lines (name, value) after the handshake's own, e.g. `Authorization`.
    ///
    /// Names must be HTTP tokens and values free of CR, LF and NUL; headers the handshake
    /// writes itself (`Host`, `Upgrade`, `Connection`, `Origin`, the `Sec-WebSocket-*`
    /// headers) and body framing headers (`Content-Length`, `Transfer-Encoding`) may not be
    /// added.
    pub fn headers(mut self, headers: &'a [(&'a str, &'a [u8])]) -> Self {
        self.headers = headers;
        self
    }

    /// The `Host` value.
    pub fn host(&self) -> &'a str {
        self.host
    }

    /// The request target (path and query).
    pub fn target(&self) -> &'a str {
        self.target
    }

    /// The `Origin` value, if one is sent.
    #[cfg(test)]
    pub(crate) fn origin_header(&self) -> Option<&'a str> {
        self.origin
    }

    /// The offered subprotocols.
    #[cfg(test)]
    pub(crate) fn offered_subprotocols(&self) -> &'a [&'a str] {
        self.subprotocols
    }

    /// The offered extensions.
    #[cfg(test)]
    pub(crate) fn offered_extensions(&self) -> &'a [&'a str] {
        self.extensions
    }

    /// The extra header lines.
    #[cfg(test)]
    pub(crate) fn extra_headers(&self) -> &'a [(&'a str, &'a [u8])] {
        self.headers
    }
}

/// What validating the server's answer needs: the expected `Sec-WebSocket-Accept` value and
/// what was offered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ClientOffer {
    pub(super) accept: [u8; 28],
    pub(super) subprotocols: Names,
    /// The names of the extensions offered.
    pub(super) extensions: Names,
    /// The permessage-deflate settings offered, if they were.
    #[cfg(feature = "deflate")]
    pub(crate) deflate: Option<super::DeflateConfig>,
}

/// Headers a client request may not add: the handshake writes them, or they would frame a body.
const REQUEST_RESERVED: [&str; 11] = [
    "Host",
    "Upgrade",
    "Connection",
    "Origin",
    "Sec-WebSocket-Key",
    "Sec-WebSocket-Version",
    "Sec-WebSocket-Protocol",
    "Sec-WebSocket-Extensions",
    "Sec-WebSocket-Accept",
    "Content-Length",
    "Transfer-Encoding",
];

/// Whether `host` can be a `Host` value: non-empty visible ASCII, with none of the characters
/// that end an authority (`/`, `?`, `#`) or start userinfo (`@`). Ports and IPv6 literals
/// (`[::1]:8080`) pass; international names must be given in their ASCII (punycode) form.
fn valid_host(host: &str) -> bool {
    !host.is_empty()
        && host.bytes().all(|b| b.is_ascii_graphic() && !matches!(b, b'/' | b'?' | b'#' | b'@'))
}

/// Whether `target` can be an origin-form request target: `/` then visible ASCII (no spaces,
/// which would break the request line), and no fragment (RFC 6455 §3: fragment identifiers
/// "MUST NOT be used on these URIs").
fn valid_target(target: &str) -> bool {
    target.starts_with('/') && target.bytes().all(|b| b.is_ascii_graphic() && b != b'#')
}

/// Whether the subprotocols are distinct tokens. Quadratic, on the caller's own short list
/// (a client offers a handful): no copy to sort, so no allocation.
fn valid_subprotocols(subprotocols: &[&str]) -> bool {
    subprotocols
        .iter()
        .enumerate()
        .all(|(i, p)| is_token(p.as_bytes()) && !subprotocols[..i].iter().any(|q| q == p))
}

/// Whether every offer in `offers` is a valid header value with a token for each name.
fn valid_extension_offers(offers: &[&str]) -> bool {
    offers.iter().all(|offer| {
        valid_value(offer.as_bytes())
            && !trim_ows(offer.as_bytes()).is_empty()
            && offer_names(offer).all(|name| name.is_some_and(|n| is_token(n.as_bytes())))
    })
}

/// The extension names in one offer (`None` for a part that is not UTF-8).
fn offer_names(offer: &str) -> impl Iterator<Item = Option<&str>> {
    split_offers(offer.as_bytes()).map(|part| core::str::from_utf8(part).ok().map(extension_name))
}

/// Writes `items` joined by `, `.
fn put_list(sink: &mut impl Sink, items: &[&str]) {
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            sink.put(b", ");
        }
        sink.put(item.as_bytes());
    }
}

/// Writes the upgrade request, with `extra` offered after the request's own extensions.
fn emit_request(
    sink: &mut impl Sink,
    request: &ClientRequest<'_>,
    key: &[u8; 24],
    extra: Option<&str>,
) {
    sink.put(b"GET ");
    sink.put(request.target.as_bytes());
    sink.put(b" HTTP/1.1\r\n");
    put_header(sink, "Host", request.host.as_bytes());
    sink.put(b"Upgrade: websocket\r\n");
    sink.put(b"Connection: Upgrade\r\n");
    put_header(sink, "Sec-WebSocket-Key", key);
    sink.put(b"Sec-WebSocket-Version: 13\r\n");
    if let Some(origin) = request.origin {
        put_header(sink, "Origin", origin.as_bytes());
    }
    if !request.subprotocols.is_empty() {
        sink.put(b"Sec-WebSocket-Protocol: ");
        put_list(sink, request.subprotocols);
        sink.put(b"\r\n");
    }
    if !request.extensions.is_empty() || extra.is_some() {
        sink.put(b"Sec-WebSocket-Extensions: ");
        put_list(sink, request.extensions);
        if let Some(extra) = extra {
            if !request.extensions.is_empty() {
                sink.put(b", ");
            }
            sink.put(extra.as_bytes());
        }
        sink.put(b"\r\n");
    }
    for &(name, value) in request.headers {
        put_header(sink, name, value);
    }
    sink.put(b"\r\n");
}

#[cfg(test)]
pub(crate) fn write_request(
    request: &ClientRequest<'_>,
    key: [u8; 16],
) -> Result<(alloc::vec::Vec<u8>, ClientOffer), UsageError> {
    let (head, offer) = prepare_request(request, key, None)?;
    let mut bytes = alloc::vec![0; head.len()];
    head.write(&mut bytes)?;
    Ok((bytes, offer))
}

/// A validated upgrade request, ready to be written: see [`prepare_request`].
#[derive(Clone, Copy, Debug)]
pub(crate) struct RequestHead<'r, 'a> {
    request: &'r ClientRequest<'a>,
    key: [u8; 24],
    extra: Option<&'r str>,
}

impl RequestHead<'_, '_> {
    /// Its length in bytes.
    pub(crate) fn len(&self) -> usize {
        let mut counter = Counter(0);
        emit_request(&mut counter, self.request, &self.key, self.extra);
        counter.0
    }

    /// Writes it at the start of `out`, returning its length; all or nothing.
    pub(crate) fn write(&self, out: &mut [u8]) -> Result<usize, UsageError> {
        let required = self.len();
        if out.len() < required {
            return Err(UsageError::BufferTooSmall { required });
        }
        let mut writer = SliceWriter { buf: out, pos: 0 };
        emit_request(&mut writer, self.request, &self.key, self.extra);
        Ok(required)
    }

    /// It, on the heap.
    #[cfg(feature = "alloc")]
    pub(crate) fn to_vec(self) -> alloc::vec::Vec<u8> {
        let mut bytes = alloc::vec::Vec::with_capacity(self.len());
        emit_request(&mut bytes, self.request, &self.key, self.extra);
        bytes
    }
}

/// Validates the upgrade request with the 16-byte nonce `key`, offering the extension `extra`
/// (built by this crate, so valid) after the request's own; returns the head to write and
/// what validating the answer needs.
///
/// RFC 6455 §4.1: the request "MUST be a valid HTTP request", its method "MUST be GET, and the
/// HTTP version MUST be at least 1.1", it "MUST contain an |Upgrade| header field whose value
/// MUST include the "websocket" keyword", "a |Connection| header field whose value MUST
/// include the "Upgrade" token", "a header field with the name |Sec-WebSocket-Key|" whose
/// value is "a nonce consisting of a randomly selected 16-byte value that has been
/// base64-encoded", and "a header field with the name |Sec-WebSocket-Version|. The value of
/// this header field MUST be 13". `key` MUST be "chosen randomly for each connection"; that
/// is the caller's duty.
///
/// Refused with [`UsageError::InvalidHeader`]: an empty host or one with whitespace,
/// controls, `/`, `?`, `#` or `@`; a target not starting with `/` or holding whitespace,
/// controls or `#`; an origin or extension with CR, LF or NUL; a subprotocol that is not a
/// token or is repeated; an extension without a token name; an invalid or reserved extra
/// header.
pub(crate) fn prepare_request<'r, 'a>(
    request: &'r ClientRequest<'a>,
    key: [u8; 16],
    extra: Option<&'r str>,
) -> Result<(RequestHead<'r, 'a>, ClientOffer), UsageError> {
    if !valid_host(request.host)
        || !valid_target(request.target)
        || !request.origin.map_or(true, |o| valid_value(o.as_bytes()))
        || !valid_subprotocols(request.subprotocols)
        || !request.headers.iter().all(|&(name, value)| {
            valid_header(name, value)
                && !REQUEST_RESERVED.iter().any(|r| r.eq_ignore_ascii_case(name))
        })
    {
        return Err(UsageError::InvalidHeader);
    }
    if !valid_extension_offers(request.extensions) {
        return Err(UsageError::InvalidHeader);
    }
    let names = request.extensions.iter().flat_map(|offer| offer_names(offer).flatten());
    let (extensions, all_kept) = Names::collect(names.chain(extra.map(extension_name)));
    let (subprotocols, all_kept_too) = Names::collect(request.subprotocols.iter().copied());
    if !(all_kept && all_kept_too) {
        return Err(UsageError::OfferTooLong);
    }
    let key = encode_key(key);
    let offer = ClientOffer {
        accept: accept_key(&key),
        subprotocols,
        extensions,
        #[cfg(feature = "deflate")]
        deflate: None,
    };
    Ok((RequestHead { request, key, extra }, offer))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;
    use crate::handshake::response::{parse_response, validate_response};
    use crate::handshake::{parse_request, write_accept, Accept};
    use alloc::string::String;
    use alloc::vec::Vec;

    const KEY: [u8; 16] = *b"the sample nonce";

    fn ok_response() -> String {
        String::from(
            "HTTP/1.1 101 Switching Protocols\r\n\
             Upgrade: websocket\r\n\
             Connection: Upgrade\r\n\
             Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n",
        )
    }

    fn offer_for(request: ClientRequest<'_>) -> ClientOffer {
        write_request(&request, KEY).unwrap().1
    }

    fn validate(response: &str, offer: &ClientOffer) -> Result<(), ErrorKind> {
        validate_response(&parse_response(response.as_bytes(), 32)?, offer).map(|_| ())
    }

    /// `ok_response()` with `extra` header lines added before the blank line.
    fn ok_with(extra: &str) -> String {
        let mut r = ok_response();
        r.truncate(r.len() - 2);
        r.push_str(extra);
        r.push_str("\r\n");
        r
    }

    #[test]
    fn request_bytes_for_a_fixed_key() {
        let (bytes, offer) =
            write_request(&ClientRequest::new("example.com", "/chat"), KEY).unwrap();
        assert_eq!(
            bytes,
            b"GET /chat HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\n\
              Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
              Sec-WebSocket-Version: 13\r\n\r\n"
        );
        assert_eq!(bytes.capacity(), bytes.len());
        assert_eq!(&offer.accept, b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
        assert_eq!(offer.subprotocols.len(), 0);
        assert_eq!(offer.extensions.len(), 0);

        let headers: &[(&str, &[u8])] = &[("Authorization", b"Bearer t"), ("X-A", b"")];
        let protocols = ["chat", "superchat"];
        let extensions = ["permessage-deflate; client_max_window_bits", "x-foo; a=\"b,c\", x-bar"];
        let request = ClientRequest::new("example.com:8080", "/chat?x=1")
            .origin("https://example.com")
            .subprotocols(&protocols)
            .extensions(&extensions)
            .headers(headers);
        assert_eq!(request.host(), "example.com:8080");
        assert_eq!(request.target(), "/chat?x=1");
        assert_eq!(request.origin_header(), Some("https://example.com"));
        assert_eq!(request.offered_subprotocols(), protocols);
        assert_eq!(request.offered_extensions(), extensions);
        assert_eq!(request.extra_headers(), headers);
        let (bytes, offer) = write_request(&request, [0; 16]).unwrap();
        let expected: &[u8] = b"GET /chat?x=1 HTTP/1.1\r\nHost: example.com:8080\r\n\
              Upgrade: websocket\r\nConnection: Upgrade\r\n\
              Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA==\r\nSec-WebSocket-Version: 13\r\n\
              Origin: https://example.com\r\nSec-WebSocket-Protocol: chat, superchat\r\n\
              Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits, \
              x-foo; a=\"b,c\", x-bar\r\nAuthorization: Bearer t\r\nX-A: \r\n\r\n";
        assert_eq!(bytes, expected);
        assert_eq!(&offer.accept, &accept_key(b"AAAAAAAAAAAAAAAAAAAAAA=="));
        assert_eq!(offer.subprotocols.iter().collect::<Vec<_>>(), protocols);
        assert_eq!(
            offer.extensions.iter().collect::<Vec<_>>(),
            ["permessage-deflate", "x-foo", "x-bar"]
        );
    }

    #[test]
    fn request_injection_and_invalid_parts_are_refused() {
        let bad = [
            ClientRequest::new("", "/"),
            ClientRequest::new("a b", "/"),
            ClientRequest::new("h\r\nX: 1", "/"),
            ClientRequest::new("h/x", "/"),
            ClientRequest::new("user@h", "/"),
            ClientRequest::new("h", ""),
            ClientRequest::new("h", "chat"),
            ClientRequest::new("h", "/a b"),
            ClientRequest::new("h", "/a HTTP/1.1\r\nX: 1\r\n"),
            ClientRequest::new("h", "/a#f"),
            ClientRequest::new("h", "/").origin("o\r\nX: 1"),
            ClientRequest::new("h", "/").subprotocols(&["a b"]),
            ClientRequest::new("h", "/").subprotocols(&[""]),
            ClientRequest::new("h", "/").subprotocols(&["a,b"]),
            ClientRequest::new("h", "/").subprotocols(&["a", "b", "a"]),
            ClientRequest::new("h", "/").extensions(&["x\r\nY: 1"]),
            ClientRequest::new("h", "/").extensions(&[""]),
            ClientRequest::new("h", "/").extensions(&["; a=1"]),
            ClientRequest::new("h", "/").extensions(&["bad name"]),
            ClientRequest::new("h", "/").headers(&[("X", b"1\r\nY: 2")]),
            ClientRequest::new("h", "/").headers(&[("X Y", b"1")]),
            ClientRequest::new("h", "/").headers(&[("host", b"other")]),
            ClientRequest::new("h", "/").headers(&[("Sec-WebSocket-Key", b"k")]),
            ClientRequest::new("h", "/").headers(&[("Content-Length", b"5")]),
        ];
        for request in bad {
            assert_eq!(
                write_request(&request, KEY).map(|_| ()),
                Err(UsageError::InvalidHeader),
                "{request:?}"
            );
        }
        assert!(write_request(&ClientRequest::new("[::1]:8080", "/?a=b&c=%20"), KEY).is_ok());
    }

    #[test]
    fn request_round_trips_through_the_server() {
        let protocols = ["v2.chat", "v1.chat"];
        let extensions = ["permessage-deflate; client_max_window_bits"];
        let request = ClientRequest::new("h:1", "/p?q")
            .origin("null")
            .subprotocols(&protocols)
            .extensions(&extensions);
        let (bytes, client_offer) = write_request(&request, KEY).unwrap();
        let parsed = parse_request(&bytes, 32).unwrap();
        assert_eq!((parsed.path(), parsed.query()), ("/p", Some("q")));
        assert_eq!(parsed.origin(), Some(&b"null"[..]));
        assert_eq!(parsed.subprotocols().collect::<Vec<_>>(), protocols);
        assert_eq!(parsed.extensions().collect::<Vec<_>>(), extensions);

        let mut out = [0u8; 512];
        let n =
            write_accept(&parsed.offer(), &Accept::new().subprotocol("v1.chat"), &mut out).unwrap();
        let response = parse_response(&out[..n], 32).unwrap();
        assert_eq!(validate_response(&response, &client_offer).map(|_| ()), Ok(()));
        assert_eq!(response.subprotocol(), Some("v1.chat"));
        assert_eq!(response.body(), b"");
    }

    #[test]
    fn response_validation_succeeds() {
        let plain = offer_for(ClientRequest::new("h", "/"));
        assert_eq!(validate(&ok_response(), &plain), Ok(()));
        // Case-insensitive names and tokens, token lists.
        let loose = "HTTP/1.1 101 Web Socket Protocol Handshake\r\n\
                     upgrade: WebSocket\r\n\
                     CONNECTION: keep-alive, upgrade\r\n\
                     sec-websocket-accept:   s3pPLMBiTxaQ9kYGzzhZRbK+xOo=  \r\n\r\n";
        assert_eq!(validate(loose, &plain), Ok(()));

        let protocols = ["chat", "superchat"];
        let extensions = ["permessage-deflate; client_max_window_bits", "x-foo"];
        let rich = offer_for(
            ClientRequest::new("h", "/").subprotocols(&protocols).extensions(&extensions),
        );
        let answer = ok_with(
            "Sec-WebSocket-Protocol: superchat\r\n\
             Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover\r\n\
             Sec-WebSocket-Extensions: X-Foo\r\n",
        );
        assert_eq!(validate(&answer, &rich), Ok(()));
        let response = parse_response(answer.as_bytes(), 32).unwrap();
        assert_eq!(response.status(), 101);
        assert_eq!(response.reason(), "Switching Protocols");
        assert_eq!(response.subprotocol(), Some("superchat"));
        assert_eq!(
            response.extensions().collect::<Vec<_>>(),
            ["permessage-deflate; server_no_context_takeover", "X-Foo"]
        );
        assert_eq!(response.headers().len(), 6);
        assert_eq!(response.location(), None);
    }

    #[test]
    fn response_validation_failures() {
        let protocols = ["chat"];
        let extensions = ["permessage-deflate"];
        let offer = offer_for(
            ClientRequest::new("h", "/").subprotocols(&protocols).extensions(&extensions),
        );
        let plain = offer_for(ClientRequest::new("h", "/"));
        let ok = ok_response();
        let without = |line: &str| ok.replace(line, "");
        let cases: [(String, &ClientOffer, ErrorKind); 16] = [
            (ok.replace("101", "200"), &offer, ErrorKind::MalformedHttp),
            (without("Upgrade: websocket\r\n"), &offer, ErrorKind::MissingUpgrade),
            (ok.replace("Upgrade: websocket", "Upgrade: h2c"), &offer, ErrorKind::MissingUpgrade),
            (without("Connection: Upgrade\r\n"), &offer, ErrorKind::MissingConnectionUpgrade),
            (
                ok.replace("Connection: Upgrade", "Connection: close"),
                &offer,
                ErrorKind::MissingConnectionUpgrade,
            ),
            (
                without("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"),
                &offer,
                ErrorKind::InvalidAccept,
            ),
            (ok.replace("s3pPL", "S3pPL"), &offer, ErrorKind::InvalidAccept),
            (
                ok_with("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"),
                &offer,
                ErrorKind::InvalidAccept,
            ),
            (ok_with("Sec-WebSocket-Protocol: other\r\n"), &offer, ErrorKind::UnofferedSubprotocol),
            (ok_with("Sec-WebSocket-Protocol: Chat\r\n"), &offer, ErrorKind::UnofferedSubprotocol),
            (
                ok_with("Sec-WebSocket-Protocol: chat, chat\r\n"),
                &offer,
                ErrorKind::UnofferedSubprotocol,
            ),
            (
                ok_with("Sec-WebSocket-Protocol: chat\r\nSec-WebSocket-Protocol: chat\r\n"),
                &offer,
                ErrorKind::UnofferedSubprotocol,
            ),
            (ok_with("Sec-WebSocket-Protocol: \r\n"), &offer, ErrorKind::UnofferedSubprotocol),
            (ok_with("Sec-WebSocket-Protocol: chat\r\n"), &plain, ErrorKind::UnofferedSubprotocol),
            (
                ok_with("Sec-WebSocket-Extensions: permessage-deflate, x-webkit\r\n"),
                &offer,
                ErrorKind::UnofferedExtension,
            ),
            (
                ok_with("Sec-WebSocket-Extensions: permessage-deflate\r\n"),
                &plain,
                ErrorKind::UnofferedExtension,
            ),
        ];
        for (response, offer, kind) in cases {
            assert_eq!(validate(&response, offer), Err(kind), "{response:?}");
        }
        assert_eq!(
            validate(&ok_with("Sec-WebSocket-Extensions: ; x=1\r\n"), &offer),
            Err(ErrorKind::UnofferedExtension)
        );
        assert_eq!(validate(&ok_with("Sec-WebSocket-Protocol: chat\r\n"), &offer), Ok(()));
    }

    #[test]
    fn redirect_parses_with_location_and_body() {
        let input = b"HTTP/1.1 302 Found\r\n\
            Location: wss://other.example/chat\r\n\
            Content-Length: 5\r\n\r\n\
            movedEXTRA";
        let response = parse_response(input, 32).unwrap();
        assert_eq!(response.status(), 302);
        assert_eq!(response.reason(), "Found");
        assert_eq!(response.location(), Some(&b"wss://other.example/chat"[..]));
        assert_eq!(response.header("content-length"), Some(&b"5"[..]));
        assert_eq!(response.body(), b"moved");
        assert_eq!(
            validate_response(&response, &offer_for(ClientRequest::new("h", "/"))),
            Err(ErrorKind::MalformedHttp)
        );

        // Only part of the body has arrived; then the caller sets it from a longer buffer.
        let partial = parse_response(&input[..input.len() - 8], 32).unwrap();
        assert_eq!(partial.body(), b"mo");
        let head_only = parse_response(&input[..input.len() - 10], 32).unwrap();
        assert_eq!(head_only.body(), b"");
        assert_eq!(head_only.with_body(b"moved and more").body(), b"moved");

        // No Content-Length: everything after the head. Invalid Content-Length: not a cap.
        let r = parse_response(b"HTTP/1.1 403 Forbidden\r\n\r\nno", 32).unwrap();
        assert_eq!((r.status(), r.body()), (403, &b"no"[..]));
        let r =
            parse_response(b"HTTP/1.1 403 Forbidden\r\nContent-Length: x\r\n\r\nno", 32).unwrap();
        assert_eq!(r.body(), b"no");
        let huge = b"HTTP/1.1 403 Forbidden\r\nContent-Length: 99999999999999999999999\r\n\r\nab";
        assert_eq!(parse_response(huge, 32).unwrap().body(), b"ab");
    }

    #[test]
    fn frames_after_a_101_are_not_body() {
        let mut input = ok_response().into_bytes();
        input.extend_from_slice(&[0x81, 0x02, b'h', b'i']);
        let response = parse_response(&input, 32).unwrap();
        assert_eq!(response.body(), b"");
        let r = parse_response(b"HTTP/1.1 204 No Content\r\n\r\nxx", 32).unwrap();
        assert_eq!(r.body(), b"");
    }

    #[test]
    fn response_parse_errors() {
        assert_eq!(
            parse_response(b"HTTP/1.0 101 Switching Protocols\r\n\r\n", 32),
            Err(ErrorKind::HttpVersion)
        );
        for bad in [
            &b""[..],
            b"HTTP/1.1 101",
            b"HTTP/1.1 101 Switching Protocols\r\n",
            b"HTTP/1.1 1011 X\r\n\r\n",
            b"HTTP/2 101\r\n\r\n",
            b"ICY 200 OK\r\n\r\n",
            b"HTTP/1.1 101 OK\r\nBad Header\r\n\r\n",
        ] {
            assert_eq!(parse_response(bad, 32), Err(ErrorKind::MalformedHttp), "{bad:?}");
        }
        assert_eq!(
            parse_response(ok_response().as_bytes(), 2),
            Err(ErrorKind::TooManyHeaders { limit: 2 })
        );
        assert!(parse_response(ok_response().as_bytes(), 3).is_ok());
        assert!(parse_response(ok_response().as_bytes(), usize::MAX).is_ok());
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        let protocols = ["chat"];
        let offer = offer_for(ClientRequest::new("h", "/").subprotocols(&protocols));
        let mut buf = ok_with(
            "Sec-WebSocket-Protocol: chat\r\nSec-WebSocket-Extensions: a; b=\"c\"\r\n\
             Content-Length: 3\r\n\r\nabc",
        )
        .into_bytes();
        for n in 0..=buf.len() {
            if let Ok(r) = parse_response(&buf[..n], 32) {
                let _ = validate_response(&r, &offer);
            }
        }
        for i in 0..buf.len() {
            for flip in [0x00, b'\r', b'\n', b'"', b',', b'1', 0xff] {
                let old = buf[i];
                buf[i] = flip;
                if let Ok(r) = parse_response(&buf, 32) {
                    let _ = validate_response(&r, &offer);
                    let _ = (r.extensions().count(), r.subprotocol(), r.body());
                }
                buf[i] = old;
            }
        }
    }
}
