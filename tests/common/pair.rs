//! A client and a server machine back to back in memory, over a simulated link that splits
//! and delays writes, driven by a simulated clock. Shared by the integration tests, the
//! property tests and the fuzz targets (through `#[path]`), and written against the public
//! API only.

#![allow(dead_code)]

use std::collections::VecDeque;

use wsmachine::{
    Accept, ClientRequest, CloseFrame, Config, Connection, Duration, Error, Event, Instant,
    OwnedMessage, Reassembler, RecvBuffer, SharedMessage, SharedSend, State, Transmit, UsageError,
    Written,
};

/// An event, owned, as the tests record it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Seen {
    Request { target: String },
    Accepted { status: u16 },
    Rejected { status: u16 },
    Message(OwnedMessage),
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    Close(CloseFrame),
}

/// Bytes (or the end of the stream) in flight towards one endpoint.
#[derive(Debug)]
enum Wire {
    Bytes(Vec<u8>),
    Eof,
}

/// One side of the pair.
#[derive(Debug)]
pub struct Endpoint {
    pub conn: Connection,
    /// What is in flight towards this endpoint, with its arrival time.
    inbox: VecDeque<(Instant, Wire)>,
    input: RecvBuffer<Vec<u8>>,
    out: Vec<u8>,
    reassembler: Reassembler,
    /// Everything this endpoint was given, in order (messages reassembled).
    pub seen: Vec<Seen>,
    /// Failures its calls returned.
    pub errors: Vec<Error>,
    /// When this endpoint was told to close the transport.
    pub closed_transport_at: Option<Instant>,
    /// Whether the peer's end of stream reached it.
    pub got_eof: bool,
    /// Whether receive_eof said the end was expected (`Some(true)`) or abnormal.
    pub eof_was_clean: Option<bool>,
    /// Accept upgrade requests automatically.
    pub auto_accept: bool,
    /// Bytes written by commands during `receive` (the accept), sent on the next flush.
    written: VecDeque<Vec<u8>>,
}

impl Endpoint {
    fn new(conn: Connection) -> Self {
        Self {
            input: RecvBuffer::for_config(conn.config()),
            conn,
            inbox: VecDeque::new(),
            out: vec![0; 1 << 16],
            reassembler: Reassembler::new(),
            seen: Vec::new(),
            errors: Vec::new(),
            closed_transport_at: None,
            got_eof: false,
            eof_was_clean: None,
            auto_accept: true,
            written: VecDeque::new(),
        }
    }

    /// The messages it received, in order.
    pub fn messages(&self) -> Vec<OwnedMessage> {
        self.seen
            .iter()
            .filter_map(|s| match s {
                Seen::Message(m) => Some(m.clone()),
                _ => None,
            })
            .collect()
    }

    /// The close frames it received.
    pub fn closes(&self) -> Vec<CloseFrame> {
        self.seen
            .iter()
            .filter_map(|s| match s {
                Seen::Close(c) => Some(*c),
                _ => None,
            })
            .collect()
    }
}

/// The link: latency and the largest piece a write is delivered in.
#[derive(Clone, Copy, Debug)]
pub struct Link {
    pub latency: Duration,
    /// Writes are delivered in pieces of at most this many bytes (a piece per delivery).
    pub max_piece: usize,
    /// Everything this side writes from now on is lost (a peer that went silent, a cable
    /// pulled): its bytes and its end of stream never arrive.
    pub blackhole: Option<Side>,
}

impl Default for Link {
    fn default() -> Self {
        Self { latency: Duration::from_millis(10), max_piece: usize::MAX, blackhole: None }
    }
}

pub struct Pair {
    pub client: Endpoint,
    pub server: Endpoint,
    pub now: Instant,
    pub link: Link,
    /// Steps taken (to catch livelocks).
    pub steps: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    Client,
    Server,
}

impl Pair {
    /// A client (with a fixed seed) and a server, neither started.
    pub fn new(client_config: Config, server_config: Config) -> Self {
        Self::with_seed(client_config, server_config, [7; 32])
    }

    pub fn with_seed(client_config: Config, server_config: Config, seed: [u8; 32]) -> Self {
        let now = Instant::from_millis(1_000);
        let request = ClientRequest::new("example.com", "/chat");
        let client = Connection::client(client_config, &request, seed, now).expect("request");
        let server = Connection::server(server_config, now);
        Self {
            client: Endpoint::new(client),
            server: Endpoint::new(server),
            now,
            link: Link::default(),
            steps: 0,
        }
    }

