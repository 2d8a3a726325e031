//! The wire layer: pure parsing and encoding of frame headers (RFC 6455 §5.2), with no state.
//!
//! [`Connection`](crate::Connection) is built on these functions; they are public for callers
//! that need the codec alone (proxies, fuzzers, tests).
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-------+-+-------------+-------------------------------+
//! |F|R|R|R| opcode|M| Payload len |    Extended payload length    |
//! |I|S|S|S|  (4)  |A|     (7)     |             (16/64)           |
//! |N|V|V|V|       |S|             |   (if payload len==126/127)   |
//! | |1|2|3|       |K|             |                               |
//! +-+-+-+-+-------+-+-------------+ - - - - - - - - - - - - - - - +
//! |     Extended payload length continued, if payload len == 127  |
//! + - - - - - - - - - - - - - - - +-------------------------------+
//! |                               |Masking-key, if MASK set to 1  |
//! +-------------------------------+-------------------------------+
//! ```

pub use super::mask::apply_mask;

/// The longest a frame header can be: 2 bytes, 8 of extended length, 4 of masking key.
pub const MAX_HEADER_LEN: usize = 14;

/// The longest payload a control frame may carry (RFC 6455 §5.5).
pub const MAX_CONTROL_PAYLOAD: usize = 125;

/// A frame's opcode (RFC 6455 §5.2). Reserved opcodes are refused by [`FrameHeader::parse`].
#[derive(Clone, Copy, Debug, Eq, Hash, PartialEq)]
pub enum Opcode {
    /// 0x0: continues a fragmented message.
    Continuation,
    /// 0x1: the first frame of a text message.
    Text,
    /// 0x2: the first frame of a binary message.
    Binary,
    /// 0x8: a close frame.
    Close,
    /// 0x9: a ping.
    Ping,
    /// 0xA: a pong.
    Pong,
}

impl Opcode {
    /// The opcode for a 4-bit value, or `None` for the reserved values 0x3–0x7 and 0xB–0xF.
    pub const fn from_bits(bits: u8) -> Option<Self> {
        Some(match bits {
            0x0 => Self::Continuation,
            0x1 => Self::Text,
            0x2 => Self::Binary,
            0x8 => Self::Close,
            0x9 => Self::Ping,
            0xA => Self::Pong,
            _ => return None,
        })
    }

    /// The 4-bit value on the wire.
    pub const fn bits(self) -> u8 {
        match self {
            Self::Continuation => 0x0,
            Self::Text => 0x1,
            Self::Binary => 0x2,
            Self::Close => 0x8,
            Self::Ping => 0x9,
            Self::Pong => 0xA,
        }
    }

    /// Whether this is a control opcode (close, ping, pong): "Control frames are identified by
    /// opcodes where the most significant bit of the opcode is 1" (RFC 6455 §5.5).
    pub const fn is_control(self) -> bool {
        self.bits() & 0x8 != 0
    }
}

/// A parsed frame header.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub struct FrameHeader {
    /// Whether this is the final fragment of a message.
    pub fin: bool,
    /// The three RSV bits, in the low bits (RSV1 = 0b100).
    pub rsv: u8,
    /// The opcode.
    pub opcode: Opcode,
    /// The masking key, if the frame is masked.
    pub mask: Option<[u8; 4]>,
    /// The payload length.
    pub payload_len: u64,
}

/// Why a frame header cannot be parsed. Role- and state-dependent rules (masking, RSV bits,
/// fragmentation) are the [`Connection`](crate::Connection)'s to check.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub enum FrameError {
    /// A reserved opcode.
    ReservedOpcode(u8),
    /// A 64-bit length with its most significant bit set.
    LengthOutOfRange,
    /// A control frame with a payload over 125 bytes.
    ControlFrameTooLong,
    /// A control frame without FIN.
    FragmentedControlFrame,
}

