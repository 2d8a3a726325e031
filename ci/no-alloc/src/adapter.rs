//! The embedded adapter (`wsmachine::embedded`) without a heap: a client and a server over an
//! in-memory `embedded-io-async` pipe of 512 bytes each way, run by a loop that polls both
//! futures with a no-op waker and moves a counting clock on by 1 ms each round. The
//! client sends text and a binary message ten times its 1 KiB buffers; the server echoes the
//! text and answers the binary message, which streams through its read buffer, with its
//! length and checksum; the server's keepalive ping reaches the client; the client closes,
//! and both ends see the end.

use core::cell::{Cell, RefCell};
use core::future::{poll_fn, Future};
use core::pin::pin;
use core::task::{Context, Poll, Waker};

use embedded_io_async::{ErrorKind, ErrorType, Read, Write};
use wsmachine::embedded::{self, Buffers, Clock};
use wsmachine::{Accept, ClientRequest, CloseCode, Config, Duration, Event, Instant, Message};

/// One direction of the pipe.
struct Ring {
    bytes: [u8; 512],
    len: usize,
    closed: bool,
}

impl Ring {
    const fn new() -> Self {
        Self { bytes: [0; 512], len: 0, closed: false }
    }
}

/// One end of the pipe.
struct End<'a> {
    incoming: &'a RefCell<Ring>,
    outgoing: &'a RefCell<Ring>,
}

impl Drop for End<'_> {
    fn drop(&mut self) {
        self.outgoing.borrow_mut().closed = true;
        self.incoming.borrow_mut().closed = true;
    }
}

#[derive(Debug)]
struct Broken;

impl embedded_io_async::Error for Broken {
    fn kind(&self) -> ErrorKind {
        ErrorKind::BrokenPipe
    }
}

impl core::fmt::Display for Broken {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("broken pipe")
    }
}

impl core::error::Error for Broken {}

impl ErrorType for End<'_> {
    type Error = Broken;
}

impl Read for End<'_> {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, Broken> {
        poll_fn(|_| {
            let mut ring = self.incoming.borrow_mut();
            if ring.len == 0 {
                return if ring.closed { Poll::Ready(Ok(0)) } else { Poll::Pending };
            }
            let n = buf.len().min(ring.len);
            buf[..n].copy_from_slice(&ring.bytes[..n]);
            let len = ring.len;
            ring.bytes.copy_within(n..len, 0);
            ring.len -= n;
            Poll::Ready(Ok(n))
        })
        .await
    }
}

impl Write for End<'_> {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, Broken> {
        poll_fn(|_| {
            let mut ring = self.outgoing.borrow_mut();
            if ring.closed {
                return Poll::Ready(Err(Broken));
            }
            let room = ring.bytes.len() - ring.len;
            if room == 0 {
                return Poll::Pending;
            }
            let n = room.min(buf.len());
            let at = ring.len;
            ring.bytes[at..at + n].copy_from_slice(&buf[..n]);
            ring.len += n;
            Poll::Ready(Ok(n))
        })
        .await
    }

    async fn flush(&mut self) -> Result<(), Broken> {
        Ok(())
    }
}

/// A clock that counts milliseconds as the loop below moves it.
#[derive(Clone, Copy)]
struct Ticks<'a>(&'a Cell<u64>);

impl Clock for Ticks<'_> {
    fn now(&self) -> Instant {
        Instant::from_micros(self.0.get() * 1000)
    }

    fn sleep_until(&self, deadline: Instant) -> impl Future<Output = ()> {
        poll_fn(move |_| if self.now() >= deadline { Poll::Ready(()) } else { Poll::Pending })
    }
}

/// A small checksum of `bytes`.
fn sum(bytes: &[u8], mut acc: u32) -> u32 {
    for &b in bytes {
        acc = acc.wrapping_mul(31).wrapping_add(u32::from(b));
    }
    acc
}

/// The binary message's `i`-th byte.
fn pattern(i: usize) -> u8 {
    (i * 7 % 251) as u8
}

