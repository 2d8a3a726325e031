//! The output side: commands that write frames into the caller's buffer, and the bytes the
//! protocol owes the peer.

use super::{Connection, MessageKind, Phase, Role, Transmit, Transport, Written};
#[cfg(feature = "alloc")]
use crate::buffer::shared::{Encoding, SharedMessage, SharedSend};
use crate::error::UsageError;
use crate::handshake::{self, Accept, Reject};
use crate::time::Instant;
use crate::wire::close::{CloseCode, CloseFrame, MAX_CLOSE_REASON};
use crate::wire::frame::{FrameHeader, Opcode, MAX_CONTROL_PAYLOAD};
use crate::wire::mask::copy_masked;

impl Connection {
    /// Writes bytes the protocol owes the peer into `out`: the client's upgrade request, an
    /// HTTP error response, pongs, the close reply, keepalive pings. Then, once everything is
    /// out and the rules of RFC 6455 §7.1.1 say so, asks for the transport to be closed.
    ///
    /// Call it after every input and command until it returns `None`. Any non-empty `out`
    /// works: owed bytes that do not fit come out on the next call.
    #[must_use]
    pub fn poll_transmit(&mut self, out: &mut [u8]) -> Option<Transmit> {
        if self.transport == Transport::Closed || out.is_empty() {
            return None;
        }
        let written = self.write_owed(out);
        if written > 0 {
            return Some(Transmit::Bytes(written));
        }
        // RFC 6455 §7.1.1: "the underlying TCP connection, in most normal cases, SHOULD be
        // closed first by the server". The server does so once both close frames are
        // exchanged; the client waits for it (or for the close deadline).
        let server_done = self.role == Role::Server
            && matches!(self.phase, Phase::Open)
            && self.is_close_handshake_complete();
        if self.transport == Transport::CloseDue || server_done {
            self.transport = Transport::Closed;
            self.timers.stop_all();
            return Some(Transmit::CloseTransport);
        }
        None
    }

    /// Server: accepts the upgrade request handed out in
    /// [`Event::Request`](super::Event::Request), writing the `101 Switching Protocols`
    /// response into `out`. The connection is open; frames the client sent after its request
    /// are still in your input, for the next [`receive`](Self::receive).
    pub fn accept(
        &mut self,
        accept: &Accept<'_>,
        out: &mut [u8],
        now: Instant,
    ) -> Result<Written, UsageError> {
        let Phase::AwaitDecision(offer) = &self.phase else { return Err(self.no_request()) };
        let written = handshake::write_accept(offer, accept, out)?;
        #[cfg(feature = "deflate")]
        if let Some(params) = offer.deflate {
            let codec = super::compress::Codec::new(self.role, params, &self.config.deflate);
            self.codec = Some(alloc::boxed::Box::new(codec));
        }
        self.start_open(now);
        Ok(Written(written))
    }

    /// Server: refuses the upgrade request handed out in
    /// [`Event::Request`](super::Event::Request) with any status, headers and body (a 403 for
    /// a forbidden origin, a 401 asking for credentials...). The transport's close follows
    /// from [`poll_transmit`](Self::poll_transmit).
    pub fn reject(&mut self, reject: &Reject<'_>, out: &mut [u8]) -> Result<Written, UsageError> {
        if !matches!(self.phase, Phase::AwaitDecision(_)) {
            return Err(self.no_request());
        }
        let written = handshake::write_reject(reject, out)?;
        self.phase = Phase::Ended;
        self.timers.stop_all();
        self.transport_close_due();
        Ok(Written(written))
    }

    fn no_request(&self) -> UsageError {
        match self.role {
            Role::Client => UsageError::WrongRole,
            Role::Server => UsageError::NoPendingRequest,
        }
    }

    /// Sends a whole text message as one frame.
    pub fn send_text(&mut self, text: &str, out: &mut [u8]) -> Result<Written, UsageError> {
        self.send_message(Opcode::Text, text.as_bytes(), out)
    }

    /// Sends a whole binary message as one frame.
    pub fn send_binary(&mut self, data: &[u8], out: &mut [u8]) -> Result<Written, UsageError> {
        self.send_message(Opcode::Binary, data, out)
    }

    fn send_message(
        &mut self,
        opcode: Opcode,
        data: &[u8],
        out: &mut [u8],
    ) -> Result<Written, UsageError> {
        self.check_can_send_data()?;
        if self.sending.is_some() {
            return Err(UsageError::MessageInProgress);
        }
        #[cfg(feature = "deflate")]
        if self.compresses(data.len()) {
            return self.write_compressed(opcode, data, out);
        }
        self.write_frame(opcode, data, true, out)
    }

