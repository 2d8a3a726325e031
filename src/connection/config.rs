//! Limits and timers, as configuration with safe defaults.

use crate::time::Duration;

/// How a [`Connection`](crate::Connection) behaves: its limits, its timers and the size of the
/// caller's receive buffer. Build it with [`Config::new`] (or `Default`) and the setters.
///
/// The defaults are safe for a server facing untrusted clients; each setter says more.
///
/// | setting | default | why |
/// |---|---|---|
/// | [`max_frame_size`](Self::max_frame_size) | 1 MiB | what one peer can make the receiver hold or stream through a single frame; ample for chat and RPC messages, far below memory |
/// | [`max_message_size`](Self::max_message_size) | 1 MiB | the same bound on a fragmented message, so fragmenting cannot get around it |
/// | [`max_fragments`](Self::max_fragments) | 4,096 | bounds the events and work tiny fragments can cause per message |
/// | [`max_head_size`](Self::max_head_size) | 16 KiB | larger than any browser's upgrade request (cookies included), small enough to refuse header floods with 431 |
/// | [`max_headers`](Self::max_headers) | 128 | browsers send about 15; bounds the parsing work |
/// | [`receive_buffer_size`](Self::receive_buffer_size) | 64 KiB | frames up to it arrive whole (zero-copy); larger ones stream through in pieces |
/// | [`auto_pong`](Self::auto_pong) | on | RFC 6455 §5.5.2 requires the pong; the library owes it, not the application |
/// | [`handshake_timeout`](Self::handshake_timeout) | 10 s | a peer that opens a connection and sends nothing (slowloris) is dropped; a real handshake takes milliseconds |
/// | [`close_timeout`](Self::close_timeout) | 10 s | a peer that never answers a close cannot hold the connection open |
/// | [`keepalive_interval`](Self::keepalive_interval) | 20 s | a peer that vanished (or an attacker that opens connections and then stays silent) is found and its connection freed: a silent connection is pinged after 20 s and closed 20 s later without a pong, so it is gone within 40 s plus the close deadline. A ping costs 2 bytes each way per 20 s of silence. As Python websockets (20 s / 20 s) |
/// | [`pong_timeout`](Self::pong_timeout) | 20 s | time for the peer to answer a keepalive ping, generous for slow mobile links |
/// | [`idle_timeout`](Self::idle_timeout) | off | whether silence is acceptable is the application's policy |
/// | [`send_queue`](Self::send_queue) | 2 MiB, then close with 1008 | what a reader that stops reading can make the sender hold: more than one largest message, far below memory |
/// | `deflate` (feature `deflate`) | on, see [`DeflateConfig`](crate::DeflateConfig) | every browser offers permessage-deflate; the defaults keep an idle connection's cost small |
#[derive(Clone, Debug, Eq, PartialEq)]
pub struct Config {
    pub(crate) max_frame_size: u64,
    pub(crate) max_message_size: u64,
    pub(crate) max_fragments: u32,
    pub(crate) max_head_size: usize,
    pub(crate) max_headers: usize,
    pub(crate) receive_buffer_size: usize,
    pub(crate) auto_pong: bool,
    pub(crate) handshake_timeout: Option<Duration>,
    pub(crate) close_timeout: Option<Duration>,
    pub(crate) keepalive_interval: Option<Duration>,
    pub(crate) pong_timeout: Duration,
    pub(crate) idle_timeout: Option<Duration>,
    pub(crate) send_queue_limit: usize,
    pub(crate) send_queue_full: SendQueueFull,
    #[cfg(feature = "deflate")]
    pub(crate) deflate: crate::handshake::DeflateConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self::new()
    }
}

/// What happens to a message offered without waiting (a broadcast's `try_send`) when the
/// connection's send queue is full: the peer reads more slowly than messages come.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
#[non_exhaustive]
pub enum SendQueueFull {
    /// The message is dropped for this peer (the sender is told); the connection stays open.
    /// For feeds where a newer message supersedes an older one.
    Drop,
    /// The connection is closed with 1008 (policy violation) and what was still waiting to
    /// be taken is dropped, so a peer never misses a message without knowing it. The default.
    Close,
}

/// The smallest receive buffer the machine accepts: a whole control frame (125 bytes of
/// payload and a 14-byte header) must fit.
pub const MIN_RECEIVE_BUFFER: usize = 256;

impl Config {
    /// What each frame of a fragmented message after its first is charged against
    /// [`max_message_size`](Self::max_message_size), on top of its payload: 16 bytes, no less
    /// than the longest frame header (14 bytes), so that splitting a message into tiny (or
    /// empty) fragments cannot make it cost more than the limit says.
    pub const FRAGMENT_OVERHEAD: u64 = 16;

    /// The default configuration.
    pub const fn new() -> Self {
        Self {
            max_frame_size: 1 << 20,
            max_message_size: 1 << 20,
            max_fragments: 4096,
            max_head_size: 16 * 1024,
            max_headers: 128,
            receive_buffer_size: 64 * 1024,
            auto_pong: true,
            handshake_timeout: Some(Duration::from_secs(10)),
            close_timeout: Some(Duration::from_secs(10)),
            keepalive_interval: Some(Duration::from_secs(20)),
            pong_timeout: Duration::from_secs(20),
            idle_timeout: None,
            send_queue_limit: 2 << 20,
            send_queue_full: SendQueueFull::Close,
            #[cfg(feature = "deflate")]
            deflate: crate::handshake::DeflateConfig::new(),
        }
    }

    /// The largest payload one received frame may declare. A frame over it is refused from its
    /// header, before any of its payload is buffered, with 1009 (message too big). Control
    /// frames are exempt: RFC 6455 §5.5 caps them at 125 bytes, and a close frame must stay
    /// readable under any limit.
    pub const fn max_frame_size(mut self, bytes: u64) -> Self {
        self.max_frame_size = bytes;
        self
    }

