//! A live stream: one publisher, its players, and what late joiners need.
//!
//! The stream remembers the metadata, the audio and video sequence headers
//! and (if enabled) the group of pictures since the last keyframe, so a player
//! that joins mid-stream starts with a decodable picture. Payloads are kept as
//! shared [`Bytes`]: nothing is copied per player.

use crate::hub::{ConnId, Encoder, MediaKind, MediaPriority};
use crate::message::media::{AudioTag, VideoFrameType, VideoTag};
use crate::time::Instant;
use alloc::vec::Vec;
use bytes::Bytes;

/// A cached media message.
#[derive(Clone, Debug, PartialEq)]
pub struct CachedMessage {
    /// Audio, video or data.
    pub kind: MediaKind,
    /// Drop priority (also tells keyframes and sequence headers apart).
    pub priority: MediaPriority,
    /// Publisher's timestamp.
    pub timestamp: u32,
    /// Body as the publisher sent it.
    pub payload: Bytes,
}

/// What a media message is and when, apart from its body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MediaStamp {
    /// Audio, video or data.
    pub kind: MediaKind,
    /// Drop priority.
    pub priority: MediaPriority,
    /// Publisher's timestamp.
    pub timestamp: u32,
}

impl MediaStamp {
    /// The message with this stamp and `payload`.
    pub fn with_payload(self, payload: Bytes) -> CachedMessage {
        CachedMessage {
            kind: self.kind,
            priority: self.priority,
            timestamp: self.timestamp,
            payload,
        }
    }
}

impl CachedMessage {
    /// Its kind, priority and timestamp.
    pub fn stamp(&self) -> MediaStamp {
        MediaStamp {
            kind: self.kind,
            priority: self.priority,
            timestamp: self.timestamp,
        }
    }

    /// The same message holding its own copy of the body: a body sliced
    /// from a connection's input buffer would keep that whole buffer alive
    /// for as long as the cache keeps the message.
    fn detached(&self) -> CachedMessage {
        CachedMessage {
            payload: Bytes::copy_from_slice(&self.payload),
            ..*self
        }
    }

    /// The same message stamped `timestamp`: cached metadata and sequence
    /// headers are (re)sent stamped like the frames they precede, so a
    /// player never sees time jump back.
    pub fn restamped(&self, timestamp: u32) -> CachedMessage {
        CachedMessage {
            timestamp,
            ..self.clone()
        }
    }
}

/// A player of the stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Player {
    /// Its connection.
    pub conn: ConnId,
    /// Its message stream id.
    pub stream: u32,
    /// How its media is encoded.
    pub encoder: Encoder,
    /// Sequence headers must be resent before its next keyframe (after a
    /// cut-back dropped frames).
    pub needs_headers: bool,
    /// The player joined before anything was published: its encoder is
    /// set to start at the first message relayed to it
    /// ([`Encoder::starting_at`]).
    pub starts_on_next: bool,
}

/// The publisher.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Publisher {
    /// Its connection.
    pub conn: ConnId,
    /// Its message stream id.
    pub stream: u32,
}

/// Classifies a media body for the drop policy, without copying it, using
/// the message layer's tag parsers (legacy and Enhanced-RTMP headers).
/// Anything unparsable is relayed as an ordinary inter-priority frame.
pub fn classify(kind: MediaKind, payload: &[u8]) -> MediaPriority {
    match kind {
        MediaKind::Data => MediaPriority::Data,
        MediaKind::Audio => match AudioTag::parse(payload) {
            Ok(info) if info.is_sequence_header => MediaPriority::SequenceHeader,
            _ => MediaPriority::Audio,
        },
        MediaKind::Video => match VideoTag::parse(payload) {
            Ok(info) if info.is_sequence_header => MediaPriority::SequenceHeader,
            Ok(info) => match info.frame_type {
                VideoFrameType::Key => MediaPriority::Key,
                VideoFrameType::DisposableInter => MediaPriority::DisposableInter,
                _ => MediaPriority::Inter,
            },
            Err(_) => MediaPriority::Inter,
        },
    }
}

/// A cached GOP message's body: kept once, either as the publisher sent it
/// (while nobody plays) or as the encoding relayed to the first player,
/// which joiners with an equal encoder share.
#[derive(Clone, Debug)]
enum GopBody {
    Payload(Bytes),
    Encoded(Encoder, Bytes),
}

