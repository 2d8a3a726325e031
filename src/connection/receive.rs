//! The receive path's frame assembly: [`Connection::receive`] routes input to the opening
//! handshake (`opening.rs`) or to frames; a frame's header is checked against the role's
//! rules, then its payload is unmasked and handed on whole (the zero-copy fast path) or in
//! pieces, through the message stage (`message.rs`) for data and `control.rs` for control
//! frames.

use super::{Connection, Event, Message, MessageKind, Phase, Received, Role, Transport};
use crate::error::{Error, ErrorKind};
use crate::time::Instant;
use crate::wire::frame::{apply_mask, FrameError, FrameHeader, Opcode};
use crate::wire::utf8;

/// Progress through the frame being received. Kept between calls so that nothing is parsed
/// or unmasked twice.
#[derive(Clone, Copy, Debug)]
pub(super) struct FrameProgress {
    pub(super) header: FrameHeader,
    pub(super) header_len: usize,
    /// How the frame is handed out.
    mode: Mode,
    /// Whole mode: how many payload bytes (after the unconsumed header in the input) are
    /// already unmasked and, for text, validated. Pieces mode: how many payload bytes were
    /// handed out (the header was consumed). Inflate mode: how many payload bytes the
    /// decompressor took (the header was consumed).
    pub(super) done: u64,
    /// Inflate mode: how many payload bytes are unmasked (some may wait in the input for
    /// room to inflate into).
    #[cfg(feature = "deflate")]
    pub(super) unmasked: u64,
}

/// A frame that is a whole message and wholly in the input, ready for the fast path.
#[derive(Clone, Copy, Debug)]
struct WholeMessage {
    kind: MessageKind,
    key: Option<[u8; 4]>,
    header_len: usize,
    /// Where the frame ends in the input.
    end: usize,
}

/// How a frame is handed out.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
enum Mode {
    /// The frame fits the receive buffer: wait until it is wholly in the input.
    Whole,
    /// The frame is larger than the receive buffer: hand out its payload as it arrives.
    Pieces,
    /// A frame of a compressed message: inflate its payload as it arrives
    /// (`message.rs`).
    #[cfg(feature = "deflate")]
    Inflate,
}