    /// Server: sends `message`, encoded once for many connections (a broadcast), as one
    /// frame: writes the bytes owed ahead of it into `out`, and says which of the message's
    /// shared encodings to write right after them ([`SharedSend::Frame`]): nothing of the
    /// payload is copied. Only a connection that compresses with context takeover (or
    /// compresses without `std`) encodes the message into `out` for itself
    /// ([`SharedSend::Encoded`]); `out` then needs
    /// [`encoded_len`](Self::encoded_len)`(payload length)` bytes.
    ///
    /// A client masks every frame with its own key, so it cannot share one
    /// ([`UsageError::WrongRole`]). Needs `alloc` (a [`SharedMessage`] is reference-counted).
    #[cfg(feature = "alloc")]
    pub fn send_shared(
        &mut self,
        message: &SharedMessage,
        out: &mut [u8],
    ) -> Result<SharedSend, UsageError> {
        if self.role == Role::Client {
            return Err(UsageError::WrongRole);
        }
        self.check_can_send_data()?;
        if self.sending.is_some() {
            return Err(UsageError::MessageInProgress);
        }
        #[allow(unused_mut)]
        let mut encoding = Encoding::Plain;
        #[cfg(not(feature = "deflate"))]
        let _ = message;
        #[cfg(feature = "deflate")]
        if self.compresses(message.payload().len()) {
            match self.shared_compressed(message) {
                Some(compressed) => encoding = compressed,
                None => {
                    let opcode = match message.kind() {
                        MessageKind::Text => Opcode::Text,
                        MessageKind::Binary => Opcode::Binary,
                    };
                    let written = self.send_message(opcode, message.payload(), out)?;
                    return Ok(SharedSend::Encoded(written));
                }
            }
        }
        let required = self.owed_len();
        if out.len() < required {
            return Err(UsageError::BufferTooSmall { required });
        }
        let at = self.write_owed(out);
        Ok(SharedSend::Frame { written: Written(at), encoding })
    }

    /// Whether a shared message of `len` bytes goes out as one of its shared encodings
    /// (rather than compressed for this connection alone).
    #[cfg(feature = "alloc")]
    pub(crate) fn shares_encoding_of(&self, len: usize) -> bool {
        #[cfg(feature = "deflate")]
        if self.compresses(len) {
            return cfg!(feature = "std")
                && self.codec.as_deref().is_some_and(|codec| codec.sends_without_context());
        }
        let _ = len;
        true
    }

    /// The compressed encoding of `message` this connection sends, made with its compressor
    /// if no connection with the same window made it yet; `None` when this end keeps context
    /// takeover (its frames depend on its own history), or without `std`.
    #[cfg(feature = "deflate")]
    fn shared_compressed(&mut self, message: &SharedMessage) -> Option<Encoding> {
        #[cfg(feature = "std")]
        {
            let codec = self.codec.as_deref_mut().filter(|c| c.sends_without_context())?;
            let bits = codec.send_bits();
            let made = message
                .compressed_with(bits, |opcode, payload| codec.compress_frame(opcode, payload));
            // Should compressing fail, the message goes uncompressed (RFC 7692 lets any
            // message go so).
            Some(match made {
                Some(_) => Encoding::Deflate { window_bits: bits },
                None => Encoding::Plain,
            })
        }
        #[cfg(not(feature = "std"))]
        {
            let _ = message;
            None
        }
    }

    /// Whether a whole message of `len` bytes sent now with
    /// [`send_text`](Self::send_text) or [`send_binary`](Self::send_binary) goes compressed:
    /// permessage-deflate was negotiated and `len` reaches the configured threshold. Other
    /// commands ([`send_fragment`](Self::send_fragment), [`send_header`](Self::send_header))
    /// always send uncompressed, which RFC 7692 allows message by message.
    #[cfg(feature = "deflate")]
    #[must_use]
    pub fn compresses(&self, len: usize) -> bool {
        self.codec.as_ref().is_some_and(|codec| codec.compresses(len))
    }

    /// The longest header of a frame this end sends.
    #[cfg(feature = "deflate")]
    fn max_header_len(&self) -> usize {
        if self.role == Role::Client {
            14
        } else {
            10
        }
    }

