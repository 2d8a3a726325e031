//! permessage-deflate's transform (RFC 7692 §7.2), over zlib-rs: the compressor of what this
//! end sends and the decompressor of what it receives, created when first needed and
//! released when the connection goes idle.
//!
//! A direction without context takeover carries nothing from one message to the next. One
//! with it carries the sliding window: the last `2^bits` bytes. A compressor's history
//! cannot be restored cheaply, so it is kept; but at a message's end a decompressor holds no
//! state but its window (the sender flushed to a byte boundary), so it is released and only
//! a copy of the window kept — 4 KiB for a 12-bit window instead of zlib-rs' 47 KiB of
//! state, whose window is always 32 KiB — and the next message's decompressor is primed
//! with it as a dictionary.
//!
//! The receive side is driven from the message stage (`message.rs`), the send side from the
//! commands (`send.rs`).

use alloc::boxed::Box;
use core::fmt;

use zlib_rs::{Deflate, DeflateFlush, Inflate, InflateFlush, Status, Strategy};

#[cfg(feature = "std")]
use super::message::RSV1;
use super::Role;
use crate::handshake::{DeflateConfig, DeflateParams};
#[cfg(feature = "std")]
use crate::wire::frame::{FrameHeader, Opcode};

/// The four bytes a sender removes from the end of each compressed message and the receiver
/// appends before inflating it (RFC 7692 §7.2.1, §7.2.2): an empty stored block's `LEN` and
/// `NLEN`, the end of a sync flush.
pub(super) const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// The compression state of a connection that negotiated permessage-deflate.
pub(crate) struct Codec {
    pub(super) params: DeflateParams,
    /// The window this end compresses with, and whether it resets after each message.
    send_bits: u8,
    send_reset: bool,
    threshold: usize,
    level: u8,
    // Boxed: an idle connection's codec is then a few words, not a few hundred bytes.
    compressor: Option<Box<Compressor>>,
    decompressor: Option<Box<Inflate>>,
    /// Whether the decompressor was reused and must be primed with `history` first.
    unprimed: bool,
    /// With context takeover on receive: the last bytes inflated (at most the window), the
    /// history the next message may refer to once the decompressor is released.
    history: History,
}

/// A compressor, with the settings it was made for.
struct Compressor {
    deflate: Deflate,
    bits: u8,
    level: u8,
}

/// Compression state an idle connection gave up
/// ([`Connection::release_compression`](crate::Connection::release_compression)), for it or
/// another connection to take back
/// ([`reuse_compression`](crate::Connection::reuse_compression)) instead of allocating its
/// own: over zlib-rs a compressor is some 150 KiB and a decompressor 47 KiB, so a server
/// that keeps one spare per thread allocates them once, not once per message, and holds
/// them for its busy connections only.
#[derive(Default)]
pub struct DeflateSpare {
    compressor: Option<Box<Compressor>>,
    decompressor: Option<Box<Inflate>>,
}

impl fmt::Debug for DeflateSpare {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeflateSpare")
            .field("compressor", &self.compressor.is_some())
            .field("decompressor", &self.decompressor.is_some())
            .finish()
    }
}

impl DeflateSpare {
    /// Whether it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.compressor.is_none() && self.decompressor.is_none()
    }

    /// Keeps what `other` holds and this lacks; the rest of `other` is freed.
    pub fn keep(&mut self, other: DeflateSpare) {
        if self.compressor.is_none() {
            self.compressor = other.compressor;
        }
        if self.decompressor.is_none() {
            self.decompressor = other.decompressor;
        }
    }
}

/// The last bytes of the inflated stream, at most a window's worth, kept in a ring.
#[derive(Debug, Default)]
struct History {
    ring: alloc::vec::Vec<u8>,
    /// Where the next byte goes, once the ring is full.
    next: usize,
    /// The window size; 0 when no history is kept.
    window: usize,
}

impl History {
    fn new(window: usize) -> Self {
        Self { ring: alloc::vec::Vec::new(), next: 0, window }
    }

    /// Records inflated bytes.
    fn push(&mut self, bytes: &[u8]) {
        if self.window == 0 || bytes.is_empty() {
            return;
        }
        let bytes = &bytes[bytes.len().saturating_sub(self.window)..];
        if self.ring.len() < self.window {
            let take = bytes.len().min(self.window - self.ring.len());
            // Grown by doubling, but never past the window: the copy is bounded by it.
            let want = (self.ring.len() + take).max(self.ring.capacity() * 2).min(self.window);
            self.ring.reserve_exact(want - self.ring.len());
            self.ring.extend_from_slice(&bytes[..take]);
            self.push_full(&bytes[take..]);
        } else {
            self.push_full(bytes);
        }
    }

