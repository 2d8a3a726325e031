//! `siege`: a bounded, loopback-only attack and load generator for WebSocket servers.
//!
//! It runs ONE attack for a fixed time against a server given by its address and process
//! id, while a few honest clients keep echoing; then it watches the server recover, probes
//! it with a fresh client, and prints ONE JSON object (one line) on standard output.
//! Progress and diagnostics go to standard error.
//!
//! ```text
//! ulimit -n 65536   # (or the hard limit) the attacks hold thousands of sockets, see below
//! cargo run --release --features tokio --example siege -- \
//!     --target 127.0.0.1:PORT --pid PID --attack NAME [options]
//! ```
//!
//! | option | default | |
//! |---|---|---|
//! | `--target ADDR` | required | the server; only 127.0.0.0/8 is accepted (else exit 2) |
//! | `--pid PID` | required | the server's process: RSS, fds and CPU are read from `/proc/PID` |
//! | `--attack NAME` | required | `slowloris`, `handshake-flood`, `silent`, `non-readers`, `max-messages`, `garbage`, `fd-exhaustion` or `none` (baseline) |
//! | `--conns N` | per attack | slowloris 5000, silent 5000, non-readers 200, max-messages 200, garbage 500, fd-exhaustion 0 (until the server stops answering, at most 30000) |
//! | `--workers N` | 4 | handshake-flood: concurrent connect/upgrade/close loops |
//! | `--size BYTES` | 1048576 | message payload of non-readers and max-messages |
//! | `--duration SECS` | 15 | attack time |
//! | `--warmup SECS` | 2 | honest clients alone before the attack; the baseline is taken at its end |
//! | `--recovery-timeout SECS` | 30 | how long to wait for fds and RSS to come back after the attack |
//! | `--honest N` | 4 | honest echo clients (bound to 127.0.0.2), on a thread and runtime of their own |
//! | `--interval-ms MS` | 20 | between an honest client's messages |
//! | `--message BYTES` | 1024 | honest binary message size (echo servers) |
//! | `--path PATH` | `/` | request target of every upgrade |
//! | `--chat` | off | the server is the chat example (use `--path /ws`): clients join `?room=siege&name=...` and speak its JSON |
//! | `--own-rooms` | off | with `--chat`: each attacker joins a room of its own (`room=attackK`), not the honest clients' room |
//! | `--attack-sources N` | 200 | attack sockets are bound round-robin to 127.1.0.1, 127.1.0.2, ... |
//! | `--origin ORIGIN` | none | an `Origin` header on every request |
//! | `--hold-until-reaped` | off | silent: keep the connections after the attack until the server closes them (or the recovery timeout) |
//!
//! Everything stops by itself: past warmup + duration + recovery-timeout + 15 s the JSON is
//! printed with what was measured (`"deadline_hit": true`) and the process exits.
//!
//! The tool cannot raise its own descriptor limit (no libc): run it under `ulimit -n` large
//! enough for the attack (it warns on standard error when the soft limit in
//! `/proc/self/limits` is below `conns + 1000`).
//!
//! The JSON's keys: `name`, `target`, `pid`, `duration_s`, `conns`, `size`,
//! `baseline_rss_kib`, `baseline_fds` (end of warmup), `peak_rss_kib`, `peak_fds` (attack
//! and recovery), `end_rss_kib`, `end_fds` (last sample), `server_cpu_s` (during the
//! attack, from `/proc/PID/schedstat`, else `/proc/PID/stat` at 100 ticks/s), `honest_sent`,
//! `honest_received`, `honest_errors`, `honest_reconnects` and `p50_ms`, `p99_ms`, `max_ms`
//! (the attack window), `honest_total_*` (the whole run), `survived` (the process is alive
//! and a fresh client got an echo after the recovery), `fds_recovered_s` (fds back to
//! baseline + 8), `rss_recovered_s` (RSS back to twice the baseline), both seconds after the
//! attack's end or null, and `attack`, the attack's own counters.

use std::collections::BTreeMap;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Map, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::{mpsc, Notify};
use tokio::task::JoinSet;
use tokio::time::{sleep, sleep_until, timeout};
use wsmachine::tokio as ws;
use wsmachine::{ClientRequest, Config, Incoming, Outgoing};

type TInstant = tokio::time::Instant;

const USAGE: &str = "usage: siege --target 127.0.0.1:PORT --pid PID --attack NAME [--conns N] \
[--workers N] [--size BYTES] [--duration SECS] [--warmup SECS] [--recovery-timeout SECS] \
[--honest N] [--interval-ms MS] [--message BYTES] [--path PATH] [--chat] [--attack-sources N] \
[--origin ORIGIN] [--hold-until-reaped]\n\
attacks: slowloris handshake-flood silent non-readers max-messages garbage fd-exhaustion none";

/// Honest clients' and probes' timeout for each round trip (and each handshake).
const HONEST_TIMEOUT: Duration = Duration::from_secs(2);
/// Attack handshakes give up after this.
const ATTACK_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// What fd-exhaustion opens at most when `--conns` is 0.
const FD_EXHAUSTION_CAP: usize = 30_000;
/// The deflate bomb's inflated size.
const BOMB_INFLATED: usize = 200 << 20;

// ---------------------------------------------------------------------------------------
// Options

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Slowloris,
    HandshakeFlood,
    Silent,
    NonReaders,
    MaxMessages,
    Garbage,
    FdExhaustion,
    Baseline,
}

impl Kind {
    const ALL: [Kind; 8] = [
        Kind::Slowloris,
        Kind::HandshakeFlood,
        Kind::Silent,
        Kind::NonReaders,
        Kind::MaxMessages,
        Kind::Garbage,
        Kind::FdExhaustion,
        Kind::Baseline,
    ];

    fn name(self) -> &'static str {
        match self {
            Kind::Slowloris => "slowloris",
            Kind::HandshakeFlood => "handshake-flood",
            Kind::Silent => "silent",
            Kind::NonReaders => "non-readers",
            Kind::MaxMessages => "max-messages",
            Kind::Garbage => "garbage",
            Kind::FdExhaustion => "fd-exhaustion",
            Kind::Baseline => "none",
        }
    }

    fn default_conns(self) -> usize {
        match self {
            Kind::Slowloris | Kind::Silent => 5000,
            Kind::NonReaders | Kind::MaxMessages => 200,
            Kind::Garbage => 500,
            Kind::FdExhaustion | Kind::HandshakeFlood | Kind::Baseline => 0,
        }
    }
}

#[derive(Clone, Debug)]
struct Options {
    target: SocketAddrV4,
    pid: u32,
    kind: Kind,
    conns: usize,
    workers: usize,
    size: usize,
    duration: Duration,
    warmup: Duration,
    recovery: Duration,
    honest: usize,
    interval: Duration,
    message: usize,
    path: String,
    chat: bool,
    /// Chat: each attacker joins a room of its own instead of the honest clients' room.
    own_rooms: bool,
    sources: usize,
    origin: Option<String>,
    hold_until_reaped: bool,
}

fn number<T: std::str::FromStr>(flag: &str, v: &str) -> Result<T, String> {
    v.parse().map_err(|_| format!("{flag}: not a number: {v}"))
}

fn seconds(flag: &str, v: &str) -> Result<Duration, String> {
    let s: f64 = number(flag, v)?;
    if !(0.0..=86_400.0).contains(&s) {
        return Err(format!("{flag}: out of range: {v}"));
    }
    Ok(Duration::from_secs_f64(s))
}

fn parse_options(mut args: impl Iterator<Item = String>) -> Result<Options, String> {
    let mut target: Option<String> = None;
    let mut pid = None;
    let mut kind = None;
    let mut conns = None;
    let mut o = Options {
        target: SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0),
        pid: 0,
        kind: Kind::Baseline,
        conns: 0,
        workers: 4,
        size: 1 << 20,
        duration: Duration::from_secs(15),
        warmup: Duration::from_secs(2),
        recovery: Duration::from_secs(30),
        honest: 4,
        interval: Duration::from_millis(20),
        message: 1024,
        path: "/".into(),
        chat: false,
        own_rooms: false,
        sources: 200,
        origin: None,
        hold_until_reaped: false,
    };
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--target" => target = Some(value()?),
            "--pid" => pid = Some(number::<u32>(&arg, &value()?)?),
            "--attack" => {
                let v = value()?;
                let k = Kind::ALL.iter().copied().find(|k| k.name() == v);
                kind = Some(k.ok_or_else(|| format!("unknown attack {v}"))?);
            }
            "--conns" => conns = Some(number(&arg, &value()?)?),
            "--workers" => o.workers = number(&arg, &value()?)?,
            "--size" => o.size = number(&arg, &value()?)?,
            "--duration" => o.duration = seconds(&arg, &value()?)?,
            "--warmup" => o.warmup = seconds(&arg, &value()?)?,
            "--recovery-timeout" => o.recovery = seconds(&arg, &value()?)?,
            "--honest" => o.honest = number(&arg, &value()?)?,
            "--interval-ms" => o.interval = Duration::from_millis(number(&arg, &value()?)?),
            "--message" => o.message = number(&arg, &value()?)?,
            "--path" => o.path = value()?,
            "--chat" => o.chat = true,
            "--own-rooms" => o.own_rooms = true,
            "--attack-sources" => o.sources = number::<usize>(&arg, &value()?)?.clamp(1, 65_000),
            "--origin" => o.origin = Some(value()?),
            "--hold-until-reaped" => o.hold_until_reaped = true,
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    let target = target.ok_or("--target is required")?;
    let addr: SocketAddr =
        target.parse().map_err(|_| format!("--target: not an IP:PORT: {target}"))?;
    o.target = match addr {
        SocketAddr::V4(v4) if v4.ip().octets()[0] == 127 => v4,
        _ => return Err(format!("refusing target {target}: only 127.0.0.0/8 is allowed")),
    };
    o.pid = pid.ok_or("--pid is required")?;
    o.kind = kind.ok_or("--attack is required")?;
    o.conns = conns.unwrap_or(o.kind.default_conns());
    if !o.path.starts_with('/') {
        return Err(format!("--path must start with '/': {}", o.path));
    }
    if o.kind == Kind::HandshakeFlood {
        o.conns = o.workers;
    }
    Ok(o)
}