#[derive(Clone, Debug)]
struct GopEntry {
    stamp: MediaStamp,
    body: GopBody,
}

/// One live stream's state.
#[derive(Debug, Default)]
pub struct LiveStream {
    /// Who publishes, if anyone.
    pub publisher: Option<Publisher>,
    /// Who plays, in join order.
    pub players: Vec<Player>,
    /// The last `onMetaData` data message body (`@setDataFrame` stripped).
    pub metadata: Option<CachedMessage>,
    /// The last audio sequence header.
    pub audio_header: Option<CachedMessage>,
    /// The last video sequence header.
    pub video_header: Option<CachedMessage>,
    /// Timestamp of the last message published.
    pub last_timestamp: Option<u32>,
    /// Messages since the last keyframe (keyframe first), if caching. Each
    /// body is held once: as one encoder's encoding when it was relayed or a
    /// joiner needed it (players with that encoder share it), else as the
    /// payload. A GOP at 2.5 Mbit/s is ~625 KB, the largest thing a stream
    /// holds; keeping payload and encoding both would double it.
    gop: Vec<GopEntry>,
    /// Payload bytes in `gop` (what `max_gop_bytes` bounds).
    gop_bytes: usize,
    /// When the publisher last sent a media message (or started), for
    /// `publisher_idle_timeout`.
    pub last_media: Option<Instant>,
    /// Added to the publisher's timestamps before relaying (non-zero after
    /// a takeover, so players see time go on rather than jump back).
    ts_offset: u32,
    /// After a takeover: the relayed timestamp the new publisher's first
    /// message gets (its offset is set from that message).
    rebase_to: Option<u32>,
}

/// Gap between the last relayed message of a replaced publisher and the
/// first one of its successor (about one frame at 10 fps).
pub const TAKEOVER_GAP_MS: u32 = 100;

impl LiveStream {
    /// True if nobody publishes or plays.
    pub fn is_unused(&self) -> bool {
        self.publisher.is_none() && self.players.is_empty()
    }

    /// Messages in the cached group of pictures.
    pub fn gop_len(&self) -> usize {
        self.gop.len()
    }

    /// Kind, priority and timestamp of GOP message `index` (0 is the
    /// keyframe).
    pub fn gop_stamp(&self, index: usize) -> Option<MediaStamp> {
        self.gop.get(index).map(|e| e.stamp)
    }

    /// GOP message `index` encoded by `encoder`: the kept encoding if it is
    /// `encoder`'s; else `encode`'s, which is kept in place of the payload
    /// if only the payload was kept (later joiners with that encoder share
    /// it); joiners with another encoder get their own encoding of the
    /// payload recovered from the kept one. `None` past the end (or if the
    /// kept encoding cannot be read back).
    pub fn gop_encoded(
        &mut self,
        index: usize,
        encoder: Encoder,
        encode: impl FnOnce(&CachedMessage) -> Bytes,
    ) -> Option<Bytes> {
        let entry = self.gop.get_mut(index)?;
        let stamp = entry.stamp;
        match &entry.body {
            GopBody::Encoded(kept, bytes) if *kept == encoder => Some(bytes.clone()),
            GopBody::Encoded(kept, bytes) => {
                let payload = kept.media_body(bytes)?;
                Some(encode(&stamp.with_payload(payload)))
            }
            GopBody::Payload(payload) => {
                let bytes = encode(&stamp.with_payload(payload.clone()));
                entry.body = GopBody::Encoded(encoder, bytes.clone());
                Some(bytes)
            }
        }
    }

    /// Forgets everything about the last publish.
    pub fn reset_media(&mut self) {
        self.metadata = None;
        self.audio_header = None;
        self.video_header = None;
        self.gop.clear();
        self.gop_bytes = 0;
        self.last_timestamp = None;
        self.ts_offset = 0;
        self.rebase_to = None;
    }

    /// Forgets the last publish like [`reset_media`](Self::reset_media), but
    /// for players that stay: the next publisher's timestamps are shifted
    /// to continue [`TAKEOVER_GAP_MS`] after the last relayed one.
    pub fn reset_for_takeover(&mut self) {
        let continue_at = self.last_timestamp.map(|t| t.wrapping_add(TAKEOVER_GAP_MS));
        self.reset_media();
        self.rebase_to = continue_at;
    }

