//! The owned AMF0 value: what a decoded AMF0 buffer means, independent of
//! the bytes it came from.

use alloc::string::String;
use alloc::vec::Vec;
use bytes::Bytes;

/// Ordered key/value pairs of an object, ECMA array or typed object.
/// Order is kept so a decoded value re-encodes to the same bytes.
pub type Properties = Vec<(String, Value)>;

/// One AMF0 value. Every marker 0x00–0x11 except the reserved ones
/// (movieclip 0x04, recordset 0x0E) and the object-end marker 0x09 (a
/// terminator, not a value) has a variant.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// 0x00: an IEEE-754 double.
    Number(f64),
    /// 0x01.
    Boolean(bool),
    /// 0x02: UTF-8, at most 65535 bytes on the wire.
    String(String),
    /// 0x03: anonymous object.
    Object(Properties),
    /// 0x05.
    Null,
    /// 0x06.
    Undefined,
    /// 0x07: index of an earlier complex value in the same buffer.
    Reference(u16),
    /// 0x08: associative array. `count` is the advisory length the sender
    /// wrote (often 0); kept for an exact round trip.
    EcmaArray { count: u32, properties: Properties },
    /// 0x0A: dense array.
    StrictArray(Vec<Value>),
    /// 0x0B: milliseconds since the Unix epoch and the (unused by Flash,
    /// usually 0) time-zone offset in minutes.
    Date { millis: f64, time_zone: i16 },
    /// 0x0C: UTF-8 longer than 65535 bytes (or written with this marker).
    LongString(String),
    /// 0x0D.
    Unsupported,
    /// 0x0F: XML text.
    XmlDocument(String),
    /// 0x10: object with a registered class name.
    TypedObject {
        class_name: String,
        properties: Properties,
    },
    /// 0x11: switch to AMF3. The bytes of the one AMF3 value that follows the
    /// marker, re-encoded verbatim. In tern's shared value model it holds
    /// the values AMF0 has no twin for (see [`crate::amf3::to_amf0`]).
    Avmplus(Bytes),
}

impl Value {
    /// The string inside `String` or `LongString`.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) | Value::LongString(s) => Some(s),
            _ => None,
        }
    }

    /// The number inside `Number`.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Number(n) => Some(*n),
            _ => None,
        }
    }

    /// The boolean inside `Boolean`.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Boolean(b) => Some(*b),
            _ => None,
        }
    }

    /// The properties of an object, ECMA array or typed object.
    pub fn properties(&self) -> Option<&Properties> {
        match self {
            Value::Object(p)
            | Value::EcmaArray { properties: p, .. }
            | Value::TypedObject { properties: p, .. } => Some(p),
            _ => None,
        }
    }

    /// The first property named `key` of an object-like value.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.properties()?
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
    }

    /// Shorthand for `Value::String(s.into())`.
    pub fn string(s: impl Into<String>) -> Value {
        Value::String(s.into())
    }

    /// Builds an anonymous object from `(key, value)` pairs.
    pub fn object<K: Into<String>>(pairs: impl IntoIterator<Item = (K, Value)>) -> Value {
        Value::Object(pairs.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }
}
