//! Buffers around a connection, owned by the caller: the input buffer that keeps unconsumed
//! bytes at the front as [`Connection::receive`](crate::Connection::receive) requires, and the
//! reassembler that turns events into whole owned messages.

#[cfg(feature = "alloc")]
pub(crate) mod input;
#[cfg(feature = "alloc")]
pub(crate) mod output;
#[cfg(feature = "alloc")]
pub(crate) mod reassemble;
pub(crate) mod recv;
#[cfg(feature = "alloc")]
pub(crate) mod shared;
