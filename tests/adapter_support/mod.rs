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

// ---- The embedded adapter, over tokio's TCP through embedded-io-adapters ----

/// The embedded adapter (`wsmachine::embedded`) over `embedded-io-adapters`' wrapper of a
/// tokio `TcpStream`, each call run to completion on the shared runtime. Its buffers are
/// 4 KiB each (leaked: a test connection lives until the process ends), so every message
/// larger than that streams through in pieces, which the socket below reassembles.
#[cfg(all(feature = "embedded-io", feature = "tokio"))]
pub struct Embedded;

/// The buffer size the embedded adapter's tests give it, for reading and for writing.
#[cfg(all(feature = "embedded-io", feature = "tokio"))]
pub const EMBEDDED_BUFFER: usize = 4096;

/// The embedded adapter's clock: tokio's, counted from a fixed origin.
#[cfg(all(feature = "embedded-io", feature = "tokio"))]
#[derive(Clone, Copy, Debug)]
pub struct TokioClock(pub tokio::time::Instant);

#[cfg(all(feature = "embedded-io", feature = "tokio"))]
impl wsmachine::embedded::Clock for TokioClock {
    fn now(&self) -> wsmachine::Instant {
        wsmachine::Instant::from_micros(self.0.elapsed().as_micros() as u64)
    }

    async fn sleep_until(&self, deadline: wsmachine::Instant) {
        let at = self.0 + Duration::from_micros(deadline.as_micros());
        tokio::time::sleep_until(at).await;
    }
}

#[cfg(all(feature = "embedded-io", feature = "tokio"))]
type EmbeddedWs = wsmachine::embedded::WebSocket<
    'static,
    embedded_io_adapters::tokio_1::FromTokio<tokio::net::TcpStream>,
    TokioClock,
>;

/// An embedded `WebSocket`, with the message being reassembled from its pieces.
#[cfg(all(feature = "embedded-io", feature = "tokio"))]
pub struct EmbeddedSocket {
    ws: EmbeddedWs,
    /// The kind and bytes of a message whose first pieces came.
    partial: Option<(wsmachine::MessageKind, Vec<u8>)>,
}

/// Two leaked 4 KiB buffers.
#[cfg(all(feature = "embedded-io", feature = "tokio"))]
pub fn embedded_buffers() -> wsmachine::embedded::Buffers<'static> {
    let read = Box::leak(vec![0u8; EMBEDDED_BUFFER].into_boxed_slice());
    let write = Box::leak(vec![0u8; EMBEDDED_BUFFER].into_boxed_slice());
    wsmachine::embedded::Buffers::new(read, write)
}

/// The embedded adapter's error as the scenarios' [`AdapterError`]; a refusal gets the
/// response the adapter showed `connect_with`'s `inspect`.
#[cfg(all(feature = "embedded-io", feature = "tokio"))]
pub fn from_embedded(
    e: wsmachine::embedded::Error<std::io::Error>,
    response: Option<HttpResponse>,
) -> AdapterError {
    use wsmachine::embedded::Error;
    match e {
        Error::Protocol(e) => AdapterError::Protocol(e),
        Error::Usage(e) => AdapterError::Usage(e),
        Error::Io(e) => AdapterError::Io(e),
        Error::Refused { status } => {
            let response = response.expect("the refusal was shown to inspect");
            assert_eq!(response.status(), status);
            AdapterError::Refused(Box::new(response))
        }
        Error::Rejected { status } => AdapterError::Rejected { status },
        Error::Closed => AdapterError::Closed,
        other => panic!("unexpected {other:?}"),
    }
}

#[cfg(all(feature = "embedded-io", feature = "tokio"))]
impl Socket for EmbeddedSocket {
    fn send(&mut self, message: Outgoing) -> Result<(), AdapterError> {
        let ws = &mut self.ws;
        let result = runtime().block_on(async {
            match &message {
                Outgoing::Text(text) => ws.send_text(text).await,
                Outgoing::Binary(data) => ws.send_binary(data).await,
                Outgoing::Fragment { kind, payload, is_last } => {
                    ws.send_fragment(*kind, payload, *is_last).await
                }
                Outgoing::Ping(payload) => ws.send_ping(payload).await,
                Outgoing::Pong(payload) => ws.send_pong(payload).await,
                Outgoing::Close(code, reason) => ws.close(*code, reason).await,
                other => panic!("not sent by the scenarios: {other:?}"),
            }
        });
        result.map_err(|e| from_embedded(e, None))
    }

