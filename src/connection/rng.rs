//! The keystream behind masking keys and `Sec-WebSocket-Key` nonces.
//!
//! RFC 6455 §5.3 requires masking keys that the peer cannot predict, and §4.1 a
//! random handshake nonce. The sans-IO core has no entropy source of its own, so the
//! caller hands a client a 32-byte seed once and this expands it with ChaCha20
//! (RFC 8439): a well-studied stream cipher whose output cannot be predicted without
//! the seed, small enough to write here instead of taking a dependency.

use core::fmt;

/// "expand 32-byte k", the ChaCha constants (RFC 8439 §2.3).
const SIGMA: [u32; 4] = [0x6170_7865, 0x3320_646e, 0x7962_2d32, 0x6b20_6574];

/// Bytes in one ChaCha20 block.
const BLOCK_LEN: usize = 64;

/// A ChaCha20 keystream keyed by a caller-supplied seed, handed out a few bytes at a
/// time.
///
/// The nonce is fixed at zero and the block counter is 64 bits wide (spread over the
/// RFC 8439 counter word and the first nonce word), so one seed yields 2^70 bytes
/// before repeating, far more than any connection will draw.
#[derive(Clone)]
pub(crate) struct KeyStream {
    /// The seed as eight little-endian words.
    key: [u32; 8],
    /// The block that will be generated next.
    counter: u64,
    /// The current block; bytes before `used` have already been handed out.
    buffer: [u8; BLOCK_LEN],
    /// How much of `buffer` is spent; `BLOCK_LEN` means a new block is due.
    used: usize,
}

impl fmt::Debug for KeyStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The key and buffered output would let anyone who sees a log predict every
        // future mask; print nothing of them.
        f.debug_struct("KeyStream").finish_non_exhaustive()
    }
}

impl KeyStream {
    /// A keystream keyed by `seed`, which must come from a strong entropy source: the
    /// output is exactly as unpredictable as the seed.
    pub(crate) fn new(seed: [u8; 32]) -> Self {
        let mut key = [0u32; 8];
        for (word, bytes) in key.iter_mut().zip(seed.chunks_exact(4)) {
            *word = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
        }
        Self { key, counter: 0, buffer: [0; BLOCK_LEN], used: BLOCK_LEN }
    }

    /// Fills `out` with the next bytes of the keystream.
    pub(crate) fn fill(&mut self, out: &mut [u8]) {
        let mut out = out;
        while !out.is_empty() {
            if self.used >= BLOCK_LEN {
                self.refill();
            }
            let available = self.buffer.get(self.used..).unwrap_or_default();
            let n = available.len().min(out.len());
            let (dst, rest) = out.split_at_mut(n);
            dst.copy_from_slice(available.get(..n).unwrap_or_default());
            self.used += n;
            out = rest;
        }
    }

    /// The next frame masking key.
    pub(crate) fn mask_key(&mut self) -> [u8; 4] {
        let mut key = [0; 4];
        self.fill(&mut key);
        key
    }

    /// The next 16-byte nonce for the `Sec-WebSocket-Key` header (before base64).
    pub(crate) fn websocket_key(&mut self) -> [u8; 16] {
        let mut key = [0; 16];
        self.fill(&mut key);
        key
    }

    /// Generates the next block into `buffer`.
    fn refill(&mut self) {
        // Truncations are the point: the low half is the RFC 8439 counter word and
        // the high half carries into the first nonce word.
        let low = self.counter as u32;
        let high = (self.counter >> 32) as u32;
        self.buffer = chacha20_block(&self.key, low, &[high, 0, 0]);
        self.counter = self.counter.wrapping_add(1);
        self.used = 0;
    }
}

