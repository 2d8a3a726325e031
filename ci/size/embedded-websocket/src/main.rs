//! A minimal WebSocket client on `embedded-websocket` 0.9.5, `#![no_std]`, no allocator.
//!
//! Connects to 127.0.0.1:PORT (PORT from argv[1], default 9001), does the opening handshake
//! for path "/" and host "127.0.0.1", sends the text message "hello from firmware", reads
//! frames until the echo arrives and checks it, starts the close handshake with 1000 and reads
//! until the server's close frame arrives, closes the socket and returns 0. Any failure prints
//! a short message to fd 2 and returns nonzero (2 for a bad port argument, 1 otherwise).
//!
//! Buffers: one 4096-byte read buffer (raw bytes from the socket) and one 4096-byte write
//! buffer, both on the stack. The write buffer doubles as the destination of decoded payloads
//! (the client never writes while a message it needs is still in there, except to answer a
//! ping or a close, for which the control payload is moved to the buffer's last 125 bytes).

#![no_std]
#![no_main]

use embedded_websocket::{
    Error as WsError, WebSocketClient, WebSocketCloseStatusCode, WebSocketOptions,
    WebSocketReceiveMessageType, WebSocketSendMessageType,
};
use rand_core::RngCore;

const MESSAGE: &[u8] = b"hello from firmware";
const DEFAULT_PORT: u16 = 9001;
const BUF: usize = 4096;
/// A control frame's payload is at most 125 bytes; a client frame adds 2 header bytes and a
/// 4-byte mask key.
const CONTROL_MAX: usize = 125;
const CONTROL_FRAME_MAX: usize = CONTROL_MAX + 6;

const AF_INET: i32 = 2;
const SOCK_STREAM: i32 = 1;

#[repr(C)]
struct SockAddrIn {
    sin_family: u16,
    /// Network byte order.
    sin_port: u16,
    /// Network byte order.
    sin_addr: u32,
    sin_zero: [u8; 8],
}

#[link(name = "c")]
extern "C" {
    fn socket(domain: i32, ty: i32, protocol: i32) -> i32;
    fn connect(fd: i32, addr: *const SockAddrIn, len: u32) -> i32;
    fn read(fd: i32, buf: *mut u8, count: usize) -> isize;
    fn write(fd: i32, buf: *const u8, count: usize) -> isize;
    fn close(fd: i32) -> i32;
    fn abort() -> !;
}

/// `core` is prebuilt for unwinding and names this symbol; with `panic = "abort"` nothing
/// unwinds, so it is never called.
#[no_mangle]
extern "C" fn rust_eh_personality() {}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    // SAFETY: abort takes no arguments and never returns.
    unsafe { abort() }
}

/// The masking-key RNG: xorshift32. Masking keys need not be cryptographically strong (the key
/// travels with the frame); they only have to be unpredictable enough to defeat proxy caches.
struct XorShift32(u32);

impl RngCore for XorShift32 {
    fn next_u32(&mut self) -> u32 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        self.0 = x;
        x
    }

    fn next_u64(&mut self) -> u64 {
        rand_core::impls::next_u64_via_u32(self)
    }

    fn fill_bytes(&mut self, dest: &mut [u8]) {
        rand_core::impls::fill_bytes_via_next(self, dest)
    }

    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

fn print(fd: i32, text: &[u8]) {
    // SAFETY: `text` is a valid buffer of `text.len()` bytes for the duration of the call.
    unsafe { write(fd, text.as_ptr(), text.len()) };
}

fn send_all(fd: i32, mut bytes: &[u8]) -> Result<(), &'static str> {
    while !bytes.is_empty() {
        // SAFETY: `bytes` is a valid buffer of `bytes.len()` bytes.
        let n = unsafe { write(fd, bytes.as_ptr(), bytes.len()) };
        if n <= 0 {
            return Err("write failed");
        }
        bytes = &bytes[n as usize..];
    }
    Ok(())
}

