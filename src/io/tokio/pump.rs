//! The stream and the driver, and the I/O the driver's steps ask for: writing, reading,
//! shutting down, sleeping until the next deadline.

use alloc::boxed::Box;
use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll};
use std::io::{self, IoSlice};

use ::tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};
use ::tokio::time::{sleep_until, Instant as TokioInstant, Sleep};

use super::handshake::poll_read_vec;
use crate::io::clock::Clock;
use crate::io::driver::{Buffers, HeapDriver as Driver, Step, Want};
use crate::io::error::AdapterError as Error;

/// The most slices one vectored write takes (Linux allows 1024).
const WRITE_PARTS: usize = 64;

/// The bytes moved that cost one unit of tokio's cooperative budget, on top of the unit the
/// stream charges per read or write (see [`charge`]).
const BUDGET_UNIT: usize = 8 * 1024;

/// Charges `bytes` moved to the task's cooperative budget: one unit per [`BUDGET_UNIT`].
///
/// tokio makes a task yield after 128 reads or writes that were ready, however large: a
/// connection receiving 1 MiB messages without pause moves about 8 MiB (milliseconds of
/// copying) before its worker thread runs another task, and on a server with a few
/// hundred such connections a small message of another client waits for all of them
/// (measured with `scripts/siege.py`'s max-messages attack: an honest echo p50 of 114 ms
/// behind 50 such clients). Charged by the byte, a task yields after about 1 MiB, so the
/// others' turn comes that much sooner; a connection of small messages is charged nothing
/// more. Once the budget is spent the next read or write of the stream yields.
fn charge(cx: &mut Context<'_>, bytes: usize) {
    for _ in 0..bytes / BUDGET_UNIT {
        match ::tokio::task::coop::poll_proceed(cx) {
            Poll::Ready(restore) => restore.made_progress(),
            // Spent: the task has been scheduled again, and yields at its next I/O.
            Poll::Pending => break,
        }
    }
}

std::thread_local! {
    /// The buffers the last connection that went idle on this thread gave up: the next one
    /// that needs buffers takes them, so a connection that waits between messages costs no
    /// allocation per message, while an idle one holds none. At most one of each per thread.
    static SPARE: core::cell::RefCell<Buffers> = core::cell::RefCell::new(Buffers::default());
}

