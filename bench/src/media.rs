//! A synthetic live stream that looks like H.264 + AAC to a server: an AVC
//! sequence header, a keyframe every `gop` (much larger than the inter
//! frames), 25 fps video, AAC-like audio in 1024-sample frames at 44.1 kHz,
//! at a chosen total bitrate.
//!
//! Servers never look inside NAL units, so the bodies are filler; what
//! matters is the FLV tag headers, the sizes and the pacing. Every frame
//! carries, right after its tag header, the moment it was due (µs on the
//! load tool's clock) and a per-kind sequence number, so a player can
//! measure how far behind the publisher it is and how many frames it lost
//! by reading 12 bytes, without parsing anything else.

use bytes::{BufMut, Bytes, BytesMut};
use tern_core::amf0::{self, Value};

/// Video frames per second.
pub const FPS: u32 = 25;
/// AAC samples per frame.
pub const AUDIO_FRAME_SAMPLES: u64 = 1024;
/// Audio sample rate.
pub const SAMPLE_RATE: u64 = 44_100;
/// Bytes before the stamp in a video body: frame/codec, AVC packet type,
/// composition time.
const VIDEO_HEADER: usize = 5;
/// Bytes before the stamp in an audio body: format byte, AAC packet type.
const AUDIO_HEADER: usize = 2;
/// Stamp: due time (u64 µs), sequence number (u32) and send time (u64 µs),
/// big-endian.
pub const STAMP_LEN: usize = 20;

/// What a stream looks like.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StreamSpec {
    /// Total bitrate (audio + video), bits per second.
    pub bitrate: u64,
    /// Audio share of it, bits per second.
    pub audio_bitrate: u64,
    /// Seconds between keyframes.
    pub gop_secs: u32,
    /// How many times larger a keyframe is than an average inter frame.
    pub keyframe_ratio: u32,
}

impl StreamSpec {
    /// A stream of `bitrate` bits/s: 64 kbit/s audio below 1 Mbit/s, else
    /// 128 kbit/s; a keyframe every 2 s, ten times an inter frame.
    pub fn new(bitrate: u64) -> Self {
        let audio_bitrate = if bitrate < 1_000_000 { 64_000 } else { 128_000 };
        StreamSpec {
            bitrate,
            audio_bitrate: audio_bitrate.min(bitrate / 2),
            gop_secs: 2,
            keyframe_ratio: 10,
        }
    }

    /// Frames in one group of pictures.
    pub fn gop_frames(&self) -> u32 {
        FPS * self.gop_secs
    }

    /// Average inter-frame size in bytes (keyframes are `keyframe_ratio`
    /// times this), at least big enough for the tag header and the stamp.
    pub fn inter_bytes(&self) -> usize {
        let video_bits = self.bitrate.saturating_sub(self.audio_bitrate);
        let gop_bytes = video_bits / 8 * u64::from(self.gop_secs);
        let units = u64::from(self.keyframe_ratio + self.gop_frames() - 1);
        ((gop_bytes / units) as usize).max(VIDEO_HEADER + STAMP_LEN)
    }

    /// Average audio frame size in bytes.
    pub fn audio_bytes(&self) -> usize {
        let bytes = self.audio_bitrate * AUDIO_FRAME_SAMPLES / SAMPLE_RATE / 8;
        (bytes as usize).max(AUDIO_HEADER + STAMP_LEN)
    }
}

/// Kind of a scheduled frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameKind {
    /// A video keyframe.
    Key,
    /// A video inter frame.
    Inter,
    /// An audio frame.
    Audio,
}

/// One frame of the schedule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Frame {
    /// When it is due, µs after the stream started.
    pub due_us: u64,
    /// Its RTMP timestamp (ms after the stream started).
    pub timestamp: u32,
    /// Kind.
    pub kind: FrameKind,
    /// Body size in bytes.
    pub size: usize,
    /// Sequence number among frames of the same medium (video or audio).
    pub seq: u32,
}

/// The endless, deterministic frame schedule of a [`StreamSpec`]: video and
/// audio interleaved by due time.
#[derive(Clone, Debug)]
pub struct Schedule {
    spec: StreamSpec,
    video_n: u64,
    audio_n: u64,
    rng: u64,
}

impl Schedule {
    /// The schedule from the start of the stream.
    pub fn new(spec: StreamSpec) -> Self {
        Schedule {
            spec,
            video_n: 0,
            audio_n: 0,
            rng: 0x2545_F491_4F6C_DD1D,
        }
    }

    /// A number in `[1 - spread, 1 + spread]`, deterministic.
    fn jitter(&mut self, spread: f64) -> f64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        let unit = (self.rng >> 11) as f64 / (1u64 << 53) as f64; // [0, 1)
        1.0 + spread * (2.0 * unit - 1.0)
    }
}

