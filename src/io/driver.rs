//! The I/O-independent half of every adapter: a [`Connection`] with its buffers, and the
//! loops that drive it.
//!
//! An adapter (blocking std, tokio, embedded-io-async) asks a step function what to do next
//! — [`handshake_step`](Driver::handshake_step), [`receive_step`](Driver::receive_step) or
//! [`flush_step`](Driver::flush_step) — and does the [`Want`] it gets: write the output,
//! read with a deadline, shut the transport. Everything else is here, once: running
//! deadlines, the rule of who shuts the transport, reporting a peer's failure once after its
//! reply is out, moving what the connection owes into the output.
//!
//! Where the bytes live is the [`Store`]'s business, so that one driver serves every
//! adapter:
//! - [`Heap`] (`heap.rs`, needs `alloc`): the std and tokio adapters' read buffer that
//!   starts at 4 KiB and grows up to
//!   [`Config::receive_buffer_size`](crate::Config::receive_buffer_size) as frames need, an
//!   output buffer that keeps large and shared payloads as they are, reassembly of whole
//!   messages, the answer to the opening handshake from a
//!   [`Decision`](crate::Decision), the close on drop;
//! - [`Fixed`] (`fixed.rs`, no heap): the caller's two fixed buffers, for the embedded
//!   adapter; a message larger than the read buffer streams through it in pieces.

#[cfg(feature = "alloc")]
mod heap;
#[cfg(feature = "alloc")]
mod send;
mod step;

#[cfg(feature = "alloc")]
#[cfg_attr(not(feature = "std"), allow(unused_imports))]
pub(crate) use heap::{decide_once, Buffers, Heap};

/// The std and tokio adapters' driver.
#[cfg(feature = "alloc")]
pub(crate) type HeapDriver = Driver<Heap>;
#[cfg_attr(not(feature = "std"), allow(unused_imports))]
pub(crate) use step::{Outcome, Step, Want};

#[cfg(feature = "embedded-io")]
pub(crate) mod fixed;

use crate::connection::{Connection, Event, State};
use crate::error::{Error, UsageError};
use crate::slot::{slot, Slot};
use crate::time::Instant;

/// How an opening handshake ended. `R` is what a client keeps of the server's response
/// ([`Store::Response`]).
#[derive(Debug)]
pub(crate) enum Handshake<R> {
    /// The connection is open; a client gets the server's `101`.
    Open(Option<R>),
    /// Client: the server answered with another status.
    Refused(R),
    /// Server: the application rejected the request with this status.
    Rejected(u16),
    /// The peer failed (an invalid request or response, a deadline, the stream's end).
    Failed(Error),
    /// Server: the application's decision could not be written (an invalid header).
    Usage(UsageError),
    /// The connection ended without an answer.
    Closed,
}

/// A handshake's end as [`Driver::handshake`] gives it: how it ended, or the application's
/// answer that could not be written.
pub(crate) type Ended<S> = Result<Handshake<<S as Store>::Response>, UsageError>;