    fn push_full(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            let n = bytes.len().min(self.window - self.next);
            self.ring[self.next..self.next + n].copy_from_slice(&bytes[..n]);
            self.next = (self.next + n) % self.window;
            bytes = &bytes[n..];
        }
    }

    /// The history in stream order (the ring is rotated in place).
    fn in_order(&mut self) -> &[u8] {
        if self.ring.len() == self.window && self.next != 0 {
            self.ring.rotate_left(self.next);
            self.next = 0;
        }
        &self.ring
    }
}

impl fmt::Debug for Codec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Codec")
            .field("params", &self.params)
            .field("compressor", &self.compressor.is_some())
            .field("decompressor", &self.decompressor.is_some())
            .finish()
    }
}

/// What one call to the decompressor did.
pub(super) struct Inflated {
    /// Input bytes it took.
    pub(super) consumed: usize,
    /// Output bytes it wrote.
    pub(super) produced: usize,
}

/// The data does not inflate.
pub(super) struct Corrupt;

impl Codec {
    pub(crate) fn new(role: Role, params: DeflateParams, config: &DeflateConfig) -> Self {
        let (send_bits, send_reset, recv_bits, recv_reset) = match role {
            Role::Server => (
                params.server_max_window_bits,
                params.server_no_context_takeover,
                params.client_max_window_bits,
                params.client_no_context_takeover,
            ),
            Role::Client => (
                params.client_max_window_bits,
                params.client_no_context_takeover,
                params.server_max_window_bits,
                params.server_no_context_takeover,
            ),
        };
        Self {
            params,
            send_bits,
            send_reset,
            threshold: config.threshold,
            level: config.level,
            compressor: None,
            decompressor: None,
            unprimed: false,
            history: History::new(if recv_reset { 0 } else { 1 << recv_bits }),
        }
    }

    /// Whether a message of `len` bytes is sent compressed.
    pub(super) fn compresses(&self, len: usize) -> bool {
        len >= self.threshold
    }

    /// The most bytes compressing `len` bytes can take: zlib's conservative bound for raw
    /// deflate (stored blocks in the worst case), plus the sync flush.
    pub(super) fn bound(len: usize) -> usize {
        len.saturating_add(len >> 3).saturating_add(len >> 6).saturating_add(32)
    }

    /// Compresses one whole message into `out`, as RFC 7692 §7.2.1 says: deflate with a sync
    /// flush, then drop the trailing `00 00 ff ff`. `None` when `out` was too short (never
    /// with [`bound`](Self::bound) bytes) or the compressor failed; the compressor is then
    /// reset, so the message can go uncompressed without the peer's context going astray
    /// (a compressor that forgets is always compatible with the decompressor).
    pub(super) fn compress(&mut self, payload: &[u8], out: &mut [u8]) -> Option<usize> {
        let (bits, level) = (self.send_bits, self.level);
        let compressor = &mut self
            .compressor
            .get_or_insert_with(|| {
                Box::new(Compressor { deflate: new_compressor(bits, level), bits, level })
            })
            .deflate;
        let (in_start, out_start) = (compressor.total_in(), compressor.total_out());
        let mut written = 0;
        let done = loop {
            let read = (compressor.total_in() - in_start) as usize;
            let status =
                compressor.compress(&payload[read..], &mut out[written..], DeflateFlush::SyncFlush);
            written = (compressor.total_out() - out_start) as usize;
            let read = (compressor.total_in() - in_start) as usize;
            match status {
                // A sync flush is complete when the output was not filled.
                Ok(_) if read == payload.len() && written < out.len() => break true,
                Ok(Status::Ok) if written < out.len() => {}
                _ => break false,
            }
        };
        let stripped = written.checked_sub(TAIL.len()).filter(|&n| out[n..written] == TAIL);
        match stripped {
            Some(len) if done => {
                if self.send_reset {
                    compressor.reset();
                }
                Some(len)
            }
            _ => {
                compressor.reset();
                None
            }
        }
    }

    /// Whether this end compresses every message afresh (no context takeover): its
    /// compressed frames depend only on the message, the window and the level.
    pub(super) fn sends_without_context(&self) -> bool {
        self.send_reset
    }

    /// The window this end compresses with.
    #[cfg(feature = "std")]
    pub(super) fn send_bits(&self) -> u8 {
        self.send_bits
    }

    /// One whole compressed server frame (RSV1 set) of `payload`, in its own allocation, for
    /// a message shared by many connections. `None` if compressing failed.
    #[cfg(feature = "std")]
    pub(super) fn compress_frame(&mut self, opcode: Opcode, payload: &[u8]) -> Option<Box<[u8]>> {
        let mut body = alloc::vec![0; Self::bound(payload.len())];
        let len = self.compress(payload, &mut body)?;
        let header =
            FrameHeader { fin: true, rsv: RSV1, opcode, mask: None, payload_len: len as u64 };
        let mut frame = alloc::vec![0; header.encoded_len() + len];
        let at = header.encode(&mut frame)?;
        frame[at..].copy_from_slice(&body[..len]);
        Some(frame.into_boxed_slice())
    }

