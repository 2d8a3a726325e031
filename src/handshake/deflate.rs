//! permessage-deflate negotiation (RFC 7692 §5, §7): the policy ([`DeflateConfig`]), the
//! parameters of an offer or an answer, the server's choice among a client's offers, the
//! client's offer and its check of the server's answer. The transform itself is the
//! connection's (`connection/compress.rs`).

use alloc::string::String;

use super::extension::extension_name;
use crate::http::write::put_decimal;

/// The extension's name (RFC 7692 §7).
pub(crate) const NAME: &str = "permessage-deflate";

/// Whether and how permessage-deflate is negotiated.
#[derive(Clone, Copy, Debug, Eq, Hash, PartialEq)]
pub enum DeflateMode {
    /// Never offered, and declined when a client offers it.
    Off,
    /// A client offers it; a server accepts the first acceptable offer. Without an agreement
    /// the connection runs uncompressed.
    On,
    /// As `On`, but a connection without it fails: a server refuses the upgrade (400, with
    /// [`ErrorKind::DeflateRequired`](crate::ErrorKind::DeflateRequired)), a client fails
    /// the handshake with the same kind.
    Required,
}

/// permessage-deflate policy and settings (feature `deflate`), set on a
/// [`Config`](crate::Config) with [`Config::deflate`](crate::Config::deflate).
///
/// Settings are named after the direction they govern, as in RFC 7692: *server* settings are
/// about what the server compresses, *client* settings about what the client compresses. A
/// server answers offers within them; a client offers them.
///
/// | setting | default | why |
/// |---|---|---|
/// | [`mode`](Self::mode) | `On` | every browser offers it; text shrinks 3–10× |
/// | [`server_max_window_bits`](Self::server_max_window_bits) | 12 | a 4 KiB window, as Python websockets answers: chat and JSON messages are small, and a window costs memory while a message is compressed |
/// | [`client_max_window_bits`](Self::client_max_window_bits) | 12 | the window the server must keep per connection to inflate with context takeover: 4 KiB instead of 32 KiB |
/// | [`server_no_context_takeover`](Self::server_no_context_takeover) | on | the server's compressor is reset after every message, so an idle connection holds none (with zlib-rs a compressor costs over 140 KiB, mostly its fixed hash table) |
/// | [`client_no_context_takeover`](Self::client_no_context_takeover) | off | chat messages compress 3.8× with the client's context and 1.2× without; an idle server connection keeps only the 4 KiB window, not the decompressor |
/// | [`threshold`](Self::threshold) | 64 bytes | smaller messages rarely shrink without context takeover; they go uncompressed |
/// | [`level`](Self::level) | 1 | zlib-rs' fastest level compresses chat text nearly as well as level 6 at a fraction of the CPU |
///
/// A window of 8 bits (256 bytes) is honoured by compressing without back-references
/// (Huffman coding only), which fits any window: zlib-based implementations cannot produce
/// 8-bit windows at all, and some answer 9 to an offer of 8, which RFC 7692 forbids.
#[derive(Clone, Copy, Debug, Eq, Hash, PartialEq)]
pub struct DeflateConfig {
    pub(crate) mode: DeflateMode,
    pub(crate) server_max_window_bits: u8,
    pub(crate) client_max_window_bits: u8,
    pub(crate) server_no_context_takeover: bool,
    pub(crate) client_no_context_takeover: bool,
    pub(crate) threshold: usize,
    pub(crate) level: u8,
}

impl Default for DeflateConfig {
    fn default() -> Self {
        Self::new()
    }
}

impl DeflateConfig {
    /// The defaults (see the table above).
    pub const fn new() -> Self {
        Self {
            mode: DeflateMode::On,
            server_max_window_bits: 12,
            client_max_window_bits: 12,
            server_no_context_takeover: true,
            client_no_context_takeover: false,
            threshold: 64,
            level: 1,
        }
    }

    /// Compression off: never offered, always declined.
    pub const fn off() -> Self {
        Self::new().mode(DeflateMode::Off)
    }

    /// Whether compression is offered, accepted or required.
    pub const fn mode(mut self, mode: DeflateMode) -> Self {
        self.mode = mode;
        self
    }

    /// The largest window (8–15 bits, clamped) the server compresses with. A server answers
    /// with the smaller of this and the client's `server_max_window_bits`; a client below 15
    /// asks the server for it.
    pub const fn server_max_window_bits(mut self, bits: u8) -> Self {
        self.server_max_window_bits = clamp_bits(bits);
        self
    }

