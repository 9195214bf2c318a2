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

use super::fanout::Encoder;
use super::request::{Delivery, MediaDelivery, MediaKind, MediaPriority};
use crate::queue::QueueUse;
use crate::time::Instant;
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
    /// How often the queue is refilled (whether it keeps slots when it
    /// drains of notices).
    usage: QueueUse,
    /// How the subscriber's shared-object notices are encoded.
    notices_encoder: Option<Encoder>,
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
            usage: QueueUse::default(),
            notices_encoder: None,
        }
    }

    /// How the subscriber's shared-object notices are encoded (`None`: the
    /// connection renders them itself).
    pub fn notices_encoder(&self) -> Option<Encoder> {
        self.notices_encoder
    }

    /// Sets [`notices_encoder`](Self::notices_encoder) (at connect).
    pub(super) fn set_notices_encoder(&mut self, encoder: Option<Encoder>) {
        self.notices_encoder = encoder;
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

    /// Queued non-media deliveries (notices, statuses, the final close):
    /// what a runtime that merges media writes must send at once.
    pub fn notices(&self) -> usize {
        self.notices
    }

    /// True if what is queued may wait to be merged with what comes next:
    /// only media, less than `max_bytes` of it, and the outbox is still
    /// open. Notices, statuses and the final close never wait.
    pub fn may_wait(&self, max_bytes: usize) -> bool {
        !self.is_empty()
            && self.notices == 0
            && self.media_bytes < max_bytes
            && self.closed.is_none()
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
            Delivery::Media(m) => self.media_bytes += m.encoded.len(),
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
        let incoming = media.encoded.len();
        let over = |o: &Outbox| o.media_bytes + incoming > o.limits.max_media_bytes;
        if self.lag_with(media.timestamp) > self.limits.max_lag_ms {
            // Behind in time: everything timed goes, audio too, so the
            // player resumes live (at the next keyframe).
            dropped += self.cut_back(&media, true);
            cut_back = true;
        } else if over(self) {
            dropped += self.drop_where(|m| m.priority == MediaPriority::DisposableInter);
            if over(self) {
                dropped += self.cut_back(&media, false);
                cut_back = true;
            }
        }
        if cut_back {
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

    /// Notes that the empty queue gets a delivery at `now` (see
    /// [`QueueUse`]).
    pub(crate) fn note_refill(&mut self, now: Instant) {
        self.usage.refill(now);
    }

    /// The next delivery [`pop`](Self::pop) would take.
    pub fn front(&self) -> Option<&Delivery> {
        self.queue.front()
    }

    /// Takes the next delivery to send.
    ///
    /// A queue that drains gives its memory back: all of it after a notice
    /// (an idle connection holds no queue), down to a few slots after media
    /// (a player's join burst does not stay allocated) or when notices
    /// arrive often (a shared-object subscriber); see `queue::QueueUse`.
    pub fn pop(&mut self) -> Option<Delivery> {
        let delivery = self.queue.pop_front()?;
        let media = match &delivery {
            Delivery::Media(m) => {
                self.media_bytes -= m.encoded.len();
                true
            }
            _ => {
                self.notices -= 1;
                false
            }
        };
        if self.queue.is_empty() {
            self.cutbacks = 0;
            self.usage.release(&mut self.queue, media);
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

    /// Drops every queued picture (and, with `audio`, every audio frame) but
    /// sequence headers; each cut stream resumes at its next keyframe (the
    /// incoming message, if it is one). Returns how many were dropped.
    fn cut_back(&mut self, incoming: &MediaDelivery, audio: bool) -> u32 {
        let mut cut_streams: Vec<u32> = Vec::new();
        let dropped = self.drop_where(|m| {
            let timed = m.kind == MediaKind::Video || (audio && m.kind == MediaKind::Audio);
            let cut = timed && m.priority != MediaPriority::SequenceHeader;
            if cut && m.kind == MediaKind::Video && !cut_streams.contains(&m.stream) {
                cut_streams.push(m.stream);
            }
            cut
        });
        if !(incoming.kind == MediaKind::Video && incoming.priority == MediaPriority::Key) {
            cut_streams.push(incoming.stream);
        }
        for stream in cut_streams {
            self.await_keyframe(stream);
        }
        dropped
    }

    /// Timestamp span of queued audio/video frames if `newest` were added.
    /// Sequence headers and data (metadata) are configuration, not timeline:
    /// a late joiner's burst starts with them at their old timestamps.
    /// Timestamps that went backwards (a wrapped span over 2^31) count as no
    /// lag.
    fn lag_with(&self, newest: u32) -> u32 {
        let oldest = self.queue.iter().find_map(|d| match d {
            Delivery::Media(m)
                if m.kind != MediaKind::Data && m.priority != MediaPriority::SequenceHeader =>
            {
                Some(m.timestamp)
            }
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
                freed += m.encoded.len();
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
            self.media_bytes -= m.encoded.len();
            self.dropped_total += 1;
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn media(
        kind: MediaKind,
        priority: MediaPriority,
        timestamp: u32,
        len: usize,
    ) -> MediaDelivery {
        MediaDelivery {
            stream: 1,
            kind,
            priority,
            timestamp,
            encoded: Bytes::from(alloc::vec![0u8; len]),
        }
    }

    fn limits() -> OutboxLimits {
        OutboxLimits {
            max_media_bytes: 10_000,
            max_lag_ms: 5_000,
            max_cutbacks: 2,
            max_pending_notices: 4,
        }
    }

    #[test]
    fn a_late_joiners_burst_is_not_lag() {
        // Metadata and sequence headers carry the stream's first timestamps;
        // the GOP that follows is seconds later.
        let mut outbox = Outbox::new(limits());
        use MediaKind::Video;
        use MediaPriority::*;
        outbox.push_media(media(MediaKind::Data, MediaPriority::Data, 0, 10));
        outbox.push_media(media(Video, SequenceHeader, 0, 10));
        outbox.push_media(media(MediaKind::Audio, SequenceHeader, 0, 10));
        for (i, ts) in (6_000..9_000).step_by(40).enumerate() {
            let p = if i == 0 { Key } else { Inter };
            let outcome = outbox.push_media(media(Video, p, ts, 50));
            assert_eq!(
                outcome,
                PushOutcome::Queued {
                    dropped: 0,
                    cut_back: false
                },
                "at {ts}"
            );
        }
    }

    #[test]
    fn lag_cuts_back_audio_and_video_and_resumes_at_a_keyframe() {
        let mut outbox = Outbox::new(limits());
        use MediaKind::Video;
        use MediaPriority::*;
        outbox.push_media(media(Video, SequenceHeader, 0, 10));
        outbox.push_media(media(Video, Key, 0, 100));
        outbox.push_media(media(MediaKind::Audio, MediaPriority::Audio, 10, 10));
        outbox.push_media(media(Video, Inter, 4_000, 100));
        let outcome = outbox.push_media(media(Video, Inter, 5_100, 100));
        assert_eq!(
            outcome,
            PushOutcome::Skipped,
            "cut back; an inter frame cannot resume"
        );
        assert_eq!(outbox.len(), 1, "only the sequence header is left");
        assert!(outbox.awaiting_keyframe(1));
        assert_eq!(
            outbox.push_media(media(Video, Inter, 5_140, 100)),
            PushOutcome::Skipped
        );
        assert!(matches!(
            outbox.push_media(media(Video, Key, 5_180, 100)),
            PushOutcome::Queued { .. }
        ));
        assert!(!outbox.awaiting_keyframe(1));
    }

    #[test]
    fn over_budget_drops_disposable_frames_first() {
        let mut outbox = Outbox::new(limits());
        use MediaKind::Video;
        use MediaPriority::*;
        outbox.push_media(media(Video, Key, 0, 4_000));
        outbox.push_media(media(Video, DisposableInter, 40, 3_000));
        outbox.push_media(media(Video, Inter, 80, 2_000));
        let outcome = outbox.push_media(media(Video, Inter, 120, 2_000));
        assert_eq!(
            outcome,
            PushOutcome::Queued {
                dropped: 1,
                cut_back: false
            }
        );
        assert_eq!(outbox.media_bytes(), 8_000);
    }

    #[test]
    fn only_open_media_below_the_bound_may_wait() {
        use MediaKind::Video;
        use MediaPriority::*;
        let mut outbox = Outbox::new(OutboxLimits::default());
        assert!(!outbox.may_wait(100), "nothing queued: nothing to hold");
        outbox.push_media(media(Video, Key, 0, 10));
        assert!(outbox.may_wait(100));
        assert!(!outbox.may_wait(10), "at the bound: write now");
        outbox.push(Delivery::StreamBegin { stream: 1 });
        assert!(!outbox.may_wait(100), "a notice never waits");
        while outbox.pop().is_some() {}
        outbox.push_media(media(Video, Key, 40, 10));
        outbox.close("gone".into());
        assert!(!outbox.may_wait(100), "a closed outbox is flushed");
    }

    #[test]
    fn notices_are_never_dropped_but_bounded() {
        let mut outbox = Outbox::new(limits());
        for _ in 0..4 {
            let close = Delivery::StreamEof { stream: 1 };
            assert!(matches!(outbox.push(close), PushOutcome::Queued { .. }));
        }
        assert_eq!(
            outbox.push(Delivery::StreamEof { stream: 1 }),
            PushOutcome::Overflow(OverflowReason::Notices { max: 4 })
        );
    }

    #[test]
    fn a_drained_queue_gives_its_memory_back() {
        let mut outbox = Outbox::new(OutboxLimits::default());
        outbox.push(Delivery::StreamBegin { stream: 1 });
        while outbox.pop().is_some() {}
        assert_eq!(outbox.queue.capacity(), 0, "after notices: freed");

        use MediaKind::Video;
        use MediaPriority::*;
        outbox.push_media(media(Video, Key, 0, 10));
        for ts in 1..200 {
            outbox.push_media(media(Video, Inter, ts, 10));
        }
        while outbox.pop().is_some() {}
        let kept = outbox.queue.capacity();
        assert!(
            kept > 0 && kept <= crate::queue::KEEP_QUEUED,
            "after a burst of media: {kept}"
        );
    }

    #[test]
    fn repeated_cut_backs_without_draining_give_up() {
        let mut outbox = Outbox::new(limits());
        use MediaKind::Video;
        use MediaPriority::*;
        let mut ts = 0;
        let mut outcome = PushOutcome::Skipped;
        for _ in 0..10 {
            outbox.push_media(media(Video, Key, ts, 100));
            outcome = outbox.push_media(media(Video, Key, ts + 6_000, 100));
            if matches!(outcome, PushOutcome::Overflow(_)) {
                break;
            }
            ts += 12_000;
        }
        assert_eq!(
            outcome,
            PushOutcome::Overflow(OverflowReason::Lagging { cutbacks: 3 })
        );
    }
}
