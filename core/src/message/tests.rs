//! Message-layer tests: PROTOCOL-NOTES.md vectors, typed commands from real
//! encoders' connect objects, and no-panic properties over arbitrary bytes.
//!
//! Tests in `mod amf` need the AMF0 codec (`crate::amf0`); the rest do not.

use super::*;
use crate::amf0::{self, Value};
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use proptest::prelude::*;

/// Hex to bytes, ignoring spaces.
pub(crate) fn hex(s: &str) -> Vec<u8> {
    let digits: Vec<u8> = s.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    assert!(digits.len().is_multiple_of(2), "odd hex length");
    digits
        .chunks(2)
        .map(|p| u8::from_str_radix(core::str::from_utf8(p).unwrap(), 16).unwrap())
        .collect()
}

fn raw(type_id: u8, payload: Vec<u8>) -> RawMessage {
    RawMessage {
        csid: 3,
        timestamp: 0,
        type_id,
        stream_id: 0,
        payload: Bytes::from(payload),
    }
}

fn so_check(body: &str, expected: SharedObjectMessage) {
    let body = hex(body);
    let m = SharedObjectMessage::decode(&body, &Limits::default()).unwrap();
    assert_eq!(m, expected);
    assert_eq!(&m.to_bytes()[..], &body[..]);
    // The in-place view sees the same header and events.
    let view = SharedObjectView::parse(&body).unwrap();
    assert_eq!(
        (view.name(), view.version(), view.persistent()),
        (m.name.as_str(), m.version, m.persistent)
    );
    let types: Vec<u8> = view.events().map(|e| e.unwrap().event_type()).collect();
    let owned_types: Vec<u8> = m.events.iter().map(SoEvent::type_code).collect();
    assert_eq!(types, owned_types);
    let msg = Message::decode(&raw(19, body.clone()), &Limits::default()).unwrap();
    assert_eq!(msg.encode(), (19, Bytes::from(body.clone())));
    // Type 16 with its leading encoding byte decodes to the same thing.
    let mut amf3 = vec![0u8];
    amf3.extend_from_slice(&body);
    assert_eq!(
        Message::decode(&raw(16, amf3), &Limits::default()).unwrap(),
        msg
    );
}

fn chat(version: u32, events: Vec<SoEvent>) -> SharedObjectMessage {
    SharedObjectMessage {
        name: String::from("chat"),
        version,
        persistent: false,
        events,
    }
}

#[test]
fn so_vectors_without_amf() {
    so_check(
        "0004 63686174 00000000 00000000 00000000 01 00000000",
        chat(0, vec![SoEvent::Use]),
    );
    so_check(
        "0004 63686174 00000002 00000000 00000000 0b 00000000 08 00000000",
        chat(2, vec![SoEvent::UseSuccess, SoEvent::Clear]),
    );
    so_check(
        "0004 63686174 00000003 00000000 00000000 05 00000009 0007 6d657373616765",
        chat(
            3,
            vec![SoEvent::Success {
                key: "message".into(),
            }],
        ),
    );
    so_check(
        "0004 63686174 00000003 00000000 00000000 07 00000023 001a 5368617265644f626a6563742e4e6f5772697465416363657373 0005 6572726f72",
        chat(
            3,
            vec![SoEvent::Status {
                code: "SharedObject.NoWriteAccess".into(),
                level: "error".into(),
            }],
        ),
    );
}

#[test]
fn so_other_events_round_trip() {
    let m = SharedObjectMessage {
        name: String::from("ü/room"),
        version: 9,
        persistent: true,
        events: vec![
            SoEvent::Release,
            SoEvent::Remove { key: "a".into() },
            SoEvent::RequestRemove { key: "b".into() },
            SoEvent::Clear,
        ],
    };
    let b = m.to_bytes();
    assert_eq!(&b[b.len() - 5..], &[8, 0, 0, 0, 0]);
    assert_eq!(
        SharedObjectMessage::decode(&b, &Limits::default()).unwrap(),
        m
    );
}

/// A chat SO message (version 1) with one event of `event_type` and body
/// `body` (hex).
fn so_with_event(event_type: u8, body: &str) -> Vec<u8> {
    let body = hex(body);
    let mut out = hex("0004 63686174 00000001 00000000 00000000");
    out.push(event_type);
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    out.extend_from_slice(&body);
    out
}

/// The first event of a message, as a view.
fn first_event(payload: &[u8]) -> SoEventView<'_> {
    let view = SharedObjectView::parse(payload).unwrap();
    view.events().next().unwrap().unwrap()
}

#[test]
fn string_changes_are_read_in_place() {
    // change "a" = "hi" (AMF0 string), then as a long string, then a
    // request change: each gives the key and the string.
    let change = so_with_event(4, "0001 61 02 0002 6869");
    assert_eq!(first_event(&change).string_change(), Ok(Some(("a", "hi"))));
    let long = so_with_event(4, "0001 61 0c 00000002 6869");
    assert_eq!(first_event(&long).string_change(), Ok(Some(("a", "hi"))));
    let request = so_with_event(3, "0001 61 02 0002 6869");
    assert_eq!(first_event(&request).string_change(), Ok(Some(("a", "hi"))));
    // A number value, and events that are not changes: nothing to read.
    let number = so_with_event(4, "0001 61 00 3ff0000000000000");
    assert_eq!(first_event(&number).string_change(), Ok(None));
    let success = so_with_event(5, "0001 61");
    assert_eq!(first_event(&success).string_change(), Ok(None));
    assert_eq!(first_event(&success).body(), &[0, 1, b'a']);
}

#[test]
fn malformed_string_changes_are_the_errors_the_owned_decode_gives() {
    let l = Limits::default();
    for (body, what) in [
        ("0001 61 02 0002 68", "value past the body"),
        ("0001 61 02 0001 ff", "invalid UTF-8"),
        ("0001 61 02 0001 68 00", "a byte after the value"),
        ("0001 61", "no value"),
        ("0003 61", "key past the body"),
    ] {
        let payload = so_with_event(4, body);
        let event = first_event(&payload);
        let owned = event.to_event(&l);
        assert!(owned.is_err(), "{what}: the owned decode accepts it");
        assert_eq!(
            event.string_change(),
            Err(owned.unwrap_err()),
            "{what}: different errors"
        );
    }
}

#[test]
fn the_view_stops_at_the_first_bad_event() {
    let mut payload = so_with_event(1, "");
    payload.extend_from_slice(&hex("0c 00000000 01 00000000"));
    let view = SharedObjectView::parse(&payload).unwrap();
    let events: Vec<_> = view.events().collect();
    assert_eq!(
        events,
        vec![
            Ok(first_event(&payload)),
            Err(MessageError::UnknownSoEvent(0x0c))
        ]
    );
    assert_eq!(
        view.to_message(&Limits::default()),
        Err(MessageError::UnknownSoEvent(0x0c))
    );
    assert_eq!(
        SharedObjectView::parse(&hex("0004 6368")),
        Err(MessageError::Truncated {
            what: "shared object name"
        })
    );
}

#[test]
fn a_type_16_message_gives_its_payload_without_the_encoding_byte() {
    let body = so_with_event(4, "0001 61 02 0002 6869");
    let amf0 = Message::shared_object_payload(&raw(19, body.clone())).unwrap();
    assert_eq!(amf0.as_deref(), Some(&body[..]));
    let mut amf3 = vec![0u8];
    amf3.extend_from_slice(&body);
    let stripped = Message::shared_object_payload(&raw(16, amf3)).unwrap();
    assert_eq!(stripped.as_deref(), Some(&body[..]));
    assert_eq!(
        Message::shared_object_payload(&raw(16, vec![3, 0])),
        Err(MessageError::Amf3Encoding {
            type_id: 16,
            byte: 3
        })
    );
    assert_eq!(Message::shared_object_payload(&raw(20, body)), Ok(None));
}

