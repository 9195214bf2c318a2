//! Codec tests: the byte vectors of PROTOCOL-NOTES.md, limits, and
//! encoder/decoder round trips under random chunking.

use super::*;
use crate::Limits;
use alloc::vec;
use alloc::vec::Vec;
use bytes::{Bytes, BytesMut};
use proptest::prelude::*;

fn hex(s: &str) -> Vec<u8> {
    let digits: Vec<u8> = s.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    digits
        .chunks(2)
        .map(|p| u8::from_str_radix(core::str::from_utf8(p).unwrap(), 16).unwrap())
        .collect()
}

fn msg(csid: u32, timestamp: u32, type_id: u8, stream_id: u32, payload: &str) -> RawMessage {
    RawMessage {
        csid,
        timestamp,
        type_id,
        stream_id,
        payload: Bytes::from(hex(payload)),
    }
}

/// Feeds all of `bytes` at once and collects every message.
fn decode_all(dec: &mut ChunkDecoder, bytes: &[u8]) -> Result<Vec<RawMessage>, ChunkError> {
    let mut input = BytesMut::from(bytes);
    let mut out = Vec::new();
    while let Some(m) = dec.decode(&mut input)? {
        out.push(m);
    }
    assert!(input.is_empty(), "{} bytes left over", input.len());
    Ok(out)
}

fn encode_all(enc: &mut ChunkEncoder, msgs: &[RawMessage]) -> Vec<u8> {
    let mut out = BytesMut::new();
    for m in msgs {
        enc.encode(m, &mut out);
    }
    out.to_vec()
}

/// Decodes `wire` and checks the messages; then checks that a fresh
/// encoder, given the same messages, picks the same headers.
fn check_vector(wire: &str, expected: &[RawMessage]) {
    let wire = hex(wire);
    let mut dec = ChunkDecoder::new(&Limits::default());
    assert_eq!(decode_all(&mut dec, &wire).unwrap(), expected);
    // Byte at a time too: partial chunks must stay in the input.
    let mut dec = ChunkDecoder::new(&Limits::default());
    let mut input = BytesMut::new();
    let mut got = Vec::new();
    for &b in &wire {
        input.extend_from_slice(&[b]);
        while let Some(m) = dec.decode(&mut input).unwrap() {
            got.push(m);
        }
    }
    assert_eq!(got, expected);
    assert_eq!(encode_all(&mut ChunkEncoder::new(), expected), wire);
}

// csid 2: Window Ack Size, two PingResponses (fmt 1 then fmt 3 reusing it),
// SetBufferLength (fmt 1), then play on csid 8 and a fmt 3 on csid 2
// reusing the SetBufferLength header (length 10, type 4, stream 0, delta 0).
// The encoder picks exactly these forms: after the fmt 1 with delta 0, an
// equal length/type/delta message is fmt 3.
#[test]
fn vectors_protocol_control_and_play() {
    let ts = 0xDB5565;
    check_vector(
        "02 db5565 000004 05 00000000 00989680
         42 000000 000006 04 0007 ce4c5f73
         c2 0007 ce4c6743
         42 000000 00000a 04 0003 00000000 00001388
         08 001fdd 00001d 14 01000000 020004 706c6179 00 0000000000000000 05 020009 73706565782e666c76
         c2 0003 00000001 00001388",
        &[
            msg(2, ts, 5, 0, "00989680"),
            msg(2, ts, 4, 0, "0007 ce4c5f73"),
            msg(2, ts, 4, 0, "0007 ce4c6743"),
            msg(2, ts, 4, 0, "0003 00000000 00001388"),
            msg(
                8,
                0x1FDD,
                20,
                1,
                "020004 706c6179 00 0000000000000000 05 020009 73706565782e666c76",
            ),
            msg(2, ts, 4, 0, "0003 00000001 00001388"),
        ],
    );
}

