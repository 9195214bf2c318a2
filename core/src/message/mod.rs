//! RTMP messages: the meaning of a [`RawMessage`]'s payload.
//!
//! [`Message::decode`] turns a reassembled message into a typed value;
//! [`Message::encode`] gives back the type id and payload to chunk. The
//! submodules hold each family: [`ProtocolControl`] (types 1, 2, 3, 5, 6),
//! [`UserControl`] (4), [`Command`] (20, 17) with its typed views
//! [`ClientCommand`] and [`ServerReply`] and the reply builders, [`DataMessage`]
//! (18, 15), [`SharedObjectMessage`] (19, 16), and [`media`] inspection of
//! audio/video payloads, which otherwise stay opaque [`Bytes`].
//!
//! AMF3-typed messages (15, 16, 17) are accepted when their leading encoding
//! byte is 0 and the rest is AMF0 (what Flash sends with objectEncoding 3:
//! its AMF3 values follow AVM+ switches, 0x11). They decode to the same
//! variants as their AMF0 twins, so [`Message::encode`] produces the AMF0
//! types 18, 19 and 20. Shared-object values and arguments (types 16 and
//! 19), every value of a type-17 command and of type-15 data come out in
//! the shared value model: every AVM+ value is decoded with
//! [`crate::amf3`] and replaced by its AMF0 form where AMF0 has one
//! ([`crate::amf3::unwrap_avmplus`]). For an AMF3 peer, type 16 is written
//! with [`SharedObjectMessage::encode_amf3`], type 17 with
//! [`Command::encode_amf3`] and type 15 as the encoding byte 0 before the
//! type-18 body (which kinds go in which form: "One value model" in
//! docs/architecture.md).

mod command;
mod control;
mod cursor;
mod data;
pub mod media;
mod shared_object;
mod user_control;

pub use command::{
    ClientCommand, Command, ConnectParams, FMS_VERSION, MAX_NOTED_NAME, PublishKind, Reading,
    ServerReply, StatusLevel, StreamRef, Tolerated, connect_error, connect_result,
    create_stream_result, error, on_bw_done, on_fc_publish, on_fc_unpublish, on_status, result,
    split_stream_name, status,
};
pub use control::{BandwidthLimit, ProtocolControl};
pub use data::{DataMessage, ON_METADATA, SET_DATA_FRAME};
pub use media::{AudioTag, AudioTagInfo, VideoTag, VideoTagInfo};
pub use shared_object::{
    FLAG_PERSISTENT, MAX_SO_EVENTS, SharedObjectMessage, SharedObjectView, SoEvent, SoEventView,
    SoEventViews, so_event_name, so_event_type,
};
pub use user_control::{UserControl, event as user_control_event};

use crate::Limits;
use crate::amf0::Amf0Error;
use crate::chunk::RawMessage;
use bytes::Bytes;
use core::fmt;

/// Message type ids.
pub mod type_id {
    /// Set Chunk Size.
    pub const SET_CHUNK_SIZE: u8 = 1;
    /// Abort.
    pub const ABORT: u8 = 2;
    /// Acknowledgement ("bytes read").
    pub const ACKNOWLEDGEMENT: u8 = 3;
    /// User Control ("ping").
    pub const USER_CONTROL: u8 = 4;
    /// Window Acknowledgement Size ("server bandwidth").
    pub const WINDOW_ACK_SIZE: u8 = 5;
    /// Set Peer Bandwidth ("client bandwidth").
    pub const SET_PEER_BANDWIDTH: u8 = 6;
    /// Audio.
    pub const AUDIO: u8 = 8;
    /// Video.
    pub const VIDEO: u8 = 9;
    /// Data, AMF3 encoding byte then AMF0 values.
    pub const DATA_AMF3: u8 = 15;
    /// Shared object, AMF3 encoding byte then the AMF0 layout.
    pub const SHARED_OBJECT_AMF3: u8 = 16;
    /// Command, AMF3 encoding byte then AMF0 values.
    pub const COMMAND_AMF3: u8 = 17;
    /// Data, AMF0 ("notify").
    pub const DATA_AMF0: u8 = 18;
    /// Shared object, AMF0.
    pub const SHARED_OBJECT_AMF0: u8 = 19;
    /// Command, AMF0 ("invoke").
    pub const COMMAND_AMF0: u8 = 20;
    /// Aggregate (several FLV tags in one message).
    pub const AGGREGATE: u8 = 22;
}

