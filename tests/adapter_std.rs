//! Placeholder while the adapters land.
