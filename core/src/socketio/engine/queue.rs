//! A connection's send queue: bounded, filled by any task (emits, broadcasts), emptied by the
//! one transport serving the connection.
//!
//! Built for fan-out, where every broadcast pushes to a thousand queues: a push is one short
//! uncontended lock, and it wakes the transport only when the queue goes from empty to
//! non-empty, so a burst of broadcasts costs each recipient one wake; the transport then
//! takes everything queued in one go. An idle queue holds no heap memory.

use std::collections::VecDeque;
use std::future::poll_fn;
use std::sync::{Arc, Mutex};
use std::task::{Poll, Waker};

use super::packet::Outgoing;
use crate::sync::lock;

/// Why an item was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rejected {
    /// The queue holds its capacity: the transport does not keep up.
    Full,
    /// The transport is gone.
    Closed,
}

struct State {
    items: VecDeque<Outgoing>,
    /// The transport's waker while it waits on an empty queue.
    waker: Option<Waker>,
    /// The connection is closing: nothing more is taken, and the transport is told.
    closing: bool,
    /// The receiving end was dropped.
    closed: bool,
}

struct Shared {
    state: Mutex<State>,
    capacity: usize,
}

/// The sending end; any number of tasks may push through one.
pub(crate) struct Sender(Arc<Shared>);

/// The receiving end, held by whichever transport serves the connection. Public for the
/// `detached` feature alone, which hands it to the benchmarks as `DetachedQueue`.
#[cfg_attr(not(feature = "detached"), allow(unreachable_pub))]
pub struct Receiver(Arc<Shared>);

/// A queue of at most `capacity` items.
pub(crate) fn queue(capacity: usize) -> (Sender, Receiver) {
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            items: VecDeque::new(),
            waker: None,
            closing: false,
            closed: false,
        }),
        capacity: capacity.max(1),
    });
    (Sender(shared.clone()), Receiver(shared))
}

/// Capacity a drained batch keeps for the next burst; larger ones are given back.
const KEEP: usize = 32;

impl Sender {
    pub(crate) fn push(&self, item: Outgoing) -> Result<(), Rejected> {
        match self.push_below(item, self.0.capacity)? {
            true => Ok(()),
            false => Err(Rejected::Full),
        }
    }

    /// Queues `item` only while the queue is less than half full; `Ok(false)` when it was
    /// dropped because the transport is behind. For volatile events (typing), which are
    /// worth nothing late: the other half stays free for the events that must arrive.
    pub(crate) fn push_volatile(&self, item: Outgoing) -> Result<bool, Rejected> {
        self.push_below(item, self.0.capacity.div_ceil(2))
    }

    /// Queues `item` if the queue holds fewer than `limit` items; `Ok(false)` if not.
    fn push_below(&self, item: Outgoing, limit: usize) -> Result<bool, Rejected> {
        let waker = {
            let mut st = lock(&self.0.state);
            if st.closing || st.closed {
                return Err(Rejected::Closed);
            }
            if st.items.len() >= limit {
                return Ok(false);
            }
            st.items.push_back(item);
            if st.items.len() == 1 {
                st.waker.take()
            } else {
                None
            }
        };
        // Outside the lock, so the woken transport never waits for it.
        if let Some(w) = waker {
            w.wake();
        }
        Ok(true)
    }

    /// Moves items from the front of `items` into the queue while it has room (one lock for
    /// all of them); what does not fit stays in `items`. For a replay, which is paced by the
    /// transport instead of overflowing the queue.
    pub(crate) fn push_some(&self, items: &mut VecDeque<Outgoing>) -> Result<(), Rejected> {
        let waker = {
            let mut st = lock(&self.0.state);
            if st.closing || st.closed {
                return Err(Rejected::Closed);
            }
            let was_empty = st.items.is_empty();
            let room = self.0.capacity.saturating_sub(st.items.len());
            let n = room.min(items.len());
            st.items.extend(items.drain(..n));
            if was_empty && n > 0 {
                st.waker.take()
            } else {
                None
            }
        };
        if let Some(w) = waker {
            w.wake();
        }
        Ok(())
    }