impl Iterator for Schedule {
    type Item = Frame;

    fn next(&mut self) -> Option<Frame> {
        let video_due = self.video_n * 1_000_000 / u64::from(FPS);
        let audio_due = self.audio_n * AUDIO_FRAME_SAMPLES * 1_000_000 / SAMPLE_RATE;
        let frame = if video_due <= audio_due {
            let key = self
                .video_n
                .is_multiple_of(u64::from(self.spec.gop_frames()));
            let base = self.spec.inter_bytes() as f64;
            let size = if key {
                base * f64::from(self.spec.keyframe_ratio) * self.jitter(0.1)
            } else {
                base * self.jitter(0.25)
            };
            let frame = Frame {
                due_us: video_due,
                timestamp: (video_due / 1000) as u32,
                kind: if key {
                    FrameKind::Key
                } else {
                    FrameKind::Inter
                },
                size: (size as usize).max(VIDEO_HEADER + STAMP_LEN),
                seq: self.video_n as u32,
            };
            self.video_n += 1;
            frame
        } else {
            let size = self.spec.audio_bytes() as f64 * self.jitter(0.05);
            let frame = Frame {
                due_us: audio_due,
                timestamp: (audio_due / 1000) as u32,
                kind: FrameKind::Audio,
                size: (size as usize).max(AUDIO_HEADER + STAMP_LEN),
                seq: self.audio_n as u32,
            };
            self.audio_n += 1;
            frame
        };
        Some(frame)
    }
}

/// Builds the body of `frame`, stamped with `stamp_us`, in `buf` (whose
/// allocation is reused once the previous bodies are gone).
pub fn frame_body(frame: &Frame, stamp_us: u64, sent_us: u64, buf: &mut BytesMut) -> Bytes {
    buf.reserve(frame.size);
    match frame.kind {
        FrameKind::Key => buf.put_slice(&[0x17, 0x01, 0, 0, 0]),
        FrameKind::Inter => buf.put_slice(&[0x27, 0x01, 0, 0, 0]),
        FrameKind::Audio => buf.put_slice(&[0xAF, 0x01]),
    }
    buf.put_u64(stamp_us);
    buf.put_u32(frame.seq);
    buf.put_u64(sent_us);
    let filler = frame.size.saturating_sub(buf.len());
    buf.put_bytes(0x5A, filler);
    buf.split().freeze()
}

/// Medium of a stamped body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Medium {
    /// Video.
    Video,
    /// Audio.
    Audio,
}

/// The stamp of a frame body built by [`frame_body`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stamp {
    /// Audio or video.
    pub medium: Medium,
    /// When the publisher's schedule had it due, µs on the load tool's clock.
    pub due_us: u64,
    /// Sequence number, per medium.
    pub seq: u32,
    /// When the publisher handed it to its connection, µs on the same clock.
    pub sent_us: u64,
}

/// Reads the stamp of a frame body built by [`frame_body`]. `None` for
/// sequence headers, metadata and anything else.
pub fn read_stamp(body: &[u8]) -> Option<Stamp> {
    let (medium, at) = match body {
        [0x17 | 0x27, 0x01, ..] => (Medium::Video, VIDEO_HEADER),
        [0xAF, 0x01, ..] => (Medium::Audio, AUDIO_HEADER),
        _ => return None,
    };
    let stamp: &[u8; STAMP_LEN] = body.get(at..)?.first_chunk()?;
    let (due, rest) = stamp.split_at(8);
    let (seq, sent) = rest.split_at(4);
    Some(Stamp {
        medium,
        due_us: u64::from_be_bytes(due.try_into().ok()?),
        seq: u32::from_be_bytes(seq.try_into().ok()?),
        sent_us: u64::from_be_bytes(sent.try_into().ok()?),
    })
}

/// The AVC sequence header (AVCDecoderConfigurationRecord of a 720p High
/// profile stream with one SPS and one PPS).
pub fn avc_sequence_header() -> Bytes {
    let sps: &[u8] = &[
        0x67, 0x64, 0x00, 0x1F, 0xAC, 0xD9, 0x40, 0x50, 0x05, 0xBB, 0x01, 0x10, 0x00, 0x00, 0x03,
        0x00, 0x10, 0x00, 0x00, 0x03, 0x03, 0x20, 0xF1, 0x83, 0x19, 0x60,
    ];
    let pps: &[u8] = &[0x68, 0xEB, 0xE3, 0xCB, 0x22, 0xC0];
    let mut b = BytesMut::new();
    b.put_slice(&[0x17, 0x00, 0, 0, 0]);
    b.put_slice(&[0x01, 0x64, 0x00, 0x1F, 0xFF, 0xE1]);
    b.put_u16(sps.len() as u16);
    b.put_slice(sps);
    b.put_u8(1);
    b.put_u16(pps.len() as u16);
    b.put_slice(pps);
    b.freeze()
}

