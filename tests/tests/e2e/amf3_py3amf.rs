//! tern's AMF3 codec against an independent one: Python's `py3amf` (PyPI
//! 0.9.1, `import pyamf.amf3`), driven by tests/python/amf3_interop.py.
//!
//! Each case is a name, the value in tern's model (below) and the same
//! value in Python (in the script). py3amf's encodings must decode in tern
//! to the model and re-encode to the same bytes; tern's encodings must
//! decode in py3amf to the Python value (numbers with their type).

use serde_json::Value as Json;
use std::io::Write;
use std::process::{Command, Stdio};
use tern_core::Limits;
use tern_core::amf0;
use tern_core::amf3::{self, Array, Object, Value};
use tern_core::chunk::RawMessage;
use tern_core::hub::MediaKind;
use tern_core::message::{Message, type_id};
use tern_tests::rtmp::RtmpClient;
use tern_tests::{Server, ServerOptions, require, require_tool, workspace_root};

fn s(text: &str) -> Value {
    Value::string(text)
}

fn dense(items: Vec<Value>) -> Value {
    Value::Array(Array {
        assoc: Vec::new(),
        dense: items,
    })
}

fn anonymous(pairs: Vec<(&str, Value)>) -> Value {
    Value::Object(Object::anonymous(pairs))
}

fn point(x: Value, y: Value) -> Value {
    Value::Object(Object {
        class_name: "tern.Point".to_owned(),
        sealed: vec![("x".to_owned(), x), ("y".to_owned(), y)],
        dynamic: None,
    })
}

/// The cases of amf3_interop.py's `cases()`, in tern's model.
fn cases() -> Vec<(&'static str, Value)> {
    vec![
        ("undefined", Value::Undefined),
        ("null", Value::Null),
        ("false", Value::Boolean(false)),
        ("true", Value::Boolean(true)),
        ("int_0", Value::Integer(0)),
        ("int_127", Value::Integer(127)),
        ("int_128", Value::Integer(128)),
        ("int_0x4000", Value::Integer(0x4000)),
        ("int_0x200000", Value::Integer(0x20_0000)),
        ("int_max", Value::Integer(amf3::INTEGER_MAX)),
        ("int_min", Value::Integer(amf3::INTEGER_MIN)),
        ("int_neg", Value::Integer(-123)),
        ("double", Value::Double(0.2)),
        ("double_neg", Value::Double(-2.5)),
        ("double_past_int_range", Value::Double(268_435_456.0)),
        ("double_huge", Value::Double(1e300)),
        ("string_empty", s("")),
        ("string", s("hello")),
        ("string_unicode", s("ƒøø テスト")),
        // 2026-12-06T10:00:00.123Z
        ("date", Value::Date(1_796_551_200_123.0)),
        (
            "array_dense",
            dense(vec![
                Value::Integer(1),
                s("a"),
                Value::Null,
                Value::Boolean(true),
                Value::Double(0.5),
            ]),
        ),
        (
            "array_string_refs",
            dense(vec![s("ab"), s("ab"), s("cd"), s("ab")]),
        ),
        (
            "array_assoc",
            Value::Array(Array {
                assoc: vec![
                    ("a".to_owned(), Value::Integer(1)),
                    ("b".to_owned(), s("x")),
                ],
                dense: Vec::new(),
            }),
        ),
        (
            "object",
            anonymous(vec![("name", s("x")), ("n", Value::Integer(5))]),
        ),
        (
            "object_nested",
            anonymous(vec![
                (
                    "a",
                    anonymous(vec![(
                        "b",
                        dense(vec![Value::Integer(1), Value::Integer(2)]),
                    )]),
                ),
                ("c", s("a")),
            ]),
        ),
        ("typed_object", point(Value::Integer(1), s("two"))),
        (
            "typed_traits_ref",
            dense(vec![
                point(Value::Integer(1), Value::Integer(2)),
                point(Value::Integer(3), Value::Integer(4)),
            ]),
        ),
        ("bytearray", Value::ByteArray(b"\x00\x01hello\xff".to_vec())),
        (
            "object_ref",
            dense(vec![
                dense(vec![Value::Integer(1), Value::Integer(2)]),
                Value::Reference {
                    marker: 0x09,
                    index: 1,
                },
            ]),
        ),
        (
            "array_collection",
            Value::Externalizable {
                class_name: "flex.messaging.io.ArrayCollection".to_owned(),
                body: Box::new(dense(vec![Value::Integer(1), s("a")])),
            },
        ),
        (
            "object_proxy",
            Value::Externalizable {
                class_name: "flex.messaging.io.ObjectProxy".to_owned(),
                body: Box::new(anonymous(vec![("k", Value::Integer(1))])),
            },
        ),
    ]
}

