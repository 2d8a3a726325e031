//! Payload masking (RFC 6455 §5.3).
//!
//! Every byte a client sends, and every byte a server receives, goes through
//! [`apply_mask`], so it is written to be as fast as a plain copy while staying in
//! safe Rust.

/// XORs `buf` in place with the masking `key`, as though `buf` began at byte `offset`
/// of the frame's payload: `buf[i] ^= key[(offset + i) % 4]`.
///
/// The same call masks and unmasks, since XOR is its own inverse. `offset` lets a
/// payload that arrives in several pieces be unmasked piece by piece.
pub fn apply_mask(buf: &mut [u8], key: [u8; 4], offset: usize) {
    // Rotating the key once means `buf[0]` lines up with `key[0]`, so from here on the
    // key repeats every 4 bytes from the start of `buf` and any 4-aligned chunk of
    // `buf` can use the same word.
    let key = rotate_key(key, offset);

    // Native-endian on both sides: the word is only ever XORed with words read the
    // same way, so the byte order in memory is what matters, and it is preserved.
    // Both halves are the same 4 bytes, so either byte order lays them out alike; built
    // with a shift rather than from a byte array, which LLVM assembles byte by byte.
    let half = u64::from(u32::from_ne_bytes(key));
    let word = half << 32 | half;

    // Four independent words per step give LLVM a fixed-size 32-byte body that it
    // turns into vector loads, XORs and stores; `from_ne_bytes` on a copied array
    // needs no alignment, so no bytewise prefix is required.
    let mut blocks = buf.chunks_exact_mut(32);
    for block in &mut blocks {
        for lane in block.chunks_exact_mut(8) {
            xor_word(lane, word);
        }
    }

    // Every chunk above was a multiple of 4 long, so the tail still starts in phase
    // with the rotated key.
    let mut words = blocks.into_remainder().chunks_exact_mut(8);
    for lane in &mut words {
        xor_word(lane, word);
    }
    xor_tail(words.into_remainder(), key);
}

/// Writes `src` masked with `key` into `dst` (of the same length) in one pass: the copy and
/// the XOR of a client's send path fused, so the payload is read and written once.
/// `dst[i] = src[i] ^ key[i % 4]`; lengths that differ leave the excess of the longer alone.
pub(crate) fn copy_masked(dst: &mut [u8], src: &[u8], key: [u8; 4]) {
    let half = u64::from(u32::from_ne_bytes(key));
    let word = half << 32 | half;
    let mut dst_blocks = dst.chunks_exact_mut(32);
    let mut src_blocks = src.chunks_exact(32);
    for (d, s) in (&mut dst_blocks).zip(&mut src_blocks) {
        for (d, s) in d.chunks_exact_mut(8).zip(s.chunks_exact(8)) {
            copy_word(d, s, word);
        }
    }
    let mut dst_words = dst_blocks.into_remainder().chunks_exact_mut(8);
    let mut src_words = src_blocks.remainder().chunks_exact(8);
    for (d, s) in (&mut dst_words).zip(&mut src_words) {
        copy_word(d, s, word);
    }
    for ((d, s), k) in
        dst_words.into_remainder().iter_mut().zip(src_words.remainder()).zip(key.iter().cycle())
    {
        *d = s ^ k;
    }
}

/// `dst = src ^ word` for 8-byte lanes; other lengths are left alone (never the case for
/// `chunks_exact(8)`).
#[inline(always)]
fn copy_word(dst: &mut [u8], src: &[u8], word: u64) {
    if let (Ok(d), Ok(s)) = (<&mut [u8; 8]>::try_from(dst), <&[u8; 8]>::try_from(src)) {
        *d = (u64::from_ne_bytes(*s) ^ word).to_ne_bytes();
    }
}

/// `key` as it applies from byte `offset` of the payload on: `rotated[i]` is
/// `key[(offset + i) % 4]`. A rotation of the little-endian word, not of the array, so it
/// compiles to one instruction rather than a call.
#[inline(always)]
fn rotate_key(key: [u8; 4], offset: usize) -> [u8; 4] {
    // `offset % 4` is at most 3, so the shift is at most 24 bits.
    u32::from_le_bytes(key).rotate_right(8 * (offset % 4) as u32).to_le_bytes()
}

