//! AMF3: the value encoding of ActionScript 3 (Flash Player 9+, AIR).
//!
//! [`Value`] is the parsed meaning; [`decode`] and [`encode`] move between
//! it and the wire. Decoding is bounded by [`Limits`] like AMF0's and never
//! reads past its input. [`to_amf0`], [`from_amf0`], [`unwrap_avmplus`]
//! and [`wrap_avmplus`] map it onto tern's shared value model, and
//! [`to_json`] onto JSON; the full three-way table is in
//! `docs/architecture.md` ("One value model").
//!
//! # Marker mapping
//!
//! | marker | wire                                             | [`Value`] |
//! |--------|--------------------------------------------------|-----------|
//! | 0x00–0x03 |                                               | `Undefined`, `Null`, `Boolean(false)`, `Boolean(true)` |
//! | 0x04   | U29, sign-extended from bit 28                    | `Integer` |
//! | 0x05   | f64                                               | `Double` (bits kept) |
//! | 0x06   | U29 len/ref + UTF-8 (string table)                | `String` (references resolved) |
//! | 0x07   | U29 len/ref + UTF-8 (object table)                | `XmlDocument` / `Reference` |
//! | 0x08   | U29 flag/ref + f64 ms (object table)              | `Date` / `Reference` |
//! | 0x09   | U29 dense count/ref, assoc pairs, `01`, dense     | `Array` / `Reference` |
//! | 0x0A   | U29 traits/ref, class, sealed names, values, dyn  | `Object` / `Reference` (traits references resolved) |
//! | 0x0A   | externalizable traits, class, one value           | `Externalizable` (known classes only) |
//! | 0x0B   | U29 len/ref + UTF-8 (object table)                | `Xml` / `Reference` |
//! | 0x0C   | U29 len/ref + bytes (object table)                | `ByteArray` / `Reference` |
//! | 0x0D–0x0F | U29 count/ref, fixed byte, 4/4/8-byte items    | `VectorInt`, `VectorUint`, `VectorDouble` / `Reference` |
//! | 0x10   | U29 count/ref, fixed byte, type name, values      | `VectorObject` / `Reference` |
//! | 0x11   | U29 count/ref, weak-keys byte, key/value pairs    | `Dictionary` / `Reference` |
//! | ≥ 0x12 |                                                   | [`DecodeError::UnknownMarker`] |
//!
//! # Decisions
//!
//! - **References**: string and traits references are resolved while
//!   decoding and re-created while encoding (every non-empty string and
//!   every traits layout written a second time is a reference, which is
//!   what Flash, Red5 and PyAMF write), so such buffers round-trip to the
//!   same bytes. Object references stay [`Value::Reference`] (a value may
//!   contain itself); [`resolve`] replaces them with copies.
//! - **Externalizable objects** (traits flag 0b100): their body is
//!   class-specific code's output, so it cannot be read or even delimited
//!   without the class. The classes whose body is one AMF3 value
//!   ([`EXTERNALIZABLE_ONE_VALUE`]: Flex's `ArrayCollection`, `ArrayList`,
//!   `ObjectProxy`) are read as [`Value::Externalizable`]; every other one
//!   is refused with [`DecodeError::Externalizable`].
//! - **Exact round trip**: `encode(decode(b)) == b` for what the writers
//!   above produce, except: a vector's fixed byte or a dictionary's
//!   weak-keys byte other than 0/1 is read as true and written as 1;
//!   inline strings that repeat an earlier one are written back as
//!   references; a U29 written longer than needed is written short.
//! - **Bounds** (shared with AMF0): every value and every inline string
//!   (a string-table entry) counts against `Limits::amf0_max_values`, so
//!   the string, traits and object tables are bounded by it; arrays,
//!   objects, object vectors and dictionaries nest against
//!   `Limits::amf0_max_depth`; every length and count is checked against
//!   the remaining input (and the value budget) before anything is
//!   allocated; string bytes, inline or copied for string and traits
//!   references, are bounded by twice `Limits::max_message` (one budget
//!   for both, so that writing a repeated inline string as a reference
//!   costs a reader nothing more), and bytes copied for object references
//!   in [`resolve`] by `Limits::max_message`. The copies nest against
//!   `Limits::amf0_max_depth` too, counted from where the AVM+ value sits
//!   among AMF0 containers when it sits in one ([`from_amf0`],
//!   [`unwrap_avmplus`], [`unwrap_body`]), as the AMF0 decoder counted the
//!   value as sent: the shared model then holds nothing deeper than the
//!   limits in either encoding.
//! - **Encoding** is infallible: an `Integer` outside the 29-bit range is
//!   written as a double (as Flash does); lengths and counts past 2^28−1
//!   are cut to that (never the case for decoded values); members with an
//!   empty name are skipped (the empty name ends a member list).
//! - **Errors**: [`decode`] advances its input only on success.

mod body;
mod convert;
mod decoder;
mod encoder;
mod error;
mod json;
mod resolve;
#[cfg(test)]
mod tests;
mod value;

pub use error::DecodeError;
pub use json::BYTES_KEY;
pub use value::{
    Array, EXTERNALIZABLE_ONE_VALUE, INTEGER_MAX, INTEGER_MIN, Object, Properties, Value, Vector,
};

use crate::Limits;
use crate::amf0;
use alloc::vec::Vec;

/// Decodes one value from the front of `input` with fresh reference
/// tables, advancing `input` past it. On error `input` is left where it
/// was.
pub fn decode(input: &mut &[u8], limits: &Limits) -> Result<Value, DecodeError> {
    let mut d = decoder::Decoder::new(input, limits);
    let v = d.value(0)?;
    *input = d.rest();
    Ok(v)
}

