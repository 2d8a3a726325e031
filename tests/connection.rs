//! The connection's rules, for both roles, through the public API: the full lifecycle on a
//! simulated link, framing rules, UTF-8, close codes, ping/pong, limits and timers.

mod common;

use common::drain;
use common::pair::{Pair, Seen, Side};
use common::wire::{frame, frames, mask_of, raw_frame, T0};
use wsmachine::frame::Opcode;
use wsmachine::{
    CloseCode, Config, Connection, Duration, ErrorKind, Event, Instant, Message, MessageKind,
    OwnedMessage, RecvBuffer, Role, State, UsageError,
};

fn server() -> Connection {
    Connection::open_server(Config::new(), T0)
}

fn client() -> Connection {
    Connection::open_client(Config::new(), [1; 32], T0)
}

/// An open connection that receives what `from` sends: a server for a client's frames, a
/// client for a server's.
fn receiver_of(from: Role) -> Connection {
    match from {
        Role::Client => server(),
        Role::Server => client(),
    }
}

/// The close code in the close frame `from` sent at the start of `bytes`, if there is one.
fn close_code_sent(from: Role, bytes: &[u8]) -> Option<u16> {
    let frames = frames(from, bytes);
    let (opcode, payload) = frames.first()?;
    (*opcode == Opcode::Close && payload.len() >= 2)
        .then(|| u16::from_be_bytes([payload[0], payload[1]]))
}

/// Feeds `bytes` whole and returns the failure kind and the close code sent.
fn fails_with(conn: &mut Connection, bytes: &[u8]) -> (ErrorKind, Option<u16>) {
    let mut input = bytes.to_vec();
    let mut at = 0;
    loop {
        match conn.receive(&mut input[at..], T0) {
            Ok(r) => {
                assert!(r.consumed > 0 || r.event.is_some(), "no failure: stalled");
                at += r.consumed;
            }
            Err(e) => {
                let (sent, _) = drain(conn);
                let code = close_code_sent(conn.role(), &sent);
                assert_eq!(e.close_code().map(|c| c.0), code);
                return (e.kind(), code);
            }
        }
    }
}

// ---- The whole lifecycle on a simulated link ----

/// The default configuration without keepalive, for the tests that drive a pair until
/// nothing is left to do or that look at one deadline alone (keepalive, on by default, would
/// ping forever and keep its own deadline armed).
fn quiet() -> Config {
    Config::new().keepalive_interval(None)
}

#[test]
fn lifecycle_client_initiated_close() {
    let mut pair = Pair::new(quiet(), quiet());
    pair.connect();
    pair.command(Side::Client, |c, out, _| c.send_text("hello", out)).unwrap();
    pair.command(Side::Server, |c, out, _| c.send_binary(&[1, 2, 3], out)).unwrap();
    pair.drive();
    assert_eq!(pair.server.messages(), vec![OwnedMessage::Text("hello".into())]);
    assert_eq!(pair.client.messages(), vec![OwnedMessage::Binary(vec![1, 2, 3])]);

    pair.command(Side::Client, |c, out, now| c.close(CloseCode::NORMAL, "done", out, now)).unwrap();
    pair.drive();
    assert_eq!(pair.client.conn.state(), State::Closed);
    assert_eq!(pair.server.conn.state(), State::Closed);
    assert_eq!(pair.server.closes()[0].code(), CloseCode::NORMAL);
    assert_eq!(pair.server.closes()[0].reason(), "done");
    assert_eq!(pair.client.closes()[0].code(), CloseCode::NORMAL);
    // RFC 6455 §7.1.1: the server closes TCP first; the client sees a clean end.
    assert!(pair.server.closed_transport_at.is_some());
    assert!(pair.client.closed_transport_at.is_none());
    assert_eq!(pair.client.eof_was_clean, Some(true));
    assert!(pair.client.errors.is_empty() && pair.server.errors.is_empty());
}

#[test]
fn lifecycle_server_initiated_close() {
    let mut pair = Pair::new(Config::new(), Config::new());
    pair.connect();
    pair.command(Side::Server, |c, out, now| c.close(CloseCode(4000), "bye", out, now)).unwrap();
    pair.drive();
    assert_eq!(pair.client.closes()[0].code(), CloseCode(4000));
    assert_eq!(pair.server.closes()[0].code(), CloseCode(4000));
    assert!(pair.server.closed_transport_at.is_some());
    assert_eq!(pair.client.eof_was_clean, Some(true));
    assert_eq!(pair.client.conn.state(), State::Closed);
}

#[test]
fn handshake_over_one_byte_pieces_keeps_following_frames() {
    let mut pair = Pair::new(quiet(), quiet());
    pair.link.max_piece = 1;
    // Queue a message right behind the request: the server must not lose it.
    pair.drive();
    pair.command(Side::Client, |c, out, _| c.send_text("first", out)).unwrap();
    pair.drive();
    assert_eq!(pair.server.seen[0], Seen::Request { target: "/chat".into() });
    assert_eq!(pair.server.messages(), vec![OwnedMessage::Text("first".into())]);
}

