//! A live stream: one publisher, its players, and what late joiners need.
//!
//! The stream remembers the metadata, the audio and video sequence headers
//! and (if enabled) the group of pictures since the last keyframe, so a player
//! that joins mid-stream starts with a decodable picture. Payloads are kept as
//! shared [`Bytes`]: nothing is copied per player.

use crate::hub::{ConnId, MediaKind, MediaPriority, MediaRoute};
use crate::message::media::{AudioTag, VideoFrameType, VideoTag};
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

impl CachedMessage {
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
    /// Its message stream id and chunking.
    pub route: MediaRoute,
    /// Sequence headers must be resent before its next keyframe (after a
    /// cut-back dropped frames).
    pub needs_headers: bool,
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
    /// Messages since the last keyframe (keyframe first), if caching.
    gop: Vec<CachedMessage>,
    /// Per GOP message, its chunks for the route the first joiner that
    /// needed it plays on: a burst of joiners shares one encoding of the
    /// GOP instead of each getting its own copy.
    gop_chunks: Vec<Option<(MediaRoute, Bytes)>>,
    gop_bytes: usize,
}

impl LiveStream {
    /// True if nobody publishes or plays.
    pub fn is_unused(&self) -> bool {
        self.publisher.is_none() && self.players.is_empty()
    }

    /// The cached group of pictures (keyframe first).
    pub fn gop(&self) -> &[CachedMessage] {
        &self.gop
    }

    /// GOP message `index` chunked for `route`: the shared encoding if one
    /// was made for that route, else `encode`'s, kept for the joiners that
    /// follow if none was kept yet (joiners on another route encode their
    /// own).
    pub fn gop_chunks(
        &mut self,
        index: usize,
        route: MediaRoute,
        encode: impl FnOnce(&CachedMessage) -> Bytes,
    ) -> Option<Bytes> {
        let message = self.gop.get(index)?;
        let slot = self.gop_chunks.get_mut(index)?;
        match slot {
            Some((r, chunks)) if *r == route => Some(chunks.clone()),
            Some(_) => Some(encode(message)),
            None => {
                let chunks = encode(message);
                *slot = Some((route, chunks.clone()));
                Some(chunks)
            }
        }
    }

    /// Forgets everything about the last publish.
    pub fn reset_media(&mut self) {
        self.metadata = None;
        self.audio_header = None;
        self.video_header = None;
        self.gop.clear();
        self.gop_chunks.clear();
        self.gop_bytes = 0;
        self.last_timestamp = None;
    }

    /// Remembers what late joiners need from `message`. With `max_gop_bytes`
    /// zero no GOP is cached; a GOP over the bound is dropped until the next
    /// keyframe.
    pub fn remember(&mut self, message: &CachedMessage, max_gop_bytes: usize) {
        self.last_timestamp = Some(message.timestamp);
        match (message.kind, message.priority) {
            (MediaKind::Video, MediaPriority::SequenceHeader) => {
                self.video_header = Some(message.clone());
                return;
            }
            (MediaKind::Audio, MediaPriority::SequenceHeader) => {
                self.audio_header = Some(message.clone());
                return;
            }
            _ => {}
        }
        if max_gop_bytes == 0 {
            return;
        }
        if message.kind == MediaKind::Video && message.priority == MediaPriority::Key {
            self.gop.clear();
            self.gop_chunks.clear();
            self.gop_bytes = 0;
        } else if self.gop.is_empty() {
            // No keyframe seen yet (or the GOP overflowed): nothing to start from.
            return;
        }
        if self.gop_bytes + message.payload.len() > max_gop_bytes {
            self.gop.clear();
            self.gop_chunks.clear();
            self.gop_bytes = 0;
            return;
        }
        self.gop_bytes += message.payload.len();
        self.gop.push(message.clone());
        self.gop_chunks.push(None);
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
        s.remember(&msg(MediaKind::Video, &[0x27, 1, 0]), 100);
        assert!(s.gop().is_empty(), "no keyframe yet");
        s.remember(&msg(MediaKind::Video, &[0x17, 0]), 100);
        assert!(s.video_header.is_some());
        s.remember(&msg(MediaKind::Video, &[0x17, 1, 0, 0]), 100);
        s.remember(&msg(MediaKind::Audio, &[0xAF, 1, 0]), 100);
        s.remember(&msg(MediaKind::Video, &[0x27, 1, 0]), 100);
        assert_eq!(s.gop().len(), 3);
        assert_eq!(s.gop()[0].priority, MediaPriority::Key);
        s.remember(&msg(MediaKind::Video, &[0x17, 1]), 3);
        assert!(s.gop().len() == 1 && s.gop_bytes == 2);
        s.remember(&msg(MediaKind::Video, &[0x27, 1]), 3);
        assert!(s.gop().is_empty(), "over the bound: dropped");
    }

    #[test]
    fn joiners_on_one_route_share_the_gop_encoding() {
        let mut s = LiveStream::default();
        s.remember(&msg(MediaKind::Video, &[0x17, 1, 0, 0]), 100);
        s.remember(&msg(MediaKind::Video, &[0x27, 1, 0]), 100);
        let route = MediaRoute {
            chunk_size: 4096,
            stream_id: 1,
        };
        let other = MediaRoute {
            chunk_size: 128,
            stream_id: 1,
        };
        let encodes = core::cell::Cell::new(0);
        let encode = |m: &CachedMessage| {
            encodes.set(encodes.get() + 1);
            m.payload.clone()
        };
        let first = s.gop_chunks(1, route, encode).unwrap();
        let second = s.gop_chunks(1, route, encode).unwrap();
        assert_eq!(first.as_ptr(), second.as_ptr(), "the same shared bytes");
        let _ = s.gop_chunks(1, other, encode).unwrap();
        let _ = s.gop_chunks(1, other, encode).unwrap();
        assert_eq!(
            encodes.get(),
            3,
            "once for the kept route, each time for another"
        );
        assert!(s.gop_chunks(2, route, encode).is_none());
        s.remember(&msg(MediaKind::Video, &[0x17, 1, 0, 0]), 100);
        let _ = s.gop_chunks(0, route, encode).unwrap();
        assert_eq!(encodes.get(), 4, "a new GOP is encoded anew");
    }
}
