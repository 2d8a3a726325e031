//! The `alloc` convenience layer: whole owned messages from the machine's events.

use alloc::string::String;
use alloc::vec::Vec;

use crate::connection::{Event, Message, MessageKind};
use crate::wire::utf8;

/// A whole message, owned.
#[derive(Clone, Debug, Eq, Hash, PartialEq)]
pub enum OwnedMessage {
    /// A text message.
    Text(String),
    /// A binary message.
    Binary(Vec<u8>),
}

impl OwnedMessage {
    /// The message's payload bytes.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Self::Text(text) => text.as_bytes(),
            Self::Binary(data) => data,
        }
    }

    /// The message's kind.
    pub fn kind(&self) -> MessageKind {
        match self {
            Self::Text(_) => MessageKind::Text,
            Self::Binary(_) => MessageKind::Binary,
        }
    }
}

impl From<Message<'_>> for OwnedMessage {
    fn from(message: Message<'_>) -> Self {
        match message {
            Message::Text(text) => Self::Text(text.into()),
            Message::Binary(data) => Self::Binary(data.into()),
        }
    }
}

/// Collects [`Event::Message`] and [`Event::Fragment`] events into whole
/// [`OwnedMessage`]s.
///
/// The [`Connection`](crate::Connection) has already enforced the message size limit from each
/// frame's header, and validated text, so the buffer never grows past
/// [`Config::max_message_size`](crate::Config::max_message_size). A text message is copied out
/// of the buffer, which is kept for the next message; a binary message takes it.
#[derive(Clone, Debug, Default)]
pub struct Reassembler {
    kind: Option<MessageKind>,
    buffer: Vec<u8>,
}

impl Reassembler {
    /// An empty reassembler.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds one event; returns a message when `event` completes one. Events other than
    /// messages and fragments are ignored.
    pub fn push(&mut self, event: &Event<'_>) -> Option<OwnedMessage> {
        match event {
            Event::Message(message) => Some(self.whole(message)),
            Event::Fragment(fragment) => {
                if fragment.is_first {
                    self.buffer.clear();
                    self.kind = Some(fragment.kind);
                }
                self.buffer.extend_from_slice(fragment.payload);
                fragment.is_last.then(|| self.finish(fragment.kind))
            }
            _ => None,
        }
    }

    /// A whole message, owned: in the kept buffer's allocation when it is large enough
    /// (one recycled from a message sent), so an echo allocates nothing per message.
    fn whole(&mut self, message: &Message<'_>) -> OwnedMessage {
        let bytes = match message {
            Message::Text(text) => text.as_bytes(),
            Message::Binary(data) => data,
        };
        // A buffer much larger than the message is not handed out with it: the message
        // would hold memory it does not use.
        let fits = (bytes.len()..=bytes.len().saturating_mul(4).max(256))
            .contains(&self.buffer.capacity());
        if self.kind.is_some() || !fits {
            return (*message).into();
        }
        let mut buffer = core::mem::take(&mut self.buffer);
        buffer.clear();
        match message {
            Message::Binary(data) => {
                buffer.extend_from_slice(data);
                OwnedMessage::Binary(buffer)
            }
            Message::Text(text) => {
                // An empty buffer is valid UTF-8 at no cost; then the text, already valid.
                let mut owned = String::from_utf8(buffer).unwrap_or_default();
                owned.push_str(text);
                OwnedMessage::Text(owned)
            }
        }
    }

    /// Whether a message is in progress (its first fragment was pushed, its last not yet).
    pub(crate) fn in_progress(&self) -> bool {
        self.kind.is_some()
    }

    /// The buffer of the message in progress, for reading a fragment's bytes straight into
    /// it; then [`adopt`](Self::adopt) them.
    pub(crate) fn buffer_mut(&mut self) -> &mut Vec<u8> {
        &mut self.buffer
    }

    /// The bytes of a fragment of the message in progress are already at the end of the
    /// buffer (read there, and unmasked and validated in place); `is_last` when it ends the
    /// message.
    pub(crate) fn adopt(&mut self, is_last: bool) -> Option<OwnedMessage> {
        let kind = self.kind?;
        is_last.then(|| self.finish(kind))
    }

