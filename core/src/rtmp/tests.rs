//! Whole-session tests: a client and a server connection (and the hub)
//! driven against each other in virtual time; the rendered trace is an
//! `insta` snapshot, so any change on the wire shows up in review.

use crate::Limits;
use crate::amf0::Value;
use crate::hub::{HubConfig, MediaKind};
use crate::message::{SharedObjectMessage, SoEvent};
use crate::rtmp::{ClientConfig, ClientEvent, RtmpError};
use crate::testing::Harness;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;
use bytes::Bytes;

fn metadata() -> Bytes {
    let mut out = Vec::new();
    for v in [
        Value::string("@setDataFrame"),
        Value::string("onMetaData"),
        Value::EcmaArray {
            count: 3,
            properties: vec![
                ("width".into(), Value::Number(640.0)),
                ("height".into(), Value::Number(360.0)),
                ("videocodecid".into(), Value::Number(7.0)),
            ],
        },
    ] {
        crate::amf0::encode(&v, &mut out);
    }
    Bytes::from(out)
}

#[test]
fn whole_session_trace() {
    let mut h = Harness::new(HubConfig::default());
    h.capture = true;
    let c = h.connect("live");
    let stream = h.create_stream(c);
    h.peers[c].client.publish(stream, "cam").unwrap();
    h.drive();
    let client = &mut h.peers[c].client;
    client
        .send_media(stream, MediaKind::Data, 0, metadata())
        .unwrap();
    client
        .send_media(
            stream,
            MediaKind::Video,
            0,
            Bytes::from_static(&[0x17, 0, 0, 0, 0, 1, 0x64, 0, 0x1f]),
        )
        .unwrap();
    client
        .send_media(
            stream,
            MediaKind::Audio,
            0,
            Bytes::from_static(&[0xAF, 0, 0x12, 0x10]),
        )
        .unwrap();
    client
        .send_media(
            stream,
            MediaKind::Video,
            0,
            Bytes::from([0x17u8, 1, 0, 0, 0].repeat(60)),
        )
        .unwrap();
    client
        .send_media(
            stream,
            MediaKind::Audio,
            23,
            Bytes::from_static(&[0xAF, 1, 0x21, 0x10, 0x04]),
        )
        .unwrap();
    client
        .send_media(
            stream,
            MediaKind::Video,
            40,
            Bytes::from_static(&[0x27, 1, 0, 0, 0x50, 0xAB]),
        )
        .unwrap();
    h.drive();
    let client = &mut h.peers[c].client;
    client.so_use("chat", false).unwrap();
    client
        .so_set("chat", false, vec![("message".into(), Value::string("hi"))])
        .unwrap();
    client
        .so_send("chat", false, "messageTransmit", vec![Value::string("hi")])
        .unwrap();
    client.call("whoami", vec![], true).unwrap();
    h.drive();
    let events: Vec<String> = h
        .take(c)
        .iter()
        .filter_map(|e| match e {
            ClientEvent::Status { code, .. } => Some(code.clone()),
            ClientEvent::Error { info, .. } => Some(crate::trace::render_value(info)),
            ClientEvent::SharedObject(m) => {
                Some(alloc::format!("so v{} {:?}", m.version, m.events))
            }
            _ => None,
        })
        .collect();
    assert!(
        events
            .iter()
            .any(|e| e.contains("Method not found (whoami)")),
        "{events:?}"
    );
    insta::assert_snapshot!(h.trace(true).join("\n"));
}