/// The AAC sequence header (AudioSpecificConfig: AAC LC, 44.1 kHz, stereo).
pub fn aac_sequence_header() -> Bytes {
    Bytes::from_static(&[0xAF, 0x00, 0x12, 0x10])
}

/// `@setDataFrame onMetaData {…}` describing the stream.
pub fn metadata(spec: &StreamSpec) -> Bytes {
    let kbps = |b: u64| Value::Number(b as f64 / 1000.0);
    let props = vec![
        ("width".to_owned(), Value::Number(1280.0)),
        ("height".to_owned(), Value::Number(720.0)),
        ("framerate".to_owned(), Value::Number(f64::from(FPS))),
        ("videocodecid".to_owned(), Value::Number(7.0)),
        (
            "videodatarate".to_owned(),
            kbps(spec.bitrate - spec.audio_bitrate),
        ),
        ("audiocodecid".to_owned(), Value::Number(10.0)),
        ("audiodatarate".to_owned(), kbps(spec.audio_bitrate)),
        ("audiosamplerate".to_owned(), Value::Number(44_100.0)),
        ("stereo".to_owned(), Value::Boolean(true)),
        ("encoder".to_owned(), Value::string("tern-load")),
    ];
    let mut out = Vec::new();
    amf0::encode(&Value::string("@setDataFrame"), &mut out);
    amf0::encode(&Value::string("onMetaData"), &mut out);
    amf0::encode(
        &Value::EcmaArray {
            count: props.len() as u32,
            properties: props,
        },
        &mut out,
    );
    Bytes::from(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_hits_the_bitrate_and_the_shape() {
        for bitrate in [600_000u64, 2_500_000] {
            let spec = StreamSpec::new(bitrate);
            let ten_secs: Vec<Frame> = Schedule::new(spec)
                .take_while(|f| f.due_us < 10_000_000)
                .collect();
            let bytes: usize = ten_secs.iter().map(|f| f.size).sum();
            let measured = bytes as f64 * 8.0 / 10.0;
            let error = (measured - bitrate as f64).abs() / bitrate as f64;
            assert!(error < 0.05, "{bitrate}: {measured}");
            let keys: Vec<&Frame> = ten_secs
                .iter()
                .filter(|f| f.kind == FrameKind::Key)
                .collect();
            assert_eq!(keys.len(), 5);
            assert_eq!(keys[1].timestamp, 2000);
            assert!(keys[0].size > 8 * spec.inter_bytes());
            let video = ten_secs.iter().filter(|f| f.kind != FrameKind::Audio);
            assert_eq!(video.count(), 250);
            let audio = ten_secs.iter().filter(|f| f.kind == FrameKind::Audio);
            assert_eq!(audio.count(), 431); // 10 s * 44100 / 1024, rounded up
            // Due times never go backwards.
            assert!(ten_secs.windows(2).all(|w| w[0].due_us <= w[1].due_us));
        }
    }

    #[test]
    fn stamps_round_trip() {
        let mut buf = BytesMut::new();
        for frame in Schedule::new(StreamSpec::new(600_000)).take(100) {
            let sent = 123_456_999 + frame.due_us;
            let body = frame_body(&frame, 123_456_789 + frame.due_us, sent, &mut buf);
            assert_eq!(body.len(), frame.size);
            let stamp = read_stamp(&body).unwrap();
            assert_eq!(
                stamp.medium == Medium::Audio,
                frame.kind == FrameKind::Audio
            );
            assert_eq!(stamp.due_us, 123_456_789 + frame.due_us);
            assert_eq!(stamp.seq, frame.seq);
            assert_eq!(stamp.sent_us, sent);
        }
        assert_eq!(read_stamp(&avc_sequence_header()), None);
        assert_eq!(read_stamp(&aac_sequence_header()), None);
        assert_eq!(read_stamp(&[0x17, 0x01, 0]), None);
    }

    #[test]
    fn metadata_is_set_data_frame() {
        let body = metadata(&StreamSpec::new(2_500_000));
        let values = amf0::decode_all(&body, &tern_core::Limits::default()).unwrap();
        assert_eq!(values[0].as_str(), Some("@setDataFrame"));
        assert_eq!(
            values[2].get("videodatarate").and_then(Value::as_f64),
            Some(2372.0)
        );
    }
}