#[test]
fn so_flags() {
    let mut body = hex("0004 63686174 00000000 00000002 00000000");
    assert!(
        SharedObjectMessage::decode(&body, &Limits::default())
            .unwrap()
            .persistent
    );
    // Other bits are ignored; bit value 2 decides.
    body[13] = 3;
    assert!(
        SharedObjectMessage::decode(&body, &Limits::default())
            .unwrap()
            .persistent
    );
    body[13] = 1;
    assert!(
        !SharedObjectMessage::decode(&body, &Limits::default())
            .unwrap()
            .persistent
    );
}

#[test]
fn so_errors() {
    let l = Limits::default();
    let header = "0004 63686174 00000000 00000000 00000000";
    let dec = |tail: &str| SharedObjectMessage::decode(&hex(&alloc::format!("{header}{tail}")), &l);
    assert_eq!(dec("0c 00000000"), Err(MessageError::UnknownSoEvent(0x0c)));
    assert_eq!(dec("00 00000000"), Err(MessageError::UnknownSoEvent(0)));
    assert_eq!(
        dec("05 00000009 0007 6d6573"),
        Err(MessageError::SoEventOverrun {
            event_type: 5,
            length: 9,
            available: 5
        })
    );
    assert_eq!(
        dec("05 ffffffff"),
        Err(MessageError::SoEventOverrun {
            event_type: 5,
            length: u32::MAX,
            available: 0
        })
    );
    assert_eq!(
        dec("01 00000001 00"),
        Err(MessageError::SoEventTrailing {
            event_type: 1,
            extra: 1
        })
    );
    assert_eq!(
        dec("05 00000004 0001 6100"),
        Err(MessageError::SoEventTrailing {
            event_type: 5,
            extra: 1
        })
    );
    assert_eq!(
        dec("09 00000003 0001 ff"),
        Err(MessageError::InvalidUtf8 {
            what: "shared object key"
        })
    );
    assert_eq!(
        dec("07 00000004 0001 41 00"),
        Err(MessageError::Truncated {
            what: "shared object status level"
        })
    );
    assert_eq!(
        dec("01 0000"),
        Err(MessageError::Truncated {
            what: "shared object event length"
        })
    );
    assert_eq!(
        SharedObjectMessage::decode(&hex("0002 ff41 00000000"), &l),
        Err(MessageError::InvalidUtf8 {
            what: "shared object name"
        })
    );
    assert_eq!(
        SharedObjectMessage::decode(&hex("0004 6368"), &l),
        Err(MessageError::Truncated {
            what: "shared object name"
        })
    );
    let many = "01 00000000".repeat(MAX_SO_EVENTS + 1);
    assert_eq!(
        dec(&many),
        Err(MessageError::TooManySoEvents {
            limit: MAX_SO_EVENTS
        })
    );
    assert_eq!(
        dec(&"01 00000000".repeat(MAX_SO_EVENTS))
            .unwrap()
            .events
            .len(),
        MAX_SO_EVENTS
    );
    // Display names the event.
    let e = dec("05 00000009").unwrap_err();
    assert_eq!(
        alloc::format!("{e}"),
        "shared object success event announces 9 bytes but 0 remain"
    );
}

#[test]
fn message_decode_control_and_media() {
    let l = Limits::default();
    let m = Message::decode(&raw(5, hex("00989680")), &l).unwrap();
    assert_eq!(
        m,
        Message::Control(ProtocolControl::WindowAckSize(10_000_000))
    );
    assert_eq!(m.encode(), (5, Bytes::from(hex("00989680"))));
    let m = Message::decode(&raw(4, hex("00030000000100001388")), &l).unwrap();
    assert_eq!(
        m,
        Message::UserControl(UserControl::SetBufferLength {
            stream_id: 1,
            millis: 5000
        })
    );
    assert_eq!(m.encode().0, 4);
    let payload = Bytes::from_static(&[0x17, 0, 0, 0, 0]);
    let r = RawMessage {
        csid: 6,
        timestamp: 40,
        type_id: 9,
        stream_id: 1,
        payload: payload.clone(),
    };
    let m = Message::decode(&r, &l).unwrap();
    match &m {
        // Shared, not copied.
        Message::Video(b) => assert_eq!(b.as_ptr(), payload.as_ptr()),
        other => panic!("{other:?}"),
    }
    assert_eq!(m.encode(), (9, payload));
    assert!(matches!(
        Message::decode(&raw(8, vec![0xaf, 1]), &l).unwrap(),
        Message::Audio(_)
    ));
    assert!(matches!(
        Message::decode(&raw(22, vec![1, 2]), &l).unwrap(),
        Message::Aggregate(_)
    ));
    assert_eq!(
        Message::decode(&raw(7, vec![1]), &l).unwrap(),
        Message::Unknown {
            type_id: 7,
            payload: Bytes::from_static(&[1])
        }
    );
    assert_eq!(
        Message::decode(&raw(17, vec![3, 2]), &l),
        Err(MessageError::Amf3Encoding {
            type_id: 17,
            byte: 3
        })
    );
    assert_eq!(
        Message::decode(&raw(15, vec![]), &l),
        Err(MessageError::Truncated {
            what: "AMF3 encoding byte"
        })
    );
    assert_eq!(
        Message::from(ProtocolControl::SetChunkSize(4096)).encode(),
        (1, Bytes::from_static(&[0, 0, 0x10, 0]))
    );
}

#[test]
fn stream_name_query() {
    assert_eq!(
        split_stream_name("cam?token=x&a=b"),
        ("cam", Some("token=x&a=b"))
    );
    assert_eq!(split_stream_name("cam"), ("cam", None));
    assert_eq!(split_stream_name("cam?"), ("cam", Some("")));
}

/// Types a command of the documented shape: no lenient reading taken.
fn typed(name: &str, args: Vec<Value>) -> ClientCommand {
    let reading = ClientCommand::from_command(Command::new(name, 5.0, args));
    assert_eq!(reading.tolerated, vec![], "{name} needed a lenient reading");
    reading.command
}

/// Types a command of an unexpected shape: at least one lenient reading,
/// whose text contains `note`.
fn lenient(name: &str, args: Vec<Value>, note: &str) -> ClientCommand {
    let reading = ClientCommand::from_command(Command::new(name, 5.0, args));
    assert!(
        reading.tolerated.iter().any(|t| t.reading.contains(note)),
        "{name}: no lenient reading containing {note:?} in {:?}",
        reading.tolerated
    );
    reading.command
}