// ---------------------------------------------------------------------------------------
// Small helpers: randomness, base64, frames, requests

/// xorshift64*: fast, good enough for masks and garbage.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let v = self.next().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        let mut v = vec![0; n];
        self.fill(&mut v);
        v
    }
    fn mask(&mut self) -> [u8; 4] {
        (self.next() as u32).to_le_bytes()
    }
}

fn base64(data: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ABC[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn apply_mask(buf: &mut [u8], mask: [u8; 4]) {
    for (i, b) in buf.iter_mut().enumerate() {
        *b ^= mask[i & 3];
    }
}

/// A frame header; `first` is FIN, RSV and opcode; masked when `mask` is given.
fn frame_header(first: u8, len: u64, mask: Option<[u8; 4]>) -> Vec<u8> {
    let mut h = Vec::with_capacity(14);
    h.push(first);
    let m = if mask.is_some() { 0x80 } else { 0 };
    if len < 126 {
        h.push(m | len as u8);
    } else if len <= 0xFFFF {
        h.push(m | 126);
        h.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        h.push(m | 127);
        h.extend_from_slice(&len.to_be_bytes());
    }
    if let Some(k) = mask {
        h.extend_from_slice(&k);
    }
    h
}

/// A whole frame, masked with `mask` if given.
fn frame(first: u8, payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
    let mut f = frame_header(first, payload.len() as u64, mask);
    let start = f.len();
    f.extend_from_slice(payload);
    if let Some(k) = mask {
        apply_mask(&mut f[start..], k);
    }
    f
}

fn close_frame(code: u16, mask: [u8; 4]) -> Vec<u8> {
    frame(0x88, &code.to_be_bytes(), Some(mask))
}

/// A chat message `{"type":"message","text":"xxx..."}` of `size` bytes (or the smallest one).
fn chat_padded(size: usize) -> String {
    const HEAD: &str = r#"{"type":"message","text":""#;
    const TAIL: &str = r#""}"#;
    let pad = size.saturating_sub(HEAD.len() + TAIL.len()).max(1);
    let mut s = String::with_capacity(HEAD.len() + pad + TAIL.len());
    s.push_str(HEAD);
    s.extend(std::iter::repeat('x').take(pad));
    s.push_str(TAIL);
    s
}

/// The attacks' data message: one masked frame of `size` bytes (binary, or chat text).
fn data_frame(o: &Options, seed: u64) -> Arc<[u8]> {
    let mask = Rng::new(seed).mask();
    let f = if o.chat {
        frame(0x81, chat_padded(o.size).as_bytes(), Some(mask))
    } else {
        frame(0x82, &vec![b'm'; o.size], Some(mask))
    };
    f.into()
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// `HTTP/1.1 101 ...` -> 101.
fn parse_status(data: &[u8]) -> Option<u16> {
    let rest = data.strip_prefix(b"HTTP/1.")?;
    let code = rest.get(2..5)?;
    std::str::from_utf8(code).ok()?.parse().ok()
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A histogram of codes (close codes, HTTP statuses).
#[derive(Default)]
struct Hist(Mutex<BTreeMap<u16, u64>>);

impl Hist {
    fn add(&self, code: u16) {
        *lock(&self.0).entry(code).or_default() += 1;
    }
    fn json(&self) -> Value {
        let m: Map<String, Value> =
            lock(&self.0).iter().map(|(k, v)| (k.to_string(), json!(v))).collect();
        Value::Object(m)
    }
}

fn get(a: &AtomicU64) -> u64 {
    a.load(Relaxed)
}

fn inc(a: &AtomicU64) {
    a.fetch_add(1, Relaxed);
}

fn round(x: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (x * f).round() / f
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    Some(sorted[rank - 1])
}

/// `{median, max}` of seconds, 2 decimals.
fn median_max(values: &[f32]) -> Value {
    let mut v: Vec<f64> = values.iter().map(|&x| f64::from(x)).collect();
    v.sort_by(f64::total_cmp);
    json!({
        "median": percentile(&v, 0.5).map(|x| round(x, 2)),
        "max": v.last().map(|&x| round(x, 2)),
    })
}

// ---------------------------------------------------------------------------------------
// The deflate bomb

/// Writes DEFLATE's bit stream: fields least significant bit first, Huffman codes most
/// significant bit first (RFC 1951 §3.1.1).
struct BitWriter {
    out: Vec<u8>,
    acc: u64,
    n: u32,
}

impl BitWriter {
    fn bits(&mut self, value: u32, count: u32) {
        self.acc |= u64::from(value) << self.n;
        self.n += count;
        while self.n >= 8 {
            self.out.push(self.acc as u8);
            self.acc >>= 8;
            self.n -= 8;
        }
    }
    fn code(&mut self, code: u32, len: u32) {
        for i in (0..len).rev() {
            self.bits((code >> i) & 1, 1);
        }
    }
    fn finish(mut self) -> Vec<u8> {
        if self.n > 0 {
            self.out.push(self.acc as u8);
        }
        self.out
    }
}

/// Raw DEFLATE that inflates to `inflated` bytes of 'a': one final block with dynamic
/// Huffman codes in which "length 258" and "distance 1" are one bit each, so every 258
/// bytes cost 2 bits (about 1:1000). The litlen code: 285 = `0`, 'a' = `10`, end = `11`;
/// the distance code: 0 = `0` (a single one-bit code, which RFC 1951 allows).
fn deflate_bomb(inflated: usize) -> Vec<u8> {
    let mut w = BitWriter { out: Vec::with_capacity(inflated / 1000 + 64), acc: 0, n: 0 };
    w.bits(1, 1); // BFINAL
    w.bits(2, 2); // BTYPE = dynamic Huffman
    w.bits(286 - 257, 5); // HLIT: litlen codes 0..=285
    w.bits(0, 5); // HDIST: one distance code
    w.bits(18 - 4, 4); // HCLEN: 18 code length code lengths
                       // The code length alphabet uses 18 (runs of zeros) = `0`, 1 = `10`, 2 = `11`.
    const ORDER: [usize; 18] = [16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1];
    let mut cl = [0u32; 19];
    cl[18] = 1;
    cl[1] = 2;
    cl[2] = 2;
    for &sym in &ORDER {
        w.bits(cl[sym], 3);
    }
    let zeros = |w: &mut BitWriter, mut n: u32| {
        while n > 0 {
            let k = if n > 138 && n - 138 < 11 { n - 11 } else { n.min(138) };
            w.code(0, 1);
            w.bits(k - 11, 7);
            n -= k;
        }
    };
    // Litlen code lengths: 0..=96 none, 97 ('a') 2, 98..=255 none, 256 2, 257..=284 none,
    // 285 1; then the distance code 0: 1.
    zeros(&mut w, 97);
    w.code(0b11, 2);
    zeros(&mut w, 158);
    w.code(0b11, 2);
    zeros(&mut w, 28);
    w.code(0b10, 2);
    w.code(0b10, 2);
    // The data: 'a', then (length 258, distance 1) repeated, then the end of the block.
    w.code(0b10, 2);
    let refs = inflated.saturating_sub(1) / 258;
    for _ in 0..refs {
        w.bits(0, 2);
    }
    w.code(0b11, 2);
    w.finish()
}

// ---------------------------------------------------------------------------------------
// /proc

fn proc_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/status")) {
        Ok(s) => !s
            .lines()
            .any(|l| l.starts_with("State:") && (l.contains("(zombie)") || l.contains("(dead)"))),
        Err(_) => false,
    }
}

/// (VmRSS in KiB, open descriptors).
fn proc_sample(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())?;
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count() as u64;
    Some((rss, fds))
}

/// CPU seconds the process has used, exact: the sum of its threads' `schedstat` (ns on
/// CPU; threads that already exited are missing), else [`proc_cpu_stat`].
fn proc_cpu(pid: u32) -> Option<f64> {
    let mut total_ns = 0u64;
    let mut any = false;
    if let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        for task in tasks.flatten() {
            let path = task.path().join("schedstat");
            let ns = std::fs::read_to_string(path)
                .ok()
                .and_then(|s| s.split_whitespace().next()?.parse::<u64>().ok());
            if let Some(ns) = ns {
                total_ns += ns;
                any = true;
            }
        }
    }
    if any {
        Some(total_ns as f64 / 1e9)
    } else {
        proc_cpu_stat(pid)
    }
}

/// CPU seconds from `/proc/PID/stat` (utime + stime of all threads, dead ones included),
/// at 100 ticks per second (Linux x86_64's `_SC_CLK_TCK`).
fn proc_cpu_stat(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 1..];
    let f: Vec<&str> = after.split_whitespace().collect();
    // Field 3 (state) is f[0]: utime (14) and stime (15) are f[11] and f[12].
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / 100.0)
}

fn soft_fd_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..].split_whitespace().next()?.parse().ok()
}

// ---------------------------------------------------------------------------------------
// Shared state

#[derive(Default)]
struct Counter {
    total: AtomicU64,
    window: AtomicU64,
}

#[derive(Default)]
struct Honest {
    sent: Counter,
    received: Counter,
    errors: Counter,
    reconnects: Counter,
    /// (send time in s since start, round trip in ms).
    latencies: Mutex<Vec<(f32, f32)>>,
    last_error: Mutex<Option<String>>,
}