    /// The largest received message, summed over its fragments; refused with 1009 from the
    /// header of the frame that would cross it.
    ///
    /// Every frame of a fragmented message after its first is charged
    /// [`FRAGMENT_OVERHEAD`](Self::FRAGMENT_OVERHEAD) bytes on top of its payload, so the
    /// limit bounds what a message costs to receive however finely the peer splits it: a
    /// frame header is at most 14 bytes, so the wire bytes (and work, and events) of one
    /// message stay under the limit plus one header, and a message has at most
    /// `limit / 16 + 1` frames, even with [`max_fragments`](Self::max_fragments) raised. A
    /// message sent in one frame is charged its payload alone. (A peer that splits an
    /// `n`-byte message into `k` frames needs a limit of at least `n + 16 * (k - 1)`.)
    pub const fn max_message_size(mut self, bytes: u64) -> Self {
        self.max_message_size = bytes;
        self
    }

    /// The most frames one received message may be split into (at least 1); refused with
    /// 1009 from the header of the frame that would cross it. Bounds the work and events a
    /// peer can cause with tiny fragments.
    pub const fn max_fragments(mut self, frames: u32) -> Self {
        self.max_fragments = if frames == 0 { 1 } else { frames };
        self
    }

    /// The largest opening-handshake head (request or response line plus headers), in bytes.
    /// A server answers a larger one with 431. The head must also fit the receive buffer.
    pub const fn max_head_size(mut self, bytes: usize) -> Self {
        self.max_head_size = bytes;
        self
    }

    /// The most header lines an opening-handshake head may carry. A server answers more with
    /// 431.
    pub const fn max_headers(mut self, headers: usize) -> Self {
        self.max_headers = headers;
        self
    }

    /// The capacity of the buffer the caller reads into and passes to
    /// [`receive`](crate::Connection::receive) (at least [`MIN_RECEIVE_BUFFER`]).
    ///
    /// A frame whose header and payload fit in it is handed out whole, once all its bytes are
    /// in the input; a larger frame is handed out in pieces as its bytes arrive, so a message
    /// of any size passes through a fixed buffer. The caller must move unconsumed bytes to the
    /// front of its buffer before reading more, so that a frame that fits can be completed.
    pub const fn receive_buffer_size(mut self, bytes: usize) -> Self {
        self.receive_buffer_size =
            if bytes < MIN_RECEIVE_BUFFER { MIN_RECEIVE_BUFFER } else { bytes };
        self
    }

    /// Whether a received ping is answered with a pong automatically (the default). When off,
    /// the application answers with [`send_pong`](crate::Connection::send_pong).
    pub const fn auto_pong(mut self, on: bool) -> Self {
        self.auto_pong = on;
        self
    }

    /// The deadline for the opening handshake, from the connection's creation: a server that
    /// has not received a whole request, or a client that has not received the response, by
    /// then fails with [`ErrorKind::HandshakeTimeout`](crate::ErrorKind::HandshakeTimeout).
    /// 10 s by default; `None` turns it off (for a handshake done elsewhere it never runs).
    pub const fn handshake_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.handshake_timeout = timeout;
        self
    }

    /// The deadline for the closing handshake, from the moment a close frame is sent or
    /// received: past it, the transport is closed regardless (10 s by default).
    pub const fn close_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.close_timeout = timeout;
        self
    }

    /// Send a keepalive ping after this long without receiving anything (20 s by default;
    /// `None` turns keepalive off). A peer that does not answer within
    /// [`pong_timeout`](Self::pong_timeout) is declared dead: the connection fails with
    /// [`ErrorKind::PongTimeout`](crate::ErrorKind::PongTimeout).
    pub const fn keepalive_interval(mut self, interval: Option<Duration>) -> Self {
        self.keepalive_interval = interval;
        self
    }

    /// How long the peer has to answer a keepalive ping (20 s by default).
    pub const fn pong_timeout(mut self, timeout: Duration) -> Self {
        self.pong_timeout = timeout;
        self
    }

    /// Close the connection (code 1001, going away) after this long without receiving
    /// anything. Off by default.
    pub const fn idle_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.idle_timeout = timeout;
        self
    }

    /// The most bytes of outgoing messages a connection holds for a peer that reads
    /// slowly, and what a sender that does not wait gets past it. It bounds the queue of a
    /// split connection's [`WriteHalf`](crate::tokio::WriteHalf): `try_send` applies `full`
    /// (drop the message, or close the connection with 1008), while `send` waits for room.
    /// A message is always taken into an empty queue, so the bound is this limit plus one
    /// message. Frames shared by a broadcast count in full, though they are not copied.
    pub const fn send_queue(mut self, limit: usize, full: SendQueueFull) -> Self {
        self.send_queue_limit = limit;
        self.send_queue_full = full;
        self
    }

    /// The send queue's limit, in bytes (see [`send_queue`](Self::send_queue)).
    pub const fn send_queue_limit(&self) -> usize {
        self.send_queue_limit
    }

    /// What a sender that does not wait gets once the send queue is full.
    pub const fn send_queue_full(&self) -> SendQueueFull {
        self.send_queue_full
    }

    /// permessage-deflate (RFC 7692) policy and settings: whether it is offered, accepted or
    /// required, and with which windows, context takeover, threshold and level. On by
    /// default with the `deflate` feature; see [`DeflateConfig`](crate::DeflateConfig).
    #[cfg(feature = "deflate")]
    pub const fn deflate(mut self, deflate: crate::handshake::DeflateConfig) -> Self {
        self.deflate = deflate;
        self
    }
}
