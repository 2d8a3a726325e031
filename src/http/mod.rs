//! The HTTP/1.1 head, as far as the opening handshake needs it: header lines, tokens and
//! lists (RFC 7230), writing a head, finding where one ends, reason phrases. Pure functions
//! over borrowed bytes, no state, no allocation.

pub(crate) mod head;
pub(crate) mod list;
pub(crate) mod status;
pub(crate) mod write;

/// One header line of a parsed request or response, borrowing the input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header<'a> {
    /// The header name as sent (compare it case-insensitively).
    pub name: &'a str,
    /// The header value as sent, without the surrounding whitespace.
    pub value: &'a [u8],
}

/// Whether `b` is a `tchar` (RFC 7230 §3.2.6).
pub(crate) fn is_tchar(b: u8) -> bool {
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
pub(crate) fn is_token(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(|&b| is_tchar(b))
}

/// Whether a header may be written: `name` is a non-empty RFC 7230 token and `value` holds
/// no CR, LF or NUL (any of which would let the value end the line and inject headers).
pub(crate) fn valid_header(name: &str, value: &[u8]) -> bool {
    is_token(name.as_bytes()) && valid_value(value)
}

/// Whether a header value holds no CR, LF or NUL.
pub(crate) fn valid_value(value: &[u8]) -> bool {
    !value.iter().any(|&b| matches!(b, b'\r' | b'\n' | 0))
}

/// `bytes` without leading and trailing optional whitespace (SP and HTAB, RFC 7230 `OWS`).
pub(crate) fn trim_ows(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|&b| b != b' ' && b != b'\t').unwrap_or(bytes.len());
    let rest = bytes.get(start..).unwrap_or(&[]);
    let end = rest.iter().rposition(|&b| b != b' ' && b != b'\t').map_or(0, |i| i + 1);
    rest.get(..end).unwrap_or(&[])
}

/// The values of every header called `name` (case-insensitively), in order.
pub(crate) fn header_values<'h, 'i>(
    headers: &'h [Header<'i>],
    name: &'h str,
) -> impl Iterator<Item = &'i [u8]> + 'h
where
    'i: 'h,
{
    headers.iter().filter(move |h| h.name.eq_ignore_ascii_case(name)).map(|h| h.value)
}

/// The value of the first header called `name` (case-insensitively).
pub(crate) fn find_header<'i>(headers: &[Header<'i>], name: &str) -> Option<&'i [u8]> {
    header_values(headers, name).next()
}

/// How many headers are called `name` (case-insensitively).
pub(crate) fn count_headers(headers: &[Header<'_>], name: &str) -> usize {
    header_values(headers, name).count()
}

/// The elements of a comma-separated list (RFC 7230 §7 `#rule`), trimmed of optional
/// whitespace; empty elements are skipped, as §7 asks recipients to do.
pub(crate) fn tokens(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value.split(|&b| b == b',').map(trim_ows).filter(|t| !t.is_empty())
}

/// Whether any header called `name` lists `token`, both compared case-insensitively.
pub(crate) fn header_contains_token(headers: &[Header<'_>], name: &str, token: &str) -> bool {
    header_values(headers, name).flat_map(tokens).any(|t| t.eq_ignore_ascii_case(token.as_bytes()))
}
