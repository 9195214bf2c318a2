//! WebSocket (RFC 6455) server connections, sans-IO, speaking tern's JSON
//! protocol v1 (or Red5's chat mode) and producing the same hub
//! [`Request`](crate::hub::Request)s as [`rtmp::ServerConnection`](crate::rtmp::ServerConnection).
//!
//! Layers, each usable alone:
//! - [`handshake`]: the HTTP/1.1 upgrade (parsed with `httparse`), the
//!   `Sec-WebSocket-Accept` key and subprotocol selection;
//! - [`frame`]: frame headers, encoding, and a streaming [`frame::Decoder`]
//!   that enforces every framing rule (masking, RSV bits, opcodes, control
//!   frame rules, fragmentation, UTF-8 of text, message size, close codes);
//! - [`json`]: protocol v1 messages; [`amf_json`]: the AMF0 ↔ JSON mapping;
//! - [`fanout`]: the JSON codec that encodes shared-object updates once
//!   for every JSON subscriber;
//! - [`WsConnection`]: one server connection, driven as
//!   [`Connection`](crate::connection::Connection) documents (from the
//!   first byte of the HTTP request on; once closing, the server closes TCP
//!   first, as RFC 6455 §7.1.1 asks).
//!
//! The protocol is documented for clients in `docs/ws-protocol.md`.

pub mod amf_json;
mod connection;
pub mod fanout;
pub mod frame;
pub mod handshake;
pub mod json;

#[cfg(test)]
mod tests;

pub use connection::{WsConfig, WsConnection};
pub use frame::ProtocolError;
pub use handshake::{Subprotocol, UpgradeError};

/// WebSocket (JSON protocol v1 or chat mode), as the hub and stats name it.
pub const PROTOCOL: crate::hub::Protocol = crate::hub::Protocol::new("websocket");

use core::fmt;

/// Why a WebSocket connection failed: what
/// [`WsConnection::handle_input`] returns and
/// [`CloseReason::Failed`](crate::connection::CloseReason::Failed) carries.
/// Orderly closes (the peer's close frame, the hub's close or refusal) are
/// [`CloseReason`](crate::connection::CloseReason)'s other variants.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum WsError {
    /// The HTTP upgrade was refused (a 400 or 426 answer is queued).
    Handshake(UpgradeError),
    /// The peer broke a framing rule (a close frame with the code is queued).
    Protocol(ProtocolError),
    /// The upgrade request did not arrive in time (ms).
    HandshakeTimeout { ms: u64 },
    /// No byte at all arrived for this long (ms); a close 1001 is queued.
    Idle { silent_ms: u64 },
}

impl fmt::Display for WsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WsError::Handshake(e) => write!(f, "websocket upgrade refused: {e}"),
            WsError::Protocol(e) => write!(f, "websocket protocol error: {e}"),
            WsError::HandshakeTimeout { ms } => {
                write!(f, "upgrade request not received within {ms} ms")
            }
            WsError::Idle { silent_ms } => write!(f, "peer silent for {silent_ms} ms"),
        }
    }
}

impl core::error::Error for WsError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            WsError::Handshake(e) => Some(e),
            WsError::Protocol(e) => Some(e),
            WsError::HandshakeTimeout { .. } | WsError::Idle { .. } => None,
        }
    }
}

impl crate::connection::Failure for WsError {
    fn is_timeout(&self) -> bool {
        matches!(
            self,
            WsError::HandshakeTimeout { .. } | WsError::Idle { .. }
        )
    }
}

crate::connection::delegate_connection!(WsConnection, WsError);

impl From<UpgradeError> for WsError {
    fn from(e: UpgradeError) -> Self {
        WsError::Handshake(e)
    }
}

impl From<ProtocolError> for WsError {
    fn from(e: ProtocolError) -> Self {
        WsError::Protocol(e)
    }
}