    /// The relayed timestamp of a message the publisher stamped
    /// `timestamp` (the publisher's own unless a takeover shifted it).
    pub fn relay_timestamp(&mut self, timestamp: u32) -> u32 {
        if let Some(base) = self.rebase_to.take() {
            self.ts_offset = base.wrapping_sub(timestamp);
        }
        timestamp.wrapping_add(self.ts_offset)
    }

    /// Remembers what late joiners need from `message`, after it was
    /// relayed: `relayed` is its encoding by one encoder, if it was encoded
    /// (the GOP keeps that instead of a copy of the payload). With
    /// `max_gop_bytes` zero no GOP is cached; a GOP over the bound is
    /// dropped until the next keyframe.
    pub fn remember(
        &mut self,
        message: &CachedMessage,
        relayed: Option<(Encoder, Bytes)>,
        max_gop_bytes: usize,
    ) {
        self.last_timestamp = Some(message.timestamp);
        match (message.kind, message.priority) {
            (MediaKind::Video, MediaPriority::SequenceHeader) => {
                self.video_header = Some(message.detached());
                return;
            }
            (MediaKind::Audio, MediaPriority::SequenceHeader) => {
                self.audio_header = Some(message.detached());
                return;
            }
            _ => {}
        }
        if max_gop_bytes == 0 {
            return;
        }
        if message.kind == MediaKind::Video && message.priority == MediaPriority::Key {
            self.gop.clear();
            self.gop_bytes = 0;
        } else if self.gop.is_empty() {
            // No keyframe seen yet (or the GOP overflowed): nothing to start from.
            return;
        }
        if self.gop_bytes + message.payload.len() > max_gop_bytes {
            self.gop.clear();
            self.gop_bytes = 0;
            return;
        }
        self.gop_bytes += message.payload.len();
        let body = match relayed {
            Some((encoder, bytes)) => GopBody::Encoded(encoder, bytes),
            None => GopBody::Payload(message.detached().payload),
        };
        self.gop.push(GopEntry {
            stamp: message.stamp(),
            body,
        });
    }

    /// Sets the metadata late joiners get first (its own copy: see
    /// `CachedMessage::detached`).
    pub fn set_metadata(&mut self, message: &CachedMessage) {
        self.metadata = Some(message.detached());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(kind: MediaKind, body: &'static [u8]) -> CachedMessage {
        CachedMessage {
            kind,
            priority: classify(kind, body),
            timestamp: 0,
            payload: Bytes::from_static(body),
        }
    }

    #[test]
    fn classification() {
        use MediaPriority::*;
        assert_eq!(classify(MediaKind::Video, &[0x17, 0x00]), SequenceHeader);
        assert_eq!(classify(MediaKind::Video, &[0x17, 0x01]), Key);
        assert_eq!(classify(MediaKind::Video, &[0x27, 0x01]), Inter);
        assert_eq!(classify(MediaKind::Video, &[0x32]), DisposableInter);
        // Enhanced RTMP: 0x80 | frame type 1 << 4 | packet type
        assert_eq!(classify(MediaKind::Video, b"\x90hvc1"), SequenceHeader);
        assert_eq!(classify(MediaKind::Video, b"\x91hvc1"), Key);
        assert_eq!(classify(MediaKind::Video, b"\xa1av01"), Inter);
        assert_eq!(classify(MediaKind::Audio, &[0xAF, 0x00]), SequenceHeader);
        assert_eq!(classify(MediaKind::Audio, &[0xAF, 0x01]), Audio);
        assert_eq!(classify(MediaKind::Audio, b"\x90Opus"), SequenceHeader);
        assert_eq!(classify(MediaKind::Video, &[]), Inter);
    }

    #[test]
    fn gop_starts_at_keyframe_and_is_bounded() {
        let mut s = LiveStream::default();
        s.remember(&msg(MediaKind::Video, &[0x27, 1, 0]), None, 100);
        assert_eq!(s.gop_len(), 0, "no keyframe yet");
        s.remember(&msg(MediaKind::Video, &[0x17, 0]), None, 100);
        assert!(s.video_header.is_some());
        s.remember(&msg(MediaKind::Video, &[0x17, 1, 0, 0]), None, 100);
        s.remember(&msg(MediaKind::Audio, &[0xAF, 1, 0]), None, 100);
        s.remember(&msg(MediaKind::Video, &[0x27, 1, 0]), None, 100);
        assert_eq!(s.gop_len(), 3);
        assert_eq!(s.gop_stamp(0).unwrap().priority, MediaPriority::Key);
        s.remember(&msg(MediaKind::Video, &[0x17, 1]), None, 3);
        assert!(s.gop_len() == 1 && s.gop_bytes == 2);
        s.remember(&msg(MediaKind::Video, &[0x27, 1]), None, 3);
        assert_eq!(s.gop_len(), 0, "over the bound: dropped");
    }

    /// A codec whose encoding is the key's low byte followed by the body:
    /// enough to tell encodings apart and read bodies back.
    #[derive(Debug)]
    struct Tagged;

    impl crate::hub::FanoutCodec for Tagged {
        fn name(&self) -> &'static str {
            "tagged"
        }
        fn encode_media(&self, key: u64, m: &CachedMessage) -> Bytes {
            let mut out = alloc::vec![key as u8];
            out.extend_from_slice(&m.payload);
            Bytes::from(out)
        }
        fn media_body(&self, _key: u64, encoded: &Bytes) -> Option<Bytes> {
            (!encoded.is_empty()).then(|| encoded.slice(1..))
        }
        fn encode_update(&self, _key: u64, _update: &crate::hub::SoUpdate) -> Bytes {
            Bytes::new()
        }
    }

