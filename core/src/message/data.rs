//! Data messages (type 18 AMF0, type 15 AMF3-prefixed): notifications such
//! as `@setDataFrame onMetaData {…}` from encoders, and `NetStream.send`
//! calls. A type-15 payload is the encoding byte 0 then AMF0 values, any of
//! which may be one AMF3 value behind an AVM+ switch (0x11).

use super::MessageError;
use crate::Limits;
use crate::amf0::{self, Value};
use alloc::vec::Vec;
use bytes::Bytes;

/// Handler name encoders prefix metadata with.
pub const SET_DATA_FRAME: &str = "@setDataFrame";
/// Metadata handler name players receive.
pub const ON_METADATA: &str = "onMetaData";

/// A data message: a sequence of AMF0 values, usually a handler name first.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct DataMessage {
    /// The values in order.
    pub values: Vec<Value>,
}

impl DataMessage {
    /// Parses AMF0 values (for type 15 the caller strips the leading
    /// encoding byte first). An empty payload is an empty message.
    pub fn decode(payload: &[u8], limits: &Limits) -> Result<Self, MessageError> {
        let values = amf0::decode_all(payload, limits).map_err(|error| MessageError::Amf0 {
            what: "data message",
            error,
        })?;
        Ok(DataMessage { values })
    }

    /// Parses a type-15 payload (after its encoding byte): like
    /// [`decode`](Self::decode), with every AVM+ value put into the shared
    /// model, so what an AMF3 publisher sends reads (and is relayed) as an
    /// AMF0 publisher's would be. The AVM+ values of the payload share one
    /// set of AMF3 reference tables ([`crate::amf3::unwrap_body`]).
    pub fn decode_amf3(payload: &[u8], limits: &Limits) -> Result<Self, MessageError> {
        let mut values = amf0::BodyDecoder::new(limits)
            .decode_all(payload)
            .map_err(|error| MessageError::Amf0 {
                what: "data message",
                error,
            })?;
        crate::amf3::unwrap_body(&mut values, limits).map_err(|error| MessageError::Amf3 {
            what: "data message",
            error,
        })?;
        Ok(DataMessage { values })
    }

    /// `onMetaData` followed by `metadata`: what players are sent.
    pub fn on_metadata(metadata: Value) -> Self {
        DataMessage {
            values: alloc::vec![Value::string(ON_METADATA), metadata],
        }
    }

    /// The first value if it is a string (the handler name).
    pub fn handler(&self) -> Option<&str> {
        self.values.first()?.as_str()
    }

    /// Whether the first value is `@setDataFrame` (encoder-side metadata).
    pub fn is_set_data_frame(&self) -> bool {
        self.handler() == Some(SET_DATA_FRAME)
    }

    /// The metadata object (object or ECMA array) of either
    /// `@setDataFrame, onMetaData, {…}` or `onMetaData, {…}`.
    pub fn metadata(&self) -> Option<&Value> {
        let rest = if self.is_set_data_frame() {
            self.values.get(1..)?
        } else {
            self.values.as_slice()
        };
        match rest {
            [name, meta, ..]
                if name.as_str() == Some(ON_METADATA) && meta.properties().is_some() =>
            {
                Some(meta)
            }
            _ => None,
        }
    }

    /// Drops a leading `@setDataFrame`, leaving what a server stores and
    /// sends to players (`onMetaData, {…}`), as nginx-rtmp does. Other
    /// messages are returned unchanged.
    pub fn without_set_data_frame(mut self) -> Self {
        if self.is_set_data_frame() {
            self.values.remove(0);
        }
        self
    }

    /// Appends the AMF0 encoding (type 18 payload) to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        for v in &self.values {
            amf0::encode(v, out);
        }
    }

    /// The AMF0 encoding as a shareable buffer.
    pub fn to_bytes(&self) -> Bytes {
        let mut out = Vec::new();
        self.encode(&mut out);
        Bytes::from(out)
    }
}
