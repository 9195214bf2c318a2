//! AMF0: the value encoding of RTMP commands, data and shared objects.
//!
//! [`Value`] is the parsed meaning; [`decode`] and [`encode`] move between it
//! and the wire. Decoding is bounded by [`Limits`](crate::Limits) (nesting
//! depth, value count) and never reads past its input.

mod value;

pub use value::{Properties, Value};

use crate::Limits;
use alloc::vec::Vec;
use core::fmt;

/// Why an AMF0 buffer could not be decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Amf0Error {
    /// The input ended inside a value.
    Truncated,
}

impl fmt::Display for Amf0Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Amf0Error::Truncated => f.write_str("AMF0 input ends inside a value"),
        }
    }
}

/// Decodes one value from the front of `input`, advancing it past the value.
pub fn decode(input: &mut &[u8], limits: &Limits) -> Result<Value, Amf0Error> {
    let _ = (input, limits);
    Err(Amf0Error::Truncated) // placeholder until the decoder lands
}

/// Decodes every value in `input` until it is empty.
pub fn decode_all(input: &[u8], limits: &Limits) -> Result<Vec<Value>, Amf0Error> {
    let mut rest = input;
    let mut out = Vec::new();
    while !rest.is_empty() {
        out.push(decode(&mut rest, limits)?);
    }
    Ok(out)
}

/// Appends the encoding of `value` to `out`.
pub fn encode(value: &Value, out: &mut Vec<u8>) {
    let _ = (value, out); // placeholder until the encoder lands
}
