//! Close codes and close frames (RFC 6455 §5.5.1, §7.4).

use core::fmt;

/// A close status code (RFC 6455 §7.4): an open code space, so any `u16` can be held; the
/// constants name the ones the RFC and the IANA registry define.
#[derive(Clone, Copy, Debug, Eq, Hash, Ord, PartialEq, PartialOrd)]
pub struct CloseCode(pub u16);

impl CloseCode {
    /// 1000: the purpose for which the connection was established has been fulfilled.
    pub const NORMAL: Self = Self(1000);
    /// 1001: an endpoint is going away (a server going down, a browser leaving the page).
    pub const GOING_AWAY: Self = Self(1001);
    /// 1002: the endpoint is terminating the connection due to a protocol error.
    pub const PROTOCOL_ERROR: Self = Self(1002);
    /// 1003: the endpoint received a type of data it cannot accept.
    pub const UNSUPPORTED_DATA: Self = Self(1003);
    /// 1005: no status code was present in the close frame. Never sent on the wire.
    pub const NO_STATUS: Self = Self(1005);
    /// 1006: the connection was closed without a close frame. Never sent on the wire.
    pub const ABNORMAL: Self = Self(1006);
    /// 1007: a message's data was not consistent with its type (invalid UTF-8 in a text
    /// message or a close reason).
    pub const INVALID_PAYLOAD: Self = Self(1007);
    /// 1008: a message violates the endpoint's policy.
    pub const POLICY_VIOLATION: Self = Self(1008);
    /// 1009: a message is too big to process.
    pub const MESSAGE_TOO_BIG: Self = Self(1009);
    /// 1010: the client expected the server to negotiate an extension it did not.
    pub const MANDATORY_EXTENSION: Self = Self(1010);
    /// 1011: the server met an unexpected condition that prevented it from fulfilling the
    /// request.
    pub const INTERNAL_ERROR: Self = Self(1011);
    /// 1012: the service is restarting (IANA registry).
    pub const SERVICE_RESTART: Self = Self(1012);
    /// 1013: try again later (IANA registry).
    pub const TRY_AGAIN_LATER: Self = Self(1013);
    /// 1014: a gateway or proxy received an invalid response from upstream (IANA registry).
    pub const BAD_GATEWAY: Self = Self(1014);
    /// 1015: the TLS handshake failed. Never sent on the wire.
    pub const TLS_HANDSHAKE: Self = Self(1015);

    /// Whether this code may appear in a close frame on the wire.
    ///
    /// RFC 6455 §7.4.1 and §7.4.2: 1000–1003 and 1007–1011 are defined for use; 1012–1014
    /// are registered with IANA; 3000–3999 are for libraries and frameworks and 4000–4999 for
    /// applications. 1004 is reserved, and 1005, 1006 and 1015 "MUST NOT be set as a status
    /// code in a Close control frame by an endpoint". Everything else below 3000 is reserved.
    pub const fn is_sendable(self) -> bool {
        matches!(self.0, 1000..=1003 | 1007..=1014 | 3000..=4999)
    }
}

impl From<u16> for CloseCode {
    fn from(code: u16) -> Self {
        Self(code)
    }
}

impl From<CloseCode> for u16 {
    fn from(code: CloseCode) -> Self {
        code.0
    }
}

impl fmt::Display for CloseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The longest close reason that fits a close frame: a control frame carries at most 125
/// bytes, two of which are the code (RFC 6455 §5.5).
pub const MAX_CLOSE_REASON: usize = 123;

/// A close frame that was sent or received: its code and its UTF-8 reason, held inline (no
/// allocation).
#[derive(Clone, Copy, Eq, PartialEq)]
pub struct CloseFrame {
    code: CloseCode,
    reason: [u8; MAX_CLOSE_REASON],
    reason_len: u8,
}

impl CloseFrame {
    /// A close frame with `code` and `reason`, or `None` if the reason is longer than
    /// [`MAX_CLOSE_REASON`] bytes.
    pub fn new(code: CloseCode, reason: &str) -> Option<Self> {
        if reason.len() > MAX_CLOSE_REASON {
            return None;
        }
        let mut bytes = [0; MAX_CLOSE_REASON];
        bytes[..reason.len()].copy_from_slice(reason.as_bytes());
        Some(Self { code, reason: bytes, reason_len: reason.len() as u8 })
    }

