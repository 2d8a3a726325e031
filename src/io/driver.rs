//! The I/O-independent half of every adapter: buffers around a [`Connection`], and owned
//! results.
//!
//! An adapter (blocking std, tokio, or your own) only moves bytes between a transport and a
//! [`Driver`], sleeps until [`Driver::poll_timeout`], and maps errors. The driver keeps the read
//! buffer as [`Connection::receive`] requires (unconsumed bytes re-presented at the front, room
//! for a whole frame that fits
//! [`Config::receive_buffer_size`](crate::Config::receive_buffer_size); it starts at 4 KiB and
//! grows as frames need), gathers what the connection writes into one output buffer, reassembles whole messages, and
//! answers the opening handshake. This module is `alloc`-only, so a `no_std` adapter can use the
//! owned types too.

use alloc::boxed::Box;
use alloc::vec::Vec;

use crate::buffer::input::InputBuffer;
use crate::buffer::output::{OutputBuffer, ZERO_COPY_MIN};
use crate::buffer::reassemble::Reassembler;
use crate::connection::{Connection, Event, MessageKind, Role, State, Transmit, Written};
use crate::error::{Error, UsageError};
use crate::handshake::{Accept, Reject, Request};
use crate::io::error::{handshake_outcome, AdapterError};
use crate::io::owned::{Decision, HttpResponse, Incoming, Outgoing};
use crate::time::Instant;
use crate::wire::close::CloseCode;

/// How an opening handshake ended.
#[derive(Debug)]
pub(crate) enum Handshake {
    /// The connection is open; a client gets the server's `101`.
    Open(Option<HttpResponse>),
    /// Client: the server answered with another status.
    Refused(HttpResponse),
    /// Server: the application rejected the request with this status.
    Rejected(u16),
    /// The peer failed (an invalid request or response, a deadline, the stream's end).
    Failed(Error),
    /// Server: the application's decision could not be written (an invalid header).
    Usage(UsageError),
    /// The connection ended without an answer.
    Closed,
}

/// Buffer allocations an idle connection gave up, to serve the next one that needs them.
#[derive(Debug, Default)]
pub(crate) struct Buffers {
    /// A read buffer's.
    pub(crate) input: Option<Vec<u8>>,
    /// An output buffer's.
    pub(crate) output: Option<Vec<u8>>,
    /// A reassembled message's (at most [`MESSAGE_KEEP`] bytes of capacity).
    pub(crate) message: Option<Vec<u8>>,
}

/// The largest message buffer kept for reuse when a connection goes idle: larger ones are
/// freed, so that what a thread keeps aside stays small.
const MESSAGE_KEEP: usize = 256 * 1024;

/// What the driver asks its adapter to do next: the only I/O there is.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub(crate) enum Want {
    /// Write [`Driver::output`] (or [`Driver::output_parts`]), report it with
    /// [`Driver::wrote`], then step again. A write that waits past the next deadline is
    /// reported with [`Driver::write_stalled`].
    Write,
    /// Read into [`Driver::input_space`] (or with [`Driver::read_with`]), waiting no longer
    /// than `deadline`; report it with [`Driver::filled`] or [`Driver::read_eof`] (nothing
    /// when the wait timed out), then step again: the step runs the deadline.
    Read {
        /// When the next timer is due, if one is armed.
        deadline: Option<Instant>,
    },
    /// Shut the transport down, report it with [`Driver::shut_down`], then step again.
    Shutdown,
}

/// One step of a driver loop: a result, or I/O to do first.
#[derive(Debug)]
pub(crate) enum Step<T> {
    /// The loop is done.
    Ready(T),
    /// Do this, then step again.
    Io(Want),
}

/// A [`Connection`] with its buffers: everything an adapter does that is not I/O.
#[derive(Debug)]
pub(crate) struct Driver {
    conn: Connection,
    input: InputBuffer,
    core: Parts,
    /// After a read straight into the message being reassembled
    /// ([`direct_read`](Self::direct_read)): the length of its buffer before the read; the
    /// bytes after it are input the connection has not seen yet.
    direct: Option<usize>,
    /// How the opening handshake ended, or later a failure of the peer's (as
    /// [`Handshake::Failed`]), kept until the reply it queued is written. Boxed, as it is
    /// rare: an idle connection is smaller without it inline.
    ended: Option<Box<Handshake>>,
    /// Whether the adapter shut the transport down.
    shut_down: bool,
}

