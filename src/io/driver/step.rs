//! The driver's loops as steps: each says what I/O to do next, or gives the result.

use super::{unslot, Answer, Driver, Handshake, Store};
use crate::error::Error;
use crate::time::Instant;

/// What the driver asks its adapter to do next: the only I/O there is.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub(crate) enum Want {
    /// Write [`Driver::output`] (or [`Driver::output_parts`]), report it with
    /// [`Driver::wrote`], then step again. A write that waits past the next deadline is
    /// reported with [`Driver::write_stalled`].
    Write,
    /// Read into [`Driver::input_space`] (or with [`Driver::read_with`]), waiting no longer
    /// than `deadline`; report it with [`Driver::filled`] or [`Driver::read_eof`] (nothing
    /// when the wait timed out), then step again: the step runs the deadline.
    Read {
        /// When the next timer is due, if one is armed.
        deadline: Option<Instant>,
    },
    /// Shut the transport down, report it with [`Driver::shut_down`], then step again.
    Shutdown,
}

/// One step of a driver loop: a result, or I/O to do first.
#[derive(Debug)]
pub(crate) enum Step<T> {
    /// The loop is done.
    Ready(T),
    /// Do this, then step again.
    Io(Want),
}

impl<T> Step<T> {
    fn map_ready<U>(self, f: impl FnOnce(T) -> U) -> Step<U> {
        match self {
            Self::Ready(t) => Step::Ready(f(t)),
            Self::Io(want) => Step::Io(want),
        }
    }
}

/// An adapter's error, made from how a handshake (or later the connection) ended.
pub(crate) trait Outcome<R>: Sized {
    /// The connection open (with what a client keeps of the server's `101`), or the error
    /// saying who refused or failed.
    fn outcome(ended: Handshake<R>) -> Result<Option<R>, Self>;
}

impl<S: Store> Driver<S> {
    /// The opening handshake's next step; `answer` gets the event that ends it (see
    /// [`handshake`](Driver::handshake)). Ready once the connection is open (with what a
    /// client keeps of the server's `101`), or once a failure or refusal has had its reply
    /// written and the transport shut.
    pub(crate) fn handshake_step_with<X: Outcome<S::Response>>(
        &mut self,
        now: Instant,
        answer: &mut Answer<'_, S>,
    ) -> Step<Result<Option<S::Response>, X>> {
        self.run_deadlines(now);
        loop {
            if self.has_output() {
                return Step::Io(Want::Write);
            }
            if let Some(ended) = self.ended.take() {
                if !matches!(*ended, Handshake::Open(_)) && !self.shut_down {
                    self.ended = Some(ended);
                    return Step::Io(Want::Shutdown);
                }
                return Step::Ready(X::outcome(unslot(ended)));
            }
            let ended = match self.handshake(now, answer) {
                Ok(Some(Ok(ended))) => ended,
                Ok(Some(Err(e))) => Handshake::Usage(e),
                Ok(None) if self.is_closed() => Handshake::Closed,
                Ok(None) => return Step::Io(Want::Read { deadline: self.poll_timeout() }),
                Err(e) => Handshake::Failed(e),
            };
            self.keep(ended);
        }
    }

    /// The receive loop's next step: `next` takes the next item from the buffered input
    /// ([`next_incoming`](Self::next_incoming) or [`next_raw`](Self::next_raw)). Ready with
    /// an item, with a failure of the peer's (once, after the reply it queued is written),
    /// or with `None` once the connection is over and the transport shut.
    ///
    /// `now` reads the clock; it is called only when the time is needed (a deadline is
    /// armed, or there is input to decode), so a poll that only finds the stream not ready
    /// reads no clock.
    pub(crate) fn receive_step<T, X: Outcome<S::Response>>(
        &mut self,
        now: &mut dyn FnMut() -> Instant,
        next: impl FnOnce(&mut Self, Instant) -> Result<Option<T>, Error>,
    ) -> Step<Result<Option<T>, X>> {
        if self.conn.poll_timeout().is_some() {
            self.run_deadlines(now());
        }
        if let Some(step) = self.settle_after_deadlines() {
            return step.map_ready(|r| r.map(|()| None));
        }
        if self.is_closed() {
            self.store.release();
            return Step::Ready(Ok(None));
        }
        if !self.has_input() {
            return Step::Io(Want::Read { deadline: self.poll_timeout() });
        }
        match next(self, now()) {
            Ok(Some(item)) => Step::Ready(Ok(Some(item))),
            // A pong or a close reply the input called for goes out before waiting.
            Ok(None) if self.has_output() => Step::Io(Want::Write),
            Ok(None) => Step::Io(Want::Read { deadline: self.poll_timeout() }),
            Err(e) => {
                self.fail_later(e);
                match self.settle_after_deadlines() {
                    Some(step) => step.map_ready(|r| r.map(|()| None)),
                    None => Step::Ready(Ok(None)),
                }
            }
        }
    }

