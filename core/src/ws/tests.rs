//! Connection-level tests: upgrade, framing errors and their close codes,
//! protocol v1, chat and echo modes, timeouts, and WebSocket and RTMP
//! clients sharing one hub.

use super::frame::{FrameHeader, Opcode, encode_raw};
use super::*;
use crate::amf0::Value;
use crate::connection::{CloseReason, SharedEncoding};
use crate::hub::{
    Delivery, MediaDelivery, MediaKind, MediaPriority, RejectCode, Request, SessionLimits,
    SoChange, SoNotice, SoOp, SoUpdate,
};
use crate::scope_path::ScopePath;
use crate::testing::{MASK, client_frame, server_frames, upgrade};
use crate::time::{Duration, Instant};
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;
use bytes::Bytes;
use proptest::prelude::*;
use serde_json::{Value as Json, json};

const T0: Instant = Instant::from_millis(1_000);
fn text(s: &str) -> Vec<u8> {
    client_frame(true, Opcode::Text, s.as_bytes())
}

fn drain(conn: &mut WsConnection) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(b) = conn.poll_transmit() {
        out.extend_from_slice(&b);
    }
    assert_eq!(conn.pending_bytes(), 0);
    out
}

fn events(conn: &mut WsConnection) -> Vec<Request> {
    core::iter::from_fn(|| conn.poll_event()).collect()
}