    /// Writes the owed bytes, then `payload` compressed as one frame with RSV1 (RFC 7692
    /// §7.2.1). The compressed bytes are written after room for the longest header, then
    /// moved up to the header's real end (a frame's length must be encoded minimally, and is
    /// only known once compressed). Should they not fit (they always do: `out` holds the
    /// bound), the message goes uncompressed.
    #[cfg(feature = "deflate")]
    fn write_compressed(
        &mut self,
        opcode: Opcode,
        payload: &[u8],
        out: &mut [u8],
    ) -> Result<Written, UsageError> {
        let room = super::compress::Codec::bound(payload.len());
        let max_header = self.max_header_len();
        let required = self.owed_len() + max_header + room;
        if out.len() < required {
            return Err(UsageError::BufferTooSmall { required });
        }
        let at = self.write_owed(out);
        let body = at + max_header;
        let Some(codec) = self.codec.as_deref_mut() else { return Ok(Written(at)) };
        let Some(len) = codec.compress(payload, &mut out[body..body + room]) else {
            return Ok(Written(at + self.encode_frame(opcode, payload, true, &mut out[at..])));
        };
        let mask = self.rng.as_mut().map(|rng| rng.mask_key());
        let header = FrameHeader {
            fin: true,
            rsv: super::message::RSV1,
            opcode,
            mask,
            payload_len: len as u64,
        };
        let header_len = header.encode(&mut out[at..body]).unwrap_or(0);
        let start = at + header_len;
        out.copy_within(body..body + len, start);
        if let Some(key) = mask {
            crate::wire::frame::apply_mask(&mut out[start..start + len], key, 0);
        }
        Ok(Written(start + len))
    }

    /// Sends one frame of a fragmented message of `kind`: the first call starts the message,
    /// later ones continue it, and the one with `is_last` ends it. Control frames may be sent
    /// between fragments. For text, the fragments' concatenation must be UTF-8; a fragment
    /// may end inside a code point.
    pub fn send_fragment(
        &mut self,
        kind: MessageKind,
        payload: &[u8],
        is_last: bool,
        out: &mut [u8],
    ) -> Result<Written, UsageError> {
        self.check_can_send_data()?;
        let opcode = match self.sending {
            Some(open) if open == kind => Opcode::Continuation,
            Some(_) => return Err(UsageError::MessageInProgress),
            None => match kind {
                MessageKind::Text => Opcode::Text,
                MessageKind::Binary => Opcode::Binary,
            },
        };
        let written = self.write_frame(opcode, payload, is_last, out)?;
        self.sending = if is_last { None } else { Some(kind) };
        Ok(written)
    }

    /// Server: writes only the header of a whole unfragmented message of `payload_len` bytes
    /// (after any owed bytes); write your payload right after it, for instance with one
    /// vectored write, so the payload is never copied. A client must mask its payload, so it
    /// cannot do this ([`UsageError::WrongRole`]): see
    /// [`send_streamed_header`](Self::send_streamed_header). For text, the payload must be
    /// UTF-8.
    pub fn send_header(
        &mut self,
        kind: MessageKind,
        payload_len: u64,
        out: &mut [u8],
    ) -> Result<Written, UsageError> {
        if self.role == Role::Client {
            return Err(UsageError::WrongRole);
        }
        self.send_streamed_header(kind, payload_len, out).map(|(written, _)| written)
    }

    /// Either role: writes only the header of a whole unfragmented message of `payload_len`
    /// bytes (after any owed bytes), for a payload that follows it through a buffer smaller
    /// than the message. A client's header carries a fresh masking key, returned: mask each
    /// piece of the payload with [`frame::apply_mask`](crate::frame::apply_mask)`(piece, key,
    /// offset)`, `offset` counting from the payload's start, before writing it. A server's
    /// payload goes as it is (`None`).
    ///
    /// All `payload_len` bytes must follow the header before anything else is written:
    /// hold back what [`poll_transmit`](Self::poll_transmit) would give until then. For
    /// text, the payload must be UTF-8.
    pub fn send_streamed_header(
        &mut self,
        kind: MessageKind,
        payload_len: u64,
        out: &mut [u8],
    ) -> Result<(Written, Option<[u8; 4]>), UsageError> {
        self.check_can_send_data()?;
        if self.sending.is_some() {
            return Err(UsageError::MessageInProgress);
        }
        let opcode = match kind {
            MessageKind::Text => Opcode::Text,
            MessageKind::Binary => Opcode::Binary,
        };
        // The key is drawn only once the frame is sure to be written.
        let probe = FrameHeader {
            fin: true,
            rsv: 0,
            opcode,
            mask: self.rng.as_ref().map(|_| [0; 4]),
            payload_len,
        };
        let required = self.owed_len() + probe.encoded_len();
        if out.len() < required {
            return Err(UsageError::BufferTooSmall { required });
        }
        let mask = self.rng.as_mut().map(|rng| rng.mask_key());
        let header = FrameHeader { mask, ..probe };
        let at = self.write_owed(out);
        Ok((Written(at + header.encode(&mut out[at..]).unwrap_or(0)), mask))
    }