/// The parts an event handler may touch while the event borrows the input.
#[derive(Debug)]
struct Parts {
    output: OutputBuffer,
    reassembler: Reassembler,
}

impl Driver {
    /// Wraps `conn`, and gathers what it owes already (a client's request).
    pub(crate) fn new(conn: Connection) -> Self {
        let capacity = conn.config().receive_buffer_size;
        let mut driver = Self {
            conn,
            input: InputBuffer::new(capacity),
            core: Parts { output: OutputBuffer::default(), reassembler: Reassembler::new() },
            direct: None,
            ended: None,
            shut_down: false,
        };
        driver.drain_transmit();
        driver
    }

    /// The opening handshake's next step; `decide` answers a server's request. Ready once
    /// the connection is open (with the server's `101` for a client), or once a failure or
    /// refusal has had its reply written and the transport shut.
    pub(crate) fn handshake_step<E>(
        &mut self,
        now: Instant,
        decide: &mut dyn FnMut(&Request<'_>) -> Decision,
    ) -> Step<Result<Option<HttpResponse>, AdapterError<E>>> {
        self.run_deadlines(now);
        loop {
            if !self.output().is_empty() {
                return Step::Io(Want::Write);
            }
            if let Some(ended) = self.ended.take() {
                if !matches!(*ended, Handshake::Open(_)) && !self.shut_down {
                    self.ended = Some(ended);
                    return Step::Io(Want::Shutdown);
                }
                return Step::Ready(handshake_outcome(*ended));
            }
            let ended = match self.handshake(now, decide) {
                Ok(Some(Ok(ended))) => ended,
                Ok(Some(Err(e))) => Handshake::Usage(e),
                Ok(None) if self.is_closed() => Handshake::Closed,
                Ok(None) => return Step::Io(Want::Read { deadline: self.poll_timeout() }),
                Err(e) => Handshake::Failed(e),
            };
            self.ended = Some(Box::new(ended));
        }
    }

    /// The receive loop's next step: `next` takes the next item from the buffered input
    /// ([`next_incoming`](Self::next_incoming) or [`next_raw`](Self::next_raw)). Ready with
    /// an item, with a failure of the peer's (once, after the reply it queued is written),
    /// or with `None` once the connection is over and the transport shut.
    pub(crate) fn receive_step<T, E>(
        &mut self,
        now: Instant,
        next: impl FnOnce(&mut Self, Instant) -> Result<Option<T>, Error>,
    ) -> Step<Result<Option<T>, AdapterError<E>>> {
        if let Some(step) = self.settle(now) {
            return step.map_ready(|r| r.map(|()| None));
        }
        if self.is_closed() {
            let _freed = self.release_buffers();
            return Step::Ready(Ok(None));
        }
        match next(self, now) {
            Ok(Some(item)) => Step::Ready(Ok(Some(item))),
            // A pong or a close reply the input called for goes out before waiting.
            Ok(None) if !self.output().is_empty() => Step::Io(Want::Write),
            Ok(None) => Step::Io(Want::Read { deadline: self.poll_timeout() }),
            Err(e) => {
                self.fail_later(e);
                match self.settle(now) {
                    Some(step) => step.map_ready(|r| r.map(|()| None)),
                    None => Step::Ready(Ok(None)),
                }
            }
        }
    }

    /// The send side's next step: Ready once everything queued is written (and the
    /// transport shut, if the connection is over), or with a failure of the peer's.
    pub(crate) fn flush_step<E>(&mut self, now: Instant) -> Step<Result<(), AdapterError<E>>> {
        self.settle(now).unwrap_or(Step::Ready(Ok(())))
    }

    /// What every loop does first: run due deadlines, write what is queued, shut the
    /// transport once the connection is over, report a failure. `None` when none of that
    /// is left.
    fn settle<E>(&mut self, now: Instant) -> Option<Step<Result<(), AdapterError<E>>>> {
        self.run_deadlines(now);
        if !self.output().is_empty() {
            return Some(Step::Io(Want::Write));
        }
        if self.is_closed() && !self.shut_down {
            return Some(Step::Io(Want::Shutdown));
        }
        let ended = self.ended.take()?;
        Some(Step::Ready(handshake_outcome(*ended).map(|_open| ())))
    }

    /// Runs the deadlines due at `now`; a failure is kept for the next step to report.
    pub(crate) fn run_deadlines(&mut self, now: Instant) {
        if self.conn.poll_timeout().is_some_and(|at| at <= now) {
            self.deadline_passed(now);
        }
    }

    /// A write waited until a deadline and could not finish: the deadline runs (see
    /// [`run_deadlines`](Self::run_deadlines)).
    pub(crate) fn write_stalled(&mut self, now: Instant) {
        self.deadline_passed(now);
    }

    /// Runs the deadlines due at `now`. A failure is kept for the next step; if it ended the
    /// connection outright (the peer stopped answering: no pong, no close reply), the bytes
    /// still queued are dropped, as nothing bounds writing them any more and no close frame
    /// is owed behind them.
    fn deadline_passed(&mut self, now: Instant) {
        if let Err(e) = self.on_timeout(now) {
            self.fail_later(e);
            if self.is_closed() {
                self.core.output = OutputBuffer::default();
            }
        }
    }

    /// The transport's read side ended; a connection that had not closed cleanly fails,
    /// reported by the next step.
    pub(crate) fn read_eof(&mut self) {
        if let Err(e) = self.on_eof() {
            self.fail_later(e);
        }
    }

    /// The peer's failure not yet reported, if any (for a loop that ends without another
    /// step).
    pub(crate) fn take_failure(&mut self) -> Option<Error> {
        match self.ended.take().map(|ended| *ended) {
            Some(Handshake::Failed(e)) => Some(e),
            other => {
                self.ended = other.map(Box::new);
                None
            }
        }
    }

    /// Keeps the peer's failure `e` for the next step to report, unless one is kept already
    /// (the first failure is the one that counts).
    fn fail_later(&mut self, e: Error) {
        self.ended.get_or_insert_with(|| Box::new(Handshake::Failed(e)));
    }

    /// The adapter shut the transport down.
    pub(crate) fn shut_down(&mut self) {
        self.shut_down = true;
    }

    /// Whether the transport was shut down.
    pub(crate) fn is_shut_down(&self) -> bool {
        self.shut_down
    }

    /// Starts the closing handshake with 1000 if the connection is open: what dropping an
    /// adapter's connection, or its last writer, does.
    pub(crate) fn close_if_open(&mut self, now: Instant) {
        if self.conn.state() == State::Open {
            let _refused = self.close(CloseCode::NORMAL, "", now);
        }
    }

    /// The connection.
    pub(crate) fn connection(&self) -> &Connection {
        &self.conn
    }

    /// Whether the connection is over (the transport is to be, or was, closed).
    pub(crate) fn is_closed(&self) -> bool {
        self.conn.state() == State::Closed
    }

    /// The bytes to write now.
    pub(crate) fn output(&self) -> &[u8] {
        self.core.output.pending()
    }

    /// How many bytes are still to write, in all.
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    pub(crate) fn output_len(&self) -> usize {
        self.core.output.parts().iter().map(|part| part.len()).sum()
    }

    /// Everything still to write, in order, for a vectored write (some slices may be empty);
    /// [`output`](Self::output) is the first non-empty one.
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    pub(crate) fn output_parts(&self) -> [&[u8]; 3] {
        self.core.output.parts()
    }

    /// `n` bytes of [`output`](Self::output) (or of [`output_parts`](Self::output_parts))
    /// were written.
    pub(crate) fn wrote(&mut self, n: usize) {
        if let Some(payload) = self.core.output.advance(n) {
            // A message sent without a copy: its allocation takes the next message received.
            self.core.reassembler.recycle(payload);
        }
    }

    /// Free space to read into, after the unconsumed bytes, for a read that needs an
    /// initialized slice (`std::io::Read`); call [`filled`](Self::filled) with how many were
    /// read. Space is zeroed only the first time it is offered.
    pub(crate) fn input_space(&mut self) -> &mut [u8] {
        self.input.spare()
    }

    /// `n` bytes were read into [`input_space`](Self::input_space).
    pub(crate) fn filled(&mut self, n: usize) {
        self.input.filled(n);
    }

    /// Lets `read` append to the read buffer, a `Vec` holding the unconsumed bytes with
    /// spare capacity for the read (for a reader that fills uninitialized memory, such as
    /// tokio's `read_buf`): nothing is zeroed.
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    pub(crate) fn read_with<R>(&mut self, read: impl FnOnce(&mut Vec<u8>) -> R) -> R {
        self.input.read_with(read)
    }

    /// Gives up the read buffer if it holds nothing, and the output buffer if everything was
    /// written: call before going idle, so an idle connection holds no buffer. Returns their
    /// allocations, for [`reuse_buffers`](Self::reuse_buffers) on this connection or another.
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    pub(crate) fn release_buffers(&mut self) -> Buffers {
        Buffers {
            input: self.input.release_if_empty(),
            output: self.core.output.release(),
            message: self.core.reassembler.release().filter(|buf| buf.capacity() <= MESSAGE_KEEP),
        }
    }

    /// Takes the allocations in `spare` for the buffers this connection does not hold, and
    /// leaves the rest there.
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    pub(crate) fn reuse_buffers(&mut self, spare: &mut Buffers) {
        if let Some(buf) = spare.input.take() {
            spare.input = self.input.adopt(buf);
        }
        if let Some(buf) = spare.output.take() {
            spare.output = self.core.output.adopt(buf);
        }
        if let Some(buf) = spare.message.take() {
            self.core.reassembler.recycle(buf);
        }
    }

    /// The next deadline, for [`on_timeout`](Self::on_timeout).
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        self.conn.poll_timeout()
    }