struct Sample {
    t: f64,
    rss: u64,
    fds: u64,
    /// [`proc_cpu`], kept for a server that dies before the attack's end is marked.
    cpu: Option<f64>,
}

#[derive(Default)]
struct Run {
    attack_start: Option<f64>,
    attack_end: Option<f64>,
    baseline: Option<(u64, u64)>,
    cpu_start: Option<f64>,
    cpu_end: Option<f64>,
    cpu_stat_start: Option<f64>,
    cpu_stat_end: Option<f64>,
    fds_recovered: Option<f64>,
    rss_recovered: Option<f64>,
    probe: Option<Result<f64, String>>,
    deadline_hit: bool,
}

/// An attack's counters, as the `attack` object of the output.
trait AttackReport: Send + Sync {
    fn json(&self, run: &Run) -> Value;
}

struct Shared {
    opt: Options,
    t0: Instant,
    /// 0 warmup, 1 attack, 2 after.
    phase: AtomicU8,
    honest: Honest,
    samples: Mutex<Vec<Sample>>,
    run: Mutex<Run>,
    report: Mutex<Option<Arc<dyn AttackReport>>>,
    attack_ended: Notify,
    printed: AtomicBool,
    seed: u64,
    next_source: AtomicUsize,
}

impl Shared {
    fn elapsed(&self) -> f64 {
        self.t0.elapsed().as_secs_f64()
    }

    fn count(&self, c: &Counter) {
        self.count_in(c, self.phase.load(Relaxed));
    }

    /// Counts an event of `phase` (a reply in the phase its message was sent in).
    fn count_in(&self, c: &Counter, phase: u8) {
        c.total.fetch_add(1, Relaxed);
        if phase == 1 {
            c.window.fetch_add(1, Relaxed);
        }
    }

    fn deadline(&self) -> Duration {
        self.opt.warmup + self.opt.duration + self.opt.recovery + Duration::from_secs(15)
    }

    fn mark_attack_end(&self) {
        let now = self.elapsed();
        // A dead server's CPU time: its last sample's.
        let cpu = proc_cpu(self.opt.pid).or_else(|| lock(&self.samples).last().and_then(|s| s.cpu));
        let cpu_stat = proc_cpu_stat(self.opt.pid);
        let mut run = lock(&self.run);
        if run.attack_end.is_none() {
            run.attack_end = Some(now);
            run.cpu_end = cpu;
            run.cpu_stat_end = cpu_stat;
        }
        drop(run);
        self.phase.store(2, Relaxed);
        self.attack_ended.notify_one();
    }

    fn set_report(&self, r: Arc<dyn AttackReport>) {
        *lock(&self.report) = Some(r);
    }

    /// The source address of attack connection `idx`: 127.1.X.Y, round-robin.
    fn source(&self, idx: usize) -> Ipv4Addr {
        let j = (idx % self.opt.sources) as u32 + 1;
        Ipv4Addr::new(127, 1, (j >> 8) as u8, j as u8)
    }

    /// The request target: PATH, and for the chat `?room=siege&name=NAME`.
    fn target_path(&self, name: &str) -> String {
        if self.opt.chat {
            let sep = if self.opt.path.contains('?') { '&' } else { '?' };
            let room =
                if self.opt.own_rooms && name.starts_with("attack") { name } else { "siege" };
            format!("{}{sep}room={room}&name={name}", self.opt.path)
        } else {
            self.opt.path.clone()
        }
    }

    /// A complete upgrade request for attack connection `idx`; padded with `X-Pad-N`
    /// headers to at least `min_len` bytes.
    fn upgrade_request(&self, idx: usize, extensions: Option<&str>, min_len: usize) -> Vec<u8> {
        let mut rng = Rng::new(self.seed ^ (idx as u64).wrapping_mul(0x1234_5678_9ABC_DEF1));
        let key = base64(&rng.bytes(16));
        let mut r = format!(
            "GET {} HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n",
            self.target_path(&format!("attack{idx}")),
            self.opt.target
        );
        if let Some(origin) = &self.opt.origin {
            r.push_str(&format!("Origin: {origin}\r\n"));
        }
        if let Some(ext) = extensions {
            r.push_str(&format!("Sec-WebSocket-Extensions: {ext}\r\n"));
        }
        let mut n = 0;
        while r.len() + 2 < min_len {
            r.push_str(&format!("X-Pad-{n}: aaaa\r\n"));
            n += 1;
        }
        r.push_str("\r\n");
        r.into_bytes()
    }
}

// ---------------------------------------------------------------------------------------
// Raw attack connections

async fn connect_from(ip: Ipv4Addr, target: SocketAddrV4) -> io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(ip.into(), 0))?;
    let stream = socket.connect(target.into()).await?;
    let _ = stream.set_nodelay(true);
    Ok(stream)
}

/// How an attack handshake failed.
enum HsError {
    Connect,
    Status(u16),
    Io,
}

struct Upgraded {
    stream: TcpStream,
    head: String,
    /// Bytes after the response head.
    rest: Vec<u8>,
}

/// Reads the response head (up to 16 KiB): (status, head, bytes after it).
async fn read_head(s: &mut TcpStream) -> io::Result<(u16, String, Vec<u8>)> {
    let mut buf = Vec::with_capacity(512);
    let mut chunk = [0u8; 2048];
    loop {
        let n = s.read(&mut chunk).await?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = find(&buf, b"\r\n\r\n") {
            let status = parse_status(&buf).ok_or(io::ErrorKind::InvalidData)?;
            let head = String::from_utf8_lossy(&buf[..end]).into_owned();
            return Ok((status, head, buf[end + 4..].to_vec()));
        }
        if buf.len() > 16 * 1024 {
            return Err(io::ErrorKind::InvalidData.into());
        }
    }
}

/// Connects attack connection `idx` and upgrades it (expects 101), within 10 s.
async fn raw_upgrade(
    sh: &Shared,
    idx: usize,
    extensions: Option<&str>,
) -> Result<Upgraded, HsError> {
    let work = async {
        let mut stream =
            connect_from(sh.source(idx), sh.opt.target).await.map_err(|_| HsError::Connect)?;
        let request = sh.upgrade_request(idx, extensions, 0);
        stream.write_all(&request).await.map_err(|_| HsError::Io)?;
        let (status, head, rest) = read_head(&mut stream).await.map_err(|_| HsError::Io)?;
        if status != 101 {
            return Err(HsError::Status(status));
        }
        Ok(Upgraded { stream, head, rest })
    };
    timeout(ATTACK_HANDSHAKE_TIMEOUT, work).await.unwrap_or(Err(HsError::Io))
}

/// Finds frame boundaries in what a server sends, skipping data payloads and handing
/// control frames (opcode, payload) to a callback.
#[derive(Default)]
struct Scanner {
    head: Vec<u8>,
    skip: u64,
    control: Option<(u8, Vec<u8>)>,
}

impl Scanner {
    fn feed(&mut self, mut data: &[u8], mut on_control: impl FnMut(u8, &[u8])) {
        while !data.is_empty() {
            if self.skip > 0 {
                let n = (self.skip.min(data.len() as u64)) as usize;
                if let Some((_, payload)) = &mut self.control {
                    payload.extend_from_slice(&data[..n]);
                }
                self.skip -= n as u64;
                data = &data[n..];
                if self.skip == 0 {
                    if let Some((op, payload)) = self.control.take() {
                        on_control(op, &payload);
                    }
                }
                continue;
            }
            let need = if self.head.len() < 2 {
                2
            } else {
                let ext = match self.head[1] & 0x7F {
                    126 => 2,
                    127 => 8,
                    _ => 0,
                };
                2 + ext + if self.head[1] & 0x80 != 0 { 4 } else { 0 }
            };
            if self.head.len() < need {
                let n = (need - self.head.len()).min(data.len());
                self.head.extend_from_slice(&data[..n]);
                data = &data[n..];
                if self.head.len() < need || need == 2 {
                    continue;
                }
            }
            let h = &self.head;
            let len = match h[1] & 0x7F {
                126 => u64::from(u16::from_be_bytes([h[2], h[3]])),
                127 => u64::from_be_bytes(h[2..10].try_into().unwrap_or([0; 8])),
                n => u64::from(n),
            };
            let op = h[0] & 0x0F;
            self.head.clear();
            self.skip = len;
            if op >= 8 {
                if len == 0 {
                    on_control(op, &[]);
                } else if len <= 125 {
                    self.control = Some((op, Vec::with_capacity(len as usize)));
                }
            }
        }
    }
}

fn close_code(payload: &[u8]) -> u16 {
    if payload.len() >= 2 {
        u16::from_be_bytes([payload[0], payload[1]])
    } else {
        1005
    }
}

/// What came back after a misbehaving client's bytes.
#[derive(Default)]
struct Outcome {
    /// The server closed the connection (close frame, EOF or reset).
    closed: bool,
    close_code: Option<u16>,
}

/// Reads (discarding) for up to `wait`, watching for a close frame and the end of the stream.
async fn await_close(s: &mut TcpStream, rest: &[u8], wait: Duration) -> Outcome {
    let mut out = Outcome::default();
    let mut scanner = Scanner::default();
    let see = |op: u8, payload: &[u8], out: &mut Outcome| {
        if op == 8 && out.close_code.is_none() {
            out.close_code = Some(close_code(payload));
            out.closed = true;
        }
    };
    scanner.feed(rest, |op, p| see(op, p, &mut out));
    let deadline = TInstant::now() + wait;
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        match tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => {
                out.closed = true;
                return out;
            }
            Ok(Ok(n)) => scanner.feed(&buf[..n], |op, p| see(op, p, &mut out)),
            Err(_) => return out,
        }
    }
}

