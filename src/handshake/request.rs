//! The server side of the opening handshake (RFC 6455 §4.2): parse and validate the client's
//! upgrade request, then answer it with `101 Switching Protocols` or an HTTP error.

use core::mem::MaybeUninit;

use super::extension::extension_offers;
use super::key::{accept_key, is_valid_key};
use super::names::Names;
use crate::error::ErrorKind;
use crate::http::list::{header_limit, HeaderList};
use crate::http::{find_header, header_values, is_token, tokens, Header};

/// A validated WebSocket upgrade request, borrowing the bytes it was parsed from.
///
/// Holding one means every check of RFC 6455 §4.2.1 passed: the method is GET, the version
/// HTTP/1.1, and `Host`, `Upgrade: websocket`, `Connection: Upgrade`, a 16-byte
/// `Sec-WebSocket-Key` and `Sec-WebSocket-Version: 13` are all present. The accessors expose
/// what the application needs to decide whether to accept: the target, origin, offered
/// subprotocols and extensions, and every header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request<'i> {
    method: &'i str,
    target: &'i str,
    path: &'i str,
    query: Option<&'i str>,
    headers: HeaderList<'i>,
    host: &'i [u8],
    key: &'i [u8],
}

impl<'i> Request<'i> {
    /// The request method: always `GET` once validated.
    pub fn method(&self) -> &'i str {
        self.method
    }

    /// The request target exactly as sent, path and query, e.g. `/chat?x=1` (or an absolute
    /// URI such as `wss://example.com/chat`).
    pub fn target(&self) -> &'i str {
        self.target
    }

    /// The target's path, before any `?`, e.g. `/chat`. For an absolute-URI target this is
    /// the path after the authority (`/` if it has none).
    pub fn path(&self) -> &'i str {
        self.path
    }

    /// The target's query, after the first `?` and without it, if there is one.
    pub fn query(&self) -> Option<&'i str> {
        self.query
    }

    /// The `Host` header's value.
    pub fn host(&self) -> &'i [u8] {
        self.host
    }

    /// The first `Origin` header's value, if any. RFC 6455 §4.2.2 leaves it to the server to
    /// decide whether to accept a given origin; browsers always send it.
    pub fn origin(&self) -> Option<&'i [u8]> {
        find_header(&self.headers, "Origin")
    }

    /// Every header line, in the order sent.
    pub fn headers(&self) -> &[Header<'i>] {
        &self.headers
    }

    /// The value of the first header called `name` (compared case-insensitively).
    pub fn header(&self, name: &str) -> Option<&'i [u8]> {
        find_header(&self.headers, name)
    }

    /// The subprotocols the client offered, in order of its preference: the elements of every
    /// `Sec-WebSocket-Protocol` header, split at commas and trimmed. Elements that are not
    /// RFC 7230 tokens (RFC 6455 §4.1 requires tokens) are skipped.
    pub fn subprotocols(&self) -> impl Iterator<Item = &'i str> + '_ {
        header_values(&self.headers, "Sec-WebSocket-Protocol")
            .flat_map(tokens)
            .filter(|t| is_token(t))
            .filter_map(|t| core::str::from_utf8(t).ok())
    }

    /// The extensions the client offered, each as its raw offer string with parameters, e.g.
    /// `permessage-deflate; client_max_window_bits`, from every `Sec-WebSocket-Extensions`
    /// header. Commas inside quoted parameter values do not split an offer; offers that are
    /// not UTF-8 are skipped.
    pub fn extensions(&self) -> impl Iterator<Item = &'i str> + '_ {
        extension_offers(&self.headers, "Sec-WebSocket-Extensions")
    }

    /// The `Sec-WebSocket-Key` value: the base64 text as sent (it decodes to 16 bytes).
    pub fn key(&self) -> &'i [u8] {
        self.key
    }

    /// What answering this request needs once its input is gone: the `Sec-WebSocket-Accept`
    /// value and the offered subprotocols.
    pub(crate) fn offer(&self) -> Offer {
        // Without `alloc`, names past the 128 bytes kept are not offers `accept` can choose.
        let (subprotocols, _) = Names::collect(self.subprotocols());
        Offer {
            accept: accept_key(self.key),
            subprotocols,
            #[cfg(feature = "deflate")]
            deflate: None,
        }
    }

    /// The permessage-deflate agreement for this request under `config`: the client's first
    /// acceptable offer, in its order of preference (RFC 7692 §5); malformed offers are
    /// declined.
    #[cfg(feature = "deflate")]
    pub(crate) fn deflate(&self, config: &super::DeflateConfig) -> Option<super::DeflateParams> {
        super::deflate::choose(self.extensions(), config)
    }
}

