//! The message stage of the receive path: what a data frame's payload goes through on its
//! way to an event, once frame assembly (`receive.rs`) has its bytes. Each frame is charged
//! to its message's limits from its header; text is validated as its pieces arrive; the
//! pieces become [`Event::Fragment`]s.
//!
//! A payload transform (permessage-deflate, RFC 7692) plugs in here: between the frame's
//! payload and `feed_utf8`, so that limits are charged and text validated on what the
//! transform produces.

use super::config::Config;
use super::{Connection, Event, Fragment, InMessage, MessageKind};
use crate::error::{Error, ErrorKind};
use crate::time::Instant;
use crate::wire::frame::{FrameHeader, Opcode};
use crate::wire::utf8::Utf8Validator;

/// The RSV1 bit in [`FrameHeader::rsv`]: "Per-Message Compressed" (RFC 7692 §6).
#[cfg(feature = "deflate")]
pub(super) const RSV1: u8 = 0b100;

impl Connection {
    /// Charges a data frame to the message it belongs to (starting one for a first frame),
    /// and applies the limits to it: the frame, the message as charged, the fragment count.
    /// Runs once per frame, from its header.
    pub(super) fn charge_frame(&mut self, header: &FrameHeader, now: Instant) -> Result<(), Error> {
        let limits = &self.config;
        let (kind, size, frames) = match (header.opcode, &self.message) {
            (Opcode::Continuation, Some(m)) => (m.kind, m.size, m.frames),
            (Opcode::Continuation, None) => {
                return Err(self.fail(ErrorKind::UnexpectedContinuation, now));
            }
            // RFC 6455 §5.4: the fragments of one message MUST NOT be interleaved with
            // another's.
            (_, Some(_)) => return Err(self.fail(ErrorKind::ExpectedContinuation, now)),
            (Opcode::Text, None) => (MessageKind::Text, 0, 0),
            (_, None) => (MessageKind::Binary, 0, 0),
        };
        // A continuation is charged a fixed overhead on top of its payload, so that tiny or
        // empty fragments cannot make a message cost more than its limit (see
        // `Config::max_message_size`). Saturating: limits may be as large as `u64::MAX`.
        let overhead = if frames > 0 { Config::FRAGMENT_OVERHEAD } else { 0 };
        // A compressed message is charged its inflated bytes as they are produced
        // (`receive_inflating`); its wire bytes are bounded apart, by the limit plus the most
        // deflate can add to incompressible data.
        #[cfg(feature = "deflate")]
        let (compressed, wire) = match &self.message {
            Some(m) => (m.compressed, m.wire.saturating_add(header.payload_len)),
            None => (header.rsv & RSV1 != 0, header.payload_len),
        };
        #[cfg(not(feature = "deflate"))]
        let (compressed, wire) = (false, 0u64);
        let payload = if compressed { 0 } else { header.payload_len };
        let charged = size.saturating_add(payload).saturating_add(overhead);
        let wire_limit = limits.max_message_size.saturating_add(limits.max_message_size >> 3);
        let failure = if header.payload_len > limits.max_frame_size {
            Some(ErrorKind::FrameTooLarge {
                size: header.payload_len,
                limit: limits.max_frame_size,
            })
        } else if charged > limits.max_message_size {
            Some(ErrorKind::MessageTooLarge { size: charged, limit: limits.max_message_size })
        } else if compressed && wire > wire_limit.saturating_add(64) {
            Some(ErrorKind::MessageTooLarge { size: wire, limit: limits.max_message_size })
        } else if frames >= limits.max_fragments {
            Some(ErrorKind::TooManyFragments { limit: limits.max_fragments })
        } else {
            None
        };
        if let Some(kind) = failure {
            return Err(self.fail(kind, now));
        }
        let message = self.message.get_or_insert(InMessage {
            kind,
            size: 0,
            frames: 0,
            started: false,
            utf8: Utf8Validator::new(),
            #[cfg(feature = "deflate")]
            compressed,
            #[cfg(feature = "deflate")]
            pending: 0,
            #[cfg(feature = "deflate")]
            tail: 0,
            #[cfg(feature = "deflate")]
            wire: 0,
            #[cfg(feature = "deflate")]
            carry: None,
        });
        message.size = charged;
        message.frames += 1;
        #[cfg(feature = "deflate")]
        {
            message.wire = wire;
        }
        Ok(())
    }

