//! The chat protocol (examples/chat) on wsmachine's tokio adapter over plain TCP, as the
//! peers in the fan-out benchmark are (`scripts/fanout.py`): rooms in a map, the split
//! halves of each connection, each message one `SharedMessage` (encoded once) handed to every
//! member's `WriteHalf::try_send`. The chat example itself runs the same broadcast behind
//! axum; this one shows the crate's cost without the framework's.
//!
//! ```text
//! bench_chat_wsmachine [ADDR]   # default 127.0.0.1:9014
//! ```

#[path = "support/chat_protocol.rs"]
mod protocol;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use wsmachine::tokio::{self as ws, WriteHalf};
use wsmachine::{Config, Decision, DeflateConfig, Incoming, Outgoing, SharedMessage};

type Rooms = Mutex<HashMap<String, HashMap<u64, Arc<WriteHalf>>>>;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:9014".into());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("bench_chat_wsmachine listening on ws://{}", listener.local_addr()?);
    let rooms: Arc<Rooms> = Arc::default();
    let ids = Arc::new(AtomicU64::new(0));
    // As the peers: no compression (their clients offer none anyway), the default limits.
    let config = Config::new().deflate(DeflateConfig::off());
    loop {
        let (tcp, _) = listener.accept().await?;
        let (rooms, id, config) =
            (Arc::clone(&rooms), ids.fetch_add(1, Ordering::Relaxed), config.clone());
        tokio::spawn(async move {
            let _ = tcp.set_nodelay(true);
            let mut target = String::new();
            let decide = |request: &wsmachine::Request<'_>| {
                target = request.target().to_string();
                Decision::accept()
            };
            let Ok(socket) = ws::accept_with(tcp, config, decide).await else { return };
            let (room, name) = protocol::room_and_name(&target);
            let (mut reader, writer) = socket.split();
            let writer = Arc::new(writer);
            rooms.lock().unwrap().entry(room.clone()).or_default().insert(id, Arc::clone(&writer));
            broadcast(&rooms, &room, &protocol::presence("join", &room, &name));
            while let Ok(Some(incoming)) = reader.recv().await {
                match incoming {
                    Incoming::Text(json) => match protocol::said(&json) {
                        Ok(text) => {
                            broadcast(&rooms, &room, &protocol::message(&room, &name, &text))
                        }
                        Err(e) => {
                            let _ = writer.try_send(Outgoing::Text(protocol::error(&e)));
                        }
                    },
                    Incoming::Close(_) => break,
                    _ => {}
                }
            }
            while let Ok(Some(_)) = reader.recv().await {}
            if let Some(members) = rooms.lock().unwrap().get_mut(&room) {
                members.remove(&id);
            }
            broadcast(&rooms, &room, &protocol::presence("leave", &room, &name));
        });
    }
}

/// Sends `json` to every member of `room`: one frame, shared by reference.
fn broadcast(rooms: &Rooms, room: &str, json: &str) {
    let message = SharedMessage::text(json);
    let rooms = rooms.lock().unwrap();
    for writer in rooms.get(room).into_iter().flat_map(HashMap::values) {
        let _ = writer.try_send(Outgoing::Shared(message.clone()));
    }
}
