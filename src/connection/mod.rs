//! [`Connection`]: the only place a WebSocket's state changes.

#[cfg(feature = "deflate")]
pub(crate) mod compress;
pub(crate) mod config;
mod control;
mod event;
mod message;
mod opening;
mod owed;
mod receive;
mod rng;
pub(crate) mod send;
mod timer;

use crate::slot::{slot, Slot};

use self::config::Config;
use self::rng::KeyStream;
use crate::error::UsageError;
use crate::error::{Error, ErrorKind, Reply};
use crate::handshake::{self, ClientOffer, ClientRequest, Offer};
use crate::http::head::HeadScanner;
use crate::time::Instant;
use crate::wire::close::{CloseCode, CloseFrame};
use crate::wire::utf8::Utf8Validator;

pub use self::event::{Event, Fragment, Message, MessageKind, Received, Transmit, Written};
use self::receive::FrameProgress;
use self::timer::{Timer, TimerTable};

/// A WebSocket connection's protocol state, for either role, with no I/O of its own.
///
/// # Calls
///
/// The methods come in four kinds, after quinn-proto:
///
/// - **Inputs**: [`receive`](Self::receive) (bytes read from the transport),
///   [`receive_eof`](Self::receive_eof) (the transport's read side ended) and
///   [`handle_timeout`](Self::handle_timeout) (a deadline passed). Each takes the current
///   [`Instant`].
/// - **Commands**: [`accept`](Self::accept) / [`reject`](Self::reject) (server),
///   [`send_text`](Self::send_text), [`send_binary`](Self::send_binary),
///   [`send_fragment`](Self::send_fragment), [`send_header`](Self::send_header),
///   [`send_ping`](Self::send_ping), [`send_pong`](Self::send_pong), [`close`](Self::close).
///   Each takes what to send, then the caller's `out` buffer, then `now` when it starts a
///   timer (`accept`, `close`); it writes whole frames into `out` (after any owed bytes) and
///   returns a `#[must_use]` [`Written`] saying how many bytes to write. A refused command
///   returns a [`UsageError`], writes nothing and changes nothing.
///   [`encoded_len`](Self::encoded_len) says how large `out` must be.
/// - **Outputs**: [`poll_transmit`](Self::poll_transmit) (bytes the protocol owes the peer:
///   the client's request, pongs, close replies, keepalive pings, error responses, and the
///   instruction to close the transport) and [`poll_timeout`](Self::poll_timeout) (the next
///   deadline).
/// - **Queries**: [`state`](Self::state), [`role`](Self::role),
///   [`received_close`](Self::received_close), [`sent_close`](Self::sent_close).
///
/// # The driver loop
///
/// After any input or command, drain [`poll_transmit`](Self::poll_transmit) to the transport
/// until it returns `None`, then sleep until new bytes arrive or
/// [`poll_timeout`](Self::poll_timeout) passes. Commands flush whatever
/// `poll_transmit` still owes ahead of their own frame, so owed bytes and frames never
/// interleave wrongly on the wire.
///
/// ```text
/// loop {
///     while let Some(event) = input.next_event(&mut conn, now)? {   // a RecvBuffer
///         let written = handle(event, &mut conn, &mut out)?;          // echo, accept...
///         transport.write_all(written.bytes(&out));
///     }
///     while let Some(t) = conn.poll_transmit(&mut out) {
///         match t {
///             Transmit::Bytes(n) => transport.write_all(&out[..n]),
///             Transmit::CloseTransport => transport.shutdown(),
///         }
///     }
///     if conn.state() == State::Closed { break }
///     read into input.spare(), waiting until conn.poll_timeout() at most;
///     then input.filled(n), conn.receive_eof() or conn.handle_timeout(now)
/// }
/// ```
///
/// Events borrow the caller's buffer, never the connection, so a handler can answer (echo a
/// message, say) while it holds the event. Unconsumed bytes must be passed again, unchanged
/// and at the front, on the next call: the machine may already have unmasked some of them.
#[derive(Debug)]
pub struct Connection {
    role: Role,
    config: Config,
    phase: Phase,
    /// Progress through the frame being received, if its header has been parsed.
    frame: Option<FrameProgress>,
    /// The data message being received, from its first frame to its last.
    message: Option<InMessage>,
    /// The kind of the fragmented message being sent, if one is open.
    sending: Option<MessageKind>,
    /// The close frames, on the heap: they are needed only once the connection closes, and
    /// an idle connection is smaller without them.
    received_close: Option<Slot<CloseFrame>>,
    sent_close: Option<Slot<CloseFrame>>,
    /// Whether input is being discarded because the connection failed.
    failed: bool,
    /// How many input bytes the last `receive` left unconsumed (to tell new bytes apart).
    unconsumed: usize,
    /// Bytes owed to the peer, and how many of them were already handed out.
    owed: owed::Owed,
    /// The payload of the latest unanswered ping, when pongs are automatic.
    pong_owed: Option<ControlPayload>,
    /// Whether `sent_close` is queued but not yet encoded into `owed`.
    close_owed: bool,
    /// Whether a keepalive ping (whose payload is `pings_sent`) is owed.
    ping_owed: bool,
    /// Payload counter for keepalive pings.
    pings_sent: u32,
    transport: Transport,
    timers: TimerTable,
    /// A client's masking-key stream, on the heap for the same reason.
    rng: Option<Slot<KeyStream>>,
    /// permessage-deflate's state, once negotiated.
    #[cfg(feature = "deflate")]
    codec: Option<alloc::boxed::Box<compress::Codec>>,
}

