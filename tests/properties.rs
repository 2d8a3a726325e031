//! Properties, with proptest:
//!
//! (a) the events are the same whether the input arrives in one slice or split at any byte
//!     boundary (and, through a small buffer, the messages are);
//! (b) whatever one role encodes, the other decodes identically;
//! (c) the close handshake: for any interleaving of messages and closes from either side or
//!     both, both end closed, each was given the other's close code and reason, no data
//!     follows a close, and the server is the one told to close TCP first.

mod common;

use common::pair::{Pair, Seen, Side};
use common::wire::T0;
use proptest::prelude::*;
use wsmachine::{
    Accept, CloseCode, Config, Connection, Duration, Event, MessageKind, Reassembler, RecvBuffer,
    Role, State, UsageError, Written,
};

/// Something one side sends.
#[derive(Clone, Debug)]
enum Op {
    Text(String),
    Binary(Vec<u8>),
    /// A message sent as several frames; text may be split inside a code point.
    Fragmented(MessageKind, Vec<Vec<u8>>),
    Ping(Vec<u8>),
}

/// An event, owned, with every detail that must not depend on how input arrived.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Rec {
    Request(String),
    Text(String),
    Binary(Vec<u8>),
    Fragment { kind: MessageKind, payload: Vec<u8>, is_first: bool, is_last: bool },
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    Close(u16, String),
}

fn op() -> impl Strategy<Value = Op> {
    let fragmented = (any::<bool>(), ".{0,40}", prop::collection::vec(0usize..200, 0..4)).prop_map(
        |(text, content, mut cuts): (bool, String, Vec<usize>)| {
            let bytes = if text { content.into_bytes() } else { content.into_bytes().repeat(3) };
            cuts.iter_mut().for_each(|c| *c %= bytes.len() + 1);
            cuts.sort_unstable();
            let mut parts = Vec::new();
            let mut at = 0;
            for cut in cuts {
                parts.push(bytes[at..cut].to_vec());
                at = cut;
            }
            parts.push(bytes[at..].to_vec());
            let kind = if text { MessageKind::Text } else { MessageKind::Binary };
            Op::Fragmented(kind, parts)
        },
    );
    prop_oneof![
        ".{0,60}".prop_map(Op::Text),
        prop::collection::vec(any::<u8>(), 0..400).prop_map(Op::Binary),
        fragmented,
        prop::collection::vec(any::<u8>(), 0..=125).prop_map(Op::Ping),
    ]
}

/// Encodes `ops` as `sender` would put them on the wire.
fn encode(sender: &mut Connection, ops: &[Op]) -> Vec<u8> {
    let mut out = vec![0; 4096];
    let mut wire = Vec::new();
    for op in ops {
        let mut put = |n: Result<Written, UsageError>, out: &[u8]| {
            wire.extend_from_slice(n.expect("send").bytes(out));
        };
        match op {
            Op::Text(t) => put(sender.send_text(t, &mut out), &out),
            Op::Binary(b) => put(sender.send_binary(b, &mut out), &out),
            Op::Ping(p) => put(sender.send_ping(p, &mut out), &out),
            Op::Fragmented(kind, parts) => {
                for (i, part) in parts.iter().enumerate() {
                    let n = sender.send_fragment(*kind, part, i + 1 == parts.len(), &mut out);
                    put(n, &out);
                }
            }
        }
    }
    wire
}

/// Feeds `wire` to `receiver` through a buffer of `capacity` bytes, arriving in pieces that
/// end at `cuts`, as an adapter would; returns the events. Upgrade requests are accepted.
fn decode(receiver: &mut Connection, wire: &[u8], cuts: &[usize], capacity: usize) -> Vec<Rec> {
    let mut arrivals: Vec<&[u8]> = Vec::new();
    let mut at = 0;
    for &cut in cuts.iter().chain([&wire.len()]) {
        let cut = cut.clamp(at, wire.len());
        arrivals.push(&wire[at..cut]);
        at = cut;
    }
    let mut input = RecvBuffer::new(vec![0; capacity]);
    let mut pending: &[u8] = &[];
    let mut arrivals = arrivals.into_iter();
    let mut recs = Vec::new();
    let mut out = [0; 512];
    loop {
        if let Some(event) = input.next_event(receiver, T0).expect("valid input") {
            let rec = match event {
                Event::Request(r) => Rec::Request(r.target().into()),
                Event::Message(wsmachine::Message::Text(t)) => Rec::Text(t.into()),
                Event::Message(wsmachine::Message::Binary(b)) => Rec::Binary(b.into()),
                Event::Fragment(f) => Rec::Fragment {
                    kind: f.kind,
                    payload: f.payload.into(),
                    is_first: f.is_first,
                    is_last: f.is_last,
                },
                Event::Ping(p) => Rec::Ping(p.into()),
                Event::Pong(p) => Rec::Pong(p.into()),
                Event::Close(c) => Rec::Close(c.code().0, c.reason().into()),
                other => panic!("unexpected {other:?}"),
            };
            if matches!(rec, Rec::Request(_)) {
                let _unsent = receiver.accept(&Accept::new(), &mut out, T0).unwrap();
            }
            recs.push(rec);
            continue;
        }
        // Need more: take what fits of the next arrival.
        if pending.is_empty() {
            match arrivals.next() {
                Some(next) => pending = next,
                None => return recs,
            }
        }
        let n = input.push(pending);
        assert!(n > 0 || pending.is_empty(), "stuck with a full buffer");
        pending = &pending[n..];
    }
}

