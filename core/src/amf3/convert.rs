//! The mapping between AMF3 values and tern's shared value model
//! ([`amf0::Value`], where AMF3-only values are carried as
//! [`amf0::Value::Avmplus`]). The table is in the [module docs](super).

use super::{Array, DecodeError, Object, Properties, Value};
use super::{INTEGER_MAX, INTEGER_MIN};
use crate::Limits;
use crate::amf0;
use alloc::string::String;
use alloc::vec::Vec;
use bytes::Bytes;

/// Longest string an AMF0 `String` holds; longer ones are `LongString`.
const AMF0_SHORT_STRING: usize = 0xFFFF;

/// The AMF3 encoding of `v` (fresh tables) as an AVM+ value.
fn avmplus(v: &Value) -> amf0::Value {
    let mut out = Vec::new();
    super::encode(v, &mut out);
    amf0::Value::Avmplus(Bytes::from(out))
}

fn amf0_string(s: &str) -> amf0::Value {
    if s.len() > AMF0_SHORT_STRING {
        amf0::Value::LongString(String::from(s))
    } else {
        amf0::Value::String(String::from(s))
    }
}

fn amf0_props(props: &Properties) -> amf0::Properties {
    props.iter().map(|(k, v)| (k.clone(), to_amf0(v))).collect()
}

/// See [`super::to_amf0`].
pub(crate) fn to_amf0(v: &Value) -> amf0::Value {
    match v {
        Value::Undefined => amf0::Value::Undefined,
        Value::Null => amf0::Value::Null,
        Value::Boolean(b) => amf0::Value::Boolean(*b),
        Value::Integer(i) => amf0::Value::Number(f64::from(*i)),
        Value::Double(d) => amf0::Value::Number(*d),
        Value::String(s) => amf0_string(s),
        Value::XmlDocument(s) => amf0::Value::XmlDocument(s.clone()),
        Value::Date(ms) => amf0::Value::Date {
            millis: *ms,
            time_zone: 0,
        },
        Value::Array(a) if a.assoc.is_empty() => {
            amf0::Value::StrictArray(a.dense.iter().map(to_amf0).collect())
        }
        Value::Array(a) if a.dense.is_empty() => amf0::Value::EcmaArray {
            count: 0,
            properties: amf0_props(&a.assoc),
        },
        Value::Object(o) if o.is_anonymous() => {
            amf0::Value::Object(o.dynamic.as_ref().map(amf0_props).unwrap_or_default())
        }
        // A reference has no meaning outside its buffer; resolved values
        // hold none.
        Value::Reference { .. } => amf0::Value::Undefined,
        // Mixed arrays, typed or sealed objects, E4X XML, byte arrays,
        // vectors, dictionaries: AMF3 only.
        _ => avmplus(v),
    }
}

/// See [`super::from_amf0`].
pub(crate) fn from_amf0(v: &amf0::Value, limits: &Limits) -> Result<Value, DecodeError> {
    from_amf0_at(v, 0, limits)
}

/// [`from_amf0`] of a value found at `depth`: an AVM+ value's copies for
/// references count their depth from there.
fn from_amf0_at(v: &amf0::Value, depth: usize, limits: &Limits) -> Result<Value, DecodeError> {
    let inner = depth.saturating_add(1);
    let props = |p: &amf0::Properties| -> Result<Properties, DecodeError> {
        p.iter()
            .map(|(k, v)| Ok((k.clone(), from_amf0_at(v, inner, limits)?)))
            .collect()
    };
    Ok(match v {
        amf0::Value::Number(n) => number(*n),
        amf0::Value::Boolean(b) => Value::Boolean(*b),
        amf0::Value::String(s) | amf0::Value::LongString(s) => Value::String(s.clone()),
        amf0::Value::Object(p) => Value::Object(Object {
            class_name: String::new(),
            sealed: Vec::new(),
            dynamic: Some(props(p)?),
        }),
        amf0::Value::Null | amf0::Value::Reference(_) => Value::Null,
        amf0::Value::Undefined | amf0::Value::Unsupported => Value::Undefined,
        amf0::Value::EcmaArray { properties, .. } => Value::Array(Array {
            assoc: props(properties)?,
            dense: Vec::new(),
        }),
        amf0::Value::StrictArray(items) => Value::Array(Array {
            assoc: Vec::new(),
            dense: items
                .iter()
                .map(|i| from_amf0_at(i, inner, limits))
                .collect::<Result<_, _>>()?,
        }),
        amf0::Value::Date { millis, .. } => Value::Date(*millis),
        amf0::Value::XmlDocument(s) => Value::XmlDocument(s.clone()),
        amf0::Value::TypedObject {
            class_name,
            properties,
        } => Value::Object(Object {
            class_name: class_name.clone(),
            sealed: props(properties)?,
            dynamic: None,
        }),
        amf0::Value::Avmplus(bytes) => {
            let mut input = bytes.as_ref();
            let v = super::decode(&mut input, limits)?;
            if !input.is_empty() {
                return Err(DecodeError::Truncated);
            }
            super::resolve::resolve_at(&v, depth, limits)?
        }
    })
}

/// An AMF0 number as AMF3: an integer when it is whole, within the 29-bit
/// range and not −0, a double otherwise.
fn number(n: f64) -> Value {
    let i = n as i32; // saturating; NaN → 0
    if f64::from(i) == n
        && (INTEGER_MIN..=INTEGER_MAX).contains(&i)
        && !(n == 0.0 && n.is_sign_negative())
    {
        Value::Integer(i)
    } else {
        Value::Double(n)
    }
}

/// See [`super::unwrap_avmplus`].
pub(crate) fn unwrap_avmplus(v: &mut amf0::Value, limits: &Limits) -> Result<(), DecodeError> {
    unwrap_avmplus_at(v, 0, limits)
}

/// [`unwrap_avmplus`] of a value found at `depth` (see [`from_amf0_at`]).
fn unwrap_avmplus_at(
    v: &mut amf0::Value,
    depth: usize,
    limits: &Limits,
) -> Result<(), DecodeError> {
    let inner = depth.saturating_add(1);
    match v {
        amf0::Value::Avmplus(bytes) => {
            let mut input = bytes.as_ref();
            let decoded = super::decode(&mut input, limits)?;
            if !input.is_empty() {
                return Err(DecodeError::Truncated);
            }
            match super::resolve::resolve_at(&decoded, depth, limits) {
                Ok(tree) => *v = to_amf0(&tree),
                // No tree form: carried whole, as sent.
                Err(DecodeError::CyclicReference(_)) => {}
                Err(e) => return Err(e),
            }
        }
        amf0::Value::Object(p)
        | amf0::Value::EcmaArray { properties: p, .. }
        | amf0::Value::TypedObject { properties: p, .. } => {
            for (_, item) in p.iter_mut() {
                unwrap_avmplus_at(item, inner, limits)?;
            }
        }
        amf0::Value::StrictArray(items) => {
            for item in items.iter_mut() {
                unwrap_avmplus_at(item, inner, limits)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// See [`super::wrap_avmplus`].
pub(crate) fn wrap_avmplus(v: &amf0::Value, limits: &Limits) -> amf0::Value {
    if matches!(v, amf0::Value::Avmplus(_)) {
        return v.clone();
    }
    match from_amf0(v, limits) {
        Ok(amf3) => avmplus(&amf3),
        // An embedded AVM+ value with no tree form: the value goes as AMF0
        // (AMF3 readers read AMF0 with AVM+ switches too).
        Err(_) => v.clone(),
    }
}