const BIG: usize = 10 * 1024;

async fn server(io: End<'_>, clock: Ticks<'_>) -> Result<u32, &'static str> {
    let (mut read, mut write) = ([0u8; 1024], [0u8; 1024]);
    let config = Config::new().keepalive_interval(Some(Duration::from_millis(50)));
    let mut ws = embedded::accept_with(
        io,
        clock,
        config,
        Buffers::new(&mut read, &mut write),
        |request, responder| {
            if request.path() != "/device" {
                return responder.reject(&wsmachine::Reject::new(404));
            }
            responder.accept(&Accept::new().subprotocol("telemetry"))
        },
    )
    .await
    .map_err(|_| "server: handshake failed")?;
    // Text comes back as it is; a binary message of any size streams through the 1 KiB read
    // buffer into a checksum, which goes back (as 8 bytes) when its last piece is in. (Echoing
    // each piece at once would fill the pipe towards a client still busy sending.)
    let mut scratch = [0u8; 1024];
    let (mut acc, mut len, mut answered) = (0u32, 0u32, 0u32);
    loop {
        let got = ws
            .recv_event(|event| match event {
                Event::Message(Message::Text(text)) => {
                    scratch[..text.len()].copy_from_slice(text.as_bytes());
                    Some(Some(text.len()))
                }
                Event::Message(Message::Binary(data)) => {
                    (acc, len) = (sum(data, 0), data.len() as u32);
                    Some(None)
                }
                Event::Fragment(piece) => {
                    if piece.is_first {
                        (acc, len) = (0, 0);
                    }
                    acc = sum(piece.payload, acc);
                    len += piece.payload.len() as u32;
                    piece.is_last.then_some(None)
                }
                _ => None,
            })
            .await
            .map_err(|e| match e {
                embedded::Error::Protocol(_) => "server: receive: the peer failed",
                _ => "server: receive failed",
            })?;
        let sent = match got {
            None => break,
            Some(None) => Ok(()),
            Some(Some(Some(n))) => match core::str::from_utf8(&scratch[..n]) {
                Ok(text) => ws.send_text(text).await,
                Err(_) => return Err("server: text was not UTF-8"),
            },
            Some(Some(None)) => {
                let mut answer = [0u8; 8];
                answer[..4].copy_from_slice(&len.to_le_bytes());
                answer[4..].copy_from_slice(&acc.to_le_bytes());
                ws.send_binary(&answer).await
            }
        };
        sent.map_err(|_| "server: answer failed")?;
        answered += u32::from(matches!(got, Some(Some(_))));
    }
    if !ws.connection().is_close_handshake_complete() {
        return Err("server: closing handshake incomplete");
    }
    Ok(answered)
}

