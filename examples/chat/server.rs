//! The chat server: rooms, the JSON protocol and the protections, as an axum `Router` (the
//! binary in `main.rs` parses flags and serves it; the tests in `tests/chat.rs` serve it on
//! an ephemeral port).
//!
//! # Protocol
//!
//! `GET /ws?room=R&name=N` upgrades to a WebSocket (room defaults to `lobby`, name to
//! `guest`; at most 64 and 32 characters, no control characters, else 400). Every frame is a
//! JSON text message with a `type`:
//!
//! - server to clients, to every member of the room (the sender included), in one order for
//!   all: `{"type":"message","room":R,"name":N,"text":T,"time":MS}`,
//!   `{"type":"join","room":R,"name":N,"time":MS}`, `{"type":"leave","room":R,"name":N,"time":MS}`;
//!   `time` is milliseconds since the Unix epoch;
//! - client to server: `{"type":"message","text":T}`;
//! - anything else from a client (not JSON, wrong types, an unknown `type`, binary) is
//!   answered with `{"type":"error","text":...}` to that client alone, and otherwise ignored.
//!
//! # Protections (each a flag of the binary, see [`Options`])
//!
//! - an `Origin` naming another host than the `Host` served (or than `--allow-origin`) is
//!   refused with 403 (cross-site WebSocket hijacking); no `Origin` (a non-browser client) is
//!   allowed;
//! - a WebSocket message over 1 MiB is refused with 1009 (by the core, while it arrives);
//! - more than a burst of 100 messages, or more than 50 per second sustained, from one
//!   connection closes it with 1008 (a token bucket);
//! - a keepalive ping every 30 s, and a connection that does not answer within 30 s is closed;
//! - at most 32 connections per client address (429 past it);
//! - each connection's send queue holds at most 4 MiB: a client that stops reading is closed
//!   with 1008 (or, with `--slow-client drop`, misses messages) and never slows the others;
//! - behind a reverse proxy (`--trusted-proxy ADDR`), the per-address limit counts the client
//!   address the proxy gives in `X-Forwarded-For`: the last entry that is not itself a
//!   trusted proxy (the entries before it are whatever the client sent, and may be forged).
//!   The header is believed only on connections from a trusted proxy; a malformed one from
//!   it gets 400.
//!
//! # Several servers (`--redis`)
//!
//! With a Redis backplane ([`backplane`]) every server publishes its rooms' messages, joins
//! and leaves, and delivers the others' to its own members; the events
//! `{"type":"backplane","state":"down"|"up","time":MS}` and
//! `{"type":"missed","room":R,"count":N,"time":MS}` tell the members when the rooms span
//! fewer servers than they did, and what did not arrive.
//!
//! `GET /health` answers `{"connections":N,"rooms":N,"backplane":"off"|"connecting"|"up"|"down"}`
//! (for load balancers and tests). On [`Chat::close_all`] (the binary calls it on SIGTERM
//! or Ctrl-C) every member is closed with 1001, so clients reconnect to another server.
//!
//! # Broadcast
//!
//! A room message is encoded once: one JSON text, one [`SharedMessage`] (one frame, and one
//! compressed frame per window size when clients negotiated permessage-deflate), handed to
//! every member's [`WriteHalf::try_send`](wsmachine::tokio::WriteHalf::try_send) by reference.

#[path = "backplane.rs"]
pub mod backplane;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::rejection::QueryRejection;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{any, get};
use axum::Router;
use serde::{Deserialize, Serialize};
use wsmachine::axum::{Upgraded, WebSocketUpgrade};
use wsmachine::tokio::{ReadHalf, WebSocket, WriteHalf};
use wsmachine::{
    AdapterError, CloseCode, Config, Decision, Incoming, Outgoing, Request, SendQueueFull,
    SharedMessage,
};

/// The page served at `/`.
const PAGE: &str = include_str!("page.html");

