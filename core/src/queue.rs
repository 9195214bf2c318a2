//! Queues that give their memory back.
//!
//! A server holds thousands of mostly idle connections; every queue a
//! connection or its outbox owns follows the policy here, so an idle
//! connection holds no queue buffer and a busy one does not allocate per
//! item.

use crate::time::{Duration, Instant};
use alloc::collections::VecDeque;

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
}
