//! The chat example's protocol and protections over loopback, with this crate's client: the
//! server module of `examples/chat` served in-process on an ephemeral port.

#[path = "../examples/chat/server.rs"]
#[allow(dead_code)]
mod server;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use wsmachine::tokio::{self as ws, WebSocket};
use wsmachine::{AdapterError, ClientRequest, CloseCode, Config, Incoming, Outgoing};

async fn bounded<T>(secs: u64, future: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(secs), future)
        .await
        .unwrap_or_else(|_| panic!("test did not finish within {secs} s"))
}

/// Serves the chat with `options`; returns its address and state.
async fn serve(options: server::Options) -> (SocketAddr, Arc<server::Chat>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let chat = Arc::new(server::Chat::new(options));
    let app =
        server::router_with(Arc::clone(&chat)).into_make_service_with_connect_info::<SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, chat)
}

/// Limits that let the clients receive the largest broadcasts.
fn client_config() -> Config {
    Config::new().max_message_size(4 << 20).max_frame_size(4 << 20)
}

async fn join_with(
    addr: SocketAddr,
    room: &str,
    name: &str,
    origin: Option<&str>,
) -> Result<WebSocket, AdapterError> {
    let tcp = TcpStream::connect(addr).await?;
    let host = addr.to_string();
    let target = format!("/ws?room={room}&name={name}");
    let mut request = ClientRequest::new(&host, &target);
    if let Some(origin) = origin {
        request = request.origin(origin);
    }
    Ok(ws::connect(tcp, &request, client_config()).await?.0)
}

/// Joins `room` as `name` and waits for its own join to come back.
async fn join(addr: SocketAddr, room: &str, name: &str) -> WebSocket {
    let mut socket = join_with(addr, room, name, None).await.unwrap();
    loop {
        let event = next(&mut socket).await;
        if event["type"] == "join" && event["name"] == name {
            return socket;
        }
    }
}

/// The next JSON event (keepalive pings, which the client answers by itself, are skipped).
async fn next(socket: &mut WebSocket) -> Value {
    loop {
        match socket.recv().await.unwrap() {
            Some(Incoming::Text(text)) => return serde_json::from_str(&text).unwrap(),
            Some(Incoming::Ping(_)) => {}
            other => panic!("expected a JSON text message, got {other:?}"),
        }
    }
}

/// The next event that is not a join or a leave.
async fn next_message(socket: &mut WebSocket) -> Value {
    loop {
        let event = next(socket).await;
        if event["type"] != "join" && event["type"] != "leave" {
            return event;
        }
    }
}

async fn say(socket: &mut WebSocket, text: &str) {
    let json = serde_json::json!({"type": "message", "text": text}).to_string();
    socket.send(Outgoing::Text(json)).await.unwrap();
}

