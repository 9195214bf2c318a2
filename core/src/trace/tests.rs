//! Tests of the tracer and its renderers.

use super::render::{write_fourcc, write_name};
use super::*;
use crate::amf0;
use crate::amf0::Value;
use crate::chunk::RawMessage;
use crate::chunk::encode_standalone;
use crate::message::{Command, connect_result};
use alloc::format;
use alloc::string::ToString;
use alloc::vec;
use bytes::Bytes;
use proptest::prelude::*;

/// Hex to bytes, ignoring spaces.
fn hex(s: &str) -> Vec<u8> {
    let digits: Vec<u8> = s.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    digits
        .chunks(2)
        .map(|p| u8::from_str_radix(core::str::from_utf8(p).unwrap(), 16).unwrap())
        .collect()
}

/// C0 = 3, then C1 and C2 all zero (or S0 = 3, S1 with time 1000 and
/// version 4.0.0.1, S2 all zero).
fn handshake(direction: Direction) -> Vec<u8> {
    let mut out = vec![3u8];
    let mut p1 = vec![0u8; PACKET_LEN];
    if direction == Direction::ServerToClient {
        p1[..8].copy_from_slice(&[0, 0, 0x03, 0xe8, 4, 0, 0, 1]);
    }
    out.extend_from_slice(&p1);
    out.extend_from_slice(&[0u8; PACKET_LEN]);
    out
}

/// One message as a self-contained chunk sequence (fmt 0 first).
fn chunks(csid: u32, ts: u32, type_id: u8, sid: u32, payload: &[u8], size: u32) -> Vec<u8> {
    let msg = RawMessage {
        csid,
        timestamp: ts,
        type_id,
        stream_id: sid,
        payload: Bytes::copy_from_slice(payload),
    };
    let mut out = BytesMut::new();
    encode_standalone(&msg, size, &mut out).unwrap();
    out.to_vec()
}

fn command_bytes(c: &Command) -> Vec<u8> {
    c.to_bytes().to_vec()
}

fn lines_of(t: &mut Tracer) -> Vec<String> {
    core::iter::from_fn(|| t.poll_line()).collect()
}

/// A client's side: PROTOCOL-NOTES vectors plus built media messages.
fn client_capture() -> Vec<u8> {
    let mut b = handshake(Direction::ClientToServer);
    let connect = Command {
        name: "connect".into(),
        transaction_id: 1.0,
        command_object: Value::object([
            ("app", Value::string("live")),
            ("tcUrl", Value::string("rtmp://localhost/live")),
            ("objectEncoding", Value::Number(0.0)),
        ]),
        args: vec![],
    };
    b.extend(chunks(3, 0, 20, 0, &command_bytes(&connect), 128));
    b.extend(hex(
        "43 001e61 000019 14 02000c 63726561746553747265616d 00 4008000000000000 05",
    ));
    b.extend(hex("02 db5565 000004 05 00000000 00989680"));
    b.extend(hex("42 000000 000006 04 0007 ce4c5f73"));
    b.extend(hex("c2 0007 ce4c6743"));
    b.extend(hex("42 000000 00000a 04 0003 00000000 00001388"));
    b.extend(hex(
        "08 001fdd 00001d 14 01000000 020004 706c6179 00 0000000000000000 05 020009 73706565782e666c76",
    ));
    b.extend(hex("c2 0003 00000001 00001388"));
    b.extend(hex(
        "04 000000 000038 12 00000000 02000d 40736574446174614672616d65 02000a 6f6e4d65746144617461 08 00000001 0008 6475726174696f6e 00 0000000000000000 000009",
    ));
    let so_use = hex("0004 63686174 00000000 00000000 00000000 01 00000000");
    b.extend(chunks(5, 0, 19, 0, &so_use, 128));
    let so_req = hex(
        "0004 63686174 00000002 00000000 00000000 03 0000000e 0007 6d657373616765 02 0002 6869",
    );
    b.extend(chunks(5, 10, 19, 0, &so_req, 128));
    // Media on stream 1 after Set Chunk Size 4096.
    b.extend(chunks(2, 0, 1, 0, &4096u32.to_be_bytes(), 128));
    let mut seq = vec![0x17, 0, 0, 0, 0];
    seq.resize(45, 0x42);
    b.extend(chunks(6, 0, 9, 1, &seq, 4096));
    let mut inter = vec![0x27, 1, 0, 0, 0];
    inter.resize(1200, 0x11);
    b.extend(chunks(6, 33, 9, 1, &inter, 4096));
    b.extend(chunks(4, 0, 8, 1, &[0xaf, 0x00, 0x12, 0x10], 4096));
    let mut aac = vec![0xaf, 0x01];
    aac.resize(372, 0x21);
    b.extend(chunks(4, 23, 8, 1, &aac, 4096));
    let mut hevc = b"\x90hvc1".to_vec();
    hevc.resize(40, 1);
    b.extend(chunks(6, 66, 9, 1, &hevc, 4096));
    b.extend(chunks(6, 99, 9, 1, b"\xa1av01\x00\x00\x00\xff", 4096));
    b.extend(chunks(4, 46, 8, 1, &[0xb2, 1, 2, 3], 4096));
    b.extend(chunks(4, 69, 8, 1, b"\x90Opus\x01\x02", 4096));
    b.extend(chunks(7, 0, 22, 1, &[0; 30], 4096));
    b.extend(chunks(7, 0, 7, 1, &[1, 2, 3], 4096));
    b.extend(chunks(2, 0, 3, 0, &12345u32.to_be_bytes(), 4096));
    b.extend(chunks(2, 0, 2, 0, &4u32.to_be_bytes(), 4096));
    b.extend(chunks(2, 0, 4, 0, &hex("0006 000004d2"), 4096));
    // A command whose AMF0 is cut short: a message-level error only.
    b.extend(chunks(3, 0, 20, 0, &hex("02 0004 706c6179 00"), 4096));
    b
}

