//! Why a chunk stream could not be decoded or a message could not be encoded.

use core::fmt;

/// A chunk stream error.
///
/// Decoding errors are fatal for the connection: after one, the decoder's
/// state no longer matches the peer's and the connection should be closed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChunkError {
    /// A message header announced a length above `Limits::max_message`.
    MessageTooLarge {
        /// Announced length.
        len: u32,
        /// The configured bound.
        max: u32,
    },
    /// A fmt 1/2/3 chunk arrived on a chunk stream that never had a fmt 0
    /// header, so there is nothing to take the missing fields from.
    NoPreviousHeader {
        /// The chunk stream id.
        csid: u32,
    },
    /// A fmt 0/1/2 chunk arrived while a message on the same chunk stream
    /// was still incomplete (only fmt 3 may continue a message).
    HeaderMidMessage {
        /// The chunk stream id.
        csid: u32,
    },
    /// A new chunk stream would exceed `Limits::max_chunk_streams`.
    TooManyChunkStreams {
        /// The configured bound.
        max: usize,
    },
    /// Starting this message would hold more than
    /// `Limits::max_reassembly_bytes` in partially received messages.
    ReassemblyBudgetExceeded {
        /// Bytes that would be held, this message included.
        needed: usize,
        /// The configured bound.
        budget: usize,
    },
    /// Set Chunk Size with 0 or a value above 2^31-1.
    InvalidChunkSize(u32),
    /// Set Chunk Size above `Limits::max_chunk_size`.
    ChunkSizeAboveLimit {
        /// Requested chunk size.
        size: u32,
        /// The configured bound.
        max: u32,
    },
    /// A Set Chunk Size (1) or Abort (2) message whose payload is not 4 bytes.
    BadControlPayload {
        /// The message type id.
        type_id: u8,
        /// The payload length received.
        len: usize,
    },
    /// Encoding: a chunk stream id outside 2..=65599.
    InvalidCsid(u32),
    /// Encoding: a payload longer than the 24-bit length field allows.
    PayloadTooLong {
        /// The payload length.
        len: usize,
    },
}

impl fmt::Display for ChunkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChunkError::MessageTooLarge { len, max } => {
                write!(f, "message length {len} exceeds the limit of {max} bytes")
            }
            ChunkError::NoPreviousHeader { csid } => write!(
                f,
                "chunk stream {csid} starts with a fmt 1/2/3 chunk but has no previous header"
            ),
            ChunkError::HeaderMidMessage { csid } => write!(
                f,
                "chunk stream {csid} got a fmt 0/1/2 header while a message was incomplete"
            ),
            ChunkError::TooManyChunkStreams { max } => {
                write!(f, "more than {max} chunk streams in use")
            }
            ChunkError::ReassemblyBudgetExceeded { needed, budget } => write!(
                f,
                "partial messages would hold {needed} bytes, above the budget of {budget}"
            ),
            ChunkError::InvalidChunkSize(size) => {
                write!(f, "invalid chunk size {size} (must be 1..=2147483647)")
            }
            ChunkError::ChunkSizeAboveLimit { size, max } => {
                write!(f, "chunk size {size} exceeds the limit of {max}")
            }
            ChunkError::BadControlPayload { type_id, len } => write!(
                f,
                "protocol control message type {type_id} has a {len}-byte payload, expected 4"
            ),
            ChunkError::InvalidCsid(csid) => {
                write!(f, "chunk stream id {csid} is outside 2..=65599")
            }
            ChunkError::PayloadTooLong { len } => write!(
                f,
                "payload of {len} bytes does not fit the 24-bit message length"
            ),
        }
    }
}

impl core::error::Error for ChunkError {}
