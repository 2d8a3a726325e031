//! `ws://` and `wss://` URLs, split into what connecting needs.

use alloc::string::String;

/// A `ws://` or `wss://` URL, split into what connecting needs.
#[derive(Clone, Debug, Eq, PartialEq)]
pub(crate) struct WsUrl {
    /// `wss`.
    pub(crate) secure: bool,
    /// `host:port` to connect to (IPv6 literals keep their brackets).
    pub(crate) address: String,
    /// The `Host` header: the authority, without the port when it is the scheme's default.
    pub(crate) host: String,
    /// The request target: path and query, starting with `/`.
    pub(crate) target: String,
}

impl WsUrl {
    /// Parses `ws://host[:port][/path][?query]` (or `wss://`); `None` if it is not one.
    pub(crate) fn parse(url: &str) -> Option<Self> {
        let (scheme, rest) = url.split_once("://")?;
        let secure = match scheme {
            s if s.eq_ignore_ascii_case("ws") => false,
            s if s.eq_ignore_ascii_case("wss") => true,
            _ => return None,
        };
        let split = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(split);
        let tail = tail.split('#').next().unwrap_or("");
        let target = match tail {
            "" => String::from("/"),
            t if t.starts_with('?') => alloc::format!("/{t}"),
            t => String::from(t),
        };
        if authority.is_empty() || authority.contains('@') {
            return None;
        }
        let default_port = if secure { 443 } else { 80 };
        // The port follows the last colon, unless that colon is inside an IPv6 literal.
        let (name, port) = match authority.rfind(':') {
            Some(colon) if !authority[colon..].contains(']') => {
                let port: u16 = authority[colon + 1..].parse().ok()?;
                (&authority[..colon], port)
            }
            _ => (authority, default_port),
        };
        if name.is_empty() {
            return None;
        }
        let host =
            if port == default_port { String::from(name) } else { alloc::format!("{name}:{port}") };
        Some(Self { secure, address: alloc::format!("{name}:{port}"), host, target })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let url = WsUrl::parse("ws://127.0.0.1:9001/runCase?case=1&agent=a").unwrap();
        assert_eq!(url.address, "127.0.0.1:9001");
        assert_eq!(url.host, "127.0.0.1:9001");
        assert_eq!(url.target, "/runCase?case=1&agent=a");
        assert!(!url.secure);
        let url = WsUrl::parse("WSS://example.com").unwrap();
        assert_eq!(
            (url.address.as_str(), url.host.as_str(), url.target.as_str()),
            ("example.com:443", "example.com", "/")
        );
        let url = WsUrl::parse("ws://[::1]:80?x#frag").unwrap();
        assert_eq!(
            (url.address.as_str(), url.host.as_str(), url.target.as_str()),
            ("[::1]:80", "[::1]", "/?x")
        );
        let url = WsUrl::parse("ws://[::1]/a").unwrap();
        assert_eq!(url.address, "[::1]:80");
        for bad in
            ["http://x/", "ws://", "ws://:80/", "ws://u@h/", "ws://h:port/", "ws://h:99999/", "x"]
        {
            assert_eq!(WsUrl::parse(bad), None, "{bad}");
        }
    }
}