/// Reads until the connection ends; the close code received, if any.
async fn close_code(socket: &mut WebSocket) -> Option<CloseCode> {
    let mut code = None;
    loop {
        match socket.recv().await {
            Ok(Some(Incoming::Close(frame))) => code = Some(frame.code()),
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => return code,
        }
    }
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_reaches_every_member_once_in_one_order_and_no_other_room() {
    bounded(30, async {
        let (addr, _chat) = serve(server::Options::default()).await;
        let mut members = Vec::new();
        for name in ["ann", "bob", "cy"] {
            members.push(join(addr, "a", name).await);
        }
        let mut other = join(addr, "b", "dee").await;
        // Everyone in room a sends 20 messages at once.
        let senders: Vec<_> = members
            .into_iter()
            .enumerate()
            .map(|(i, mut socket)| {
                tokio::spawn(async move {
                    for n in 0..20 {
                        say(&mut socket, &format!("{i}:{n}")).await;
                    }
                    socket
                })
            })
            .collect();
        let mut members = Vec::new();
        for sender in senders {
            members.push(sender.await.unwrap());
        }
        let before = now_ms();
        let mut orders = Vec::new();
        for socket in &mut members {
            let mut seen = Vec::new();
            while seen.len() < 60 {
                let event = next_message(socket).await;
                assert_eq!(event["type"], "message");
                assert_eq!(event["room"], "a");
                let time = event["time"].as_u64().unwrap();
                assert!(time <= now_ms() && time + 30_000 > before, "time {time}");
                let text = event["text"].as_str().unwrap().to_string();
                let sender = ["ann", "bob", "cy"][text[..1].parse::<usize>().unwrap()];
                assert_eq!(event["name"], sender);
                seen.push(text);
            }
            // Each sender's messages in the order sent; nothing twice.
            for i in 0..3 {
                let own: Vec<_> = seen.iter().filter(|t| t.starts_with(&format!("{i}:"))).collect();
                let sent: Vec<_> = (0..20).map(|n| format!("{i}:{n}")).collect();
                assert_eq!(own, sent.iter().collect::<Vec<_>>());
            }
            orders.push(seen);
        }
        assert!(orders.windows(2).all(|w| w[0] == w[1]), "every member saw one order");
        // Nothing of room a reached room b.
        say(&mut other, "only b").await;
        let event = next_message(&mut other).await;
        assert_eq!((event["room"].as_str(), event["text"].as_str()), (Some("b"), Some("only b")));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn joins_and_leaves_are_announced() {
    bounded(20, async {
        let (addr, chat) = serve(server::Options::default()).await;
        let mut ann = join(addr, "hall", "ann").await;
        let bob = join(addr, "hall", "bob").await;
        let event = next(&mut ann).await;
        assert_eq!((event["type"].as_str(), event["name"].as_str()), (Some("join"), Some("bob")));
        assert_eq!(event["room"], "hall");
        assert!(event["time"].as_u64().unwrap() <= now_ms());
        assert_eq!(chat.members("hall"), 2);
        drop(bob);
        let event = next(&mut ann).await;
        assert_eq!((event["type"].as_str(), event["name"].as_str()), (Some("leave"), Some("bob")));
        assert_eq!(chat.members("hall"), 1);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cross_site_origin_is_refused_with_403() {
    bounded(20, async {
        let (addr, _chat) = serve(server::Options::default()).await;
        let refused = join_with(addr, "r", "eve", Some("https://evil.example")).await;
        match refused {
            Err(AdapterError::Refused(response)) => assert_eq!(response.status(), 403),
            other => panic!("expected a 403, got {other:?}"),
        }
        // The served host itself, and no Origin at all (a non-browser client), are allowed.
        let own = format!("http://{addr}");
        join_with(addr, "r", "ann", Some(&own)).await.unwrap();
        join_with(addr, "r", "bot", None).await.unwrap();
        // An allowed origin, by flag.
        let options = server::Options {
            allowed_origins: Some(vec!["https://app.example".into()]),
            ..server::Options::default()
        };
        let (addr, _chat) = serve(options).await;
        join_with(addr, "r", "app", Some("https://app.example")).await.unwrap();
        assert!(join_with(addr, "r", "eve", Some("https://evil.example")).await.is_err());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_over_1_mib_is_refused_with_1009_and_one_of_1_mib_goes_through() {
    bounded(30, async {
        let (addr, _chat) = serve(server::Options::default()).await;
        let mut listener = join(addr, "big", "ann").await;
        let mut sender = join(addr, "big", "bob").await;
        let _ = next(&mut listener).await; // bob's join
                                           // The largest message that fits: a 1 MiB WebSocket message, its text the rest.
        let overhead = r#"{"type":"message","text":""}"#.len();
        let text = "é".repeat(((1 << 20) - overhead) / 2);
        say(&mut sender, &text).await;
        let event = next_message(&mut listener).await;
        assert_eq!(event["text"].as_str().unwrap(), text, "arrived intact");
        let too_big = "x".repeat((1 << 20) + 1);
        say(&mut sender, &too_big).await;
        assert_eq!(close_code(&mut sender).await, Some(CloseCode::MESSAGE_TOO_BIG));
        let event = next(&mut listener).await;
        assert_eq!((event["type"].as_str(), event["name"].as_str()), (Some("leave"), Some("bob")));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_is_closed_with_1008_while_the_room_goes_on() {
    bounded(30, async {
        let (addr, _chat) = serve(server::Options::default()).await;
        let mut ann = join(addr, "flood", "ann").await;
        let mut bob = join(addr, "flood", "bob").await;
        let mut flooder = join(addr, "flood", "flo").await;
        let started = std::time::Instant::now();
        for i in 0..150 {
            let json = serde_json::json!({"type": "message", "text": format!("spam {i}")});
            if flooder.send(Outgoing::Text(json.to_string())).await.is_err() {
                break;
            }
        }
        assert_eq!(close_code(&mut flooder).await, Some(CloseCode::POLICY_VIOLATION));
        // The bucket refills at the sustained rate (50/s) while the flood is sent: on a busy
        // machine the 150 sends take long enough for a few more to be allowed.
        let refilled = (started.elapsed().as_secs_f64() * 50.0).ceil() as usize;
        // At most the burst (and what refilled) got through; the others are still chatting.
        say(&mut bob, "still here").await;
        let mut spam = 0;
        loop {
            let event = next_message(&mut ann).await;
            if event["text"] == "still here" {
                break;
            }
            assert_eq!(event["name"], "flo");
            spam += 1;
        }
        assert!(spam <= 100 + refilled, "{spam} messages of the flood were relayed");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_json_gets_an_error_and_the_room_goes_on() {
    bounded(20, async {
        let (addr, _chat) = serve(server::Options::default()).await;
        let mut ann = join(addr, "h", "ann").await;
        let mut mal = join(addr, "h", "mal").await;
        let _ = next(&mut ann).await; // mal's join
        let hostile = [
            "not json",
            "{",
            "[]",
            "null",
            r#"{"type":"message"}"#,
            r#"{"type":"message","text":5}"#,
            r#"{"type":"message","text":"x","extra":1}"#,
            r#"{"type":"join","room":"other"}"#,
            r#"{"type":"admin","text":"x"}"#,
            r#"{"text":"no type"}"#,
            &format!("{}{}", "[".repeat(10_000), "]".repeat(10_000)),
        ];
        for text in hostile {
            mal.send(Outgoing::text(text)).await.unwrap();
            let event = next(&mut mal).await;
            assert_eq!(event["type"], "error", "{text:.40}: {event}");
            assert!(event["text"].as_str().is_some_and(|t| !t.is_empty()));
        }
        mal.send(Outgoing::binary(vec![1, 2, 3])).await.unwrap();
        assert_eq!(next(&mut mal).await["type"], "error");
        // None of it reached anyone else; a valid message still does.
        say(&mut mal, "<b>hello</b>").await;
        let event = next(&mut ann).await;
        assert_eq!(
            (event["type"].as_str(), event["text"].as_str()),
            (Some("message"), Some("<b>hello</b>"))
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_messages_past_the_byte_rate_are_read_later_not_refused() {
    bounded(20, async {
        let byte_rate = 256 * 1024;
        let (addr, _chat) =
            serve(server::Options { byte_rate, ..server::Options::default() }).await;
        let mut ann = join(addr, "paced", "ann").await;
        let mut bob = join(addr, "paced", "bob").await;
        let text = "p".repeat(128 * 1024);
        let started = std::time::Instant::now();
        for _ in 0..6 {
            say(&mut bob, &text).await;
        }
        for _ in 0..6 {
            let event = next_message(&mut ann).await;
            assert_eq!(event["text"].as_str().map(str::len), Some(text.len()));
        }
        // A second's worth (256 KiB) at once, then 256 KiB per second: the sixth message
        // cannot be read before (6 - 1) * 128 KiB - 256 KiB = 384 KiB were paid, 1.5 s.
        let elapsed = started.elapsed();
        assert!(elapsed >= Duration::from_millis(1400), "paced too little: {elapsed:?}");
        // Bob was slowed, not closed: he still chats.
        say(&mut bob, "still here").await;
        loop {
            if next_message(&mut ann).await["text"] == "still here" {
                break;
            }
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_reads_delays_no_one_and_is_dropped() {
    bounded(60, async {
        let options = server::Options {
            rate: 100_000,
            burst: 100_000,
            byte_rate: 1 << 40,
            ..server::Options::default()
        };
        let (addr, chat) = serve(options).await;
        let mut ann = join(addr, "slow", "ann").await;
        let mut bob = join(addr, "slow", "bob").await;
        // A client that completes the handshake and then never reads.
        let mut stalled = TcpStream::connect(addr).await.unwrap();
        let request = format!(
            "GET /ws?room=slow&name=zed HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\n\
             Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
             Sec-WebSocket-Version: 13\r\n\r\n"
        );
        stalled.write_all(request.as_bytes()).await.unwrap();
        while chat.members("slow") < 3 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // 64 MiB through the room: far more than the kernel's buffers and the 4 MiB queue.
        let text = "z".repeat(64 * 1024);
        let reader = tokio::spawn(async move {
            let mut got = 0;
            while got < 1000 {
                let event = next_message(&mut ann).await;
                assert_eq!(event["text"].as_str().map(str::len), Some(64 * 1024));
                got += 1;
            }
            ann
        });
        // What the server holds for the room stays within each member's queue limit (plus
        // one message), whatever zed does not read.
        let bound = 3 * ((4 << 20) + 2 * 64 * 1024);
        let mut most = 0;
        for _ in 0..1000 {
            say(&mut bob, &text).await;
            most = most.max(chat.queued("slow"));
            assert!(most <= bound, "{most} bytes queued");
        }
        // Ann got all 1,000 while zed read nothing; bob reads his own echoes too.
        let _ann = reader.await.unwrap();
        let mut got = 0;
        while got < 1000 {
            next_message(&mut bob).await;
            got += 1;
        }
        // Zed's queue filled, and the server closed it: the room is down to two, and what
        // it held is freed.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while chat.members("slow") > 2 {
            assert!(tokio::time::Instant::now() < deadline, "the stalled client is still a member");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        drop(stalled);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_requests_and_other_paths() {
    bounded(20, async {
        let (addr, _chat) =
            serve(server::Options { max_per_address: 2, ..Default::default() }).await;
        let long = "n".repeat(33);
        match join_with(addr, "r", &long, None).await {
            Err(AdapterError::Refused(response)) => assert_eq!(response.status(), 400),
            other => panic!("{other:?}"),
        }
        let _a = join_with(addr, "r", "a", None).await.unwrap();
        let _b = join_with(addr, "r", "b", None).await.unwrap();
        match join_with(addr, "r", "c", None).await {
            Err(AdapterError::Refused(response)) => assert_eq!(response.status(), 429),
            other => panic!("{other:?}"),
        }
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        tcp.write_all(b"GET /other HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
        let mut response = vec![0; 64];
        let n = tokio::io::AsyncReadExt::read(&mut tcp, &mut response).await.unwrap();
        assert!(response[..n].starts_with(b"HTTP/1.1 404"), "{:?}", &response[..n]);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keepalive_reaps_a_client_that_stopped_answering() {
    bounded(30, async {
        let options = server::Options {
            keepalive: Duration::from_millis(300),
            pong_timeout: Duration::from_millis(300),
            ..server::Options::default()
        };
        let (addr, chat) = serve(options).await;
        let mut ann = join(addr, "k", "ann").await;
        // A client that completes the handshake and then goes silent: no pongs.
        let mut dead = TcpStream::connect(addr).await.unwrap();
        let request = format!(
            "GET /ws?room=k&name=dead HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\n\
             Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
             Sec-WebSocket-Version: 13\r\n\r\n"
        );
        dead.write_all(request.as_bytes()).await.unwrap();
        // Ann answers the server's pings (her client does so by itself while it reads) and
        // stays; the silent one is closed and leaves.
        loop {
            let event = next(&mut ann).await;
            if event["type"] == "leave" {
                assert_eq!(event["name"], "dead");
                break;
            }
        }
        assert_eq!(chat.members("k"), 1);
        say(&mut ann, "still here").await;
        assert_eq!(next_message(&mut ann).await["text"], "still here");
    })
    .await;
}
