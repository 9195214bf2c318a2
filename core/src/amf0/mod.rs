//! AMF0: the value encoding of RTMP commands, data and shared objects.
//!
//! [`Value`] is the parsed meaning; [`decode`] and [`encode`] move between it
//! and the wire. Decoding is bounded by [`Limits`] (nesting
//! depth, value count) and never reads past its input.
//!
//! # Marker mapping
//!
//! | marker | wire                                         | [`Value`]                 |
//! |--------|----------------------------------------------|---------------------------|
//! | 0x00   | f64                                          | `Number` (bits kept, NaN included) |
//! | 0x01   | u8                                           | `Boolean` (non-zero = true) |
//! | 0x02   | u16 len + UTF-8                              | `String`                  |
//! | 0x03   | pairs, `00 00 09`                            | `Object`                  |
//! | 0x04   | movieclip (reserved)                         | [`Amf0Error::ReservedMarker`] |
//! | 0x05   |                                              | `Null`                    |
//! | 0x06   |                                              | `Undefined`               |
//! | 0x07   | u16 index                                    | `Reference` (not resolved) |
//! | 0x08   | u32 count + pairs, `00 00 09`                | `EcmaArray { count, .. }` (count kept, advisory) |
//! | 0x09   | object end where a value is expected         | [`Amf0Error::UnexpectedObjectEnd`] |
//! | 0x0A   | u32 count + values                           | `StrictArray`             |
//! | 0x0B   | f64 ms + i16 time zone                       | `Date`                    |
//! | 0x0C   | u32 len + UTF-8                              | `LongString`              |
//! | 0x0D   |                                              | `Unsupported`             |
//! | 0x0E   | recordset (reserved)                         | [`Amf0Error::ReservedMarker`] |
//! | 0x0F   | u32 len + UTF-8                              | `XmlDocument`             |
//! | 0x10   | u16 class name + pairs, `00 00 09`           | `TypedObject`             |
//! | 0x11   | one AMF3 value                               | `Avmplus` (its bytes; see [`crate::amf3`]) |
//! | ≥ 0x12 |                                              | [`Amf0Error::UnknownMarker`] |
//!
//! # Decisions
//!
//! - **Exact round trip**: `encode(decode(b)) == b` for every accepted `b`
//!   except a boolean byte other than 0/1, which is read as `true` (the
//!   specification's rule) and written back as 0x01. Which string marker
//!   was used is kept (`String` vs `LongString`), as are the ECMA array's
//!   count, number bits and property order.
//! - **Strings** must be UTF-8 ([`Amf0Error::InvalidUtf8`]). Inside an
//!   object, an empty key followed by anything but 0x09 is a property with
//!   an empty name.
//! - **Bounds**: every value, nested ones and AMF3 values inside an AVM+
//!   switch included, counts against `Limits::amf0_max_values`; for
//!   [`decode_all`] the budget covers the whole buffer. Each object, ECMA
//!   array, strict array, typed object (and AMF3 array, object, object
//!   vector, dictionary) nests one level against `Limits::amf0_max_depth`,
//!   so a top-level object is depth 1 and depth 0 admits only scalars.
//!   Every length or count is checked against the remaining input (and the
//!   value budget) before anything is allocated for it.
//! - **AVM+ (0x11)**: the following AMF3 value is walked by a bounded
//!   skipper only to find where it ends (see `amf3.rs`) and kept as its
//!   bytes; [`crate::amf3`] decodes them, and maps them onto this model
//!   ([`crate::amf3::unwrap_avmplus`]), where AMF3-only values stay
//!   `Avmplus`. Externalizable AMF3 objects are refused because their
//!   length cannot be known. [`decode`] and [`decode_all`] give every AVM+
//!   value its own (empty) AMF3 reference tables, so its bytes stand alone;
//!   a [`BodyDecoder`] (for the AMF3-typed message bodies, types 15/16/17)
//!   lets them share one set, as py3amf and Red5 write them — such bytes
//!   are only meaningful together ([`crate::amf3::unwrap_body`]).
//! - **References** (0x07) are kept as indices, not resolved or checked.
//! - **Errors**: [`decode`] advances its input only on success.
//! - **Encoding** is infallible. A `String` longer than 65535 bytes is
//!   written with the long-string marker 0x0C (a decoded `String` never is
//!   that long, so round trips are unaffected). Keys and class names longer
//!   than 65535 bytes, and long strings / XML longer than 2^32-1 bytes, are
//!   truncated at a char boundary (never the case for decoded values).
//!   `Avmplus` bytes are written verbatim after 0x11 and trusted to be one
//!   AMF3 value.

