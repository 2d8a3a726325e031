//! Frames on the wire, for tests of either role: building the frames a peer sends, decoding
//! the frames a connection sent, and the instant every test starts at.

use wsmachine::frame::{apply_mask, FrameHeader, Opcode};
use wsmachine::{CloseCode, Instant, Role};

/// The instant the tests start at; the same one `pair::Pair` starts its clock at, so a test
/// can mix deadlines computed from either.
pub const T0: Instant = Instant::from_millis(1_000);

/// The masking key of the frames built here for a client (RFC 6455 §5.7's examples use it).
pub const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// The mask a frame sent by `from` carries: a client masks every frame, a server none.
pub fn mask_of(from: Role) -> Option<[u8; 4]> {
    (from == Role::Client).then_some(KEY)
}

/// One frame as `from` sends it: masked with [`KEY`] when sent by a client, unmasked when
/// sent by a server.
pub fn frame(from: Role, fin: bool, opcode: Opcode, payload: &[u8]) -> Vec<u8> {
    raw_frame(fin, 0, opcode, mask_of(from), payload)
}

/// One frame with every header field chosen: RSV bits, and any mask or none.
pub fn raw_frame(
    fin: bool,
    rsv: u8,
    opcode: Opcode,
    mask: Option<[u8; 4]>,
    payload: &[u8],
) -> Vec<u8> {
    let header = FrameHeader { fin, rsv, opcode, mask, payload_len: payload.len() as u64 };
    let mut out = vec![0; header.encoded_len()];
    header.encode(&mut out).unwrap();
    let at = out.len();
    out.extend_from_slice(payload);
    if let Some(key) = mask {
        apply_mask(&mut out[at..], key, 0);
    }
    out
}

/// Only the header of a final frame that `from` sends, declaring `payload_len` bytes: for
/// frames too large to build whole.
pub fn header(from: Role, opcode: Opcode, payload_len: u64) -> Vec<u8> {
    let header = FrameHeader { fin: true, rsv: 0, opcode, mask: mask_of(from), payload_len };
    let mut out = vec![0; header.encoded_len()];
    header.encode(&mut out).unwrap();
    out
}

/// The frames `from` sent, as (opcode, unmasked payload) each. Panics unless `bytes` is whole
/// frames, each masked if and only if `from` is a client (RFC 6455 §5.1).
pub fn frames(from: Role, mut bytes: &[u8]) -> Vec<(Opcode, Vec<u8>)> {
    let mut frames = Vec::new();
    while !bytes.is_empty() {
        let (header, n) = FrameHeader::parse(bytes).unwrap().expect("a whole frame header");
        assert_eq!(header.mask.is_some(), from == Role::Client, "masking of a {from:?}'s frame");
        let end = n + header.payload_len as usize;
        let mut payload = bytes[n..end].to_vec();
        if let Some(key) = header.mask {
            apply_mask(&mut payload, key, 0);
        }
        frames.push((header.opcode, payload));
        bytes = &bytes[end..];
    }
    frames
}

/// Asserts that `bytes` is exactly one close frame sent by `from`, with `code`.
pub fn assert_close_sent(from: Role, bytes: &[u8], code: CloseCode) {
    let frames = frames(from, bytes);
    assert_eq!(frames.len(), 1, "one frame sent: {frames:?}");
    assert_eq!(frames[0].0, Opcode::Close);
    assert_eq!(frames[0].1[..2], code.0.to_be_bytes());
}

/// Feeds `conn` a head that starts with `start` and never ends, one byte more per call, up to
/// `limit` bytes of `buf` (which must hold `limit`; it allocates nothing, so a caller can
/// count the connection's heap around it): returns the refusal and how many calls it took. Each call checks that more
/// bytes were needed, and the bytes already examined are then overwritten with blank lines,
/// so a scanner that started over at each call would find one and stop early: the work must
/// be linear (the scanner resumes where it stopped, and never looks back beyond the three
/// bytes that could start a blank line).
pub fn scan_head_byte_by_byte(
    conn: &mut wsmachine::Connection,
    buf: &mut [u8],
    start: &[u8],
    limit: usize,
) -> (wsmachine::Error, usize) {
    for n in 1..=limit {
        buf[n - 1] = start.get(n - 1).copied().unwrap_or(b'a');
        let r = conn.receive(&mut buf[..n], T0);
        if n == limit {
            return (r.expect_err("refused at the limit"), n);
        }
        let r = r.expect("more bytes are needed under the limit");
        assert_eq!((r.consumed, r.needed), (0, 1));
        assert!(r.event.is_none());
        if n > 8 {
            for chunk in buf[..n - 4].chunks_mut(4) {
                chunk.copy_from_slice(&b"\r\n\r\n"[..chunk.len()]);
            }
        }
    }
    unreachable!("the loop returns at the limit")
}