/// Which end of the connection this is.
#[derive(Clone, Copy, Debug, Eq, Hash, PartialEq)]
pub enum Role {
    /// The end that sent the upgrade request; it masks every frame it sends.
    Client,
    /// The end that accepted the upgrade request; it never masks.
    Server,
}

/// Where the connection is in its life (RFC 6455 §4 and §7).
#[derive(Clone, Copy, Debug, Eq, Hash, PartialEq)]
#[non_exhaustive]
pub enum State {
    /// The opening handshake is in progress.
    Handshaking,
    /// Messages flow both ways.
    Open,
    /// A close frame was sent or received (or the connection failed), and the closing
    /// handshake or the transport's close is awaited.
    Closing,
    /// The connection is over; nothing more will be sent or received.
    Closed,
}

/// The life of the connection as a whole. The handshake's state is boxed: it is needed once,
/// and an open connection is smaller without it inline.
#[derive(Debug)]
enum Phase {
    /// Server: reading the upgrade request.
    AwaitRequest(Slot<HeadScanner>),
    /// Server: the request was handed out; `accept` or `reject` is awaited.
    AwaitDecision(Slot<Offer>),
    /// Client: reading the server's response.
    AwaitResponse(Slot<HeadScanner>, Slot<ClientOffer>),
    /// The handshake is done (or was skipped); frames flow.
    Open,
    /// The handshake failed or was refused; only owed bytes and the transport close remain.
    Ended,
}

/// What the transport should be doing.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
enum Transport {
    Open,
    /// Close it once the owed bytes are out.
    CloseDue,
    /// The caller was told to close it, or its read side ended.
    Closed,
}

/// The data message being received.
#[derive(Clone, Copy, Debug)]
struct InMessage {
    kind: MessageKind,
    /// Bytes charged so far, including the current frame: the payload declared, plus
    /// `Config::FRAGMENT_OVERHEAD` for each frame after the first.
    size: u64,
    /// Frames so far, including the current one.
    frames: u32,
    /// Whether a piece of it was handed out.
    started: bool,
    utf8: Utf8Validator,
    /// Whether it is compressed (RSV1 on its first frame, RFC 7692 §6).
    #[cfg(feature = "deflate")]
    compressed: bool,
    /// Compressed: inflated bytes at the front of the inflate space not yet handed out.
    #[cfg(feature = "deflate")]
    pending: usize,
    /// Compressed: how many bytes of the tail appended to its last frame were inflated.
    #[cfg(feature = "deflate")]
    tail: u8,
    /// Compressed: its bytes on the wire so far (`size` counts the inflated bytes).
    #[cfg(feature = "deflate")]
    wire: u64,
    /// Compressed: a byte inflated when the space was full, for the next piece.
    #[cfg(feature = "deflate")]
    carry: Option<u8>,
}

/// A control frame payload held inline.
#[derive(Clone, Copy, Debug)]
struct ControlPayload {
    bytes: [u8; 125],
    len: u8,
}