    fn recv(&mut self) -> Result<Option<Incoming>, AdapterError> {
        use wsmachine::{Event, Message, MessageKind};
        let (ws, partial) = (&mut self.ws, &mut self.partial);
        runtime().block_on(async {
            loop {
                let got = ws
                    .recv_event(|event| match event {
                        Event::Message(Message::Text(text)) => {
                            Some(Incoming::Text(text.to_owned()))
                        }
                        Event::Message(Message::Binary(data)) => {
                            Some(Incoming::Binary(data.to_vec()))
                        }
                        Event::Fragment(piece) => {
                            let (_, bytes) =
                                partial.get_or_insert_with(|| (piece.kind, Vec::new()));
                            bytes.extend_from_slice(piece.payload);
                            if !piece.is_last {
                                return None;
                            }
                            let (kind, bytes) = partial.take().unwrap();
                            Some(match kind {
                                MessageKind::Text => {
                                    Incoming::Text(String::from_utf8(bytes).unwrap())
                                }
                                MessageKind::Binary => Incoming::Binary(bytes),
                            })
                        }
                        Event::Ping(payload) => Some(Incoming::Ping(payload.to_vec())),
                        Event::Pong(payload) => Some(Incoming::Pong(payload.to_vec())),
                        Event::Close(frame) => Some(Incoming::Close(Box::new(frame))),
                        other => panic!("unexpected {other:?}"),
                    })
                    .await;
                match got {
                    Ok(Some(Some(incoming))) => return Ok(Some(incoming)),
                    Ok(Some(None)) => {}
                    Ok(None) => return Ok(None),
                    Err(e) => return Err(from_embedded(e, None)),
                }
            }
        })
    }

    fn close(&mut self, code: CloseCode, reason: &str) -> Result<(), AdapterError> {
        runtime().block_on(self.ws.close(code, reason)).map_err(|e| from_embedded(e, None))
    }
}

#[cfg(all(feature = "embedded-io", feature = "tokio"))]
impl Adapter for Embedded {
    type Socket = EmbeddedSocket;

    fn accept_with(
        tcp: TcpStream,
        config: Config,
        decide: impl FnOnce(&Request<'_>) -> Decision + Send + 'static,
    ) -> Result<Self::Socket, AdapterError> {
        let tcp = embedded_io_adapters::tokio_1::FromTokio::new(into_tokio(tcp));
        let clock = TokioClock(runtime().block_on(async { tokio::time::Instant::now() }));
        let ws = runtime()
            .block_on(wsmachine::embedded::accept_with(
                tcp,
                clock,
                config,
                embedded_buffers(),
                |request, responder| responder.decision(&decide(request)),
            ))
            .map_err(|e| from_embedded(e, None))?;
        Ok(EmbeddedSocket { ws, partial: None })
    }

    fn connect(
        tcp: TcpStream,
        request: &ClientRequest<'_>,
        config: Config,
    ) -> Result<(Self::Socket, HttpResponse), AdapterError> {
        let tcp = embedded_io_adapters::tokio_1::FromTokio::new(into_tokio(tcp));
        let clock = TokioClock(runtime().block_on(async { tokio::time::Instant::now() }));
        let mut response = None;
        let seed = [0x5a; 32];
        let result = runtime().block_on(wsmachine::embedded::connect_with(
            tcp,
            clock,
            config,
            request,
            seed,
            embedded_buffers(),
            |r| response = Some(HttpResponse::from(r)),
        ));
        match result {
            Ok(ws) => Ok((
                EmbeddedSocket { ws, partial: None },
                response.expect("the 101 was shown to inspect"),
            )),
            Err(e) => Err(from_embedded(e, response)),
        }
    }

    fn connect_url(
        _url: &str,
        _config: Config,
    ) -> Result<(Self::Socket, HttpResponse), AdapterError> {
        unreachable!("the embedded adapter resolves no names: the scenario is not run on it")
    }
}
