//! An arbitrary sequence of operations on a client–server pair (the integration tests'
//! simulator, `tests/common/pair.rs`): send text, binary, fragments, pings, pongs and closes
//! from either side, deliver bytes, advance the clock, change how writes are split.
//!
//! Invariants: each command succeeds exactly when the model says it may (the connection is
//! open, control payloads fit, close codes are sendable, fragments are in order) and a refused
//! command changes nothing; after a final close and settling, every message either side sent
//! arrived at the other intact and in order (and every ping, when no keepalive adds its own),
//! nothing arrived after a close, neither side saw an error, both ended closed, each received
//! the close frame the other sent, the server closed TCP first and the client saw that end of
//! stream as clean; and the heap stays within a linear bound of what was sent and returns to
//! its baseline when the pair is dropped.

#![no_main]

#[path = "../../tests/common/pair.rs"]
#[allow(unreachable_pub, clippy::all)]
mod pair;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use pair::{Pair, Seen, Side};
use wsmachine::{
    CloseCode, Config, Duration, MessageKind, OwnedMessage, State, UsageError, MAX_CLOSE_REASON,
};
use wsmachine_fuzz::{live_bytes, HeapWatch};

#[derive(Arbitrary, Debug)]
enum Op {
    Text {
        server: bool,
        text: String,
    },
    Binary {
        server: bool,
        data: Vec<u8>,
    },
    /// Starts (in the model) a message to be sent in fragments by `Fragment` ops.
    StartFragmented {
        server: bool,
        text: bool,
        content: String,
    },
    /// Sends the next `len` bytes of the side's fragmented message (the rest if `last`).
    Fragment {
        server: bool,
        len: u16,
        last: bool,
    },
    Ping {
        server: bool,
        payload: Vec<u8>,
    },
    Pong {
        server: bool,
        payload: Vec<u8>,
    },
    Close {
        server: bool,
        code: u8,
        reason: String,
    },
    Step {
        count: u8,
    },
    Advance {
        millis: u16,
    },
    Split {
        max_piece: u16,
    },
}

#[derive(Arbitrary, Debug)]
struct Scenario {
    handshake: bool,
    buffer: u8,
    keepalive: bool,
    latency: u8,
    server_closes_last: bool,
    ops: Vec<Op>,
}

/// Close codes to try: every sendable class and every refused one.
const CODES: [u16; 16] =
    [1000, 1001, 1002, 1003, 1004, 1005, 1006, 1007, 1011, 1014, 1015, 2999, 3000, 4999, 5000, 0];

/// What one side has sent, as the model sees it.
#[derive(Default)]
struct Sender {
    messages: Vec<OwnedMessage>,
    pings: Vec<Vec<u8>>,
    /// The fragmented message in progress: kind, content, bytes sent so far, and whether a
    /// first frame went out.
    fragmented: Option<(MessageKind, Vec<u8>, usize, bool)>,
    bytes: usize,
}

fn side(server: bool) -> Side {
    if server {
        Side::Server
    } else {
        Side::Client
    }
}

fn owned(kind: MessageKind, bytes: Vec<u8>) -> OwnedMessage {
    match kind {
        MessageKind::Text => OwnedMessage::Text(String::from_utf8(bytes).expect("UTF-8 content")),
        MessageKind::Binary => OwnedMessage::Binary(bytes),
    }
}

/// Runs a command whose success the model predicted; a refused one must change nothing.
fn expect(pair: &mut Pair, s: Side, ok: bool, result: Result<usize, UsageError>, before: State) {
    match result {
        Ok(_) => assert!(ok, "the command was refused by the model but accepted"),
        Err(e) => {
            assert!(!ok, "the command was allowed by the model but refused: {e:?}");
            assert!(!matches!(e, UsageError::BufferTooSmall { .. }), "the buffer is large");
            assert_eq!(pair.side(s).conn.state(), before, "a refused command changes nothing");
        }
    }
}

