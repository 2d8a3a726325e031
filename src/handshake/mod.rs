//! The opening handshake (RFC 6455 §4) as pure functions over borrowed bytes.
//!
//! Nothing here does I/O or keeps connection state: the server side parses and validates an
//! upgrade request ([`Request`]) and writes the `101` answer ([`Accept`]) or an HTTP error
//! ([`Reject`]); the client side writes the upgrade request ([`ClientRequest`]) and parses and
//! validates the server's answer ([`Response`]). [`head::HeadScanner`] finds where a head ends
//! in a growing buffer.
//!
//! Every function is total: malformed, truncated or hostile input gives an error, never a
//! panic, and work and allocation are linear in the input.

pub(crate) mod head;

mod client;
mod server;

#[allow(unused_imports)]
pub(crate) use client::{parse_response, validate_response, write_request, ClientOffer};
pub use client::{ClientRequest, Response};
#[allow(unused_imports)]
pub(crate) use server::{
    accept_len, error_response, parse_request, parse_whole_request, reject_len, status_for,
    write_accept, write_reject, Offer,
};
pub use server::{Accept, Reject, Request};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

/// The GUID RFC 6455 §1.3 appends to the key: "258EAFA5-E914-47DA-95CA-C5AB0DC85B11".
const WEBSOCKET_GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// One header line of a parsed request or response, borrowing the input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header<'a> {
    /// The header name as sent (compare it case-insensitively).
    pub name: &'a str,
    /// The header value as sent, without the surrounding whitespace.
    pub value: &'a [u8],
}

/// The `Sec-WebSocket-Accept` value for a `Sec-WebSocket-Key`.
///
/// RFC 6455 §4.2.2: "The value of this header field is constructed by concatenating /key/
/// ... with the string "258EAFA5-E914-47DA-95CA-C5AB0DC85B11", taking the SHA-1 hash of this
/// concatenated value to obtain a 20-byte value and base64-encoding ... this 20-byte hash."
/// `key` is the base64 text exactly as sent, not its decoded bytes.
pub(crate) fn accept_key(key: &[u8]) -> [u8; 28] {
    let mut sha = sha1_smol::Sha1::new();
    sha.update(key);
    sha.update(WEBSOCKET_GUID);
    let digest = sha.digest().bytes();
    let mut out = [0u8; 28];
    // Twenty bytes always encode to exactly 28 base64 characters, so this cannot fail.
    let _written = STANDARD.encode_slice(digest, &mut out);
    out
}

/// The base64 text of a 16-byte `Sec-WebSocket-Key` nonce (RFC 6455 §4.1).
fn encode_key(key: [u8; 16]) -> [u8; 24] {
    let mut out = [0u8; 24];
    // Sixteen bytes always encode to exactly 24 base64 characters, so this cannot fail.
    let _written = STANDARD.encode_slice(key, &mut out);
    out
}

/// Whether `value` is a `Sec-WebSocket-Key` as RFC 6455 §4.1 requires: "a base64-encoded
/// (see Section 4 of \[RFC4648\]) value that, when decoded, is 16 bytes in length".
fn is_valid_key(value: &[u8]) -> bool {
    // Sixteen bytes encode to 24 characters with padding; check the length before decoding
    // so an arbitrarily long value costs nothing.
    if value.len() != 24 {
        return false;
    }
    // Exactly what the base64 crate's canonical decoding accepts as 16 bytes, checked without
    // decoding: 22 symbols and "==", the last symbol carrying 2 bits of the 16th byte and 4
    // bits that must be zero (only A, Q, g and w), no padding anywhere else.
    let (symbols, padding) = value.split_at(22);
    padding == b"=="
        && symbols.iter().all(|&b| BASE64_SYMBOL[usize::from(b)])
        && matches!(symbols[21], b'A' | b'Q' | b'g' | b'w')
}

/// Which bytes are symbols of the standard base64 alphabet (RFC 4648 §4).
const BASE64_SYMBOL: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = c.is_ascii_alphanumeric() || c == b'+' || c == b'/';
        b += 1;
    }
    table
};

/// Whether `b` is a `tchar` (RFC 7230 §3.2.6).
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'!' | b'#'
                | b'$'
                | b'%'
                | b'&'
                | b'\''
                | b'*'
                | b'+'
                | b'-'
                | b'.'
                | b'^'
                | b'_'
                | b'`'
                | b'|'
                | b'~'
        )
}

/// Whether `s` is a non-empty RFC 7230 `token`.
fn is_token(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(|&b| is_tchar(b))
}

