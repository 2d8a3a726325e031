//! The adapters' output buffer: bytes to write in order, with a large payload kept as it is
//! and a message shared by many connections referenced, not copied (both written after what
//! precedes them with a vectored write).

use alloc::collections::VecDeque;
use alloc::vec::Vec;

use crate::buffer::shared::{Encoding, SharedMessage};
use crate::connection::Written;
use crate::error::UsageError;

/// Bytes to write to the transport, in order: `buf[written..end]`, then the queued segments
/// (a payload kept as it is, a shared message's frame, bytes copied behind them).
#[derive(Debug, Default)]
pub(crate) struct OutputBuffer {
    /// `buf[written..end]` is still to be written. `buf[..buf.len()]` is initialized, and
    /// space past `end` is reused as it is: it is zeroed once per allocation, not per frame.
    pub(crate) buf: Vec<u8>,
    /// How many bytes at the front were already written.
    pub(crate) written: usize,
    /// Where the bytes to write end.
    pub(crate) end: usize,
    /// What goes after `buf`, in order; new bytes are copied into `buf` only while this is
    /// empty.
    queue: VecDeque<Segment>,
    /// How much of the first segment was written.
    segment_written: usize,
    /// The bytes the segments hold, in all (written ones included).
    queued: usize,
}

/// Bytes queued after the output buffer's own.
#[derive(Debug)]
enum Segment {
    /// A message's payload kept as it is (given back for reuse once written).
    Payload(Vec<u8>),
    /// Bytes copied behind a segment.
    Copied(Vec<u8>),
    /// One encoding of a message shared by many connections.
    Shared(SharedMessage, Encoding),
}

impl Segment {
    fn bytes(&self) -> &[u8] {
        match self {
            Self::Payload(bytes) | Self::Copied(bytes) => bytes,
            // The encoding was made before the message was queued.
            Self::Shared(message, encoding) => message.frame(*encoding).unwrap_or_default(),
        }
    }
}

/// Output capacity kept between writes; a larger buffer (after a big message) is freed once
/// written, so an idle connection holds little.
pub(crate) const OUTPUT_KEEP: usize = 1024;

/// The most queued segments whose room an idle connection keeps.
const QUEUE_KEEP: usize = 4;

/// The smallest payload a server sends without copying it (when the stream takes vectored
/// writes): below it, copying is cheaper than another slice to write.
pub(crate) const ZERO_COPY_MIN: usize = 4096;

impl OutputBuffer {
    /// The next bytes to write (empty when everything was written).
    pub(crate) fn pending(&self) -> &[u8] {
        let head = &self.buf[self.written..self.end];
        match self.queue.front() {
            Some(segment) if head.is_empty() => &segment.bytes()[self.segment_written..],
            _ => head,
        }
    }

    /// Whether what is left to write is one slice (then a plain write does).
    pub(crate) fn is_one_slice(&self) -> bool {
        self.queue.is_empty() || (self.written == self.end && self.queue.len() == 1)
    }

    /// Whether everything was written.
    pub(crate) fn is_empty(&self) -> bool {
        self.written == self.end && self.queue.is_empty()
    }

    /// How many bytes are still to write, in all.
    pub(crate) fn len(&self) -> usize {
        self.end - self.written + self.queued - self.segment_written
    }

    /// Fills `parts` with what is still to write, in order, for a vectored write; returns
    /// how many slices it filled (what does not fit waits for the next write).
    pub(crate) fn parts<'a>(&'a self, parts: &mut [&'a [u8]]) -> usize {
        let head = &self.buf[self.written..self.end];
        let mut n = 0;
        let mut skip = self.segment_written;
        let segments = self.queue.iter().map(|segment| {
            let bytes = &segment.bytes()[skip..];
            skip = 0;
            bytes
        });
        for part in core::iter::once(head).chain(segments).filter(|part| !part.is_empty()) {
            let Some(slot) = parts.get_mut(n) else { break };
            *slot = part;
            n += 1;
        }
        n
    }