// ---------------------------------------------------------------------------------------
// Honest clients and probes (the crate's tokio client)

type Socket = ws::WebSocket<TcpStream>;

async fn honest_connect(sh: &Shared, name: &str) -> Result<Socket, String> {
    let work = async {
        let socket = TcpSocket::new_v4().map_err(|e| e.to_string())?;
        socket
            .bind(SocketAddr::new(Ipv4Addr::new(127, 0, 0, 2).into(), 0))
            .map_err(|e| e.to_string())?;
        let tcp =
            socket.connect(sh.opt.target.into()).await.map_err(|e| format!("connect: {e}"))?;
        let _ = tcp.set_nodelay(true);
        let host = sh.opt.target.to_string();
        let path = sh.target_path(name);
        let mut request = ClientRequest::new(&host, &path);
        if let Some(origin) = &sh.opt.origin {
            request = request.origin(origin);
        }
        // Large enough for what the chat broadcasts (the attackers' messages, wrapped).
        let config = Config::new().max_message_size(64 << 20).max_frame_size(64 << 20);
        let (ws, _) =
            ws::connect(tcp, &request, config).await.map_err(|e| format!("handshake: {e}"))?;
        Ok(ws)
    };
    timeout(HONEST_TIMEOUT, work).await.unwrap_or_else(|_| Err("handshake timeout".into()))
}

