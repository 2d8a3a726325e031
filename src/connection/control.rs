//! Control frames received (RFC 6455 §5.5): pings owe a pong, pongs end the pong deadline,
//! a close is validated, recorded and answered.

use crate::slot::slot;

use super::timer::Timer;
use super::{Connection, ControlPayload, Event};
use crate::error::{Error, ErrorKind};
use crate::time::Instant;
use crate::wire::close::{parse_close_payload, CloseFrame, ClosePayloadError};

impl Connection {
    pub(super) fn on_ping<'i>(&mut self, payload: &'i [u8]) -> Event<'i> {
        // RFC 6455 §5.5.2: "Upon receipt of a Ping frame, an endpoint MUST send a Pong frame
        // in response, unless it already received a Close frame." Only the latest ping is
        // answered when several arrive before the caller writes (§5.5.3 allows it).
        if self.config.auto_pong && self.sent_close.is_none() {
            self.pong_owed = ControlPayload::new(payload);
        }
        Event::Ping(payload)
    }

    pub(super) fn on_pong<'i>(&mut self, payload: &'i [u8], now: Instant) -> Event<'i> {
        if self.timers.get(Timer::Pong).is_some() {
            self.timers.stop(Timer::Pong);
            if let Some(interval) = self.config.keepalive_interval {
                self.timers.set(Timer::Keepalive, now + interval);
            }
        }
        Event::Pong(payload)
    }

    pub(super) fn on_close<'i>(
        &mut self,
        payload: &[u8],
        now: Instant,
    ) -> Result<Event<'i>, Error> {
        let (code, reason) = match parse_close_payload(payload) {
            Ok(parsed) => parsed,
            Err(ClosePayloadError::OneByte) => {
                return Err(self.fail(ErrorKind::OneByteClosePayload, now));
            }
            Err(ClosePayloadError::Code(code)) => {
                return Err(self.fail(ErrorKind::InvalidCloseCode(code), now));
            }
            Err(ClosePayloadError::Utf8) => return Err(self.fail(ErrorKind::InvalidUtf8, now)),
        };
        let Some(frame) = CloseFrame::new(code, reason) else {
            return Err(self.fail(ErrorKind::ControlFrameTooLong, now));
        };
        self.received_close = Some(slot(frame));
        self.message = None;
        self.pong_owed = None;
        if self.sent_close.is_none() {
            // RFC 6455 §5.5.1: "If an endpoint receives a Close frame and did not previously
            // send a Close frame, the endpoint MUST send a Close frame in response. (When
            // sending a Close frame in response, the endpoint typically echos the status code
            // it received.)"
            self.begin_close(CloseFrame::code_only(code), true, now);
        }
        Ok(Event::Close(frame))
    }
}
