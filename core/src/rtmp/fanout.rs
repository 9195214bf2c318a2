//! RTMP's fan-out codec: how relayed media and shared-object notices are
//! chunked once for every RTMP subscriber that can take the same bytes.
//!
//! - Media: a player's encoder key is its outgoing chunk size, message
//!   stream id and object encoding; every player with all three equal is
//!   sent one encoding (fmt-0 header on [`csid::RELAYED_AUDIO`],
//!   [`RELAYED_VIDEO`](csid::RELAYED_VIDEO) or
//!   [`RELAYED_DATA`](csid::RELAYED_DATA)). Data messages go to AMF0
//!   players as type 18 and to AMF3 players as type 15 (the encoding byte 0
//!   before the same body); audio and video bytes are the same for both.
//! - Shared-object notices: one encoding for every AMF0 RTMP subscriber,
//!   the type-19 message as a single chunk on [`csid::SHARED_OBJECT`], and
//!   one for every AMF3 subscriber (connect with objectEncoding 3), the
//!   type-16 message with every value as an AVM+ value
//!   ([`SharedObjectMessage::encode_amf3`]). A connection whose chunk size
//!   is smaller than the payload cannot send it as is and chunks the
//!   payload itself ([`notice_payload`]).

use super::csid;
use crate::chunk::{RawMessage, encode_standalone, standalone_payload, standalone_type_id};
use crate::hub::stream::CachedMessage;
use crate::hub::{Encoder, FanoutCodec, MediaKind, SoNotice, SoUpdate};
use crate::message::{SharedObjectMessage, SoEvent, type_id};
use alloc::string::String;
use bytes::{Bytes, BytesMut};

/// The RTMP codec (stateless).
#[derive(Debug)]
pub struct RtmpCodec;

static RTMP: RtmpCodec = RtmpCodec;

/// The key of the one notice encoding every AMF0 RTMP subscriber shares.
const NOTICES_KEY: u64 = 0;

/// The key of the one notice encoding every AMF3 RTMP subscriber shares.
const NOTICES_AMF3_KEY: u64 = 1;

/// Bytes of the fmt-0 header a shared notice starts with: a one-byte basic
/// header (chunk stream 9) and the 11-byte message header; timestamp 0
/// needs no extended timestamp.
const NOTICE_HEADER: usize = 12;

/// The bit of a media key that marks an AMF3 player (chunk sizes stay
/// below 2^31, so it is never part of one).
const MEDIA_AMF3: u64 = 1 << 63;

/// The encoder of an (AMF0) RTMP player sent media with `chunk_size` on
/// message stream `stream_id`.
pub fn media_encoder(chunk_size: u32, stream_id: u32) -> Encoder {
    Encoder::new(&RTMP, (u64::from(chunk_size) << 32) | u64::from(stream_id))
}

/// The encoder of an AMF3 RTMP player (connect with objectEncoding 3):
/// as [`media_encoder`], with data messages as type 15.
pub fn media_encoder_amf3(chunk_size: u32, stream_id: u32) -> Encoder {
    let key = media_encoder(chunk_size, stream_id).key() | MEDIA_AMF3;
    Encoder::new(&RTMP, key)
}

/// The encoder of an AMF0 RTMP connection's shared-object notices.
pub fn notices_encoder() -> Encoder {
    Encoder::new(&RTMP, NOTICES_KEY)
}

/// The encoder of an AMF3 RTMP connection's shared-object notices (type
/// 16).
pub fn notices_encoder_amf3() -> Encoder {
    Encoder::new(&RTMP, NOTICES_AMF3_KEY)
}

/// Chunk size and message stream id of a media key.
fn media_key(key: u64) -> (u32, u32) {
    (((key & !MEDIA_AMF3) >> 32) as u32, key as u32)
}

fn media_csid(kind: MediaKind) -> u32 {
    match kind {
        MediaKind::Audio => csid::RELAYED_AUDIO,
        MediaKind::Video => csid::RELAYED_VIDEO,
        MediaKind::Data => csid::RELAYED_DATA,
    }
}

fn media_type_id(kind: MediaKind) -> u8 {
    match kind {
        MediaKind::Audio => type_id::AUDIO,
        MediaKind::Video => type_id::VIDEO,
        MediaKind::Data => type_id::DATA_AMF0,
    }
}