    /// The send side's next step: Ready once everything queued is written (and the
    /// transport shut, if the connection is over), or with a failure of the peer's.
    pub(crate) fn flush_step<X: Outcome<S::Response>>(
        &mut self,
        now: Instant,
    ) -> Step<Result<(), X>> {
        self.settle(now).unwrap_or(Step::Ready(Ok(())))
    }

    /// What every loop does first: run due deadlines, write what is queued, shut the
    /// transport once the connection is over, report a failure. `None` when none of that
    /// is left.
    fn settle<X: Outcome<S::Response>>(&mut self, now: Instant) -> Option<Step<Result<(), X>>> {
        self.run_deadlines(now);
        self.settle_after_deadlines()
    }

    /// [`settle`](Self::settle) once the deadlines have run.
    fn settle_after_deadlines<X: Outcome<S::Response>>(&mut self) -> Option<Step<Result<(), X>>> {
        if self.has_output() {
            return Some(Step::Io(Want::Write));
        }
        if self.is_closed() && !self.shut_down {
            return Some(Step::Io(Want::Shutdown));
        }
        let ended = self.ended.take()?;
        Some(Step::Ready(X::outcome(unslot(ended)).map(|_open| ())))
    }

    /// Runs the deadlines due at `now`; a failure is kept for the next step to report.
    pub(crate) fn run_deadlines(&mut self, now: Instant) {
        if self.conn.poll_timeout().is_some_and(|at| at <= now) {
            self.deadline_passed(now);
        }
    }

    /// A write waited until a deadline and could not finish: the deadline runs (see
    /// [`run_deadlines`](Self::run_deadlines)).
    pub(crate) fn write_stalled(&mut self, now: Instant) {
        self.deadline_passed(now);
    }

    /// Runs the deadlines due at `now`. A failure is kept for the next step; if it ended the
    /// connection outright (the peer stopped answering: no pong, no close reply), the bytes
    /// still queued are dropped, as nothing bounds writing them any more and no close frame
    /// is owed behind them.
    fn deadline_passed(&mut self, now: Instant) {
        if let Err(e) = self.on_timeout(now) {
            self.fail_later(e);
            if self.is_closed() {
                self.store.discard_output();
            }
        }
    }

    /// The transport's read side ended; a connection that had not closed cleanly fails,
    /// reported by the next step.
    pub(crate) fn read_eof(&mut self) {
        if let Err(e) = self.on_eof() {
            self.fail_later(e);
        }
    }

    /// The peer's failure not yet reported, if any (for a loop that ends without another
    /// step).
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    pub(crate) fn take_failure(&mut self) -> Option<Error> {
        match self.ended.take().map(unslot) {
            Some(Handshake::Failed(e)) => Some(e),
            other => {
                self.ended = other.map(crate::slot::slot);
                None
            }
        }
    }

    /// Keeps the peer's failure `e` for the next step to report, unless one is kept already
    /// (the first failure is the one that counts).
    fn fail_later(&mut self, e: Error) {
        if self.ended.is_none() {
            self.keep(Handshake::Failed(e));
        }
    }

    /// The adapter shut the transport down.
    pub(crate) fn shut_down(&mut self) {
        self.shut_down = true;
    }

    /// Whether the transport was shut down.
    pub(crate) fn is_shut_down(&self) -> bool {
        self.shut_down
    }
}
