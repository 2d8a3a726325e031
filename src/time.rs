//! Time as an argument: the crate's own `no_std` clock types.
//!
//! The state machine never reads a clock. Every call that can arm or fire a timer takes the
//! current [`Instant`], which the caller makes from whatever monotonic clock it has (a
//! `std::time::Instant`, a tokio clock, a hardware tick counter). Only differences between
//! instants matter, so any fixed origin works, as long as it never goes backwards.

use core::ops::{Add, Sub};

/// A point on the caller's monotonic clock, in whole microseconds since an origin the caller
/// chooses.
///
/// Pass the same clock to every call of one [`Connection`](crate::Connection); instants that go
/// backwards are treated as "no time has passed".
#[derive(Clone, Copy, Debug, Default, Eq, Hash, Ord, PartialEq, PartialOrd)]
pub struct Instant {
    micros: u64,
}

impl Instant {
    /// The origin of the clock.
    pub const ZERO: Self = Self { micros: 0 };

    /// An instant `micros` microseconds after the origin.
    pub const fn from_micros(micros: u64) -> Self {
        Self { micros }
    }

    /// An instant `millis` milliseconds after the origin.
    pub const fn from_millis(millis: u64) -> Self {
        Self { micros: millis.saturating_mul(1_000) }
    }

    /// Microseconds since the origin.
    pub const fn as_micros(self) -> u64 {
        self.micros
    }

    /// The time from `earlier` to `self`, or zero if `earlier` is later.
    pub const fn saturating_duration_since(self, earlier: Self) -> Duration {
        Duration::from_micros(self.micros.saturating_sub(earlier.micros))
    }

    /// The instant `duration` after `self`, saturating at the end of time.
    pub const fn saturating_add(self, duration: Duration) -> Self {
        Self { micros: self.micros.saturating_add(duration.micros) }
    }
}

impl Add<Duration> for Instant {
    type Output = Self;

    fn add(self, rhs: Duration) -> Self {
        self.saturating_add(rhs)
    }
}

impl Sub for Instant {
    type Output = Duration;

    fn sub(self, rhs: Self) -> Duration {
        self.saturating_duration_since(rhs)
    }
}

/// A span of time in whole microseconds.
#[derive(Clone, Copy, Debug, Default, Eq, Hash, Ord, PartialEq, PartialOrd)]
pub struct Duration {
    micros: u64,
}

impl Duration {
    /// No time at all.
    pub const ZERO: Self = Self { micros: 0 };

    /// `micros` microseconds.
    pub const fn from_micros(micros: u64) -> Self {
        Self { micros }
    }

    /// `millis` milliseconds.
    pub const fn from_millis(millis: u64) -> Self {
        Self { micros: millis.saturating_mul(1_000) }
    }

    /// `secs` seconds.
    pub const fn from_secs(secs: u64) -> Self {
        Self { micros: secs.saturating_mul(1_000_000) }
    }

    /// The length in microseconds.
    pub const fn as_micros(self) -> u64 {
        self.micros
    }
}

impl From<core::time::Duration> for Duration {
    fn from(duration: core::time::Duration) -> Self {
        Self { micros: u64::try_from(duration.as_micros()).unwrap_or(u64::MAX) }
    }
}

impl From<Duration> for core::time::Duration {
    fn from(duration: Duration) -> Self {
        core::time::Duration::from_micros(duration.micros)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_saturates_instead_of_overflowing() {
        let late = Instant::from_micros(u64::MAX - 1);
        assert_eq!((late + Duration::from_secs(1)).as_micros(), u64::MAX);
        assert_eq!(Instant::ZERO - late, Duration::ZERO);
        assert_eq!(Instant::from_millis(5) - Instant::from_millis(2), Duration::from_millis(3));
    }

    #[test]
    fn converts_from_and_to_core_duration() {
        let d: Duration = core::time::Duration::from_millis(1500).into();
        assert_eq!(d, Duration::from_micros(1_500_000));
        assert_eq!(core::time::Duration::from(d), core::time::Duration::from_millis(1500));
    }
}
