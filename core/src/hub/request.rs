//! The protocol-neutral vocabulary between connections and the hub.
//!
//! RTMP and WebSocket connections both turn their peer's bytes into
//! [`Request`]s and turn [`Delivery`]s back into bytes, so the hub never knows
//! which protocol a client speaks (except for media, which only RTMP clients
//! play, and which the hub hands over already chunked — see [`MediaRoute`]).

use crate::amf0::Value;
use crate::message::{SharedObjectMessage, SoEvent};
use crate::scope_path::ScopePath;
use crate::time::Duration;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use bytes::Bytes;
use core::fmt;
use core::net::IpAddr;

/// A connection's identity, chosen by the runtime, unique while it lives.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConnId(pub u64);

impl fmt::Debug for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "c{}", self.0)
    }
}

impl fmt::Display for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "c{}", self.0)
    }
}

/// Which wire protocol a connection speaks (for hooks, stats and logs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Protocol {
    /// RTMP over TCP.
    Rtmp,
    /// WebSocket with tern's JSON protocol (or Red5 chat mode).
    WebSocket,
}

/// What a client asks for when it joins a scope.
#[derive(Clone, Debug, PartialEq)]
pub struct ConnectRequest {
    /// Wire protocol.
    pub protocol: Protocol,
    /// `app[/room…][?query]`: RTMP's `connect.app` (with the `tcUrl` query
    /// appended when `app` has none), or a WebSocket request path.
    pub target: String,
    /// The RTMP connect command object (`Value::Null` for WebSocket), for hooks.
    pub params: Value,
    /// Extra connect arguments after the command object (tokens etc.).
    pub args: Vec<Value>,
    /// The client's address, for the per-address connection cap.
    pub address: Option<IpAddr>,
}

impl ConnectRequest {
    /// The query part of `target` (after `?`), or `""`.
    pub fn query(&self) -> &str {
        crate::scope_path::split_query(&self.target).1
    }
}

/// One change inside a shared-object batch.
#[derive(Clone, Debug, PartialEq)]
pub enum SoChange {
    /// Set `key` to `value`.
    Set { key: String, value: Value },
    /// Delete `key`.
    Delete { key: String },
}

/// What a client does to a shared object.
#[derive(Clone, Debug, PartialEq)]
pub enum SoOp {
    /// Subscribe (and create if needed); answered with the whole state.
    Use,
    /// Unsubscribe.
    Release,
    /// Apply all changes atomically as one version step.
    Batch(Vec<SoChange>),
    /// Broadcast a call to every subscriber, the sender included.
    Send { method: String, args: Vec<Value> },
}

/// Where and how a player's media is chunked. Players with the same route
/// share one encoding of each media message (encode once, send many).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MediaRoute {
    /// The player connection's outgoing chunk size.
    pub chunk_size: u32,
    /// The player's message stream id.
    pub stream_id: u32,
}

/// Chunk stream ids used for relayed media and shared-object notices.
/// Connections must not use them for anything else: shared encodings start
/// with a fmt-0 header and a connection's own header compression must never
/// refer to them.
pub mod media_csid {
    /// Audio messages.
    pub const AUDIO: u32 = 6;
    /// Video messages.
    pub const VIDEO: u32 = 7;
    /// Data messages (metadata).
    pub const DATA: u32 = 8;
    /// Shared-object notices ([`SoUpdate::rtmp_chunks`](super::SoUpdate::rtmp_chunks)).
    pub const SHARED_OBJECT: u32 = 9;
}

/// Kind of a media message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MediaKind {
    /// Type 8.
    Audio,
    /// Type 9.
    Video,
    /// Type 18 (AMF0 data, e.g. `@setDataFrame onMetaData`).
    Data,
}

