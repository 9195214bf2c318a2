//! AMF3 shared objects end to end through `tern`: an objectEncoding-3
//! RTMP client (the core client with `amf3`, which sends type-16 messages
//! whose values are AVM+ AMF3 values, as ActionScript 3 does), an AMF0 RTMP
//! client and a WebSocket (JSON) client use one shared object; every value
//! set by one reaches the others as the same value in their own encoding,
//! and a persistent object keeps AMF3-only values across a restart.

use bytes::Bytes;
use serde_json::{Value as Json, json};
use std::time::Duration;
use tern_core::Limits;
use tern_core::amf0;
use tern_core::amf3::{self, Array, Object, Value, Vector};
use tern_core::message::{SharedObjectView, SoEvent, so_event_type};
use tern_core::rtmp::ClientEvent;
use tern_tests::rtmp::RtmpClient;
use tern_tests::ws::WsClient;
use tern_tests::{Server, ServerOptions};

const SECS: fn(u64) -> Duration = Duration::from_secs;
const SO: &str = "board";
/// 2026-12-06T10:00:00.123Z
const DATE_MS: f64 = 1_796_551_200_123.0;

async fn amf3_client(server: &Server, name: &str) -> RtmpClient {
    RtmpClient::connect_with(name, server.rtmp_addr(), "chat/room1", |c| {
        c.amf3 = true;
        c.raw_shared_objects = true;
    })
    .await
}

/// The AMF3 changes (key, resolved value) in the next shared-object
/// payloads of an AMF3 client, until `count` changes (use-success and
/// acks skipped). Every value must be one AVM+ value.
async fn amf3_changes(client: &mut RtmpClient, count: usize) -> Vec<(String, Value)> {
    let mut changes = Vec::new();
    while changes.len() < count {
        let payload = match client.next_event(SECS(10)).await {
            Some(ClientEvent::SharedObjectPayload(p)) => p,
            Some(_) => continue,
            None => panic!(
                "AMF3 client: {} of {count} changes: {changes:?}",
                changes.len()
            ),
        };
        let view = SharedObjectView::parse(&payload).expect("SO payload");
        for event in view.events() {
            let event = event.expect("SO event");
            if event.event_type() != so_event_type::CHANGE {
                continue;
            }
            let body = event.body();
            let len = usize::from(u16::from_be_bytes([body[0], body[1]]));
            let key = std::str::from_utf8(&body[2..2 + len])
                .expect("key")
                .to_owned();
            let value = &body[2 + len..];
            assert_eq!(
                value.first(),
                Some(&0x11),
                "{key}: not an AVM+ value: {value:02x?}"
            );
            let mut input = &value[1..];
            let decoded = amf3::decode(&mut input, &Limits::default()).expect("AMF3 value");
            assert!(input.is_empty(), "{key}: bytes after the AMF3 value");
            let resolved = amf3::resolve(&decoded, &Limits::default()).expect("resolve");
            changes.push((key, resolved));
        }
    }
    changes
}

/// The AMF0 changes in an AMF0 client's next shared-object messages.
async fn amf0_changes(client: &mut RtmpClient, count: usize) -> Vec<(String, amf0::Value)> {
    let mut changes = Vec::new();
    while changes.len() < count {
        let message = client
            .next_so(SECS(10))
            .await
            .unwrap_or_else(|| panic!("AMF0 client: {} of {count} changes", changes.len()));
        for event in message.events {
            if let SoEvent::Change { key, value } = event {
                changes.push((key, value));
            }
        }
    }
    changes
}

/// The `change` ops (key → value) among `ws`'s next frames, until `count`.
async fn changes(ws: &mut WsClient, count: usize) -> Vec<(String, Json)> {
    let mut changes = Vec::new();
    while changes.len() < count {
        let frame = ws.next_op("change").await;
        if frame["so"] == SO {
            let key = frame["key"].as_str().expect("key").to_owned();
            changes.push((key, frame["value"].clone()));
        }
    }
    changes
}

fn s(text: &str) -> Value {
    Value::string(text)
}

fn avmplus(v: &Value) -> amf0::Value {
    let mut out = Vec::new();
    amf3::encode(v, &mut out);
    amf0::Value::Avmplus(Bytes::from(out))
}

