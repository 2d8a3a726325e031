//! [`Owed`]: the bytes a connection owes the peer ahead of any frame — the client's upgrade
//! request, a static HTTP error response, or one encoded control frame — and how far they
//! were handed out.

/// The longest encoded control frame: a 125-byte payload, a 2-byte header and a masking key.
pub(super) const CONTROL_FRAME_MAX: usize = 125 + 2 + 4;

#[derive(Debug)]
enum Bytes {
    Static(&'static [u8]),
    /// With a heap: anything (the client's request, control frames), its allocation reused.
    #[cfg(feature = "alloc")]
    Heap(alloc::vec::Vec<u8>),
    /// Without one: a single encoded control frame, inline.
    #[cfg(not(feature = "alloc"))]
    Frame([u8; CONTROL_FRAME_MAX], u8),
}

/// Bytes owed to the peer, and how many of them were already handed out.
#[derive(Debug)]
pub(super) struct Owed {
    bytes: Bytes,
    pos: usize,
}

impl Owed {
    pub(super) const fn new() -> Self {
        Self { bytes: Bytes::Static(&[]), pos: 0 }
    }

    fn all(&self) -> &[u8] {
        match &self.bytes {
            Bytes::Static(bytes) => bytes,
            #[cfg(feature = "alloc")]
            Bytes::Heap(bytes) => bytes,
            #[cfg(not(feature = "alloc"))]
            Bytes::Frame(frame, len) => &frame[..usize::from(*len)],
        }
    }

    /// The bytes not yet handed out.
    pub(super) fn remaining(&self) -> &[u8] {
        &self.all()[self.pos..]
    }

    pub(super) fn is_empty(&self) -> bool {
        self.pos == self.all().len()
    }

    /// `n` more bytes were handed out.
    pub(super) fn advance(&mut self, n: usize) {
        self.pos = (self.pos + n).min(self.all().len());
    }

    /// Owes nothing (keeping a heap allocation for the next frame).
    pub(super) fn clear(&mut self) {
        match &mut self.bytes {
            #[cfg(feature = "alloc")]
            Bytes::Heap(bytes) => bytes.clear(),
            bytes => *bytes = Bytes::Static(&[]),
        }
        self.pos = 0;
    }

    /// Owes `bytes`, which live for ever (an error response).
    pub(super) fn set_static(&mut self, bytes: &'static [u8]) {
        self.bytes = Bytes::Static(bytes);
        self.pos = 0;
    }

    /// Owes `bytes`, built on the heap (the client's request).
    #[cfg(feature = "alloc")]
    pub(super) fn set_heap(&mut self, bytes: alloc::vec::Vec<u8>) {
        self.bytes = Bytes::Heap(bytes);
        self.pos = 0;
    }

    /// Owes one encoded control frame (at most [`CONTROL_FRAME_MAX`] bytes).
    pub(super) fn set_frame(&mut self, frame: &[u8]) {
        debug_assert!(frame.len() <= CONTROL_FRAME_MAX);
        self.pos = 0;
        #[cfg(feature = "alloc")]
        {
            if let Bytes::Heap(bytes) = &mut self.bytes {
                bytes.clear();
                bytes.extend_from_slice(frame);
            } else {
                self.bytes = Bytes::Heap(frame.into());
            }
        }
        #[cfg(not(feature = "alloc"))]
        {
            let mut inline = [0; CONTROL_FRAME_MAX];
            let len = frame.len().min(CONTROL_FRAME_MAX);
            inline[..len].copy_from_slice(&frame[..len]);
            self.bytes = Bytes::Frame(inline, len as u8);
        }
    }
}
