//! What the fuzz targets share: a counting global allocator (live bytes and peak), a driver
//! that feeds bytes through a fixed receive buffer in chunk sizes taken from the input, and
//! the checks every frame-level target applies to what a [`Connection`] says.
//!
//! The targets assert behaviour, not only the absence of panics; each assertion message
//! names the invariant it checks.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use wsmachine::frame::{apply_mask, FrameHeader, Opcode};
use wsmachine::{
    CloseCode, Config, Connection, DeflateConfig, Error, ErrorKind, Event, Instant, Message,
    MessageKind, RecvBuffer, Role, State, Transmit,
};

// ---- The counting allocator ----

/// Wraps the system allocator and counts the bytes the Rust code holds (libFuzzer's own C++
/// allocations do not go through it).
pub struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn grew(by: usize) {
    let live = LIVE.fetch_add(by, Ordering::Relaxed) + by;
    PEAK.fetch_max(live, Ordering::Relaxed);
}

fn shrank(by: usize) {
    LIVE.fetch_sub(by, Ordering::Relaxed);
}

// SAFETY: every call is forwarded to `System` unchanged; the counters only observe sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract for `alloc` is passed on as is.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as for `alloc`.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as for `alloc`; `ptr` came from `System` through this allocator.
        unsafe { System.dealloc(ptr, layout) };
        shrank(layout.size());
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: as for `dealloc`.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            if new_size >= layout.size() {
                grew(new_size - layout.size());
            } else {
                shrank(layout.size() - new_size);
            }
        }
        p
    }
}

/// Bytes currently allocated through the global allocator.
pub fn live_bytes() -> usize {
    LIVE.load(Ordering::Relaxed)
}

/// A measurement of the heap from a starting point: what was live then is the baseline, and
/// the peak above it is what the code run since then held at most.
pub struct HeapWatch {
    baseline: usize,
}

impl HeapWatch {
    /// Starts measuring now: the peak is reset to the live bytes.
    pub fn start() -> Self {
        let baseline = live_bytes();
        PEAK.store(baseline, Ordering::Relaxed);
        Self { baseline }
    }

    /// The most bytes held above the baseline since [`start`](Self::start).
    pub fn peak_above_baseline(&self) -> usize {
        PEAK.load(Ordering::Relaxed).saturating_sub(self.baseline)
    }

    /// Fails the run if more than `bound` bytes were held above the baseline.
    pub fn assert_within(&self, bound: usize, what: &str) {
        let peak = self.peak_above_baseline();
        assert!(peak <= bound, "bounded memory: {what} held {peak} bytes, bound {bound}");
    }
}

/// The heap the core may hold while receiving frames, beyond anything proportional to a
/// limit: the queue of owed bytes, which holds at most one pong, one close and one keepalive
/// ping (each at most 14 + 125 bytes, so 417 bytes), with `Vec`'s growth rounding that up to
/// 512 bytes of capacity; the two close frames once the connection closes (128 bytes each,
/// kept on the heap so an idle connection is smaller); and a client's masking-key stream
/// (120 bytes, allocated when the connection is made). Nothing else on the frame path
/// allocates.
pub const FRAME_PATH_HEAP: usize = 512 + 2 * 128 + 128;

/// The heap a connection that negotiated permessage-deflate may hold on top of
/// [`FRAME_PATH_HEAP`] while receiving: the boxed codec (under 256 bytes), zlib-rs's
/// decompressor (its state and a 32 KiB window in one allocation of 47 KiB), and the copy
/// of the peer's window kept for context takeover (at most 32 KiB). Inflated bytes go to
/// the caller's inflate space, never to the heap.
pub const INFLATE_HEAP: usize = 80 * 1024;

/// The heap parsing one opening-handshake head may hold: two header tables (httparse's and
/// the crate's, 32 bytes a slot each) of at most `max_headers` slots, and the offered
/// subprotocols copied out of a head of at most `head_limit` bytes, plus a fixed 1 KiB for the
/// client's own offer (its extension names) and small vectors' rounding.
pub fn handshake_heap_bound(max_headers: usize, head_limit: usize) -> usize {
    let slots = max_headers.min(head_limit / 3 + 1);
    2 * 32 * slots + 2 * head_limit + 1024
}

// ---- Reading the input ----

/// Takes values from the front of the fuzzer's input; once it is used up, every value is 0.
pub struct Input<'a> {
    bytes: &'a [u8],
}

