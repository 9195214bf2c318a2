//! A connection task's wake-up flag: set by whoever queued something for
//! it (the hub's `Ready` and `Closing` events), awaited by the task.
//!
//! Lighter than `tokio::sync::Notify` for this one-waiter case, and it
//! folds repeated wake-ups: while a wake-up is pending (the task was woken
//! but has not run yet), waking again is one atomic swap. Under fan-out
//! that is most wake-ups.

use std::future::poll_fn;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Waker};

/// See the module docs.
#[derive(Debug, Default)]
pub struct Wakeup {
    pending: AtomicBool,
    waker: Mutex<Option<Waker>>,
}

impl Wakeup {
    /// Marks a wake-up pending and wakes the waiting task, if it is not
    /// already woken.
    pub fn wake(&self) {
        if !self.pending.swap(true, Ordering::AcqRel) {
            let waker = self.lock().take();
            if let Some(waker) = waker {
                waker.wake();
            }
        }
    }

    /// Resolves once a wake-up is pending, and consumes it.
    pub async fn wait(&self) {
        poll_fn(|cx| self.poll_wait(cx)).await;
    }

    fn poll_wait(&self, cx: &mut Context<'_>) -> Poll<()> {
        if self.pending.swap(false, Ordering::AcqRel) {
            return Poll::Ready(());
        }
        {
            let mut slot = self.lock();
            match slot.as_ref() {
                Some(waker) if waker.will_wake(cx.waker()) => {}
                _ => *slot = Some(cx.waker().clone()),
            }
        }
        // A wake() between the first check and storing the waker found no
        // waker to wake: look again.
        if self.pending.swap(false, Ordering::AcqRel) {
            return Poll::Ready(());
        }
        Poll::Pending
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Waker>> {
        // Nothing can panic while the lock is held; a poisoned slot is
        // still a valid slot.
        self.waker
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[tokio::test]
    async fn a_wake_before_the_wait_is_not_lost() {
        let w = Wakeup::default();
        w.wake();
        w.wake();
        tokio::time::timeout(std::time::Duration::from_secs(5), w.wait())
            .await
            .unwrap();
        // Both wakes were folded into the one consumed above.
        let again = tokio::time::timeout(std::time::Duration::from_millis(20), w.wait()).await;
        assert!(again.is_err(), "a consumed wake-up fired twice");
    }

    #[tokio::test]
    async fn a_waiting_task_is_woken_from_another_thread() {
        let w = Arc::new(Wakeup::default());
        let waiter = tokio::spawn({
            let w = Arc::clone(&w);
            async move { w.wait().await }
        });
        tokio::task::yield_now().await;
        let waker = Arc::clone(&w);
        std::thread::spawn(move || waker.wake()).join().unwrap();
        tokio::time::timeout(std::time::Duration::from_secs(5), waiter)
            .await
            .unwrap()
            .unwrap();
    }
}
