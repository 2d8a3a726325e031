//! A minimal WebSocket client on wsmachine's embedded adapter, `#![no_std]`, no allocator:
//! the same job as ../embedded-websocket (connect to 127.0.0.1:PORT, PORT from argv[1] or
//! 9001, handshake for "/" on "127.0.0.1", send "hello from firmware", check the echo, close
//! with 1000, wait for the server's close, exit 0; nonzero on any failure). Two 4096-byte
//! buffers on the stack. The transport is a blocking socket behind `embedded_io_async`, run by
//! a loop that polls with a no-op waker; the clock is `clock_gettime(CLOCK_MONOTONIC)`.

#![no_std]
#![no_main]

use core::future::Future;
use core::pin::pin;
use core::task::{Context, Poll, Waker};

use wsmachine::embedded::{self, Buffers, Clock};
use wsmachine::{ClientRequest, CloseCode, Config, Event, Instant, Message};

const MESSAGE: &str = "hello from firmware";

#[repr(C)]
struct SockAddrIn {
    sin_family: u16,
    sin_port: u16,
    sin_addr: u32,
    sin_zero: [u8; 8],
}

#[repr(C)]
struct Timespec {
    tv_sec: i64,
    tv_nsec: i64,
}

#[link(name = "c")]
extern "C" {
    fn socket(domain: i32, ty: i32, protocol: i32) -> i32;
    fn connect(fd: i32, addr: *const SockAddrIn, len: u32) -> i32;
    fn read(fd: i32, buf: *mut u8, count: usize) -> isize;
    fn write(fd: i32, buf: *const u8, count: usize) -> isize;
    fn close(fd: i32) -> i32;
    fn clock_gettime(clock: i32, ts: *mut Timespec) -> i32;
    fn abort() -> !;
}

#[no_mangle]
extern "C" fn rust_eh_personality() {}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    // SAFETY: abort takes no arguments and never returns.
    unsafe { abort() }
}

/// A blocking socket.
struct Socket(i32);

#[derive(Debug)]
struct SocketError;

impl core::fmt::Display for SocketError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("socket error")
    }
}

impl core::error::Error for SocketError {}

impl embedded_io_async::Error for SocketError {
    fn kind(&self) -> embedded_io_async::ErrorKind {
        embedded_io_async::ErrorKind::Other
    }
}

impl embedded_io_async::ErrorType for Socket {
    type Error = SocketError;
}

impl embedded_io_async::Read for Socket {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, SocketError> {
        // SAFETY: `buf` is valid for `buf.len()` bytes.
        let n = unsafe { read(self.0, buf.as_mut_ptr(), buf.len()) };
        usize::try_from(n).map_err(|_| SocketError)
    }
}

impl embedded_io_async::Write for Socket {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, SocketError> {
        // SAFETY: `buf` is valid for `buf.len()` bytes.
        let n = unsafe { write(self.0, buf.as_ptr(), buf.len()) };
        usize::try_from(n).map_err(|_| SocketError)
    }

    async fn flush(&mut self) -> Result<(), SocketError> {
        Ok(())
    }
}

/// The monotonic clock. A blocking read waits by itself, so sleeping returns at once.
struct Monotonic;

impl Clock for Monotonic {
    fn now(&self) -> Instant {
        let mut ts = Timespec { tv_sec: 0, tv_nsec: 0 };
        // SAFETY: `ts` is a valid timespec; 1 is CLOCK_MONOTONIC.
        unsafe { clock_gettime(1, &mut ts) };
        Instant::from_micros(ts.tv_sec as u64 * 1_000_000 + ts.tv_nsec as u64 / 1000)
    }

    fn sleep_until(&self, _deadline: Instant) -> impl Future<Output = ()> {
        core::future::pending()
    }
}

async fn run(fd: i32) -> Result<(), ()> {
    let (mut read_buf, mut write_buf) = ([0u8; 4096], [0u8; 4096]);
    let request = ClientRequest::new("127.0.0.1", "/");
    let buffers = Buffers::new(&mut read_buf, &mut write_buf);
    let seed = [0x5au8; 32];
    let mut ws = embedded::connect(Socket(fd), Monotonic, Config::new(), &request, seed, buffers)
        .await
        .map_err(|_| ())?;
    ws.send_text(MESSAGE).await.map_err(|_| ())?;
    let echoed = ws
        .recv_event(|event| matches!(event, Event::Message(Message::Text(t)) if t == MESSAGE))
        .await
        .map_err(|_| ())?;
    if echoed != Some(true) {
        return Err(());
    }
    ws.close(CloseCode::NORMAL, "").await.map_err(|_| ())?;
    while ws.recv_event(|_| ()).await.map_err(|_| ())?.is_some() {}
    Ok(())
}

/// The port in argv[1], or 9001.
///
/// # Safety
/// `argv` holds `argc` NUL-terminated strings.
unsafe fn port(argc: i32, argv: *const *const u8) -> u16 {
    if argc < 2 {
        return 9001;
    }
    let (mut p, mut port) = (*argv.add(1), 0u16);
    while *p != 0 {
        port = port.wrapping_mul(10).wrapping_add(u16::from((*p).wrapping_sub(b'0')));
        p = p.add(1);
    }
    port
}

#[no_mangle]
extern "C" fn main(argc: i32, argv: *const *const u8) -> i32 {
    // SAFETY: the C runtime passes `argc` strings in `argv`.
    let port = unsafe { port(argc, argv) };
    // SAFETY: plain socket calls on a sockaddr_in of the size passed.
    let fd = unsafe { socket(2, 1, 0) };
    let addr = SockAddrIn {
        sin_family: 2,
        sin_port: port.to_be(),
        sin_addr: u32::from_ne_bytes([127, 0, 0, 1]),
        sin_zero: [0; 8],
    };
    if fd < 0 || unsafe { connect(fd, &addr, core::mem::size_of::<SockAddrIn>() as u32) } != 0 {
        return 1;
    }
    let mut future = pin!(run(fd));
    let mut cx = Context::from_waker(Waker::noop());
    let result = loop {
        if let Poll::Ready(result) = future.as_mut().poll(&mut cx) {
            break result;
        }
    };
    // SAFETY: `fd` is the socket opened above.
    unsafe { close(fd) };
    i32::from(result.is_err())
}
