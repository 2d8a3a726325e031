//! The std and tokio adapters' storage ([`Heap`]): a read buffer that grows as frames need,
//! an output buffer that keeps large and shared payloads as they are, reassembly of whole
//! messages, buffers given up while idle; and the answer to the opening handshake from a
//! [`Decision`].

use alloc::boxed::Box;
use alloc::vec::Vec;

use super::{Driver, Handshake, Outcome, Step, Store};
use crate::buffer::input::InputBuffer;
use crate::buffer::output::OutputBuffer;
use crate::buffer::reassemble::Reassembler;
use crate::connection::{Connection, Event, State, Transmit};
use crate::error::{Error, UsageError};
use crate::handshake::Request;
use crate::io::error::AdapterError;
use crate::io::owned::{Answer, Decision, HttpResponse, Incoming};
use crate::time::Instant;
use crate::wire::close::CloseCode;

/// Buffer allocations an idle connection gave up, to serve the next one that needs them.
#[derive(Debug, Default)]
pub(crate) struct Buffers {
    /// A read buffer's.
    pub(crate) input: Option<Vec<u8>>,
    /// An output buffer's.
    pub(crate) output: Option<Vec<u8>>,
    /// A reassembled message's (at most [`MESSAGE_KEEP`] bytes of capacity).
    pub(crate) message: Option<Vec<u8>>,
    /// Inflate space's (permessage-deflate).
    #[cfg(feature = "deflate")]
    pub(crate) inflate: Option<Vec<u8>>,
    /// A compressor's and a decompressor's (permessage-deflate).
    #[cfg(feature = "deflate")]
    pub(crate) deflate: crate::DeflateSpare,
}

/// The largest message buffer kept for reuse when a connection goes idle: larger ones are
/// freed, so that what a thread keeps aside stays small.
const MESSAGE_KEEP: usize = 256 * 1024;

/// The parts an event handler may touch while the event borrows the input.
#[derive(Debug)]
pub(crate) struct Parts {
    pub(super) output: OutputBuffer,
    pub(super) reassembler: Reassembler,
}

/// The heap storage: buffers that grow as frames need and are given up while idle.
#[derive(Debug)]
pub(crate) struct Heap {
    pub(super) input: InputBuffer,
    pub(super) core: Parts,
    /// After a read straight into the message being reassembled
    /// ([`direct_read`](Driver::direct_read)): the length of its buffer before the read; the
    /// bytes after it are input the connection has not seen yet.
    direct: Option<usize>,
}

impl Store for Heap {
    type Response = HttpResponse;
    type Parts = Parts;

    fn has_buffered(&self) -> bool {
        self.direct.is_some() || !self.input.is_empty()
    }

    fn next_event<R>(
        &mut self,
        conn: &mut Connection,
        now: Instant,
        handle: impl FnOnce(Event<'_>, &mut Connection, &mut Parts) -> R,
    ) -> Result<Option<R>, Error> {
        #[cfg(feature = "deflate")]
        if conn.compression().is_some() {
            self.input.ensure_inflate(None);
        }
        Ok(self.input.recv.next_event(conn, now)?.map(|event| handle(event, conn, &mut self.core)))
    }

    /// Space is zeroed only the first time it is offered.
    fn input_space(&mut self) -> &mut [u8] {
        self.input.spare()
    }

    fn filled(&mut self, n: usize) {
        self.input.filled(n);
    }

    fn output_is_empty(&self) -> bool {
        self.core.output.is_empty()
    }

    fn output(&self) -> &[u8] {
        self.core.output.pending()
    }

    fn wrote(&mut self, n: usize, _conn: &mut Connection) {
        if let Some(payload) = self.core.output.advance(n) {
            // A message sent without a copy: its allocation takes the next message received.
            self.core.reassembler.recycle(payload);
        }
    }

    fn drain_transmit(&mut self, conn: &mut Connection) {
        drain_transmit(conn, &mut self.core.output);
    }

    fn discard_output(&mut self) {
        self.core.output = OutputBuffer::default();
    }

    fn release(&mut self) {
        let _freed = self.input.release_if_empty();
        let _freed = self.core.output.release();
        let _freed = self.core.reassembler.release();
    }
}

impl Driver<Heap> {
    /// Wraps `conn`, and gathers what it owes already (a client's request).
    pub(crate) fn new(conn: Connection) -> Self {
        let capacity = conn.config().receive_buffer_size;
        let store = Heap {
            input: InputBuffer::new(capacity),
            core: Parts { output: OutputBuffer::default(), reassembler: Reassembler::new() },
            direct: None,
        };
        Self::with_store(conn, store)
    }

