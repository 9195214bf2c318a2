//! The AMF0 ↔ JSON mapping (DESIGN.md §6), used wherever values cross
//! between RTMP's AMF0 and JSON: the WebSocket protocol v1 and its chat
//! mode.

use crate::Limits;
use crate::amf0::Value;
use alloc::borrow::ToOwned;
use alloc::string::String;
use serde_json::{Map, Value as Json};

/// Longest string an AMF0 `String` holds; longer ones become `LongString`.
pub const AMF_SHORT_STRING: usize = 0xFFFF;

/// Largest integer every f64 holds exactly (2^53).
const EXACT_INT: f64 = 9_007_199_254_740_992.0;

/// A JSON number for `n`: an integer when `n` is integral and exact, a
/// float otherwise, `null` for NaN and ±∞.
fn number(n: f64) -> Json {
    let int = n as i64; // saturating; NaN → 0
    if n.abs() < EXACT_INT && int as f64 == n && !(n == 0.0 && n.is_sign_negative()) {
        Json::from(int)
    } else {
        serde_json::Number::from_f64(n).map_or(Json::Null, Json::Number)
    }
}

/// AMF0 → JSON. Number ↔ number (NaN/±∞ → null), boolean, string and long
/// string → string, object / ECMA array / typed object → object (class name
/// dropped; a repeated key keeps its last value), strict array → array,
/// null / undefined → null, date → `{"$date": ms}`, XML → string; an AVM+
/// value (an AMF3-only value) as [`crate::amf3::to_json`] maps it (byte
/// array → `{"$bytes": base64}`, vector → array, …). Values with no JSON
/// meaning (reference, unsupported) → null.
pub fn amf_to_json(value: &Value) -> Json {
    match value {
        Value::Number(n) => number(*n),
        Value::Boolean(b) => Json::Bool(*b),
        Value::String(s) | Value::LongString(s) | Value::XmlDocument(s) => Json::String(s.clone()),
        Value::Object(p)
        | Value::EcmaArray { properties: p, .. }
        | Value::TypedObject { properties: p, .. } => Json::Object(
            p.iter()
                .map(|(k, v)| (k.clone(), amf_to_json(v)))
                .collect::<Map<String, Json>>(),
        ),
        Value::StrictArray(items) => Json::Array(items.iter().map(amf_to_json).collect()),
        Value::Date { millis, .. } => {
            let mut m = Map::new();
            m.insert("$date".to_owned(), number(*millis));
            Json::Object(m)
        }
        // Bytes the connection's decoder accepted (or the store wrote):
        // the default bounds are not reached again here.
        Value::Avmplus(b) => crate::amf3::avmplus_to_json(b, &Limits::default()),
        Value::Null | Value::Undefined | Value::Reference(_) | Value::Unsupported => Json::Null,
    }
}

/// An AMF0 string value: `String`, or `LongString` past 65535 bytes.
pub fn amf_string(s: &str) -> Value {
    if s.len() > AMF_SHORT_STRING {
        Value::LongString(s.to_owned())
    } else {
        Value::String(s.to_owned())
    }
}