fn run(scenario: &Scenario) {
    let buffer = 256 + usize::from(scenario.buffer) * 64;
    let mut config =
        Config::new().receive_buffer_size(buffer).deflate(wsmachine::DeflateConfig::off());
    // Keepalive (on by default, 20 s) only when the scenario asks, and then short: without
    // it, the only pings are the application's, which the checks below compare.
    config = config.keepalive_interval(if scenario.keepalive {
        Some(Duration::from_millis(700))
    } else {
        None
    });
    let mut pair = if scenario.handshake {
        let mut pair = Pair::new(config.clone(), config.clone());
        pair.connect();
        pair
    } else {
        Pair::open(config.clone(), config)
    };
    pair.link.latency = Duration::from_millis(u64::from(scenario.latency));
    let mut senders = [Sender::default(), Sender::default()];
    for op in &scenario.ops {
        match op {
            Op::Text { server, text } => {
                let s = side(*server);
                let sender = &mut senders[*server as usize];
                let before = pair.side(s).conn.state();
                let ok = before == State::Open && !sender.fragmented.as_ref().is_some_and(|f| f.3);
                let r = pair.command(s, |c, out, _| c.send_text(text, out));
                expect(&mut pair, s, ok, r, before);
                if ok {
                    sender.messages.push(OwnedMessage::Text(text.clone()));
                    sender.bytes += text.len();
                }
            }
            Op::Binary { server, data } => {
                let s = side(*server);
                let sender = &mut senders[*server as usize];
                let before = pair.side(s).conn.state();
                let ok = before == State::Open && !sender.fragmented.as_ref().is_some_and(|f| f.3);
                let r = pair.command(s, |c, out, _| c.send_binary(data, out));
                expect(&mut pair, s, ok, r, before);
                if ok {
                    sender.messages.push(OwnedMessage::Binary(data.clone()));
                    sender.bytes += data.len();
                }
            }
            Op::StartFragmented { server, text, content } => {
                let sender = &mut senders[*server as usize];
                if sender.fragmented.is_none() {
                    let kind = if *text { MessageKind::Text } else { MessageKind::Binary };
                    sender.fragmented = Some((kind, content.clone().into_bytes(), 0, false));
                }
            }
            Op::Fragment { server, len, last } => {
                let s = side(*server);
                let sender = &mut senders[*server as usize];
                let Some((kind, content, sent, _)) = sender.fragmented.clone() else { continue };
                let end = if *last {
                    content.len()
                } else {
                    (sent + usize::from(*len)).min(content.len())
                };
                let before = pair.side(s).conn.state();
                let ok = before == State::Open;
                let piece = &content[sent..end];
                let r = pair.command(s, |c, out, _| c.send_fragment(kind, piece, *last, out));
                expect(&mut pair, s, ok, r, before);
                let sender = &mut senders[*server as usize];
                if !ok {
                    // A refused fragment means the connection is closing: the message will
                    // never be finished.
                    sender.fragmented = None;
                } else if *last {
                    sender.bytes += content.len();
                    sender.messages.push(owned(kind, content));
                    sender.fragmented = None;
                } else {
                    sender.fragmented = Some((kind, content, end, true));
                }
            }
            Op::Ping { server, payload } => {
                let s = side(*server);
                let before = pair.side(s).conn.state();
                let ok = before == State::Open && payload.len() <= 125;
                let r = pair.command(s, |c, out, _| c.send_ping(payload, out));
                expect(&mut pair, s, ok, r, before);
                if ok {
                    senders[*server as usize].pings.push(payload.clone());
                }
            }
            Op::Pong { server, payload } => {
                let s = side(*server);
                let before = pair.side(s).conn.state();
                let ok = before == State::Open && payload.len() <= 125;
                let r = pair.command(s, |c, out, _| c.send_pong(payload, out));
                expect(&mut pair, s, ok, r, before);
            }
            Op::Close { server, code, reason } => {
                let s = side(*server);
                let code = CloseCode(CODES[usize::from(*code) % CODES.len()]);
                let before = pair.side(s).conn.state();
                let ok =
                    before == State::Open && code.is_sendable() && reason.len() <= MAX_CLOSE_REASON;
                let r = pair.command(s, |c, out, now| c.close(code, reason, out, now));
                expect(&mut pair, s, ok, r, before);
                if ok {
                    let sent = pair.side(s).conn.sent_close().expect("close recorded");
                    assert_eq!((sent.code(), sent.reason()), (code, reason.as_str()));
                }
            }
            Op::Step { count } => {
                for _ in 0..*count % 8 {
                    pair.step();
                }
            }
            Op::Advance { millis } => {
                let until = pair.now + Duration::from_millis(u64::from(*millis));
                pair.drive_until(until);
            }
            Op::Split { max_piece } => pair.link.max_piece = usize::from(*max_piece).max(1),
        }
    }
    // Finish: one side closes (if neither has), and the pair settles.
    if pair.client.conn.sent_close().is_none() && pair.server.conn.sent_close().is_none() {
        let s = if scenario.server_closes_last { Side::Server } else { Side::Client };
        pair.command(s, |c, out, now| c.close(CloseCode::NORMAL, "done", out, now))
            .expect("close from an open connection");
    }
    pair.drive();

    for (ep, name) in [(&pair.client, "client"), (&pair.server, "server")] {
        assert_eq!(ep.conn.state(), State::Closed, "{name} ends closed");
        assert!(ep.errors.is_empty(), "{name} saw no error: {:?}", ep.errors);
        assert!(matches!(ep.seen.last(), Some(Seen::Close(_))), "{name}: nothing after a close");
        assert_eq!(ep.closes().len(), 1, "{name} received one close");
    }
    let sent_by = |s: Side| match s {
        Side::Client => *pair.client.conn.sent_close().expect("client sent a close"),
        Side::Server => *pair.server.conn.sent_close().expect("server sent a close"),
    };
    assert_eq!(pair.server.closes()[0], sent_by(Side::Client), "server got the client's close");
    assert_eq!(pair.client.closes()[0], sent_by(Side::Server), "client got the server's close");
    assert_eq!(pair.server.messages(), senders[0].messages, "client → server messages intact");
    assert_eq!(pair.client.messages(), senders[1].messages, "server → client messages intact");
    if !scenario.keepalive {
        for (ep, sender) in [(&pair.server, &senders[0]), (&pair.client, &senders[1])] {
            let pings: Vec<Vec<u8>> = ep
                .seen
                .iter()
                .filter_map(|s| if let Seen::Ping(p) = s { Some(p.clone()) } else { None })
                .collect();
            assert_eq!(pings, sender.pings, "pings arrive in order");
        }
    }
    // RFC 6455 §7.1.1: the server closes the TCP connection first; the client reads its end.
    let server_at = pair.server.closed_transport_at.expect("the server closed TCP");
    assert!(pair.client.closed_transport_at.is_none_or(|c| c >= server_at), "server first");
    assert_eq!(pair.client.eof_was_clean, Some(true), "the client saw a clean end of stream");
}

