//! [`RecvBuffer`]: the caller's input buffer over storage of any kind, with no allocator.

use crate::connection::{Connection, Event};
use crate::error::Error;
use crate::time::Instant;

/// Bytes read from the transport and not yet consumed by a [`Connection`], kept as
/// [`Connection::receive`] requires, over any storage: a fixed array (`[u8; N]`), a borrowed
/// slice (`&mut [u8]`) or a `Vec<u8>`. It needs no allocator.
///
/// The loop is: read into [`spare`](Self::spare), say how much with
/// [`filled`](Self::filled), then take events with [`next_event`](Self::next_event) until it
/// returns `None`, which means the connection needs more bytes.
///
/// ```
/// use wsmachine::{Config, Connection, Event, Instant, Message, RecvBuffer};
///
/// let mut conn = Connection::open_server(Config::new().receive_buffer_size(1024), Instant::ZERO);
/// let mut input = RecvBuffer::new([0u8; 1024]);
/// // A masked text frame "Hello" (RFC 6455 §5.7), arriving in two reads.
/// let wire = [0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58];
/// for part in [&wire[..4], &wire[4..]] {
///     let n = part.len();
///     input.spare()[..n].copy_from_slice(part);
///     input.filled(n);
///     if let Some(Event::Message(Message::Text(text))) =
///         input.next_event(&mut conn, Instant::ZERO)?
///     {
///         assert_eq!(text, "Hello");
///     }
/// }
/// # Ok::<(), wsmachine::Error>(())
/// ```
///
/// The storage must hold at least
/// [`Config::receive_buffer_size`](crate::Config::receive_buffer_size) bytes: a frame that
/// fits that size is handed out only once it is wholly in the buffer.
/// [`for_config`](Self::for_config) allocates exactly that.
#[derive(Clone, Debug)]
pub struct RecvBuffer<S> {
    pub(super) storage: S,
    /// `storage[start..end]` holds the unconsumed bytes.
    pub(super) start: usize,
    pub(super) end: usize,
    /// How many more bytes the connection said it needs, after its last look at the input.
    pub(super) needed: usize,
    /// Room to inflate compressed messages into (feature `deflate`).
    #[cfg(feature = "deflate")]
    pub(super) inflate: Option<S>,
}

impl<S: AsRef<[u8]> + AsMut<[u8]>> RecvBuffer<S> {
    /// An empty buffer over `storage`; its whole length is room to read into.
    pub fn new(storage: S) -> Self {
        Self {
            storage,
            start: 0,
            end: 0,
            needed: 0,
            #[cfg(feature = "deflate")]
            inflate: None,
        }
    }

    /// Gives the buffer `space` to inflate compressed messages into (permessage-deflate,
    /// feature `deflate`): events of a compressed message borrow it, as they borrow the
    /// input otherwise. See [`Connection::receive_with`]; a `space` of
    /// [`Config::receive_buffer_size`](crate::Config::receive_buffer_size) bytes makes a
    /// compressed message come out whole when an uncompressed one of its size would.
    #[cfg(feature = "deflate")]
    pub fn with_inflate_space(mut self, space: S) -> Self {
        self.inflate = Some(space);
        self
    }

    /// The storage's length: the most bytes the buffer can hold.
    pub fn capacity(&self) -> usize {
        self.storage.as_ref().len()
    }

    /// How many bytes are buffered and not yet consumed.
    pub fn len(&self) -> usize {
        self.end - self.start
    }