const CLIENT_LINES: &[&str] = &[
    "C→S handshake C0 version=3",
    "C→S handshake C1 time=0 version=0.0.0.0 (plain)",
    "C→S handshake C2 time=0 time2=0",
    "C→S csid=3 ts=0 len=91 type=20 command connect tx=1 {app: \"live\", tcUrl: \"rtmp://localhost/live\", objectEncoding: 0}",
    "C→S csid=3 ts=7777 len=25 type=20 command createStream tx=3 null",
    "C→S csid=2 ts=14374245 len=4 type=5 window-ack-size 10000000",
    "C→S csid=2 ts=14374245 len=6 type=4 user-control ping-response 3461111667",
    "C→S csid=2 ts=14374245 len=6 type=4 user-control ping-response 3461113667",
    "C→S csid=2 ts=14374245 len=10 type=4 user-control set-buffer-length 0 5000ms",
    "C→S csid=8 ts=8157 len=29 type=20 sid=1 command play tx=0 null \"speex.flv\"",
    "C→S csid=2 ts=14374245 len=10 type=4 user-control set-buffer-length 1 5000ms",
    "C→S csid=4 ts=0 len=56 type=18 data @setDataFrame onMetaData [ecma duration: 0]",
    "C→S csid=5 ts=0 len=23 type=19 shared-object \"chat\" v=0 transient [use]",
    "C→S csid=5 ts=10 len=37 type=19 shared-object \"chat\" v=2 transient [request-change message=\"hi\"]",
    "C→S csid=2 ts=0 len=4 type=1 set-chunk-size 4096",
    "C→S csid=6 ts=0 len=45 type=9 sid=1 video key avc seq-header 45 bytes",
    "C→S csid=6 ts=33 len=1200 type=9 sid=1 video inter avc 1200 bytes",
    "C→S csid=4 ts=0 len=4 type=8 sid=1 audio aac seq-header 4 bytes",
    "C→S csid=4 ts=23 len=372 type=8 sid=1 audio aac raw 372 bytes",
    "C→S csid=6 ts=66 len=40 type=9 sid=1 video key hvc1 seq-header 40 bytes",
    "C→S csid=6 ts=99 len=9 type=9 sid=1 video inter av01 9 bytes",
    "C→S csid=4 ts=46 len=4 type=8 sid=1 audio speex 4 bytes",
    "C→S csid=4 ts=69 len=7 type=8 sid=1 audio Opus seq-header 7 bytes",
    "C→S csid=7 ts=0 len=30 type=22 sid=1 aggregate 30 bytes",
    "C→S csid=7 ts=0 len=3 type=7 sid=1 unknown 3 bytes",
    "C→S csid=2 ts=0 len=4 type=3 ack 12345",
    "C→S csid=2 ts=0 len=4 type=2 abort csid=4",
    "C→S csid=2 ts=0 len=6 type=4 user-control ping-request 1234",
    "C→S csid=3 ts=0 len=8 type=20 command invalid (8 bytes): command: ",
];

