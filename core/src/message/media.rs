//! Looking into audio and video payloads without copying them: enough to
//! know keyframes and sequence headers for late joiners and queue dropping.
//! Payloads themselves (legacy or Enhanced-RTMP) are relayed untouched.

use super::MessageError;
use super::cursor::Reader;

/// A four-character codec code of Enhanced RTMP, e.g. `*b"hvc1"`.
pub type FourCc = [u8; 4];

/// FourCCs defined by Enhanced RTMP.
pub mod fourcc {
    use super::FourCc;
    /// H.264.
    pub const AVC1: FourCc = *b"avc1";
    /// H.265.
    pub const HVC1: FourCc = *b"hvc1";
    /// AV1.
    pub const AV01: FourCc = *b"av01";
    /// VP9.
    pub const VP09: FourCc = *b"vp09";
    /// VP8.
    pub const VP08: FourCc = *b"vp08";
    /// Opus.
    pub const OPUS: FourCc = *b"Opus";
    /// FLAC.
    pub const FLAC: FourCc = *b"fLaC";
    /// AC-3.
    pub const AC3: FourCc = *b"ac-3";
    /// E-AC-3.
    pub const EAC3: FourCc = *b"ec-3";
    /// MP3.
    pub const MP3: FourCc = *b".mp3";
    /// AAC.
    pub const MP4A: FourCc = *b"mp4a";
}

/// Legacy video codec ids (low 4 bits of the first byte).
pub mod video_codec {
    /// Sorenson H.263.
    pub const SORENSON_H263: u8 = 2;
    /// Screen video.
    pub const SCREEN: u8 = 3;
    /// On2 VP6.
    pub const VP6: u8 = 4;
    /// On2 VP6 with alpha.
    pub const VP6_ALPHA: u8 = 5;
    /// Screen video v2.
    pub const SCREEN_V2: u8 = 6;
    /// H.264.
    pub const AVC: u8 = 7;
    /// H.265 (the widespread non-Adobe extension).
    pub const HEVC: u8 = 12;
}

/// Legacy sound formats (high 4 bits of the first byte).
pub mod sound_format {
    /// MP3.
    pub const MP3: u8 = 2;
    /// Nellymoser.
    pub const NELLYMOSER: u8 = 6;
    /// Enhanced-RTMP header follows (FourCC signalled).
    pub const EX_HEADER: u8 = 9;
    /// AAC.
    pub const AAC: u8 = 10;
    /// Speex.
    pub const SPEEX: u8 = 11;
}

/// Video frame type, which decides drop priority and where players start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VideoFrameType {
    /// 1: keyframe (seekable).
    Key,
    /// 2: inter frame.
    Inter,
    /// 3: disposable inter frame (H.263 only): drop first.
    DisposableInter,
    /// 4: generated keyframe (server use).
    Generated,
    /// 5: video info / command frame, not a picture.
    Command,
}

/// Which codec a video payload carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VideoCodec {
    /// Legacy codec id (see [`video_codec`]).
    Legacy(u8),
    /// Enhanced-RTMP FourCC (see [`fourcc`]).
    FourCc(FourCc),
    /// Enhanced payload that names no single codec here (command frames,
    /// multitrack with one codec per track, ModEx).
    Unspecified,
}

/// Enhanced-RTMP video packet type (low 4 bits when bit 0x80 is set).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VideoPacketType {
    /// 0: decoder configuration.
    SequenceStart,
    /// 1: frames with a composition time.
    CodedFrames,
    /// 2: end of sequence.
    SequenceEnd,
    /// 3: frames, composition time implied 0.
    CodedFramesX,
    /// 4: AMF metadata (e.g. HDR colour info).
    Metadata,
    /// 5: MPEG-2 TS style configuration (AV1).
    Mpeg2TsSequenceStart,
    /// 6: several tracks in one message.
    Multitrack,
    /// 7: modifier extensions precede the real packet type.
    ModEx,
    /// 8–15: not defined.
    Reserved(u8),
}

impl VideoPacketType {
    fn from_u8(v: u8) -> Self {
        match v {
            0 => VideoPacketType::SequenceStart,
            1 => VideoPacketType::CodedFrames,
            2 => VideoPacketType::SequenceEnd,
            3 => VideoPacketType::CodedFramesX,
            4 => VideoPacketType::Metadata,
            5 => VideoPacketType::Mpeg2TsSequenceStart,
            6 => VideoPacketType::Multitrack,
            7 => VideoPacketType::ModEx,
            other => VideoPacketType::Reserved(other),
        }
    }
}

