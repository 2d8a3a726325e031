//! Buffers around a connection, owned by the caller: the input buffer that keeps unconsumed
//! bytes at the front as [`Connection::receive`](crate::Connection::receive) requires, and the
//! reassembler that turns events into whole owned messages.

pub(crate) mod input;
pub(crate) mod output;
pub(crate) mod reassemble;
pub(crate) mod recv;
pub(crate) mod shared;
