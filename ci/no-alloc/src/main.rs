//! A client and a server, both `wsmachine::Connection`s without `alloc`, talking through two
//! fixed in-memory "wires": the opening handshake (the client's request written into its own
//! buffer), text, a binary message four times the receive buffer (in pieces), a fragmented
//! message, ping and pong, a keepalive ping from the server's timer, and the closing
//! handshake through to both ends closed. Then the same through the embedded adapter
//! (`adapter.rs`), over an in-memory `embedded-io-async` pipe. Exits 0 when every check passed; otherwise prints
//! the failed check and exits 1.

#![no_std]
#![no_main]

mod adapter;

use wsmachine::{
    Accept, ClientRequest, CloseCode, Config, Connection, Duration, Event, Instant, Message,
    MessageKind, RecvBuffer, State, Transmit,
};

// The C library gives the entry point's startup code, `write`, `abort` and the memory
// routines `core` calls (`memcpy`, `memcmp`...); no allocator is linked.
#[link(name = "c")]
extern "C" {
    fn write(fd: i32, buf: *const u8, count: usize) -> isize;
}

/// `core` is prebuilt for unwinding and names this symbol; with `panic = "abort"` nothing
/// unwinds, so it is never called.
#[no_mangle]
extern "C" fn rust_eh_personality() {}

fn print(text: &str) {
    // SAFETY: `text` is a valid buffer of `text.len()` bytes for the duration of the call.
    unsafe { write(2, text.as_ptr(), text.len()) };
}

/// Prints `label` and `n` in decimal, then a newline.
pub(crate) fn print_number(label: &str, mut n: usize) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    print(label);
    print(core::str::from_utf8(&digits[at..]).unwrap_or("?"));
    print("\n");
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    print("wsmachine-no-alloc: panic\n");
    extern "C" {
        fn abort() -> !;
    }
    // SAFETY: abort takes no arguments and never returns.
    unsafe { abort() }
}

/// The receive buffer each end reads into: messages four times larger arrive in pieces.
const BUFFER: usize = 1024;

/// One direction of the connection: bytes written and not yet read.
struct Wire {
    bytes: [u8; 8192],
    len: usize,
    /// Whether the writer closed its transport.
    closed: bool,
}

impl Wire {
    const fn new() -> Self {
        Self { bytes: [0; 8192], len: 0, closed: false }
    }

    fn put(&mut self, bytes: &[u8]) -> Result<(), &'static str> {
        let end = self.len + bytes.len();
        self.bytes.get_mut(self.len..end).ok_or("wire full")?.copy_from_slice(bytes);
        self.len = end;
        Ok(())
    }
}

/// One end: its connection, input buffer, output buffer and what it saw.
struct End {
    conn: Connection,
    input: RecvBuffer<[u8; BUFFER]>,
    out: [u8; 2048],
    seen: Seen,
}

#[derive(Default)]
struct Seen {
    requests: u32,
    accepted: u32,
    texts: u32,
    /// Bytes of binary pieces and whole messages, and a checksum over them.
    binary: usize,
    checksum: u32,
    last_pieces: u32,
    fragmented_text_ok: bool,
    pings: u32,
    pongs: u32,
    close: Option<u16>,
    eof: bool,
}

