//! Reassembling messages from a peer's chunk stream.

use super::header::{BasicHeader, EXTENDED_TIMESTAMP, MessageHeader};
use super::{ChunkError, DEFAULT_CHUNK_SIZE, MAX_CHUNK_SIZE, MIN_INBOUND_CHUNK_SIZE, RawMessage};
use crate::Limits;
use alloc::vec::Vec;
use bytes::{Buf, BytesMut};

/// Message type id of Set Chunk Size.
const TYPE_SET_CHUNK_SIZE: u8 = 1;
/// Message type id of Abort.
const TYPE_ABORT: u8 = 2;

/// What the decoder remembers about one inbound chunk stream.
#[derive(Debug)]
struct InStream {
    csid: u32,
    /// Absolute timestamp of the current (or last) message.
    timestamp: u32,
    /// Delta a fmt 3 chunk starting a new message adds. After a fmt 0
    /// header it is that header's timestamp, as the spec says.
    delta: u32,
    length: u32,
    type_id: u8,
    stream_id: u32,
    /// The last fmt 0/1/2 header had an extended timestamp, so every fmt 3
    /// chunk on this stream carries one too.
    extended: bool,
    /// The message being reassembled; its capacity (the announced length)
    /// is counted against the reassembly budget.
    partial: Option<BytesMut>,
}

/// Where the next chunk leaves us.
enum Step {
    NeedMore,
    Progress,
    Message(RawMessage),
}

/// Header fields for a message a chunk starts.
struct NewMessage {
    timestamp: u32,
    delta: u32,
    length: u32,
    type_id: u8,
    stream_id: u32,
    extended: bool,
}

/// Reassembles [`RawMessage`]s from the bytes a peer sends.
///
/// It applies Set Chunk Size and Abort itself, because they change how the
/// very next chunk is parsed, and still hands those messages to the caller.
/// They are honoured whatever chunk stream and message stream they arrive on.
///
/// Extended timestamps: when a fmt 0/1/2 header's timestamp field is
/// 0xFFFFFF, every following fmt 3 chunk on that chunk stream is expected
/// to repeat the 4-byte extended timestamp, as the spec requires (senders
/// that omit it, like old librtmp, are not detected). In a continuation
/// chunk the repeated value is skipped; in a fmt 3 chunk starting a new
/// message it is taken as that message's delta.
///
/// Any error is fatal: the decoder no longer knows where chunks start.
#[derive(Debug)]
pub struct ChunkDecoder {
    chunk_size: u32,
    max_message: u32,
    max_chunk_size: u32,
    max_streams: usize,
    budget: usize,
    /// Bytes reserved by partial messages (sum of their announced lengths).
    reserved: usize,
    /// Sorted by csid.
    streams: Vec<InStream>,
}

impl ChunkDecoder {
    /// A decoder at the default chunk size (128), bounded by `limits`.
    pub fn new(limits: &Limits) -> Self {
        ChunkDecoder {
            chunk_size: DEFAULT_CHUNK_SIZE,
            max_message: limits.max_message,
            max_chunk_size: limits.max_chunk_size,
            max_streams: limits.max_chunk_streams,
            budget: limits.max_reassembly_bytes,
            reserved: 0,
            streams: Vec::new(),
        }
    }

    /// The current inbound chunk size.
    pub fn chunk_size(&self) -> u32 {
        self.chunk_size
    }

    /// Consumes whole chunks from the front of `input` and returns the next
    /// complete message, or `Ok(None)` when more bytes are needed. A partial
    /// chunk is left in `input` untouched.
    ///
    /// A message that fits one chunk is split off `input` without copying.
    pub fn decode(&mut self, input: &mut BytesMut) -> Result<Option<RawMessage>, ChunkError> {
        loop {
            match self.step(input)? {
                Step::NeedMore => return Ok(None),
                Step::Progress => {}
                Step::Message(msg) => {
                    self.apply_control(&msg)?;
                    return Ok(Some(msg));
                }
            }
        }
    }

