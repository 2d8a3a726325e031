//! The embedded adapter's storage ([`Fixed`]): the caller's read and write buffers, borrowed,
//! and nothing else. A frame larger than the read buffer streams through it in pieces; what
//! the connection owes waits in the connection until the write buffer has room.

use super::{Driver, Store};
use crate::buffer::recv::RecvBuffer;
use crate::connection::{Connection, Event, MessageKind, Transmit, Written};
use crate::error::{Error, UsageError};
use crate::time::Instant;
use crate::wire::mask::apply_mask;

/// Two borrowed buffers: the input the connection has not consumed, and the output.
#[derive(Debug)]
pub(crate) struct Fixed<'b> {
    input: RecvBuffer<&'b mut [u8]>,
    output: Output<'b>,
    /// How many bytes of a streamed message's payload are still to come after the output:
    /// until they are in, what the connection owes waits (it would land inside the frame).
    hold: u64,
}

/// The write buffer: `buf[written..end]` is still to write.
#[derive(Debug)]
pub(crate) struct Output<'b> {
    buf: &'b mut [u8],
    written: usize,
    end: usize,
}

impl Output<'_> {
    /// Moves the bytes still to write to the front, so the room after them is as large as
    /// it can be.
    fn compact(&mut self) {
        if self.written > 0 {
            self.buf.copy_within(self.written..self.end, 0);
            self.end -= self.written;
            self.written = 0;
        }
    }

    /// The room after the bytes to write (compacted first).
    pub(crate) fn room(&mut self) -> &mut [u8] {
        self.compact();
        &mut self.buf[self.end..]
    }

    /// How many bytes the buffer holds at most.
    pub(crate) fn capacity(&self) -> usize {
        self.buf.len()
    }

    /// Whether nothing is left to write.
    pub(crate) fn is_empty(&self) -> bool {
        self.written == self.end
    }

    /// Runs `command` on the room; what it wrote is queued. A command that needs more room
    /// than there is fails with [`UsageError::BufferTooSmall`] and writes nothing.
    pub(crate) fn command(
        &mut self,
        command: impl FnOnce(&mut [u8]) -> Result<Written, UsageError>,
    ) -> Result<(), UsageError> {
        let written = command(self.room())?;
        self.end += written.len();
        Ok(())
    }
}

impl<'b> Fixed<'b> {
    /// The two buffers, empty.
    pub(crate) fn new(read: &'b mut [u8], write: &'b mut [u8]) -> Self {
        Self::with_output(read, write, 0)
    }

    /// The two buffers, with the first `written` bytes of `write` to be written (a client's
    /// request).
    pub(crate) fn with_output(read: &'b mut [u8], write: &'b mut [u8], written: usize) -> Self {
        let end = written.min(write.len());
        Self {
            input: RecvBuffer::new(read),
            output: Output { buf: write, written: 0, end },
            hold: 0,
        }
    }
}

impl<'b> Store for Fixed<'b> {
    /// A client keeps the status of the server's answer (what else it wants, it reads from
    /// the borrowed response while the handshake runs).
    type Response = u16;
    type Parts = Output<'b>;

    fn has_buffered(&self) -> bool {
        !self.input.is_empty()
    }

    fn next_event<R>(
        &mut self,
        conn: &mut Connection,
        now: Instant,
        handle: impl FnOnce(Event<'_>, &mut Connection, &mut Output<'b>) -> R,
    ) -> Result<Option<R>, Error> {
        Ok(self.input.next_event(conn, now)?.map(|event| handle(event, conn, &mut self.output)))
    }

    fn input_space(&mut self) -> &mut [u8] {
        self.input.spare()
    }

    fn filled(&mut self, n: usize) {
        self.input.filled(n);
    }

    fn output_is_empty(&self) -> bool {
        self.output.is_empty()
    }

    fn output(&self) -> &[u8] {
        &self.output.buf[self.output.written..self.output.end]
    }

    fn wrote(&mut self, n: usize, conn: &mut Connection) {
        self.output.written = (self.output.written + n).min(self.output.end);
        if self.output.is_empty() {
            self.output.written = 0;
            self.output.end = 0;
        }
        // What did not fit before (a close reply behind a full buffer) goes in now.
        self.drain_transmit(conn);
    }

    fn drain_transmit(&mut self, conn: &mut Connection) {
        if self.hold > 0 {
            return;
        }
        loop {
            let room = self.output.room();
            if room.is_empty() {
                // The connection keeps what it owes until the buffer has room.
                return;
            }
            match conn.poll_transmit(room) {
                Some(Transmit::Bytes(n)) if n > 0 => self.output.end += n,
                // The adapter closes the transport once the output is written and the state
                // says closed.
                Some(Transmit::CloseTransport) => {}
                Some(Transmit::Bytes(_)) | None => return,
            }
        }
    }

    fn discard_output(&mut self) {
        self.output.written = 0;
        self.output.end = 0;
        self.hold = 0;
    }
}

impl<'b> Driver<Fixed<'b>> {
    /// Runs `command` on the connection with the write buffer's room; what it wrote is
    /// queued.
    pub(crate) fn command(
        &mut self,
        command: impl FnOnce(&mut Connection, &mut [u8]) -> Result<Written, UsageError>,
    ) -> Result<(), UsageError> {
        let conn = &mut self.conn;
        self.store.output.command(|out| command(conn, out))
    }

    /// How many bytes the write buffer holds at most.
    pub(crate) fn output_capacity(&self) -> usize {
        self.store.output.capacity()
    }

    /// How many bytes there is room for now, after what is still to write.
    pub(crate) fn output_room(&mut self) -> usize {
        self.store.output.room().len()
    }

    /// Queues the header of a whole message of `payload_len` bytes whose payload follows
    /// through [`push_payload`](Self::push_payload); returns a client's masking key.
    pub(crate) fn streamed_header(
        &mut self,
        kind: MessageKind,
        payload_len: usize,
    ) -> Result<Option<[u8; 4]>, UsageError> {
        let conn = &mut self.conn;
        let mut key = None;
        self.store.output.command(|out| {
            let (written, mask) = conn.send_streamed_header(kind, payload_len as u64, out)?;
            key = mask;
            Ok(written)
        })?;
        self.store.hold = payload_len as u64;
        Ok(key)
    }

    /// Queues as much of `piece` as there is room for, masked with `key` (`offset` is where
    /// `piece` starts in the payload); returns how many bytes it took. Once the whole
    /// payload is in, what the connection owes may follow.
    pub(crate) fn push_payload(
        &mut self,
        piece: &[u8],
        key: Option<[u8; 4]>,
        offset: usize,
    ) -> usize {
        let room = self.store.output.room();
        let n =
            room.len().min(piece.len()).min(usize::try_from(self.store.hold).unwrap_or(usize::MAX));
        room[..n].copy_from_slice(&piece[..n]);
        if let Some(key) = key {
            apply_mask(&mut room[..n], key, offset);
        }
        self.store.output.end += n;
        self.store.hold -= n as u64;
        if self.store.hold == 0 {
            self.store.drain_transmit(&mut self.conn);
        }
        n
    }
}
