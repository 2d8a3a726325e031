//! The halves of a split [`WebSocket`](super::WebSocket), talking to its connection task
//! through a bounded channel (received items) and a byte-bounded queue (messages to send).

use alloc::collections::VecDeque;
use alloc::sync::Arc;
use core::future::poll_fn;
use core::pin::Pin;
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use core::task::{Context, Poll, Waker};

use std::sync::{Mutex, MutexGuard, PoisonError};

use futures_channel::mpsc;
use futures_core::Stream;
use futures_sink::Sink;
use futures_util::task::AtomicWaker;

use super::task::Direct;
use crate::connection::config::SendQueueFull;
use crate::io::error::AdapterError as Error;
use crate::io::owned::{Incoming, Outgoing};
use crate::wire::close::CloseCode;

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
/// Its queue is bounded in bytes by [`Config::send_queue`](crate::Config::send_queue):
/// [`send`](Self::send) and the `Sink` wait for room, [`try_send`](Self::try_send) (for a
/// broadcast, where one slow peer must not hold up the others) never waits and applies the
/// configured [`SendQueueFull`] policy instead.
///
/// Dropping it starts the closing handshake with 1000 if the connection is still open (the
/// [`ReadHalf`] then sees the peer's close and the end): keep it while the connection should
/// stay open.
pub struct WriteHalf {
    pub(super) shared: Arc<Shared>,
    /// The connection task's state, for writing a shared frame at once when it is idle.
    pub(super) direct: Option<Arc<dyn Direct>>,
}

impl core::fmt::Debug for WriteHalf {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("WriteHalf").field("queued", &self.queued()).finish_non_exhaustive()
    }
}

/// What the halves and the connection task share.
#[derive(Debug)]
pub(super) struct Shared {
    /// Set by the connection task once no more data can be sent.
    pub(super) closing: AtomicBool,
    /// Set by the reader when it waits for an item; the task decodes the next one only then.
    pub(super) wanted: AtomicBool,
    /// The writer, to wake when the queue has room again.
    pub(super) writer: AtomicWaker,
    /// The writer's messages, for the task to take.
    pub(super) commands: Mutex<Commands>,
    /// Bytes of messages in `commands` (or taken by the task and not yet encoded).
    pub(super) queued: AtomicUsize,
    /// Bytes the task took and has not written yet.
    pub(super) unsent: AtomicUsize,
    /// Set by `try_send` when the queue overflowed under [`SendQueueFull::Close`].
    pub(super) overflowed: AtomicBool,
    pub(super) limit: usize,
    pub(super) full: SendQueueFull,
}

/// The writer's queue: a lock taken once per message by the writer and once per batch by the
/// task, whose allocation is reused (no allocation per message, unlike a channel's node).
#[derive(Debug, Default)]
pub(super) struct Commands {
    /// Each message with what it is charged against the limit.
    pub(super) messages: VecDeque<(Outgoing, usize)>,
    /// Set once the writer is gone (dropped, or its `Sink` closed).
    pub(super) writer_gone: bool,
    /// The connection task, to wake (by reference: it stays registered) when messages come,
    /// the reader wants an item or the queue overflowed.
    pub(super) task: Option<Waker>,
}

impl Shared {
    /// The writer's queue, locked (a panic while it was held leaves it usable: every
    /// change to it is a single push or swap).
    pub(super) fn commands(&self) -> MutexGuard<'_, Commands> {
        self.commands.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn new(limit: usize, full: SendQueueFull) -> Self {
        Self {
            commands: Mutex::default(),
            closing: AtomicBool::new(false),
            wanted: AtomicBool::new(false),
            writer: AtomicWaker::new(),
            queued: AtomicUsize::new(0),
            unsent: AtomicUsize::new(0),
            overflowed: AtomicBool::new(false),
            limit,
            full,
        }
    }

    /// Wakes the connection task.
    pub(super) fn wake_task(&self) {
        if let Some(task) = &self.commands().task {
            task.wake_by_ref();
        }
    }

    /// Bytes waiting in all: in the channel and in the task's output.
    fn waiting(&self) -> usize {
        self.queued.load(Ordering::Acquire) + self.unsent.load(Ordering::Acquire)
    }
}

/// What a queued message is charged against the send queue's limit: its payload, and a
/// frame header and the queue's own bookkeeping.
pub(super) fn cost(message: &Outgoing) -> usize {
    let payload = match message {
        Outgoing::Text(text) => text.len(),
        Outgoing::Binary(data) | Outgoing::Ping(data) | Outgoing::Pong(data) => data.len(),
        Outgoing::Fragment { payload, .. } => payload.len(),
        Outgoing::Close(_, reason) => reason.len() + 2,
        Outgoing::Shared(message) => message.payload().len(),
    };
    payload + 64
}

impl ReadHalf {
    /// Receives the next item; as [`WebSocket::recv`](super::WebSocket::recv). Cancel-safe.
    pub async fn recv(&mut self) -> Result<Option<Incoming>, Error> {
        poll_fn(|cx| self.poll_item(cx)).await.transpose()
    }

