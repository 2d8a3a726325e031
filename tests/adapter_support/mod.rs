//! Helpers shared by the adapter tests (tests/adapter_std.rs, tests/adapter_tokio.rs).

#![allow(dead_code)]

use std::time::{Duration, Instant};

use wsmachine::frame::Opcode;
use wsmachine::Config;

#[path = "../common/wire.rs"]
pub mod wire;

/// A valid upgrade request, as a raw client would send it.
pub const REQUEST: &[u8] = b"GET /chat HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n\
    Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
    Sec-WebSocket-Version: 13\r\n\r\n";

/// A 16 MiB payload with a recognisable pattern.
pub fn big_payload() -> Vec<u8> {
    (0..16u32 << 20).map(|i| (i % 251) as u8).collect()
}

/// Limits that let 16 MiB messages through.
pub fn big_config() -> Config {
    Config::new().max_message_size(32 << 20).max_frame_size(32 << 20)
}

/// A frame as a client sends it (masked).
pub fn client_frame(opcode: Opcode, payload: &[u8]) -> Vec<u8> {
    wire::frame(wsmachine::Role::Client, true, opcode, payload)
}

/// Runs `test` on a thread and fails if it takes longer than `secs` seconds.
pub fn bounded<T: Send + 'static>(secs: u64, test: impl FnOnce() -> T + Send + 'static) -> T {
    let handle = std::thread::spawn(test);
    let start = Instant::now();
    while !handle.is_finished() {
        assert!(start.elapsed() < Duration::from_secs(secs), "test did not finish within {secs} s");
        std::thread::sleep(Duration::from_millis(5));
    }
    match handle.join() {
        Ok(result) => result,
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

// ---- One interface over every adapter, for the scenario table (tests/adapter_scenarios.rs) ----

use std::net::TcpStream;
use std::sync::OnceLock;

use wsmachine::{
    AdapterError, ClientRequest, CloseCode, Decision, HttpResponse, Incoming, Outgoing, Request,
};

/// An adapter, as the scenarios drive it: blocking calls over a std `TcpStream` (the tokio
/// adapter runs each call to completion on a shared runtime).
pub trait Adapter: 'static {
    /// Its open connection.
    type Socket: Socket + Send + 'static;

    /// Server: the adapter's `accept_with` on `tcp`.
    fn accept_with(
        tcp: TcpStream,
        config: Config,
        decide: impl FnOnce(&Request<'_>) -> Decision + Send + 'static,
    ) -> Result<Self::Socket, AdapterError>;

    /// Server: the adapter's `accept` (default configuration, any request).
    fn accept(tcp: TcpStream) -> Result<Self::Socket, AdapterError> {
        Self::accept_with(tcp, Config::new(), |_| Decision::accept())
    }

    /// Client: the adapter's `connect` on `tcp`.
    fn connect(
        tcp: TcpStream,
        request: &ClientRequest<'_>,
        config: Config,
    ) -> Result<(Self::Socket, HttpResponse), AdapterError>;

    /// Client: the adapter's `connect_url`.
    fn connect_url(url: &str, config: Config)
        -> Result<(Self::Socket, HttpResponse), AdapterError>;
}

/// An open connection of any adapter.
pub trait Socket {
    /// Sends `message` (returns once it is written).
    fn send(&mut self, message: Outgoing) -> Result<(), AdapterError>;
    /// The next message, control frame, or `None` at the end.
    fn recv(&mut self) -> Result<Option<Incoming>, AdapterError>;
    /// Starts the closing handshake.
    fn close(&mut self, code: CloseCode, reason: &str) -> Result<(), AdapterError>;
}

/// The blocking adapter.
pub struct Blocking;

impl Socket for wsmachine::blocking::WebSocket<TcpStream> {
    fn send(&mut self, message: Outgoing) -> Result<(), AdapterError> {
        wsmachine::blocking::WebSocket::send(self, &message)
    }

    fn recv(&mut self) -> Result<Option<Incoming>, AdapterError> {
        wsmachine::blocking::WebSocket::recv(self)
    }

    fn close(&mut self, code: CloseCode, reason: &str) -> Result<(), AdapterError> {
        wsmachine::blocking::WebSocket::close(self, code, reason)
    }
}

impl Adapter for Blocking {
    type Socket = wsmachine::blocking::WebSocket<TcpStream>;

    fn accept_with(
        tcp: TcpStream,
        config: Config,
        decide: impl FnOnce(&Request<'_>) -> Decision + Send + 'static,
    ) -> Result<Self::Socket, AdapterError> {
        wsmachine::blocking::accept_with(tcp, config, decide)
    }

    fn connect(
        tcp: TcpStream,
        request: &ClientRequest<'_>,
        config: Config,
    ) -> Result<(Self::Socket, HttpResponse), AdapterError> {
        wsmachine::blocking::connect(tcp, request, config)
    }

    fn connect_url(
        url: &str,
        config: Config,
    ) -> Result<(Self::Socket, HttpResponse), AdapterError> {
        wsmachine::blocking::connect_url(url, config)
    }
}

/// The tokio adapter, each call run to completion on a shared multi-thread runtime.
#[cfg(feature = "tokio")]
pub struct Tokio;

/// The runtime the tokio adapter's calls run on.
#[cfg(feature = "tokio")]
fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
    })
}

