//! Bytes → [`Value`], bounded by [`Limits`].
//!
//! Recursive descent; recursion depth is bounded by `amf0_max_depth`, so the
//! stack a peer can make us use is bounded by configuration, not by input.

use super::reader::Reader;
use super::{Amf0Error, Properties, Value, amf3};
use crate::Limits;
use alloc::string::String;
use alloc::vec::Vec;
use bytes::Bytes;

/// The depth and value-count budget of one decode call (or of one
/// [`decode_all`](super::decode_all) buffer, or of one
/// [`BodyDecoder`](super::BodyDecoder)). Shared with the AMF3 skipper so
/// an AVM+ value cannot escape the bounds; it also holds the skipper's
/// traits table.
#[derive(Debug)]
pub(crate) struct Bounds {
    max_depth: usize,
    max_values: usize,
    values_left: usize,
    /// Whether the AVM+ values met share one set of AMF3 reference tables
    /// (else each starts with empty ones).
    pub(crate) share_amf3: bool,
    /// The AMF3 skipper's traits table. At most one entry per counted
    /// object value, so bounded by the value budget.
    pub(crate) amf3_traits: Vec<amf3::Traits>,
}

impl Bounds {
    pub(crate) fn new(limits: &Limits) -> Self {
        Bounds {
            max_depth: limits.amf0_max_depth,
            max_values: limits.amf0_max_values,
            values_left: limits.amf0_max_values,
            share_amf3: false,
            amf3_traits: Vec::new(),
        }
    }

    /// Like [`new`](Self::new), with every AVM+ value sharing one set of
    /// AMF3 reference tables.
    pub(crate) fn sharing_amf3(limits: &Limits) -> Self {
        Bounds {
            share_amf3: true,
            ..Bounds::new(limits)
        }
    }

    /// Accounts for one more decoded value.
    pub(crate) fn count_value(&mut self) -> Result<(), Amf0Error> {
        self.values_left = self
            .values_left
            .checked_sub(1)
            .ok_or(Amf0Error::TooManyValues {
                max: self.max_values,
            })?;
        Ok(())
    }

    /// Fails early when a container announces more children than the budget
    /// has left, before anything is allocated for them.
    pub(crate) fn check_values_left(&self, children: usize) -> Result<(), Amf0Error> {
        if children > self.values_left {
            return Err(Amf0Error::TooManyValues {
                max: self.max_values,
            });
        }
        Ok(())
    }

    /// The depth of the children of a container found at `depth`.
    pub(crate) fn enter(&self, depth: usize) -> Result<usize, Amf0Error> {
        let inner = depth.saturating_add(1);
        if inner > self.max_depth {
            return Err(Amf0Error::TooDeep {
                max: self.max_depth,
            });
        }
        Ok(inner)
    }
}

/// Decodes one value from the front of `input` within `bounds`; advances
/// `input` only on success.
pub(crate) fn decode_one(input: &mut &[u8], bounds: &mut Bounds) -> Result<Value, Amf0Error> {
    let mut r = Reader::new(input);
    let v = value(&mut r, bounds, 0)?;
    *input = r.rest();
    Ok(v)
}

/// A peer-announced length as `usize`; a length that does not even fit the
/// address space certainly exceeds the input.
fn length(len: u32) -> Result<usize, Amf0Error> {
    usize::try_from(len).map_err(|_| Amf0Error::Truncated)
}

/// `len` bytes of UTF-8. The copy is sized by bytes already present.
fn utf8(r: &mut Reader<'_>, len: usize) -> Result<String, Amf0Error> {
    utf8_str(r, len).map(String::from)
}

/// `len` bytes of UTF-8, borrowed.
fn utf8_str<'a>(r: &mut Reader<'a>, len: usize) -> Result<&'a str, Amf0Error> {
    core::str::from_utf8(r.bytes(len)?).map_err(|_| Amf0Error::InvalidUtf8)
}

/// The text of a string (0x02, u16 length) or long string (0x0C, u32
/// length) whose marker was just read, borrowed; `None` for other markers.
fn string_body<'a>(r: &mut Reader<'a>, marker: u8) -> Result<Option<&'a str>, Amf0Error> {
    let len = match marker {
        0x02 => usize::from(r.u16()?),
        0x0C => length(r.u32()?)?,
        _ => return Ok(None),
    };
    utf8_str(r, len).map(Some)
}

/// See [`decode_str`](super::decode_str).
pub(crate) fn decode_str<'a>(input: &mut &'a [u8]) -> Result<Option<&'a str>, Amf0Error> {
    let mut r = Reader::new(input);
    let marker = r.u8()?;
    let text = string_body(&mut r, marker)?;
    if text.is_some() {
        *input = r.rest();
    }
    Ok(text)
}