/// The stream and the driver, with what moving bytes between them needs: used by a
/// [`WebSocket`](super::WebSocket) in its caller's task, and by the connection task of split
/// halves.
pub(super) struct Io<S> {
    pub(super) stream: S,
    pub(super) driver: Driver,
    pub(super) clock: Clock<TokioInstant>,
    /// The sleep until the next deadline, with the deadline it is armed for.
    pub(super) sleep: Option<(crate::time::Instant, Pin<Box<Sleep>>)>,
    /// The time read during this poll, if it was.
    pub(super) now: Option<crate::time::Instant>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Io<S> {
    /// The time, read once per poll (reading the clock is a measurable part of a small
    /// message's cost); [`fresh_now`](Self::fresh_now) reads it again.
    pub(super) fn now(&mut self) -> crate::time::Instant {
        match self.now {
            Some(now) => now,
            None => self.fresh_now(),
        }
    }

    /// The driver's receive step, reading the clock (once per poll) only if the step needs
    /// the time.
    pub(super) fn receive_step<T>(
        &mut self,
        next: impl FnOnce(&mut Driver, crate::time::Instant) -> Result<Option<T>, crate::error::Error>,
    ) -> Step<Result<Option<T>, Error>> {
        let (clock, cached) = (&self.clock, &mut self.now);
        let mut now = || *cached.get_or_insert_with(|| clock.instant(TokioInstant::now()));
        self.driver.receive_step(&mut now, next)
    }

    pub(super) fn fresh_now(&mut self) -> crate::time::Instant {
        let now = self.clock.instant(TokioInstant::now());
        self.now = Some(now);
        now
    }

    /// Does what a driver step wants. `Ready(Ok(()))` once the next step can be taken;
    /// `Pending` when the stream is not ready and no deadline has passed. A failure of the
    /// stream is returned; the connection is then over.
    pub(super) fn poll_want(
        &mut self,
        cx: &mut Context<'_>,
        want: Want,
    ) -> Poll<Result<(), Error>> {
        match want {
            Want::Write => {
                if self.poll_write_out(cx)? {
                    return Poll::Ready(Ok(()));
                }
                // A peer that stops reading must not stall the deadlines (keepalive, close).
                if self.poll_deadline(cx) {
                    let now = self.fresh_now();
                    self.driver.write_stalled(now);
                    return Poll::Ready(Ok(()));
                }
                Poll::Pending
            }
            Want::Read { .. } => match self.poll_read(cx) {
                Poll::Ready(result) => Poll::Ready(result),
                // Woken by the deadline: the next step runs it, with the time read afresh.
                Poll::Pending if self.poll_deadline(cx) => {
                    self.now = None;
                    Poll::Ready(Ok(()))
                }
                Poll::Pending => {
                    // Going idle: hold no buffer while waiting.
                    self.release_buffers();
                    Poll::Pending
                }
            },
            Want::Shutdown => {
                // RFC 6455 §7.1.1: the side the connection says closes the transport does so
                // now; the other side saw the end of the stream. A failed shutdown changes
                // nothing: the connection is over either way.
                if Pin::new(&mut self.stream).poll_shutdown(cx).is_pending() {
                    return Poll::Pending;
                }
                self.driver.shut_down();
                Poll::Ready(Ok(()))
            }
        }
    }

    /// Gives this connection's idle buffers to the thread's spare (or frees them, when the
    /// spare holds some already).
    pub(super) fn release_buffers(&mut self) {
        let mut released = self.driver.release_buffers();
        let _kept = SPARE.try_with(|spare| {
            let mut spare = spare.borrow_mut();
            if spare.input.is_none() {
                spare.input = released.input.take();
            }
            if spare.output.is_none() {
                spare.output = released.output.take();
            }
            if spare.message.is_none() {
                spare.message = released.message.take();
            }
            #[cfg(feature = "deflate")]
            {
                if spare.inflate.is_none() {
                    spare.inflate = released.inflate.take();
                }
                spare.deflate.keep(core::mem::take(&mut released.deflate));
            }
        });
    }

    /// Takes the thread's spare buffers for those this connection does not hold.
    pub(super) fn reuse_buffers(&mut self) {
        if !self.driver.lacks_buffers() {
            return;
        }
        let driver = &mut self.driver;
        let _taken = SPARE.try_with(|spare| driver.reuse_buffers(&mut spare.borrow_mut()));
    }

    /// Whether the next deadline has passed, arming the sleep that wakes the task for it
    /// otherwise. Deadlines are checked against the clock itself, never against a time read
    /// earlier in this poll: a sleep that fired must find its deadline passed.
    pub(super) fn poll_deadline(&mut self, cx: &mut Context<'_>) -> bool {
        let Some(deadline) = self.driver.poll_timeout() else {
            self.sleep = None;
            return false;
        };
        // Armed for this deadline already: the sleep says whether it passed, and the clock
        // need not be read (it is read when the sleep fires, to run the deadline).
        if let Some((armed, sleep)) = &mut self.sleep {
            if *armed == deadline {
                return sleep.as_mut().poll(cx).is_ready();
            }
        }
        if deadline <= self.fresh_now() {
            return true;
        }
        let at = self.clock.at(deadline);
        let sleep = match &mut self.sleep {
            Some((armed, sleep)) => {
                *armed = deadline;
                sleep.as_mut().reset(at);
                sleep
            }
            None => &mut self.sleep.insert((deadline, Box::pin(sleep_until(at)))).1,
        };
        sleep.as_mut().poll(cx).is_ready()
    }

    /// Runs the deadlines that have passed (arming the sleep for the next one otherwise).
    /// `true` if one ran and the next deadline moved, so a clock that rounds cannot spin.
    pub(super) fn poll_timer(&mut self, cx: &mut Context<'_>) -> bool {
        if !self.poll_deadline(cx) {
            return false;
        }
        let before = self.driver.poll_timeout();
        let now = self.fresh_now();
        self.driver.run_deadlines(now);
        self.driver.poll_timeout() != before
    }

    /// Writes pending output until the stream would block. `Ok(true)` if bytes were
    /// written; on a failure the connection is over (and the error is returned once).
    pub(super) fn poll_write_out(&mut self, cx: &mut Context<'_>) -> Result<bool, Error> {
        let mut progress = false;
        while self.driver.has_output() {
            let vectored = !self.driver.output_is_one_slice() && self.stream.is_write_vectored();
            let stream = Pin::new(&mut self.stream);
            let mut parts = [&[][..]; WRITE_PARTS];
            let n = if vectored { self.driver.output_parts(&mut parts) } else { 0 };
            let written = if n <= 1 {
                stream.poll_write(cx, self.driver.output())
            } else {
                // Frames queued behind each other (a large payload kept as it is, shared
                // broadcast frames) leave in one write, none of them copied.
                let slices: [IoSlice<'_>; WRITE_PARTS] =
                    core::array::from_fn(|i| IoSlice::new(parts[i]));
                stream.poll_write_vectored(cx, &slices[..n])
            };
            match written {
                Poll::Ready(Ok(0)) => {
                    return Err(self.transport_failed(io::ErrorKind::WriteZero.into()))
                }
                Poll::Ready(Ok(n)) => {
                    self.driver.wrote(n);
                    charge(cx, n);
                    progress = true;
                }
                Poll::Ready(Err(e)) => return Err(self.transport_failed(e)),
                Poll::Pending => return Ok(progress),
            }
        }
        Ok(progress)
    }

    /// The stream failed: the connection is over, nothing more is read or written.
    pub(super) fn transport_failed(&mut self, e: io::Error) -> Error {
        self.driver.on_transport_error();
        self.driver.shut_down();
        Error::Io(e)
    }

    /// Reads more input. `Ready(Ok(()))` after bytes or the end of the stream (whose
    /// meaning the next step reports).
    pub(super) fn poll_read(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.reuse_buffers();
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
                self.driver.read_eof();
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Ok(n)) => {
                charge(cx, n);
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(self.transport_failed(e))),
            Poll::Pending => Poll::Pending,
        }
    }
}
