//! Cutting messages into chunks.

use super::header::{
    BasicHeader, EXTENDED_TIMESTAMP, Fmt, MAX_CSID, MAX_MESSAGE_LENGTH, MIN_CSID, MessageHeader,
    timestamp_field,
};
use super::{ChunkError, DEFAULT_CHUNK_SIZE, MAX_CHUNK_SIZE, RawMessage};
use alloc::vec::Vec;
use bytes::{BufMut, Bytes, BytesMut};

/// What the encoder remembers about one outbound chunk stream: the header
/// the peer's decoder now holds for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct OutStream {
    csid: u32,
    timestamp: u32,
    /// The delta a fmt 3 chunk starting a new message would add, when it
    /// is unambiguous (see [`ChunkEncoder`]).
    delta: Option<u32>,
    length: u32,
    type_id: u8,
    stream_id: u32,
}

impl OutStream {
    /// State after a fmt 0 header for `msg`.
    fn after_type0(msg: &RawMessage, length: u32) -> Self {
        OutStream {
            csid: msg.csid,
            timestamp: msg.timestamp,
            // The spec says a fmt 3 after a fmt 0 adds the fmt 0's timestamp
            // again, but some decoders add 0; both agree only at 0.
            delta: (msg.timestamp == 0).then_some(0),
            length,
            type_id: msg.type_id,
            stream_id: msg.stream_id,
        }
    }
}

/// Cuts messages into chunks with the smallest correct header, given what
/// was last sent on each chunk stream.
///
/// Header choice per message: fmt 0 on first use of a chunk stream, when
/// the message stream id changes or when the timestamp goes backwards
/// (a wrapping difference of 2^31 or more; smaller forward steps across
/// 2^32 are sent as deltas); else fmt 1 when length or type change; else
/// fmt 3 when the delta repeats; else fmt 2. A fmt 3 for a new message is
/// only used when its delta is below 0xFFFFFF and, right after a fmt 0
/// header, only at timestamp 0, because decoders disagree on the delta a
/// fmt 3 implies after a fmt 0 (the spec's "the fmt 0 timestamp" versus 0).
///
/// Timestamps and deltas of 0xFFFFFF or more use the extended field, which
/// is repeated in every continuation chunk of the message.
///
/// Shared encodings: if a connection also writes messages produced by
/// [`encode_standalone`] on a chunk stream id, it must tell this encoder
/// with [`ChunkEncoder::note_standalone`] (or at least
/// [`ChunkEncoder::forget`]) each time, so later headers on that chunk stream
/// are relative to what the peer really received.
#[derive(Debug, Clone)]
pub struct ChunkEncoder {
    chunk_size: u32,
    /// Sorted by csid.
    streams: Vec<OutStream>,
}

impl Default for ChunkEncoder {
    fn default() -> Self {
        Self::new()
    }
}

impl ChunkEncoder {
    /// An encoder at the default chunk size (128) with no chunk stream state.
    pub fn new() -> Self {
        ChunkEncoder {
            chunk_size: DEFAULT_CHUNK_SIZE,
            streams: Vec::new(),
        }
    }

    /// The outbound chunk size.
    pub fn chunk_size(&self) -> u32 {
        self.chunk_size
    }

    /// Switches the outbound chunk size, clamped to 1..=2^31-1. The caller
    /// sends the Set Chunk Size message itself, encoded before this call.
    pub fn set_chunk_size(&mut self, size: u32) {
        self.chunk_size = size.clamp(1, MAX_CHUNK_SIZE);
    }

    /// Appends `msg` as chunks to `out`.
    ///
    /// `msg.csid` must be in 2..=65599 and the payload at most 0xFFFFFF
    /// bytes; a message breaking that is a caller bug: it is not written
    /// (a debug assertion fires in debug builds). Use
    /// [`ChunkEncoder::try_encode`] to get the error instead.
    pub fn encode(&mut self, msg: &RawMessage, out: &mut BytesMut) {
        let result = self.try_encode(msg, out);
        debug_assert!(result.is_ok(), "ChunkEncoder::encode: {result:?}");
    }

