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
use tern_core::amf3::{self, Array, Object, Value};
use tern_tests::{require, require_tool, workspace_root};

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
