//! User Control messages (type 4): a u16 event type then event data.

use super::MessageError;
use super::cursor::Reader;
use alloc::vec::Vec;
use bytes::Bytes;

/// Event type ids of the User Control events this crate names.
pub mod event {
    /// Stream Begin.
    pub const STREAM_BEGIN: u16 = 0;
    /// Stream EOF.
    pub const STREAM_EOF: u16 = 1;
    /// Stream Dry.
    pub const STREAM_DRY: u16 = 2;
    /// Set Buffer Length.
    pub const SET_BUFFER_LENGTH: u16 = 3;
    /// Stream Is Recorded.
    pub const STREAM_IS_RECORDED: u16 = 4;
    /// Ping Request.
    pub const PING_REQUEST: u16 = 6;
    /// Ping Response.
    pub const PING_RESPONSE: u16 = 7;
}

/// One User Control event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UserControl {
    /// 0: the stream with this id is now usable.
    StreamBegin(u32),
    /// 1: playback of this stream ended.
    StreamEof(u32),
    /// 2: no more data on this stream for now.
    StreamDry(u32),
    /// 3: the client's buffer length for a stream.
    SetBufferLength {
        /// Message stream id.
        stream_id: u32,
        /// Buffer length in milliseconds.
        millis: u32,
    },
    /// 4: the stream is a recorded one.
    StreamIsRecorded(u32),
    /// 6: server asks the client to echo this timestamp.
    PingRequest(u32),
    /// 7: echo of a Ping Request's timestamp.
    PingResponse(u32),
    /// Any other event (e.g. SWF verification 0x1A/0x1B, buffer empty/ready
    /// 0x1F/0x20), carried as-is.
    Unknown {
        /// The u16 event type.
        event_type: u16,
        /// The bytes after the event type.
        data: Bytes,
    },
}

impl UserControl {
    /// Parses a type-4 payload. Bytes after a known event's fields are
    /// ignored; an event shorter than its fields is an error.
    pub fn decode(payload: &[u8]) -> Result<Self, MessageError> {
        let mut r = Reader::new(payload);
        let event_type = r.u16("User Control event type")?;
        let ev = match event_type {
            event::STREAM_BEGIN => UserControl::StreamBegin(r.u32("User Control StreamBegin")?),
            event::STREAM_EOF => UserControl::StreamEof(r.u32("User Control StreamEOF")?),
            event::STREAM_DRY => UserControl::StreamDry(r.u32("User Control StreamDry")?),
            event::SET_BUFFER_LENGTH => UserControl::SetBufferLength {
                stream_id: r.u32("User Control SetBufferLength stream id")?,
                millis: r.u32("User Control SetBufferLength length")?,
            },
            event::STREAM_IS_RECORDED => {
                UserControl::StreamIsRecorded(r.u32("User Control StreamIsRecorded")?)
            }
            event::PING_REQUEST => UserControl::PingRequest(r.u32("User Control PingRequest")?),
            event::PING_RESPONSE => UserControl::PingResponse(r.u32("User Control PingResponse")?),
            other => UserControl::Unknown {
                event_type: other,
                data: Bytes::copy_from_slice(r.remaining()),
            },
        };
        Ok(ev)
    }

    /// The u16 event type.
    pub fn event_type(&self) -> u16 {
        match self {
            UserControl::StreamBegin(_) => event::STREAM_BEGIN,
            UserControl::StreamEof(_) => event::STREAM_EOF,
            UserControl::StreamDry(_) => event::STREAM_DRY,
            UserControl::SetBufferLength { .. } => event::SET_BUFFER_LENGTH,
            UserControl::StreamIsRecorded(_) => event::STREAM_IS_RECORDED,
            UserControl::PingRequest(_) => event::PING_REQUEST,
            UserControl::PingResponse(_) => event::PING_RESPONSE,
            UserControl::Unknown { event_type, .. } => *event_type,
        }
    }

    /// Appends the payload bytes to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.event_type().to_be_bytes());
        match self {
            UserControl::StreamBegin(v)
            | UserControl::StreamEof(v)
            | UserControl::StreamDry(v)
            | UserControl::StreamIsRecorded(v)
            | UserControl::PingRequest(v)
            | UserControl::PingResponse(v) => out.extend_from_slice(&v.to_be_bytes()),
            UserControl::SetBufferLength { stream_id, millis } => {
                out.extend_from_slice(&stream_id.to_be_bytes());
                out.extend_from_slice(&millis.to_be_bytes());
            }
            UserControl::Unknown { data, .. } => out.extend_from_slice(data),
        }
    }

    /// The payload as a shareable buffer.
    pub fn to_bytes(&self) -> Bytes {
        let mut out = Vec::with_capacity(10);
        self.encode(&mut out);
        Bytes::from(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::tests::hex;

    fn check(body: &str, expected: UserControl) {
        let body = hex(body);
        let m = UserControl::decode(&body).unwrap();
        assert_eq!(m, expected);
        assert_eq!(&m.to_bytes()[..], &body[..]);
    }

    #[test]
    fn protocol_note_vectors() {
        // `42 000000 000006 04 0007 ce4c5f73` and its fmt-3 follower.
        check("0007ce4c5f73", UserControl::PingResponse(0xce4c_5f73));
        check("0007ce4c6743", UserControl::PingResponse(0xce4c_6743));
        // SetBufferLength stream 0 / 1, 5000 ms.
        check(
            "00030000000000001388",
            UserControl::SetBufferLength {
                stream_id: 0,
                millis: 5000,
            },
        );
        check(
            "00030000000100001388",
            UserControl::SetBufferLength {
                stream_id: 1,
                millis: 5000,
            },
        );
    }

    #[test]
    fn every_event_round_trips() {
        check("000000000001", UserControl::StreamBegin(1));
        check("000100000001", UserControl::StreamEof(1));
        check("000200000001", UserControl::StreamDry(1));
        check("000400000001", UserControl::StreamIsRecorded(1));
        check("000600000010", UserControl::PingRequest(16));
        check(
            "001a01",
            UserControl::Unknown {
                event_type: 0x1a,
                data: Bytes::from_static(&[1]),
            },
        );
    }

    #[test]
    fn truncated() {
        assert!(matches!(
            UserControl::decode(&[0]),
            Err(MessageError::Truncated { .. })
        ));
        assert!(matches!(
            UserControl::decode(&[0, 3, 0, 0, 0, 1, 0, 0]),
            Err(MessageError::Truncated {
                what: "User Control SetBufferLength length"
            })
        ));
    }
}