    /// Sends a ping with `payload` (at most 125 bytes). The peer's pong arrives as
    /// [`Event::Pong`](super::Event::Pong).
    pub fn send_ping(&mut self, payload: &[u8], out: &mut [u8]) -> Result<Written, UsageError> {
        self.check_can_send_control(payload)?;
        self.write_frame(Opcode::Ping, payload, true, out)
    }

    /// Sends a pong with `payload` (at most 125 bytes): the answer to a ping when automatic
    /// pongs are off, or an unsolicited heartbeat. It replaces an owed automatic pong.
    pub fn send_pong(&mut self, payload: &[u8], out: &mut [u8]) -> Result<Written, UsageError> {
        self.check_can_send_control(payload)?;
        let owed_pong = self.pong_owed.take();
        let result = self.write_frame(Opcode::Pong, payload, true, out);
        if result.is_err() {
            self.pong_owed = owed_pong;
        }
        result
    }

    /// Starts (or answers) the closing handshake with `code` and `reason` (at most 123 bytes
    /// of UTF-8). After this no data frame can be sent; messages the peer sent before its
    /// close still arrive. The close deadline starts now.
    ///
    /// Codes that may not be sent (RFC 6455 §7.4: 1004–1006, 1015, below 1000, unassigned
    /// codes below 3000, 5000 and above) are refused, never rewritten.
    pub fn close(
        &mut self,
        code: CloseCode,
        reason: &str,
        out: &mut [u8],
        now: Instant,
    ) -> Result<Written, UsageError> {
        self.check_open()?;
        if self.sent_close.is_some() || self.failed {
            return Err(UsageError::Closing);
        }
        let frame = close_frame(code, reason)?;
        let mut payload = [0; MAX_CONTROL_PAYLOAD];
        let len = frame.write_payload(&mut payload);
        let written = self.write_frame(Opcode::Close, &payload[..len], true, out)?;
        self.begin_close(frame, false, now);
        Ok(written)
    }

    /// How many bytes of `out` a command sending `payload_len` bytes of payload would write
    /// now: the owed bytes that go ahead of it, the frame header and the payload. An `out` of
    /// this length never fails with [`UsageError::BufferTooSmall`].
    #[must_use]
    pub fn encoded_len(&self, payload_len: usize) -> usize {
        #[cfg(feature = "deflate")]
        if self.compresses(payload_len) {
            let bound = super::compress::Codec::bound(payload_len);
            return self.owed_len() + self.max_header_len() + bound;
        }
        self.owed_len() + self.frame_len(payload_len)
    }

    /// Whether a data message can be sent now: the connection is open and no close was sent
    /// or received (or failed it). Commands refuse to send otherwise.
    #[must_use]
    pub fn can_send(&self) -> bool {
        self.check_can_send_data().is_ok() && self.received_close.is_none()
    }

    fn check_open(&self) -> Result<(), UsageError> {
        match self.phase {
            Phase::Open if self.transport == Transport::Open => Ok(()),
            Phase::Open | Phase::Ended => Err(UsageError::Closed),
            _ => Err(UsageError::NotOpen),
        }
    }

    fn check_can_send_data(&self) -> Result<(), UsageError> {
        self.check_open()?;
        // RFC 6455 §5.5.1: "After sending a Close frame, the endpoint MUST NOT send any
        // further data frames."
        if self.sent_close.is_some() || self.failed {
            return Err(UsageError::Closing);
        }
        Ok(())
    }

    fn check_can_send_control(&self, payload: &[u8]) -> Result<(), UsageError> {
        self.check_can_send_data()?;
        check_control_payload(payload)
    }

    /// Header plus payload length of a frame this end sends.
    fn frame_len(&self, payload_len: usize) -> usize {
        let header = FrameHeader {
            fin: true,
            rsv: 0,
            opcode: Opcode::Binary,
            mask: (self.role == Role::Client).then_some([0; 4]),
            payload_len: payload_len as u64,
        };
        header.encoded_len() + payload_len
    }

