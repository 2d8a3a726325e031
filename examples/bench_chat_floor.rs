//! The floor of the fan-out benchmark (`scripts/fanout.py`): the chat protocol with no
//! WebSocket code in the fan-out loop. Each room message is encoded once, and each member's
//! socket gets the encoded frame with one `write` call (a member whose socket is full gets
//! the rest queued for a flusher task). Incoming frames are decoded with wsmachine's core;
//! the upgrade is answered by `support/upgrade.rs`. It is what any server must at least
//! spend: the kernel's send to each socket.
//!
//! ```text
//! bench_chat_floor [ADDR]   # default 127.0.0.1:9013
//! ```

#[path = "support/chat_protocol.rs"]
mod protocol;
#[path = "support/upgrade.rs"]
mod support;

use std::collections::HashMap;
use std::io::ErrorKind;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::AsyncReadExt;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::Notify;
use wsmachine::{
    Config, Connection, Encoding, Event, Instant, OwnedMessage, Reassembler, RecvBuffer,
    SharedMessage,
};

/// A member's socket, and what could not be written to it at once.
struct Member {
    write: OwnedWriteHalf,
    pending: Mutex<Pending>,
    wake: Notify,
    /// Set when the member left: its flusher ends and the socket is dropped.
    gone: AtomicBool,
}

#[derive(Default)]
struct Pending {
    bytes: Vec<u8>,
    /// The flusher owns the socket's writes until `bytes` is empty again.
    busy: bool,
}

type Rooms = Mutex<HashMap<String, HashMap<u64, Arc<Member>>>>;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:9013".into());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("bench_chat_floor listening on ws://{}", listener.local_addr()?);
    let rooms: Arc<Rooms> = Arc::default();
    let ids = Arc::new(AtomicU64::new(0));
    loop {
        let (mut tcp, _) = listener.accept().await?;
        let (rooms, id) = (Arc::clone(&rooms), ids.fetch_add(1, Ordering::Relaxed));
        tokio::spawn(async move {
            let _ = tcp.set_nodelay(true);
            let Ok(target) = support::upgrade(&mut tcp).await else { return };
            let (room, name) = protocol::room_and_name(&target);
            let (mut read, write) = tcp.into_split();
            let member = Arc::new(Member {
                write,
                pending: Mutex::default(),
                wake: Notify::new(),
                gone: AtomicBool::new(false),
            });
            tokio::spawn(flusher(Arc::clone(&member)));
            rooms.lock().unwrap().entry(room.clone()).or_default().insert(id, Arc::clone(&member));
            broadcast(&rooms, &room, &protocol::presence("join", &room, &name));
            let config = Config::new().deflate(wsmachine::DeflateConfig::off());
            let mut conn = Connection::open_server(config.clone(), Instant::from_micros(0));
            let mut input = RecvBuffer::for_config(&config);
            let mut messages = Reassembler::new();
            'read: loop {
                let spare = input.spare();
                let n = match read.read(spare).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                input.filled(n);
                loop {
                    let event = match input.next_event(&mut conn, Instant::from_micros(0)) {
                        Ok(Some(event)) => event,
                        Ok(None) => break,
                        Err(_) => break 'read,
                    };
                    if matches!(event, Event::Close(_)) {
                        break 'read;
                    }
                    // Messages larger than the read buffer arrive in pieces.
                    let Some(OwnedMessage::Text(json)) = messages.push(&event) else { continue };
                    match protocol::said(&json) {
                        Ok(text) => {
                            broadcast(&rooms, &room, &protocol::message(&room, &name, &text))
                        }
                        Err(e) => {
                            let error = SharedMessage::text(&protocol::error(&e));
                            send(&member, error.frame(Encoding::Plain).unwrap_or_default());
                        }
                    }
                }
            }
            if let Some(members) = rooms.lock().unwrap().get_mut(&room) {
                members.remove(&id);
            }
            broadcast(&rooms, &room, &protocol::presence("leave", &room, &name));
            member.gone.store(true, Ordering::Release);
            member.wake.notify_one();
        });
    }
}

/// Encodes `json` once and writes it to every member of `room`.
fn broadcast(rooms: &Rooms, room: &str, json: &str) {
    let message = SharedMessage::text(json);
    let frame = message.frame(Encoding::Plain).unwrap_or_default();
    let rooms = rooms.lock().unwrap();
    for member in rooms.get(room).into_iter().flat_map(HashMap::values) {
        send(member, frame);
    }
}

/// One write call; what does not fit waits for the flusher.
fn send(member: &Member, frame: &[u8]) {
    let mut pending = member.pending.lock().unwrap();
    if pending.busy {
        pending.bytes.extend_from_slice(frame);
        return;
    }
    let written = match member.write.try_write(frame) {
        Ok(n) => n,
        Err(e) if e.kind() == ErrorKind::WouldBlock => 0,
        Err(_) => return,
    };
    if written < frame.len() {
        pending.bytes.extend_from_slice(&frame[written..]);
        pending.busy = true;
        member.wake.notify_one();
    }
}

/// Writes what a member's socket could not take at once, as it drains.
async fn flusher(member: Arc<Member>) {
    loop {
        member.wake.notified().await;
        if member.gone.load(Ordering::Acquire) {
            return;
        }
        loop {
            let bytes = {
                let mut pending = member.pending.lock().unwrap();
                if pending.bytes.is_empty() {
                    pending.busy = false;
                    break;
                }
                std::mem::take(&mut pending.bytes)
            };
            let mut at = 0;
            while at < bytes.len() {
                if member.write.as_ref().writable().await.is_err() {
                    return;
                }
                match member.write.try_write(&bytes[at..]) {
                    Ok(n) => at += n,
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                    Err(_) => return,
                }
            }
        }
    }
}