/// The whole messages and control events in `recs`, with fragments reassembled.
fn messages(recs: &[Rec]) -> Vec<Rec> {
    let mut reassembler = Reassembler::new();
    let mut whole = Vec::new();
    for rec in recs {
        match rec {
            Rec::Fragment { kind, payload, is_first, is_last } => {
                let fragment = wsmachine::Fragment {
                    kind: *kind,
                    payload,
                    is_first: *is_first,
                    is_last: *is_last,
                };
                match reassembler.push(&Event::Fragment(fragment)) {
                    Some(wsmachine::OwnedMessage::Text(t)) => whole.push(Rec::Text(t)),
                    Some(wsmachine::OwnedMessage::Binary(b)) => whole.push(Rec::Binary(b)),
                    None => {}
                }
            }
            other => whole.push(other.clone()),
        }
    }
    whole
}

/// What `ops` should decode to, as whole messages.
fn expected(ops: &[Op]) -> Vec<Rec> {
    ops.iter()
        .map(|op| match op {
            Op::Text(t) => Rec::Text(t.clone()),
            Op::Binary(b) => Rec::Binary(b.clone()),
            Op::Ping(p) => Rec::Ping(p.clone()),
            Op::Fragmented(kind, parts) => {
                let bytes = parts.concat();
                match kind {
                    MessageKind::Text => Rec::Text(String::from_utf8(bytes).unwrap()),
                    MessageKind::Binary => Rec::Binary(bytes),
                }
            }
        })
        .collect()
}

const REQUEST: &[u8] = b"GET /p HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n\
Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
Sec-WebSocket-Version: 13\r\n\r\n";

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// (a) One slice, a split at every byte boundary, and one byte at a time all give the same
    /// events, handshake included; through a buffer smaller than some frames, the same
    /// messages.
    #[test]
    fn events_do_not_depend_on_how_input_is_split(ops in prop::collection::vec(op(), 0..6)) {
        let mut wire = REQUEST.to_vec();
        wire.extend(encode(&mut Connection::open_client(Config::new(), [5; 32], T0), &ops));
        let server = || Connection::server(Config::new(), T0);
        let whole = decode(&mut server(), &wire, &[], 1 << 16);
        prop_assert_eq!(messages(&whole)[1..].to_vec(), expected(&ops));
        for cut in 0..=wire.len() {
            prop_assert_eq!(&decode(&mut server(), &wire, &[cut], 1 << 16), &whole, "cut at {}", cut);
        }
        let bytewise: Vec<usize> = (1..wire.len()).collect();
        prop_assert_eq!(&decode(&mut server(), &wire, &bytewise, 1 << 16), &whole);
        let small = Config::new().receive_buffer_size(256);
        let pieces = decode(&mut Connection::server(small, T0), &wire, &bytewise, 256);
        prop_assert_eq!(messages(&pieces), messages(&whole));
    }

    /// (b) What a client encodes a server decodes to the same messages and pings, and the
    /// other way round, however the bytes are split.
    #[test]
    fn what_one_role_encodes_the_other_decodes(
        ops in prop::collection::vec(op(), 0..8),
        cuts in prop::collection::vec(0usize..4000, 0..8),
        seed in any::<[u8; 32]>(),
        capacity in prop_oneof![Just(256usize), Just(1024), Just(1 << 16)],
    ) {
        for role in [Role::Client, Role::Server] {
            let mut sender = match role {
                Role::Client => Connection::open_client(Config::new(), seed, T0),
                Role::Server => Connection::open_server(Config::new(), T0),
            };
            let wire = encode(&mut sender, &ops);
            let mut cuts = cuts.clone();
            cuts.sort_unstable();
            let config = Config::new().receive_buffer_size(capacity);
            let mut receiver = match role {
                Role::Client => Connection::open_server(config, T0),
                Role::Server => Connection::open_client(config, seed, T0),
            };
            let recs = decode(&mut receiver, &wire, &cuts, capacity);
            prop_assert_eq!(messages(&recs), expected(&ops), "sent by {:?}", role);
        }
    }
}