/// Splits a request target into its path and query, or `None` if it is neither origin-form
/// (`/path?query`) nor an absolute URI with a `ws`, `wss`, `http` or `https` scheme.
///
/// RFC 6455 §3: "The fragment identifier is meaningless in the context of WebSocket URIs and
/// MUST NOT be used on these URIs", so a `#` makes the target invalid.
fn split_target(target: &str) -> Option<(&str, Option<&str>)> {
    if target.contains('#') {
        return None;
    }
    let (before_query, query) = match target.split_once('?') {
        Some((before, query)) => (before, Some(query)),
        None => (target, None),
    };
    if before_query.starts_with('/') {
        return Some((before_query, query));
    }
    let (scheme, rest) = before_query.split_once("://")?;
    if !["ws", "wss", "http", "https"].iter().any(|s| s.eq_ignore_ascii_case(scheme)) {
        return None;
    }
    let (authority, path) = match rest.find('/') {
        Some(slash) => (rest.get(..slash)?, rest.get(slash..)?),
        None => (rest, "/"),
    };
    if authority.is_empty() {
        return None;
    }
    Some((path, query))
}

/// Parses and validates an upgrade request (RFC 6455 §4.2.1).
///
/// `head` is the complete head, ending in `\r\n\r\n` (see
/// [`HeadScanner`](super::head::HeadScanner)); bytes after it are ignored. At most
/// `max_headers` header lines are accepted. The checks run in this order, the first failure
/// giving the error:
///
/// 1. the head is HTTP/1.x ([`ErrorKind::MalformedHttp`]; more than `max_headers` headers is
///    [`ErrorKind::TooManyHeaders`]);
/// 2. "The method of the request MUST be GET" ([`ErrorKind::MethodNotGet`]);
/// 3. "the HTTP version MUST be at least 1.1" ([`ErrorKind::HttpVersion`]);
/// 4. the target is origin-form or an absolute `ws`/`wss`/`http`/`https` URI without a
///    fragment ([`ErrorKind::MalformedHttp`]);
/// 5. the request "MUST contain a |Host| header field", exactly once
///    ([`ErrorKind::MissingHost`], [`ErrorKind::DuplicateHeader`]);
/// 6. it "MUST contain an |Upgrade| header field whose value MUST include the "websocket"
///    keyword" ([`ErrorKind::MissingUpgrade`]);
/// 7. it "MUST contain a |Connection| header field whose value MUST include the "Upgrade"
///    token" ([`ErrorKind::MissingConnectionUpgrade`]);
/// 8. it "MUST include a header field with the name |Sec-WebSocket-Key|", once, whose value
///    "when decoded, is 16 bytes in length" ([`ErrorKind::InvalidKey`],
///    [`ErrorKind::DuplicateHeader`]);
/// 9. it "MUST include a header field with the name |Sec-WebSocket-Version|. The value of
///    this header field MUST be 13" — once ([`ErrorKind::UnsupportedVersion`]).
///
/// Token comparisons are ASCII case-insensitive and look across repeated headers.
pub(crate) fn parse_request(head: &[u8], max_headers: usize) -> Result<Request<'_>, ErrorKind> {
    parse_request_len(head, max_headers).map(|(request, _)| request)
}

/// [`parse_request`] on `input` when the head is exactly all of `input`, else `None`.
///
/// A head that arrived whole in one read needs no separate search for its end: if httparse
/// finds the head ending exactly where `input` ends, and `input` ends with `\r\n\r\n`,
/// then no earlier `\r\n\r\n` exists, so this is the head a
/// [`HeadScanner`](super::head::HeadScanner) would have found, and the request is the one
/// [`parse_request`] returns for it. That holds because in a head httparse accepts every CR
/// ends a line, so a `\r\n\r\n` is an empty line, where httparse ends the head; the one
/// exception is the empty lines httparse skips before the request line, so `input` must not
/// start with CR or LF. Anything else, errors included, is `None`: the caller takes the
/// general path.
pub(crate) fn parse_whole_request(input: &[u8], max_headers: usize) -> Option<Request<'_>> {
    if !input.ends_with(b"\r\n\r\n") || matches!(input.first(), Some(b'\r' | b'\n')) {
        return None;
    }
    match parse_request_len(input, max_headers) {
        Ok((request, len)) if len == input.len() => Some(request),
        _ => None,
    }
}