#[test]
fn server_keeps_frames_sent_in_the_same_read_as_the_request() {
    let mut client =
        Connection::client(Config::new(), &wsmachine::ClientRequest::new("h", "/"), [3; 32], T0)
            .unwrap();
    let (mut bytes, _) = drain(&mut client);
    let request_len = bytes.len();
    bytes.extend(frame(Role::Client, true, Opcode::Text, b"early"));
    let mut server = Connection::server(Config::new(), T0);
    let r = server.receive(&mut bytes, T0).unwrap();
    assert_eq!(r.consumed, request_len);
    assert!(matches!(r.event, Some(Event::Request(_))));
    let r = server.receive(&mut bytes[request_len..], T0).unwrap();
    assert_eq!((r.consumed, r.event.is_none(), r.needed), (0, true, 0), "waits for accept");
    let mut out = [0; 512];
    let _unsent = server.accept(&wsmachine::Accept::new(), &mut out, T0).unwrap();
    let r = server.receive(&mut bytes[request_len..], T0).unwrap();
    assert!(matches!(r.event, Some(Event::Message(Message::Text("early")))));
}

// ---- RFC 6455 §5.7 examples, at the connection level ----

#[test]
fn client_receives_rfc_unmasked_hello() {
    let mut input = [0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f];
    let r = client().receive(&mut input, T0).unwrap();
    assert_eq!(r.consumed, 7);
    assert!(matches!(r.event, Some(Event::Message(Message::Text("Hello")))));
}

#[test]
fn server_receives_rfc_masked_hello() {
    let mut input = [0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58];
    let r = server().receive(&mut input, T0).unwrap();
    assert!(matches!(r.event, Some(Event::Message(Message::Text("Hello")))));
}

#[test]
fn client_receives_rfc_fragmented_hello() {
    let mut c = client();
    let mut input = [0x01, 0x03, 0x48, 0x65, 0x6c, 0x80, 0x02, 0x6c, 0x6f];
    let r = c.receive(&mut input, T0).unwrap();
    let Some(Event::Fragment(f)) = r.event else { panic!() };
    assert_eq!(
        (f.payload, f.is_first, f.is_last, f.kind),
        (&b"Hel"[..], true, false, MessageKind::Text)
    );
    let r = c.receive(&mut input[5..], T0).unwrap();
    let Some(Event::Fragment(f)) = r.event else { panic!() };
    assert_eq!((f.payload, f.is_first, f.is_last), (&b"lo"[..], false, true));
}

#[test]
fn client_receives_rfc_ping_and_answers_with_pong() {
    let mut c = client();
    let mut input = [0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f];
    let r = c.receive(&mut input, T0).unwrap();
    assert!(matches!(r.event, Some(Event::Ping(b"Hello"))));
    let (bytes, _) = drain(&mut c);
    // Masked, as a client's frames are (`frames` checks it).
    assert_eq!(frames(Role::Client, &bytes), [(Opcode::Pong, b"Hello".to_vec())]);
}

#[test]
fn server_receives_rfc_masked_pong() {
    let mut input = [0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58];
    let r = server().receive(&mut input, T0).unwrap();
    assert!(matches!(r.event, Some(Event::Pong(b"Hello"))));
}

#[test]
fn client_receives_rfc_256_byte_and_64_kib_binary() {
    let mut c = client();
    let mut input = vec![0x82, 0x7E, 0x01, 0x00];
    input.extend([0xAB; 256]);
    let r = c.receive(&mut input, T0).unwrap();
    assert!(matches!(r.event, Some(Event::Message(Message::Binary(p))) if p.len() == 256));
    let mut input = vec![0x82, 0x7F, 0, 0, 0, 0, 0, 0x01, 0x00, 0x00];
    input.extend(vec![0xCD; 65536]);
    let mut c = Connection::open_client(Config::new().receive_buffer_size(1 << 17), [1; 32], T0);
    let r = c.receive(&mut input, T0).unwrap();
    assert!(matches!(r.event, Some(Event::Message(Message::Binary(p))) if p.len() == 65536));
}

// ---- Framing rules, for both roles ----

#[test]
fn server_receives_unmasked_frame() {
    let (kind, code) = fails_with(&mut server(), &frame(Role::Server, true, Opcode::Text, b"x"));
    assert_eq!((kind, code), (ErrorKind::UnmaskedFrame, Some(1002)));
}

#[test]
fn client_receives_masked_frame() {
    let (kind, code) = fails_with(&mut client(), &frame(Role::Client, true, Opcode::Text, b"x"));
    assert_eq!((kind, code), (ErrorKind::MaskedFrame, Some(1002)));
}

#[test]
fn both_roles_refuse_reserved_opcodes_and_rsv_bits() {
    for from in [Role::Client, Role::Server] {
        let mut conn = receiver_of(from);
        let mut bytes = frame(from, true, Opcode::Binary, b"x");
        bytes[0] = (bytes[0] & 0xF0) | 0x3;
        assert_eq!(fails_with(&mut conn, &bytes), (ErrorKind::ReservedOpcode(3), Some(1002)));
        let mut conn = receiver_of(from);
        bytes[0] = (bytes[0] & 0xF0) | 0xB;
        assert_eq!(fails_with(&mut conn, &bytes), (ErrorKind::ReservedOpcode(0xB), Some(1002)));
        let mut conn = receiver_of(from);
        let mask = mask_of(from);
        let bytes = raw_frame(true, 0b100, Opcode::Text, mask, b"x");
        assert_eq!(fails_with(&mut conn, &bytes), (ErrorKind::ReservedBits, Some(1002)));
    }
}