    /// Validates the next bytes of the text message in progress; `is_last` when they end it.
    pub(super) fn feed_utf8(
        &mut self,
        bytes: &[u8],
        is_last: bool,
        now: Instant,
    ) -> Result<(), Error> {
        let Some(message) = self.message.as_mut() else { return Ok(()) };
        let valid = message.utf8.feed(bytes).is_ok() && (!is_last || message.utf8.is_complete());
        if valid {
            Ok(())
        } else {
            // RFC 6455 §8.1: "When an endpoint is to interpret a byte stream as UTF-8 but
            // finds that the byte stream is not, in fact, a valid UTF-8 stream, that endpoint
            // MUST _Fail the WebSocket Connection_."
            Err(self.fail(ErrorKind::InvalidUtf8, now))
        }
    }

    /// The event for a piece of the message in progress, which ends with it if `is_last`.
    pub(super) fn fragment_event<'i>(&mut self, payload: &'i [u8], is_last: bool) -> Event<'i> {
        let (kind, is_first) = match self.message.as_mut() {
            Some(message) => {
                let first = !message.started;
                message.started = true;
                (message.kind, first)
            }
            None => (MessageKind::Binary, true),
        };
        if is_last {
            self.message = None;
        }
        Event::Fragment(Fragment { kind, payload, is_first, is_last })
    }

    /// A data frame of a compressed message (RFC 7692 §7.2.2): its payload is unmasked as it
    /// arrives and inflated at once into `space`, after the bytes of it already there; text
    /// is validated as it is inflated, and every inflated byte is charged to the message
    /// limit as it is produced, with output capped one byte past the limit, so a frame that
    /// inflates past it fails (1009) having produced at most the limit plus one piece.
    ///
    /// The message comes out whole ([`Event::Message`]) when it ends with the inflate
    /// space not full; otherwise in [`Fragment`]s: one each time the space fills and one at
    /// the end of each frame. Consumes the frame's bytes as they are inflated, so a
    /// compressed frame never needs to be whole in the input.
    #[cfg(feature = "deflate")]
    pub(super) fn receive_inflating<'i>(
        &mut self,
        mut progress: super::receive::FrameProgress,
        fresh: bool,
        input: &'i mut [u8],
        space: &'i mut [u8],
        now: Instant,
    ) -> Result<super::Received<'i>, Error> {
        use super::compress::TAIL;
        use crate::wire::frame::apply_mask;

        if space.is_empty() {
            return Err(self.fail(ErrorKind::NoInflateSpace, now));
        }
        let header = progress.header;
        let start = if fresh { progress.header_len } else { 0 };
        let remaining = header.payload_len - progress.done;
        let avail =
            input.len().saturating_sub(start).min(usize::try_from(remaining).unwrap_or(usize::MAX));
        // Bytes after `done` that an earlier call unmasked but the decompressor did not take.
        let ahead = (progress.unmasked - progress.done) as usize;
        if let Some(key) = header.mask {
            if avail > ahead {
                let from = start + ahead;
                apply_mask(&mut input[from..start + avail], key, (progress.unmasked % 4) as usize);
            }
        }
        progress.unmasked = progress.unmasked.max(progress.done + avail as u64);
        let (Some(codec), Some(mut message)) = (self.codec.as_deref_mut(), self.message) else {
            return Ok(super::Received::nothing(0));
        };
        let limit = self.config.max_message_size;
        let mut used = 0;
        let mut full = false;
        // Text inflated by this call is validated at its end, once: as a whole if the
        // message is whole in it, else fed to the message's validator (fail-fast: within
        // the call that inflates the bytes, having inflated at most the space).
        let fresh = message.pending;
        // A byte inflated past a full space at the end of the last call (charged then) goes
        // first.
        if let Some(byte) = message.carry.take() {
            space[message.pending] = byte;
            message.pending += 1;
        }
        let failure = loop {
            let pending = message.pending;
            if pending == space.len() {
                full = true;
                break None;
            }
            let allowed = limit.saturating_sub(message.size).saturating_add(1);
            let room = (space.len() - pending).min(usize::try_from(allowed).unwrap_or(usize::MAX));
            let input_done = progress.done + used as u64 == header.payload_len;
            let feed: &[u8] = if !input_done {
                &input[start + used..start + avail]
            } else if header.fin {
                &TAIL[usize::from(message.tail)..]
            } else {
                &[]
            };
            let Ok(step) = codec.inflate(feed, &mut space[pending..pending + room]) else {
                break Some(ErrorKind::InflateFailed);
            };
            if input_done {
                message.tail += step.consumed as u8;
            } else {
                used += step.consumed;
            }
            message.pending += step.produced;
            message.size = message.size.saturating_add(step.produced as u64);
            if message.size > limit {
                break Some(ErrorKind::MessageTooLarge { size: message.size, limit });
            }
            if step.consumed == 0 && step.produced == 0 {
                break None;
            }
        };
        let input_done = progress.done + used as u64 == header.payload_len;
        let failure = match failure {
            // The space filled just as the last frame's bytes ran out: finish the stream now,
            // with no room for output (the end of the block and the tail need none), so the
            // message ends with this piece and no call without input is needed for its end.
            None if full && input_done && header.fin => {
                finish_inflating(codec, &mut message, limit)
            }
            other => other,
        };
        if let Some(kind) = failure {
            return Err(self.fail(kind, now));
        }
        if full && usize::from(message.tail) == TAIL.len() && message.carry.is_none() {
            full = false;
        }
        progress.done += used as u64;
        let consumed = start + used;
        let is_last = input_done && header.fin && usize::from(message.tail) == TAIL.len() && !full;
        // A message whole in this call is validated as a whole below; anything else now.
        let whole_here = is_last && !message.started && fresh == 0;
        if message.kind == MessageKind::Text && !whole_here {
            let valid = message.utf8.feed(&space[fresh..message.pending]).is_ok()
                && (!is_last || message.utf8.is_complete());
            if !valid {
                return Err(self.fail(ErrorKind::InvalidUtf8, now));
            }
        }
        if is_last || full || (input_done && !header.fin) {
            let space: &'i [u8] = space;
            let payload = &space[..message.pending];
            self.frame = if input_done && (!header.fin || is_last) { None } else { Some(progress) };
            let event = if is_last && !message.started {
                self.message = None;
                let whole = match message.kind {
                    MessageKind::Binary => super::Message::Binary(payload),
                    // Validated here (or, if it took several calls, also as it was
                    // inflated: borrowing it as `str` without unsafe code checks it again).
                    MessageKind::Text => match crate::wire::utf8::validate(payload) {
                        Some(text) => super::Message::Text(text),
                        None => return Err(self.fail(ErrorKind::InvalidUtf8, now)),
                    },
                };
                Event::Message(whole)
            } else {
                let is_first = !message.started;
                message.started = true;
                message.pending = 0;
                self.message = if is_last { None } else { Some(message) };
                Event::Fragment(Fragment { kind: message.kind, payload, is_first, is_last })
            };
            return Ok(super::Received::event(consumed, event));
        }
        self.frame = Some(progress);
        self.message = Some(message);
        Ok(super::Received { consumed, event: None, needed: 1 })
    }
}

/// Feeds the rest of the tail to a decompressor whose output space is full, then checks with
/// one byte of room whether any output is left: none can be, once a tail (an empty stored
/// block) is read, but should a byte come, it is charged and carried to the next call (and
/// validated there, in order).
#[cfg(feature = "deflate")]
fn finish_inflating(
    codec: &mut super::compress::Codec,
    message: &mut InMessage,
    limit: u64,
) -> Option<ErrorKind> {
    use super::compress::TAIL;
    let Ok(step) = codec.inflate(&TAIL[usize::from(message.tail)..], &mut []) else {
        return Some(ErrorKind::InflateFailed);
    };
    message.tail += step.consumed as u8;
    if usize::from(message.tail) < TAIL.len() {
        return None;
    }
    let mut probe = [0u8; 1];
    let Ok(step) = codec.inflate(&[], &mut probe) else {
        return Some(ErrorKind::InflateFailed);
    };
    if step.produced == 1 {
        message.size = message.size.saturating_add(1);
        if message.size > limit {
            return Some(ErrorKind::MessageTooLarge { size: message.size, limit });
        }
        message.carry = Some(probe[0]);
    }
    None
}
