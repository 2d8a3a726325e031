//! The adapters' read buffer: it grows as frames need, reads into uninitialized memory, and is
//! released while the connection is idle.

use alloc::vec::Vec;

use super::recv::RecvBuffer;

/// The read buffer: bytes read but not yet consumed by the connection, kept at the front.
///
/// It starts at [`INPUT_START`] bytes and grows (doubling, at most to
/// [`Config::receive_buffer_size`](crate::Config::receive_buffer_size)) when the connection
/// says it needs more room for a frame, or when a read filled all the room it was offered.
/// Memory is never zeroed just to be overwritten: an async adapter reads into the `Vec`'s
/// spare capacity ([`Driver::read_with`]), and a blocking read (which needs an initialized
/// slice) zeroes only space that was never initialized before
/// ([`Driver::input_space`]).
#[derive(Debug)]
pub(crate) struct InputBuffer {
    /// The unconsumed bytes, kept as the connection needs them. All of the storage `Vec` is
    /// initialized (its length is `end` after an async read, possibly more after a blocking
    /// one).
    pub(crate) recv: RecvBuffer<Vec<u8>>,
    /// How large the buffer may be for the next read: grows from [`INPUT_START`] to `max`
    /// and is remembered when the buffer is released.
    pub(crate) size: usize,
    /// The receive buffer size the connection was configured with.
    pub(crate) max: usize,
    /// Whether the last read filled all the room it was offered.
    pub(crate) full_read: bool,
}

/// The read buffer's first size: enough for a handshake request and for small messages; it
/// grows when frames need more.
pub(crate) const INPUT_START: usize = 4096;

/// The adapters' inflate space: what a compressed message is inflated into, a piece at a
/// time, before the driver copies it into the owned message.
#[cfg(feature = "deflate")]
pub(crate) const INFLATE_SPACE: usize = 16 * 1024;

impl InputBuffer {
    pub(crate) fn new(max: usize) -> Self {
        Self {
            recv: RecvBuffer::new(Vec::new()),
            size: INPUT_START.min(max),
            max,
            full_read: false,
        }
    }

    /// Whether the buffer holds no allocation (it was released).
    pub(crate) fn is_unallocated(&self) -> bool {
        self.recv.storage.capacity() == 0
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.recv.is_empty()
    }

    /// Moves the unconsumed bytes to the front, and decides how large the buffer must be
    /// for the next read: large enough for what the connection needs (a frame that fits
    /// the receive buffer must fit whole), doubled after a read that filled it.
    pub(crate) fn prepare(&mut self) {
        self.recv.compact();
        let want = self.recv.end + self.recv.needed;
        if want > self.size || self.full_read {
            self.size = want.max(self.size.saturating_mul(2)).min(self.max);
        }
        self.recv.needed = 0;
        self.full_read = false;
    }

    /// Free initialized space after the unconsumed bytes, for a read that needs an
    /// initialized slice; space is zeroed only the first time it is used.
    pub(crate) fn spare(&mut self) -> &mut [u8] {
        self.prepare();
        if self.recv.storage.len() < self.size {
            self.recv.storage.resize(self.size, 0);
        }
        &mut self.recv.storage[self.recv.end..]
    }

    /// `n` bytes were read into [`spare`](Self::spare).
    pub(crate) fn filled(&mut self, n: usize) {
        self.recv.end = (self.recv.end + n).min(self.recv.storage.len());
        self.full_read = n > 0 && self.recv.end == self.recv.storage.len();
    }

    /// The buffer as a `Vec` holding just the unconsumed bytes, with spare capacity for the
    /// next read; `read` appends to it (through `BufMut`, without zeroing).
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    pub(crate) fn read_with<R>(&mut self, read: impl FnOnce(&mut Vec<u8>) -> R) -> R {
        self.prepare();
        self.recv.storage.truncate(self.recv.end);
        if self.recv.storage.capacity() < self.size {
            self.recv.storage.reserve_exact(self.size - self.recv.end);
        }
        let before = self.recv.end;
        let result = read(&mut self.recv.storage);
        self.recv.end = self.recv.storage.len();
        self.full_read = self.recv.end > before && self.recv.end >= self.size;
        result
    }

    /// Appends `bytes` after the unconsumed bytes.
    pub(crate) fn append(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        self.prepare();
        self.recv.storage.truncate(self.recv.end);
        self.recv.storage.extend_from_slice(bytes);
        self.recv.end = self.recv.storage.len();
    }

    /// Frees the buffer when it holds nothing, so an idle connection costs no buffer. The
    /// size it had grown to is kept for the next read.
    pub(crate) fn release_if_empty(&mut self) -> Option<Vec<u8>> {
        if !self.is_empty() {
            return None;
        }
        self.full_read = false;
        #[cfg(feature = "deflate")]
        let inflate = self.recv.inflate.take();
        let released = core::mem::replace(&mut self.recv, RecvBuffer::new(Vec::new()));
        #[cfg(feature = "deflate")]
        {
            self.recv.inflate = inflate;
        }
        Some(released.into_inner()).filter(|buf| buf.capacity() > 0)
    }

    /// Makes sure there is inflate space (a connection that negotiated permessage-deflate
    /// needs it), taking `spare`'s allocation if it has one. It is [`INFLATE_SPACE`] bytes
    /// (at most the receive buffer's size): the driver copies every message into an owned
    /// one anyway, so larger pieces would only hold more memory per busy connection.
    #[cfg(feature = "deflate")]
    pub(crate) fn ensure_inflate(&mut self, spare: Option<Vec<u8>>) {
        if self.recv.inflate.is_none() {
            let mut space = spare.unwrap_or_default();
            space.resize(INFLATE_SPACE.min(self.max), 0);
            self.recv.inflate = Some(space);
        }
    }

    /// Gives up the inflate space (when no message's inflated bytes wait in it).
    #[cfg(feature = "deflate")]
    pub(crate) fn release_inflate(&mut self) -> Option<Vec<u8>> {
        self.recv.inflate.take()
    }

    /// Takes `buf`'s allocation as the buffer's storage, when it holds none (after
    /// [`release_if_empty`](Self::release_if_empty)): a buffer another connection released
    /// serves this one without a new allocation. `buf` is given back otherwise.
    pub(crate) fn adopt(&mut self, mut buf: Vec<u8>) -> Option<Vec<u8>> {
        if !self.is_empty() || self.recv.capacity() > 0 || self.recv.storage.capacity() > 0 {
            return Some(buf);
        }
        buf.clear();
        #[cfg(feature = "deflate")]
        let inflate = self.recv.inflate.take();
        self.recv = RecvBuffer::new(buf);
        #[cfg(feature = "deflate")]
        {
            self.recv.inflate = inflate;
        }
        None
    }
}