impl End {
    /// Hands every owed byte to `wire`, and the transport's close.
    fn flush(&mut self, wire: &mut Wire) -> Result<(), &'static str> {
        while let Some(t) = self.conn.poll_transmit(&mut self.out) {
            match t {
                Transmit::Bytes(n) => wire.put(&self.out[..n])?,
                Transmit::CloseTransport => wire.closed = true,
            }
        }
        Ok(())
    }

    /// Reads everything on `wire`, handling each event (a server accepts the request with
    /// the `chat` subprotocol and echoes text), then flushes into `back`.
    fn read(&mut self, wire: &mut Wire, back: &mut Wire, now: Instant) -> Result<(), &'static str> {
        let mut at = 0;
        loop {
            let spare = self.input.spare();
            let n = spare.len().min(wire.len - at);
            spare[..n].copy_from_slice(&wire.bytes[at..at + n]);
            self.input.filled(n);
            at += n;
            while let Some(event) =
                self.input.next_event(&mut self.conn, now).map_err(|_| "peer failed")?
            {
                match event {
                    Event::Request(request) => {
                        self.seen.requests += 1;
                        if request.path() != "/chat" || !request.subprotocols().any(|p| p == "chat")
                        {
                            return Err("request not as sent");
                        }
                        let written = self
                            .conn
                            .accept(&Accept::new().subprotocol("chat"), &mut self.out, now)
                            .map_err(|_| "accept refused")?;
                        back.put(written.bytes(&self.out))?;
                    }
                    Event::Accepted(response) => {
                        if response.subprotocol() != Some("chat") {
                            return Err("subprotocol not agreed");
                        }
                        self.seen.accepted += 1;
                    }
                    Event::Message(Message::Text(text)) => {
                        self.seen.texts += 1;
                        if text != "hello" && text != "hello back" {
                            return Err("text not as sent");
                        }
                        if text == "hello" {
                            let written = self
                                .conn
                                .send_text("hello back", &mut self.out)
                                .map_err(|_| "echo refused")?;
                            back.put(written.bytes(&self.out))?;
                        }
                    }
                    Event::Message(Message::Binary(data)) => self.seen.count(data, true),
                    Event::Fragment(piece) => match piece.kind {
                        MessageKind::Binary => self.seen.count(piece.payload, piece.is_last),
                        MessageKind::Text => {
                            let expected: &[u8] = if piece.is_first { b"frag" } else { b"mented" };
                            if piece.payload != expected {
                                return Err("text fragment not as sent");
                            }
                            self.seen.fragmented_text_ok = piece.is_last;
                        }
                    },
                    Event::Ping(_) => self.seen.pings += 1,
                    Event::Pong(_) => self.seen.pongs += 1,
                    Event::Close(frame) => self.seen.close = Some(frame.code().0),
                    _ => return Err("unexpected event"),
                }
            }
            if at == wire.len {
                break;
            }
        }
        wire.len = 0;
        if wire.closed && !self.seen.eof {
            self.seen.eof = true;
            self.conn.receive_eof().map_err(|_| "the transport closed too early")?;
        }
        self.flush(back)
    }
}

impl Seen {
    fn count(&mut self, data: &[u8], last: bool) {
        self.binary += data.len();
        for &b in data {
            self.checksum = self.checksum.wrapping_mul(31).wrapping_add(u32::from(b));
        }
        self.last_pieces += u32::from(last);
    }
}

/// The state budget of a `Connection` without `alloc`: its handshake parser, the stored offer
/// (128 bytes of subprotocol names, 128 of extension names on a client), the close frames and
/// the masking-key stream sit inline instead of behind pointers, on top of the 512 bytes an
/// idle connection takes with `alloc` (tests/connection.rs).
const CONNECTION_BUDGET: usize = 1536;