    /// Writes the owed bytes, then one frame, into `out`; all or nothing.
    fn write_frame(
        &mut self,
        opcode: Opcode,
        payload: &[u8],
        fin: bool,
        out: &mut [u8],
    ) -> Result<Written, UsageError> {
        let required = self.owed_len() + self.frame_len(payload.len());
        if out.len() < required {
            return Err(UsageError::BufferTooSmall { required });
        }
        let at = self.write_owed(out);
        Ok(Written(at + self.encode_frame(opcode, payload, fin, &mut out[at..])))
    }

    /// Encodes one frame (masked for a client) into `out`, which is known to be long enough.
    fn encode_frame(&mut self, opcode: Opcode, payload: &[u8], fin: bool, out: &mut [u8]) -> usize {
        // RFC 6455 §5.3: a client masks every frame with a fresh key "derived from a strong
        // source of entropy"; a server never masks.
        let mask = self.rng.as_mut().map(|rng| rng.mask_key());
        let header = FrameHeader { fin, rsv: 0, opcode, mask, payload_len: payload.len() as u64 };
        let Some(at) = header.encode(out) else { return 0 };
        let body = &mut out[at..at + payload.len()];
        match mask {
            Some(key) => copy_masked(body, payload, key),
            None => body.copy_from_slice(payload),
        }
        at + payload.len()
    }

    /// The number of bytes owed to the peer right now.
    fn owed_len(&self) -> usize {
        let mut len = self.owed.remaining().len();
        if let Some(pong) = &self.pong_owed {
            len += self.frame_len(pong.as_slice().len());
        }
        if self.close_owed {
            let mut payload = [0; MAX_CONTROL_PAYLOAD];
            let payload_len =
                self.sent_close.as_deref().map_or(0, |f| f.write_payload(&mut payload));
            len += self.frame_len(payload_len);
        }
        if self.ping_owed {
            len += self.frame_len(self.pings_sent.to_be_bytes().len());
        }
        len
    }

    /// Copies as many owed bytes into `out` as fit, encoding owed control frames in order of
    /// precedence (pong, close, keepalive ping) as the previous ones drain.
    fn write_owed(&mut self, out: &mut [u8]) -> usize {
        if self.owed.is_empty() && self.pong_owed.is_none() && !self.close_owed && !self.ping_owed {
            // The usual case: nothing is owed.
            return 0;
        }
        let mut written = 0;
        loop {
            let remaining = self.owed.remaining();
            if !remaining.is_empty() {
                let n = remaining.len().min(out.len() - written);
                out[written..written + n].copy_from_slice(&remaining[..n]);
                self.owed.advance(n);
                written += n;
                if written == out.len() {
                    return written;
                }
            }
            self.owed.clear();
            let (opcode, payload, len) = if let Some(pong) = self.pong_owed.take() {
                (Opcode::Pong, pong.bytes, pong.len.into())
            } else if self.close_owed {
                self.close_owed = false;
                let mut payload = [0; MAX_CONTROL_PAYLOAD];
                let len = self.sent_close.as_deref().map_or(0, |f| f.write_payload(&mut payload));
                (Opcode::Close, payload, len)
            } else if self.ping_owed {
                self.ping_owed = false;
                let mut payload = [0; MAX_CONTROL_PAYLOAD];
                payload[..4].copy_from_slice(&self.pings_sent.to_be_bytes());
                (Opcode::Ping, payload, 4)
            } else {
                return written;
            };
            let mut frame = [0; super::owed::CONTROL_FRAME_MAX];
            let n = self.encode_frame(opcode, &payload[..len], true, &mut frame);
            self.owed.set_frame(&frame[..n]);
        }
    }
}

/// The close frame this end may send with `code` and `reason`: codes that may not be sent
/// (RFC 6455 §7.4) and reasons longer than 123 bytes are refused.
pub(crate) fn close_frame(code: CloseCode, reason: &str) -> Result<CloseFrame, UsageError> {
    if !code.is_sendable() {
        return Err(UsageError::InvalidCloseCode(code.0));
    }
    CloseFrame::new(code, reason).ok_or(UsageError::CloseReasonTooLong { len: reason.len() })
}

/// RFC 6455 §5.5: "All control frames MUST have a payload length of 125 bytes or less".
pub(crate) fn check_control_payload(payload: &[u8]) -> Result<(), UsageError> {
    if payload.len() > MAX_CONTROL_PAYLOAD {
        return Err(UsageError::ControlPayloadTooLong { len: payload.len() });
    }
    Ok(())
}

// The longest close reason must fit a control frame with its code.
const _: () = assert!(MAX_CLOSE_REASON + 2 == MAX_CONTROL_PAYLOAD);