#[test]
fn both_roles_refuse_a_64_bit_length_with_the_top_bit_set() {
    let mut c = client();
    let bytes = [0x82, 0x7F, 0x80, 0, 0, 0, 0, 0, 0, 0];
    assert_eq!(fails_with(&mut c, &bytes), (ErrorKind::LengthOutOfRange, Some(1002)));
    let mut s = server();
    let bytes = [0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4];
    assert_eq!(fails_with(&mut s, &bytes), (ErrorKind::LengthOutOfRange, Some(1002)));
}

#[test]
fn both_roles_refuse_long_or_fragmented_control_frames() {
    for from in [Role::Client, Role::Server] {
        let mut conn = receiver_of(from);
        let bytes = frame(from, true, Opcode::Ping, &[0; 126]);
        assert_eq!(fails_with(&mut conn, &bytes), (ErrorKind::ControlFrameTooLong, Some(1002)));
        let mut conn = receiver_of(from);
        let bytes = frame(from, false, Opcode::Ping, b"x");
        assert_eq!(fails_with(&mut conn, &bytes), (ErrorKind::FragmentedControlFrame, Some(1002)));
    }
}

#[test]
fn both_roles_refuse_continuation_without_message_and_interleaved_messages() {
    for from in [Role::Client, Role::Server] {
        let mut conn = receiver_of(from);
        let bytes = frame(from, true, Opcode::Continuation, b"x");
        assert_eq!(fails_with(&mut conn, &bytes), (ErrorKind::UnexpectedContinuation, Some(1002)));
        let mut conn = receiver_of(from);
        let mut bytes = frame(from, false, Opcode::Text, b"a");
        bytes.extend(frame(from, true, Opcode::Binary, b"b"));
        assert_eq!(fails_with(&mut conn, &bytes), (ErrorKind::ExpectedContinuation, Some(1002)));
    }
}

#[test]
fn control_frames_between_fragments_are_handled_at_once() {
    let mut s = server();
    let mut bytes = frame(Role::Client, false, Opcode::Text, b"Hel");
    bytes.extend(frame(Role::Client, true, Opcode::Ping, b"p"));
    bytes.extend(frame(Role::Client, true, Opcode::Continuation, b"lo"));
    let mut at = 0;
    let mut events = Vec::new();
    while at < bytes.len() {
        let r = s.receive(&mut bytes[at..], T0).unwrap();
        at += r.consumed;
        events.push(format!("{:?}", r.event.unwrap()));
    }
    assert_eq!(events.len(), 3);
    assert!(events[1].starts_with("Ping"));
    let (pong, _) = drain(&mut s);
    assert_eq!(pong, frame(Role::Server, true, Opcode::Pong, b"p"));
}

#[test]
fn a_frame_larger_than_the_buffer_comes_out_in_pieces() {
    // One 16 MiB text frame through a 4 KiB buffer, validated piece by piece.
    let config =
        Config::new().receive_buffer_size(4096).max_message_size(1 << 24).max_frame_size(1 << 24);
    let text: String = "é ascii ∑ 😀 ".repeat((1 << 24) / 18);
    let bytes = frame(Role::Client, true, Opcode::Text, text.as_bytes());
    let mut s = Connection::open_server(config, T0);
    let mut reassembler = wsmachine::Reassembler::new();
    let mut input = RecvBuffer::new([0u8; 4096]);
    let mut fed = 0;
    let mut got = None;
    let (mut pieces, mut largest, mut handed_out) = (0, 0, 0);
    while got.is_none() {
        if let Some(event) = input.next_event(&mut s, T0).unwrap() {
            let Event::Fragment(f) = &event else { panic!("{event:?}") };
            assert_eq!(f.is_first, pieces == 0);
            pieces += 1;
            largest = largest.max(f.payload.len());
            handed_out += f.payload.len();
            let rest = s.frame_remaining();
            assert_eq!(rest as usize, text.len() - handed_out, "frame_remaining after a piece");
            reassembler.reserve(f.payload.len() + rest as usize);
            got = reassembler.push(&event);
        } else {
            // Reads of odd sizes, so pieces start at every masking-key offset.
            fed += input.push(&bytes[fed..(fed + 4093).min(bytes.len())]);
        }
    }
    assert_eq!(got, Some(OwnedMessage::Text(text)));
    assert!(largest <= 4096 && pieces > 4000, "{pieces} pieces, largest {largest}");
    assert_eq!(s.frame_remaining(), 0);
}

