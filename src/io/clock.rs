//! What the std adapters take from the operating system: time and entropy.

use std::io;

use super::error::AdapterError;

/// A client seed from the operating system's entropy source.
pub(crate) fn os_seed() -> Result<[u8; 32], AdapterError> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| {
        AdapterError::Io(io::Error::other(alloc::format!(
            "no entropy from the operating system: {e}"
        )))
    })?;
    Ok(seed)
}

/// A monotonic clock turned into the core's [`Instant`](crate::time::Instant)s.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Clock<T> {
    origin: T,
}

impl<T: Copy + core::ops::Sub<T, Output = std::time::Duration>> Clock<T>
where
    T: core::ops::Add<std::time::Duration, Output = T>,
{
    pub(crate) fn new(origin: T) -> Self {
        Self { origin }
    }

    /// The core's instant for `at`.
    pub(crate) fn instant(&self, at: T) -> crate::time::Instant {
        crate::time::Instant::from_micros(
            u64::try_from((at - self.origin).as_micros()).unwrap_or(u64::MAX),
        )
    }

    /// The clock's time for the core's `instant`.
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    pub(crate) fn at(&self, instant: crate::time::Instant) -> T {
        self.origin + std::time::Duration::from_micros(instant.as_micros())
    }
}
