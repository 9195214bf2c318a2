//! Synthetic media: frames that carry their own sequence number, so a player
//! can tell exactly what it lost, and the checker that holds players to the
//! drop policy.
//!
//! Payloads are valid FLV tag bodies as far as the server looks (it only
//! classifies them): AVC video (`0x17`/`0x27`, packet type 0 = sequence
//! header, 1 = NALU) and AAC audio (`0xAF`, packet type 0 = sequence header,
//! 1 = raw), followed by a big-endian u32 counter and padding.

use bytes::Bytes;
use tern_core::hub::MediaKind;

/// Milliseconds between frames (25 frames per second).
pub const FRAME_MS: u64 = 40;
/// Frames per group of pictures (a keyframe every second).
pub const GOP: u32 = 25;
/// Bytes of a keyframe payload.
pub const KEY_BYTES: usize = 3_000;
/// Bytes of an inter frame payload.
pub const INTER_BYTES: usize = 500;
/// Bytes of an audio payload.
pub const AUDIO_BYTES: usize = 80;

/// What a synthetic payload is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Frame {
    /// AVC decoder configuration.
    VideoHeader,
    /// A keyframe with its counter.
    Key(u32),
    /// An inter frame with its counter.
    Inter(u32),
    /// AAC decoder configuration.
    AudioHeader,
    /// An audio frame with its counter.
    Audio(u32),
}

impl Frame {
    /// The message kind that carries it.
    pub fn kind(self) -> MediaKind {
        match self {
            Frame::VideoHeader | Frame::Key(_) | Frame::Inter(_) => MediaKind::Video,
            Frame::AudioHeader | Frame::Audio(_) => MediaKind::Audio,
        }
    }

    /// The payload bytes.
    pub fn encode(self) -> Bytes {
        let (head, counter, len): (&[u8], Option<u32>, usize) = match self {
            Frame::VideoHeader => (&[0x17, 0x00, 0, 0, 0, 0x01, 0x64, 0x00, 0x1f], None, 9),
            Frame::Key(n) => (&[0x17, 0x01, 0, 0, 0], Some(n), KEY_BYTES),
            Frame::Inter(n) => (&[0x27, 0x01, 0, 0, 0], Some(n), INTER_BYTES),
            Frame::AudioHeader => (&[0xAF, 0x00, 0x12, 0x10], None, 4),
            Frame::Audio(n) => (&[0xAF, 0x01], Some(n), AUDIO_BYTES),
        };
        let mut out = Vec::with_capacity(len);
        out.extend_from_slice(head);
        if let Some(n) = counter {
            out.extend_from_slice(&n.to_be_bytes());
        }
        out.resize(len.max(out.len()), 0x5A);
        Bytes::from(out)
    }

    /// Reads a payload back (`None`: not one of ours).
    pub fn parse(kind: MediaKind, payload: &[u8]) -> Option<Frame> {
        let counter = |at: usize| {
            payload
                .get(at..at + 4)
                .and_then(|b| <[u8; 4]>::try_from(b).ok())
                .map(u32::from_be_bytes)
        };
        match (kind, payload.first()?, payload.get(1)?) {
            (MediaKind::Video, 0x17, 0x00) => Some(Frame::VideoHeader),
            (MediaKind::Video, 0x17, 0x01) => counter(5).map(Frame::Key),
            (MediaKind::Video, 0x27, 0x01) => counter(5).map(Frame::Inter),
            (MediaKind::Audio, 0xAF, 0x00) => Some(Frame::AudioHeader),
            (MediaKind::Audio, 0xAF, 0x01) => counter(2).map(Frame::Audio),
            _ => None,
        }
    }
}

/// Why a player's media broke the rules.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MediaViolation {
    /// A timestamp went backwards on a frame.
    TimestampBackwards { frame: Frame, ts: u32, after: u32 },
    /// A sequence header came with a timestamp older than what was already
    /// played (a header re-sent after a cut-back with its original stamp).
    HeaderTimestampBackwards { frame: Frame, ts: u32, after: u32 },
    /// A frame came twice or out of order.
    Reordered { frame: Frame, after: u32 },
    /// Video resumed after a gap (or at the start) on an inter frame.
    InterAfterGap { frame: Frame, last: Option<u32> },
    /// A payload that is not ours.
    Unknown { kind: MediaKind, len: usize },
}

impl std::fmt::Display for MediaViolation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MediaViolation::TimestampBackwards { frame, ts, after } => {
                write!(
                    f,
                    "{frame:?} at ts {ts} after ts {after}: timestamp went backwards"
                )
            }
            MediaViolation::HeaderTimestampBackwards { frame, ts, after } => write!(
                f,
                "{frame:?} at ts {ts} after ts {after}: re-sent header carries an old timestamp"
            ),
            MediaViolation::Reordered { frame, after } => {
                write!(
                    f,
                    "{frame:?} after #{after}: delivered twice or out of order"
                )
            }
            MediaViolation::InterAfterGap { frame, last } => match last {
                Some(last) => write!(
                    f,
                    "{frame:?} after #{last}: video resumed after a gap without a keyframe"
                ),
                None => write!(f, "{frame:?}: video started without a keyframe"),
            },
            MediaViolation::Unknown { kind, len } => {
                write!(f, "unknown {kind:?} payload of {len} bytes")
            }
        }
    }
}