    /// The largest window (8–15 bits, clamped) the client compresses with. A server asks it
    /// of a client that offered `client_max_window_bits`; a client offers it.
    pub const fn client_max_window_bits(mut self, bits: u8) -> Self {
        self.client_max_window_bits = clamp_bits(bits);
        self
    }

    /// Whether the server resets its compressor after every message. A server answers with
    /// it; a client asks for it.
    pub const fn server_no_context_takeover(mut self, on: bool) -> Self {
        self.server_no_context_takeover = on;
        self
    }

    /// Whether the client resets its compressor after every message. A server asks for it;
    /// a client offers it (and does it).
    pub const fn client_no_context_takeover(mut self, on: bool) -> Self {
        self.client_no_context_takeover = on;
        self
    }

    /// Messages shorter than this many bytes are sent uncompressed (RSV1 is set per
    /// message, so that is always allowed).
    pub const fn threshold(mut self, bytes: usize) -> Self {
        self.threshold = bytes;
        self
    }

    /// The compression level, 1 (fastest) to 9 (smallest), clamped.
    pub const fn level(mut self, level: u8) -> Self {
        self.level = if level < 1 {
            1
        } else if level > 9 {
            9
        } else {
            level
        };
        self
    }

    /// The settings of the documented low-memory profile: no context takeover either way,
    /// so an idle connection holds no compression state at all, and 9-bit windows while a
    /// message is being compressed.
    pub const fn low_memory() -> Self {
        Self::new()
            .server_no_context_takeover(true)
            .client_no_context_takeover(true)
            .server_max_window_bits(9)
            .client_max_window_bits(9)
    }
}

const fn clamp_bits(bits: u8) -> u8 {
    if bits < 8 {
        8
    } else if bits > 15 {
        15
    } else {
        bits
    }
}

/// What a connection agreed to, for both directions (RFC 7692 §7.1). Window bits are 8–15;
/// 15 when the answer named none.
#[derive(Clone, Copy, Debug, Eq, Hash, PartialEq)]
pub struct DeflateParams {
    /// The server resets its compressor after every message.
    pub server_no_context_takeover: bool,
    /// The client resets its compressor after every message.
    pub client_no_context_takeover: bool,
    /// The largest window the server compresses with.
    pub server_max_window_bits: u8,
    /// The largest window the client compresses with.
    pub client_max_window_bits: u8,
}

/// Why a server's permessage-deflate answer was refused (RFC 7692 §5, §7.1): the client
/// fails the handshake with
/// [`ErrorKind::InvalidDeflateResponse`](crate::ErrorKind::InvalidDeflateResponse).
#[derive(Clone, Copy, Debug, Eq, Hash, PartialEq)]
#[non_exhaustive]
pub enum DeflateResponseError {
    /// The server answered permessage-deflate more than once.
    Repeated,
    /// A parameter RFC 7692 does not define.
    UnknownParameter,
    /// A parameter appears twice.
    DuplicateParameter,
    /// A value that is missing, out of 8–15, not a number, or on a parameter that takes none.
    InvalidValue,
    /// `client_max_window_bits` larger than the client offered.
    ClientWindowNotAllowed,
    /// `server_max_window_bits` larger than the client asked for.
    ServerWindowTooLarge,
    /// The client asked for `server_no_context_takeover` or a `server_max_window_bits`, and
    /// the answer does not grant it (RFC 7692 §7.1.1.1, §7.1.2.1).
    RequestNotGranted,
}

impl core::fmt::Display for DeflateResponseError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Self::Repeated => "permessage-deflate answered more than once",
            Self::UnknownParameter => "unknown permessage-deflate parameter",
            Self::DuplicateParameter => "repeated permessage-deflate parameter",
            Self::InvalidValue => "invalid permessage-deflate parameter value",
            Self::ClientWindowNotAllowed => "client_max_window_bits larger than offered",
            Self::ServerWindowTooLarge => "server_max_window_bits larger than requested",
            Self::RequestNotGranted => "requested permessage-deflate parameter not granted",
        })
    }
}

/// The parameters of one offer or answer, as written.
#[derive(Clone, Copy, Debug, Default, Eq, PartialEq)]
struct Written {
    server_no_context_takeover: bool,
    client_no_context_takeover: bool,
    server_max_window_bits: Option<u8>,
    /// `Some(None)`: present without a value (allowed only in an offer).
    client_max_window_bits: Option<Option<u8>>,
}