/// A tokio `WebSocket`, dropped inside the runtime (so that its closing task can run).
#[cfg(feature = "tokio")]
pub struct TokioSocket(Option<wsmachine::tokio::WebSocket>);

#[cfg(feature = "tokio")]
impl Drop for TokioSocket {
    fn drop(&mut self) {
        let _inside = runtime().enter();
        drop(self.0.take());
    }
}

#[cfg(feature = "tokio")]
impl TokioSocket {
    fn ws(&mut self) -> &mut wsmachine::tokio::WebSocket {
        self.0.as_mut().expect("open until dropped")
    }
}

#[cfg(feature = "tokio")]
impl Socket for TokioSocket {
    fn send(&mut self, message: Outgoing) -> Result<(), AdapterError> {
        runtime().block_on(self.ws().send(message))
    }

    fn recv(&mut self) -> Result<Option<Incoming>, AdapterError> {
        runtime().block_on(self.ws().recv())
    }

    fn close(&mut self, code: CloseCode, reason: &str) -> Result<(), AdapterError> {
        runtime().block_on(self.ws().close(code, reason))
    }
}

#[cfg(feature = "tokio")]
fn into_tokio(tcp: TcpStream) -> tokio::net::TcpStream {
    tcp.set_nonblocking(true).unwrap();
    let _inside = runtime().enter();
    tokio::net::TcpStream::from_std(tcp).unwrap()
}

#[cfg(feature = "tokio")]
impl Adapter for Tokio {
    type Socket = TokioSocket;

    fn accept_with(
        tcp: TcpStream,
        config: Config,
        decide: impl FnOnce(&Request<'_>) -> Decision + Send + 'static,
    ) -> Result<Self::Socket, AdapterError> {
        let tcp = into_tokio(tcp);
        let ws = runtime().block_on(wsmachine::tokio::accept_with(tcp, config, decide))?;
        Ok(TokioSocket(Some(ws)))
    }

    fn connect(
        tcp: TcpStream,
        request: &ClientRequest<'_>,
        config: Config,
    ) -> Result<(Self::Socket, HttpResponse), AdapterError> {
        let tcp = into_tokio(tcp);
        let (ws, response) = runtime().block_on(wsmachine::tokio::connect(tcp, request, config))?;
        Ok((TokioSocket(Some(ws)), response))
    }

    fn connect_url(
        url: &str,
        config: Config,
    ) -> Result<(Self::Socket, HttpResponse), AdapterError> {
        let (ws, response) = runtime().block_on(wsmachine::tokio::connect_url(url, config))?;
        Ok((TokioSocket(Some(ws)), response))
    }
}