/// Whether a header may be written: `name` is a non-empty RFC 7230 token and `value` holds
/// no CR, LF or NUL (any of which would let the value end the line and inject headers).
pub(crate) fn valid_header(name: &str, value: &[u8]) -> bool {
    is_token(name.as_bytes()) && valid_value(value)
}

/// Whether a header value holds no CR, LF or NUL.
fn valid_value(value: &[u8]) -> bool {
    !value.iter().any(|&b| matches!(b, b'\r' | b'\n' | 0))
}

/// `bytes` without leading and trailing optional whitespace (SP and HTAB, RFC 7230 `OWS`).
fn trim_ows(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|&b| b != b' ' && b != b'\t').unwrap_or(bytes.len());
    let rest = bytes.get(start..).unwrap_or(&[]);
    let end = rest.iter().rposition(|&b| b != b' ' && b != b'\t').map_or(0, |i| i + 1);
    rest.get(..end).unwrap_or(&[])
}

/// The values of every header called `name` (case-insensitively), in order.
fn header_values<'h, 'i>(
    headers: &'h [Header<'i>],
    name: &'h str,
) -> impl Iterator<Item = &'i [u8]> + 'h
where
    'i: 'h,
{
    headers.iter().filter(move |h| h.name.eq_ignore_ascii_case(name)).map(|h| h.value)
}

/// The value of the first header called `name` (case-insensitively).
fn find_header<'i>(headers: &[Header<'i>], name: &str) -> Option<&'i [u8]> {
    header_values(headers, name).next()
}

/// How many headers are called `name` (case-insensitively).
fn count_headers(headers: &[Header<'_>], name: &str) -> usize {
    header_values(headers, name).count()
}

/// The elements of a comma-separated list (RFC 7230 §7 `#rule`), trimmed of optional
/// whitespace; empty elements are skipped, as §7 asks recipients to do.
fn tokens(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value.split(|&b| b == b',').map(trim_ows).filter(|t| !t.is_empty())
}

/// Whether any header called `name` lists `token`, both compared case-insensitively.
fn header_contains_token(headers: &[Header<'_>], name: &str, token: &str) -> bool {
    header_values(headers, name).flat_map(tokens).any(|t| t.eq_ignore_ascii_case(token.as_bytes()))
}

/// The extension offers in a `Sec-WebSocket-Extensions` value (RFC 6455 §9.1): split at
/// commas that are not inside a quoted-string, trimmed, empty ones skipped. Linear.
fn split_offers(value: &[u8]) -> Offers<'_> {
    Offers { rest: value }
}

/// The iterator [`split_offers`] returns.
struct Offers<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Offers<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        while !self.rest.is_empty() {
            let mut in_quotes = false;
            let mut escaped = false;
            let mut end = self.rest.len();
            for (i, &b) in self.rest.iter().enumerate() {
                if escaped {
                    escaped = false;
                } else if in_quotes {
                    match b {
                        b'\\' => escaped = true,
                        b'"' => in_quotes = false,
                        _ => {}
                    }
                } else if b == b'"' {
                    in_quotes = true;
                } else if b == b',' {
                    end = i;
                    break;
                }
            }
            let offer = trim_ows(self.rest.get(..end).unwrap_or(&[]));
            self.rest = self.rest.get(end.saturating_add(1)..).unwrap_or(&[]);
            if !offer.is_empty() {
                return Some(offer);
            }
        }
        None
    }
}

/// The extension offers of every header called `name`, as strings; offers that are not
/// UTF-8 are skipped.
fn extension_offers<'h, 'i>(
    headers: &'h [Header<'i>],
    name: &'h str,
) -> impl Iterator<Item = &'i str> + 'h
where
    'i: 'h,
{
    header_values(headers, name)
        .flat_map(split_offers)
        .filter_map(|offer| core::str::from_utf8(offer).ok())
}

/// An extension offer's name: the token before the first `;`, trimmed (RFC 6455 §9.1
/// `extension-token`).
fn extension_name(offer: &str) -> &str {
    let name = offer.split(';').next().unwrap_or("");
    name.trim_matches(|c| c == ' ' || c == '\t')
}

/// Where handshake bytes go: counted first to learn the exact length, then written.
trait Sink {
    /// Appends `bytes`.
    fn put(&mut self, bytes: &[u8]);
}

/// A [`Sink`] that only counts.
struct Counter(usize);

impl Sink for Counter {
    fn put(&mut self, bytes: &[u8]) {
        self.0 = self.0.saturating_add(bytes.len());
    }
}

