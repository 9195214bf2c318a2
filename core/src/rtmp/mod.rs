//! RTMP connection state machines, sans-IO: [`ServerConnection`] (what tern
//! runs per accepted socket) and [`ClientConnection`] (what tern's tools,
//! tests and load generator use), the RTMP fan-out codec ([`fanout`]) and
//! the one table of chunk stream ids ([`csid`]).
//!
//! The server connection is driven as every server connection is: see
//! [`Connection`](crate::connection::Connection). The client follows the
//! same order without deliveries: input, `poll_event` ([`ClientEvent`]s),
//! `poll_transmit`, and `handle_timeout` at `poll_timeout`; it takes the
//! application's actions through its methods. Time is always passed in.

mod aggregate;
mod client;
#[cfg(test)]
mod client_vectors;
pub mod fanout;
pub mod handshake;
mod server;
mod wire;

#[cfg(test)]
mod tests;

pub use client::{ClientConfig, ClientConnection, ClientEvent};
pub use fanout::{media_encoder, notices_encoder, notices_encoder_amf3};

/// RTMP, as the hub and stats name it.
pub const PROTOCOL: crate::hub::Protocol = crate::hub::Protocol::new("rtmp");
pub use server::{ServerConfig, ServerConnection};

use crate::chunk::ChunkError;
use crate::message::MessageError;
use crate::rtmp::handshake::HandshakeError;
use alloc::string::String;
use core::fmt;

/// Every chunk stream id tern's RTMP connections send on, in one table.
///
/// Chunk stream ids are per direction: a server and a client each choose
/// their own, so a client's video on 9 and the server's shared-object
/// notices on 9 never meet. The server's relayed media and notices are
/// encoded once for many connections ([`fanout`]) with a
/// self-contained fmt-0 header, so a connection's own header compression
/// must never refer to their chunk streams: nothing else uses them.
pub mod csid {
    /// Protocol control and user control (both sides).
    pub const CONTROL: u32 = 2;
    /// Connection-level commands and shared-object messages a connection
    /// encodes itself (both sides).
    pub const COMMAND: u32 = 3;
    /// A client's own audio.
    pub const CLIENT_AUDIO: u32 = 4;
    /// Stream-level commands and statuses (both sides).
    pub const STREAM: u32 = 5;
    /// Relayed audio (server, shared encoding).
    pub const RELAYED_AUDIO: u32 = 6;
    /// Relayed video (server, shared encoding).
    pub const RELAYED_VIDEO: u32 = 7;
    /// Relayed data messages, e.g. metadata (server, shared encoding).
    pub const RELAYED_DATA: u32 = 8;
    /// Shared-object notices (server, shared encoding).
    pub const SHARED_OBJECT: u32 = 9;
    /// A client's own video.
    pub const CLIENT_VIDEO: u32 = 9;
    /// A client's own data messages.
    pub const CLIENT_DATA: u32 = 10;
}

/// Why an RTMP connection failed. Every variant is fatal for its connection
/// only.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum RtmpError {
    /// The handshake failed (wrong version, bad digest).
    Handshake(HandshakeError),
    /// The chunk stream is malformed or over a limit.
    Chunk(ChunkError),
    /// A message body is malformed.
    Message(MessageError),
    /// A command other than `connect` came first.
    CommandBeforeConnect(String),
    /// The peer answered neither data nor pings for this long (ms).
    Unresponsive { silent_ms: u64 },
    /// The handshake did not finish in time (ms).
    HandshakeTimeout { ms: u64 },
    /// Actions were queued faster than the connection could start.
    QueueFull { max: usize },
}

impl fmt::Display for RtmpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RtmpError::Handshake(e) => write!(f, "handshake failed: {e}"),
            RtmpError::Chunk(e) => write!(f, "bad chunk stream: {e}"),
            RtmpError::Message(e) => write!(f, "bad message: {e}"),
            RtmpError::CommandBeforeConnect(name) => {
                write!(f, "command {name:?} before connect")
            }
            RtmpError::Unresponsive { silent_ms } => {
                write!(f, "peer silent for {silent_ms} ms, pings unanswered")
            }
            RtmpError::HandshakeTimeout { ms } => {
                write!(f, "handshake not finished within {ms} ms")
            }
            RtmpError::QueueFull { max } => {
                write!(
                    f,
                    "more than {max} actions queued before the connection opened"
                )
            }
        }
    }
}

impl core::error::Error for RtmpError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            RtmpError::Handshake(e) => Some(e),
            RtmpError::Chunk(e) => Some(e),
            RtmpError::Message(e) => Some(e),
            _ => None,
        }
    }
}

impl crate::connection::Failure for RtmpError {
    fn is_timeout(&self) -> bool {
        matches!(
            self,
            RtmpError::Unresponsive { .. } | RtmpError::HandshakeTimeout { .. }
        )
    }
}

crate::connection::delegate_connection!(ServerConnection, RtmpError);

impl From<HandshakeError> for RtmpError {
    fn from(e: HandshakeError) -> Self {
        RtmpError::Handshake(e)
    }
}

impl From<ChunkError> for RtmpError {
    fn from(e: ChunkError) -> Self {
        RtmpError::Chunk(e)
    }
}

impl From<MessageError> for RtmpError {
    fn from(e: MessageError) -> Self {
        RtmpError::Message(e)
    }
}