#[test]
fn frame_remaining_is_zero_for_whole_frames_and_control_frames() {
    let config = Config::new().receive_buffer_size(256);
    let mut s = Connection::open_server(config, T0);
    // A whole binary frame: handed out whole, nothing remains.
    let mut bytes = frame(Role::Client, true, Opcode::Binary, &[7; 100]);
    let r = s.receive(&mut bytes, T0).unwrap();
    assert!(matches!(r.event, Some(Event::Message(_))));
    assert_eq!(s.frame_remaining(), 0);
    // Half of a frame that fits the buffer: it waits whole, so no piece and nothing "remains".
    let mut half = frame(Role::Client, true, Opcode::Binary, &[7; 200])[..100].to_vec();
    let r = s.receive(&mut half, T0).unwrap();
    assert!(r.event.is_none());
    assert_eq!(s.frame_remaining(), 0);
    // A frame larger than the buffer, cut after its first 50 payload bytes.
    let mut s = Connection::open_server(Config::new().receive_buffer_size(256), T0);
    let big = frame(Role::Client, true, Opcode::Binary, &[9; 1000]);
    let header = big.len() - 1000;
    let mut first = big[..header + 50].to_vec();
    let r = s.receive(&mut first, T0).unwrap();
    let Some(Event::Fragment(f)) = r.event else { panic!("expected a piece") };
    assert_eq!(f.payload.len(), 50);
    assert_eq!(s.frame_remaining(), 950);
    // Another piece.
    let mut rest = big[header + 50..header + 60].to_vec();
    let r = s.receive(&mut rest, T0).unwrap();
    assert!(matches!(r.event, Some(Event::Fragment(f)) if f.payload.len() == 10));
    assert_eq!(s.frame_remaining(), 940);
    let mut rest = big[header + 60..].to_vec();
    let r = s.receive(&mut rest, T0).unwrap();
    assert!(matches!(r.event, Some(Event::Fragment(f)) if f.is_last && f.payload.len() == 940));
    assert_eq!(s.frame_remaining(), 0);
    // A control frame, even cut short, is never handed out in pieces.
    let mut ping = frame(Role::Client, true, Opcode::Ping, &[1; 125])[..60].to_vec();
    let r = s.receive(&mut ping, T0).unwrap();
    assert!(r.event.is_none());
    assert_eq!(s.frame_remaining(), 0);
}

// ---- UTF-8 ----

#[test]
fn invalid_utf8_in_the_first_fragment_fails_before_later_fragments() {
    let mut s = server();
    let bytes = frame(Role::Client, false, Opcode::Text, b"ok \xed\xa0\x80 surrogate");
    assert_eq!(fails_with(&mut s, &bytes), (ErrorKind::InvalidUtf8, Some(1007)));
}

#[test]
fn invalid_utf8_fails_before_the_rest_of_its_frame_arrives() {
    // A frame that fits the buffer is awaited whole, but its text is checked as it arrives.
    let mut s = server();
    let mut bytes =
        frame(Role::Client, true, Opcode::Text, b"valid start \xf4\x90 and much more to come");
    let e = s.receive(&mut bytes[..20], T0).unwrap_err();
    assert_eq!(
        (e.kind(), e.close_code()),
        (ErrorKind::InvalidUtf8, Some(CloseCode::INVALID_PAYLOAD))
    );
}

#[test]
fn a_message_ending_inside_a_code_point_is_invalid() {
    let mut s = server();
    let mut bytes = frame(Role::Client, false, Opcode::Text, b"abc\xe2\x82");
    bytes.extend(frame(Role::Client, true, Opcode::Continuation, b""));
    assert_eq!(fails_with(&mut s, &bytes), (ErrorKind::InvalidUtf8, Some(1007)));
}

#[test]
fn a_code_point_split_across_fragments_is_valid() {
    let mut c = client();
    let mut bytes = frame(Role::Server, false, Opcode::Text, b"\xf0\x9f");
    bytes.extend(frame(Role::Server, false, Opcode::Continuation, b"\x98"));
    bytes.extend(frame(Role::Server, true, Opcode::Continuation, b"\x80"));
    let mut at = 0;
    let mut text = Vec::new();
    while at < bytes.len() {
        let r = c.receive(&mut bytes[at..], T0).unwrap();
        at += r.consumed;
        if let Some(Event::Fragment(f)) = r.event {
            text.extend_from_slice(f.payload);
        }
    }
    assert_eq!(String::from_utf8(text).unwrap(), "😀");
}

// ---- Close codes ----

#[test]
fn received_close_codes_are_validated() {
    for code in [0u16, 999, 1004, 1005, 1006, 1015, 1016, 2000, 2999, 5000] {
        let mut s = server();
        let bytes = frame(Role::Client, true, Opcode::Close, &code.to_be_bytes());
        assert_eq!(
            fails_with(&mut s, &bytes),
            (ErrorKind::InvalidCloseCode(code), Some(1002)),
            "{code}"
        );
    }
    for code in
        [1000u16, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 4999]
    {
        let mut s = server();
        let mut bytes = frame(Role::Client, true, Opcode::Close, &code.to_be_bytes());
        let r = s.receive(&mut bytes, T0).unwrap();
        let Some(Event::Close(c)) = r.event else { panic!("{code}") };
        assert_eq!(c.code(), CloseCode(code));
        let (reply, close_transport) = drain(&mut s);
        assert_eq!(close_code_sent(Role::Server, &reply), Some(code), "echoes the code");
        assert!(close_transport, "the server closes TCP once the handshake completes");
    }
}

