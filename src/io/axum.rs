//! axum integration (feature `axum`): a route that upgrades to a wsmachine [`WebSocket`],
//! over HTTP/1.1 and over HTTP/2 (RFC 8441 extended CONNECT).
//!
//! ```no_run
//! use axum::{routing::any, Router};
//! use wsmachine::axum::WebSocketUpgrade;
//! use wsmachine::{Decision, Incoming, Outgoing};
//!
//! async fn ws(upgrade: WebSocketUpgrade) -> axum::response::Response {
//!     upgrade.on_upgrade(|mut socket| async move {
//!         while let Ok(Some(incoming)) = socket.recv().await {
//!             if let Incoming::Text(text) = incoming {
//!                 let _ = socket.send(Outgoing::Text(text)).await;
//!             }
//!         }
//!     })
//! }
//!
//! # async fn run() -> std::io::Result<()> {
//! let app: Router = Router::new().route("/ws", any(ws));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! axum::serve(listener, app).await
//! # }
//! ```
//!
//! # How it works
//!
//! The request hyper parsed is handed to the core's own server handshake, as the head an
//! HTTP/1.1 client would have sent: the same validation (a bad upgrade gets the same 400,
//! 426 with `Sec-WebSocket-Version: 13`, 405 or 431 as with [`tokio::accept`]), the same
//! subprotocol and permessage-deflate negotiation, and the `101` the core writes becomes the
//! response hyper sends. Once hyper has switched protocols, the upgraded stream (which yields
//! first any bytes hyper read past the request's head) is driven by the same tokio
//! [`WebSocket`] that [`tokio::accept`] returns.
//!
//! Over HTTP/2 (route with `any`, as the request is a `CONNECT`), the request carries
//! `:protocol websocket` and no `Sec-WebSocket-Key` (RFC 8441 §5); it goes through the same
//! rules with the HTTP/1.1 fields the core checks filled in, and the answer is a `200` with
//! the negotiated `Sec-WebSocket-Protocol` and `Sec-WebSocket-Extensions`. `axum::serve`
//! enables extended CONNECT for HTTP/2.
//!
//! [`tokio::accept`]: crate::tokio::accept

use alloc::vec::Vec;
use core::future::Future;

use ::tokio::time::Instant as TokioInstant;
use axum_core::body::Body;
use axum_core::extract::FromRequestParts;
use axum_core::response::{IntoResponse, Response};
use http::request::Parts;
use http::{HeaderName, HeaderValue, Method, StatusCode, Version};
use hyper::upgrade::OnUpgrade;

use super::clock::Clock;
use super::driver::{decide_once, HeapDriver as Driver, Step, Want};
use super::owned::{Decision, HttpResponse};
use super::tokio::{open_socket, WebSocket};
use crate::connection::config::Config;
use crate::connection::Connection;
use crate::handshake::Request;

/// The stream of an upgraded request.
pub type Upgraded = hyper_util::rt::TokioIo<hyper::upgrade::Upgraded>;

/// An axum extractor for a WebSocket upgrade request: answer it with
/// [`on_upgrade`](Self::on_upgrade) (accept any valid request) or
/// [`on_upgrade_with`](Self::on_upgrade_with) (decide on the [`Request`]: its path, `Origin`,
/// subprotocols), after choosing a [`config`](Self::config).
///
/// Extraction never fails: a request that is not a valid upgrade gets the core's HTTP error
/// from `on_upgrade`.
pub struct WebSocketUpgrade {
    /// The request's head, as an HTTP/1.1 client would have sent it.
    head: Vec<u8>,
    /// Whether it came over HTTP/2 (answered with `200`, not `101`).
    http2: bool,
    /// Why the request cannot be an upgrade at all, before the core looks at it.
    invalid: Option<&'static str>,
    on_upgrade: Option<OnUpgrade>,
    config: Config,
}

impl core::fmt::Debug for WebSocketUpgrade {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("WebSocketUpgrade")
            .field("http2", &self.http2)
            .field("invalid", &self.invalid)
            .finish_non_exhaustive()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for WebSocketUpgrade {
    type Rejection = core::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(Self::from_parts(parts))
    }
}