#[test]
fn typed_commands_without_amf() {
    let c = typed;
    assert_eq!(
        c("createStream", vec![]),
        ClientCommand::CreateStream {
            transaction_id: 5.0
        }
    );
    assert_eq!(
        c(
            "publish",
            vec![Value::string("cam?k=1"), Value::string("live")]
        ),
        ClientCommand::Publish {
            transaction_id: 5.0,
            name: "cam?k=1".into(),
            kind: PublishKind::Live
        }
    );
    assert!(matches!(
        c("publish", vec![Value::string("cam")]),
        ClientCommand::Publish {
            kind: PublishKind::Live,
            ..
        }
    ));
    assert!(matches!(
        c(
            "publish",
            vec![Value::string("cam"), Value::string("append")]
        ),
        ClientCommand::Publish {
            kind: PublishKind::Append,
            ..
        }
    ));
    assert_eq!(
        c("publish", vec![Value::Boolean(false)]),
        ClientCommand::StopPublish {
            transaction_id: 5.0
        }
    );
    assert_eq!(
        c(
            "play",
            vec![
                Value::string("s"),
                Value::Number(-1000.0),
                Value::Null,
                Value::Boolean(false)
            ]
        ),
        ClientCommand::Play {
            transaction_id: 5.0,
            name: "s".into(),
            start: -1000.0,
            duration: -1.0,
            reset: false
        }
    );
    assert_eq!(
        c("play", vec![Value::Boolean(false)]),
        ClientCommand::StopPlay {
            transaction_id: 5.0
        }
    );
    assert_eq!(
        c("deleteStream", vec![Value::Number(1.0)]),
        ClientCommand::DeleteStream {
            target: StreamRef::Id(1)
        }
    );
    assert_eq!(c("closeStream", vec![]), ClientCommand::CloseStream);
    for name in [
        "releaseStream",
        "FCPublish",
        "FCUnpublish",
        "getStreamLength",
    ] {
        let _ = c(name, vec![Value::string("s")]);
    }
    assert_eq!(
        c("pause", vec![Value::Boolean(true), Value::Number(1200.0)]),
        ClientCommand::Pause {
            pause: true,
            millis: 1200.0
        }
    );
    assert_eq!(
        c("seek", vec![Value::Number(3.0)]),
        ClientCommand::Seek { millis: 3.0 }
    );
    assert_eq!(
        c("receiveVideo", vec![Value::Boolean(false)]),
        ClientCommand::ReceiveVideo(false)
    );
    assert_eq!(
        c("receiveAudio", vec![Value::Boolean(true)]),
        ClientCommand::ReceiveAudio(true)
    );
    assert!(matches!(
        c(
            "play2",
            vec![Value::object([("streamName", Value::string("b"))])]
        ),
        ClientCommand::Play2 { .. }
    ));
    assert_eq!(
        c("sendChat", vec![Value::string("hi")]),
        ClientCommand::Call {
            name: "sendChat".into(),
            transaction_id: 5.0,
            command_object: Value::Null,
            args: vec![Value::string("hi")]
        }
    );
}

/// One test per tolerated shape: a well-framed command of an unexpected
/// shape gets its most useful reading and a note (see "Lenient reading" in
/// docs/architecture.md).
mod lenient_shapes {
    use super::*;

    #[test]
    fn delete_stream_by_name() {
        // GStreamer rtmp2sink (1.22): `deleteStream tx=0 null "x"`.
        assert_eq!(
            lenient(
                "deleteStream",
                vec![Value::string("x")],
                "stream named \"x\""
            ),
            ClientCommand::DeleteStream {
                target: StreamRef::Name("x".into())
            }
        );
    }

    #[test]
    fn delete_stream_without_a_usable_id() {
        for (args, note) in [
            (vec![], "missing"),
            (vec![Value::Null], "missing"),
            (vec![Value::Number(-1.0)], "not an id"),
            (vec![Value::Number(1.5)], "not an id"),
            (vec![Value::Number(f64::NAN)], "not an id"),
            (vec![Value::Boolean(true)], "a boolean"),
        ] {
            assert_eq!(
                lenient("deleteStream", args, note),
                ClientCommand::DeleteStream {
                    target: StreamRef::Unspecified
                }
            );
        }
    }

    #[test]
    fn extra_arguments_are_ignored() {
        assert_eq!(
            lenient(
                "deleteStream",
                vec![Value::Number(1.0), Value::string("x")],
                "1 extra argument"
            ),
            ClientCommand::DeleteStream {
                target: StreamRef::Id(1)
            }
        );
        assert!(matches!(
            lenient("createStream", vec![Value::Number(0.0)], "extra"),
            ClientCommand::CreateStream { .. }
        ));
        assert!(matches!(
            lenient(
                "publish",
                vec![Value::string("a"), Value::string("live"), Value::Null],
                "extra"
            ),
            ClientCommand::Publish { .. }
        ));
    }

    #[test]
    fn a_name_of_another_type() {
        // A whole number reads as its text, anything else as "" (which the
        // hub refuses with BadName / StreamNotFound).
        assert_eq!(
            lenient("publish", vec![Value::Number(1.0)], "read as \"1\""),
            ClientCommand::Publish {
                transaction_id: 5.0,
                name: "1".into(),
                kind: PublishKind::Live
            }
        );
        assert!(matches!(
            lenient("play", vec![Value::Object(vec![])], "an object"),
            ClientCommand::Play { name, .. } if name.is_empty()
        ));
    }

    #[test]
    fn a_missing_name() {
        assert!(matches!(
            lenient("publish", vec![], "missing"),
            ClientCommand::Publish { name, .. } if name.is_empty()
        ));
        for name in [
            "releaseStream",
            "FCPublish",
            "FCUnpublish",
            "getStreamLength",
        ] {
            let _ = lenient(name, vec![], "stream name is missing");
        }
    }

    #[test]
    fn an_unknown_publishing_type() {
        assert!(matches!(
            lenient(
                "publish",
                vec![Value::string("a"), Value::string("x")],
                "read as \"live\""
            ),
            ClientCommand::Publish {
                kind: PublishKind::Live,
                ..
            }
        ));
        // FMS's appendWithGap is an append, not a surprise.
        assert!(matches!(
            typed(
                "publish",
                vec![Value::string("a"), Value::string("appendWithGap")]
            ),
            ClientCommand::Publish {
                kind: PublishKind::Append,
                ..
            }
        ));
    }

    #[test]
    fn play_numbers_and_reset_of_other_types() {
        assert_eq!(
            lenient(
                "play",
                vec![
                    Value::string("s"),
                    Value::string("0"),
                    Value::Boolean(true),
                    Value::Number(0.0)
                ],
                "start is a string, read as 0"
            ),
            ClientCommand::Play {
                transaction_id: 5.0,
                name: "s".into(),
                start: 0.0,
                duration: -1.0,
                reset: false
            }
        );
    }

    #[test]
    fn flags_of_other_types_and_missing_flags() {
        assert_eq!(
            lenient("receiveAudio", vec![Value::Number(0.0)], "read as false"),
            ClientCommand::ReceiveAudio(false)
        );
        assert_eq!(
            lenient("receiveVideo", vec![], "missing"),
            ClientCommand::ReceiveVideo(true)
        );
        assert_eq!(
            lenient("pause", vec![], "missing"),
            ClientCommand::Pause {
                pause: true,
                millis: 0.0
            }
        );
        assert_eq!(
            lenient("pause", vec![Value::string("false")], "read as false"),
            ClientCommand::Pause {
                pause: false,
                millis: 0.0
            }
        );
        assert_eq!(
            lenient("seek", vec![], "missing"),
            ClientCommand::Seek { millis: 0.0 }
        );
        assert!(matches!(
            lenient("play2", vec![], "missing"),
            ClientCommand::Play2 {
                params: Value::Null,
                ..
            }
        ));
    }

    #[test]
    fn connect_without_a_usable_app() {
        // No object at all: app "" (the hub answers InvalidApp).
        let ClientCommand::Connect { params, .. } = lenient("connect", vec![], "command object")
        else {
            panic!("not a connect");
        };
        assert_eq!(params.app, "");
        // app missing or not a string: the path of tcUrl.
        for object in [
            Value::object([("tcUrl", Value::string("rtmp://h:1935/live/room?k=1"))]),
            Value::object([
                ("app", Value::Number(3.0)),
                ("tcUrl", Value::string("rtmp://h/live/room?k=1")),
            ]),
        ] {
            let reading = ClientCommand::from_command(Command {
                name: "connect".into(),
                transaction_id: 1.0,
                command_object: object,
                args: vec![],
            });
            assert_eq!(reading.tolerated.len(), 1, "{:?}", reading.tolerated);
            let ClientCommand::Connect { params, .. } = reading.command else {
                panic!("not a connect");
            };
            assert_eq!(params.app, "live/room?k=1");
        }
    }