/// [`parse_request`], with the length of the head httparse parsed.
fn parse_request_len(head: &[u8], max_headers: usize) -> Result<(Request<'_>, usize), ErrorKind> {
    // A header line takes at least three bytes ("a:\n"), so no more slots than that can be
    // filled: allocation stays bounded by the input even for a huge limit. A typical request
    // fits `STACK_HEADERS` slots on the stack, left uninitialized until httparse fills them;
    // only one with more headers is parsed again with every slot, on the heap (without
    // `alloc` there is no heap, and no more than `STACK_HEADERS` headers).
    let max_headers = header_limit(max_headers);
    let slots = max_headers.min(head.len() / 3 + 1);
    let mut stack = [MaybeUninit::<httparse::Header<'_>>::uninit(); STACK_HEADERS];
    #[cfg(feature = "alloc")]
    let mut heap = alloc::vec::Vec::new();
    let mut parsed = httparse::Request::new(&mut []);
    #[allow(unused_mut)]
    let mut status = parsed.parse_with_uninit_headers(head, &mut stack[..slots.min(STACK_HEADERS)]);
    #[cfg(feature = "alloc")]
    if slots > STACK_HEADERS && status == Err(httparse::Error::TooManyHeaders) {
        heap.resize(slots, MaybeUninit::uninit());
        parsed = httparse::Request::new(&mut []);
        status = parsed.parse_with_uninit_headers(head, &mut heap);
    }
    let head_len = match status {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Err(ErrorKind::MalformedHttp),
        Err(httparse::Error::TooManyHeaders) => {
            return Err(ErrorKind::TooManyHeaders { limit: max_headers })
        }
        Err(_) => return Err(ErrorKind::MalformedHttp),
    };
    let (Some(method), Some(target), Some(version)) = (parsed.method, parsed.path, parsed.version)
    else {
        return Err(ErrorKind::MalformedHttp);
    };
    let headers = HeaderList::from_parsed(parsed.headers);

    if method != "GET" {
        return Err(ErrorKind::MethodNotGet);
    }
    if version < 1 {
        return Err(ErrorKind::HttpVersion);
    }
    let (path, query) = split_target(target).ok_or(ErrorKind::MalformedHttp)?;

    // One pass over the headers gathers what the checks below need, in their order.
    let mut host = Seen::default();
    let mut key = Seen::default();
    let mut ws_version = Seen::default();
    let (mut upgrade, mut connection) = (false, false);
    for header in headers.iter() {
        let name = header.name;
        // `eq_ignore_ascii_case` compares lengths first, so the names are told apart by it.
        if name.eq_ignore_ascii_case("Host") {
            host.note(header.value);
        } else if name.eq_ignore_ascii_case("Upgrade") {
            upgrade = upgrade || has_token(header.value, "websocket");
        } else if name.eq_ignore_ascii_case("Connection") {
            connection = connection || has_token(header.value, "Upgrade");
        } else if name.eq_ignore_ascii_case("Sec-WebSocket-Key") {
            key.note(header.value);
        } else if name.eq_ignore_ascii_case("Sec-WebSocket-Version") {
            ws_version.note(header.value);
        }
    }

    let host = match host {
        Seen { count: 0, .. } => return Err(ErrorKind::MissingHost),
        Seen { count: 1, first: Some(value) } => value,
        Seen { count: 1, first: None } => return Err(ErrorKind::MissingHost),
        _ => return Err(ErrorKind::DuplicateHeader("Host")),
    };
    if !upgrade {
        return Err(ErrorKind::MissingUpgrade);
    }
    if !connection {
        return Err(ErrorKind::MissingConnectionUpgrade);
    }
    let key = match key {
        Seen { count: 1, first: Some(value) } => value,
        Seen { count: 0 | 1, .. } => return Err(ErrorKind::InvalidKey),
        _ => return Err(ErrorKind::DuplicateHeader("Sec-WebSocket-Key")),
    };
    if !is_valid_key(key) {
        return Err(ErrorKind::InvalidKey);
    }
    if ws_version.count != 1 || ws_version.first != Some(&b"13"[..]) {
        return Err(ErrorKind::UnsupportedVersion);
    }

    Ok((Request { method, target, path, query, headers, host, key }, head_len))
}

/// How many header slots [`parse_request`] keeps on the stack (1 KiB): more than browsers
/// send.
const STACK_HEADERS: usize = crate::http::list::INLINE_HEADERS;

/// How often a header appeared, and its first value.
#[derive(Clone, Copy, Default)]
struct Seen<'i> {
    count: usize,
    first: Option<&'i [u8]>,
}

impl<'i> Seen<'i> {
    fn note(&mut self, value: &'i [u8]) {
        self.count += 1;
        self.first = self.first.or(Some(value));
    }
}

/// Whether the comma-separated list `value` holds `token`, compared case-insensitively.
fn has_token(value: &[u8], token: &str) -> bool {
    // The usual `Upgrade: websocket` is the token alone (values arrive trimmed, and a token
    // holds no comma): no need to split it.
    value.eq_ignore_ascii_case(token.as_bytes())
        || tokens(value).any(|t| t.eq_ignore_ascii_case(token.as_bytes()))
}

/// The HTTP status a server answers a failed upgrade request with.
///
/// 405 for a method other than GET; 426 for an unsupported `Sec-WebSocket-Version` (RFC 6455
/// §4.2.2: "If this version does not match a version understood by the server, the server
/// MUST abort the WebSocket handshake described in this section and instead send an
/// appropriate HTTP error code (such as 426 Upgrade Required)"); 431 for a head that is too
/// large or has too many headers; 400 for everything else.
pub(crate) fn status_for(kind: ErrorKind) -> u16 {
    match kind {
        ErrorKind::MethodNotGet => 405,
        ErrorKind::UnsupportedVersion => 426,
        ErrorKind::HeadTooLarge { .. } | ErrorKind::TooManyHeaders { .. } => 431,
        _ => 400,
    }
}