/// Why a message payload could not be understood. Each variant says which
/// message or field was wrong.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum MessageError {
    /// The payload ended while reading `what`.
    Truncated {
        /// The field being read.
        what: &'static str,
    },
    /// Set Chunk Size of 0 or above 2^31-1.
    InvalidChunkSize(u32),
    /// Set Peer Bandwidth limit type other than 0, 1, 2.
    InvalidBandwidthLimit(u8),
    /// A decoder for one family was handed another type id.
    UnexpectedType {
        /// The family expected.
        expected: &'static str,
        /// The type id given.
        type_id: u8,
    },
    /// An AMF3-typed message (15, 16, 17) whose leading encoding byte is not 0.
    Amf3Encoding {
        /// The message type id.
        type_id: u8,
        /// The leading byte found.
        byte: u8,
    },
    /// An AMF3 value (after an AVM+ switch) failed to decode inside `what`.
    Amf3 {
        /// Where the value was (SO value, SO message argument, command
        /// argument).
        what: &'static str,
        /// The AMF3 error.
        error: crate::amf3::DecodeError,
    },
    /// AMF0 decoding failed inside `what`.
    Amf0 {
        /// Where the AMF0 value was (command, data message, SO value…).
        what: &'static str,
        /// The AMF0 error.
        error: Amf0Error,
    },
    /// A required field of a command is absent (or null/undefined).
    MissingField {
        /// Command name (or "command message" for the header).
        command: &'static str,
        /// Field name.
        field: &'static str,
    },
    /// A field of a command has the wrong AMF0 type or value.
    WrongType {
        /// Command name.
        command: &'static str,
        /// Field name.
        field: &'static str,
        /// What was expected.
        expected: &'static str,
    },
    /// A length-prefixed string is not UTF-8.
    InvalidUtf8 {
        /// The field.
        what: &'static str,
    },
    /// Shared-object event type outside 1..=11.
    UnknownSoEvent(u8),
    /// A shared-object event's length runs past the message.
    SoEventOverrun {
        /// Event type code.
        event_type: u8,
        /// Length announced.
        length: u32,
        /// Bytes actually left.
        available: usize,
    },
    /// A shared-object event's payload has bytes after its fields.
    SoEventTrailing {
        /// Event type code.
        event_type: u8,
        /// Unread byte count.
        extra: usize,
    },
    /// More shared-object events in one message than allowed.
    TooManySoEvents {
        /// The bound ([`MAX_SO_EVENTS`]).
        limit: usize,
    },
    /// An audio or video message with no bytes.
    EmptyMedia {
        /// `"audio"` or `"video"`.
        what: &'static str,
    },
    /// Video frame type 0, 6 or 7.
    InvalidVideoFrameType(u8),
}

impl fmt::Display for MessageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MessageError::Truncated { what } => write!(f, "message ends inside {what}"),
            MessageError::InvalidChunkSize(n) => {
                write!(f, "Set Chunk Size {n} is outside 1..=2147483647")
            }
            MessageError::InvalidBandwidthLimit(n) => {
                write!(f, "Set Peer Bandwidth limit type {n} is not 0, 1 or 2")
            }
            MessageError::UnexpectedType { expected, type_id } => {
                write!(f, "message type {type_id} is not a {expected} message")
            }
            MessageError::Amf3Encoding { type_id, byte } => write!(
                f,
                "message type {type_id} starts with encoding byte {byte:#04x}, expected 0x00"
            ),
            MessageError::Amf0 { what, error } => write!(f, "{what}: {error}"),
            MessageError::Amf3 { what, error } => write!(f, "{what}: {error}"),
            MessageError::MissingField { command, field } => {
                write!(f, "{command}: required field {field} is missing")
            }
            MessageError::WrongType {
                command,
                field,
                expected,
            } => write!(f, "{command}: field {field} must be {expected}"),
            MessageError::InvalidUtf8 { what } => write!(f, "{what} is not valid UTF-8"),
            MessageError::UnknownSoEvent(t) => {
                write!(f, "shared object event type {t:#04x} is not defined")
            }
            MessageError::SoEventOverrun {
                event_type,
                length,
                available,
            } => write!(
                f,
                "shared object {} event announces {length} bytes but {available} remain",
                so_event_name(*event_type)
            ),
            MessageError::SoEventTrailing { event_type, extra } => write!(
                f,
                "shared object {} event has {extra} unread bytes",
                so_event_name(*event_type)
            ),
            MessageError::TooManySoEvents { limit } => {
                write!(f, "shared object message has more than {limit} events")
            }
            MessageError::EmptyMedia { what } => write!(f, "empty {what} message"),
            MessageError::InvalidVideoFrameType(t) => {
                write!(f, "video frame type {t} is not defined")
            }
        }
    }
}

impl core::error::Error for MessageError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            MessageError::Amf0 { error, .. } => Some(error),
            _ => None,
        }
    }
}

/// A decoded RTMP message.
#[derive(Clone, Debug, PartialEq)]
pub enum Message {
    /// Types 1, 2, 3, 5, 6.
    Control(ProtocolControl),
    /// Type 4.
    UserControl(UserControl),
    /// Type 8, payload untouched (see [`AudioTag`]).
    Audio(Bytes),
    /// Type 9, payload untouched (see [`VideoTag`]).
    Video(Bytes),
    /// Types 20 and 17.
    Command(Command),
    /// Types 18 and 15.
    Data(DataMessage),
    /// Types 19 and 16.
    SharedObject(SharedObjectMessage),
    /// Type 22, payload untouched.
    Aggregate(Bytes),
    /// Any other type id, kept so the caller can log or ignore it.
    Unknown {
        /// The type id.
        type_id: u8,
        /// The payload.
        payload: Bytes,
    },
}

