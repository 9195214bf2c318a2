//! A connection's bounded queue of deliveries, with the media drop policy.
//!
//! The hub pushes; the connection's runtime pops when its socket has room. A
//! subscriber that does not read never holds up anyone else: its outbox drops
//! media by priority and, past the bounds, asks the hub to disconnect it.
//!
//! Policy, in order, when a media message would take the queued media past
//! `max_media_bytes`, or the queued media spans more than `max_lag` of
//! timestamps:
//! 1. drop queued disposable inter frames;
//! 2. *cut back*: drop every queued video frame except sequence headers and
//!    skip further video until the next keyframe (the hub resends the
//!    sequence headers before it), so the player resumes on a decodable frame;
//! 3. drop queued audio and data, oldest first.
//!
//! A subscriber that needs more than `max_cutbacks` cut-backs without ever
//! draining its queue in between is behind for good and is disconnected.
//! Non-media deliveries (shared-object notices, statuses) are never dropped,
//! since every subscriber must get every change exactly once; more than
//! `max_pending_notices` of them queued means the subscriber is gone for good,
//! and it is disconnected.

use super::request::{Delivery, MediaDelivery, MediaKind, MediaPriority};
use alloc::collections::VecDeque;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

/// Bounds of one outbox.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutboxLimits {
    /// Queued media bytes before dropping starts.
    pub max_media_bytes: usize,
    /// Largest span of queued media timestamps (ms) before a cut-back.
    pub max_lag_ms: u32,
    /// Cut-backs without draining before the subscriber is disconnected.
    pub max_cutbacks: u32,
    /// Queued non-media deliveries before the subscriber is disconnected.
    pub max_pending_notices: usize,
}

impl Default for OutboxLimits {
    fn default() -> Self {
        OutboxLimits {
            max_media_bytes: 2 * 1024 * 1024,
            max_lag_ms: 5_000,
            max_cutbacks: 4,
            max_pending_notices: 4096,
        }
    }
}

/// What happened to a pushed delivery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PushOutcome {
    /// Queued; `dropped` older or newer media messages were dropped to fit.
    Queued { dropped: u32, cut_back: bool },
    /// The media message itself was dropped (waiting for a keyframe).
    Skipped,
    /// The subscriber is too far behind and must be disconnected.
    Overflow(OverflowReason),
}

/// Why an outbox gave up on its subscriber.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OverflowReason {
    /// Too many shared-object/status deliveries unread.
    Notices { max: usize },
    /// Cut back too many times without catching up.
    Lagging { cutbacks: u32 },
}

impl fmt::Display for OverflowReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OverflowReason::Notices { max } => {
                write!(f, "more than {max} undelivered notifications queued")
            }
            OverflowReason::Lagging { cutbacks } => write!(
                f,
                "stayed behind the live stream through {cutbacks} cut-backs"
            ),
        }
    }
}

/// The queue itself.
#[derive(Debug)]
pub struct Outbox {
    queue: VecDeque<Delivery>,
    limits: OutboxLimits,
    media_bytes: usize,
    notices: usize,
    /// Message streams whose video is skipped until their next keyframe
    /// (a handful at most: one per stream the connection plays).
    awaiting_keyframe: Vec<u32>,
    /// Cut-backs since the queue last drained.
    cutbacks: u32,
    /// Media messages dropped over the outbox's life.
    dropped_total: u64,
    /// Set once the outbox gave up; pushes are then ignored.
    closed: Option<String>,
}

impl Outbox {
    /// An empty outbox.
    pub fn new(limits: OutboxLimits) -> Self {
        Outbox {
            queue: VecDeque::new(),
            limits,
            media_bytes: 0,
            notices: 0,
            awaiting_keyframe: Vec::new(),
            cutbacks: 0,
            dropped_total: 0,
            closed: None,
        }
    }

    /// Number of queued deliveries.
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// True if nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Bytes of queued media.
    pub fn media_bytes(&self) -> usize {
        self.media_bytes
    }

    /// Media messages dropped so far.
    pub fn dropped_total(&self) -> u64 {
        self.dropped_total
    }

    /// True while video of message stream `stream` is skipped until its
    /// next keyframe (after joining or after a cut-back).
    pub fn awaiting_keyframe(&self, stream: u32) -> bool {
        self.awaiting_keyframe.contains(&stream)
    }

    /// Skips video of `stream` until its next keyframe (a player that joins
    /// without a cached GOP must not start on an inter frame).
    pub fn await_keyframe(&mut self, stream: u32) {
        if !self.awaiting_keyframe.contains(&stream) {
            self.awaiting_keyframe.push(stream);
        }
    }

    /// Queues `delivery` whatever the bounds (the final `Close`).
    pub fn force_push(&mut self, delivery: Delivery) {
        match &delivery {
            Delivery::Media(m) => self.media_bytes += m.chunks.len(),
            _ => self.notices += 1,
        }
        self.queue.push_back(delivery);
    }

