//! Helpers shared by the integration tests (public API only).

#![allow(dead_code)]

pub mod pair;
pub mod wire;

use wsmachine::{Connection, Transmit};

/// Drains `poll_transmit`: the bytes owed, and whether the transport is to be closed.
pub fn drain(conn: &mut Connection) -> (Vec<u8>, bool) {
    let mut out = [0; 512];
    let mut bytes = Vec::new();
    let mut close = false;
    while let Some(t) = conn.poll_transmit(&mut out) {
        match t {
            Transmit::Bytes(n) => bytes.extend_from_slice(&out[..n]),
            Transmit::CloseTransport => close = true,
        }
    }
    (bytes, close)
}