mod amf3;
mod decoder;
mod encoder;
mod error;
mod reader;
#[cfg(test)]
mod tests;
mod value;

pub use error::{Amf0Error, Amf3Error};
pub use value::{Properties, Value};

use crate::Limits;
use alloc::vec::Vec;

/// Decodes one value from the front of `input`, advancing it past the value.
/// On error `input` is left where it was.
pub fn decode(input: &mut &[u8], limits: &Limits) -> Result<Value, Amf0Error> {
    decoder::decode_one(input, &mut decoder::Bounds::new(limits))
}

/// Decodes a string or long string from the front of `input` without
/// copying it, advancing `input` past it. `Ok(None)`, with `input` where it
/// was, if the next value is of another type (decode it with [`decode`]);
/// on error `input` is also left where it was. Strings are checked as
/// [`decode`] checks them.
pub fn decode_str<'a>(input: &mut &'a [u8]) -> Result<Option<&'a str>, Amf0Error> {
    decoder::decode_str(input)
}

/// Decodes an object or ECMA array from the front of `input` whose
/// property values were each accepted on their own, such as a stored shared
/// object's attributes: each value is bounded by `limits` as in its own
/// message, the container by the input's length. `Ok(None)`, with `input`
/// where it was, if the next value is of another type; on error `input` is
/// also left where it was.
pub(crate) fn decode_separate_properties(
    input: &mut &[u8],
    limits: &Limits,
) -> Result<Option<Properties>, Amf0Error> {
    decoder::decode_separate_properties(input, limits)
}

/// Decodes every value in `input` until it is empty. The value-count limit
/// applies to the buffer as a whole.
pub fn decode_all(input: &[u8], limits: &Limits) -> Result<Vec<Value>, Amf0Error> {
    let mut bounds = decoder::Bounds::new(limits);
    let mut rest = input;
    let mut out = Vec::new();
    while !rest.is_empty() {
        out.push(decoder::decode_one(&mut rest, &mut bounds)?);
    }
    Ok(out)
}

/// Decodes the values of one message body in order with one value budget,
/// the AVM+ values among them sharing one set of AMF3 reference tables
/// (a later one may refer to traits an earlier one defined, as py3amf and
/// Red5 write a message body). Their bytes then do not stand alone: put
/// them into the shared model with [`crate::amf3::unwrap_body`], in the
/// same order. After an error the decoder's state is unspecified; the
/// body should be refused.
#[derive(Debug)]
pub struct BodyDecoder {
    bounds: decoder::Bounds,
}

impl BodyDecoder {
    /// A decoder for one body, bounded by `limits` as a whole.
    pub fn new(limits: &Limits) -> Self {
        BodyDecoder {
            bounds: decoder::Bounds::sharing_amf3(limits),
        }
    }

    /// Decodes one value from the front of `input`, advancing it past the
    /// value; on error `input` is left where it was.
    pub fn decode(&mut self, input: &mut &[u8]) -> Result<Value, Amf0Error> {
        decoder::decode_one(input, &mut self.bounds)
    }

    /// Decodes every value in `input` until it is empty.
    pub fn decode_all(&mut self, input: &[u8]) -> Result<Vec<Value>, Amf0Error> {
        let mut rest = input;
        let mut out = Vec::new();
        while !rest.is_empty() {
            out.push(self.decode(&mut rest)?);
        }
        Ok(out)
    }
}

/// Appends the encoding of `value` to `out`. See the module docs for the
/// (never hit by decoded values) cases where a field is too small.
pub fn encode(value: &Value, out: &mut Vec<u8>) {
    encoder::value(value, out);
}