impl FrameHeader {
    /// Parses a header from the start of `bytes`.
    ///
    /// Returns `Ok(None)` when `bytes` is too short to hold the whole header (at most
    /// [`MAX_HEADER_LEN`] bytes are looked at), and `Ok(Some((header, header_len)))` otherwise.
    pub fn parse(bytes: &[u8]) -> Result<Option<(Self, usize)>, FrameError> {
        let [b0, b1, rest @ ..] = bytes else { return Ok(None) };
        let fin = b0 & 0x80 != 0;
        let rsv = (b0 >> 4) & 0x7;
        let opcode = Opcode::from_bits(b0 & 0x0F).ok_or(FrameError::ReservedOpcode(b0 & 0x0F))?;
        let masked = b1 & 0x80 != 0;
        let (payload_len, ext_len) = match b1 & 0x7F {
            126 => match rest {
                [a, b, ..] => (u64::from(u16::from_be_bytes([*a, *b])), 2),
                _ => return Ok(None),
            },
            127 => match rest.get(..8) {
                Some(ext) => {
                    let mut be = [0; 8];
                    be.copy_from_slice(ext);
                    let len = u64::from_be_bytes(be);
                    // RFC 6455 §5.2: "the most significant bit MUST be 0".
                    if len >> 63 != 0 {
                        return Err(FrameError::LengthOutOfRange);
                    }
                    (len, 8)
                }
                None => return Ok(None),
            },
            len => (u64::from(len), 0),
        };
        if opcode.is_control() {
            // RFC 6455 §5.5: "All control frames MUST have a payload length of 125 bytes or
            // less and MUST NOT be fragmented."
            if payload_len > MAX_CONTROL_PAYLOAD as u64 {
                return Err(FrameError::ControlFrameTooLong);
            }
            if !fin {
                return Err(FrameError::FragmentedControlFrame);
            }
        }
        let mask = if masked {
            match rest.get(ext_len..ext_len + 4) {
                Some(key) => Some([key[0], key[1], key[2], key[3]]),
                None => return Ok(None),
            }
        } else {
            None
        };
        let header_len = 2 + ext_len + if masked { 4 } else { 0 };
        Ok(Some((Self { fin, rsv, opcode, mask, payload_len }, header_len)))
    }

    /// How many more bytes `input`, the start of a frame header that
    /// [`parse`](Self::parse) found incomplete, needs at least (never 0). Total: any input
    /// gives an answer, never a panic.
    pub fn needs(input: &[u8]) -> usize {
        let [_, b1, ..] = input else { return 2 - input.len() };
        let ext = match b1 & 0x7F {
            126 => 2,
            127 => 8,
            _ => 0,
        };
        let mask: usize = if b1 & 0x80 != 0 { 4 } else { 0 };
        (2 + ext + mask).saturating_sub(input.len()).max(1)
    }

    /// The number of bytes [`encode`](Self::encode) writes.
    pub const fn encoded_len(&self) -> usize {
        let ext = match self.payload_len {
            0..=125 => 0,
            126..=0xFFFF => 2,
            _ => 8,
        };
        2 + ext + if self.mask.is_some() { 4 } else { 0 }
    }

