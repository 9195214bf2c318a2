//! AMF3 → JSON: what a WebSocket (JSON) client is sent for an AMF3-only
//! value. The table is in `docs/ws-protocol.md` ("Value mapping").

use super::Value;
use alloc::borrow::ToOwned;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use base64::Engine as _;
use serde_json::{Map, Value as Json};

/// Largest integer every f64 holds exactly (2^53).
const EXACT_INT: f64 = 9_007_199_254_740_992.0;

/// The key of the one-member object a byte array becomes.
pub const BYTES_KEY: &str = "$bytes";

/// A JSON number for `n`: an integer when `n` is integral and exact, a
/// float otherwise, `null` for NaN and ±∞ (as for AMF0 numbers).
fn number(n: f64) -> Json {
    let int = n as i64; // saturating; NaN → 0
    if n.abs() < EXACT_INT && int as f64 == n && !(n == 0.0 && n.is_sign_negative()) {
        Json::from(int)
    } else {
        serde_json::Number::from_f64(n).map_or(Json::Null, Json::Number)
    }
}

fn tagged(key: &str, value: Json) -> Json {
    let mut m = Map::new();
    m.insert(key.to_owned(), value);
    Json::Object(m)
}

fn members<'a>(out: &mut Map<String, Json>, props: impl Iterator<Item = &'a (String, Value)>) {
    for (k, v) in props {
        out.insert(k.clone(), to_json(v));
    }
}

/// The text a dictionary key becomes when every key is a string or a
/// number; `None` otherwise.
fn key_text(k: &Value) -> Option<String> {
    match k {
        Value::String(s) => Some(s.clone()),
        Value::Integer(i) => Some(i.to_string()),
        Value::Double(d) if d.is_finite() => Some(number(*d).to_string()),
        _ => None,
    }
}

/// See [`super::to_json`].
pub(crate) fn to_json(v: &Value) -> Json {
    match v {
        Value::Undefined | Value::Null | Value::Reference { .. } => Json::Null,
        Value::Boolean(b) => Json::Bool(*b),
        Value::Integer(i) => Json::from(*i),
        Value::Double(d) => number(*d),
        Value::String(s) | Value::XmlDocument(s) | Value::Xml(s) => Json::String(s.clone()),
        Value::Date(ms) => tagged("$date", number(*ms)),
        Value::Array(a) if a.assoc.is_empty() => Json::Array(a.dense.iter().map(to_json).collect()),
        Value::Array(a) => {
            // Dense elements under their indices, then the named members.
            let mut m = Map::new();
            for (i, item) in a.dense.iter().enumerate() {
                m.insert(i.to_string(), to_json(item));
            }
            members(&mut m, a.assoc.iter());
            Json::Object(m)
        }
        Value::Object(o) => {
            let mut m = Map::new();
            members(&mut m, o.members());
            Json::Object(m)
        }
        // What an ArrayCollection or ObjectProxy stands for: its body.
        Value::Externalizable { body, .. } => to_json(body),
        Value::ByteArray(b) => tagged(
            BYTES_KEY,
            Json::String(base64::engine::general_purpose::STANDARD.encode(b)),
        ),
        Value::VectorInt(vec) => Json::Array(vec.items.iter().map(|i| Json::from(*i)).collect()),
        Value::VectorUint(vec) => Json::Array(vec.items.iter().map(|i| Json::from(*i)).collect()),
        Value::VectorDouble(vec) => Json::Array(vec.items.iter().map(|d| number(*d)).collect()),
        Value::VectorObject { items, .. } => Json::Array(items.iter().map(to_json).collect()),
        Value::Dictionary { entries, .. } => {
            let texts: Option<Vec<String>> = entries.iter().map(|(k, _)| key_text(k)).collect();
            match texts {
                // String and number keys: an object.
                Some(texts) => {
                    let m = texts
                        .into_iter()
                        .zip(entries.iter().map(|(_, v)| to_json(v)))
                        .collect();
                    Json::Object(m)
                }
                // Object keys: a list of [key, value] pairs.
                None => Json::Array(
                    entries
                        .iter()
                        .map(|(k, v)| Json::Array(alloc::vec![to_json(k), to_json(v)]))
                        .collect(),
                ),
            }
        }
    }
}

/// The byte array a `{"$bytes": "<base64>"}` object stands for, if `map`
/// is exactly that (standard alphabet, padded).
pub(crate) fn bytes_of(map: &Map<String, Json>) -> Option<Vec<u8>> {
    if map.len() != 1 {
        return None;
    }
    let text = map.get(BYTES_KEY)?.as_str()?;
    base64::engine::general_purpose::STANDARD.decode(text).ok()
}