/// The server's settings; the defaults suit a public deployment.
#[derive(Clone, Debug)]
pub struct Options {
    /// The largest WebSocket message a client may send (1009 past it).
    pub max_message: usize,
    /// Messages a connection may send at once...
    pub burst: u32,
    /// ...and per second, sustained (1008 past either).
    pub rate: u32,
    /// Bytes of messages a connection may send per second, sustained, after a first second's
    /// worth at once: past it the server reads that connection's next message later
    /// (backpressure through TCP, nothing is refused), so that clients sending the largest
    /// messages nonstop cannot take the server's CPU from the others.
    pub byte_rate: usize,
    /// Keepalive ping interval; a pong must come within `pong_timeout`.
    pub keepalive: Duration,
    pub pong_timeout: Duration,
    /// Connections per client address (429 past it).
    pub max_per_address: usize,
    /// Origins allowed besides the served host itself (`https://example.com`); `None` allows
    /// any.
    pub allowed_origins: Option<Vec<String>>,
    /// Bytes a connection's send queue holds, and what happens to a client that fills it.
    pub send_queue: usize,
    pub slow_client: SendQueueFull,
    /// Whether permessage-deflate is negotiated.
    pub deflate: bool,
    /// The Redis backplane's URL (`redis://HOST:PORT`); `None` keeps rooms in this process.
    pub redis: Option<String>,
    /// The reverse proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<Network>,
}

/// An address or a network (`10.0.0.0/8`, `::1`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Network {
    addr: IpAddr,
    prefix: u8,
}

impl std::str::FromStr for Network {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let invalid = || format!("not an address or a network: {s}");
        let (addr, prefix) = match s.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (s, None),
        };
        let addr: IpAddr = addr.parse().map_err(|_| invalid())?;
        let addr = addr.to_canonical();
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p.parse().ok().filter(|p| *p <= max).ok_or_else(invalid)?,
            None => max,
        };
        Ok(Self { addr, prefix })
    }
}

impl Network {
    /// Whether `ip` is in this network.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let bits = |ip: IpAddr| -> (u128, u8) {
            match ip.to_canonical() {
                IpAddr::V4(v4) => (u128::from(u32::from(v4)) << 96, 32),
                IpAddr::V6(v6) => (u128::from(v6), 128),
            }
        };
        let ((net, net_len), (ip, ip_len)) = (bits(self.addr), bits(ip));
        if net_len != ip_len {
            return false;
        }
        let mask = if self.prefix == 0 { 0 } else { u128::MAX << (128 - u32::from(self.prefix)) };
        net & mask == ip & mask
    }
}

/// The client's address: the peer's, or, when the peer is a trusted proxy, the last address
/// in `X-Forwarded-For` (all its fields, in order, as one list) that is not a trusted proxy
/// (the first one if all are). `None` when a trusted proxy sent a malformed header.
pub fn client_address(peer: IpAddr, headers: &HeaderMap, trusted: &[Network]) -> Option<IpAddr> {
    let peer = peer.to_canonical();
    let is_trusted = |ip: IpAddr| trusted.iter().any(|n| n.contains(ip));
    if !is_trusted(peer) {
        return Some(peer);
    }
    let mut fields = Vec::new();
    for value in headers.get_all("x-forwarded-for") {
        fields.push(value.to_str().ok()?);
    }
    let mut client = peer;
    for entry in fields.iter().flat_map(|f| f.split(',')).rev() {
        let entry = entry.trim();
        // A bracketed IPv6 address, as some proxies write it.
        let entry = entry.strip_prefix('[').and_then(|e| e.strip_suffix(']')).unwrap_or(entry);
        client = entry.parse::<IpAddr>().ok()?.to_canonical();
        if !is_trusted(client) {
            break;
        }
    }
    Some(client)
}

impl Default for Options {
    fn default() -> Self {
        Self {
            max_message: 1 << 20,
            burst: 100,
            rate: 50,
            byte_rate: 1 << 20,
            keepalive: Duration::from_secs(30),
            pong_timeout: Duration::from_secs(30),
            max_per_address: 32,
            allowed_origins: Some(Vec::new()),
            send_queue: 4 << 20,
            slow_client: SendQueueFull::Close,
            deflate: true,
            redis: None,
            trusted_proxies: Vec::new(),
        }
    }
}

impl Options {
    /// The connection configuration these options ask for.
    fn config(&self) -> Config {
        let max = self.max_message as u64;
        let config = Config::new()
            .max_message_size(max)
            .max_frame_size(max)
            .keepalive_interval((!self.keepalive.is_zero()).then(|| micros(self.keepalive)))
            .pong_timeout(micros(self.pong_timeout))
            .send_queue(self.send_queue, self.slow_client);
        if self.deflate {
            config
        } else {
            config.deflate(wsmachine::DeflateConfig::off())
        }
    }
}