/// One step of a close-handshake scenario.
#[derive(Clone, Debug)]
enum Step {
    Send(Side, String),
    Close(Side, u16, String),
    Wait(u64),
    Deliver,
}

fn side() -> impl Strategy<Value = Side> {
    prop_oneof![Just(Side::Client), Just(Side::Server)]
}

fn step() -> impl Strategy<Value = Step> {
    let code =
        prop_oneof![Just(1000u16), Just(1001), Just(1003), Just(1008), Just(1011), 3000u16..5000,];
    prop_oneof![
        4 => (side(), "[a-z]{0,12}").prop_map(|(s, t)| Step::Send(s, t)),
        1 => (side(), code, "[a-z ]{0,20}").prop_map(|(s, c, r)| Step::Close(s, c, r)),
        2 => (0u64..40).prop_map(Step::Wait),
        2 => Just(Step::Deliver),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    /// (c) The close handshake under any interleaving.
    #[test]
    fn the_close_handshake_always_completes_cleanly(
        steps in prop::collection::vec(step(), 0..30),
        latency in 1u64..30,
        max_piece in prop_oneof![Just(usize::MAX), 1usize..40],
    ) {
        let mut pair = Pair::new(Config::new(), Config::new());
        pair.link.latency = Duration::from_millis(latency);
        pair.link.max_piece = max_piece;
        pair.connect();
        let mut sent: [Vec<String>; 2] = [Vec::new(), Vec::new()];
        let index = |side: Side| if side == Side::Client { 0 } else { 1 };
        for step in &steps {
            match step {
                Step::Send(side, text) => {
                    match pair.command(*side, |c, out, _| c.send_text(text, out)) {
                        Ok(_) => sent[index(*side)].push(text.clone()),
                        Err(UsageError::Closing | UsageError::Closed) => {}
                        Err(e) => panic!("{e}"),
                    }
                }
                Step::Close(side, code, reason) => {
                    let close = |c: &mut Connection, out: &mut [u8], now| {
                        c.close(CloseCode(*code), reason, out, now)
                    };
                    match pair.command(*side, close) {
                        Ok(_) | Err(UsageError::Closing | UsageError::Closed) => {}
                        Err(e) => panic!("{e}"),
                    }
                }
                Step::Wait(ms) => pair.drive_until(pair.now + Duration::from_millis(*ms)),
                Step::Deliver => {
                    pair.step();
                }
            }
        }
        if pair.client.conn.sent_close().is_none() && pair.server.conn.sent_close().is_none() {
            let close = |c: &mut Connection, out: &mut [u8], now| {
                c.close(CloseCode::NORMAL, "end", out, now)
            };
            pair.command(Side::Client, close).unwrap();
        }
        pair.drive();

        prop_assert_eq!(pair.client.conn.state(), State::Closed);
        prop_assert_eq!(pair.server.conn.state(), State::Closed);
        prop_assert!(pair.client.errors.is_empty(), "{:?}", pair.client.errors);
        prop_assert!(pair.server.errors.is_empty(), "{:?}", pair.server.errors);
        // Each was given the other's close frame.
        prop_assert_eq!(pair.server.closes(), vec![*pair.client.conn.sent_close().unwrap()]);
        prop_assert_eq!(pair.client.closes(), vec![*pair.server.conn.sent_close().unwrap()]);
        // Every message sent before a close arrived, in order, and none after a close.
        let texts = |ep: &common::pair::Endpoint| -> Vec<String> {
            ep.messages().into_iter().map(|m| match m {
                wsmachine::OwnedMessage::Text(t) => t,
                other => panic!("{other:?}"),
            }).collect()
        };
        prop_assert_eq!(texts(&pair.server), sent[0].clone());
        prop_assert_eq!(texts(&pair.client), sent[1].clone());
        for ep in [&pair.client, &pair.server] {
            let close_at = ep.seen.iter().position(|s| matches!(s, Seen::Close(_))).unwrap();
            prop_assert!(!ep.seen[close_at..].iter().any(|s| matches!(s, Seen::Message(_))));
        }
        // RFC 6455 §7.1.1: the server closes TCP first; the client sees a clean end.
        prop_assert!(pair.server.closed_transport_at.is_some());
        prop_assert!(pair.client.closed_transport_at.is_none());
        prop_assert_eq!(pair.client.eof_was_clean, Some(true));
    }
}
