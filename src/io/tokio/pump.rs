//! The stream and the driver, and what moving bytes between them needs: writing, reading,
//! sleeping until the next deadline.

use alloc::boxed::Box;
use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll};
use std::io::{self, IoSlice};

use ::tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};
use ::tokio::time::{sleep_until, Instant as TokioInstant, Sleep};

use super::handshake::poll_read_vec;
use crate::io::clock::Clock;
use crate::io::driver::Driver;
use crate::io::error::AdapterError as Error;

/// The stream and the driver, with what moving bytes between them needs: used by a
/// [`WebSocket`] in its caller's task, and by the connection task of split halves.
pub(super) struct Io<S> {
    pub(super) stream: S,
    pub(super) driver: Driver,
    pub(super) clock: Clock<TokioInstant>,
    pub(super) sleep: Option<Pin<Box<Sleep>>>,
    /// Whether the stream was shut down.
    pub(super) shut_down: bool,
    /// Whether reading is over (end of stream, or the stream failed).
    pub(super) read_done: bool,
    /// The time read during this poll, if it was.
    pub(super) now: Option<crate::Instant>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Io<S> {
    /// The time, read once per poll (reading the clock is a measurable part of a small
    /// message's cost); [`fresh_now`](Self::fresh_now) reads it again.
    pub(super) fn now(&mut self) -> crate::Instant {
        match self.now {
            Some(now) => now,
            None => self.fresh_now(),
        }
    }

    pub(super) fn fresh_now(&mut self) -> crate::Instant {
        let now = self.clock.instant(TokioInstant::now());
        self.now = Some(now);
        now
    }

    /// Whether no more data may be sent (a close was sent or received, or it is over).
    pub(super) fn closing(&self) -> bool {
        let conn = self.driver.connection();
        conn.sent_close().is_some() || conn.received_close().is_some() || self.driver.is_closed()
    }

    /// Fires due deadlines, and arms the sleep for the next one. `Ok(true)` if one fired.
    pub(super) fn poll_timer(&mut self, cx: &mut Context<'_>) -> Result<bool, crate::Error> {
        let Some(deadline) = self.driver.poll_timeout() else {
            self.sleep = None;
            return Ok(false);
        };
        // Deadlines are checked against the clock itself, never against a time read
        // earlier in this poll: a sleep that fired must find its deadline passed.
        let now = self.fresh_now();
        if deadline > now {
            let at = self.clock.at(deadline);
            let sleep = match &mut self.sleep {
                Some(sleep) => {
                    if sleep.deadline() != at {
                        sleep.as_mut().reset(at);
                    }
                    sleep
                }
                None => self.sleep.insert(Box::pin(sleep_until(at))),
            };
            if sleep.as_mut().poll(cx).is_pending() {
                return Ok(false);
            }
        }
        let now = self.fresh_now();
        self.driver.on_timeout(now)?;
        // Progress only if the deadline moved, so a clock that rounds cannot spin.
        Ok(self.driver.poll_timeout() != Some(deadline))
    }

    /// Writes pending output until the stream would block. `Ok(true)` if bytes were
    /// written; on a failure the connection is over (and the error is returned once).
    pub(super) fn poll_write_out(&mut self, cx: &mut Context<'_>) -> Result<bool, io::Error> {
        let mut progress = false;
        while !self.driver.output().is_empty() {
            let stream = Pin::new(&mut self.stream);
            let [head, tail, after] = self.driver.output_parts();
            let written = if tail.is_empty() {
                stream.poll_write(cx, self.driver.output())
            } else {
                // A large message's payload, after its header, not copied (there is a tail
                // only when the stream takes vectored writes).
                let parts = [IoSlice::new(head), IoSlice::new(tail), IoSlice::new(after)];
                stream.poll_write_vectored(cx, &parts)
            };
            match written {
                Poll::Ready(Ok(0)) => {
                    return Err(self.transport_failed(io::ErrorKind::WriteZero.into()))
                }
                Poll::Ready(Ok(n)) => {
                    self.driver.wrote(n);
                    progress = true;
                }
                Poll::Ready(Err(e)) => return Err(self.transport_failed(e)),
                Poll::Pending => return Ok(progress),
            }
        }
        Ok(progress)
    }

    /// The stream failed: the connection is over, nothing more is read or written.
    pub(super) fn transport_failed(&mut self, e: io::Error) -> io::Error {
        self.driver.on_transport_error();
        self.read_done = true;
        e
    }

    /// Reads more input. `Ready(Ok(()))` after bytes or the end of the stream (whose
    /// failure, if it ends the connection too early, is the error).
    pub(super) fn poll_read(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        let stream = &mut self.stream;
        // The rest of a large frame goes straight into the message it belongs to (never
        // past the frame's end); anything else into the read buffer.
        let direct = self.driver.direct_read(|buf, limit| {
            let mut frame_rest = (&mut *stream).take(limit as u64);
            poll_read_vec(&mut frame_rest, cx, buf)
        });
        let read = match direct {
            Some(read) => read,
            None => self.driver.read_with(|buf| poll_read_vec(stream, cx, buf)),
        };
        match read {
            Poll::Ready(Ok(0)) => {
                self.read_done = true;
                Poll::Ready(self.driver.on_eof().map_err(Error::from))
            }
            Poll::Ready(Ok(_)) => Poll::Ready(Ok(())),
            Poll::Ready(Err(e)) => Poll::Ready(Err(Error::Io(self.transport_failed(e)))),
            Poll::Pending => Poll::Pending,
        }
    }
}