/// Cases py3amf only decodes (it writes no dictionaries).
fn decode_only() -> Vec<(&'static str, Value)> {
    vec![(
        "dictionary",
        Value::Dictionary {
            weak_keys: false,
            entries: vec![(s("k"), Value::Integer(1)), (Value::Integer(2), s("two"))],
        },
    )]
}

/// Whether python3 can import `pyamf.amf3` (skips, or fails under
/// `TERN_REQUIRE_TOOLS=1`, when it cannot).
fn require_py3amf() -> bool {
    if !require_tool("python3") {
        return false;
    }
    let present = Command::new("python3")
        .args(["-c", "import pyamf.amf3"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    require("Python package py3amf (pip install py3amf==0.9.1)", present)
}

/// Runs the script in `mode` with `input` on stdin; its stdout lines as
/// JSON.
fn script(mode: &str, input: &str) -> Vec<Json> {
    let path = workspace_root().join("tests/python/amf3_interop.py");
    let mut child = Command::new("timeout")
        .args(["-k", "5", "60", "python3"])
        .arg(&path)
        .arg(mode)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cannot start python3");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write to python3");
    let out = child.wait_with_output().expect("python3 output");
    assert!(
        out.status.success(),
        "amf3_interop.py {mode} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("UTF-8 output")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex"))
        .collect()
}

/// py3amf encodes every case; tern decodes each to the model and
/// re-encodes it to the same bytes.
#[test]
fn py3amf_encodings_decode_in_tern() {
    if !require_py3amf() {
        return;
    }
    let lines = script("encode", "");
    let expected = cases();
    assert_eq!(lines.len(), expected.len(), "{lines:?}");
    for (line, (name, model)) in lines.iter().zip(&expected) {
        assert_eq!(line["name"], *name);
        let bytes = unhex(line["hex"].as_str().expect("hex"));
        let mut input = &bytes[..];
        let decoded = amf3::decode(&mut input, &Limits::default())
            .unwrap_or_else(|e| panic!("{name}: tern cannot decode py3amf's {bytes:02x?}: {e}"));
        assert!(input.is_empty(), "{name}: bytes left");
        assert_eq!(&decoded, model, "{name}: py3amf's {bytes:02x?}");
        let mut again = Vec::new();
        amf3::encode(&decoded, &mut again);
        assert_eq!(again, bytes, "{name}: tern re-encodes differently");
    }
}

/// tern encodes every case; py3amf decodes each to the Python value.
#[test]
fn tern_encodings_decode_in_py3amf() {
    if !require_py3amf() {
        return;
    }
    let all: Vec<_> = cases().into_iter().chain(decode_only()).collect();
    let mut input = String::new();
    for (name, model) in &all {
        let mut bytes = Vec::new();
        amf3::encode(model, &mut bytes);
        input.push_str(&serde_json::json!({"name": name, "hex": hex(&bytes)}).to_string());
        input.push('\n');
    }
    let lines = script("decode", &input);
    assert_eq!(lines.len(), all.len(), "{lines:?}");
    for (line, (name, _)) in lines.iter().zip(&all) {
        assert_eq!(line["name"], *name);
        assert_eq!(
            line["ok"], true,
            "{name}: py3amf decoded tern's encoding as {}",
            line["got"]
        );
    }
}

/// amf3_interop.py's `bodies()` in tern's shared model: what tern makes of
/// each whole message body (typed objects stay AMF3, as AVM+ values).
fn body(name: &str) -> Vec<amf0::Value> {
    let typed = |x: Value, y: Value| amf3::to_amf0(&point(x, y));
    let obj = |k: &str, v: &str| amf0::Value::object([(k, amf0::Value::string(v))]);
    match name {
        "command" => vec![
            amf0::Value::string("m"),
            amf0::Value::Number(0.0),
            amf0::Value::Null,
            obj("k", "v"),
            obj("k", "v"),
            amf0::Value::string("v"),
            typed(Value::Integer(1), s("two")),
            typed(Value::Integer(3), s("two")),
        ],
        "data" => vec![
            amf0::Value::string("onText"),
            obj("text", "hi"),
            obj("text", "hi"),
            amf0::Value::string("hi"),
            typed(Value::Integer(1), s("hi")),
            typed(s("zz"), s("zz")),
        ],
        other => panic!("no body {other}"),
    }
}

