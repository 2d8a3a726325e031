//! [`Slot`]: state a connection holds only in some phases, boxed when there is a heap.
//!
//! With `alloc`, a `Slot<T>` is a `Box<T>`: an idle connection carries a pointer instead of
//! its handshake parser, close frames and masking-key stream inline, which keeps it small
//! (the figure the README quotes per idle connection). Without `alloc` the value sits inline,
//! so the connection is larger but needs no allocator at all. Either way it derefs to `T`.

#[cfg(feature = "alloc")]
pub(crate) type Slot<T> = alloc::boxed::Box<T>;

/// `T` held inline, with the `Box` interface the connection uses.
#[cfg(not(feature = "alloc"))]
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Slot<T>(T);

#[cfg(not(feature = "alloc"))]
impl<T> core::ops::Deref for Slot<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

#[cfg(not(feature = "alloc"))]
impl<T> core::ops::DerefMut for Slot<T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.0
    }
}

#[cfg(not(feature = "alloc"))]
impl<T> Slot<T> {
    /// The value, moved out.
    #[cfg_attr(not(feature = "embedded-io"), allow(dead_code))]
    pub(crate) fn into_inner(self) -> T {
        self.0
    }
}

/// `value` in a slot.
#[inline]
pub(crate) fn slot<T>(value: T) -> Slot<T> {
    #[cfg(feature = "alloc")]
    return alloc::boxed::Box::new(value);
    #[cfg(not(feature = "alloc"))]
    return Slot(value);
}
