//! Every bound the core enforces, in one place.
//!
//! A peer can never make the core allocate beyond these numbers. Runtimes
//! pick their own values (a server uses [`Limits::default`], a small device
//! [`Limits::small`]); tests shrink them to hit the edges.

/// Bounds on buffers, tables and parser work.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest RTMP message (reassembled from chunks) accepted from a peer,
    /// in bytes. A longer announced length is refused before allocating.
    pub max_message: u32,
    /// Largest inbound chunk size a peer may set. Smaller requests are
    /// raised to [`MIN_INBOUND_CHUNK_SIZE`](crate::chunk::MIN_INBOUND_CHUNK_SIZE) as Red5 does.
    pub max_chunk_size: u32,
    /// Chunk streams a peer may have open (with a remembered header) at once.
    pub max_chunk_streams: usize,
    /// Bytes held in partially reassembled messages across all chunk streams.
    pub max_reassembly_bytes: usize,
    /// Deepest nesting of AMF0 objects/arrays.
    pub amf0_max_depth: usize,
    /// Most values decoded from one AMF0 buffer (counting nested ones).
    pub amf0_max_values: usize,
}

impl Limits {
    /// Bounds for small devices: small messages, few chunk streams.
    pub const fn small() -> Self {
        Limits {
            max_message: 64 * 1024,
            max_chunk_size: 64 * 1024,
            max_chunk_streams: 8,
            max_reassembly_bytes: 128 * 1024,
            amf0_max_depth: 8,
            amf0_max_values: 512,
        }
    }
}

impl Default for Limits {
    /// Bounds for servers. 4 MiB covers keyframes of high-bitrate streams
    /// (nginx-rtmp's default is 1 MiB); 64 open chunk streams is far above
    /// what ffmpeg, OBS or Flash use (they use fewer than 10).
    fn default() -> Self {
        Limits {
            max_message: 4 * 1024 * 1024,
            max_chunk_size: 16 * 1024 * 1024,
            max_chunk_streams: 64,
            max_reassembly_bytes: 8 * 1024 * 1024,
            amf0_max_depth: 32,
            amf0_max_values: 16 * 1024,
        }
    }
}