/// What [`VideoTag::parse`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VideoTagInfo {
    /// Frame type.
    pub frame_type: VideoFrameType,
    /// Codec.
    pub codec: VideoCodec,
    /// Enhanced packet type (for multitrack, the packet type of the
    /// tracks); `None` for legacy payloads.
    pub packet_type: Option<VideoPacketType>,
    /// Enhanced multitrack payload.
    pub multitrack: bool,
    /// Decoder configuration a late joiner needs before any frame.
    pub is_sequence_header: bool,
}

impl VideoTagInfo {
    /// Keyframe (or generated keyframe) carrying a picture.
    pub fn is_keyframe(&self) -> bool {
        matches!(
            self.frame_type,
            VideoFrameType::Key | VideoFrameType::Generated
        ) && !self.is_sequence_header
    }

    /// Enhanced-RTMP payload.
    pub fn is_enhanced(&self) -> bool {
        self.packet_type.is_some()
    }
}

/// Inspector for video message payloads (FLV video tag bodies).
#[derive(Clone, Copy, Debug)]
pub struct VideoTag;

impl VideoTag {
    /// Reads the video tag header.
    ///
    /// Legacy: frame type (high 4 bits), codec id (low 4); AVC/HEVC then an
    /// AVCPacketType byte (0 = sequence header). Enhanced (bit 0x80 set):
    /// frame type in bits 4–6, packet type in the low 4 bits, then the
    /// FourCC — except for command frames (a command byte instead) and
    /// multitrack (a multitrack-type/packet-type byte first).
    pub fn parse(payload: &[u8]) -> Result<VideoTagInfo, MessageError> {
        let mut r = Reader::new(payload);
        let first = r
            .u8("video tag header")
            .map_err(|_| MessageError::EmptyMedia { what: "video" })?;
        let enhanced = first & 0x80 != 0;
        let frame_bits = if enhanced {
            (first >> 4) & 0x07
        } else {
            first >> 4
        };
        let frame_type = match frame_bits {
            1 => VideoFrameType::Key,
            2 => VideoFrameType::Inter,
            3 => VideoFrameType::DisposableInter,
            4 => VideoFrameType::Generated,
            5 => VideoFrameType::Command,
            other => return Err(MessageError::InvalidVideoFrameType(other)),
        };
        if !enhanced {
            let codec_id = first & 0x0F;
            let has_packet_type = matches!(codec_id, video_codec::AVC | video_codec::HEVC)
                && frame_type != VideoFrameType::Command;
            let is_sequence_header = has_packet_type && r.u8("video AVC packet type")? == 0;
            return Ok(VideoTagInfo {
                frame_type,
                codec: VideoCodec::Legacy(codec_id),
                packet_type: None,
                multitrack: false,
                is_sequence_header,
            });
        }
        let mut packet_type = VideoPacketType::from_u8(first & 0x0F);
        let mut multitrack = false;
        let codec =
            if frame_type == VideoFrameType::Command && packet_type != VideoPacketType::Metadata {
                VideoCodec::Unspecified
            } else if packet_type == VideoPacketType::Multitrack {
                multitrack = true;
                let b = r.u8("video multitrack header")?;
                packet_type = VideoPacketType::from_u8(b & 0x0F);
                // Multitrack type 2 = many tracks, many codecs: FourCC per track.
                if b >> 4 == 2 {
                    VideoCodec::Unspecified
                } else {
                    VideoCodec::FourCc(r.array::<4>("video FourCC")?)
                }
            } else if packet_type == VideoPacketType::ModEx {
                VideoCodec::Unspecified
            } else {
                VideoCodec::FourCc(r.array::<4>("video FourCC")?)
            };
        let is_sequence_header = frame_type != VideoFrameType::Command
            && matches!(
                packet_type,
                VideoPacketType::SequenceStart | VideoPacketType::Mpeg2TsSequenceStart
            );
        Ok(VideoTagInfo {
            frame_type,
            codec,
            packet_type: Some(packet_type),
            multitrack,
            is_sequence_header,
        })
    }
}

/// Which codec an audio payload carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AudioCodec {
    /// Legacy sound format (see [`sound_format`]).
    Legacy(u8),
    /// Enhanced-RTMP FourCC (see [`fourcc`]).
    FourCc(FourCc),
    /// Enhanced payload naming no single codec here (multitrack with one
    /// codec per track, ModEx).
    Unspecified,
}