/// Reads into `buf`; 0 means the peer closed the connection.
fn recv(fd: i32, buf: &mut [u8]) -> Result<usize, &'static str> {
    // SAFETY: `buf` is a valid, writable buffer of `buf.len()` bytes.
    let n = unsafe { read(fd, buf.as_mut_ptr(), buf.len()) };
    if n < 0 {
        return Err("read failed");
    }
    Ok(n as usize)
}

/// The port from argv[1] (decimal, 1..=65535), or the default without one.
///
/// # Safety
/// `argv` must hold `argc` valid NUL-terminated strings, as the C runtime passes them.
unsafe fn port_from_args(argc: i32, argv: *const *const u8) -> Option<u16> {
    if argc < 2 {
        return Some(DEFAULT_PORT);
    }
    let mut p = *argv.add(1);
    let mut port: u32 = 0;
    if *p == 0 {
        return None;
    }
    while *p != 0 {
        let digit = (*p).wrapping_sub(b'0');
        if digit > 9 {
            return None;
        }
        port = port * 10 + digit as u32;
        if port > 65535 {
            return None;
        }
        p = p.add(1);
    }
    if port == 0 {
        return None;
    }
    Some(port as u16)
}

fn run(fd: i32, port: u16, rng: XorShift32) -> Result<(), &'static str> {
    let addr = SockAddrIn {
        sin_family: AF_INET as u16,
        sin_port: port.to_be(),
        sin_addr: u32::from_ne_bytes([127, 0, 0, 1]),
        sin_zero: [0; 8],
    };
    // SAFETY: `addr` is a valid sockaddr_in of the length passed.
    if unsafe { connect(fd, &addr, core::mem::size_of::<SockAddrIn>() as u32) } != 0 {
        return Err("connect failed");
    }

    let mut rbuf = [0u8; BUF];
    let mut wbuf = [0u8; BUF];
    let mut ws = WebSocketClient::new_client(rng);

    // Opening handshake. embedded-websocket always writes an Origin header; empty here.
    let options = WebSocketOptions {
        path: "/",
        host: "127.0.0.1",
        origin: "",
        sub_protocols: None,
        additional_headers: None,
    };
    let (n, key) = ws.client_connect(&options, &mut wbuf).map_err(|_| "handshake request")?;
    send_all(fd, &wbuf[..n])?;

    // `rbuf[start..filled]` holds received bytes not yet decoded.
    let mut filled = 0;
    let mut start;
    loop {
        if filled == BUF {
            return Err("handshake response too large");
        }
        let n = recv(fd, &mut rbuf[filled..])?;
        if n == 0 {
            return Err("closed during handshake");
        }
        filled += n;
        match ws.client_accept(&key, &rbuf[..filled]) {
            Ok((len, _)) => {
                start = len;
                break;
            }
            Err(WsError::HttpHeaderIncomplete) => {}
            Err(_) => return Err("handshake rejected"),
        }
    }

    let n = ws
        .write(WebSocketSendMessageType::Text, true, MESSAGE, &mut wbuf)
        .map_err(|_| "encode text")?;
    send_all(fd, &wbuf[..n])?;

    // Decoded payloads go to `wbuf`: the current text message at `wbuf[..text]`, a control
    // frame's payload right after it, `control` bytes so far.
    let tail = BUF - CONTROL_MAX;
    let mut text = 0;
    let mut control = 0;
    let mut echoed = false;
    loop {
        while start < filled {
            if text + control + CONTROL_FRAME_MAX > tail {
                return Err("message too large");
            }
            let result = match ws.read(&rbuf[start..filled], &mut wbuf[text + control..tail]) {
                Ok(result) => result,
                // Only part of a frame header is buffered: read more.
                Err(WsError::ReadFrameIncomplete) => break,
                Err(_) => return Err("bad frame"),
            };
            // With input and output room left, a call that consumes nothing never will: 0.9.5
            // stalls so after a non-final fragment that arrived in pieces. Fail, don't spin.
            if result.len_from == 0 {
                return Err("decoder stalled");
            }
            start += result.len_from;
            match result.message_type {
                WebSocketReceiveMessageType::Text => {
                    text += result.len_to;
                    if !result.end_of_message {
                        continue;
                    }
                    if echoed || wbuf[..text] != *MESSAGE {
                        return Err("echo mismatch");
                    }
                    echoed = true;
                    text = 0;
                    let n = ws
                        .close(WebSocketCloseStatusCode::NormalClosure, None, &mut wbuf)
                        .map_err(|_| "encode close")?;
                    send_all(fd, &wbuf[..n])?;
                }
                WebSocketReceiveMessageType::Binary => return Err("unexpected binary message"),
                kind => {
                    control += result.len_to;
                    if !result.end_of_message {
                        continue;
                    }
                    let len = control;
                    control = 0;
                    let reply = match kind {
                        WebSocketReceiveMessageType::Ping => WebSocketSendMessageType::Pong,
                        WebSocketReceiveMessageType::CloseMustReply => {
                            WebSocketSendMessageType::CloseReply
                        }
                        WebSocketReceiveMessageType::CloseCompleted => return Ok(()),
                        _ => continue, // an unsolicited pong
                    };
                    // Answer with the same payload: move it to the tail, write the frame after
                    // any partial text message.
                    wbuf.copy_within(text..text + len, tail);
                    let (head, payload) = wbuf.split_at_mut(tail);
                    let out = &mut head[text..];
                    let n =
                        ws.write(reply, true, &payload[..len], out).map_err(|_| "encode reply")?;
                    send_all(fd, &out[..n])?;
                    if reply == WebSocketSendMessageType::CloseReply {
                        return Err("server closed first");
                    }
                }
            }
        }
        // Keep the undecoded bytes (a partial frame header) at the front and read more.
        rbuf.copy_within(start..filled, 0);
        filled -= start;
        start = 0;
        let n = recv(fd, &mut rbuf[filled..])?;
        if n == 0 {
            return Err("connection closed before the close handshake");
        }
        filled += n;
    }
}