/// The ChaCha quarter round on four words of the state (RFC 8439 §2.1).
#[inline(always)]
fn quarter_round(state: &mut [u32; 16], a: usize, b: usize, c: usize, d: usize) {
    state[a] = state[a].wrapping_add(state[b]);
    state[d] = (state[d] ^ state[a]).rotate_left(16);
    state[c] = state[c].wrapping_add(state[d]);
    state[b] = (state[b] ^ state[c]).rotate_left(12);
    state[a] = state[a].wrapping_add(state[b]);
    state[d] = (state[d] ^ state[a]).rotate_left(8);
    state[c] = state[c].wrapping_add(state[d]);
    state[b] = (state[b] ^ state[c]).rotate_left(7);
}

/// The ChaCha20 block function (RFC 8439 §2.3): 64 bytes of keystream for one
/// key, block counter and nonce.
fn chacha20_block(key: &[u32; 8], counter: u32, nonce: &[u32; 3]) -> [u8; BLOCK_LEN] {
    let mut initial = [0u32; 16];
    initial[..4].copy_from_slice(&SIGMA);
    initial[4..12].copy_from_slice(key);
    initial[12] = counter;
    initial[13..].copy_from_slice(nonce);

    let mut state = initial;
    // Ten double rounds: a column round then a diagonal round each.
    for _ in 0..10 {
        quarter_round(&mut state, 0, 4, 8, 12);
        quarter_round(&mut state, 1, 5, 9, 13);
        quarter_round(&mut state, 2, 6, 10, 14);
        quarter_round(&mut state, 3, 7, 11, 15);
        quarter_round(&mut state, 0, 5, 10, 15);
        quarter_round(&mut state, 1, 6, 11, 12);
        quarter_round(&mut state, 2, 7, 8, 13);
        quarter_round(&mut state, 3, 4, 9, 14);
    }

    let mut out = [0u8; BLOCK_LEN];
    for ((bytes, word), init) in out.chunks_exact_mut(4).zip(state).zip(initial) {
        // Adding the input back is what makes the permutation one-way.
        bytes.copy_from_slice(&word.wrapping_add(init).to_le_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{chacha20_block, quarter_round, KeyStream};
    use alloc::format;
    use alloc::vec::Vec;

    fn seed_0_to_31() -> [u8; 32] {
        let mut seed = [0u8; 32];
        for (i, b) in seed.iter_mut().enumerate() {
            *b = i as u8;
        }
        seed
    }

    #[test]
    fn rfc8439_quarter_round_vector() {
        // §2.1.1, placed in a state so the indexed form is what gets tested.
        let mut state = [0u32; 16];
        state[0] = 0x1111_1111;
        state[1] = 0x0102_0304;
        state[2] = 0x9b8d_6f43;
        state[3] = 0x0123_4567;
        quarter_round(&mut state, 0, 1, 2, 3);
        assert_eq!(state[..4], [0xea2a_92f4, 0xcb1c_f8ce, 0x4581_472e, 0x5881_c4bb]);
    }

    #[test]
    fn rfc8439_block_vector() {
        // §2.3.2: key 00..1f, nonce 00:00:00:09:00:00:00:4a:00:00:00:00, counter 1.
        let key = KeyStream::new(seed_0_to_31()).key;
        let nonce = [0x0900_0000, 0x4a00_0000, 0];
        let expected: [u8; 64] = [
            0x10, 0xf1, 0xe7, 0xe4, 0xd1, 0x3b, 0x59, 0x15, 0x50, 0x0f, 0xdd, 0x1f, 0xa3, 0x20,
            0x71, 0xc4, 0xc7, 0xd1, 0xf4, 0xc7, 0x33, 0xc0, 0x68, 0x03, 0x04, 0x22, 0xaa, 0x9a,
            0xc3, 0xd4, 0x6c, 0x4e, 0xd2, 0x82, 0x64, 0x46, 0x07, 0x9f, 0xaa, 0x09, 0x14, 0xc2,
            0xd7, 0x05, 0xd9, 0x8b, 0x02, 0xa2, 0xb5, 0x12, 0x9c, 0xd1, 0xde, 0x16, 0x4e, 0xb9,
            0xcb, 0xd0, 0x83, 0xe8, 0xa2, 0x50, 0x3c, 0x4e,
        ];
        assert_eq!(chacha20_block(&key, 1, &nonce), expected);
    }

    #[test]
    fn stream_is_blocks_with_zero_nonce() {
        let seed = seed_0_to_31();
        let key = KeyStream::new(seed).key;
        let mut stream = KeyStream::new(seed);
        let mut out = [0u8; 3 * 64 + 5];
        // Uneven pieces so refills land mid-request.
        for piece in out.chunks_mut(23) {
            stream.fill(piece);
        }
        let mut expected = Vec::new();
        for counter in 0..4 {
            expected.extend_from_slice(&chacha20_block(&key, counter, &[0, 0, 0]));
        }
        assert_eq!(out[..], expected[..out.len()]);
        // Block 0 of this key with a zero nonce, computed independently.
        assert_eq!(
            out[..16],
            [
                0x39, 0xfd, 0x2b, 0x7d, 0xd9, 0xc5, 0x19, 0x6a, 0x8d, 0xbd, 0x03, 0x77, 0xb8, 0xdc,
                0x4a, 0x49
            ]
        );
    }

    #[test]
    fn counter_carries_into_nonce_word() {
        let mut stream = KeyStream::new(seed_0_to_31());
        stream.counter = 1 << 32;
        let mut out = [0u8; 16];
        stream.fill(&mut out);
        // Block 2^32 of the 64-bit-counter construction, computed independently.
        assert_eq!(
            out,
            [
                0xd8, 0x38, 0xfb, 0x09, 0x53, 0x6e, 0x2e, 0x3a, 0x10, 0xe8, 0xf2, 0x3f, 0x48, 0x62,
                0x73, 0xa6
            ]
        );
    }

    #[test]
    fn same_seed_same_stream_different_seed_different_stream() {
        let mut a = KeyStream::new([7; 32]);
        let mut b = KeyStream::new([7; 32]);
        let mut c = KeyStream::new([8; 32]);
        let (mut xa, mut xb, mut xc) = ([0u8; 200], [0u8; 200], [0u8; 200]);
        a.fill(&mut xa);
        b.fill(&mut xb);
        c.fill(&mut xc);
        assert_eq!(xa, xb);
        assert_ne!(xa, xc);
        assert_ne!(a.websocket_key(), c.websocket_key());
        // The same position in the same stream gives the same nonce.
        let mut fresh = KeyStream::new([7; 32]);
        fresh.fill(&mut [0u8; 200]);
        assert_eq!(b.websocket_key(), fresh.websocket_key());
    }

    #[test]
    fn sixteen_mask_keys_per_block() {
        let seed = [0x5a; 32];
        let key = KeyStream::new(seed).key;
        let mut stream = KeyStream::new(seed);
        let block0 = chacha20_block(&key, 0, &[0, 0, 0]);
        let block1 = chacha20_block(&key, 1, &[0, 0, 0]);
        for chunk in block0.chunks_exact(4) {
            assert_eq!(stream.mask_key()[..], chunk[..]);
            assert_eq!(stream.counter, 1);
        }
        assert_eq!(stream.mask_key()[..], block1[..4]);
        assert_eq!(stream.counter, 2);
    }

    #[test]
    fn websocket_key_draws_sixteen_bytes() {
        let mut a = KeyStream::new([1; 32]);
        let mut b = KeyStream::new([1; 32]);
        let mut expected = [0u8; 32];
        b.fill(&mut expected);
        assert_eq!(a.websocket_key()[..], expected[..16]);
        assert_eq!(a.websocket_key()[..], expected[16..]);
    }

    #[test]
    fn empty_fill_draws_nothing() {
        let mut a = KeyStream::new([2; 32]);
        a.fill(&mut []);
        assert_eq!(a.counter, 0);
        assert_eq!(a.mask_key(), KeyStream::new([2; 32]).mask_key());
    }

    #[test]
    fn debug_hides_key_material() {
        let stream = KeyStream::new([0xab; 32]);
        assert_eq!(format!("{stream:?}"), "KeyStream { .. }");
    }
}
