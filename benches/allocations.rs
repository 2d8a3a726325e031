//! Allocations per message on the data paths, counted with a counting global allocator.
//!
//! Run with `cargo bench --bench allocations`. Each scenario runs once to warm up (buffers
//! reach their working size), then again while every allocation and reallocation is counted.
//! wsmachine must make none per message on its receive and send paths; the run fails if it
//! does. The peers' counts are printed beside it for comparison.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::*;
use wsmachine::{Config, Connection, Event, Instant, Message, MessageKind, RecvBuffer, Transmit};

/// Counts allocations and reallocations, then defers to the system allocator.
struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every method forwards to `System` with the caller's arguments unchanged, so this
// allocator upholds exactly the contract `System` does; the counter is a relaxed atomic.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: forwarded unchanged (see the impl).
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: forwarded unchanged (see the impl).
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: forwarded unchanged (see the impl).
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged (see the impl).
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations per message of `run`, which handles `messages` messages per call, measured on
/// its second call.
fn per_message(messages: usize, mut run: impl FnMut()) -> f64 {
    run();
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    run();
    let after = ALLOCATIONS.load(Ordering::Relaxed);
    (after - before) as f64 / messages as f64
}

const NOW: Instant = Instant::from_micros(0);

fn server(frame: usize) -> Connection {
    let config = Config::new()
        .receive_buffer_size(frame + 14)
        .max_frame_size(64 << 20)
        .max_message_size(64 << 20)
        .max_fragments(1 << 20);
    Connection::open_server(config, NOW)
}

/// wsmachine receiving whole messages: returns allocations per message.
fn wsmachine_receive(opcode: u8, size: usize) -> f64 {
    let payload = if opcode == 1 { mixed_text(size).into_bytes() } else { binary(size) };
    let count = messages_for(size).max(64);
    let pristine = masked_messages(opcode, &payload, count).bytes;
    let mut work = pristine.clone();
    let mut conn = server(size);
    per_message(count, || {
        work.copy_from_slice(&pristine);
        let mut at = 0;
        while at < work.len() {
            let received = conn.receive(&mut work[at..], NOW).expect("valid");
            at += received.consumed;
            match received.event {
                Some(Event::Message(Message::Binary(b))) => assert_eq!(b, &payload[..]),
                Some(Event::Message(Message::Text(t))) => assert_eq!(t.as_bytes(), &payload[..]),
                other => panic!("unexpected {other:?}"),
            }
        }
    })
}

