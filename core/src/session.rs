//! What a runtime needs of a server-side connection, whatever its protocol.
//!
//! RTMP's [`ServerConnection`](crate::rtmp::ServerConnection) and
//! WebSocket's [`WsConnection`](crate::ws::WsConnection) follow one call
//! order (see [`crate::rtmp`]), so a runtime writes its connection loop once,
//! generic over this trait.

use crate::hub::{Delivery, Request};
use crate::message::Tolerated;
use crate::rtmp::{RtmpError, ServerConnection};
use crate::time::{Duration, Instant};
use crate::ws::{WsConnection, WsError};
use alloc::collections::VecDeque;
use bytes::Bytes;
use core::fmt;

/// Entries an emptied queue that carries a stream (media) keeps allocated.
///
/// A burst (a player's join, a slow socket) may grow a queue to hundreds of
/// entries; that must not stay allocated for the connection's life. Eight
/// holds what one merged write usually carries (100 ms of a 2.5 Mbit/s
/// stream is about seven messages); 16 cost a 1000-player run 1.4 KB of
/// RSS per player (docs/benchmarks.md).
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

/// A server-side protocol connection, driven in the order the
/// [`crate::rtmp`] module documents.
pub trait ServerSession {
    /// Why the connection failed or closed.
    type Error: fmt::Display + fmt::Debug;

    /// Takes bytes read from the socket; `Err` is fatal.
    fn handle_input(&mut self, now: Instant, data: &[u8]) -> Result<(), Self::Error>;
    /// The next request for the hub.
    fn poll_event(&mut self) -> Option<Request>;
    /// Turns a hub delivery into bytes.
    fn handle_delivery(&mut self, now: Instant, delivery: Delivery);
    /// The next bytes for the socket.
    fn poll_transmit(&mut self) -> Option<Bytes>;
    /// Bytes waiting in `poll_transmit` (pull deliveries only while small).
    fn pending_bytes(&self) -> usize;
    /// When `handle_timeout` should run next.
    fn poll_timeout(&self) -> Option<Instant>;
    /// Fires the connection's timers.
    fn handle_timeout(&mut self, now: Instant);
    /// True once the connection should be flushed and closed.
    fn is_closing(&self) -> bool;
    /// Why it closes, when it does.
    fn close_reason(&self) -> Option<&Self::Error>;
    /// True if the close was an orderly one (not worth a warning).
    fn closed_cleanly(&self) -> bool;
    /// What this connection would make of a shared-object notice if it
    /// were handed one now; see [`SharedEncoding`].
    fn shared_encoding(&self) -> SharedEncoding;
    /// The next lenient reading the connection took (a well-framed
    /// request of an unexpected shape it answered anyway); drain after
    /// `handle_input` and log at debug level.
    fn poll_tolerated(&mut self) -> Option<Tolerated>;
}

/// Lenient readings waiting for the runtime's log: at most
/// [`ToleratedLog::MAX`]; more in one go only count (a client repeating
/// the same odd command does not grow memory).
#[derive(Debug, Default)]
pub(crate) struct ToleratedLog {
    queue: VecDeque<Tolerated>,
    dropped: u32,
}

impl ToleratedLog {
    /// Notes kept until drained.
    pub(crate) const MAX: usize = 8;

    pub(crate) fn push(&mut self, note: Tolerated) {
        if self.queue.len() < Self::MAX {
            self.queue.push_back(note);
        } else {
            self.dropped = self.dropped.saturating_add(1);
        }
    }

    pub(crate) fn extend(&mut self, notes: impl IntoIterator<Item = Tolerated>) {
        for note in notes {
            self.push(note);
        }
    }

    /// The next note; after the last one, a summary of those not kept.
    pub(crate) fn pop(&mut self) -> Option<Tolerated> {
        if let Some(note) = self.queue.pop_front() {
            if self.queue.is_empty() {
                self.queue = VecDeque::new();
            }
            return Some(note);
        }
        if self.dropped > 0 {
            let n = core::mem::take(&mut self.dropped);
            return Some(Tolerated::new(
                "(more)",
                alloc::format!("{n} further lenient readings not listed"),
            ));
        }
        None
    }
}