impl Connection {
    /// Hands the machine the bytes read from the transport: returns how many of them it used,
    /// and at most one [`Event`], which borrows `input`.
    ///
    /// Payload is unmasked in place, so `input` is `&mut`. Drop `consumed` bytes from the
    /// front of your buffer, and pass the rest again (unchanged, at the front, followed by any
    /// new bytes) on the next call ([`RecvBuffer`](crate::RecvBuffer) does all this).
    ///
    /// Guarantees a driver can build on:
    ///
    /// - With no event, the connection needs more input: whatever it consumed was used up
    ///   (a frame's header, or input discarded after a close or a failure), and calling
    ///   again before reading more bytes yields nothing new. Read at least
    ///   [`needed`](Received::needed) more bytes.
    /// - In the middle of a data frame handed out in pieces (a frame larger than the receive
    ///   buffer, whose header was consumed with its first piece), the call hands out the
    ///   bytes it is given, up to the frame's end, as one [`Fragment`](super::Fragment) whose
    ///   payload is those bytes, unmasked in place: `consumed` equals the piece's length and
    ///   the payload starts at the start of `input`. So a driver may read the rest of such a
    ///   frame straight into where it keeps the message ([`frame_remaining`](Self::frame_remaining)
    ///   says how much is left) and have it validated there.
    ///
    /// A frame that fits [`Config::receive_buffer_size`](crate::Config::receive_buffer_size)
    /// is handed out once it is whole (a text message as `&str`); a larger one in pieces as
    /// its bytes arrive. Text is validated as its bytes arrive, so invalid UTF-8 fails the
    /// connection (1007) without waiting for the rest of the frame.
    ///
    /// Returns an [`Error`] when the peer broke the protocol; the reply is then owed to
    /// [`poll_transmit`](Self::poll_transmit), and later input is discarded.
    ///
    /// With permessage-deflate negotiated (feature `deflate`), use
    /// [`receive_with`](Self::receive_with), which has room to inflate into.
    pub fn receive<'i>(
        &mut self,
        input: &'i mut [u8],
        now: Instant,
    ) -> Result<Received<'i>, Error> {
        self.receive_with(input, &mut [], now)
    }

    /// [`receive`](Self::receive), with `space` to inflate compressed messages into
    /// (permessage-deflate, feature `deflate`; without it `space` is never touched).
    ///
    /// Events of a compressed message borrow `space` instead of `input`: that is where its
    /// inflated bytes live. It comes out whole ([`Event::Message`]) when it fits `space`
    /// (give it [`Config::receive_buffer_size`](crate::Config::receive_buffer_size) bytes for
    /// the same rule as uncompressed messages), in pieces otherwise. As with `input`, pass
    /// the same `space`, unchanged, on every call: a message's inflated bytes gather there
    /// until it is handed out. Any length works; a longer one means fewer, larger pieces.
    /// A compressed frame is consumed as it is inflated, so it never needs to be whole in
    /// `input`; each byte is inflated straight into `space`, with no copy besides.
    ///
    /// A compressed message that arrives while `space` is empty fails the connection with
    /// [`ErrorKind::NoInflateSpace`](crate::ErrorKind::NoInflateSpace) (1011).
    pub fn receive_with<'i>(
        &mut self,
        input: &'i mut [u8],
        space: &'i mut [u8],
        now: Instant,
    ) -> Result<Received<'i>, Error> {
        let discard = Received { consumed: input.len(), event: None, needed: 0 };
        if self.transport == Transport::Closed || self.failed {
            return Ok(discard);
        }
        match self.phase {
            Phase::AwaitRequest(_) => self.receive_request(input, now),
            Phase::AwaitResponse(..) => self.receive_response(input, now),
            Phase::AwaitDecision(_) => Ok(Received::nothing(0)),
            Phase::Ended => Ok(discard),
            // RFC 6455 §5.5.1: after a close frame the peer sends nothing more; anything
            // that still arrives is dropped.
            Phase::Open if self.received_close.is_some() => Ok(discard),
            Phase::Open => {
                // Only bytes beyond those left unconsumed last time are new: re-presented bytes
                // must not keep a stalled peer looking alive.
                let len = input.len();
                if len > self.unconsumed {
                    self.saw_traffic(now);
                }
                if let Some(frame) = self.whole_message(input) {
                    let received = self.receive_whole_message(frame, input, now);
                    if received.is_ok() {
                        self.unconsumed = len - frame.end;
                    }
                    return received;
                }
                let received = self.receive_frame(input, space, now)?;
                self.unconsumed = len - received.consumed;
                Ok(received)
            }
        }
    }

    /// The fast path's test: whether `input` starts with a whole frame that is a whole
    /// message (FIN, text or binary, no RSV bits, masked as the role requires, within every
    /// limit and the receive buffer) while nothing else is in progress. Then the frame comes
    /// out exactly as through [`receive_frame`](Self::receive_frame), with the header checks
    /// done here at once; anything else, including every error, takes the general path.
    #[inline]
    fn whole_message(&self, input: &[u8]) -> Option<WholeMessage> {
        if self.frame.is_some() || self.message.is_some() {
            return None;
        }
        let [b0, b1, rest @ ..] = input else { return None };
        let kind = match b0 {
            0x81 => MessageKind::Text,
            0x82 => MessageKind::Binary,
            _ => return None,
        };
        let masked = b1 & 0x80 != 0;
        if masked != (self.role == Role::Server) {
            return None;
        }
        let (payload_len, ext) = match b1 & 0x7F {
            126 => match rest {
                [a, b, ..] => (u64::from(u16::from_be_bytes([*a, *b])), 2),
                _ => return None,
            },
            127 => match rest.get(..8) {
                Some(&[a, b, c, d, e, f, g, h]) => {
                    (u64::from_be_bytes([a, b, c, d, e, f, g, h]), 8)
                }
                _ => return None,
            },
            len => (u64::from(len), 0),
        };
        let key = if masked {
            match rest.get(ext..ext + 4) {
                Some(&[a, b, c, d]) => Some([a, b, c, d]),
                _ => return None,
            }
        } else {
            None
        };
        let header_len = 2 + ext + if masked { 4 } else { 0 };
        let config = &self.config;
        // A 64-bit length with its top bit set fails the last test, and so reaches the
        // general path's check.
        let total = (header_len as u64).saturating_add(payload_len);
        if payload_len > config.max_frame_size
            || payload_len > config.max_message_size
            || total > config.receive_buffer_size as u64
            || total > input.len() as u64
        {
            return None;
        }
        let end = total as usize;
        Some(WholeMessage { kind, key, header_len, end })
    }

    /// The fast path: unmasks and hands out a frame that [`whole_message`](Self::whole_message)
    /// found to be a whole message.
    #[inline]
    fn receive_whole_message<'i>(
        &mut self,
        frame: WholeMessage,
        input: &'i mut [u8],
        now: Instant,
    ) -> Result<Received<'i>, Error> {
        let payload = &mut input[frame.header_len..frame.end];
        if let Some(key) = frame.key {
            apply_mask(payload, key, 0);
        }
        let payload: &'i [u8] = payload;
        let message = match frame.kind {
            MessageKind::Binary => Message::Binary(payload),
            MessageKind::Text => match utf8::validate(payload) {
                Some(text) => Message::Text(text),
                None => return Err(self.fail(ErrorKind::InvalidUtf8, now)),
            },
        };
        Ok(Received::event(frame.end, Event::Message(message)))
    }

    fn receive_frame<'i>(
        &mut self,
        input: &'i mut [u8],
        #[cfg_attr(not(feature = "deflate"), allow(unused_variables))] space: &'i mut [u8],
        now: Instant,
    ) -> Result<Received<'i>, Error> {
        let (progress, fresh) = match self.frame.take() {
            Some(progress) => (progress, false),
            None => {
                let (header, header_len) = match FrameHeader::parse(input) {
                    Ok(Some(parsed)) => parsed,
                    Ok(None) => return Ok(Received::nothing(FrameHeader::needs(input))),
                    Err(e) => return Err(self.fail(frame_error_kind(e), now)),
                };
                self.check_header(&header, now)?;
                let total = header_len as u64 + header.payload_len;
                let mode = if header.opcode.is_control() {
                    Mode::Whole
                } else if self.is_compressed() {
                    #[cfg(feature = "deflate")]
                    {
                        Mode::Inflate
                    }
                    #[cfg(not(feature = "deflate"))]
                    Mode::Pieces
                } else if total <= self.config.receive_buffer_size as u64 {
                    Mode::Whole
                } else {
                    Mode::Pieces
                };
                let progress = FrameProgress {
                    header,
                    header_len,
                    mode,
                    done: 0,
                    #[cfg(feature = "deflate")]
                    unmasked: 0,
                };
                (progress, true)
            }
        };
        match progress.mode {
            Mode::Whole => self.receive_whole(progress, input, now),
            Mode::Pieces => self.receive_piece(progress, fresh, input, now),
            #[cfg(feature = "deflate")]
            Mode::Inflate => self.receive_inflating(progress, fresh, input, space, now),
        }
    }

    /// Applies the rules a header must follow given the role and the message in progress,
    /// and charges the frame to the message's limits. Runs once per frame.
    fn check_header(&mut self, header: &FrameHeader, now: Instant) -> Result<(), Error> {
        let violation = match (self.role, header.mask.is_some()) {
            // RFC 6455 §5.1: "The server MUST close the connection upon receiving a frame
            // that is not masked" and "A client MUST close a connection if it detects a
            // masked frame."
            (Role::Server, false) => Some(ErrorKind::UnmaskedFrame),
            (Role::Client, true) => Some(ErrorKind::MaskedFrame),
            // RFC 6455 §5.2: "If a nonzero value is received and none of the negotiated
            // extensions defines the meaning of such a nonzero value, the receiving endpoint
            // MUST _Fail the WebSocket Connection_."
            _ if header.rsv != 0 && !self.rsv_allowed(header) => Some(ErrorKind::ReservedBits),
            _ => None,
        };
        if let Some(kind) = violation {
            return Err(self.fail(kind, now));
        }
        if header.opcode.is_control() {
            return Ok(());
        }
        self.charge_frame(header, now)
    }

    /// Whether the message in progress is compressed.
    fn is_compressed(&self) -> bool {
        #[cfg(feature = "deflate")]
        return self.message.is_some_and(|m| m.compressed);
        #[cfg(not(feature = "deflate"))]
        false
    }

    /// Whether the RSV bits of `header` have a negotiated meaning: RSV1 alone, on the first
    /// frame of a data message, with permessage-deflate negotiated (RFC 7692 §6: never on a
    /// continuation or a control frame).
    fn rsv_allowed(&self, header: &FrameHeader) -> bool {
        #[cfg(feature = "deflate")]
        return self.codec.is_some()
            && header.rsv == super::message::RSV1
            && matches!(header.opcode, Opcode::Text | Opcode::Binary);
        #[cfg(not(feature = "deflate"))]
        {
            let _ = header;
            false
        }
    }

    /// A frame that fits the receive buffer: unmask (and validate) what has arrived, and hand
    /// it out once it is whole.
    fn receive_whole<'i>(
        &mut self,
        mut progress: FrameProgress,
        input: &'i mut [u8],
        now: Instant,
    ) -> Result<Received<'i>, Error> {
        let start = progress.header_len;
        // The mode is Whole only when header and payload fit the receive buffer.
        let len = progress.header.payload_len as usize;
        let total = start + len;
        let arrived = input.len().saturating_sub(start).min(len);
        let before = progress.done as usize;
        if arrived > before {
            if let Some(key) = progress.header.mask {
                apply_mask(&mut input[start + before..start + arrived], key, before);
            }
        }
        let is_text = self.message.is_some_and(|m| m.kind == MessageKind::Text);
        if arrived < len {
            // Fail fast: RFC 6455 §8.1 lets an endpoint fail as soon as it knows the text is
            // invalid, and waiting for the rest of the frame would only cost memory.
            if is_text && !progress.header.opcode.is_control() && arrived > before {
                self.feed_utf8(&input[start + before..start + arrived], false, now)?;
            }
            progress.done = arrived as u64;
            self.frame = Some(progress);
            return Ok(Received::nothing(total - input.len()));
        }
        let input: &'i [u8] = input;
        let payload = &input[start..total];
        let header = progress.header;
        let event = match header.opcode {
            Opcode::Ping => self.on_ping(payload),
            Opcode::Pong => self.on_pong(payload, now),
            Opcode::Close => self.on_close(payload, now)?,
            _ => {
                let Some(message) = self.message else { return Ok(Received::nothing(0)) };
                if !message.started && header.fin {
                    self.message = None;
                    match message.kind {
                        MessageKind::Binary => Event::Message(Message::Binary(payload)),
                        MessageKind::Text => match utf8::validate(payload) {
                            Some(text) => Event::Message(Message::Text(text)),
                            None => return Err(self.fail(ErrorKind::InvalidUtf8, now)),
                        },
                    }
                } else {
                    if is_text {
                        self.feed_utf8(&payload[before..], header.fin, now)?;
                    }
                    self.fragment_event(payload, header.fin)
                }
            }
        };
        Ok(Received::event(total, event))
    }

    /// A frame larger than the receive buffer: hand out whatever payload has arrived.
    fn receive_piece<'i>(
        &mut self,
        mut progress: FrameProgress,
        fresh: bool,
        input: &'i mut [u8],
        now: Instant,
    ) -> Result<Received<'i>, Error> {
        // The header is consumed with the frame's first piece; later calls start at payload.
        let start = if fresh { progress.header_len } else { 0 };
        let remaining = progress.header.payload_len - progress.done;
        let arrived =
            input.len().saturating_sub(start).min(usize::try_from(remaining).unwrap_or(usize::MAX));
        if arrived == 0 {
            self.frame = Some(progress);
            return Ok(Received { consumed: start, event: None, needed: 1 });
        }
        let piece = start..start + arrived;
        if let Some(key) = progress.header.mask {
            apply_mask(&mut input[piece.clone()], key, (progress.done % 4) as usize);
        }
        progress.done += arrived as u64;
        let frame_done = progress.done == progress.header.payload_len;
        let is_last = frame_done && progress.header.fin;
        if self.message.is_some_and(|m| m.kind == MessageKind::Text) {
            self.feed_utf8(&input[piece.clone()], is_last, now)?;
        }
        if !frame_done {
            self.frame = Some(progress);
        }
        let input: &'i [u8] = input;
        Ok(Received::event(piece.end, self.fragment_event(&input[piece], is_last)))
    }

    /// How many payload bytes of the data frame being handed out in pieces are still to
    /// come (0 between frames, and for a frame that is handed out whole). A reassembler can
    /// reserve that much after a [`Fragment`](super::Fragment) (it is within the configured limits, which
    /// were checked against the frame's header), so a large message grows its buffer once.
    #[must_use]
    pub fn frame_remaining(&self) -> u64 {
        match &self.frame {
            Some(progress)
                if progress.mode == Mode::Pieces && !progress.header.opcode.is_control() =>
            {
                progress.header.payload_len - progress.done
            }
            _ => 0,
        }
    }
}

fn frame_error_kind(error: FrameError) -> ErrorKind {
    match error {
        FrameError::ReservedOpcode(op) => ErrorKind::ReservedOpcode(op),
        FrameError::LengthOutOfRange => ErrorKind::LengthOutOfRange,
        FrameError::ControlFrameTooLong => ErrorKind::ControlFrameTooLong,
        FrameError::FragmentedControlFrame => ErrorKind::FragmentedControlFrame,
    }
}