    /// Refuses further items and tells the transport, which sends what is left and ends.
    pub(crate) fn close(&self) {
        let waker = {
            let mut st = lock(&self.0.state);
            st.closing = true;
            st.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }
}

impl std::fmt::Debug for Sender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("queue::Sender")
    }
}

/// What [`Receiver::recv_all`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Recv {
    /// Items, now in the batch.
    Items,
    /// The connection is closing; what is still queued is left for [`Receiver::try_recv_all`].
    Closing,
}

impl Receiver {
    /// Waits until something is queued, then moves everything queued to the back of
    /// `batch`; or until the connection closes.
    pub(crate) async fn recv_all(&mut self, batch: &mut VecDeque<Outgoing>) -> Recv {
        poll_fn(|cx| {
            let mut st = lock(&self.0.state);
            if st.closing {
                return Poll::Ready(Recv::Closing);
            }
            if st.items.is_empty() {
                register(&mut st.waker, cx.waker());
                return Poll::Pending;
            }
            take(&mut st.items, batch);
            Poll::Ready(Recv::Items)
        })
        .await
    }

    /// Waits until the connection closes.
    pub(crate) async fn closing(&self) {
        poll_fn(|cx| {
            let mut st = lock(&self.0.state);
            if st.closing {
                return Poll::Ready(());
            }
            // Pushes wake this too; the transport then polls again and comes back here.
            register(&mut st.waker, cx.waker());
            Poll::Pending
        })
        .await
    }

    /// Moves everything queued to the back of `batch`; false if nothing was.
    pub(crate) fn try_recv_all(&self, batch: &mut VecDeque<Outgoing>) -> bool {
        let mut st = lock(&self.0.state);
        if st.items.is_empty() {
            return false;
        }
        take(&mut st.items, batch);
        true
    }

    /// The oldest queued item, if any (for readers without a transport: `detached`).
    #[cfg(any(test, feature = "detached"))]
    pub fn try_recv(&self) -> Result<Outgoing, Empty> {
        lock(&self.0.state).items.pop_front().ok_or(Empty)
    }
}

/// Returned by [`Receiver::try_recv`] when nothing is queued.
#[cfg(any(test, feature = "detached"))]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Empty;

fn register(slot: &mut Option<Waker>, waker: &Waker) {
    match slot {
        Some(w) if w.will_wake(waker) => {}
        w => *w = Some(waker.clone()),
    }
}

/// Moves `items` into `batch`; swapping when `batch` is empty keeps the copy out of the lock.
fn take(items: &mut VecDeque<Outgoing>, batch: &mut VecDeque<Outgoing>) {
    if batch.is_empty() {
        std::mem::swap(items, batch);
    } else {
        batch.extend(items.drain(..));
    }
}

/// Gives back a drained batch's memory after a large burst.
pub(crate) fn release(batch: &mut VecDeque<Outgoing>) {
    if batch.is_empty() && batch.capacity() > KEEP {
        *batch = VecDeque::new();
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let items = {
            let mut st = lock(&self.0.state);
            st.closed = true;
            st.waker = None;
            std::mem::take(&mut st.items)
        };
        drop(items);
    }
}

