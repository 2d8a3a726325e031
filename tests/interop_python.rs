//! Interop with Python's `websockets` (compression on, its default), over loopback sockets:
//! its client against our tokio server, and our tokio client against its server, with text
//! and binary messages of 0 B to 1 MiB, fragmented ones and hundreds of small ones on one
//! connection (context takeover), each checked byte for byte; and its client with
//! compression off.
//!
//! The peers are `tests/python/client.py` and `tests/python/server.py`, run with
//! `.venv/bin/python3` (or `$WSMACHINE_PYTHON`). Without that interpreter, or without
//! `websockets` in it, these tests fail and say to run `scripts/test.sh`, which installs it.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use wsmachine::tokio as ws;
use wsmachine::{CloseCode, Config, Decision, DeflateConfig, DeflateParams, Incoming, MessageKind};
use wsmachine::{Outgoing, Request};

/// Every test ends within this, whatever the peer does.
const LIMIT: Duration = Duration::from_secs(60);
const KIB: usize = 1024;
const MIB: usize = 1024 * KIB;
const SIZES: [usize; 6] = [0, 1, 100, 10 * KIB, 100 * KIB, MIB];
const SMALL_MESSAGES: usize = 500;

fn config() -> Config {
    Config::new().max_message_size(2 * MIB as u64).max_frame_size(2 * MIB as u64)
}

/// Fails the test if `future` takes longer than [`LIMIT`].
async fn bounded<T>(future: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(LIMIT, future)
        .await
        .unwrap_or_else(|_| panic!("test did not finish within {} s", LIMIT.as_secs()))
}

// ---------------------------------------------------------------------------------------
// The Python side.

/// The interpreter with `websockets`: `$WSMACHINE_PYTHON`, or `.venv/bin/python3`. Fails
/// the test, saying how to install it, when it is missing or cannot import `websockets`.
fn python() -> PathBuf {
    let python = std::env::var_os("WSMACHINE_PYTHON").map(PathBuf::from).unwrap_or_else(|| {
        Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv").join("bin").join("python3")
    });
    let help = "The Python interop tests need Python's `websockets` (13 or later) in .venv: \
                run scripts/test.sh, which creates .venv, installs it and runs the tests \
                (or set WSMACHINE_PYTHON to a Python 3 that has it).";
    if !python.exists() {
        panic!("no Python interpreter at {}.\n{help}", python.display());
    }
    let mut check = Command::new(&python);
    check.args([
        "-c",
        "import websockets.asyncio.client, websockets.asyncio.server, websockets.version; \
         print(websockets.version.version)",
    ]);
    let run = run_bounded(check, Duration::from_secs(30));
    if !run.status.is_some_and(|s| s.success()) {
        panic!(
            "{} cannot import websockets' asyncio API ({}):\n{}\n{help}",
            python.display(),
            run.describe_status(),
            run.stderr.trim_end()
        );
    }
    python
}

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join("python").join(name)
}

/// A process that was run to its end, or killed at its deadline (`status` is `None` then).
struct Run {
    status: Option<ExitStatus>,
    stdout: String,
    stderr: String,
}

impl Run {
    fn describe_status(&self) -> String {
        match self.status {
            Some(status) => status.to_string(),
            None => "killed: it did not finish in time".into(),
        }
    }
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.describe_status(),
            self.stdout.trim_end(),
            self.stderr.trim_end()
        )
    }
}