#[test]
fn a_one_byte_close_body_and_an_invalid_reason_fail() {
    let mut s = server();
    assert_eq!(
        fails_with(&mut s, &frame(Role::Client, true, Opcode::Close, b"\x03")),
        (ErrorKind::OneByteClosePayload, Some(1002))
    );
    let mut s = server();
    let bytes = frame(Role::Client, true, Opcode::Close, b"\x03\xe8\xff\xfe");
    assert_eq!(fails_with(&mut s, &bytes), (ErrorKind::InvalidUtf8, Some(1007)));
}

#[test]
fn an_empty_close_is_answered_with_an_empty_close() {
    let mut c = client();
    let mut bytes = frame(Role::Server, true, Opcode::Close, b"");
    let r = c.receive(&mut bytes, T0).unwrap();
    let Some(Event::Close(frame)) = r.event else { panic!() };
    assert_eq!(frame.code(), CloseCode::NO_STATUS);
    let (reply, close_transport) = drain(&mut c);
    assert_eq!(frames(Role::Client, &reply), [(Opcode::Close, Vec::new())]);
    assert!(!close_transport, "a client waits for the server to close TCP");
    assert_eq!(c.state(), State::Closing);
}

#[test]
fn data_after_the_peers_close_is_dropped_and_no_data_can_follow_ours() {
    let mut s = server();
    let mut bytes = frame(Role::Client, true, Opcode::Close, b"\x03\xe8");
    bytes.extend(frame(Role::Client, true, Opcode::Text, b"late"));
    let consumed = s.receive(&mut bytes, T0).unwrap().consumed;
    let r2 = s.receive(&mut bytes[consumed..], T0).unwrap();
    assert!(r2.event.is_none());
    let mut out = [0; 64];
    assert_eq!(s.send_text("x", &mut out), Err(UsageError::Closing));
}

#[test]
fn eof_without_close_is_abnormal() {
    let mut s = server();
    let e = s.receive_eof().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::AbnormalClosure);
    assert_eq!(e.local_close_code(), CloseCode::ABNORMAL);
    assert_eq!(s.state(), State::Closed);
}

// ---- Ping and pong ----

#[test]
fn many_pings_before_a_write_owe_only_the_latest_pong() {
    let mut s = server();
    let mut bytes = Vec::new();
    for i in 0..1000u32 {
        bytes.extend(frame(Role::Client, true, Opcode::Ping, &i.to_be_bytes()));
    }
    let mut at = 0;
    while at < bytes.len() {
        at += s.receive(&mut bytes[at..], T0).unwrap().consumed;
    }
    let (owed, _) = drain(&mut s);
    assert_eq!(owed, frame(Role::Server, true, Opcode::Pong, &999u32.to_be_bytes()));
}

#[test]
fn pings_are_not_answered_when_auto_pong_is_off() {
    let mut s = Connection::open_server(Config::new().auto_pong(false), T0);
    let mut bytes = frame(Role::Client, true, Opcode::Ping, b"x");
    assert!(matches!(s.receive(&mut bytes, T0).unwrap().event, Some(Event::Ping(b"x"))));
    assert_eq!(drain(&mut s).0, b"");
    let mut out = [0; 16];
    let n = s.send_pong(b"x", &mut out).unwrap().len();
    assert_eq!(&out[..n], frame(Role::Server, true, Opcode::Pong, b"x"));
}

#[test]
fn the_application_can_ping_with_a_payload() {
    let mut pair = Pair::new(quiet(), quiet());
    pair.connect();
    pair.command(Side::Client, |c, out, _| c.send_ping(b"are you there", out)).unwrap();
    pair.drive();
    assert!(pair.server.seen.contains(&Seen::Ping(b"are you there".to_vec())));
    assert!(pair.client.seen.contains(&Seen::Pong(b"are you there".to_vec())));
}

// ---- Limits ----

#[test]
fn an_oversized_frame_is_refused_from_its_header() {
    let mut s = Connection::open_server(Config::new().max_frame_size(1000), T0);
    // Only the header of a 2^40-byte frame: refused without any payload.
    let mut bytes = vec![0x82, 0xFF, 0, 0, 0x01, 0, 0, 0, 0, 0, 1, 2, 3, 4];
    let e = s.receive(&mut bytes, T0).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::FrameTooLarge { size: 1 << 40, limit: 1000 });
    assert_eq!(e.close_code(), Some(CloseCode::MESSAGE_TOO_BIG));
}

#[test]
fn a_message_over_the_limit_across_fragments_is_refused() {
    let mut s = Connection::open_server(Config::new().max_message_size(10), T0);
    let mut bytes = frame(Role::Client, false, Opcode::Binary, &[0; 6]);
    bytes.extend(frame(Role::Client, true, Opcode::Continuation, &[0; 6]));
    let (kind, code) = fails_with(&mut s, &bytes);
    // The continuation is charged its payload plus the per-fragment overhead: 6 + 6 + 16.
    assert_eq!((kind, code), (ErrorKind::MessageTooLarge { size: 28, limit: 10 }, Some(1009)));
}