/// JSON → AMF0, the inverse of [`amf_to_json`] on what JSON can say:
/// number → number, boolean, string → string (long string past 65535
/// bytes), array → strict array, null → null, `{"$date": ms}` (exactly that
/// one key, a number or null) → date with time zone 0, `{"$bytes": base64}`
/// (exactly that one key) → byte array (AVM+), any other object →
/// anonymous object (keys in JSON-object order, which is sorted).
pub fn json_to_amf(value: &Json) -> Value {
    match value {
        Json::Null => Value::Null,
        Json::Bool(b) => Value::Boolean(*b),
        Json::Number(n) => Value::Number(n.as_f64().unwrap_or(f64::NAN)),
        Json::String(s) => amf_string(s),
        Json::Array(items) => Value::StrictArray(items.iter().map(json_to_amf).collect()),
        Json::Object(map) => {
            if map.len() == 1
                && let Some(date) = map.get("$date")
                && (date.is_number() || date.is_null())
            {
                return Value::Date {
                    millis: date.as_f64().unwrap_or(f64::NAN),
                    time_zone: 0,
                };
            }
            if let Some(bytes) = crate::amf3::bytes_from_json(map) {
                return bytes;
            }
            Value::Object(
                map.iter()
                    .map(|(k, v)| (k.clone(), json_to_amf(v)))
                    .collect(),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;
    use proptest::prelude::*;
    use serde_json::json;

    #[test]
    fn amf_to_json_table() {
        let cases = [
            (Value::Number(1.5), json!(1.5)),
            (Value::Number(3.0), json!(3)),
            (Value::Number(f64::NAN), json!(null)),
            (Value::Number(f64::INFINITY), json!(null)),
            (Value::Number(f64::NEG_INFINITY), json!(null)),
            (Value::Boolean(true), json!(true)),
            (Value::string("hi"), json!("hi")),
            (Value::LongString("long".into()), json!("long")),
            (
                Value::object([("a", Value::Number(1.0)), ("b", Value::Null)]),
                json!({"a": 1, "b": null}),
            ),
            (
                Value::EcmaArray {
                    count: 0,
                    properties: vec![("k".into(), Value::string("v"))],
                },
                json!({"k": "v"}),
            ),
            (
                Value::TypedObject {
                    class_name: "C".into(),
                    properties: vec![("x".into(), Value::Boolean(false))],
                },
                json!({"x": false}),
            ),
            (
                Value::StrictArray(vec![Value::Number(1.0), Value::string("a")]),
                json!([1, "a"]),
            ),
            (Value::Null, json!(null)),
            (Value::Undefined, json!(null)),
            (
                Value::Date {
                    millis: 1_700_000_000_000.0,
                    time_zone: 60,
                },
                json!({"$date": 1_700_000_000_000u64}),
            ),
            (Value::XmlDocument("<a/>".into()), json!("<a/>")),
            (Value::Unsupported, json!(null)),
        ];
        for (amf, want) in cases {
            assert_eq!(amf_to_json(&amf), want, "{amf:?}");
        }
    }

    #[test]
    fn json_to_amf_table() {
        assert_eq!(json_to_amf(&json!(2)), Value::Number(2.0));
        assert_eq!(json_to_amf(&json!("s")), Value::string("s"));
        assert_eq!(
            json_to_amf(&json!("x".repeat(70_000))),
            Value::LongString("x".repeat(70_000))
        );
        assert_eq!(
            json_to_amf(&json!({"$date": 5})),
            Value::Date {
                millis: 5.0,
                time_zone: 0
            }
        );
        // Not a date: a second key, or a non-number.
        assert_eq!(
            json_to_amf(&json!({"$date": "x"})),
            Value::object([("$date", Value::string("x"))])
        );
        assert_eq!(
            json_to_amf(&json!([null, true, {"b": 1, "a": 2}])),
            Value::StrictArray(vec![
                Value::Null,
                Value::Boolean(true),
                Value::object([("a", Value::Number(2.0)), ("b", Value::Number(1.0))]),
            ])
        );
    }

    /// JSON values that survive JSON → AMF → JSON exactly: integers are
    /// exact, floats are non-integral, objects are not `{"$date": n}`.
    fn json_value() -> impl Strategy<Value = Json> {
        let leaf = prop_oneof![
            Just(Json::Null),
            any::<bool>().prop_map(Json::Bool),
            (-(1i64 << 53) + 1..(1i64 << 53)).prop_map(Json::from),
            any::<f64>()
                .prop_filter("finite non-integral", |f| f.is_finite() && f.fract() != 0.0)
                .prop_map(Json::from),
            ".{0,12}".prop_map(Json::String),
        ];
        leaf.prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(Json::Array),
                proptest::collection::btree_map("[a-z$]{0,6}", inner, 0..6)
                    .prop_filter("not a date", |m| !(m.len() == 1 && m.contains_key("$date")))
                    .prop_map(|m| Json::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn json_amf_json_round_trip(v in json_value()) {
            prop_assert_eq!(amf_to_json(&json_to_amf(&v)), v);
        }

        #[test]
        fn dates_round_trip(ms in -(1i64 << 53) + 1..(1i64 << 53)) {
            let v = json!({"$date": ms});
            prop_assert_eq!(amf_to_json(&json_to_amf(&v)), v);
        }
    }
}
