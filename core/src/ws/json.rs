//! tern's WebSocket JSON protocol v1 (DESIGN.md §6, `docs/ws-protocol.md`):
//! parsing client operations and rendering server messages. Values cross
//! the JSON/AMF0 boundary through [`amf_json`](super::amf_json).
//!
//! Client → server: one JSON object per text message with an `op` of
//! `use`, `set`, `delete`, `send` or `release`. Server → client: `welcome`,
//! `sync`, `ack`, `change`, `delete`, `message`, `clear` and `error`.

use super::amf_json::{AMF_SHORT_STRING, amf_to_json, json_to_amf};
use crate::Limits;
use crate::amf0::Value;
use crate::hub::{SoNotice, SoUpdate};
use crate::message::Tolerated;
use crate::scope_path::ScopePath;
use alloc::borrow::ToOwned;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;
use serde_json::{Map, Value as Json};

/// An operation a JSON client asks for.
#[derive(Clone, Debug, PartialEq)]
pub enum ClientOp {
    /// `{"op":"use","so":…,"persistent":bool?}`
    Use { so: String, persistent: bool },
    /// `{"op":"set","so":…,"key":…,"value":…}`
    Set {
        so: String,
        key: String,
        value: Value,
    },
    /// `{"op":"delete","so":…,"key":…}`
    Delete { so: String, key: String },
    /// `{"op":"send","so":…,"method":…,"args":[…]?}`
    Send {
        so: String,
        method: String,
        args: Vec<Value>,
    },
    /// `{"op":"release","so":…}`
    Release { so: String },
}

impl ClientOp {
    /// The shared object the operation is about.
    pub fn so(&self) -> &str {
        match self {
            ClientOp::Use { so, .. }
            | ClientOp::Set { so, .. }
            | ClientOp::Delete { so, .. }
            | ClientOp::Send { so, .. }
            | ClientOp::Release { so } => so,
        }
    }
}

/// Why a client message was refused (answered with an `error` message;
/// nothing changes).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum OpError {
    /// Not valid JSON.
    InvalidJson,
    /// Valid JSON but not an object.
    NotAnObject,
    /// `op` missing, not a string, or not one we know.
    UnknownOp(String),
    /// A required field is missing.
    MissingField(&'static str),
    /// A field has the wrong type or an unusable value.
    BadField(&'static str),
    /// A value nests deeper or holds more values than AMF0 peers accept.
    TooComplex,
    /// A binary message on a JSON connection.
    Binary,
    /// The connection uses too many shared objects at once.
    TooManyObjects { max: usize },
}

impl OpError {
    /// The `code` of the error message.
    pub fn code(&self) -> &'static str {
        match self {
            OpError::InvalidJson => "Protocol.InvalidJson",
            OpError::NotAnObject => "Protocol.NotAnObject",
            OpError::UnknownOp(_) => "Protocol.UnknownOp",
            OpError::MissingField(_) => "Protocol.MissingField",
            OpError::BadField(_) => "Protocol.BadField",
            OpError::TooComplex => "Protocol.TooComplex",
            OpError::Binary => "Protocol.BinaryUnsupported",
            OpError::TooManyObjects { .. } => "Protocol.TooManyObjects",
        }
    }
}

impl fmt::Display for OpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OpError::InvalidJson => f.write_str("message is not valid JSON"),
            OpError::NotAnObject => f.write_str("message is not a JSON object"),
            OpError::UnknownOp(op) if op.is_empty() => f.write_str("message has no string \"op\""),
            OpError::UnknownOp(op) => write!(f, "unknown op {op:?}"),
            OpError::MissingField(name) => write!(f, "missing field {name:?}"),
            OpError::BadField(name) => write!(f, "field {name:?} has a bad type or value"),
            OpError::TooComplex => f.write_str("value nests too deep or holds too many values"),
            OpError::Binary => f.write_str("binary messages are not part of protocol v1"),
            OpError::TooManyObjects { max } => {
                write!(f, "at most {max} shared objects in use per connection")
            }
        }
    }
}

impl core::error::Error for OpError {}

/// Container nesting depth and value count of `value`.
fn complexity(value: &Json) -> (usize, usize) {
    match value {
        Json::Array(items) => items.iter().fold((1, 1), |(d, c), v| {
            let (vd, vc) = complexity(v);
            (d.max(vd + 1), c.saturating_add(vc))
        }),
        Json::Object(map) => map.values().fold((1, 1), |(d, c), v| {
            let (vd, vc) = complexity(v);
            (d.max(vd + 1), c.saturating_add(vc))
        }),
        _ => (0, 1),
    }
}