#[test]
fn each_continuation_is_charged_the_fragment_overhead() {
    // Exactly at the limit (payload 6 + 6, one continuation charged 16): accepted.
    let limit = 12 + Config::FRAGMENT_OVERHEAD;
    let mut s = Connection::open_server(Config::new().max_message_size(limit), T0);
    let mut bytes = frame(Role::Client, false, Opcode::Binary, &[1; 6]);
    bytes.extend(frame(Role::Client, true, Opcode::Continuation, &[2; 6]));
    let mut at = 0;
    while at < bytes.len() {
        let r = s.receive(&mut bytes[at..], T0).unwrap();
        assert!(r.event.is_some());
        at += r.consumed;
    }
    // One byte less: refused from the continuation's header.
    let mut s = Connection::open_server(Config::new().max_message_size(limit - 1), T0);
    let mut bytes = frame(Role::Client, false, Opcode::Binary, &[1; 6]);
    bytes.extend(frame(Role::Client, true, Opcode::Continuation, &[2; 6]));
    let (kind, code) = fails_with(&mut s, &bytes);
    assert_eq!(
        (kind, code),
        (ErrorKind::MessageTooLarge { size: limit, limit: limit - 1 }, Some(1009))
    );
    // A message in one frame is charged its payload alone.
    let mut s = Connection::open_server(Config::new().max_message_size(12), T0);
    let mut bytes = frame(Role::Client, true, Opcode::Binary, &[3; 12]);
    assert!(s.receive(&mut bytes, T0).unwrap().event.is_some());
}

#[test]
fn too_many_fragments_are_refused() {
    let mut s = Connection::open_server(Config::new().max_fragments(3), T0);
    let mut bytes = frame(Role::Client, false, Opcode::Binary, b"");
    for _ in 0..5 {
        bytes.extend(frame(Role::Client, false, Opcode::Continuation, b""));
    }
    let (kind, code) = fails_with(&mut s, &bytes);
    assert_eq!((kind, code), (ErrorKind::TooManyFragments { limit: 3 }, Some(1009)));
}

// ---- Misuse ----

#[test]
fn misuse_is_refused_and_changes_nothing() {
    let mut s = Connection::server(Config::new(), T0);
    let mut out = [0; 256];
    assert_eq!(s.send_text("x", &mut out), Err(UsageError::NotOpen));
    assert_eq!(
        s.accept(&wsmachine::Accept::new(), &mut out, T0),
        Err(UsageError::NoPendingRequest)
    );
    let mut s = server();
    assert_eq!(s.close(CloseCode(1005), "", &mut out, T0), Err(UsageError::InvalidCloseCode(1005)));
    assert_eq!(s.close(CloseCode(2000), "", &mut out, T0), Err(UsageError::InvalidCloseCode(2000)));
    assert_eq!(
        s.send_ping(&[0; 126], &mut out),
        Err(UsageError::ControlPayloadTooLong { len: 126 })
    );
    assert_eq!(
        s.send_binary(&[0; 300], &mut out),
        Err(UsageError::BufferTooSmall { required: 304 })
    );
    assert_eq!(s.state(), State::Open);
    let _unsent = s.close(CloseCode::NORMAL, "", &mut out, T0).unwrap();
    assert_eq!(s.send_text("x", &mut out), Err(UsageError::Closing));
    assert_eq!(s.close(CloseCode::NORMAL, "", &mut out, T0), Err(UsageError::Closing));
    let mut c = client();
    assert_eq!(c.send_header(MessageKind::Binary, 3, &mut out), Err(UsageError::WrongRole));
}

#[test]
fn owed_bytes_go_out_ahead_of_a_command_frame() {
    let mut s = server();
    let mut ping = frame(Role::Client, true, Opcode::Ping, b"p");
    let _ = s.receive(&mut ping, T0).unwrap();
    let mut out = [0; 64];
    assert_eq!(s.encoded_len(1), 3 + 3);
    let n = s.send_text("x", &mut out).unwrap().len();
    let mut expected = frame(Role::Server, true, Opcode::Pong, b"p");
    expected.extend(frame(Role::Server, true, Opcode::Text, b"x"));
    assert_eq!(&out[..n], expected);
    assert_eq!(drain(&mut s).0, b"");
}

#[test]
fn a_server_can_write_a_header_for_a_vectored_write() {
    let mut s = server();
    let mut out = [0; 16];
    let n = s.send_header(MessageKind::Binary, 70_000, &mut out).unwrap().len();
    assert_eq!(&out[..n], &[0x82, 0x7F, 0, 0, 0, 0, 0, 1, 0x11, 0x70]);
}

// ---- Timers ----

