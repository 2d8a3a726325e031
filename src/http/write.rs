//! Writing an HTTP head: counted first to learn its exact length, then written into the
//! caller's buffer (or a `Vec`).

/// Where handshake bytes go: counted first to learn the exact length, then written.
pub(crate) trait Sink {
    /// Appends `bytes`.
    fn put(&mut self, bytes: &[u8]);
}

/// A [`Sink`] that only counts.
pub(crate) struct Counter(pub(crate) usize);

impl Sink for Counter {
    fn put(&mut self, bytes: &[u8]) {
        self.0 = self.0.saturating_add(bytes.len());
    }
}

/// A [`Sink`] into a caller's buffer; bytes past its end are dropped (callers size it first).
pub(crate) struct SliceWriter<'b> {
    pub(crate) buf: &'b mut [u8],
    pub(crate) pos: usize,
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

#[cfg(any(feature = "alloc", test))]
impl Sink for alloc::vec::Vec<u8> {
    fn put(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

/// Writes `n` in decimal.
pub(crate) fn put_decimal(sink: &mut impl Sink, mut n: usize) {
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
pub(crate) fn put_header(sink: &mut impl Sink, name: &str, value: &[u8]) {
    sink.put(name.as_bytes());
    sink.put(b": ");
    sink.put(value);
    sink.put(b"\r\n");
}
