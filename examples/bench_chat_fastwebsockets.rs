//! The chat protocol (examples/chat) on fastwebsockets, written the idiomatic way: rooms in a
//! map, a bounded channel and a writer task per client, each message one shared allocation
//! written to every client as a borrowed payload. A peer in the fan-out benchmark
//! (`scripts/fanout.py`). The upgrade is answered by `support/upgrade.rs` (fastwebsockets'
//! own needs hyper).
//!
//! ```text
//! bench_chat_fastwebsockets [ADDR]   # default 127.0.0.1:9012
//! ```

#[path = "support/chat_protocol.rs"]
mod protocol;
#[path = "support/upgrade.rs"]
mod support;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use fastwebsockets::{Frame, OpCode, Payload, Role, WebSocket, WebSocketError};
use tokio::sync::mpsc;

/// What a client's writer task writes: a shared text, or a control frame owed to the peer.
enum Out {
    Text(Arc<[u8]>),
    Control(OpCode, Vec<u8>),
}

type Rooms = Mutex<HashMap<String, HashMap<u64, mpsc::Sender<Out>>>>;

/// Messages a client may have waiting before it misses some.
const QUEUE: usize = 256;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:9012".into());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("bench_chat_fastwebsockets listening on ws://{}", listener.local_addr()?);
    let rooms: Arc<Rooms> = Arc::default();
    let ids = Arc::new(AtomicU64::new(0));
    loop {
        let (mut tcp, _) = listener.accept().await?;
        let (rooms, id) = (Arc::clone(&rooms), ids.fetch_add(1, Ordering::Relaxed));
        tokio::spawn(async move {
            let _ = tcp.set_nodelay(true);
            let Ok(target) = support::upgrade(&mut tcp).await else { return };
            let (room, name) = protocol::room_and_name(&target);
            let (mut read, mut write) =
                WebSocket::after_handshake(tcp, Role::Server).split(tokio::io::split);
            let (tx, mut rx) = mpsc::channel::<Out>(QUEUE);
            let writer = tokio::spawn(async move {
                while let Some(out) = rx.recv().await {
                    let frame = match &out {
                        Out::Text(text) => Frame::text(Payload::Borrowed(text)),
                        Out::Control(opcode, payload) => {
                            Frame::new(true, *opcode, None, Payload::Borrowed(payload))
                        }
                    };
                    let close = matches!(out, Out::Control(OpCode::Close, _));
                    if write.write_frame(frame).await.is_err() || close {
                        break;
                    }
                }
            });
            rooms.lock().unwrap().entry(room.clone()).or_default().insert(id, tx.clone());
            broadcast(&rooms, &room, protocol::presence("join", &room, &name));
            // Pongs and the close reply the reader owes go through the writer's queue.
            let control = tx.clone();
            let mut obligated = move |frame: Frame<'_>| {
                let out = Out::Control(frame.opcode, frame.payload.to_vec());
                let control = control.clone();
                async move {
                    let _ = control.send(out).await;
                    Ok::<_, WebSocketError>(())
                }
            };
            while let Ok(frame) = read.read_frame(&mut obligated).await {
                match frame.opcode {
                    OpCode::Text => match std::str::from_utf8(&frame.payload).map(protocol::said) {
                        Ok(Ok(text)) => {
                            broadcast(&rooms, &room, protocol::message(&room, &name, &text));
                        }
                        Ok(Err(e)) => {
                            let _ = tx.try_send(Out::Text(protocol::error(&e).into_bytes().into()));
                        }
                        Err(_) => break,
                    },
                    OpCode::Close => break,
                    _ => {}
                }
            }
            if let Some(members) = rooms.lock().unwrap().get_mut(&room) {
                members.remove(&id);
            }
            broadcast(&rooms, &room, protocol::presence("leave", &room, &name));
            drop(tx);
            let _ = writer.await;
        });
    }
}

/// Sends `json` to every member of `room`: one allocation, shared by all.
fn broadcast(rooms: &Rooms, room: &str, json: String) {
    let text: Arc<[u8]> = json.into_bytes().into();
    let rooms = rooms.lock().unwrap();
    for tx in rooms.get(room).into_iter().flat_map(HashMap::values) {
        // A full queue drops the message for that client only.
        let _ = tx.try_send(Out::Text(Arc::clone(&text)));
    }
}