/// A required name field: a non-empty string of at most `max` bytes; a
/// whole number reads as its decimal text (noted).
fn string_field(
    obj: &Map<String, Json>,
    op: &str,
    name: &'static str,
    max: usize,
    notes: &mut Vec<Tolerated>,
) -> Result<String, OpError> {
    match obj.get(name) {
        None => Err(OpError::MissingField(name)),
        Some(Json::String(s)) if !s.is_empty() && s.len() <= max => Ok(s.clone()),
        Some(Json::Number(n)) if n.is_i64() || n.is_u64() => {
            let text = n.to_string();
            notes.push(Tolerated::new(
                op,
                alloc::format!("{name:?} is a number, read as \"{text}\""),
            ));
            Ok(text)
        }
        Some(_) => Err(OpError::BadField(name)),
    }
}

/// Fields each op knows; others are ignored (and noted).
fn known_fields(op: &str) -> &'static [&'static str] {
    match op {
        "use" => &["op", "so", "persistent"],
        "set" => &["op", "so", "key", "value"],
        "delete" => &["op", "so", "key"],
        "send" => &["op", "so", "method", "args"],
        _ => &["op", "so"],
    }
}

/// Parses one client text message. `limits` bounds the depth and value
/// count of carried values (so every RTMP peer can decode them).
///
/// Lenient (see "Lenient reading" in docs/architecture.md): optional
/// fields of another type are read the obvious way or take their default,
/// unknown fields are ignored, and each such reading is returned beside
/// the op. Invalid JSON, a missing required field or an unknown op is an
/// [`OpError`] (answered with an `error` message; the session goes on).
pub fn parse_client_op(
    text: &[u8],
    limits: &Limits,
) -> Result<(ClientOp, Vec<Tolerated>), OpError> {
    let json: Json = serde_json::from_slice(text).map_err(|_| OpError::InvalidJson)?;
    let Json::Object(obj) = json else {
        return Err(OpError::NotAnObject);
    };
    let op = match obj.get("op") {
        Some(Json::String(op)) => op.as_str(),
        _ => return Err(OpError::UnknownOp(String::new())),
    };
    let check = |values: &[&Json]| {
        let (depth, count) = values.iter().fold((0, 0usize), |(d, c), v| {
            let (vd, vc) = complexity(v);
            (d.max(vd), c.saturating_add(vc))
        });
        if depth > limits.amf0_max_depth || count > limits.amf0_max_values {
            Err(OpError::TooComplex)
        } else {
            Ok(())
        }
    };
    let mut notes = Vec::new();
    // Keys and names travel as AMF0 short strings (u16 length) to RTMP peers.
    let so = |notes: &mut Vec<Tolerated>| string_field(&obj, op, "so", AMF_SHORT_STRING, notes);
    let key = |notes: &mut Vec<Tolerated>| string_field(&obj, op, "key", AMF_SHORT_STRING, notes);
    let parsed = match op {
        "use" => ClientOp::Use {
            so: so(&mut notes)?,
            persistent: match obj.get("persistent") {
                None | Some(Json::Null) => false,
                Some(Json::Bool(b)) => *b,
                Some(other) => {
                    let read = match other {
                        Json::Number(n) => n.as_f64().is_some_and(|n| n != 0.0),
                        Json::String(s) => s == "true",
                        _ => false,
                    };
                    notes.push(Tolerated::new(
                        op,
                        alloc::format!("\"persistent\" is not a boolean, read as {read}"),
                    ));
                    read
                }
            },
        },
        "set" => {
            let (so, key) = (so(&mut notes)?, key(&mut notes)?);
            let value = obj.get("value").ok_or(OpError::MissingField("value"))?;
            check(&[value])?;
            ClientOp::Set {
                so,
                key,
                value: json_to_amf(value),
            }
        }
        "delete" => ClientOp::Delete {
            so: so(&mut notes)?,
            key: key(&mut notes)?,
        },
        "send" => {
            let so = so(&mut notes)?;
            let method = string_field(&obj, op, "method", AMF_SHORT_STRING, &mut notes)?;
            let args = match obj.get("args") {
                None | Some(Json::Null) => Vec::new(),
                Some(Json::Array(items)) => {
                    check(&items.iter().collect::<Vec<_>>())?;
                    items.iter().map(json_to_amf).collect()
                }
                // One value where a list was expected: a list of one.
                Some(single) => {
                    check(&[single])?;
                    notes.push(Tolerated::new(
                        op,
                        "\"args\" is not an array, read as a list of one value",
                    ));
                    alloc::vec![json_to_amf(single)]
                }
            };
            ClientOp::Send { so, method, args }
        }
        "release" => ClientOp::Release {
            so: so(&mut notes)?,
        },
        other => return Err(OpError::UnknownOp(other.to_owned())),
    };
    let known = known_fields(op);
    let extra = obj.keys().filter(|k| !known.contains(&k.as_str())).count();
    if extra > 0 {
        notes.push(Tolerated::new(
            op,
            alloc::format!("{extra} unknown field(s) ignored"),
        ));
    }
    Ok((parsed, notes))
}