    /// The finished message.
    fn finish(&mut self, fallback: MessageKind) -> OwnedMessage {
        match self.kind.take().unwrap_or(fallback) {
            // The finished message owns the bytes: no copy.
            MessageKind::Binary => OwnedMessage::Binary(core::mem::take(&mut self.buffer)),
            // A `String` from bytes needs a validation in safe Rust; the crate's own
            // validator (SIMD with the `simdutf8` feature) is many times faster than
            // `String::from_utf8`, and copying out keeps the buffer for the next message.
            // The connection validated every piece, so the fallback is never taken; it
            // keeps this free of panics.
            MessageKind::Text => {
                let text = match utf8::validate(&self.buffer) {
                    Some(text) => text.into(),
                    None => String::from_utf8_lossy(&self.buffer).into(),
                };
                self.buffer.clear();
                OwnedMessage::Text(text)
            }
        }
    }

    /// Makes room for `additional` more bytes of the message: call it before
    /// [`push`](Self::push)ing a fragment with the fragment's length plus
    /// [`Connection::frame_remaining`](crate::Connection::frame_remaining), so a message
    /// that arrives in pieces is copied once, not again at each growth of the buffer.
    pub fn reserve(&mut self, additional: usize) {
        self.buffer.reserve(additional);
    }

    /// Takes `buffer`'s allocation for the next message when none is held (a sent message's
    /// payload, say, so that an echo allocates nothing per message).
    pub(crate) fn recycle(&mut self, mut buffer: Vec<u8>) {
        if self.kind.is_none() && self.buffer.capacity() == 0 {
            buffer.clear();
            self.buffer = buffer;
        }
    }

    /// Whether the buffer holds no allocation.
    pub(crate) fn is_unallocated(&self) -> bool {
        self.buffer.capacity() == 0
    }

    /// Gives up the buffer's allocation when no message is in progress.
    pub(crate) fn release(&mut self) -> Option<Vec<u8>> {
        if self.kind.is_some() || self.buffer.capacity() == 0 {
            return None;
        }
        Some(core::mem::take(&mut self.buffer))
    }

    /// The number of bytes of the message in progress.
    pub fn pending_len(&self) -> usize {
        self.buffer.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connection::Fragment;

    #[test]
    fn a_recycled_buffer_takes_the_next_whole_message_if_it_fits_it() {
        let mut r = Reassembler::new();
        let sent = alloc::vec![0u8; 16];
        let at = sent.as_ptr();
        r.recycle(sent);
        match r.push(&Event::Message(Message::Text("sixteen bytes!!!"))) {
            Some(OwnedMessage::Text(text)) => {
                assert_eq!(text, "sixteen bytes!!!");
                assert_eq!(text.as_ptr(), at, "the recycled allocation, no new one");
            }
            other => panic!("{other:?}"),
        }
        // Nothing kept now: the next message gets its own allocation.
        assert_eq!(r.release(), None);
        // A buffer far larger than the message is not handed out with it.
        r.recycle(alloc::vec![0u8; 1 << 20]);
        let message = r.push(&Event::Message(Message::Binary(b"small"))).unwrap();
        assert_eq!(message, OwnedMessage::Binary(b"small".to_vec()));
        assert!(r.release().is_some_and(|buf| buf.capacity() >= 1 << 20), "kept, not given out");
    }

    #[test]
    fn whole_and_fragmented_messages() {
        let mut r = Reassembler::new();
        assert_eq!(
            r.push(&Event::Message(Message::Text("hi"))),
            Some(OwnedMessage::Text("hi".into()))
        );
        let piece = |payload, is_first, is_last| {
            Event::Fragment(Fragment { kind: MessageKind::Text, payload, is_first, is_last })
        };
        assert_eq!(r.push(&piece(b"Hel", true, false)), None);
        assert_eq!(r.pending_len(), 3);
        assert_eq!(r.push(&piece(b"lo", false, true)), Some(OwnedMessage::Text("Hello".into())));
        assert_eq!(r.pending_len(), 0);
        assert_eq!(r.push(&Event::Ping(b"x")), None);
    }
}
