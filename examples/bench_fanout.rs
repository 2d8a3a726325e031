//! Load generator for the fan-out benchmark (`scripts/fanout.py`) and the chat load test: many
//! subscribers in one chat room and one sender, over loopback, against any server speaking
//! the chat protocol (examples/chat). The clients are tokio-tungstenite for every server,
//! so each server under test faces the same peers.
//!
//! ```text
//! bench_fanout ADDR SUBSCRIBERS SIZE RATE COUNT
//! ```
//!
//! Connects SUBSCRIBERS clients to `/ws?room=fanout&name=sN` (spread over the source
//! addresses 127.0.0.1 to 127.0.0.16), then a sender; prints `start` once every subscriber
//! got a warm-up message from it and no subscriber saw a join or leave for 1 s (the joins'
//! million events are delivered), then sends COUNT messages whose text is SIZE bytes, RATE
//! per second. Every connection stays open until all subscribers are done.
//! Each text starts with its sequence number and the time it was sent, so every subscriber
//! checks that it gets every message once and in order, and how long each took. Prints one
//! JSON line: deliveries (to the subscribers and the sender), whether all arrived in order,
//! the latency of a delivery and the time for a message to reach every subscriber (p50 and
//! p99, microseconds). Exits with 1 if a message was lost, duplicated or out of order. Ends
//! by itself: it waits at most COUNT / RATE + 30 s for the last deliveries.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() != 5 {
        eprintln!("usage: bench_fanout ADDR SUBSCRIBERS SIZE RATE COUNT");
        std::process::exit(2);
    }
    let addr: SocketAddr = args[0].parse().expect("ADDR as IP:PORT");
    assert!(addr.ip().is_loopback(), "the load generator only targets loopback addresses");
    let number = |i: usize| -> usize { args[i].parse().expect("a number") };
    let (subscribers, size, rate, count) = (number(1), number(2), number(3), number(4));
    assert!(size >= 32, "SIZE holds the sequence number and the send time: at least 32");
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    let ok = rt.block_on(run(addr, subscribers, size, rate, count));
    std::process::exit(if ok { 0 } else { 1 });
}

/// What a subscriber saw: for each message in arrival order, its sequence number and its
/// latency (microseconds).
type Seen = Vec<(usize, u64)>;

async fn open(addr: SocketAddr, n: usize, name: &str) -> WebSocketStream<TcpStream> {
    let source = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1 + (n % 16) as u8));
    let socket = TcpSocket::new_v4().expect("socket");
    socket.bind(SocketAddr::new(source, 0)).expect("bind source address");
    let tcp = socket.connect(addr).await.expect("connect");
    tcp.set_nodelay(true).expect("nodelay");
    let url = format!("ws://{addr}/ws?room=fanout&name={name}");
    let config = WebSocketConfig::default().max_message_size(Some(64 << 20));
    let (ws, _) = tokio_tungstenite::client_async_with_config(url, tcp, Some(config))
        .await
        .expect("handshake");
    ws
}