impl<'a> Input<'a> {
    /// Reads `bytes` from the front.
    pub fn new(bytes: &'a [u8]) -> Self {
        Self { bytes }
    }

    /// The next byte.
    pub fn byte(&mut self) -> u8 {
        match self.bytes.split_first() {
            Some((&b, rest)) => {
                self.bytes = rest;
                b
            }
            None => 0,
        }
    }

    /// The next byte, as an index into `choices`.
    pub fn choose<T: Copy>(&mut self, choices: &[T]) -> T {
        choices[usize::from(self.byte()) % choices.len()]
    }

    /// Up to `max` bytes from the front.
    pub fn take(&mut self, max: usize) -> &'a [u8] {
        let (head, rest) = self.bytes.split_at(max.min(self.bytes.len()));
        self.bytes = rest;
        head
    }

    /// Everything left.
    pub fn rest(&mut self) -> &'a [u8] {
        core::mem::take(&mut self.bytes)
    }
}

/// Read sizes, cycled: how many bytes each simulated read delivers (at least 1).
pub struct Chunks {
    sizes: Vec<usize>,
    next: usize,
}

impl Chunks {
    /// Reads a count and that many sizes from `input`. Sizes come from a table weighted to
    /// small reads (1 byte at a time, header-sized, a frame or two) and a few large ones.
    pub fn from_input(input: &mut Input<'_>) -> Self {
        const TABLE: [usize; 16] =
            [1, 1, 2, 3, 5, 7, 13, 64, 100, 127, 130, 255, 1000, 4096, 65536, usize::MAX];
        let count = usize::from(input.byte() % 8) + 1;
        let sizes = (0..count).map(|_| input.choose(&TABLE)).collect();
        Self { sizes, next: 0 }
    }

    /// The next read size.
    pub fn next_size(&mut self) -> usize {
        let size = self.sizes[self.next % self.sizes.len()];
        self.next += 1;
        size
    }
}

/// The bytes a peer sends, delivered through a receive buffer of the configured capacity as a
/// driver would: it reads at most a chunk into the free space at the end, hands the unread
/// bytes to `receive`, drops what was consumed and moves the rest to the front.
pub struct Feed<'a> {
    stream: &'a [u8],
    fed: usize,
    chunks: Chunks,
    /// The receive buffer.
    pub input: RecvBuffer<Vec<u8>>,
    /// Room to inflate compressed messages into (empty: none).
    pub space: Vec<u8>,
}

impl<'a> Feed<'a> {
    /// A feed of `stream` through a buffer of `capacity` bytes.
    pub fn new(stream: &'a [u8], chunks: Chunks, capacity: usize) -> Self {
        Self {
            stream,
            fed: 0,
            chunks,
            input: RecvBuffer::new(vec![0; capacity]),
            space: Vec::new(),
        }
    }

    /// The same, with `capacity` bytes of inflate space (permessage-deflate).
    pub fn with_inflate_space(stream: &'a [u8], chunks: Chunks, capacity: usize) -> Self {
        Self { space: vec![0; capacity], ..Self::new(stream, chunks, capacity) }
    }

    /// The unconsumed bytes and the inflate space, for `Connection::receive_with`.
    pub fn parts(&mut self) -> (&mut [u8], &mut [u8]) {
        (self.input.unconsumed_mut(), &mut self.space)
    }

    /// How many bytes are unconsumed.
    pub fn len(&self) -> usize {
        self.input.len()
    }

    /// The unconsumed bytes.
    pub fn pending(&mut self) -> &mut [u8] {
        self.input.unconsumed_mut()
    }

    /// Drops `n` consumed bytes from the front; the connection needs `needed` more.
    pub fn consume(&mut self, n: usize, needed: usize) {
        assert!(n <= self.input.len(), "consumed ≤ input length");
        self.input.consume(n, needed);
    }

    /// Reads the next chunk, making room as the buffer's rules say. Returns how many bytes
    /// were read: 0 when the stream is used up or the buffer is full.
    pub fn read(&mut self) -> usize {
        let end = self.stream.len().min(self.fed.saturating_add(self.chunks.next_size()));
        let n = self.input.push(&self.stream[self.fed..end]);
        self.fed += n;
        n
    }

    /// Whether every byte of the stream was read into the buffer.
    pub fn stream_done(&self) -> bool {
        self.fed == self.stream.len()
    }