/// Parses the parameters of a permessage-deflate offer or answer (`offer` is the whole
/// element, name included). Any unknown parameter, duplicate, or bad value is an error.
fn parse(offer: &str) -> Result<Written, DeflateResponseError> {
    let mut params = Written::default();
    for param in offer.split(';').skip(1) {
        let (name, value) = match param.split_once('=') {
            Some((name, value)) => (trim(name), Some(unquote(trim(value))?)),
            None => (trim(param), None),
        };
        let seen = |b: bool| if b { Err(DeflateResponseError::DuplicateParameter) } else { Ok(()) };
        if name.eq_ignore_ascii_case("server_no_context_takeover") {
            seen(params.server_no_context_takeover)?;
            no_value(value)?;
            params.server_no_context_takeover = true;
        } else if name.eq_ignore_ascii_case("client_no_context_takeover") {
            seen(params.client_no_context_takeover)?;
            no_value(value)?;
            params.client_no_context_takeover = true;
        } else if name.eq_ignore_ascii_case("server_max_window_bits") {
            seen(params.server_max_window_bits.is_some())?;
            let value = value.ok_or(DeflateResponseError::InvalidValue)?;
            params.server_max_window_bits = Some(window_bits(value)?);
        } else if name.eq_ignore_ascii_case("client_max_window_bits") {
            seen(params.client_max_window_bits.is_some())?;
            params.client_max_window_bits = Some(value.map(window_bits).transpose()?);
        } else {
            return Err(DeflateResponseError::UnknownParameter);
        }
    }
    Ok(params)
}

fn trim(s: &str) -> &str {
    s.trim_matches(|c| c == ' ' || c == '\t')
}

fn no_value(value: Option<&str>) -> Result<(), DeflateResponseError> {
    match value {
        None => Ok(()),
        Some(_) => Err(DeflateResponseError::InvalidValue),
    }
}

/// RFC 6455 §9.1: a parameter value may be a quoted string, which unescaped must be a token;
/// the window sizes are digits, so no escape can be part of a valid one.
fn unquote(value: &str) -> Result<&str, DeflateResponseError> {
    match value.strip_prefix('"') {
        Some(rest) => rest.strip_suffix('"').ok_or(DeflateResponseError::InvalidValue),
        None => Ok(value),
    }
}

/// RFC 7692 §7.1.2: `1*DIGIT`, a decimal integer from 8 to 15.
fn window_bits(value: &str) -> Result<u8, DeflateResponseError> {
    if value.is_empty() || value.len() > 2 || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(DeflateResponseError::InvalidValue);
    }
    let bits: u8 = value.parse().map_err(|_| DeflateResponseError::InvalidValue)?;
    if (8..=15).contains(&bits) {
        Ok(bits)
    } else {
        Err(DeflateResponseError::InvalidValue)
    }
}

fn is_deflate(element: &str) -> bool {
    extension_name(element).eq_ignore_ascii_case(NAME)
}

/// Server: the first acceptable permessage-deflate offer among `offers`, in the client's
/// order of preference, and the parameters answered. A malformed offer is declined (RFC
/// 7692 §5: "A server MUST decline an extension negotiation offer" it cannot accept), never
/// an error: the next is tried.
pub(crate) fn choose<'a>(
    offers: impl Iterator<Item = &'a str>,
    config: &DeflateConfig,
) -> Option<DeflateParams> {
    if config.mode == DeflateMode::Off {
        return None;
    }
    offers.filter(|o| is_deflate(o)).find_map(|offer| {
        let offered = parse(offer).ok()?;
        // §7.1.2.1: answer the same or a smaller window than offered, or any when none was.
        let server_bits =
            offered.server_max_window_bits.unwrap_or(15).min(config.server_max_window_bits);
        // §7.1.2.2: only a client that offered the parameter may be limited.
        let client_bits = match offered.client_max_window_bits {
            Some(offered) => offered.unwrap_or(15).min(config.client_max_window_bits),
            None => 15,
        };
        Some(DeflateParams {
            server_no_context_takeover: offered.server_no_context_takeover
                || config.server_no_context_takeover,
            client_no_context_takeover: offered.client_no_context_takeover
                || config.client_no_context_takeover,
            server_max_window_bits: server_bits,
            client_max_window_bits: client_bits,
        })
    })
}

