//! Encode once per protocol: the hub builds each encoding only for the
//! encoders its subscribers actually bring, once per distinct encoder
//! (counted with [`Hub::encodings`], not timed).

use crate::amf0::Value;
use crate::hub::{
    ConnId, ConnectRequest, Delivery, Encoder, Hub, HubConfig, MediaKind, Protocol, Request,
    SoChange, SoOp,
};
use crate::time::Instant;
use alloc::vec;
use alloc::vec::Vec;
use bytes::Bytes;

const NOW: Instant = Instant::from_millis(1_000);

fn rtmp() -> Encoder {
    crate::rtmp::notices_encoder()
}

fn json() -> Encoder {
    crate::ws::fanout::notices_encoder()
}

/// Connects `conn` to "chat/room" with `notices` and uses SO "board".
fn join(hub: &mut Hub, conn: u64, protocol: Protocol, notices: Option<Encoder>) {
    let id = ConnId(conn);
    hub.handle(
        NOW,
        id,
        Request::Connect(ConnectRequest {
            protocol,
            target: "chat/room".into(),
            params: Value::Null,
            args: Vec::new(),
            address: None,
            notices,
        }),
    );
    hub.handle(NOW, id, so(SoOp::Use));
}

fn so(op: SoOp) -> Request {
    Request::SharedObject {
        name: "board".into(),
        persistent: false,
        op,
    }
}

fn set(hub: &mut Hub, conn: u64, value: &str) {
    let change = SoChange::Set {
        key: "k".into(),
        value: Value::string(value),
    };
    hub.handle(NOW, ConnId(conn), so(SoOp::Batch(vec![change])));
}

/// Every notice delivery queued for `conn`, emptied.
fn notices(hub: &mut Hub, conn: u64) -> Vec<Bytes> {
    let mut got = Vec::new();
    while let Some(d) = hub.poll_delivery(ConnId(conn)) {
        if let Delivery::SharedObject(so) = d {
            got.push(so.encoded);
        }
    }
    got
}

#[test]
fn a_room_of_rtmp_clients_builds_no_json_and_one_chunk_per_update() {
    let mut hub = Hub::new(HubConfig::default());
    for conn in 1..=5 {
        join(&mut hub, conn, crate::rtmp::PROTOCOL, Some(rtmp()));
    }
    let before = hub.encodings().of("rtmp");
    set(&mut hub, 1, "hello");
    // The writer's ack and the others' change: two updates, one encoding
    // each, however many subscribers.
    assert_eq!(hub.encodings().of("rtmp") - before, 2);
    assert_eq!(hub.encodings().of("ws-json"), 0, "no WebSocket encoding");
    let mut changes: Vec<Bytes> = (2..=5)
        .map(|c| notices(&mut hub, c).pop().unwrap())
        .collect();
    let first = changes.pop().unwrap();
    for other in changes {
        assert_eq!(other.as_ptr(), first.as_ptr(), "the same shared bytes");
    }
}

#[test]
fn a_room_of_json_clients_builds_no_rtmp_chunks() {
    let mut hub = Hub::new(HubConfig::default());
    for conn in 1..=5 {
        join(&mut hub, conn, crate::ws::PROTOCOL, Some(json()));
    }
    // Chat-mode clients bring no encoder: they cost no encoding either.
    join(&mut hub, 6, crate::ws::PROTOCOL, None);
    let before = hub.encodings().of("ws-json");
    set(&mut hub, 1, "hello");
    assert_eq!(hub.encodings().of("ws-json") - before, 2);
    assert_eq!(hub.encodings().of("rtmp"), 0, "no RTMP encoding");
    assert!(
        notices(&mut hub, 6).iter().all(Bytes::is_empty),
        "the chat client renders its own lines"
    );
}

#[test]
fn a_mixed_room_builds_one_encoding_per_protocol_per_update() {
    let mut hub = Hub::new(HubConfig::default());
    join(&mut hub, 1, crate::rtmp::PROTOCOL, Some(rtmp()));
    for conn in 2..=4 {
        join(&mut hub, conn, crate::rtmp::PROTOCOL, Some(rtmp()));
        join(&mut hub, conn + 10, crate::ws::PROTOCOL, Some(json()));
    }
    let (rtmp_before, json_before) = (hub.encodings().of("rtmp"), hub.encodings().of("ws-json"));
    set(&mut hub, 1, "hello");
    // The RTMP writer's ack (rtmp), the change for others (rtmp and JSON).
    assert_eq!(hub.encodings().of("rtmp") - rtmp_before, 2);
    assert_eq!(hub.encodings().of("ws-json") - json_before, 1);
    let rtmp_change = notices(&mut hub, 2).pop().unwrap();
    let json_change = notices(&mut hub, 12).pop().unwrap();
    assert_ne!(rtmp_change, json_change, "each protocol its own bytes");
    assert_eq!(json_change.first(), Some(&0x81), "a text frame");
}

#[test]
fn media_is_encoded_once_per_distinct_player_encoder_and_never_as_json() {
    let mut hub = Hub::new(HubConfig::default());
    join(&mut hub, 1, crate::rtmp::PROTOCOL, Some(rtmp()));
    hub.handle(
        NOW,
        ConnId(1),
        Request::Publish {
            stream: 1,
            name: "cam".into(),
        },
    );
    // Ten players on one encoder, two on another chunk size.
    for (conn, chunk_size) in (2..=11).map(|c| (c, 4096)).chain([(12, 128), (13, 128)]) {
        join(&mut hub, conn, crate::rtmp::PROTOCOL, Some(rtmp()));
        hub.handle(
            NOW,
            ConnId(conn),
            Request::Play {
                stream: 1,
                name: "cam".into(),
                start: -2.0,
                encoder: crate::rtmp::media_encoder(chunk_size, 1),
            },
        );
    }
    // WebSocket clients in the room do not play: still no JSON.
    join(&mut hub, 20, crate::ws::PROTOCOL, Some(json()));
    let json_before = hub.encodings().of("ws-json");
    let before = hub.encodings().of("rtmp");
    hub.handle(
        NOW,
        ConnId(1),
        Request::Media {
            stream: 1,
            kind: MediaKind::Video,
            timestamp: 40,
            payload: Bytes::from_static(&[0x17, 1, 0, 0, 0, 1, 2, 3]),
        },
    );
    assert_eq!(hub.encodings().of("rtmp") - before, 2, "two encoders");
    assert_eq!(hub.encodings().of("ws-json"), json_before);
}