impl ControlPayload {
    /// `None` if `payload` is longer than a control frame allows.
    fn new(payload: &[u8]) -> Option<Self> {
        let mut bytes = [0; 125];
        bytes.get_mut(..payload.len())?.copy_from_slice(payload);
        Some(Self { bytes, len: payload.len() as u8 })
    }

    fn as_slice(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

impl Connection {
    /// A server connection, waiting for the client's upgrade request.
    ///
    /// Next: [`receive`](Self::receive) until [`Event::Request`], then
    /// [`accept`](Self::accept) or [`reject`](Self::reject).
    pub fn server(config: Config, now: Instant) -> Self {
        let mut conn =
            Self::new(Role::Server, config, None, Phase::AwaitRequest(slot(HeadScanner::new())));
        conn.arm_handshake_timer(now);
        conn
    }

    /// A client connection for `request`; its upgrade request is owed to
    /// [`poll_transmit`](Self::poll_transmit) (feature `alloc`; without it, see
    /// [`client_into`](Self::client_into)).
    ///
    /// `seed` must come from a strong source of entropy (the operating system's, for
    /// instance): the `Sec-WebSocket-Key` and every masking key are drawn from a ChaCha20
    /// stream keyed with it, because RFC 6455 §5.3 requires masking keys the peer cannot
    /// predict. Never reuse a seed.
    ///
    /// Next: [`poll_transmit`](Self::poll_transmit), then [`receive`](Self::receive) until
    /// [`Event::Accepted`] or [`Event::Rejected`].
    #[cfg(feature = "alloc")]
    pub fn client(
        config: Config,
        request: &ClientRequest<'_>,
        seed: [u8; 32],
        now: Instant,
    ) -> Result<Self, UsageError> {
        let (mut conn, bytes) =
            Self::start_client(config, request, seed, now, |head| Ok(head.to_vec()))?;
        conn.owed.set_heap(bytes);
        Ok(conn)
    }

    /// A client connection for `request`, with its upgrade request written into `out`
    /// instead of owed: nothing of the request is kept, so this needs no allocator. Write the
    /// returned [`Written`] bytes to the transport first, then go on as after
    /// [`client`](Self::client). `seed` is as for [`client`](Self::client).
    ///
    /// Refused with [`UsageError::BufferTooSmall`] when `out` cannot hold the request (no
    /// connection is made), and as [`client`](Self::client) is otherwise.
    pub fn client_into(
        config: Config,
        request: &ClientRequest<'_>,
        seed: [u8; 32],
        now: Instant,
        out: &mut [u8],
    ) -> Result<(Self, Written), UsageError> {
        Self::start_client(config, request, seed, now, |head| head.write(out).map(Written))
    }

    /// A client connection awaiting the response to `request`, whose head `emit` writes.
    fn start_client<T>(
        config: Config,
        request: &ClientRequest<'_>,
        seed: [u8; 32],
        now: Instant,
        emit: impl FnOnce(&handshake::client::RequestHead<'_, '_>) -> Result<T, UsageError>,
    ) -> Result<(Self, T), UsageError> {
        let mut rng = KeyStream::new(seed);
        #[cfg(feature = "deflate")]
        let (deflate, offered) = {
            let deflate = config.deflate;
            let on = deflate.mode != handshake::DeflateMode::Off;
            (on.then_some(deflate), on.then(|| handshake::deflate::offer(&deflate)))
        };
        #[cfg(feature = "deflate")]
        let extra = offered.as_deref();
        #[cfg(not(feature = "deflate"))]
        let extra = None;
        #[allow(unused_mut)]
        let (head, mut offer) = handshake::prepare_request(request, rng.websocket_key(), extra)?;
        #[cfg(feature = "deflate")]
        {
            offer.deflate = deflate;
        }
        let emitted = emit(&head)?;
        let phase = Phase::AwaitResponse(slot(HeadScanner::new()), slot(offer));
        let mut conn = Self::new(Role::Client, config, Some(slot(rng)), phase);
        conn.arm_handshake_timer(now);
        Ok((conn, emitted))
    }

    /// A server connection whose opening handshake was done elsewhere (by an HTTP framework,
    /// or over HTTP/2 as RFC 8441 describes): frames flow from the start.
    pub fn open_server(config: Config, now: Instant) -> Self {
        let mut conn = Self::new(Role::Server, config, None, Phase::Open);
        conn.start_open(now);
        conn
    }

    /// A client connection whose opening handshake was done elsewhere; `seed` keys the
    /// masking keys as for [`client`](Self::client).
    pub fn open_client(config: Config, seed: [u8; 32], now: Instant) -> Self {
        let rng = Some(slot(KeyStream::new(seed)));
        let mut conn = Self::new(Role::Client, config, rng, Phase::Open);
        conn.start_open(now);
        conn
    }

    fn new(role: Role, config: Config, rng: Option<Slot<KeyStream>>, phase: Phase) -> Self {
        Self {
            role,
            config,
            phase,
            frame: None,
            message: None,
            sending: None,
            received_close: None,
            sent_close: None,
            failed: false,
            unconsumed: 0,
            owed: owed::Owed::new(),
            pong_owed: None,
            close_owed: false,
            ping_owed: false,
            pings_sent: 0,
            transport: Transport::Open,
            timers: TimerTable::default(),
            rng,
            #[cfg(feature = "deflate")]
            codec: None,
        }
    }

    /// The permessage-deflate parameters agreed in the opening handshake, if it was
    /// negotiated (feature `deflate`).
    #[cfg(feature = "deflate")]
    #[must_use]
    pub fn compression(&self) -> Option<crate::handshake::DeflateParams> {
        self.codec.as_ref().map(|codec| codec.params)
    }

    /// Frees the compression state an idle connection does not need (feature `deflate`):
    /// call it when the connection goes idle (the adapters do when they release their
    /// buffers). The decompressor goes (unless a message is being received): with context
    /// takeover only a copy of its window stays (`2^client_max_window_bits` bytes on a
    /// server), which primes the next message's decompressor. The compressor goes when this
    /// end sends without context takeover; with it, its history cannot be rebuilt, so it
    /// stays. So with no context takeover either way an idle connection holds no
    /// compression memory at all.
    ///
    /// What goes is returned, for [`reuse_compression`](Self::reuse_compression) on this
    /// connection or another when it becomes busy (the adapters keep one spare per thread),
    /// or to be dropped; what is missing at the next compressed message is made again.
    #[cfg(feature = "deflate")]
    pub fn release_compression(&mut self) -> compress::DeflateSpare {
        let receiving = self.is_inflating();
        match self.codec.as_mut() {
            Some(codec) => codec.release_idle(receiving),
            None => compress::DeflateSpare::default(),
        }
    }

    /// Takes from `spare` the compression state this connection lacks and can use (feature
    /// `deflate`): a decompressor, and a compressor made for the same window and level when
    /// this end sends without context takeover. What it does not take stays in `spare`.
    #[cfg(feature = "deflate")]
    pub fn reuse_compression(&mut self, spare: &mut compress::DeflateSpare) {
        if let Some(codec) = self.codec.as_mut() {
            codec.adopt(spare);
        }
    }

    /// Whether a compressed message is being received (its inflated bytes may wait in the
    /// inflate space).
    #[cfg(feature = "deflate")]
    pub(crate) fn is_inflating(&self) -> bool {
        self.message.is_some_and(|m| m.compressed)
    }

    /// Whether permessage-deflate holds compressor or decompressor memory right now.
    #[cfg(feature = "deflate")]
    #[must_use]
    pub fn holds_compression_state(&self) -> bool {
        self.codec.as_ref().is_some_and(|codec| codec.holds_state())
    }

    /// This end's role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The configuration this connection runs with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Where the connection is in its life.
    pub fn state(&self) -> State {
        if self.transport == Transport::Closed {
            return State::Closed;
        }
        match self.phase {
            Phase::AwaitRequest(_) | Phase::AwaitDecision(_) | Phase::AwaitResponse(..) => {
                State::Handshaking
            }
            Phase::Ended => State::Closing,
            Phase::Open => {
                if self.failed || self.sent_close.is_some() || self.received_close.is_some() {
                    State::Closing
                } else {
                    State::Open
                }
            }
        }
    }

    /// The close frame received from the peer, if any. Its code is the "WebSocket Connection
    /// Close Code" of RFC 6455 §7.1.5 (1005 if the frame had no body); with no close frame
    /// received, that code is 1006.
    pub fn received_close(&self) -> Option<&CloseFrame> {
        self.received_close.as_deref()
    }

    /// The close frame this end sent (or queued), if any.
    pub fn sent_close(&self) -> Option<&CloseFrame> {
        self.sent_close.as_deref()
    }

    /// Whether both close frames have been exchanged (RFC 6455 §7.1.4: a connection whose
    /// transport closes after this was closed cleanly).
    pub fn is_close_handshake_complete(&self) -> bool {
        self.sent_close.is_some() && self.received_close.is_some() && !self.close_owed
    }

    /// The earliest deadline at which [`handle_timeout`](Self::handle_timeout) has work, if
    /// any timer is armed.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.transport == Transport::Closed {
            return None;
        }
        self.timers.next()
    }

