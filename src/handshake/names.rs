//! [`Names`]: a list of tokens (subprotocols, extension names) kept after the head they came
//! from is gone, as one comma-separated string (a token holds no comma).
//!
//! With `alloc` the string is on the heap, sized exactly, so what is kept is never more than
//! the head it came from (a `String` per name would cost ~50 bytes per one-letter name).
//! Without it the string is inline and holds at most [`NAMES_MAX`] bytes.

/// How many bytes of names are kept without `alloc`: far more than real offers use (a
/// browser's subprotocol list is a few dozen bytes) and small enough to sit in a connection.
#[cfg_attr(feature = "alloc", allow(dead_code))]
pub(crate) const NAMES_MAX: usize = 128;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Names {
    #[cfg(feature = "alloc")]
    joined: alloc::string::String,
    #[cfg(not(feature = "alloc"))]
    joined: Inline,
}

#[cfg(not(feature = "alloc"))]
#[derive(Clone, Debug, PartialEq, Eq)]
struct Inline {
    bytes: [u8; NAMES_MAX],
    len: u8,
}

#[cfg(not(feature = "alloc"))]
impl Default for Inline {
    fn default() -> Self {
        Self { bytes: [0; NAMES_MAX], len: 0 }
    }
}

impl Names {
    /// `names`, all of them with `alloc`; without it only the first that fit in
    /// [`NAMES_MAX`] bytes. The flag says whether all were kept.
    pub(crate) fn collect<'a>(names: impl Iterator<Item = &'a str>) -> (Self, bool) {
        let mut list = Self::default();
        let mut complete = true;
        for name in names {
            complete &= list.push(name);
        }
        #[cfg(feature = "alloc")]
        list.joined.shrink_to_fit();
        (list, complete)
    }

    /// Appends `name`; `false` if it did not fit (only without `alloc`).
    fn push(&mut self, name: &str) -> bool {
        let comma = usize::from(!self.as_str().is_empty());
        #[cfg(feature = "alloc")]
        {
            let _ = comma;
            if !self.joined.is_empty() {
                self.joined.push(',');
            }
            self.joined.push_str(name);
            true
        }
        #[cfg(not(feature = "alloc"))]
        {
            let at = usize::from(self.joined.len);
            let end = at + comma + name.len();
            if end > NAMES_MAX {
                return false;
            }
            if comma == 1 {
                self.joined.bytes[at] = b',';
            }
            self.joined.bytes[at + comma..end].copy_from_slice(name.as_bytes());
            self.joined.len = end as u8;
            true
        }
    }

    fn as_str(&self) -> &str {
        #[cfg(feature = "alloc")]
        return &self.joined;
        // Only whole `&str`s and commas are ever copied in, so this is always UTF-8.
        #[cfg(not(feature = "alloc"))]
        return core::str::from_utf8(&self.joined.bytes[..usize::from(self.joined.len)])
            .unwrap_or("");
    }

    /// The names, in order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &str> {
        self.as_str().split(',').filter(|n| !n.is_empty())
    }

    /// Whether `name` is one of them (exactly).
    pub(crate) fn contains(&self, name: &[u8]) -> bool {
        !name.is_empty() && self.iter().any(|n| n.as_bytes() == name)
    }

    /// Whether `name` is one of them, ASCII case-insensitively.
    pub(crate) fn contains_ignore_case(&self, name: &[u8]) -> bool {
        self.iter().any(|n| n.as_bytes().eq_ignore_ascii_case(name))
    }

    /// How many there are.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.iter().count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_match_exactly() {
        let (names, all) = Names::collect(["chat", "v2.json"].into_iter());
        assert!(all);
        assert_eq!(names.iter().collect::<alloc::vec::Vec<_>>(), ["chat", "v2.json"]);
        assert!(names.contains(b"chat") && names.contains(b"v2.json"));
        assert!(!names.contains(b"cha") && !names.contains(b"") && !names.contains(b"chat,"));
        assert!(names.contains_ignore_case(b"CHAT"));
        assert_eq!(Names::collect(core::iter::empty()).0.len(), 0);
    }
}