#[test]
fn client_vectors() {
    let lines = render_capture(
        Direction::ClientToServer,
        &client_capture(),
        &Limits::default(),
    );
    let last = CLIENT_LINES.len() - 1;
    assert_eq!(lines.len(), CLIENT_LINES.len(), "{lines:#?}");
    for (got, want) in lines.iter().zip(CLIENT_LINES).take(last) {
        assert_eq!(got, want);
    }
    // The AMF0 error text belongs to the amf0 module; only its prefix is ours.
    assert!(
        lines[last].starts_with(CLIENT_LINES[last]),
        "{}",
        lines[last]
    );
}

fn server_capture() -> Vec<u8> {
    let mut b = handshake(Direction::ServerToClient);
    b.extend(chunks(2, 0, 5, 0, &2_500_000u32.to_be_bytes(), 128));
    b.extend(chunks(2, 0, 6, 0, &hex("002625a0 02"), 128));
    b.extend(chunks(2, 0, 4, 0, &hex("0000 00000000"), 128));
    let result = connect_result(1.0, 0.0, "Connection succeeded.");
    b.extend(chunks(3, 0, 20, 0, &command_bytes(&result), 128));
    b.extend(hex(
        "04000000000082140100000002 00086f6e537461747573 00 0000000000000000 05 03 0005 6c6576656c 020006 737461747573 0004 636f6465 020017 4e657453747265616d2e5075626c6973682e5374617274 000b 6465736372697074696f6e 020000 0007 64657461696c73 02000a 6d697865722d6f757433 0008 636c69656e746964 00 3ff0000000000000 00 c4 0009",
    ));
    for body in [
        "0004 63686174 00000002 00000000 00000000 0b 00000000 08 00000000",
        "0004 63686174 00000003 00000000 00000000 05 00000009 0007 6d657373616765",
        "0004 63686174 00000003 00000000 00000000 04 0000000e 0007 6d657373616765 02 0002 6869",
        "0004 63686174 00000003 00000000 00000000 06 00000017 02 000f 6d6573736167655472616e736d6974 02 0002 6869",
        "0004 63686174 00000003 00000000 00000000 07 00000023 001a 5368617265644f626a6563742e4e6f5772697465416363657373 0005 6572726f72",
    ] {
        b.extend(chunks(5, 0, 19, 0, &hex(body), 128));
    }
    b
}

const SERVER_LINES: &[&str] = &[
    "S→C handshake S0 version=3",
    "S→C handshake S1 time=1000 version=4.0.0.1 (digest)",
    "S→C handshake S2 time=0 time2=0",
    "S→C csid=2 ts=0 len=4 type=5 window-ack-size 2500000",
    "S→C csid=2 ts=0 len=5 type=6 set-peer-bandwidth 2500000 dynamic",
    "S→C csid=2 ts=0 len=6 type=4 user-control stream-begin 0",
    "S→C csid=3 ts=0 len=206 type=20 command _result tx=1 {fmsVer: \"FMS/3,5,7,7009\", capabilities: 31, mode: 1} {level: \"status\", code: \"NetConnection.Connect.Success\", description: \"Connection succeeded.\", objectEncoding: 0}",
    "S→C csid=4 ts=0 len=130 type=20 sid=1 command onStatus tx=0 null {level: \"status\", code: \"NetStream.Publish.Start\", description: \"\", details: \"mixer-out3\", clientid: 1}",
    "S→C csid=5 ts=0 len=28 type=19 shared-object \"chat\" v=2 transient [use-success, clear]",
    "S→C csid=5 ts=0 len=32 type=19 shared-object \"chat\" v=3 transient [success message]",
    "S→C csid=5 ts=0 len=37 type=19 shared-object \"chat\" v=3 transient [change message=\"hi\"]",
    "S→C csid=5 ts=0 len=46 type=19 shared-object \"chat\" v=3 transient [send-message messageTransmit \"hi\"]",
    "S→C csid=5 ts=0 len=58 type=19 shared-object \"chat\" v=3 transient [status SharedObject.NoWriteAccess error]",
];

#[test]
fn server_vectors() {
    let lines = render_capture(
        Direction::ServerToClient,
        &server_capture(),
        &Limits::default(),
    );
    assert_eq!(lines, SERVER_LINES);
}