    static TAGGED: Tagged = Tagged;

    fn encode_for(encoder: Encoder, m: &CachedMessage) -> Bytes {
        encoder.encode_media(m)
    }

    #[test]
    fn the_gop_keeps_one_body_and_joiners_with_its_encoder_share_it() {
        let route = Encoder::new(&TAGGED, 1);
        let other = Encoder::new(&TAGGED, 2);
        let mut s = LiveStream::default();
        let key = msg(MediaKind::Video, &[0x17, 1, 0, 0]);
        let inter = msg(MediaKind::Video, &[0x27, 1, 0]);
        // The keyframe was relayed: the GOP keeps that very encoding.
        let relayed = encode_for(route, &key);
        s.remember(&key, Some((route, relayed.clone())), 100);
        // Nobody played the next one: its payload is kept.
        s.remember(&inter, None, 100);
        let encodes = core::cell::Cell::new(0);
        let encode = |r: Encoder| {
            let encodes = &encodes;
            move |m: &CachedMessage| {
                encodes.set(encodes.get() + 1);
                encode_for(r, m)
            }
        };
        let first = s.gop_encoded(0, route, encode(route)).unwrap();
        assert_eq!(first.as_ptr(), relayed.as_ptr(), "the relayed encoding");
        assert_eq!(encodes.get(), 0);
        // The payload is encoded once and replaced by its encoding.
        let a = s.gop_encoded(1, route, encode(route)).unwrap();
        let b = s.gop_encoded(1, route, encode(route)).unwrap();
        assert_eq!(a.as_ptr(), b.as_ptr(), "the same shared bytes");
        assert_eq!(encodes.get(), 1);
        assert!(matches!(s.gop[1].body, GopBody::Encoded(e, _) if e == route));
        // Another encoder gets its own encoding of the recovered payload.
        for index in 0..2 {
            let theirs = s.gop_encoded(index, other, encode(other)).unwrap();
            let expected = encode_for(other, &[&key, &inter][index].clone());
            assert_eq!(theirs, expected);
        }
        assert_eq!(encodes.get(), 3, "once per message for another encoder");
        assert!(s.gop_encoded(2, route, encode(route)).is_none());
    }

    #[test]
    fn cached_bodies_do_not_keep_the_input_buffer_alive() {
        let input = Bytes::from(alloc::vec![0x17u8; 64 * 1024]);
        let header = CachedMessage {
            kind: MediaKind::Video,
            priority: MediaPriority::SequenceHeader,
            timestamp: 0,
            payload: input.slice(0..2),
        };
        let mut s = LiveStream::default();
        s.remember(&header, None, 1 << 20);
        let kept = &s.video_header.as_ref().unwrap().payload;
        assert_eq!(kept.as_ref(), &[0x17, 0x17]);
        let within = input.as_ptr_range();
        assert!(!within.contains(&kept.as_ptr()), "a copy, not a slice");
        let key = CachedMessage {
            priority: MediaPriority::Key,
            payload: input.slice(2..6),
            ..header
        };
        s.remember(&key, None, 1 << 20);
        match &s.gop[0].body {
            GopBody::Payload(p) => assert!(!within.contains(&p.as_ptr())),
            GopBody::Encoded(..) => panic!("nothing was relayed"),
        }
    }
}