/// wsmachine receiving a 64 KiB text message in 64 fragments, as validated pieces.
fn wsmachine_fragmented() -> f64 {
    let text = mixed_text(65536);
    let pristine = fragmented_text(&text, 64);
    let mut work = pristine.clone();
    let mut conn = server(65536);
    per_message(1, || {
        work.copy_from_slice(&pristine);
        let mut at = 0;
        let mut len = 0;
        while at < work.len() {
            let received = conn.receive(&mut work[at..], NOW).expect("valid");
            at += received.consumed;
            match received.event {
                Some(Event::Fragment(f)) => len += f.payload.len(),
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(len, text.len());
    })
}

/// wsmachine receiving 64 KiB text messages through a 4 KiB buffer, the way a driver does:
/// read what fits into a `RecvBuffer`, take events until it needs more.
fn wsmachine_pieces() -> f64 {
    let text = mixed_text(65536);
    let count = 8;
    let wire = masked_messages(1, text.as_bytes(), count).bytes;
    let mut conn = Connection::open_server(Config::new().receive_buffer_size(4096), NOW);
    let mut input = RecvBuffer::new(vec![0; 4096]);
    per_message(count, || {
        let (mut read, mut done) = (0, 0);
        while done < count {
            read += input.push(&wire[read..]);
            while let Some(event) = input.next_event(&mut conn, NOW).expect("valid") {
                match event {
                    Event::Fragment(f) => {
                        black_box(f.payload);
                        done += usize::from(f.is_last);
                    }
                    other => panic!("unexpected {other:?}"),
                }
            }
        }
    })
}

/// wsmachine sending whole messages into a reused buffer.
fn wsmachine_send(client: bool, kind: MessageKind, size: usize) -> f64 {
    let text = mixed_text(size);
    let count = messages_for(size).max(64);
    let mut conn = if client {
        Connection::open_client(Config::new(), [3; 32], NOW)
    } else {
        Connection::open_server(Config::new(), NOW)
    };
    let mut out = vec![0; size + 14];
    per_message(count, || {
        for _ in 0..count {
            let n = match kind {
                MessageKind::Text => conn.send_text(&text, &mut out),
                MessageKind::Binary => conn.send_binary(text.as_bytes(), &mut out),
            };
            let _unsent = black_box(n.expect("room"));
        }
    })
}

/// wsmachine as an echo server with pings mixed in: receive, auto-pong, echo.
fn wsmachine_echo_with_pings() -> f64 {
    let mut wire = Vec::new();
    let count = 256;
    for n in 0..count {
        wire.extend(masked_frame(true, 1, "hello, wörld".as_bytes(), key(n)));
        if n % 4 == 0 {
            wire.extend(masked_frame(true, 9, b"ping", key(n + 1)));
        }
    }
    let mut work = wire.clone();
    let mut conn = server(1024);
    let mut out = vec![0; 1024];
    per_message(count, || {
        work.copy_from_slice(&wire);
        let mut at = 0;
        while at < work.len() {
            let received = conn.receive(&mut work[at..], NOW).expect("valid");
            at += received.consumed;
            match received.event {
                Some(Event::Message(Message::Text(t))) => {
                    let _unsent = black_box(conn.send_text(t, &mut out).expect("room"));
                }
                Some(Event::Ping(_)) => {}
                other => panic!("unexpected {other:?}"),
            }
            while let Some(Transmit::Bytes(n)) = conn.poll_transmit(&mut out) {
                black_box(&out[..n]);
            }
        }
    })
}

fn tungstenite_receive(opcode: u8, size: usize) -> f64 {
    let payload = if opcode == 1 { mixed_text(size).into_bytes() } else { binary(size) };
    let count = messages_for(size).max(64);
    let pristine = masked_messages(opcode, &payload, count).bytes;
    let mut ws = tungstenite::WebSocket::from_raw_socket(
        MemStream::new(pristine),
        tungstenite::protocol::Role::Server,
        None,
    );
    per_message(count, || {
        for _ in 0..count {
            black_box(ws.read().expect("valid"));
        }
    })
}

fn tungstenite_send(size: usize) -> f64 {
    let count = messages_for(size).max(64);
    let bytes = tungstenite::Bytes::from(binary(size));
    let mut ws = tungstenite::WebSocket::from_raw_socket(
        MemStream::new(Vec::new()),
        tungstenite::protocol::Role::Client,
        None,
    );
    per_message(count, || {
        for _ in 0..count {
            ws.write(tungstenite::Message::Binary(bytes.clone())).expect("write");
        }
        ws.flush().expect("flush");
    })
}

fn fastwebsockets_receive(opcode: u8, size: usize) -> f64 {
    let payload = if opcode == 1 { mixed_text(size).into_bytes() } else { binary(size) };
    let count = messages_for(size).max(64);
    let pristine = masked_messages(opcode, &payload, count).bytes;
    let rt = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
    let mut ws = fastwebsockets::WebSocket::after_handshake(
        MemStream::new(pristine),
        fastwebsockets::Role::Server,
    );
    per_message(count, || {
        rt.block_on(async {
            for _ in 0..count {
                black_box(ws.read_frame().await.expect("valid").payload.len());
            }
        })
    })
}

fn fastwebsockets_send(size: usize) -> f64 {
    let count = messages_for(size).max(64);
    let payload = binary(size);
    let rt = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
    let mut ws = fastwebsockets::WebSocket::after_handshake(
        MemStream::new(Vec::new()),
        fastwebsockets::Role::Client,
    );
    per_message(count, || {
        rt.block_on(async {
            for _ in 0..count {
                let frame =
                    fastwebsockets::Frame::binary(fastwebsockets::Payload::Borrowed(&payload));
                ws.write_frame(frame).await.expect("write");
            }
        })
    })
}

fn main() {
    // `cargo bench` passes `--bench`; this program takes no options.
    let mut failures = Vec::new();
    println!("{:<44} {:>12} {:>12} {:>15}", "path", "wsmachine", "tungstenite", "fastwebsockets");
    let mut row = |name: &str, ours: f64, peers: Option<(f64, f64)>| {
        let (t, f) = match peers {
            Some((t, f)) => (format!("{t:.2}"), format!("{f:.2}")),
            None => ("-".into(), "-".into()),
        };
        println!("{name:<44} {ours:>12.2} {t:>12} {f:>15}");
        if ours != 0.0 {
            failures.push(name.to_owned());
        }
    };
    for size in [16, 1024, 65536] {
        row(
            &format!("receive binary {size} B (server, whole)"),
            wsmachine_receive(2, size),
            Some((tungstenite_receive(2, size), fastwebsockets_receive(2, size))),
        );
    }
    for size in [16, 1024, 65536] {
        row(
            &format!("receive text {size} B (server, whole)"),
            wsmachine_receive(1, size),
            Some((tungstenite_receive(1, size), fastwebsockets_receive(1, size))),
        );
    }
    row("receive text 64 KiB in 64 fragments (pieces)", wsmachine_fragmented(), None);
    row("receive text 64 KiB via a 4 KiB buffer", wsmachine_pieces(), None);
    for size in [16, 1024, 65536] {
        row(
            &format!("send binary {size} B (client, masked)"),
            wsmachine_send(true, MessageKind::Binary, size),
            Some((tungstenite_send(size), fastwebsockets_send(size))),
        );
    }
    row("send text 1024 B (server)", wsmachine_send(false, MessageKind::Text, 1024), None);
    row("echo server with auto-pongs", wsmachine_echo_with_pings(), None);
    #[cfg(feature = "deflate")]
    {
        for reset in [false, true] {
            let takeover = if reset { "no context takeover" } else { "context takeover" };
            let (receive, send) = deflate::compressed(reset);
            row(&format!("receive compressed text 1 KiB ({takeover})"), receive, None);
            row(&format!("send compressed text 1 KiB ({takeover})"), send, None);
        }
    }
    if failures.is_empty() {
        println!("wsmachine: 0 allocations per message on every path");
    } else {
        eprintln!("wsmachine allocates per message on: {failures:?}");
        std::process::exit(1);
    }
}

#[cfg(feature = "deflate")]
mod deflate {
    use super::*;
    use common::deflate::negotiated_at;

    /// Allocations per message of a server receiving, and a client sending, compressed text
    /// messages of 1 KiB (feature `deflate`), with or without the client's context takeover.
    pub fn compressed(reset: bool) -> (f64, f64) {
        let text = mixed_text(1024);
        let count = 256;
        let (mut client, mut server) = negotiated_at(1, reset);
        let mut out = vec![0; client.encoded_len(text.len())];
        let mut wire = Vec::new();
        let mut frames = |client: &mut Connection, wire: &mut Vec<u8>| {
            wire.clear();
            for _ in 0..count {
                wire.extend_from_slice(client.send_text(&text, &mut out).unwrap().bytes(&out));
            }
        };
        // Two batches of frames made beforehand, in the order the server must read them.
        let mut first = Vec::new();
        frames(&mut client, &mut first);
        frames(&mut client, &mut wire);
        let mut batches = [first, wire].into_iter();
        let mut space = vec![0; 4096];
        let receive = per_message(count, || {
            let mut work = batches.next().expect("two batches");
            let mut at = 0;
            while at < work.len() {
                let received = server.receive_with(&mut work[at..], &mut space, NOW).unwrap();
                at += received.consumed;
                assert!(matches!(received.event, Some(Event::Message(Message::Text(_)))));
            }
        });
        let mut out = vec![0; client.encoded_len(text.len())];
        let send = per_message(count, || {
            for _ in 0..count {
                black_box(client.send_text(&text, &mut out).expect("room").len());
            }
        });
        (receive, send)
    }
}