    /// A pair whose opening handshake was done elsewhere (framing only).
    pub fn open(client_config: Config, server_config: Config) -> Self {
        let now = Instant::from_millis(1_000);
        Self {
            client: Endpoint::new(Connection::open_client(client_config, [9; 32], now)),
            server: Endpoint::new(Connection::open_server(server_config, now)),
            now,
            link: Link::default(),
            steps: 0,
        }
    }

    /// Runs the opening handshake to completion.
    pub fn connect(&mut self) {
        for _ in 0..1_000 {
            while self.step() {}
            let open = |ep: &Endpoint| ep.conn.state() != State::Handshaking;
            if open(&self.client) && open(&self.server) {
                break;
            }
            match self.next_wakeup() {
                Some(at) => self.advance_to(at),
                None => break,
            }
        }
        assert_eq!(self.client.conn.state(), State::Open, "client open");
        assert_eq!(self.server.conn.state(), State::Open, "server open");
    }

    /// Makes one side's output buffer at least `len` bytes long (for large messages).
    pub fn reserve(&mut self, side: Side, len: usize) {
        let endpoint = self.side(side);
        if endpoint.out.len() < len {
            endpoint.out.resize(len, 0);
        }
    }

    pub fn side(&mut self, side: Side) -> &mut Endpoint {
        match side {
            Side::Client => &mut self.client,
            Side::Server => &mut self.server,
        }
    }

    /// Runs `command` on one side's connection with its output buffer, and puts the bytes
    /// on the wire. Returns what the command returned.
    pub fn command<T>(
        &mut self,
        side: Side,
        command: impl FnOnce(&mut Connection, &mut [u8], Instant) -> Result<Written, T>,
    ) -> Result<usize, T> {
        let now = self.now;
        let latency = self.link.latency;
        let lost = self.link.blackhole == Some(side);
        let (from, to) = self.split(side);
        let n = command(&mut from.conn, &mut from.out, now)?.len();
        if n > 0 && !lost {
            to.inbox.push_back((now + latency, Wire::Bytes(from.out[..n].to_vec())));
        }
        Ok(n)
    }

    /// Server: sends a message shared with other connections, putting on the wire what the
    /// command wrote and then the shared frame it names. Returns what the command said.
    pub fn send_shared(&mut self, message: &SharedMessage) -> Result<SharedSend, UsageError> {
        let now = self.now;
        let latency = self.link.latency;
        let (from, to) = self.split(Side::Server);
        let sent = from.conn.send_shared(message, &mut from.out)?;
        let mut bytes = from.out[..sent.written().len()].to_vec();
        if let SharedSend::Frame { encoding, .. } = sent {
            bytes.extend_from_slice(message.frame(encoding).expect("the encoding was made"));
        }
        if !bytes.is_empty() {
            to.inbox.push_back((now + latency, Wire::Bytes(bytes)));
        }
        Ok(sent)
    }

    fn split(&mut self, side: Side) -> (&mut Endpoint, &mut Endpoint) {
        match side {
            Side::Client => (&mut self.client, &mut self.server),
            Side::Server => (&mut self.server, &mut self.client),
        }
    }

    /// One round: both sides flush what they owe, then take what has arrived by now.
    /// Returns whether anything happened.
    pub fn step(&mut self) -> bool {
        self.steps += 1;
        let mut progress = false;
        for side in [Side::Client, Side::Server] {
            progress |= self.flush(side);
        }
        for side in [Side::Client, Side::Server] {
            progress |= self.deliver(side);
        }
        progress
    }

    fn flush(&mut self, side: Side) -> bool {
        let now = self.now;
        let latency = self.link.latency;
        let lost = self.link.blackhole == Some(side);
        let (from, to) = self.split(side);
        let mut progress = false;
        let mut send = |wire: Wire| {
            if !lost {
                to.inbox.push_back((now + latency, wire));
            }
        };
        while let Some(bytes) = from.written.pop_front() {
            progress = true;
            send(Wire::Bytes(bytes));
        }
        while let Some(transmit) = from.conn.poll_transmit(&mut from.out) {
            progress = true;
            match transmit {
                Transmit::Bytes(n) => send(Wire::Bytes(from.out[..n].to_vec())),
                Transmit::CloseTransport => {
                    assert!(from.closed_transport_at.is_none(), "told to close twice");
                    from.closed_transport_at = Some(now);
                    send(Wire::Eof);
                }
            }
        }
        progress
    }

