//! The same bytes decoded as a server by wsmachine and by tungstenite
//! (`WebSocket::from_raw_socket` over an in-memory stream), with the same frame and message
//! limits taken from the input.
//!
//! Invariant: both accept the same frames with the same payloads (the same whole messages,
//! pings, pongs and close frame, in order) and then stop the same way (both after a close,
//! both out of input, or both rejecting), except for the named tungstenite behaviours in
//! fuzz/README.md, each tolerated by its own check below and nowhere else. Also: wsmachine's
//! heap stays within `FRAME_PATH_HEAP` (it runs with a buffer larger than any allowed frame,
//! so every frame is handed out whole, as tungstenite does).

#![no_main]

use std::io::{self, Cursor, Read, Write};

use libfuzzer_sys::fuzz_target;
use tungstenite::error::{CapacityError, Error as TError, ProtocolError};
use tungstenite::protocol::{Role as TRole, WebSocket, WebSocketConfig};
use tungstenite::Message as TMessage;
use wsmachine::{Config, Connection, ErrorKind, Event, Message, MessageKind};
use wsmachine_fuzz::{HeapWatch, Input, FRAME_PATH_HEAP, NOW};

/// One thing a decoder accepted, owned.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Ev {
    Text(String),
    Binary(Vec<u8>),
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    Close(u16, String),
}

/// How a decoder stopped.
#[derive(Clone, Debug, PartialEq, Eq)]
enum End {
    /// After a close frame.
    Closed,
    /// Out of input, waiting for more.
    Incomplete,
    /// The input broke the protocol or a limit.
    Rejected(String),
}

/// What wsmachine did: events (each with the input offset after its frame), how it stopped,
/// and where it stopped.
struct Ours {
    events: Vec<Ev>,
    offsets: Vec<usize>,
    end: End,
    error: Option<ErrorKind>,
    /// The input offset of the frame it stopped at.
    at: usize,
    /// Payload bytes of the fragmented message in progress when it stopped.
    message_so_far: usize,
}

fn config(frame: u64, message: u64) -> Config {
    Config::new()
        .deflate(wsmachine::DeflateConfig::off())
        .receive_buffer_size(1 << 20)
        .max_frame_size(frame)
        .max_message_size(message)
        .max_fragments(u32::MAX)
}

fn run_ours(data: &[u8], frame: u64, message: u64, record: bool) -> Ours {
    let mut buf = data.to_vec();
    let mut conn = Connection::open_server(config(frame, message), NOW);
    let mut ours = Ours {
        events: Vec::new(),
        offsets: Vec::new(),
        end: End::Incomplete,
        error: None,
        at: 0,
        message_so_far: 0,
    };
    let mut fragments: Option<(MessageKind, Vec<u8>)> = None;
    let mut at = 0;
    loop {
        let r = match conn.receive(&mut buf[at..], NOW) {
            Ok(r) => r,
            Err(e) => {
                ours.end = End::Rejected(format!("{e}"));
                ours.error = Some(e.kind());
                break;
            }
        };
        let consumed = r.consumed;
        let Some(event) = r.event else {
            assert_eq!(consumed, 0, "frames are handed out whole with a large buffer");
            break;
        };
        let mut closed = false;
        if record {
            let ev = match event {
                Event::Message(Message::Text(t)) => Some(Ev::Text(t.to_owned())),
                Event::Message(Message::Binary(b)) => Some(Ev::Binary(b.to_vec())),
                Event::Fragment(f) => {
                    let (_, bytes) = fragments.get_or_insert_with(|| (f.kind, Vec::new()));
                    bytes.extend_from_slice(f.payload);
                    if f.is_last {
                        let (kind, bytes) = fragments.take().expect("message in progress");
                        Some(match kind {
                            MessageKind::Text => {
                                Ev::Text(String::from_utf8(bytes).expect("validated text"))
                            }
                            MessageKind::Binary => Ev::Binary(bytes),
                        })
                    } else {
                        None
                    }
                }
                Event::Ping(p) => Some(Ev::Ping(p.to_vec())),
                Event::Pong(p) => Some(Ev::Pong(p.to_vec())),
                Event::Close(c) => {
                    closed = true;
                    Some(Ev::Close(c.code().0, c.reason().to_owned()))
                }
                other => panic!("no other event on an open connection: {other:?}"),
            };
            if let Some(ev) = ev {
                ours.events.push(ev);
                ours.offsets.push(at + consumed);
            }
        } else {
            closed = matches!(event, Event::Close(_));
        }
        at += consumed;
        if closed {
            ours.end = End::Closed;
            break;
        }
    }
    ours.at = at;
    ours.message_so_far = fragments.map_or(0, |(_, b)| b.len());
    ours
}