/// A request from a connection to the hub.
#[derive(Clone, Debug, PartialEq)]
pub enum Request {
    /// Join a scope. Must come first; anything before it is refused.
    Connect(ConnectRequest),
    /// The connection is gone (socket closed or protocol error).
    Disconnect,
    /// An operation on shared object `name` of the connection's scope.
    SharedObject {
        /// Object name (validated like a scope segment).
        name: String,
        /// Persistence the client expects.
        persistent: bool,
        /// What to do.
        op: SoOp,
    },
    /// Publish live stream `name` (may carry `?query`) on message stream `stream`.
    Publish { stream: u32, name: String },
    /// Play live stream `name` on message stream `stream`.
    Play {
        /// Player's message stream id.
        stream: u32,
        /// Stream name (may carry `?query`).
        name: String,
        /// RTMP play `start`: -2 live or recorded, -1 live only, ≥0 recorded.
        start: f64,
        /// How to chunk media for this player.
        route: MediaRoute,
    },
    /// Stop publishing or playing on message stream `stream`
    /// (closeStream, deleteStream, FCUnpublish).
    CloseStream { stream: u32 },
    /// A media message from a publisher.
    Media {
        /// Publisher's message stream id.
        stream: u32,
        /// Audio, video or data.
        kind: MediaKind,
        /// Publisher's timestamp (ms, wrapping).
        timestamp: u32,
        /// The message body, untouched (Enhanced-RTMP FourCC payloads too).
        payload: Bytes,
    },
}

/// A shared-object notification, protocol-neutral. RTMP encodes it as one
/// shared-object message; WebSocket as JSON frames.
#[derive(Clone, Debug, PartialEq)]
pub enum SoNotice {
    /// The use was accepted; the full state follows (`Clear`, then `Change`s).
    UseSuccess,
    /// Forget every key.
    Clear,
    /// `key` now has `value`.
    Change { key: String, value: Value },
    /// The receiver's own set of `key` was applied.
    Success { key: String },
    /// `key` was deleted.
    Remove { key: String },
    /// A broadcast call.
    Message { method: String, args: Vec<Value> },
    /// A status (error) such as `SharedObject.NoWriteAccess`, level `error`.
    Status {
        code: &'static str,
        level: &'static str,
    },
}

/// One batch of notices for one shared object, at one version. Shared
/// between all receivers of the same notices.
///
/// It carries its RTMP encoding, made once when the update is made: the
/// type-19 payload, and that payload as one chunk with a fmt-0 header on
/// [`media_csid::SHARED_OBJECT`], which every RTMP subscriber whose chunk
/// size fits it is sent as is; and the WebSocket text frames of the JSON
/// protocol (server frames are unmasked, so every JSON subscriber gets the
/// same bytes). A fan-out encodes and allocates nothing per subscriber.
#[derive(Clone, Debug, PartialEq)]
pub struct SoUpdate {
    /// Object name.
    pub name: String,
    /// Whether the object is persistent.
    pub persistent: bool,
    /// Version after the batch (unchanged for use, send and status).
    pub version: u32,
    /// What happened, in order.
    pub notices: Vec<SoNotice>,
    rtmp_payload: Bytes,
    rtmp_chunks: Bytes,
    ws_frames: Vec<Bytes>,
}

impl SoUpdate {
    /// An update, with its RTMP encoding.
    pub fn new(name: String, persistent: bool, version: u32, notices: Vec<SoNotice>) -> Self {
        let mut update = SoUpdate {
            name,
            persistent,
            version,
            notices,
            rtmp_payload: Bytes::new(),
            rtmp_chunks: Bytes::new(),
            ws_frames: Vec::new(),
        };
        update.ws_frames = crate::ws::json::update_messages(&update)
            .iter()
            .map(|text| {
                crate::ws::frame::encode_frame(crate::ws::frame::Opcode::Text, text.as_bytes())
            })
            .collect();
        update.rtmp_payload = update.to_message().to_bytes();
        let raw = crate::chunk::RawMessage {
            csid: media_csid::SHARED_OBJECT,
            timestamp: 0,
            type_id: crate::message::type_id::SHARED_OBJECT_AMF0,
            stream_id: 0,
            payload: update.rtmp_payload.clone(),
        };
        let len = update.rtmp_payload.len();
        let mut out = bytes::BytesMut::with_capacity(len + 12);
        // One chunk: the chunk size is the payload's length. A payload past
        // the chunk layer's bounds gets no shared encoding (the connection
        // then encodes it itself, and reports the error).
        let one_chunk = u32::try_from(len).unwrap_or(u32::MAX).max(1);
        if crate::chunk::encode_standalone(&raw, one_chunk, &mut out).is_ok() {
            update.rtmp_chunks = out.freeze();
        }
        update
    }

