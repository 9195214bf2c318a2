//! The chunk-stream plumbing both connection sides share: inbound
//! reassembly, outbound encoding, acknowledgements.

use super::csid;
use crate::Limits;
use crate::chunk::{ChunkDecoder, ChunkEncoder, ChunkError, RawMessage};
use crate::message::{Message, ProtocolControl};
use alloc::collections::VecDeque;
use bytes::{Bytes, BytesMut};

/// Chunked bytes in and out of one connection.
#[derive(Debug)]
pub(crate) struct Wire {
    decoder: ChunkDecoder,
    encoder: ChunkEncoder,
    /// Undecoded input: at most one partial chunk plus the last read.
    inbuf: BytesMut,
    /// Whole chunks waiting for the socket, in order.
    outq: VecDeque<Bytes>,
    out_bytes: usize,
    scratch: BytesMut,
    bytes_in: u64,
    acked_in: u64,
    /// The peer's Window Acknowledgement Size (0: never acknowledge).
    peer_window: u32,
    pub(crate) limits: Limits,
}

impl Wire {
    pub(crate) fn new(limits: &Limits) -> Self {
        Wire {
            decoder: ChunkDecoder::new(limits),
            encoder: ChunkEncoder::new(),
            inbuf: BytesMut::new(),
            outq: VecDeque::new(),
            out_bytes: 0,
            scratch: BytesMut::new(),
            bytes_in: 0,
            acked_in: 0,
            peer_window: 0,
            limits: limits.clone(),
        }
    }

    /// Takes bytes read from the socket.
    pub(crate) fn push_input(&mut self, data: &[u8]) {
        self.inbuf.extend_from_slice(data);
        self.bytes_in += data.len() as u64;
    }

    /// Counts bytes the handshake consumed (they count for acknowledgements).
    pub(crate) fn count_input(&mut self, n: usize) {
        self.bytes_in += n as u64;
    }

    /// The next whole message, if one is complete.
    pub(crate) fn next_message(&mut self) -> Result<Option<RawMessage>, ChunkError> {
        self.decoder.decode(&mut self.inbuf)
    }

    /// Follows the peer's Window Acknowledgement Size.
    pub(crate) fn set_peer_window(&mut self, window: u32) {
        self.peer_window = window;
    }

    /// Sends an Acknowledgement once a window's worth arrived since the last.
    pub(crate) fn maybe_acknowledge(&mut self) {
        if self.peer_window > 0 && self.bytes_in - self.acked_in >= u64::from(self.peer_window) {
            self.acked_in = self.bytes_in;
            // The sequence number is the byte count modulo 2^32.
            let sequence = (self.bytes_in & 0xFFFF_FFFF) as u32;
            self.send(
                csid::CONTROL,
                0,
                0,
                &Message::Control(ProtocolControl::Acknowledgement { sequence }),
            );
        }
    }

    /// Encodes and queues `message`.
    pub(crate) fn send(&mut self, csid: u32, stream_id: u32, timestamp: u32, message: &Message) {
        let (type_id, payload) = message.encode();
        self.send_raw(&RawMessage {
            csid,
            timestamp,
            type_id,
            stream_id,
            payload,
        });
    }

    /// Encodes and queues an already-typed raw message.
    pub(crate) fn send_raw(&mut self, raw: &RawMessage) {
        self.encoder.encode(raw, &mut self.scratch);
        let chunks = self.scratch.split().freeze();
        self.queue(chunks);
    }

    /// Queues bytes that are already whole chunks (shared media encodings).
    pub(crate) fn queue(&mut self, chunks: Bytes) {
        if !chunks.is_empty() {
            self.out_bytes += chunks.len();
            self.outq.push_back(chunks);
        }
    }

    /// Announces and switches the outbound chunk size.
    pub(crate) fn set_out_chunk_size(&mut self, size: u32) {
        self.send(
            csid::CONTROL,
            0,
            0,
            &Message::Control(ProtocolControl::SetChunkSize(size)),
        );
        self.encoder.set_chunk_size(size);
    }

    pub(crate) fn poll_transmit(&mut self) -> Option<Bytes> {
        let chunks = self.outq.pop_front()?;
        self.out_bytes -= chunks.len();
        Some(chunks)
    }

    /// Bytes queued for the socket.
    pub(crate) fn pending_bytes(&self) -> usize {
        self.out_bytes
    }
}