/// What the AMF3 client sets, as AMF3 values.
fn amf3_sets() -> Vec<(&'static str, Value)> {
    vec![
        ("string", s("hello")),
        ("integer", Value::Integer(42)),
        ("double", Value::Double(2.5)),
        (
            "object",
            Value::Object(Object::anonymous([
                ("name", s("ann")),
                ("age", Value::Integer(30)),
            ])),
        ),
        (
            "array",
            Value::Array(Array {
                assoc: Vec::new(),
                dense: vec![Value::Integer(1), s("two"), Value::Boolean(true)],
            }),
        ),
        ("boolean", Value::Boolean(true)),
        ("date", Value::Date(DATE_MS)),
        ("bytes", Value::ByteArray(vec![0, 1, 2, 255])),
    ]
}

fn sorted<T>(mut v: Vec<(String, T)>) -> Vec<(String, T)> {
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

fn pairs<T>(v: Vec<(&str, T)>) -> Vec<(String, T)> {
    sorted(v.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
}

#[tokio::test(flavor = "current_thread")]
async fn amf3_amf0_and_websocket_clients_see_the_same_values() {
    let server = Server::start(ServerOptions::default());
    let mut flash = amf3_client(&server, "amf3").await;
    let mut amf0_client = RtmpClient::connect("amf0", server.rtmp_addr(), "chat/room1").await;
    let mut ws = WsClient::connect("ws", &server.ws_url("chat/room1")).await;

    ws.next_op("welcome").await;
    ws.send_json(&json!({"op": "use", "so": SO})).await;
    ws.next_op("sync").await;
    amf0_client.use_so(SO, false).await;
    flash.conn().so_use(SO, false).expect("so_use");
    flash.flush().await;
    // The use's answer (use-success, clear; no changes yet).
    loop {
        match flash.next_event(SECS(10)).await {
            Some(ClientEvent::SharedObjectPayload(p)) => {
                let view = SharedObjectView::parse(&p).expect("SO payload");
                let types: Vec<u8> = view.events().map(|e| e.unwrap().event_type()).collect();
                assert!(types.contains(&so_event_type::USE_SUCCESS), "{types:?}");
                break;
            }
            Some(_) => {}
            None => panic!("AMF3 client: no use success"),
        }
    }

    // AMF3 → AMF0 and JSON.
    let sets: Vec<(String, amf0::Value)> = amf3_sets()
        .iter()
        .map(|(k, v)| ((*k).to_owned(), avmplus(v)))
        .collect();
    flash.conn().so_set(SO, false, sets).expect("so_set");
    flash.flush().await;

    let got = sorted(amf0_changes(&mut amf0_client, 8).await);
    let want = pairs(vec![
        ("string", amf0::Value::string("hello")),
        ("integer", amf0::Value::Number(42.0)),
        ("double", amf0::Value::Number(2.5)),
        (
            "object",
            amf0::Value::object([
                ("name", amf0::Value::string("ann")),
                ("age", amf0::Value::Number(30.0)),
            ]),
        ),
        (
            "array",
            amf0::Value::StrictArray(vec![
                amf0::Value::Number(1.0),
                amf0::Value::string("two"),
                amf0::Value::Boolean(true),
            ]),
        ),
        ("boolean", amf0::Value::Boolean(true)),
        (
            "date",
            amf0::Value::Date {
                millis: DATE_MS,
                time_zone: 0,
            },
        ),
        // No AMF0 twin: the AMF3 value behind an AVM+ switch.
        ("bytes", avmplus(&Value::ByteArray(vec![0, 1, 2, 255]))),
    ]);
    assert_eq!(got, want, "what the AMF0 client received");

    let got = sorted(changes(&mut ws, 8).await);
    let want = pairs(vec![
        ("string", json!("hello")),
        ("integer", json!(42)),
        ("double", json!(2.5)),
        ("object", json!({"name": "ann", "age": 30})),
        ("array", json!([1, "two", true])),
        ("boolean", json!(true)),
        ("date", json!({"$date": 1_796_551_200_123_u64})),
        ("bytes", json!({"$bytes": "AAEC/w=="})),
    ]);
    assert_eq!(got, want, "what the WebSocket client received");

    // JSON → AMF3 (and AMF0).
    let ws_sets = [
        ("s", json!("from ws")),
        ("i", json!(7)),
        ("d", json!(0.25)),
        ("o", json!({"k": [1, 2]})),
        ("b", json!(false)),
        ("t", json!({"$date": 1000})),
        ("bytes", json!({"$bytes": "AAEC"})),
    ];
    for (key, value) in &ws_sets {
        ws.send_json(&json!({"op": "set", "so": SO, "key": key, "value": value}))
            .await;
    }
    let got = sorted(amf3_changes(&mut flash, ws_sets.len()).await);
    let want = pairs(vec![
        ("s", s("from ws")),
        ("i", Value::Integer(7)),
        ("d", Value::Double(0.25)),
        (
            "o",
            Value::Object(Object::anonymous([(
                "k",
                Value::Array(Array {
                    assoc: Vec::new(),
                    dense: vec![Value::Integer(1), Value::Integer(2)],
                }),
            )])),
        ),
        ("b", Value::Boolean(false)),
        ("t", Value::Date(1000.0)),
        ("bytes", Value::ByteArray(vec![0, 1, 2])),
    ]);
    assert_eq!(got, want, "what the AMF3 client received");
    let got = sorted(amf0_changes(&mut amf0_client, ws_sets.len()).await);
    let want = pairs(vec![
        ("s", amf0::Value::string("from ws")),
        ("i", amf0::Value::Number(7.0)),
        ("d", amf0::Value::Number(0.25)),
        (
            "o",
            amf0::Value::object([(
                "k",
                amf0::Value::StrictArray(vec![amf0::Value::Number(1.0), amf0::Value::Number(2.0)]),
            )]),
        ),
        ("b", amf0::Value::Boolean(false)),
        (
            "t",
            amf0::Value::Date {
                millis: 1000.0,
                time_zone: 0,
            },
        ),
        ("bytes", avmplus(&Value::ByteArray(vec![0, 1, 2]))),
    ]);
    assert_eq!(
        got, want,
        "what the AMF0 client received from the WebSocket client"
    );

    // AMF0 → AMF3.
    amf0_client.set(SO, "from_amf0", &json!({"n": 1.5})).await;
    let got = amf3_changes(&mut flash, 1).await;
    assert_eq!(
        got,
        vec![(
            "from_amf0".to_owned(),
            Value::Object(Object::anonymous([("n", Value::Double(1.5))]))
        )]
    );
}

/// A persistent object set by an AMF3 client holds AMF3-only values
/// (byte array, vector, typed object, dictionary) unchanged across a
/// restart of the server.
#[tokio::test(flavor = "current_thread")]
async fn persistent_amf3_values_survive_a_restart() {
    let mut server = Server::start(ServerOptions::default());
    let values = vec![
        ("bytes", Value::ByteArray(vec![9, 8, 7])),
        (
            "vector",
            Value::VectorDouble(Vector {
                fixed: true,
                items: vec![0.5, -1.25],
            }),
        ),
        (
            "typed",
            Value::Object(Object {
                class_name: "com.example.Point".to_owned(),
                sealed: vec![("x".to_owned(), Value::Integer(1))],
                dynamic: None,
            }),
        ),
        (
            "dict",
            Value::Dictionary {
                weak_keys: false,
                entries: vec![(Value::Integer(1), s("one"))],
            },
        ),
        ("text", s("kept")),
    ];
    {
        let mut flash = amf3_client(&server, "amf3-before").await;
        flash.conn().so_use("saved", true).expect("so_use");
        let sets = values
            .iter()
            .map(|(k, v)| ((*k).to_owned(), avmplus(v)))
            .collect();
        flash.conn().so_set("saved", true, sets).expect("so_set");
        flash.flush().await;
        // The acks say the batch was stored.
        let mut acked = 0;
        while acked < values.len() {
            match flash.next_event(SECS(10)).await {
                Some(ClientEvent::SharedObjectPayload(p)) => {
                    let view = SharedObjectView::parse(&p).expect("SO payload");
                    acked += view
                        .events()
                        .filter(|e| e.as_ref().unwrap().event_type() == so_event_type::SUCCESS)
                        .count();
                }
                Some(_) => {}
                None => panic!("AMF3 client: {acked} acks"),
            }
        }
    }
    server.restart();
    let mut flash = amf3_client(&server, "amf3-after").await;
    flash.conn().so_use("saved", true).expect("so_use");
    flash.flush().await;
    let got = sorted(amf3_changes(&mut flash, values.len()).await);
    assert_eq!(got, pairs(values), "values after the restart");
}