impl FanoutCodec for RtmpCodec {
    fn name(&self) -> &'static str {
        "rtmp"
    }

    fn encode_media(&self, key: u64, message: &CachedMessage) -> Bytes {
        let (chunk_size, stream_id) = media_key(key);
        let (type_id, payload) = match message.kind {
            MediaKind::Data if key & MEDIA_AMF3 != 0 => {
                let mut body = BytesMut::with_capacity(message.payload.len() + 1);
                body.extend_from_slice(&[0]);
                body.extend_from_slice(&message.payload);
                (type_id::DATA_AMF3, body.freeze())
            }
            kind => (media_type_id(kind), message.payload.clone()),
        };
        let raw = RawMessage {
            csid: media_csid(message.kind),
            timestamp: message.timestamp,
            type_id,
            stream_id,
            payload,
        };
        let len = raw.payload.len();
        let mut out = BytesMut::with_capacity(len + 16 + len / 128);
        // Media bodies are bounded by `Limits::max_message` (< 2^24), so this
        // cannot fail; an empty buffer would only make players skip the message.
        let _ = encode_standalone(&raw, chunk_size, &mut out);
        out.freeze()
    }

    fn media_body(&self, key: u64, encoded: &Bytes) -> Option<Bytes> {
        let payload = standalone_payload(encoded, media_key(key).0)?;
        if standalone_type_id(encoded) == Some(type_id::DATA_AMF3) {
            // The body after the encoding byte (written as 0 above).
            return (!payload.is_empty()).then(|| payload.slice(1..));
        }
        Some(payload)
    }

    fn encode_update(&self, key: u64, update: &SoUpdate) -> Bytes {
        let (type_id, payload) = if key == NOTICES_AMF3_KEY {
            (type_id::SHARED_OBJECT_AMF3, so_message_amf3(update))
        } else {
            (type_id::SHARED_OBJECT_AMF0, so_message(update).to_bytes())
        };
        let raw = RawMessage {
            csid: csid::SHARED_OBJECT,
            timestamp: 0,
            type_id,
            stream_id: 0,
            payload,
        };
        let len = raw.payload.len();
        let mut out = BytesMut::with_capacity(len + NOTICE_HEADER);
        // One chunk: the chunk size is the payload's length. A payload past
        // the chunk layer's bounds gets no shared encoding (the connection
        // then encodes it itself, and reports the error).
        let one_chunk = u32::try_from(len).unwrap_or(u32::MAX).max(1);
        match encode_standalone(&raw, one_chunk, &mut out) {
            Ok(()) => out.freeze(),
            Err(_) => Bytes::new(),
        }
    }
}

/// True if a connection with outbound chunk size `out_chunk_size` sends the
/// shared notice encoding `encoded` as it is (its payload fits one chunk).
pub fn notice_fits(encoded: &Bytes, out_chunk_size: u32) -> bool {
    !encoded.is_empty() && encoded.len() <= shared_notice_max_len(out_chunk_size)
}

/// The longest shared notice encoding a connection with outbound chunk
/// size `out_chunk_size` sends as it is.
pub fn shared_notice_max_len(out_chunk_size: u32) -> usize {
    (out_chunk_size as usize).saturating_add(NOTICE_HEADER)
}

/// The type-19 payload of a shared notice encoding (no copy), for a
/// connection that must chunk it itself; `None` if `encoded` is empty.
pub fn notice_payload(encoded: &Bytes) -> Option<Bytes> {
    standalone_payload(encoded, u32::MAX)
}

/// The type-16 payload an update makes for AMF3 connections (values are
/// in the shared model, already bounded when they came in, so the AVM+
/// values nested in them are read with the default limits).
pub fn so_message_amf3(update: &SoUpdate) -> Bytes {
    let mut out = alloc::vec::Vec::new();
    so_message(update).encode_amf3(&crate::Limits::default(), &mut out);
    Bytes::from(out)
}