/// The complete error response for `status` (400, 405, 426 or 431; anything else gives 400's).
///
/// Each closes the connection and has an empty body. 405 lists `Allow: GET` (RFC 9110
/// §15.5.6: the origin server "MUST generate an Allow header field"); 426 carries
/// `Sec-WebSocket-Version: 13` (RFC 6455 §4.4: the server "MUST" include the versions it
/// supports) and `Upgrade: websocket` (RFC 9110 §15.5.22: a server "MUST send an Upgrade
/// header field"), so its `Connection` lists `Upgrade` too (RFC 9110 §7.8: a sender of
/// Upgrade "MUST also send an "upgrade" connection option").
pub(crate) fn error_response(status: u16) -> &'static [u8] {
    match status {
        405 => {
            b"HTTP/1.1 405 Method Not Allowed\r\nAllow: GET\r\nConnection: close\r\n\
              Content-Length: 0\r\n\r\n"
        }
        426 => {
            b"HTTP/1.1 426 Upgrade Required\r\nUpgrade: websocket\r\n\
              Sec-WebSocket-Version: 13\r\nConnection: Upgrade, close\r\n\
              Content-Length: 0\r\n\r\n"
        }
        431 => {
            b"HTTP/1.1 431 Request Header Fields Too Large\r\nConnection: close\r\n\
              Content-Length: 0\r\n\r\n"
        }
        _ => b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
    }
}

/// What answering a [`Request`] needs once its input buffer is gone: the computed
/// `Sec-WebSocket-Accept` value and the subprotocols the client offered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Offer {
    pub(super) accept: [u8; 28],
    /// The offered subprotocols.
    pub(super) subprotocols: Names,
    /// The permessage-deflate agreement the answer will carry, if any.
    #[cfg(feature = "deflate")]
    pub(crate) deflate: Option<super::DeflateParams>,
}

