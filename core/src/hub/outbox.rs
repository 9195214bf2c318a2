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
//!
//! # Order: notices ahead of media
//! The outbox keeps two lanes and [`pop`](Outbox::pop) empties the first
//! before it touches the second:
//! - the *notice lane*: shared-object notices, connect results, and
//!   stream-bound deliveries ([`Delivery::Status`], `StreamBegin`,
//!   `StreamEof`) whose message stream has nothing queued in the media lane;
//! - the *media lane*: media, the stream-bound deliveries that must stay
//!   behind media of their own message stream (a `NetStream.Play.Stop` or
//!   `StreamEOF` sent ahead of its stream's last frames would end playback
//!   early in clients such as ffmpeg), and the final [`Delivery::Close`],
//!   which stays last.
//!
//! So a chat line never waits behind seconds of queued video, while each
//! lane keeps its own order: media (and everything bound to one message
//! stream) in the order pushed, notices in the order pushed. Only the
//! relative order of the two lanes changes. Bounds and the drop policy are
//! the same as with one queue: the media policy looks only at the media
//! lane, and every non-media delivery, in either lane, counts towards
//! `max_pending_notices`.

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

/// The queue itself: two lanes (see [the module docs](self)).
#[derive(Debug)]
pub struct Outbox {
    /// Deliveries that overtake queued media.
    urgent: VecDeque<Delivery>,
    /// Media, and what must stay behind it.
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
            urgent: VecDeque::new(),
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
        self.urgent.len() + self.queue.len()
    }

    /// True if nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.urgent.is_empty() && self.queue.is_empty()
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

    /// Queues `delivery` whatever the bounds (the final `Close`, which
    /// goes behind everything queued).
    pub fn force_push(&mut self, delivery: Delivery) {
        match &delivery {
            Delivery::Media(m) => self.media_bytes += m.encoded.len(),
            _ => self.notices += 1,
        }
        self.queue.push_back(delivery);
    }

    /// Queues a non-media delivery ahead of queued media (see [the module
    /// docs](self) for what stays behind); never dropped.
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
        let behind_media = match &delivery {
            Delivery::Close { .. } => true,
            _ => stream_of(&delivery).is_some_and(|s| self.media_lane_holds(s)),
        };
        if behind_media {
            self.queue.push_back(delivery);
        } else {
            self.urgent.push_back(delivery);
        }
        PushOutcome::Queued {
            dropped: 0,
            cut_back: false,
        }
    }

    /// True if the media lane holds anything of message stream `stream`
    /// (a stream-bound delivery pushed now must queue behind it).
    fn media_lane_holds(&self, stream: u32) -> bool {
        self.queue.iter().any(|d| match d {
            Delivery::Media(m) => m.stream == stream,
            other => stream_of(other) == Some(stream),
        })
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
        if over(self) && media.priority == MediaPriority::SequenceHeader {
            // Nothing droppable is left: the queue holds sequence headers
            // only, and those of this stream and kind are superseded by
            // this one (no frame that needs them is queued any more).
            // Without this a publisher that repeats its headers to a
            // stalled player grew the queue past its bound.
            dropped += self.drop_where(|m| {
                m.priority == MediaPriority::SequenceHeader
                    && m.stream == media.stream
                    && m.kind == media.kind
            });
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
        self.urgent.front().or_else(|| self.queue.front())
    }

    /// Takes the next delivery to send: the notice lane first, then the
    /// media lane (see [the module docs](self)).
    ///
    /// A lane that drains gives its memory back: all of it after a notice
    /// (an idle connection holds no queue), down to a few slots after media
    /// (a player's join burst does not stay allocated) or when notices
    /// arrive often (a shared-object subscriber); see `queue::QueueUse`.
    pub fn pop(&mut self) -> Option<Delivery> {
        if let Some(delivery) = self.urgent.pop_front() {
            self.notices -= 1;
            if self.urgent.is_empty() {
                self.usage.release(&mut self.urgent, false);
                if self.queue.is_empty() {
                    self.cutbacks = 0;
                }
            }
            return Some(delivery);
        }
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

/// The message stream a stream-bound delivery belongs to.
fn stream_of(delivery: &Delivery) -> Option<u32> {
    match delivery {
        Delivery::Status { stream, .. }
        | Delivery::StreamBegin { stream }
        | Delivery::StreamEof { stream } => Some(*stream),
        Delivery::Media(m) => Some(m.stream),
        _ => None,
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

    /// Found by the hub fuzz target: sequence headers are never dropped as
    /// frames are, so repeated ones to a player that reads nothing passed
    /// the media bound. A newer header of the same stream and kind
    /// supersedes the queued ones once nothing droppable is left.
    #[test]
    fn repeated_sequence_headers_stay_within_the_media_bound() {
        // Cut-backs unlimited: the hub would close this player as too slow
        // after `max_cutbacks`; here the queue must stay bounded until then
        // and after.
        let mut outbox = Outbox::new(OutboxLimits {
            max_cutbacks: u32::MAX,
            ..limits()
        });
        use MediaPriority::SequenceHeader;
        for ts in 0..100 {
            outbox.push_media(media(MediaKind::Audio, SequenceHeader, ts, 1_000));
            outbox.push_media(media(MediaKind::Video, SequenceHeader, ts, 1_500));
            assert!(
                outbox.media_bytes() <= limits().max_media_bytes + 1_500,
                "{} bytes queued at {ts}",
                outbox.media_bytes()
            );
        }
        // What is left ends with the newest of each kind.
        let mut last = [None, None];
        while let Some(d) = outbox.pop() {
            if let Delivery::Media(m) = d {
                last[usize::from(m.kind == MediaKind::Video)] = Some(m.timestamp);
            }
        }
        assert_eq!(last, [Some(99), Some(99)]);
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
        assert_eq!(outbox.urgent.capacity(), 0, "after notices: freed");

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

    fn so_notice(name: &str) -> Delivery {
        use crate::hub::request::SoUpdate;
        Delivery::SharedObject(crate::hub::request::SoDelivery {
            update: alloc::sync::Arc::new(SoUpdate::new(name.into(), false, 1, Vec::new())),
            encoded: Bytes::new(),
        })
    }

    fn label(delivery: &Delivery) -> String {
        match delivery {
            Delivery::Media(m) => alloc::format!("media{}@{}", m.stream, m.timestamp),
            Delivery::SharedObject(so) => alloc::format!("so:{}", so.update.name),
            Delivery::Status { stream, code, .. } => alloc::format!("status{stream}:{code}"),
            Delivery::StreamBegin { stream } => alloc::format!("begin{stream}"),
            Delivery::StreamEof { stream } => alloc::format!("eof{stream}"),
            Delivery::Close { .. } => "close".into(),
            other => alloc::format!("{other:?}"),
        }
    }

    fn drain(outbox: &mut Outbox) -> Vec<String> {
        core::iter::from_fn(|| outbox.pop())
            .map(|d| label(&d))
            .collect()
    }

    fn status(stream: u32, code: &'static str) -> Delivery {
        Delivery::Status {
            stream,
            level: crate::hub::request::Level::Status,
            code,
            description: String::new(),
        }
    }

    #[test]
    fn notices_overtake_queued_media_and_each_lane_keeps_its_order() {
        use MediaKind::Video;
        use MediaPriority::*;
        let mut outbox = Outbox::new(OutboxLimits::default());
        outbox.push_media(media(Video, Key, 0, 100));
        outbox.push(so_notice("a"));
        outbox.push_media(media(Video, Inter, 40, 100));
        outbox.push(so_notice("b"));
        outbox.push_media(media(Video, Inter, 80, 100));
        assert_eq!(outbox.notices(), 2);
        assert_eq!(outbox.front().map(label).as_deref(), Some("so:a"));
        assert_eq!(
            drain(&mut outbox),
            ["so:a", "so:b", "media1@0", "media1@40", "media1@80"]
        );
        assert_eq!((outbox.notices(), outbox.media_bytes()), (0, 0));
    }

    #[test]
    fn stream_bound_deliveries_stay_behind_their_own_streams_media() {
        use MediaKind::Video;
        use MediaPriority::*;
        let mut outbox = Outbox::new(OutboxLimits::default());
        outbox.push_media(media(Video, Key, 0, 100));
        outbox.push_media(media(Video, Inter, 40, 100));
        // Stream 1's end waits for its last frames; stream 2 has nothing
        // queued, so its start overtakes; a notice overtakes too.
        outbox.push(status(1, "NetStream.Play.Stop"));
        outbox.push(Delivery::StreamEof { stream: 1 });
        outbox.push(status(2, "NetStream.Play.Start"));
        outbox.push(so_notice("chat"));
        outbox.force_push(Delivery::Close {
            reason: "bye".into(),
        });
        assert_eq!(
            drain(&mut outbox),
            [
                "status2:NetStream.Play.Start",
                "so:chat",
                "media1@0",
                "media1@40",
                "status1:NetStream.Play.Stop",
                "eof1",
                "close",
            ]
        );
    }

    #[test]
    fn a_stream_bound_delivery_never_overtakes_an_earlier_one_of_its_stream() {
        use MediaKind::Video;
        use MediaPriority::*;
        let mut outbox = Outbox::new(OutboxLimits::default());
        outbox.push_media(media(Video, Key, 0, 100));
        outbox.push(status(1, "NetStream.Play.UnpublishNotify"));
        // The frame ahead of the status leaves; the status is still queued.
        assert_eq!(outbox.pop().map(|d| label(&d)).as_deref(), Some("media1@0"));
        outbox.push(Delivery::StreamEof { stream: 1 });
        assert_eq!(
            drain(&mut outbox),
            ["status1:NetStream.Play.UnpublishNotify", "eof1"]
        );
    }

    #[test]
    fn notices_ahead_of_media_change_neither_the_drop_policy_nor_the_bound() {
        use MediaKind::Video;
        use MediaPriority::*;
        let mut outbox = Outbox::new(limits());
        outbox.push_media(media(Video, Key, 0, 4_000));
        for name in ["a", "b", "c"] {
            outbox.push(so_notice(name));
        }
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
        outbox.push(status(1, "NetStream.Play.Stop"));
        assert_eq!(
            outbox.push(so_notice("d")),
            PushOutcome::Overflow(OverflowReason::Notices { max: 4 }),
            "a status queued behind media counts towards the notice bound"
        );
        assert_eq!(
            drain(&mut outbox),
            [
                "so:a",
                "so:b",
                "so:c",
                "media1@0",
                "media1@80",
                "media1@120",
                "status1:NetStream.Play.Stop"
            ]
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