async fn client(io: End<'_>, clock: Ticks<'_>) -> Result<(), &'static str> {
    let (mut read, mut write) = ([0u8; 1024], [0u8; 1024]);
    let request = ClientRequest::new("device.local", "/device").subprotocols(&["telemetry"]);
    let mut chosen = false;
    let mut ws = embedded::connect_with(
        io,
        clock,
        Config::new(),
        &request,
        [5; 32],
        Buffers::new(&mut read, &mut write),
        |response| {
            chosen = response.subprotocol() == Some("telemetry");
        },
    )
    .await
    .map_err(|_| "client: handshake failed")?;
    if !chosen {
        return Err("client: subprotocol not chosen");
    }
    ws.send_text("hello, no heap").await.map_err(|_| "client: send failed")?;
    let mut text = [0u8; 64];
    let mut text_len = 0;
    while text_len < "hello, no heap".len() {
        ws.recv_event(|event| {
            let bytes: &[u8] = match event {
                Event::Message(Message::Text(t)) => t.as_bytes(),
                Event::Fragment(piece) => piece.payload,
                _ => &[],
            };
            text[text_len..text_len + bytes.len()].copy_from_slice(bytes);
            text_len += bytes.len();
        })
        .await
        .map_err(|_| "client: receive failed")?
        .ok_or("client: ended early")?;
    }
    if &text[..text_len] != b"hello, no heap" {
        return Err("client: text echo differs");
    }
    // Ten times the buffers: one frame, streamed through the write buffer; it comes back in
    // pieces.
    let mut big = [0u8; BIG];
    for (i, b) in big.iter_mut().enumerate() {
        *b = pattern(i);
    }
    ws.send_binary(&big).await.map_err(|e| match e {
        embedded::Error::Usage(_) => "client: large send refused",
        embedded::Error::Protocol(_) => "client: large send: the peer failed",
        embedded::Error::Closed => "client: large send: closed",
        _ => "client: large send failed",
    })?;
    let (mut answer, mut pinged) = (None, false);
    while answer.is_none() {
        ws.recv_event(|event| match event {
            Event::Message(Message::Binary(data)) if data.len() == 8 => {
                let word = |at: usize| {
                    u32::from_le_bytes([data[at], data[at + 1], data[at + 2], data[at + 3]])
                };
                answer = Some((word(0), word(4)));
            }
            Event::Ping(_) => pinged = true,
            _ => {}
        })
        .await
        .map_err(|_| "client: receive failed")?
        .ok_or("client: ended early")?;
    }
    if answer != Some((BIG as u32, sum(&big, 0))) {
        return Err("client: the server saw a different message");
    }
    // The server's keepalive ping (50 ms of silence), answered by the adapter.
    while !pinged {
        ws.recv_event(|event| pinged = matches!(event, Event::Ping(_)))
            .await
            .map_err(|_| "client: receive failed")?
            .ok_or("client: ended before the keepalive ping")?;
    }
    ws.close(CloseCode::NORMAL, "done").await.map_err(|_| "client: close failed")?;
    while ws.recv_event(|_| ()).await.map_err(|_| "client: close failed")?.is_some() {}
    if !ws.connection().is_close_handshake_complete() {
        return Err("client: closing handshake incomplete");
    }
    Ok(())
}

/// The most an embedded `WebSocket` may take, beside its buffers, transport and clock: the
/// `Connection` and the driver's few words (the buffers' slices and positions, the failure
/// kept for the next call) within the budget the bare `Connection` has (1344 bytes on
/// x86_64 on 2026-12-04).
const WEBSOCKET_BUDGET: usize = 1536;

/// Runs the client and the server to completion.
pub(crate) fn run() -> Result<(), &'static str> {
    let state = core::mem::size_of::<embedded::WebSocket<'static, End<'static>, Ticks<'static>>>()
        - core::mem::size_of::<End<'static>>()
        - core::mem::size_of::<Ticks<'static>>();
    crate::print_number("embedded WebSocket state (bytes, transport and clock excluded): ", state);
    if state > WEBSOCKET_BUDGET {
        return Err("the embedded WebSocket outgrew its budget");
    }
    let (a, b) = (RefCell::new(Ring::new()), RefCell::new(Ring::new()));
    let ticks = Cell::new(0u64);
    let clock = Ticks(&ticks);
    let mut server = pin!(server(End { incoming: &a, outgoing: &b }, clock));
    let mut client = pin!(client(End { incoming: &b, outgoing: &a }, clock));
    let mut cx = Context::from_waker(Waker::noop());
    let (mut server_done, mut client_done) = (None, None);
    // Each round of polls is a millisecond; ten simulated minutes at most.
    for _ in 0..600_000 {
        if server_done.is_none() {
            if let Poll::Ready(result) = server.as_mut().poll(&mut cx) {
                server_done = Some(result);
            }
        }
        if client_done.is_none() {
            if let Poll::Ready(result) = client.as_mut().poll(&mut cx) {
                client_done = Some(result);
            }
        }
        if let (Some(server), Some(client)) = (server_done, client_done) {
            let answered = server?;
            client?;
            if answered != 2 {
                return Err("server: answered a different number of messages");
            }
            return Ok(());
        }
        ticks.set(ticks.get() + 1);
    }
    Err("adapter: did not finish in ten simulated minutes")
}