    /// Appends `msg` as chunks to `out`, or refuses it (writing nothing)
    /// when its csid or length cannot be expressed.
    pub fn try_encode(&mut self, msg: &RawMessage, out: &mut BytesMut) -> Result<(), ChunkError> {
        let length = check(msg)?;
        let slot = self.streams.binary_search_by_key(&msg.csid, |s| s.csid);
        let prev = slot.ok().and_then(|i| self.streams.get(i)).copied();
        let (header, ext, next) = choose_header(prev, msg, length);
        write_chunks(msg, header, ext, self.chunk_size, out);
        match slot {
            Ok(i) => {
                if let Some(s) = self.streams.get_mut(i) {
                    *s = next;
                }
            }
            Err(i) => insert_exact(&mut self.streams, i, next),
        }
        Ok(())
    }

    /// Records that `msg` was written on this connection as produced by
    /// [`encode_standalone`] (fmt 0 first chunk, at this encoder's chunk
    /// size), so the next header on its chunk stream is relative to it.
    pub fn note_standalone(&mut self, msg: &RawMessage) {
        let Ok(length) = check(msg) else {
            return;
        };
        let next = OutStream::after_type0(msg, length);
        match self.streams.binary_search_by_key(&msg.csid, |s| s.csid) {
            Ok(i) => {
                if let Some(s) = self.streams.get_mut(i) {
                    *s = next;
                }
            }
            Err(i) => insert_exact(&mut self.streams, i, next),
        }
    }

    /// Forgets chunk stream `csid`: its next message gets a fmt 0 header.
    pub fn forget(&mut self, csid: u32) {
        if let Ok(i) = self.streams.binary_search_by_key(&csid, |s| s.csid) {
            self.streams.remove(i);
        }
    }
}

/// Inserts without spare capacity: a connection uses a handful of chunk
/// streams for its whole life, so growing by one at a time costs little and
/// holds no unused slots.
fn insert_exact(streams: &mut Vec<OutStream>, i: usize, state: OutStream) {
    streams.reserve_exact(1);
    streams.insert(i, state);
}

/// Appends `msg` as chunks to `out` with a fmt 0 first chunk, independent
/// of any connection state, so one encoding can be shared by every
/// subscriber whose outbound chunk size is `chunk_size` (clamped to
/// 1..=2^31-1). A connection that writes such bytes on a chunk stream its
/// [`ChunkEncoder`] also uses must call [`ChunkEncoder::note_standalone`].
pub fn encode_standalone(
    msg: &RawMessage,
    chunk_size: u32,
    out: &mut BytesMut,
) -> Result<(), ChunkError> {
    let length = check(msg)?;
    let (header, ext, _) = choose_header(None, msg, length);
    write_chunks(msg, header, ext, chunk_size.clamp(1, MAX_CHUNK_SIZE), out);
    Ok(())
}

/// The payload of one message that [`encode_standalone`] chunked at
/// `chunk_size`: the inverse, for a cache that keeps only the encoding and
/// must re-chunk it for another chunk size. A message that fit one chunk is
/// returned without copying. `None` if `chunks` is not exactly one such
/// encoding.
pub fn standalone_payload(chunks: &Bytes, chunk_size: u32) -> Option<Bytes> {
    let chunk = usize::try_from(chunk_size.clamp(1, MAX_CHUNK_SIZE)).ok()?;
    let (basic, basic_len) = BasicHeader::parse(chunks)?;
    let (header, header_len) = MessageHeader::parse(basic.fmt, chunks.get(basic_len..)?)?;
    let MessageHeader::Type0 {
        timestamp, length, ..
    } = header
    else {
        return None;
    };
    let ext_len = if timestamp == EXTENDED_TIMESTAMP {
        4
    } else {
        0
    };
    let length = usize::try_from(length).ok()?;
    let mut pos = basic_len + header_len + ext_len;
    if length <= chunk {
        return (chunks.len() == pos + length).then(|| chunks.slice(pos..));
    }
    let mut payload = BytesMut::with_capacity(length);
    loop {
        let take = (length - payload.len()).min(chunk);
        payload.extend_from_slice(chunks.get(pos..pos + take)?);
        pos += take;
        if payload.len() == length {
            break;
        }
        let (next, next_len) = BasicHeader::parse(chunks.get(pos..)?)?;
        if next.fmt != Fmt::Type3 || next.csid != basic.csid {
            return None;
        }
        pos += next_len + ext_len;
    }
    (pos == chunks.len()).then(|| payload.freeze())
}

