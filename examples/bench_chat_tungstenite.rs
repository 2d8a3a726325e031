//! The chat protocol (examples/chat) on tokio-tungstenite, written the idiomatic way: rooms in
//! a map, a bounded channel and a writer task per client, the `Message` cloned for each
//! recipient (each connection then frames and writes it). A peer in the fan-out benchmark
//! (`scripts/fanout.py`).
//!
//! ```text
//! bench_chat_tungstenite [ADDR]   # default 127.0.0.1:9011
//! ```

#[path = "support/chat_protocol.rs"]
mod protocol;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use futures_util::{SinkExt, StreamExt};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use tokio_tungstenite::tungstenite::Message;

type Rooms = Mutex<HashMap<String, HashMap<u64, mpsc::Sender<Message>>>>;

/// Messages a client may have waiting before it misses some.
const QUEUE: usize = 256;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:9011".into());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("bench_chat_tungstenite listening on ws://{}", listener.local_addr()?);
    let rooms: Arc<Rooms> = Arc::default();
    let ids = Arc::new(AtomicU64::new(0));
    loop {
        let (tcp, _) = listener.accept().await?;
        let (rooms, id) = (Arc::clone(&rooms), ids.fetch_add(1, Ordering::Relaxed));
        tokio::spawn(async move {
            let _ = tcp.set_nodelay(true);
            let mut target = String::new();
            // The callback's type is tungstenite's (its error is a whole HTTP response).
            #[allow(clippy::result_large_err)]
            let callback = |request: &Request, response: Response| {
                target = request.uri().to_string();
                Ok(response)
            };
            let Ok(ws) = tokio_tungstenite::accept_hdr_async(tcp, callback).await else { return };
            let (room, name) = protocol::room_and_name(&target);
            let (mut sink, mut stream) = ws.split();
            let (tx, mut rx) = mpsc::channel::<Message>(QUEUE);
            let writer = tokio::spawn(async move {
                while let Some(message) = rx.recv().await {
                    if sink.send(message).await.is_err() {
                        break;
                    }
                }
            });
            rooms.lock().unwrap().entry(room.clone()).or_default().insert(id, tx.clone());
            broadcast(&rooms, &room, protocol::presence("join", &room, &name));
            while let Some(Ok(message)) = stream.next().await {
                match message {
                    Message::Text(json) => match protocol::said(&json) {
                        Ok(text) => {
                            broadcast(&rooms, &room, protocol::message(&room, &name, &text))
                        }
                        Err(e) => {
                            let _ = tx.try_send(Message::text(protocol::error(&e)));
                        }
                    },
                    Message::Close(_) => break,
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

/// Sends `json` to every member of `room`: one `Message`, cloned for each.
fn broadcast(rooms: &Rooms, room: &str, json: String) {
    let message = Message::text(json);
    let rooms = rooms.lock().unwrap();
    for tx in rooms.get(room).into_iter().flat_map(HashMap::values) {
        // A full queue drops the message for that client only.
        let _ = tx.try_send(message.clone());
    }
}