    /// Acts on every deadline at or before `now`. Safe to call early, late or twice: a call
    /// with nothing due does nothing.
    ///
    /// Returns the failure when a deadline means the peer failed (handshake, close, pong or
    /// idle timeout); what that queued (a close frame, the transport's close) is owed to
    /// [`poll_transmit`](Self::poll_transmit).
    pub fn handle_timeout(&mut self, now: Instant) -> Result<(), Error> {
        while let Some(timer) = self.timers.take_expired(now) {
            match timer {
                Timer::Handshake => {
                    if matches!(self.phase, Phase::AwaitRequest(_) | Phase::AwaitResponse(..)) {
                        return Err(self.fail(ErrorKind::HandshakeTimeout, now));
                    }
                }
                Timer::Close => {
                    self.transport_close_due();
                    if !self.is_close_handshake_complete() && !self.failed {
                        return Err(Error::new(ErrorKind::CloseTimeout, Reply::Nothing));
                    }
                }
                Timer::Keepalive => {
                    if self.state() == State::Open {
                        self.pings_sent = self.pings_sent.wrapping_add(1);
                        self.ping_owed = true;
                        self.timers.set(Timer::Pong, now + self.config.pong_timeout);
                    }
                }
                Timer::Pong => return Err(self.fail(ErrorKind::PongTimeout, now)),
                Timer::Idle => {
                    // Idleness is this end's policy, not the peer's fault: close politely
                    // (1001, going away) and let the closing handshake run its course.
                    if self.state() == State::Open {
                        let code = CloseCode::GOING_AWAY;
                        self.begin_close(CloseFrame::code_only(code), true, now);
                        return Err(Error::new(ErrorKind::IdleTimeout, Reply::Close(code)));
                    }
                }
            }
        }
        Ok(())
    }

