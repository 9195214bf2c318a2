//! RTMP connection state machines, sans-IO: [`ServerConnection`] (what tern
//! runs per accepted socket) and [`ClientConnection`] (what tern's tools,
//! tests and load generator use).
//!
//! Both follow one call order:
//!
//! 1. [`handle_input`](ServerConnection::handle_input)`(now, bytes)` with
//!    everything read from the socket. An `Err` is fatal: flush
//!    `poll_transmit` if you like, then close the socket.
//! 2. Drain `poll_event` (server: hub [`Request`](crate::hub::Request)s;
//!    client: [`ClientEvent`]s).
//! 3. Drain `poll_transmit` into the socket (each item is a whole number of
//!    chunks; write them in order).
//! 4. Call `handle_timeout(now)` when `poll_timeout` is reached, then 2–3.
//!
//! The server also takes the hub's answers with
//! [`ServerConnection::handle_delivery`]; the client takes the
//! application's actions through its methods. Time is always passed in.

mod aggregate;
mod client;
#[cfg(test)]
mod client_vectors;
pub mod fanout;
mod server;
mod wire;

#[cfg(test)]
mod tests;

pub use client::{ClientConfig, ClientConnection, ClientEvent};
pub use fanout::{media_encoder, notices_encoder, notices_encoder_amf3};
pub use server::{ServerConfig, ServerConnection};

use crate::chunk::ChunkError;
use crate::handshake::HandshakeError;
use crate::message::MessageError;
use alloc::string::String;
use core::fmt;

/// Every chunk stream id tern's RTMP connections send on, in one table.
///
/// Chunk stream ids are per direction: a server and a client each choose
/// their own, so a client's video on 9 and the server's shared-object
/// notices on 9 never meet. The server's relayed media and notices are
/// encoded once for many connections ([`fanout`](super::fanout)) with a
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
    /// The connection is closing or closed; no more input is taken.
    Closed,
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
            RtmpError::Closed => f.write_str("connection is closed"),
        }
    }
}

impl core::error::Error for RtmpError {}

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
