//! Whole-session tests: a client and a server connection (and the hub)
//! driven against each other in virtual time; the rendered trace is an
//! `insta` snapshot, so any change on the wire shows up in review.

use crate::amf0::Value;
use crate::hub::{HubConfig, MediaKind};
use crate::rtmp::ClientEvent;
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

#[test]
fn the_shared_encoding_is_what_an_open_connection_sends() {
    use crate::hub::Delivery;
    use crate::session::SharedEncoding;
    use crate::testing::so_change_delivery as update;
    let mut h = Harness::new(HubConfig::default());
    let c = h.connect("chat");
    h.drive();
    let now = h.now;
    let server = &mut h.peers[c].server;
    while server.poll_transmit().is_some() {}
    let encoding = server.shared_encoding();
    let SharedEncoding::Rtmp { out_chunk_size } = encoding else {
        panic!("an open connection has a shared encoding: {encoding:?}");
    };
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
