//! The wire layer: stateless parsing and encoding of what travels in frames (RFC 6455 §5):
//! frame headers, masking, UTF-8 validation, close codes and close payloads. No state, no
//! allocation; the connection layer builds on it.

pub(crate) mod close;
pub mod frame;
pub(crate) mod mask;
pub(crate) mod utf8;