/// Enhanced-RTMP audio packet type (low 4 bits when the sound format is 9).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AudioPacketType {
    /// 0: decoder configuration.
    SequenceStart,
    /// 1: coded frames.
    CodedFrames,
    /// 2: end of sequence.
    SequenceEnd,
    /// 4: channel layout.
    MultichannelConfig,
    /// 5: several tracks in one message.
    Multitrack,
    /// 7: modifier extensions precede the real packet type.
    ModEx,
    /// 3, 6, 8–15: not defined.
    Reserved(u8),
}

impl AudioPacketType {
    fn from_u8(v: u8) -> Self {
        match v {
            0 => AudioPacketType::SequenceStart,
            1 => AudioPacketType::CodedFrames,
            2 => AudioPacketType::SequenceEnd,
            4 => AudioPacketType::MultichannelConfig,
            5 => AudioPacketType::Multitrack,
            7 => AudioPacketType::ModEx,
            other => AudioPacketType::Reserved(other),
        }
    }
}

/// What [`AudioTag::parse`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AudioTagInfo {
    /// Sound format (high 4 bits of the first byte; 9 = enhanced).
    pub sound_format: u8,
    /// Codec.
    pub codec: AudioCodec,
    /// Enhanced packet type (for multitrack, the tracks' packet type);
    /// `None` for legacy payloads.
    pub packet_type: Option<AudioPacketType>,
    /// Enhanced multitrack payload.
    pub multitrack: bool,
    /// Decoder configuration a late joiner needs (AAC
    /// AudioSpecificConfig, enhanced SequenceStart).
    pub is_sequence_header: bool,
}

/// Inspector for audio message payloads (FLV audio tag bodies).
#[derive(Clone, Copy, Debug)]
pub struct AudioTag;