/// One message and its echo, within 2 s; returns the round trip in ms.
async fn round_trip(
    sh: &Shared,
    ws: &mut Socket,
    client: usize,
    seq: u64,
    rng: &mut Rng,
) -> Result<f64, String> {
    let start = Instant::now();
    let work = async {
        if sh.opt.chat {
            let nonce = format!("siege-h{client}-{seq}-{:x}", rng.next());
            let text = format!(r#"{{"type":"message","text":"{nonce}"}}"#);
            ws.send(Outgoing::Text(text)).await.map_err(|e| format!("send: {e}"))?;
            loop {
                match ws.recv().await.map_err(|e| format!("recv: {e}"))? {
                    Some(Incoming::Text(t)) if t.contains(&nonce) => return Ok(()),
                    Some(Incoming::Close(f)) => {
                        return Err(format!("closed by server: {}", f.code()))
                    }
                    None => return Err("closed by server".into()),
                    _ => {}
                }
            }
        } else {
            let mut data = vec![b'h'; sh.opt.message.max(16)];
            data[..8].copy_from_slice(&seq.to_le_bytes());
            data[8..16].copy_from_slice(&(client as u64).to_le_bytes());
            ws.send(Outgoing::Binary(data.clone())).await.map_err(|e| format!("send: {e}"))?;
            loop {
                match ws.recv().await.map_err(|e| format!("recv: {e}"))? {
                    Some(Incoming::Binary(d)) if d == data => return Ok(()),
                    Some(Incoming::Binary(_)) | Some(Incoming::Text(_)) => {
                        return Err("mismatched echo".into())
                    }
                    Some(Incoming::Close(f)) => {
                        return Err(format!("closed by server: {}", f.code()))
                    }
                    None => return Err("closed by server".into()),
                    _ => {}
                }
            }
        }
    };
    match timeout(HONEST_TIMEOUT, work).await {
        Ok(Ok(())) => Ok(start.elapsed().as_secs_f64() * 1e3),
        Ok(Err(e)) => Err(e),
        Err(_) => Err("echo timeout".into()),
    }
}

async fn honest_client(sh: Arc<Shared>, k: usize) {
    let mut rng = Rng::new(sh.seed ^ (0xABCD_0000 + k as u64));
    let name = format!("honest{k}");
    let mut socket: Option<Socket> = None;
    let mut connected_once = false;
    let mut seq = 0u64;
    let note = |sh: &Shared, e: String| {
        sh.count(&sh.honest.errors);
        let mut last = lock(&sh.honest.last_error);
        if last.as_deref() != Some(e.as_str()) {
            eprintln!("siege: honest{k}: {e} (t={:.1}s)", sh.elapsed());
        }
        *last = Some(e);
    };
    loop {
        let ws = match &mut socket {
            Some(ws) => ws,
            None => {
                if connected_once {
                    sh.count(&sh.honest.reconnects);
                }
                match honest_connect(&sh, &name).await {
                    Ok(ws) => {
                        connected_once = true;
                        socket.insert(ws)
                    }
                    Err(e) => {
                        connected_once = true;
                        note(&sh, e);
                        sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                }
            }
        };
        let sent_at = TInstant::now();
        let t = sh.elapsed();
        seq += 1;
        let phase = sh.phase.load(Relaxed);
        sh.count_in(&sh.honest.sent, phase);
        match round_trip(&sh, ws, k, seq, &mut rng).await {
            Ok(ms) => {
                sh.count_in(&sh.honest.received, phase);
                lock(&sh.honest.latencies).push((t as f32, ms as f32));
            }
            Err(e) => {
                note(&sh, e);
                socket = None;
            }
        }
        sleep_until(sent_at + sh.opt.interval).await;
    }
}

/// A fresh client: handshake and one echo; the time it took in ms.
async fn probe(sh: &Shared, name: &str) -> Result<f64, String> {
    let start = Instant::now();
    let mut ws = honest_connect(sh, name).await?;
    let mut rng = Rng::new(sh.seed ^ 0x5EED);
    round_trip(sh, &mut ws, 9999, 1, &mut rng).await?;
    Ok(start.elapsed().as_secs_f64() * 1e3)
}

// ---------------------------------------------------------------------------------------
// Attacks

/// Spawns `n` tasks at up to `per_s` per second until `end`.
async fn spawn_paced<F, Fut>(set: &mut JoinSet<()>, n: usize, per_s: usize, end: TInstant, mut f: F)
where
    F: FnMut(usize) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let start = TInstant::now();
    let per_s = per_s.max(1) as f64;
    for i in 0..n {
        let at = start + Duration::from_secs_f64(i as f64 / per_s);
        if at >= end {
            break;
        }
        sleep_until(at).await;
        set.spawn(f(i));
    }
}

// --- slowloris

#[derive(Default)]
struct SlowStats {
    attempted: AtomicU64,
    opened: AtomicU64,
    connect_failed: AtomicU64,
    closed_by_server: AtomicU64,
    server_responded: AtomicU64,
    request_completed: AtomicU64,
    closed_at: Mutex<Vec<f32>>,
    held_at_end: AtomicU64,
    request_bytes: AtomicU64,
}

impl AttackReport for SlowStats {
    fn json(&self, _: &Run) -> Value {
        json!({
            "attempted": get(&self.attempted),
            "opened": get(&self.opened),
            "connect_failed": get(&self.connect_failed),
            // Connects neither done nor failed at the end (a full accept backlog).
            "connect_pending_at_end": get(&self.attempted)
                .saturating_sub(get(&self.opened) + get(&self.connect_failed)),
            "closed_by_server": get(&self.closed_by_server),
            "closed_by_server_at_s": median_max(&lock(&self.closed_at)),
            "server_responded": get(&self.server_responded),
            "request_completed": get(&self.request_completed),
            "request_bytes": get(&self.request_bytes),
            "held_at_end": get(&self.held_at_end),
        })
    }
}

struct SlowConn {
    stream: TcpStream,
    request: Box<[u8]>,
    pos: u32,
    opened: Instant,
}

/// Polls one slow connection: reads what the server sent (EOF or error: closed), then,
/// if `send`, writes the next byte. Returns false once the server closed it.
fn slow_tick(c: &mut SlowConn, st: &SlowStats, send: bool, scratch: &mut [u8]) -> bool {
    loop {
        match c.stream.try_read(scratch) {
            Ok(0) => return false,
            Ok(_) => {
                inc(&st.server_responded);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(_) => return false,
        }
    }
    let pos = c.pos as usize;
    if send && pos < c.request.len() {
        match c.stream.try_write(&c.request[pos..pos + 1]) {
            Ok(n) => {
                c.pos += n as u32;
                if c.pos as usize == c.request.len() {
                    inc(&st.request_completed);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(_) => return false,
        }
    }
    true
}

async fn slowloris(sh: &Arc<Shared>, st: &Arc<SlowStats>, end: TInstant) {
    let (tx, mut rx) = mpsc::unbounded_channel::<SlowConn>();
    // Long enough to last the attack at one byte per second, and then some.
    let min_len = sh.opt.duration.as_secs() as usize + 60;
    st.request_bytes.store(sh.upgrade_request(0, None, min_len).len() as u64, Relaxed);
    let ticker = {
        let st = st.clone();
        async move {
            let mut conns: Vec<SlowConn> = Vec::new();
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            let mut scratch = [0u8; 512];
            let closed = |c: &SlowConn| {
                inc(&st.closed_by_server);
                lock(&st.closed_at).push(c.opened.elapsed().as_secs_f32());
            };
            loop {
                tokio::select! {
                    _ = sleep_until(end) => break,
                    Some(mut c) = rx.recv() => {
                        if slow_tick(&mut c, &st, true, &mut scratch) { conns.push(c) } else { closed(&c) }
                    }
                    _ = tick.tick() => conns.retain_mut(|c| {
                        let open = slow_tick(c, &st, true, &mut scratch);
                        if !open { closed(c) }
                        open
                    }),
                }
            }
            conns.retain_mut(|c| {
                let open = slow_tick(c, &st, false, &mut scratch);
                if !open {
                    closed(c)
                }
                open
            });
            st.held_at_end.store(conns.len() as u64, Relaxed);
            // The connections are dropped (closed) here, at the attack's end.
        }
    };
    let mut set = JoinSet::new();
    let opener = async {
        spawn_paced(&mut set, sh.opt.conns, 1000, end, |i| {
            let (sh, st, tx) = (sh.clone(), st.clone(), tx.clone());
            async move {
                inc(&st.attempted);
                let request = sh.upgrade_request(i, None, min_len).into_boxed_slice();
                match timeout(ATTACK_HANDSHAKE_TIMEOUT, connect_from(sh.source(i), sh.opt.target))
                    .await
                {
                    Ok(Ok(stream)) => {
                        inc(&st.opened);
                        let _ =
                            tx.send(SlowConn { stream, request, pos: 0, opened: Instant::now() });
                    }
                    _ => inc(&st.connect_failed),
                }
            }
        })
        .await;
        sleep_until(end).await;
        // The handshakes still in progress are abandoned (their sockets closed).
        set.shutdown().await;
    };
    tokio::join!(ticker, opener);
}

// --- handshake flood

#[derive(Default)]
struct FloodStats {
    workers: usize,
    completed: AtomicU64,
    failed: AtomicU64,
    close_replied: AtomicU64,
    statuses: Hist,
    seconds: Mutex<f64>,
}

impl AttackReport for FloodStats {
    fn json(&self, run: &Run) -> Value {
        let completed = get(&self.completed);
        let secs = *lock(&self.seconds);
        let cpu = match (run.cpu_start, run.cpu_end) {
            (Some(a), Some(b)) => Some(b - a),
            _ => None,
        };
        json!({
            "workers": self.workers,
            "completed": completed,
            "failed": get(&self.failed),
            "close_replied": get(&self.close_replied),
            "statuses": self.statuses.json(),
            "handshakes_per_s": if secs > 0.0 { Some(round(completed as f64 / secs, 1)) } else { None },
            "server_cpu_s": cpu.map(|c| round(c, 3)),
            "server_cpu_us_per_handshake": cpu.filter(|_| completed > 0).map(|c| round(c * 1e6 / completed as f64, 2)),
        })
    }
}

async fn flood_once(sh: &Shared, st: &FloodStats, idx: usize, mask: [u8; 4]) {
    let mut stream = match connect_from(sh.source(idx), sh.opt.target).await {
        Ok(s) => s,
        Err(_) => return inc(&st.failed),
    };
    if stream.write_all(&sh.upgrade_request(idx, None, 0)).await.is_err() {
        return inc(&st.failed);
    }
    let rest = match read_head(&mut stream).await {
        Ok((101, _, rest)) => rest,
        Ok((status, _, _)) => {
            st.statuses.add(status);
            return inc(&st.failed);
        }
        Err(_) => return inc(&st.failed),
    };
    inc(&st.completed);
    st.statuses.add(101);
    if stream.write_all(&close_frame(1000, mask)).await.is_ok() {
        let out = await_close(&mut stream, &rest, Duration::from_secs(2)).await;
        if out.close_code.is_some() {
            inc(&st.close_replied);
        }
    }
}

async fn handshake_flood(sh: &Arc<Shared>, st: &Arc<FloodStats>, end: TInstant) {
    let start = Instant::now();
    let mut set = JoinSet::new();
    for w in 0..sh.opt.workers.max(1) {
        let (sh, st) = (sh.clone(), st.clone());
        set.spawn(async move {
            let mut rng = Rng::new(sh.seed ^ (w as u64 + 77));
            while TInstant::now() < end {
                let idx = sh.next_source.fetch_add(1, Relaxed);
                if timeout(Duration::from_secs(5), flood_once(&sh, &st, idx, rng.mask()))
                    .await
                    .is_err()
                {
                    inc(&st.failed);
                }
            }
        });
    }
    sleep_until(end).await;
    set.shutdown().await;
    *lock(&st.seconds) = start.elapsed().as_secs_f64();
}

// --- silent

#[derive(Default)]
struct SilentStats {
    opened: AtomicU64,
    handshaken: AtomicU64,
    handshake_failed: AtomicU64,
    closed_by_server: AtomicU64,
    reaped_at: Mutex<Vec<f32>>,
    held_at_end: AtomicU64,
    held_at_release: AtomicU64,
    released_after_end_s: Mutex<Option<f64>>,
    hold_until_reaped: bool,
}

impl AttackReport for SilentStats {
    fn json(&self, _: &Run) -> Value {
        json!({
            "opened": get(&self.opened),
            "handshaken": get(&self.handshaken),
            "handshake_failed": get(&self.handshake_failed),
            "closed_by_server": get(&self.closed_by_server),
            "reaped_at_s": median_max(&lock(&self.reaped_at)),
            "held_at_end": get(&self.held_at_end),
            "hold_until_reaped": self.hold_until_reaped,
            "held_at_release": get(&self.held_at_release),
            "released_after_end_s": lock(&self.released_after_end_s).map(|s| round(s, 2)),
        })
    }
}

async fn silent(sh: &Arc<Shared>, st: &Arc<SilentStats>, end: TInstant) {
    let (tx, mut rx) = mpsc::unbounded_channel::<(TcpStream, Instant)>();
    let hold = sh.opt.hold_until_reaped;
    let release_by = end + sh.opt.recovery;
    let mut set = JoinSet::new();
    let ticker = {
        let (sh, st) = (sh.clone(), st.clone());
        async move {
            let mut conns: Vec<(TcpStream, Instant)> = Vec::new();
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            let mut scratch = [0u8; 1024];
            let mut ended = false;
            loop {
                tokio::select! {
                    _ = sleep_until(end), if !ended => {
                        ended = true;
                        // Handshakes that finish from now on are dropped at once.
                        rx.close();
                        while rx.try_recv().is_ok() {}
                        st.held_at_end.store(conns.len() as u64, Relaxed);
                        sh.mark_attack_end();
                        if !hold { break }
                    }
                    _ = sleep_until(release_by) => break,
                    Some(c) = rx.recv(), if !ended => conns.push(c),
                    _ = tick.tick() => {
                        // Never answer anything: read (and discard) only to see the end.
                        conns.retain(|(s, at)| {
                            let open = loop {
                                match s.try_read(&mut scratch) {
                                    Ok(0) => break false,
                                    Ok(_) => continue,
                                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break true,
                                    Err(_) => break false,
                                }
                            };
                            if !open {
                                inc(&st.closed_by_server);
                                lock(&st.reaped_at).push(at.elapsed().as_secs_f32());
                            }
                            open
                        });
                        if ended && conns.is_empty() { break }
                    }
                }
            }
            if !ended {
                st.held_at_end.store(conns.len() as u64, Relaxed);
            }
            st.held_at_release.store(conns.len() as u64, Relaxed);
            *lock(&st.released_after_end_s) =
                Some(TInstant::now().saturating_duration_since(end).as_secs_f64());
        }
    };
    let opener = async {
        spawn_paced(&mut set, sh.opt.conns, 1000, end, |i| {
            let (sh, st, tx) = (sh.clone(), st.clone(), tx.clone());
            async move {
                match raw_upgrade(&sh, i, None).await {
                    Ok(up) => {
                        inc(&st.opened);
                        inc(&st.handshaken);
                        let _ = tx.send((up.stream, Instant::now()));
                    }
                    Err(HsError::Connect) => inc(&st.handshake_failed),
                    Err(_) => {
                        inc(&st.opened);
                        inc(&st.handshake_failed);
                    }
                }
            }
        })
        .await;
        sleep_until(end).await;
        // The handshakes still in progress are abandoned (their sockets closed).
        set.shutdown().await;
    };
    tokio::join!(ticker, opener);
}

// --- non-readers

#[derive(Default)]
struct NonReaderStats {
    opened: AtomicU64,
    handshaken: AtomicU64,
    handshake_failed: AtomicU64,
    bytes_sent: AtomicU64,
    messages_sent: AtomicU64,
    closed_by_server: AtomicU64,
}

impl AttackReport for NonReaderStats {
    fn json(&self, _: &Run) -> Value {
        json!({
            "opened": get(&self.opened),
            "handshaken": get(&self.handshaken),
            "handshake_failed": get(&self.handshake_failed),
            "bytes_sent": get(&self.bytes_sent),
            "messages_sent": get(&self.messages_sent),
            "closed_by_server": get(&self.closed_by_server),
        })
    }
}

async fn non_readers(sh: &Arc<Shared>, st: &Arc<NonReaderStats>, end: TInstant) {
    let msg = data_frame(&sh.opt, sh.seed);
    let mut set = JoinSet::new();
    spawn_paced(&mut set, sh.opt.conns, 1000, end, |i| {
        let (sh, st, msg) = (sh.clone(), st.clone(), msg.clone());
        async move {
            let mut up = match raw_upgrade(&sh, i, None).await {
                Ok(up) => up,
                Err(e) => {
                    if !matches!(e, HsError::Connect) {
                        inc(&st.opened);
                    }
                    return inc(&st.handshake_failed);
                }
            };
            inc(&st.opened);
            inc(&st.handshaken);
            // Write as long as the socket takes it; never read.
            loop {
                let mut off = 0;
                while off < msg.len() {
                    match up.stream.write(&msg[off..]).await {
                        Ok(0) | Err(_) => return inc(&st.closed_by_server),
                        Ok(n) => {
                            off += n;
                            st.bytes_sent.fetch_add(n as u64, Relaxed);
                        }
                    }
                }
                inc(&st.messages_sent);
            }
        }
    })
    .await;
    sleep_until(end).await;
    set.shutdown().await;
}

// --- max-messages

#[derive(Default)]
struct MaxStats {
    connects: AtomicU64,
    handshaken: AtomicU64,
    handshake_failed: AtomicU64,
    messages_sent: AtomicU64,
    bytes_sent: AtomicU64,
    bytes_received: AtomicU64,
    closed_by_server: AtomicU64,
    close_codes: Hist,
    statuses: Hist,
}

impl AttackReport for MaxStats {
    fn json(&self, _: &Run) -> Value {
        json!({
            "connects": get(&self.connects),
            "handshaken": get(&self.handshaken),
            "handshake_failed": get(&self.handshake_failed),
            "messages_sent": get(&self.messages_sent),
            "bytes_sent": get(&self.bytes_sent),
            "bytes_received": get(&self.bytes_received),
            "closed_by_server": get(&self.closed_by_server),
            "close_codes": self.close_codes.json(),
            "handshake_statuses": self.statuses.json(),
        })
    }
}

async fn max_messages_conn(sh: &Shared, st: &MaxStats, i: usize, msg: &[u8]) {
    inc(&st.connects);
    let up = match raw_upgrade(sh, i, None).await {
        Ok(up) => up,
        Err(e) => {
            if let HsError::Status(s) = e {
                st.statuses.add(s);
            }
            inc(&st.handshake_failed);
            sleep(Duration::from_millis(100)).await;
            return;
        }
    };
    inc(&st.handshaken);
    let (mut rd, mut wr) = up.stream.into_split();
    let writer = async {
        while wr.write_all(msg).await.is_ok() {
            inc(&st.messages_sent);
            st.bytes_sent.fetch_add(msg.len() as u64, Relaxed);
        }
    };
    let reader = async {
        let mut scanner = Scanner::default();
        let mut code = None;
        let see = |op: u8, p: &[u8], code: &mut Option<u16>| {
            if op == 8 && code.is_none() {
                *code = Some(close_code(p));
            }
        };
        scanner.feed(&up.rest, |op, p| see(op, p, &mut code));
        let mut buf = vec![0u8; 64 * 1024];
        while code.is_none() {
            match rd.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    st.bytes_received.fetch_add(n as u64, Relaxed);
                    scanner.feed(&buf[..n], |op, p| see(op, p, &mut code));
                }
            }
        }
        code
    };
    tokio::select! {
        code = reader => {
            if let Some(code) = code {
                st.close_codes.add(code);
            }
            inc(&st.closed_by_server);
        }
        _ = writer => inc(&st.closed_by_server),
    }
}

async fn max_messages(sh: &Arc<Shared>, st: &Arc<MaxStats>, end: TInstant) {
    let msg = data_frame(&sh.opt, sh.seed);
    let mut set = JoinSet::new();
    spawn_paced(&mut set, sh.opt.conns, 1000, end, |i| {
        let (sh, st, msg) = (sh.clone(), st.clone(), msg.clone());
        async move {
            // Reconnect after each close, for the whole attack.
            let mut n = 0;
            while TInstant::now() < end {
                max_messages_conn(&sh, &st, i + n * sh.opt.conns, &msg).await;
                n += 1;
            }
        }
    })
    .await;
    sleep_until(end).await;
    set.shutdown().await;
}

// --- garbage

const BEHAVIOURS: [&str; 6] = [
    "random_request",
    "random_after_handshake",
    "unmasked_frame",
    "bad_frame",
    "deflate_bomb",
    "close_flood",
];

#[derive(Default)]
struct Behaviour {
    attempts: AtomicU64,
    server_closed: AtomicU64,
    /// Attempts the server had not closed when the tool gave up waiting.
    still_open: AtomicU64,
    handshake_failed: AtomicU64,
    close_codes: Hist,
    http_status: Hist,
}

#[derive(Default)]
struct GarbageStats {
    behaviours: [Behaviour; 6],
    deflate_accepted: AtomicU64,
    bomb_bytes: AtomicU64,
}

impl AttackReport for GarbageStats {
    fn json(&self, _: &Run) -> Value {
        let mut m = Map::new();
        for (name, b) in BEHAVIOURS.iter().zip(&self.behaviours) {
            m.insert(
                (*name).into(),
                json!({
                    "attempts": get(&b.attempts),
                    "server_closed": get(&b.server_closed),
                    "still_open": get(&b.still_open),
                    "handshake_failed": get(&b.handshake_failed),
                    "close_codes": b.close_codes.json(),
                    "http_status": b.http_status.json(),
                }),
            );
        }
        m.insert("deflate_accepted".into(), json!(get(&self.deflate_accepted)));
        m.insert("bomb_compressed_bytes".into(), json!(get(&self.bomb_bytes)));
        m.insert("bomb_inflated_bytes".into(), json!(BOMB_INFLATED));
        Value::Object(m)
    }
}

/// One attempt of behaviour `b`; `round` rotates the variants.
async fn garbage_once(
    sh: &Shared,
    st: &GarbageStats,
    b: usize,
    idx: usize,
    round: usize,
    rng: &mut Rng,
    bomb: &[u8],
) {
    let stats = &st.behaviours[b];
    let wait = Duration::from_secs(3);
    let record = |out: Outcome| {
        if out.closed {
            inc(&stats.server_closed);
        } else {
            inc(&stats.still_open);
        }
        if let Some(code) = out.close_code {
            stats.close_codes.add(code);
        }
    };
    if b == 0 {
        // (a) Random bytes instead of a request.
        let Ok(mut s) = connect_from(sh.source(idx), sh.opt.target).await else {
            return inc(&stats.handshake_failed);
        };
        // Odd rounds end the junk with a blank line, so that a server that waits for the
        // end of the head has one to answer (400); even rounds never give it one.
        let n = 1 + rng.below(2048) as usize;
        let mut junk = rng.bytes(n);
        if round % 2 == 1 {
            junk.extend_from_slice(b"\r\n\r\n");
        }
        if s.write_all(&junk).await.is_err() {
            return inc(&stats.server_closed);
        }
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        let deadline = TInstant::now() + wait;
        let mut closed = false;
        loop {
            match tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) => {
                    closed = true;
                    break;
                }
                Ok(Ok(n)) if got.len() < 4096 => got.extend_from_slice(&buf[..n]),
                Ok(Ok(_)) => {}
                Err(_) => break,
            }
        }
        if let Some(status) = parse_status(&got) {
            stats.http_status.add(status);
        }
        return record(Outcome { closed, close_code: None });
    }
    let ext = (b == 4).then_some("permessage-deflate; client_max_window_bits");
    let mut up = match raw_upgrade(sh, idx, ext).await {
        Ok(up) => up,
        Err(e) => {
            if let HsError::Status(s) = e {
                stats.http_status.add(s);
            }
            return inc(&stats.handshake_failed);
        }
    };
    let mask = rng.mask();
    let mut wait_close = wait;
    let bytes: Vec<u8> = match b {
        // (b) Random bytes after the handshake.
        1 => {
            let n = 1 + rng.below(4096) as usize;
            rng.bytes(n)
        }
        // (c) An unmasked frame.
        2 => frame(0x81, b"unmasked", None),
        // (d) Reserved bits, a reserved opcode, a fragmented control frame, invalid UTF-8.
        3 => match round % 4 {
            0 => frame(0x80 | 0x20 | 0x10 | 0x1, b"reserved bits", Some(mask)),
            1 => frame(0x83, b"opcode 3", Some(mask)),
            2 => frame(0x09, b"fragmented ping", Some(mask)),
            _ => frame(0x81, &[b'o', b'k', 0xFF, 0xFE, 0xC0, 0x80], Some(mask)),
        },
        // (e) A deflate bomb if permessage-deflate was accepted, else a frame over the limit.
        4 => {
            let accepted = up.head.lines().any(|l| {
                let l = l.to_ascii_lowercase();
                l.starts_with("sec-websocket-extensions:") && l.contains("permessage-deflate")
            });
            wait_close = Duration::from_secs(5);
            if accepted {
                inc(&st.deflate_accepted);
                frame(0xC2, bomb, Some(mask))
            } else {
                let claim = (sh.opt.size as u64).max(1 << 20) + 1;
                let mut f = frame_header(0x82, claim, Some(mask));
                f.extend_from_slice(&rng.bytes(64 * 1024));
                f
            }
        }
        // (f) A flood of close frames or of pings, back to back.
        _ => {
            let mut f = Vec::new();
            let ping = [b'p'; 125];
            for _ in 0..1000 {
                if round % 2 == 0 {
                    f.extend_from_slice(&close_frame(1000, mask));
                } else {
                    f.extend_from_slice(&frame(0x89, &ping, Some(mask)));
                }
            }
            wait_close = Duration::from_secs(1);
            f
        }
    };
    if timeout(wait, up.stream.write_all(&bytes)).await.map_or(true, |r| r.is_err()) {
        // The server stopped reading or reset: look for what it said anyway.
        let out = await_close(&mut up.stream, &up.rest, Duration::from_millis(500)).await;
        return record(Outcome { closed: true, ..out });
    }
    record(await_close(&mut up.stream, &up.rest, wait_close).await);
}