impl Offer {
    /// Whether the client offered the subprotocol `name`.
    pub(super) fn offers_subprotocol(&self, name: &str) -> bool {
        self.subprotocols.contains(name.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::UsageError;
    use crate::handshake::accept::accept_len;
    use crate::handshake::reject::reject_len;
    use crate::handshake::{write_accept, write_reject, Accept, Reject};
    use crate::http::status::reason_phrase;
    use alloc::format;
    use alloc::string::{String, ToString};
    use alloc::vec;
    use alloc::vec::Vec;

    const CHROMIUM: &[u8] = b"GET /chat?x=1 HTTP/1.1\r\n\
        Host: example.com:8080\r\n\
        Connection: keep-alive, Upgrade\r\n\
        Pragma: no-cache\r\n\
        Cache-Control: no-cache\r\n\
        User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) \
        Chrome/124.0.0.0 Safari/537.36\r\n\
        Upgrade: websocket\r\n\
        Origin: https://example.com\r\n\
        Sec-WebSocket-Version: 13\r\n\
        Accept-Encoding: gzip, deflate, br, zstd\r\n\
        Accept-Language: en-US,en;q=0.9\r\n\
        Cookie: session=abc; theme=dark\r\n\
        Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
        Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\
        Sec-WebSocket-Protocol: chat, superchat\r\n\
        \r\n";

    const MINIMAL: &str = "GET / HTTP/1.1\r\n\
        Host: h\r\n\
        Upgrade: websocket\r\n\
        Connection: Upgrade\r\n\
        Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
        Sec-WebSocket-Version: 13\r\n\r\n";

    fn parse(head: &str) -> Result<Request<'_>, ErrorKind> {
        parse_request(head.as_bytes(), 32)
    }

    /// `MINIMAL` with the line starting `from` replaced by `to` (which may be empty).
    fn with_line(from: &str, to: &str) -> String {
        let mut out = String::new();
        for line in MINIMAL.split_inclusive("\r\n") {
            if line.starts_with(from) {
                out.push_str(to);
            } else {
                out.push_str(line);
            }
        }
        out
    }

    fn fails(head: &str, kind: ErrorKind, status: u16) {
        assert_eq!(parse(head), Err(kind), "{head:?}");
        assert_eq!(status_for(kind), status);
    }

    #[test]
    fn chromium_request() {
        let req = parse_request(CHROMIUM, 32).unwrap();
        assert_eq!(req.method(), "GET");
        assert_eq!(req.target(), "/chat?x=1");
        assert_eq!(req.path(), "/chat");
        assert_eq!(req.query(), Some("x=1"));
        assert_eq!(req.host(), b"example.com:8080");
        assert_eq!(req.origin(), Some(&b"https://example.com"[..]));
        assert_eq!(req.key(), b"dGhlIHNhbXBsZSBub25jZQ==");
        assert_eq!(req.headers().len(), 14);
        assert_eq!(req.headers()[0], Header { name: "Host", value: b"example.com:8080" });
        assert_eq!(req.header("cookie"), Some(&b"session=abc; theme=dark"[..]));
        assert_eq!(req.header("X-Missing"), None);
        assert_eq!(req.subprotocols().collect::<Vec<_>>(), ["chat", "superchat"]);
        assert_eq!(
            req.extensions().collect::<Vec<_>>(),
            ["permessage-deflate; client_max_window_bits"]
        );
        let offer = req.offer();
        assert_eq!(&offer.accept, b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
        assert_eq!(offer.subprotocols.iter().collect::<Vec<_>>(), ["chat", "superchat"]);
        assert!(offer.offers_subprotocol("chat") && offer.offers_subprotocol("superchat"));
        assert!(!offer.offers_subprotocol("") && !offer.offers_subprotocol("chat,superchat"));
    }

    #[test]
    fn minimal_request_and_target_forms() {
        let req = parse(MINIMAL).unwrap();
        assert_eq!((req.path(), req.query(), req.origin()), ("/", None, None));
        assert_eq!(req.subprotocols().count(), 0);
        assert_eq!(req.extensions().count(), 0);

        for (target, path, query) in [
            ("/a/b?", "/a/b", Some("")),
            ("/?q=1?2", "/", Some("q=1?2")),
            ("ws://example.com/chat?x=1", "/chat", Some("x=1")),
            ("WSS://example.com", "/", None),
            ("http://example.com?x", "/", Some("x")),
            ("https://h:1/p", "/p", None),
        ] {
            let head = MINIMAL.replacen("GET / ", &format!("GET {target} "), 1);
            let req = parse(&head).unwrap();
            assert_eq!((req.target(), req.path(), req.query()), (target, path, query));
        }
        for target in ["*", "example.com:443", "ftp://h/x", "ws:///x", "chat", "/a#frag"] {
            let head = MINIMAL.replacen("GET / ", &format!("GET {target} "), 1);
            fails(&head, ErrorKind::MalformedHttp, 400);
        }
    }

    #[test]
    fn each_failure_has_its_kind_and_status() {
        fails(&MINIMAL.replacen("GET", "POST", 1), ErrorKind::MethodNotGet, 405);
        fails(&MINIMAL.replacen("GET", "get", 1), ErrorKind::MethodNotGet, 405);
        fails(&MINIMAL.replacen("HTTP/1.1", "HTTP/1.0", 1), ErrorKind::HttpVersion, 400);
        fails(&with_line("Host", ""), ErrorKind::MissingHost, 400);
        fails(
            &with_line("Host", "Host: a\r\nHost: b\r\n"),
            ErrorKind::DuplicateHeader("Host"),
            400,
        );
        fails(&with_line("Upgrade", ""), ErrorKind::MissingUpgrade, 400);
        fails(&with_line("Upgrade", "Upgrade: h2c\r\n"), ErrorKind::MissingUpgrade, 400);
        fails(&with_line("Connection", ""), ErrorKind::MissingConnectionUpgrade, 400);
        fails(
            &with_line("Connection", "Connection: keep-alive\r\n"),
            ErrorKind::MissingConnectionUpgrade,
            400,
        );
        fails(&with_line("Sec-WebSocket-Key", ""), ErrorKind::InvalidKey, 400);
        fails(
            &with_line("Sec-WebSocket-Key", "Sec-WebSocket-Key: not base64!!\r\n"),
            ErrorKind::InvalidKey,
            400,
        );
        fails(&with_line("Sec-WebSocket-Version", ""), ErrorKind::UnsupportedVersion, 426);
        fails(
            &with_line("Sec-WebSocket-Version", "Sec-WebSocket-Version: 8\r\n"),
            ErrorKind::UnsupportedVersion,
            426,
        );
        fails(
            &with_line("Sec-WebSocket-Version", "Sec-WebSocket-Version: 13, 8\r\n"),
            ErrorKind::UnsupportedVersion,
            426,
        );
        fails(
            &with_line(
                "Sec-WebSocket-Version",
                "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Version: 13\r\n",
            ),
            ErrorKind::UnsupportedVersion,
            426,
        );
        fails("GET / HTTP/1.1\r\nHost h\r\n\r\n", ErrorKind::MalformedHttp, 400);
        fails("GET / HTTP/1.1\r\nHost: h\r\n", ErrorKind::MalformedHttp, 400);
        fails("", ErrorKind::MalformedHttp, 400);
        fails("\r\n\r\n", ErrorKind::MalformedHttp, 400);
        fails("GET / HTTP/2.0\r\n\r\n", ErrorKind::MalformedHttp, 400);
        assert_eq!(status_for(ErrorKind::HeadTooLarge { limit: 8 }), 431);
    }

    #[test]
    fn checks_run_in_order() {
        // Method before version before Host, and so on down the list.
        let everything_wrong = "PUT / HTTP/1.0\r\nSec-WebSocket-Version: 7\r\n\r\n";
        fails(everything_wrong, ErrorKind::MethodNotGet, 405);
        fails(&everything_wrong.replacen("PUT", "GET", 1), ErrorKind::HttpVersion, 400);
        fails(
            "GET / HTTP/1.1\r\nHost: h\r\nSec-WebSocket-Version: 7\r\n\r\n",
            ErrorKind::MissingUpgrade,
            400,
        );
    }

    #[test]
    fn header_names_and_tokens_are_case_insensitive() {
        let head = "GET /x HTTP/1.1\r\n\
            hOsT: h\r\n\
            UPGRADE: WebSocket\r\n\
            connection: keep-alive\r\n\
            CONNECTION: upgrade\r\n\
            sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
            SEC-WEBSOCKET-VERSION: 13\r\n\
            sec-websocket-protocol: a\r\n\
            Sec-WebSocket-Protocol: b , c\r\n\r\n";
        let req = parse(head).unwrap();
        assert_eq!(req.host(), b"h");
        assert_eq!(req.header("HOST"), Some(&b"h"[..]));
        assert_eq!(req.subprotocols().collect::<Vec<_>>(), ["a", "b", "c"]);
        fails(
            &with_line("Sec-WebSocket-Key", "sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\nSEC-WEBSOCKET-KEY: dGhlIHNhbXBsZSBub25jZQ==\r\n"),
            ErrorKind::DuplicateHeader("Sec-WebSocket-Key"),
            400,
        );
    }

    #[test]
    fn key_decoding_to_15_or_17_bytes_is_refused() {
        let key15 = "AAAAAAAAAAAAAAAAAAAA"; // 15 bytes
        let key17 = "AAAAAAAAAAAAAAAAAAAAAAA="; // 17 bytes, 24 characters
        let key18 = "AAAAAAAAAAAAAAAAAAAAAAAA"; // 18 bytes, 24 characters
        for key in [key15, key17, key18, "", "dGhlIHNhbXBsZSBub25jZQ"] {
            let line = format!("Sec-WebSocket-Key: {key}\r\n");
            fails(&with_line("Sec-WebSocket-Key", &line), ErrorKind::InvalidKey, 400);
        }
        let padded =
            with_line("Sec-WebSocket-Key", "Sec-WebSocket-Key: \t AAAAAAAAAAAAAAAAAAAAAA== \r\n");
        assert_eq!(parse(&padded).unwrap().key(), b"AAAAAAAAAAAAAAAAAAAAAA==");
    }

    #[test]
    fn too_many_headers() {
        // MINIMAL has five headers.
        assert!(parse_request(MINIMAL.as_bytes(), 5).is_ok());
        let kind = ErrorKind::TooManyHeaders { limit: 4 };
        assert_eq!(parse_request(MINIMAL.as_bytes(), 4), Err(kind));
        assert_eq!(status_for(kind), 431);
        assert_eq!(
            parse_request(MINIMAL.as_bytes(), 0),
            Err(ErrorKind::TooManyHeaders { limit: 0 })
        );
        // A huge limit does not allocate a huge array.
        assert!(parse_request(MINIMAL.as_bytes(), usize::MAX).is_ok());
    }

    #[test]
    fn a_whole_head_parses_as_the_scanner_would_cut_it() {
        use crate::http::head::HeadScanner;
        let mut cases: Vec<Vec<u8>> = vec![
            MINIMAL.as_bytes().to_vec(),
            CHROMIUM.to_vec(),
            // Empty lines before the request line: httparse skips them, the scanner does not.
            [b"\r\n\r\n", MINIMAL.as_bytes()].concat(),
            [b"\n", MINIMAL.as_bytes()].concat(),
            // Bare LF line ends: the head ends earlier for httparse.
            [MINIMAL.replace("\r\n", "\n").as_bytes(), b"\r\n\r\n"].concat(),
            // A second head after the first.
            [MINIMAL.as_bytes(), MINIMAL.as_bytes()].concat(),
            // Malformed.
            b"GET / HTTP/1.1\r\nHost\r\n\r\n".to_vec(),
            b"\r\n\r\n".to_vec(),
            b"".to_vec(),
        ];
        for cut in 0..MINIMAL.len() {
            cases.push(MINIMAL.as_bytes()[..cut].to_vec());
        }
        // `None` sends the caller down the general path, so only `Some` must agree with it.
        for input in &cases {
            if let Some(request) = parse_whole_request(input, 32) {
                let mut scanner = HeadScanner::new();
                let len = scanner.find_end(input).expect("a head");
                assert_eq!(len, input.len(), "{input:?}");
                assert_eq!(parse_request(&input[..len], 32), Ok(request), "{input:?}");
            }
        }
        for typical in [MINIMAL.as_bytes(), CHROMIUM] {
            assert!(parse_whole_request(typical, 32).is_some());
        }
        let skipped = [b"\r\n\r\n", MINIMAL.as_bytes()].concat();
        assert_eq!(parse_whole_request(&skipped, 32), None);
        let twice = [MINIMAL.as_bytes(), MINIMAL.as_bytes()].concat();
        assert_eq!(parse_whole_request(&twice, 32), None);
    }

    proptest::proptest! {
        /// Line ends and separators inserted anywhere in a valid head: whenever the
        /// whole-head path answers, the scanner's path gives the same request.
        #[test]
        fn prop_whole_request_agrees_with_the_scanner(
            edits in proptest::collection::vec(
                (proptest::sample::select(vec![b'\r', b'\n', b' ', b':', b'a', 0]),
                 proptest::prelude::any::<proptest::sample::Index>()),
                0..4,
            ),
        ) {
            use crate::http::head::HeadScanner;
            let mut input = MINIMAL.as_bytes().to_vec();
            for (byte, at) in edits {
                let at = at.index(input.len() + 1);
                input.insert(at, byte);
            }
            if let Some(request) = parse_whole_request(&input, 32) {
                let len = HeadScanner::new().find_end(&input);
                proptest::prop_assert_eq!(len, Some(input.len()));
                proptest::prop_assert_eq!(parse_request(&input, 32), Ok(request));
            }
        }
    }

    #[test]
    fn more_headers_than_the_stack_holds() {
        // 5 + 40 headers: past the slots kept on the stack, within the limit or not.
        let mut head = String::from(MINIMAL.trim_end_matches("\r\n"));
        head.push_str("\r\n");
        for n in 0..40 {
            head.push_str(&format!("X-Extra-{n}: {n}\r\n"));
        }
        head.push_str("\r\n");
        if !cfg!(feature = "alloc") {
            // Without a heap no head has more headers than the stack holds, whatever the limit.
            assert_eq!(
                parse_request(head.as_bytes(), 45),
                Err(ErrorKind::TooManyHeaders { limit: STACK_HEADERS })
            );
            return;
        }
        let request = parse_request(head.as_bytes(), 45).unwrap();
        assert_eq!(request.headers().len(), 45);
        assert_eq!(request.header("x-extra-39"), Some(&b"39"[..]));
        assert_eq!(
            parse_request(head.as_bytes(), 44),
            Err(ErrorKind::TooManyHeaders { limit: 44 })
        );
        assert_eq!(
            parse_request(head.as_bytes(), STACK_HEADERS),
            Err(ErrorKind::TooManyHeaders { limit: STACK_HEADERS })
        );
        assert!(parse_request(head.as_bytes(), usize::MAX).is_ok());
    }

    #[test]
    fn odd_subprotocols_and_extensions_are_skipped() {
        let head = with_line(
            "Sec-WebSocket-Version",
            "Sec-WebSocket-Version: 13\r\n\
             Sec-WebSocket-Protocol: ok, has space, ,semi;colon, v2.json\r\n\
             Sec-WebSocket-Extensions: a; x=\"1,2\", b\r\n\
             Sec-WebSocket-Extensions: c\r\n",
        );
        let req = parse(&head).unwrap();
        assert_eq!(req.subprotocols().collect::<Vec<_>>(), ["ok", "v2.json"]);
        assert_eq!(req.extensions().collect::<Vec<_>>(), ["a; x=\"1,2\"", "b", "c"]);
    }

    #[test]
    fn error_responses() {
        assert_eq!(
            error_response(400),
            b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
        );
        assert_eq!(
            error_response(405),
            &b"HTTP/1.1 405 Method Not Allowed\r\nAllow: GET\r\nConnection: close\r\n\
               Content-Length: 0\r\n\r\n"[..]
        );
        assert_eq!(
            error_response(426),
            &b"HTTP/1.1 426 Upgrade Required\r\nUpgrade: websocket\r\n\
               Sec-WebSocket-Version: 13\r\nConnection: Upgrade, close\r\n\
               Content-Length: 0\r\n\r\n"[..]
        );
        assert_eq!(
            error_response(431),
            &b"HTTP/1.1 431 Request Header Fields Too Large\r\nConnection: close\r\n\
               Content-Length: 0\r\n\r\n"[..]
        );
        assert_eq!(error_response(500), error_response(400));
        // Each parses as a complete response with an empty body.
        for status in [400, 405, 426, 431] {
            let mut raw = [httparse::EMPTY_HEADER; 8];
            let mut resp = httparse::Response::new(&mut raw);
            let bytes = error_response(status);
            assert_eq!(resp.parse(bytes), Ok(httparse::Status::Complete(bytes.len())));
            assert_eq!(resp.code, Some(status));
        }
    }

    fn rfc_offer() -> Offer {
        let head = with_line(
            "Sec-WebSocket-Version",
            "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: chat, superchat\r\n",
        );
        parse(&head).unwrap().offer()
    }

    #[test]
    fn write_accept_exact_bytes() {
        let offer = rfc_offer();
        let mut out = [0u8; 256];
        let n = write_accept(&offer, &Accept::new(), &mut out).unwrap();
        assert_eq!(
            &out[..n],
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
              Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"
        );
        let headers: &[(&str, &[u8])] = &[("Set-Cookie", b"a=b"), ("X-Server", b"wsm")];
        let accept = Accept::new().subprotocol("chat").headers(headers);
        assert_eq!(accept.selected_subprotocol(), Some("chat"));
        assert_eq!(accept.extra_headers(), headers);
        let n = write_accept(&offer, &accept, &mut out).unwrap();
        let expected: &[u8] = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
              Connection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\
              Sec-WebSocket-Protocol: chat\r\nSet-Cookie: a=b\r\nX-Server: wsm\r\n\r\n";
        assert_eq!(&out[..n], expected);
        assert_eq!(accept_len(&offer, &accept), expected.len());

        // One byte short: the exact size is reported and nothing is written.
        let mut small = vec![0u8; expected.len() - 1];
        assert_eq!(
            write_accept(&offer, &accept, &mut small),
            Err(UsageError::BufferTooSmall { required: expected.len() })
        );
        assert!(small.iter().all(|&b| b == 0));
        let mut exact = vec![0u8; expected.len()];
        assert_eq!(write_accept(&offer, &accept, &mut exact), Ok(expected.len()));
        assert_eq!(exact, expected);
    }

    #[test]
    fn write_accept_refusals() {
        let offer = rfc_offer();
        let mut out = [0u8; 256];
        for name in ["Chat", "other", "chat, superchat", ""] {
            assert_eq!(
                write_accept(&offer, &Accept::new().subprotocol(name), &mut out),
                Err(UsageError::SubprotocolNotOffered)
            );
        }
        let no_protocols = parse(MINIMAL).unwrap().offer();
        assert_eq!(
            write_accept(&no_protocols, &Accept::new().subprotocol("chat"), &mut out),
            Err(UsageError::SubprotocolNotOffered)
        );
        let bad: [&[(&str, &[u8])]; 6] = [
            &[("X", b"a\r\nInjected: yes")],
            &[("X", b"a\nb")],
            &[("X", b"a\0")],
            &[("Bad Name", b"v")],
            &[("", b"v")],
            &[("sec-websocket-accept", b"forged")],
        ];
        for headers in bad {
            assert_eq!(
                write_accept(&offer, &Accept::new().headers(headers), &mut out),
                Err(UsageError::InvalidHeader),
                "{headers:?}"
            );
        }
        // Validation comes before the size check.
        assert_eq!(
            write_accept(&offer, &Accept::new().headers(bad[0]), &mut []),
            Err(UsageError::InvalidHeader)
        );
    }

    #[test]
    fn write_reject_exact_bytes() {
        let mut out = [0u8; 256];
        let n = write_reject(&Reject::new(403), &mut out).unwrap();
        assert_eq!(
            &out[..n],
            b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
        let headers: &[(&str, &[u8])] = &[("Location", b"wss://other.example/chat")];
        let reject = Reject::new(302).headers(headers).body(b"moved");
        assert_eq!(
            (reject.status(), reject.extra_headers(), reject.body_bytes()),
            (302, headers, &b"moved"[..])
        );
        let expected: &[u8] = b"HTTP/1.1 302 Found\r\nLocation: wss://other.example/chat\r\n\
              Content-Length: 5\r\nConnection: close\r\n\r\nmoved";
        assert_eq!(write_reject(&reject, &mut out), Ok(expected.len()));
        assert_eq!(&out[..expected.len()], expected);
        assert_eq!(reject_len(&reject), expected.len());
        let mut small = vec![0u8; expected.len() - 1];
        assert_eq!(
            write_reject(&reject, &mut small),
            Err(UsageError::BufferTooSmall { required: expected.len() })
        );

        let n = write_reject(&Reject::new(599), &mut out).unwrap();
        assert!(out[..n].starts_with(b"HTTP/1.1 599 Error\r\n"));
        let n = write_reject(&Reject::new(204), &mut out).unwrap();
        assert_eq!(&out[..n], b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n");
        let big = vec![b'x'; 12345];
        let n = write_reject(&Reject::new(500).body(&big), &mut vec![0; 20000]).unwrap();
        assert_eq!(
            n,
            "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 12345\r\n\
             Connection: close\r\n\r\n"
                .len()
                + 12345
        );
    }

    #[test]
    fn write_reject_refusals() {
        let mut out = [0u8; 256];
        for status in [0, 101, 199, 600, u16::MAX] {
            assert_eq!(
                write_reject(&Reject::new(status), &mut out),
                Err(UsageError::InvalidStatus(status))
            );
        }
        assert_eq!(
            write_reject(&Reject::new(304).body(b"x"), &mut out),
            Err(UsageError::InvalidStatus(304))
        );
        let bad: [&[(&str, &[u8])]; 4] = [
            &[("Location", b"/x\r\n\r\n<html>")],
            &[("content-length", b"99")],
            &[("Transfer-Encoding", b"chunked")],
            &[("X:Y", b"1")],
        ];
        for headers in bad {
            assert_eq!(
                write_reject(&Reject::new(400).headers(headers), &mut out),
                Err(UsageError::InvalidHeader)
            );
        }
    }

    #[test]
    fn reason_phrases() {
        assert_eq!(reason_phrase(404), "Not Found");
        assert_eq!(reason_phrase(418), "Error");
        assert_eq!(ErrorKind::MethodNotGet.to_string(), "upgrade request method is not GET");
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        // A cheap deterministic fuzz: every prefix and byte-flip of a valid request.
        let base = CHROMIUM;
        for n in 0..=base.len() {
            let _ = parse_request(&base[..n], 32);
        }
        let mut buf = base.to_vec();
        for i in 0..buf.len() {
            for flip in [0x00, b'\r', b'\n', b':', b',', 0xff] {
                let old = buf[i];
                buf[i] = flip;
                if let Ok(req) = parse_request(&buf, 32) {
                    let _ = (req.path(), req.query(), req.subprotocols().count());
                    let _ = req.extensions().count();
                }
                buf[i] = old;
            }
        }
    }
}