    /// Whether no byte is buffered.
    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }

    /// The bytes buffered and not yet consumed (payload the connection already looked at
    /// may be unmasked in place).
    pub fn unconsumed(&self) -> &[u8] {
        &self.storage.as_ref()[self.start..self.end]
    }

    /// The unconsumed bytes, for a caller that drives [`Connection::receive`] itself: pass
    /// them, then [`consume`](Self::consume) what it says.
    pub fn unconsumed_mut(&mut self) -> &mut [u8] {
        &mut self.storage.as_mut()[self.start..self.end]
    }

    /// Drops `consumed` bytes from the front (at most all of them) and records `needed`, as
    /// [`Connection::receive`] returned them (in [`Received`](crate::Received)), so that
    /// [`spare`](Self::spare) makes the room the connection needs.
    pub fn consume(&mut self, consumed: usize, needed: usize) {
        self.start += consumed.min(self.len());
        self.needed = needed;
    }

    /// Free room after the buffered bytes, to read into; then call
    /// [`filled`](Self::filled). The buffered bytes are moved to the front of the storage
    /// first when the room after them is shorter than what the connection said it needs (a
    /// frame that fits the receive buffer must end up whole in it), or when the buffer is
    /// full: so the room is never empty while the storage has space.
    pub fn spare(&mut self) -> &mut [u8] {
        let capacity = self.capacity();
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        } else if capacity - self.end < self.needed.max(1) {
            self.compact();
        }
        &mut self.storage.as_mut()[self.end..]
    }

    /// Moves the buffered bytes to the front of the storage.
    pub(super) fn compact(&mut self) {
        if self.start > 0 {
            self.storage.as_mut().copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
    }

    /// `n` bytes were read into [`spare`](Self::spare). More than the room is taken as the
    /// room.
    pub fn filled(&mut self, n: usize) {
        self.end = self.end.saturating_add(n).min(self.capacity());
    }

    /// Copies as much of `bytes` as fits into [`spare`](Self::spare) and returns how many
    /// were taken: for input that is already in memory.
    pub fn push(&mut self, bytes: &[u8]) -> usize {
        let spare = self.spare();
        let n = bytes.len().min(spare.len());
        spare[..n].copy_from_slice(&bytes[..n]);
        self.filled(n);
        n
    }

    /// Hands the buffered bytes to `conn` ([`Connection::receive`]) and drops what it
    /// consumed: the next event, borrowing this buffer, or `None` when the connection needs
    /// more bytes (read into [`spare`](Self::spare), then call again). Call it until it
    /// returns `None` after every read.
    ///
    /// An error is the peer's failure, as from [`Connection::receive`]; the reply it asks for
    /// is owed to [`poll_transmit`](Connection::poll_transmit).
    pub fn next_event<'b>(
        &'b mut self,
        conn: &mut Connection,
        now: Instant,
    ) -> Result<Option<Event<'b>>, Error> {
        let (start, end) = (self.start, self.end);
        let input = &mut self.storage.as_mut()[start..end];
        #[cfg(feature = "deflate")]
        let received = match self.inflate.as_mut() {
            Some(space) => conn.receive_with(input, space.as_mut(), now)?,
            None => conn.receive(input, now)?,
        };
        #[cfg(not(feature = "deflate"))]
        let received = conn.receive(input, now)?;
        // With no event, everything the connection consumed was used up (a frame's header,
        // or input discarded after a close) and it needs more bytes; see `Received::needed`.
        self.start += received.consumed;
        self.needed = received.needed;
        Ok(received.event)
    }

    /// The storage back, with whatever it holds.
    pub fn into_inner(self) -> S {
        self.storage
    }
}

#[cfg(feature = "alloc")]
impl RecvBuffer<alloc::vec::Vec<u8>> {
    /// An empty buffer of exactly `config`'s
    /// [`receive_buffer_size`](crate::Config::receive_buffer_size), with inflate space of the
    /// same size when `config` may negotiate permessage-deflate.
    pub fn for_config(config: &crate::connection::config::Config) -> Self {
        let buffer = Self::new(alloc::vec![0; config.receive_buffer_size]);
        #[cfg(feature = "deflate")]
        if config.deflate.mode != crate::handshake::DeflateMode::Off {
            return buffer.with_inflate_space(alloc::vec![0; config.receive_buffer_size]);
        }
        buffer
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connection::config::Config;
    use crate::connection::Message;
    use alloc::vec::Vec;

    /// Masked client frames carrying `messages`.
    fn frames(messages: &[&[u8]]) -> Vec<u8> {
        let mut client = Connection::open_client(Config::new(), [9; 32], Instant::ZERO);
        let mut wire = Vec::new();
        let mut out = [0; 512];
        for message in messages {
            let n = client.send_binary(message, &mut out).unwrap();
            wire.extend_from_slice(n.bytes(&out));
        }
        wire
    }

    #[test]
    fn a_small_fixed_buffer_carries_frames_of_its_size_in_any_cut() {
        let payloads: [&[u8]; 3] = [&[1; 200], &[2; 3], &[3; 248]];
        let wire = frames(&payloads);
        for step in [1, 7, 100, 300] {
            let config = Config::new().receive_buffer_size(256);
            let mut conn = Connection::open_server(config, Instant::ZERO);
            let mut input = RecvBuffer::new([0u8; 256]);
            let mut got: Vec<Vec<u8>> = Vec::new();
            let mut rest = &wire[..];
            while !rest.is_empty() {
                let n = input.push(&rest[..step.min(rest.len())]);
                assert!(n > 0, "room must not run out");
                rest = &rest[n..];
                while let Some(event) = input.next_event(&mut conn, Instant::ZERO).unwrap() {
                    match event {
                        Event::Message(Message::Binary(b)) => got.push(b.to_vec()),
                        other => panic!("unexpected {other:?}"),
                    }
                }
            }
            assert_eq!(got, payloads, "step {step}");
            assert!(input.is_empty());
        }
    }

    #[test]
    fn room_is_made_only_when_needed() {
        let mut input = RecvBuffer::new([0u8; 16]);
        assert_eq!(input.push(b"0123456789"), 10);
        input.start = 8;
        input.needed = 2;
        // Six bytes of room after the end, two needed: nothing moves.
        assert_eq!(input.spare().len(), 6);
        assert_eq!(input.unconsumed(), b"89");
        input.needed = 7;
        assert_eq!(input.spare().len(), 14);
        assert_eq!(input.unconsumed(), b"89");
        assert_eq!((input.start, input.end), (0, 2));
    }
}