/// Writes the server's answer for `params` (the value of `Sec-WebSocket-Extensions`). Every
/// parameter that differs from the default is named, so the client knows exactly what holds.
pub(crate) fn write_answer(out: &mut impl crate::http::write::Sink, params: &DeflateParams) {
    out.put(NAME.as_bytes());
    if params.server_no_context_takeover {
        out.put(b"; server_no_context_takeover");
    }
    if params.client_no_context_takeover {
        out.put(b"; client_no_context_takeover");
    }
    if params.server_max_window_bits < 15 {
        out.put(b"; server_max_window_bits=");
        put_decimal(out, params.server_max_window_bits.into());
    }
    if params.client_max_window_bits < 15 {
        out.put(b"; client_max_window_bits=");
        put_decimal(out, params.client_max_window_bits.into());
    }
}

/// Client: the offer for `config`. It always carries `client_max_window_bits` (valued when
/// below 15), which lets the server choose the client's window.
pub(crate) fn offer(config: &DeflateConfig) -> String {
    let mut s = String::from(NAME);
    if config.client_no_context_takeover {
        s.push_str("; client_no_context_takeover");
    }
    if config.server_no_context_takeover {
        s.push_str("; server_no_context_takeover");
    }
    if config.server_max_window_bits < 15 {
        s.push_str("; server_max_window_bits=");
        push_decimal(&mut s, config.server_max_window_bits);
    }
    s.push_str("; client_max_window_bits");
    if config.client_max_window_bits < 15 {
        s.push('=');
        push_decimal(&mut s, config.client_max_window_bits);
    }
    s
}

fn push_decimal(s: &mut String, n: u8) {
    if n >= 10 {
        s.push(char::from(b'0' + n / 10));
    }
    s.push(char::from(b'0' + n % 10));
}

