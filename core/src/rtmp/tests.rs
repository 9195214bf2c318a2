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
