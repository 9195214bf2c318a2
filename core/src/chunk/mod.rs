//! The RTMP chunk stream: messages cut into chunks on the wire, and back.
//!
//! [`ChunkDecoder`] reassembles [`RawMessage`]s from a peer's byte stream;
//! [`ChunkEncoder`] cuts messages into chunks with the smallest correct
//! header. [`encode_standalone`] produces a self-contained encoding (fmt 0
//! first chunk) that can be shared by many connections (fan-out).

use bytes::Bytes;

/// Chunk size both sides start with.
pub const DEFAULT_CHUNK_SIZE: u32 = 128;
/// Smallest inbound chunk size honoured; smaller Set Chunk Size requests are
/// raised to this, as Red5 does.
pub const MIN_INBOUND_CHUNK_SIZE: u32 = 128;
/// Largest chunk size the protocol allows (31 bits).
pub const MAX_CHUNK_SIZE: u32 = 0x7FFF_FFFF;

/// One whole RTMP message as carried by the chunk stream, payload not yet
/// interpreted. `timestamp` is absolute (deltas already applied, wrapping at
/// 2^32 ms).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawMessage {
    /// Chunk stream id it travelled on (2..=65599).
    pub csid: u32,
    /// Absolute timestamp in milliseconds, modulo 2^32.
    pub timestamp: u32,
    /// Message type id (1 Set Chunk Size … 22 aggregate).
    pub type_id: u8,
    /// Message stream id (0 for the connection itself).
    pub stream_id: u32,
    /// The message body.
    pub payload: Bytes,
}

mod decoder;
mod encoder;
mod error;
pub mod header;

pub use decoder::ChunkDecoder;
pub use encoder::{ChunkEncoder, encode_standalone, standalone_payload, standalone_type_id};
pub use error::ChunkError;
pub use header::{MAX_CSID, MIN_CSID};

#[cfg(test)]
mod tests;
