//! [`HeaderList`]: the header lines of a parsed head, on the heap with `alloc`, inline
//! (at most [`INLINE_HEADERS`]) without it.

use core::ops::Deref;

use super::{trim_ows, Header};

/// How many header lines a head may have without `alloc`, whatever
/// [`Config::max_headers`](crate::Config::max_headers) says: browsers send about fifteen, and
/// 32 slots take 1 KiB.
pub(crate) const INLINE_HEADERS: usize = 32;

/// The most header lines a head may have under the limit `max_headers`.
pub(crate) const fn header_limit(max_headers: usize) -> usize {
    if cfg!(feature = "alloc") || max_headers < INLINE_HEADERS {
        max_headers
    } else {
        INLINE_HEADERS
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct HeaderList<'a> {
    #[cfg(feature = "alloc")]
    items: alloc::vec::Vec<Header<'a>>,
    #[cfg(not(feature = "alloc"))]
    items: [Header<'a>; INLINE_HEADERS],
    #[cfg(not(feature = "alloc"))]
    len: u8,
}

impl<'a> HeaderList<'a> {
    /// The lines httparse parsed, their values trimmed of surrounding whitespace; without
    /// `alloc` only the first [`INLINE_HEADERS`] (the parsers never give more).
    pub(crate) fn from_parsed(parsed: &[httparse::Header<'a>]) -> Self {
        let lines = parsed.iter().map(|h| Header { name: h.name, value: trim_ows(h.value) });
        #[cfg(feature = "alloc")]
        return Self { items: lines.collect() };
        #[cfg(not(feature = "alloc"))]
        {
            let mut items = [Header { name: "", value: &[] }; INLINE_HEADERS];
            let mut len = 0;
            for (slot, line) in items.iter_mut().zip(lines) {
                *slot = line;
                len += 1;
            }
            Self { items, len }
        }
    }
}

impl<'a> Deref for HeaderList<'a> {
    type Target = [Header<'a>];

    fn deref(&self) -> &[Header<'a>] {
        #[cfg(feature = "alloc")]
        return &self.items;
        #[cfg(not(feature = "alloc"))]
        return &self.items[..usize::from(self.len)];
    }
}
