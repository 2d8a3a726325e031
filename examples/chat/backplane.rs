//! The Redis backplane: several chat servers, one set of rooms (`--redis redis://HOST:PORT`).
//!
//! Each server delivers a room's messages to its own members at once, as it does alone, and
//! publishes them on the Redis channel `chat:room:ROOM`; it subscribes to the channels of the
//! rooms it has members in, and delivers what the other servers publish there to its members,
//! each message encoded once for all of them. Joins and leaves travel the same way.
//!
//! # The envelope
//!
//! A publication's payload is `SERVER EPOCH SEQ JSON`: the publishing server's id (unique per
//! process), the epoch of the publisher's room (a new one each time the room is created
//! there), the message's number in that epoch (1, 2, ...) and the event exactly as the
//! publisher's own members got it. A server skips its own publications, and delivers the
//! others in the order Redis hands them over, which is the publisher's order (one
//! connection publishes them, one pipeline at a time).
//!
//! # When Redis is away
//!
//! Redis pub/sub delivers at most once: what is published while a subscriber is away is lost
//! to it. So the chat does not pretend otherwise:
//!
//! - a server that loses Redis (its connection ends, or a `PING` gets no answer within 2 s)
//!   tells every member `{"type":"backplane","state":"down","time":MS}`, keeps serving its
//!   rooms locally, drops what it would have published (its members were told), and
//!   reconnects with backoff (0.1 s doubling to 5 s, with jitter); once it has subscribed
//!   again it tells them `{"type":"backplane","state":"up","time":MS}`;
//! - a server that finds a gap in a publisher's numbers (messages the publisher sent while
//!   this server, or the publisher itself, had lost Redis) tells the room's members
//!   `{"type":"missed","room":R,"count":N,"time":MS}`.

use std::collections::hash_map::RandomState;
use std::collections::HashSet;
use std::hash::BuildHasher;
use std::sync::{Mutex, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::StreamExt;
use redis::aio::{MultiplexedConnection, PubSubSink, PubSubStream};
use redis::{AsyncConnectionConfig, Client, IntoConnectionInfo, RedisError};
use tokio::sync::mpsc;

use super::Chat;

/// The channels' prefix: room `lobby` is channel `chat:room:lobby`.
pub const CHANNEL_PREFIX: &str = "chat:room:";

/// Publications waiting for Redis; past it a message is not published (the receivers see the
/// gap in its numbers).
const OUTBOX: usize = 16 * 1024;
/// Publications sent in one pipeline.
const BATCH: usize = 256;
/// How often the link is checked, and how long Redis may take to answer.
const PING_EVERY: Duration = Duration::from_secs(1);
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);
/// Reconnection backoff.
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// The state of the link to Redis.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Link {
    /// The first connection is being made.
    Connecting,
    /// Connected and subscribed: rooms span the servers.
    Up,
    /// Lost: rooms are local to this server until it is back.
    Down,
}

impl Link {
    pub fn name(self) -> &'static str {
        match self {
            Link::Connecting => "connecting",
            Link::Up => "up",
            Link::Down => "down",
        }
    }
}

/// A server's side of the backplane, held by its [`Chat`].
pub struct Backplane {
    /// This server's id in the envelopes.
    pub server: String,
    outbox: mpsc::Sender<Publication>,
    rooms: mpsc::UnboundedSender<Subscription>,
    link: Mutex<Link>,
}

/// Room in the outbox for one publication ([`Backplane::slot`]).
pub struct Slot<'a>(Option<mpsc::Permit<'a, Publication>>);

struct Publication {
    channel: String,
    payload: String,
}

/// A change to the set of rooms this server has members in.
enum Subscription {
    Join(String),
    Leave(String),
}

/// A publication received from another server.
pub struct Envelope<'a> {
    pub server: &'a str,
    pub epoch: u64,
    pub seq: u64,
    pub json: &'a str,
}

impl<'a> Envelope<'a> {
    fn parse(payload: &'a [u8]) -> Option<Self> {
        let payload = std::str::from_utf8(payload).ok()?;
        let mut fields = payload.splitn(4, ' ');
        Some(Self {
            server: fields.next()?,
            epoch: fields.next()?.parse().ok()?,
            seq: fields.next()?.parse().ok()?,
            json: fields.next()?,
        })
    }
}