impl AudioTag {
    /// Reads the audio tag header: sound format in the high 4 bits; AAC
    /// (10) then an AACPacketType byte (0 = sequence header); enhanced (9)
    /// has the packet type in the low 4 bits, then the FourCC (multitrack:
    /// a multitrack-type/packet-type byte first).
    pub fn parse(payload: &[u8]) -> Result<AudioTagInfo, MessageError> {
        let mut r = Reader::new(payload);
        let first = r
            .u8("audio tag header")
            .map_err(|_| MessageError::EmptyMedia { what: "audio" })?;
        let format = first >> 4;
        if format == sound_format::AAC {
            let is_sequence_header = r.u8("audio AAC packet type")? == 0;
            return Ok(AudioTagInfo {
                sound_format: format,
                codec: AudioCodec::Legacy(format),
                packet_type: None,
                multitrack: false,
                is_sequence_header,
            });
        }
        if format != sound_format::EX_HEADER {
            return Ok(AudioTagInfo {
                sound_format: format,
                codec: AudioCodec::Legacy(format),
                packet_type: None,
                multitrack: false,
                is_sequence_header: false,
            });
        }
        let mut packet_type = AudioPacketType::from_u8(first & 0x0F);
        let mut multitrack = false;
        let codec = match packet_type {
            AudioPacketType::Multitrack => {
                multitrack = true;
                let b = r.u8("audio multitrack header")?;
                packet_type = AudioPacketType::from_u8(b & 0x0F);
                if b >> 4 == 2 {
                    AudioCodec::Unspecified
                } else {
                    AudioCodec::FourCc(r.array::<4>("audio FourCC")?)
                }
            }
            AudioPacketType::ModEx => AudioCodec::Unspecified,
            _ => AudioCodec::FourCc(r.array::<4>("audio FourCC")?),
        };
        Ok(AudioTagInfo {
            sound_format: format,
            codec,
            packet_type: Some(packet_type),
            multitrack,
            is_sequence_header: packet_type == AudioPacketType::SequenceStart,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_avc() {
        let seq = VideoTag::parse(&[0x17, 0x00, 0, 0, 0, 1, 0x64]).unwrap();
        assert_eq!(seq.frame_type, VideoFrameType::Key);
        assert_eq!(seq.codec, VideoCodec::Legacy(video_codec::AVC));
        assert!(seq.is_sequence_header);
        assert!(!seq.is_keyframe());
        assert!(!seq.is_enhanced());
        let key = VideoTag::parse(&[0x17, 0x01, 0, 0, 0]).unwrap();
        assert!(!key.is_sequence_header && key.is_keyframe());
        let inter = VideoTag::parse(&[0x27, 0x01, 0, 0, 0]).unwrap();
        assert_eq!(inter.frame_type, VideoFrameType::Inter);
        let hevc = VideoTag::parse(&[0x1c, 0x00]).unwrap();
        assert!(hevc.is_sequence_header);
        // Command frame: the second byte is a command, not a packet type.
        let cmd = VideoTag::parse(&[0x57, 0x00]).unwrap();
        assert_eq!(cmd.frame_type, VideoFrameType::Command);
        assert!(!cmd.is_sequence_header);
        // H.263 has no packet type byte.
        let h263 = VideoTag::parse(&[0x32]).unwrap();
        assert_eq!(h263.frame_type, VideoFrameType::DisposableInter);
        assert_eq!(h263.codec, VideoCodec::Legacy(2));
    }

    #[test]
    fn enhanced_video() {
        let seq = VideoTag::parse(b"\x90hvc1\x01\x02").unwrap();
        assert_eq!(seq.frame_type, VideoFrameType::Key);
        assert_eq!(seq.codec, VideoCodec::FourCc(fourcc::HVC1));
        assert_eq!(seq.packet_type, Some(VideoPacketType::SequenceStart));
        assert!(seq.is_sequence_header && seq.is_enhanced());
        let frames = VideoTag::parse(b"\x93av01\x00").unwrap();
        assert_eq!(frames.packet_type, Some(VideoPacketType::CodedFramesX));
        assert!(frames.is_keyframe());
        let inter = VideoTag::parse(b"\xa1vp09\x00\x00\x00").unwrap();
        assert_eq!(inter.frame_type, VideoFrameType::Inter);
        let ts = VideoTag::parse(b"\x95av01").unwrap();
        assert!(ts.is_sequence_header);
        let end = VideoTag::parse(b"\x92avc1").unwrap();
        assert_eq!(end.packet_type, Some(VideoPacketType::SequenceEnd));
        let meta = VideoTag::parse(b"\x94hvc1\x02").unwrap();
        assert_eq!(meta.packet_type, Some(VideoPacketType::Metadata));
        assert!(!meta.is_sequence_header);
        let cmd = VideoTag::parse(b"\xd1\x00").unwrap();
        assert_eq!(cmd.codec, VideoCodec::Unspecified);
        // Multitrack, one track, packet type SequenceStart.
        let mt = VideoTag::parse(b"\x96\x00hvc1\x00").unwrap();
        assert!(mt.multitrack && mt.is_sequence_header);
        assert_eq!(mt.codec, VideoCodec::FourCc(fourcc::HVC1));
        let mt2 = VideoTag::parse(b"\x96\x21").unwrap();
        assert_eq!(mt2.codec, VideoCodec::Unspecified);
        assert_eq!(mt2.packet_type, Some(VideoPacketType::CodedFrames));
    }

    #[test]
    fn video_errors() {
        assert_eq!(
            VideoTag::parse(&[]),
            Err(MessageError::EmptyMedia { what: "video" })
        );
        assert_eq!(
            VideoTag::parse(&[0x07]),
            Err(MessageError::InvalidVideoFrameType(0))
        );
        assert_eq!(
            VideoTag::parse(&[0x17]),
            Err(MessageError::Truncated {
                what: "video AVC packet type"
            })
        );
        assert_eq!(
            VideoTag::parse(b"\x90hvc"),
            Err(MessageError::Truncated {
                what: "video FourCC"
            })
        );
        assert!(VideoTag::parse(b"\xf0hvc1").is_err());
    }

    #[test]
    fn audio() {
        let seq = AudioTag::parse(&[0xaf, 0x00, 0x12, 0x10]).unwrap();
        assert_eq!(seq.sound_format, sound_format::AAC);
        assert!(seq.is_sequence_header);
        let raw = AudioTag::parse(&[0xaf, 0x01, 0x21]).unwrap();
        assert!(!raw.is_sequence_header);
        let speex = AudioTag::parse(&[0xb2, 0x00]).unwrap();
        assert_eq!(speex.codec, AudioCodec::Legacy(sound_format::SPEEX));
        assert!(!speex.is_sequence_header);
        let opus = AudioTag::parse(b"\x90Opus\x01").unwrap();
        assert_eq!(opus.codec, AudioCodec::FourCc(fourcc::OPUS));
        assert!(opus.is_sequence_header);
        let frames = AudioTag::parse(b"\x91Opus").unwrap();
        assert_eq!(frames.packet_type, Some(AudioPacketType::CodedFrames));
        assert!(!frames.is_sequence_header);
        let mt = AudioTag::parse(b"\x95\x10mp4a").unwrap();
        assert!(mt.multitrack && mt.is_sequence_header);
        assert_eq!(
            AudioTag::parse(&[]),
            Err(MessageError::EmptyMedia { what: "audio" })
        );
        assert!(AudioTag::parse(&[0xaf]).is_err());
        assert!(AudioTag::parse(b"\x90Op").is_err());
    }
}
