//! UTF-8 validation for text messages and close reasons (RFC 6455 §5.6, §8.1).
//!
//! RFC 6455 §8.1 asks an endpoint to fail the connection as soon as it sees invalid
//! UTF-8, so text is checked as the bytes arrive rather than once the message is
//! whole. Both paths build on the semantics of `core::str::from_utf8`, which reports a
//! cut-off sequence (`error_len() == None`) only when the bytes so far can still become
//! a valid code point; that is what makes the incremental check fail fast.
//!
//! With the `simdutf8` feature (on by default) the bulk of every check runs on the
//! `simdutf8` crate's SIMD validator, which is many times faster than `from_utf8` on
//! non-ASCII text; its `compat` flavour reports errors exactly as `from_utf8` does, so
//! the results are the same either way.

use core::str;

/// Checks a whole slice at once; the zero-copy path for a message that arrived in one
/// piece.
#[inline]
pub(crate) fn validate(bytes: &[u8]) -> Option<&str> {
    #[cfg(feature = "simdutf8")]
    return simdutf8::basic::from_utf8(bytes).ok();
    #[cfg(not(feature = "simdutf8"))]
    return str::from_utf8(bytes).ok();
}

/// `from_utf8`'s verdict on `bytes`: `Ok`, or where the valid prefix ends and how long
/// the invalid sequence after it is (`None` when the input merely ends too early).
#[inline]
fn check_exact(bytes: &[u8]) -> Result<(), (usize, Option<usize>)> {
    #[cfg(feature = "simdutf8")]
    return simdutf8::compat::from_utf8(bytes)
        .map(|_| ())
        .map_err(|e| (e.valid_up_to(), e.error_len()));
    #[cfg(not(feature = "simdutf8"))]
    return str::from_utf8(bytes).map(|_| ()).map_err(|e| (e.valid_up_to(), e.error_len()));
}

/// Where the last code point of `bytes` starts if `bytes` ends before it does, else
/// `bytes.len()`: the bytes before the returned index end on a code point boundary
/// whenever `bytes` is valid UTF-8 cut off anywhere.
#[inline]
fn incomplete_tail_start(bytes: &[u8]) -> usize {
    let len = bytes.len();
    // A cut-off code point has at most 3 of its bytes here, the first one a lead byte
    // (0xC0 and up) and the rest continuation bytes (0x80..=0xBF).
    for back in 1..=len.min(3) {
        let at = len - back;
        let byte = bytes[at];
        if byte < 0x80 {
            return len;
        }
        if byte >= 0xC0 {
            return if sequence_len(byte) > back { at } else { len };
        }
    }
    len
}

/// The bytes fed to a [`Utf8Validator`] are not, and can never become, valid UTF-8.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Utf8Error;

/// Validates UTF-8 that arrives in pieces, split anywhere, even inside a code point.
///
/// It holds at most the 3 leading bytes of one incomplete code point, so it never
/// allocates and is cheap to copy.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Utf8Validator {
    /// The leading bytes of a code point cut off at the end of the last piece; only
    /// `partial[..partial_len]` is meaningful.
    partial: [u8; 3],
    /// How many bytes of `partial` are in use, 0 to 3.
    partial_len: u8,
    /// Set by the first error and kept, so a caller that goes on feeding after an
    /// error cannot have the stream accepted.
    failed: bool,
}

impl Utf8Validator {
    /// A validator at the start of a message: nothing carried, nothing failed.
    pub(crate) const fn new() -> Self {
        Self { partial: [0; 3], partial_len: 0, failed: false }
    }

    /// Checks the next piece of the stream.
    ///
    /// Returns `Err` as soon as the bytes seen so far can no longer be the start of
    /// valid UTF-8, including when the piece ends in a sequence that no later bytes
    /// could complete. Once it has returned `Err`, every later call does too, until
    /// [`reset`](Self::reset).
    pub(crate) fn feed(&mut self, bytes: &[u8]) -> Result<(), Utf8Error> {
        if self.failed {
            return Err(Utf8Error);
        }
        let result = self.feed_inner(bytes);
        if result.is_err() {
            self.failed = true;
            self.partial_len = 0;
        }
        result
    }

