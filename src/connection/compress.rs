//! permessage-deflate's transform (RFC 7692 §7.2), over zlib-rs: the compressor of what this
//! end sends and the decompressor of what it receives, created when first needed and, for a
//! direction without context takeover, released when the connection goes idle.
//!
//! The receive side is driven from the message stage (`message.rs`), the send side from the
//! commands (`send.rs`).

use core::fmt;

use zlib_rs::{Deflate, DeflateFlush, Inflate, InflateFlush, Status, Strategy};

use super::Role;
use crate::handshake::{DeflateConfig, DeflateParams};

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
    /// The window the peer compresses with, and whether it resets after each message.
    recv_bits: u8,
    recv_reset: bool,
    threshold: usize,
    level: u8,
    compressor: Option<Deflate>,
    decompressor: Option<Inflate>,
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
            recv_bits,
            recv_reset,
            threshold: config.threshold,
            level: config.level,
            compressor: None,
            decompressor: None,
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
        let compressor = self.compressor.get_or_insert_with(|| new_compressor(bits, level));
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

    /// Inflates as much of `input` into `output` as fits. A final block (BFINAL) ends the
    /// stream: the decompressor starts a new one for what follows, as the peer must have.
    pub(super) fn inflate(&mut self, input: &[u8], output: &mut [u8]) -> Result<Inflated, Corrupt> {
        let bits = self.recv_bits;
        // zlib cannot make 8-bit windows and writes 9 instead; a larger window reads any.
        let decompressor =
            self.decompressor.get_or_insert_with(|| Inflate::new(false, bits.max(9)));
        let (in_start, out_start) = (decompressor.total_in(), decompressor.total_out());
        let status = decompressor.decompress(input, output, InflateFlush::SyncFlush);
        let consumed = (decompressor.total_in() - in_start) as usize;
        let produced = (decompressor.total_out() - out_start) as usize;
        match status {
            Ok(Status::StreamEnd) => {
                decompressor.reset(false);
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

    /// Frees the state a direction without context takeover does not carry from one message
    /// to the next. `receiving` / `sending`: whether a message is in progress that way.
    pub(super) fn release_idle(&mut self, receiving: bool) {
        if self.send_reset {
            self.compressor = None;
        }
        if self.recv_reset && !receiving {
            self.decompressor = None;
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