    /// Tells the machine the transport's read side ended (TCP FIN, or the stream closed).
    ///
    /// `Ok` when that was expected: the peer's close frame had arrived (so the connection's
    /// close code is known, RFC 6455 §7.1.5), or the connection had already ended. Otherwise the connection ended abnormally (RFC 6455 §7.1.5: 1006),
    /// never cleanly, and the error says so. Either way the connection is now closed; drain
    /// [`poll_transmit`](Self::poll_transmit) once more to learn to close the transport.
    pub fn receive_eof(&mut self) -> Result<(), Error> {
        let expected = self.transport != Transport::Open
            || self.failed
            || matches!(self.phase, Phase::Ended)
            || self.received_close.is_some();
        self.transport = Transport::Closed;
        self.timers.stop_all();
        self.discard_owed();
        if expected {
            Ok(())
        } else {
            Err(Error::new(ErrorKind::AbnormalClosure, Reply::Nothing))
        }
    }

    /// Fails the connection because of `kind` (RFC 6455 §7.1.7): queues the reply the RFC
    /// asks for, stops reading, and arranges the transport's close.
    fn fail(&mut self, kind: ErrorKind, now: Instant) -> Error {
        self.failed = true;
        self.frame = None;
        self.message = None;
        let reply = match self.phase {
            Phase::AwaitRequest(_) | Phase::AwaitDecision(_) => {
                self.phase = Phase::Ended;
                if kind == ErrorKind::HandshakeTimeout {
                    Reply::Nothing
                } else {
                    let status = handshake::status_for(kind);
                    self.owed.set_static(handshake::error_response(status));
                    Reply::Http(status)
                }
            }
            Phase::AwaitResponse(..) | Phase::Ended => {
                self.phase = Phase::Ended;
                self.discard_owed();
                Reply::Nothing
            }
            Phase::Open => match close_code_for(kind) {
                Some(code) if self.sent_close.is_none() => {
                    self.pong_owed = None;
                    self.begin_close(CloseFrame::code_only(code), true, now);
                    Reply::Close(code)
                }
                _ => {
                    // The peer is unresponsive or gone, or a close was already sent: nothing
                    // more to say, so nothing stands between us and the transport's close.
                    self.transport_close_due();
                    Reply::Nothing
                }
            },
        };
        // RFC 6455 §7.1.7 via §7.1.1: when failing, the server closes the transport as soon as
        // its reply is out; a client waits for the server to close (up to the close deadline),
        // except during the opening handshake, where there is no WebSocket yet to close.
        if self.role == Role::Server || !matches!(self.phase, Phase::Open) {
            self.transport_close_due();
        }
        Error::new(kind, reply)
    }

