//! The opening handshake, run in the caller's task.

use core::future::{poll_fn, Future};
use core::task::{Context, Poll};
use std::io;

use ::tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use ::tokio::time::{timeout_at, Instant as TokioInstant};

use super::pump::Io;
use crate::handshake::Request;
use crate::io::clock::Clock;
use crate::io::driver::{HeapDriver as Driver, Step, Want};
use crate::io::error::AdapterError as Error;
use crate::io::owned::{Decision, HttpResponse};

/// Runs the opening handshake in the caller's task: the driver's handshake steps, with the
/// I/O each asks for.
pub(super) async fn handshake<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    mut driver: Driver,
    clock: Clock<TokioInstant>,
    decide: &mut (dyn FnMut(&Request<'_>) -> Decision + Send),
) -> Result<(Io<S>, Option<HttpResponse>), Error> {
    let response = loop {
        let now = clock.instant(TokioInstant::now());
        match driver.handshake_step(now, decide) {
            Step::Ready(result) => break result?,
            Step::Io(Want::Write) => {
                let written = match stream.write(driver.output()).await {
                    Ok(0) => Err(io::ErrorKind::WriteZero.into()),
                    Ok(n) => {
                        driver.wrote(n);
                        if !driver.has_output() {
                            stream.flush().await.map(|()| n)
                        } else {
                            Ok(n)
                        }
                    }
                    Err(e) => Err(e),
                };
                if let Err(e) = written {
                    driver.on_transport_error();
                    return Err(e.into());
                }
            }
            Step::Io(Want::Read { deadline }) => {
                let read =
                    poll_fn(|cx| driver.read_with(|buf| poll_read_vec(&mut stream, cx, buf)));
                let read = match deadline {
                    // A read that times out reports nothing: the next step runs the deadline.
                    Some(at) => timeout_at(clock.at(at), read).await.unwrap_or(Ok(1)),
                    None => read.await,
                };
                match read {
                    Ok(0) => driver.read_eof(),
                    Ok(_) => {}
                    Err(e) => {
                        driver.on_transport_error();
                        return Err(e.into());
                    }
                }
            }
            Step::Io(Want::Shutdown) => {
                let _gone = stream.shutdown().await;
                driver.shut_down();
            }
        }
    };
    let io = Io { stream, driver, clock, sleep: None, now: None };
    Ok((io, response))
}

/// Reads from `stream` into `buf`'s spare capacity, which is not zeroed first (tokio's
/// `read_buf`; the `ReadBuf` it uses tracks what the read initialized).
pub(super) fn poll_read_vec<S: AsyncRead + Unpin>(
    stream: &mut S,
    cx: &mut Context<'_>,
    buf: &mut alloc::vec::Vec<u8>,
) -> Poll<io::Result<usize>> {
    core::pin::pin!(stream.read_buf(buf)).poll(cx)
}
