//! Queues that give their memory back.
//!
//! A server holds thousands of mostly idle connections; every queue a
//! connection or its outbox owns follows the policy here, so an idle
//! connection holds no queue buffer and a busy one does not allocate per
//! item.

use crate::time::{Duration, Instant};
use alloc::collections::VecDeque;
use bytes::Bytes;

/// Entries an emptied queue that carries a stream (media) keeps allocated.
///
/// A burst (a player's join, a slow socket) may grow a queue to hundreds of
/// entries; that must not stay allocated for the connection's life. Eight
/// holds what one merged write usually carries (100 ms of a 2.5 Mbit/s
/// stream is about seven messages); what larger values cost in memory per
/// player is in docs/memory.md.
pub(crate) const KEEP_QUEUED: usize = 8;

/// Gives back the memory of a queue that just emptied.
///
/// A server holds thousands of idle connections, so a queue that only
/// carries occasional items (commands, notices, control) is freed entirely:
/// an idle connection then holds no queue buffer at all. A queue that
/// carries a stream (`streaming`: media went through it since it last
/// emptied) would be allocated again at once, so it keeps up to
/// [`KEEP_QUEUED`] entries and no more.
pub(crate) fn release_queue<T>(queue: &mut VecDeque<T>, streaming: bool) {
    if !queue.is_empty() {
        return;
    }
    if !streaming {
        *queue = VecDeque::new();
    } else if queue.capacity() > KEEP_QUEUED {
        queue.shrink_to(KEEP_QUEUED);
    }
}

/// Refills this close to the previous one make a queue busy.
pub(crate) const BUSY_WITHIN: Duration = Duration::from_secs(1);

/// How often a queue of occasional items (notices) is refilled: one that is
/// refilled again within [`BUSY_WITHIN`] (a shared-object subscriber getting
/// a stream of changes) keeps a few slots when it drains, so each change
/// does not allocate and free its queue again; an idle connection's queue is
/// still freed when it drains (its last refill was long ago). A busy queue
/// that goes quiet keeps its slots until it next drains — after its next,
/// then cold, refill.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct QueueUse {
    last_refill: Option<Instant>,
    busy: bool,
}

impl QueueUse {
    /// Notes that the (empty) queue gets an item at `now`.
    pub(crate) fn refill(&mut self, now: Instant) {
        self.busy = self
            .last_refill
            .is_some_and(|last| now.saturating_since(last) < BUSY_WITHIN);
        self.last_refill = Some(now);
    }

    /// Gives back the memory of `queue` if it just emptied: as
    /// [`release_queue`], but a busy queue keeps [`KEEP_QUEUED`] slots.
    pub(crate) fn release<T>(&self, queue: &mut VecDeque<T>, streaming: bool) {
        release_queue(queue, streaming || self.busy);
    }
}

/// The bytes a connection has for its socket, in order, with their total
/// and the memory policy above (a [`QueueUse`] on the refills): the
/// transmit queue of the FLV and WebSocket connections. Call order:
/// [`note_delivery`](Self::note_delivery) when a hub delivery arrives
/// (before it queues anything), [`push`](Self::push) per piece,
/// [`pop`](Self::pop) from the connection's `poll_transmit`.
#[derive(Debug, Default)]
pub(crate) struct OutputQueue {
    items: VecDeque<Bytes>,
    /// How often deliveries refill the queue.
    usage: QueueUse,
    /// The bytes in `items`.
    pending: usize,
    /// Whether the queue carries a stream (see [`release_queue`]).
    streaming: bool,
}

impl OutputQueue {
    /// An empty queue; `streaming` for one that carries media.
    pub(crate) fn new(streaming: bool) -> Self {
        OutputQueue {
            streaming,
            ..OutputQueue::default()
        }
    }

    /// Notes a delivery at `now`: a refill if the queue is empty.
    pub(crate) fn note_delivery(&mut self, now: Instant) {
        if self.items.is_empty() {
            self.usage.refill(now);
        }
    }

    /// Queues `bytes` after what is queued.
    pub(crate) fn push(&mut self, bytes: Bytes) {
        self.pending = self.pending.saturating_add(bytes.len());
        self.items.push_back(bytes);
    }

    /// The oldest queued bytes; the queue's memory is given back when this
    /// empties it.
    pub(crate) fn pop(&mut self) -> Option<Bytes> {
        let bytes = self.items.pop_front()?;
        self.pending = self.pending.saturating_sub(bytes.len());
        self.usage.release(&mut self.items, self.streaming);
        Some(bytes)
    }

    /// Bytes queued.
    pub(crate) fn pending_bytes(&self) -> usize {
        self.pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_emptied_queue_is_freed_or_bounded() {
        let mut queue: VecDeque<u32> = (0..100).collect();
        release_queue(&mut queue, false);
        assert!(queue.capacity() >= 100, "a queue with items is left alone");
        queue.clear();
        release_queue(&mut queue, true);
        assert!(queue.capacity() <= KEEP_QUEUED, "a streaming queue shrinks");
        assert!(queue.capacity() > 0, "but keeps some room");
        release_queue(&mut queue, false);
        assert_eq!(queue.capacity(), 0, "an occasional queue is freed");
    }

    #[test]
    fn a_queue_refilled_often_keeps_its_slots_an_idle_one_does_not() {
        let mut usage = QueueUse::default();
        let mut queue: VecDeque<u32> = VecDeque::new();
        let mut cycle = |usage: &mut QueueUse, at: u64| {
            usage.refill(Instant::from_millis(at));
            queue.push_back(1);
            queue.pop_front();
            usage.release(&mut queue, false);
            queue.capacity()
        };
        assert_eq!(cycle(&mut usage, 0), 0, "first item: freed");
        assert!(cycle(&mut usage, 500) > 0, "again within 1 s: kept");
        assert!(cycle(&mut usage, 900) > 0);
        assert_eq!(cycle(&mut usage, 5_000), 0, "after a quiet spell: freed");
    }

    #[test]
    fn output_queue_counts_bytes_in_order_and_gives_memory_back() {
        for streaming in [false, true] {
            let mut q = OutputQueue::new(streaming);
            q.note_delivery(Instant::from_millis(0));
            for i in 0..20u8 {
                q.push(Bytes::from(alloc::vec![i; usize::from(i) + 1]));
            }
            assert_eq!(q.pending_bytes(), (1..=20).sum::<usize>());
            assert_eq!(q.pop().map(|b| b.len()), Some(1));
            assert_eq!(q.pending_bytes(), (2..=20).sum::<usize>());
            while q.pop().is_some() {}
            assert_eq!(q.pending_bytes(), 0);
            let kept = q.items.capacity();
            if streaming {
                assert!(kept > 0 && kept <= KEEP_QUEUED, "{kept}");
            } else {
                assert_eq!(kept, 0, "an idle connection's queue is freed");
            }
        }
    }
}