/// XORs the last bytes (fewer than 8) of a buffer, which start in phase with `key`.
#[inline(always)]
fn xor_tail(tail: &mut [u8], key: [u8; 4]) {
    // A whole word of 4 first if there is one; it leaves the rest in phase with `key`.
    let (four, rest) = tail.split_at_mut(tail.len() & 4);
    if let Ok(four) = <&mut [u8; 4]>::try_from(four) {
        *four = (u32::from_ne_bytes(*four) ^ u32::from_ne_bytes(key)).to_ne_bytes();
    }
    for (byte, k) in rest.iter_mut().zip(key) {
        *byte ^= k;
    }
}

/// XORs an 8-byte `lane` with `word`; a shorter or longer lane is left alone, which
/// never happens for `chunks_exact_mut(8)` but keeps the function total.
#[inline(always)]
fn xor_word(lane: &mut [u8], word: u64) {
    if let Ok(bytes) = <&mut [u8; 8]>::try_from(lane) {
        *bytes = (u64::from_ne_bytes(*bytes) ^ word).to_ne_bytes();
    }
}

#[cfg(test)]
mod tests {
    use super::apply_mask;
    use alloc::vec;
    use alloc::vec::Vec;
    use proptest::prelude::*;

    /// The definition straight from the RFC, as the oracle.
    fn naive(buf: &mut [u8], key: [u8; 4], offset: usize) {
        for (i, b) in buf.iter_mut().enumerate() {
            *b ^= key[(offset.wrapping_add(i)) % 4];
        }
    }

    fn pattern(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(7)).collect()
    }

    #[test]
    fn matches_naive_for_small_lengths_and_offsets() {
        let key = [0x37, 0xfa, 0x21, 0x3d];
        for len in 0..200 {
            for offset in 0..8 {
                let mut fast = pattern(len);
                let mut slow = fast.clone();
                apply_mask(&mut fast, key, offset);
                naive(&mut slow, key, offset);
                assert_eq!(fast, slow, "len {len} offset {offset}");
            }
        }
    }

    #[test]
    fn unaligned_subslices_match_naive() {
        // Start the slice at every alignment so unaligned loads are exercised too.
        let key = [1, 2, 4, 8];
        let base = pattern(300);
        for start in 0..16 {
            let mut fast = base.clone();
            let mut slow = base.clone();
            apply_mask(&mut fast[start..], key, start);
            naive(&mut slow[start..], key, start);
            assert_eq!(fast, slow, "start {start}");
        }
    }

    #[test]
    fn huge_offset_does_not_overflow() {
        let key = [9, 8, 7, 6];
        let mut fast = pattern(77);
        let mut slow = fast.clone();
        apply_mask(&mut fast, key, usize::MAX);
        naive(&mut slow, key, usize::MAX);
        assert_eq!(fast, slow);
    }

    #[test]
    fn copy_masked_matches_copy_then_mask() {
        let key = [0x37, 0xfa, 0x21, 0x3d];
        let src = pattern(300);
        for len in 0..src.len() {
            let mut expected = src[..len].to_vec();
            apply_mask(&mut expected, key, 0);
            let mut dst = vec![0xAA; len];
            super::copy_masked(&mut dst, &src[..len], key);
            assert_eq!(dst, expected, "len {len}");
        }
    }

    #[test]
    fn twice_restores() {
        let original = pattern(1000);
        let mut buf = original.clone();
        apply_mask(&mut buf, [0xde, 0xad, 0xbe, 0xef], 3);
        assert_ne!(buf, original);
        apply_mask(&mut buf, [0xde, 0xad, 0xbe, 0xef], 3);
        assert_eq!(buf, original);
    }

    #[test]
    fn rfc6455_masked_hello() {
        let mut payload = [0x7f, 0x9f, 0x4d, 0x51, 0x58];
        apply_mask(&mut payload, [0x37, 0xfa, 0x21, 0x3d], 0);
        assert_eq!(&payload, b"Hello");
    }

    #[test]
    fn piecewise_equals_whole() {
        let key = [0x12, 0x34, 0x56, 0x78];
        let original = pattern(150);
        let mut whole = original.clone();
        apply_mask(&mut whole, key, 0);
        for split in 0..original.len() {
            let mut pieces = original.clone();
            let (a, b) = pieces.split_at_mut(split);
            apply_mask(a, key, 0);
            apply_mask(b, key, split);
            assert_eq!(pieces, whole, "split {split}");
        }
    }

    proptest! {
        #[test]
        fn prop_matches_naive(
            data in proptest::collection::vec(any::<u8>(), 0..2048),
            key in any::<[u8; 4]>(),
            offset in any::<usize>(),
        ) {
            let mut fast = data.clone();
            let mut slow = data;
            apply_mask(&mut fast, key, offset);
            naive(&mut slow, key, offset);
            prop_assert_eq!(fast, slow);
        }
    }
}