    #[test]
    fn notes_are_bounded_and_readable() {
        let long = "x".repeat(300);
        let t = Tolerated::new(&long, "r");
        assert_eq!(t.command.len(), MAX_NOTED_NAME);
        let t = Tolerated::new("deleteStream", "stream id is a string");
        assert_eq!(
            alloc::format!("{t}"),
            "lenient reading of \"deleteStream\": stream id is a string"
        );
    }
}

#[test]
fn builders_and_server_replies() {
    let r = connect_result(1.0, 0.0, "Connection succeeded.");
    assert_eq!(r.name, "_result");
    assert_eq!(
        r.command_object.get("fmsVer"),
        Some(&Value::string(FMS_VERSION))
    );
    assert_eq!(
        r.command_object.get("capabilities"),
        Some(&Value::Number(31.0))
    );
    assert_eq!(r.command_object.get("mode"), Some(&Value::Number(1.0)));
    let reply = ServerReply::from_command(r);
    assert_eq!(reply.transaction_id(), Some(1.0));
    assert_eq!(reply.code(), Some(status::CONNECT_SUCCESS));
    assert_eq!(reply.level(), Some("status"));
    assert_eq!(
        reply.info().and_then(|i| i.get("objectEncoding")),
        Some(&Value::Number(0.0))
    );

    let e = ServerReply::from_command(connect_error(1.0, status::CONNECT_INVALID_APP, "no app"));
    assert!(matches!(e, ServerReply::Error { transaction_id, .. } if transaction_id == 1.0));
    assert_eq!(e.level(), Some("error"));
    assert_eq!(e.code(), Some(status::CONNECT_INVALID_APP));

    let cs = create_stream_result(4.0, 1);
    assert_eq!(cs.args, vec![Value::Number(1.0)]);
    assert!(matches!(
        ServerReply::from_command(cs),
        ServerReply::Result { transaction_id, command_object: Value::Null, args } if transaction_id == 4.0 && args == vec![Value::Number(1.0)]
    ));

    let unknown = error(7.0, status::CALL_FAILED, "Method not found (sendChat)");
    assert_eq!(unknown.name, "_error");
    assert_eq!(unknown.transaction_id, 7.0);

    let st = ServerReply::from_command(on_status(
        StatusLevel::Error,
        status::PUBLISH_BAD_NAME,
        "cam is already being published",
        vec![],
    ));
    assert!(matches!(st, ServerReply::OnStatus { .. }));
    assert_eq!(st.code(), Some(status::PUBLISH_BAD_NAME));
    assert_eq!(st.transaction_id(), None);

    let bw = on_bw_done();
    assert_eq!((bw.name.as_str(), bw.transaction_id), ("onBWDone", 0.0));
    assert!(matches!(
        ServerReply::from_command(bw),
        ServerReply::Call(_)
    ));
    let fc = on_fc_publish(status::PUBLISH_START, "cam");
    assert_eq!(fc.name, "onFCPublish");
    assert_eq!(
        fc.args[0].get("code"),
        Some(&Value::string(status::PUBLISH_START))
    );
    assert_eq!(
        on_fc_unpublish(status::UNPUBLISH_SUCCESS, "cam").name,
        "onFCUnpublish"
    );
    assert_eq!(
        result(2.0, vec![Value::Null, Value::Number(0.0)])
            .args
            .len(),
        2
    );
}

#[test]
fn data_helpers_without_amf() {
    let meta = Value::EcmaArray {
        count: 1,
        properties: vec![("duration".into(), Value::Number(0.0))],
    };
    let d = DataMessage {
        values: vec![
            Value::string(SET_DATA_FRAME),
            Value::string(ON_METADATA),
            meta.clone(),
        ],
    };
    assert!(d.is_set_data_frame());
    assert_eq!(d.metadata(), Some(&meta));
    let stored = d.without_set_data_frame();
    assert!(!stored.is_set_data_frame());
    assert_eq!(stored, DataMessage::on_metadata(meta.clone()));
    assert_eq!(stored.metadata(), Some(&meta));
    assert_eq!(stored.handler(), Some(ON_METADATA));
    let other = DataMessage {
        values: vec![
            Value::string("onTextData"),
            Value::object([("text", Value::string("x"))]),
        ],
    };
    assert_eq!(other.metadata(), None);
    assert_eq!(other.clone().without_set_data_frame(), other);
    let not_obj = DataMessage {
        values: vec![Value::string(ON_METADATA), Value::Number(1.0)],
    };
    assert_eq!(not_obj.metadata(), None);
    assert_eq!(DataMessage::default().metadata(), None);
}

fn type_ids() -> impl Strategy<Value = u8> {
    prop_oneof![0u8..=25, any::<u8>()]
}

proptest! {
    #[test]
    fn decode_arbitrary_never_panics(t in type_ids(), payload in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = Message::decode(&raw(t, payload), &Limits::small());
    }

    #[test]
    fn so_decode_arbitrary_never_panics(payload in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = SharedObjectMessage::decode(&payload, &Limits::small());
    }

    /// A valid SO header followed by plausible-looking events reaches the
    /// event parser far more often than fully random bytes.
    #[test]
    fn so_events_arbitrary_never_panic(
        events in proptest::collection::vec((1u8..=12, proptest::collection::vec(any::<u8>(), 0..24)), 0..8),
        fuzz_len in any::<bool>(),
    ) {
        let mut body = hex("0004 63686174 00000001 00000000 00000000");
        for (t, p) in &events {
            body.push(*t);
            let len = if fuzz_len { p.len() as u32 + 3 } else { p.len() as u32 };
            body.extend_from_slice(&len.to_be_bytes());
            body.extend_from_slice(p);
        }
        if let Ok(m) = SharedObjectMessage::decode(&body, &Limits::small()) {
            // Whatever decodes re-encodes to the same bytes, except that the
            // flags/reserved words are normalised (they are 0 here).
            let again = SharedObjectMessage::decode(&m.to_bytes(), &Limits::small());
            prop_assert_eq!(again, Ok(m));
        }
    }

    /// The in-place view and the owned decode agree on arbitrary events:
    /// the same message or the same error, and a string change read in
    /// place is the owned event's key and string.
    #[test]
    fn the_view_agrees_with_the_owned_decode(
        events in proptest::collection::vec((1u8..=12, proptest::collection::vec(any::<u8>(), 0..24)), 0..8),
        strings in proptest::collection::vec("[a-z]{0,6}", 0..4),
    ) {
        let mut body = hex("0004 63686174 00000001 00000000 00000000");
        let mut push = |t: u8, p: &[u8]| {
            body.push(t);
            body.extend_from_slice(&(p.len() as u32).to_be_bytes());
            body.extend_from_slice(p);
        };
        for (t, p) in &events {
            push(*t, p);
        }
        for s in &strings {
            let mut p = vec![0, 1, b'k', 2];
            p.extend_from_slice(&(s.len() as u16).to_be_bytes());
            p.extend_from_slice(s.as_bytes());
            push(4, &p);
        }
        let l = Limits::small();
        let owned = SharedObjectMessage::decode(&body, &l);
        let viewed = SharedObjectView::parse(&body).and_then(|v| v.to_message(&l));
        prop_assert_eq!(&viewed, &owned);
        if let Ok(view) = SharedObjectView::parse(&body) {
            for event in view.events().flatten() {
                match (event.string_change(), event.to_event(&l)) {
                    (Ok(Some((k, v))), Ok(SoEvent::Change { key, value } | SoEvent::RequestChange { key, value })) => {
                        prop_assert_eq!(k, key.as_str());
                        prop_assert_eq!(Some(v), value.as_str());
                    }
                    (Ok(Some(_)), other) => prop_assert!(false, "read in place, owned {:?}", other),
                    (Ok(None), Ok(SoEvent::Change { value, .. } | SoEvent::RequestChange { value, .. })) => {
                        prop_assert!(value.as_str().is_none(), "string {:?} not read in place", value);
                    }
                    (Err(e), owned) => prop_assert_eq!(Err(e), owned),
                    (Ok(None), _) => {}
                }
            }
        }
    }

    #[test]
    fn media_inspection_never_panics(payload in proptest::collection::vec(any::<u8>(), 0..16)) {
        let _ = VideoTag::parse(&payload);
        let _ = AudioTag::parse(&payload);
    }

    #[test]
    fn control_round_trip(t in prop_oneof![Just(1u8), Just(2), Just(3), Just(5), Just(6)], v in 1u32..0x7FFF_FFFF, l in 0u8..3) {
        let mut p = v.to_be_bytes().to_vec();
        p.push(l);
        let m = ProtocolControl::decode(t, &p).unwrap();
        let b = m.to_bytes();
        prop_assert_eq!(&b[..], &p[..b.len()]);
    }
}

