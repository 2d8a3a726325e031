//! The adapters' output buffer: bytes to write in order, with a large payload kept as it is
//! (written after its header with a vectored write) instead of copied.

use alloc::vec::Vec;

use crate::connection::Written;
use crate::error::UsageError;

/// Bytes to write to the transport, in order: `buf[written..end]`, then a message's payload
/// kept as it is (the tail), then what was queued behind that payload.
#[derive(Debug, Default)]
pub(crate) struct OutputBuffer {
    /// `buf[written..end]` is still to be written. `buf[..buf.len()]` is initialized, and
    /// space past `end` is reused as it is: it is zeroed once per allocation, not per frame.
    pub(crate) buf: Vec<u8>,
    /// How many bytes at the front were already written.
    pub(crate) written: usize,
    /// Where the bytes to write end.
    pub(crate) end: usize,
    /// A server's message payload, written after `buf` without being copied (for a stream
    /// that takes vectored writes); empty when there is none.
    pub(crate) tail: Vec<u8>,
    /// How much of `tail` was written.
    pub(crate) tail_written: usize,
    /// Bytes queued while a tail waits, which go after it.
    pub(crate) after: Vec<u8>,
}

/// Output capacity kept between writes; a larger buffer (after a big message) is freed once
/// written, so an idle connection holds little.
pub(crate) const OUTPUT_KEEP: usize = 1024;

/// The smallest payload a server sends without copying it (when the stream takes vectored
/// writes): below it, copying is cheaper than another slice to write.
pub(crate) const ZERO_COPY_MIN: usize = 4096;

impl OutputBuffer {
    /// The next bytes to write (empty when everything was written).
    pub(crate) fn pending(&self) -> &[u8] {
        let head = &self.buf[self.written..self.end];
        if head.is_empty() {
            &self.tail[self.tail_written..]
        } else {
            head
        }
    }

    /// Whether everything was written (what waits behind a tail counts: it is only there
    /// while the tail is).
    pub(crate) fn is_empty(&self) -> bool {
        self.written == self.end && self.tail_written == self.tail.len()
    }

    /// Everything still to write, in order, as three slices (some may be empty).
    pub(crate) fn parts(&self) -> [&[u8]; 3] {
        [&self.buf[self.written..self.end], &self.tail[self.tail_written..], &self.after]
    }

    /// Appends `bytes`, reusing initialized space first.
    pub(crate) fn append(&mut self, bytes: &[u8]) {
        if !self.tail.is_empty() {
            self.after.extend_from_slice(bytes);
            return;
        }
        let reuse = (self.buf.len() - self.end).min(bytes.len());
        let (now, rest) = bytes.split_at(reuse);
        self.buf[self.end..self.end + reuse].copy_from_slice(now);
        self.buf.extend_from_slice(rest);
        self.end += bytes.len();
    }

    /// Queues `payload` to be written as it is, after everything queued so far.
    pub(crate) fn push_tail(&mut self, payload: Vec<u8>) {
        if self.tail.is_empty() {
            self.tail = payload;
            self.tail_written = 0;
        } else {
            self.after.extend_from_slice(&payload);
        }
    }