#[test]
fn keepalive_pings_and_a_silent_peer_is_declared_dead() {
    let keepalive = Config::new()
        .keepalive_interval(Some(Duration::from_secs(5)))
        .pong_timeout(Duration::from_secs(3));
    let mut pair = Pair::new(Config::new(), keepalive.clone());
    pair.connect();
    // An answering peer: pings go out, pongs come back, nothing fails.
    pair.drive_until(T0 + Duration::from_secs(30));
    let pings = pair.client.seen.iter().filter(|s| matches!(s, Seen::Ping(_))).count();
    assert!(pings >= 4, "{pings} keepalive pings");
    assert!(pair.server.errors.is_empty());
    assert_eq!(pair.server.conn.state(), State::Open);

    // A silent peer: the client stops answering.
    let mut s = Connection::open_server(keepalive, T0);
    assert_eq!(s.poll_timeout(), Some(T0 + Duration::from_secs(5)));
    s.handle_timeout(T0 + Duration::from_secs(5)).unwrap();
    let (ping, _) = drain(&mut s);
    assert_eq!(frames(Role::Server, &ping)[0].0, Opcode::Ping);
    assert_eq!(s.poll_timeout(), Some(T0 + Duration::from_secs(8)));
    s.handle_timeout(T0 + Duration::from_secs(7)).unwrap();
    let e = s.handle_timeout(T0 + Duration::from_secs(8)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PongTimeout);
    assert_eq!(e.local_close_code(), CloseCode::ABNORMAL);
    assert_eq!(drain(&mut s), (Vec::new(), true));
    assert_eq!(s.state(), State::Closed);
}

#[test]
fn by_default_a_silent_peer_is_pinged_at_20_s_and_dead_at_40_s() {
    // The default keepalive (as Python websockets): a connection that hears nothing is
    // pinged after 20 s and declared dead 20 s later, so a peer that opened a connection and
    // went silent cannot hold it.
    let mut s = Connection::open_server(Config::new(), T0);
    assert_eq!(s.poll_timeout(), Some(T0 + Duration::from_secs(20)));
    s.handle_timeout(T0 + Duration::from_secs(20)).unwrap();
    let (ping, _) = drain(&mut s);
    assert_eq!(frames(Role::Server, &ping)[0].0, Opcode::Ping);
    assert_eq!(s.poll_timeout(), Some(T0 + Duration::from_secs(40)));
    let e = s.handle_timeout(T0 + Duration::from_secs(40)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PongTimeout);
    // No close frame to a dead peer: the transport is closed.
    assert_eq!(drain(&mut s), (Vec::new(), true));
    assert_eq!(s.state(), State::Closed);
    // Off when asked.
    let quiet = Connection::open_server(Config::new().keepalive_interval(None), T0);
    assert_eq!(quiet.poll_timeout(), None);
}

#[test]
fn handshake_deadline_closes_a_client_that_never_finishes_its_request() {
    let config = Config::new().handshake_timeout(Some(Duration::from_secs(10)));
    let mut s = Connection::server(config, T0);
    let mut partial = b"GET / HTTP/1.1\r\nHost: x\r\n".to_vec();
    assert!(s.receive(&mut partial, T0).unwrap().event.is_none());
    assert_eq!(s.poll_timeout(), Some(T0 + Duration::from_secs(10)));
    s.handle_timeout(T0 + Duration::from_secs(9)).unwrap();
    let e = s.handle_timeout(T0 + Duration::from_secs(10)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::HandshakeTimeout);
    assert_eq!(drain(&mut s), (Vec::new(), true));
    assert_eq!(s.state(), State::Closed);
}

#[test]
fn close_deadline_ends_an_unanswered_close() {
    let mut s = server();
    let mut out = [0; 64];
    let _unsent = s.close(CloseCode::NORMAL, "", &mut out, T0).unwrap();
    assert_eq!(s.poll_timeout(), Some(T0 + Duration::from_secs(10)));
    let e = s.handle_timeout(T0 + Duration::from_secs(10)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::CloseTimeout);
    assert_eq!(drain(&mut s), (Vec::new(), true));
}

#[test]
fn a_client_whose_server_never_closes_tcp_closes_it_at_the_deadline_cleanly() {
    let mut c = client();
    let mut out = [0; 64];
    let _unsent = c.close(CloseCode::NORMAL, "", &mut out, T0).unwrap();
    let mut reply = frame(Role::Server, true, Opcode::Close, b"\x03\xe8");
    let _ = c.receive(&mut reply, T0).unwrap();
    assert!(c.is_close_handshake_complete());
    assert_eq!(drain(&mut c), (Vec::new(), false), "waits for the server");
    c.handle_timeout(T0 + Duration::from_secs(10)).unwrap();
    assert_eq!(drain(&mut c), (Vec::new(), true));
}

#[test]
fn idle_timeout_closes_with_going_away() {
    let mut s = Connection::open_server(quiet().idle_timeout(Some(Duration::from_secs(60))), T0);
    // Traffic pushes the deadline out.
    let mut bytes = frame(Role::Client, true, Opcode::Text, b"hi");
    let later = T0 + Duration::from_secs(30);
    let _ = s.receive(&mut bytes, later).unwrap();
    assert_eq!(s.poll_timeout(), Some(later + Duration::from_secs(60)));
    let e = s.handle_timeout(later + Duration::from_secs(60)).unwrap_err();
    assert_eq!((e.kind(), e.close_code()), (ErrorKind::IdleTimeout, Some(CloseCode::GOING_AWAY)));
    // A polite close, not a failure: the server waits for the reply, then closes TCP.
    let (bytes, close) = drain(&mut s);
    assert_eq!((close_code_sent(Role::Server, &bytes), close), (Some(1001), false));
    assert_eq!(s.state(), State::Closing);
    let mut reply = frame(Role::Client, true, Opcode::Close, &1001u16.to_be_bytes());
    assert!(matches!(s.receive(&mut reply, later).unwrap().event, Some(Event::Close(_))));
    assert_eq!(drain(&mut s), (Vec::new(), true));
}

