//! wsmachine against tungstenite and fastwebsockets on identical bytes, with the physical
//! baselines beside them. Run with `cargo bench --bench compare`; the plot and the README's
//! table are drawn from criterion's JSON by `scripts/plot_bench.py`.
//!
//! # What each timed iteration does
//!
//! - `receive/{binary,text}/SIZE`: starts from the same pristine buffer of masked client
//!   frames (one message per frame, about 256 KiB of payload, at least one message) and
//!   decodes every message in it as a server would, ending with each payload borrowed (or, for
//!   the peers, owned as their API hands it out). Every function first moves the wire bytes
//!   into the buffer the decoder works in, as a socket read would: `copy_from_slice` into the
//!   caller's buffer for wsmachine and the baselines (wsmachine unmasks in place, so the
//!   pristine bytes must be copied anyway), the in-memory `Read`/`AsyncRead` copy into the
//!   peer's own read buffer for tungstenite and fastwebsockets. `memcpy` is that copy alone,
//!   `xor_in_place` that copy plus unmasking each payload in place (no parsing): the floor
//!   and the practical limit.
//! - `send/binary/SIZE`: the client role, masking with a fresh key per frame, encodes about
//!   256 KiB of messages from one immutable payload into a reused buffer (wsmachine: the
//!   caller's `out`; the peers: their own write buffers, flushed into a stream that discards).
//!   `copy_and_mask` writes each payload into place masked, in one pass (no headers, no
//!   key generation).
//! - `handshake/server`: a Chromium-like request (13 headers) to the `101` response in an
//!   output buffer, starting from the pristine request bytes each time.
//! - `fragmented/text/65536`: one text message of mixed UTF-8 in 64 masked fragments.
//!   wsmachine hands out validated pieces (`wsmachine`) or, with its `Reassembler`, the whole
//!   owned message (`wsmachine_reassembled`); the peers reassemble it.
//!
//! - `receive_deflate/text/SIZE` and `send_deflate/text/SIZE` (feature `deflate`): a server
//!   receiving, and a client sending, the same text compressed with permessage-deflate as
//!   negotiated with the default settings (level 1, 12-bit client window; the client without
//!   context takeover, so every message is compressed on its own). `zlib_rs` is the backend
//!   alone on the same bytes: inflating each message's payload with its tail, or deflating
//!   each payload with a sync flush and a reset (`zlib_rs_utf8`: inflating, then validating
//!   each message as UTF-8 once, as RFC 6455 requires); `miniz_oxide` the other `no_std`
//!   backend doing the same inflate or deflate; `yawc` is yawc 0.5 on the same backend
//!   (flate2 over zlib-rs) with the same parameters, over an in-memory stream.
//!
//! Correctness is checked once per benchmark, outside the timed loop: the decoded payloads
//! equal the inputs and the encoded frames decode to them, so no function measures a no-op.

mod common;

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use tokio::runtime::Runtime;

use common::*;
use wsmachine::{Accept, Config, Connection, Event, Instant, Message, Reassembler};

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_current_thread().build().expect("runtime")
}

/// A server configuration under which every benchmark frame comes out whole (the zero-copy
/// path) and no limit is in the way.
fn server_config(largest_frame: usize) -> Config {
    Config::new()
        .receive_buffer_size(largest_frame + 14)
        .max_frame_size(64 << 20)
        .max_message_size(64 << 20)
        .max_fragments(1 << 20)
}

fn tungstenite_config() -> tungstenite::protocol::WebSocketConfig {
    // The defaults (128 KiB read and write buffers, 64 MiB messages) fit every benchmark.
    tungstenite::protocol::WebSocketConfig::default()
}

// ---------------------------------------------------------------------------------------------
// receive

/// Decodes every message of `work` (a server receiving), calling `seen` on each payload.
fn wsmachine_receive(conn: &mut Connection, work: &mut [u8], mut seen: impl FnMut(&[u8])) {
    let now = Instant::from_micros(0);
    let mut at = 0;
    while at < work.len() {
        let received = conn.receive(&mut work[at..], now).expect("valid frames");
        at += received.consumed;
        match received.event {
            Some(Event::Message(Message::Binary(b))) => seen(b),
            Some(Event::Message(Message::Text(t))) => seen(t.as_bytes()),
            other => panic!("unexpected {other:?}"),
        }
    }
}