    /// [`feed`](Self::feed) without the bookkeeping of the failed state.
    fn feed_inner(&mut self, bytes: &[u8]) -> Result<(), Utf8Error> {
        let mut rest = bytes;
        let carried = usize::from(self.partial_len);
        if carried > 0 {
            // The carried bytes passed `from_utf8` as a prefix, so the first one is a
            // valid lead byte and says how long the code point is.
            let needed = sequence_len(self.partial[0]).saturating_sub(carried);
            let take = needed.min(rest.len());
            let mut joined = [0u8; 4];
            let total = carried + take;
            let (Some(head), Some(taken), Some(carry)) =
                (joined.get_mut(..carried), rest.get(..take), self.partial.get(..carried))
            else {
                return Err(Utf8Error);
            };
            head.copy_from_slice(carry);
            if let Some(tail) = joined.get_mut(carried..total) {
                tail.copy_from_slice(taken);
            }
            match str::from_utf8(joined.get(..total).unwrap_or_default()) {
                Ok(_) => {
                    self.partial_len = 0;
                    rest = rest.get(take..).unwrap_or_default();
                }
                // Still short of a whole code point, but still a possible prefix of
                // one: this piece was used up without finishing it.
                Err(e) if e.error_len().is_none() && take < needed => {
                    return self.carry(joined.get(..total).unwrap_or_default());
                }
                Err(_) => return Err(Utf8Error),
            }
        }
        // The bulk, up to a code point cut off at the end, takes the fast whole-slice
        // check; only the few bytes of that code point (or, when the bulk is invalid,
        // the whole piece) go through the check that says where and how it failed.
        // Both give exactly `from_utf8`'s verdict on `rest`: a valid bulk ends on a code
        // point boundary, so the tail decides alone.
        let cut = incomplete_tail_start(rest);
        let (checked, offset) = match rest.get(..cut) {
            Some(bulk) if validate(bulk).is_some() => (rest.get(cut..).unwrap_or_default(), cut),
            _ => (rest, 0),
        };
        match check_exact(checked) {
            Ok(()) => Ok(()),
            Err((valid_up_to, None)) => {
                self.carry(rest.get(offset + valid_up_to..).unwrap_or_default())
            }
            Err(_) => Err(Utf8Error),
        }
    }

    /// Keeps `tail`, the valid start of a code point, until the next piece.
    fn carry(&mut self, tail: &[u8]) -> Result<(), Utf8Error> {
        // `from_utf8` never leaves more than 3 bytes open, so the error arm only keeps
        // this total rather than guarding a case that can occur.
        let slot = self.partial.get_mut(..tail.len()).ok_or(Utf8Error)?;
        slot.copy_from_slice(tail);
        self.partial_len = u8::try_from(tail.len()).map_err(|_| Utf8Error)?;
        Ok(())
    }

    /// Whether the stream may end here: nothing has failed and no code point is
    /// open. A text message whose final fragment ends mid-code point is invalid.
    pub(crate) fn is_complete(&self) -> bool {
        !self.failed && self.partial_len == 0
    }

    /// Forgets everything, ready for the next message.
    #[cfg(test)]
    pub(crate) fn reset(&mut self) {
        *self = Self::new();
    }
}