// createStream is a fmt 1 chunk on csid 3, so csid 3 needs an earlier
// header: a one-byte message (a null) at timestamp 0 primes it. The
// encoder picks fmt 1 too (length changes, stream id does not).
#[test]
fn vector_create_stream() {
    check_vector(
        "03 000000 000001 14 00000000 05
         43 001e61 000019 14 02000c 63726561746553747265616d 00 4008000000000000 05",
        &[
            msg(3, 0, 20, 0, "05"),
            msg(
                3,
                0x1E61,
                20,
                0,
                "02000c 63726561746553747265616d 00 4008000000000000 05",
            ),
        ],
    );
}

// onStatus (130 bytes, split at 128 by c4), then @setDataFrame on the same
// csid with another stream id, hence fmt 0 again.
#[test]
fn vectors_on_status_and_set_data_frame() {
    let on_status = "02 00086f6e537461747573 00 0000000000000000 05 03 0005 6c6576656c 020006 737461747573 0004 636f6465 020017 4e657453747265616d2e5075626c6973682e5374617274 000b 6465736372697074696f6e 020000 0007 64657461696c73 02000a 6d697865722d6f757433 0008 636c69656e746964 00 3ff0000000000000 00 0009";
    assert_eq!(hex(on_status).len(), 130);
    let set_data_frame = "02000d 40736574446174614672616d65 02000a 6f6e4d65746144617461 08 00000001 0008 6475726174696f6e 00 0000000000000000 000009";
    check_vector(
        "04000000000082140100000002 00086f6e537461747573 00 0000000000000000 05 03 0005 6c6576656c 020006 737461747573 0004 636f6465 020017 4e657453747265616d2e5075626c6973682e5374617274 000b 6465736372697074696f6e 020000 0007 64657461696c73 02000a 6d697865722d6f757433 0008 636c69656e746964 00 3ff0000000000000 00 c4 0009
         04 000000 000038 12 00000000 02000d 40736574446174614672616d65 02000a 6f6e4d65746144617461 08 00000001 0008 6475726174696f6e 00 0000000000000000 000009",
        &[
            msg(4, 0, 20, 1, on_status),
            msg(4, 0, 18, 0, set_data_frame),
        ],
    );
}

#[test]
fn single_chunk_message_is_not_copied() {
    let wire = hex("02 db5565 000004 05 00000000 00989680");
    let mut input = BytesMut::from(&wire[..]);
    let start = input.as_ptr() as usize;
    let m = ChunkDecoder::new(&Limits::default())
        .decode(&mut input)
        .unwrap()
        .unwrap();
    assert_eq!(m.payload.as_ptr() as usize, start + 12);
}

#[test]
fn type3_after_type0_adds_the_type0_timestamp() {
    // Spec 5.3.1.2.4: the delta of a fmt 3 after a fmt 0 is the fmt 0's
    // timestamp.
    let mut dec = ChunkDecoder::new(&Limits::default());
    let got = decode_all(&mut dec, &hex("02 000064 000001 05 00000000 aa c2 bb")).unwrap();
    assert_eq!(got, [msg(2, 100, 5, 0, "aa"), msg(2, 200, 5, 0, "bb")]);
    // The encoder does not rely on that (decoders disagree): fmt 2.
    let wire = encode_all(&mut ChunkEncoder::new(), &got);
    assert_eq!(wire, hex("02 000064 000001 05 00000000 aa 82 000064 bb"));
}

#[test]
fn extended_timestamp_repeated_in_continuations() {
    let payload = "00".repeat(200);
    let m = msg(5, 0x0100_0000, 9, 1, &payload);
    let mut out = BytesMut::new();
    let mut enc = ChunkEncoder::new();
    enc.encode(&m, &mut out);
    let mut expected = hex("05 ffffff 0000c8 09 01000000 01000000");
    expected.extend(hex(&payload[..256]));
    expected.extend(hex("c5 01000000"));
    expected.extend(hex(&payload[256..]));
    assert_eq!(&out[..], &expected[..]);
    let mut dec = ChunkDecoder::new(&Limits::default());
    assert_eq!(
        decode_all(&mut dec, &out).unwrap(),
        core::slice::from_ref(&m)
    );

    // A delta of 0xFFFFFF or more goes in the extended field of fmt 2, and
    // its continuations repeat it.
    let m2 = RawMessage {
        timestamp: 0x0100_0000 + 0x0100_0000,
        ..m.clone()
    };
    let mut out = BytesMut::new();
    enc.encode(&m2, &mut out);
    assert_eq!(&out[..8], &hex("85 ffffff 01000000")[..]);
    assert_eq!(&out[8 + 128..8 + 128 + 5], &hex("c5 01000000")[..]);
    assert_eq!(decode_all(&mut dec, &out).unwrap(), [m2]);
}