/// Tests that need the AMF0 codec.
mod amf {
    use super::*;

    proptest! {
        #[test]
        fn commands_round_trip(
            name in "[a-zA-Z_@]{1,20}",
            tx in -1.0e9f64..1.0e9,
            args in proptest::collection::vec(prop_oneof![
                any::<f64>().prop_filter("NaN != NaN", |n| !n.is_nan()).prop_map(Value::Number),
                ".{0,12}".prop_map(Value::String),
                any::<bool>().prop_map(Value::Boolean),
                Just(Value::Null),
            ], 0..5),
        ) {
            let c = Command { name, transaction_id: tx, command_object: Value::Null, args };
            let (t, b) = Message::Command(c.clone()).encode();
            prop_assert_eq!(t, 20);
            prop_assert_eq!(Message::decode(&raw(t, b.to_vec()), &Limits::default()), Ok(Message::Command(c.clone())));
            // Typing never panics whatever the arguments.
            let _ = ClientCommand::from_command(c);
        }
    }

    fn roundtrip_command(body: &str) -> Command {
        let body = hex(body);
        let msg = Message::decode(&raw(20, body.clone()), &Limits::default()).unwrap();
        assert_eq!(msg.encode(), (20, Bytes::from(body.clone())));
        let mut amf3 = vec![0u8];
        amf3.extend_from_slice(&body);
        assert_eq!(
            Message::decode(&raw(17, amf3), &Limits::default()).unwrap(),
            msg
        );
        match msg {
            Message::Command(c) => c,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn create_stream_vector() {
        let c = roundtrip_command("02000c 63726561746553747265616d 00 4008000000000000 05");
        assert_eq!(c, Command::new("createStream", 3.0, vec![]));
        assert_eq!(
            ClientCommand::from_command(c).command,
            ClientCommand::CreateStream {
                transaction_id: 3.0
            }
        );
    }

    #[test]
    fn play_vector() {
        let c =
            roundtrip_command("020004 706c6179 00 0000000000000000 05 020009 73706565782e666c76");
        assert_eq!(
            ClientCommand::from_command(c).command,
            ClientCommand::Play {
                transaction_id: 0.0,
                name: "speex.flv".into(),
                start: -2.0,
                duration: -1.0,
                reset: true
            }
        );
    }

    #[test]
    fn on_status_publish_start_vector() {
        let body = "02 00086f6e537461747573 00 0000000000000000 05 03 0005 6c6576656c 020006 737461747573 0004 636f6465 020017 4e657453747265616d2e5075626c6973682e5374617274 000b 6465736372697074696f6e 020000 0007 64657461696c73 02000a 6d697865722d6f757433 0008 636c69656e746964 00 3ff0000000000000 00 0009";
        assert_eq!(hex(body).len(), 0x82);
        let c = roundtrip_command(body);
        let built = on_status(
            StatusLevel::Status,
            status::PUBLISH_START,
            "",
            vec![
                ("details".into(), Value::string("mixer-out3")),
                ("clientid".into(), Value::Number(1.0)),
            ],
        );
        assert_eq!(c, built);
        assert_eq!(&built.to_bytes()[..], &hex(body)[..]);
        let reply = ServerReply::from_command(c);
        assert_eq!(reply.code(), Some(status::PUBLISH_START));
        assert_eq!(
            reply.info().and_then(|i| i.get("details")),
            Some(&Value::string("mixer-out3"))
        );
    }

    #[test]
    fn set_data_frame_vector() {
        let body = hex(
            "02000d 40736574446174614672616d65 02000a 6f6e4d65746144617461 08 00000001 0008 6475726174696f6e 00 0000000000000000 000009",
        );
        assert_eq!(body.len(), 0x38);
        let msg = Message::decode(&raw(18, body.clone()), &Limits::default()).unwrap();
        assert_eq!(msg.encode(), (18, Bytes::from(body.clone())));
        let Message::Data(d) = msg else {
            panic!("not data")
        };
        assert!(d.is_set_data_frame());
        let meta = Value::EcmaArray {
            count: 1,
            properties: vec![("duration".into(), Value::Number(0.0))],
        };
        assert_eq!(d.metadata(), Some(&meta));
        let stored = d.without_set_data_frame();
        // What players get: the same bytes minus the @setDataFrame string.
        assert_eq!(&stored.to_bytes()[..], &body[16..]);
        // Type 15 with its encoding byte.
        let mut amf3 = vec![0u8];
        amf3.extend_from_slice(&body);
        assert!(matches!(
            Message::decode(&raw(15, amf3), &Limits::default()),
            Ok(Message::Data(_))
        ));
    }

    #[test]
    fn so_vectors_with_amf() {
        so_check(
            "0004 63686174 00000002 00000000 00000000 03 0000000e 0007 6d657373616765 02 0002 6869",
            chat(
                2,
                vec![SoEvent::RequestChange {
                    key: "message".into(),
                    value: Value::string("hi"),
                }],
            ),
        );
        so_check(
            "0004 63686174 00000003 00000000 00000000 04 0000000e 0007 6d657373616765 02 0002 6869",
            chat(
                3,
                vec![SoEvent::Change {
                    key: "message".into(),
                    value: Value::string("hi"),
                }],
            ),
        );
        so_check(
            "0004 63686174 00000003 00000000 00000000 06 00000017 02 000f 6d6573736167655472616e736d6974 02 0002 6869",
            chat(
                3,
                vec![SoEvent::SendMessage {
                    method: "messageTransmit".into(),
                    args: vec![Value::string("hi")],
                }],
            ),
        );
    }

    #[test]
    fn so_amf_errors() {
        let l = Limits::default();
        let header = "0004 63686174 00000000 00000000 00000000";
        let dec =
            |tail: &str| SharedObjectMessage::decode(&hex(&alloc::format!("{header}{tail}")), &l);
        // Change with a value followed by a stray byte.
        assert_eq!(
            dec("04 00000005 0001 61 05 05"),
            Err(MessageError::SoEventTrailing {
                event_type: 4,
                extra: 1
            })
        );
        // Change whose value is cut off.
        assert!(matches!(
            dec("04 00000005 0001 61 00 3f"),
            Err(MessageError::Amf0 {
                what: "shared object value",
                ..
            })
        ));
        // Send with a non-string method.
        assert_eq!(
            dec("06 00000001 05"),
            Err(MessageError::WrongType {
                command: "shared object send message",
                field: "method",
                expected: "string"
            })
        );
    }

    fn connect_cmd(object: Value, args: Vec<Value>) -> ClientCommand {
        let cmd = Command {
            name: "connect".into(),
            transaction_id: 1.0,
            command_object: object,
            args,
        };
        let bytes = cmd.to_bytes();
        let decoded = Command::decode(&bytes, &Limits::default()).unwrap();
        assert_eq!(decoded, cmd);
        let reading = ClientCommand::from_command(decoded);
        assert_eq!(reading.tolerated, vec![]);
        reading.command
    }

    #[test]
    fn ffmpeg_obs_flash_connect() {
        // ffmpeg publishing (libavformat rtmpproto).
        let ffmpeg = Value::object([
            ("app", Value::string("live")),
            ("type", Value::string("nonprivate")),
            (
                "flashVer",
                Value::string("FMLE/3.0 (compatible; Lavf61.7.100)"),
            ),
            ("tcUrl", Value::string("rtmp://127.0.0.1:1935/live")),
        ]);
        let ClientCommand::Connect {
            transaction_id,
            params,
        } = connect_cmd(ffmpeg.clone(), vec![Value::string("token=abc")])
        else {
            panic!("not connect")
        };
        assert_eq!(transaction_id, 1.0);
        assert_eq!(params.app, "live");
        assert_eq!(params.tc_url.as_deref(), Some("rtmp://127.0.0.1:1935/live"));
        assert_eq!(
            params.flash_ver.as_deref(),
            Some("FMLE/3.0 (compatible; Lavf61.7.100)")
        );
        assert_eq!(params.swf_url, None);
        assert_eq!(params.object_encoding, 0.0);
        assert_eq!(params.object, ffmpeg);
        assert_eq!(params.args, vec![Value::string("token=abc")]);

        // OBS (librtmp-derived) with a room in the app path.
        let obs = Value::object([
            ("app", Value::string("live/room1")),
            ("type", Value::string("nonprivate")),
            ("flashVer", Value::string("FMLE/3.0 (compatible; FMSc/1.0)")),
            ("swfUrl", Value::string("rtmp://host/live/room1")),
            ("tcUrl", Value::string("rtmp://host/live/room1")),
        ]);
        let ClientCommand::Connect { params, .. } = connect_cmd(obs, vec![]) else {
            panic!("not connect")
        };
        assert_eq!(params.app, "live/room1");
        assert_eq!(params.swf_url.as_deref(), Some("rtmp://host/live/room1"));

        // ffmpeg playing / Flash: capabilities, codecs, undefined pageUrl, AMF3.
        let flash = Value::object([
            ("app", Value::string("chat")),
            ("flashVer", Value::string("WIN 32,0,0,465")),
            ("swfUrl", Value::string("http://example.com/chat.swf")),
            ("tcUrl", Value::string("rtmp://example.com/chat")),
            ("fpad", Value::Boolean(false)),
            ("capabilities", Value::Number(239.0)),
            ("audioCodecs", Value::Number(3575.0)),
            ("videoCodecs", Value::Number(252.0)),
            ("videoFunction", Value::Number(1.0)),
            ("pageUrl", Value::Undefined),
            ("objectEncoding", Value::Number(3.0)),
        ]);
        let ClientCommand::Connect { params, .. } = connect_cmd(flash, vec![]) else {
            panic!("not connect")
        };
        assert_eq!(params.page_url, None);
        assert_eq!(params.object_encoding, 3.0);
    }

    #[test]
    fn builders_round_trip_on_the_wire() {
        for c in [
            connect_result(1.0, 3.0, "Connection succeeded."),
            connect_error(1.0, status::CONNECT_REJECTED, "bad token"),
            create_stream_result(4.0, 1),
            error(5.0, status::CALL_FAILED, "Method not found (foo)"),
            on_bw_done(),
            on_fc_publish(status::PUBLISH_START, "cam"),
        ] {
            let b = c.to_bytes();
            assert_eq!(Command::decode(&b, &Limits::default()), Ok(c));
        }
    }

    #[test]
    fn command_header_errors() {
        let l = Limits::default();
        let mut num = Vec::new();
        amf0::encode(&Value::Number(1.0), &mut num);
        assert_eq!(
            Command::decode(&num, &l),
            Err(MessageError::WrongType {
                command: "command message",
                field: "name",
                expected: "string"
            })
        );
        let mut name_only = Vec::new();
        amf0::encode(&Value::string("x"), &mut name_only);
        assert_eq!(
            Command::decode(&name_only, &l),
            Err(MessageError::MissingField {
                command: "command message",
                field: "transaction id"
            })
        );
        assert_eq!(
            Command::decode(&[], &l),
            Err(MessageError::MissingField {
                command: "command message",
                field: "name"
            })
        );
        // A notification without a command object reads as Null.
        amf0::encode(&Value::Number(0.0), &mut name_only);
        assert_eq!(
            Command::decode(&name_only, &l),
            Ok(Command::new("x", 0.0, vec![]))
        );
        assert!(matches!(
            Command::decode(&[0x02, 0x00], &l),
            Err(MessageError::Amf0 {
                what: "command",
                ..
            })
        ));
    }
}

/// What Flash sends with objectEncoding 3: a type-16 set whose value is
/// an AVM+ AMF3 value, a send whose argument is one, and a type-17 call
/// whose argument is one. All come out in the shared model, and the
/// type-16 encoding puts the AVM+ values back.
mod amf3_values {
    use super::*;
    use crate::amf3;

    fn avmplus(v: &amf3::Value) -> Value {
        let mut out = Vec::new();
        amf3::encode(v, &mut out);
        Value::Avmplus(Bytes::from(out))
    }

    #[test]
    fn type_16_values_decode_into_the_shared_model() {
        let point = amf3::Value::Object(amf3::Object {
            class_name: String::from("P"),
            sealed: vec![(String::from("x"), amf3::Value::Integer(1))],
            dynamic: None,
        });
        let sent = SharedObjectMessage {
            name: String::from("so"),
            version: 0,
            persistent: false,
            events: vec![
                SoEvent::RequestChange {
                    key: String::from("n"),
                    value: avmplus(&amf3::Value::Integer(42)),
                },
                SoEvent::RequestChange {
                    key: String::from("p"),
                    value: avmplus(&point),
                },
                SoEvent::SendMessage {
                    method: String::from("m"),
                    args: vec![avmplus(&amf3::Value::string("hi"))],
                },
            ],
        };
        let mut payload = vec![0u8];
        sent.encode(&mut payload);
        let Message::SharedObject(got) =
            Message::decode(&raw(16, payload), &Limits::default()).unwrap()
        else {
            panic!("not a shared-object message")
        };
        assert_eq!(
            got.events,
            vec![
                SoEvent::RequestChange {
                    key: String::from("n"),
                    value: Value::Number(42.0),
                },
                // A typed object has no AMF0 twin: it stays AMF3.
                SoEvent::RequestChange {
                    key: String::from("p"),
                    value: avmplus(&point),
                },
                SoEvent::SendMessage {
                    method: String::from("m"),
                    args: vec![Value::string("hi")],
                },
            ]
        );
        // Back out as type 16: every value AVM+ again (42 as an integer).
        let mut out = Vec::new();
        got.encode_amf3(&Limits::default(), &mut out);
        let mut expected = vec![0u8];
        sent.encode(&mut expected);
        assert_eq!(out, expected);
        // An AVM+ value that does not decode as AMF3 is an error.
        let bad = SharedObjectMessage {
            events: vec![SoEvent::RequestChange {
                key: String::from("s"),
                value: Value::Avmplus(Bytes::from_static(&[0x06, 0x03, 0xFF])),
            }],
            ..sent
        };
        let mut payload = vec![0u8];
        bad.encode(&mut payload);
        assert_eq!(
            Message::decode(&raw(16, payload), &Limits::default()),
            Err(MessageError::Amf3 {
                what: "shared object value",
                error: amf3::DecodeError::InvalidUtf8
            })
        );
    }

    #[test]
    fn type_17_arguments_decode_into_the_shared_model() {
        let call = Command::new(
            "sum",
            3.0,
            vec![
                avmplus(&amf3::Value::Integer(2)),
                avmplus(&amf3::Value::Double(0.5)),
            ],
        );
        let mut payload = vec![0u8];
        payload.extend_from_slice(&call.to_bytes());
        let Message::Command(got) = Message::decode(&raw(17, payload), &Limits::default()).unwrap()
        else {
            panic!("not a command")
        };
        assert_eq!(got.args, vec![Value::Number(2.0), Value::Number(0.5)]);
        assert_eq!(got.name, "sum");
    }

    /// Type 17 as tern writes it to an AMF3 client, byte for byte: the
    /// encoding byte, name and transaction id in AMF0, the null command
    /// object in AMF0, each argument as an AVM+ value (here the integer 1:
    /// `11 04 01`); read back, it is the same command.
    #[test]
    fn type_17_replies_are_written_as_flash_writes_calls() {
        let reply = Command::new("_result", 2.0, vec![Value::Number(1.0)]);
        let payload = reply.to_bytes_amf3(&Limits::default());
        assert_eq!(
            payload.as_ref(),
            hex("00 02 0007 5f726573756c74 00 4000000000000000 05 11 04 01").as_slice()
        );
        let status = on_status(StatusLevel::Status, "C", "d", Vec::new());
        let payload = status.to_bytes_amf3(&Limits::default());
        // onStatus, tx 0, null, then an anonymous dynamic AMF3 object
        // (traits 0b1011 = 0x0b, empty class name 0x01) with level, code,
        // description.
        assert_eq!(
            &payload[..26],
            hex("00 02 0008 6f6e537461747573 00 0000000000000000 05 11 0a 0b 01").as_slice()
        );
        let Message::Command(back) =
            Message::decode(&raw(17, payload.to_vec()), &Limits::default()).unwrap()
        else {
            panic!("not a command")
        };
        assert_eq!(back, status);
        // A non-null command object goes as AVM+ too.
        let mut call = Command::new("m", 0.0, Vec::new());
        call.command_object = Value::object([("a", Value::Boolean(true))]);
        let payload = call.to_bytes_amf3(&Limits::default());
        assert_eq!(
            payload.as_ref(),
            hex("00 02 0001 6d 00 0000000000000000 11 0a 0b 01 03 61 03 01").as_slice()
        );
    }

    /// Some writers (Red5 2.x) send a type-17 name and transaction id as
    /// AMF3 too: they are read like AMF0 ones.
    #[test]
    fn type_17_name_and_transaction_id_may_be_avmplus() {
        // 00, AVM+ string "sum" (U29 3<<1|1 = 07), AVM+ integer 3, AMF0
        // null, AVM+ integer 2.
        let payload = hex("00 11 06 07 73756d 11 04 03 05 11 04 02");
        let got = Message::decode(&raw(17, payload), &Limits::default()).unwrap();
        assert_eq!(
            got,
            Message::Command(Command::new("sum", 3.0, vec![Value::Number(2.0)]))
        );
        // An AVM+ name that is not a string is a command without a name.
        let payload = hex("00 11 04 03 00 4008000000000000 05");
        assert_eq!(
            Message::decode(&raw(17, payload), &Limits::default()),
            Err(MessageError::WrongType {
                command: "command message",
                field: "name",
                expected: "string"
            })
        );
    }

    /// Type 15: the encoding byte, then AMF0 values of which any may be
    /// AVM+; they come out in the shared model (an anonymous object as an
    /// AMF0 object, an integer as a number, a dense array as a strict
    /// array). A bad AVM+ value and a non-zero encoding byte are errors.
    #[test]
    fn type_15_data_values_decode_into_the_shared_model() {
        let cue = amf3::Value::Object(amf3::Object::anonymous([
            ("at", amf3::Value::Integer(12)),
            (
                "tags",
                amf3::Value::Array(amf3::Array {
                    dense: vec![amf3::Value::string("a")],
                    assoc: Vec::new(),
                }),
            ),
        ]));
        let mut payload = vec![0u8];
        amf0::encode(&Value::string("onCue"), &mut payload);
        amf0::encode(&avmplus(&cue), &mut payload);
        let got = Message::decode(&raw(15, payload.clone()), &Limits::default()).unwrap();
        assert_eq!(
            got,
            Message::Data(DataMessage {
                values: vec![
                    Value::string("onCue"),
                    Value::object([
                        ("at", Value::Number(12.0)),
                        ("tags", Value::StrictArray(vec![Value::string("a")])),
                    ]),
                ]
            })
        );
        // The same body as type 18 is relayed as sent: AVM+ stays.
        let Message::Data(as_18) =
            Message::decode(&raw(18, payload[1..].to_vec()), &Limits::default()).unwrap()
        else {
            panic!("not data")
        };
        assert_eq!(as_18.values[1], avmplus(&cue));
        let mut bad = vec![0u8];
        amf0::encode(
            &Value::Avmplus(Bytes::from_static(&[0x06, 0x03, 0xFF])),
            &mut bad,
        );
        assert_eq!(
            Message::decode(&raw(15, bad), &Limits::default()),
            Err(MessageError::Amf3 {
                what: "data message",
                error: amf3::DecodeError::InvalidUtf8
            })
        );
        payload[0] = 1;
        assert_eq!(
            Message::decode(&raw(15, payload), &Limits::default()),
            Err(MessageError::Amf3Encoding {
                type_id: 15,
                byte: 1
            })
        );
    }

    /// py3amf (like Red5) keeps one set of AMF3 reference tables for all
    /// the AVM+ values of one message, so its second `{k: "v"}` refers to
    /// the traits and strings of the first (bytes from
    /// `pyamf.get_encoder(pyamf.AMF0)` with `use_amf3 = True`, two
    /// `writeElement({'k': 'v'})`; docs/architecture.md, "AMF3 reference
    /// tables"). Refused before the tables were shared per message.
    #[test]
    fn type_17_arguments_may_share_reference_tables() {
        let mut payload = hex("00 02 0001 6d 00 0000000000000000 05");
        payload.extend_from_slice(&hex("110a0b01036b06037601 110a0100060201"));
        let k_v = Value::object([("k", Value::string("v"))]);
        assert_eq!(
            Message::decode(&raw(17, payload), &Limits::default()),
            Ok(Message::Command(Command::new(
                "m",
                0.0,
                vec![k_v.clone(), k_v]
            )))
        );
    }

    /// py3amf's type-15 body (`use_amf3`; `writeElement` of "onText",
    /// `{text: "hi"}` twice, "hi"): the second object uses the first's
    /// traits and strings, the last string a string of the first object.
    #[test]
    fn type_15_values_share_reference_tables() {
        let mut payload = vec![0];
        payload.extend(hex(
            "11060d6f6e54657874 110a0b010974657874060568690111 0a0102060401 110604",
        ));
        let text = Value::object([("text", Value::string("hi"))]);
        assert_eq!(
            Message::decode(&raw(15, payload), &Limits::default()),
            Ok(Message::Data(DataMessage {
                values: vec![
                    Value::string("onText"),
                    text.clone(),
                    text,
                    Value::string("hi")
                ]
            }))
        );
    }

    /// Red5 reads every AVM+ value of a shared-object message with one
    /// AMF3 `Input`: the second change refers to the first's traits and
    /// strings.
    #[test]
    fn type_16_events_share_reference_tables() {
        let change = |key: &str, amf3: &str| {
            let mut body = (key.len() as u16).to_be_bytes().to_vec();
            body.extend_from_slice(key.as_bytes());
            body.push(0x11);
            body.extend(hex(amf3));
            let mut ev = vec![4];
            ev.extend_from_slice(&(body.len() as u32).to_be_bytes());
            ev.extend(body);
            ev
        };
        let mut payload = hex("00 0002 736f 00000001 00000000 00000000");
        payload.extend(change("a", "0a0b01036b06037601"));
        payload.extend(change("b", "0a0100060201"));
        let k_v = Value::object([("k", Value::string("v"))]);
        let Ok(Message::SharedObject(so)) = Message::decode(&raw(16, payload), &Limits::default())
        else {
            panic!("type 16 with shared tables does not decode");
        };
        assert_eq!(
            so.events,
            vec![
                SoEvent::Change {
                    key: String::from("a"),
                    value: k_v.clone()
                },
                SoEvent::Change {
                    key: String::from("b"),
                    value: k_v
                },
            ]
        );
    }

    /// tern writes a body that reads the same with one set of tables per
    /// message (py3amf, Red5, tern) and with fresh tables per value: the
    /// second argument repeats strings within itself, which a per-value
    /// writer would write as references that a shared-table reader
    /// resolves against the first argument's strings (py3amf read
    /// `{a: "x", b: "x"}` after `{k: "v"}` as `{a: "x", b: "v"}`).
    #[test]
    fn type_17_output_reads_the_same_with_shared_or_fresh_tables() {
        let limits = Limits::default();
        let cyclic = Value::Avmplus(Bytes::from_static(&[0x09, 0x03, 0x01, 0x09, 0x00]));
        let sent = Command::new(
            "m",
            0.0,
            vec![
                Value::object([("k", Value::string("v"))]),
                Value::object([("a", Value::string("x")), ("b", Value::string("x"))]),
                cyclic,
            ],
        );
        let payload = sent.to_bytes_amf3(&limits);
        // Shared tables.
        assert_eq!(
            Message::decode(&raw(17, payload.to_vec()), &limits),
            Ok(Message::Command(sent.clone()))
        );
        // Fresh tables per value, for the tree-form values.
        let mut values = amf0::decode_all(&payload[1..], &limits).unwrap();
        for v in &mut values[3..5] {
            amf3::unwrap_avmplus(v, &limits).unwrap();
        }
        assert_eq!(values[3..5], sent.args[..2]);
        // The cyclic value's self-reference is numbered after the two
        // objects before it, as a shared-table reader counts.
        assert_eq!(
            values[5],
            Value::Avmplus(Bytes::from_static(&[0x09, 0x03, 0x01, 0x09, 0x04]))
        );
    }

    /// The copies made for an AVM+ value's references count their depth
    /// from where the value sits in the AMF0 body, as the AMF0 decoder
    /// counted the value itself: what tern accepts, its type-17 form
    /// included, stays within `amf0_max_depth`. The argument is an AMF0
    /// array holding `[A = [[null]], [ref A]]` in AMF3: 4 levels as sent
    /// (AMF0 array, outer, A, A's array), 5 once B holds a copy of A.
    #[test]
    fn copies_for_references_count_depth_from_where_the_value_sits() {
        let payload = hex("00 02 0004 74657374 00 0000000000000000 05 \
             0A 00000001 11 090501 09030109030101 0903010902");
        let at = |depth| Limits {
            amf0_max_depth: depth,
            ..Limits::default()
        };
        // Refused where the copy would pass the bound; before, it was
        // accepted at depth 4 and its own type-17 form was refused.
        assert_eq!(
            Message::decode(&raw(17, payload.clone()), &at(4)),
            Err(MessageError::Amf3 {
                what: "command argument",
                error: amf3::DecodeError::TooDeep { max: 4 }
            })
        );
        let Ok(Message::Command(c)) = Message::decode(&raw(17, payload), &at(5)) else {
            panic!("the argument fits 5 levels");
        };
        let copy = Value::StrictArray(vec![Value::StrictArray(vec![Value::Null])]);
        assert_eq!(
            c.args,
            vec![Value::StrictArray(vec![Value::StrictArray(vec![
                copy.clone(),
                Value::StrictArray(vec![copy]),
            ])])]
        );
        let p17 = c.to_bytes_amf3(&at(5));
        assert_eq!(
            Message::decode(&raw(17, p17.to_vec()), &at(5)),
            Ok(Message::Command(c))
        );
    }

    /// A value that contains itself has no tree form and is carried as
    /// AMF3 bytes that must stand alone; one that also refers to an object
    /// of an earlier value cannot, and is refused.
    #[test]
    fn later_cyclic_values_are_carried_alone_or_refused() {
        let limits = Limits::default();
        let mut head = hex("00 02 0001 6d 00 0000000000000000 05 11 090101");
        head.extend(hex("11 09030109 02"));
        let Ok(Message::Command(c)) = Message::decode(&raw(17, head), &limits) else {
            panic!("a later self-contained cycle decodes");
        };
        assert_eq!(
            c.args[1],
            Value::Avmplus(Bytes::from_static(&[0x09, 0x03, 0x01, 0x09, 0x00]))
        );
        let mut payload = hex("00 02 0001 6d 00 0000000000000000 05 11 090101");
        payload.extend(hex("11 0905010902 0900"));
        assert_eq!(
            Message::decode(&raw(17, payload), &limits),
            Err(MessageError::Amf3 {
                what: "command argument",
                error: amf3::DecodeError::CyclicReference(1)
            })
        );
    }

    /// The type-19 form of several AMF3-only values (an AMF0 client's
    /// sync) reads right with one set of AMF3 tables for the message, as
    /// Flash's and Red5's AMF0 readers keep: the second typed object
    /// repeats a string of its own, which written with fresh tables would
    /// be a reference to the first object's "hi".
    #[test]
    fn type_19_output_with_several_avmplus_values_reads_right_with_shared_tables() {
        let limits = Limits::default();
        let point = |x: &str, y: &str| {
            amf3::to_amf0(&amf3::Value::Object(amf3::Object {
                class_name: String::from("P"),
                sealed: vec![
                    (String::from("x"), amf3::Value::string(x)),
                    (String::from("y"), amf3::Value::string(y)),
                ],
                dynamic: None,
            }))
        };
        let sent = SharedObjectMessage {
            name: String::from("so"),
            version: 1,
            persistent: false,
            events: vec![
                SoEvent::Change {
                    key: String::from("a"),
                    value: point("a", "hi"),
                },
                SoEvent::Change {
                    key: String::from("b"),
                    value: point("zz", "zz"),
                },
            ],
        };
        let Ok(Message::SharedObject(got)) =
            Message::decode(&raw(19, sent.to_bytes().to_vec()), &limits)
        else {
            panic!("type 19 does not decode");
        };
        let meaning = |m: &SharedObjectMessage| -> Vec<amf3::Value> {
            m.events
                .iter()
                .map(|ev| match ev {
                    SoEvent::Change { value, .. } => amf3::from_amf0(value, &limits).unwrap(),
                    other => panic!("{other:?}"),
                })
                .collect()
        };
        assert_eq!(meaning(&got), meaning(&sent));
    }
}