/// An input stream that reads `data` and swallows what is written (pongs, close replies).
struct Memory {
    input: Cursor<Vec<u8>>,
}

impl Read for Memory {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.input.read(buf)
    }
}

impl Write for Memory {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// What tungstenite did: events, how it stopped, and its error.
struct Theirs {
    events: Vec<Ev>,
    end: End,
    error: Option<TError>,
}

fn run_theirs(data: &[u8], frame: u64, message: u64) -> Theirs {
    let config = WebSocketConfig::default()
        .read_buffer_size(4096)
        .max_frame_size(Some(frame as usize))
        .max_message_size(Some(message as usize));
    let stream = Memory { input: Cursor::new(data.to_vec()) };
    let mut ws = WebSocket::from_raw_socket(stream, TRole::Server, Some(config));
    let mut theirs = Theirs { events: Vec::new(), end: End::Incomplete, error: None };
    loop {
        let ev = match ws.read() {
            Ok(TMessage::Text(t)) => Ev::Text(t.as_str().to_owned()),
            Ok(TMessage::Binary(b)) => Ev::Binary(b.to_vec()),
            Ok(TMessage::Ping(p)) => Ev::Ping(p.to_vec()),
            Ok(TMessage::Pong(p)) => Ev::Pong(p.to_vec()),
            Ok(TMessage::Close(c)) => {
                let ev = match c {
                    Some(c) => Ev::Close(u16::from(c.code), c.reason.as_str().to_owned()),
                    None => Ev::Close(1005, String::new()),
                };
                theirs.events.push(ev);
                theirs.end = End::Closed;
                return theirs;
            }
            Ok(TMessage::Frame(_)) => panic!("tungstenite hands out no raw frame when reading"),
            Err(TError::Protocol(ProtocolError::ResetWithoutClosingHandshake)) => return theirs,
            Err(e) => {
                theirs.end = End::Rejected(format!("{e}"));
                theirs.error = Some(e);
                return theirs;
            }
        };
        theirs.events.push(ev);
    }
}

/// The header at the start of `bytes`: its length (base, extended length and mask key) and
/// the payload length it declares, in any of the 7/16/64-bit encodings (minimal or not).
/// `None` while the header is cut short.
fn declared(bytes: &[u8]) -> Option<(usize, u64)> {
    let [_, b1, rest @ ..] = bytes else { return None };
    let ext = match b1 & 0x7F {
        126 => 2,
        127 => 8,
        _ => 0,
    };
    let mask = if b1 & 0x80 != 0 { 4 } else { 0 };
    if rest.len() < ext + mask {
        return None;
    }
    let len = match ext {
        0 => u64::from(b1 & 0x7F),
        _ => rest[..ext].iter().fold(0u64, |n, &b| n << 8 | u64::from(b)),
    };
    Some((2 + ext + mask, len))
}

/// Whether the bytes at the start of `bytes` hold a whole frame (header and payload).
fn frame_is_whole(bytes: &[u8]) -> bool {
    declared(bytes).is_some_and(|(header, len)| (bytes.len() - header) as u64 >= len)
}

/// README (1): tungstenite reads a frame's whole payload before checking anything but its
/// length, where wsmachine refuses from the header (masking, RSV bits, opcode order, control
/// frame rules, limits) or as soon as the text is invalid UTF-8. So for a frame cut short by
/// the end of the input, wsmachine rejects and tungstenite waits for more.
fn checks_only_whole_frames(data: &[u8], ours: &Ours, theirs: &Theirs) -> bool {
    matches!(ours.end, End::Rejected(_))
        && theirs.end == End::Incomplete
        && !frame_is_whole(&data[ours.at..])
        && ours.events == theirs.events
}

/// README (2): wsmachine charges each continuation frame `Config::FRAGMENT_OVERHEAD` bytes
/// against the message limit; tungstenite counts payload only, so it accepts a fragmented
/// message whose payload fits the limit even when its overhead does not.
fn fragment_overhead(data: &[u8], message: u64, ours: &Ours, theirs: &Theirs) -> bool {
    let Some(ErrorKind::MessageTooLarge { .. }) = ours.error else { return false };
    let rest = &data[ours.at..];
    let is_continuation = rest.first().is_some_and(|b0| b0 & 0x0F == 0);
    let Some((_, declared)) = declared(rest).filter(|_| is_continuation) else { return false };
    ours.message_so_far as u64 + declared <= message && theirs.events.starts_with(&ours.events)
}

/// README (3): tungstenite answers a close frame with a code that may not be sent (1004–1006,
/// 1015, below 1000, unassigned below 3000, 5000 and above) with 1002 but hands it out as a
/// close "1002 Protocol violation" instead of failing; wsmachine fails the connection
/// (`InvalidCloseCode`, also answered with 1002).
fn rewrites_invalid_close_codes(ours: &Ours, theirs: &Theirs) -> bool {
    let Some(ErrorKind::InvalidCloseCode(code)) = ours.error else { return false };
    !wsmachine::CloseCode(code).is_sendable()
        && theirs.end == End::Closed
        && theirs.events.split_last().is_some_and(|(last, before)| {
            *last == Ev::Close(1002, "Protocol violation".into()) && before == ours.events
        })
}

/// README (4): tungstenite does not know 1014 (Bad Gateway, in the IANA registry since
/// 2016), so it treats a close with 1014 like one with an invalid code (see (3)); wsmachine
/// accepts it. Compared as equal.
fn normalise_1014(events: &[Ev]) -> Vec<Ev> {
    events
        .iter()
        .map(|e| match e {
            Ev::Close(1014, _) => Ev::Close(1002, "Protocol violation".into()),
            other => other.clone(),
        })
        .collect()
}

/// README (5): tungstenite applies `max_frame_size` to control frames too; wsmachine exempts
/// them (RFC 6455 §5.5 caps them at 125 bytes, and a close must stay readable). So under a
/// frame limit below 125 tungstenite rejects a control frame that wsmachine hands out.
/// The frame may also be cut short, so wsmachine is still waiting for its payload.
fn limits_control_frames(data: &[u8], frame: u64, ours: &Ours, theirs: &Theirs) -> bool {
    let Some(TError::Capacity(CapacityError::MessageTooLong { .. })) = theirs.error else {
        return false;
    };
    let k = theirs.events.len();
    if ours.end == End::Incomplete && ours.events.len() == k {
        // Waiting for the payload of a control frame whose header is in.
        // The length may use an extended (non-minimal) encoding: `declared` reads all three.
        let rest = &data[ours.at..];
        let is_control = rest.first().is_some_and(|b0| b0 & 0x08 != 0);
        return is_control
            && declared(rest).is_some_and(|(_, len)| len > frame && len <= 125)
            && normalise_1014(&ours.events) == theirs.events;
    }
    let control_len = match ours.events.get(k) {
        Some(Ev::Ping(p) | Ev::Pong(p)) => p.len(),
        Some(Ev::Close(1005, r)) if r.is_empty() => 0,
        Some(Ev::Close(_, r)) => 2 + r.len(),
        _ => return false,
    };
    control_len as u64 > frame && normalise_1014(&ours.events[..k]) == theirs.events
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let frame = input.choose(&[0u64, 1, 2, 10, 125, 126, 1000, 65535, 65536]);
    let message = input.choose(&[0u64, 1, 10, 125, 200, 1000, 5000, 65536, 1 << 20]);
    let stream = input.rest();

    let heap = HeapWatch::start();
    let unrecorded = run_ours(stream, frame, message, false);
    // The run copies the input once; beyond that, only the connection's owed bytes.
    heap.assert_within(stream.len() + FRAME_PATH_HEAP, "the connection receiving frames");
    let ours = run_ours(stream, frame, message, true);
    assert_eq!((unrecorded.end, unrecorded.at), (ours.end.clone(), ours.at), "deterministic");
    let theirs = run_theirs(stream, frame, message);

    let both_rejected =
        matches!(ours.end, End::Rejected(_)) && matches!(theirs.end, End::Rejected(_));
    let same_end = both_rejected || ours.end == theirs.end;
    if same_end && normalise_1014(&ours.events) == theirs.events {
        return;
    }
    if checks_only_whole_frames(stream, &ours, &theirs)
        || fragment_overhead(stream, message, &ours, &theirs)
        || rewrites_invalid_close_codes(&ours, &theirs)
        || limits_control_frames(stream, frame, &ours, &theirs)
    {
        return;
    }
    panic!(
        "disagreement (frame limit {frame}, message limit {message}):\n wsmachine: {:?} then {:?} at {}\ntungstenite: {:?} then {:?}",
        ours.events, ours.end, ours.at, theirs.events, theirs.end
    );
});
