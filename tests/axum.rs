//! The axum integration over real loopback sockets: a route upgrades to the tokio
//! `WebSocket`, with the core's handshake answers for bad requests (the same as
//! `tokio::accept` gives), bytes sent right after the request kept, a decision that rejects,
//! the `http` conversions, and HTTP/2 (RFC 8441) with hyper's h2 client.

mod adapter_support;

use std::net::SocketAddr;
use std::time::Duration;

use adapter_support::{client_frame, REQUEST};
use axum::routing::any;
use axum::Router;
use http_body_util::Empty;
use hyper::body::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use wsmachine::axum::WebSocketUpgrade;
use wsmachine::frame::Opcode;
use wsmachine::tokio as ws;
use wsmachine::{ClientRequest, Config, Decision, Incoming, Outgoing};

async fn bounded<T>(secs: u64, future: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(secs), future)
        .await
        .unwrap_or_else(|_| panic!("test did not finish within {secs} s"))
}

/// Echoes every message on an upgraded connection.
async fn echo(upgrade: WebSocketUpgrade) -> axum::response::Response {
    upgrade.on_upgrade_with(
        |request| {
            // The conversion to the `http` crate's request keeps what was sent.
            let http: http::Request<()> = request.try_into().unwrap();
            assert_eq!(http.uri().path(), request.path());
            if request.origin() == Some(b"https://evil.example") {
                return Decision::reject(403).body("cross-site");
            }
            match request.subprotocols().find(|p| *p == "echo") {
                Some(p) => Decision::accept().subprotocol(p),
                None => Decision::accept(),
            }
        },
        |mut socket| async move {
            while let Ok(Some(incoming)) = socket.recv().await {
                match incoming {
                    Incoming::Text(text) => socket.send(Outgoing::Text(text)).await.unwrap(),
                    Incoming::Binary(data) => socket.send(Outgoing::Binary(data)).await.unwrap(),
                    _ => {}
                }
            }
        },
    )
}

async fn serve() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = Router::new().route("/ws", any(echo));
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

/// The status line and headers of the HTTP response to `request`, sent raw.
async fn raw_response(addr: SocketAddr, request: &[u8]) -> String {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(request).await.unwrap();
    let mut response = Vec::new();
    let mut buf = [0; 4096];
    while !response.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = tcp.read(&mut buf).await.unwrap();
        assert!(n > 0, "closed before a response: {:?}", String::from_utf8_lossy(&response));
        response.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&response).into_owned()
}

/// The answer `tokio::accept` gives to `request`: the reference for the axum route's.
async fn direct_response(request: &[u8]) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let _refused = ws::accept(tcp).await;
    });
    raw_response(addr, request).await
}