    /// Parses and consumes at most one chunk.
    fn step(&mut self, input: &mut BytesMut) -> Result<Step, ChunkError> {
        let buf: &[u8] = input;
        let Some((basic, mut pos)) = BasicHeader::parse(buf) else {
            return Ok(Step::NeedMore);
        };
        let Some((header, n)) = MessageHeader::parse(basic.fmt, buf.get(pos..).unwrap_or(&[]))
        else {
            return Ok(Step::NeedMore);
        };
        pos += n;
        let csid = basic.csid;
        let slot = self.streams.binary_search_by_key(&csid, |s| s.csid);
        let prev = slot.ok().and_then(|i| self.streams.get(i));

        let extended = match (header.timestamp_field(), prev) {
            (Some(field), _) => field == EXTENDED_TIMESTAMP,
            (None, Some(p)) => p.extended,
            (None, None) => return Err(ChunkError::NoPreviousHeader { csid }),
        };
        let ext_value = if extended {
            let Some(b) = buf.get(pos..).and_then(<[u8]>::first_chunk::<4>) else {
                return Ok(Step::NeedMore);
            };
            pos += 4;
            Some(u32::from_be_bytes(*b))
        } else {
            None
        };

        // A fmt 3 chunk continues the partial message if there is one.
        if let Ok(i) = slot
            && prev.is_some_and(|p| p.partial.is_some())
        {
            if header != MessageHeader::Type3 {
                return Err(ChunkError::HeaderMidMessage { csid });
            }
            return Ok(self.continue_message(i, pos, input));
        }

        // This chunk starts a new message: work out its header.
        let new = match (header, prev) {
            (
                MessageHeader::Type0 {
                    timestamp,
                    length,
                    type_id,
                    stream_id,
                },
                _,
            ) => {
                let ts = ext_value.unwrap_or(timestamp);
                NewMessage {
                    timestamp: ts,
                    delta: ts,
                    length,
                    type_id,
                    stream_id,
                    extended,
                }
            }
            (_, None) => return Err(ChunkError::NoPreviousHeader { csid }),
            (
                MessageHeader::Type1 {
                    delta,
                    length,
                    type_id,
                },
                Some(p),
            ) => {
                let delta = ext_value.unwrap_or(delta);
                NewMessage {
                    timestamp: p.timestamp.wrapping_add(delta),
                    delta,
                    length,
                    type_id,
                    stream_id: p.stream_id,
                    extended,
                }
            }
            (MessageHeader::Type2 { delta }, Some(p)) => {
                let delta = ext_value.unwrap_or(delta);
                NewMessage {
                    timestamp: p.timestamp.wrapping_add(delta),
                    delta,
                    length: p.length,
                    type_id: p.type_id,
                    stream_id: p.stream_id,
                    extended,
                }
            }
            (MessageHeader::Type3, Some(p)) => {
                let delta = ext_value.unwrap_or(p.delta);
                NewMessage {
                    timestamp: p.timestamp.wrapping_add(delta),
                    delta,
                    length: p.length,
                    type_id: p.type_id,
                    stream_id: p.stream_id,
                    extended,
                }
            }
        };

        if new.length > self.max_message {
            return Err(ChunkError::MessageTooLarge {
                len: new.length,
                max: self.max_message,
            });
        }
        if slot.is_err() && self.streams.len() >= self.max_streams {
            return Err(ChunkError::TooManyChunkStreams {
                max: self.max_streams,
            });
        }
        let length = usize_from(new.length);
        let chunk = usize_from(self.chunk_size);
        let single = length <= chunk;
        if !single {
            let needed = self.reserved.saturating_add(length);
            if needed > self.budget {
                return Err(ChunkError::ReassemblyBudgetExceeded {
                    needed,
                    budget: self.budget,
                });
            }
        }
        let data_len = length.min(chunk);
        if buf.len() < pos.saturating_add(data_len) {
            return Ok(Step::NeedMore);
        }

        // Commit.
        input.advance(pos);
        let data = input.split_to(data_len);
        let partial = if single {
            None
        } else {
            self.reserved = self.reserved.saturating_add(length);
            // Within max_message and the reassembly budget: safe to reserve.
            let mut b = BytesMut::with_capacity(length);
            b.extend_from_slice(&data);
            Some(b)
        };
        let state = InStream {
            csid,
            timestamp: new.timestamp,
            delta: new.delta,
            length: new.length,
            type_id: new.type_id,
            stream_id: new.stream_id,
            extended: new.extended,
            partial,
        };
        match slot {
            Ok(i) => {
                if let Some(s) = self.streams.get_mut(i) {
                    *s = state;
                }
            }
            Err(i) => {
                // Exactly as many slots as chunk streams in use (peers use a
                // handful): a connection holds no spare per-csid state.
                self.streams.reserve_exact(1);
                self.streams.insert(i, state);
            }
        }
        if !single {
            return Ok(Step::Progress);
        }
        Ok(Step::Message(RawMessage {
            csid,
            timestamp: new.timestamp,
            type_id: new.type_id,
            stream_id: new.stream_id,
            payload: data.freeze(),
        }))
    }