/// Reads all of `pipe` on a thread of its own.
fn drain(pipe: impl Read + Send + 'static) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = BufReader::new(pipe).read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

/// Waits for `child` until `deadline`, then kills it.
fn wait_until(child: &mut Child, deadline: Instant) -> Option<ExitStatus> {
    loop {
        if let Some(status) = child.try_wait().expect("waiting for a Python process") {
            return Some(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// Runs `command` with no input, its output collected, for at most `limit`.
fn run_bounded(mut command: Command, limit: Duration) -> Run {
    let deadline = Instant::now() + limit;
    command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = command.spawn().unwrap_or_else(|e| panic!("cannot start {command:?}: {e}"));
    let stdout = drain(child.stdout.take().unwrap());
    let stderr = drain(child.stderr.take().unwrap());
    let status = wait_until(&mut child, deadline);
    Run { status, stdout: stdout.join().unwrap(), stderr: stderr.join().unwrap() }
}

/// Runs `f` on a blocking thread; its panic is the caller's.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
}

/// Runs `tests/python/client.py` with `python` against `url` (on a blocking thread) and
/// returns how it ended.
async fn python_client(python: PathBuf, url: String, extra: &'static [&'static str]) -> Run {
    blocking(move || {
        let mut command = Command::new(python);
        command.arg(script("client.py")).arg(url).args(extra);
        run_bounded(command, LIMIT)
    })
    .await
}

/// The number N on the client's last line, "OK N messages", or a failure with its output.
fn messages_checked(run: &Run) -> usize {
    assert!(run.status.is_some_and(|s| s.success()), "the Python client failed: {run}");
    run.stdout
        .lines()
        .last()
        .and_then(|line| line.strip_prefix("OK "))
        .and_then(|rest| rest.strip_suffix(" messages"))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no \"OK N messages\" line from the Python client: {run}"))
}

/// `tests/python/server.py`, running; killed when dropped.
struct PythonServer {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
    stderr: Option<thread::JoinHandle<String>>,
    port: u16,
}

impl PythonServer {
    /// Starts it and waits (at most 30 s) for the port it bound.
    fn start() -> Self {
        let mut command = Command::new(python());
        command.arg(script("server.py"));
        command.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = command.spawn().expect("starting tests/python/server.py");
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().unwrap();
        let stderr = Some(drain(child.stderr.take().unwrap()));
        let (tx, lines) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut server = Self { child, stdin, lines, stderr, port: 0 };
        match server.lines.recv_timeout(Duration::from_secs(30)) {
            Ok(line) => match line.strip_prefix("listening ").and_then(|p| p.parse().ok()) {
                Some(port) => server.port = port,
                None => panic!("tests/python/server.py said {line:?}, not \"listening PORT\""),
            },
            Err(_) => {
                let _ = server.child.kill();
                let _ = server.child.wait();
                let stderr = server.stderr.take().unwrap().join().unwrap();
                panic!("tests/python/server.py did not say its port within 30 s:\n{stderr}");
            }
        }
        server
    }

    fn url(&self) -> String {
        format!("ws://127.0.0.1:{}/", self.port)
    }

    /// Closes its input, which stops it (killed if it does not stop within 10 s), and
    /// returns what it printed after its port.
    fn stop(mut self) -> Run {
        drop(self.stdin.take());
        let status = wait_until(&mut self.child, Instant::now() + Duration::from_secs(10));
        let stdout: Vec<String> = self.lines.try_iter().collect();
        let stderr = self.stderr.take().unwrap().join().unwrap();
        Run { status, stdout: stdout.join("\n"), stderr }
    }
}

impl Drop for PythonServer {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

// ---------------------------------------------------------------------------------------
// Our side.

/// What our echo server saw on its one connection.
#[derive(Debug)]
struct Served {
    offered: Vec<String>,
    compression: Option<DeflateParams>,
    echoed: usize,
    close: Option<u16>,
}

/// A tokio echo server on 127.0.0.1 (port 0) with `config`, serving one connection.
async fn echo_server(config: Config) -> (String, JoinHandle<Served>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/", listener.local_addr().unwrap());
    let handle = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        tcp.set_nodelay(true).unwrap();
        let mut offered = Vec::new();
        let decide = |request: &Request<'_>| {
            offered = request.extensions().map(String::from).collect();
            Decision::accept()
        };
        let mut socket = ws::accept_with(tcp, config, decide).await.unwrap();
        let compression = socket.connection().compression();
        let (mut echoed, mut close) = (0, None);
        while let Some(incoming) = socket.recv().await.unwrap() {
            match incoming {
                Incoming::Text(text) => socket.send(Outgoing::Text(text)).await.unwrap(),
                Incoming::Binary(data) => socket.send(Outgoing::Binary(data)).await.unwrap(),
                Incoming::Close(frame) => {
                    close = Some(frame.code().0);
                    continue;
                }
                _ => continue,
            }
            echoed += 1;
        }
        Served { offered, compression, echoed, close }
    });
    (url, handle)
}

