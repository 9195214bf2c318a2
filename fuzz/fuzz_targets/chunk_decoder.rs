//! Chunk stream reassembly under small limits.
//!
//! Input: `[split, limits_a, limits_b, encode_mode, stream…]`.
//!
//! Checks, besides "never panics":
//! - feeding the stream in fuzzer-chosen pieces gives exactly the messages,
//!   the error and the consumed byte count that feeding it whole gives;
//! - no message is longer than `max_message`, the inbound chunk size stays
//!   in 128..=max(128, max_chunk_size);
//! - every decoded message, re-encoded with `ChunkEncoder` (or
//!   `encode_standalone` + `note_standalone`, as the fuzzer picks) and fed
//!   to a fresh decoder with the same limits, decodes back equal and
//!   consumes exactly the encoded bytes.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use tern_core::Limits;
use tern_core::chunk::{
    ChunkDecoder, ChunkEncoder, ChunkError, MIN_INBOUND_CHUNK_SIZE, RawMessage, encode_standalone,
};
use tern_core_fuzz::{limits_from, pieces};

#[derive(Debug, PartialEq)]
struct Outcome {
    messages: Vec<RawMessage>,
    error: Option<ChunkError>,
    /// Bytes the decoder took off its input.
    consumed: usize,
}

fn run(limits: &Limits, input: &[&[u8]]) -> Outcome {
    let mut dec = ChunkDecoder::new(limits);
    let mut buf = BytesMut::new();
    let mut messages = Vec::new();
    let ceiling = limits.max_chunk_size.max(MIN_INBOUND_CHUNK_SIZE);
    let mut fed = 0;
    for piece in input {
        buf.extend_from_slice(piece);
        fed += piece.len();
        loop {
            let before = buf.len();
            match dec.decode(&mut buf) {
                Ok(Some(m)) => {
                    assert!(m.payload.len() <= limits.max_message as usize);
                    assert!(buf.len() < before, "a message was produced from no bytes");
                    messages.push(m);
                }
                Ok(None) => break,
                Err(error) => {
                    return Outcome {
                        messages,
                        error: Some(error),
                        consumed: fed - buf.len(),
                    };
                }
            }
            let cs = dec.chunk_size();
            assert!(
                (MIN_INBOUND_CHUNK_SIZE..=ceiling).contains(&cs),
                "chunk size {cs}"
            );
        }
    }
    Outcome {
        messages,
        error: None,
        consumed: fed - buf.len(),
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&[split, la, lb, mode], stream)) = data.split_first_chunk::<4>() else {
        return;
    };
    let limits = limits_from(la, lb);

    let whole = run(&limits, &[stream]);
    let cut = run(&limits, &pieces(split, stream));
    assert_eq!(whole, cut, "piecewise decoding differs from whole decoding");

    // Round trip through the encoder.
    let mut enc = ChunkEncoder::new();
    let mut redec = ChunkDecoder::new(&limits);
    for (i, m) in whole.messages.iter().enumerate() {
        let mut buf = BytesMut::new();
        if mode.rotate_right(i as u32 % 8) & 1 == 1 {
            encode_standalone(m, enc.chunk_size(), &mut buf).expect("standalone encode");
            enc.note_standalone(m);
        } else {
            enc.try_encode(m, &mut buf)
                .expect("encode of a decoded message");
        }
        let back = redec
            .decode(&mut buf)
            .unwrap_or_else(|e| panic!("re-decode of {m:?} failed: {e}"));
        assert_eq!(back.as_ref(), Some(m), "round trip changed the message");
        assert!(buf.is_empty(), "{} encoded bytes left over", buf.len());
        // A Set Chunk Size just went through: the encoder follows the peer.
        enc.set_chunk_size(redec.chunk_size());
    }
});