/// Client: checks the server's answer to [`offer`] (the permessage-deflate elements of its
/// `Sec-WebSocket-Extensions`): `Ok(None)` if it declined, the agreement otherwise.
pub(crate) fn check_answer<'a>(
    answers: impl Iterator<Item = &'a str>,
    config: &DeflateConfig,
) -> Result<Option<DeflateParams>, DeflateResponseError> {
    let mut agreed = None;
    for answer in answers.filter(|a| is_deflate(a)) {
        if agreed.is_some() {
            return Err(DeflateResponseError::Repeated);
        }
        let got = parse(answer)?;
        let client_bits = match got.client_max_window_bits {
            None => config.client_max_window_bits,
            Some(None) => return Err(DeflateResponseError::InvalidValue),
            Some(Some(bits)) if bits > config.client_max_window_bits => {
                return Err(DeflateResponseError::ClientWindowNotAllowed);
            }
            Some(Some(bits)) => bits,
        };
        let window_asked = config.server_max_window_bits < 15;
        if (config.server_no_context_takeover && !got.server_no_context_takeover)
            || (window_asked && got.server_max_window_bits.is_none())
        {
            return Err(DeflateResponseError::RequestNotGranted);
        }
        let server_bits = got.server_max_window_bits.unwrap_or(15);
        if server_bits > config.server_max_window_bits {
            return Err(DeflateResponseError::ServerWindowTooLarge);
        }
        agreed = Some(DeflateParams {
            server_no_context_takeover: got.server_no_context_takeover,
            client_no_context_takeover: got.client_no_context_takeover
                || config.client_no_context_takeover,
            server_max_window_bits: server_bits,
            client_max_window_bits: client_bits,
        });
    }
    Ok(agreed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    fn answer(params: &DeflateParams) -> String {
        let mut out = Vec::new();
        write_answer(&mut out, params);
        String::from_utf8(out).unwrap()
    }

    fn server(offers: &[&str]) -> Option<String> {
        choose(offers.iter().copied(), &DeflateConfig::new()).map(|p| answer(&p))
    }

    #[test]
    fn a_browser_offer_gets_the_server_defaults() {
        assert_eq!(
            server(&["permessage-deflate; client_max_window_bits"]).as_deref(),
            Some(
                "permessage-deflate; server_no_context_takeover; server_max_window_bits=12; \
                 client_max_window_bits=12"
            )
        );
        // No client_max_window_bits offered: the client's window cannot be limited.
        assert_eq!(
            server(&["permessage-deflate"]).as_deref(),
            Some("permessage-deflate; server_no_context_takeover; server_max_window_bits=12")
        );
    }

    #[test]
    fn never_a_window_larger_than_offered() {
        let p = choose(
            ["permessage-deflate; server_max_window_bits=8; client_max_window_bits=9"].into_iter(),
            &DeflateConfig::new(),
        )
        .unwrap();
        assert_eq!((p.server_max_window_bits, p.client_max_window_bits), (8, 9));
        let wide = DeflateConfig::new().server_max_window_bits(15).client_max_window_bits(15);
        let p = choose(["permessage-deflate; client_max_window_bits=10"].into_iter(), &wide);
        assert_eq!(p.map(|p| (p.server_max_window_bits, p.client_max_window_bits)), Some((15, 10)));
    }

    #[test]
    fn malformed_offers_are_declined_and_the_next_is_taken() {
        for bad in [
            "permessage-deflate; foo",
            "permessage-deflate; server_max_window_bits",
            "permessage-deflate; server_max_window_bits=7",
            "permessage-deflate; server_max_window_bits=16",
            "permessage-deflate; client_max_window_bits=0x9",
            "permessage-deflate; client_max_window_bits=008",
            "permessage-deflate; client_max_window_bits=",
            "permessage-deflate; server_no_context_takeover=1",
            "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
            "permessage-deflate; client_max_window_bits; client_max_window_bits=10",
            "permessage-deflate; server_max_window_bits=\"10",
        ] {
            assert_eq!(server(&[bad]), None, "{bad}");
            let next = server(&[bad, "permessage-deflate; client_no_context_takeover"]);
            assert!(next.unwrap().contains("client_no_context_takeover"), "{bad}");
        }
        // A quoted value is unquoted (RFC 6455 §9.1); names are case-insensitive.
        let p = choose(
            ["x-other", "PerMessage-Deflate; Server_Max_Window_Bits=\"9\""].into_iter(),
            &DeflateConfig::new(),
        );
        assert_eq!(p.map(|p| p.server_max_window_bits), Some(9));
        assert_eq!(choose(["permessage-deflate"].into_iter(), &DeflateConfig::off()), None);
    }

    #[test]
    fn the_client_offers_its_config_and_checks_the_answer() {
        let config = DeflateConfig::new();
        assert_eq!(
            offer(&config),
            "permessage-deflate; server_no_context_takeover; server_max_window_bits=12; \
             client_max_window_bits=12"
        );
        let wide = DeflateConfig::new()
            .server_no_context_takeover(false)
            .server_max_window_bits(15)
            .client_max_window_bits(15);
        assert_eq!(offer(&wide), "permessage-deflate; client_max_window_bits");
        // What our own server answers, our client accepts.
        let ours = choose([offer(&config).as_str()].into_iter(), &config).unwrap();
        let text = answer(&ours);
        assert_eq!(check_answer([text.as_str()].into_iter(), &config), Ok(Some(ours)));
        assert_eq!(check_answer(["x-foo"].into_iter(), &config), Ok(None));
        let p = check_answer(["permessage-deflate"].into_iter(), &wide).unwrap().unwrap();
        assert_eq!((p.server_max_window_bits, p.client_max_window_bits), (15, 15));
    }

    #[test]
    fn bad_answers_say_what_is_wrong() {
        use DeflateResponseError::*;
        let config = DeflateConfig::new();
        let granted = "permessage-deflate; server_no_context_takeover; server_max_window_bits=12";
        for (answer, error) in [
            ("permessage-deflate; x=1", UnknownParameter),
            ("permessage-deflate; client_no_context_takeover; client_no_context_takeover", DuplicateParameter),
            ("permessage-deflate; server_max_window_bits=20", InvalidValue),
            ("permessage-deflate; client_max_window_bits", InvalidValue),
            ("permessage-deflate; server_no_context_takeover; server_max_window_bits=13", ServerWindowTooLarge),
            ("permessage-deflate; server_no_context_takeover; server_max_window_bits=12; client_max_window_bits=13", ClientWindowNotAllowed),
            ("permessage-deflate; server_max_window_bits=12", RequestNotGranted),
            ("permessage-deflate; server_no_context_takeover", RequestNotGranted),
        ] {
            assert_eq!(check_answer([answer].into_iter(), &config), Err(error), "{answer}");
        }
        assert_eq!(check_answer([granted, granted].into_iter(), &config), Err(Repeated));
        assert!(check_answer([granted].into_iter(), &config).unwrap().is_some());
    }
}