/// A small deterministic generator (xorshift64*), so a failure can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn bytes(&mut self, size: usize) -> Vec<u8> {
        (0..size).map(|_| self.next() as u8).collect()
    }
}

const WORDS: &[&str] = &[
    "the",
    "quick",
    "brown",
    "fox",
    "jumps",
    "over",
    "a",
    "lazy",
    "dog",
    "wörld",
    "café",
    "naïve",
    "日本語",
    "テキスト",
    "🎉",
    "🦀",
    "⚡",
    "message",
    "frame",
    "deflate",
    "window",
];

/// Text of exactly `size` UTF-8 bytes, words (some multi-byte) as text compresses.
fn text_of(size: usize, rng: &mut Rng) -> String {
    let mut text = String::with_capacity(size + 16);
    loop {
        let word = WORDS[rng.below(WORDS.len())];
        if text.len() + word.len() + 1 > size {
            break;
        }
        text.push_str(word);
        text.push(' ');
    }
    text.extend(std::iter::repeat('x').take(size - text.len()));
    text
}

/// Binary that compresses: a short pattern repeated, with some bytes changed.
fn compressible(size: usize, rng: &mut Rng) -> Vec<u8> {
    let pattern = rng.bytes(61);
    let mut data: Vec<u8> = pattern.iter().copied().cycle().take(size).collect();
    for _ in 0..size / 97 {
        let at = rng.below(size);
        data[at] = rng.next() as u8;
    }
    data
}

/// One message to send, whole or in fragments, and the echo it must come back as.
struct Case {
    name: String,
    send: Vec<Outgoing>,
    echo: Incoming,
}

fn whole(name: String, message: Incoming) -> Case {
    let send = match &message {
        Incoming::Text(text) => Outgoing::Text(text.clone()),
        Incoming::Binary(data) => Outgoing::Binary(data.clone()),
        _ => unreachable!(),
    };
    Case { name, send: vec![send], echo: message }
}

/// `payload` sent as fragments cut at `cuts` (byte offsets; for text, on characters).
fn fragmented(name: String, kind: MessageKind, payload: Vec<u8>, cuts: &[usize]) -> Case {
    let mut points = vec![0];
    points.extend_from_slice(cuts);
    points.push(payload.len());
    let send = points
        .windows(2)
        .enumerate()
        .map(|(i, w)| Outgoing::Fragment {
            kind,
            payload: payload[w[0]..w[1]].to_vec(),
            is_last: i == points.len() - 2,
        })
        .collect();
    let echo = match kind {
        MessageKind::Text => Incoming::Text(String::from_utf8(payload).unwrap()),
        _ => Incoming::Binary(payload),
    };
    Case { name, send, echo }
}

/// Character boundaries of `text` near the fractions `at` of its length.
fn char_cuts(text: &str, at: &[f64]) -> Vec<usize> {
    at.iter()
        .map(|f| {
            let mut i = (text.len() as f64 * f) as usize;
            while !text.is_char_boundary(i) {
                i += 1;
            }
            i
        })
        .collect()
}