async fn garbage(sh: &Arc<Shared>, st: &Arc<GarbageStats>, end: TInstant) {
    let bomb: Arc<[u8]> = deflate_bomb(BOMB_INFLATED).into();
    st.bomb_bytes.store(bomb.len() as u64, Relaxed);
    let mut set = JoinSet::new();
    spawn_paced(&mut set, sh.opt.conns, 1000, end, |i| {
        let (sh, st, bomb) = (sh.clone(), st.clone(), bomb.clone());
        async move {
            let b = i % 6;
            let mut rng = Rng::new(sh.seed ^ (i as u64).wrapping_mul(0x9E37_79B9));
            let mut round = 0;
            while TInstant::now() < end {
                inc(&st.behaviours[b].attempts);
                let idx = i + round * sh.opt.conns;
                let _ = timeout(
                    Duration::from_secs(10),
                    garbage_once(&sh, &st, b, idx, round, &mut rng, &bomb),
                )
                .await;
                round += 1;
            }
        }
    })
    .await;
    sleep_until(end).await;
    set.shutdown().await;
}

// --- fd exhaustion

#[derive(Default)]
struct FdStats {
    held: AtomicU64,
    failures: AtomicU64,
    /// Handshakes still waiting for an answer when opening stopped (abandoned).
    stalled: AtomicU64,
    /// Failures to connect at all (refused, or this process out of descriptors or ports).
    connect_failed: AtomicU64,
    statuses: Hist,
    fill_s: Mutex<Option<f64>>,
    stopped_because: Mutex<&'static str>,
    released: AtomicU64,
    served_after_release: Mutex<Option<bool>>,
    served_after_release_s: Mutex<Option<f64>>,
}