#[test]
fn type3_new_message_with_extended_delta() {
    // fmt 2 with extended delta 0x1000000, then fmt 3 for a new message
    // repeating the extended field: same delta again.
    let mut dec = ChunkDecoder::new(&Limits::default());
    let got = decode_all(
        &mut dec,
        &hex("06 000000 000001 08 01000000 11
              86 ffffff 01000000 22
              c6 01000000 33"),
    )
    .unwrap();
    assert_eq!(
        got,
        [
            msg(6, 0, 8, 1, "11"),
            msg(6, 0x0100_0000, 8, 1, "22"),
            msg(6, 0x0200_0000, 8, 1, "33"),
        ]
    );
}

#[test]
fn basic_header_forms_decode() {
    // csid 64 (2-byte form), csid 400 (3-byte form), csid 70 in the 3-byte
    // form although the 2-byte one would do.
    let mut dec = ChunkDecoder::new(&Limits::default());
    let got = decode_all(
        &mut dec,
        &hex("00 00 000001 000001 08 00000000 aa
              01 5001 000002 000001 08 00000000 bb
              01 0600 000003 000001 08 00000000 cc
              c0 00 dd"),
    )
    .unwrap();
    assert_eq!(
        got,
        [
            msg(64, 1, 8, 0, "aa"),
            msg(400, 2, 8, 0, "bb"),
            msg(70, 3, 8, 0, "cc"),
            msg(64, 2, 8, 0, "dd"),
        ]
    );
}

#[test]
fn interleaved_chunk_streams() {
    // 200-byte video on csid 6 and 150-byte audio on csid 4, chunks
    // alternating.
    let video = "11".repeat(200);
    let audio = "22".repeat(150);
    let wire = [
        "06 000010 0000c8 09 01000000",
        &video[..256],
        "04 000020 000096 08 01000000",
        &audio[..256],
        "c6",
        &video[256..],
        "c4",
        &audio[256..],
    ]
    .concat();
    let mut dec = ChunkDecoder::new(&Limits::default());
    assert_eq!(
        decode_all(&mut dec, &hex(&wire)).unwrap(),
        [msg(6, 16, 9, 1, &video), msg(4, 32, 8, 1, &audio)]
    );
}

#[test]
fn set_chunk_size_and_abort_are_applied() {
    let mut dec = ChunkDecoder::new(&Limits::default());
    let mut wire = hex("02 000000 000004 01 00000000 00000100");
    // 300-byte message in chunks of 256.
    wire.extend(hex("04 000000 00012c 14 00000000"));
    wire.extend(vec![7; 256]);
    wire.extend(hex("c4"));
    wire.extend(vec![7; 44]);
    let got = decode_all(&mut dec, &wire).unwrap();
    assert_eq!(dec.chunk_size(), 256);
    assert_eq!(got.len(), 2);
    assert_eq!(got[1].payload.len(), 300);

    // Abort csid 4 mid-message; a new fmt 0 message on it then decodes.
    let mut wire = hex("04 000000 00012c 14 00000000");
    wire.extend(vec![7; 256]);
    wire.extend(hex("02 000000 000004 02 00000000 00000004"));
    wire.extend(hex("04 000000 000001 14 00000000 09"));
    let got = decode_all(&mut dec, &wire).unwrap();
    assert_eq!(got, [msg(2, 0, 2, 0, "00000004"), msg(4, 0, 20, 0, "09")]);
}

fn set_chunk_size(size: u32) -> Vec<u8> {
    let mut wire = hex("02 000000 000004 01 00000000");
    wire.extend(size.to_be_bytes());
    wire
}

#[test]
fn set_chunk_size_validation() {
    let limits = Limits::default();
    let mut dec = ChunkDecoder::new(&limits);
    assert_eq!(
        decode_all(&mut dec, &set_chunk_size(0)),
        Err(ChunkError::InvalidChunkSize(0))
    );
    let mut dec = ChunkDecoder::new(&limits);
    assert_eq!(
        decode_all(&mut dec, &set_chunk_size(0x8000_0000)),
        Err(ChunkError::InvalidChunkSize(0x8000_0000))
    );
    let mut dec = ChunkDecoder::new(&limits);
    assert_eq!(
        decode_all(&mut dec, &set_chunk_size(limits.max_chunk_size + 1)),
        Err(ChunkError::ChunkSizeAboveLimit {
            size: limits.max_chunk_size + 1,
            max: limits.max_chunk_size
        })
    );
    let mut dec = ChunkDecoder::new(&limits);
    decode_all(&mut dec, &set_chunk_size(4096)).unwrap();
    assert_eq!(dec.chunk_size(), 4096);
    // Below 128: raised to 128, as Red5 does.
    decode_all(&mut dec, &set_chunk_size(1)).unwrap();
    assert_eq!(dec.chunk_size(), MIN_INBOUND_CHUNK_SIZE);
    // Wrong payload lengths.
    let mut dec = ChunkDecoder::new(&limits);
    assert_eq!(
        decode_all(&mut dec, &hex("02 000000 000003 01 00000000 000080")),
        Err(ChunkError::BadControlPayload { type_id: 1, len: 3 })
    );
    let mut dec = ChunkDecoder::new(&limits);
    assert_eq!(
        decode_all(&mut dec, &hex("02 000000 000005 02 00000000 0000000400")),
        Err(ChunkError::BadControlPayload { type_id: 2, len: 5 })
    );
}

#[test]
fn oversized_message_refused_from_header_alone() {
    let limits = Limits::small();
    let mut dec = ChunkDecoder::new(&limits);
    // Only the header: no payload has arrived, nothing is allocated.
    let mut input = BytesMut::from(&hex("04 000000 ffffff 09 01000000")[..]);
    assert_eq!(
        dec.decode(&mut input),
        Err(ChunkError::MessageTooLarge {
            len: 0xFF_FFFF,
            max: limits.max_message
        })
    );
}

#[test]
fn reassembly_budget() {
    let limits = Limits {
        max_message: 1000,
        max_reassembly_bytes: 1500,
        ..Limits::small()
    };
    let mut dec = ChunkDecoder::new(&limits);
    let mut wire = hex("04 000000 0003e8 09 01000000");
    wire.extend(vec![0; 128]);
    wire.extend(hex("05 000000 0003e8 09 01000000"));
    assert_eq!(
        decode_all(&mut dec, &wire).map(|_| ()),
        Err(ChunkError::ReassemblyBudgetExceeded {
            needed: 2000,
            budget: 1500
        })
    );
}

#[test]
fn too_many_chunk_streams() {
    let limits = Limits {
        max_chunk_streams: 3,
        ..Limits::small()
    };
    let mut dec = ChunkDecoder::new(&limits);
    let mut wire = Vec::new();
    for csid in 3..=5u8 {
        wire.extend([csid]);
        wire.extend(hex("000000 000001 08 01000000 00"));
    }
    assert_eq!(decode_all(&mut dec, &wire).unwrap().len(), 3);
    // Existing ones stay usable, a fourth is refused.
    assert_eq!(
        decode_all(&mut dec, &hex("c3 00 c4 00 c5 00"))
            .unwrap()
            .len(),
        3
    );
    assert_eq!(
        decode_all(&mut dec, &hex("06 000000 000001 08 01000000 00")),
        Err(ChunkError::TooManyChunkStreams { max: 3 })
    );
}

#[test]
fn first_chunk_without_header_is_an_error() {
    for wire in ["43 000000 000001 08 00", "83 000000 00", "c3 00"] {
        let mut dec = ChunkDecoder::new(&Limits::default());
        assert_eq!(
            decode_all(&mut dec, &hex(wire)),
            Err(ChunkError::NoPreviousHeader { csid: 3 })
        );
    }
}

#[test]
fn new_header_mid_message_is_an_error() {
    let mut wire = hex("04 000000 0000c8 09 01000000");
    wire.extend(vec![0; 128]);
    wire.extend(hex("84 000000"));
    let mut dec = ChunkDecoder::new(&Limits::default());
    assert_eq!(
        decode_all(&mut dec, &wire),
        Err(ChunkError::HeaderMidMessage { csid: 4 })
    );
}

#[test]
fn encoder_header_choice() {
    let mut enc = ChunkEncoder::new();
    let m = |ts, len: usize, type_id, sid| RawMessage {
        csid: 6,
        timestamp: ts,
        type_id,
        stream_id: sid,
        payload: Bytes::from(vec![0; len]),
    };
    let first = |enc: &mut ChunkEncoder, msg: &RawMessage| {
        let mut out = BytesMut::new();
        enc.encode(msg, &mut out);
        out[0] >> 6
    };
    assert_eq!(first(&mut enc, &m(0, 10, 9, 1)), 0); // first use
    assert_eq!(first(&mut enc, &m(0, 10, 9, 1)), 3); // all repeats (delta 0 at ts 0)
    assert_eq!(first(&mut enc, &m(40, 10, 9, 1)), 2); // delta changes
    assert_eq!(first(&mut enc, &m(80, 10, 9, 1)), 3); // delta repeats
    assert_eq!(first(&mut enc, &m(120, 11, 9, 1)), 1); // length changes
    assert_eq!(first(&mut enc, &m(160, 11, 8, 1)), 1); // type changes
    assert_eq!(first(&mut enc, &m(100, 11, 8, 1)), 0); // backwards
    assert_eq!(first(&mut enc, &m(140, 11, 8, 2)), 0); // stream changes
    // Forward across 2^32: a delta, not a fmt 0.
    assert_eq!(first(&mut enc, &m(u32::MAX - 5, 11, 8, 2)), 0);
    assert_eq!(first(&mut enc, &m(10, 11, 8, 2)), 2);
    // After forget, fmt 0 again.
    enc.forget(6);
    assert_eq!(first(&mut enc, &m(20, 11, 8, 2)), 0);
}

#[test]
fn encoder_refuses_unencodable_messages() {
    let mut out = BytesMut::new();
    let mut enc = ChunkEncoder::new();
    for csid in [0, 1, 65600] {
        let m = msg(csid, 0, 8, 0, "00");
        assert_eq!(
            enc.try_encode(&m, &mut out),
            Err(ChunkError::InvalidCsid(csid))
        );
        assert_eq!(
            encode_standalone(&m, 128, &mut out),
            Err(ChunkError::InvalidCsid(csid))
        );
    }
    let big = RawMessage {
        payload: Bytes::from(vec![0; 0x100_0000]),
        ..msg(4, 0, 9, 1, "")
    };
    assert_eq!(
        enc.try_encode(&big, &mut out),
        Err(ChunkError::PayloadTooLong { len: 0x100_0000 })
    );
    assert!(out.is_empty());
}

#[test]
fn standalone_mixed_with_stateful() {
    let mut enc = ChunkEncoder::new();
    let mut dec = ChunkDecoder::new(&Limits::default());
    let mut wire = BytesMut::new();
    let a = msg(6, 1000, 9, 1, &"ab".repeat(300));
    let b = msg(6, 1040, 9, 1, &"cd".repeat(300));
    let c = msg(6, 1080, 9, 1, &"ef".repeat(300));
    enc.encode(&a, &mut wire);
    let at = wire.len();
    encode_standalone(&b, enc.chunk_size(), &mut wire).unwrap();
    assert_eq!(wire[at], 0x06); // fmt 0
    enc.note_standalone(&b);
    enc.encode(&c, &mut wire);
    assert_eq!(decode_all(&mut dec, &wire).unwrap(), [a, b, c]);
}

#[test]
fn display_is_useful() {
    let e = ChunkError::MessageTooLarge { len: 10, max: 5 };
    assert_eq!(
        alloc::format!("{e}"),
        "message length 10 exceeds the limit of 5 bytes"
    );
    let e = ChunkError::NoPreviousHeader { csid: 3 };
    assert!(alloc::format!("{e}").contains("chunk stream 3"));
}

// ---- property tests ----

#[derive(Clone, Debug)]
enum Op {
    Msg {
        csid: u32,
        step: u32,
        type_id: u8,
        stream_id: u32,
        len: usize,
    },
    ChunkSize(u32),
}

fn csid_strategy() -> impl Strategy<Value = u32> {
    prop_oneof![2u32..=10, 60u32..=70, 310u32..=330, 65590u32..=65599]
}

fn op_strategy() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (
            csid_strategy(),
            prop_oneof![
                Just(0u32),
                0u32..100,
                0x00FF_FFF0u32..0x0100_0010,
                any::<u32>(),
            ],
            prop_oneof![Just(8u8), Just(9u8), 3u8..=22],
            prop_oneof![Just(0u32), Just(1u32), any::<u32>()],
            prop_oneof![0usize..4, 0usize..300, 0usize..2000],
        )
            .prop_map(|(csid, step, type_id, stream_id, len)| Op::Msg {
                csid,
                step,
                type_id,
                stream_id,
                len
            }),
        1 => prop_oneof![128u32..=512, 128u32..=65536].prop_map(Op::ChunkSize),
    ]
}