#[test]
fn multi_client_shared_object_trace() {
    let mut h = Harness::new(HubConfig::default());
    h.capture = true;
    let [a, b, c] = [0, 1, 2].map(|_| h.connect("chat/room1"));
    for i in [a, b, c] {
        h.peers[i].client.so_use("chat", false).unwrap();
        h.drive();
    }
    h.peers[a]
        .client
        .so_set(
            "chat",
            false,
            vec![("message".into(), Value::string("hello"))],
        )
        .unwrap();
    h.drive();
    h.peers[b]
        .client
        .so_set(
            "chat",
            false,
            vec![("message".into(), Value::string("hello"))],
        )
        .unwrap();
    h.drive();
    h.peers[c]
        .client
        .so_delete("chat", false, "message")
        .unwrap();
    h.drive();
    h.peers[b]
        .client
        .so_send("chat", false, "messageTransmit", vec![Value::string("bye")])
        .unwrap();
    h.drive();
    h.peers[a].client.so_release("chat", false).unwrap();
    h.drive();
    h.peers[c]
        .client
        .so_set(
            "chat",
            false,
            vec![("topic".into(), Value::string("after a left"))],
        )
        .unwrap();
    h.drive();
    let lines: Vec<String> = h
        .trace(false)
        .into_iter()
        .filter(|l| l.contains("shared-object"))
        .collect();
    insta::assert_snapshot!(lines.join("\n"));
    let _ = String::new().to_string();
}

/// A client with `raw_shared_objects` is told the same shared-object
/// messages as one without, as payloads whose view decodes to them.
#[test]
fn raw_shared_objects_are_the_decoded_messages_undecoded() {
    use crate::message::SharedObjectView;
    let mut h = Harness::new(HubConfig::default());
    let decoded = h.connect("chat/room1");
    let mut config = ClientConfig::new("chat/room1", "rtmp://localhost/chat/room1");
    config.raw_shared_objects = true;
    let raw = h.connect_with(config);
    for i in [decoded, raw] {
        h.peers[i].client.so_use("chat", false).unwrap();
        h.drive();
    }
    h.peers[decoded]
        .client
        .so_set("chat", false, vec![("m".into(), Value::string("hello"))])
        .unwrap();
    h.drive();
    h.peers[decoded]
        .client
        .so_send("chat", false, "say", vec![Value::Number(1.0)])
        .unwrap();
    h.drive();
    let limits = Limits::default();
    let viewed: Vec<SharedObjectMessage> = h
        .take(raw)
        .into_iter()
        .filter_map(|e| match e {
            ClientEvent::SharedObjectPayload(p) => Some(
                SharedObjectView::parse(&p)
                    .and_then(|v| v.to_message(&limits))
                    .unwrap(),
            ),
            ClientEvent::SharedObject(m) => panic!("decoded despite raw_shared_objects: {m:?}"),
            _ => None,
        })
        .collect();
    let sent: Vec<SharedObjectMessage> = h
        .take(decoded)
        .into_iter()
        .filter_map(|e| match e {
            ClientEvent::SharedObject(m) => Some(m),
            _ => None,
        })
        .collect();
    // use success + sync, the change, the message; the writer's own copy
    // differs only in its success event, so compare what both got.
    assert_eq!(viewed.len(), 3, "{viewed:?}");
    assert_eq!(viewed.last(), sent.last());
    assert!(viewed.iter().any(|m| m.events.contains(&SoEvent::Change {
        key: "m".into(),
        value: Value::string("hello")
    })));
}

/// A malformed shared-object message fails a raw client as it fails a
/// decoding one: framing is checked before the payload is handed on.
#[test]
fn a_raw_client_rejects_bad_shared_object_framing() {
    use crate::chunk::{RawMessage, encode_standalone};
    use bytes::BytesMut;
    let mut config = ClientConfig::new("chat", "rtmp://localhost/chat");
    config.raw_shared_objects = true;
    let mut h = Harness::new(HubConfig::default());
    let c = h.connect_with(config);
    // An event of type 12 (undefined) in an otherwise valid message.
    let mut payload = alloc::vec::Vec::new();
    payload.extend_from_slice(&[0, 4, b'c', b'h', b'a', b't']);
    payload.extend_from_slice(&[0; 12]);
    payload.extend_from_slice(&[12, 0, 0, 0, 0]);
    let mut chunks = BytesMut::new();
    let message = RawMessage {
        csid: 3,
        timestamp: 0,
        type_id: 19,
        stream_id: 0,
        payload: Bytes::from(payload),
    };
    encode_standalone(&message, 4096, &mut chunks).unwrap();
    let client = &mut h.peers[c].client;
    let error = client.handle_input(h.now, &chunks).unwrap_err();
    assert_eq!(
        error,
        RtmpError::Message(crate::message::MessageError::UnknownSoEvent(12))
    );
    while let Some(event) = client.poll_event() {
        assert!(
            !matches!(event, ClientEvent::SharedObjectPayload(_)),
            "the bad message was handed on"
        );
    }
}

