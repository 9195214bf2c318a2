//! The protocol-neutral vocabulary between connections and the hub.
//!
//! RTMP and WebSocket connections both turn their peer's bytes into
//! [`Request`]s and turn [`Delivery`]s back into bytes, so the hub never knows
//! which protocol a client speaks. What is fanned out (media, shared-object
//! notices) arrives already encoded by the subscriber's own
//! [`Encoder`](super::Encoder), once per distinct encoder.

use super::fanout::Encoder;
use crate::amf0::Value;
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

/// Which wire protocol a connection speaks (for hooks, stats and logs): a
/// name the protocol's module chooses (`rtmp::PROTOCOL`, `ws::PROTOCOL`),
/// so a new protocol needs no change here.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Protocol(&'static str);

impl Protocol {
    /// The protocol called `name` (lowercase, as in stats labels).
    pub const fn new(name: &'static str) -> Self {
        Protocol(name)
    }

    /// Its name.
    pub fn name(self) -> &'static str {
        self.0
    }
}

impl fmt::Debug for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
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
    /// How shared-object notices are encoded for this connection
    /// (`None`: it renders every notice itself, sharing nothing).
    pub notices: Option<Encoder>,
}

impl ConnectRequest {
    /// A connection the server makes itself (a recorder, a relay): to the
    /// room at `scope` (`app[/room…]`, no leading slash), with no connect
    /// object or arguments, no address (no per-address cap) and no shared
    /// notice encoding.
    pub fn server_side(protocol: Protocol, scope: &str) -> Self {
        ConnectRequest {
            protocol,
            target: scope.trim_start_matches('/').into(),
            params: Value::Null,
            args: Vec::new(),
            address: None,
            notices: None,
        }
    }

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
        /// How media is encoded for this player: players with equal
        /// encoders share each message's bytes.
        encoder: Encoder,
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
/// (behind an `Arc`) between all receivers of the same notices; each
/// receives it with its encoder's encoding (see [`SoDelivery`]).
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
}

impl SoUpdate {
    /// An update.
    pub fn new(name: String, persistent: bool, version: u32, notices: Vec<SoNotice>) -> Self {
        SoUpdate {
            name,
            persistent,
            version,
            notices,
        }
    }
}

/// A shared-object update as one subscriber receives it.
#[derive(Clone, Debug, PartialEq)]
pub struct SoDelivery {
    /// The update, shared by all its receivers.
    pub update: Arc<SoUpdate>,
    /// The update encoded by the receiver's notice [`Encoder`], shared by
    /// every receiver with an equal encoder; empty if the receiver has none
    /// (it renders [`update`](Self::update) itself).
    pub encoded: Bytes,
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

/// One relayed media message, already encoded for the player.
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
    /// The message in the player's encoding, shared with every player
    /// whose encoder is equal.
    pub encoded: Bytes,
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
    SharedObject(SoDelivery),
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
            Delivery::Media(m) => m.encoded.len(),
            Delivery::SharedObject(so) => {
                64 + so.update.notices.len() * 32 // values are accounted at their source
            }
            _ => 64,
        }
    }
}
