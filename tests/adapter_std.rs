//! What only the blocking adapter has, over real loopback sockets: zero-copy `recv_event`,
//! write timeouts that bound a send, the `Transport` trait's timeouts, and wss with the
//! wss_echo_server_blocking example's TLS wrapper. What every adapter does is in the
//! scenario table (tests/adapter_scenarios.rs).

mod adapter_support;
#[path = "../examples/wss_echo_server_blocking.rs"]
#[allow(unreachable_pub)]
mod wss_echo_server_blocking;

use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use adapter_support::{big_config, big_payload, bounded, REQUEST};
use wsmachine::{
    blocking, ClientRequest, CloseCode, Config, Decision, ErrorKind, Incoming, MessageKind,
};

fn connect(addr: SocketAddr, config: Config) -> blocking::WebSocket<TcpStream> {
    let tcp = TcpStream::connect(addr).unwrap();
    let host = addr.to_string();
    blocking::connect(tcp, &ClientRequest::new(&host, "/echo"), config).unwrap().0
}

/// A server connection with a 100 ms keepalive (200 ms pong deadline), and its peer's raw
/// socket, which has sent the upgrade request and will do nothing else unless told to.
fn server_with_a_silent_peer() -> (TcpStream, blocking::WebSocket<TcpStream>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut peer = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    peer.write_all(REQUEST).unwrap();
    let config = Config::new()
        .keepalive_interval(Some(wsmachine::Duration::from_millis(100)))
        .pong_timeout(wsmachine::Duration::from_millis(200));
    let ws = blocking::accept_with(listener.accept().unwrap().0, config, |_| Decision::accept())
        .unwrap();
    (peer, ws)
}

/// A stream that never delivers a byte: it records the read timeouts the adapter sets, and
/// its reads end at once (the stream ended), so the test needs no 10 s wait.
#[derive(Default)]
struct SilentStream {
    read_timeouts: Vec<Option<Duration>>,
}

impl std::io::Read for SilentStream {
    fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
        Ok(0)
    }
}

impl std::io::Write for SilentStream {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl blocking::Transport for SilentStream {
    fn set_read_timeout(&mut self, timeout: Option<Duration>) -> std::io::Result<()> {
        self.read_timeouts.push(timeout);
        Ok(())
    }
}

#[test]
fn a_default_accept_bounds_the_handshake_by_ten_seconds() {
    let mut stream = SilentStream::default();
    let result = blocking::accept(&mut stream);
    assert!(matches!(result, Err(wsmachine::AdapterError::Protocol(_))));
    // The first read waited no longer than the opening-handshake deadline of the default
    // configuration: 10 s from the connection's start, less the little time since.
    let first = stream.read_timeouts.first().copied().flatten().expect("a bounded read");
    assert!(first <= Duration::from_secs(10) && first > Duration::from_secs(9), "{first:?}");
}

#[test]
fn a_large_message_streams_through_a_small_buffer() {
    use wsmachine::Event;
    bounded(30, || {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let config = big_config().receive_buffer_size(4096);
            let tcp = listener.accept().unwrap().0;
            let mut ws = blocking::accept_with(tcp, config, |_| Decision::accept()).unwrap();
            let (mut pieces, mut bytes, mut checksum) = (0usize, 0usize, 0u64);
            loop {
                let last = ws
                    .recv_event(|event| match event {
                        Event::Fragment(piece) => {
                            pieces += 1;
                            bytes += piece.payload.len();
                            checksum += piece.payload.iter().map(|&b| u64::from(b)).sum::<u64>();
                            piece.is_last
                        }
                        other => panic!("expected pieces, got {other:?}"),
                    })
                    .unwrap()
                    .unwrap();
                if last {
                    break;
                }
            }
            (pieces, bytes, checksum)
        });
        let mut ws = connect(addr, Config::new());
        let payload = big_payload();
        // Streamed as 16 frames of 1 MiB, each larger than the server's 4 KiB buffer.
        for (i, chunk) in payload.chunks(1 << 20).enumerate() {
            ws.send_fragment(MessageKind::Binary, chunk, i == 15).unwrap();
        }
        let (pieces, bytes, checksum) = server.join().unwrap();
        assert_eq!(bytes, payload.len());
        assert_eq!(checksum, payload.iter().map(|&b| u64::from(b)).sum::<u64>());
        assert!(pieces >= payload.len() / 4096, "{pieces} pieces");
    });
}