/// py3amf's message bodies (one AMF0 encoder with `use_amf3`: one set of
/// AMF3 reference tables for the whole body, so later values refer to
/// strings and traits of earlier ones) as type-17 and type-15 payloads:
/// tern decodes them to the values py3amf wrote.
#[test]
fn py3amf_message_bodies_decode_in_tern() {
    if !require_py3amf() {
        return;
    }
    let lines = script("bodies", "");
    assert_eq!(lines.len(), 2, "{lines:?}");
    for line in &lines {
        let name = line["name"].as_str().expect("name");
        let mut payload = vec![0];
        payload.extend(unhex(line["hex"].as_str().expect("hex")));
        let type_id = if name == "command" {
            type_id::COMMAND_AMF3
        } else {
            type_id::DATA_AMF3
        };
        let raw = RawMessage {
            csid: 3,
            timestamp: 0,
            type_id,
            stream_id: 0,
            payload: payload.clone().into(),
        };
        let values = match Message::decode(&raw, &Limits::default()) {
            Ok(Message::Command(c)) => [
                vec![
                    amf0::Value::String(c.name),
                    amf0::Value::Number(c.transaction_id),
                    c.command_object,
                ],
                c.args,
            ]
            .concat(),
            Ok(Message::Data(d)) => d.values,
            other => panic!("{name}: py3amf's {payload:02x?} read as {other:?}"),
        };
        assert_eq!(values, body(name), "{name}: py3amf's {payload:02x?}");
    }
}

/// End to end through `tern`: an objectEncoding-3 publisher sends
/// py3amf's type-15 body (tables shared across its values); the AMF0
/// player receives the values py3amf wrote, and the body the AMF3 player
/// receives (type 15) decodes in py3amf — one decoder for the body, as
/// py3amf and Red5 read — to the same Python values. (Written with fresh
/// tables per value, the last `Point("zz", "zz")` would read as
/// `Point("zz", "hi")` there: its own string reference would name an
/// entry of the first Point.)
#[tokio::test(flavor = "current_thread")]
async fn py3amf_data_body_through_tern_reads_the_same_in_amf0_and_py3amf() {
    if !require_py3amf() {
        return;
    }
    let lines = script("bodies", "");
    let data = lines
        .iter()
        .find(|l| l["name"] == "data")
        .expect("data body");
    let sent = unhex(data["hex"].as_str().expect("hex"));
    let server = Server::start(ServerOptions::default());
    let app = "live/py3amf";
    let mut flash = RtmpClient::connect_with("py3amf publisher", server.rtmp_addr(), app, |c| {
        c.amf3 = true
    })
    .await;
    let mut flash_player =
        RtmpClient::connect_with("amf3 player", server.rtmp_addr(), app, |c| c.amf3 = true).await;
    let mut plain = RtmpClient::connect("amf0 player", server.rtmp_addr(), app).await;
    let stream = flash.publish("cam").await;
    flash_player.play("cam").await;
    plain.play("cam").await;
    flash
        .conn()
        .send_media(stream, MediaKind::Data, 0, sent.into())
        .expect("send data");
    flash.flush().await;
    // (Compared by meaning: the AVM+ values after the first are written
    // anew, without references.)
    let meaning = |values: &[amf0::Value]| -> Vec<Value> {
        values
            .iter()
            .map(|v| amf3::from_amf0(v, &Limits::default()).expect("AMF3 meaning"))
            .collect()
    };
    let amf0_body = plain.next_data_payload().await;
    assert_eq!(
        meaning(&amf0::decode_all(&amf0_body, &Limits::default()).expect("type 18 body")),
        meaning(&body("data"))
    );
    assert_eq!(
        flash_player.conn().received_messages(type_id::DATA_AMF3),
        0,
        "not yet received"
    );
    let amf3_body = flash_player.next_data_payload().await;
    assert_eq!(flash_player.conn().received_messages(type_id::DATA_AMF3), 1);
    let input = serde_json::json!({"name": "data", "hex": hex(&amf3_body)}).to_string();
    let read = script("read_bodies", &input);
    assert_eq!(read.len(), 1, "{read:?}");
    assert_eq!(
        read[0]["ok"],
        true,
        "py3amf read tern's type-15 body {} as {}",
        hex(&amf3_body),
        read[0]["got"]
    );
}
