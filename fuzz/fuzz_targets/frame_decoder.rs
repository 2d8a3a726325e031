//! Arbitrary bytes into an open server and an open client, through a small receive buffer, in
//! read sizes taken from the input.
//!
//! Invariants (see `FrameChecker`): every `receive` returns `Ok` with `consumed` ≤ the input
//! and progress (an event, consumed bytes, or a need for more bytes that fit the buffer), or a
//! documented `Error` whose close code matches its kind and is the close frame sent; after an
//! error or a close frame, input is discarded and no event follows; text is UTF-8 and text
//! pieces concatenate to UTF-8; messages and pieces stay within the limits; pongs are
//! coalesced and echo the latest ping; only a server closes the transport first; and the heap
//! held by the connection stays within `FRAME_PATH_HEAP`.

#![no_main]

use libfuzzer_sys::fuzz_target;
use wsmachine::{Connection, Role};
use wsmachine_fuzz::{
    run_frames, Chunks, Feed, FrameChecker, HeapWatch, Input, Limits, FRAME_PATH_HEAP, NOW,
};

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let limits = Limits::from_input(&mut input);
    let drain_every = usize::from(input.byte() % 4);
    let chunk_input = input.take(9).to_vec();
    let stream = input.rest();
    for role in [Role::Server, Role::Client] {
        let mut conn = match role {
            Role::Server => Connection::open_server(limits.config(), NOW),
            Role::Client => Connection::open_client(limits.config(), [3; 32], NOW),
        };
        let chunks = Chunks::from_input(&mut Input::new(&chunk_input));
        let mut feed = Feed::new(stream, chunks, limits.buffer);
        let mut checker = FrameChecker::new(role, limits, stream.len());
        let heap = HeapWatch::start();
        run_frames(&mut conn, &mut feed, &mut checker, drain_every);
        heap.assert_within(FRAME_PATH_HEAP, "the connection receiving frames");
    }
});
