//! The connection's timers: one table, one place to see them all.

use crate::time::Instant;

/// Every deadline a connection can have.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub(crate) enum Timer {
    /// The opening handshake must finish by then.
    Handshake,
    /// The closing handshake (or, for a client, the server's TCP close) must finish by then.
    Close,
    /// Send a keepalive ping then.
    Keepalive,
    /// The keepalive ping must have been answered by then.
    Pong,
    /// Something must have been received by then.
    Idle,
}

const TIMERS: usize = 5;

impl Timer {
    const ALL: [Self; TIMERS] =
        [Self::Handshake, Self::Close, Self::Keepalive, Self::Pong, Self::Idle];

    const fn index(self) -> usize {
        self as usize
    }
}

/// The deadlines currently armed, in microseconds; [`NEVER`] for a timer that is not armed
/// (a deadline at the very end of the clock's range is the same as none). Half the size of
/// `[Option<Instant>; 5]`, which matters for the memory of an idle connection.
#[derive(Clone, Copy, Debug)]
pub(crate) struct TimerTable {
    deadlines: [u64; TIMERS],
}

/// A disarmed timer.
const NEVER: u64 = u64::MAX;

impl Default for TimerTable {
    fn default() -> Self {
        Self { deadlines: [NEVER; TIMERS] }
    }
}

impl TimerTable {
    pub(crate) fn set(&mut self, timer: Timer, at: Instant) {
        self.deadlines[timer.index()] = at.as_micros();
    }

    pub(crate) fn stop(&mut self, timer: Timer) {
        self.deadlines[timer.index()] = NEVER;
    }

    pub(crate) fn get(&self, timer: Timer) -> Option<Instant> {
        let at = self.deadlines[timer.index()];
        (at != NEVER).then(|| Instant::from_micros(at))
    }

    pub(crate) fn stop_all(&mut self) {
        self.deadlines = [NEVER; TIMERS];
    }

    /// The earliest armed deadline.
    pub(crate) fn next(&self) -> Option<Instant> {
        let at = self.deadlines.iter().copied().min().unwrap_or(NEVER);
        (at != NEVER).then(|| Instant::from_micros(at))
    }

    /// The first timer (in a fixed order of precedence) whose deadline is at or before `now`,
    /// disarmed as it is returned.
    pub(crate) fn take_expired(&mut self, now: Instant) -> Option<Timer> {
        let timer = Timer::ALL.into_iter().find(|t| self.get(*t).is_some_and(|at| at <= now))?;
        self.stop(timer);
        Some(timer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_is_the_earliest_and_expiry_disarms() {
        let mut t = TimerTable::default();
        assert_eq!(t.next(), None);
        t.set(Timer::Idle, Instant::from_millis(30));
        t.set(Timer::Keepalive, Instant::from_millis(10));
        assert_eq!(t.next(), Some(Instant::from_millis(10)));
        assert_eq!(t.take_expired(Instant::from_millis(9)), None);
        assert_eq!(t.take_expired(Instant::from_millis(40)), Some(Timer::Keepalive));
        assert_eq!(t.take_expired(Instant::from_millis(40)), Some(Timer::Idle));
        assert_eq!(t.take_expired(Instant::from_millis(40)), None);
    }
}
