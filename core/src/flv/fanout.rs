//! FLV's fan-out codec: each relayed message becomes one FLV tag, wrapped
//! for the transport that carries it (an HTTP chunk, a WebSocket binary
//! frame, or nothing for a file), built once for every player with the
//! same key.
//!
//! # Timestamps: one base per join point
//!
//! FLV players expect a stream's timestamps to start near 0, but the hub
//! relays the publisher's clock, and a tag carries its timestamp inside
//! its header, so two players can share a tag's bytes only if they count
//! time from the same origin. The key therefore holds the player's *base*:
//! the timestamp of the first message it is sent (the cached GOP's
//! keyframe, or for a player that waited for a publisher, the first
//! message published), set through the hub's protocol-neutral
//! [`Encoder::starting_at`]. Every player that joined at the same keyframe
//! (one GOP interval, typically 1–2 s) shares one encoding; players that
//! joined in different GOPs get one encoding per join point. A tag's
//! timestamp is `timestamp - base`, 0 for anything stamped before the base
//! (audio that arrives just behind the keyframe), so each player's stream
//! starts at 0 and stays monotonic across the GOP burst, cut-backs
//! included (a cut-back skips frames, never the clock).
//!
//! The alternative, one shared tag plus an 11-byte header per player,
//! would cost each player a buffer per message: encoding per join point
//! keeps 0 allocations per subscriber, and join points are few while many
//! players share one (they cluster: a page load, a link shared in chat).
//! `docs/flv.md` records the decision.

use super::tag::{self, TagError};
use crate::hub::stream::CachedMessage;
use crate::hub::{Encoder, FanoutCodec, SoUpdate};
use crate::ws::frame::{FrameHeader, Opcode};
use bytes::{BufMut, Bytes, BytesMut};

/// How FLV bytes travel: what wraps each tag.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// Bare tags (a file).
    Raw,
    /// Each tag one HTTP/1.1 chunk (`Transfer-Encoding: chunked`).
    HttpChunked,
    /// Each tag one unmasked WebSocket binary frame.
    WebSocket,
}

impl Framing {
    fn bits(self) -> u64 {
        match self {
            Framing::Raw => 0,
            Framing::HttpChunked => 1,
            Framing::WebSocket => 2,
        }
    }

    fn from_bits(bits: u64) -> Framing {
        match bits & 3 {
            1 => Framing::HttpChunked,
            2 => Framing::WebSocket,
            _ => Framing::Raw,
        }
    }

    /// `payload` wrapped for this transport (the FLV file header, an
    /// end-of-stream marker…), as its own buffer.
    pub fn wrap(self, payload: &[u8]) -> Bytes {
        let mut out = BytesMut::with_capacity(payload.len() + 16);
        self.open(&mut out, payload.len());
        out.put_slice(payload);
        self.close(&mut out);
        out.freeze()
    }

    fn open(self, out: &mut BytesMut, len: usize) {
        match self {
            Framing::Raw => {}
            Framing::HttpChunked => {
                use core::fmt::Write as _;
                let _ = write!(HexWriter(out), "{len:X}\r\n");
            }
            Framing::WebSocket => FrameHeader {
                fin: true,
                rsv: 0,
                opcode: Opcode::Binary.as_u8(),
                mask: None,
                len: len as u64,
            }
            .encode(out),
        }
    }

    fn close(self, out: &mut BytesMut) {
        if self == Framing::HttpChunked {
            out.put_slice(b"\r\n");
        }
    }

    /// The bytes inside one wrapped unit at the start of `data`.
    fn unwrap(self, data: &Bytes) -> Option<Bytes> {
        match self {
            Framing::Raw => Some(data.clone()),
            Framing::HttpChunked => {
                let line = data.iter().position(|&b| b == b'\n')?;
                let digits = core::str::from_utf8(data.get(..line)?).ok()?.trim_end();
                let len = usize::from_str_radix(digits, 16).ok()?;
                let start = line + 1;
                (data.len() >= start + len).then(|| data.slice(start..start + len))
            }
            Framing::WebSocket => {
                let first = *data.get(1)? & 0x7F;
                let (start, len) = match first {
                    126 => (
                        4,
                        usize::from(u16::from_be_bytes([*data.get(2)?, *data.get(3)?])),
                    ),
                    127 => {
                        let raw: [u8; 8] = data.get(2..10)?.try_into().ok()?;
                        (10, usize::try_from(u64::from_be_bytes(raw)).ok()?)
                    }
                    n => (2, usize::from(n)),
                };
                (data.len() >= start + len).then(|| data.slice(start..start + len))
            }
        }
    }
}

struct HexWriter<'a>(&'a mut BytesMut);

impl core::fmt::Write for HexWriter<'_> {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        self.0.put_slice(s.as_bytes());
        Ok(())
    }
}

/// The FLV codec (stateless).
#[derive(Debug)]
pub struct FlvCodec;

static FLV: FlvCodec = FlvCodec;

/// The encoder of an FLV player on `framing`, before it has a base (the
/// hub sets one with [`Encoder::starting_at`]).
pub fn media_encoder(framing: Framing) -> Encoder {
    Encoder::new(&FLV, key(framing, 0))
}

fn key(framing: Framing, base: u32) -> u64 {
    (framing.bits() << 32) | u64::from(base)
}

fn split_key(key: u64) -> (Framing, u32) {
    (Framing::from_bits(key >> 32), key as u32)
}

/// `timestamp` counted from `base`; 0 for one stamped before it (in the
/// wrapping sense: up to 2^31 ms back).
pub fn rebase(timestamp: u32, base: u32) -> u32 {
    let delta = timestamp.wrapping_sub(base);
    if delta > i32::MAX as u32 { 0 } else { delta }
}