fn micros(d: Duration) -> wsmachine::Duration {
    wsmachine::Duration::from_micros(d.as_micros() as u64)
}

/// The shared state: rooms, per-address counts, the backplane.
#[derive(Default)]
pub struct Chat {
    options: Options,
    rooms: Mutex<HashMap<String, Room>>,
    addresses: Mutex<HashMap<IpAddr, usize>>,
    next_id: AtomicU64,
    next_epoch: AtomicU64,
    connections: AtomicUsize,
    backplane: Option<backplane::Backplane>,
}

/// A room's members, by connection id, and its place in the backplane.
struct Room {
    members: HashMap<u64, Arc<WriteHalf>>,
    /// This server's events of the room are numbered `seq` within `epoch` (a room created
    /// anew here starts a new epoch).
    epoch: u64,
    seq: u64,
    /// The other servers' last `(epoch, seq)` delivered here, by server id.
    remote: HashMap<String, (u64, u64)>,
}

impl Chat {
    /// A chat with no rooms yet, in this process alone (`options.redis` is not used).
    pub fn new(options: Options) -> Self {
        Self { options, ..Self::default() }
    }

    /// A chat with no rooms yet, linked to the Redis backplane of `options.redis` if there
    /// is one (the link runs on the current tokio runtime).
    pub fn start(options: Options) -> Result<Arc<Self>, String> {
        let url = options.redis.clone();
        let mut failed = None;
        let chat = Arc::new_cyclic(|weak| {
            let backplane = url.as_deref().and_then(|url| {
                backplane::Backplane::start(url, weak.clone())
                    .map_err(|e| failed = Some(format!("--redis {url}: {e}")))
                    .ok()
            });
            Self { options, backplane, ..Self::default() }
        });
        match failed {
            Some(e) => Err(e),
            None => Ok(chat),
        }
    }

    /// The state of the backplane's link (`None` without one).
    pub fn link(&self) -> Option<backplane::Link> {
        self.backplane.as_ref().map(backplane::Backplane::link)
    }

    /// How many WebSocket connections are open.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::Relaxed)
    }

    /// Closes every member with 1001 (going away): a server about to stop sends its clients
    /// elsewhere.
    pub fn close_all(&self) {
        let rooms = self.rooms.lock().unwrap();
        for writer in rooms.values().flat_map(|r| r.members.values()) {
            let close = Outgoing::Close(CloseCode::GOING_AWAY, "server shutting down".into());
            let _ = writer.try_send(close);
        }
    }

    /// Waits until no connection is left, or `timeout` passed; `true` if none is left.
    pub async fn drained(&self, timeout: Duration) -> bool {
        let until = tokio::time::Instant::now() + timeout;
        while self.connections() > 0 {
            if tokio::time::Instant::now() >= until {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        true
    }

    /// How many connections are in `room` now.
    pub fn members(&self, room: &str) -> usize {
        self.rooms.lock().unwrap().get(room).map_or(0, |r| r.members.len())
    }

    /// The bytes waiting in the send queues of `room`'s members, in all.
    pub fn queued(&self, room: &str) -> usize {
        let rooms = self.rooms.lock().unwrap();
        rooms.get(room).map_or(0, |r| r.members.values().map(|w| w.queued()).sum())
    }

    /// Sends `event` to every member of `room`, encoded once, and publishes it to the other
    /// servers. Called with the rooms locked, so that every member here sees the room's
    /// messages in the same order, and the other servers get them in that order.
    /// `slot` is room in the backplane's outbox ([`Chat::slot`]), taken before the rooms were
    /// locked.
    fn broadcast(
        &self,
        state: &mut Room,
        room: &str,
        event: &ServerEvent<'_>,
        slot: Option<backplane::Slot<'_>>,
    ) {
        let json = serde_json::to_string(event).expect("serializable");
        send_all(state, &json);
        if let (Some(backplane), Some(slot)) = (&self.backplane, slot) {
            state.seq += 1;
            backplane.publish(slot, room, state.epoch, state.seq, &json);
        }
    }

    /// With a backplane, waits for room in its outbox for one publication (see
    /// [`backplane::Backplane::slot`]).
    async fn slot(&self) -> Option<backplane::Slot<'_>> {
        match &self.backplane {
            Some(backplane) => Some(backplane.slot().await),
            None => None,
        }
    }

    /// Delivers another server's event of `room` to the members here, after telling them
    /// of any of that server's events that did not arrive.
    fn deliver_remote(&self, room: &str, envelope: &backplane::Envelope<'_>) {
        let mut rooms = self.rooms.lock().unwrap();
        let Some(state) = rooms.get_mut(room) else { return };
        let (epoch, seq) = (envelope.epoch, envelope.seq);
        let missed = match state.remote.get_mut(envelope.server) {
            Some(last) if last.0 == epoch => {
                if seq <= last.1 {
                    return; // already delivered
                }
                let missed = seq - last.1 - 1;
                last.1 = seq;
                missed
            }
            // A new epoch (the room was created anew there), or the first event from that
            // server since the room was created here: nothing to compare with.
            Some(last) => {
                *last = (epoch, seq);
                0
            }
            None => {
                state.remote.insert(envelope.server.to_owned(), (epoch, seq));
                0
            }
        };
        if missed > 0 {
            let event = ServerEvent::Missed { room, count: missed, time: now_ms() };
            send_all(state, &serde_json::to_string(&event).expect("serializable"));
        }
        send_all(state, envelope.json);
    }

    /// Tells every member that the backplane's link went down or came back.
    fn tell_everyone_link(&self, link: backplane::Link) {
        let json = backplane_event(link);
        let message = SharedMessage::text(&json);
        let rooms = self.rooms.lock().unwrap();
        for writer in rooms.values().flat_map(|r| r.members.values()) {
            let _ = writer.try_send(Outgoing::Shared(message.clone()));
        }
    }
}

