//! What nodes say on the bus: one shared-object operation per message, in
//! AMF0 (the value model shared objects already use), and the subject it
//! is sequenced under.

use crate::Limits;
use crate::amf0::{self, Value};
use crate::hub::SoChange;
use crate::scope_path::{ScopePath, validate_segment};
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

/// The format version written first in every message. A node refuses
/// (skips, logging why) messages of another version.
pub const FORMAT: f64 = 1.0;

/// The subject prefix of shared-object messages; the JetStream stream
/// holds `tern.so.>`.
pub const SO_SUBJECT_PREFIX: &str = "tern.so.";

/// One shared-object operation, as every node applies it.
#[derive(Clone, Debug, PartialEq)]
pub struct SoMessage {
    /// The node that proposed it.
    pub origin: String,
    /// The proposing node's id for this write (0: a server-side write with
    /// nobody waiting for its result).
    pub write: u64,
    /// The object's scope.
    pub scope: ScopePath,
    /// The object's name (a valid segment).
    pub name: String,
    /// The persistence flag the writer used.
    pub persistent: bool,
    /// What it does.
    pub op: SoMessageOp,
}

/// The operation inside an [`SoMessage`].
#[derive(Clone, Debug, PartialEq)]
pub enum SoMessageOp {
    /// One atomic batch: one version step.
    Batch(Vec<SoChange>),
    /// A broadcast call (no version step).
    Send { method: String, args: Vec<Value> },
    /// A server-side clear (one version step).
    Clear,
}

/// Why a bus message could not be read.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum MessageError {
    /// The AMF0 encoding is broken or breaks a limit.
    Amf0(amf0::Amf0Error),
    /// Written by another format version.
    Format(f64),
    /// A field is missing or has the wrong type.
    Field(&'static str),
    /// The scope or object name is not valid.
    Name(crate::scope_path::NameError),
}

impl fmt::Display for MessageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MessageError::Amf0(e) => write!(f, "bus message: {e}"),
            MessageError::Format(v) => {
                write!(f, "bus message format {v}, this node reads {FORMAT}")
            }
            MessageError::Field(name) => write!(f, "bus message: field {name} missing or mistyped"),
            MessageError::Name(e) => write!(f, "bus message: {e}"),
        }
    }
}

impl core::error::Error for MessageError {}

/// The subject of an object: `tern.so.` then the scope's segments and the
/// object name, one token each. A segment may hold `.` and `_`
/// (`[A-Za-z0-9_.-]`), which are escaped as `_2E` and `_5F` so a token
/// never splits.
pub fn so_subject(scope: &ScopePath, name: &str) -> String {
    let mut out = String::from(SO_SUBJECT_PREFIX);
    let mut first = true;
    for segment in scope.segments().chain(core::iter::once(name)) {
        if !first {
            out.push('.');
        }
        first = false;
        for c in segment.chars() {
            match c {
                '.' => out.push_str("_2E"),
                '_' => out.push_str("_5F"),
                c => out.push(c),
            }
        }
    }
    out
}

impl SoMessage {
    /// The subject it is sequenced under.
    pub fn subject(&self) -> String {
        so_subject(&self.scope, &self.name)
    }

    /// The bytes on the bus: AMF0 values one after another.
    pub fn encode(&self) -> Vec<u8> {
        let mut values = alloc::vec![
            Value::Number(FORMAT),
            Value::string(self.origin.as_str()),
            // Write ids stay far below 2^53 (one per client write).
            Value::Number(self.write as f64),
            Value::string(self.scope.as_str()),
            Value::string(self.name.as_str()),
            Value::Boolean(self.persistent),
        ];
        match &self.op {
            SoMessageOp::Batch(changes) => {
                values.push(Value::string("batch"));
                values.push(Value::StrictArray(
                    changes
                        .iter()
                        .map(|c| match c {
                            SoChange::Set { key, value } => Value::StrictArray(alloc::vec![
                                Value::string(key.as_str()),
                                value.clone()
                            ]),
                            SoChange::Delete { key } => {
                                Value::StrictArray(alloc::vec![Value::string(key.as_str())])
                            }
                        })
                        .collect(),
                ));
            }
            SoMessageOp::Send { method, args } => {
                values.push(Value::string("send"));
                values.push(Value::string(method.as_str()));
                values.push(Value::StrictArray(args.clone()));
            }
            SoMessageOp::Clear => values.push(Value::string("clear")),
        }
        let mut out = Vec::new();
        for v in &values {
            amf0::encode(v, &mut out);
        }
        out
    }