impl AttackReport for FdStats {
    fn json(&self, _: &Run) -> Value {
        json!({
            "held": get(&self.held),
            "failures": get(&self.failures),
            "stalled": get(&self.stalled),
            "connect_failed": get(&self.connect_failed),
            "statuses": self.statuses.json(),
            "fill_s": lock(&self.fill_s).map(|s| round(s, 2)),
            "stopped_because": *lock(&self.stopped_because),
            "released": get(&self.released),
            "served_after_release": *lock(&self.served_after_release),
            "served_after_release_s": lock(&self.served_after_release_s).map(|s| round(s, 3)),
        })
    }
}

async fn fd_exhaustion(sh: &Arc<Shared>, st: &Arc<FdStats>, end: TInstant) {
    let limit = if sh.opt.conns == 0 { FD_EXHAUSTION_CAP } else { sh.opt.conns };
    let held: Arc<Mutex<Vec<TcpStream>>> = Arc::new(Mutex::new(Vec::new()));
    let last_ok = Arc::new(Mutex::new(Instant::now()));
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let mut set = JoinSet::new();
    for _ in 0..16 {
        let (sh, st, held, last_ok, stop) =
            (sh.clone(), st.clone(), held.clone(), last_ok.clone(), stop.clone());
        set.spawn(async move {
            while !stop.load(Relaxed) {
                let idx = sh.next_source.fetch_add(1, Relaxed);
                // `stalled` counts the attempts in flight: those left when opening stops.
                inc(&st.stalled);
                let result = timeout(Duration::from_secs(3), raw_upgrade(&sh, idx, None)).await;
                st.stalled.fetch_sub(1, Relaxed);
                match result {
                    Ok(Ok(up)) => {
                        let mut h = lock(&held);
                        if h.len() >= limit {
                            break;
                        }
                        h.push(up.stream);
                        st.held.store(h.len() as u64, Relaxed);
                        *lock(&last_ok) = Instant::now();
                    }
                    Ok(Err(e)) => {
                        match e {
                            HsError::Status(s) => st.statuses.add(s),
                            HsError::Connect => inc(&st.connect_failed),
                            HsError::Io => {}
                        }
                        inc(&st.failures);
                        sleep(Duration::from_millis(10)).await;
                    }
                    Err(_) => inc(&st.failures),
                }
            }
        });
    }
    let why = loop {
        sleep(Duration::from_millis(100)).await;
        if lock(&held).len() >= limit {
            break "limit";
        }
        if lock(&last_ok).elapsed() >= Duration::from_secs(2) {
            break "no handshake for 2 s";
        }
        if TInstant::now() >= end {
            break "duration";
        }
    };
    stop.store(true, Relaxed);
    set.shutdown().await;
    *lock(&st.fill_s) = Some(start.elapsed().as_secs_f64());
    *lock(&st.stopped_because) = why;
    let n = lock(&held).len();
    st.held.store(n as u64, Relaxed);
    eprintln!(
        "siege: fd-exhaustion: holding {n} connections ({why}); failures {}",
        get(&st.failures)
    );
    sleep_until(end).await;
    // Release half, and see whether the server serves a newcomer within 5 s.
    let half: Vec<TcpStream> = {
        let mut h = lock(&held);
        let k = h.len() / 2;
        h.drain(..k).collect()
    };
    st.released.store(half.len() as u64, Relaxed);
    drop(half);
    let released = Instant::now();
    let mut served = false;
    while released.elapsed() < Duration::from_secs(5) {
        if probe(sh, "released").await.is_ok() {
            served = true;
            *lock(&st.served_after_release_s) = Some(released.elapsed().as_secs_f64());
            break;
        }
        sleep(Duration::from_millis(50)).await;
    }
    *lock(&st.served_after_release) = Some(served);
    lock(&held).clear();
}

// --- none

struct NoStats;

impl AttackReport for NoStats {
    fn json(&self, _: &Run) -> Value {
        json!({})
    }
}

async fn run_attack(sh: Arc<Shared>, end: TInstant) {
    macro_rules! with {
        ($stats:expr, $f:ident) => {{
            let st = Arc::new($stats);
            sh.set_report(st.clone());
            $f(&sh, &st, end).await;
        }};
    }
    match sh.opt.kind {
        Kind::Slowloris => with!(SlowStats::default(), slowloris),
        Kind::HandshakeFlood => {
            with!(FloodStats { workers: sh.opt.workers, ..FloodStats::default() }, handshake_flood)
        }
        Kind::Silent => {
            with!(
                SilentStats {
                    hold_until_reaped: sh.opt.hold_until_reaped,
                    ..SilentStats::default()
                },
                silent
            )
        }
        Kind::NonReaders => with!(NonReaderStats::default(), non_readers),
        Kind::MaxMessages => with!(MaxStats::default(), max_messages),
        Kind::Garbage => with!(GarbageStats::default(), garbage),
        Kind::FdExhaustion => with!(FdStats::default(), fd_exhaustion),
        Kind::Baseline => {
            sh.set_report(Arc::new(NoStats));
            sleep_until(end).await;
        }
    }
    // Every attack connection is closed by now (the silent attack's held ones included).
    sh.mark_attack_end();
}

// ---------------------------------------------------------------------------------------
// The run

async fn run(sh: Arc<Shared>, honest: Honesty) {
    let Honesty { stop: stop_honest, thread: honest } = honest;
    let o = &sh.opt;
    eprintln!(
        "siege: {} against {} (pid {}): conns {}, warmup {:?}, duration {:?}, recovery timeout {:?}, {} honest clients",
        o.kind.name(),
        o.target,
        o.pid,
        o.conns,
        o.warmup,
        o.duration,
        o.recovery,
        o.honest
    );
    let progress = tokio::spawn({
        let sh = sh.clone();
        async move {
            loop {
                sleep(Duration::from_secs(1)).await;
                let (rss, fds) = lock(&sh.samples).last().map_or((0, 0), |s| (s.rss, s.fds));
                let h = &sh.honest;
                let report = lock(&sh.report).clone();
                let attack = report.map(|r| r.json(&lock(&sh.run)));
                eprintln!(
                    "siege: t={:.0}s phase={} rss={rss}KiB fds={fds} honest ok={} err={} attack={}",
                    sh.elapsed(),
                    ["warmup", "attack", "recovery"][sh.phase.load(Relaxed).min(2) as usize],
                    get(&h.received.total),
                    get(&h.errors.total),
                    attack.unwrap_or(Value::Null)
                );
            }
        }
    });
    sleep(o.warmup).await;

    // Baseline, then the attack.
    let baseline = proc_sample(o.pid).or_else(|| lock(&sh.samples).last().map(|s| (s.rss, s.fds)));
    {
        let mut run = lock(&sh.run);
        run.baseline = baseline;
        run.attack_start = Some(sh.elapsed());
        run.cpu_start = proc_cpu(o.pid);
        run.cpu_stat_start = proc_cpu_stat(o.pid);
    }
    sh.phase.store(1, Relaxed);
    eprintln!(
        "siege: baseline rss={:?}KiB fds={:?}; attack starts",
        baseline.map(|b| b.0),
        baseline.map(|b| b.1)
    );
    let end = TInstant::now() + o.duration;
    let mut attack = tokio::spawn(run_attack(sh.clone(), end));
    let mut attack_done = false;
    tokio::select! {
        _ = sh.attack_ended.notified() => {}
        _ = &mut attack => attack_done = true,
    }
    sh.mark_attack_end();
    let attack_end = lock(&sh.run).attack_end.unwrap_or_else(|| sh.elapsed());
    eprintln!("siege: attack over at t={attack_end:.1}s; watching recovery");

    // Recovery: fds back to baseline + 8 and RSS to twice the baseline.
    let latest = TInstant::from_std(
        sh.t0 + sh.opt.warmup + sh.opt.duration + sh.opt.recovery + Duration::from_secs(5),
    );
    let rec_end = (TInstant::now() + o.recovery).min(latest);
    if let Some((base_rss, base_fds)) = baseline {
        let mut seen = 0;
        loop {
            {
                let samples = lock(&sh.samples);
                let mut run = lock(&sh.run);
                for s in samples.iter().skip(seen).filter(|s| s.t >= attack_end) {
                    if run.fds_recovered.is_none() && s.fds <= base_fds + 8 {
                        run.fds_recovered = Some(s.t - attack_end);
                    }
                    if run.rss_recovered.is_none() && s.rss <= 2 * base_rss {
                        run.rss_recovered = Some(s.t - attack_end);
                    }
                }
                seen = samples.len();
                if run.fds_recovered.is_some() && run.rss_recovered.is_some() {
                    break;
                }
            }
            if TInstant::now() >= rec_end || !proc_alive(o.pid) {
                break;
            }
            sleep(Duration::from_millis(100)).await;
        }
    }
    // The silent attack may still hold connections (--hold-until-reaped): until recovery-timeout.
    if !attack_done && tokio::time::timeout_at(rec_end, &mut attack).await.is_err() {
        attack.abort();
        let _ = attack.await;
    }

    // Survival: a fresh client gets its echo.
    let result = probe(&sh, "probe").await;
    eprintln!("siege: probe: {result:?}");
    lock(&sh.run).probe = Some(result);
    progress.abort();
    let _ = stop_honest.send(());
    let _ = tokio::task::spawn_blocking(move || honest.join()).await;
}