#[test]
fn the_shared_encoding_is_what_an_open_connection_sends() {
    use crate::connection::SharedEncoding;
    use crate::hub::Delivery;
    let update = |len| crate::testing::so_change_delivery(len, crate::rtmp::notices_encoder());
    let mut h = Harness::new(HubConfig::default());
    let c = h.connect("chat");
    h.drive();
    let now = h.now;
    let server = &mut h.peers[c].server;
    while server.poll_transmit().is_some() {}
    let encoding = server.shared_encoding();
    let SharedEncoding::Shared { max_len } = encoding else {
        panic!("an open connection has a shared encoding: {encoding:?}");
    };
    let out_chunk_size = server.out_chunk_size();
    assert_eq!(
        max_len,
        crate::rtmp::fanout::shared_notice_max_len(out_chunk_size)
    );
    let fits = update(100);
    let shared = crate::testing::shared_bytes(encoding, &fits);
    server.handle_delivery(now, fits);
    let mut sent = Vec::new();
    while let Some(b) = server.poll_transmit() {
        sent.extend_from_slice(&b);
    }
    assert_eq!(sent, shared);
    // Past one chunk the connection chunks the payload itself.
    assert_eq!(encoding.bytes(&update(out_chunk_size as usize)), None);
    server.handle_delivery(
        now,
        Delivery::Close {
            reason: "bye".into(),
        },
    );
    assert_eq!(server.shared_encoding(), SharedEncoding::None);
}

/// An AMF3 client (objectEncoding 3) is answered with objectEncoding 3 and
/// exchanges values with an AMF0 client through the shared model: its AVM+
/// integer arrives as an AMF0 number, the AMF0 client's object arrives
/// back to it unchanged (through its type-16 notice encoding).
#[test]
fn an_amf3_client_is_answered_in_amf3() {
    use crate::connection::SharedEncoding;
    let mut h = Harness::new(HubConfig::default());
    let mut config = ClientConfig::new("chat", "rtmp://localhost/chat");
    config.amf3 = true;
    let flash = h.connect_with(config);
    let plain = h.connect("chat");
    h.drive();
    let info = h.take(flash).into_iter().find_map(|e| match e {
        ClientEvent::Connected { info } => Some(info),
        _ => None,
    });
    assert_eq!(
        info.as_ref().and_then(|i| i.get("objectEncoding")),
        Some(&Value::Number(3.0))
    );
    for i in [flash, plain] {
        assert!(matches!(
            h.peers[i].server.shared_encoding(),
            SharedEncoding::Shared { .. }
        ));
    }
    for i in [flash, plain] {
        h.peers[i].client.so_use("s", false).unwrap();
        h.drive();
        h.take(i);
    }
    let mut int = Vec::new();
    crate::amf3::encode(&crate::amf3::Value::Integer(42), &mut int);
    h.peers[flash]
        .client
        .so_set(
            "s",
            false,
            vec![("n".into(), Value::Avmplus(Bytes::from(int)))],
        )
        .unwrap();
    h.drive();
    let changes = |events: Vec<ClientEvent>| -> Vec<SoEvent> {
        events
            .into_iter()
            .filter_map(|e| match e {
                ClientEvent::SharedObject(m) => Some(m.events),
                _ => None,
            })
            .flatten()
            .filter(|e| matches!(e, SoEvent::Change { .. }))
            .collect()
    };
    assert_eq!(
        changes(h.take(plain)),
        vec![SoEvent::Change {
            key: "n".into(),
            value: Value::Number(42.0)
        }]
    );
    let object = Value::object([("k", Value::string("v"))]);
    h.peers[plain]
        .client
        .so_set("s", false, vec![("o".into(), object.clone())])
        .unwrap();
    h.drive();
    assert_eq!(
        changes(h.take(flash)),
        vec![SoEvent::Change {
            key: "o".into(),
            value: object
        }]
    );
}