#[test]
fn handle_timeout_early_or_twice_does_nothing() {
    let mut s =
        Connection::open_server(Config::new().keepalive_interval(Some(Duration::from_secs(5))), T0);
    s.handle_timeout(T0).unwrap();
    s.handle_timeout(T0).unwrap();
    assert_eq!(drain(&mut s).0, b"");
    s.handle_timeout(T0 + Duration::from_secs(5)).unwrap();
    s.handle_timeout(T0 + Duration::from_secs(5)).unwrap();
    let (pings, _) = drain(&mut s);
    let pings = frames(Role::Server, &pings);
    assert_eq!(pings.len(), 1, "one ping: {pings:?}");
    assert_eq!(pings[0].1.len(), 4);
}

#[test]
fn an_idle_connection_is_small() {
    // Everything a connection holds inline. It allocates only for owed bytes (at most one
    // control frame, reused), during the opening handshake, for a client's masking-key
    // stream, and for the close frames once it closes.
    let size = std::mem::size_of::<Connection>();
    assert!(size <= 512, "Connection is {size} bytes");
}

// ---- Every timeout on the simulated link ----

#[test]
fn pair_a_server_declares_a_silent_client_dead_at_the_pong_deadline() {
    let keepalive = Config::new()
        .keepalive_interval(Some(Duration::from_secs(20)))
        .pong_timeout(Duration::from_secs(5));
    let mut pair = Pair::new(Config::new(), keepalive);
    pair.connect();
    pair.link.blackhole = Some(Side::Client);
    // The server last heard from the client when the client's last bytes arrived.
    let connected = Instant::from_micros(pair.now.as_micros() - 10_000);
    pair.drive();
    let kinds: Vec<_> = pair.server.errors.iter().map(|e| e.kind()).collect();
    assert_eq!(kinds, [ErrorKind::PongTimeout]);
    // The ping went out 20 s after the last traffic; the verdict 5 s later.
    let closed = pair.server.closed_transport_at.unwrap();
    assert_eq!(closed - connected, Duration::from_secs(25));
    assert_eq!(pair.server.conn.state(), State::Closed);
}

#[test]
fn pair_a_client_closes_tcp_itself_when_its_close_is_never_answered() {
    let mut pair = Pair::new(Config::new(), Config::new());
    pair.connect();
    pair.link.blackhole = Some(Side::Server);
    let start = pair.now;
    pair.command(Side::Client, |c, out, now| c.close(CloseCode::NORMAL, "", out, now)).unwrap();
    pair.drive();
    let kinds: Vec<_> = pair.client.errors.iter().map(|e| e.kind()).collect();
    assert_eq!(kinds, [ErrorKind::CloseTimeout]);
    assert_eq!(pair.client.closed_transport_at.unwrap() - start, Duration::from_secs(10));
    assert_eq!(pair.client.conn.state(), State::Closed);
}

#[test]
fn pair_the_idle_timeout_closes_with_going_away_and_completes_the_handshake() {
    let idle = quiet().idle_timeout(Some(Duration::from_secs(60)));
    let mut pair = Pair::new(quiet(), idle);
    pair.connect();
    pair.drive();
    assert_eq!(
        pair.server.errors.iter().map(|e| e.kind()).collect::<Vec<_>>(),
        [ErrorKind::IdleTimeout]
    );
    assert_eq!(pair.client.closes()[0].code(), CloseCode::GOING_AWAY);
    assert!(pair.server.closed_transport_at.is_some());
    assert_eq!(pair.client.conn.state(), State::Closed);
    assert_eq!(pair.client.eof_was_clean, Some(true), "the client answered the close");
}

#[test]
fn pair_the_handshake_deadline_closes_a_client_that_never_sends_its_request() {
    let deadline = Config::new().handshake_timeout(Some(Duration::from_secs(10)));
    let mut pair = Pair::new(deadline.clone(), deadline);
    pair.link.blackhole = Some(Side::Client);
    let start = pair.now;
    pair.drive();
    assert_eq!(
        pair.server.errors.iter().map(|e| e.kind()).collect::<Vec<_>>(),
        [ErrorKind::HandshakeTimeout]
    );
    assert_eq!(pair.server.closed_transport_at.unwrap() - start, Duration::from_secs(10));
    // The client's own deadline fires too: it never heard back.
    assert_eq!(
        pair.client.errors.iter().map(|e| e.kind()).collect::<Vec<_>>(),
        [ErrorKind::HandshakeTimeout]
    );
    assert_eq!(pair.client.conn.state(), State::Closed);
}