/// The messages our client sends one at a time: every size as text, compressible binary
/// and random binary, then fragmented ones.
fn cases(rng: &mut Rng) -> Vec<Case> {
    let mut cases = Vec::new();
    for size in SIZES {
        cases.push(whole(format!("text {size} B"), Incoming::Text(text_of(size, rng))));
        let data = compressible(size, rng);
        cases.push(whole(format!("binary {size} B compressible"), Incoming::Binary(data)));
        cases.push(whole(format!("binary {size} B random"), Incoming::Binary(rng.bytes(size))));
    }
    let text = text_of(100 * KIB, rng);
    let cuts = char_cuts(&text, &[0.01, 0.1, 0.3, 0.31, 0.7, 0.99]);
    let name = "text 100 KiB in 7 fragments".to_string();
    cases.push(fragmented(name, MessageKind::Text, text.into_bytes(), &cuts));
    let text = text_of(10 * KIB, rng);
    let cuts = char_cuts(&text, &[0.5, 0.5]);
    let name = "text 10 KiB in 3 fragments, one empty".to_string();
    cases.push(fragmented(name, MessageKind::Text, text.into_bytes(), &cuts));
    let cuts: Vec<usize> = (1..16).map(|i| i * MIB / 16).collect();
    let name = "binary 1 MiB random in 16 fragments".to_string();
    cases.push(fragmented(name, MessageKind::Binary, rng.bytes(MIB), &cuts));
    cases
}

/// Chat-like messages, 1 to ~300 bytes, text and binary: alike enough that our compressor
/// refers back to earlier messages (context takeover).
fn small_messages(rng: &mut Rng) -> Vec<Incoming> {
    (0..SMALL_MESSAGES)
        .map(|i| {
            if i % 3 == 2 {
                Incoming::Binary(vec![i as u8; 1 + rng.below(199)])
            } else {
                let words: Vec<&str> =
                    (0..rng.below(30)).map(|_| WORDS[rng.below(WORDS.len())]).collect();
                let words = words.join(" ");
                Incoming::Text(format!(
                    r#"{{"seq":{i},"user":"ada","room":"lobby","text":"{words}"}}"#
                ))
            }
        })
        .collect()
}

/// What differs between `expected` and `got`, briefly (a 1 MiB message is not printed).
fn difference(expected: &Incoming, got: &Option<Incoming>) -> Option<String> {
    let bytes = |m: &Incoming| match m {
        Incoming::Text(t) => ("text", t.as_bytes().to_vec()),
        Incoming::Binary(b) => ("binary", b.clone()),
        other => ("other", format!("{other:?}").into_bytes()),
    };
    let Some(got) = got else { return Some("the connection ended instead".into()) };
    if got == expected {
        return None;
    }
    let ((want_kind, want), (got_kind, got)) = (bytes(expected), bytes(got));
    let first =
        want.iter().zip(&got).position(|(a, b)| a != b).unwrap_or(want.len().min(got.len()));
    Some(format!(
        "sent {want_kind} of {} bytes, echo is {got_kind} of {} bytes, first difference at \
         byte {first}",
        want.len(),
        got.len()
    ))
}

/// Our client against the Python server with `config`: every case one at a time, then the
/// small messages in pipelined batches of 50, then a close. Returns the compression agreed
/// and the messages exchanged.
async fn run_our_client(url: &str, config: Config) -> (Option<DeflateParams>, usize) {
    let (mut socket, response) = ws::connect_url(url, config).await.expect("connecting");
    let answer = response.header("sec-websocket-extensions").map(String::from_utf8_lossy);
    assert!(
        answer.as_deref().is_some_and(|a| a.contains("permessage-deflate")),
        "the Python server did not accept permessage-deflate: {answer:?}"
    );
    let compression = socket.connection().compression();
    let mut rng = Rng(0x7692_6455);
    let mut problems = Vec::new();
    let mut exchanged = 0;
    for case in cases(&mut rng) {
        for message in case.send {
            socket.send(message).await.expect("sending");
        }
        let echo = socket.recv().await.expect("receiving");
        exchanged += 1;
        if let Some(problem) = difference(&case.echo, &echo) {
            problems.push(format!("{}: {problem}", case.name));
        }
    }
    let small = small_messages(&mut rng);
    for (batch, messages) in small.chunks(50).enumerate() {
        for message in messages {
            let outgoing = match message {
                Incoming::Text(text) => Outgoing::Text(text.clone()),
                Incoming::Binary(data) => Outgoing::Binary(data.clone()),
                _ => unreachable!(),
            };
            socket.send(outgoing).await.expect("sending");
        }
        for (i, message) in messages.iter().enumerate() {
            let echo = socket.recv().await.expect("receiving");
            exchanged += 1;
            if let Some(problem) = difference(message, &echo) {
                problems.push(format!("small message {}: {problem}", batch * 50 + i));
            }
        }
    }
    assert!(problems.is_empty(), "{} echoes differ:\n{}", problems.len(), problems.join("\n"));
    socket.close(CloseCode::NORMAL, "").await.expect("closing");
    let mut close = None;
    while let Some(incoming) = socket.recv().await.expect("the closing handshake") {
        if let Incoming::Close(frame) = incoming {
            close = Some(frame.code());
        }
    }
    assert_eq!(close, Some(CloseCode::NORMAL), "the Python server's answer to our close");
    (compression, exchanged)
}

