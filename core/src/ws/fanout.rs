//! WebSocket's fan-out codec: shared-object updates as protocol v1 JSON
//! text frames, encoded once for every JSON subscriber (server frames are
//! unmasked, so every subscriber is sent the same bytes).
//!
//! Chat-mode connections bring no encoder: they render only chat lines,
//! per connection. WebSocket clients do not play streams, so the codec
//! encodes no media.

use super::frame::{FrameHeader, Opcode};
use super::json::update_messages;
use crate::hub::stream::CachedMessage;
use crate::hub::{Encoder, FanoutCodec, SoUpdate};
use bytes::{BufMut, Bytes, BytesMut};

/// The JSON protocol's codec (stateless).
#[derive(Debug)]
pub struct WsJsonCodec;

static WS_JSON: WsJsonCodec = WsJsonCodec;

/// The encoder of a JSON-mode connection's shared-object notices.
pub fn notices_encoder() -> Encoder {
    Encoder::new(&WS_JSON, 0)
}

impl FanoutCodec for WsJsonCodec {
    fn name(&self) -> &'static str {
        "ws-json"
    }

    fn encode_media(&self, _key: u64, _message: &CachedMessage) -> Bytes {
        Bytes::new()
    }

    fn media_body(&self, _key: u64, _encoded: &Bytes) -> Option<Bytes> {
        None
    }

    /// The update's text frames, in order, back to back in one buffer.
    fn encode_update(&self, _key: u64, update: &SoUpdate) -> Bytes {
        let texts = update_messages(update);
        let len: usize = texts.iter().map(|t| t.len() + 10).sum();
        let mut out = BytesMut::with_capacity(len);
        for text in &texts {
            FrameHeader {
                fin: true,
                rsv: 0,
                opcode: Opcode::Text.as_u8(),
                mask: None,
                len: text.len() as u64,
            }
            .encode(&mut out);
            out.put_slice(text.as_bytes());
        }
        out.freeze()
    }
}