fn tungstenite_receive(
    ws: &mut tungstenite::WebSocket<MemStream>,
    count: usize,
    mut seen: impl FnMut(&[u8]),
) {
    ws.get_mut().rewind();
    for _ in 0..count {
        match ws.read().expect("valid frames") {
            tungstenite::Message::Binary(b) => seen(&b),
            tungstenite::Message::Text(t) => seen(t.as_bytes()),
            other => panic!("unexpected {other:?}"),
        }
    }
}

fn fastwebsockets_receive(
    rt: &Runtime,
    ws: &mut fastwebsockets::WebSocket<MemStream>,
    count: usize,
    mut seen: impl FnMut(&[u8]),
) {
    rt.block_on(async {
        for _ in 0..count {
            let frame = ws.read_frame().await.expect("valid frames");
            assert!(frame.fin);
            seen(&frame.payload);
        }
    });
}

fn receive(c: &mut Criterion) {
    for (kind, opcode) in [("binary", 2u8), ("text", 1u8)] {
        for size in SIZES {
            let payload = match opcode {
                1 => mixed_text(size).into_bytes(),
                _ => binary(size),
            };
            let count = messages_for(size);
            let wire = masked_messages(opcode, &payload, count);
            let pristine = wire.bytes.clone();

            let mut group = c.benchmark_group(format!("receive/{kind}/{size}"));
            group.throughput(Throughput::Bytes((size * count) as u64));

            // wsmachine
            let mut conn = Connection::open_server(server_config(size), Instant::from_micros(0));
            let mut work = pristine.clone();
            let mut decoded = 0;
            wsmachine_receive(&mut conn, &mut work, |p| {
                assert_eq!(p, &payload[..]);
                decoded += 1;
            });
            assert_eq!(decoded, count);
            group.bench_function("wsmachine", |b| {
                b.iter(|| {
                    work.copy_from_slice(&pristine);
                    wsmachine_receive(&mut conn, &mut work, |p| {
                        black_box(p);
                    });
                })
            });

            // tungstenite
            let mut ws = tungstenite::WebSocket::from_raw_socket(
                MemStream::new(pristine.clone()),
                tungstenite::protocol::Role::Server,
                Some(tungstenite_config()),
            );
            let mut decoded = 0;
            tungstenite_receive(&mut ws, count, |p| {
                assert_eq!(p, &payload[..]);
                decoded += 1;
            });
            assert_eq!(decoded, count);
            group.bench_function("tungstenite", |b| {
                b.iter(|| {
                    tungstenite_receive(&mut ws, count, |p| {
                        black_box(p);
                    })
                })
            });

            // fastwebsockets
            let rt = runtime();
            let mut ws = fastwebsockets::WebSocket::after_handshake(
                MemStream::new(pristine.clone()),
                fastwebsockets::Role::Server,
            );
            let mut decoded = 0;
            fastwebsockets_receive(&rt, &mut ws, count, |p| {
                assert_eq!(p, &payload[..]);
                decoded += 1;
            });
            assert_eq!(decoded, count);
            group.bench_function("fastwebsockets", |b| {
                b.iter(|| {
                    fastwebsockets_receive(&rt, &mut ws, count, |p| {
                        black_box(p);
                    })
                })
            });

            // Baselines.
            let mut work = pristine.clone();
            for (range, key) in &wire.payloads {
                xor_payload(&mut work[range.clone()], *key);
                assert_eq!(&work[range.clone()], &payload[..]);
            }
            group.bench_function("xor_in_place", |b| {
                b.iter(|| {
                    work.copy_from_slice(&pristine);
                    for (range, key) in &wire.payloads {
                        xor_payload(&mut work[range.clone()], *key);
                    }
                    black_box(&mut work);
                })
            });
            group.bench_function("memcpy", |b| {
                b.iter(|| {
                    work.copy_from_slice(black_box(&pristine));
                    black_box(&mut work);
                })
            });
            group.finish();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// send

fn send(c: &mut Criterion) {
    for size in SIZES {
        let payload = binary(size);
        let count = messages_for(size);
        let mut group = c.benchmark_group(format!("send/binary/{size}"));
        group.throughput(Throughput::Bytes((size * count) as u64));
        let check = |wire: &[u8]| {
            let frames = decode_frames(wire);
            assert_eq!(frames.len(), count);
            assert!(frames.iter().all(|(op, p)| *op == 2 && p == &payload));
        };

        // wsmachine: every frame into one reused output buffer.
        let mut conn = Connection::open_client(Config::new(), [7; 32], Instant::from_micros(0));
        let mut out = vec![0; count * (size + 14)];
        let send_all = |conn: &mut Connection, out: &mut [u8]| {
            let mut at = 0;
            for _ in 0..count {
                at += conn.send_binary(&payload, &mut out[at..]).expect("room").len();
            }
            at
        };
        let n = send_all(&mut conn, &mut out);
        check(&out[..n]);
        group.bench_function("wsmachine", |b| {
            b.iter(|| {
                black_box(send_all(&mut conn, &mut out));
            })
        });

        // tungstenite: buffered writes, one flush per iteration.
        let bytes = tungstenite::Bytes::from(payload.clone());
        let mut ws = tungstenite::WebSocket::from_raw_socket(
            MemStream::new(Vec::new()),
            tungstenite::protocol::Role::Client,
            Some(tungstenite_config()),
        );
        let tungstenite_send = |ws: &mut tungstenite::WebSocket<MemStream>| {
            for _ in 0..count {
                ws.write(tungstenite::Message::Binary(bytes.clone())).expect("write");
            }
            ws.flush().expect("flush");
        };
        ws.get_mut().capture = Some(Vec::new());
        tungstenite_send(&mut ws);
        check(&ws.get_mut().capture.take().unwrap_or_default());
        group.bench_function("tungstenite", |b| {
            b.iter(|| {
                tungstenite_send(&mut ws);
                black_box(ws.get_mut().written);
                ws.get_mut().rewind();
            })
        });

        // fastwebsockets: its frames borrow the payload (`Payload::Borrowed`), the way an
        // application sends from a buffer it keeps.
        let rt = runtime();
        let fast_send = |rt: &Runtime, ws: &mut fastwebsockets::WebSocket<MemStream>| {
            rt.block_on(async {
                for _ in 0..count {
                    let frame =
                        fastwebsockets::Frame::binary(fastwebsockets::Payload::Borrowed(&payload));
                    ws.write_frame(frame).await.expect("write");
                }
            })
        };
        let mut stream = MemStream::new(Vec::new());
        stream.capture = Some(Vec::new());
        let mut ws =
            fastwebsockets::WebSocket::after_handshake(stream, fastwebsockets::Role::Client);
        fast_send(&rt, &mut ws);
        check(&ws.into_inner().capture.unwrap_or_default());
        let mut ws = fastwebsockets::WebSocket::after_handshake(
            MemStream::new(Vec::new()),
            fastwebsockets::Role::Client,
        );
        group.bench_function("fastwebsockets", |b| b.iter(|| fast_send(&rt, &mut ws)));

        // Baseline: copy each payload into place masked, in one pass, without headers.
        let stride = size + 14;
        for n in 0..count {
            let body = &mut out[n * stride + 14..][..size];
            copy_and_mask(body, &payload, key(n));
            xor_payload(body, key(n));
            assert_eq!(body, &payload[..]);
        }
        group.bench_function("copy_and_mask", |b| {
            b.iter(|| {
                for n in 0..count {
                    copy_and_mask(&mut out[n * stride + 14..][..size], &payload, key(n));
                }
                black_box(&mut out);
            })
        });
        group.finish();
    }
}

// ---------------------------------------------------------------------------------------------
// handshake

fn httparse_sha1_base64(request: &[u8], out: &mut [u8]) -> usize {
    use base64::Engine as _;
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut parsed = httparse::Request::new(&mut headers);
    assert!(parsed.parse(request).expect("valid request").is_complete());
    let key = parsed
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("Sec-WebSocket-Key"))
        .expect("key")
        .value;
    let mut sha = sha1_smol::Sha1::new();
    sha.update(key);
    sha.update(b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
    let mut accept = [0u8; 28];
    base64::engine::general_purpose::STANDARD
        .encode_slice(sha.digest().bytes(), &mut accept)
        .expect("28 bytes");
    let mut at = 0;
    for part in [
        &b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
           Sec-WebSocket-Accept: "[..],
        &accept,
        b"\r\n\r\n",
    ] {
        out[at..at + part.len()].copy_from_slice(part);
        at += part.len();
    }
    at
}

fn wsmachine_handshake(work: &mut [u8], out: &mut [u8]) -> usize {
    let now = Instant::from_micros(0);
    work.copy_from_slice(CHROMIUM_REQUEST);
    let mut conn = Connection::server(Config::new(), now);
    let received = conn.receive(work, now).expect("valid request");
    assert!(matches!(received.event, Some(Event::Request(_))));
    conn.accept(&Accept::new(), out, now).expect("accepted").len()
}

fn handshake(c: &mut Criterion) {
    let mut group = c.benchmark_group("handshake/server");
    group.throughput(Throughput::Elements(1));
    let accepted = |response: &[u8]| {
        let text = std::str::from_utf8(response).expect("ascii");
        assert!(text.starts_with("HTTP/1.1 101"), "{text}");
        assert!(response.windows(CHROMIUM_ACCEPT.len()).any(|w| w == CHROMIUM_ACCEPT), "{text}");
    };

    let mut work = vec![0; CHROMIUM_REQUEST.len()];
    let mut out = vec![0; 1024];
    let n = wsmachine_handshake(&mut work, &mut out);
    accepted(&out[..n]);
    group.bench_function("wsmachine", |b| {
        b.iter(|| black_box(wsmachine_handshake(&mut work, &mut out)))
    });

    let mut stream = MemStream::new(CHROMIUM_REQUEST.to_vec());
    stream.capture = Some(Vec::new());
    let ws = tungstenite::accept(stream).expect("accepted");
    accepted(ws.get_ref().capture.as_deref().unwrap_or_default());
    group.bench_function("tungstenite", |b| {
        b.iter_batched(
            || MemStream::new(CHROMIUM_REQUEST.to_vec()),
            |stream| black_box(tungstenite::accept(stream).expect("accepted").get_ref().written),
            criterion::BatchSize::SmallInput,
        )
    });

    let n = httparse_sha1_base64(CHROMIUM_REQUEST, &mut out);
    accepted(&out[..n]);
    group.bench_function("httparse_sha1_base64", |b| {
        b.iter(|| black_box(httparse_sha1_base64(black_box(CHROMIUM_REQUEST), &mut out)))
    });
    group.finish();
}

// ---------------------------------------------------------------------------------------------
// fragmented

/// Decodes a fragmented message into its validated pieces, calling `seen` on each.
fn receive_pieces(conn: &mut Connection, work: &mut [u8], mut seen: impl FnMut(&[u8])) {
    let now = Instant::from_micros(0);
    let mut at = 0;
    while at < work.len() {
        let received = conn.receive(&mut work[at..], now).expect("valid frames");
        at += received.consumed;
        match received.event {
            Some(Event::Fragment(f)) => seen(f.payload),
            other => panic!("unexpected {other:?}"),
        }
    }
}

fn fragmented(c: &mut Criterion) {
    const SIZE: usize = 65536;
    const FRAGMENTS: usize = 64;
    let text = mixed_text(SIZE);
    let pristine = fragmented_text(&text, FRAGMENTS);
    let mut group = c.benchmark_group(format!("fragmented/text/{SIZE}"));
    group.throughput(Throughput::Bytes(SIZE as u64));
    let now = Instant::from_micros(0);

    // wsmachine: validated pieces, borrowed.
    let mut conn = Connection::open_server(server_config(SIZE), now);
    let mut work = pristine.clone();
    let mut joined = Vec::new();
    receive_pieces(&mut conn, &mut work, |p| joined.extend_from_slice(p));
    assert_eq!(joined, text.as_bytes());
    group.bench_function("wsmachine", |b| {
        b.iter(|| {
            work.copy_from_slice(&pristine);
            receive_pieces(&mut conn, &mut work, |p| {
                black_box(p);
            });
        })
    });

    // wsmachine with its Reassembler: one owned message, like the peers give.
    let mut reassembler = Reassembler::new();
    let mut reassemble = |conn: &mut Connection, work: &mut [u8]| -> usize {
        let mut at = 0;
        let mut len = 0;
        while at < work.len() {
            let received = conn.receive(&mut work[at..], now).expect("valid frames");
            at += received.consumed;
            if let Some(event) = received.event {
                if let Some(message) = reassembler.push(&event) {
                    len = match message {
                        wsmachine::OwnedMessage::Text(t) => {
                            assert_eq!(t.len(), SIZE);
                            t.len()
                        }
                        other => panic!("unexpected {other:?}"),
                    };
                }
            }
        }
        len
    };
    work.copy_from_slice(&pristine);
    assert_eq!(reassemble(&mut conn, &mut work), SIZE);
    group.bench_function("wsmachine_reassembled", |b| {
        b.iter(|| {
            work.copy_from_slice(&pristine);
            black_box(reassemble(&mut conn, &mut work));
        })
    });

    // tungstenite reassembles into one message.
    let mut ws = tungstenite::WebSocket::from_raw_socket(
        MemStream::new(pristine.clone()),
        tungstenite::protocol::Role::Server,
        Some(tungstenite_config()),
    );
    tungstenite_receive(&mut ws, 1, |p| assert_eq!(p, text.as_bytes()));
    group.bench_function("tungstenite", |b| {
        b.iter(|| {
            tungstenite_receive(&mut ws, 1, |p| {
                black_box(p);
            })
        })
    });

    // fastwebsockets' FragmentCollector reassembles into one frame.
    let rt = runtime();
    let mut ws =
        fastwebsockets::FragmentCollector::new(fastwebsockets::WebSocket::after_handshake(
            MemStream::new(pristine.clone()),
            fastwebsockets::Role::Server,
        ));
    let collect = |ws: &mut fastwebsockets::FragmentCollector<MemStream>| -> usize {
        rt.block_on(async {
            let frame = ws.read_frame().await.expect("valid frames");
            black_box(&frame.payload);
            frame.payload.len()
        })
    };
    // The collector owns its stream, which starts over once its bytes are used up.
    assert_eq!(collect(&mut ws), SIZE);
    assert_eq!(collect(&mut ws), SIZE);
    group.bench_function("fastwebsockets", |b| b.iter(|| black_box(collect(&mut ws))));
    group.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(30)
}

#[cfg(not(feature = "deflate"))]
criterion_group! {
    name = benches;
    config = config();
    targets = receive, send, handshake, fragmented
}

#[cfg(feature = "deflate")]
criterion_group! {
    name = benches;
    config = config();
    targets = receive, send, handshake, fragmented, deflate::receive_deflate, deflate::send_deflate
}

#[cfg(feature = "deflate")]
mod deflate {
    use super::*;
    use common::deflate::{negotiated, negotiated_at};
    use zlib_rs::{Deflate, DeflateFlush, Inflate, InflateFlush};

    /// The sizes measured.
    const DEFLATE_SIZES: [usize; 2] = [1024, 65536];

    /// The extensions the two agreed, as yawc takes them.
    const AGREED: &str = "permessage-deflate; server_no_context_takeover;         client_no_context_takeover; server_max_window_bits=12; client_max_window_bits=12";

    fn yawc_options() -> yawc::Options {
        yawc::Options::default()
            .with_compression_level(yawc::CompressionLevel::new(1))
            .with_utf8()
            .with_limits(64 << 20, 128 << 20)
    }

    /// Decodes every message in `work` as a server with room `space` to inflate into.
    fn wsmachine_receive(
        conn: &mut Connection,
        work: &mut [u8],
        space: &mut [u8],
        mut seen: impl FnMut(&[u8]),
    ) {
        let now = Instant::from_micros(0);
        let mut at = 0;
        while at < work.len() {
            let received = conn.receive_with(&mut work[at..], space, now).expect("valid frames");
            at += received.consumed;
            match received.event {
                Some(Event::Message(Message::Text(t))) => seen(t.as_bytes()),
                other => panic!("unexpected {other:?}"),
            }
        }
    }

    pub fn receive_deflate(c: &mut Criterion) {
        let rt = runtime();
        for size in DEFLATE_SIZES {
            let text = mixed_text(size);
            let count = messages_for(size);
            let (mut client, mut server) = negotiated();
            let mut pristine = vec![0; count * (size + 64) + 1024];
            let mut len = 0;
            for _ in 0..count {
                len += client.send_text(&text, &mut pristine[len..]).unwrap().len();
            }
            pristine.truncate(len);
            // The compressed payloads, unmasked, each with its tail, for the raw baseline.
            let payloads: Vec<Vec<u8>> = decode_frames(&pristine)
                .into_iter()
                .map(|(op, mut p)| {
                    assert_eq!(op, 1);
                    p.extend_from_slice(&[0, 0, 0xff, 0xff]);
                    p
                })
                .collect();
            assert_eq!(payloads.len(), count);
            let ratio = (size * count) as f64 / (len as f64);
            println!("receive_deflate/text/{size}: {len} bytes on the wire, ratio {ratio:.2}");

            let mut group = c.benchmark_group(format!("receive_deflate/text/{size}"));
            group.throughput(Throughput::Bytes((size * count) as u64));

            let mut work = pristine.clone();
            let mut space = vec![0; size.max(4096)];
            let mut decoded = 0;
            wsmachine_receive(&mut server, &mut work, &mut space, |p| {
                assert_eq!(p, text.as_bytes());
                decoded += 1;
            });
            assert_eq!(decoded, count);
            group.bench_function("wsmachine", |b| {
                b.iter(|| {
                    work.copy_from_slice(&pristine);
                    wsmachine_receive(&mut server, &mut work, &mut space, |p| {
                        black_box(p);
                    });
                })
            });

            let mut inflate = Inflate::new(false, 12);
            let mut out = vec![0; size + 64];
            let mut raw = |out: &mut [u8]| {
                for p in &payloads {
                    let before = inflate.total_out();
                    inflate.decompress(p, out, InflateFlush::SyncFlush).expect("inflates");
                    black_box(&out[..(inflate.total_out() - before) as usize]);
                }
            };
            raw(&mut out);
            assert_eq!(&out[..size], text.as_bytes());
            group.bench_function("zlib_rs", |b| b.iter(|| raw(&mut out)));
            // The same, and each message validated as UTF-8 once (RFC 6455 §8.1 asks it of
            // every text message), with the validator the crate uses.
            let mut inflate = Inflate::new(false, 12);
            let mut raw_utf8 = |out: &mut [u8]| {
                for p in &payloads {
                    let before = inflate.total_out();
                    inflate.decompress(p, out, InflateFlush::SyncFlush).expect("inflates");
                    let n = (inflate.total_out() - before) as usize;
                    black_box(simdutf8::basic::from_utf8(&out[..n]).expect("text"));
                }
            };
            group.bench_function("zlib_rs_utf8", |b| b.iter(|| raw_utf8(&mut out)));
            // The other no_std backend, for the choice of backend: the same inflate.
            let mut miniz =
                miniz_oxide::inflate::stream::InflateState::new_boxed(miniz_oxide::DataFormat::Raw);
            let mut miniz_inflate = |out: &mut [u8]| {
                for p in &payloads {
                    let r = miniz_oxide::inflate::stream::inflate(
                        &mut miniz,
                        p,
                        out,
                        miniz_oxide::MZFlush::Sync,
                    );
                    assert!(r.status.is_ok());
                    black_box(&out[..r.bytes_written]);
                }
            };
            miniz_inflate(&mut out);
            assert_eq!(&out[..size], text.as_bytes());
            group.bench_function("miniz_oxide", |b| b.iter(|| miniz_inflate(&mut out)));

            let stream = MemStream::new(pristine.clone());
            let mut ws = yawc::WebSocket::from_stream_with_extensions(
                stream,
                yawc::Role::Server,
                Some(AGREED),
                yawc_options(),
            )
            .expect("yawc");
            let mut yawc_receive = |check: bool| {
                rt.block_on(async {
                    for _ in 0..count {
                        let frame = ws.next_frame().await.expect("valid frames");
                        if check {
                            assert_eq!(frame.payload().as_ref(), text.as_bytes());
                        }
                        black_box(frame);
                    }
                })
            };
            yawc_receive(true);
            group.bench_function("yawc", |b| b.iter(|| yawc_receive(false)));
            group.finish();
        }
    }

    pub fn send_deflate(c: &mut Criterion) {
        let rt = runtime();
        for size in DEFLATE_SIZES {
            let text = mixed_text(size);
            let count = messages_for(size);
            let mut group = c.benchmark_group(format!("send_deflate/text/{size}"));
            group.throughput(Throughput::Bytes((size * count) as u64));

            let (mut client, mut server) = negotiated();
            let mut out = vec![0; count * client.encoded_len(size)];
            let send_all = |conn: &mut Connection, out: &mut [u8]| {
                let mut at = 0;
                for _ in 0..count {
                    at += conn.send_text(&text, &mut out[at..]).expect("room").len();
                }
                at
            };
            let n = send_all(&mut client, &mut out);
            let mut check = out[..n].to_vec();
            let mut space = vec![0; size.max(4096)];
            let mut decoded = 0;
            wsmachine_receive(&mut server, &mut check, &mut space, |p| {
                assert_eq!(p, text.as_bytes());
                decoded += 1;
            });
            assert_eq!(decoded, count);
            group.bench_function("wsmachine", |b| {
                b.iter(|| black_box(send_all(&mut client, &mut out)))
            });
            // The default level's alternative: zlib's own default, 6.
            let (mut level6, _) = negotiated_at(6, true);
            let wire6 = send_all(&mut level6, &mut out);
            println!("send_deflate/text/{size}: level 1 {n} bytes, level 6 {wire6} bytes");
            group.bench_function("wsmachine_level6", |b| {
                b.iter(|| black_box(send_all(&mut level6, &mut out)))
            });

            let mut deflate = Deflate::new_with_config(zlib_rs::DeflateConfig {
                level: 1,
                window_bits: -12,
                mem_level: 5,
                ..zlib_rs::DeflateConfig::default()
            });
            let mut raw_out = vec![0; size + size / 8 + 64];
            let mut raw = |out: &mut [u8]| {
                for _ in 0..count {
                    let before = deflate.total_out();
                    deflate.compress(text.as_bytes(), out, DeflateFlush::SyncFlush).unwrap();
                    black_box(&out[..(deflate.total_out() - before) as usize]);
                    deflate.reset();
                }
            };
            raw(&mut raw_out);
            group.bench_function("zlib_rs", |b| b.iter(|| raw(&mut raw_out)));
            // The other no_std backend at the same level (its window is always 15 bits: it
            // cannot honour a smaller one).
            let mut miniz = miniz_oxide::deflate::core::CompressorOxide::new(0);
            miniz.set_format_and_level(miniz_oxide::DataFormat::Raw, 1);
            let mut miniz_deflate = |out: &mut [u8]| {
                for _ in 0..count {
                    let r = miniz_oxide::deflate::stream::deflate(
                        &mut miniz,
                        text.as_bytes(),
                        out,
                        miniz_oxide::MZFlush::Sync,
                    );
                    assert!(r.status.is_ok() && r.bytes_consumed == text.len());
                    black_box(&out[..r.bytes_written]);
                    miniz.reset();
                }
            };
            miniz_deflate(&mut raw_out);
            group.bench_function("miniz_oxide", |b| b.iter(|| miniz_deflate(&mut raw_out)));

            let mut ws = yawc::WebSocket::from_stream_with_extensions(
                MemStream::new(Vec::new()),
                yawc::Role::Client,
                Some(AGREED),
                yawc_options(),
            )
            .expect("yawc");
            // The payload as yawc takes it, shared: each frame costs a reference count.
            let bytes = tungstenite::Bytes::from(text.clone());
            let mut yawc_send = || {
                rt.block_on(async {
                    use futures_util::SinkExt;
                    for _ in 0..count {
                        ws.feed(yawc::Frame::text(bytes.clone())).await.expect("send");
                    }
                    ws.flush().await.expect("flush");
                })
            };
            yawc_send();
            group.bench_function("yawc", |b| b.iter(&mut yawc_send));
            group.finish();
        }
    }
}
criterion_main!(benches);