#[cfg(feature = "print-state-size")]
fn print_state_size() {
    let mut n = core::mem::size_of::<WebSocketClient<XorShift32>>();
    let mut digits = [0u8; 21];
    let mut at = digits.len() - 1;
    digits[at] = b'\n';
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    print(1, b"size_of::<WebSocketClient<XorShift32>>() = ");
    print(1, &digits[at..]);
}

#[no_mangle]
extern "C" fn main(argc: i32, argv: *const *const u8) -> i32 {
    #[cfg(feature = "print-state-size")]
    print_state_size();

    // SAFETY: the C runtime passes `argc` valid strings in `argv`.
    let Some(port) = (unsafe { port_from_args(argc, argv) }) else {
        print(2, b"embedded-websocket client: bad port\n");
        return 2;
    };
    // Seed from a constant and the stack address; xorshift must not start at 0.
    let seed = (0x9E37_79B9u32 ^ (&argc as *const i32 as usize as u32)) | 1;

    // SAFETY: plain socket(2) call.
    let fd = unsafe { socket(AF_INET, SOCK_STREAM, 0) };
    if fd < 0 {
        print(2, b"embedded-websocket client: socket failed\n");
        return 1;
    }
    let result = run(fd, port, XorShift32(seed));
    // SAFETY: `fd` is the socket opened above, closed once.
    let closed = unsafe { close(fd) } == 0;
    match result {
        Ok(()) if closed => 0,
        Ok(()) => {
            print(2, b"embedded-websocket client: close failed\n");
            1
        }
        Err(message) => {
            print(2, b"embedded-websocket client: ");
            print(2, message.as_bytes());
            print(2, b"\n");
            1
        }
    }
}
