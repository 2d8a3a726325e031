//! The opening handshake's input side: the server reads the upgrade request, the client the
//! response (RFC 6455 §4). The head is found and parsed by the handshake layer; here it moves
//! the connection's phase on.

use crate::slot::slot;

use super::{Connection, Event, Phase, Received};
use crate::error::{Error, ErrorKind};
use crate::handshake;
use crate::time::Instant;

impl Connection {
    pub(super) fn receive_request<'i>(
        &mut self,
        input: &'i mut [u8],
        now: Instant,
    ) -> Result<Received<'i>, Error> {
        let limit = self.head_limit();
        let input: &'i [u8] = input;
        // The usual case, a head that arrived whole in one read, is parsed without first
        // searching it for its end; anything else takes the general path below.
        if input.len() <= limit {
            if let Some(request) = handshake::parse_whole_request(input, self.config.max_headers) {
                let offer = self.offer_for(&request, now)?;
                self.phase = Phase::AwaitDecision(slot(offer));
                return Ok(Received::event(input.len(), Event::Request(request)));
            }
        }
        let Phase::AwaitRequest(scanner) = &mut self.phase else { return Ok(Received::nothing(0)) };
        let end = scanner.find_end(input);
        let len = match end {
            Some(len) if len <= limit => len,
            None if input.len() < limit => return Ok(Received::nothing(1)),
            _ => return Err(self.fail(ErrorKind::HeadTooLarge { limit }, now)),
        };
        match handshake::parse_request(&input[..len], self.config.max_headers) {
            Ok(request) => {
                let offer = self.offer_for(&request, now)?;
                self.phase = Phase::AwaitDecision(slot(offer));
                Ok(Received::event(len, Event::Request(request)))
            }
            Err(kind) => Err(self.fail(kind, now)),
        }
    }

    pub(super) fn receive_response<'i>(
        &mut self,
        input: &'i mut [u8],
        now: Instant,
    ) -> Result<Received<'i>, Error> {
        let limit = self.head_limit();
        let Phase::AwaitResponse(scanner, _) = &mut self.phase else {
            return Ok(Received::nothing(0));
        };
        let end = scanner.find_end(input);
        let len = match end {
            Some(len) if len <= limit => len,
            None if input.len() < limit => return Ok(Received::nothing(1)),
            _ => return Err(self.fail(ErrorKind::HeadTooLarge { limit }, now)),
        };
        let input: &'i [u8] = input;
        let response = match handshake::parse_response(&input[..len], self.config.max_headers) {
            Ok(response) => response,
            Err(kind) => return Err(self.fail(kind, now)),
        };
        if response.status() == 101 {
            let Phase::AwaitResponse(_, offer) = &self.phase else {
                return Ok(Received::nothing(0));
            };
            let agreed = match handshake::validate_response(&response, offer) {
                Ok(agreed) => agreed,
                Err(kind) => return Err(self.fail(kind, now)),
            };
            #[cfg(feature = "deflate")]
            if let Some(params) = agreed.deflate {
                let codec = super::compress::Codec::new(self.role, params, &self.config.deflate);
                self.codec = Some(alloc::boxed::Box::new(codec));
            }
            #[cfg(not(feature = "deflate"))]
            let _ = agreed;
            self.start_open(now);
            // Frames that followed the response in the same read stay in the input.
            return Ok(Received::event(len, Event::Accepted(response)));
        }
        let response = response.with_body(&input[len..]);
        let consumed = len + response.body().len();
        self.phase = Phase::Ended;
        self.timers.stop_all();
        self.transport_close_due();
        Ok(Received::event(consumed, Event::Rejected(response)))
    }

    /// What answering `request` needs, with the extensions this end agrees to; fails the
    /// handshake when compression is required and the client offered none acceptable.
    fn offer_for(
        &mut self,
        request: &handshake::Request<'_>,
        now: Instant,
    ) -> Result<handshake::Offer, Error> {
        #[allow(unused_mut)]
        let mut offer = request.offer();
        #[cfg(feature = "deflate")]
        {
            offer.deflate = request.deflate(&self.config.deflate);
            if offer.deflate.is_none()
                && self.config.deflate.mode == handshake::DeflateMode::Required
            {
                return Err(self.fail(ErrorKind::DeflateRequired, now));
            }
        }
        #[cfg(not(feature = "deflate"))]
        let _ = now;
        Ok(offer)
    }

    /// The largest head accepted: the configured limit, and never more than the receive
    /// buffer can hold (a head that cannot fit could never be completed).
    fn head_limit(&self) -> usize {
        self.config.max_head_size.min(self.config.receive_buffer_size)
    }
}