/// The server's summary line, "echoed N messages".
fn server_echoed(run: &Run) -> usize {
    assert!(run.status.is_some_and(|s| s.success()), "the Python server failed: {run}");
    run.stdout
        .lines()
        .find_map(|line| line.strip_prefix("echoed ")?.strip_suffix(" messages")?.parse().ok())
        .unwrap_or_else(|| panic!("no \"echoed N messages\" line from the Python server: {run}"))
}

// ---------------------------------------------------------------------------------------
// The tests.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_client_compressed_against_our_server() {
    let python = blocking(python).await;
    bounded(async {
        let (url, server) = echo_server(config()).await;
        let run = python_client(python, url, &[]).await;
        let checked = messages_checked(&run);
        let served = server.await.unwrap();
        assert!(
            served.offered.iter().any(|o| o.contains("permessage-deflate")),
            "websockets offered no compression: {served:?}"
        );
        let params = served.compression.unwrap_or_else(|| {
            panic!("our server did not negotiate permessage-deflate: {served:?}\n{run}")
        });
        // The client keeps its context from message to message: our server inflates each
        // message with the ones before it as the dictionary.
        assert!(!params.client_no_context_takeover, "{params:?}");
        assert_eq!(served.echoed, checked, "messages echoed by us, checked by Python");
        assert!(checked > SMALL_MESSAGES, "{run}");
        assert_eq!(served.close, Some(1000));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_client_uncompressed_against_our_server() {
    let python = blocking(python).await;
    bounded(async {
        let (url, server) = echo_server(config()).await;
        let run = python_client(python, url, &["--no-compression"]).await;
        let checked = messages_checked(&run);
        let served = server.await.unwrap();
        assert!(served.offered.is_empty(), "websockets offered {:?}", served.offered);
        assert_eq!(served.compression, None, "no extension was offered, none may be agreed");
        assert_eq!(served.echoed, checked);
        assert_eq!(served.close, Some(1000));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_client_compressed_against_python_server() {
    let server = blocking(PythonServer::start).await;
    let url = server.url();
    let (compression, exchanged) = bounded(run_our_client(&url, config())).await;
    let run = blocking(move || server.stop()).await;
    let params = compression.unwrap_or_else(|| panic!("no compression agreed:\n{run}"));
    // Config::new() asks the server to reset its compressor after each message, and keeps
    // our own context.
    assert!(params.server_no_context_takeover && !params.client_no_context_takeover, "{params:?}");
    assert_eq!(server_echoed(&run), exchanged, "{run}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_client_inflates_with_the_python_servers_context() {
    // Not asking for server_no_context_takeover, with 15-bit windows: websockets compresses
    // every message with the ones before it, and our client inflates with that context.
    let deflate = DeflateConfig::new()
        .server_no_context_takeover(false)
        .server_max_window_bits(15)
        .client_max_window_bits(15);
    let server = blocking(PythonServer::start).await;
    let url = server.url();
    let (compression, exchanged) = bounded(run_our_client(&url, config().deflate(deflate))).await;
    let run = blocking(move || server.stop()).await;
    let params = compression.unwrap_or_else(|| panic!("no compression agreed:\n{run}"));
    assert!(!params.server_no_context_takeover && !params.client_no_context_takeover, "{params:?}");
    assert_eq!(server_echoed(&run), exchanged, "{run}");
}