    /// Inflates as much of `input` into `output` as fits. A final block (BFINAL) ends the
    /// stream: the decompressor starts a new one for what follows, as the peer must have.
    pub(super) fn inflate(&mut self, input: &[u8], output: &mut [u8]) -> Result<Inflated, Corrupt> {
        // Every decompressor has a 15-bit window: zlib-rs allocates 32 KiB whatever the bits,
        // a larger window reads any stream, and so any spare one fits any connection.
        let decompressor = match &mut self.decompressor {
            Some(decompressor) => decompressor,
            None => {
                self.unprimed = true;
                self.decompressor.insert(Box::new(Inflate::new(false, 15)))
            }
        };
        if core::mem::take(&mut self.unprimed) {
            // A released decompressor's successor starts with the history the stream had.
            let history = self.history.in_order();
            if !history.is_empty() && decompressor.set_dictionary(history).is_err() {
                return Err(Corrupt);
            }
        }
        let (in_start, out_start) = (decompressor.total_in(), decompressor.total_out());
        let status = decompressor.decompress(input, output, InflateFlush::SyncFlush);
        let consumed = (decompressor.total_in() - in_start) as usize;
        let produced = (decompressor.total_out() - out_start) as usize;
        self.history.push(&output[..produced]);
        match status {
            Ok(Status::StreamEnd) => {
                // A new stream starts with no history.
                decompressor.reset(false);
                self.history = History::new(self.history.window);
                Ok(Inflated { consumed, produced })
            }
            Ok(_) => Ok(Inflated { consumed, produced }),
            Err(_) => {
                // The connection fails; nothing more will be inflated.
                self.decompressor = None;
                Err(Corrupt)
            }
        }
    }

    /// Gives up what an idle connection does not need: the compressor when this end sends
    /// without context takeover (it is reset after every message, so it is as good as
    /// new), and the decompressor unless a message is being received (with context
    /// takeover, only the history stays).
    pub(super) fn release_idle(&mut self, receiving: bool) -> DeflateSpare {
        let mut spare = DeflateSpare::default();
        if self.send_reset {
            spare.compressor = self.compressor.take();
        }
        if !receiving {
            spare.decompressor = self.decompressor.take();
        }
        spare
    }

    /// Takes from `spare` what this codec lacks and can use: a decompressor (reset, and
    /// primed with this stream's history before its first use), and a compressor made for
    /// the same window and level when this end sends without context takeover.
    pub(super) fn adopt(&mut self, spare: &mut DeflateSpare) {
        if self.decompressor.is_none() {
            if let Some(mut decompressor) = spare.decompressor.take() {
                decompressor.reset(false);
                self.decompressor = Some(decompressor);
                self.unprimed = true;
            }
        }
        let fits = |c: &Compressor| c.bits == self.send_bits && c.level == self.level;
        if self.compressor.is_none()
            && self.send_reset
            && spare.compressor.as_deref().is_some_and(fits)
        {
            self.compressor = spare.compressor.take();
        }
    }

    /// Whether any compression state is allocated.
    pub(super) fn holds_state(&self) -> bool {
        self.compressor.is_some() || self.decompressor.is_some()
    }
}

/// A raw-deflate compressor for `bits` of window. An 8-bit window is honoured by coding
/// literals only (Huffman-only: no back-reference at all, so no window is exceeded), since
/// zlib's matcher cannot keep within 256 bytes.
fn new_compressor(bits: u8, level: u8) -> Deflate {
    let huffman_only = bits < 9;
    let window_bits = bits.max(9);
    Deflate::new_with_config(zlib_rs::DeflateConfig {
        level: i32::from(level),
        window_bits: -i32::from(window_bits),
        // The hash table has a fixed size in zlib-rs; the memory level sizes the symbol
        // buffers (4 KiB per level step): small windows get small buffers.
        mem_level: if window_bits <= 12 { 5 } else { 8 },
        strategy: if huffman_only { Strategy::HuffmanOnly } else { Strategy::Default },
        ..zlib_rs::DeflateConfig::default()
    })
}

#[cfg(test)]
mod tests {
    use super::History;
    use alloc::vec::Vec;

    #[test]
    fn history_keeps_the_last_window_in_order() {
        for window in [1usize, 7, 512] {
            let mut history = History::new(window);
            let mut all = Vec::new();
            for (i, len) in [0usize, 3, 1, 600, 5, 511, 2, 9, 513].into_iter().enumerate() {
                let bytes: Vec<u8> = (0..len).map(|j| (i * 31 + j) as u8).collect();
                history.push(&bytes);
                all.extend_from_slice(&bytes);
                let start = all.len().saturating_sub(window);
                assert_eq!(history.in_order(), &all[start..], "window {window}, step {i}");
                assert!(history.ring.capacity() <= window, "the copy never outgrows the window");
            }
        }
        let mut none = History::new(0);
        none.push(b"abc");
        assert!(none.in_order().is_empty());
    }
}