/// The length of the code point that `lead` starts; 0 for a byte that cannot start
/// one, which then fails the completion check rather than being trusted.
const fn sequence_len(lead: u8) -> usize {
    match lead {
        0x00..=0x7f => 1,
        0xc2..=0xdf => 2,
        0xe0..=0xef => 3,
        0xf0..=0xf4 => 4,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::{sequence_len, validate, Utf8Error, Utf8Validator};
    use alloc::vec::Vec;
    use proptest::prelude::*;

    /// Feeds `pieces` in order and returns the index of the first failing one.
    fn first_failure(pieces: &[&[u8]]) -> Option<usize> {
        let mut v = Utf8Validator::new();
        pieces.iter().position(|p| v.feed(p).is_err())
    }

    #[test]
    fn validate_whole_slices() {
        assert_eq!(validate(b"hello"), Some("hello"));
        assert_eq!(validate("κόσμε".as_bytes()), Some("κόσμε"));
        assert_eq!(validate(b""), Some(""));
        assert_eq!(validate(b"\xe2\x82"), None);
        assert_eq!(validate(b"\xff"), None);
    }

    #[test]
    fn surrogate_fails_on_the_piece_it_starts_in() {
        let pieces: [&[u8]; 2] =
            [b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80", b"edited"];
        assert_eq!(first_failure(&pieces), Some(0));
        // Even with only the first two bytes of the surrogate present.
        let pieces: [&[u8]; 2] = [b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0", b"\x80"];
        assert_eq!(first_failure(&pieces), Some(0));
    }

    #[test]
    fn above_max_code_point_fails_on_second_byte() {
        let pieces: [&[u8]; 3] = [b"\xf4", b"\x90", b"\x80\x80"];
        assert_eq!(first_failure(&pieces), Some(1));
    }

    #[test]
    fn four_byte_code_point_split_three_ways() {
        let mut v = Utf8Validator::new();
        assert_eq!(v.feed(b"\xf0\x9f"), Ok(()));
        assert!(!v.is_complete());
        assert_eq!(v.feed(b"\x98"), Ok(()));
        assert!(!v.is_complete());
        assert_eq!(v.feed(b"\x80"), Ok(()));
        assert!(v.is_complete());
    }

    #[test]
    fn cut_off_code_point_is_ok_but_not_complete() {
        let mut v = Utf8Validator::new();
        assert_eq!(v.feed(b"\xe2\x82"), Ok(()));
        assert!(!v.is_complete());
        assert_eq!(v.feed(b""), Ok(()));
        assert!(!v.is_complete());
        assert_eq!(v.feed(b"\xac rest"), Ok(()));
        assert!(v.is_complete());
    }

    #[test]
    fn hopeless_prefixes_fail_immediately() {
        // Each of these can never be continued into valid UTF-8.
        let cases: [&[u8]; 12] = [
            b"\xf4\x90",
            b"\xed\xa0",
            b"\xe0\x80",
            b"\xe0\x9f",
            b"\xf0\x80",
            b"\xf0\x8f",
            b"\xc0",
            b"\xc1",
            b"\xf5",
            b"\xff",
            b"\x80",
            b"\xe2\x82\x41",
        ];
        for case in cases {
            let mut whole = Utf8Validator::new();
            assert_eq!(whole.feed(case), Err(Utf8Error), "{case:x?}");
            // Also when the last byte arrives alone after a carried prefix.
            if let Some((last, head)) = case.split_last() {
                let mut split = Utf8Validator::new();
                let early = split.feed(head);
                let late = split.feed(&[*last]);
                assert!(early.is_err() || late.is_err(), "{case:x?}");
            }
        }
    }

    #[test]
    fn carried_prefix_checked_when_extended_but_unfinished() {
        // "\xf0" is a fine prefix, "\xf0\x80" is not: the second feed must fail even
        // though it does not complete the code point.
        let mut v = Utf8Validator::new();
        assert_eq!(v.feed(b"\xf0"), Ok(()));
        assert_eq!(v.feed(b"\x80"), Err(Utf8Error));
        // And a valid extension is carried on.
        let mut v = Utf8Validator::new();
        assert_eq!(v.feed(b"\xf0"), Ok(()));
        assert_eq!(v.feed(b"\x90"), Ok(()));
        assert_eq!(v.feed(b"\x80"), Ok(()));
        assert!(!v.is_complete());
        assert_eq!(v.feed(b"\x80"), Ok(()));
        assert!(v.is_complete());
    }

    #[test]
    fn failure_is_sticky_until_reset() {
        let mut v = Utf8Validator::new();
        assert_eq!(v.feed(b"\xff"), Err(Utf8Error));
        assert_eq!(v.feed(b"fine"), Err(Utf8Error));
        assert!(!v.is_complete());
        v.reset();
        assert_eq!(v, Utf8Validator::new());
        assert_eq!(v.feed(b"fine"), Ok(()));
        assert!(v.is_complete());
    }

    #[test]
    fn incomplete_tail_is_found() {
        use super::incomplete_tail_start as tail;
        assert_eq!(tail(b""), 0);
        assert_eq!(tail(b"abc"), 3);
        assert_eq!(tail(b"ab\xe2\x82"), 2);
        assert_eq!(tail(b"ab\xe2\x82\xac"), 5);
        assert_eq!(tail(b"\xf0\x9f\x98"), 0);
        assert_eq!(tail(b"a\xf0\x9f\x98\x80"), 5);
        assert_eq!(tail(b"a\xc3"), 1);
        assert_eq!(tail(b"\xc3\xa9"), 2);
        // Not a possible start of a code point: left to the whole-slice check.
        assert_eq!(tail(b"a\x80\x80\x80"), 4);
        assert_eq!(tail(b"a\xc0"), 2);
    }

    #[test]
    fn every_split_of_multibyte_text() {
        let text = "a€𝄞κόσμε\u{10ffff}\u{7ff}\u{800}\u{ffff}\u{10000}z".as_bytes();
        for i in 0..=text.len() {
            for j in i..=text.len() {
                let mut v = Utf8Validator::new();
                assert_eq!(v.feed(&text[..i]), Ok(()));
                assert_eq!(v.feed(&text[i..j]), Ok(()));
                assert_eq!(v.feed(&text[j..]), Ok(()));
                assert!(v.is_complete(), "{i} {j}");
            }
        }
    }

    /// The index of the first byte after which `whole` can no longer be a prefix of
    /// valid UTF-8, or `None` if it is valid or only cut off.
    fn decided_at(whole: &[u8]) -> Option<usize> {
        let e = core::str::from_utf8(whole).err()?;
        let n = e.error_len()?;
        let at = e.valid_up_to();
        // A byte that cannot lead anything is wrong by itself; after a good lead
        // byte, `error_len` covers the good prefix and the byte after it is the bad
        // one.
        if sequence_len(whole[at]) >= 2 {
            Some(at + n)
        } else {
            Some(at)
        }
    }

    /// Checks one split of `data` at the sorted cut points `cuts`.
    fn check_split(data: &[u8], cuts: &[usize]) -> Result<(), TestCaseError> {
        let mut bounds = Vec::with_capacity(cuts.len() + 2);
        bounds.push(0);
        bounds.extend_from_slice(cuts);
        bounds.push(data.len());
        let mut v = Utf8Validator::new();
        let mut failed_in = None;
        for (k, w) in bounds.windows(2).enumerate() {
            if v.feed(&data[w[0]..w[1]]).is_err() && failed_in.is_none() {
                failed_in = Some(k);
            }
        }
        let whole = core::str::from_utf8(data);
        prop_assert_eq!(v.is_complete(), whole.is_ok());
        match decided_at(data) {
            // Fails on the piece that holds the deciding byte: not before (it would
            // have rejected a possible prefix), not after (it would be slow to fail).
            Some(at) => {
                let piece = bounds.windows(2).position(|w| w[0] <= at && at < w[1]);
                prop_assert_eq!(failed_in, piece);
            }
            // Valid or merely cut off: no feed fails, only `is_complete` tells.
            None => prop_assert_eq!(failed_in, None),
        }
        Ok(())
    }

    #[test]
    fn every_single_split_of_tricky_bytes() {
        let samples: [&[u8]; 6] = [
            b"ab\xf0\x9f\x98\x80cd\xe2\x82\xac",
            b"ok\xf4\x8f\xbf\xbf\xf4\x90\x80\x80",
            b"\xed\x9f\xbf\xed\xa0\x80",
            b"\xe0\xa0\x80\xe0\x80\x80",
            b"\xc2\x80\xc1\xbf",
            b"x\xe2\x82",
        ];
        for s in samples {
            for i in 0..=s.len() {
                check_split(s, &[i]).unwrap();
                for j in i..=s.len() {
                    check_split(s, &[i, j]).unwrap();
                }
            }
        }
    }

    /// Bytes biased towards the interesting parts of UTF-8: lead bytes, continuation
    /// bytes, and the edges of the ranges that `from_utf8` treats specially.
    fn utf8ish() -> impl Strategy<Value = Vec<u8>> {
        let byte = prop_oneof![
            4 => 0x00u8..0x80,
            4 => 0x80u8..0xc0,
            2 => 0xc0u8..=0xff,
            1 => Just(0xe0u8),
            1 => Just(0xedu8),
            1 => Just(0xf0u8),
            1 => Just(0xf4u8),
            1 => Just(0x9fu8),
            1 => Just(0x90u8),
        ];
        proptest::collection::vec(byte, 0..64)
    }

    proptest! {
        #[test]
        fn prop_arbitrary_bytes_random_splits(
            data in proptest::collection::vec(any::<u8>(), 0..256),
            cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..8),
        ) {
            let mut cuts: Vec<usize> = cuts.iter().map(|c| c.index(data.len() + 1)).collect();
            cuts.sort_unstable();
            check_split(&data, &cuts)?;
        }

        #[test]
        fn prop_utf8ish_bytes_random_splits(
            data in utf8ish(),
            cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..8),
        ) {
            let mut cuts: Vec<usize> = cuts.iter().map(|c| c.index(data.len() + 1)).collect();
            cuts.sort_unstable();
            check_split(&data, &cuts)?;
        }

        #[test]
        fn prop_valid_text_any_splits(
            text in ".*",
            cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..8),
        ) {
            let data = text.as_bytes();
            let mut cuts: Vec<usize> = cuts.iter().map(|c| c.index(data.len() + 1)).collect();
            cuts.sort_unstable();
            check_split(data, &cuts)?;
        }

        /// Long enough for the SIMD validator's wide paths, with one byte possibly
        /// replaced anywhere: the verdicts must still be `from_utf8`'s.
        #[test]
        fn prop_long_text_one_byte_changed(
            text in "(\\PC|[€😀é日]){0,120}",
            repeat in 1usize..6,
            change in proptest::option::of((any::<prop::sample::Index>(), any::<u8>())),
            cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..6),
        ) {
            let mut data = text.repeat(repeat).into_bytes();
            if let (Some((at, byte)), false) = (change, data.is_empty()) {
                let at = at.index(data.len());
                data[at] = byte;
            }
            let mut cuts: Vec<usize> = cuts.iter().map(|c| c.index(data.len() + 1)).collect();
            cuts.sort_unstable();
            check_split(&data, &cuts)?;
            prop_assert_eq!(validate(&data).is_some(), core::str::from_utf8(&data).is_ok());
        }

        #[test]
        fn prop_byte_at_a_time(data in utf8ish()) {
            let cuts: Vec<usize> = (1..data.len()).collect();
            check_split(&data, &cuts)?;
        }
    }
}