/// The message type id of a standalone encoding ([`encode_standalone`]'s
/// output), read from its fmt-0 header; `None` if it does not start with one.
pub fn standalone_type_id(chunks: &[u8]) -> Option<u8> {
    let (basic, basic_len) = BasicHeader::parse(chunks)?;
    match MessageHeader::parse(basic.fmt, chunks.get(basic_len..)?)?.0 {
        MessageHeader::Type0 { type_id, .. } => Some(type_id),
        _ => None,
    }
}

/// Validates csid and length; returns the length as u32.
fn check(msg: &RawMessage) -> Result<u32, ChunkError> {
    if !(MIN_CSID..=MAX_CSID).contains(&msg.csid) {
        return Err(ChunkError::InvalidCsid(msg.csid));
    }
    match u32::try_from(msg.payload.len()) {
        Ok(len) if len <= MAX_MESSAGE_LENGTH => Ok(len),
        _ => Err(ChunkError::PayloadTooLong {
            len: msg.payload.len(),
        }),
    }
}

/// Picks the header for `msg` given the chunk stream's previous state.
/// Returns the header, the extended timestamp value if one is needed, and
/// the state after sending.
fn choose_header(
    prev: Option<OutStream>,
    msg: &RawMessage,
    length: u32,
) -> (MessageHeader, Option<u32>, OutStream) {
    let ext = |v: u32| (v >= EXTENDED_TIMESTAMP).then_some(v);
    if let Some(p) = prev {
        let delta = msg.timestamp.wrapping_sub(p.timestamp);
        if p.stream_id == msg.stream_id && delta < 0x8000_0000 {
            let next = OutStream {
                delta: Some(delta),
                length,
                type_id: msg.type_id,
                timestamp: msg.timestamp,
                ..p
            };
            let header = if p.length != length || p.type_id != msg.type_id {
                MessageHeader::Type1 {
                    delta: timestamp_field(delta),
                    length,
                    type_id: msg.type_id,
                }
            } else if p.delta == Some(delta) && delta < EXTENDED_TIMESTAMP {
                MessageHeader::Type3
            } else {
                MessageHeader::Type2 {
                    delta: timestamp_field(delta),
                }
            };
            return (header, ext(delta), next);
        }
    }
    let header = MessageHeader::Type0 {
        timestamp: timestamp_field(msg.timestamp),
        length,
        type_id: msg.type_id,
        stream_id: msg.stream_id,
    };
    (
        header,
        ext(msg.timestamp),
        OutStream::after_type0(msg, length),
    )
}

/// Writes the first chunk with `header`, then fmt 3 continuation chunks,
/// each carrying the extended timestamp `ext` when there is one.
fn write_chunks(
    msg: &RawMessage,
    header: MessageHeader,
    ext: Option<u32>,
    chunk_size: u32,
    out: &mut BytesMut,
) {
    let chunk = usize::try_from(chunk_size).unwrap_or(usize::MAX).max(1);
    let payload: &[u8] = msg.payload.as_ref();
    let basic_len = BasicHeader::encoded_len(msg.csid);
    let ext_len = if ext.is_some() { 4 } else { 0 };
    let chunks = payload.len().div_ceil(chunk).max(1);
    out.reserve(
        chunks
            .saturating_mul(basic_len + ext_len)
            .saturating_add(header.encoded_len())
            .saturating_add(payload.len()),
    );
    let mut first = true;
    let mut rest = payload;
    loop {
        if first {
            BasicHeader {
                fmt: header.fmt(),
                csid: msg.csid,
            }
            .write(out);
            header.write(out);
        } else {
            BasicHeader {
                fmt: Fmt::Type3,
                csid: msg.csid,
            }
            .write(out);
        }
        if let Some(v) = ext {
            out.put_u32(v);
        }
        let (now, later) = rest.split_at(rest.len().min(chunk));
        out.put_slice(now);
        rest = later;
        if rest.is_empty() {
            return;
        }
        first = false;
    }
}
