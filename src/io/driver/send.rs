//! The driver's send side: owned messages encoded into the output buffer, a server's large
//! payload kept as it is for a vectored write.

use super::{Driver, Heap};
use crate::buffer::output::ZERO_COPY_MIN;
use crate::buffer::shared::{shared_need, SharedMessage, SharedSend};
use crate::connection::{Connection, MessageKind, Role, Written};
use crate::error::UsageError;
use crate::io::owned::Outgoing;
use crate::time::Instant;
use crate::wire::close::CloseCode;

impl Driver<Heap> {
    /// Queues `message`.
    pub(crate) fn send(&mut self, message: &Outgoing, now: Instant) -> Result<(), UsageError> {
        match message {
            Outgoing::Text(text) => self.send_text(text),
            Outgoing::Binary(data) => self.send_binary(data),
            Outgoing::Fragment { kind, payload, is_last } => {
                self.send_fragment(*kind, payload, *is_last)
            }
            Outgoing::Ping(payload) => {
                self.command(payload.len(), |c, out| c.send_ping(payload, out))
            }
            Outgoing::Pong(payload) => {
                self.command(payload.len(), |c, out| c.send_pong(payload, out))
            }
            Outgoing::Close(code, reason) => self.close(*code, reason, now),
            Outgoing::Shared(message) => self.send_shared(message.clone()),
        }
    }

    /// Queues a message shared with other connections: a reference to its frame, not a
    /// copy (unless this connection compresses it for itself).
    pub(crate) fn send_shared(&mut self, message: SharedMessage) -> Result<(), UsageError> {
        let conn = &mut self.conn;
        let output = &mut self.store.core.output;
        if conn.shares_encoding_of(message.payload().len()) {
            // The usual case: little or nothing is owed ahead of the frame, so the command
            // writes into a scratch buffer on the stack, and the output buffer (given up
            // while idle) is not allocated for a frame it does not hold.
            let mut scratch = [0; 512];
            match conn.send_shared(&message, &mut scratch) {
                Ok(SharedSend::Frame { written, encoding }) => {
                    output.append(&scratch[..written.len()]);
                    output.push_shared(message, encoding);
                    return Ok(());
                }
                Ok(SharedSend::Encoded(written)) => {
                    output.append(&scratch[..written.len()]);
                    return Ok(());
                }
                Err(UsageError::BufferTooSmall { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        let need = shared_need(conn, &message);
        let sent = output.command_with(
            need,
            |out| conn.send_shared(&message, out),
            SharedSend::written,
        )?;
        if let SharedSend::Frame { encoding, .. } = sent {
            output.push_shared(message, encoding);
        }
        Ok(())
    }

    /// Queues `message`, which the caller gives up: with `vectored` (the adapter writes
    /// [`output_parts`](Self::output_parts) with vectored writes), a server keeps a large
    /// message's payload as it is and writes it after the header, without copying it.
    pub(crate) fn send_owned(
        &mut self,
        message: Outgoing,
        now: Instant,
        vectored: bool,
    ) -> Result<(), UsageError> {
        let zero_copy = |payload: &[u8]| {
            vectored
                && payload.len() >= ZERO_COPY_MIN
                && self.conn.role() == Role::Server
                && !self.compresses(payload.len())
        };
        if let Outgoing::Shared(message) = message {
            // Taken as it is: one reference count change per recipient, not three.
            return self.send_shared(message);
        }
        let (kind, payload) = match message {
            Outgoing::Binary(data) if zero_copy(&data) => (MessageKind::Binary, data),
            Outgoing::Text(text) if zero_copy(text.as_bytes()) => {
                (MessageKind::Text, text.into_bytes())
            }
            message => {
                let result = self.send(&message, now);
                // Copied: the payload's allocation can take the next message received.
                match message {
                    Outgoing::Text(text) => self.store.core.reassembler.recycle(text.into_bytes()),
                    Outgoing::Binary(data) => self.store.core.reassembler.recycle(data),
                    _ => {}
                }
                return result;
            }
        };
        let conn = &mut self.conn;
        let header = conn.encoded_len(payload.len()) - payload.len();
        let output = &mut self.store.core.output;
        output.command(header, |out| conn.send_header(kind, payload.len() as u64, out))?;
        output.push_tail(payload);
        Ok(())
    }

    /// Queues a text message.
    pub(crate) fn send_text(&mut self, text: &str) -> Result<(), UsageError> {
        if self.conn.role() == Role::Server && !self.compresses(text.len()) {
            return self.send_unmasked(MessageKind::Text, text.as_bytes());
        }
        self.command(text.len(), |c, out| c.send_text(text, out))
    }

    /// Queues a binary message.
    pub(crate) fn send_binary(&mut self, data: &[u8]) -> Result<(), UsageError> {
        if self.conn.role() == Role::Server && !self.compresses(data.len()) {
            return self.send_unmasked(MessageKind::Binary, data);
        }
        self.command(data.len(), |c, out| c.send_binary(data, out))
    }

    /// Server: queues a whole message as its header, then its payload appended as it is (a
    /// server does not mask), so the payload is copied once and no space is zeroed for it.
    fn send_unmasked(&mut self, kind: MessageKind, payload: &[u8]) -> Result<(), UsageError> {
        let conn = &mut self.conn;
        let header = conn.encoded_len(payload.len()) - payload.len();
        let output = &mut self.store.core.output;
        let want = output.end + header + payload.len();
        output.buf.reserve(want.saturating_sub(output.buf.len()));
        output.command(header, |out| conn.send_header(kind, payload.len() as u64, out))?;
        output.append(payload);
        Ok(())
    }

    /// Queues one frame of a fragmented message.
    pub(crate) fn send_fragment(
        &mut self,
        kind: MessageKind,
        payload: &[u8],
        is_last: bool,
    ) -> Result<(), UsageError> {
        self.command(payload.len(), |c, out| c.send_fragment(kind, payload, is_last, out))
    }

    /// Queues a close frame.
    pub(crate) fn close(
        &mut self,
        code: CloseCode,
        reason: &str,
        now: Instant,
    ) -> Result<(), UsageError> {
        self.command(reason.len() + 2, |c, out| c.close(code, reason, out, now))
    }

    /// Whether a message of `len` bytes goes compressed (then it is encoded by the
    /// connection, not written as a header and the payload as it is).
    fn compresses(&self, len: usize) -> bool {
        #[cfg(feature = "deflate")]
        return self.conn.compresses(len);
        #[cfg(not(feature = "deflate"))]
        {
            let _ = len;
            false
        }
    }

    /// Runs a command on the connection with room for a frame of `payload_len` bytes.
    fn command(
        &mut self,
        payload_len: usize,
        mut command: impl FnMut(&mut Connection, &mut [u8]) -> Result<Written, UsageError>,
    ) -> Result<(), UsageError> {
        let conn = &mut self.conn;
        let need = conn.encoded_len(payload_len);
        self.store.core.output.command(need, |out| command(conn, out))
    }
}