/// Strips the leading encoding byte of an AMF3-typed message; it must be 0.
fn strip_amf3(type_id: u8, payload: &[u8]) -> Result<&[u8], MessageError> {
    match payload.split_first() {
        Some((0, rest)) => Ok(rest),
        Some((&byte, _)) => Err(MessageError::Amf3Encoding { type_id, byte }),
        None => Err(MessageError::Truncated {
            what: "AMF3 encoding byte",
        }),
    }
}

impl Message {
    /// Interprets a reassembled message. Media and aggregate payloads are
    /// shared, not copied.
    pub fn decode(raw: &RawMessage, limits: &Limits) -> Result<Message, MessageError> {
        let p: &[u8] = raw.payload.as_ref();
        let m = match raw.type_id {
            type_id::SET_CHUNK_SIZE
            | type_id::ABORT
            | type_id::ACKNOWLEDGEMENT
            | type_id::WINDOW_ACK_SIZE
            | type_id::SET_PEER_BANDWIDTH => {
                Message::Control(ProtocolControl::decode(raw.type_id, p)?)
            }
            type_id::USER_CONTROL => Message::UserControl(UserControl::decode(p)?),
            type_id::AUDIO => Message::Audio(raw.payload.clone()),
            type_id::VIDEO => Message::Video(raw.payload.clone()),
            type_id::COMMAND_AMF0 => Message::Command(Command::decode(p, limits)?),
            type_id::COMMAND_AMF3 => {
                Message::Command(Command::decode_amf3(strip_amf3(raw.type_id, p)?, limits)?)
            }
            type_id::DATA_AMF0 => Message::Data(DataMessage::decode(p, limits)?),
            type_id::DATA_AMF3 => Message::Data(DataMessage::decode_amf3(
                strip_amf3(raw.type_id, p)?,
                limits,
            )?),
            type_id::SHARED_OBJECT_AMF0 => {
                Message::SharedObject(SharedObjectMessage::decode(p, limits)?)
            }
            type_id::SHARED_OBJECT_AMF3 => Message::SharedObject(SharedObjectMessage::decode(
                strip_amf3(raw.type_id, p)?,
                limits,
            )?),
            type_id::AGGREGATE => Message::Aggregate(raw.payload.clone()),
            other => Message::Unknown {
                type_id: other,
                payload: raw.payload.clone(),
            },
        };
        Ok(m)
    }

    /// The type-19 payload of a shared-object message (type 16 with its
    /// leading encoding byte stripped), shared, not copied; `None` for every
    /// other type. Read it with [`SharedObjectView`].
    pub fn shared_object_payload(raw: &RawMessage) -> Result<Option<Bytes>, MessageError> {
        match raw.type_id {
            type_id::SHARED_OBJECT_AMF0 => Ok(Some(raw.payload.clone())),
            type_id::SHARED_OBJECT_AMF3 => {
                strip_amf3(raw.type_id, &raw.payload)?;
                Ok(Some(raw.payload.slice(1..)))
            }
            _ => Ok(None),
        }
    }

    /// The type id [`Message::encode`] uses (AMF0 types for commands, data
    /// and shared objects).
    pub fn type_id(&self) -> u8 {
        match self {
            Message::Control(c) => c.type_id(),
            Message::UserControl(_) => type_id::USER_CONTROL,
            Message::Audio(_) => type_id::AUDIO,
            Message::Video(_) => type_id::VIDEO,
            Message::Command(_) => type_id::COMMAND_AMF0,
            Message::Data(_) => type_id::DATA_AMF0,
            Message::SharedObject(_) => type_id::SHARED_OBJECT_AMF0,
            Message::Aggregate(_) => type_id::AGGREGATE,
            Message::Unknown { type_id, .. } => *type_id,
        }
    }

    /// Type id and payload, ready for the chunk encoder. Commands, data and
    /// shared objects are always written as AMF0 (types 20, 18, 19).
    pub fn encode(&self) -> (u8, Bytes) {
        let payload = match self {
            Message::Control(c) => c.to_bytes(),
            Message::UserControl(u) => u.to_bytes(),
            Message::Audio(b) | Message::Video(b) | Message::Aggregate(b) => b.clone(),
            Message::Unknown { payload, .. } => payload.clone(),
            Message::Command(c) => c.to_bytes(),
            Message::Data(d) => d.to_bytes(),
            Message::SharedObject(s) => s.to_bytes(),
        };
        (self.type_id(), payload)
    }
}

impl From<ProtocolControl> for Message {
    fn from(m: ProtocolControl) -> Self {
        Message::Control(m)
    }
}

impl From<UserControl> for Message {
    fn from(m: UserControl) -> Self {
        Message::UserControl(m)
    }
}

impl From<Command> for Message {
    fn from(m: Command) -> Self {
        Message::Command(m)
    }
}

impl From<DataMessage> for Message {
    fn from(m: DataMessage) -> Self {
        Message::Data(m)
    }
}

impl From<SharedObjectMessage> for Message {
    fn from(m: SharedObjectMessage) -> Self {
        Message::SharedObject(m)
    }
}

#[cfg(test)]
mod tests;
