//! Finding the end of an HTTP head in a buffer that grows between calls.

/// The bytes that end an HTTP head: the empty line after the last header (RFC 7230 §3).
const END: &[u8; 4] = b"\r\n\r\n";

/// Finds the end of an HTTP head (`\r\n\r\n`) in a buffer that grows between calls, examining
/// each byte once in total.
///
/// Call [`find_end`](Self::find_end) with the whole buffer each time more bytes arrive; the
/// prefix already seen must be unchanged. The scanner keeps the offset it has examined up to
/// and how much of the terminator the last bytes matched (at most 3 bytes of overlap), so it
/// resumes instead of rescanning and the total work is linear in the final length.
#[derive(Clone, Debug, Default)]
pub(crate) struct HeadScanner {
    /// How many bytes of the input have been examined.
    scanned: usize,
    /// How many bytes of [`END`] the bytes just before `scanned` match (0 to 3).
    matched: usize,
    /// The head's length, once found.
    found: Option<usize>,
    /// Bytes examined over the scanner's life, to check the linear bound in tests.
    #[cfg(test)]
    examined: usize,
}

impl HeadScanner {
    /// A scanner that has seen nothing.
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// The length of the head including its terminating `\r\n\r\n`, once `input` holds it.
    ///
    /// `input` must start with the bytes passed before; if it is shorter than what was already
    /// examined, the caller has started over and so does the scanner.
    pub(crate) fn find_end(&mut self, input: &[u8]) -> Option<usize> {
        if input.len() < self.scanned {
            self.restart();
        }
        if let Some(end) = self.found {
            return Some(end);
        }
        let mut at = self.scanned;
        while at < input.len() {
            if self.matched == 0 {
                // Nothing matched so far: only a CR can start a match (any other byte leaves
                // the state at 0), so skip to the next CR a word at a time.
                let skipped = skip_to_cr(input.get(at..).unwrap_or_default());
                #[cfg(test)]
                {
                    self.examined += skipped;
                }
                at += skipped;
            }
            let Some(&b) = input.get(at) else { break };
            #[cfg(test)]
            {
                self.examined += 1;
            }
            at += 1;
            self.matched = if END.get(self.matched) == Some(&b) {
                self.matched + 1
            } else if b == b'\r' {
                1
            } else {
                0
            };
            if self.matched == END.len() {
                self.scanned = at;
                self.found = Some(at);
                return Some(at);
            }
        }
        self.scanned = input.len();
        None
    }

    /// Forgets everything seen, as if new.
    pub(crate) fn restart(&mut self) {
        self.scanned = 0;
        self.matched = 0;
        self.found = None;
    }
}

/// How many bytes at the start of `bytes` are not CR, counted 8 at a time while whole words
/// remain (the caller's byte-wise loop takes the last few).
fn skip_to_cr(bytes: &[u8]) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let mut skipped = 0;
    for chunk in bytes.chunks_exact(8) {
        let mut word = [0; 8];
        word.copy_from_slice(chunk);
        // Bytes equal to CR become zero. The high bit of each zero byte is then set, and of
        // no byte below the first zero one (a borrow only runs upwards), so the lowest set
        // bit finds the first CR.
        let v = u64::from_le_bytes(word) ^ (ONES * u64::from(b'\r'));
        let found = v.wrapping_sub(ONES) & !v & HIGHS;
        if found != 0 {
            return skipped + (found.trailing_zeros() / 8) as usize;
        }
        skipped += 8;
    }
    skipped
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: &[u8] = b"GET / HTTP/1.1\r\nHost: a\r\n\r\nrest";

    #[test]
    fn whole_input() {
        let mut s = HeadScanner::new();
        assert_eq!(s.find_end(HEAD), Some(HEAD.len() - 4));
        // Asking again (with more input) answers the same without rescanning.
        let before = s.examined;
        assert_eq!(s.find_end(HEAD), Some(HEAD.len() - 4));
        assert_eq!(s.examined, before);
    }

    #[test]
    fn byte_at_a_time_is_linear() {
        let mut s = HeadScanner::new();
        let mut calls = 0;
        let mut result = None;
        for n in 0..=HEAD.len() {
            calls += 1;
            result = s.find_end(&HEAD[..n]);
            if result.is_some() {
                assert_eq!(n, HEAD.len() - 4);
                break;
            }
        }
        assert_eq!(result, Some(HEAD.len() - 4));
        assert!(s.examined <= HEAD.len() - 4 + 3 * calls);
        // Each byte up to the end was examined exactly once.
        assert_eq!(s.examined, HEAD.len() - 4);
    }

    #[test]
    fn terminator_split_across_calls_and_false_starts() {
        let input = b"a\r\n\r\r\n\rb\r\n\r\n";
        for split in 0..=input.len() {
            let mut s = HeadScanner::new();
            let first = s.find_end(&input[..split]);
            let second = s.find_end(input);
            assert_eq!(first.or(second), Some(input.len()), "split at {split}");
            if split < input.len() {
                assert_eq!(first, None);
            }
        }
        let mut s = HeadScanner::new();
        assert_eq!(s.find_end(b"\r\r\n\r\n"), Some(5));
        let mut s = HeadScanner::new();
        assert_eq!(s.find_end(b"\r\n\n\r\n\r"), None);
    }

    #[test]
    fn shorter_input_restarts() {
        let mut s = HeadScanner::new();
        assert_eq!(s.find_end(b"GET / HTTP/1.1\r\nHost: a\r\n"), None);
        assert_eq!(s.find_end(b""), None);
        assert_eq!(s.find_end(b"X\r\n\r\n"), Some(5));
        // A found head followed by a shorter, new input is scanned afresh.
        assert_eq!(s.find_end(b"\r\n\r"), None);
        assert_eq!(s.find_end(b"\r\n\r\n"), Some(4));
    }

    #[test]
    fn skips_to_the_first_cr() {
        assert_eq!(skip_to_cr(b""), 0);
        assert_eq!(skip_to_cr(b"abc"), 0);
        assert_eq!(skip_to_cr(b"abcdefgh"), 8);
        assert_eq!(skip_to_cr(b"abcdefghij"), 8);
        assert_eq!(skip_to_cr(b"abcdefgh\n\nklmnop"), 16);
        for at in 0..24 {
            let mut bytes = [b'x'; 24];
            bytes[at] = b'\r';
            // Bytes near CR in value, and 0x80 and up, must not look like it.
            bytes[(at + 1) % 24] = 0x0C;
            bytes[(at + 2) % 24] = 0x8D;
            bytes[(at + 3) % 24] = 0x0E;
            assert_eq!(skip_to_cr(&bytes), at, "CR at {at}");
        }
    }

    #[test]
    fn same_end_as_a_naive_search_for_any_split() {
        let inputs: [&[u8]; 4] = [
            b"GET /chat HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\n\r\nxyz",
            b"\r\r\r\n\n\r\n\rabcdefgh\r\nabcdefghijklmnop\r\n\r\n",
            b"no end here\r\n\r but close\n\r\n",
            b"0123456789abcdef0123456789\r\n\r\n",
        ];
        for input in inputs {
            let naive = input.windows(4).position(|w| w == END).map(|at| at + 4);
            for split in 0..=input.len() {
                let mut s = HeadScanner::new();
                let first = s.find_end(&input[..split]);
                let second = s.find_end(input);
                assert_eq!(first.or(second), naive, "split {split}");
            }
        }
    }

    #[test]
    fn no_terminator() {
        let mut s = HeadScanner::new();
        let big = [b'a'; 1000];
        assert_eq!(s.find_end(&big), None);
        assert_eq!(s.examined, 1000);
    }
}