/// Renders a JSON object with its members in the order given (`op` first,
/// for people reading traces); nested objects come out with sorted keys.
fn render(pairs: impl IntoIterator<Item = (&'static str, Json)>) -> String {
    let mut out = String::from("{");
    for (i, (key, value)) in pairs.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&Json::from(key).to_string());
        out.push(':');
        out.push_str(&value.to_string());
    }
    out.push('}');
    out
}

/// `{"op":"welcome","scope":"/app/room"}`.
pub fn welcome(scope: &ScopePath) -> String {
    render([
        ("op", Json::from("welcome")),
        ("scope", Json::from(scope.as_str())),
    ])
}

/// `{"op":"error",["so":…,]"code":…,"message":…}`.
pub fn error(so: Option<&str>, code: &str, message: &str) -> String {
    let mut pairs = alloc::vec![("op", Json::from("error"))];
    if let Some(so) = so {
        pairs.push(("so", Json::from(so)));
    }
    pairs.push(("code", Json::from(code)));
    pairs.push(("message", Json::from(message)));
    render(pairs)
}

/// A readable message for a shared-object status code.
fn status_message(code: &str) -> &'static str {
    use crate::hub::shared_object::status;
    match code {
        status::NO_WRITE_ACCESS => "write refused",
        status::NO_READ_ACCESS => "read refused",
        status::BAD_PERSISTENCE => "persistence flag differs from the object's",
        status::OBJECT_CREATION_FAILED => "shared object could not be created",
        crate::access::RATE_LIMITED => "too many shared-object operations: slow down",
        _ => "shared object error",
    }
}