/// An open connection: upgrade done, 101 checked, requests drained.
fn open_with(config: WsConfig, path: &str, protocol: Option<&str>) -> (WsConnection, Vec<Request>) {
    let mut conn = WsConnection::new(config, T0, None);
    conn.handle_input(T0, &upgrade(path, protocol)).unwrap();
    let out = drain(&mut conn);
    let head = String::from_utf8(out).unwrap();
    assert!(
        head.starts_with("HTTP/1.1 101 Switching Protocols\r\n"),
        "{head}"
    );
    assert!(head.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
    let evs = events(&mut conn);
    (conn, evs)
}

fn open(path: &str) -> WsConnection {
    open_with(WsConfig::default(), path, None).0
}

/// Frames the server sent since the last call.
fn frames(conn: &mut WsConnection) -> Vec<(u8, Vec<u8>)> {
    let mut buf = drain(conn);
    let out = server_frames(&mut buf);
    assert!(buf.is_empty(), "partial frame left");
    out
}

fn texts(conn: &mut WsConnection) -> Vec<Json> {
    frames(conn)
        .into_iter()
        .map(|(op, p)| {
            assert_eq!(op, 1);
            serde_json::from_slice(&p).unwrap()
        })
        .collect()
}

fn close_code_of(frame: &(u8, Vec<u8>)) -> u16 {
    assert_eq!(frame.0, 8, "not a close frame");
    u16::from_be_bytes([frame.1[0], frame.1[1]])
}

fn accepted(scope: &str) -> Delivery {
    Delivery::Accepted {
        scope: ScopePath::resolve(scope, 4).unwrap(),
        session: SessionLimits {
            idle_timeout: Duration::from_secs(60),
            session_timeout: None,
        },
    }
}

#[test]
fn upgrade_yields_connect() {
    let (_, evs) = open_with(WsConfig::default(), "/chat/room1?scope=sub", None);
    assert_eq!(
        evs,
        vec![Request::Connect(crate::hub::ConnectRequest {
            protocol: crate::ws::PROTOCOL,
            target: "chat/room1?scope=sub".into(),
            params: Value::Null,
            args: vec![],
            address: None,
            notices: Some(crate::ws::fanout::notices_encoder()),
        })]
    );
    // The hub resolves it exactly as an RTMP connect.app.
    assert_eq!(
        ScopePath::resolve("chat/room1?scope=sub", 4)
            .unwrap()
            .as_str(),
        "/chat/room1/sub"
    );
}

#[test]
fn byte_at_a_time() {
    let mut conn = WsConnection::new(WsConfig::default(), T0, None);
    let mut wire = upgrade("/chat", Some("tern.v1"));
    wire.extend(client_frame(false, Opcode::Text, br#"{"op":"use","#));
    wire.extend(client_frame(true, Opcode::Ping, b"hi"));
    wire.extend(client_frame(true, Opcode::Continuation, br#""so":"chat"}"#));
    for b in &wire {
        conn.handle_input(T0, core::slice::from_ref(b)).unwrap();
    }
    let mut out = drain(&mut conn);
    let end = out.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let head = String::from_utf8(out.drain(..end).collect()).unwrap();
    assert!(head.contains("Sec-WebSocket-Protocol: tern.v1\r\n"));
    assert_eq!(server_frames(&mut out), vec![(0xA, b"hi".to_vec())]);
    let evs = events(&mut conn);
    assert_eq!(evs.len(), 2);
    assert_eq!(
        evs[1],
        Request::SharedObject {
            name: "chat".into(),
            persistent: false,
            op: SoOp::Use
        }
    );
}

#[test]
fn frames_right_behind_the_head() {
    let mut conn = WsConnection::new(WsConfig::default(), T0, None);
    let mut wire = upgrade("/chat", None);
    wire.extend(text(r#"{"op":"use","so":"x"}"#));
    conn.handle_input(T0, &wire).unwrap();
    assert_eq!(events(&mut conn).len(), 2);
}

#[test]
fn bad_upgrades_are_answered_and_closed() {
    let mut conn = WsConnection::new(WsConfig::default(), T0, None);
    let bad = b"GET /chat HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 7\r\n\r\n";
    let e = conn.handle_input(T0, bad).unwrap_err();
    assert_eq!(e, WsError::Handshake(UpgradeError::UnsupportedVersion));
    assert!(conn.is_closing());
    let resp = String::from_utf8(drain(&mut conn)).unwrap();
    assert!(resp.starts_with("HTTP/1.1 426 Upgrade Required\r\n"));
    assert!(resp.contains("Sec-WebSocket-Version: 13\r\n"));
    assert!(events(&mut conn).is_empty());
    assert_eq!(conn.handle_input(T0, b"x"), Err(e));

    let mut conn = WsConnection::new(WsConfig::default(), T0, None);
    let e = conn
        .handle_input(T0, b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        .unwrap_err();
    assert!(matches!(
        e,
        WsError::Handshake(UpgradeError::MissingHeader(_))
    ));
    let resp = String::from_utf8(drain(&mut conn)).unwrap();
    assert!(resp.starts_with("HTTP/1.1 400 Bad Request\r\n"));

    // A head that never ends.
    let mut conn = WsConnection::new(WsConfig::default(), T0, None);
    let mut result = Ok(());
    for _ in 0..20 {
        result = conn.handle_input(T0, &[b'a'; 1024]);
        if result.is_err() {
            break;
        }
    }
    assert_eq!(result, Err(WsError::Handshake(UpgradeError::HeadTooLarge)));
    assert!(conn.pending_bytes() > 0);
}

#[test]
fn every_framing_error_closes_with_its_code() {
    let mut rsv = text("x");
    rsv[0] |= 0x10;
    let mut reserved_op = text("x");
    reserved_op[0] = 0x83;
    let mut two_data = client_frame(false, Opcode::Text, b"a");
    two_data.extend(text("b"));
    let mut too_big_frags = client_frame(false, Opcode::Binary, &[0; 600]);
    too_big_frags.extend(client_frame(true, Opcode::Continuation, &[0; 600]));
    let cases: Vec<(Vec<u8>, u16)> = vec![
        (
            frame::encode_frame(Opcode::Text, b"unmasked").to_vec(),
            1002,
        ),
        (rsv, 1002),
        (reserved_op, 1002),
        (client_frame(true, Opcode::Ping, &[0; 126]), 1002),
        (client_frame(false, Opcode::Ping, b""), 1002),
        (client_frame(true, Opcode::Continuation, b"x"), 1002),
        (two_data, 1002),
        (client_frame(true, Opcode::Text, &[0xff]), 1007),
        (client_frame(true, Opcode::Binary, &[0; 1025]), 1009),
        (too_big_frags, 1009),
        (client_frame(true, Opcode::Close, &[1]), 1002),
        (
            client_frame(true, Opcode::Close, &1005u16.to_be_bytes()),
            1002,
        ),
        (
            client_frame(true, Opcode::Close, &1006u16.to_be_bytes()),
            1002,
        ),
        (
            client_frame(true, Opcode::Close, &1015u16.to_be_bytes()),
            1002,
        ),
        (
            client_frame(true, Opcode::Close, &1004u16.to_be_bytes()),
            1002,
        ),
        (client_frame(true, Opcode::Close, &[0x03, 0xe8, 0xc0]), 1007),
    ];
    for (wire, code) in cases {
        let config = WsConfig {
            max_message: 1024,
            ..WsConfig::default()
        };
        for bytewise in [false, true] {
            let (mut conn, _) = open_with(config.clone(), "/chat", None);
            let result = if bytewise {
                wire.iter()
                    .try_for_each(|b| conn.handle_input(T0, core::slice::from_ref(b)))
            } else {
                conn.handle_input(T0, &wire)
            };
            let Err(WsError::Protocol(e)) = result else {
                panic!("{wire:02x?}: {result:?}")
            };
            assert_eq!(e.close_code(), code, "{e}");
            assert!(conn.is_closing());
            let sent = frames(&mut conn);
            assert_eq!(sent.len(), 1, "{sent:?}");
            assert_eq!(close_code_of(&sent[0]), code);
            assert!(matches!(
                conn.close_reason(),
                Some(CloseReason::Failed(WsError::Protocol(_)))
            ));
            // Nothing more goes out, whatever arrives.
            let _ = conn.handle_input(T0, &text("x"));
            assert!(frames(&mut conn).is_empty());
        }
    }
}

#[test]
fn ping_pong_and_close_handshake() {
    let mut conn = open("/chat");
    conn.handle_input(T0, &client_frame(true, Opcode::Ping, b"abc"))
        .unwrap();
    conn.handle_input(T0, &client_frame(true, Opcode::Pong, b"zzz"))
        .unwrap();
    assert_eq!(frames(&mut conn), vec![(0xA, b"abc".to_vec())]);
    let mut close = 4000u16.to_be_bytes().to_vec();
    close.extend_from_slice(b"bye");
    conn.handle_input(T0, &client_frame(true, Opcode::Close, &close))
        .unwrap();
    assert!(conn.is_closing());
    assert_eq!(frames(&mut conn), vec![(8, 4000u16.to_be_bytes().to_vec())]);
    assert_eq!(
        conn.close_reason(),
        Some(&CloseReason::Peer { code: Some(4000) })
    );
    // A bare close is answered with 1000.
    let mut conn = open("/chat");
    conn.handle_input(T0, &client_frame(true, Opcode::Close, b""))
        .unwrap();
    assert_eq!(frames(&mut conn), vec![(8, 1000u16.to_be_bytes().to_vec())]);
}

#[test]
fn json_ops_become_requests() {
    let mut conn = open("/chat/room1");
    let so = |persistent, op| Request::SharedObject {
        name: "scores".into(),
        persistent,
        op,
    };
    // Before any use: persistence defaults to false.
    conn.handle_input(
        T0,
        &text(r#"{"op":"set","so":"scores","key":"a","value":1}"#),
    )
    .unwrap();
    conn.handle_input(T0, &text(r#"{"op":"use","so":"scores","persistent":true}"#))
        .unwrap();
    conn.handle_input(
        T0,
        &text(r#"{"op":"set","so":"scores","key":"a","value":[true]}"#),
    )
    .unwrap();
    conn.handle_input(T0, &text(r#"{"op":"delete","so":"scores","key":"a"}"#))
        .unwrap();
    conn.handle_input(
        T0,
        &text(r#"{"op":"send","so":"scores","method":"hi","args":["x",{"$date":7}]}"#),
    )
    .unwrap();
    conn.handle_input(T0, &text(r#"{"op":"release","so":"scores"}"#))
        .unwrap();
    conn.handle_input(T0, &text(r#"{"op":"delete","so":"scores","key":"a"}"#))
        .unwrap();
    let set = |value| {
        SoOp::Batch(vec![SoChange::Set {
            key: "a".into(),
            value,
        }])
    };
    let delete = || SoOp::Batch(vec![SoChange::Delete { key: "a".into() }]);
    assert_eq!(
        events(&mut conn),
        vec![
            so(false, set(Value::Number(1.0))),
            so(true, SoOp::Use),
            so(true, set(Value::StrictArray(vec![Value::Boolean(true)]))),
            so(true, delete()),
            so(
                true,
                SoOp::Send {
                    method: "hi".into(),
                    args: vec![
                        Value::string("x"),
                        Value::Date {
                            millis: 7.0,
                            time_zone: 0
                        }
                    ],
                }
            ),
            so(true, SoOp::Release),
            so(false, delete()),
        ]
    );
    assert!(frames(&mut conn).is_empty());
}

#[test]
fn bad_messages_get_an_error_and_change_nothing() {
    let mut conn = open("/chat");
    for (wire, code) in [
        (text("not json"), "Protocol.InvalidJson"),
        (text("42"), "Protocol.NotAnObject"),
        (text(r#"{"op":"fly","so":"a"}"#), "Protocol.UnknownOp"),
        (
            text(r#"{"op":"set","so":"a","key":"k"}"#),
            "Protocol.MissingField",
        ),
        (
            client_frame(true, Opcode::Binary, b"{}"),
            "Protocol.BinaryUnsupported",
        ),
    ] {
        conn.handle_input(T0, &wire).unwrap();
        let replies = texts(&mut conn);
        assert_eq!(replies.len(), 1);
        assert_eq!(replies[0]["op"], "error");
        assert_eq!(replies[0]["code"], code);
        assert!(replies[0]["message"].is_string());
        assert!(events(&mut conn).is_empty());
        assert!(!conn.is_closing());
    }
}

#[test]
fn too_many_objects() {
    let config = WsConfig {
        max_objects: 2,
        ..WsConfig::default()
    };
    let (mut conn, _) = open_with(config, "/chat", None);
    for so in ["a", "b", "c"] {
        let msg = alloc::format!(r#"{{"op":"use","so":"{so}"}}"#);
        conn.handle_input(T0, &text(&msg)).unwrap();
    }
    assert_eq!(events(&mut conn).len(), 2);
    assert_eq!(texts(&mut conn)[0]["code"], "Protocol.TooManyObjects");
}

/// Every JSON subscriber is sent the very same frame bytes for an update
/// (made once by the hub, which hands every subscriber the same encoding).
#[test]
fn json_subscribers_share_one_encoding_of_an_update() {
    let update = Arc::new(SoUpdate::new(
        "chat".into(),
        false,
        7,
        vec![SoNotice::Change {
            key: "k".into(),
            value: Value::string("v"),
        }],
    ));
    let encoded = crate::ws::fanout::notices_encoder().encode_update(&update);
    let mut sent = Vec::new();
    for _ in 0..2 {
        let mut conn = open("/chat/room1");
        conn.handle_delivery(T0, accepted("chat/room1"));
        let _ = texts(&mut conn);
        let delivery = crate::hub::SoDelivery {
            update: Arc::clone(&update),
            encoded: encoded.clone(),
        };
        conn.handle_delivery(T0, Delivery::SharedObject(delivery));
        sent.push(conn.poll_transmit().expect("a frame"));
        assert!(conn.poll_transmit().is_none(), "one frame");
    }
    assert_eq!(sent[0].as_ptr(), sent[1].as_ptr(), "one shared encoding");
    let mut buf = sent[0].to_vec();
    let frames = server_frames(&mut buf);
    let text: Json = serde_json::from_slice(&frames[0].1).unwrap();
    assert_eq!(
        text,
        json!({"op":"change","so":"chat","version":7,"key":"k","value":"v"})
    );
}

#[test]
fn deliveries_become_json() {
    let mut conn = open("/chat/room1");
    conn.handle_delivery(T0, accepted("chat/room1"));
    assert_eq!(
        texts(&mut conn),
        vec![json!({"op":"welcome","scope":"/chat/room1"})]
    );
    let update = SoUpdate::new(
        "chat".into(),
        false,
        3,
        vec![
            SoNotice::UseSuccess,
            SoNotice::Clear,
            SoNotice::Change {
                key: "message".into(),
                value: Value::string("hi"),
            },
        ],
    );
    let json = Some(crate::ws::fanout::notices_encoder());
    conn.handle_delivery(T0, crate::testing::so_delivery(update, json));
    assert_eq!(
        texts(&mut conn),
        vec![json!({"op":"sync","so":"chat","version":3,"data":{"message":"hi"}})]
    );
    // Media and stream deliveries are ignored.
    conn.handle_delivery(
        T0,
        Delivery::Media(MediaDelivery {
            stream: 1,
            kind: MediaKind::Video,
            priority: MediaPriority::Key,
            timestamp: 0,
            encoded: Bytes::from_static(b"xx"),
        }),
    );
    conn.handle_delivery(T0, Delivery::StreamBegin { stream: 1 });
    assert!(frames(&mut conn).is_empty());
    // Close: 1001 with the reason cut to 123 bytes at a char boundary.
    let reason = "é".repeat(80);
    conn.handle_delivery(
        T0,
        Delivery::Close {
            reason: reason.clone(),
        },
    );
    let sent = frames(&mut conn);
    assert_eq!(close_code_of(&sent[0]), 1001);
    assert_eq!(sent[0].1.len(), 2 + 122);
    assert!(conn.is_closing());
    assert_eq!(conn.close_reason(), Some(&CloseReason::Server { reason }));
}

#[test]
fn rejection_is_an_error_and_close_1008() {
    let mut conn = open("/nope");
    conn.handle_delivery(
        T0,
        Delivery::Rejected {
            code: RejectCode::InvalidApp,
            description: "no such app".into(),
        },
    );
    let sent = frames(&mut conn);
    assert_eq!(sent.len(), 2);
    let err: Json = serde_json::from_slice(&sent[0].1).unwrap();
    assert_eq!(
        err,
        json!({"op":"error","code":"NetConnection.Connect.InvalidApp","message":"no such app"})
    );
    assert_eq!(close_code_of(&sent[1]), 1008);
    assert_eq!(&sent[1].1[2..], b"no such app");
    assert!(conn.is_closing());
}

#[test]
fn chat_mode_both_directions() {
    let (mut conn, evs) = open_with(WsConfig::default(), "/chat/room1", Some("chat"));
    assert_eq!(evs.len(), 2);
    assert_eq!(
        evs[1],
        Request::SharedObject {
            name: "chat".into(),
            persistent: false,
            op: SoOp::Use
        }
    );
    conn.handle_delivery(T0, accepted("chat/room1"));
    assert!(frames(&mut conn).is_empty(), "no JSON welcome in chat mode");
    conn.handle_input(T0, &text("hello\r\n\nworld")).unwrap();
    let line = |s: &str| Request::SharedObject {
        name: "chat".into(),
        persistent: false,
        op: SoOp::Batch(vec![SoChange::Set {
            key: "message".into(),
            value: Value::string(s),
        }]),
    };
    assert_eq!(events(&mut conn), vec![line("hello"), line("world")]);
    let deliver = |conn: &mut WsConnection, notices| {
        conn.handle_delivery(
            T0,
            crate::testing::so_delivery(SoUpdate::new("chat".into(), false, 1, notices), None),
        )
    };
    // The use answer and the own ack are not shown.
    deliver(&mut conn, vec![SoNotice::UseSuccess, SoNotice::Clear]);
    deliver(
        &mut conn,
        vec![SoNotice::Success {
            key: "message".into(),
        }],
    );
    assert!(frames(&mut conn).is_empty());
    deliver(
        &mut conn,
        vec![
            SoNotice::Change {
                key: "message".into(),
                value: Value::string("from rtmp"),
            },
            SoNotice::Change {
                key: "topic".into(),
                value: Value::string("ignored"),
            },
        ],
    );
    deliver(
        &mut conn,
        vec![SoNotice::Change {
            key: "message".into(),
            value: Value::object([("n", Value::Number(1.0))]),
        }],
    );
    assert_eq!(
        frames(&mut conn),
        vec![(1, b"from rtmp".to_vec()), (1, br#"{"n":1}"#.to_vec())]
    );
}

#[test]
fn echo_mode() {
    let config = WsConfig {
        echo_path: Some("/echo".into()),
        ..WsConfig::default()
    };
    let (mut conn, evs) = open_with(config.clone(), "/echo?case=1", None);
    assert!(evs.is_empty(), "echo does no hub work");
    let mut wire = client_frame(false, Opcode::Binary, &[1, 2]);
    wire.extend(client_frame(true, Opcode::Ping, b"p"));
    wire.extend(client_frame(true, Opcode::Continuation, &[3]));
    wire.extend(text("héllo"));
    conn.handle_input(T0, &wire).unwrap();
    assert_eq!(
        frames(&mut conn),
        vec![
            (0xA, b"p".to_vec()),
            (2, vec![1, 2, 3]),
            (1, "héllo".as_bytes().to_vec())
        ]
    );
    assert!(events(&mut conn).is_empty());
    // Framing rules still apply.
    let e = conn
        .handle_input(T0, &client_frame(true, Opcode::Text, &[0xc0, 0x80]))
        .unwrap_err();
    assert_eq!(e, WsError::Protocol(ProtocolError::InvalidUtf8));
    // Another path is a normal connection.
    let (_, evs) = open_with(config, "/chat", None);
    assert_eq!(evs.len(), 1);
}

#[test]
fn ping_when_silent_then_idle_close() {
    let config = WsConfig {
        ping_interval: Duration::from_secs(10),
        idle_timeout: Duration::from_secs(25),
        ..WsConfig::default()
    };
    let (mut conn, _) = open_with(config, "/chat", None);
    let t = |s| T0 + Duration::from_secs(s);
    assert_eq!(conn.poll_timeout(), Some(t(10)));
    conn.handle_timeout(t(10));
    assert_eq!(frames(&mut conn), vec![(9, vec![])]);
    assert_eq!(conn.poll_timeout(), Some(t(20)));
    // Data resets both clocks.
    conn.handle_input(t(15), &client_frame(true, Opcode::Pong, b""))
        .unwrap();
    assert_eq!(conn.poll_timeout(), Some(t(25)));
    conn.handle_timeout(t(25));
    conn.handle_timeout(t(35));
    assert_eq!(frames(&mut conn), vec![(9, vec![]), (9, vec![])]);
    assert_eq!(conn.poll_timeout(), Some(t(40)));
    conn.handle_timeout(t(40));
    let sent = frames(&mut conn);
    assert_eq!(close_code_of(&sent[0]), 1001);
    assert_eq!(
        conn.close_reason(),
        Some(&CloseReason::Failed(WsError::Idle { silent_ms: 25_000 }))
    );
    assert_eq!(conn.poll_timeout(), None);
}

#[test]
fn upgrade_timeout() {
    let mut conn = WsConnection::new(WsConfig::default(), T0, None);
    let deadline = conn.poll_timeout().unwrap();
    assert_eq!(deadline, T0 + Duration::from_secs(10));
    conn.handle_timeout(deadline);
    assert!(conn.is_closing());
    assert_eq!(
        conn.close_reason(),
        Some(&CloseReason::Failed(WsError::HandshakeTimeout {
            ms: 10_000
        }))
    );
}

proptest! {
    #[test]
    fn arbitrary_bytes_after_upgrade_never_panic(
        chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 0..8),
        chat in any::<bool>(),
    ) {
        let config = WsConfig { max_message: 4096, ..WsConfig::default() };
        let protocol = if chat { Some("chat") } else { None };
        let (mut conn, _) = open_with(config, "/chat", protocol);
        for chunk in &chunks {
            if conn.handle_input(T0, chunk).is_err() {
                break;
            }
        }
        let _ = events(&mut conn);
        let _ = drain(&mut conn);
    }

    #[test]
    fn arbitrary_masked_frames_never_panic(
        frames in proptest::collection::vec(
            (any::<bool>(), 0u8..16, proptest::collection::vec(any::<u8>(), 0..200)),
            0..8,
        ),
    ) {
        let (mut conn, _) = open_with(WsConfig::default(), "/chat", None);
        for (fin, opcode, payload) in &frames {
            let wire = encode_raw(
                FrameHeader { fin: *fin, rsv: 0, opcode: *opcode, mask: Some(MASK), len: 0 },
                payload,
            );
            if conn.handle_input(T0, &wire).is_err() {
                break;
            }
        }
        let mut out = drain(&mut conn);
        let _ = server_frames(&mut out);
    }
}

#[test]
fn the_shared_encoding_is_what_a_json_connection_sends() {
    let mut conn = open("/chat/room1");
    conn.handle_delivery(T0, accepted("chat/room1"));
    drain(&mut conn);
    let encoding = conn.shared_encoding();
    assert_eq!(
        encoding,
        SharedEncoding::Shared {
            max_len: usize::MAX
        }
    );
    let update = crate::testing::so_change_delivery(100, crate::ws::fanout::notices_encoder());
    let shared = crate::testing::shared_bytes(encoding, &update);
    conn.handle_delivery(T0, update);
    assert_eq!(drain(&mut conn), shared);
    assert_eq!(
        encoding.bytes(&accepted("chat/room1")),
        None,
        "not a notice"
    );
}

#[test]
fn chat_mode_and_closing_connections_encode_notices_themselves() {
    let (mut chat, _) = open_with(WsConfig::default(), "/chat/room1", Some("chat"));
    chat.handle_delivery(T0, accepted("chat/room1"));
    assert_eq!(chat.shared_encoding(), SharedEncoding::None);
    let mut json = open("/chat/room1");
    json.handle_delivery(
        T0,
        Delivery::Close {
            reason: "bye".into(),
        },
    );
    assert_eq!(json.shared_encoding(), SharedEncoding::None);
    let upgrading = WsConnection::new(WsConfig::default(), T0, None);
    assert_eq!(upgrading.shared_encoding(), SharedEncoding::None);
}
