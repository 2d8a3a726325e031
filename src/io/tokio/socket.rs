//! [`WebSocket`]: the connection driven in its caller's task, as a `Stream` and a `Sink`.

use core::future::poll_fn;
use core::pin::Pin;
use core::task::{ready, Context, Poll};

use ::tokio::io::{AsyncRead, AsyncWrite};
use ::tokio::net::TcpStream;
use futures_core::Stream;
use futures_sink::Sink;

use super::halves::{ReadHalf, WriteHalf};
use super::pump::Io;
use super::task::Task;
use crate::connection::Connection;
use crate::io::driver::{HeapDriver as Driver, Step};
use crate::io::error::AdapterError as Error;
use crate::io::owned::{Incoming, Outgoing};
use crate::wire::close::CloseCode;

/// An open WebSocket over `S`, driven in the task that calls it: [`recv`](Self::recv) reads,
/// decodes, answers pings and closes and runs the deadlines; [`send`](Self::send) encodes
/// and writes. Receive as a `Stream`, send as a `Sink`, or [`split`](Self::split) it into
/// halves for different tasks.
pub struct WebSocket<S = TcpStream>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    /// `None` only once the connection was handed to a task (by `split` or `drop`).
    io: Option<Io<S>>,
}

impl<S> core::fmt::Debug for WebSocket<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let state = self.io.as_ref().map(|io| io.driver.connection().state());
        f.debug_struct("WebSocket").field("state", &state).finish_non_exhaustive()
    }
}

/// How many bytes [`WebSocket`]'s `Sink` buffers before `poll_ready` writes them out: small
/// messages fed one after another go out in one write.
pub const WRITE_BATCH: usize = 16 * 1024;

impl<S> WebSocket<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    pub(super) fn new(io: Io<S>) -> Self {
        Self { io: Some(io) }
    }

    /// Receives the next whole message, ping, pong or close frame, writing what is owed
    /// first (replies to pings and closes, messages fed to the `Sink`).
    ///
    /// `Ok(None)` once the connection is over (after the closing handshake, or after an
    /// error was returned and the connection then ended). A protocol violation, a missed
    /// deadline or a transport failure is returned once as an error. Cancel-safe: a
    /// message is decoded only when it is returned.
    pub async fn recv(&mut self) -> Result<Option<Incoming>, Error> {
        poll_fn(|cx| self.poll_recv(cx)).await.transpose()
    }

    /// Sends `message`: writes what is owed, then the message, and returns once it is
    /// written to the stream (so a peer that reads slowly slows the sender: nothing piles
    /// up). Fails with [`Error::Closed`] once a close was sent or received, and with
    /// [`Error::Usage`] for an invalid close code or an oversized control payload.
    ///
    /// Not cancel-safe: cancelled while earlier bytes are written, the message is dropped;
    /// cancelled later, its remaining bytes go out with the next `recv`, `send` or `flush`.
    pub async fn send(&mut self, message: Outgoing) -> Result<(), Error> {
        if self.io.as_ref().is_some_and(|io| io.driver.output_len() > 0) {
            self.flush().await?;
        }
        self.queue(message)?;
        self.flush().await
    }

    /// Writes everything queued (by the `Sink`, or by a cancelled `send`). Cancel-safe.
    pub async fn flush(&mut self) -> Result<(), Error> {
        poll_fn(|cx| self.poll_write_all(cx, 0)).await
    }

    /// Starts the closing handshake with `code` and `reason` (at most 123 bytes); then
    /// [`recv`](Self::recv) until `Ok(None)` to see the peer's close and the end.
    pub async fn close(&mut self, code: CloseCode, reason: &str) -> Result<(), Error> {
        self.send(Outgoing::Close(code, reason.into())).await
    }

    /// Sends a text message as one frame (copying `text`), as [`send`](Self::send) does.
    pub async fn send_text(&mut self, text: &str) -> Result<(), Error> {
        self.send(Outgoing::Text(text.into())).await
    }

    /// Sends a binary message as one frame (copying `data`), as [`send`](Self::send) does.
    pub async fn send_binary(&mut self, data: &[u8]) -> Result<(), Error> {
        self.send(Outgoing::Binary(data.into())).await
    }

    /// The connection's state machine: its state, the close frames sent and received.
    pub fn connection(&self) -> &Connection {
        self.io().driver.connection()
    }

    /// The stream.
    pub fn get_ref(&self) -> &S {
        &self.io().stream
    }

    /// The stream, mutably (reading or writing it directly corrupts the connection).
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.io.as_mut().expect("a WebSocket holds its connection until dropped").stream
    }

    fn io(&self) -> &Io<S> {
        // The connection is taken only by `split` (which consumes the WebSocket) and `drop`.
        self.io.as_ref().expect("a WebSocket holds its connection until dropped")
    }

    /// Splits the connection into a receiving and a sending half, each usable from its own
    /// task without a lock: a spawned connection task then owns the stream (see the module
    /// docs).
    pub fn split(mut self) -> (ReadHalf, WriteHalf) {
        match self.io.take() {
            Some(io) => Task::new(io).spawn(),
            // Unreachable (the connection is taken only here and in `drop`); halves of a
            // closed connection are the honest answer.
            None => Task::<S>::closed_halves(),
        }
    }

    /// Encodes `message` after what is queued.
    fn queue(&mut self, message: Outgoing) -> Result<(), Error> {
        let io = self.io.as_mut().ok_or(Error::Closed)?;
        // Only a close starts a timer: a data message needs no fresh reading of the clock.
        let now = if matches!(message, Outgoing::Close(..)) { io.fresh_now() } else { io.now() };
        let vectored = io.stream.is_write_vectored();
        io.reuse_buffers();
        io.driver.send_owned(message, now, vectored)?;
        Ok(())
    }

    /// Writes queued bytes until at most `keep` remain, running due deadlines meanwhile.
    fn poll_write_all(&mut self, cx: &mut Context<'_>, keep: usize) -> Poll<Result<(), Error>> {
        let Some(io) = self.io.as_mut() else { return Poll::Ready(Ok(())) };
        loop {
            if keep > 0 && io.driver.output_len() <= keep {
                return Poll::Ready(Ok(()));
            }
            let now = io.now();
            match io.driver.flush_step(now) {
                Step::Ready(result) => return Poll::Ready(result),
                Step::Io(want) => ready!(io.poll_want(cx, want))?,
            }
        }
    }

    fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Incoming, Error>>> {
        let Some(io) = self.io.as_mut() else { return Poll::Ready(None) };
        io.now = None;
        loop {
            match io.receive_step(Driver::next_incoming) {
                Step::Ready(result) => return Poll::Ready(result.transpose()),
                Step::Io(want) => {
                    if let Err(e) = ready!(io.poll_want(cx, want)) {
                        return Poll::Ready(Some(Err(e)));
                    }
                }
            }
        }
    }
}

