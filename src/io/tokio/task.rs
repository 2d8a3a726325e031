//! The connection task of split halves (and of a dropped [`WebSocket`](super::WebSocket)
//! finishing its closing handshake).

use alloc::collections::VecDeque;
use alloc::sync::Arc;
use core::future::Future;
use core::pin::Pin;
use core::sync::atomic::Ordering;
use core::task::{Context, Poll};

use ::tokio::io::{AsyncRead, AsyncWrite};
use futures_channel::mpsc;
use futures_core::Stream;

use super::halves::{cost, ReadHalf, Shared, WriteHalf, RECEIVE_QUEUE};
use super::pump::Io;
use super::socket::WRITE_BATCH;
use crate::io::driver::{Driver, Step, Want};
use crate::io::error::AdapterError as Error;
use crate::io::owned::{Incoming, Outgoing};
use crate::wire::close::CloseCode;

/// How many rounds the connection task makes per poll before yielding to other tasks.
pub(super) const ROUNDS: usize = 32;

/// The connection task of split halves (and of a dropped [`WebSocket`] finishing its
/// closing handshake): owns the stream and the driver, and talks to the halves through two
/// channels, the writer's bounded in bytes, the reader's in items.
pub(super) struct Task<S> {
    io: Io<S>,
    /// Messages from the writer; `None` once every writer is gone.
    commands: Option<mpsc::UnboundedReceiver<Outgoing>>,
    /// Items for the reader; `None` once the reader is gone.
    incoming: Option<mpsc::Sender<Result<Incoming, Error>>>,
    /// Items waiting for room in the reader's queue.
    pending: VecDeque<Result<Incoming, Error>>,
    shared: Arc<Shared>,
    /// Whether the writer's queue was found empty this round.
    commands_idle: bool,
    /// Whether the reader wanted an item when this round started, before the writer's queue
    /// was looked at.
    reader_waits: bool,
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send + 'static> Task<S> {
    pub(super) fn new(io: Io<S>) -> Self {
        let config = io.driver.connection().config();
        let shared = Shared::new(config.send_queue_limit(), config.send_queue_full());
        Self {
            io,
            commands: None,
            incoming: None,
            pending: VecDeque::new(),
            shared: Arc::new(shared),
            commands_idle: true,
            reader_waits: false,
        }
    }

    /// Spawns the connection task and returns the halves that talk to it.
    pub(super) fn spawn(mut self) -> (ReadHalf, WriteHalf) {
        let (command_tx, command_rx) = mpsc::unbounded();
        let (incoming_tx, incoming_rx) = mpsc::channel(RECEIVE_QUEUE.saturating_sub(1));
        self.commands = Some(command_rx);
        self.incoming = Some(incoming_tx);
        self.update_closing();
        let shared = Arc::clone(&self.shared);
        ::tokio::spawn(self);
        (
            ReadHalf { incoming: incoming_rx, shared: Arc::clone(&shared) },
            WriteHalf { outgoing: command_tx, shared },
        )
    }

    /// Halves of a connection that is over: the reader sees the end, the writer
    /// [`Error::Closed`].
    pub(super) fn closed_halves() -> (ReadHalf, WriteHalf) {
        let (outgoing, _) = mpsc::unbounded();
        let (_, incoming) = mpsc::channel(0);
        let shared = Arc::new(Shared::new(0, crate::SendQueueFull::Close));
        shared.closing.store(true, Ordering::Release);
        (ReadHalf { incoming, shared: Arc::clone(&shared) }, WriteHalf { outgoing, shared })
    }

    /// Reports `item` to the reader (or drops it if the reader is gone).
    fn report(&mut self, item: Result<Incoming, Error>) {
        if self.incoming.is_some() {
            self.pending.push_back(item);
        }
    }

    /// Marks the connection as no longer able to send, once a close is under way.
    fn update_closing(&mut self) {
        if !self.io.driver.connection().can_send() {
            self.shared.closing.store(true, Ordering::Release);
        }
    }

    /// Runs due deadlines. `true` if one ran.
    fn poll_timer(&mut self, cx: &mut Context<'_>) -> bool {
        self.io.poll_timer(cx)
    }

    /// Writes pending output. `true` if bytes were written (or the stream failed).
    fn poll_write_out(&mut self, cx: &mut Context<'_>) -> bool {
        let progress = match self.io.poll_write_out(cx) {
            Ok(progress) => progress,
            Err(e) => {
                self.report(Err(e));
                true
            }
        };
        if progress {
            self.update_unsent();
        }
        progress
    }

    /// Publishes how many taken bytes are still unwritten, and wakes a writer waiting for
    /// room once there is some.
    fn update_unsent(&mut self) {
        let unsent = self.io.driver.output_len();
        self.shared.unsent.store(unsent, Ordering::Release);
        let waiting = unsent + self.shared.queued.load(Ordering::Acquire);
        if waiting < self.shared.limit || self.io.driver.is_closed() {
            self.shared.writer.wake();
        }
    }