fn backplane_event(link: backplane::Link) -> String {
    let event = ServerEvent::Backplane { state: link.name(), time: now_ms() };
    serde_json::to_string(&event).expect("serializable")
}

/// Sends `json` to every member of a room, encoded once.
fn send_all(state: &Room, json: &str) {
    if state.members.is_empty() {
        return;
    }
    let message = SharedMessage::text(json);
    for writer in state.members.values() {
        // A full queue closes that member (or drops the message for it, as configured); a
        // closing member is leaving. Neither concerns the others.
        let _ = writer.try_send(Outgoing::Shared(message.clone()));
    }
}

/// The application: `/`, `/ws`, 404 for anything else.
/// Links to `options.redis` if it is set (call it on a tokio runtime); panics on an invalid
/// Redis URL ([`Chat::start`] returns the error instead).
pub fn router(options: Options) -> Router {
    router_with(Chat::start(options).expect("a valid Redis URL"))
}

/// The application over an existing state (tests look at it).
pub fn router_with(chat: Arc<Chat>) -> Router {
    Router::new()
        .route("/", get(page))
        .route("/ws", any(upgrade))
        .route("/health", get(health))
        .fallback(|| async { (StatusCode::NOT_FOUND, "not found") })
        .with_state(chat)
}

async fn page() -> Html<&'static str> {
    Html(PAGE)
}

