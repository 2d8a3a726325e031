//! Giving memory back after a burst of large messages or of connections.
//!
//! glibc's `malloc` serves allocations of 128 KiB and more with `mmap`, and unmaps them when
//! freed, but only until the first such block is freed: it then raises its threshold to that
//! block's size (up to 32 MiB), and later blocks of up to that size come from its heaps.
//! Freed, they stay in the process until [`trim`] gives their pages back. The servers trim
//! when their connections fall far ([`Trimmer`]), which brings them back to within twice
//! their baseline after every attack of `scripts/siege.py`.
//!
//! The free top of an arena other than the main one is not trimmed, so the chat keeps every
//! thread in the main arena ([`one_arena`]). The tokio echo server does not: its workers
//! then meet at the arena's lock, which cost it about 9 % of its CPU per handshake in a
//! handshake flood (A/B, three rounds each: 112 against 103 µs), the figure it is compared
//! with the peers on; what stays at its workers' arena tops after an attack is a few MiB.
//! A thread-per-connection server fixes the threshold ([`return_large_buffers`]) and caps the arenas at two
//! ([`few_arenas`]) instead: with hundreds of threads on one arena, its lock would be
//! everyone's. The tokio servers leave the threshold alone: fixed, every message buffer of
//! 128 KiB or more is a fresh mapping, page faults and an unmap (a TLB shootdown on every
//! core), and that was a third of an echo server's CPU under siege's garbage attack (perf),
//! with the honest clients' echo p99 at 96 ms against 12 ms with glibc's own threshold (and
//! 62 against 16 ms under max-messages). The blocking echo server allocates no buffer per
//! message (`send_owned` gives an echo's allocation to the next message received), so the
//! fixed threshold costs it nothing there.
//!
//! Process-wide allocator settings, not the library's: a server with another allocator
//! (jemalloc, mimalloc) sets its own decay policy instead.

// Each server uses the part it needs.
#![allow(dead_code)]

/// Fixes glibc's mmap threshold at its default, 128 KiB, which also turns off its
/// adjustment: every block of 128 KiB or more goes back to the system when freed, at the cost
/// of an `mmap`/`munmap` pair each (see the module documentation). Does nothing on other
/// platforms.
pub fn return_large_buffers() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        extern "C" {
            fn mallopt(param: i32, value: i32) -> i32;
        }
        /// `M_MMAP_THRESHOLD` in glibc's `<malloc.h>`.
        const M_MMAP_THRESHOLD: i32 = -3;
        // SAFETY: `mallopt` only sets an allocator parameter, under glibc's own lock; it
        // takes no pointer.
        let _set = unsafe { mallopt(M_MMAP_THRESHOLD, 128 * 1024) };
    }
}

/// One malloc arena for every thread, for a server on a runtime with a few worker threads
/// (the chat).
///
/// `malloc_trim` gives back the free top of the main arena but not of the others: with
/// each tokio worker in an arena of its own, a few MiB of freed message buffers stayed at
/// their tops after an attack (`siege --attack max-messages` against the chat, 20 clients:
/// 13 MiB against a 6.4 MiB baseline). With one arena it all goes back. Small allocations
/// come from glibc's per-thread caches without the arena's lock, and two workers meet at it
/// only for large ones (the honest p99 under 200 clients of 1 MiB messages: 17.5 ms).
pub fn one_arena() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        extern "C" {
            fn mallopt(param: i32, value: i32) -> i32;
        }
        /// `M_ARENA_MAX` in glibc's `<malloc.h>`.
        const M_ARENA_MAX: i32 = -8;
        // SAFETY: as in `return_large_buffers`.
        let _set = unsafe { mallopt(M_ARENA_MAX, 1) };
    }
}

/// Caps glibc's malloc arenas at two, for a server with a thread per connection.
///
/// glibc gives threads their own arenas, up to 8 per core, and `malloc_trim` gives back the
/// free pages inside each of them but not the free top of an arena other than the main one:
/// after 1,000 connection threads came and went, 16 arenas kept 360 KiB each (7 MiB against
/// a 3.4 MiB baseline, measured with `siege --attack silent`); with two, the process went
/// back to its baseline. The threads of a blocking server wait on sockets far more than they
/// allocate, so two arenas (and glibc's per-thread caches) cost them no measurable time.
pub fn few_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        extern "C" {
            fn mallopt(param: i32, value: i32) -> i32;
        }
        /// `M_ARENA_MAX` in glibc's `<malloc.h>`.
        const M_ARENA_MAX: i32 = -8;
        // SAFETY: as in `return_large_buffers`.
        let _set = unsafe { mallopt(M_ARENA_MAX, 2) };
    }
}

/// Hands the free pages of every malloc heap back to the system (glibc's `malloc_trim`).
/// After thousands of connections closed, their small buffers (a handshake's read buffer,
/// a connection's state) are free but scattered through the heaps, which glibc only trims
/// from the top; measured after a slowloris attack of 1,000 connections, an echo server
/// stayed at 11 MiB against a 3 MiB baseline. Does nothing on other platforms.
pub fn trim() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        extern "C" {
            fn malloc_trim(pad: usize) -> i32;
        }
        // SAFETY: `malloc_trim` takes each heap's lock while it releases its free pages;
        // it takes no pointer.
        let _released = unsafe { malloc_trim(0) };
    }
}

/// When to [`trim`]: after the open connections fell to half of the most seen since the
/// last trim, by at least 8 (an attack, or a crowd, went away). Checked once a second by the
/// servers, so a trim, which walks the heaps (a few milliseconds for hundreds of MiB, less
/// for small heaps), runs at most once a second and once per such drop rather than per
/// connection. Twenty connections of 1 MiB messages leave 20 MiB behind them, so the drop
/// that counts is small.
#[derive(Debug, Default)]
pub struct Trimmer {
    peak: usize,
    /// Checks left that trim again after a drop: what the connections that went away
    /// held is freed over the next seconds (closing handshakes, queued sends).
    again: u8,
}

impl Trimmer {
    /// Looks at the number of connections open now; trims if they fell far enough, and
    /// again at the next three checks.
    pub fn check(&mut self, open: usize) {
        self.peak = self.peak.max(open);
        if open <= self.peak / 2 && self.peak - open >= 8 {
            trim();
            self.peak = open;
            self.again = 3;
        } else if self.again > 0 {
            trim();
            self.again -= 1;
        }
    }
}
