//! Encode once, send to many: a [`SharedMessage`] reaches every connection as the same
//! bytes (referenced, never copied per recipient); with permessage-deflate, connections that
//! compress without context takeover share one compressed encoding per window, and one that
//! keeps context takeover compresses the message for itself.

mod common;

use common::pair::{Pair, Seen, Side};
use wsmachine::{
    Config, Encoding, MessageKind, OwnedMessage, SharedMessage, SharedSend, UsageError,
};

/// The default configuration without keepalive: the pairs' `drive` runs until nothing is
/// left to do, and keepalive pings would never let an open connection settle.
fn config() -> Config {
    Config::new().keepalive_interval(None)
}

/// `n` open pairs (framing only) with the default configuration.
fn open_pairs(n: usize) -> Vec<Pair> {
    (0..n).map(|_| Pair::open(config(), config())).collect()
}

#[test]
fn a_shared_message_is_one_frame_for_every_connection() {
    let message = SharedMessage::text("to everyone");
    assert_eq!((message.kind(), message.payload()), (MessageKind::Text, &b"to everyone"[..]));
    let frame = message.frame(Encoding::Plain).unwrap();
    assert_eq!(frame, [&[0x81, 11][..], b"to everyone"].concat(), "an unmasked server frame");
    let mut pairs = open_pairs(3);
    for pair in &mut pairs {
        let sent = pair.send_shared(&message).unwrap();
        assert_eq!(sent, SharedSend::Frame { written: sent.written(), encoding: Encoding::Plain });
        assert_eq!(sent.written().len(), 0, "nothing owed: the frame is all");
        pair.drive();
        assert_eq!(pair.client.messages(), [OwnedMessage::Text("to everyone".into())]);
    }
    assert_eq!(message.encodings(), 1, "one copy of the payload for all of them");
    let binary = SharedMessage::binary(&[0; 70_000]);
    assert_eq!(binary.frame(Encoding::Plain).unwrap()[..2], [0x82, 127]);
    let mut pair = Pair::open(config(), config());
    pair.send_shared(&binary).unwrap();
    pair.drive();
    assert_eq!(pair.client.messages(), [OwnedMessage::Binary(vec![0; 70_000])]);
}

#[test]
fn owed_control_frames_go_ahead_of_the_shared_frame() {
    let mut pair = Pair::open(config(), config());
    pair.link.latency = wsmachine::Duration::from_micros(0);
    pair.command(Side::Client, |c, out, _| c.send_ping(b"p", out)).unwrap();
    // One round: the server takes the ping and owes a pong, not yet written.
    pair.step();
    let sent = pair.send_shared(&SharedMessage::text("after the pong")).unwrap();
    assert_eq!(sent.written().len(), 3, "the pong, written by the command");
    pair.drive();
    assert_eq!(pair.client.messages(), [OwnedMessage::Text("after the pong".into())]);
    let pong = pair.client.seen.iter().position(|s| *s == Seen::Pong(b"p".to_vec()));
    let text = pair.client.seen.iter().position(|s| matches!(s, Seen::Message(_)));
    assert!(pong.unwrap() < text.unwrap(), "{:?}", pair.client.seen);
}

#[test]
fn the_rules_of_sending_hold_for_shared_messages() {
    let message = SharedMessage::text("x");
    // A client masks each frame with its own key: it cannot share one.
    let mut pair = Pair::open(config(), config());
    let mut out = [0; 64];
    assert_eq!(pair.client.conn.send_shared(&message, &mut out), Err(UsageError::WrongRole));
    // Not inside a fragmented message, and not after a close.
    pair.command(Side::Server, |c, out, _| c.send_fragment(MessageKind::Text, b"a", false, out))
        .unwrap();
    assert_eq!(pair.send_shared(&message), Err(UsageError::MessageInProgress));
    let mut pair = Pair::open(config(), config());
    pair.command(Side::Server, |c, out, now| c.close(wsmachine::CloseCode::NORMAL, "", out, now))
        .unwrap();
    assert_eq!(pair.send_shared(&message), Err(UsageError::Closing));
}