/// Builds the messages of `ops`, encodes them with Set Chunk Size
/// messages in between, and returns (messages, wire bytes).
fn build(ops: &[Op], start_ts: u32) -> (Vec<RawMessage>, Vec<u8>) {
    let mut enc = ChunkEncoder::new();
    let mut ts = start_ts;
    let mut msgs = Vec::new();
    let mut wire = BytesMut::new();
    for (i, op) in ops.iter().enumerate() {
        let m = match *op {
            Op::Msg {
                csid,
                step,
                type_id,
                stream_id,
                len,
            } => {
                ts = ts.wrapping_add(step);
                let type_id = if type_id < 3 { 8 } else { type_id };
                RawMessage {
                    csid,
                    timestamp: ts,
                    type_id,
                    stream_id,
                    payload: Bytes::from(vec![i as u8; len]),
                }
            }
            Op::ChunkSize(size) => RawMessage {
                csid: 2,
                timestamp: ts,
                type_id: 1,
                stream_id: 0,
                payload: Bytes::copy_from_slice(&size.to_be_bytes()),
            },
        };
        enc.encode(&m, &mut wire);
        if let Op::ChunkSize(size) = *op {
            enc.set_chunk_size(size);
        }
        msgs.push(m);
    }
    (msgs, wire.to_vec())
}

