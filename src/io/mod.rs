//! The I/O layer: everything an adapter needs that is not protocol.
//!
//! `driver.rs` is the one I/O-free driver every adapter runs on (a [`Connection`] with its
//! buffers: deadlines, who shuts the transport, failures reported once), over heap storage
//! (`driver/heap.rs`: growing buffers, reassembly, the answer from a `Decision`) or the
//! caller's fixed buffers (`driver/fixed.rs`, for `embedded.rs`, the embedded-io-async
//! adapter); `owned.rs` the owned types the
//! adapters speak; `error.rs` their error; `url.rs` `ws://` URLs; `listen.rs` the limits and accept backoff both
//! adapters' listeners share; `clock.rs` the operating
//! system's time and entropy. `blocking.rs` and `tokio/` only move bytes between a transport
//! and the driver.
//!
//! [`Connection`]: crate::Connection

#![cfg_attr(not(feature = "std"), allow(dead_code))]

pub(crate) mod driver;
#[cfg(feature = "embedded-io")]
pub mod embedded;
#[cfg(feature = "alloc")]
pub(crate) mod error;
#[cfg(feature = "alloc")]
pub(crate) mod owned;

#[cfg(feature = "axum")]
pub mod axum;
#[cfg(feature = "std")]
pub mod blocking;
#[cfg(feature = "std")]
pub(crate) mod clock;
#[cfg(feature = "std")]
pub(crate) mod listen;
#[cfg(feature = "tokio")]
pub mod tokio;
#[cfg(feature = "std")]
pub(crate) mod url;