    /// Runs `command` on at least `need` bytes of space at the end, keeping what it wrote;
    /// when the guess was short, tries once more with the size the command asked for.
    pub(crate) fn command(
        &mut self,
        need: usize,
        mut command: impl FnMut(&mut [u8]) -> Result<Written, UsageError>,
    ) -> Result<(), UsageError> {
        // Behind a tail (rare: a reply queued while a large message is being written), the
        // space comes from `after`, the plain way.
        let behind_tail = !self.tail.is_empty();
        let (buf, at) = if behind_tail {
            let at = self.after.len();
            (&mut self.after, at)
        } else {
            (&mut self.buf, self.end)
        };
        let mut size = need;
        let mut result = Err(UsageError::BufferTooSmall { required: size });
        for _ in 0..2 {
            if buf.len() < at + size {
                buf.resize(at + size, 0);
            }
            match command(&mut buf[at..]) {
                Ok(n) => {
                    result = Ok(at + n.len());
                    break;
                }
                Err(UsageError::BufferTooSmall { required }) if required > size => {
                    size = required;
                    result = Err(UsageError::BufferTooSmall { required });
                }
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        match (result, behind_tail) {
            (Ok(end), true) => self.after.truncate(end),
            (Ok(end), false) => self.end = end,
            (Err(e), true) => {
                self.after.truncate(at);
                return Err(e);
            }
            (Err(e), false) => return Err(e),
        }
        Ok(())
    }

    /// Gives up the buffer's allocation when everything was written (`None` if it holds
    /// none), so that an idle connection holds no output buffer.
    pub(crate) fn release(&mut self) -> Option<Vec<u8>> {
        if !self.pending().is_empty() || !self.after.is_empty() {
            return None;
        }
        let released = core::mem::take(self);
        Some(released.buf).filter(|buf| buf.capacity() > 0)
    }

    /// Takes `buf`'s allocation (its initialized length included: space is reused as it
    /// is) when the buffer holds none; `buf` is given back otherwise.
    pub(crate) fn adopt(&mut self, buf: Vec<u8>) -> Option<Vec<u8>> {
        if self.buf.capacity() > 0 || !self.pending().is_empty() || !self.after.is_empty() {
            return Some(buf);
        }
        self.buf = buf;
        self.written = 0;
        self.end = 0;
        None
    }

    /// `n` bytes of [`parts`](Self::parts) were written. Returns the payload kept as it is
    /// once it is all written, so that its allocation can serve again.
    pub(crate) fn advance(&mut self, mut n: usize) -> Option<Vec<u8>> {
        let mut spent = None;
        loop {
            let head = n.min(self.end - self.written);
            self.written += head;
            n -= head;
            let tail = n.min(self.tail.len() - self.tail_written);
            self.tail_written += tail;
            n -= tail;
            if self.written < self.end || self.tail_written < self.tail.len() {
                return spent;
            }
            // `buf` and the tail are written: give the payload back, and what waited behind
            // it comes next.
            let tail = core::mem::take(&mut self.tail);
            if tail.capacity() > 0 {
                spent = Some(tail);
            }
            self.tail_written = 0;
            self.written = 0;
            if self.after.is_empty() {
                self.end = 0;
                if self.buf.capacity() > OUTPUT_KEEP {
                    self.buf = Vec::new();
                }
                return spent;
            }
            self.buf = core::mem::take(&mut self.after);
            self.end = self.buf.len();
            if n == 0 {
                return spent;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_payload_kept_as_it_is_goes_out_in_order() {
        let mut out = OutputBuffer::default();
        out.append(b"H");
        out.push_tail(b"payload".to_vec());
        // Queued behind the payload: a reply, then another message copied.
        out.append(b"P");
        out.command(2, |buf| {
            buf[..2].copy_from_slice(b"QR");
            Ok(Written::new(2))
        })
        .unwrap();
        out.push_tail(b"xy".to_vec());
        let expected = b"HpayloadPQRxy";
        assert_eq!(out.parts().concat(), expected);
        // Written in uneven steps, across the parts as a vectored write would.
        let mut sent = Vec::new();
        for step in [2, 3, 5, 1, 100] {
            let all = out.parts().concat();
            let n = step.min(all.len());
            sent.extend_from_slice(&all[..n]);
            let _spent = out.advance(n);
            assert_eq!(out.pending().is_empty(), out.parts().concat().is_empty());
        }
        assert_eq!(sent, expected);
        assert!(out.pending().is_empty() && out.tail.is_empty() && out.after.is_empty());
    }

    #[test]
    fn output_buffer_retries_with_the_required_size() {
        let mut out = OutputBuffer::default();
        let mut calls = 0;
        out.command(1, |buf| {
            calls += 1;
            if buf.len() < 10 {
                return Err(UsageError::BufferTooSmall { required: 10 });
            }
            buf[..10].copy_from_slice(b"0123456789");
            Ok(Written::new(10))
        })
        .unwrap();
        assert_eq!((calls, out.pending()), (2, &b"0123456789"[..]));
        let _spent = out.advance(4);
        assert_eq!(out.pending(), b"456789");
        let _spent = out.advance(6);
        assert!(out.pending().is_empty() && out.written == 0);
        // The space is reused as it is, not zeroed again.
        out.append(b"ab");
        out.command(3, |buf| {
            assert_eq!(&buf[..3], b"234");
            buf[..3].copy_from_slice(b"cde");
            Ok(Written::new(3))
        })
        .unwrap();
        assert_eq!(out.pending(), b"abcde");
    }
}