    /// Reads a message from the bus, within `limits`.
    pub fn decode(bytes: &[u8], limits: &Limits) -> Result<SoMessage, MessageError> {
        let values = amf0::decode_all(bytes, limits).map_err(MessageError::Amf0)?;
        let mut it = values.into_iter();
        let format = it
            .next()
            .and_then(|v| v.as_f64())
            .ok_or(MessageError::Field("format"))?;
        if format != FORMAT {
            return Err(MessageError::Format(format));
        }
        let origin = string(it.next(), "origin")?;
        let write = it
            .next()
            .and_then(|v| v.as_f64())
            .filter(|w| *w >= 0.0 && *w <= 9_007_199_254_740_992.0)
            .ok_or(MessageError::Field("write"))? as u64;
        let scope = string(it.next(), "scope")?;
        let scope = ScopePath::resolve(&scope, usize::MAX).map_err(MessageError::Name)?;
        let name = string(it.next(), "name")?;
        validate_segment(&name).map_err(MessageError::Name)?;
        let persistent = it
            .next()
            .and_then(|v| v.as_bool())
            .ok_or(MessageError::Field("persistent"))?;
        let kind = string(it.next(), "kind")?;
        let op = match kind.as_str() {
            "batch" => {
                let Some(Value::StrictArray(items)) = it.next() else {
                    return Err(MessageError::Field("changes"));
                };
                let mut changes = Vec::with_capacity(items.len());
                for item in items {
                    let Value::StrictArray(parts) = item else {
                        return Err(MessageError::Field("change"));
                    };
                    let mut parts = parts.into_iter();
                    let key = string(parts.next(), "key")?;
                    changes.push(match parts.next() {
                        Some(value) => SoChange::Set { key, value },
                        None => SoChange::Delete { key },
                    });
                }
                SoMessageOp::Batch(changes)
            }
            "send" => {
                let method = string(it.next(), "method")?;
                let Some(Value::StrictArray(args)) = it.next() else {
                    return Err(MessageError::Field("args"));
                };
                SoMessageOp::Send { method, args }
            }
            "clear" => SoMessageOp::Clear,
            _ => return Err(MessageError::Field("kind")),
        };
        Ok(SoMessage {
            origin,
            write,
            scope,
            name,
            persistent,
            op,
        })
    }
}

fn string(value: Option<Value>, field: &'static str) -> Result<String, MessageError> {
    match value {
        Some(Value::String(s) | Value::LongString(s)) => Ok(s),
        _ => Err(MessageError::Field(field)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope(s: &str) -> ScopePath {
        ScopePath::resolve(s, 8).unwrap()
    }

    #[test]
    fn messages_round_trip() {
        for op in [
            SoMessageOp::Batch(alloc::vec![
                SoChange::Set {
                    key: "k".into(),
                    value: Value::object([("a", Value::Number(1.0))]),
                },
                SoChange::Delete { key: "gone".into() },
            ]),
            SoMessageOp::Send {
                method: "say".into(),
                args: alloc::vec![Value::string("hi"), Value::Null],
            },
            SoMessageOp::Clear,
        ] {
            let m = SoMessage {
                origin: "node-1".into(),
                write: 42,
                scope: scope("chat/room1"),
                name: "board".into(),
                persistent: true,
                op,
            };
            let back = SoMessage::decode(&m.encode(), &Limits::default()).unwrap();
            assert_eq!(back, m);
        }
    }

    #[test]
    fn broken_messages_are_typed_errors() {
        let m = SoMessage {
            origin: "n".into(),
            write: 1,
            scope: scope("chat"),
            name: "o".into(),
            persistent: false,
            op: SoMessageOp::Clear,
        };
        let bytes = m.encode();
        for cut in 0..bytes.len() {
            assert!(SoMessage::decode(&bytes[..cut], &Limits::default()).is_err());
        }
        let mut other = Vec::new();
        amf0::encode(&Value::Number(2.0), &mut other);
        assert_eq!(
            SoMessage::decode(&other, &Limits::default()),
            Err(MessageError::Format(2.0))
        );
    }

    #[test]
    fn subjects_keep_one_token_per_segment() {
        assert_eq!(
            so_subject(&scope("chat/a.b_c"), "so.1"),
            "tern.so.chat.a_2Eb_5Fc.so_2E1"
        );
    }
}