fn run() -> Result<(), &'static str> {
    if core::mem::size_of::<Connection>() > CONNECTION_BUDGET {
        return Err("Connection is larger than its no-alloc budget");
    }
    let mut now = Instant::from_millis(1_000);
    let config = Config::new()
        .receive_buffer_size(BUFFER)
        .handshake_timeout(Some(Duration::from_millis(10_000)))
        .close_timeout(Some(Duration::from_millis(5_000)));
    let mut to_server = Wire::new();
    let mut to_client = Wire::new();

    // The client writes its upgrade request into its own output buffer: nothing is stored.
    let request = ClientRequest::new("example.com", "/chat").subprotocols(&["chat", "superchat"]);
    let mut out = [0u8; 2048];
    let (conn, written) = Connection::client_into(config.clone(), &request, [7; 32], now, &mut out)
        .map_err(|_| "client refused")?;
    to_server.put(written.bytes(&out))?;
    let mut client = End { conn, input: RecvBuffer::new([0; BUFFER]), out, seen: Seen::default() };
    let server_config = config.keepalive_interval(Some(Duration::from_millis(30_000)));
    let mut server = End {
        conn: Connection::server(server_config, now),
        input: RecvBuffer::new([0; BUFFER]),
        out: [0; 2048],
        seen: Seen::default(),
    };

    server.read(&mut to_server, &mut to_client, now)?;
    client.read(&mut to_client, &mut to_server, now)?;
    if server.seen.requests != 1 || client.seen.accepted != 1 {
        return Err("handshake did not complete");
    }
    if client.conn.state() != State::Open || server.conn.state() != State::Open {
        return Err("not open after the handshake");
    }

    // Text, echoed.
    let w = client.conn.send_text("hello", &mut client.out).map_err(|_| "send refused")?;
    to_server.put(w.bytes(&client.out))?;
    server.read(&mut to_server, &mut to_client, now)?;
    client.read(&mut to_client, &mut to_server, now)?;
    if server.seen.texts != 1 || client.seen.texts != 1 {
        return Err("text not echoed");
    }

    // A binary message four times the receive buffer, in pieces.
    let mut big = [0u8; 4 * BUFFER];
    let mut expected = 0u32;
    for (i, b) in big.iter_mut().enumerate() {
        *b = (i * 7 % 251) as u8;
        expected = expected.wrapping_mul(31).wrapping_add(u32::from(*b));
    }
    let mut frame = [0u8; 4 * BUFFER + 16];
    let w = client.conn.send_binary(&big, &mut frame).map_err(|_| "send refused")?;
    to_server.put(w.bytes(&frame))?;
    server.read(&mut to_server, &mut to_client, now)?;
    if server.seen.binary != big.len() || server.seen.checksum != expected {
        return Err("large binary message not received whole");
    }
    if server.seen.last_pieces != 1 {
        return Err("large binary message did not end once");
    }

    // A fragmented text message.
    for (piece, last) in [(&b"frag"[..], false), (&b"mented"[..], true)] {
        let w = client
            .conn
            .send_fragment(MessageKind::Text, piece, last, &mut client.out)
            .map_err(|_| "fragment refused")?;
        to_server.put(w.bytes(&client.out))?;
    }
    server.read(&mut to_server, &mut to_client, now)?;
    if !server.seen.fragmented_text_ok {
        return Err("fragmented text not received");
    }

    // A ping from the client, answered automatically.
    let w = client.conn.send_ping(b"are you there", &mut client.out).map_err(|_| "ping refused")?;
    to_server.put(w.bytes(&client.out))?;
    server.read(&mut to_server, &mut to_client, now)?;
    client.read(&mut to_client, &mut to_server, now)?;
    if server.seen.pings != 1 || client.seen.pongs != 1 {
        return Err("ping not answered");
    }

    // The server's keepalive timer: a ping when it is due, answered by the client.
    let due = server.conn.poll_timeout().ok_or("no keepalive deadline")?;
    now = due;
    server.conn.handle_timeout(now).map_err(|_| "keepalive failed")?;
    server.flush(&mut to_client)?;
    client.read(&mut to_client, &mut to_server, now)?;
    server.read(&mut to_server, &mut to_client, now)?;
    if client.seen.pings != 1 || server.seen.pongs != 1 {
        return Err("keepalive ping not answered");
    }

    // The closing handshake: the client closes, the server answers and closes the
    // transport, the client sees its end.
    let w = client
        .conn
        .close(CloseCode::NORMAL, "bye", &mut client.out, now)
        .map_err(|_| "close refused")?;
    to_server.put(w.bytes(&client.out))?;
    server.read(&mut to_server, &mut to_client, now)?;
    client.read(&mut to_client, &mut to_server, now)?;
    if server.seen.close != Some(1000) || client.seen.close != Some(1000) {
        return Err("close frames not exchanged");
    }
    if !to_client.closed {
        return Err("the server did not close the transport");
    }
    if !client.conn.is_close_handshake_complete() || !server.conn.is_close_handshake_complete() {
        return Err("closing handshake incomplete");
    }
    server.conn.receive_eof().map_err(|_| "server: unexpected end")?;
    if client.conn.state() != State::Closed || server.conn.state() != State::Closed {
        return Err("not closed at the end");
    }
    Ok(())
}

#[no_mangle]
extern "C" fn main(_argc: i32, _argv: *const *const u8) -> i32 {
    match run().and_then(|()| adapter::run()) {
        Ok(()) => {
            print("wsmachine-no-alloc: whole lifecycle ok without an allocator, core and embedded adapter\n");
            0
        }
        Err(what) => {
            print("wsmachine-no-alloc: FAILED: ");
            print(what);
            print("\n");
            1
        }
    }
}
