//! A server message encoded once and sent to many connections: the frame bytes are shared
//! (reference-counted), never copied or encoded again per recipient.

use alloc::boxed::Box;
use alloc::sync::Arc;
use alloc::vec;

use crate::connection::{Connection, MessageKind, Written};
use crate::wire::frame::{FrameHeader, Opcode};

/// A whole text or binary message encoded once as a server frame, for a broadcast: a
/// server's frames carry no mask, so the frame is the same bytes for every recipient.
///
/// Cloning it clones a reference, not the bytes. Hand it to each connection with
/// [`Connection::send_shared`], then write the returned encoding's bytes
/// ([`frame`](Self::frame)) after what the command wrote; the adapters take it as
/// [`Outgoing::Shared`](crate::Outgoing::Shared) and write those bytes with a vectored write,
/// so a broadcast to a thousand connections holds one copy of the payload.
///
/// With permessage-deflate (feature `deflate` with `std`), a connection whose server side
/// has no context takeover (the default: [`DeflateConfig`](crate::DeflateConfig)) sends a
/// compressed encoding, made once per window size by the first connection that needs it and
/// then shared by every connection with that window. A connection with context takeover
/// compresses against its own history, so it compresses the message for itself, into its own
/// output (see [`SharedSend::Encoded`]).
#[derive(Clone)]
pub struct SharedMessage {
    inner: Arc<Inner>,
}

struct Inner {
    kind: MessageKind,
    /// The uncompressed frame: header, then the payload.
    frame: Box<[u8]>,
    header_len: usize,
    /// Compressed frames, by the window bits they were made for (8 to 15), made on demand.
    #[cfg(all(feature = "deflate", feature = "std"))]
    compressed: [std::sync::OnceLock<Option<Box<[u8]>>>; 8],
}

/// Which of a [`SharedMessage`]'s encodings a connection sends.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
#[non_exhaustive]
pub enum Encoding {
    /// The uncompressed frame.
    Plain,
    /// Compressed (permessage-deflate) with a window of `window_bits`, without context
    /// takeover.
    Deflate {
        /// The compressor's window, 8 to 15 bits.
        window_bits: u8,
    },
}

/// What [`Connection::send_shared`] did.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
#[non_exhaustive]
pub enum SharedSend {
    /// The command wrote the bytes owed ahead of the message (often none); write the
    /// message's [`frame`](SharedMessage::frame) for `encoding` right after them.
    Frame {
        /// What the command wrote into the output.
        written: Written,
        /// The encoding whose shared bytes go next.
        encoding: Encoding,
    },
    /// The whole message was encoded into the output (compressed for this connection alone,
    /// which keeps context takeover): nothing shared goes after it.
    Encoded(Written),
}

impl SharedMessage {
    /// A text message.
    pub fn text(text: &str) -> Self {
        Self::new(MessageKind::Text, text.as_bytes())
    }

    /// A binary message.
    pub fn binary(data: &[u8]) -> Self {
        Self::new(MessageKind::Binary, data)
    }

    /// A message of `kind` (for text, `payload` must be UTF-8; [`text`](Self::text) makes
    /// sure of it).
    fn new(kind: MessageKind, payload: &[u8]) -> Self {
        let header = FrameHeader {
            fin: true,
            rsv: 0,
            opcode: opcode(kind),
            mask: None,
            payload_len: payload.len() as u64,
        };
        let header_len = header.encoded_len();
        let mut frame = vec![0; header_len + payload.len()].into_boxed_slice();
        let _encoded = header.encode(&mut frame[..header_len]);
        frame[header_len..].copy_from_slice(payload);
        let inner = Inner {
            kind,
            frame,
            header_len,
            #[cfg(all(feature = "deflate", feature = "std"))]
            compressed: Default::default(),
        };
        Self { inner: Arc::new(inner) }
    }

    /// Text or binary.
    pub fn kind(&self) -> MessageKind {
        self.inner.kind
    }

    /// The payload.
    pub fn payload(&self) -> &[u8] {
        &self.inner.frame[self.inner.header_len..]
    }

    /// The frame bytes of `encoding` (header and payload), as [`Connection::send_shared`]
    /// asked for them; `None` for an encoding that was not made (never for one a connection
    /// returned).
    pub fn frame(&self, encoding: Encoding) -> Option<&[u8]> {
        match encoding {
            Encoding::Plain => Some(&self.inner.frame),
            #[cfg(all(feature = "deflate", feature = "std"))]
            Encoding::Deflate { window_bits } => {
                let slot = self.inner.compressed.get(usize::from(window_bits).checked_sub(8)?)?;
                slot.get()?.as_deref()
            }
            #[cfg(not(all(feature = "deflate", feature = "std")))]
            Encoding::Deflate { .. } => None,
        }
    }

    /// How many encodings of it exist (the plain one and each compressed one): the copies of
    /// its payload a broadcast holds, whatever the number of recipients.
    pub fn encodings(&self) -> usize {
        #[cfg(all(feature = "deflate", feature = "std"))]
        let compressed =
            self.inner.compressed.iter().filter(|c| c.get().is_some_and(|c| c.is_some()));
        #[cfg(all(feature = "deflate", feature = "std"))]
        return 1 + compressed.count();
        #[cfg(not(all(feature = "deflate", feature = "std")))]
        1
    }

    /// How many handles to it exist (this one included).
    pub fn handles(&self) -> usize {
        Arc::strong_count(&self.inner)
    }

    /// Whether `self` and `other` are handles to the same message.
    pub fn ptr_eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }

    /// The compressed frame for `window_bits`, made by `make` (with the connection's
    /// compressor) if no connection made it yet. `None` if it could not be compressed.
    #[cfg(all(feature = "deflate", feature = "std"))]
    pub(crate) fn compressed_with(
        &self,
        window_bits: u8,
        make: impl FnOnce(Opcode, &[u8]) -> Option<Box<[u8]>>,
    ) -> Option<&[u8]> {
        let slot = self.inner.compressed.get(usize::from(window_bits).checked_sub(8)?)?;
        slot.get_or_init(|| make(opcode(self.inner.kind), self.payload())).as_deref()
    }
}

impl core::fmt::Debug for SharedMessage {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SharedMessage")
            .field("kind", &self.inner.kind)
            .field("len", &self.payload().len())
            .field("encodings", &self.encodings())
            .finish()
    }
}

impl PartialEq for SharedMessage {
    /// Equal messages have the same kind and payload.
    fn eq(&self, other: &Self) -> bool {
        self.kind() == other.kind() && self.payload() == other.payload()
    }
}

impl Eq for SharedMessage {}

fn opcode(kind: MessageKind) -> Opcode {
    match kind {
        MessageKind::Text => Opcode::Text,
        MessageKind::Binary => Opcode::Binary,
    }
}

/// How many bytes of output [`Connection::send_shared`] may need for `message`: the owed
/// bytes, or the whole message when it is compressed for this connection alone.
pub(crate) fn shared_need(conn: &Connection, message: &SharedMessage) -> usize {
    if conn.shares_encoding_of(message.payload().len()) {
        conn.encoded_len(0)
    } else {
        conn.encoded_len(message.payload().len())
    }
}

impl SharedSend {
    /// What the command wrote into the output.
    pub fn written(&self) -> Written {
        match *self {
            Self::Frame { written, .. } | Self::Encoded(written) => written,
        }
    }
}