#[test]
fn chunk_error_stops_the_tracer() {
    let mut t = Tracer::new(Direction::ClientToServer, &Limits::default());
    t.feed(&handshake(Direction::ClientToServer)).unwrap();
    let err = TraceError::Chunk(ChunkError::NoPreviousHeader { csid: 5 });
    assert_eq!(
        t.feed(&hex("45 000000 000004 05 00000001")),
        Err(err.clone())
    );
    let lines = lines_of(&mut t);
    assert_eq!(
        lines.last().unwrap(),
        "C→S error: chunk stream 5 starts with a fmt 1/2/3 chunk but has no previous header"
    );
    assert_eq!(
        t.feed(&hex("02 000000 000004 05 00000000 00000001")),
        Err(err)
    );
    t.finish();
    assert_eq!(t.poll_line(), None);
}

#[test]
fn bad_version() {
    let mut t = Tracer::new(Direction::ServerToClient, &Limits::default());
    assert_eq!(
        t.feed(&[6, 0, 0]),
        Err(TraceError::Handshake(HandshakeError::UnsupportedVersion(6)))
    );
    let lines = lines_of(&mut t);
    assert_eq!(lines[0], "S→C handshake S0 version=6");
    assert!(lines[1].starts_with("S→C error: unsupported RTMP handshake version 6"));
    assert_eq!(lines.len(), 2);
}

#[test]
fn finish_reports_leftovers() {
    let lines = render_capture(Direction::ClientToServer, &[3, 0, 0, 0], &Limits::default());
    assert_eq!(
        lines,
        [
            "C→S handshake C0 version=3",
            "C→S end: handshake incomplete (C1 3/1536 bytes)"
        ]
    );
    let mut b = handshake(Direction::ClientToServer);
    b.extend(hex("02 000000 000004"));
    let lines = render_capture(Direction::ClientToServer, &b, &Limits::default());
    assert_eq!(
        lines.last().unwrap(),
        "C→S end: 7 bytes of an incomplete chunk"
    );
    assert!(render_capture(Direction::ClientToServer, &[], &Limits::default()).is_empty());
}