impl WebSocketUpgrade {
    /// Takes the upgrade request out of `parts` (its head and hyper's upgrade handle): for use
    /// with hyper directly, without axum's extractors.
    pub fn from_parts(parts: &mut Parts) -> Self {
        let http2 = parts.version == Version::HTTP_2;
        let (head, invalid) = if http2 { http2_head(parts) } else { (http1_head(parts), None) };
        Self {
            head,
            http2,
            invalid,
            on_upgrade: parts.extensions.remove::<OnUpgrade>(),
            config: Config::new(),
        }
    }

    /// The connection's configuration (limits, timers, compression; the handshake deadline
    /// does not apply, hyper read the request).
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// Whether the request came over HTTP/2 (RFC 8441).
    pub fn is_http2(&self) -> bool {
        self.http2
    }

    /// Accepts the request if it is a valid upgrade, and runs `callback` with the WebSocket
    /// once hyper has switched protocols. Returns the response to send: the `101` (or the
    /// `200` over HTTP/2), or the core's HTTP error for an invalid request.
    pub fn on_upgrade<F, Fut>(self, callback: F) -> Response
    where
        F: FnOnce(WebSocket<Upgraded>) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.on_upgrade_with(|_| Decision::accept(), callback)
    }

    /// As [`on_upgrade`](Self::on_upgrade), with `decide` accepting (choosing a subprotocol,
    /// adding headers) or rejecting (with any status: 403 for a foreign `Origin`) the valid
    /// request. A rejection's response is returned and `callback` is not run.
    pub fn on_upgrade_with<D, F, Fut>(self, decide: D, callback: F) -> Response
    where
        D: FnOnce(&Request<'_>) -> Decision,
        F: FnOnce(WebSocket<Upgraded>) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        if let Some(reason) = self.invalid {
            return plain(StatusCode::BAD_REQUEST, reason);
        }
        let clock = Clock::new(TokioInstant::now());
        let now = clock.instant(TokioInstant::now());
        let mut driver = Driver::new(Connection::server(self.config, now));
        let head = self.head;
        driver.read_with(|buf| buf.extend_from_slice(&head));
        let mut decide = decide_once(decide);
        let mut answer = Vec::new();
        let outcome = loop {
            match driver.handshake_step::<core::convert::Infallible>(now, &mut decide) {
                Step::Ready(outcome) => break outcome,
                Step::Io(Want::Write) => {
                    let n = driver.output().len();
                    answer.extend_from_slice(driver.output());
                    driver.wrote(n);
                }
                // The whole head was given: a request the core still waits on is incomplete.
                Step::Io(Want::Read { .. }) => driver.read_eof(),
                Step::Io(Want::Shutdown) => driver.shut_down(),
            }
        };
        let Some(mut response) = parse_response(&answer, self.http2) else {
            return plain(StatusCode::INTERNAL_SERVER_ERROR, "no answer to the upgrade request");
        };
        if outcome.is_err() {
            return response;
        }
        let Some(on_upgrade) = self.on_upgrade else {
            return plain(StatusCode::UPGRADE_REQUIRED, "this connection cannot be upgraded");
        };
        ::tokio::spawn(async move {
            if let Ok(upgraded) = on_upgrade.await {
                let stream = hyper_util::rt::TokioIo::new(upgraded);
                callback(open_socket(stream, driver, clock)).await;
            }
        });
        if self.http2 {
            *response.status_mut() = StatusCode::OK;
        }
        response
    }
}

/// A plain-text response with `status`.
fn plain(status: StatusCode, text: &'static str) -> Response {
    (status, text).into_response()
}

/// The head of an HTTP/1.1 request, as the client sent it (hyper keeps every field).
fn http1_head(parts: &Parts) -> Vec<u8> {
    let target = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let mut head = Vec::with_capacity(256);
    push_request_line(&mut head, parts.method.as_str(), target);
    for (name, value) in &parts.headers {
        push_header(&mut head, name.as_str(), value.as_bytes());
    }
    head.extend_from_slice(b"\r\n");
    head
}