#[cfg(feature = "deflate")]
mod compressed {
    use super::*;
    use wsmachine::DeflateConfig;

    /// A pair that negotiated compression: the client asks for `server_bits` of window and,
    /// with `takeover`, lets the server keep its context.
    fn compressing_pair(server_bits: u8, takeover: bool) -> Pair {
        let deflate = DeflateConfig::new()
            .threshold(0)
            .server_max_window_bits(server_bits)
            .server_no_context_takeover(!takeover);
        let mut pair = Pair::new(config().deflate(deflate), config().deflate(deflate));
        pair.connect();
        let params = pair.server.conn.compression().expect("negotiated");
        assert_eq!(params.server_max_window_bits, server_bits);
        assert_eq!(params.server_no_context_takeover, !takeover);
        pair
    }

    #[test]
    fn one_compressed_encoding_per_window_shared_by_every_connection_with_it() {
        let text = "a chat message that repeats, repeats, repeats itself ".repeat(40);
        let message = SharedMessage::text(&text);
        let mut pairs: Vec<Pair> =
            [12, 12, 12, 10].into_iter().map(|bits| compressing_pair(bits, false)).collect();
        for pair in &mut pairs {
            let sent = pair.send_shared(&message).unwrap();
            assert!(
                matches!(sent, SharedSend::Frame { encoding: Encoding::Deflate { .. }, .. }),
                "{sent:?}"
            );
            pair.drive();
            assert_eq!(pair.client.messages(), [OwnedMessage::Text(text.clone())]);
            assert!(pair.client.errors.is_empty());
        }
        // The plain frame, one for 12 bits and one for 10: three copies in all, for four
        // recipients (and for a thousand).
        assert_eq!(message.encodings(), 3);
        let compressed = message.frame(Encoding::Deflate { window_bits: 12 }).unwrap();
        assert_eq!(compressed[0], 0x80 | 0x40 | 0x01, "FIN, RSV1, text");
        assert!(compressed.len() < text.len() / 4, "compressed: {} bytes", compressed.len());
        // A second message through the same connections: each compressor was reset (no
        // context takeover), so the shared bytes decode on every one of them.
        let again = SharedMessage::text(&text);
        for pair in &mut pairs {
            pair.send_shared(&again).unwrap();
            pair.drive();
            assert_eq!(pair.client.messages().len(), 2);
        }
        assert_eq!(
            again.frame(Encoding::Deflate { window_bits: 12 }),
            Some(compressed),
            "the same bytes"
        );
    }

    #[test]
    fn a_connection_with_context_takeover_compresses_for_itself() {
        let text = "context carries over from message to message ".repeat(20);
        let message = SharedMessage::text(&text);
        let mut pair = compressing_pair(15, true);
        for _ in 0..3 {
            let sent = pair.send_shared(&message).unwrap();
            assert!(matches!(sent, SharedSend::Encoded(_)), "{sent:?}");
            pair.drive();
        }
        assert_eq!(pair.client.messages(), vec![OwnedMessage::Text(text); 3]);
        assert_eq!(message.encodings(), 1, "nothing shared was made for it");
    }

    #[test]
    fn below_the_threshold_the_plain_frame_is_shared() {
        let deflate = DeflateConfig::new().threshold(100);
        let mut pair = Pair::new(config().deflate(deflate), config().deflate(deflate));
        pair.connect();
        let message = SharedMessage::text("short");
        let sent = pair.send_shared(&message).unwrap();
        assert!(matches!(sent, SharedSend::Frame { encoding: Encoding::Plain, .. }));
        pair.drive();
        assert_eq!(pair.client.messages(), [OwnedMessage::Text("short".into())]);
    }
}