    /// Takes messages from the writer into the output, until a batch's worth waits to be
    /// written: frames queued while the peer was busy leave together, in one vectored write.
    /// `true` if one was taken.
    fn poll_commands(&mut self, cx: &mut Context<'_>) -> bool {
        self.commands_idle = false;
        if self.shared.overflowed.swap(false, Ordering::AcqRel) {
            self.overflow();
            return true;
        }
        let mut taken = false;
        loop {
            if self.io.driver.output_len() >= WRITE_BATCH {
                break;
            }
            let Some(commands) = &mut self.commands else {
                self.commands_idle = true;
                break;
            };
            match Pin::new(commands).poll_next(cx) {
                Poll::Ready(Some(message)) => {
                    self.shared.queued.fetch_sub(cost(&message), Ordering::AcqRel);
                    let now = self.io.now();
                    // A message queued just before a close may find the connection closing;
                    // the writer was told through `closing`, so it is dropped.
                    let vectored = self.io.stream.is_write_vectored();
                    let _refused = self.io.driver.send_owned(message, now, vectored);
                    taken = true;
                }
                Poll::Ready(None) => {
                    // Every writer is gone: close normally if nobody did.
                    self.commands = None;
                    let now = self.io.now();
                    self.io.driver.close_if_open(now);
                    taken = true;
                    break;
                }
                Poll::Pending => {
                    self.commands_idle = true;
                    break;
                }
            }
        }
        if taken {
            self.update_unsent();
        }
        taken
    }

    /// The send queue overflowed under [`SendQueueFull::Close`](crate::SendQueueFull): what
    /// waits in the channel is dropped and the connection closed with 1008 (policy
    /// violation), behind what was already taken, which is bounded by the limit.
    fn overflow(&mut self) {
        self.shared.closing.store(true, Ordering::Release);
        if let Some(commands) = &mut self.commands {
            while let Ok(message) = commands.try_recv() {
                self.shared.queued.fetch_sub(cost(&message), Ordering::AcqRel);
            }
        }
        let now = self.io.fresh_now();
        let _closing = self.io.driver.close(CloseCode::POLICY_VIOLATION, "send queue full", now);
        self.update_unsent();
    }

    /// Hands pending items to the reader. `false` while the reader's queue is full.
    fn poll_deliver(&mut self, cx: &mut Context<'_>) -> bool {
        while let Some(item) = self.pending.pop_front() {
            let Some(tx) = &mut self.incoming else {
                self.pending.clear();
                return true;
            };
            match tx.poll_ready(cx) {
                Poll::Ready(Ok(())) => {
                    let _gone = tx.start_send(item);
                }
                Poll::Ready(Err(_)) => {
                    self.incoming = None;
                    self.pending.clear();
                }
                Poll::Pending => {
                    self.pending.push_front(item);
                    return false;
                }
            }
        }
        true
    }

    /// Takes the next item from the buffered input, or reads more. `true` on progress.
    fn poll_receive(&mut self, cx: &mut Context<'_>) -> bool {
        if !self.poll_deliver(cx) {
            return false;
        }
        // Decode only when the reader waits for an item, and after taking what the writer
        // queued before it asked: an echo of a message goes out before a failure found in
        // the bytes after that message (the order a sequential recv/send loop would give).
        // With the output busy the writer's queue cannot be taken; decoding goes on then, so
        // two peers sending large messages to each other cannot deadlock.
        let reader_waits = self.incoming.is_none() || self.reader_waits;
        let writer_done = self.commands_idle || self.io.driver.has_output();
        if !reader_waits || !writer_done {
            return false;
        }
        let had_output = self.io.driver.has_output();
        match self.io.receive_step(Driver::next_incoming) {
            Step::Ready(Ok(Some(item))) => {
                self.shared.wanted.store(false, Ordering::Release);
                self.report(Ok(item));
                true
            }
            Step::Ready(Ok(None)) => false,
            Step::Ready(Err(e)) => {
                self.report(Err(e));
                true
            }
            Step::Io(Want::Read { .. }) => match self.io.poll_read(cx) {
                Poll::Ready(Ok(())) => true,
                Poll::Ready(Err(e)) => {
                    self.report(Err(e));
                    true
                }
                Poll::Pending => {
                    self.io.release_buffers();
                    false
                }
            },
            // Writing and the transport's shutdown are the poll loop's. Bytes this step
            // queued (a pong, the close a failure sends) are progress: the loop goes round
            // again to write them. Bytes that were already waiting are not: their write is
            // pending, and its readiness wakes the task.
            Step::Io(Want::Write | Want::Shutdown) => !had_output && self.io.driver.has_output(),
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send + 'static> Future for Task<S> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        this.shared.task.register(cx.waker());
        this.io.now = None;
        for _ in 0..ROUNDS {
            // Read the reader's wish before the writer's queue: whatever the writer queued
            // before the reader asked is then seen by `poll_commands` below.
            this.reader_waits = this.shared.wanted.load(Ordering::Acquire);
            let mut progress = this.poll_timer(cx);
            progress |= this.poll_write_out(cx);
            progress |= this.poll_commands(cx);
            progress |= this.poll_receive(cx);
            this.update_closing();
            if this.io.driver.is_closed() && !this.io.driver.has_output() {
                if !this.io.driver.is_shut_down() {
                    // RFC 6455 §7.1.1: the side the connection says closes the transport
                    // does so now; the other side saw the end of the stream.
                    if this.io.poll_want(cx, Want::Shutdown).is_pending() {
                        return Poll::Pending;
                    }
                }
                if let Some(e) = this.io.driver.take_failure() {
                    this.report(Err(e.into()));
                }
                if this.pending.is_empty() || this.incoming.is_none() {
                    return Poll::Ready(());
                }
                if !this.poll_deliver(cx) {
                    return Poll::Pending;
                }
                continue;
            }
            if !progress {
                // Going idle: hold no buffer while waiting.
                this.io.release_buffers();
                return Poll::Pending;
            }
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}
