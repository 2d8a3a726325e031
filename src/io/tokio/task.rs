//! The connection task of split halves (and of a dropped [`WebSocket`](super::WebSocket)
//! finishing its closing handshake).

use alloc::collections::VecDeque;
use alloc::sync::Arc;
use core::future::{poll_fn, Future};
use core::pin::{pin, Pin};
use core::sync::atomic::Ordering;
use core::task::{Context, Poll};
use std::sync::{Mutex, PoisonError};

use ::tokio::io::{AsyncRead, AsyncWrite};
use futures_channel::mpsc;

use super::halves::{ReadHalf, Shared, WriteHalf, RECEIVE_QUEUE};
use super::pump::Io;
use super::socket::WRITE_BATCH;
use crate::buffer::shared::SharedMessage;
use crate::io::driver::{HeapDriver as Driver, Step, Want};
use crate::io::error::AdapterError as Error;
use crate::io::owned::{Incoming, Outgoing};
use crate::wire::close::CloseCode;

/// The most queued messages whose room a connection keeps between batches.
const QUEUE_KEEP: usize = 64;

/// How many rounds the connection task makes per poll before yielding to other tasks.
pub(super) const ROUNDS: usize = 32;

/// The connection task of split halves (and of a dropped [`WebSocket`] finishing its
/// closing handshake): owns the stream and the driver, and talks to the halves through two
/// channels, the writer's bounded in bytes, the reader's in items.
pub(super) struct Task<S> {
    io: Io<S>,
    /// Messages from the writer; `None` once every writer is gone.
    /// Messages taken from the writer's queue and not yet encoded (taken all at once, encoded
    /// a batch at a time).
    taken: VecDeque<(Outgoing, usize)>,
    /// Whether the writer is gone and everything it queued was taken.
    writer_done: bool,
    /// Whether the writer was gone when its queue was last taken.
    writer_gone: bool,
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
    /// The waker last given to the writer's queue.
    registered: Option<core::task::Waker>,
    /// Whether a read found the stream not ready during this poll (it wakes the task when it
    /// is, so reading again in a later round of the same poll is wasted).
    read_blocked: bool,
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send + 'static> Task<S> {
    pub(super) fn new(io: Io<S>) -> Self {
        let config = io.driver.connection().config();
        let shared = Shared::new(config.send_queue_limit(), config.send_queue_full());
        Self {
            io,
            taken: VecDeque::new(),
            writer_done: true,
            writer_gone: false,
            incoming: None,
            pending: VecDeque::new(),
            shared: Arc::new(shared),
            commands_idle: true,
            reader_waits: false,
            read_blocked: false,
            registered: None,
        }
    }

    /// Spawns the connection task and returns the halves that talk to it.
    pub(super) fn spawn(mut self) -> (ReadHalf, WriteHalf) {
        let (incoming_tx, incoming_rx) = mpsc::channel(RECEIVE_QUEUE.saturating_sub(1));
        self.writer_done = false;
        self.incoming = Some(incoming_tx);
        self.update_closing();
        let shared = Arc::clone(&self.shared);
        let task: Arc<Wire<S>> = Arc::new(Mutex::new(Some(self)));
        ::tokio::spawn(Spawned { task: Arc::clone(&task) });
        let reader = ReadHalf { incoming: incoming_rx, shared: Arc::clone(&shared) };
        (reader, WriteHalf { shared, direct: Some(task) })
    }