/// The fields the core's HTTP/1.1 rules check, for an HTTP/2 extended CONNECT (RFC 8441 §4,
/// §5): `CONNECT` with `:protocol websocket` stands for `GET` with `Upgrade: websocket`; the
/// `:authority` for `Host`; there is no key (a fixed one is checked, and its accept value
/// dropped from the answer). The other fields go as they came.
fn http2_head(parts: &Parts) -> (Vec<u8>, Option<&'static str>) {
    let protocol = parts.extensions.get::<hyper::ext::Protocol>().map(|p| p.as_str());
    let invalid = if parts.method != Method::CONNECT {
        Some("a WebSocket over HTTP/2 is opened with CONNECT (RFC 8441)")
    } else if !protocol.is_some_and(|p| p.eq_ignore_ascii_case("websocket")) {
        Some("an extended CONNECT needs :protocol websocket (RFC 8441)")
    } else {
        None
    };
    let target = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let mut head = Vec::with_capacity(256);
    push_request_line(&mut head, "GET", target);
    if let Some(authority) = parts.uri.authority() {
        push_header(&mut head, "host", authority.as_str().as_bytes());
    }
    push_header(&mut head, "upgrade", b"websocket");
    push_header(&mut head, "connection", b"Upgrade");
    push_header(&mut head, "sec-websocket-key", b"dGhlIHNhbXBsZSBub25jZQ==");
    for (name, value) in &parts.headers {
        let name = name.as_str();
        let filled_in = ["upgrade", "connection", "sec-websocket-key"].contains(&name)
            || (name == "host" && parts.uri.authority().is_some());
        if !filled_in {
            push_header(&mut head, name, value.as_bytes());
        }
    }
    head.extend_from_slice(b"\r\n");
    (head, invalid)
}

fn push_request_line(head: &mut Vec<u8>, method: &str, target: &str) {
    head.extend_from_slice(method.as_bytes());
    head.push(b' ');
    head.extend_from_slice(target.as_bytes());
    head.extend_from_slice(b" HTTP/1.1\r\n");
}

fn push_header(head: &mut Vec<u8>, name: &str, value: &[u8]) {
    head.extend_from_slice(name.as_bytes());
    head.extend_from_slice(b": ");
    head.extend_from_slice(value);
    head.extend_from_slice(b"\r\n");
}

/// The response the core wrote, as hyper's; over HTTP/2 without the fields that belong to
/// HTTP/1.1's upgrade (RFC 8441 §5: no `Sec-WebSocket-Accept`; RFC 9113 §8.2.2: no
/// connection-specific fields).
fn parse_response(bytes: &[u8], http2: bool) -> Option<Response> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut parsed = httparse::Response::new(&mut headers);
    let httparse::Status::Complete(len) = parsed.parse(bytes).ok()? else { return None };
    let mut response = Response::new(Body::from(bytes[len..].to_vec()));
    *response.status_mut() = StatusCode::from_u16(parsed.code?).ok()?;
    let dropped: &[&str] = if http2 {
        &["upgrade", "connection", "sec-websocket-accept", "content-length"]
    } else {
        &["content-length"]
    };
    for header in parsed.headers.iter() {
        if dropped.iter().any(|d| header.name.eq_ignore_ascii_case(d)) {
            continue;
        }
        let name = HeaderName::from_bytes(header.name.as_bytes()).ok()?;
        let value = HeaderValue::from_bytes(header.value).ok()?;
        response.headers_mut().append(name, value);
    }
    Some(response)
}

/// The core's parsed upgrade request as the `http` crate's (method, target, version 1.1 and
/// every header), for code that works with `http` types.
impl TryFrom<&Request<'_>> for http::Request<()> {
    type Error = http::Error;

    fn try_from(request: &Request<'_>) -> Result<Self, http::Error> {
        let mut builder = http::Request::builder()
            .method(request.method())
            .uri(request.target())
            .version(Version::HTTP_11);
        for header in request.headers() {
            builder = builder.header(header.name, header.value);
        }
        builder.body(())
    }
}

/// An HTTP response to an upgrade request (a client's `101`, or a refusal) as the `http`
/// crate's, with its headers; the body start is dropped.
impl TryFrom<&HttpResponse> for http::Response<()> {
    type Error = http::Error;

    fn try_from(response: &HttpResponse) -> Result<Self, http::Error> {
        let mut builder = http::Response::builder().status(response.status());
        for (name, value) in response.headers() {
            builder = builder.header(name.as_str(), value.as_slice());
        }
        builder.body(())
    }
}