    /// Whether the buffer has no free space.
    pub fn is_full(&self) -> bool {
        self.input.len() == self.input.capacity()
    }
}

// ---- What the connection owes ----

/// Drains everything `conn` owes into `bytes` (cleared first), through a small output buffer
/// so owed bytes that do not fit must come out over several calls. Returns whether it asked
/// for the transport's close (which must come last).
pub fn drain_into(conn: &mut Connection, bytes: &mut Vec<u8>) -> bool {
    let mut out = [0u8; 97];
    let mut close_transport = false;
    let mut calls = 0;
    bytes.clear();
    while let Some(t) = conn.poll_transmit(&mut out) {
        calls += 1;
        assert!(calls < 10_000, "poll_transmit terminates");
        assert!(!close_transport, "nothing comes after CloseTransport");
        match t {
            Transmit::Bytes(n) => {
                assert!(n > 0 && n <= out.len(), "Transmit::Bytes is within the buffer");
                bytes.extend_from_slice(&out[..n]);
            }
            Transmit::CloseTransport => close_transport = true,
        }
    }
    if close_transport {
        assert_eq!(conn.state(), State::Closed, "closed after CloseTransport");
        assert!(conn.poll_timeout().is_none(), "no timer after the transport's close");
    }
    close_transport
}

/// Parses `bytes` as whole control frames sent by an endpoint of `role` and calls `f` with
/// each opcode and unmasked payload: every frame must be well formed, masked exactly when a
/// client sent it, and the bytes must end on a frame boundary. Allocates nothing.
pub fn for_each_sent_control(bytes: &[u8], role: Role, mut f: impl FnMut(Opcode, &[u8])) {
    let mut at = 0;
    while at < bytes.len() {
        let (header, n) = FrameHeader::parse(&bytes[at..])
            .expect("sent frames are valid")
            .expect("sent frames are whole");
        assert_eq!(header.rsv, 0, "no RSV bits are sent");
        assert_eq!(header.mask.is_some(), role == Role::Client, "a client masks, a server not");
        assert!(header.opcode.is_control() && header.fin, "owed frames are control frames");
        let len = header.payload_len as usize;
        let end = at + n + len;
        assert!(end <= bytes.len(), "sent frames are whole");
        let mut payload = [0u8; 125];
        payload[..len].copy_from_slice(&bytes[at + n..end]);
        if let Some(key) = header.mask {
            apply_mask(&mut payload[..len], key, 0);
        }
        f(header.opcode, &payload[..len]);
        at = end;
    }
}

/// The close code RFC 6455 §7.4.1 asks for when a peer's frames fail the connection with
/// `kind` (the crate's documented mapping): 1007 for invalid UTF-8, 1009 for size limits,
/// 1002 for any other protocol violation.
pub fn expected_close_code(kind: ErrorKind) -> CloseCode {
    match kind {
        ErrorKind::InvalidUtf8 | ErrorKind::InflateFailed => CloseCode::INVALID_PAYLOAD,
        ErrorKind::FrameTooLarge { .. }
        | ErrorKind::MessageTooLarge { .. }
        | ErrorKind::TooManyFragments { .. } => CloseCode::MESSAGE_TOO_BIG,
        ErrorKind::ReservedBits
        | ErrorKind::ReservedOpcode(_)
        | ErrorKind::UnmaskedFrame
        | ErrorKind::MaskedFrame
        | ErrorKind::LengthOutOfRange
        | ErrorKind::ControlFrameTooLong
        | ErrorKind::FragmentedControlFrame
        | ErrorKind::UnexpectedContinuation
        | ErrorKind::ExpectedContinuation
        | ErrorKind::InvalidCloseCode(_)
        | ErrorKind::OneByteClosePayload => CloseCode::PROTOCOL_ERROR,
        other => panic!("documented errors: {other:?} cannot come from received frames"),
    }
}

/// Where an HTTP head ends (just past its first blank line) in an input that only grows until
/// the head is whole: each call searches only the new bytes and the three before them, so the
/// check stays linear.
#[derive(Default)]
pub struct BlankLineSearch {
    searched: usize,
}

impl BlankLineSearch {
    /// The head's length, if `pending` holds a blank line.
    pub fn end_of_head(&mut self, pending: &[u8]) -> Option<usize> {
        let from = self.searched.saturating_sub(3).min(pending.len());
        self.searched = pending.len();
        pending[from..].windows(4).position(|w| w == b"\r\n\r\n").map(|i| from + i + 4)
    }
}

