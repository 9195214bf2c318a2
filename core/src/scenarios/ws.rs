//! WebSocket and RTMP clients on one hub, driven by the one harness.

use crate::amf0::Value;
use crate::connection::CloseReason;
use crate::hub::HubConfig;
use crate::message::SoEvent;
use crate::rtmp::ClientEvent;
use crate::testing::Harness;
use alloc::vec;
use alloc::vec::Vec;
use serde_json::{Value as Json, json};

fn close_code_of(frame: &(u8, Vec<u8>)) -> u16 {
    assert_eq!(frame.0, 8, "not a close frame");
    u16::from_be_bytes([frame.1[0], frame.1[1]])
}

fn rtmp_changes(events: &[ClientEvent], key: &str) -> Vec<Value> {
    events
        .iter()
        .filter_map(|e| match e {
            ClientEvent::SharedObject(m) if m.name == "chat" => Some(m.events.clone()),
            _ => None,
        })
        .flatten()
        .filter_map(|e| match e {
            SoEvent::Change { key: k, value } if k == key => Some(value),
            _ => None,
        })
        .collect()
}

#[test]
fn websocket_and_rtmp_share_a_shared_object() {
    let mut h = Harness::new(HubConfig::default());
    let r = h.connect("chat/room1");
    h.peers[r].client.so_use("chat", false).unwrap();
    let ws = h.connect_ws("/chat/room1", None);
    assert_eq!(
        h.ws[ws].take_json(),
        vec![json!({"op":"welcome","scope":"/chat/room1"})]
    );
    h.ws[ws].send_text(r#"{"op":"use","so":"chat"}"#);
    h.drive();
    let sync = h.ws[ws].take_json();
    assert_eq!(sync.len(), 1);
    assert_eq!(sync[0]["op"], "sync");
    assert_eq!(sync[0]["data"], json!({}));
    let _ = h.take(r);

    // RTMP set → WS change, exactly once.
    h.peers[r]
        .client
        .so_set(
            "chat",
            false,
            vec![("message".into(), Value::string("from rtmp"))],
        )
        .unwrap();
    h.drive();
    let got = h.ws[ws].take_json();
    assert_eq!(
        got,
        vec![json!({"op":"change","so":"chat","version":1,"key":"message","value":"from rtmp"})]
    );
    assert!(
        rtmp_changes(&h.take(r), "message").is_empty(),
        "RTMP setter gets success only"
    );

    // WS set → RTMP change, exactly once; the WS setter gets its ack.
    h.ws[ws].send_text(r#"{"op":"set","so":"chat","key":"message","value":"from ws"}"#);
    h.drive();
    assert_eq!(
        h.ws[ws].take_json(),
        vec![json!({"op":"ack","so":"chat","version":2,"key":"message"})]
    );
    assert_eq!(
        rtmp_changes(&h.take(r), "message"),
        vec![Value::string("from ws")]
    );

    // WS send → both get the message.
    h.ws[ws].send_text(r#"{"op":"send","so":"chat","method":"hi","args":[1]}"#);
    h.drive();
    assert_eq!(
        h.ws[ws].take_json(),
        vec![json!({"op":"message","so":"chat","version":2,"method":"hi","args":[1]})]
    );
    let rtmp_messages = h
        .take(r)
        .iter()
        .filter(|e| matches!(e, ClientEvent::SharedObject(m) if m.events.iter().any(|e| matches!(e, SoEvent::SendMessage { .. }))))
        .count();
    assert_eq!(rtmp_messages, 1);
}

#[test]
fn chat_mode_clients_and_rtmp_through_the_hub() {
    let mut h = Harness::new(HubConfig::default());
    let r = h.connect("chat/room1");
    h.peers[r].client.so_use("chat", false).unwrap();
    let a = h.connect_ws("/chat/room1", Some("chat"));
    let b = h.connect_ws("/chat?scope=room1", Some("chat"));
    assert!(h.ws[a].client.received.is_empty() && h.ws[b].client.received.is_empty());
    let _ = h.take(r);

    h.ws[a].send_text("hello from a\n");
    h.drive();
    assert!(h.ws[a].client.received.is_empty(), "own line not echoed");
    assert_eq!(h.ws[b].client.received, vec![(1, b"hello from a".to_vec())]);
    assert_eq!(
        rtmp_changes(&h.take(r), "message"),
        vec![Value::string("hello from a")]
    );
    h.ws[b].client.received.clear();

    // The same line again still reaches everyone (changes are never elided).
    h.ws[a].send_text("hello from a");
    h.drive();
    assert_eq!(h.ws[b].client.received, vec![(1, b"hello from a".to_vec())]);
    assert_eq!(rtmp_changes(&h.take(r), "message").len(), 1);
    h.ws[b].client.received.clear();

    h.peers[r]
        .client
        .so_set(
            "chat",
            false,
            vec![("message".into(), Value::string("rtmp says"))],
        )
        .unwrap();
    h.drive();
    assert_eq!(h.ws[a].client.received, vec![(1, b"rtmp says".to_vec())]);
    assert_eq!(h.ws[b].client.received, vec![(1, b"rtmp says".to_vec())]);
}

#[test]
fn rejected_websocket_connect() {
    let mut h = Harness::new(HubConfig::default());
    let ws = h.connect_ws("/unknown-app", None);
    let ws = &h.ws[ws];
    assert!(ws.closed);
    assert_eq!(ws.client.received.len(), 2);
    let err: Json = serde_json::from_slice(&ws.client.received[0].1).unwrap();
    assert_eq!(err["op"], "error");
    assert_eq!(err["code"], "NetConnection.Connect.InvalidApp");
    assert_eq!(close_code_of(&ws.client.received[1]), 1008);
    assert!(matches!(
        ws.server.close_reason(),
        Some(CloseReason::Rejected { .. })
    ));
}