    /// Consumes a continuation chunk (header `pos` bytes long) of the
    /// partial message on `self.streams[i]`.
    fn continue_message(&mut self, i: usize, pos: usize, input: &mut BytesMut) -> Step {
        let chunk = usize_from(self.chunk_size);
        let Some(s) = self.streams.get_mut(i) else {
            return Step::NeedMore;
        };
        let length = usize_from(s.length);
        let Some(partial) = s.partial.as_mut() else {
            return Step::NeedMore;
        };
        let data_len = length.saturating_sub(partial.len()).min(chunk);
        if input.len() < pos.saturating_add(data_len) {
            return Step::NeedMore;
        }
        input.advance(pos);
        partial.extend_from_slice(&input.split_to(data_len));
        if partial.len() < length {
            return Step::Progress;
        }
        let payload = s.partial.take().unwrap_or_default().freeze();
        self.reserved = self.reserved.saturating_sub(length);
        Step::Message(RawMessage {
            csid: s.csid,
            timestamp: s.timestamp,
            type_id: s.type_id,
            stream_id: s.stream_id,
            payload,
        })
    }

    /// Applies Set Chunk Size and Abort.
    fn apply_control(&mut self, msg: &RawMessage) -> Result<(), ChunkError> {
        if msg.type_id != TYPE_SET_CHUNK_SIZE && msg.type_id != TYPE_ABORT {
            return Ok(());
        }
        let Some(&bytes) = msg
            .payload
            .first_chunk::<4>()
            .filter(|_| msg.payload.len() == 4)
        else {
            return Err(ChunkError::BadControlPayload {
                type_id: msg.type_id,
                len: msg.payload.len(),
            });
        };
        let value = u32::from_be_bytes(bytes);
        if msg.type_id == TYPE_SET_CHUNK_SIZE {
            if value == 0 || value > MAX_CHUNK_SIZE {
                return Err(ChunkError::InvalidChunkSize(value));
            }
            if value > self.max_chunk_size {
                return Err(ChunkError::ChunkSizeAboveLimit {
                    size: value,
                    max: self.max_chunk_size,
                });
            }
            self.chunk_size = value.max(MIN_INBOUND_CHUNK_SIZE);
        } else if let Ok(i) = self.streams.binary_search_by_key(&value, |s| s.csid)
            && let Some(s) = self.streams.get_mut(i)
            && s.partial.take().is_some()
        {
            self.reserved = self.reserved.saturating_sub(usize_from(s.length));
        }
        Ok(())
    }
}

/// u32 → usize; saturates on targets where usize is narrower.
fn usize_from(v: u32) -> usize {
    usize::try_from(v).unwrap_or(usize::MAX)
}