/// Appends the encoding of `value` to `out`, with fresh reference tables.
pub fn encode(value: &Value, out: &mut Vec<u8>) {
    encoder::Encoder::new(out).value(value);
}

/// `value` with every [`Value::Reference`] replaced by a copy of the value
/// it refers to (object-table order: complex values in the order they
/// start, a container before its children). Fails with
/// [`DecodeError::CyclicReference`] for a value that contains itself, and
/// when the copies exceed the bounds (see the module docs).
pub fn resolve(value: &Value, limits: &Limits) -> Result<Value, DecodeError> {
    resolve::resolve(value, limits)
}

/// A resolved AMF3 value in the shared model. Undefined, null, booleans,
/// strings, XML documents and dates map to their AMF0 twins, integers and
/// doubles to numbers, a dense-only array to a strict array, an
/// associative-only array to an ECMA array, an anonymous dynamic object to
/// an object; everything else (mixed arrays, typed or sealed objects, E4X
/// XML, byte arrays, vectors, dictionaries) stays AMF3, as
/// [`amf0::Value::Avmplus`] holding its encoding. Nested values map the
/// same way, one by one.
pub fn to_amf0(value: &Value) -> amf0::Value {
    convert::to_amf0(value)
}

/// A shared-model value in AMF3: numbers that are whole, within the 29-bit
/// range and not −0 become integers, other numbers doubles; objects become
/// anonymous dynamic objects, ECMA arrays associative arrays, strict arrays
/// dense arrays, typed objects objects of that class with every property
/// sealed, AMF0 references null, unsupported undefined; an AVM+ value is
/// decoded and resolved (it fails when it cannot be).
pub fn from_amf0(value: &amf0::Value, limits: &Limits) -> Result<Value, DecodeError> {
    convert::from_amf0(value, limits)
}

/// Replaces, in place, every AVM+ value inside `value` by its shared-model
/// form ([`to_amf0`] of the decoded, resolved value): what an AMF3 client
/// sent becomes what an AMF0 client would have sent for the same data,
/// where AMF0 can say it. A value that contains itself stays AVM+. Fails
/// when an AVM+ value does not decode.
pub fn unwrap_avmplus(value: &mut amf0::Value, limits: &Limits) -> Result<(), DecodeError> {
    convert::unwrap_avmplus(value, limits)
}

/// [`unwrap_avmplus`] for the values of one message body (types 15, 16,
/// 17 — and 19, whose values are unwrapped too), in order, as decoded by
/// one [`amf0::BodyDecoder`]: their AVM+ values are read with one set of
/// string, traits and object tables, as py3amf and Red5 write them, so a
/// later one may refer to what an earlier one defined. A body written with
/// fresh tables per value reads the same as long as no value after the
/// first uses a reference ("AMF3 reference tables" in
/// docs/architecture.md). The tables, the value budget and the copies made
/// for references are bounded by `limits` for the body as a whole.
///
/// Every AVM+ value left in the model afterwards stands alone (it is
/// decodable by itself): a value with no tree form (it contains itself)
/// is written anew with its own tables, and refused with
/// [`DecodeError::CyclicReference`] when it refers to an object of an
/// earlier value. On error the values are left as they were.
pub fn unwrap_body<'v>(
    values: impl IntoIterator<Item = &'v mut amf0::Value>,
    limits: &Limits,
) -> Result<(), DecodeError> {
    body::unwrap_body(values, limits)
}

/// Rewrites, in place, the AVM+ values of one message body tern writes
/// (in order) so that it reads the same with one set of reference tables
/// for the body (py3amf, Red5, tern) and with fresh tables per value: the
/// first AVM+ value is left as it is, every later one is written with no
/// string or traits references. (Values holding object references — no
/// tree form — are numbered for the shared-table reader.) A body with
/// fewer than two AVM+ values is left alone. `limits` bound the decoding
/// of the AVM+ values; one that does not decode is left as it is.
pub fn portable_body<'v>(values: impl IntoIterator<Item = &'v mut amf0::Value>, limits: &Limits) {
    body::portable_body(values, limits);
}

/// `value` as one AVM+ value ([`from_amf0`], encoded): what an AMF3
/// client is sent. An AVM+ value is returned as it is; a value holding an
/// AVM+ value that cannot be resolved is returned unchanged (AMF3 readers
/// read AMF0 too).
pub fn wrap_avmplus(value: &amf0::Value, limits: &Limits) -> amf0::Value {
    convert::wrap_avmplus(value, limits)
}

/// A resolved AMF3 value as JSON: integers and doubles → numbers (NaN and
/// ±∞ → null), strings and XML → strings, dates → `{"$date": ms}`, byte
/// arrays → `{"$bytes": "<base64>"}`, vectors → arrays, dense arrays →
/// arrays, other arrays and objects → objects (class names dropped),
/// dictionaries → objects when every key is a string or number, else a
/// list of `[key, value]` pairs; undefined, null and references → null.
pub fn to_json(value: &Value) -> serde_json::Value {
    json::to_json(value)
}

/// The JSON of an AVM+ value's bytes (decoded, resolved, [`to_json`]);
/// `null` when they do not decode.
pub fn avmplus_to_json(bytes: &[u8], limits: &Limits) -> serde_json::Value {
    let mut input = bytes;
    decode(&mut input, limits)
        .and_then(|v| resolve(&v, limits))
        .map_or(serde_json::Value::Null, |v| to_json(&v))
}

/// The byte array a JSON `{"$bytes": "<base64>"}` object stands for, as an
/// AVM+ value in the shared model; `None` for any other object.
pub fn bytes_from_json(
    map: &serde_json::Map<alloc::string::String, serde_json::Value>,
) -> Option<amf0::Value> {
    json::bytes_of(map).map(|b| convert::to_amf0(&Value::ByteArray(b)))
}