impl Backplane {
    /// Checks `url` and starts the link to it on the current tokio runtime; the link task
    /// ends when `chat` is dropped.
    pub fn start(url: &str, chat: Weak<Chat>) -> Result<Self, RedisError> {
        // Small publications go out at once (the crate leaves Nagle's algorithm on).
        let info = url.into_connection_info()?;
        let tcp = info.tcp_settings().clone().set_nodelay(true);
        let client = Client::open(info.set_tcp_settings(tcp))?;
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        let server = format!("{:x}-{}", nanos, std::process::id());
        let (outbox, outbox_rx) = mpsc::channel(OUTBOX);
        let (rooms, rooms_rx) = mpsc::unbounded_channel();
        let task =
            Task { client, chat, server: server.clone(), outbox: outbox_rx, rooms: rooms_rx };
        tokio::spawn(task.run());
        Ok(Self { server, outbox, rooms, link: Mutex::new(Link::Connecting) })
    }

    pub fn link(&self) -> Link {
        *self.link.lock().unwrap()
    }

    /// Waits, while the link is up, for room in the outbox for one publication; taken before
    /// the rooms are locked. A member who sends faster than Redis takes the messages is so
    /// slowed down (its connection is not read meanwhile, and TCP pushes back on it) rather
    /// than its messages lost to the other servers.
    pub async fn slot(&self) -> Slot<'_> {
        if self.link() != Link::Up {
            return Slot(None);
        }
        Slot(self.outbox.reserve().await.ok())
    }

    /// Publishes an event of `room` in `slot` (called in the room's order, with the rooms
    /// locked). Dropped while the link is not up: the members were told.
    pub fn publish(&self, slot: Slot<'_>, room: &str, epoch: u64, seq: u64, json: &str) {
        if self.link() != Link::Up {
            return;
        }
        let publication = Publication {
            channel: format!("{CHANNEL_PREFIX}{room}"),
            payload: format!("{} {epoch} {seq} {json}", self.server),
        };
        match slot.0 {
            Some(permit) => permit.send(publication),
            // The link came up after the slot was asked for: a full outbox now loses this
            // one, and its number shows the gap to the receivers.
            None => {
                let _ = self.outbox.try_send(publication);
            }
        }
    }

    /// The first local member of `room` joined: subscribe to it.
    pub fn joined(&self, room: &str) {
        let _ = self.rooms.send(Subscription::Join(room.to_owned()));
    }

    /// The last local member of `room` left.
    pub fn left(&self, room: &str) {
        let _ = self.rooms.send(Subscription::Leave(room.to_owned()));
    }
}

/// The link task: connects, subscribes, publishes, delivers, and starts over when Redis goes.
struct Task {
    client: Client,
    chat: Weak<Chat>,
    server: String,
    outbox: mpsc::Receiver<Publication>,
    rooms: mpsc::UnboundedReceiver<Subscription>,
}

/// Why a connected link ended.
enum Ended {
    Lost(String),
    ChatGone,
}

impl Task {
    async fn run(mut self) {
        let mut wanted = HashSet::new();
        let mut backoff = BACKOFF_MIN;
        let jitter = RandomState::new();
        let mut attempt = 0u64;
        loop {
            match self.connect(&mut wanted).await {
                Ok((conn, sink, stream)) => {
                    backoff = BACKOFF_MIN;
                    if !self.set_link(Link::Up) {
                        return;
                    }
                    match self.connected(conn, sink, stream, &mut wanted).await {
                        Ended::ChatGone => return,
                        Ended::Lost(why) => eprintln!("chat: lost Redis ({why}); reconnecting"),
                    }
                }
                Err(e) => {
                    if attempt == 0 || backoff == BACKOFF_MAX {
                        eprintln!("chat: cannot reach Redis ({e}); retrying");
                    }
                }
            }
            if !self.set_link(Link::Down) {
                return;
            }
            // Wait, with a jitter of ±25 % so that servers do not return all at once; what
            // would have been published meanwhile was dropped by `Backplane::publish`, and
            // the rooms' comings and goings are still tracked.
            attempt += 1;
            let spread = (jitter.hash_one(attempt) % 501) as f64 / 1000.0 + 0.75;
            let pause = tokio::time::sleep(backoff.mul_f64(spread));
            tokio::pin!(pause);
            loop {
                tokio::select! {
                    () = &mut pause => break,
                    change = self.rooms.recv() => match change {
                        Some(change) => apply(&mut wanted, change),
                        None => return,
                    },
                    publication = self.outbox.recv() => if publication.is_none() { return },
                }
            }
            backoff = (backoff * 2).min(BACKOFF_MAX);
        }
    }

    /// Records the link's state and tells every member when it changed; `false` once the
    /// chat is gone.
    fn set_link(&self, link: Link) -> bool {
        let Some(chat) = self.chat.upgrade() else { return false };
        let backplane = chat.backplane.as_ref().expect("a backplane task has a backplane");
        let before = std::mem::replace(&mut *backplane.link.lock().unwrap(), link);
        if before != link && !(before == Link::Connecting && link == Link::Up) {
            chat.tell_everyone_link(link);
        }
        true
    }