    /// Delivers what has arrived at `side` by now, a piece at a time, and runs `receive`.
    fn deliver(&mut self, side: Side) -> bool {
        let now = self.now;
        let max_piece = self.link.max_piece;
        let ep = self.side(side);
        let mut progress = false;
        loop {
            progress |= Self::receive_all(ep, now);
            let Some((at, _)) = ep.inbox.front() else { break };
            if *at > now {
                break;
            }
            if ep.closed_transport_at.is_some() {
                // Our transport is closed: nothing more is read.
                ep.inbox.clear();
                break;
            }
            progress = true;
            let (at, wire) = ep.inbox.pop_front().unwrap();
            match wire {
                Wire::Eof => {
                    ep.got_eof = true;
                    let result = ep.conn.receive_eof();
                    ep.eof_was_clean = Some(result.is_ok());
                    if let Err(e) = result {
                        ep.errors.push(e);
                    }
                }
                Wire::Bytes(mut bytes) => {
                    // Take what fits, a piece at most.
                    let spare = ep.input.spare();
                    let n = bytes.len().min(spare.len()).min(max_piece);
                    if n == 0 {
                        ep.inbox.push_front((at, Wire::Bytes(bytes)));
                        // The buffer is full and nothing can be consumed: a bug.
                        panic!("receive buffer full and stuck: {:?}", ep.conn.state());
                    }
                    spare[..n].copy_from_slice(&bytes[..n]);
                    ep.input.filled(n);
                    let rest = bytes.split_off(n);
                    if !rest.is_empty() {
                        ep.inbox.push_front((at, Wire::Bytes(rest)));
                    }
                }
            }
        }
        progress
    }

    /// Calls `receive` while it makes progress, recording events.
    fn receive_all(ep: &mut Endpoint, now: Instant) -> bool {
        let mut progress = false;
        loop {
            if ep.input.is_empty() && ep.conn.state() != State::Handshaking {
                return progress;
            }
            let before = ep.input.len();
            let event = match ep.input.next_event(&mut ep.conn, now) {
                Ok(Some(event)) => event,
                Ok(None) => {
                    // Bytes consumed without an event (a frame's header, discarded input)
                    // are progress too.
                    if ep.input.len() == before {
                        return progress;
                    }
                    progress = true;
                    continue;
                }
                Err(e) => {
                    ep.errors.push(e);
                    return true;
                }
            };
            {
                if let Some(message) = ep.reassembler.push(&event) {
                    ep.seen.push(Seen::Message(message));
                }
                let seen = match event {
                    Event::Request(r) => Some(Seen::Request { target: r.target().to_string() }),
                    Event::Accepted(r) => Some(Seen::Accepted { status: r.status() }),
                    Event::Rejected(r) => Some(Seen::Rejected { status: r.status() }),
                    Event::Ping(p) => Some(Seen::Ping(p.to_vec())),
                    Event::Pong(p) => Some(Seen::Pong(p.to_vec())),
                    Event::Close(c) => Some(Seen::Close(c)),
                    _ => None,
                };
                let is_request = matches!(seen, Some(Seen::Request { .. }));
                ep.seen.extend(seen);
                if is_request && ep.auto_accept {
                    let n = ep.conn.accept(&Accept::new(), &mut ep.out, now).expect("accept").len();
                    ep.written.push_back(ep.out[..n].to_vec());
                }
            }
            progress = true;
        }
    }

    /// Runs steps, advancing the clock to the next arrival or deadline, until nothing is left
    /// to do. Bounded, to catch livelocks.
    pub fn drive(&mut self) {
        for _ in 0..10_000 {
            while self.step() {
                assert!(self.steps < 1_000_000, "livelock");
            }
            match self.next_wakeup() {
                Some(at) => self.advance_to(at),
                None => return,
            }
        }
        panic!("drive did not settle");
    }

    /// Runs until `until`, advancing the clock through every arrival and deadline before it.
    pub fn drive_until(&mut self, until: Instant) {
        for _ in 0..10_000 {
            while self.step() {}
            match self.next_wakeup() {
                Some(at) if at <= until => self.advance_to(at),
                _ => {
                    self.now = self.now.max(until);
                    while self.step() {}
                    return;
                }
            }
        }
        panic!("drive_until did not settle");
    }

    fn next_wakeup(&self) -> Option<Instant> {
        [&self.client, &self.server]
            .into_iter()
            .flat_map(|ep| [ep.inbox.front().map(|(at, _)| *at), ep.conn.poll_timeout()])
            .flatten()
            .min()
    }

    fn advance_to(&mut self, at: Instant) {
        self.now = self.now.max(at);
        let now = self.now;
        for side in [Side::Client, Side::Server] {
            let ep = self.side(side);
            if let Err(e) = ep.conn.handle_timeout(now) {
                ep.errors.push(e);
            }
        }
    }
}
