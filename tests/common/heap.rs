//! Counting the heap, per thread: a counting global allocator and [`peak_heap`].
//!
//! Not declared in `common/mod.rs`, since that would install the allocator in every test
//! binary: a binary that measures the heap includes it with
//! `#[path = "common/heap.rs"] mod heap;`. The counters are per thread, so tests running in
//! parallel do not pollute each other's figures.

#![allow(dead_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

struct Counting;

thread_local! {
    /// Bytes allocated and not freed by this thread, and the peak since the last reset.
    static HEAP: Cell<(isize, isize)> = const { Cell::new((0, 0)) };
}

fn count(delta: isize) {
    let _ = HEAP.try_with(|h| {
        let (live, peak) = h.get();
        let live = live + delta;
        h.set((live, peak.max(live)));
    });
}

// SAFETY: every call is forwarded to `System` unchanged; the counters only observe sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract for `alloc` is passed on as is.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            count(layout.size() as isize);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as for `alloc`; `ptr` came from `System` through this allocator.
        unsafe { System.dealloc(ptr, layout) };
        count(-(layout.size() as isize));
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: as for `dealloc`.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            count(new_size as isize - layout.size() as isize);
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Runs `f` and returns its result and the most heap this thread held during it, above what
/// it held before.
pub fn peak_heap<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let base = HEAP.with(|h| {
        let (live, _) = h.get();
        h.set((live, live));
        live
    });
    let result = f();
    let peak = HEAP.with(|h| h.get().1);
    (result, (peak - base).max(0) as usize)
}

/// The bytes this thread holds on the heap right now (allocated and not freed).
pub fn live_heap() -> isize {
    HEAP.with(|h| h.get().0)
}

/// The heap the core may hold while receiving frames, beyond anything proportional to a
/// limit: the queue of owed bytes, which holds at most one pong, one close and one keepalive
/// ping (each at most 14 + 125 bytes, so 417 bytes), with `Vec`'s growth rounding that up to
/// 512 bytes of capacity; the two close frames once the connection closes (128 bytes each,
/// kept on the heap so an idle connection is smaller); and a client's masking-key stream
/// (120 bytes, allocated when the connection is made). Nothing else on the frame path
/// allocates.
pub const FRAME_PATH_HEAP: usize = 512 + 2 * 128 + 128;

/// A flood of 100,000 pings at `conn` from its peer, drained now and then as a slow writer
/// would: each drain must hold exactly one pong, for the latest ping, framed as `conn`'s role
/// frames it. Returns the peak heap the flood cost.
pub fn ping_flood(conn: &mut wsmachine::Connection) -> usize {
    use crate::common::drain;
    use crate::common::wire::{frame, frames, T0};
    use wsmachine::frame::Opcode;
    use wsmachine::{Event, Role};
    let (role, peer) = match conn.role() {
        Role::Server => (Role::Server, Role::Client),
        Role::Client => (Role::Client, Role::Server),
    };
    let pings: Vec<Vec<u8>> =
        (0..100_000u32).map(|i| frame(peer, true, Opcode::Ping, &i.to_be_bytes())).collect();
    let mut input = pings[0].clone();
    let ((), peak) = peak_heap(|| {
        for (i, ping) in pings.iter().enumerate() {
            input.copy_from_slice(ping);
            let r = conn.receive(&mut input, T0).expect("a ping");
            assert!(matches!(r.event, Some(Event::Ping(_))));
            if i % 10_000 == 9_999 {
                let (sent, close) = drain(conn);
                assert!(!close);
                assert_eq!(
                    frames(role, &sent),
                    [(Opcode::Pong, (i as u32).to_be_bytes().to_vec())]
                );
            }
        }
    });
    peak
}