    fn poll_item(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Incoming, Error>>> {
        let item = Pin::new(&mut self.incoming).poll_next(cx);
        if item.is_pending() && !self.shared.wanted.swap(true, Ordering::AcqRel) {
            self.shared.wake_task();
        }
        item
    }
}

impl WriteHalf {
    /// Waits until the send queue has room (fewer bytes wait than its limit). Cancel-safe.
    pub async fn ready(&mut self) -> Result<(), Error> {
        poll_fn(|cx| self.poll_ready_inner(cx)).await
    }

    /// Queues `message` without waiting: the call a broadcast makes for each recipient.
    ///
    /// When the send queue is full (a peer reading more slowly than messages come), the
    /// message is not queued and [`Error::SendQueueFull`] is returned; under
    /// [`SendQueueFull::Close`] (the default) the connection is also closed with 1008 and what
    /// still waited is dropped, under [`SendQueueFull::Drop`] it stays open. A message is
    /// always taken into an empty queue, whatever its size.
    pub fn try_send(&self, message: Outgoing) -> Result<(), Error> {
        self.check_open()?;
        message.check()?;
        let cost = cost(&message);
        let waiting = self.shared.waiting();
        if waiting > 0 && waiting + cost > self.shared.limit {
            if self.shared.full == SendQueueFull::Close {
                self.shared.overflowed.store(true, Ordering::Release);
                self.shared.wake_task();
            }
            return Err(Error::SendQueueFull);
        }
        self.push(message, cost)
    }

    /// Queues `message`, or, for a shared frame on an idle connection, writes it at once:
    /// a broadcast then costs each recipient a write, not a wake of its task.
    fn push(&self, message: Outgoing, cost: usize) -> Result<(), Error> {
        let mut commands = self.shared.commands();
        if commands.writer_gone {
            return Err(Error::Closed);
        }
        let message = match (message, &self.direct) {
            (Outgoing::Shared(shared), Some(direct)) if commands.messages.is_empty() => {
                match direct.write_shared(shared) {
                    Ok(wake) => {
                        if wake {
                            if let Some(task) = &commands.task {
                                task.wake_by_ref();
                            }
                        }
                        return Ok(());
                    }
                    Err(shared) => Outgoing::Shared(shared),
                }
            }
            (message, _) => message,
        };
        Self::enqueue(&mut commands, message, cost, &self.shared);
        Ok(())
    }

    /// Queues `message`, waiting for room in the send queue. Fails with [`Error::Closed`]
    /// once a close was sent or received (or the connection ended), and with
    /// [`Error::Usage`] for an invalid close code or an oversized control payload. A
    /// queued message is written in order; one queued just as the connection closes may be
    /// dropped. Not cancel-safe.
    pub async fn send(&mut self, message: Outgoing) -> Result<(), Error> {
        self.ready().await?;
        self.check_open()?;
        message.check()?;
        let cost = cost(&message);
        self.push(message, cost)
    }

    /// Starts the closing handshake with `code` and `reason` (at most 123 bytes).
    pub async fn close(&mut self, code: CloseCode, reason: &str) -> Result<(), Error> {
        let close = Outgoing::Close(code, reason.into());
        close.check()?;
        self.send(close).await
    }

    /// How many bytes wait to be written (in the queue and in the connection's output).
    pub fn queued(&self) -> usize {
        self.shared.waiting()
    }

    /// Puts `message` in the queue (locked as `commands`).
    fn enqueue(commands: &mut Commands, message: Outgoing, cost: usize, shared: &Shared) {
        let was_empty = commands.messages.is_empty();
        commands.messages.push_back((message, cost));
        shared.queued.fetch_add(cost, Ordering::AcqRel);
        // The task takes the whole queue when it looks: it needs waking only when the queue
        // fills from empty (a wake per message would cost a task switch per message).
        if was_empty {
            if let Some(task) = &commands.task {
                task.wake_by_ref();
            }
        }
    }

    /// No more messages: the task closes normally once it has written what is queued.
    fn finish(&self) {
        let mut commands = self.shared.commands();
        commands.writer_gone = true;
        if let Some(task) = &commands.task {
            task.wake_by_ref();
        }
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
        if self.shared.waiting() < self.shared.limit {
            return Poll::Ready(Ok(()));
        }
        self.shared.writer.register(cx.waker());
        // The task may have made room between the check and the registration.
        if self.shared.waiting() < self.shared.limit {
            return Poll::Ready(Ok(()));
        }
        self.check_open()?;
        Poll::Pending
    }
}

impl Drop for WriteHalf {
    fn drop(&mut self) {
        self.finish();
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

    fn start_send(self: Pin<&mut Self>, item: Outgoing) -> Result<(), Error> {
        self.check_open()?;
        item.check()?;
        let cost = cost(&item);
        self.push(item, cost)
    }

    /// Ready once queued messages are handed to the connection task (which writes them in
    /// order, as fast as the peer reads).
    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        Poll::Ready(Ok(()))
    }

    /// Starts the closing handshake with 1000 (if it has not started) and stops sending.
    fn poll_close(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        if !self.shared.closing.load(Ordering::Acquire) {
            let close = Outgoing::close(CloseCode::NORMAL);
            let cost = cost(&close);
            let _gone = self.push(close, cost);
        }
        self.finish();
        Poll::Ready(Ok(()))
    }
}