fn latency_stats(
    lat: &[(f32, f32)],
    from: f64,
    to: f64,
) -> (Option<f64>, Option<f64>, Option<f64>) {
    let mut v: Vec<f64> = lat
        .iter()
        .filter(|(t, _)| f64::from(*t) >= from && f64::from(*t) <= to)
        .map(|(_, ms)| f64::from(*ms))
        .collect();
    v.sort_by(f64::total_cmp);
    let r = |x: Option<f64>| x.map(|x| round(x, 2));
    (r(percentile(&v, 0.5)), r(percentile(&v, 0.99)), r(v.last().copied()))
}

fn report(sh: &Shared) -> Value {
    let o = &sh.opt;
    // Lock order everywhere: report, samples, run.
    let attack_report = lock(&sh.report).clone();
    let samples = lock(&sh.samples);
    let run = lock(&sh.run);
    let mut m = Map::new();
    let mut put = |k: &str, v: Value| {
        m.insert(k.into(), v);
    };
    put("name", json!(o.kind.name()));
    put("target", json!(o.target.to_string()));
    put("pid", json!(o.pid));
    put("duration_s", json!(o.duration.as_secs_f64()));
    put("warmup_s", json!(o.warmup.as_secs_f64()));
    put("recovery_timeout_s", json!(o.recovery.as_secs_f64()));
    put("conns", json!(o.conns));
    put("size", json!(o.size));
    put("honest", json!(o.honest));
    put("chat", json!(o.chat));
    put("baseline_rss_kib", json!(run.baseline.map(|b| b.0)));
    put("baseline_fds", json!(run.baseline.map(|b| b.1)));
    let during: Vec<&Sample> = match run.attack_start {
        Some(start) => samples.iter().filter(|s| s.t >= start).collect(),
        None => Vec::new(),
    };
    put("peak_rss_kib", json!(during.iter().map(|s| s.rss).max()));
    put("peak_fds", json!(during.iter().map(|s| s.fds).max()));
    put("end_rss_kib", json!(samples.last().map(|s| s.rss)));
    put("end_fds", json!(samples.last().map(|s| s.fds)));
    let delta = |start: Option<f64>, end: Option<f64>, now: fn(u32) -> Option<f64>| {
        let end = end.or_else(|| start.and_then(|_| now(o.pid)));
        Some(round(end? - start?, 3))
    };
    let last_cpu = samples.last().and_then(|s| s.cpu);
    let cpu = delta(run.cpu_start, run.cpu_end.or(last_cpu), proc_cpu);
    put("server_cpu_stat_s", json!(delta(run.cpu_stat_start, run.cpu_stat_end, proc_cpu_stat)));
    put("server_cpu_s", json!(cpu));
    let h = &sh.honest;
    put("honest_sent", json!(get(&h.sent.window)));
    put("honest_received", json!(get(&h.received.window)));
    put("honest_errors", json!(get(&h.errors.window)));
    put("honest_reconnects", json!(get(&h.reconnects.window)));
    let lat = lock(&h.latencies);
    let (p50, p99, max) = match run.attack_start {
        Some(start) => latency_stats(&lat, start, run.attack_end.unwrap_or(f64::MAX)),
        None => (None, None, None),
    };
    put("p50_ms", json!(p50));
    put("p99_ms", json!(p99));
    put("max_ms", json!(max));
    let (tp50, tp99, tmax) = latency_stats(&lat, 0.0, f64::MAX);
    put("honest_total_sent", json!(get(&h.sent.total)));
    put("honest_total_received", json!(get(&h.received.total)));
    put("honest_total_errors", json!(get(&h.errors.total)));
    put("honest_total_reconnects", json!(get(&h.reconnects.total)));
    put("honest_total_p50_ms", json!(tp50));
    put("honest_total_p99_ms", json!(tp99));
    put("honest_total_max_ms", json!(tmax));
    put("honest_last_error", json!(lock(&h.last_error).clone()));
    let alive = proc_alive(o.pid);
    let probe_ok = run.probe.as_ref().map(|p| p.is_ok());
    put("server_alive", json!(alive));
    put("probe_ok", json!(probe_ok));
    put(
        "probe_ms",
        json!(run.probe.as_ref().and_then(|p| p.as_ref().ok()).map(|&ms| round(ms, 2))),
    );
    if let Some(Err(e)) = &run.probe {
        put("probe_error", json!(e));
    }
    put("survived", json!(alive && probe_ok == Some(true)));
    put("fds_recovered_s", json!(run.fds_recovered.map(|s| round(s, 2))));
    put("rss_recovered_s", json!(run.rss_recovered.map(|s| round(s, 2))));
    put("attack_start_s", json!(run.attack_start.map(|s| round(s, 2))));
    put("attack_end_s", json!(run.attack_end.map(|s| round(s, 2))));
    put("deadline_hit", json!(run.deadline_hit));
    let attack = attack_report.map_or(json!({}), |r| r.json(&run));
    put("attack", attack);
    Value::Object(m)
}

/// Prints the JSON once (from the main thread or the watchdog) and exits.
fn finish(sh: &Shared) {
    if sh.printed.swap(true, Relaxed) {
        return;
    }
    let json = report(sh);
    println!("{json}");
    use std::io::Write;
    let _ = std::io::stdout().flush();
    std::process::exit(0);
}

/// The honest clients' thread, and how to stop it.
struct Honesty {
    stop: tokio::sync::oneshot::Sender<()>,
    thread: std::thread::JoinHandle<()>,
}

/// The niceness of the attack's threads (the server and the honest clients keep theirs).
const ATTACK_NICENESS: i32 = 10;

/// Lowers the calling thread's scheduling priority to [`ATTACK_NICENESS`] (Linux: a
/// thread's niceness is its own). Best effort: where it fails the attack runs as it is.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    {
        extern "C" {
            fn setpriority(which: i32, who: u32, prio: i32) -> i32;
        }
        /// `PRIO_PROCESS` in `<sys/resource.h>`; with `who` 0, the calling thread on Linux.
        const PRIO_PROCESS: i32 = 0;
        // SAFETY: `setpriority` takes no pointer; it changes this thread's niceness only.
        let _ = unsafe { setpriority(PRIO_PROCESS, 0, ATTACK_NICENESS) };
    }
}

fn main() {
    let opt = match parse_options(std::env::args().skip(1)) {
        Ok(o) => o,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("siege: {e}");
            }
            eprintln!("{USAGE}");
            std::process::exit(2);
        }
    };
    if !proc_alive(opt.pid) {
        eprintln!("siege: no running process {}", opt.pid);
        std::process::exit(2);
    }
    let needed = match opt.kind {
        Kind::FdExhaustion if opt.conns == 0 => FD_EXHAUSTION_CAP,
        _ => opt.conns,
    } as u64
        + 1000;
    match soft_fd_limit() {
        Some(limit) if limit < needed => eprintln!(
            "siege: warning: the open files limit is {limit}, below the {needed} this attack may need; run under `ulimit -n {needed}`"
        ),
        _ => {}
    }
    let seed = SystemTime::now().duration_since(UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64)
        ^ u64::from(std::process::id());
    let sh = Arc::new(Shared {
        opt,
        t0: Instant::now(),
        phase: AtomicU8::new(0),
        honest: Honest::default(),
        samples: Mutex::new(Vec::new()),
        run: Mutex::new(Run::default()),
        report: Mutex::new(None),
        attack_ended: Notify::new(),
        printed: AtomicBool::new(false),
        seed,
        next_source: AtomicUsize::new(0),
    });

    // The sampler: RSS and fds every 100 ms, on its own thread (counting 30,000 fds takes a while).
    {
        let sh = sh.clone();
        std::thread::spawn(move || loop {
            let t = sh.elapsed();
            if let Some((rss, fds)) = proc_sample(sh.opt.pid) {
                let cpu = proc_cpu(sh.opt.pid);
                lock(&sh.samples).push(Sample { t, rss, fds, cpu });
            }
            std::thread::sleep(Duration::from_millis(100));
        });
    }
    // The watchdog: the hard deadline.
    {
        let sh = sh.clone();
        std::thread::spawn(move || {
            std::thread::sleep(sh.deadline());
            eprintln!("siege: hard deadline reached; reporting what was measured");
            lock(&sh.run).deadline_hit = true;
            finish(&sh);
        });
    }
    // The honest clients run on a thread and runtime of their own, started here, before the
    // attack's threads (which run at a lower priority, and would pass it on): what they
    // measure is the server, not how long the attack keeps this tool busy.
    let honest = {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let sh = sh.clone();
        let thread = std::thread::spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(rt) => rt,
                Err(e) => return eprintln!("siege: honest clients' runtime: {e}"),
            };
            rt.block_on(async move {
                let mut set = JoinSet::new();
                for k in 0..sh.opt.honest {
                    set.spawn(honest_client(sh.clone(), k));
                }
                let _ = stopped.await;
                set.shutdown().await;
            });
        });
        Honesty { stop, thread }
    };
    // The attack's threads run at a lower priority than the server and the honest clients:
    // the attacker's CPU is not the server's on a real network, and on a machine of two cores
    // an attack tool at the same priority takes half of it from the server it measures.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .on_thread_start(lower_priority)
        .enable_all()
        .build();
    match runtime {
        Ok(rt) => rt.block_on(run(sh.clone(), honest)),
        Err(e) => eprintln!("siege: runtime: {e}"),
    }
    finish(&sh);
}
