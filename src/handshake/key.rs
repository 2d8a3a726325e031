//! The `Sec-WebSocket-Key` nonce and its `Sec-WebSocket-Accept` answer (RFC 6455 §1.3, §4).

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

/// The GUID RFC 6455 §1.3 appends to the key: "258EAFA5-E914-47DA-95CA-C5AB0DC85B11".
const WEBSOCKET_GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// The `Sec-WebSocket-Accept` value for a `Sec-WebSocket-Key`.
///
/// RFC 6455 §4.2.2: "The value of this header field is constructed by concatenating /key/
/// ... with the string "258EAFA5-E914-47DA-95CA-C5AB0DC85B11", taking the SHA-1 hash of this
/// concatenated value to obtain a 20-byte value and base64-encoding ... this 20-byte hash."
/// `key` is the base64 text exactly as sent, not its decoded bytes.
pub(crate) fn accept_key(key: &[u8]) -> [u8; 28] {
    let mut sha = sha1_smol::Sha1::new();
    sha.update(key);
    sha.update(WEBSOCKET_GUID);
    let digest = sha.digest().bytes();
    let mut out = [0u8; 28];
    // Twenty bytes always encode to exactly 28 base64 characters, so this cannot fail.
    let _written = STANDARD.encode_slice(digest, &mut out);
    out
}

/// The base64 text of a 16-byte `Sec-WebSocket-Key` nonce (RFC 6455 §4.1).
pub(crate) fn encode_key(key: [u8; 16]) -> [u8; 24] {
    let mut out = [0u8; 24];
    // Sixteen bytes always encode to exactly 24 base64 characters, so this cannot fail.
    let _written = STANDARD.encode_slice(key, &mut out);
    out
}

/// Whether `value` is a `Sec-WebSocket-Key` as RFC 6455 §4.1 requires: "a base64-encoded
/// (see Section 4 of \[RFC4648\]) value that, when decoded, is 16 bytes in length".
pub(crate) fn is_valid_key(value: &[u8]) -> bool {
    // Sixteen bytes encode to 24 characters with padding; check the length before decoding
    // so an arbitrarily long value costs nothing.
    if value.len() != 24 {
        return false;
    }
    // Exactly what the base64 crate's canonical decoding accepts as 16 bytes, checked without
    // decoding: 22 symbols and "==", the last symbol carrying 2 bits of the 16th byte and 4
    // bits that must be zero (only A, Q, g and w), no padding anywhere else.
    let (symbols, padding) = value.split_at(22);
    padding == b"=="
        && symbols.iter().all(|&b| BASE64_SYMBOL[usize::from(b)])
        && matches!(symbols[21], b'A' | b'Q' | b'g' | b'w')
}

/// Which bytes are symbols of the standard base64 alphabet (RFC 4648 §4).
const BASE64_SYMBOL: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = c.is_ascii_alphanumeric() || c == b'+' || c == b'/';
        b += 1;
    }
    table
};