    /// Appends `bytes`, reusing initialized space first.
    pub(crate) fn append(&mut self, bytes: &[u8]) {
        if !self.queue.is_empty() {
            self.copied_segment().extend_from_slice(bytes);
            self.queued += bytes.len();
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
        self.queued += payload.len();
        self.queue.push_back(Segment::Payload(payload));
    }

    /// Queues the frame of `message` for `encoding` (which it holds), after everything
    /// queued so far: a reference, not a copy.
    pub(crate) fn push_shared(&mut self, message: SharedMessage, encoding: Encoding) {
        let segment = Segment::Shared(message, encoding);
        self.queued += segment.bytes().len();
        self.queue.push_back(segment);
    }

    /// The segment at the back that takes copied bytes, created when the back holds
    /// something else.
    fn copied_segment(&mut self) -> &mut Vec<u8> {
        if !matches!(self.queue.back(), Some(Segment::Copied(_))) {
            self.queue.push_back(Segment::Copied(Vec::new()));
        }
        match self.queue.back_mut() {
            Some(Segment::Copied(bytes)) => bytes,
            // Pushed just above.
            _ => unreachable!("the back segment takes copied bytes"),
        }
    }

    /// Runs `command` on at least `need` bytes of space at the end, keeping what it wrote;
    /// when the guess was short, tries once more with the size the command asked for.
    pub(crate) fn command(
        &mut self,
        need: usize,
        command: impl FnMut(&mut [u8]) -> Result<Written, UsageError>,
    ) -> Result<(), UsageError> {
        self.command_with(need, command, |written| *written).map(|_written| ())
    }

    /// [`command`](Self::command) for a command that returns more than what it wrote:
    /// `written` tells it from the result, which is returned.
    pub(crate) fn command_with<T>(
        &mut self,
        need: usize,
        mut command: impl FnMut(&mut [u8]) -> Result<T, UsageError>,
        written: impl Fn(&T) -> Written,
    ) -> Result<T, UsageError> {
        // Behind a segment (a reply queued while a large or shared message is being
        // written), the space comes from a copied segment, the plain way.
        let behind = !self.queue.is_empty();
        let at = if behind { self.copied_segment().len() } else { self.end };
        let buf = if behind { self.copied_segment() } else { &mut self.buf };
        let mut size = need;
        let mut result = Err(UsageError::BufferTooSmall { required: size });
        for _ in 0..2 {
            if buf.len() < at + size {
                buf.resize(at + size, 0);
            }
            match command(&mut buf[at..]) {
                Ok(value) => {
                    result = Ok(value);
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
        let end = result.as_ref().map_or(at, |value| at + written(value).len());
        if behind {
            buf.truncate(end);
            self.queued += end - at;
        } else {
            self.end = end;
        }
        result
    }

    /// Gives up the buffer's allocation when everything was written (`None` if it holds
    /// none), so that an idle connection holds no output buffer.
    pub(crate) fn release(&mut self) -> Option<Vec<u8>> {
        if !self.is_empty() {
            return None;
        }
        // A small queue keeps its allocation: a connection that receives broadcasts then
        // queues each frame without allocating.
        let queue = core::mem::take(&mut self.queue);
        let released = core::mem::take(self);
        if queue.capacity() <= QUEUE_KEEP {
            self.queue = queue;
        }
        Some(released.buf).filter(|buf| buf.capacity() > 0)
    }

    /// Takes `buf`'s allocation (its initialized length included: space is reused as it
    /// is) when the buffer holds none; `buf` is given back otherwise.
    pub(crate) fn adopt(&mut self, buf: Vec<u8>) -> Option<Vec<u8>> {
        if self.buf.capacity() > 0 || !self.is_empty() {
            return Some(buf);
        }
        self.buf = buf;
        self.written = 0;
        self.end = 0;
        None
    }

    /// `n` bytes of [`parts`](Self::parts) were written. Returns a payload kept as it is
    /// once it is all written, so that its allocation can serve again.
    pub(crate) fn advance(&mut self, mut n: usize) -> Option<Vec<u8>> {
        let head = n.min(self.end - self.written);
        self.written += head;
        n -= head;
        if self.written == self.end {
            self.written = 0;
            self.end = 0;
            if self.buf.capacity() > OUTPUT_KEEP && self.queue.is_empty() {
                self.buf = Vec::new();
            }
        }
        let mut spent = None;
        while let Some(segment) = self.queue.front() {
            let len = segment.bytes().len();
            let step = n.min(len - self.segment_written);
            self.segment_written += step;
            n -= step;
            if self.segment_written < len {
                break;
            }
            self.segment_written = 0;
            self.queued -= len;
            if let Some(Segment::Payload(bytes) | Segment::Copied(bytes)) = self.queue.pop_front() {
                if bytes.capacity() > 0 {
                    spent = Some(bytes);
                }
            }
        }
        spent
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all_parts(out: &OutputBuffer) -> Vec<u8> {
        let mut parts = [&[][..]; 64];
        let n = out.parts(&mut parts);
        parts[..n].concat()
    }

    #[test]
    fn shared_frames_are_referenced_and_leave_in_one_vectored_write() {
        let message = SharedMessage::text("hello");
        let mut out = OutputBuffer::default();
        out.append(b"P");
        for _ in 0..3 {
            out.push_shared(message.clone(), Encoding::Plain);
        }
        out.append(b"Q");
        assert_eq!(message.handles(), 4, "queued by reference");
        let mut parts = [&[][..]; 8];
        assert_eq!(out.parts(&mut parts), 5);
        let frame = message.frame(Encoding::Plain).unwrap();
        assert_eq!(parts[1].as_ptr(), frame.as_ptr(), "the shared bytes themselves");
        assert_eq!(all_parts(&out), [&b"P"[..], frame, frame, frame, b"Q"].concat());
        // Written partly, then the rest in one go.
        let _spent = out.advance(3);
        assert_eq!(out.len(), 2 + 3 * frame.len() - 3);
        let _spent = out.advance(out.len());
        assert!(out.is_empty());
        assert_eq!(message.handles(), 1, "released once written");
    }

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
        assert_eq!(all_parts(&out), expected);
        // Written in uneven steps, across the parts as a vectored write would.
        let mut sent = Vec::new();
        for step in [2, 3, 5, 1, 100] {
            let all = all_parts(&out);
            let n = step.min(all.len());
            sent.extend_from_slice(&all[..n]);
            let _spent = out.advance(n);
            assert_eq!(out.pending().is_empty(), all_parts(&out).is_empty());
            assert_eq!(out.len(), all_parts(&out).len());
        }
        assert_eq!(sent, expected);
        assert!(out.pending().is_empty() && out.is_empty() && out.queue.is_empty());
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