/// The invariants of a handshake still waiting for its head: nothing consumed, more bytes
/// wanted, only while under the head limit, and only while no blank line has arrived.
pub fn assert_waiting_for_head(
    consumed: usize,
    needed: usize,
    input_len: usize,
    limit: usize,
    blank_line: Option<usize>,
) {
    assert_eq!(consumed, 0, "nothing is consumed before the head is whole");
    assert!(needed >= 1, "more bytes are needed");
    assert!(input_len < limit, "more bytes are wanted only under the limit");
    assert!(blank_line.is_none(), "a whole head is never left waiting");
}

/// The HTTP status a server answers a failed upgrade request with (the crate's documented
/// mapping).
pub fn expected_http_status(kind: ErrorKind) -> u16 {
    match kind {
        ErrorKind::MethodNotGet => 405,
        ErrorKind::UnsupportedVersion => 426,
        ErrorKind::HeadTooLarge { .. } | ErrorKind::TooManyHeaders { .. } => 431,
        ErrorKind::MalformedHttp
        | ErrorKind::HttpVersion
        | ErrorKind::MissingHost
        | ErrorKind::DuplicateHeader(_)
        | ErrorKind::MissingUpgrade
        | ErrorKind::MissingConnectionUpgrade
        | ErrorKind::InvalidKey => 400,
        other => panic!("documented errors: {other:?} cannot come from an upgrade request"),
    }
}

// ---- Checking a connection that receives frames ----

/// The limits a frame-level target runs with, taken from the input: small enough that the
/// fuzzer can cross them, and a receive buffer small enough that frames come out in pieces.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// `Config::receive_buffer_size`.
    pub buffer: usize,
    /// `Config::max_frame_size`.
    pub frame: u64,
    /// `Config::max_message_size`.
    pub message: u64,
    /// `Config::max_fragments`.
    pub fragments: u32,
    /// `Config::auto_pong`.
    pub auto_pong: bool,
}

impl Limits {
    /// Reads limits from the input.
    pub fn from_input(input: &mut Input<'_>) -> Self {
        Self {
            buffer: input.choose(&[256usize, 300, 1024, 4096]),
            frame: input.choose(&[0u64, 1, 125, 126, 200, 1000, 4096, 1 << 20]),
            message: input.choose(&[0u64, 1, 100, 300, 1000, 5000, 1 << 16, 1 << 20]),
            fragments: input.choose(&[1u32, 2, 3, 16, 4096, u32::MAX]),
            auto_pong: input.byte() & 1 == 0,
        }
    }

    /// The configuration with these limits (compression off: the targets that fuzz it say
    /// so with [`deflate`](Config::deflate)).
    pub fn config(&self) -> Config {
        Config::new()
            .deflate(DeflateConfig::off())
            .receive_buffer_size(self.buffer)
            .max_frame_size(self.frame)
            .max_message_size(self.message)
            .max_fragments(self.fragments)
            .auto_pong(self.auto_pong)
    }
}

/// Follows what a connection reports while it receives frames, and checks it against the
/// rules its documentation states. It allocates only in [`new`](Self::new), so that what the
/// heap holds during a run is the connection's.
pub struct FrameChecker {
    role: Role,
    limits: Limits,
    /// The kind of the fragmented message being received, if one is.
    message: Option<MessageKind>,
    /// Its bytes so far (capacity reserved up front).
    message_bytes: Vec<u8>,
    /// The latest ping since the last drain, whose pong is owed when pongs are automatic.
    ping: Option<([u8; 125], usize)>,
    /// Whether a close frame was received (nothing may follow it).
    closed: bool,
    /// The failure, once the connection failed (input is discarded after it).
    pub failed: Option<Error>,
    /// Whether this end has sent (queued) a close frame.
    sent_close: bool,
    /// Scratch space for drained bytes (capacity reserved up front).
    drained: Vec<u8>,
    /// Events seen.
    pub events: usize,
    /// Whether permessage-deflate was negotiated: a compressed message may inflate past the
    /// frame limit (which bounds its bytes on the wire), never past the message limit.
    pub compressed: bool,
}