    /// Writes the header into the start of `out` with the shortest length encoding (RFC 6455
    /// §5.2: "the minimal number of bytes MUST be used to encode the length") and returns the
    /// number of bytes written, or `None` if `out` is shorter than
    /// [`encoded_len`](Self::encoded_len).
    pub fn encode(&self, out: &mut [u8]) -> Option<usize> {
        let len = self.encoded_len();
        let out = out.get_mut(..len)?;
        out[0] = u8::from(self.fin) << 7 | (self.rsv & 0x7) << 4 | self.opcode.bits();
        let mask_bit = if self.mask.is_some() { 0x80 } else { 0 };
        let key_at = match self.payload_len {
            0..=125 => {
                out[1] = mask_bit | self.payload_len as u8;
                2
            }
            126..=0xFFFF => {
                out[1] = mask_bit | 126;
                out[2..4].copy_from_slice(&(self.payload_len as u16).to_be_bytes());
                4
            }
            _ => {
                out[1] = mask_bit | 127;
                out[2..10].copy_from_slice(&self.payload_len.to_be_bytes());
                10
            }
        };
        if let Some(key) = self.mask {
            out[key_at..key_at + 4].copy_from_slice(&key);
        }
        Some(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(bytes: &[u8]) -> (FrameHeader, usize) {
        FrameHeader::parse(bytes).unwrap().unwrap()
    }

    // RFC 6455 §5.7 examples.
    #[test]
    fn a_partial_header_says_how_many_more_bytes_it_needs() {
        assert_eq!(FrameHeader::needs(&[]), 2);
        assert_eq!(FrameHeader::needs(&[0x81]), 1);
        // Masked, 16-bit length: 8 bytes in all.
        assert_eq!(FrameHeader::needs(&[0x81, 0xFE]), 6);
        assert_eq!(FrameHeader::needs(&[0x81, 0xFE, 0, 1, 2]), 3);
        // Unmasked, 64-bit length: 10 bytes in all.
        assert_eq!(FrameHeader::needs(&[0x82, 0x7F, 0, 0]), 6);
        // Never 0, whatever the input.
        assert_eq!(FrameHeader::needs(&[0x81, 0x05]), 1);
    }

    #[test]
    fn rfc_single_frame_unmasked_text() {
        let bytes = [0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f];
        let (h, n) = parse(&bytes);
        assert_eq!((h.fin, h.opcode, h.mask, h.payload_len, n), (true, Opcode::Text, None, 5, 2));
        assert_eq!(&bytes[n..], b"Hello");
    }

    #[test]
    fn rfc_single_frame_masked_text() {
        let mut bytes = [0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58];
        let (h, n) = parse(&bytes);
        assert_eq!(h.mask, Some([0x37, 0xfa, 0x21, 0x3d]));
        apply_mask(&mut bytes[n..], h.mask.unwrap(), 0);
        assert_eq!(&bytes[n..], b"Hello");
    }

    #[test]
    fn rfc_fragmented_unmasked_text() {
        let (first, _) = parse(&[0x01, 0x03, 0x48, 0x65, 0x6c]);
        let (last, _) = parse(&[0x80, 0x02, 0x6c, 0x6f]);
        assert_eq!((first.fin, first.opcode), (false, Opcode::Text));
        assert_eq!((last.fin, last.opcode), (true, Opcode::Continuation));
    }

    #[test]
    fn rfc_ping_and_pong() {
        let (ping, _) = parse(&[0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]);
        assert_eq!((ping.opcode, ping.payload_len), (Opcode::Ping, 5));
        let (pong, _) = parse(&[0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58]);
        assert_eq!((pong.opcode, pong.payload_len), (Opcode::Pong, 5));
    }

    #[test]
    fn rfc_256_byte_and_64_kib_binary_headers() {
        let (h, n) = parse(&[0x82, 0x7E, 0x01, 0x00]);
        assert_eq!((h.opcode, h.payload_len, n), (Opcode::Binary, 256, 4));
        let (h, n) = parse(&[0x82, 0x7F, 0, 0, 0, 0, 0, 0x01, 0x00, 0x00]);
        assert_eq!((h.payload_len, n), (65536, 10));
    }

    #[test]
    fn encode_matches_rfc_bytes_and_roundtrips() {
        let h =
            FrameHeader { fin: true, rsv: 0, opcode: Opcode::Binary, mask: None, payload_len: 256 };
        let mut out = [0; MAX_HEADER_LEN];
        assert_eq!(h.encode(&mut out), Some(4));
        assert_eq!(&out[..4], &[0x82, 0x7E, 0x01, 0x00]);
        for len in [0, 1, 125, 126, 65535, 65536, 1 << 40] {
            for mask in [None, Some([1, 2, 3, 4])] {
                let h = FrameHeader {
                    fin: false,
                    rsv: 0b101,
                    opcode: Opcode::Text,
                    mask,
                    payload_len: len,
                };
                let n = h.encode(&mut out).unwrap();
                assert_eq!(n, h.encoded_len());
                assert_eq!(parse(&out[..n]), (h, n));
                assert_eq!(FrameHeader::parse(&out[..n - 1]), Ok(None));
            }
        }
        assert_eq!(h.encode(&mut [0; 3]), None);
    }

    #[test]
    fn refuses_what_the_wire_format_forbids() {
        assert_eq!(FrameHeader::parse(&[0x83, 0x00]), Err(FrameError::ReservedOpcode(3)));
        assert_eq!(FrameHeader::parse(&[0x8B, 0x00]), Err(FrameError::ReservedOpcode(0xB)));
        let mut huge = [0x82, 0x7F, 0x80, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(FrameHeader::parse(&huge), Err(FrameError::LengthOutOfRange));
        huge[2] = 0x7F;
        assert_eq!(parse(&huge).0.payload_len, 0x7F00_0000_0000_0000);
        assert_eq!(
            FrameHeader::parse(&[0x89, 0x7E, 0x00, 0x7E]),
            Err(FrameError::ControlFrameTooLong)
        );
        assert_eq!(FrameHeader::parse(&[0x09, 0x00]), Err(FrameError::FragmentedControlFrame));
    }

    #[test]
    fn short_input_asks_for_more() {
        for bytes in
            [&[][..], &[0x82], &[0x82, 0x7E, 0x01], &[0x82, 0x7F, 0, 0, 0], &[0x82, 0x81, 1, 2, 3]]
        {
            assert_eq!(FrameHeader::parse(bytes), Ok(None));
        }
    }
}