/// A TCP stream that writes at most 1,000 bytes per call, across the slices of a vectored
/// write: the adapter must go on from wherever a write stopped, in a header or a payload.
struct Trickle(TcpStream);

impl std::io::Read for Trickle {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        std::io::Read::read(&mut self.0, buf)
    }
}

impl std::io::Write for Trickle {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write(&buf[..buf.len().min(1000)])
    }

    fn write_vectored(&mut self, bufs: &[std::io::IoSlice<'_>]) -> std::io::Result<usize> {
        let mut chunk = Vec::with_capacity(1000);
        for buf in bufs {
            let room = 1000 - chunk.len();
            chunk.extend_from_slice(&buf[..buf.len().min(room)]);
        }
        self.0.write_all(&chunk)?;
        Ok(chunk.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

impl blocking::Transport for Trickle {
    fn set_read_timeout(&mut self, timeout: Option<Duration>) -> std::io::Result<()> {
        self.0.set_read_timeout(timeout)
    }
}

#[test]
fn send_owned_echoes_every_size_through_short_vectored_writes() {
    use wsmachine::Outgoing;
    bounded(60, || {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let tcp = Trickle(listener.accept().unwrap().0);
            let mut ws = blocking::accept_with(tcp, big_config(), |_| Decision::accept()).unwrap();
            while let Some(incoming) = ws.recv().unwrap() {
                match incoming {
                    Incoming::Binary(data) => ws.send_owned(Outgoing::Binary(data)).unwrap(),
                    Incoming::Text(text) => ws.send_owned(Outgoing::Text(text)).unwrap(),
                    _ => {}
                }
            }
        });
        let mut ws = connect(addr, big_config());
        let big = big_payload();
        // Below and above the size a server writes from the payload's own allocation
        // (64 KiB), a 16-bit and a 64-bit length, and the same sizes again: the allocation
        // of an echo takes the next message.
        for size in [0, 5, 125, 126, 65_535, 65_536, 200_000, 1 << 20, 5, 1 << 20, 70_000] {
            let sent = big[..size].to_vec();
            ws.send_binary(&sent).unwrap();
            match ws.recv().unwrap() {
                Some(Incoming::Binary(echo)) => assert!(echo == sent, "{size} bytes differ"),
                other => panic!("expected {size} bytes back, got {other:?}"),
            }
        }
        let text = "é".repeat(100_000);
        ws.send_text(&text).unwrap();
        assert_eq!(ws.recv().unwrap(), Some(Incoming::Text(text)));
        ws.close(CloseCode::NORMAL, "").unwrap();
        while ws.recv().unwrap().is_some() {}
        server.join().unwrap();
    });
}

#[test]
fn keepalive_bounds_a_send_to_a_peer_that_stops_reading() {
    bounded(30, || {
        // A peer that completes the handshake and then neither reads nor answers.
        let (stuck, mut ws) = server_with_a_silent_peer();
        let message = vec![0x5a; 1 << 20];
        let started = std::time::Instant::now();
        // Loopback buffers hold a few MiB at most; well before 256 MiB a send must block,
        // and then the keepalive's pong deadline has to end it.
        let mut sent = 0;
        let error = loop {
            match ws.send_binary(&message) {
                Ok(()) => sent += 1,
                Err(e) => break e,
            }
            assert!(sent < 256, "every send went through to a peer that reads nothing");
        };
        match error {
            wsmachine::AdapterError::Protocol(e) => assert_eq!(e.kind(), ErrorKind::PongTimeout),
            other => panic!("expected a pong timeout, got {other:?}"),
        }
        assert!(started.elapsed() < Duration::from_secs(10), "took {:?}", started.elapsed());
        assert_eq!(ws.connection().state(), wsmachine::State::Closed);
        assert_eq!(ws.recv().unwrap(), None);
        drop(stuck);
    });
}

/// A blocking client over rustls, through the example's `Tls` wrapper, trusting `cert`.
fn tls_client(
    addr: SocketAddr,
    cert: rustls::pki_types::CertificateDer<'static>,
    config: Config,
) -> blocking::WebSocket<wss_echo_server_blocking::Tls<rustls::ClientConnection>> {
    let tls_config = wss_echo_server_blocking::tls::client_trusting(cert).unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let session = rustls::ClientConnection::new(tls_config, name).unwrap();
    let tcp = TcpStream::connect(addr).unwrap();
    let stream = wss_echo_server_blocking::Tls(rustls::StreamOwned::new(session, tcp));
    let host = format!("localhost:{}", addr.port());
    let (ws, response) =
        blocking::connect(stream, &ClientRequest::new(&host, "/"), config).unwrap();
    assert_eq!(response.status(), 101);
    ws
}

#[test]
fn wss_with_the_blocking_example_server() {
    bounded(30, || {
        let (server_config, cert, _pem) =
            wss_echo_server_blocking::tls::self_signed_server().unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let (tcp, _) = listener.accept().unwrap();
            wss_echo_server_blocking::serve(tcp, server_config).unwrap();
        });
        let mut ws = tls_client(addr, cert, Config::new());
        ws.send_text("over TLS").unwrap();
        assert_eq!(ws.recv().unwrap(), Some(Incoming::Text("over TLS".into())));
        ws.send_binary(&[7u8; 100_000]).unwrap();
        assert_eq!(ws.recv().unwrap(), Some(Incoming::Binary(vec![7u8; 100_000])));
        ws.close(CloseCode::NORMAL, "").unwrap();
        match ws.recv().unwrap() {
            Some(Incoming::Close(frame)) => assert_eq!(frame.code(), CloseCode::NORMAL),
            other => panic!("expected the echoed close, got {other:?}"),
        }
        assert_eq!(ws.recv().unwrap(), None);
        server.join().unwrap();
    });
}