async fn health(State(chat): State<Arc<Chat>>) -> Response {
    let rooms = chat.rooms.lock().unwrap().len();
    let backplane = chat.link().map_or("off", backplane::Link::name);
    let body = serde_json::json!({
        "connections": chat.connections(),
        "rooms": rooms,
        "backplane": backplane,
    });
    ([(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

/// The query of `/ws`.
#[derive(Deserialize)]
struct Join {
    room: Option<String>,
    name: Option<String>,
}

/// Checks a room or user name: 1 to `max` characters, no control characters.
fn valid_label(label: &str, max: usize) -> bool {
    let len = label.chars().count();
    (1..=max).contains(&len) && !label.chars().any(char::is_control)
}

async fn upgrade(
    State(chat): State<Arc<Chat>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    query: Result<Query<Join>, QueryRejection>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    let (room, name) = match query {
        Ok(Query(join)) => (join.room, join.name),
        Err(_) => return (StatusCode::BAD_REQUEST, "invalid query").into_response(),
    };
    let room = room.unwrap_or_else(|| "lobby".into());
    let name = name.unwrap_or_else(|| "guest".into());
    if !valid_label(&room, 64) || !valid_label(&name, 32) {
        return (StatusCode::BAD_REQUEST, "room: 1-64 characters, name: 1-32").into_response();
    }
    let Some(client) = client_address(peer.ip(), &headers, &chat.options.trusted_proxies) else {
        return (StatusCode::BAD_REQUEST, "malformed X-Forwarded-For").into_response();
    };
    let Some(slot) = AddressSlot::take(&chat, client) else {
        return (StatusCode::TOO_MANY_REQUESTS, "too many connections from this address")
            .into_response();
    };
    let host = headers.get("host").and_then(|h| h.to_str().ok()).map(str::to_owned);
    let config = chat.options.config();
    let decide = {
        let chat = Arc::clone(&chat);
        move |request: &Request<'_>| decide(&chat.options, host.as_deref(), request)
    };
    upgrade.config(config).on_upgrade_with(decide, move |socket| async move {
        let _slot = slot;
        member(chat, socket, room, name).await;
    })
}

/// Accepts a request whose `Origin` (if any) names the served host or an allowed origin.
fn decide(options: &Options, host: Option<&str>, request: &Request<'_>) -> Decision {
    let Some(origin) = request.origin() else { return Decision::accept() };
    let Some(allowed) = &options.allowed_origins else { return Decision::accept() };
    let origin = String::from_utf8_lossy(origin);
    let origin_host = origin.split_once("://").map(|(_, rest)| rest);
    let same_host = origin_host.is_some() && origin_host == host;
    if same_host || allowed.iter().any(|a| a.eq_ignore_ascii_case(&origin)) {
        Decision::accept()
    } else {
        Decision::reject(403).body("cross-site WebSocket requests are not allowed")
    }
}

/// One of an address's connections, given back when dropped.
struct AddressSlot {
    chat: Arc<Chat>,
    ip: IpAddr,
}

impl AddressSlot {
    fn take(chat: &Arc<Chat>, ip: IpAddr) -> Option<Self> {
        let mut addresses = chat.addresses.lock().unwrap();
        let count = addresses.entry(ip).or_default();
        if *count >= chat.options.max_per_address {
            return None;
        }
        *count += 1;
        Some(Self { chat: Arc::clone(chat), ip })
    }
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        let mut addresses = self.chat.addresses.lock().unwrap();
        if let Some(count) = addresses.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                addresses.remove(&self.ip);
            }
        }
    }
}

/// What the server sends.
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
enum ServerEvent<'a> {
    Message { room: &'a str, name: &'a str, text: &'a str, time: u64 },
    Join { room: &'a str, name: &'a str, time: u64 },
    Leave { room: &'a str, name: &'a str, time: u64 },
    Error { text: &'a str },
    Backplane { state: &'a str, time: u64 },
    Missed { room: &'a str, count: u64, time: u64 },
}

/// What a client sends.
#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
enum ClientEvent {
    Message { text: String },
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// A member's life: join, relay its messages, leave.
async fn member(chat: Arc<Chat>, socket: WebSocket<Upgraded>, room: String, name: String) {
    let id = chat.next_id.fetch_add(1, Ordering::Relaxed);
    let _open = Open::new(&chat);
    let (mut reader, writer) = socket.split();
    let writer = Arc::new(writer);
    {
        let slot = chat.slot().await;
        let mut rooms = chat.rooms.lock().unwrap();
        let state = rooms.entry(room.clone()).or_insert_with(|| {
            if let Some(backplane) = &chat.backplane {
                backplane.joined(&room);
            }
            Room {
                members: HashMap::new(),
                epoch: chat.next_epoch.fetch_add(1, Ordering::Relaxed),
                seq: 0,
                remote: HashMap::new(),
            }
        });
        state.members.insert(id, Arc::clone(&writer));
        let join = ServerEvent::Join { room: &room, name: &name, time: now_ms() };
        chat.broadcast(state, &room, &join, slot);
        // A member joining while the rooms are local to this server is told so.
        if chat.link() == Some(backplane::Link::Down) {
            let down = backplane_event(backplane::Link::Down);
            let _ = writer.try_send(Outgoing::Text(down));
        }
    }
    let mut bucket = Bucket::new(chat.options.burst, chat.options.rate);
    let mut pace = Pace::new(chat.options.byte_rate);
    let _ended = relay(&chat, &mut reader, &writer, &mut bucket, &mut pace, &room, &name).await;
    let slot = chat.slot().await;
    let mut rooms = chat.rooms.lock().unwrap();
    if let Some(state) = rooms.get_mut(&room) {
        state.members.remove(&id);
        // The other servers hear of the leave even when nobody is left here.
        let leave = ServerEvent::Leave { room: &room, name: &name, time: now_ms() };
        chat.broadcast(state, &room, &leave, slot);
        if state.members.is_empty() {
            rooms.remove(&room);
            if let Some(backplane) = &chat.backplane {
                backplane.left(&room);
            }
        }
    }
}

/// Counts an open connection while it lives.
struct Open<'a>(&'a Chat);

impl<'a> Open<'a> {
    fn new(chat: &'a Chat) -> Self {
        chat.connections.fetch_add(1, Ordering::Relaxed);
        Self(chat)
    }
}

impl Drop for Open<'_> {
    fn drop(&mut self) {
        self.0.connections.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Relays a member's messages to its room until the connection ends.
async fn relay(
    chat: &Chat,
    reader: &mut ReadHalf,
    writer: &WriteHalf,
    bucket: &mut Bucket,
    pace: &mut Pace,
    room: &str,
    name: &str,
) -> Result<(), AdapterError> {
    loop {
        pace.wait().await;
        let Some(incoming) = reader.recv().await? else { break };
        let text = match incoming {
            Incoming::Text(text) => text,
            Incoming::Binary(data) => {
                pace.charge(data.len());
                reply_error(writer, "binary messages are not part of the protocol");
                continue;
            }
            Incoming::Close(_) => break,
            _ => continue,
        };
        pace.charge(text.len());
        if !bucket.take(std::time::Instant::now()) {
            let close = Outgoing::Close(CloseCode::POLICY_VIOLATION, "too many messages".into());
            let _ = writer.try_send(close);
            break;
        }
        match serde_json::from_str::<ClientEvent>(&text) {
            Ok(ClientEvent::Message { text }) => {
                let slot = chat.slot().await;
                let mut rooms = chat.rooms.lock().unwrap();
                let event = ServerEvent::Message { room, name, text: &text, time: now_ms() };
                if let Some(state) = rooms.get_mut(room) {
                    chat.broadcast(state, room, &event, slot);
                }
            }
            Err(e) => reply_error(writer, &format!("invalid message: {e}")),
        }
    }
    // Closing (by the peer or by us): read on until the closing handshake is over.
    while let Ok(Some(_)) = reader.recv().await {}
    Ok(())
}

fn reply_error(writer: &WriteHalf, text: &str) {
    let event = serde_json::to_string(&ServerEvent::Error { text }).expect("serializable");
    let _ = writer.try_send(Outgoing::Text(event));
}

/// Paces a connection's reading to `rate` bytes per second, after a second's worth at once.
struct Pace {
    rate: f64,
    /// When the bytes charged so far will have been paid for at `rate`.
    paid_at: tokio::time::Instant,
}

impl Pace {
    fn new(rate: usize) -> Self {
        Self { rate: rate.max(1) as f64, paid_at: tokio::time::Instant::now() }
    }

    fn charge(&mut self, bytes: usize) {
        let now = tokio::time::Instant::now();
        self.paid_at = self.paid_at.max(now) + Duration::from_secs_f64(bytes as f64 / self.rate);
    }

    /// Waits while more than a second's worth is unpaid.
    async fn wait(&self) {
        let allowed = self.paid_at - Duration::from_secs(1);
        if allowed > tokio::time::Instant::now() {
            tokio::time::sleep_until(allowed).await;
        }
    }
}

/// A token bucket: `burst` tokens, refilled at `rate` per second.
struct Bucket {
    tokens: f64,
    burst: f64,
    rate: f64,
    last: std::time::Instant,
}

impl Bucket {
    fn new(burst: u32, rate: u32) -> Self {
        let burst = f64::from(burst);
        Self { tokens: burst, burst, rate: f64::from(rate), last: std::time::Instant::now() }
    }

    /// Takes a token; `false` when none is left.
    fn take(&mut self, now: std::time::Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        if self.tokens < 1.0 {
            return false;
        }
        self.tokens -= 1.0;
        true
    }
}