impl std::fmt::Debug for Receiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("queue::Receiver")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::socketio::engine::packet::message;
    use std::future::Future;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::{Context, Wake};

    struct Count(AtomicUsize);

    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// A waker that counts its wakes.
    fn counting_waker() -> (Arc<Count>, Waker) {
        let wakes = Arc::new(Count(AtomicUsize::new(0)));
        (wakes.clone(), Waker::from(wakes))
    }

    fn item(n: u8) -> Outgoing {
        Outgoing::Frame(message(&[b'0' + n]))
    }

    #[test]
    fn bounded_in_order_and_one_wake_per_burst() {
        let (tx, mut rx) = queue(3);
        let (wakes, waker) = counting_waker();
        let mut cx = Context::from_waker(&waker);
        let mut batch = VecDeque::new();
        {
            let fut = std::pin::pin!(rx.recv_all(&mut batch));
            assert!(fut.poll(&mut cx).is_pending());
        }
        for n in 0..3 {
            tx.push(item(n)).unwrap();
        }
        assert_eq!(tx.push(item(3)), Err(Rejected::Full));
        assert_eq!(
            wakes.0.load(Ordering::SeqCst),
            1,
            "woken once for the burst"
        );
        assert!(rx.try_recv_all(&mut batch));
        assert_eq!(
            batch
                .iter()
                .map(|i| i.frames()[0].clone())
                .collect::<Vec<_>>(),
            (0..3).map(|n| message(&[b'0' + n])).collect::<Vec<_>>()
        );
        assert!(!rx.try_recv_all(&mut batch));
        tx.push(item(4)).unwrap();
        assert_eq!(
            rx.try_recv().map(|i| i.frames()[0].clone()),
            Ok(message(b"4"))
        );
        assert_eq!(rx.try_recv().map(|_| ()), Err(Empty));
        drop(rx);
        assert_eq!(tx.push(item(5)), Err(Rejected::Closed));
    }

    #[test]
    fn closing_wakes_the_transport_and_keeps_what_was_queued() {
        let (tx, mut rx) = queue(8);
        let (wakes, waker) = counting_waker();
        let mut cx = Context::from_waker(&waker);
        tx.push(item(1)).unwrap();
        let mut batch = VecDeque::new();
        assert!(rx.try_recv_all(&mut batch));
        {
            let fut = std::pin::pin!(rx.closing());
            assert!(fut.poll(&mut cx).is_pending());
        }
        tx.push(item(2)).unwrap();
        tx.close();
        assert_eq!(wakes.0.load(Ordering::SeqCst), 1);
        assert_eq!(tx.push(item(3)), Err(Rejected::Closed));
        {
            let fut = std::pin::pin!(rx.recv_all(&mut batch));
            assert_eq!(fut.poll(&mut cx), Poll::Ready(Recv::Closing));
        }
        batch.clear();
        assert!(rx.try_recv_all(&mut batch));
        assert_eq!(batch.len(), 1, "queued before the close, still sent");
    }

    #[test]
    fn volatile_items_are_dropped_once_half_full_and_replays_fill_what_is_free() {
        let (tx, rx) = queue(4);
        assert_eq!(tx.push_volatile(item(0)), Ok(true));
        assert_eq!(tx.push_volatile(item(1)), Ok(true));
        assert_eq!(tx.push_volatile(item(2)), Ok(false), "behind: dropped");
        tx.push(item(3)).unwrap();
        let mut more: VecDeque<Outgoing> = (4..8).map(item).collect();
        tx.push_some(&mut more).unwrap();
        assert_eq!(more.len(), 3, "one slot was free");
        let mut batch = VecDeque::new();
        assert!(rx.try_recv_all(&mut batch));
        assert_eq!(
            batch
                .iter()
                .map(|i| i.frames()[0].clone())
                .collect::<Vec<_>>(),
            [0, 1, 3, 4].map(|n| message(&[b'0' + n])).to_vec()
        );
        tx.push_some(&mut more).unwrap();
        assert!(more.is_empty());
        drop(rx);
        assert_eq!(tx.push_volatile(item(9)), Err(Rejected::Closed));
    }

    #[test]
    fn large_batches_give_their_memory_back() {
        let mut batch: VecDeque<Outgoing> = (0..100).map(|_| item(0)).collect();
        batch.clear();
        release(&mut batch);
        assert_eq!(batch.capacity(), 0);
    }
}