/// How a connection turns shared-object notices into bytes, when that does
/// not depend on the connection's own state: it sends the update's shared
/// encoding as it is ([`SoUpdate::rtmp_chunks`](crate::hub::SoUpdate::rtmp_chunks)
/// on RTMP, [`SoUpdate::ws_text_frames`](crate::hub::SoUpdate::ws_text_frames)
/// on a JSON WebSocket).
///
/// A runtime may then write such a delivery to an idle connection's socket
/// itself, without waking the connection's task: the bytes are the same,
/// and handing the delivery over would not change the connection (its
/// timers run on input only). The value holds only while the connection
/// sits idle with nothing queued; ask again after each use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SharedEncoding {
    /// Every delivery needs the connection (handshake, closing, chat mode).
    #[default]
    None,
    /// An open RTMP connection with this outbound chunk size: a notice whose
    /// payload fits one chunk goes out as the shared encoding.
    Rtmp {
        /// The connection's outbound chunk size.
        out_chunk_size: u32,
    },
    /// An open WebSocket in JSON mode: notices go out as the shared frames.
    WebSocketJson,
}

impl SharedEncoding {
    /// The bytes the connection would send for `delivery`, if they are the
    /// shared encoding (`None`: the connection must handle it itself). An
    /// empty slice means the connection would send nothing.
    pub fn bytes(self, delivery: &Delivery) -> Option<&[Bytes]> {
        let Delivery::SharedObject(update) = delivery else {
            return None;
        };
        match self {
            SharedEncoding::None => None,
            SharedEncoding::Rtmp { out_chunk_size } => {
                // The same test as the connection's own (`handle_delivery`).
                let fits = update.rtmp_payload().len() <= out_chunk_size as usize;
                (fits && !update.rtmp_chunks().is_empty())
                    .then(|| core::slice::from_ref(update.rtmp_chunks()))
            }
            SharedEncoding::WebSocketJson => Some(update.ws_text_frames()),
        }
    }
}

macro_rules! delegate_session {
    ($ty:ty, $error:ty, $clean:expr) => {
        impl ServerSession for $ty {
            type Error = $error;
            fn handle_input(&mut self, now: Instant, data: &[u8]) -> Result<(), $error> {
                <$ty>::handle_input(self, now, data)
            }
            fn poll_event(&mut self) -> Option<Request> {
                <$ty>::poll_event(self)
            }
            fn handle_delivery(&mut self, now: Instant, delivery: Delivery) {
                <$ty>::handle_delivery(self, now, delivery)
            }
            fn poll_transmit(&mut self) -> Option<Bytes> {
                <$ty>::poll_transmit(self)
            }
            fn pending_bytes(&self) -> usize {
                <$ty>::pending_bytes(self)
            }
            fn poll_timeout(&self) -> Option<Instant> {
                <$ty>::poll_timeout(self)
            }
            fn handle_timeout(&mut self, now: Instant) {
                <$ty>::handle_timeout(self, now)
            }
            fn is_closing(&self) -> bool {
                <$ty>::is_closing(self)
            }
            fn close_reason(&self) -> Option<&$error> {
                <$ty>::close_reason(self)
            }
            fn closed_cleanly(&self) -> bool {
                let clean: fn(Option<&$error>) -> bool = $clean;
                clean(<$ty>::close_reason(self))
            }
            fn shared_encoding(&self) -> SharedEncoding {
                <$ty>::shared_encoding(self)
            }
            fn poll_tolerated(&mut self) -> Option<Tolerated> {
                <$ty>::poll_tolerated(self)
            }
        }
    };
}

// RTMP reports a reason only for failures; a hub-requested close has none.
delegate_session!(ServerConnection, RtmpError, |reason| reason.is_none());
delegate_session!(WsConnection, WsError, |reason| matches!(
    reason,
    None | Some(WsError::PeerClosed { .. } | WsError::ServerClosed { .. })
));

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