/// What one player has seen of one stream, and the rules it checks:
/// timestamps never go backwards; counters only increase; after a gap (or a
/// (re)start) video resumes on a keyframe; audio may have gaps anywhere.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PlayerCheck {
    last_ts: Option<u32>,
    last_video: Option<u32>,
    last_audio: Option<u32>,
    /// Frames (video and audio, headers excluded) received.
    pub frames: u64,
    /// Frames missing between received ones (video and audio).
    pub dropped: u64,
    /// Longest run of missing frames of one kind.
    pub max_gap: u64,
}

impl PlayerCheck {
    /// A new play session, or the publisher changed: counters and
    /// timestamps start over and video must start on a keyframe.
    pub fn restart(&mut self) {
        self.last_ts = None;
        self.last_video = None;
        self.last_audio = None;
    }

    /// Checks one media message.
    pub fn on_media(
        &mut self,
        kind: MediaKind,
        ts: u32,
        payload: &[u8],
    ) -> Result<(), MediaViolation> {
        let Some(frame) = Frame::parse(kind, payload) else {
            return Err(MediaViolation::Unknown {
                kind,
                len: payload.len(),
            });
        };
        let header = matches!(frame, Frame::VideoHeader | Frame::AudioHeader);
        if let Some(after) = self.last_ts
            && ts < after
        {
            return Err(if header {
                MediaViolation::HeaderTimestampBackwards { frame, ts, after }
            } else {
                MediaViolation::TimestampBackwards { frame, ts, after }
            });
        }
        self.last_ts = Some(ts);
        match frame {
            Frame::VideoHeader | Frame::AudioHeader => Ok(()),
            Frame::Key(n) | Frame::Inter(n) => {
                let last = self.last_video;
                if let Some(after) = last
                    && n <= after
                {
                    return Err(MediaViolation::Reordered { frame, after });
                }
                let gap = last.map_or(0, |l| u64::from(n - l - 1));
                if matches!(frame, Frame::Inter(_)) && (last.is_none() || gap > 0) {
                    return Err(MediaViolation::InterAfterGap { frame, last });
                }
                self.count(gap);
                self.last_video = Some(n);
                Ok(())
            }
            Frame::Audio(n) => {
                if let Some(after) = self.last_audio
                    && n <= after
                {
                    return Err(MediaViolation::Reordered { frame, after });
                }
                let gap = self.last_audio.map_or(0, |l| u64::from(n - l - 1));
                self.count(gap);
                self.last_audio = Some(n);
                Ok(())
            }
        }
    }

    fn count(&mut self, gap: u64) {
        self.frames += 1;
        self.dropped += gap;
        self.max_gap = self.max_gap.max(gap);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(p: &mut PlayerCheck, ts: u32, f: Frame) -> Result<(), MediaViolation> {
        p.on_media(f.kind(), ts, &f.encode())
    }

    #[test]
    fn frames_round_trip() {
        for f in [
            Frame::VideoHeader,
            Frame::Key(7),
            Frame::Inter(8),
            Frame::AudioHeader,
            Frame::Audio(9),
        ] {
            assert_eq!(Frame::parse(f.kind(), &f.encode()), Some(f));
        }
        assert_eq!(Frame::Key(1).encode().len(), KEY_BYTES);
    }

    #[test]
    fn gaps_must_resume_on_a_keyframe() {
        let mut p = PlayerCheck::default();
        assert!(matches!(
            feed(&mut p, 0, Frame::Inter(1)),
            Err(MediaViolation::InterAfterGap { last: None, .. })
        ));
        feed(&mut p, 0, Frame::VideoHeader).unwrap();
        feed(&mut p, 40, Frame::Key(1)).unwrap();
        feed(&mut p, 80, Frame::Inter(2)).unwrap();
        feed(&mut p, 80, Frame::Audio(2)).unwrap();
        feed(&mut p, 200, Frame::Audio(5)).unwrap(); // audio gaps are fine
        assert!(matches!(
            feed(&mut p, 240, Frame::Inter(6)),
            Err(MediaViolation::InterAfterGap { last: Some(2), .. })
        ));
        feed(&mut p, 280, Frame::Key(7)).unwrap();
        assert_eq!(p.dropped, 2 + 4);
        assert_eq!(p.max_gap, 4);
        assert!(matches!(
            feed(&mut p, 280, Frame::Key(7)),
            Err(MediaViolation::Reordered { .. })
        ));
        assert!(matches!(
            feed(&mut p, 0, Frame::VideoHeader),
            Err(MediaViolation::HeaderTimestampBackwards { .. })
        ));
        assert!(matches!(
            feed(&mut p, 10, Frame::Key(30)),
            Err(MediaViolation::TimestampBackwards { .. })
        ));
        p.restart();
        feed(&mut p, 0, Frame::Key(1)).unwrap();
    }
}
