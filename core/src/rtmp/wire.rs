//! The chunk-stream plumbing both connection sides share: inbound
//! reassembly, outbound encoding, acknowledgements.

use super::csid;
use crate::Limits;
use crate::chunk::{ChunkDecoder, ChunkEncoder, ChunkError, RawMessage};
use crate::message::{Message, ProtocolControl};
use crate::queue::QueueUse;
use crate::time::Instant;
use alloc::collections::VecDeque;
use bytes::{Bytes, BytesMut};

/// Undecoded input kept in a buffer at least this large is copied into a
/// right-sized one (a large chunk once grew it; the rest is a partial chunk).
const INPUT_SHRINK_ABOVE: usize = 64 * 1024;

/// Chunked bytes in and out of one connection.
///
/// Memory: an idle connection holds no buffer here. The input buffer is
/// freed once everything in it is decoded (message payloads keep their bytes
/// alive by themselves), the output queue and the encoding scratch buffer
/// once the queue drains, unless media is streaming through it.
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
    /// Media went out since `outq` last drained: keep its buffers warm.
    streaming: bool,
    /// A player (media went out at some point) or a client: its input
    /// buffer is kept when empty, unless a large chunk grew it. A player
    /// only sends acknowledgements, so the buffer is tiny, and keeping it
    /// makes each acknowledgement allocation-free.
    keep_input: bool,
    /// How often the output queue is refilled by deliveries (see
    /// [`QueueUse`]).
    usage: QueueUse,
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
            streaming: false,
            keep_input: false,
            usage: QueueUse::default(),
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

    /// The next whole message, if one is complete. When none is, the input
    /// buffer is released (emptied) or right-sized (a partial chunk left in
    /// a buffer a large chunk grew).
    pub(crate) fn next_message(&mut self) -> Result<Option<RawMessage>, ChunkError> {
        let message = self.decoder.decode(&mut self.inbuf)?;
        if message.is_none() {
            if self.inbuf.is_empty() {
                if !self.keep_input || self.inbuf.capacity() > INPUT_SHRINK_ABOVE {
                    self.inbuf = BytesMut::new();
                }
            } else if self.inbuf.capacity() > INPUT_SHRINK_ABOVE
                && self.inbuf.capacity() / 4 > self.inbuf.len()
            {
                self.inbuf = BytesMut::from(self.inbuf.as_ref());
            }
        }
        Ok(message)
    }

    /// Keeps the input buffer when it is emptied (up to
    /// `INPUT_SHRINK_ABOVE` bytes of it), as a player's is.
    pub(crate) fn keep_input_buffer(&mut self) {
        self.keep_input = true;
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

    /// Notes a delivery from the hub at `now`: if the output queue is empty
    /// it is being refilled (see [`QueueUse`]).
    pub(crate) fn note_delivery(&mut self, now: Instant) {
        if self.outq.is_empty() {
            self.usage.refill(now);
        }
    }

    /// Marks the output as streaming media until the queue next drains, so
    /// its buffers are kept for the next message rather than freed.
    pub(crate) fn mark_streaming(&mut self) {
        self.streaming = true;
        self.keep_input = true;
    }

    /// Queues bytes that are already whole chunks (shared media encodings).
    pub(crate) fn queue(&mut self, chunks: Bytes) {
        if !chunks.is_empty() {
            self.out_bytes += chunks.len();
            self.outq.push_back(chunks);
        }
    }

    /// The outbound chunk size in use.
    pub(crate) fn out_chunk_size(&self) -> u32 {
        self.encoder.chunk_size()
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
        if self.outq.is_empty() {
            self.usage.release(&mut self.outq, self.streaming);
            if !self.streaming {
                // The scratch buffer's remaining view would keep the last
                // encoding's allocation alive after the socket wrote it.
                self.scratch = BytesMut::new();
            }
            self.streaming = false;
        }
        Some(chunks)
    }

    /// Bytes queued for the socket.
    pub(crate) fn pending_bytes(&self) -> usize {
        self.out_bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chunk::encode_standalone;
    use alloc::vec;

    fn raw(type_id: u8, payload: alloc::vec::Vec<u8>) -> RawMessage {
        RawMessage {
            csid: 4,
            timestamp: 0,
            type_id,
            stream_id: 1,
            payload: Bytes::from(payload),
        }
    }

    fn chunks(msg: &RawMessage, chunk_size: u32) -> BytesMut {
        let mut out = BytesMut::new();
        encode_standalone(msg, chunk_size, &mut out).unwrap();
        out
    }

    #[test]
    fn input_is_freed_once_decoded_and_right_sized_after_a_large_chunk() {
        let mut wire = Wire::new(&Limits::default());
        wire.push_input(&chunks(&raw(8, vec![1; 100]), 128));
        let message = wire.next_message().unwrap().unwrap();
        assert_eq!(message.payload.len(), 100);
        assert!(wire.next_message().unwrap().is_none());
        assert_eq!(wire.inbuf.capacity(), 0, "nothing left: freed");

        // Chunk size 200 000, then one 150 000-byte chunk and a partial one.
        let mut set = BytesMut::new();
        let size = raw(1, 200_000u32.to_be_bytes().to_vec());
        let size = RawMessage {
            csid: 2,
            stream_id: 0,
            ..size
        };
        encode_standalone(&size, 128, &mut set).unwrap();
        wire.push_input(&set);
        assert!(wire.next_message().unwrap().is_some());
        let mut input = chunks(&raw(9, vec![2; 150_000]), 200_000);
        input.extend_from_slice(&chunks(&raw(9, vec![3; 1_000]), 200_000)[..100]);
        wire.push_input(&input);
        assert_eq!(wire.next_message().unwrap().unwrap().payload.len(), 150_000);
        assert!(wire.next_message().unwrap().is_none());
        assert_eq!(wire.inbuf.len(), 100, "the partial chunk stays");
        assert!(
            wire.inbuf.capacity() < INPUT_SHRINK_ABOVE,
            "but not the large buffer"
        );
    }

    #[test]
    fn a_drained_output_queue_is_freed_unless_streaming() {
        let mut wire = Wire::new(&Limits::default());
        for _ in 0..40 {
            wire.queue(Bytes::from_static(b"x"));
        }
        while wire.poll_transmit().is_some() {}
        assert_eq!(wire.outq.capacity(), 0);
        assert_eq!(wire.scratch.capacity(), 0);

        for _ in 0..40 {
            wire.mark_streaming();
            wire.queue(Bytes::from_static(b"x"));
        }
        while wire.poll_transmit().is_some() {}
        let kept = wire.outq.capacity();
        assert!(kept > 0 && kept <= crate::queue::KEEP_QUEUED, "{kept}");
    }
}