    /// Queues a non-media delivery; never dropped.
    pub fn push(&mut self, delivery: Delivery) -> PushOutcome {
        if let Delivery::Media(media) = delivery {
            return self.push_media(media);
        }
        if self.notices >= self.limits.max_pending_notices {
            return PushOutcome::Overflow(OverflowReason::Notices {
                max: self.limits.max_pending_notices,
            });
        }
        self.notices += 1;
        self.queue.push_back(delivery);
        PushOutcome::Queued {
            dropped: 0,
            cut_back: false,
        }
    }

    /// Queues a media message under the drop policy.
    pub fn push_media(&mut self, media: MediaDelivery) -> PushOutcome {
        let is_video = media.kind == MediaKind::Video;
        if is_video && media.priority == MediaPriority::Key {
            self.awaiting_keyframe.retain(|s| *s != media.stream);
        } else if is_video
            && media.priority != MediaPriority::SequenceHeader
            && self.awaiting_keyframe(media.stream)
        {
            self.dropped_total += 1;
            return PushOutcome::Skipped;
        }
        let mut dropped = 0;
        let mut cut_back = false;
        let incoming = media.chunks.len();
        let over = |o: &Outbox| o.media_bytes + incoming > o.limits.max_media_bytes;
        let lagging = self.lag_with(media.timestamp) > self.limits.max_lag_ms;
        if lagging || over(self) {
            dropped += self.drop_where(|m| m.priority == MediaPriority::DisposableInter);
        }
        if lagging || over(self) {
            // Cut back: every queued picture goes; each stream resumes at its
            // next keyframe (this one, if it is a keyframe).
            let mut cut_streams: Vec<u32> = Vec::new();
            dropped += self.drop_where(|m| {
                let cut = m.kind == MediaKind::Video && m.priority != MediaPriority::SequenceHeader;
                if cut && !cut_streams.contains(&m.stream) {
                    cut_streams.push(m.stream);
                }
                cut
            });
            if !(is_video && media.priority == MediaPriority::Key) {
                cut_streams.push(media.stream);
            }
            for stream in cut_streams {
                self.await_keyframe(stream);
            }
            cut_back = true;
            self.cutbacks += 1;
            if self.cutbacks > self.limits.max_cutbacks {
                return PushOutcome::Overflow(OverflowReason::Lagging {
                    cutbacks: self.cutbacks,
                });
            }
        }
        while over(self) && self.drop_oldest_media() {
            dropped += 1;
        }
        if is_video
            && media.priority != MediaPriority::Key
            && media.priority != MediaPriority::SequenceHeader
            && self.awaiting_keyframe(media.stream)
        {
            self.dropped_total += 1;
            return PushOutcome::Skipped;
        }
        self.media_bytes += incoming;
        self.queue.push_back(Delivery::Media(media));
        PushOutcome::Queued { dropped, cut_back }
    }

    /// Takes the next delivery to send.
    pub fn pop(&mut self) -> Option<Delivery> {
        let delivery = self.queue.pop_front()?;
        match &delivery {
            Delivery::Media(m) => self.media_bytes -= m.chunks.len(),
            _ => self.notices -= 1,
        }
        if self.queue.is_empty() {
            self.cutbacks = 0;
        }
        Some(delivery)
    }

    /// Marks the outbox as given up; later pushes are ignored by the hub.
    pub fn close(&mut self, reason: String) {
        self.closed = Some(reason);
    }

    /// The reason the outbox gave up, if it did.
    pub fn closed(&self) -> Option<&str> {
        self.closed.as_deref()
    }

    /// Timestamp span of queued media if `newest` were added. Timestamps that
    /// went backwards (a wrapped span over 2^31) count as no lag.
    fn lag_with(&self, newest: u32) -> u32 {
        let oldest = self.queue.iter().find_map(|d| match d {
            Delivery::Media(m) => Some(m.timestamp),
            _ => None,
        });
        match oldest.map(|oldest| newest.wrapping_sub(oldest)) {
            Some(span) if span <= u32::MAX / 2 => span,
            _ => 0,
        }
    }

    /// Drops queued media matching `pred`; returns how many.
    fn drop_where(&mut self, mut pred: impl FnMut(&MediaDelivery) -> bool) -> u32 {
        let mut dropped = 0u32;
        let mut freed = 0usize;
        self.queue.retain(|d| match d {
            Delivery::Media(m) if pred(m) => {
                dropped += 1;
                freed += m.chunks.len();
                false
            }
            _ => true,
        });
        self.media_bytes -= freed;
        self.dropped_total += u64::from(dropped);
        dropped
    }

    /// Drops the oldest droppable media message; false if none is left.
    fn drop_oldest_media(&mut self) -> bool {
        let position = self.queue.iter().position(
            |d| matches!(d, Delivery::Media(m) if m.priority != MediaPriority::SequenceHeader),
        );
        let Some(index) = position else { return false };
        if let Some(Delivery::Media(m)) = self.queue.remove(index) {
            self.media_bytes -= m.chunks.len();
            self.dropped_total += 1;
        }
        true
    }
}