#[test]
fn values() {
    let r = |v: Value| render_value(&v);
    assert_eq!(r(Value::Number(30.0)), "30");
    assert_eq!(r(Value::Number(-2.5)), "-2.5");
    assert_eq!(r(Value::Number(2_500_000.0)), "2500000");
    assert_eq!(r(Value::Number(1e300)), "1e300");
    assert_eq!(r(Value::Number(1.5e-9)), "1.5e-9");
    assert_eq!(r(Value::Number(f64::NAN)), "NaN");
    assert_eq!(r(Value::Number(f64::NEG_INFINITY)), "-inf");
    assert_eq!(r(Value::Boolean(true)), "true");
    assert_eq!(r(Value::string("a\"b\\c\n\u{1}é")), r#""a\"b\\c\n\u{1}é""#);
    let long: String = "x".repeat(100);
    assert_eq!(
        r(Value::string(long.clone())),
        format!("\"{}…\"", &long[..80])
    );
    assert_eq!(r(Value::LongString("ok".into())), "\"ok\"");
    assert_eq!(r(Value::Null), "null");
    assert_eq!(r(Value::Undefined), "undefined");
    assert_eq!(r(Value::Reference(2)), "ref(2)");
    assert_eq!(r(Value::Unsupported), "unsupported");
    assert_eq!(r(Value::XmlDocument("<a/>".into())), "xml(\"<a/>\")");
    assert_eq!(
        r(Value::Date {
            millis: 1.0e12,
            time_zone: 0
        }),
        "date(1000000000000)"
    );
    assert_eq!(
        r(Value::Date {
            millis: 5.0,
            time_zone: -60
        }),
        "date(5 tz=-60)"
    );
    assert_eq!(
        r(Value::Avmplus(Bytes::from_static(&[1, 2, 3]))),
        "amf3(3 bytes)"
    );
    assert_eq!(r(Value::Object(vec![])), "{}");
    assert_eq!(
        r(Value::object([
            ("a b", Value::Null),
            ("c", Value::Number(1.0))
        ])),
        "{\"a b\": null, c: 1}"
    );
    assert_eq!(
        r(Value::StrictArray(vec![
            Value::Number(1.0),
            Value::string("s")
        ])),
        "[1, \"s\"]"
    );
    assert_eq!(
        r(Value::TypedObject {
            class_name: "flex.Msg".into(),
            properties: vec![("x".into(), Value::Boolean(false))],
        }),
        "flex.Msg{x: false}"
    );
    // PROTOCOL-NOTES AMF0 vectors.
    let limits = Limits::default();
    let all = |h: &str| {
        amf0::decode_all(&hex(h), &limits)
            .unwrap()
            .iter()
            .map(render_value)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        all(
            "03 0004 6e616d65 02 0004 4d696b65 0003 616765 00 403e000000000000 0005 616c696173 02 0004 4d696b65 0000 09"
        ),
        ["{name: \"Mike\", age: 30, alias: \"Mike\"}"]
    );
    assert_eq!(
        all("02 000c 6f6e53747265616d53656e64 08 00000000 0005 76616c7565 02 0001 31 000009"),
        ["\"onStreamSend\"", "[ecma value: \"1\"]"]
    );
    assert_eq!(
        all("08 00000002 0001 30 02 0005 68656c6c6f 0001 31 02 0005 776f726c64 000009"),
        ["[ecma 0: \"hello\", 1: \"world\"]"]
    );
    assert_eq!(
        r(Value::EcmaArray {
            count: 0,
            properties: vec![]
        }),
        "[ecma]"
    );
}

#[test]
fn long_renderings_are_capped() {
    let wide = Value::StrictArray(vec![Value::string("y".repeat(70)); 1000]);
    let s = render_value(&wide);
    assert!(s.len() <= MAX_LINE_LEN + '…'.len_utf8());
    assert!(s.ends_with('…'));
    let mut deep = Value::Null;
    for _ in 0..200 {
        deep = Value::StrictArray(vec![deep]);
    }
    let s = render_value(&deep);
    assert!(s.contains('…') && s.len() <= MAX_LINE_LEN + 3);
    // A line with a huge payload stays bounded too.
    let cmd = Command::new("x", 0.0, vec![wide]);
    let raw = RawMessage {
        csid: 3,
        timestamp: 0,
        type_id: 20,
        stream_id: 0,
        payload: cmd.to_bytes(),
    };
    let line = render_message(Direction::ServerToClient, &raw, &Limits::default());
    assert!(line.len() <= MAX_LINE_LEN + 3 && line.ends_with('…'));
}

#[test]
fn names_and_fourcc() {
    let mut s = String::new();
    write_name(&mut s, "").unwrap();
    write_name(&mut s, " ").unwrap();
    write_name(&mut s, "on.Meta-Data_1").unwrap();
    write_fourcc(&mut s, b"\x00ab\xff").unwrap();
    assert_eq!(s, "\"\"\" \"on.Meta-Data_10x006162ff");
    assert_eq!(Direction::ServerToClient.to_string(), "S→C");
}

/// Feeds `bytes` cut at `cuts` (positions taken modulo the length).
fn feed_split(bytes: &[u8], cuts: &[usize]) -> (Vec<String>, Option<TraceError>) {
    let mut t = Tracer::new(Direction::ClientToServer, &Limits::small());
    let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
    cuts.sort_unstable();
    let mut err = None;
    let mut start = 0;
    for end in cuts.into_iter().chain([bytes.len()]) {
        if let Err(e) = t.feed(&bytes[start..end]) {
            err = Some(e);
        }
        start = end;
    }
    t.finish();
    (lines_of(&mut t), err)
}

proptest! {
    #[test]
    fn splits_give_the_same_lines(cuts in proptest::collection::vec(any::<usize>(), 0..12)) {
        let capture = client_capture();
        let whole = render_capture(Direction::ClientToServer, &capture, &Limits::small());
        let (split, err) = feed_split(&capture, &cuts);
        prop_assert_eq!(err, None);
        prop_assert_eq!(split, whole);
    }

    #[test]
    fn garbage_never_panics(
        garbage in proptest::collection::vec(any::<u8>(), 0..600),
        cuts in proptest::collection::vec(any::<usize>(), 0..6),
    ) {
        let mut bytes = handshake(Direction::ClientToServer);
        bytes.extend_from_slice(&garbage);
        let mut t = Tracer::new(Direction::ClientToServer, &Limits::small());
        let result = t.feed(&bytes);
        t.finish();
        let whole = lines_of(&mut t);
        for line in &whole {
            prop_assert!(line.starts_with("C→S "));
            prop_assert!(line.len() <= MAX_LINE_LEN + 3);
        }
        if result.is_err() {
            prop_assert!(whole.last().unwrap().starts_with("C→S error: "));
        }
        let (split, err) = feed_split(&bytes, &cuts);
        prop_assert_eq!(err, result.err());
        prop_assert_eq!(split, whole);
    }
}
