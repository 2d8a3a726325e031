//! The opening handshake (RFC 6455 §4) as pure functions over borrowed bytes.
//!
//! Nothing here does I/O or keeps connection state. The server side parses and validates an
//! upgrade request ([`Request`], `request.rs`) and writes the `101` answer ([`Accept`],
//! `accept.rs`) or an HTTP refusal ([`Reject`], `reject.rs`); the client side writes the
//! upgrade request ([`ClientRequest`], `client.rs`) and parses and validates the server's
//! answer ([`Response`], `response.rs`). `key.rs` holds the nonce and its accept value,
//! `extension.rs` the `Sec-WebSocket-Extensions` negotiation.
//!
//! Every function is total: malformed, truncated or hostile input gives an error, never a
//! panic, and work and allocation are linear in the input.

mod accept;
pub(crate) mod client;
#[cfg(feature = "deflate")]
pub(crate) mod deflate;
mod extension;
mod key;
mod names;
mod reject;
mod request;
mod response;

pub(crate) use accept::write_accept;
pub use accept::Accept;
pub use client::ClientRequest;
pub(crate) use client::{prepare_request, ClientOffer};
pub(crate) use reject::write_reject;
pub use reject::Reject;
pub use request::Request;
pub(crate) use request::{error_response, parse_request, parse_whole_request, status_for, Offer};
pub use response::Response;
pub(crate) use response::{parse_response, validate_response};

pub use crate::http::Header;
#[cfg(feature = "deflate")]
pub use deflate::{DeflateConfig, DeflateMode, DeflateParams, DeflateResponseError};

#[cfg(test)]
mod tests {
    use super::extension::*;
    use super::key::*;
    use crate::http::write::put_decimal;
    use crate::http::*;
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
        use super::super::extension::split_offers;
        use super::super::key::is_valid_key;
        use super::super::*;
        use crate::http::head::HeadScanner;
        use crate::http::tokens;
        use alloc::vec::Vec;
        use base64::engine::general_purpose::STANDARD;
        use base64::Engine as _;
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
                if let Ok(r) = parse_request(&request, limit) {
                    let _ = (r.path(), r.query(), r.subprotocols().count(), r.extensions().count());
                    let _ = r.offer();
                }
                let mut response = b"HTTP/1.1 101 Switching Protocols\r\n".to_vec();
                response.extend_from_slice(&tail);
                let offer = crate::handshake::client::write_request(&ClientRequest::new("h", "/"), [7; 16]);
                if let (Ok(r), Ok((_, offer))) = (parse_response(&response, limit), offer) {
                    let _ = validate_response(&r, &offer);
                    let _ = (r.body(), r.subprotocol(), r.extensions().count());
                }
                let _ = parse_request(&tail, limit);
                let _ = parse_response(&tail, limit);
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