    /// A close frame with `code` and no reason.
    pub const fn code_only(code: CloseCode) -> Self {
        Self { code, reason: [0; MAX_CLOSE_REASON], reason_len: 0 }
    }

    /// The close code. A close frame received without a body reports
    /// [`CloseCode::NO_STATUS`] (1005), as RFC 6455 §7.1.5 defines.
    pub fn code(&self) -> CloseCode {
        self.code
    }

    /// The close reason, possibly empty.
    pub fn reason(&self) -> &str {
        // The bytes were copied from a `&str` or validated as UTF-8 before being stored, so
        // this never falls back; the fallback keeps the code free of panics and `unsafe`.
        core::str::from_utf8(&self.reason[..usize::from(self.reason_len)]).unwrap_or("")
    }

    /// The payload of this frame on the wire: the code in network byte order, then the reason.
    /// A frame whose code is [`CloseCode::NO_STATUS`] has an empty payload.
    pub(crate) fn write_payload(&self, out: &mut [u8; 125]) -> usize {
        if self.code == CloseCode::NO_STATUS {
            return 0;
        }
        let reason = &self.reason[..usize::from(self.reason_len)];
        out[..2].copy_from_slice(&self.code.0.to_be_bytes());
        out[2..2 + reason.len()].copy_from_slice(reason);
        2 + reason.len()
    }
}

impl fmt::Debug for CloseFrame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CloseFrame")
            .field("code", &self.code)
            .field("reason", &self.reason())
            .finish()
    }
}

/// Why a received close payload is invalid.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub(crate) enum ClosePayloadError {
    /// A one-byte body cannot hold a code.
    OneByte,
    /// The code is not one that may be sent.
    Code(u16),
    /// The reason is not UTF-8.
    Utf8,
}

/// Parses a received close frame's (unmasked) payload.
///
/// RFC 6455 §5.5.1: "If there is a body, the first two bytes of the body MUST be a 2-byte
/// unsigned integer (in network byte order) representing a status code ... Following the
/// 2-byte integer, the body MAY contain UTF-8-encoded data".
pub(crate) fn parse_close_payload(payload: &[u8]) -> Result<(CloseCode, &str), ClosePayloadError> {
    match payload {
        [] => Ok((CloseCode::NO_STATUS, "")),
        [_] => Err(ClosePayloadError::OneByte),
        [hi, lo, reason @ ..] => {
            let code = CloseCode(u16::from_be_bytes([*hi, *lo]));
            if !code.is_sendable() {
                return Err(ClosePayloadError::Code(code.0));
            }
            let reason = core::str::from_utf8(reason).map_err(|_| ClosePayloadError::Utf8)?;
            Ok((code, reason))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sendable_codes_follow_rfc_6455_section_7_4() {
        for code in [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014] {
            assert!(CloseCode(code).is_sendable(), "{code}");
        }
        for code in [0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535] {
            assert!(!CloseCode(code).is_sendable(), "{code}");
        }
        assert!(CloseCode(3000).is_sendable() && CloseCode(4999).is_sendable());
    }

    #[test]
    fn close_payload_parsing() {
        assert_eq!(parse_close_payload(b""), Ok((CloseCode::NO_STATUS, "")));
        assert_eq!(parse_close_payload(b"\x03"), Err(ClosePayloadError::OneByte));
        assert_eq!(parse_close_payload(b"\x03\xe8bye"), Ok((CloseCode::NORMAL, "bye")));
        assert_eq!(parse_close_payload(b"\x03\xed"), Err(ClosePayloadError::Code(1005)));
        assert_eq!(parse_close_payload(b"\x03\xe8\xff"), Err(ClosePayloadError::Utf8));
    }

    #[test]
    fn close_frame_holds_reason_inline() {
        let frame = CloseFrame::new(CloseCode::GOING_AWAY, "bye").unwrap();
        assert_eq!(frame.reason(), "bye");
        let mut out = [0; 125];
        let n = frame.write_payload(&mut out);
        assert_eq!(&out[..n], b"\x03\xe9bye");
        assert!(CloseFrame::new(CloseCode::NORMAL, &"x".repeat(124)).is_none());
        let empty = CloseFrame::new(CloseCode::NO_STATUS, "").unwrap();
        assert_eq!(empty.write_payload(&mut out), 0);
    }
}
