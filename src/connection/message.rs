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
        let charged = size.saturating_add(header.payload_len).saturating_add(overhead);
        let failure = if header.payload_len > limits.max_frame_size {
            Some(ErrorKind::FrameTooLarge {
                size: header.payload_len,
                limit: limits.max_frame_size,
            })
        } else if charged > limits.max_message_size {
            Some(ErrorKind::MessageTooLarge { size: charged, limit: limits.max_message_size })
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
        });
        message.size = charged;
        message.frames += 1;
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
}