impl<S> Drop for WebSocket<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    /// An open connection is closed with 1000; a task finishes the closing handshake (and
    /// writes whatever was still queued), when there is a tokio runtime to run it on.
    fn drop(&mut self) {
        let Some(mut io) = self.io.take() else { return };
        if io.driver.is_shut_down() {
            return;
        }
        let Ok(runtime) = ::tokio::runtime::Handle::try_current() else { return };
        let now = io.fresh_now();
        io.driver.close_if_open(now);
        runtime.spawn(Task::new(io));
    }
}

impl<S> Stream for WebSocket<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Item = Result<Incoming, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.poll_recv(cx)
    }
}

impl<S> Sink<Outgoing> for WebSocket<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Error = Error;

    /// Ready while less than [`WRITE_BATCH`] bytes are queued (writing them out otherwise).
    fn poll_ready(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.poll_write_all(cx, WRITE_BATCH - 1)
    }

    /// Encodes the message behind what is queued; `poll_flush` writes it.
    fn start_send(mut self: Pin<&mut Self>, item: Outgoing) -> Result<(), Error> {
        self.queue(item)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.poll_write_all(cx, 0)
    }

    /// Starts the closing handshake with 1000 (if it has not started) and writes it; read
    /// on to see the peer's close.
    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        if let Some(io) = self.io.as_mut() {
            let now = io.fresh_now();
            io.driver.close_if_open(now);
        }
        self.poll_write_all(cx, 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An idle connection should cost at most about 2 KiB: the [`WebSocket`] (which holds
    /// the `Connection` inline) in the application's task, and no buffers (they are
    /// released when idle). permessage-deflate adds the codec's pointer, the inflate
    /// space's slot and the compressed message's progress: under 100 bytes.
    #[test]
    fn an_idle_websocket_is_small() {
        let size = core::mem::size_of::<WebSocket<TcpStream>>();
        let budget = if cfg!(feature = "deflate") { 864 } else { 768 };
        assert!(size <= budget, "a WebSocket over TCP takes {size} bytes");
    }
}