    /// Halves of a connection that is over: the reader sees the end, the writer
    /// [`Error::Closed`].
    pub(super) fn closed_halves() -> (ReadHalf, WriteHalf) {
        let (_, incoming) = mpsc::channel(0);
        let shared = Arc::new(Shared::new(0, crate::SendQueueFull::Close));
        shared.closing.store(true, Ordering::Release);
        shared.commands().writer_gone = true;
        (ReadHalf { incoming, shared: Arc::clone(&shared) }, WriteHalf { shared, direct: None })
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
    fn poll_commands(&mut self) -> bool {
        self.commands_idle = false;
        if self.shared.overflowed.swap(false, Ordering::AcqRel) {
            self.overflow();
            return true;
        }
        let mut taken = false;
        while self.io.driver.output_len() < WRITE_BATCH {
            let Some((message, cost)) = self.next_command() else {
                self.commands_idle = true;
                break;
            };
            self.shared.queued.fetch_sub(cost, Ordering::AcqRel);
            let now = self.io.now();
            // A message queued just before a close may find the connection closing; the
            // writer was told through `closing`, so it is dropped.
            let vectored = self.io.stream.is_write_vectored();
            let _refused = self.io.driver.send_owned(message, now, vectored);
            taken = true;
        }
        if self.commands_idle && !self.writer_done && self.writer_gone {
            // The writer is gone and everything it queued is in the output: close normally
            // if nobody did.
            self.writer_done = true;
            let now = self.io.now();
            self.io.driver.close_if_open(now);
            taken = true;
        }
        if taken {
            self.update_unsent();
        }
        taken
    }

    /// The next message from the writer: what was taken already, else the whole queue (and
    /// whether the writer is gone, seen under the same lock).
    fn next_command(&mut self) -> Option<(Outgoing, usize)> {
        if self.taken.is_empty() && !self.writer_done {
            // The queues trade places, so their room is reused; room a burst left behind is
            // given back first, so that a connection does not keep it.
            if self.taken.capacity() > QUEUE_KEEP {
                self.taken = VecDeque::new();
            }
            let mut commands = self.shared.commands();
            core::mem::swap(&mut commands.messages, &mut self.taken);
            self.writer_gone = commands.writer_gone;
        }
        self.taken.pop_front()
    }

    /// The send queue overflowed under [`SendQueueFull::Close`](crate::SendQueueFull): what
    /// waits in the queue is dropped and the connection closed with 1008 (policy
    /// violation), behind what was already taken, which is bounded by the limit.
    fn overflow(&mut self) {
        self.shared.closing.store(true, Ordering::Release);
        let dropped = core::mem::take(&mut self.shared.commands().messages);
        for (_, cost) in dropped.iter().chain(self.taken.iter()) {
            self.shared.queued.fetch_sub(*cost, Ordering::AcqRel);
        }
        self.taken.clear();
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
        if self.read_blocked && !self.io.driver.has_input() {
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
                    self.read_blocked = true;
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

impl<S> Drop for Task<S> {
    /// The connection is over: the writer's sends fail from now on, what it queued is
    /// freed, and a writer waiting for room wakes to see it.
    fn drop(&mut self) {
        self.shared.closing.store(true, Ordering::Release);
        let mut commands = self.shared.commands();
        commands.writer_gone = true;
        commands.messages.clear();
        commands.task = None;
        drop(commands);
        self.shared.writer.wake();
    }
}

/// The connection task's state, shared by the spawned task and the writer's direct path;
/// `None` once the task has finished (the stream is then closed and dropped).
pub(super) type Wire<S> = Mutex<Option<Task<S>>>;

/// The spawned connection task.
struct Spawned<S> {
    task: Arc<Wire<S>>,
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send + 'static> Future for Spawned<S> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut task = self.task.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(state) = task.as_mut() else { return Poll::Ready(()) };
        let done = state.poll_task(cx);
        if done.is_ready() {
            // Over: the stream and the buffers go now, not when the last half is dropped.
            *task = None;
        }
        done
    }
}

/// A dropped [`WebSocket`](super::WebSocket)'s task, which finishes the closing handshake.
impl<S: AsyncRead + AsyncWrite + Unpin + Send + 'static> Future for Task<S> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.poll_task(cx)
    }
}

/// The writer's way past the queue: a shared frame written at once, from the writer's
/// thread, when the connection is idle (nothing queued, nothing being written), without
/// waking the task. Type-erased, as the halves are not generic over the stream.
pub(super) trait Direct: Send + Sync {
    /// Writes `message` if the connection is idle and its task not running: `Ok(true)` if
    /// the task must be woken to write the rest (the stream took part of it) or to report a
    /// failure, `Err` with the message if it must be queued instead.
    fn write_shared(&self, message: SharedMessage) -> Result<bool, SharedMessage>;
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send + 'static> Direct for Wire<S> {
    fn write_shared(&self, message: SharedMessage) -> Result<bool, SharedMessage> {
        let Ok(mut task) = self.try_lock() else { return Err(message) };
        let Some(task) = task.as_mut() else { return Err(message) };
        if !task.taken.is_empty() || task.io.driver.has_output() {
            return Err(message);
        }
        if task.io.driver.send_shared(message).is_err() {
            // Closing: a message sent just as the connection closes is dropped.
            return Ok(false);
        }
        // A waker that does nothing: should the stream not take everything, the task is
        // woken, and its own write registers its waker for the stream's readiness. The write
        // is outside tokio's cooperative budget (it is charged to the writer's task, which
        // may be a broadcast's, with a thousand such writes to make): it is one bounded
        // write, which a plain `try_write` would not be charged for either.
        let mut cx = Context::from_waker(futures_util::task::noop_waker_ref());
        let io = &mut task.io;
        let write = ::tokio::task::unconstrained(poll_fn(|cx| Poll::Ready(io.poll_write_out(cx))));
        let written = match pin!(write).poll(&mut cx) {
            Poll::Ready(written) => written,
            // An unconstrained future that is ready at once.
            Poll::Pending => Ok(false),
        };
        let wake = match written {
            Ok(_) => task.io.driver.has_output(),
            Err(e) => {
                task.report(Err(e));
                true
            }
        };
        task.shared.unsent.store(task.io.driver.output_len(), Ordering::Release);
        Ok(wake)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send + 'static> Task<S> {
    fn poll_task(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let this = self;
        // The writer wakes the task by reference through the waker in the queue: it is set
        // again only when the task's waker changed (which a spawned task's does not).
        if !this.registered.as_ref().is_some_and(|task| task.will_wake(cx.waker())) {
            this.registered = Some(cx.waker().clone());
            this.shared.commands().task = Some(cx.waker().clone());
        }
        this.io.now = None;
        this.read_blocked = false;
        // Deadlines are checked when the poll starts and before it goes idle, not in every
        // round: reading the clock and polling the sleep each round was a tenth of the cost
        // of a broadcast delivery.
        let mut progress = this.poll_timer(cx);
        // The deadline the sleep is armed for; unknown after a deadline ran (the sleep is
        // armed for the one that passed, not for the next).
        let mut checked = (!progress).then(|| this.io.driver.poll_timeout());
        for _ in 0..ROUNDS {
            // Read the reader's wish before the writer's queue: whatever the writer queued
            // before the reader asked is then seen by `poll_commands` below.
            this.reader_waits = this.shared.wanted.load(Ordering::Acquire);
            // Messages are taken before writing, so that what was queued meanwhile leaves
            // with what was already waiting, in one write.
            progress |= this.poll_commands();
            progress |= this.poll_write_out(cx);
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
            // Before going idle, the sleep is armed for the deadline as it is now (this
            // poll may have armed one, a close's); one that is already due is run.
            if !progress {
                let deadline = this.io.driver.poll_timeout();
                let moved = checked != Some(deadline);
                checked = Some(deadline);
                if !(moved && this.poll_timer(cx)) {
                    // Going idle: hold no buffer while waiting.
                    this.io.release_buffers();
                    return Poll::Pending;
                }
            }
            progress = false;
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}