    /// A deadline may have passed.
    pub(crate) fn on_timeout(&mut self, now: Instant) -> Result<(), Error> {
        let result = self.conn.handle_timeout(now);
        self.drain_transmit();
        result
    }

    /// The transport's read side ended.
    pub(crate) fn on_eof(&mut self) -> Result<(), Error> {
        let result = self.conn.receive_eof();
        self.drain_transmit();
        result
    }

    /// The transport failed: the connection is over, with nothing more to write.
    pub(crate) fn on_transport_error(&mut self) {
        let _ended = self.conn.receive_eof();
        self.core.output = OutputBuffer::default();
        let _freed = self.input.release_if_empty();
    }

    /// Moves what the connection owes into the output buffer.
    fn drain_transmit(&mut self) {
        drain_transmit(&mut self.conn, &mut self.core.output);
    }

    /// Hands the buffered input to the connection until it yields an event, which `handle`
    /// turns into a result; `None` when more input is needed.
    fn next_event<R>(
        &mut self,
        now: Instant,
        handle: impl FnOnce(Event<'_>, &mut Connection, &mut Parts) -> R,
    ) -> Result<Option<R>, Error> {
        match self.input.recv.next_event(&mut self.conn, now) {
            Ok(Some(event)) => {
                let result = handle(event, &mut self.conn, &mut self.core);
                self.drain_transmit();
                Ok(Some(result))
            }
            Ok(None) => {
                self.drain_transmit();
                Ok(None)
            }
            Err(e) => {
                self.drain_transmit();
                Err(e)
            }
        }
    }

    /// The next event from the buffered input, handed to `handle` as it is (zero-copy
    /// streaming); `None` when more input is needed.
    pub(crate) fn next_raw<R>(
        &mut self,
        now: Instant,
        handle: &mut dyn FnMut(Event<'_>) -> R,
    ) -> Result<Option<R>, Error> {
        self.next_event(now, |event, _, _| handle(event))
    }

    /// The next whole message or control frame from the buffered input; `None` when more
    /// input is needed.
    pub(crate) fn next_incoming(&mut self, now: Instant) -> Result<Option<Incoming>, Error> {
        if self.direct.is_none() && self.input.is_empty() && self.conn.state() == State::Open {
            // Nothing to decode (the usual case after the last message of a read): the
            // connection would only say it needs more bytes.
            return Ok(None);
        }
        if let Some(before) = self.direct.take() {
            if let Some(incoming) = self.receive_direct(before, now)? {
                return Ok(Some(incoming));
            }
        }
        loop {
            let next = self.next_event(now, |event, conn, parts| match event {
                Event::Message(_) => parts.reassembler.push(&event).map(Incoming::from),
                Event::Fragment(fragment) => {
                    // Room for the whole frame when its first piece comes (within the limits
                    // the connection checked against the frame's header): one allocation,
                    // and each byte copied once.
                    let rest = usize::try_from(conn.frame_remaining()).unwrap_or(0);
                    parts.reassembler.reserve(fragment.payload.len().saturating_add(rest));
                    parts.reassembler.push(&event).map(Incoming::from)
                }
                Event::Ping(payload) => Some(Incoming::Ping(payload.into())),
                Event::Pong(payload) => Some(Incoming::Pong(payload.into())),
                Event::Close(frame) => Some(Incoming::Close(Box::new(frame))),
                _ => None,
            })?;
            match next {
                Some(Some(incoming)) => return Ok(Some(incoming)),
                Some(None) => {}
                None => return Ok(None),
            }
        }
    }

    /// Lets `read` append up to `limit` bytes straight to the message being reassembled,
    /// when the read buffer is empty and the connection is in the middle of a data frame
    /// handed out in pieces (a frame larger than the read buffer): the frame's remaining
    /// payload then lands where the message is kept, and is unmasked and validated there
    /// by the next [`next_incoming`](Self::next_incoming), without being copied. `None` (and
    /// `read` not called) otherwise: read into the read buffer then.
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    pub(crate) fn direct_read<R>(
        &mut self,
        read: impl FnOnce(&mut Vec<u8>, usize) -> R,
    ) -> Option<R> {
        let rest = usize::try_from(self.conn.frame_remaining()).unwrap_or(0);
        let reassembler = &mut self.core.reassembler;
        if rest == 0
            || !self.input.is_empty()
            || self.direct.is_some()
            || !reassembler.in_progress()
        {
            return None;
        }
        // The read that filled the read buffer was the start of this frame, whose rest comes
        // here: no reason to grow the read buffer, which would only make the next large
        // frame's first read (and its copy into the message) larger.
        self.input.full_read = false;
        let buffer = reassembler.buffer_mut();
        // Reserved when the frame's first piece came (then a no-op): room for one read to
        // take the whole rest.
        buffer.reserve(rest);
        let before = buffer.len();
        let result = read(buffer, rest);
        if buffer.len() > before {
            self.direct = Some(before);
        }
        Some(result)
    }

    /// Hands the bytes read by [`direct_read`](Self::direct_read) (after `before` in the
    /// reassembly buffer) to the connection. In the middle of a frame handed out in pieces,
    /// the connection hands out every byte it is given as one piece, in place: the bytes stay
    /// where they are. Bytes it did not take (only if a read went past the frame) move to
    /// the read buffer.
    fn receive_direct(&mut self, before: usize, now: Instant) -> Result<Option<Incoming>, Error> {
        let buffer = self.core.reassembler.buffer_mut();
        let region = &mut buffer[before..];
        let start = region.as_ptr();
        let received = match self.conn.receive(region, now) {
            Ok(received) => received,
            Err(e) => {
                buffer.truncate(before);
                self.drain_transmit();
                return Err(e);
            }
        };
        let consumed = received.consumed;
        let piece = match received.event {
            Some(Event::Fragment(f))
                if f.payload.as_ptr() == start && f.payload.len() == consumed =>
            {
                Some(f.is_last)
            }
            _ => None,
        };
        debug_assert!(piece.is_some() || consumed == 0, "a piece of the frame, or nothing");
        let kept = if piece.is_some() { before + consumed } else { before };
        self.input.append(&buffer[before + consumed..]);
        buffer.truncate(kept);
        let message = piece.and_then(|is_last| self.core.reassembler.adopt(is_last));
        self.drain_transmit();
        Ok(message.map(Incoming::from))
    }

    /// Advances the opening handshake with the buffered input; `decide` answers a server's
    /// request. `None` when more input is needed.
    pub(crate) fn handshake(
        &mut self,
        now: Instant,
        decide: &mut dyn FnMut(&Request<'_>) -> Decision,
    ) -> Result<Option<Result<Handshake, UsageError>>, Error> {
        match self.conn.state() {
            State::Handshaking => {}
            State::Open => return Ok(Some(Ok(Handshake::Open(None)))),
            State::Closing | State::Closed => return Ok(None),
        }
        self.next_event(now, |event, conn, parts| match event {
            Event::Request(request) => {
                let decision = decide(&request);
                answer(conn, &mut parts.output, &decision, now)
            }
            Event::Accepted(response) => Ok(Handshake::Open(Some((&response).into()))),
            Event::Rejected(response) => Ok(Handshake::Refused((&response).into())),
            // Nothing else comes before the handshake ends.
            _ => Ok(Handshake::Open(None)),
        })
    }

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
        }
    }

    /// Queues `message`, which the caller gives up: with `vectored` (the adapter writes
    /// [`output_parts`](Self::output_parts) with vectored writes), a server keeps a large
    /// message's payload as it is and writes it after the header, without copying it.
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    pub(crate) fn send_owned(
        &mut self,
        message: Outgoing,
        now: Instant,
        vectored: bool,
    ) -> Result<(), UsageError> {
        let zero_copy = |payload: &[u8]| {
            vectored && payload.len() >= ZERO_COPY_MIN && self.conn.role() == Role::Server
        };
        let (kind, payload) = match message {
            Outgoing::Binary(data) if zero_copy(&data) => (MessageKind::Binary, data),
            Outgoing::Text(text) if zero_copy(text.as_bytes()) => {
                (MessageKind::Text, text.into_bytes())
            }
            message => {
                let result = self.send(&message, now);
                // Copied: the payload's allocation can take the next message received.
                match message {
                    Outgoing::Text(text) => self.core.reassembler.recycle(text.into_bytes()),
                    Outgoing::Binary(data) => self.core.reassembler.recycle(data),
                    _ => {}
                }
                return result;
            }
        };
        let conn = &mut self.conn;
        let header = conn.encoded_len(payload.len()) - payload.len();
        let output = &mut self.core.output;
        output.command(header, |out| conn.send_header(kind, payload.len() as u64, out))?;
        output.push_tail(payload);
        Ok(())
    }

    /// Queues a text message.
    pub(crate) fn send_text(&mut self, text: &str) -> Result<(), UsageError> {
        if self.conn.role() == Role::Server {
            return self.send_unmasked(MessageKind::Text, text.as_bytes());
        }
        self.command(text.len(), |c, out| c.send_text(text, out))
    }

    /// Queues a binary message.
    pub(crate) fn send_binary(&mut self, data: &[u8]) -> Result<(), UsageError> {
        if self.conn.role() == Role::Server {
            return self.send_unmasked(MessageKind::Binary, data);
        }
        self.command(data.len(), |c, out| c.send_binary(data, out))
    }

    /// Server: queues a whole message as its header, then its payload appended as it is (a
    /// server does not mask), so the payload is copied once and no space is zeroed for it.
    fn send_unmasked(&mut self, kind: MessageKind, payload: &[u8]) -> Result<(), UsageError> {
        let conn = &mut self.conn;
        let header = conn.encoded_len(payload.len()) - payload.len();
        let output = &mut self.core.output;
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

    /// Runs a command on the connection with room for a frame of `payload_len` bytes.
    fn command(
        &mut self,
        payload_len: usize,
        mut command: impl FnMut(&mut Connection, &mut [u8]) -> Result<Written, UsageError>,
    ) -> Result<(), UsageError> {
        let conn = &mut self.conn;
        let need = conn.encoded_len(payload_len);
        self.core.output.command(need, |out| command(conn, out))
    }
}

impl<T> Step<T> {
    fn map_ready<U>(self, f: impl FnOnce(T) -> U) -> Step<U> {
        match self {
            Self::Ready(t) => Step::Ready(f(t)),
            Self::Io(want) => Step::Io(want),
        }
    }
}

/// Writes the server's answer to a request into `output`.
fn answer(
    conn: &mut Connection,
    output: &mut OutputBuffer,
    decision: &Decision,
    now: Instant,
) -> Result<Handshake, UsageError> {
    let headers: Vec<(&str, &[u8])> =
        decision.headers.iter().map(|(n, v)| (n.as_str(), v.as_slice())).collect();
    let guess = 256
        + decision.body.len()
        + headers.iter().map(|(n, v)| n.len() + v.len() + 4).sum::<usize>();
    match decision.reject {
        None => {
            let mut accept = Accept::new().headers(&headers);
            if let Some(name) = &decision.subprotocol {
                accept = accept.subprotocol(name);
            }
            output.command(guess, |out| conn.accept(&accept, out, now))?;
            Ok(Handshake::Open(None))
        }
        Some(status) => {
            let reject = Reject::new(status).headers(&headers).body(&decision.body);
            output.command(guess, |out| conn.reject(&reject, out))?;
            Ok(Handshake::Rejected(status))
        }
    }
}

/// Moves what `conn` owes into `output`, through a small scratch buffer (small, because it is
/// zeroed on every call and usually nothing is owed; longer owed bytes take several turns).
fn drain_transmit(conn: &mut Connection, output: &mut OutputBuffer) {
    let mut scratch = [0u8; 128];
    while let Some(transmit) = conn.poll_transmit(&mut scratch) {
        match transmit {
            Transmit::Bytes(n) => output.append(&scratch[..n]),
            // The adapter closes the transport once the output is written and the state says
            // closed.
            Transmit::CloseTransport => {}
        }
    }
}

/// A server's one-shot `decide` as the callable the driver wants. A connection carries one
/// request, so a second call cannot happen; it would be refused with 500.
pub(crate) fn decide_once<F>(decide: F) -> impl FnMut(&Request<'_>) -> Decision
where
    F: FnOnce(&Request<'_>) -> Decision,
{
    let mut decide = Some(decide);
    move |request| match decide.take() {
        Some(decide) => decide(request),
        None => Decision::reject(500),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::buffer::input::INPUT_START;
    use alloc::vec;

    /// Masked client frames for `messages`, and a server driver to receive them.
    fn server_and_frames(
        config: crate::connection::config::Config,
        messages: &[Vec<u8>],
    ) -> (Driver, Vec<u8>) {
        let now = Instant::from_micros(0);
        let mut client = Connection::open_client(config.clone(), [7; 32], now);
        let mut wire = Vec::new();
        for message in messages {
            let mut out = vec![0; client.encoded_len(message.len())];
            let n = client.send_binary(message, &mut out).unwrap().len();
            wire.extend_from_slice(&out[..n]);
        }
        (Driver::new(Connection::open_server(config, now)), wire)
    }

    /// Feeds `wire` through `read` (which offers room and returns how much it took) and
    /// collects the messages, and the largest room offered.
    fn receive_all(
        driver: &mut Driver,
        mut wire: &[u8],
        mut read: impl FnMut(&mut Driver, &[u8]) -> (usize, usize),
    ) -> (Vec<Vec<u8>>, usize) {
        let now = Instant::from_micros(0);
        let (mut messages, mut largest) = (Vec::new(), 0);
        loop {
            while let Some(incoming) = driver.next_incoming(now).unwrap() {
                match incoming {
                    Incoming::Binary(data) => messages.push(data),
                    other => panic!("unexpected {other:?}"),
                }
            }
            if wire.is_empty() {
                return (messages, largest);
            }
            let (taken, room) = read(driver, wire);
            assert!(taken > 0, "no room offered");
            largest = largest.max(room);
            wire = &wire[taken..];
        }
    }

    #[test]
    fn the_read_buffer_starts_small_and_grows_for_a_whole_frame() {
        // 60,000 bytes of payload fit the default 64 KiB receive buffer: the frame must
        // arrive whole, so the buffer has to grow from 4 KiB.
        let messages = [vec![1; 10], vec![2; 60_000], vec![3; 100], vec![4; 200_000]];
        for blocking in [true, false] {
            let (mut driver, wire) =
                server_and_frames(crate::connection::config::Config::new(), &messages);
            let (got, largest) = receive_all(&mut driver, &wire, |driver, wire| {
                if blocking {
                    let space = driver.input_space();
                    let room = space.len();
                    let n = room.min(wire.len());
                    space[..n].copy_from_slice(&wire[..n]);
                    driver.filled(n);
                    (n, room)
                } else {
                    driver.read_with(|buf| {
                        let room = buf.capacity() - buf.len();
                        let n = room.min(wire.len());
                        buf.extend_from_slice(&wire[..n]);
                        (n, room)
                    })
                }
            });
            assert_eq!(got, messages, "blocking: {blocking}");
            assert!(largest <= 64 * 1024 + 64, "offered {largest} bytes");
        }
    }

    #[test]
    fn buffers_one_connection_gave_up_serve_another() {
        let (mut first, wire) =
            server_and_frames(crate::connection::config::Config::new(), &[vec![5; 100]]);
        let (got, _) = receive_all(&mut first, &wire, |driver, wire| {
            driver.read_with(|buf| {
                let n = (buf.capacity() - buf.len()).min(wire.len());
                buf.extend_from_slice(&wire[..n]);
                (n, n)
            })
        });
        assert_eq!(got, [vec![5; 100]]);
        let mut spare = first.release_buffers();
        let input = spare.input.as_ref().map(Vec::as_ptr).expect("a read buffer to give up");
        // Idle now: it holds no buffer.
        assert!(first.release_buffers().input.is_none());
        let (mut second, wire) =
            server_and_frames(crate::connection::config::Config::new(), &[vec![6; 10]]);
        second.reuse_buffers(&mut spare);
        assert!(spare.input.is_none(), "taken");
        let reused = second.read_with(|buf| {
            let at = buf.as_ptr();
            buf.extend_from_slice(&wire);
            at
        });
        assert_eq!(reused, input, "the same allocation, not a new one");
        assert_eq!(
            second.next_incoming(Instant::from_micros(0)).unwrap(),
            Some(Incoming::Binary(vec![6; 10]))
        );
        // A connection that holds a buffer keeps it, and leaves the spare alone.
        let mut other = Buffers { input: Some(vec![0; 8]), ..Buffers::default() };
        second.filled(0);
        second.input.append(b"x");
        second.reuse_buffers(&mut other);
        assert!(other.input.is_some());
    }

    #[test]
    fn the_first_read_is_small() {
        let (mut driver, _) = server_and_frames(crate::connection::config::Config::new(), &[]);
        assert_eq!(driver.input_space().len(), INPUT_START);
        let (mut driver, _) = server_and_frames(
            crate::connection::config::Config::new().receive_buffer_size(1000),
            &[],
        );
        assert_eq!(driver.read_with(|buf| buf.capacity()), 1000);
    }

    #[test]
    fn a_server_sends_a_large_payload_without_copying_it() {
        let now = Instant::from_micros(0);
        let config = crate::connection::config::Config::new();
        let mut server = Driver::new(Connection::open_server(config.clone(), now));
        let payload: Vec<u8> = (0..100_000u32).map(|i| i as u8).collect();
        let sent = payload.clone();
        let pointer = sent.as_ptr();
        server.send_owned(Outgoing::Binary(sent), now, true).unwrap();
        let [head, tail, after] = server.output_parts();
        assert_eq!((head.len(), tail.as_ptr(), after.len()), (10, pointer, 0));
        let mut wire = server.output_parts().concat();
        server.wrote(wire.len());
        assert!(server.output().is_empty());
        let mut client = Driver::new(Connection::open_client(config, [1; 32], now));
        wire.extend_from_slice(&[0x81, 0x02, b'o', b'k']);
        let mut received = Vec::new();
        let mut rest = &wire[..];
        while !rest.is_empty() {
            let n = client.read_with(|buf| {
                let n = (buf.capacity() - buf.len()).min(rest.len());
                buf.extend_from_slice(&rest[..n]);
                n
            });
            rest = &rest[n..];
            while let Some(incoming) = client.next_incoming(now).unwrap() {
                received.push(incoming);
            }
        }
        assert_eq!(received, [Incoming::Binary(payload), Incoming::Text("ok".into())]);
    }
}
