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
//! - [`json`]: protocol v1 messages and the AMF0 ↔ JSON mapping;
//! - [`WsConnection`]: one server connection, with the same call order as
//!   the RTMP one:
//!
//! 1. [`handle_input`](WsConnection::handle_input)`(now, bytes)` with every
//!    byte read from the socket, from the first byte of the HTTP request on.
//!    An `Err` is fatal: flush `poll_transmit` (it holds the HTTP error
//!    answer or the close frame), then close the socket.
//! 2. Drain [`poll_event`](WsConnection::poll_event) into the hub.
//! 3. [`handle_delivery`](WsConnection::handle_delivery) for the hub's
//!    deliveries while [`pending_bytes`](WsConnection::pending_bytes) is small.
//! 4. Drain [`poll_transmit`](WsConnection::poll_transmit) into the socket.
//! 5. [`handle_timeout`](WsConnection::handle_timeout)`(now)` at
//!    [`poll_timeout`](WsConnection::poll_timeout), then 2–4.
//!
//! Once [`is_closing`](WsConnection::is_closing) is true, flush
//! `poll_transmit` and close the socket (the server closes TCP first, as
//! RFC 6455 §7.1.1 asks); send the hub [`Request::Disconnect`](crate::hub::Request::Disconnect).
//!
//! The protocol is documented for clients in `docs/ws-protocol.md`.

mod connection;
pub mod fanout;
pub mod frame;
pub mod handshake;
pub mod json;

#[cfg(test)]
mod tests;

pub use connection::{WsConfig, WsConnection};
pub use frame::ProtocolError;
pub use handshake::{HandshakeError, Subprotocol};

use crate::hub::RejectCode;
use alloc::string::String;
use core::fmt;

/// Why a WebSocket connection closes. [`WsConnection::handle_input`]
/// returns the fatal ones ([`Handshake`](WsError::Handshake),
/// [`Protocol`](WsError::Protocol)); [`WsConnection::close_reason`] reports
/// every one.
#[derive(Clone, Debug, PartialEq)]
pub enum WsError {
    /// The HTTP upgrade was refused (a 400 or 426 answer is queued).
    Handshake(HandshakeError),
    /// The peer broke a framing rule (a close frame with the code is queued).
    Protocol(ProtocolError),
    /// The hub refused the connect (an error and a close 1008 are queued).
    Rejected {
        /// Why, as RTMP clients would be told.
        code: RejectCode,
        /// The hub's description.
        description: String,
    },
    /// The upgrade request did not arrive in time (ms).
    HandshakeTimeout { ms: u64 },
    /// No byte at all arrived for this long (ms); a close 1001 is queued.
    Idle { silent_ms: u64 },
    /// The peer closed (its close frame was answered). Not a failure.
    PeerClosed {
        /// The peer's close code, if it gave one.
        code: Option<u16>,
    },
    /// The hub closed the connection (a close 1001 is queued).
    ServerClosed { reason: String },
    /// Input arrived after the connection failed.
    Closed,
}

impl fmt::Display for WsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WsError::Handshake(e) => write!(f, "websocket upgrade refused: {e}"),
            WsError::Protocol(e) => write!(f, "websocket protocol error: {e}"),
            WsError::Rejected { code, description } => {
                write!(f, "connect rejected ({}): {description}", code.code())
            }
            WsError::HandshakeTimeout { ms } => {
                write!(f, "upgrade request not received within {ms} ms")
            }
            WsError::Idle { silent_ms } => write!(f, "peer silent for {silent_ms} ms"),
            WsError::PeerClosed { code: Some(code) } => write!(f, "peer closed with code {code}"),
            WsError::PeerClosed { code: None } => f.write_str("peer closed without a code"),
            WsError::ServerClosed { reason } => write!(f, "closed by the server: {reason}"),
            WsError::Closed => f.write_str("connection is closed"),
        }
    }
}

impl core::error::Error for WsError {}

impl From<HandshakeError> for WsError {
    fn from(e: HandshakeError) -> Self {
        WsError::Handshake(e)
    }
}

impl From<ProtocolError> for WsError {
    fn from(e: ProtocolError) -> Self {
        WsError::Protocol(e)
    }
}