/// What answers the event that ends the opening handshake (see [`Driver::handshake`]).
pub(crate) type Answer<'a, S> =
    dyn FnMut(Event<'_>, &mut Connection, &mut <S as Store>::Parts, Instant) -> Ended<S> + 'a;

/// Where a [`Driver`] keeps its bytes: the input the connection has not consumed yet, and
/// the output still to write.
pub(crate) trait Store {
    /// What a client keeps of the server's answer to its upgrade request.
    type Response;
    /// What an event handler may touch while the event borrows the input (the output, and
    /// whatever else the store keeps beside it).
    type Parts;

    /// Whether there are bytes the connection has not looked at yet.
    fn has_buffered(&self) -> bool;

    /// Hands the buffered input to `conn` and, if it yields an event, that event to
    /// `handle`; `None` when more input is needed.
    fn next_event<R>(
        &mut self,
        conn: &mut Connection,
        now: Instant,
        handle: impl FnOnce(Event<'_>, &mut Connection, &mut Self::Parts) -> R,
    ) -> Result<Option<R>, Error>;

    /// Free space to read into, after the unconsumed bytes.
    fn input_space(&mut self) -> &mut [u8];

    /// `n` bytes were read into [`input_space`](Self::input_space).
    fn filled(&mut self, n: usize);

    /// Whether everything was written.
    fn output_is_empty(&self) -> bool;

    /// The bytes to write now.
    fn output(&self) -> &[u8];

    /// `n` bytes of [`output`](Self::output) were written; `conn` may owe more, which did
    /// not fit before.
    fn wrote(&mut self, n: usize, conn: &mut Connection);

    /// Moves what `conn` owes into the output, as far as it has room.
    fn drain_transmit(&mut self, conn: &mut Connection);

    /// Drops the bytes still to write (the transport failed, or the peer stopped answering
    /// and nothing bounds writing them any more).
    fn discard_output(&mut self);

    /// The connection is over and the transport shut: buffers can be given up.
    fn release(&mut self) {}
}

/// A [`Connection`] with its buffers: everything an adapter does that is not I/O.
#[derive(Debug)]
pub(crate) struct Driver<S: Store> {
    conn: Connection,
    store: S,
    /// How the opening handshake ended, or later a failure of the peer's (as
    /// [`Handshake::Failed`]), kept until the reply it queued is written. In a [`Slot`], as
    /// it is rare: an idle connection is smaller without it inline (with a heap).
    ended: Option<Slot<Handshake<S::Response>>>,
    /// Whether the adapter shut the transport down.
    shut_down: bool,
}

impl<S: Store> Driver<S> {
    /// Wraps `conn` and `store`, and gathers what the connection owes already.
    pub(crate) fn with_store(conn: Connection, store: S) -> Self {
        let mut driver = Self { conn, store, ended: None, shut_down: false };
        driver.drain_transmit();
        driver
    }

    /// The connection.
    pub(crate) fn connection(&self) -> &Connection {
        &self.conn
    }

    /// Whether the connection is over (the transport is to be, or was, closed).
    pub(crate) fn is_closed(&self) -> bool {
        self.conn.state() == State::Closed
    }

    /// Whether there is input for the connection to look at. Without any, an open
    /// connection would only say it needs more (the usual case after the last message of a
    /// read), so it is not asked.
    pub(crate) fn has_input(&self) -> bool {
        self.store.has_buffered() || self.conn.state() != State::Open || self.inflating()
    }

    /// Whether a compressed message is being received: its decompressor may have output
    /// left for the inflate space without more input.
    fn inflating(&self) -> bool {
        #[cfg(feature = "deflate")]
        return self.conn.is_inflating();
        #[cfg(not(feature = "deflate"))]
        false
    }

    /// Whether there are bytes to write.
    pub(crate) fn has_output(&self) -> bool {
        !self.store.output_is_empty()
    }

    /// The bytes to write now.
    pub(crate) fn output(&self) -> &[u8] {
        self.store.output()
    }

    /// `n` bytes of [`output`](Self::output) were written.
    pub(crate) fn wrote(&mut self, n: usize) {
        self.store.wrote(n, &mut self.conn);
    }

    /// Free space to read into, after the unconsumed bytes, for a read that needs an
    /// initialized slice; call [`filled`](Self::filled) with how many were read.
    pub(crate) fn input_space(&mut self) -> &mut [u8] {
        self.store.input_space()
    }

    /// `n` bytes were read into [`input_space`](Self::input_space).
    pub(crate) fn filled(&mut self, n: usize) {
        self.store.filled(n);
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
        self.store.discard_output();
        self.store.release();
    }

    /// Moves what the connection owes into the output buffer.
    fn drain_transmit(&mut self) {
        self.store.drain_transmit(&mut self.conn);
    }

    /// Hands the buffered input to the connection until it yields an event, which `handle`
    /// turns into a result; `None` when more input is needed.
    fn next_event<R>(
        &mut self,
        now: Instant,
        handle: impl FnOnce(Event<'_>, &mut Connection, &mut S::Parts) -> R,
    ) -> Result<Option<R>, Error> {
        let result = self.store.next_event(&mut self.conn, now, handle);
        self.drain_transmit();
        result
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

    /// Advances the opening handshake with the buffered input; `answer` gets the event that
    /// ends it (a server's request, to answer into the output; a client's response) and
    /// says how it ended. `None` when more input is needed.
    pub(crate) fn handshake(
        &mut self,
        now: Instant,
        answer: &mut Answer<'_, S>,
    ) -> Result<Option<Ended<S>>, Error> {
        match self.conn.state() {
            State::Handshaking => {}
            State::Open => return Ok(Some(Ok(Handshake::Open(None)))),
            State::Closing | State::Closed => return Ok(None),
        }
        self.next_event(now, |event, conn, parts| answer(event, conn, parts, now))
    }

    /// Keeps `ended` until the next step reports it.
    fn keep(&mut self, ended: Handshake<S::Response>) {
        self.ended = Some(slot(ended));
    }
}

/// What a slot holds, moved out of it.
#[allow(clippy::boxed_local)] // A `Slot` is a `Box` only with a heap.
fn unslot<T>(slot: Slot<T>) -> T {
    #[cfg(feature = "alloc")]
    return *slot;
    #[cfg(not(feature = "alloc"))]
    return slot.into_inner();
}