    /// Records `frame` as the close this end sends: no data or keepalive ping may follow it,
    /// the liveness timers stop, and the closing handshake's deadline starts. `queued` when
    /// the frame is owed to `poll_transmit` rather than already written by a command.
    fn begin_close(&mut self, frame: CloseFrame, queued: bool, now: Instant) {
        self.sent_close = Some(slot(frame));
        self.close_owed = queued;
        self.ping_owed = false;
        for timer in [Timer::Keepalive, Timer::Pong, Timer::Idle] {
            self.timers.stop(timer);
        }
        self.arm_close_timer(now);
    }

    fn transport_close_due(&mut self) {
        if self.transport == Transport::Open {
            self.transport = Transport::CloseDue;
        }
    }

    fn discard_owed(&mut self) {
        self.owed.clear();
        self.pong_owed = None;
        self.ping_owed = false;
        self.close_owed = false;
    }

    fn arm_handshake_timer(&mut self, now: Instant) {
        if let Some(timeout) = self.config.handshake_timeout {
            self.timers.set(Timer::Handshake, now + timeout);
        }
    }

    fn arm_close_timer(&mut self, now: Instant) {
        if self.timers.get(Timer::Close).is_none() {
            if let Some(timeout) = self.config.close_timeout {
                self.timers.set(Timer::Close, now + timeout);
            }
        }
    }

    /// The handshake is done: frames may flow, and the liveness timers start.
    fn start_open(&mut self, now: Instant) {
        self.phase = Phase::Open;
        self.timers.stop(Timer::Handshake);
        self.saw_traffic(now);
    }

    /// Something arrived from the peer: it is alive, so the idle and keepalive clocks restart.
    fn saw_traffic(&mut self, now: Instant) {
        if let Some(idle) = self.config.idle_timeout {
            self.timers.set(Timer::Idle, now + idle);
        }
        if let Some(interval) = self.config.keepalive_interval {
            if self.timers.get(Timer::Pong).is_none() {
                self.timers.set(Timer::Keepalive, now + interval);
            }
        }
    }
}

/// The close code RFC 6455 §7.4.1 asks for when failing because of `kind`, or `None` when no
/// close frame should be sent (the peer is unresponsive or gone).
fn close_code_for(kind: ErrorKind) -> Option<CloseCode> {
    Some(match kind {
        ErrorKind::InvalidUtf8 => CloseCode::INVALID_PAYLOAD,
        #[cfg(feature = "deflate")]
        ErrorKind::InflateFailed => CloseCode::INVALID_PAYLOAD,
        #[cfg(feature = "deflate")]
        ErrorKind::NoInflateSpace => CloseCode::INTERNAL_ERROR,
        ErrorKind::FrameTooLarge { .. }
        | ErrorKind::MessageTooLarge { .. }
        | ErrorKind::TooManyFragments { .. } => CloseCode::MESSAGE_TOO_BIG,
        ErrorKind::IdleTimeout => CloseCode::GOING_AWAY,
        ErrorKind::PongTimeout
        | ErrorKind::CloseTimeout
        | ErrorKind::AbnormalClosure
        | ErrorKind::HandshakeTimeout => return None,
        _ => CloseCode::PROTOCOL_ERROR,
    })
}