    async fn connect(
        &mut self,
        wanted: &mut HashSet<String>,
    ) -> Result<(MultiplexedConnection, PubSubSink, PubSubStream), RedisError> {
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(RESPONSE_TIMEOUT))
            .set_response_timeout(Some(RESPONSE_TIMEOUT));
        let conn = self.client.get_multiplexed_async_connection_with_config(&config).await?;
        let pubsub = tokio::time::timeout(RESPONSE_TIMEOUT, self.client.get_async_pubsub())
            .await
            .map_err(|_| timed_out("connecting for pub/sub"))??;
        let (mut sink, stream) = pubsub.split();
        // The rooms that gained or lost members while the link was down.
        while let Ok(change) = self.rooms.try_recv() {
            apply(wanted, change);
        }
        // Anything left in the outbox was meant for the lost link.
        while self.outbox.try_recv().is_ok() {}
        if !wanted.is_empty() {
            let channels: Vec<String> = wanted.iter().map(|r| channel(r)).collect();
            tokio::time::timeout(RESPONSE_TIMEOUT, sink.subscribe(channels))
                .await
                .map_err(|_| timed_out("subscribing"))??;
        }
        Ok((conn, sink, stream))
    }

    /// Runs a connected link until it is lost.
    async fn connected(
        &mut self,
        mut conn: MultiplexedConnection,
        mut sink: PubSubSink,
        mut stream: PubSubStream,
        wanted: &mut HashSet<String>,
    ) -> Ended {
        let mut ping_conn = conn.clone();
        let publish = publish(&mut conn, &mut self.outbox);
        let subscriptions = subscriptions(&mut sink, &mut self.rooms, wanted);
        let deliver = deliver(&mut stream, &self.chat, &self.server);
        let ping = async {
            let mut every = tokio::time::interval(PING_EVERY);
            loop {
                every.tick().await;
                if let Err(e) = redis::cmd("PING").query_async::<()>(&mut ping_conn).await {
                    return Ended::Lost(e.to_string());
                }
            }
        };
        tokio::select! {
            ended = publish => ended,
            ended = subscriptions => ended,
            ended = deliver => ended,
            ended = ping => ended,
        }
    }
}

fn channel(room: &str) -> String {
    format!("{CHANNEL_PREFIX}{room}")
}

fn apply(wanted: &mut HashSet<String>, change: Subscription) {
    match change {
        Subscription::Join(room) => wanted.insert(room),
        Subscription::Leave(room) => wanted.remove(&room),
    };
}

fn timed_out(what: &str) -> RedisError {
    RedisError::from(std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        format!("{what}: no answer from Redis"),
    ))
}

/// Publishes the outbox in order, a pipeline at a time.
async fn publish(
    conn: &mut MultiplexedConnection,
    outbox: &mut mpsc::Receiver<Publication>,
) -> Ended {
    let mut batch = Vec::with_capacity(BATCH);
    loop {
        if outbox.recv_many(&mut batch, BATCH).await == 0 {
            return Ended::ChatGone;
        }
        let mut pipe = redis::pipe();
        for p in batch.drain(..) {
            pipe.cmd("PUBLISH").arg(p.channel).arg(p.payload).ignore();
        }
        if let Err(e) = pipe.query_async::<()>(conn).await {
            return Ended::Lost(e.to_string());
        }
    }
}

/// Follows the rooms this server has members in.
async fn subscriptions(
    sink: &mut PubSubSink,
    rooms: &mut mpsc::UnboundedReceiver<Subscription>,
    wanted: &mut HashSet<String>,
) -> Ended {
    loop {
        let Some(change) = rooms.recv().await else { return Ended::ChatGone };
        let result = match &change {
            Subscription::Join(room) if !wanted.contains(room) => {
                sink.subscribe(channel(room)).await
            }
            Subscription::Leave(room) if wanted.contains(room) => {
                sink.unsubscribe(channel(room)).await
            }
            _ => Ok(()),
        };
        apply(wanted, change);
        if let Err(e) = result {
            return Ended::Lost(e.to_string());
        }
    }
}

/// Delivers the other servers' publications to this server's members.
async fn deliver(stream: &mut PubSubStream, chat: &Weak<Chat>, me: &str) -> Ended {
    while let Some(message) = stream.next().await {
        let Some(room) = message.get_channel_name().strip_prefix(CHANNEL_PREFIX) else { continue };
        let Some(envelope) = Envelope::parse(message.get_payload_bytes()) else { continue };
        if envelope.server == me {
            continue;
        }
        let Some(chat) = chat.upgrade() else { return Ended::ChatGone };
        chat.deliver_remote(room, &envelope);
    }
    Ended::Lost("the pub/sub connection closed".into())
}