/// The RTMP shared-object message (AMF0, type 19) an update makes.
pub fn so_message(update: &SoUpdate) -> SharedObjectMessage {
    let events = update
        .notices
        .iter()
        .map(|notice| match notice {
            SoNotice::UseSuccess => SoEvent::UseSuccess,
            SoNotice::Clear => SoEvent::Clear,
            SoNotice::Change { key, value } => SoEvent::Change {
                key: key.clone(),
                value: value.clone(),
            },
            SoNotice::Success { key } => SoEvent::Success { key: key.clone() },
            SoNotice::Remove { key } => SoEvent::Remove { key: key.clone() },
            SoNotice::Message { method, args } => SoEvent::SendMessage {
                method: method.clone(),
                args: args.clone(),
            },
            SoNotice::Status { code, level } => SoEvent::Status {
                code: String::from(*code),
                level: String::from(*level),
            },
        })
        .collect();
    SharedObjectMessage {
        name: update.name.clone(),
        version: update.version,
        persistent: update.persistent,
        events,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::MediaPriority;

    fn video(len: usize) -> CachedMessage {
        CachedMessage {
            kind: MediaKind::Video,
            priority: MediaPriority::Key,
            timestamp: 40,
            payload: Bytes::from(alloc::vec![0x17u8; len]),
        }
    }

    /// AMF3 players have their own media encoding: data as type 15 (the
    /// encoding byte 0 before the same body, read back without it), audio
    /// and video as for AMF0 players.
    #[test]
    fn amf3_players_get_data_as_type_15() {
        let amf0 = media_encoder(4096, 1);
        let amf3 = media_encoder_amf3(4096, 1);
        assert_ne!(amf0, amf3);
        assert_eq!(amf3, media_encoder_amf3(4096, 1));
        assert_ne!(amf3, media_encoder_amf3(128, 1));
        let data = CachedMessage {
            kind: MediaKind::Data,
            priority: MediaPriority::Data,
            timestamp: 7,
            payload: Bytes::from_static(&[0x02, 0x00, 0x01, 0x78, 0x05]),
        };
        let plain = amf0.encode_media(&data);
        let flash = amf3.encode_media(&data);
        assert_eq!(standalone_type_id(&plain), Some(type_id::DATA_AMF0));
        assert_eq!(standalone_type_id(&flash), Some(type_id::DATA_AMF3));
        let payload = standalone_payload(&flash, 4096).unwrap();
        assert_eq!(payload.first(), Some(&0));
        assert_eq!(&payload[1..], data.payload.as_ref());
        for (encoder, encoded) in [(amf0, &plain), (amf3, &flash)] {
            assert_eq!(encoder.media_body(encoded), Some(data.payload.clone()));
        }
        let frame = video(300);
        assert_eq!(amf3.encode_media(&frame), amf0.encode_media(&frame));
        assert_eq!(
            amf3.media_body(&amf3.encode_media(&frame)),
            Some(frame.payload)
        );
        // Across chunks too.
        let small = media_encoder_amf3(2, 1);
        assert_eq!(
            small.media_body(&small.encode_media(&data)),
            Some(data.payload)
        );
    }

    #[test]
    fn media_bodies_read_back_from_one_or_many_chunks() {
        for (chunk_size, len) in [(4096, 100), (128, 1000), (2, 5)] {
            let encoder = media_encoder(chunk_size, 1);
            let message = video(len);
            let encoded = encoder.encode_media(&message);
            assert_eq!(encoder.media_body(&encoded), Some(message.payload.clone()));
        }
    }

    #[test]
    fn players_differ_by_chunk_size_and_stream_only() {
        assert_eq!(media_encoder(4096, 1), media_encoder(4096, 1));
        assert_ne!(media_encoder(4096, 1), media_encoder(4096, 2));
        assert_ne!(media_encoder(4096, 1), media_encoder(128, 1));
    }

    #[test]
    fn a_notice_is_one_chunk_that_fits_or_a_payload_to_chunk() {
        let update = SoUpdate::new(
            "o".into(),
            false,
            1,
            alloc::vec![SoNotice::Change {
                key: "k".into(),
                value: crate::amf0::Value::string("v".repeat(200)),
            }],
        );
        let encoded = notices_encoder().encode_update(&update);
        let payload = so_message(&update).to_bytes();
        assert_eq!(encoded.len(), payload.len() + NOTICE_HEADER);
        assert_eq!(notice_payload(&encoded), Some(payload.clone()));
        assert!(notice_fits(&encoded, 4096));
        assert!(notice_fits(&encoded, payload.len() as u32));
        assert!(!notice_fits(&encoded, payload.len() as u32 - 1));
        assert!(!notice_fits(&Bytes::new(), 4096));
    }

    /// AMF3 connections share their own notice encoding: type 16, encoding
    /// byte 0, every value as one AVM+ value (an integer-valued number as
    /// an AMF3 integer).
    #[test]
    fn amf3_notices_are_type_16_with_avmplus_values() {
        assert_ne!(notices_encoder(), notices_encoder_amf3());
        assert_eq!(notices_encoder_amf3(), notices_encoder_amf3());
        let update = SoUpdate::new(
            "o".into(),
            false,
            1,
            alloc::vec![SoNotice::Change {
                key: "k".into(),
                value: crate::amf0::Value::Number(5.0),
            }],
        );
        let encoded = notices_encoder_amf3().encode_update(&update);
        // fmt 0 on chunk stream 9; the type id is the header's 8th byte.
        assert_eq!(encoded.first(), Some(&csid::SHARED_OBJECT.to_le_bytes()[0]));
        assert_eq!(encoded.get(7), Some(&type_id::SHARED_OBJECT_AMF3));
        let payload = notice_payload(&encoded).unwrap();
        assert_eq!(payload, so_message_amf3(&update));
        assert_eq!(payload.first(), Some(&0), "the encoding byte");
        // The change event's value: AVM+ then AMF3 integer 5.
        assert!(payload.ends_with(&[0x00, 0x01, b'k', 0x11, 0x04, 0x05]));
    }
}
