//! AMF3 commands and data end to end through `tern`: an objectEncoding-3
//! RTMP client (the core client with `amf3`, which sends its calls as type
//! 17 and its stream data as type 15 with AVM+ values, as ActionScript 3
//! does) publishes and calls; an AMF0 RTMP player, a second AMF3 player and
//! a WebSocket (JSON) client receive what it sent, each in its own
//! encoding, and the other way round.
//!
//! Commands themselves carry no value from one client to another in tern
//! (an unknown call is answered `_error`); what does is stream data
//! (`NetStream.send`, metadata) to players and shared-object `send` to
//! every subscriber, so those are the paths checked here. The forms are
//! checked by type id: after the connect reply (type 20, AMF0, saying
//! objectEncoding 3) the AMF3 clients get every command as type 17 and
//! every data message as type 15, the AMF0 client types 20 and 18.

use bytes::Bytes;
use serde_json::{Value as Json, json};
use std::time::Duration;
use tern_core::Limits;
use tern_core::amf0;
use tern_core::amf3::{self, Array, Object, Value};
use tern_core::hub::MediaKind;
use tern_core::message::type_id;
use tern_core::rtmp::ClientEvent;
use tern_tests::rtmp::RtmpClient;
use tern_tests::ws::WsClient;
use tern_tests::{Server, ServerOptions};

const SECS: fn(u64) -> Duration = Duration::from_secs;
/// 2026-12-06T10:00:00.123Z
const DATE_MS: f64 = 1_796_551_200_123.0;
const APP: &str = "live/amf3";

async fn amf3_client(server: &Server, name: &str) -> RtmpClient {
    RtmpClient::connect_with(name, server.rtmp_addr(), APP, |c| c.amf3 = true).await
}

/// The values of the next data message a player receives.
async fn next_data(client: &mut RtmpClient) -> Vec<amf0::Value> {
    let payload = client.next_data_payload().await;
    amf0::decode_all(&payload, &Limits::default()).expect("data message AMF0")
}

fn avmplus(v: &Value) -> amf0::Value {
    let mut out = Vec::new();
    amf3::encode(v, &mut out);
    amf0::Value::Avmplus(Bytes::from(out))
}

/// The argument an AS3 client sends: an anonymous object with a string,
/// integer, double, boolean, date and a dense array.
fn amf3_cue() -> Value {
    Value::Object(Object::anonymous([
        ("title", Value::string("intro")),
        ("at", Value::Integer(12)),
        ("rate", Value::Double(2.5)),
        ("live", Value::Boolean(true)),
        ("when", Value::Date(DATE_MS)),
        (
            "tags",
            Value::Array(Array {
                assoc: Vec::new(),
                dense: vec![Value::string("a"), Value::Integer(2)],
            }),
        ),
    ]))
}

/// [`amf3_cue`] in the shared model, as an AMF0 client reads it.
fn amf0_cue() -> amf0::Value {
    amf0::Value::object([
        ("title", amf0::Value::string("intro")),
        ("at", amf0::Value::Number(12.0)),
        ("rate", amf0::Value::Number(2.5)),
        ("live", amf0::Value::Boolean(true)),
        (
            "when",
            amf0::Value::Date {
                millis: DATE_MS,
                time_zone: 0,
            },
        ),
        (
            "tags",
            amf0::Value::StrictArray(vec![amf0::Value::string("a"), amf0::Value::Number(2.0)]),
        ),
    ])
}

/// [`amf3_cue`] as a WebSocket client reads it.
fn json_cue() -> Json {
    json!({
        "title": "intro", "at": 12, "rate": 2.5, "live": true,
        "when": {"$date": DATE_MS as i64}, "tags": ["a", 2]
    })
}

/// The arguments of the next shared-object `send` of `method` an AMF3
/// subscriber receives, as AMF3 values. (The core client decodes type 16
/// into the shared model; that its values came as AVM+ is checked by the
/// shared-object tests, that it came as type 16 by the counter below.)
async fn amf3_message(client: &mut RtmpClient, method: &str) -> Vec<Value> {
    let args = client
        .wait_for(method, |e| match e {
            ClientEvent::SharedObject(so) => so.events.into_iter().find_map(|ev| match ev {
                tern_core::message::SoEvent::SendMessage { method: m, args } if m == method => {
                    Some(args)
                }
                _ => None,
            }),
            _ => None,
        })
        .await;
    args.iter()
        .map(|a| amf3::from_amf0(a, &Limits::default()).expect("AMF3 argument"))
        .collect()
}