/// A [`Sink`] into a caller's buffer; bytes past its end are dropped (callers size it first).
struct SliceWriter<'b> {
    buf: &'b mut [u8],
    pos: usize,
}

impl Sink for SliceWriter<'_> {
    fn put(&mut self, bytes: &[u8]) {
        let end = self.pos.saturating_add(bytes.len());
        if let Some(dst) = self.buf.get_mut(self.pos..end) {
            dst.copy_from_slice(bytes);
        }
        self.pos = end;
    }
}

impl Sink for alloc::vec::Vec<u8> {
    fn put(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

/// Writes `n` in decimal.
fn put_decimal(sink: &mut impl Sink, mut n: usize) {
    let mut digits = [0u8; 20];
    let mut len = 0;
    for slot in digits.iter_mut().rev() {
        // `n % 10` is below 10, so the cast cannot truncate.
        *slot = b'0' + (n % 10) as u8;
        n /= 10;
        len += 1;
        if n == 0 {
            break;
        }
    }
    let start = digits.len().saturating_sub(len);
    sink.put(digits.get(start..).unwrap_or(&[]));
}

/// Writes `name: value\r\n`.
fn put_header(sink: &mut impl Sink, name: &str, value: &[u8]) {
    sink.put(name.as_bytes());
    sink.put(b": ");
    sink.put(value);
    sink.put(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    #[test]
    fn accept_key_matches_rfc_6455_section_1_3() {
        assert_eq!(&accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="), b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    }

    #[test]
    fn key_must_decode_to_sixteen_bytes() {
        assert!(is_valid_key(b"dGhlIHNhbXBsZSBub25jZQ=="));
        // 15 bytes, 17 bytes, 16 bytes without padding, bad character, non-canonical bits.
        assert!(!is_valid_key(b"AAAAAAAAAAAAAAAAAAAA"));
        assert!(!is_valid_key(b"AAAAAAAAAAAAAAAAAAAAAA=="[..].get(..20).unwrap()));
        assert!(!is_valid_key(b"AAAAAAAAAAAAAAAAAAAAAAA="));
        assert!(!is_valid_key(b"AAAAAAAAAAAAAAAAAAAAAA"));
        assert!(!is_valid_key(b"AAAAAAAAAAAAAAAAAAAAA*=="));
        assert!(!is_valid_key(b"AAAAAAAAAAAAAAAAAAAAAB=="));
        assert!(!is_valid_key(b""));
        assert_eq!(&encode_key([0; 16]), b"AAAAAAAAAAAAAAAAAAAAAA==");
    }

    #[test]
    fn tokens_split_and_trim() {
        let got: Vec<&[u8]> = tokens(b" keep-alive ,\tUpgrade,, ,x").collect();
        assert_eq!(got, [&b"keep-alive"[..], b"Upgrade", b"x"]);
        assert_eq!(tokens(b"").count(), 0);
        assert_eq!(tokens(b" , ,").count(), 0);
        assert_eq!(trim_ows(b" \t "), b"");
        assert_eq!(trim_ows(b"a"), b"a");
    }

    #[test]
    fn header_tokens_are_case_insensitive_across_repeats() {
        let headers = [
            Header { name: "connection", value: b"keep-alive" },
            Header { name: "CONNECTION", value: b"UPGRADE" },
        ];
        assert!(header_contains_token(&headers, "Connection", "upgrade"));
        assert!(!header_contains_token(&headers, "Connection", "close"));
        assert!(!header_contains_token(&headers, "Upgrade", "upgrade"));
        assert_eq!(count_headers(&headers, "Connection"), 2);
        assert_eq!(find_header(&headers, "connection"), Some(&b"keep-alive"[..]));
    }

    #[test]
    fn offers_respect_quoted_strings() {
        let got: Vec<&[u8]> =
            split_offers(b"permessage-deflate; client_max_window_bits, x-foo; a=\"b,c\"").collect();
        assert_eq!(got, [&b"permessage-deflate; client_max_window_bits"[..], b"x-foo; a=\"b,c\""]);
        let got: Vec<&[u8]> = split_offers(b", a; q=\"x\\\",y\" ,, b,").collect();
        assert_eq!(got, [&b"a; q=\"x\\\",y\""[..], b"b"]);
        // An unterminated quote swallows the rest instead of failing.
        assert_eq!(split_offers(b"a; q=\"x, b").count(), 1);
        assert_eq!(extension_name(" permessage-deflate ; x"), "permessage-deflate");
        assert_eq!(extension_name("x-foo"), "x-foo");
        assert_eq!(extension_name(""), "");
    }

    #[test]
    fn header_validity() {
        assert!(valid_header("X-Custom", b"value with spaces"));
        assert!(!valid_header("", b"v"));
        assert!(!valid_header("Bad Name", b"v"));
        assert!(!valid_header("Bad:Name", b"v"));
        assert!(!valid_header("X", b"a\r\nInjected: 1"));
        assert!(!valid_header("X", b"a\nb"));
        assert!(!valid_header("X", b"a\0b"));
    }

    #[test]
    fn decimals() {
        for (n, s) in [(0usize, "0"), (7, "7"), (10, "10"), (431, "431")] {
            let mut v = Vec::new();
            put_decimal(&mut v, n);
            assert_eq!(v, s.as_bytes());
        }
        let mut v = Vec::new();
        put_decimal(&mut v, usize::MAX);
        assert_eq!(v, alloc::format!("{}", usize::MAX).as_bytes());
    }

    mod properties {
        use super::super::head::HeadScanner;
        use super::super::*;
        use alloc::vec::Vec;
        use proptest::prelude::*;

        /// Bytes biased towards the characters HTTP parsing cares about.
        fn http_bytes() -> impl Strategy<Value = Vec<u8>> {
            proptest::collection::vec(
                prop_oneof![
                    Just(b'\r'),
                    Just(b'\n'),
                    Just(b':'),
                    Just(b','),
                    Just(b'"'),
                    Just(b' '),
                    any::<u8>(),
                ],
                0..200,
            )
        }

        proptest! {
            #[test]
            fn parsers_never_panic(tail in http_bytes(), limit in 0usize..40) {
                let mut request = b"GET /x HTTP/1.1\r\nUpgrade: websocket\r\n".to_vec();
                request.extend_from_slice(&tail);
                if let Ok(r) = server::parse_request(&request, limit) {
                    let _ = (r.path(), r.query(), r.subprotocols().count(), r.extensions().count());
                    let _ = r.offer();
                }
                let mut response = b"HTTP/1.1 101 Switching Protocols\r\n".to_vec();
                response.extend_from_slice(&tail);
                let offer = client::write_request(&ClientRequest::new("h", "/"), [7; 16]);
                if let (Ok(r), Ok((_, offer))) = (client::parse_response(&response, limit), offer) {
                    let _ = client::validate_response(&r, &offer);
                    let _ = (r.body(), r.subprotocol(), r.extensions().count());
                }
                let _ = server::parse_request(&tail, limit);
                let _ = client::parse_response(&tail, limit);
            }

            /// The check of the key agrees with decoding it, on keys near the valid ones.
            #[test]
            fn key_check_agrees_with_base64_decoding(
                key in proptest::collection::vec(
                    prop_oneof![
                        8 => proptest::sample::select(
                            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
                                .to_vec(),
                        ),
                        1 => Just(b'='),
                        1 => any::<u8>(),
                    ],
                    20..27,
                ),
                pad in 0usize..3,
            ) {
                let mut key = key;
                let len = key.len();
                for b in key.iter_mut().skip(len.saturating_sub(pad)) {
                    *b = b'=';
                }
                let mut decoded = [0u8; 32];
                let decodes_to_16 = matches!(STANDARD.decode_slice(&key, &mut decoded), Ok(16));
                prop_assert_eq!(is_valid_key(&key), decodes_to_16, "{:?}", key);
            }

            #[test]
            fn scanner_matches_a_naive_search(input in http_bytes(), cuts in proptest::collection::vec(0usize..200, 0..10)) {
                let expected = input.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4);
                let mut cuts: Vec<usize> = cuts.into_iter().filter(|&c| c <= input.len()).collect();
                cuts.sort_unstable();
                cuts.push(input.len());
                let mut scanner = HeadScanner::new();
                let mut found = None;
                for cut in cuts {
                    found = scanner.find_end(&input[..cut]);
                    if found.is_some() {
                        prop_assert!(expected.is_some_and(|e| e <= cut));
                        break;
                    }
                }
                prop_assert_eq!(found, expected);
            }

            #[test]
            fn offers_and_tokens_cover_the_input(value in http_bytes()) {
                let total: usize = split_offers(&value).map(<[u8]>::len).sum();
                prop_assert!(total <= value.len());
                for offer in split_offers(&value) {
                    prop_assert!(!offer.is_empty());
                }
                for token in tokens(&value) {
                    prop_assert!(!token.is_empty() && !token.contains(&b','));
                }
            }
        }
    }
}
