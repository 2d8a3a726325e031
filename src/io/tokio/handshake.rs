//! The opening handshake, run in the caller's task.

use core::future::{poll_fn, Future};
use core::task::{Context, Poll};
use std::io;

use ::tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use ::tokio::time::{timeout_at, Instant as TokioInstant};

use super::pump::Io;
use crate::handshake::Request;
use crate::io::clock::Clock;
use crate::io::driver::Driver;
use crate::io::error::{handshake_outcome, AdapterError as Error};
use crate::io::owned::{Decision, HttpResponse};

/// Runs the opening handshake in the caller's task.
pub(super) async fn handshake<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    mut driver: Driver,
    clock: Clock<TokioInstant>,
    decide: &mut (dyn FnMut(&Request<'_>) -> Decision + Send),
) -> Result<(Io<S>, Option<HttpResponse>), Error> {
    let response = loop {
        write_out(&mut stream, &mut driver).await?;
        let now = clock.instant(TokioInstant::now());
        match driver.handshake(now, decide) {
            Ok(Some(result)) => {
                write_out(&mut stream, &mut driver).await?;
                match handshake_outcome(result) {
                    Ok(response) => break response,
                    Err(e) => {
                        let _gone = stream.shutdown().await;
                        return Err(e);
                    }
                }
            }
            Ok(None) => {}
            Err(e) => {
                let _unsent = write_out(&mut stream, &mut driver).await;
                let _gone = stream.shutdown().await;
                return Err(e.into());
            }
        }
        if driver.is_closed() {
            return Err(Error::Closed);
        }
        let deadline = driver.poll_timeout().map(|at| clock.at(at));
        let read = poll_fn(|cx| driver.read_with(|buf| poll_read_vec(&mut stream, cx, buf)));
        let read = match deadline {
            Some(at) => timeout_at(at, read).await.ok(),
            None => Some(read.await),
        };
        let now = clock.instant(TokioInstant::now());
        let step = match read {
            None => driver.on_timeout(now),
            Some(Ok(0)) => driver.on_eof(),
            Some(Ok(_)) => Ok(()),
            Some(Err(e)) => {
                driver.on_transport_error();
                return Err(e.into());
            }
        };
        if let Err(e) = step {
            let _unsent = write_out(&mut stream, &mut driver).await;
            let _gone = stream.shutdown().await;
            return Err(e.into());
        }
    };
    let io =
        Io { stream, driver, clock, sleep: None, shut_down: false, read_done: false, now: None };
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

/// Writes the driver's pending output (used during the handshake).
pub(super) async fn write_out<S: AsyncWrite + Unpin>(
    stream: &mut S,
    driver: &mut Driver,
) -> Result<(), Error> {
    while !driver.output().is_empty() {
        let n = stream.write(driver.output()).await?;
        if n == 0 {
            return Err(Error::Io(io::ErrorKind::WriteZero.into()));
        }
        driver.wrote(n);
    }
    stream.flush().await?;
    Ok(())
}
