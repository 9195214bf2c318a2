//! Chunk stream encode and decode: a 25 fps stream's worth of video
//! messages (one keyframe, inter frames) at chunk size 4096, and small
//! audio messages at 128.

use bytes::{Bytes, BytesMut};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use tern_core::Limits;
use tern_core::chunk::{ChunkDecoder, ChunkEncoder, RawMessage, encode_standalone};

/// 50 video messages: a 60 KB keyframe then 49 6 KB inter frames, 40 ms apart.
fn gop() -> Vec<RawMessage> {
    (0..50u32)
        .map(|n| RawMessage {
            csid: 7,
            timestamp: n * 40,
            type_id: 9,
            stream_id: 1,
            payload: Bytes::from(vec![0x27; if n == 0 { 60_000 } else { 6_000 }]),
        })
        .collect()
}

fn audio() -> Vec<RawMessage> {
    (0..50u32)
        .map(|n| RawMessage {
            csid: 6,
            timestamp: n * 23,
            type_id: 8,
            stream_id: 1,
            payload: Bytes::from(vec![0xAF; 360]),
        })
        .collect()
}

fn bytes_of(messages: &[RawMessage]) -> u64 {
    messages.iter().map(|m| m.payload.len() as u64).sum()
}

fn encoded(messages: &[RawMessage], chunk_size: u32) -> Bytes {
    let mut encoder = ChunkEncoder::new();
    encoder.set_chunk_size(chunk_size);
    let mut out = BytesMut::new();
    for m in messages {
        encoder.encode(m, &mut out);
    }
    out.freeze()
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("chunk");
    for (name, messages, chunk_size) in
        [("video_gop_4096", gop(), 4096), ("audio_128", audio(), 128)]
    {
        group.throughput(Throughput::Bytes(bytes_of(&messages)));
        let mut out = BytesMut::with_capacity(1 << 20);
        group.bench_function(format!("encode/{name}"), |b| {
            let mut encoder = ChunkEncoder::new();
            encoder.set_chunk_size(chunk_size);
            b.iter(|| {
                out.clear();
                for m in &messages {
                    encoder.encode(black_box(m), &mut out);
                }
                black_box(out.len())
            })
        });
        group.bench_function(format!("encode_standalone/{name}"), |b| {
            b.iter(|| {
                out.clear();
                for m in &messages {
                    let _ = encode_standalone(black_box(m), chunk_size, &mut out);
                }
                black_box(out.len())
            })
        });
        let wire = encoded(&messages, chunk_size);
        let limits = Limits::default();
        group.bench_function(format!("decode/{name}"), |b| {
            b.iter(|| {
                let mut decoder = ChunkDecoder::new(&limits);
                // The peer announced its chunk size first.
                let mut input = BytesMut::new();
                let mut encoder = ChunkEncoder::new();
                encoder.encode(
                    &RawMessage {
                        csid: 2,
                        timestamp: 0,
                        type_id: 1,
                        stream_id: 0,
                        payload: Bytes::copy_from_slice(&chunk_size.to_be_bytes()),
                    },
                    &mut input,
                );
                input.extend_from_slice(&wire);
                let mut n = 0;
                while let Ok(Some(m)) = decoder.decode(&mut input) {
                    n += m.payload.len();
                }
                black_box(n)
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