impl FrameChecker {
    /// A checker for an open connection of `role` running with `limits`, for a stream of at
    /// most `stream_len` bytes (no message can be longer).
    pub fn new(role: Role, limits: Limits, stream_len: usize) -> Self {
        Self {
            role,
            limits,
            message: None,
            message_bytes: Vec::with_capacity(stream_len),
            ping: None,
            closed: false,
            failed: None,
            sent_close: false,
            drained: Vec::with_capacity(4096),
            events: 0,
            compressed: false,
        }
    }

    /// Whether the connection failed or received a close (so all input is now discarded).
    pub fn is_done(&self) -> bool {
        self.closed || self.failed.is_some()
    }

    /// Checks one `receive` call: `input_len` bytes were passed and `result` came back (as
    /// consumed, event, needed). Returns whether the call made progress.
    pub fn check_receive(
        &mut self,
        conn: &mut Connection,
        input_len: usize,
        result: Result<(usize, Option<Event<'_>>, usize), Error>,
    ) -> bool {
        let (consumed, event, needed) = match result {
            Ok(r) => r,
            Err(e) => {
                self.on_error(conn, e);
                return true;
            }
        };
        assert!(consumed <= input_len, "consumed ≤ input length");
        if self.is_done() {
            assert!(event.is_none(), "no event after a close or a failure");
            assert_eq!(consumed, input_len, "input after a close or a failure is discarded");
            return consumed > 0;
        }
        match event {
            Some(event) => {
                self.events += 1;
                self.on_event(conn, event);
                true
            }
            None if consumed > 0 => true,
            None => {
                assert!(needed >= 1, "no progress means more bytes are needed");
                assert!(
                    input_len + needed <= self.limits.buffer,
                    "the bytes needed fit the receive buffer ({input_len} + {needed})"
                );
                false
            }
        }
    }

    fn on_event(&mut self, conn: &mut Connection, event: Event<'_>) {
        let limits = self.limits;
        match event {
            Event::Message(message) => {
                assert!(self.message.is_none(), "no whole message inside a fragmented one");
                let len = match message {
                    Message::Text(text) => text.len(),
                    Message::Binary(data) => data.len(),
                };
                assert!(
                    self.compressed || len as u64 <= limits.frame,
                    "a message is within the frame limit"
                );
                assert!(len as u64 <= limits.message, "a message is within the message limit");
            }
            Event::Fragment(f) => {
                assert!(f.payload.len() <= limits.buffer, "a piece fits the receive buffer");
                assert!(
                    self.compressed || f.payload.len() as u64 <= limits.frame,
                    "a piece is within the frame limit"
                );
                match (self.message, f.is_first) {
                    (None, true) => {
                        self.message = Some(f.kind);
                        self.message_bytes.clear();
                    }
                    (Some(kind), false) => assert_eq!(kind, f.kind, "pieces share their kind"),
                    (None, false) => panic!("a message starts with is_first"),
                    (Some(_), true) => panic!("is_first only on a message's first piece"),
                }
                assert!(
                    self.message_bytes.len() + f.payload.len() <= self.message_bytes.capacity(),
                    "a message is no longer than the stream it came in"
                );
                self.message_bytes.extend_from_slice(f.payload);
                let len = self.message_bytes.len() as u64;
                assert!(len <= limits.message, "a message is within the message limit");
                if f.kind == MessageKind::Text {
                    // Every piece is validated as far as it goes: the bytes so far are UTF-8,
                    // or (before the last piece) end inside a code point that could still be
                    // completed.
                    if let Err(e) = std::str::from_utf8(&self.message_bytes) {
                        assert!(
                            e.error_len().is_none() && !f.is_last,
                            "text pieces concatenate to UTF-8"
                        );
                    }
                }
                if f.is_last {
                    self.message = None;
                }
            }
            Event::Ping(payload) => {
                assert!(payload.len() <= 125, "control payloads are at most 125 bytes");
                if limits.auto_pong {
                    let mut bytes = [0; 125];
                    bytes[..payload.len()].copy_from_slice(payload);
                    self.ping = Some((bytes, payload.len()));
                }
            }
            Event::Pong(payload) => assert!(payload.len() <= 125, "control payloads ≤ 125"),
            Event::Close(frame) => {
                assert!(
                    frame.code() == CloseCode::NO_STATUS || frame.code().is_sendable(),
                    "a received close code is valid"
                );
                assert_eq!(conn.received_close(), Some(&frame), "received_close is the event's");
                assert!(conn.sent_close().is_some(), "a received close is answered at once");
                assert_ne!(conn.state(), State::Open, "not open after a close");
                self.closed = true;
                self.message = None;
                // RFC 6455 §5.5.1: a close is answered; a pong owed before it is dropped.
                self.ping = None;
                self.sent_close = true;
            }
            Event::Request(_) | Event::Accepted(_) | Event::Rejected(_) => {
                panic!("no handshake event on an open connection")
            }
            _ => {}
        }
    }

    fn on_error(&mut self, conn: &mut Connection, e: Error) {
        assert!(self.failed.is_none() && !self.closed, "one error, and none after a close");
        let code = expected_close_code(e.kind());
        assert_eq!(e.http_status(), None, "no HTTP status once open");
        assert_ne!(conn.state(), State::Open, "not open after a failure");
        let mut drained = core::mem::take(&mut self.drained);
        let close_transport = drain_into(conn, &mut drained);
        let mut closes = 0;
        for_each_sent_control(&drained, self.role, |opcode, payload| match opcode {
            Opcode::Close => {
                closes += 1;
                assert_eq!(payload[..2], code.0.to_be_bytes(), "the close sent has the code");
            }
            other => panic!("only the close frame is owed after a failure, not {other:?}"),
        });
        self.drained = drained;
        assert_eq!(e.close_code(), Some(code), "the close code matches the error's kind");
        assert_eq!(closes, 1, "the failure's close frame is sent");
        // RFC 6455 §7.1.1: a failing server closes the transport once its close is out; a
        // failing client waits for the server to close it.
        assert_eq!(close_transport, self.role == Role::Server, "who closes TCP");
        self.failed = Some(e);
        self.sent_close = true;
        self.ping = None;
    }

    /// Drains what the connection owes and checks it: a pong echoes the latest ping (one is
    /// owed however many arrived), the close reply follows a received close, and nothing
    /// else is sent unasked.
    pub fn check_drain(&mut self, conn: &mut Connection) {
        let mut drained = core::mem::take(&mut self.drained);
        let close_transport = drain_into(conn, &mut drained);
        let (mut pongs, mut closes) = (0, 0);
        let ping = self.ping.take();
        for_each_sent_control(&drained, self.role, |opcode, payload| match opcode {
            Opcode::Pong => {
                pongs += 1;
                let (bytes, len) = ping.expect("a pong answers a ping");
                assert_eq!(payload, &bytes[..len], "the pong echoes the latest ping");
            }
            Opcode::Close => closes += 1,
            other => panic!("unasked frame {other:?} sent"),
        });
        self.drained = drained;
        assert!(pongs <= 1, "pongs are coalesced: at most one owed");
        if ping.is_some() && !self.sent_close {
            assert_eq!(pongs, 1, "a ping is answered");
        }
        assert!(closes <= 1 && (closes == 0 || self.closed), "a close is sent only in reply");
        if close_transport {
            assert!(self.is_done(), "the transport closes only after a close or a failure");
            assert_eq!(self.role, Role::Server, "only the server closes TCP first");
        }
    }
}

/// The time every target runs at (nothing here depends on time).
pub const NOW: Instant = Instant::from_millis(1_000);

/// Runs `feed` through `conn` with `checker` until the stream is used up, draining (and
/// checking) the owed bytes after every `drain_every`-th event (never, for 0) and at the end.
/// Checks that a full buffer always lets the machine progress.
pub fn run_frames(
    conn: &mut Connection,
    feed: &mut Feed<'_>,
    checker: &mut FrameChecker,
    drain_every: usize,
) {
    let mut calls = 0usize;
    loop {
        calls += 1;
        assert!(calls < 10_000_000, "terminates");
        let input_len = feed.len();
        let (input, space) = feed.parts();
        let result = conn.receive_with(input, space, NOW).map(|r| (r.consumed, r.event, r.needed));
        let (consumed, needed) = result.as_ref().map_or((0, 0), |r| (r.0, r.2));
        let progress = checker.check_receive(conn, input_len, result);
        feed.consume(consumed, needed);
        if progress {
            if drain_every != 0 && checker.events % drain_every == 0 {
                checker.check_drain(conn);
            }
            continue;
        }
        if feed.stream_done() {
            break;
        }
        assert!(!feed.is_full(), "a full receive buffer always lets the machine progress");
        feed.read();
    }
    checker.check_drain(conn);
}