fn status(response: &str) -> &str {
    response.split(' ').nth(1).unwrap_or("")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_route_upgrades_to_the_tokio_websocket() {
    bounded(20, async {
        let addr = serve().await;
        let tcp = TcpStream::connect(addr).await.unwrap();
        let host = addr.to_string();
        let request = ClientRequest::new(&host, "/ws").subprotocols(&["other", "echo"]);
        let (mut socket, response) = ws::connect(tcp, &request, Config::new()).await.unwrap();
        assert_eq!(response.status(), 101);
        assert_eq!(response.subprotocol(), Some("echo"));
        #[cfg(feature = "deflate")]
        assert!(socket.connection().compression().is_some(), "deflate negotiated by the core");
        let http: http::Response<()> = (&response).try_into().unwrap();
        assert_eq!(http.status(), 101);
        assert_eq!(http.headers()["sec-websocket-protocol"], "echo");
        for i in 0..20 {
            let text = format!("message {i} {}", "y".repeat(i * 50));
            socket.send(Outgoing::Text(text.clone())).await.unwrap();
            assert_eq!(socket.recv().await.unwrap(), Some(Incoming::Text(text)));
        }
        socket.close(wsmachine::CloseCode::NORMAL, "").await.unwrap();
        while socket.recv().await.unwrap().is_some() {}
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bytes_sent_right_after_the_request_are_not_lost() {
    bounded(20, async {
        let addr = serve().await;
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        let request = String::from_utf8(REQUEST.to_vec()).unwrap().replace("/chat", "/ws");
        let mut bytes = request.into_bytes();
        bytes.extend_from_slice(&client_frame(Opcode::Text, b"early"));
        tcp.write_all(&bytes).await.unwrap();
        let mut got = Vec::new();
        let mut buf = [0; 1024];
        let echoed = [&[0x81, 5][..], b"early"].concat();
        while !got.windows(echoed.len()).any(|w| w == echoed) {
            let n = tcp.read(&mut buf).await.unwrap();
            assert!(n > 0, "closed: {:?}", String::from_utf8_lossy(&got));
            got.extend_from_slice(&buf[..n]);
        }
        assert!(got.starts_with(b"HTTP/1.1 101 "), "{:?}", String::from_utf8_lossy(&got));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_upgrades_get_the_same_answers_as_everywhere_else() {
    bounded(20, async {
        let addr = serve().await;
        let request = String::from_utf8(REQUEST.to_vec()).unwrap().replace("/chat", "/ws");
        let cases = [
            // No version: 426 with the version the server speaks.
            request.replace("Sec-WebSocket-Version: 13\r\n", ""),
            // Another version.
            request.replace("Sec-WebSocket-Version: 13", "Sec-WebSocket-Version: 8"),
            // A key that is not 16 bytes in base64.
            request.replace("dGhlIHNhbXBsZSBub25jZQ==", "short"),
            // Not an upgrade at all.
            "GET /ws HTTP/1.1\r\nHost: localhost\r\n\r\n".to_string(),
            // POST.
            request.replace("GET", "POST"),
        ];
        for case in &cases {
            let via_axum = raw_response(addr, case.as_bytes()).await;
            let direct = direct_response(case.as_bytes()).await;
            assert_eq!(status(&via_axum), status(&direct), "{case:?}\n{via_axum}\n{direct}");
            assert!(status(&via_axum).starts_with('4'), "{via_axum}");
            if direct.contains("Sec-WebSocket-Version: 13") {
                assert!(via_axum.to_ascii_lowercase().contains("sec-websocket-version: 13"));
            }
        }
        // A rejection by the application's decision.
        let evil =
            request.replace("Host: localhost", "Host: localhost\r\nOrigin: https://evil.example");
        let response = raw_response(addr, evil.as_bytes()).await;
        assert_eq!(status(&response), "403", "{response}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_extended_connect_opens_the_same_websocket() {
    bounded(20, async {
        let addr = serve().await;
        let tcp = hyper_util::rt::TokioIo::new(TcpStream::connect(addr).await.unwrap());
        let (mut sender, conn) =
            hyper::client::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
                .handshake::<_, Empty<Bytes>>(tcp)
                .await
                .unwrap();
        tokio::spawn(conn);
        let request = http::Request::builder()
            .method(http::Method::CONNECT)
            .uri(format!("http://{addr}/ws"))
            .extension(hyper::ext::Protocol::from_static("websocket"))
            .header("sec-websocket-version", "13")
            .header("sec-websocket-protocol", "echo")
            .body(Empty::<Bytes>::new())
            .unwrap();
        // The server's SETTINGS (extended CONNECT enabled) may still be on their way.
        let mut response = None;
        for _ in 0..50 {
            match sender.send_request(request.clone()).await {
                Ok(r) => {
                    response = Some(r);
                    break;
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
        let mut response = response.expect("an answer to the extended CONNECT");
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["sec-websocket-protocol"], "echo");
        assert!(response.headers().get("sec-websocket-accept").is_none());
        let upgraded = hyper::upgrade::on(&mut response).await.unwrap();
        let stream = hyper_util::rt::TokioIo::new(upgraded);
        let mut socket = ws::open_client(stream, Config::new()).unwrap();
        for text in ["over", "http/2", &"z".repeat(100_000)] {
            socket.send(Outgoing::text(text)).await.unwrap();
            assert_eq!(socket.recv().await.unwrap(), Some(Incoming::Text(text.into())));
        }
        // A plain GET over HTTP/2 is no upgrade: the route says so.
        let get = http::Request::builder()
            .uri(format!("http://{addr}/ws"))
            .body(Empty::<Bytes>::new())
            .unwrap();
        assert_eq!(sender.send_request(get).await.unwrap().status(), 400);
    })
    .await;
}