/// The JSON messages for one shared-object update, in order. A use answer
/// (it starts with `UseSuccess`) becomes one `sync` with the full data;
/// every other notice becomes one message.
pub fn update_messages(update: &SoUpdate) -> Vec<String> {
    let so = || Json::from(update.name.as_str());
    let version = || Json::from(update.version);
    if matches!(update.notices.first(), Some(SoNotice::UseSuccess)) {
        let mut data = Map::new();
        for notice in &update.notices {
            match notice {
                SoNotice::Clear => data.clear(),
                SoNotice::Change { key, value } => {
                    data.insert(key.clone(), amf_to_json(value));
                }
                SoNotice::Remove { key } => {
                    data.remove(key);
                }
                _ => {}
            }
        }
        return alloc::vec![render([
            ("op", Json::from("sync")),
            ("so", so()),
            ("version", version()),
            ("data", Json::Object(data)),
        ])];
    }
    update
        .notices
        .iter()
        .filter_map(|notice| {
            Some(match notice {
                SoNotice::UseSuccess => return None,
                SoNotice::Clear => render([
                    ("op", Json::from("clear")),
                    ("so", so()),
                    ("version", version()),
                ]),
                SoNotice::Change { key, value } => render([
                    ("op", Json::from("change")),
                    ("so", so()),
                    ("version", version()),
                    ("key", Json::from(key.as_str())),
                    ("value", amf_to_json(value)),
                ]),
                SoNotice::Success { key } => render([
                    ("op", Json::from("ack")),
                    ("so", so()),
                    ("version", version()),
                    ("key", Json::from(key.as_str())),
                ]),
                SoNotice::Remove { key } => render([
                    ("op", Json::from("delete")),
                    ("so", so()),
                    ("version", version()),
                    ("key", Json::from(key.as_str())),
                ]),
                SoNotice::Message { method, args } => render([
                    ("op", Json::from("message")),
                    ("so", so()),
                    ("version", version()),
                    ("method", Json::from(method.as_str())),
                    ("args", Json::Array(args.iter().map(amf_to_json).collect())),
                ]),
                SoNotice::Status { code, .. } => {
                    error(Some(&update.name), code, status_message(code))
                }
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;
    use serde_json::json;

    /// Parses an op of the documented shape (no lenient reading taken).
    fn op(text: &str) -> Result<ClientOp, OpError> {
        parse_client_op(text.as_bytes(), &Limits::default()).map(|(op, notes)| {
            assert_eq!(notes, alloc::vec![], "{text} needed a lenient reading");
            op
        })
    }

    /// Parses an op of an unexpected shape: a lenient reading containing
    /// `note` was taken.
    fn lenient_op(text: &str, note: &str) -> ClientOp {
        let (op, notes) = parse_client_op(text.as_bytes(), &Limits::default())
            .unwrap_or_else(|e| panic!("{text}: {e}"));
        assert!(
            notes.iter().any(|n| n.reading.contains(note)),
            "{text}: no reading containing {note:?} in {notes:?}"
        );
        op
    }

    #[test]
    fn lenient_persistent_flag() {
        for (text, want) in [
            (r#"{"op":"use","so":"a","persistent":"yes"}"#, false),
            (r#"{"op":"use","so":"a","persistent":"true"}"#, true),
            (r#"{"op":"use","so":"a","persistent":1}"#, true),
            (r#"{"op":"use","so":"a","persistent":0}"#, false),
        ] {
            assert_eq!(
                lenient_op(text, "not a boolean"),
                ClientOp::Use {
                    so: "a".into(),
                    persistent: want
                }
            );
        }
    }

    #[test]
    fn lenient_numeric_names() {
        assert_eq!(
            lenient_op(r#"{"op":"delete","so":"a","key":7}"#, "read as \"7\""),
            ClientOp::Delete {
                so: "a".into(),
                key: "7".into()
            }
        );
    }

    #[test]
    fn lenient_single_args_value() {
        assert_eq!(
            lenient_op(
                r#"{"op":"send","so":"a","method":"m","args":3}"#,
                "list of one"
            ),
            ClientOp::Send {
                so: "a".into(),
                method: "m".into(),
                args: alloc::vec![Value::Number(3.0)]
            }
        );
    }

    #[test]
    fn lenient_unknown_fields() {
        assert_eq!(
            lenient_op(
                r#"{"op":"release","so":"a","id":12,"v":1}"#,
                "2 unknown field(s) ignored"
            ),
            ClientOp::Release { so: "a".into() }
        );
    }

    #[test]
    fn client_ops() {
        assert_eq!(
            op(r#"{"op":"use","so":"chat"}"#),
            Ok(ClientOp::Use {
                so: "chat".into(),
                persistent: false
            })
        );
        assert_eq!(
            op(r#"{"op":"use","so":"chat","persistent":true}"#),
            Ok(ClientOp::Use {
                so: "chat".into(),
                persistent: true
            })
        );
        assert_eq!(
            op(r#"{"op":"set","so":"chat","key":"k","value":{"n":[1,2]}}"#),
            Ok(ClientOp::Set {
                so: "chat".into(),
                key: "k".into(),
                value: Value::object([(
                    "n",
                    Value::StrictArray(vec![Value::Number(1.0), Value::Number(2.0)])
                )]),
            })
        );
        assert_eq!(
            op(r#"{"op":"set","so":"chat","key":"k","value":null}"#),
            Ok(ClientOp::Set {
                so: "chat".into(),
                key: "k".into(),
                value: Value::Null,
            })
        );
        assert_eq!(
            op(r#"{"op":"delete","so":"chat","key":"k"}"#),
            Ok(ClientOp::Delete {
                so: "chat".into(),
                key: "k".into()
            })
        );
        assert_eq!(
            op(r#"{"op":"send","so":"chat","method":"m","args":[1,"a"]}"#),
            Ok(ClientOp::Send {
                so: "chat".into(),
                method: "m".into(),
                args: vec![Value::Number(1.0), Value::string("a")],
            })
        );
        assert_eq!(
            op(r#"{"op":"send","so":"chat","method":"m"}"#),
            Ok(ClientOp::Send {
                so: "chat".into(),
                method: "m".into(),
                args: vec![],
            })
        );
        assert_eq!(
            op(r#"{"op":"release","so":"chat"}"#),
            Ok(ClientOp::Release { so: "chat".into() })
        );
    }

    #[test]
    fn client_op_errors() {
        let cases = [
            ("{", OpError::InvalidJson),
            ("[1]", OpError::NotAnObject),
            ("{}", OpError::UnknownOp(String::new())),
            (r#"{"op":"dance"}"#, OpError::UnknownOp("dance".into())),
            (r#"{"op":"use"}"#, OpError::MissingField("so")),
            (r#"{"op":"use","so":true}"#, OpError::BadField("so")),
            (r#"{"op":"use","so":""}"#, OpError::BadField("so")),
            (
                r#"{"op":"set","so":"a","key":"k"}"#,
                OpError::MissingField("value"),
            ),
            (
                r#"{"op":"set","so":"a","value":1}"#,
                OpError::MissingField("key"),
            ),
            (r#"{"op":"delete","so":"a"}"#, OpError::MissingField("key")),
            (r#"{"op":"send","so":"a"}"#, OpError::MissingField("method")),
            (
                r#"{"op":"send","so":"a","method":7.5}"#,
                OpError::BadField("method"),
            ),
        ];
        for (text, want) in cases {
            assert_eq!(op(text), Err(want.clone()), "{text}");
            assert!(want.code().starts_with("Protocol."));
        }
        let deep = alloc::format!(
            r#"{{"op":"set","so":"a","key":"k","value":{}1{}}}"#,
            "[".repeat(40),
            "]".repeat(40)
        );
        assert_eq!(op(&deep), Err(OpError::TooComplex));
    }

    fn update(version: u32, notices: Vec<SoNotice>) -> SoUpdate {
        SoUpdate::new("chat".into(), false, version, notices)
    }

    fn parsed(update: &SoUpdate) -> Vec<Json> {
        update_messages(update)
            .iter()
            .map(|s| serde_json::from_str(s).unwrap())
            .collect()
    }

    #[test]
    fn server_messages() {
        let use_answer = update(
            4,
            vec![
                SoNotice::UseSuccess,
                SoNotice::Clear,
                SoNotice::Change {
                    key: "a".into(),
                    value: Value::Number(1.0),
                },
                SoNotice::Change {
                    key: "b".into(),
                    value: Value::string("x"),
                },
            ],
        );
        assert_eq!(
            parsed(&use_answer),
            vec![json!({"op":"sync","so":"chat","version":4,"data":{"a":1,"b":"x"}})]
        );
        let empty = update(0, vec![SoNotice::UseSuccess, SoNotice::Clear]);
        assert_eq!(
            parsed(&empty),
            vec![json!({"op":"sync","so":"chat","version":0,"data":{}})]
        );
        let mixed = update(
            5,
            vec![
                SoNotice::Success { key: "k".into() },
                SoNotice::Change {
                    key: "k".into(),
                    value: Value::Boolean(true),
                },
                SoNotice::Remove { key: "k".into() },
                SoNotice::Message {
                    method: "m".into(),
                    args: vec![Value::Number(1.0)],
                },
                SoNotice::Clear,
                SoNotice::Status {
                    code: "SharedObject.NoWriteAccess",
                    level: "error",
                },
            ],
        );
        assert_eq!(
            parsed(&mixed),
            vec![
                json!({"op":"ack","so":"chat","version":5,"key":"k"}),
                json!({"op":"change","so":"chat","version":5,"key":"k","value":true}),
                json!({"op":"delete","so":"chat","version":5,"key":"k"}),
                json!({"op":"message","so":"chat","version":5,"method":"m","args":[1]}),
                json!({"op":"clear","so":"chat","version":5}),
                json!({"op":"error","so":"chat","code":"SharedObject.NoWriteAccess","message":"write refused"}),
            ]
        );
    }

    #[test]
    fn welcome_and_error() {
        let scope = ScopePath::resolve("chat/room1", 4).unwrap();
        assert_eq!(welcome(&scope), r#"{"op":"welcome","scope":"/chat/room1"}"#);
        assert_eq!(
            error(None, "X.Y", "say \"why\""),
            r#"{"op":"error","code":"X.Y","message":"say \"why\""}"#
        );
        let change = update(
            2,
            vec![SoNotice::Change {
                key: "k".into(),
                value: Value::object([("b", Value::Null), ("a", Value::Number(0.5))]),
            }],
        );
        assert_eq!(
            update_messages(&change),
            vec![String::from(
                r#"{"op":"change","so":"chat","version":2,"key":"k","value":{"a":0.5,"b":null}}"#
            )]
        );
    }
}