#[tokio::test(flavor = "current_thread")]
async fn amf3_commands_and_data_reach_amf0_amf3_and_websocket_clients() {
    let server = Server::start(ServerOptions::default());
    let mut flash = amf3_client(&server, "amf3 publisher").await;
    let mut flash_player = amf3_client(&server, "amf3 player").await;
    let mut plain = RtmpClient::connect("amf0", server.rtmp_addr(), APP).await;
    let mut ws = WsClient::connect("ws", &server.ws_url(APP)).await;
    ws.next_op("welcome").await;

    // Calls from the AMF3 client are type 17 and understood; the answers
    // come back as type 17.
    let stream = flash.publish("cam").await;
    flash_player.play("cam").await;
    plain.play("cam").await;

    // AMF3 data → the AMF0 player as AMF0 (type 18), the AMF3 player as
    // type 15, both the same values.
    let mut body = Vec::new();
    amf0::encode(&amf0::Value::string("onCue"), &mut body);
    amf0::encode(&avmplus(&amf3_cue()), &mut body);
    flash
        .conn()
        .send_media(stream, MediaKind::Data, 0, Bytes::from(body))
        .expect("send data");
    flash.flush().await;
    let want = vec![amf0::Value::string("onCue"), amf0_cue()];
    assert_eq!(next_data(&mut plain).await, want);
    assert_eq!(next_data(&mut flash_player).await, want);

    // AMF0 data → the AMF3 player as type 15, the same values.
    let back = plain.publish("desk").await;
    flash_player.play("desk").await;
    let reply = amf0::Value::object([
        ("from", amf0::Value::string("amf0")),
        ("n", amf0::Value::Number(1.5)),
    ]);
    let mut body = Vec::new();
    amf0::encode(&amf0::Value::string("onReply"), &mut body);
    amf0::encode(&reply, &mut body);
    plain
        .conn()
        .send_media(back, MediaKind::Data, 0, Bytes::from(body))
        .expect("send data");
    plain.flush().await;
    assert_eq!(
        next_data(&mut flash_player).await,
        vec![amf0::Value::string("onReply"), reply]
    );

    // A call with an AMF3 object from the AMF3 client to every subscriber
    // of a shared object (SharedObject.send): the WebSocket client reads
    // it as JSON, the AMF0 client as AMF0.
    ws.send_json(&json!({"op": "use", "so": "cues"})).await;
    ws.next_op("sync").await;
    plain.use_so("cues", false).await;
    flash.conn().so_use("cues", false).expect("so_use");
    flash.flush().await;
    flash
        .conn()
        .so_send("cues", false, "onCue", vec![avmplus(&amf3_cue())])
        .expect("so_send");
    flash.flush().await;
    let message = ws.next_op("message").await;
    assert_eq!(message["method"], "onCue");
    assert_eq!(message["args"], json!([json_cue()]));
    let amf0_message = plain.next_so(SECS(10)).await.expect("AMF0 send");
    assert!(
        amf0_message
            .events
            .contains(&tern_core::message::SoEvent::SendMessage {
                method: "onCue".into(),
                args: vec![amf0_cue()],
            }),
        "{amf0_message:?}"
    );
    // And back: the WebSocket client's call reaches the AMF3 client with
    // its object as AMF3.
    ws.send_json(&json!({"op": "send", "so": "cues", "method": "onAnswer",
        "args": [{"ok": true, "n": 7, "text": "yes"}]}))
        .await;
    let args = amf3_message(&mut flash, "onAnswer").await;
    assert_eq!(
        args,
        // (Members in the order the server's JSON map keeps them: sorted.)
        vec![Value::Object(Object::anonymous([
            ("n", Value::Integer(7)),
            ("ok", Value::Boolean(true)),
            ("text", Value::string("yes")),
        ]))]
    );

    // An unknown call is answered `_error`, as type 17.
    flash
        .conn()
        .call("whoami", vec![avmplus(&Value::string("x"))], true)
        .expect("call");
    flash.flush().await;
    let code = flash
        .wait_for("_error", |e| match e {
            ClientEvent::Error { info, .. } => info.get("code").cloned(),
            _ => None,
        })
        .await;
    assert_eq!(code, amf0::Value::string("NetConnection.Call.Failed"));

    // The forms, by type id.
    for (name, client) in [("publisher", &mut flash), ("player", &mut flash_player)] {
        let conn = client.conn();
        assert_eq!(conn.received_messages(type_id::COMMAND_AMF0), 1, "{name}");
        assert!(conn.received_messages(type_id::COMMAND_AMF3) >= 2, "{name}");
        assert_eq!(conn.received_messages(type_id::DATA_AMF0), 0, "{name}");
        assert_eq!(
            conn.received_messages(type_id::SHARED_OBJECT_AMF0),
            0,
            "{name}"
        );
    }
    assert_eq!(flash_player.conn().received_messages(type_id::DATA_AMF3), 2);
    assert!(flash.conn().received_messages(type_id::SHARED_OBJECT_AMF3) >= 2);
    let conn = plain.conn();
    assert_eq!(conn.received_messages(type_id::COMMAND_AMF3), 0);
    assert_eq!(conn.received_messages(type_id::DATA_AMF3), 0);
    assert_eq!(conn.received_messages(type_id::DATA_AMF0), 1);
}