fn value(r: &mut Reader<'_>, b: &mut Bounds, depth: usize) -> Result<Value, Amf0Error> {
    let marker = r.u8()?;
    match marker {
        0x04 | 0x0E => return Err(Amf0Error::ReservedMarker(marker)),
        0x09 => return Err(Amf0Error::UnexpectedObjectEnd),
        0x12.. => return Err(Amf0Error::UnknownMarker(marker)),
        _ => {}
    }
    b.count_value()?;
    let v = match marker {
        0x00 => Value::Number(r.f64()?),
        // Any non-zero byte is true (the specification's rule); it
        // re-encodes as 0x01.
        0x01 => Value::Boolean(r.u8()? != 0),
        // `string_body` reads these two markers' text (always `Some`).
        0x02 => Value::String(String::from(string_body(r, marker)?.unwrap_or_default())),
        0x03 => Value::Object(properties(r, b, b.enter(depth)?)?),
        0x05 => Value::Null,
        0x06 => Value::Undefined,
        0x07 => Value::Reference(r.u16()?),
        0x08 => {
            let count = r.u32()?;
            let inner = b.enter(depth)?;
            Value::EcmaArray {
                count,
                properties: properties(r, b, inner)?,
            }
        }
        0x0A => Value::StrictArray(strict_array(r, b, depth)?),
        0x0B => Value::Date {
            millis: r.f64()?,
            time_zone: r.i16()?,
        },
        0x0C => Value::LongString(String::from(string_body(r, marker)?.unwrap_or_default())),
        0x0D => Value::Unsupported,
        0x0F => {
            let len = length(r.u32()?)?;
            Value::XmlDocument(utf8(r, len)?)
        }
        0x10 => {
            let len = r.u16()?;
            let class_name = utf8(r, usize::from(len))?;
            let inner = b.enter(depth)?;
            Value::TypedObject {
                class_name,
                properties: properties(r, b, inner)?,
            }
        }
        0x11 => {
            let start = r.rest();
            amf3::skip_value(r, b, depth)?;
            let used = start
                .len()
                .checked_sub(r.remaining())
                .ok_or(Amf0Error::Truncated)?;
            let bytes = start.get(..used).ok_or(Amf0Error::Truncated)?;
            Value::Avmplus(Bytes::copy_from_slice(bytes))
        }
        // Every other marker returned an error above.
        _ => return Err(Amf0Error::UnknownMarker(marker)),
    };
    Ok(v)
}

/// Key/value pairs up to the terminator `00 00 09`. An empty key followed by
/// anything but 0x09 is an ordinary property with an empty name.
fn properties(r: &mut Reader<'_>, b: &mut Bounds, depth: usize) -> Result<Properties, Amf0Error> {
    properties_with(r, |r| value(r, b, depth))
}

/// [`properties`], each value read by `read`.
fn properties_with(
    r: &mut Reader<'_>,
    mut read: impl FnMut(&mut Reader<'_>) -> Result<Value, Amf0Error>,
) -> Result<Properties, Amf0Error> {
    let mut props = Properties::new();
    loop {
        let len = r.u16()?;
        if len == 0 && r.peek()? == 0x09 {
            r.u8()?;
            return Ok(props);
        }
        let key = utf8(r, usize::from(len))?;
        let v = read(r)?;
        props.push((key, v));
    }
}

/// An ECMA array (0x08) or anonymous object (0x03) from the front of
/// `input` whose property values were each accepted on their own: every
/// value is read at depth 0 with a budget of its own, as it was in the
/// message that carried it, and the container counts against none. The
/// number of properties is bounded by the input's length only. `Ok(None)`
/// if the next value is of another type. Advances `input` only on success.
pub(crate) fn decode_separate_properties(
    input: &mut &[u8],
    limits: &Limits,
) -> Result<Option<Properties>, Amf0Error> {
    let mut r = Reader::new(input);
    match r.u8()? {
        0x08 => {
            r.u32()?; // the count, a hint only
        }
        0x03 => {}
        _ => return Ok(None),
    }
    let props = properties_with(&mut r, |r| value(r, &mut Bounds::new(limits), 0))?;
    *input = r.rest();
    Ok(Some(props))
}

fn strict_array(r: &mut Reader<'_>, b: &mut Bounds, depth: usize) -> Result<Vec<Value>, Amf0Error> {
    let count = length(r.u32()?)?;
    let inner = b.enter(depth)?;
    // Every value takes at least its marker byte, and every value counts
    // against the budget: check both before reserving room for `count`.
    if count > r.remaining() {
        return Err(Amf0Error::Truncated);
    }
    b.check_values_left(count)?;
    let mut items = Vec::with_capacity(count);
    for _ in 0..count {
        items.push(value(r, b, inner)?);
    }
    Ok(items)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(depth: usize, values: usize) -> Limits {
        Limits {
            amf0_max_depth: depth,
            amf0_max_values: values,
            ..Limits::default()
        }
    }

    #[test]
    fn enter_and_count_respect_bounds() {
        let mut b = Bounds::new(&limits(1, 2));
        assert_eq!(b.enter(0), Ok(1));
        assert_eq!(b.enter(1), Err(Amf0Error::TooDeep { max: 1 }));
        assert_eq!(b.count_value(), Ok(()));
        assert_eq!(b.check_values_left(1), Ok(()));
        assert_eq!(
            b.check_values_left(2),
            Err(Amf0Error::TooManyValues { max: 2 })
        );
        assert_eq!(b.count_value(), Ok(()));
        assert_eq!(b.count_value(), Err(Amf0Error::TooManyValues { max: 2 }));
    }

    #[test]
    fn failed_decode_leaves_input_alone() {
        let bytes = [0x02, 0x00, 0x05, b'a'];
        let mut input = &bytes[..];
        let mut b = Bounds::new(&Limits::default());
        assert_eq!(decode_one(&mut input, &mut b), Err(Amf0Error::Truncated));
        assert_eq!(input, &bytes[..]);
    }

    #[test]
    fn empty_key_without_terminator_is_a_property() {
        let bytes = [0x03, 0x00, 0x00, 0x05, 0x00, 0x00, 0x09];
        let mut input = &bytes[..];
        let mut b = Bounds::new(&Limits::default());
        assert_eq!(
            decode_one(&mut input, &mut b),
            Ok(Value::Object(alloc::vec![(String::new(), Value::Null)]))
        );
        assert!(input.is_empty());
    }
}
