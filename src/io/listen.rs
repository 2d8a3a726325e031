//! What both adapters' listeners share: the limits a public server needs, the count of open
//! connections, and the accept loop's answer to a failed `accept`.

use alloc::sync::Arc;
use core::sync::atomic::{AtomicUsize, Ordering};
use std::io;
use std::time::Duration;

use crate::handshake::Request;
use crate::io::owned::Decision;

/// The most connections a listener keeps open by default (see `max_connections`).
pub(crate) const DEFAULT_MAX_CONNECTIONS: usize = 10_000;

/// The most opening handshakes a listener runs at once by default (see `max_handshakes`).
pub(crate) const DEFAULT_MAX_HANDSHAKES: usize = 1_024;

/// The first pause after `accept` failed for want of resources (descriptors, memory).
const BACKOFF_START: Duration = Duration::from_millis(5);

/// The longest pause between attempts: a server whose descriptors are back serves again
/// within it.
const BACKOFF_MAX: Duration = Duration::from_millis(500);

/// The connections a listener holds open, counted from `accept` until the stream is dropped.
#[derive(Clone, Debug, Default)]
pub(crate) struct Count(Arc<AtomicUsize>);

impl Count {
    /// Takes a place if fewer than `max` are taken.
    pub(crate) fn try_take(&self, max: usize) -> Option<Slot> {
        let taken = self.0.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
            if n < max {
                Some(n + 1)
            } else {
                None
            }
        });
        taken.ok().map(|_| Slot(self.0.clone()))
    }

    /// Counts an accepted connection: its place, and whether it came past `max` (it is then
    /// counted too while it is being refused).
    pub(crate) fn admit(&self, max: usize) -> (Slot, bool) {
        match self.try_take(max) {
            Some(slot) => (slot, false),
            None => {
                self.0.fetch_add(1, Ordering::AcqRel);
                (Slot(self.0.clone()), true)
            }
        }
    }

    pub(crate) fn get(&self) -> usize {
        self.0.load(Ordering::Acquire)
    }
}

/// One place in a [`Count`], given back when dropped.
#[derive(Debug)]
pub(crate) struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The answer to a request that came past the connection limit.
pub(crate) fn busy(_request: &Request<'_>) -> Decision {
    Decision::reject(503).header("Retry-After", "1")
}

/// How an accept loop waits after `accept` failed.
#[derive(Debug, Default)]
pub(crate) struct Backoff {
    next: Option<Duration>,
}

impl Backoff {
    /// The pause before the next `accept` after `error`: none for an error that concerns
    /// only the connection being accepted (it was reset or aborted while it waited in the
    /// backlog), a growing one otherwise. Out of descriptors (`EMFILE`, `ENFILE`) or of
    /// buffer memory, `accept` fails at once every time it is tried, and a loop that retried
    /// at once would spin; the connection stays in the kernel's backlog meanwhile, and is
    /// served once the server has descriptors again.
    pub(crate) fn after(&mut self, error: &io::Error) -> Option<Duration> {
        use io::ErrorKind::*;
        if matches!(
            error.kind(),
            ConnectionAborted | ConnectionReset | ConnectionRefused | Interrupted | WouldBlock
        ) {
            return None;
        }
        let pause = self.next.unwrap_or(BACKOFF_START);
        self.next = Some((pause * 2).min(BACKOFF_MAX));
        Some(pause)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn count_takes_up_to_max_and_gives_back_on_drop() {
        let count = Count::default();
        let a = count.try_take(2).unwrap();
        let b = count.try_take(2).unwrap();
        assert!(count.try_take(2).is_none());
        assert_eq!(count.get(), 2);
        drop(a);
        assert_eq!(count.get(), 1);
        let _c = count.try_take(2).unwrap();
        drop(b);
        assert_eq!(count.get(), 1);
        // Past the limit a connection is still counted, and said to be over it.
        let (_d, over) = count.admit(1);
        assert!(over);
        assert_eq!(count.get(), 2);
    }

    #[test]
    fn backoff_grows_for_resource_errors_and_not_for_connection_errors() {
        let mut backoff = Backoff::default();
        let emfile = io::Error::from_raw_os_error(24);
        assert_eq!(backoff.after(&emfile), Some(BACKOFF_START));
        assert_eq!(backoff.after(&emfile), Some(BACKOFF_START * 2));
        for _ in 0..20 {
            backoff.after(&emfile);
        }
        assert_eq!(backoff.after(&emfile), Some(BACKOFF_MAX));
        assert_eq!(backoff.after(&io::ErrorKind::ConnectionAborted.into()), None);
    }
}