fuzz_target!(|scenario: Scenario| {
    let sent: usize = scenario
        .ops
        .iter()
        .map(|op| match op {
            Op::Text { text, .. } => text.len(),
            Op::Binary { data, .. } => data.len(),
            Op::StartFragmented { content, .. } => content.len(),
            Op::Ping { payload, .. } | Op::Pong { payload, .. } => payload.len(),
            _ => 0,
        })
        .sum();
    let buffer = 256 + usize::from(scenario.buffer) * 64;
    let baseline = live_bytes();
    let heap = HeapWatch::start();
    run(&scenario);
    // The simulator holds, per side, its receive buffer, a 64 KiB output buffer and logs of
    // what was sent and seen; every byte sent is held at most a few times (in flight, in the
    // receive buffer, reassembled, recorded by the model and by the receiver), and every
    // event (an op's, or a keepalive ping's and pong's) costs a log record of at most 136
    // bytes, doubled by `Vec` growth, on each side, plus its in-flight copy. The connections
    // themselves hold under a kilobyte each.
    let millis: u64 = scenario
        .ops
        .iter()
        .map(|op| if let Op::Advance { millis } = op { u64::from(*millis) } else { 0 })
        .sum();
    let keepalives = if scenario.keepalive { (millis / 700) as usize + 32 } else { 0 };
    let events = scenario.ops.len() + keepalives;
    let bound = 2 * (buffer + (1 << 16)) + 8 * sent + 1024 * events + (64 << 10);
    heap.assert_within(bound, "the pair");
    assert_eq!(live_bytes(), baseline, "nothing leaks once the pair is dropped");
});