/// The sequence number and send time (nanoseconds since `base`) at the start of a message's
/// text, found in the server's JSON without parsing all of it.
fn stamp(json: &str) -> Option<(usize, u64)> {
    if !json.contains(r#""type":"message""#) {
        return None;
    }
    let text = json.split_once(r#""text":""#)?.1;
    let mut fields = text.split(' ');
    Some((fields.next()?.parse().ok()?, fields.next()?.parse().ok()?))
}

async fn run(addr: SocketAddr, subscribers: usize, size: usize, rate: usize, count: usize) -> bool {
    let base = Instant::now();
    let ready = Arc::new(AtomicUsize::new(0));
    // When a subscriber last saw an event other than a message (a join, a leave), in
    // microseconds since `base`.
    let last_event = Arc::new(AtomicU64::new(0));
    let mut opened = futures_util::stream::iter(0..subscribers)
        .map(|n| async move { open(addr, n, &format!("s{n}")).await })
        .buffer_unordered(128);
    let mut sockets = Vec::with_capacity(subscribers);
    while let Some(ws) = opened.next().await {
        sockets.push(ws);
    }
    let deadline = Duration::from_secs_f64(count as f64 / rate as f64) + Duration::from_secs(30);
    let tasks: Vec<_> = sockets
        .into_iter()
        .map(|ws| {
            let (ready, last_event) = (Arc::clone(&ready), Arc::clone(&last_event));
            tokio::spawn(subscriber(ws, ready, last_event, base, count, deadline))
        })
        .collect();
    let sender_ws = open(addr, subscribers, "sender").await;
    let (mut sink, stream) = sender_ws.split();
    // The sender reads its own copies too (it is a member of the room).
    let (own_ready, own_events) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicU64::new(0)));
    let own = tokio::spawn(subscriber(stream, own_ready, own_events, base, count, deadline));
    // Warm-up messages until every subscriber got one: the joins have then been delivered
    // (a server that drops messages for a full queue may have dropped some of them).
    let wait_ready = Instant::now();
    while ready.load(Ordering::Acquire) < subscribers {
        if wait_ready.elapsed() > Duration::from_secs(60) {
            eprintln!(
                "only {} of {subscribers} subscribers got a warm-up message",
                ready.load(Ordering::Acquire)
            );
            return false;
        }
        let warm = serde_json::json!({"type": "message", "text": "warm-up"}).to_string();
        sink.send(Message::text(warm)).await.expect("send");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The joins of 1,000 members are a million events (each is told to every member); the
    // measurement starts once they are all delivered: no subscriber saw one for 1 s.
    let quiet_since = Instant::now();
    loop {
        let last = Duration::from_micros(last_event.load(Ordering::Acquire));
        if base.elapsed().saturating_sub(last) >= Duration::from_secs(1) {
            break;
        }
        if quiet_since.elapsed() > Duration::from_secs(60) {
            eprintln!("the joins were still arriving after 60 s");
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!("start");
    let started = Instant::now();
    let mut ticks = tokio::time::interval(Duration::from_secs_f64(1.0 / rate as f64));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    for seq in 0..count {
        ticks.tick().await;
        let mut text = format!("{seq} {} ", base.elapsed().as_nanos());
        text.extend(std::iter::repeat('x').take(size - text.len()));
        let json = serde_json::json!({"type": "message", "text": text}).to_string();
        sink.send(Message::text(json)).await.expect("send");
    }
    // The connections stay open until every subscriber is done: a subscriber that left early
    // would make the server tell the others, delaying their last messages.
    let mut seen = Vec::with_capacity(subscribers);
    let mut open_streams = Vec::with_capacity(subscribers);
    for task in tasks {
        let (got, stream) = task.await.expect("subscriber");
        seen.push(got);
        open_streams.push(stream);
    }
    let (sender_seen, _own_stream) = own.await.expect("sender's own copies");
    let seconds = started.elapsed().as_secs_f64();
    report(&seen, &sender_seen, subscribers, count, seconds)
}

/// Reads until `count` messages arrived (or the deadline passed); counts itself ready when it
/// gets its first warm-up message, and notes when it saw any other event. Gives the stream
/// back, still open.
async fn subscriber<S>(
    mut stream: S,
    ready: Arc<AtomicUsize>,
    last_event: Arc<AtomicU64>,
    base: Instant,
    count: usize,
    deadline: Duration,
) -> (Seen, S)
where
    S: futures_util::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    let mut seen = Vec::with_capacity(count);
    let mut warm = false;
    let until = tokio::time::Instant::now() + deadline + Duration::from_secs(60);
    while seen.len() < count {
        let next = match tokio::time::timeout_at(until, stream.next()).await {
            Ok(Some(Ok(message))) => message,
            _ => break,
        };
        let Message::Text(json) = next else { continue };
        match stamp(&json) {
            Some((seq, sent)) => {
                let latency = base.elapsed().as_nanos().saturating_sub(u128::from(sent));
                seen.push((seq, (latency / 1000) as u64));
            }
            None if !warm && json.contains("warm-up") => {
                warm = true;
                ready.fetch_add(1, Ordering::AcqRel);
            }
            None if !json.contains(r#""type":"message""#) => {
                last_event.fetch_max(base.elapsed().as_micros() as u64, Ordering::AcqRel);
            }
            None => {}
        }
    }
    (seen, stream)
}

/// Prints the JSON line; `true` if every message reached everyone once, in order.
fn report(seen: &[Seen], sender: &Seen, subscribers: usize, count: usize, seconds: f64) -> bool {
    let in_order = |s: &Seen| s.iter().map(|&(seq, _)| seq).eq(0..count);
    let complete = seen.iter().all(in_order) && in_order(sender);
    let delivered: usize = seen.iter().map(Vec::len).sum::<usize>() + sender.len();
    let mut all = vec![0u64; count];
    let mut deliveries: Vec<u64> = Vec::with_capacity(delivered);
    for subscriber in seen {
        for &(seq, latency) in subscriber {
            if let Some(slot) = all.get_mut(seq) {
                *slot = (*slot).max(latency);
            }
            deliveries.push(latency);
        }
    }
    all.sort_unstable();
    deliveries.sort_unstable();
    let pct = |v: &[u64], p: f64| {
        v.get(((v.len() as f64 - 1.0) * p).round() as usize).copied().unwrap_or(0)
    };
    println!(
        "{{\"subscribers\": {subscribers}, \"messages\": {count}, \"delivered\": {delivered}, \
         \"expected\": {}, \"in_order\": {complete}, \"seconds\": {seconds:.3}, \
         \"p50_us\": {}, \"p99_us\": {}, \"all_p50_us\": {}, \"all_p99_us\": {}}}",
        (subscribers + 1) * count,
        pct(&deliveries, 0.50),
        pct(&deliveries, 0.99),
        pct(&all, 0.50),
        pct(&all, 0.99),
    );
    if !complete {
        let short = seen.iter().filter(|s| !in_order(s)).count();
        eprintln!("{short} subscribers missed, repeated or reordered messages");
    }
    complete
}
