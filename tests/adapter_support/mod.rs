//! Helpers shared by the adapter tests (tests/adapter_std.rs, tests/adapter_tokio.rs).

#![allow(dead_code)]

use std::time::{Duration, Instant};

use wsmachine::frame::{apply_mask, FrameHeader, Opcode};
use wsmachine::Config;

/// A valid upgrade request, as a raw client would send it.
pub const REQUEST: &[u8] = b"GET /chat HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n\
    Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
    Sec-WebSocket-Version: 13\r\n\r\n";

/// A 16 MiB payload with a recognisable pattern.
pub fn big_payload() -> Vec<u8> {
    (0..16u32 << 20).map(|i| (i % 251) as u8).collect()
}

/// Limits that let 16 MiB messages through.
pub fn big_config() -> Config {
    Config::new().max_message_size(32 << 20).max_frame_size(32 << 20)
}

/// A frame as a client sends it (masked).
pub fn client_frame(opcode: Opcode, payload: &[u8]) -> Vec<u8> {
    let key = [1, 2, 3, 4];
    let header = FrameHeader {
        fin: true,
        rsv: 0,
        opcode,
        mask: Some(key),
        payload_len: payload.len() as u64,
    };
    let mut out = vec![0; header.encoded_len()];
    header.encode(&mut out).unwrap();
    let at = out.len();
    out.extend_from_slice(payload);
    apply_mask(&mut out[at..], key, 0);
    out
}

/// Runs `test` on a thread and fails if it takes longer than `secs` seconds.
pub fn bounded<T: Send + 'static>(secs: u64, test: impl FnOnce() -> T + Send + 'static) -> T {
    let handle = std::thread::spawn(test);
    let start = Instant::now();
    while !handle.is_finished() {
        assert!(start.elapsed() < Duration::from_secs(secs), "test did not finish within {secs} s");
        std::thread::sleep(Duration::from_millis(5));
    }
    match handle.join() {
        Ok(result) => result,
        Err(panic) => std::panic::resume_unwind(panic),
    }
}
