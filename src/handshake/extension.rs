//! Extension negotiation (RFC 6455 §9.1): splitting `Sec-WebSocket-Extensions` into offers
//! and naming them. permessage-deflate's parameters will be parsed here.

use crate::http::{header_values, trim_ows, Header};

/// The extension offers in a `Sec-WebSocket-Extensions` value (RFC 6455 §9.1): split at
/// commas that are not inside a quoted-string, trimmed, empty ones skipped. Linear.
pub(crate) fn split_offers(value: &[u8]) -> Offers<'_> {
    Offers { rest: value }
}

/// The iterator [`split_offers`] returns.
pub(crate) struct Offers<'a> {
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
pub(crate) fn extension_offers<'h, 'i>(
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
pub(crate) fn extension_name(offer: &str) -> &str {
    let name = offer.split(';').next().unwrap_or("");
    name.trim_matches(|c| c == ' ' || c == '\t')
}
