//! Placeholder while the adapters land.
fn main() {}