/// The data an AMF3 (Flash) publisher sends with `NetStream.send("onCue",
/// {name: "intro", at: 12, tags: ["a", "b"]})`: the handler name as an
/// AMF0 string, the argument as one AVM+ value.
fn amf3_cue() -> Bytes {
    use crate::amf3;
    let cue = amf3::Value::Object(amf3::Object::anonymous([
        ("name", amf3::Value::String("intro".into())),
        ("at", amf3::Value::Integer(12)),
        (
            "tags",
            amf3::Value::Array(amf3::Array {
                dense: vec![
                    amf3::Value::String("a".into()),
                    amf3::Value::String("b".into()),
                ],
                assoc: Vec::new(),
            }),
        ),
    ]));
    let mut avm = Vec::new();
    amf3::encode(&cue, &mut avm);
    let mut out = Vec::new();
    crate::amf0::encode(&Value::string("onCue"), &mut out);
    crate::amf0::encode(&Value::Avmplus(Bytes::from(avm)), &mut out);
    Bytes::from(out)
}

/// The cue of [`amf3_cue`] in the shared model, as an AMF0 publisher sends it.
fn amf0_cue() -> Vec<Value> {
    vec![
        Value::string("onCue"),
        Value::object([
            ("name", Value::string("intro")),
            ("at", Value::Number(12.0)),
            (
                "tags",
                Value::StrictArray(vec![Value::string("a"), Value::string("b")]),
            ),
        ]),
    ]
}

/// The data messages `events` carry, decoded (AMF0 values).
fn data_values(events: &[ClientEvent]) -> Vec<Vec<Value>> {
    events
        .iter()
        .filter_map(|e| match e {
            ClientEvent::Media {
                kind: MediaKind::Data,
                payload,
                ..
            } => Some(crate::amf0::decode_all(payload, &Limits::default()).expect("data")),
            _ => None,
        })
        .collect()
}