impl FanoutCodec for FlvCodec {
    fn name(&self) -> &'static str {
        "flv"
    }

    fn encode_media(&self, key: u64, message: &CachedMessage) -> Bytes {
        let (framing, base) = split_key(key);
        let body = &message.payload;
        let len = tag::tag_len(body.len());
        let mut out = BytesMut::with_capacity(len + 16);
        framing.open(&mut out, len);
        let timestamp = rebase(message.timestamp, base);
        // Media bodies are bounded by `Limits::max_message` (< 2^24); a body
        // a tag cannot carry gets no bytes (players skip the message).
        if tag::write_tag(&mut out, message.kind, timestamp, body).is_err() {
            return Bytes::new();
        }
        framing.close(&mut out);
        out.freeze()
    }

    fn media_body(&self, key: u64, encoded: &Bytes) -> Option<Bytes> {
        let inner = split_key(key).0.unwrap(encoded)?;
        let (view, _) = tag::FlvTagView::parse(&inner).ok()?;
        let start = tag::TAG_HEADER_LEN;
        Some(inner.slice(start..start + view.body.len()))
    }

    fn encode_update(&self, _key: u64, _update: &SoUpdate) -> Bytes {
        Bytes::new()
    }

    fn starting_at(&self, key: u64, timestamp: u32) -> u64 {
        self::key(split_key(key).0, timestamp)
    }
}

/// The FLV tag inside one unit of `framing` (for tests and tools).
pub fn unwrap_tag(framing: Framing, encoded: &Bytes) -> Result<Bytes, TagError> {
    framing.unwrap(encoded).ok_or(TagError::Truncated {
        needed: tag::TAG_HEADER_LEN,
        have: encoded.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flv::tag::FlvTagView;
    use crate::hub::{MediaKind, MediaPriority};

    fn message(kind: MediaKind, timestamp: u32, len: usize) -> CachedMessage {
        CachedMessage {
            kind,
            priority: MediaPriority::Inter,
            timestamp,
            payload: Bytes::from(alloc::vec![0x27u8; len]),
        }
    }

    #[test]
    fn raw_tags_count_time_from_the_base() {
        let encoder = media_encoder(Framing::Raw).starting_at(1000);
        let bytes = encoder.encode_media(&message(MediaKind::Video, 1040, 3));
        assert_eq!(
            bytes.as_ref(),
            &[
                9, 0, 0, 3, 0, 0, 40, 0, 0, 0, 0, 0x27, 0x27, 0x27, 0, 0, 0, 14
            ]
        );
        // Audio stamped just before the keyframe the player starts on.
        let early = encoder.encode_media(&message(MediaKind::Audio, 990, 1));
        assert_eq!(FlvTagView::parse(&early).unwrap().0.timestamp, 0);
        // Across the 32-bit wrap.
        let wrapped = media_encoder(Framing::Raw).starting_at(u32::MAX - 9);
        let bytes = wrapped.encode_media(&message(MediaKind::Audio, 10, 1));
        assert_eq!(FlvTagView::parse(&bytes).unwrap().0.timestamp, 20);
    }

    #[test]
    fn http_chunks_and_websocket_frames_wrap_one_tag() {
        let m = message(MediaKind::Audio, 5, 2);
        let chunk = media_encoder(Framing::HttpChunked).encode_media(&m);
        // 11 + 2 + 4 = 17 = 0x11 bytes of tag.
        assert!(chunk.starts_with(b"11\r\n\x08\0\0\x02\0\0\x05\0"));
        assert!(chunk.ends_with(b"\0\0\0\x0D\r\n"));
        assert_eq!(chunk.len(), 4 + 17 + 2);
        let frame = media_encoder(Framing::WebSocket).encode_media(&m);
        assert_eq!(&frame[..2], &[0x82, 17]);
        assert_eq!(frame.len(), 2 + 17);
        let big = message(MediaKind::Video, 0, 70_000);
        let frame = media_encoder(Framing::WebSocket).encode_media(&big);
        assert_eq!(&frame[..2], &[0x82, 127]);
        let chunk = media_encoder(Framing::HttpChunked).encode_media(&big);
        assert!(chunk.starts_with(b"1117F\r\n")); // 70_015
    }

    #[test]
    fn bodies_read_back_from_every_framing() {
        for framing in [Framing::Raw, Framing::HttpChunked, Framing::WebSocket] {
            for len in [0, 1, 125, 126, 65_535, 65_536, 200_000] {
                let encoder = media_encoder(framing).starting_at(7);
                let m = message(MediaKind::Video, 100, len);
                let encoded = encoder.encode_media(&m);
                assert_eq!(
                    encoder.media_body(&encoded),
                    Some(m.payload.clone()),
                    "{framing:?} {len}"
                );
                let tag = unwrap_tag(framing, &encoded).unwrap();
                assert_eq!(FlvTagView::parse(&tag).unwrap().0.timestamp, 93);
            }
        }
    }

    #[test]
    fn players_share_an_encoding_only_with_framing_and_base_equal() {
        let http = media_encoder(Framing::HttpChunked);
        assert_eq!(http.starting_at(40), http.starting_at(40));
        assert_ne!(http.starting_at(40), http.starting_at(80));
        assert_ne!(
            http.starting_at(40),
            media_encoder(Framing::WebSocket).starting_at(40)
        );
        assert_eq!(http.starting_at(40).starting_at(80), http.starting_at(80));
        assert_ne!(http, crate::rtmp::fanout::media_encoder(4096, 1));
    }
}
