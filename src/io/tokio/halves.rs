//! The halves of a split [`WebSocket`](super::WebSocket), talking to its connection task
//! through two bounded channels.

use alloc::sync::Arc;
use core::future::poll_fn;
use core::pin::Pin;
use core::sync::atomic::{AtomicBool, Ordering};
use core::task::{Context, Poll};
use std::io;

use futures_channel::mpsc;
use futures_core::Stream;
use futures_sink::Sink;
use futures_util::task::AtomicWaker;

use crate::io::error::AdapterError as Error;
use crate::io::owned::{Incoming, Outgoing};
use crate::wire::close::CloseCode;

/// How many outgoing messages may wait for the connection task (beyond the one it is
/// writing); past that, sending waits.
pub const SEND_QUEUE: usize = 8;

/// How many received items may wait for the reader; past that, the connection task stops
/// reading from the stream.
pub const RECEIVE_QUEUE: usize = 8;

/// The receiving half of a [`WebSocket`](super::WebSocket).
#[derive(Debug)]
pub struct ReadHalf {
    pub(super) incoming: mpsc::Receiver<Result<Incoming, Error>>,
    pub(super) shared: Arc<Shared>,
}

/// The sending half of a [`WebSocket`](super::WebSocket).
///
/// Dropping it starts the closing handshake with 1000 if the connection is still open (the
/// [`ReadHalf`] then sees the peer's close and the end): keep it while the connection should
/// stay open.
#[derive(Debug)]
pub struct WriteHalf {
    pub(super) outgoing: mpsc::Sender<Outgoing>,
    pub(super) shared: Arc<Shared>,
}

/// What the halves and the connection task share, lock-free.
#[derive(Debug, Default)]
pub(super) struct Shared {
    /// Set by the connection task once no more data can be sent.
    pub(super) closing: AtomicBool,
    /// Set by the reader when it waits for an item; the task decodes the next one only then.
    pub(super) wanted: AtomicBool,
    /// The connection task, to wake when the reader wants an item.
    pub(super) task: AtomicWaker,
}

impl ReadHalf {
    /// Receives the next item; as [`WebSocket::recv`](super::WebSocket::recv). Cancel-safe.
    pub async fn recv(&mut self) -> Result<Option<Incoming>, Error> {
        poll_fn(|cx| self.poll_item(cx)).await.transpose()
    }

    fn poll_item(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Incoming, Error>>> {
        let item = Pin::new(&mut self.incoming).poll_next(cx);
        if item.is_pending() && !self.shared.wanted.swap(true, Ordering::AcqRel) {
            self.shared.task.wake();
        }
        item
    }
}

impl WriteHalf {
    /// Waits until a message can be queued without waiting. Cancel-safe.
    pub async fn ready(&mut self) -> Result<(), Error> {
        poll_fn(|cx| self.poll_ready_inner(cx)).await
    }

    /// Queues `message` if there is room right now (after [`ready`](Self::ready)); fails
    /// with an I/O error of kind `WouldBlock` when the queue is full.
    pub fn try_send(&mut self, message: Outgoing) -> Result<(), Error> {
        self.check_open()?;
        message.check()?;
        self.outgoing.try_send(message).map_err(|e| {
            if e.is_disconnected() {
                Error::Closed
            } else {
                Error::Io(io::ErrorKind::WouldBlock.into())
            }
        })
    }

    /// Queues `message`, waiting for room while [`SEND_QUEUE`] messages wait. Fails with
    /// [`Error::Closed`] once a close was sent or received (or the connection ended), and with
    /// [`Error::Usage`] for an invalid close code or an oversized control payload. A
    /// queued message is written in order; one queued just as the connection closes may be
    /// dropped. Not cancel-safe.
    pub async fn send(&mut self, message: Outgoing) -> Result<(), Error> {
        self.ready().await?;
        self.try_send(message)
    }

    /// Starts the closing handshake with `code` and `reason` (at most 123 bytes).
    pub async fn close(&mut self, code: CloseCode, reason: &str) -> Result<(), Error> {
        let close = Outgoing::Close(code, reason.into());
        close.check()?;
        self.send(close).await
    }

    fn check_open(&self) -> Result<(), Error> {
        if self.shared.closing.load(Ordering::Acquire) {
            Err(Error::Closed)
        } else {
            Ok(())
        }
    }

    fn poll_ready_inner(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.check_open()?;
        self.outgoing.poll_ready(cx).map_err(|_| Error::Closed)
    }
}

impl Stream for ReadHalf {
    type Item = Result<Incoming, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.poll_item(cx)
    }
}

impl Sink<Outgoing> for WriteHalf {
    type Error = Error;

    fn poll_ready(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.poll_ready_inner(cx)
    }

    fn start_send(mut self: Pin<&mut Self>, item: Outgoing) -> Result<(), Error> {
        self.check_open()?;
        item.check()?;
        self.outgoing.start_send(item).map_err(|_| Error::Closed)
    }

    /// Ready once queued messages are handed to the connection task (which writes them in
    /// order, as fast as the peer reads).
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        Pin::new(&mut self.outgoing).poll_flush(cx).map_err(|_| Error::Closed)
    }

    /// Starts the closing handshake with 1000 (if it has not started) and stops sending.
    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        if !self.shared.closing.load(Ordering::Acquire) {
            match self.outgoing.poll_ready(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(())) => {
                    let _gone = self.outgoing.start_send(Outgoing::close(CloseCode::NORMAL));
                }
                Poll::Ready(Err(_)) => {}
            }
        }
        self.outgoing.close_channel();
        Poll::Ready(Ok(()))
    }
}