/// An objectEncoding-3 session: the connect reply is type 20 AMF0 (with
/// objectEncoding 3), every later command the server sends (createStream's
/// `_result`, `onStatus`, `_error`) is type 17 with its arguments as AVM+
/// values, and data reaches AMF3 players as type 15 and AMF0 players as
/// type 18. An AMF3 publisher's type-15 data with an AVM+ object reaches
/// both as the AMF0 object (the shared model); type-17 commands from the
/// client are understood. The trace is a snapshot; the AMF0 sessions'
/// snapshots above stay as they were.
#[test]
fn amf3_session_trace() {
    let mut h = Harness::new(HubConfig::default());
    h.capture = true;
    let amf3 = || {
        let mut config = ClientConfig::new("live", "rtmp://localhost/live");
        config.amf3 = true;
        config
    };
    let publisher = h.connect_with(amf3());
    let flash = h.connect_with(amf3());
    let plain = h.connect("live");
    h.drive();
    for i in [publisher, flash, plain] {
        let events = h.take(i);
        let info = events.iter().find_map(|e| match e {
            ClientEvent::Connected { info } => Some(info.clone()),
            _ => None,
        });
        let encoding = if i == plain { 0.0 } else { 3.0 };
        assert_eq!(
            info.as_ref().and_then(|i| i.get("objectEncoding")),
            Some(&Value::Number(encoding)),
            "client {i}: {events:?}"
        );
        // The connect reply is the only command so far, and it is AMF0.
        assert_eq!(h.peers[i].client.received_messages(20), 1);
        assert_eq!(h.peers[i].client.received_messages(17), 0);
    }
    let stream = h.create_stream(publisher);
    h.peers[publisher].client.publish(stream, "cam").unwrap();
    h.drive();
    let published = h.take(publisher).into_iter().any(
        |e| matches!(e, ClientEvent::Status { ref code, .. } if code == "NetStream.Publish.Start"),
    );
    assert!(published, "the type-17 publish was understood");
    for i in [flash, plain] {
        let s = h.create_stream(i);
        h.peers[i].client.play(s, "cam", -2.0).unwrap();
    }
    h.drive();
    for i in [flash, plain] {
        let started = h.take(i).into_iter().any(
            |e| matches!(e, ClientEvent::Status { ref code, .. } if code == "NetStream.Play.Start"),
        );
        assert!(started, "client {i} plays");
    }
    let client = &mut h.peers[publisher].client;
    client
        .send_media(stream, MediaKind::Data, 0, metadata())
        .unwrap();
    client
        .send_media(
            stream,
            MediaKind::Video,
            0,
            Bytes::from_static(&[0x17, 0, 0, 0, 0, 1, 0x64, 0, 0x1f]),
        )
        .unwrap();
    client
        .send_media(stream, MediaKind::Data, 10, amf3_cue())
        .unwrap();
    h.drive();
    let mut cue = amf0_cue();
    let expected = |cue: &[Value]| {
        vec![
            vec![
                Value::string("onMetaData"),
                crate::amf0::decode_all(&metadata(), &Limits::default()).unwrap()[2].clone(),
            ],
            cue.to_vec(),
        ]
    };
    // Both players read the same values, whatever form they came in.
    let flash_events = h.take(flash);
    let plain_events = h.take(plain);
    assert_eq!(data_values(&plain_events), expected(&cue));
    assert_eq!(data_values(&flash_events), expected(&cue));
    // And back: an AMF0 publisher's object reaches the AMF3 player as is.
    let plain_stream = h.create_stream(plain);
    h.peers[plain].client.publish(plain_stream, "desk").unwrap();
    h.drive();
    let flash_stream = h.create_stream(flash);
    h.peers[flash]
        .client
        .play(flash_stream, "desk", -2.0)
        .unwrap();
    h.drive();
    h.take(flash);
    cue[1] = Value::object([("from", Value::string("amf0")), ("n", Value::Number(1.5))]);
    let mut body = Vec::new();
    for v in &cue {
        crate::amf0::encode(v, &mut body);
    }
    h.peers[plain]
        .client
        .send_media(plain_stream, MediaKind::Data, 0, Bytes::from(body))
        .unwrap();
    // An unknown call is answered `_error`, as type 17 to the AMF3 client.
    h.peers[flash].client.call("whoami", vec![], true).unwrap();
    h.drive();
    let flash_events = h.take(flash);
    assert_eq!(data_values(&flash_events), vec![cue.clone()]);
    let error = flash_events.iter().find_map(|e| match e {
        ClientEvent::Error { info, .. } => info.get("code").cloned(),
        _ => None,
    });
    assert_eq!(error, Some(Value::string("NetConnection.Call.Failed")));
    for (i, data_type, other_type) in [(flash, 15, 18), (plain, 18, 15)] {
        let client = &h.peers[i].client;
        assert_eq!(client.received_messages(other_type), 0, "client {i}");
        assert!(client.received_messages(data_type) >= 2, "client {i}");
    }
    // Every command after the connect reply went to the AMF3 clients as
    // type 17 (createStream, onStatus, _error), to the AMF0 one as type 20.
    for i in [publisher, flash] {
        assert_eq!(h.peers[i].client.received_messages(20), 1, "client {i}");
        assert!(h.peers[i].client.received_messages(17) >= 2, "client {i}");
    }
    assert_eq!(h.peers[plain].client.received_messages(17), 0);
    insta::assert_snapshot!(h.trace(false).join("\n"));
}