fn feed_in_pieces(
    dec: &mut ChunkDecoder,
    wire: &[u8],
    cuts: &[usize],
) -> Result<Vec<RawMessage>, ChunkError> {
    let mut input = BytesMut::new();
    let mut got = Vec::new();
    let mut pos = 0;
    let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (wire.len() + 1)).collect();
    cuts.sort_unstable();
    cuts.push(wire.len());
    for cut in cuts {
        input.extend_from_slice(&wire[pos..cut.max(pos)]);
        pos = cut.max(pos);
        while let Some(m) = dec.decode(&mut input)? {
            got.push(m);
        }
    }
    assert!(input.is_empty());
    Ok(got)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn round_trip_random_splits(
        ops in prop::collection::vec(op_strategy(), 1..40),
        start_ts in prop_oneof![Just(0u32), 0x00FF_FF00u32..0x0100_0100, u32::MAX - 1000..=u32::MAX],
        cuts in prop::collection::vec(any::<usize>(), 0..30),
    ) {
        let (msgs, wire) = build(&ops, start_ts);
        let limits = Limits {
            max_message: 1 << 20,
            max_chunk_size: 1 << 20,
            max_chunk_streams: 64,
            max_reassembly_bytes: 1 << 22,
            ..Limits::default()
        };
        let mut dec = ChunkDecoder::new(&limits);
        let got = feed_in_pieces(&mut dec, &wire, &cuts).unwrap();
        prop_assert_eq!(got, msgs);
    }

    #[test]
    fn standalone_round_trip(
        ops in prop::collection::vec(op_strategy(), 1..10),
        chunk_size in 128u32..=1024,
    ) {
        let (msgs, _) = build(&ops, 0);
        let mut wire = BytesMut::new();
        wire.extend_from_slice(&set_chunk_size(chunk_size));
        for m in msgs.iter().filter(|m| m.type_id != 1) {
            encode_standalone(m, chunk_size, &mut wire).unwrap();
        }
        let mut dec = ChunkDecoder::new(&Limits::default());
        let got = decode_all(&mut dec, &wire).unwrap();
        let expected: Vec<_> = msgs.into_iter().filter(|m| m.type_id != 1).collect();
        prop_assert_eq!(&got[1..], &expected[..]);
    }

    #[test]
    fn standalone_payload_inverts_encode_standalone(
        len in 0usize..3000,
        chunk_size in 1u32..=1500,
        csid in prop_oneof![Just(3u32), 60u32..70, 319u32..321],
        timestamp in prop_oneof![Just(0u32), 0x00FF_FFF0u32..0x0100_0010],
        seed in any::<u8>(),
    ) {
        let payload: Vec<u8> = (0..len).map(|i| (i as u8).wrapping_mul(31) ^ seed).collect();
        let msg = RawMessage {
            csid,
            timestamp,
            type_id: 9,
            stream_id: 1,
            payload: Bytes::from(payload),
        };
        let mut wire = BytesMut::new();
        encode_standalone(&msg, chunk_size, &mut wire).unwrap();
        let wire = wire.freeze();
        let got = standalone_payload(&wire, chunk_size);
        prop_assert_eq!(got.as_ref(), Some(&msg.payload));
        // Any other length of input is not one whole encoding.
        prop_assert_eq!(standalone_payload(&wire.slice(..wire.len() - 1), chunk_size), None);
        let mut longer = BytesMut::from(&wire[..]);
        longer.extend_from_slice(&[0xC3]);
        prop_assert_eq!(standalone_payload(&longer.freeze(), chunk_size), None);
    }

    #[test]
    fn standalone_payload_never_panics(
        bytes in prop::collection::vec(any::<u8>(), 0..600),
        chunk_size in 1u32..200,
    ) {
        let _ = standalone_payload(&Bytes::from(bytes), chunk_size);
    }

    #[test]
    fn arbitrary_bytes_never_panic(
        bytes in prop::collection::vec(any::<u8>(), 0..2000),
        cuts in prop::collection::vec(any::<usize>(), 0..10),
    ) {
        let mut dec = ChunkDecoder::new(&Limits::small());
        let mut input = BytesMut::new();
        let mut pos = 0;
        let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
        cuts.sort_unstable();
        cuts.push(bytes.len());
        'outer: for cut in cuts {
            input.extend_from_slice(&bytes[pos..cut.max(pos)]);
            pos = cut.max(pos);
            loop {
                match dec.decode(&mut input) {
                    Ok(Some(_)) => {}
                    Ok(None) => break,
                    Err(_) => break 'outer,
                }
            }
        }
    }

    #[test]
    fn arbitrary_chunks_after_valid_prefix_never_panic(
        fmts in prop::collection::vec((0u8..4, 2u8..8, any::<[u8; 16]>()), 0..60),
    ) {
        // Mostly well-formed headers with random fields: exercises the
        // stateful paths more than pure noise does.
        let mut wire = Vec::new();
        for (fmt, csid, rest) in fmts {
            wire.push((fmt << 6) | csid);
            wire.extend_from_slice(&rest);
        }
        let mut dec = ChunkDecoder::new(&Limits::small());
        let mut input = BytesMut::from(&wire[..]);
        while let Ok(Some(_)) = dec.decode(&mut input) {}
    }
}
