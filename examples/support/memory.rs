//! Giving memory back after a burst of large messages.
//!
//! glibc's `malloc` serves allocations of 128 KiB and more with `mmap`, and unmaps them when
//! freed, but only until the first such block is freed: it then raises its threshold to that
//! block's size (up to 32 MiB), and later blocks of up to that size come from its heaps, which
//! it rarely gives back. After an attack of 1 MiB messages the freed buffers stay in the
//! process: measured with `scripts/siege.py`'s non-readers, an echo server stayed at 85 MiB
//! after the attackers left, against a 3 MiB baseline. Fixing the threshold at its default
//! (which also turns off the adjustment) sends every buffer of 128 KiB or more (a message
//! being received or echoed near the limit) back to the system when it is freed, at the cost
//! of an `mmap`/`munmap` pair per such message; smaller buffers are untouched.
//!
//! A process-wide allocator setting, not the library's: a server with another allocator
//! (jemalloc, mimalloc) sets its own decay policy instead.

// Each server uses the part it needs.
#![allow(dead_code)]

/// Fixes glibc's mmap threshold at 128 KiB (see the module documentation). Does nothing on
/// other platforms.
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
/// last trim, by at least 100 (an attack, or a crowd, went away). Checked once a second by
/// the servers, so a trim, which walks the heaps, runs once per such drop rather than per
/// connection.
#[derive(Debug, Default)]
pub struct Trimmer {
    peak: usize,
}

impl Trimmer {
    /// Looks at the number of connections open now; trims if they fell far enough.
    pub fn check(&mut self, open: usize) {
        self.peak = self.peak.max(open);
        if open <= self.peak / 2 && self.peak - open >= 100 {
            trim();
            self.peak = open;
        }
    }
}