    /// The opening handshake's next step; `decide` answers a server's request. Ready once
    /// the connection is open (with the server's `101` for a client), or once a failure or
    /// refusal has had its reply written and the transport shut.
    pub(crate) fn handshake_step<E>(
        &mut self,
        now: Instant,
        decide: &mut dyn FnMut(&Request<'_>) -> Decision,
    ) -> Step<Result<Option<HttpResponse>, AdapterError<E>>> {
        self.handshake_step_with(now, &mut |event, conn, parts: &mut Parts, now| match event {
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

    /// Starts the closing handshake with 1000 if the connection is open: what dropping an
    /// adapter's connection, or its last writer, does.
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    pub(crate) fn close_if_open(&mut self, now: Instant) {
        if self.conn.state() == State::Open {
            let _refused = self.close(CloseCode::NORMAL, "", now);
        }
    }

    /// How many bytes are still to write, in all.
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    pub(crate) fn output_len(&self) -> usize {
        self.store.core.output.len()
    }

    /// Whether what is left to write is one slice ([`output`](Self::output)).
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    pub(crate) fn output_is_one_slice(&self) -> bool {
        self.store.core.output.is_one_slice()
    }

    /// Fills `parts` with what is still to write, in order, for a vectored write; returns
    /// how many it filled ([`output`](Self::output) is the first).
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    pub(crate) fn output_parts<'a>(&'a self, parts: &mut [&'a [u8]]) -> usize {
        self.store.core.output.parts(parts)
    }

    /// Lets `read` append to the read buffer, a `Vec` holding the unconsumed bytes with
    /// spare capacity for the read (for a reader that fills uninitialized memory, such as
    /// tokio's `read_buf`): nothing is zeroed.
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    pub(crate) fn read_with<R>(&mut self, read: impl FnOnce(&mut Vec<u8>) -> R) -> R {
        self.store.input.read_with(read)
    }

    /// Gives up the read buffer if it holds nothing, and the output buffer if everything was
    /// written: call before going idle, so an idle connection holds no buffer. Returns their
    /// allocations, for [`reuse_buffers`](Self::reuse_buffers) on this connection or another.
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    pub(crate) fn release_buffers(&mut self) -> Buffers {
        #[cfg(feature = "deflate")]
        let (inflate, deflate) = if self.conn.is_inflating() {
            (None, self.conn.release_compression())
        } else {
            (self.store.input.release_inflate(), self.conn.release_compression())
        };
        Buffers {
            input: self.store.input.release_if_empty(),
            output: self.store.core.output.release(),
            message: self
                .store
                .core
                .reassembler
                .release()
                .filter(|buf| buf.capacity() <= MESSAGE_KEEP),
            #[cfg(feature = "deflate")]
            inflate,
            #[cfg(feature = "deflate")]
            deflate,
        }
    }

    /// Takes the allocations in `spare` for the buffers this connection does not hold, and
    /// leaves the rest there.
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    pub(crate) fn reuse_buffers(&mut self, spare: &mut Buffers) {
        if !self.lacks_buffers() {
            return;
        }
        if let Some(buf) = spare.input.take() {
            spare.input = self.store.input.adopt(buf);
        }
        if let Some(buf) = spare.output.take() {
            spare.output = self.store.core.output.adopt(buf);
        }
        if let Some(buf) = spare.message.take() {
            self.store.core.reassembler.recycle(buf);
        }
        #[cfg(feature = "deflate")]
        if self.conn.compression().is_some() {
            self.store.input.ensure_inflate(spare.inflate.take());
            self.conn.reuse_compression(&mut spare.deflate);
        }
    }

    /// Whether a buffer was given up (by [`release_buffers`](Self::release_buffers)) and not
    /// taken back: only then is there something to [`reuse`](Self::reuse_buffers).
    pub(crate) fn lacks_buffers(&self) -> bool {
        self.store.input.is_unallocated()
            || self.store.core.output.buf.capacity() == 0
            || self.store.core.reassembler.is_unallocated()
    }

    /// The next whole message or control frame from the buffered input; `None` when more
    /// input is needed.
    pub(crate) fn next_incoming(&mut self, now: Instant) -> Result<Option<Incoming>, Error> {
        if let Some(before) = self.store.direct.take() {
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
        let reassembler = &mut self.store.core.reassembler;
        if rest == 0
            || !self.store.input.is_empty()
            || self.store.direct.is_some()
            || !reassembler.in_progress()
        {
            return None;
        }
        // The read that filled the read buffer was the start of this frame, whose rest comes
        // here: no reason to grow the read buffer, which would only make the next large
        // frame's first read (and its copy into the message) larger.
        self.store.input.full_read = false;
        let buffer = reassembler.buffer_mut();
        // Reserved when the frame's first piece came (then a no-op): room for one read to
        // take the whole rest.
        buffer.reserve(rest);
        let before = buffer.len();
        let result = read(buffer, rest);
        if buffer.len() > before {
            self.store.direct = Some(before);
        }
        Some(result)
    }

    /// Hands the bytes read by [`direct_read`](Self::direct_read) (after `before` in the
    /// reassembly buffer) to the connection. In the middle of a frame handed out in pieces,
    /// the connection hands out every byte it is given as one piece, in place: the bytes stay
    /// where they are. Bytes it did not take (only if a read went past the frame) move to
    /// the read buffer.
    fn receive_direct(&mut self, before: usize, now: Instant) -> Result<Option<Incoming>, Error> {
        let buffer = self.store.core.reassembler.buffer_mut();
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
        self.store.input.append(&buffer[before + consumed..]);
        buffer.truncate(kept);
        let message = piece.and_then(|is_last| self.store.core.reassembler.adopt(is_last));
        self.drain_transmit();
        Ok(message.map(Incoming::from))
    }
}

/// Writes the server's answer to a request into `output`.
fn answer(
    conn: &mut Connection,
    output: &mut OutputBuffer,
    decision: &Decision,
    now: Instant,
) -> Result<Handshake<HttpResponse>, UsageError> {
    decision.answer(|answer| match answer {
        Answer::Accept(accept) => {
            output.command(decision.size_guess(), |out| conn.accept(&accept, out, now))?;
            Ok(Handshake::Open(None))
        }
        Answer::Reject(reject) => {
            output.command(decision.size_guess(), |out| conn.reject(&reject, out))?;
            Ok(Handshake::Rejected(reject.status()))
        }
    })
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

impl<E> Outcome<HttpResponse> for AdapterError<E> {
    fn outcome(ended: Handshake<HttpResponse>) -> Result<Option<HttpResponse>, Self> {
        crate::io::error::handshake_outcome(ended)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::buffer::input::INPUT_START;
    use crate::io::driver::HeapDriver;
    use crate::io::owned::Outgoing;
    use alloc::vec;

    /// Masked client frames for `messages`, and a server driver to receive them.
    fn server_and_frames(
        config: crate::connection::config::Config,
        messages: &[Vec<u8>],
    ) -> (HeapDriver, Vec<u8>) {
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
        driver: &mut HeapDriver,
        mut wire: &[u8],
        mut read: impl FnMut(&mut HeapDriver, &[u8]) -> (usize, usize),
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
        second.store.input.append(b"x");
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
        let mut parts = [&[][..]; 4];
        let n = server.output_parts(&mut parts);
        let [head, tail, after, _] = parts;
        assert_eq!(n, 2);
        assert_eq!((head.len(), tail.as_ptr(), after.len()), (10, pointer, 0));
        let mut wire = parts[..n].concat();
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