    /// The RTMP shared-object message (AMF0, type 19) these notices make.
    pub fn to_message(&self) -> SharedObjectMessage {
        let events = self
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
            name: self.name.clone(),
            version: self.version,
            persistent: self.persistent,
            events,
        }
    }

    /// The encoded type-19 payload of [`to_message`](Self::to_message).
    pub fn rtmp_payload(&self) -> &Bytes {
        &self.rtmp_payload
    }

    /// The WebSocket text frames a JSON-protocol (`tern.v1`) subscriber is
    /// sent for this update, in order.
    pub fn ws_text_frames(&self) -> &[Bytes] {
        &self.ws_frames
    }

    /// [`rtmp_payload`](Self::rtmp_payload) as one whole chunk on
    /// [`media_csid::SHARED_OBJECT`] (fmt 0, timestamp 0, message stream 0),
    /// for connections whose outbound chunk size is at least the payload's
    /// length. Empty if the payload cannot be chunked.
    pub fn rtmp_chunks(&self) -> &Bytes {
        &self.rtmp_chunks
    }
}

/// Status levels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    /// `status`.
    Status,
    /// `warning`.
    Warning,
    /// `error`.
    Error,
}

impl Level {
    /// The string RTMP clients expect.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Status => "status",
            Level::Warning => "warning",
            Level::Error => "error",
        }
    }
}

/// How the hub lets a connection live: chosen per connection at connect by
/// the application's session policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionLimits {
    /// Close after this long without application activity.
    pub idle_timeout: Duration,
    /// Close this long after connecting, whatever happens.
    pub session_timeout: Option<Duration>,
}

/// Media priority for the drop policy, lowest dropped first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum MediaPriority {
    /// Disposable inter frame (H.263 style): dropped first.
    DisposableInter,
    /// Inter frame.
    Inter,
    /// Keyframe.
    Key,
    /// Audio frame.
    Audio,
    /// Data (metadata).
    Data,
    /// Sequence header: never dropped.
    SequenceHeader,
}

/// One relayed media message, already chunked for the player's route.
#[derive(Clone, Debug, PartialEq)]
pub struct MediaDelivery {
    /// Player's message stream id.
    pub stream: u32,
    /// Audio, video or data.
    pub kind: MediaKind,
    /// Drop priority.
    pub priority: MediaPriority,
    /// Timestamp (ms, publisher's clock).
    pub timestamp: u32,
    /// Chunked RTMP bytes, shared with every player of the same route.
    pub chunks: Bytes,
}

/// Why the hub rejected a connect.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RejectCode {
    /// `NetConnection.Connect.Rejected`.
    Rejected,
    /// `NetConnection.Connect.InvalidApp`.
    InvalidApp,
}

impl RejectCode {
    /// The status code string.
    pub fn code(self) -> &'static str {
        match self {
            RejectCode::Rejected => "NetConnection.Connect.Rejected",
            RejectCode::InvalidApp => "NetConnection.Connect.InvalidApp",
        }
    }
}

/// Something the hub sends to a connection.
#[derive(Clone, Debug, PartialEq)]
pub enum Delivery {
    /// Connect accepted into `scope`.
    Accepted {
        scope: ScopePath,
        session: SessionLimits,
    },
    /// Connect refused; the connection should report and close.
    Rejected {
        code: RejectCode,
        description: String,
    },
    /// Shared-object notices.
    SharedObject(Arc<SoUpdate>),
    /// A NetStream status on message stream `stream`.
    Status {
        /// Message stream id.
        stream: u32,
        /// Level.
        level: Level,
        /// Code, e.g. `NetStream.Play.Start`.
        code: &'static str,
        /// Human-readable description.
        description: String,
    },
    /// Media on message stream `stream` begins (RTMP user control StreamBegin).
    StreamBegin { stream: u32 },
    /// Media on message stream `stream` ended (RTMP user control StreamEOF).
    StreamEof { stream: u32 },
    /// A relayed media message.
    Media(MediaDelivery),
    /// Close the connection after telling the client why
    /// (`NetConnection.Connect.Closed`).
    Close { reason: String },
}

impl Delivery {
    /// Approximate bytes this delivery holds, for queue bounds.
    pub fn weight(&self) -> usize {
        match self {
            Delivery::Media(m) => m.chunks.len(),
            Delivery::SharedObject(u) => {
                64 + u.notices.len() * 32 // values are accounted at their source
            }
            _ => 64,
        }
    }
}