#[test]
fn keepalive_runs_through_the_tls_wrapper() {
    bounded(30, || {
        let (server_config, cert, _pem) =
            wss_echo_server_blocking::tls::self_signed_server().unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        // A server that completes the TLS and WebSocket handshakes, then reads nothing more
        // (so never answers a ping) until the client is done.
        let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
        let server = std::thread::spawn(move || {
            let (tcp, _) = listener.accept().unwrap();
            let session = rustls::ServerConnection::new(server_config).unwrap();
            let stream = wss_echo_server_blocking::Tls(rustls::StreamOwned::new(session, tcp));
            let ws = blocking::accept(stream).unwrap();
            let _ = done_rx.recv_timeout(Duration::from_secs(20));
            drop(ws);
        });
        let config = Config::new()
            .keepalive_interval(Some(wsmachine::Duration::from_millis(100)))
            .pong_timeout(wsmachine::Duration::from_millis(200));
        let mut ws = tls_client(addr, cert, config);
        let started = std::time::Instant::now();
        match ws.recv() {
            Err(wsmachine::AdapterError::Protocol(e)) => {
                assert_eq!(e.kind(), ErrorKind::PongTimeout)
            }
            other => panic!("expected a pong timeout, got {other:?}"),
        }
        assert!(started.elapsed() < Duration::from_secs(5), "took {:?}", started.elapsed());
        assert_eq!(ws.recv().unwrap(), None);
        done_tx.send(()).unwrap();
        server.join().unwrap();
    });
}
