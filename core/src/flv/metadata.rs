//! A recorded file's `onMetaData`, made rewritable when the file closes.
//!
//! A live publisher's metadata says nothing of the file's length (ffmpeg
//! sends `duration = 0`, OBS none), so players that take the length from
//! `onMetaData` (Flash, flv.js/mpegts.js for seeking, VLC's progress bar)
//! see a file of unknown length. The recorder writes the file's first
//! `onMetaData` through [`with_seek_fields`]: the same properties, with
//! `duration` and `filesize` moved to the end as numbers, whose eight-byte
//! slots are rewritten in place on a clean close ([`SeekFields`]). The
//! body's length does not change on close, so nothing else in the file
//! moves.

use crate::Limits;
use crate::amf0::{self, Value};
use alloc::vec::Vec;

/// Where, in the body [`with_seek_fields`] returns, the two numbers start
/// (the eight big-endian bytes of each AMF0 double).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SeekFields {
    /// Offset of `duration` (seconds).
    pub duration_at: usize,
    /// Offset of `filesize` (bytes).
    pub filesize_at: usize,
}

impl SeekFields {
    /// Writes `duration` (seconds) and `filesize` (bytes) into `body` (the
    /// one [`with_seek_fields`] returned). `false` if `body` is too short
    /// for these offsets (not that body).
    pub fn fill(&self, body: &mut [u8], duration: f64, filesize: u64) -> bool {
        [
            (self.duration_at, duration),
            (self.filesize_at, filesize as f64),
        ]
        .into_iter()
        .all(|(at, value)| match body.get_mut(at..at.saturating_add(8)) {
            Some(slot) => {
                slot.copy_from_slice(&value.to_be_bytes());
                true
            }
            None => false,
        })
    }
}

/// The name of the metadata message.
pub const ON_METADATA: &str = "onMetaData";

/// `body` (a data tag's body) re-encoded with `duration` and `filesize`
/// (both 0 for now) as the last properties of its metadata, and where
/// they are. `None` unless `body` is an `onMetaData` message (optionally
/// still wrapped in `@setDataFrame`, which is dropped) whose second value
/// is an object or ECMA array (a missing one becomes an empty ECMA array),
/// decoded within `limits`. Values after the metadata are kept after it.
pub fn with_seek_fields(body: &[u8], limits: &Limits) -> Option<(Vec<u8>, SeekFields)> {
    let mut values = amf0::decode_all(body, limits).ok()?.into_iter().peekable();
    if values.peek().and_then(Value::as_str) == Some("@setDataFrame") {
        values.next();
    }
    if values.next()?.as_str() != Some(ON_METADATA) {
        return None;
    }
    let mut metadata = match values.next() {
        Some(value @ (Value::Object(_) | Value::EcmaArray { .. })) => value,
        None => Value::EcmaArray {
            count: 0,
            properties: Vec::new(),
        },
        Some(_) => return None,
    };
    let properties = match &mut metadata {
        Value::Object(p) | Value::EcmaArray { properties: p, .. } => p,
        _ => return None,
    };
    properties.retain(|(key, _)| key != "duration" && key != "filesize");
    properties.push(("duration".into(), Value::Number(0.0)));
    properties.push(("filesize".into(), Value::Number(0.0)));
    let len = properties.len();
    if let Value::EcmaArray { count, .. } = &mut metadata {
        *count = u32::try_from(len).unwrap_or(u32::MAX);
    }
    let mut out = Vec::with_capacity(body.len() + 48);
    amf0::encode(&Value::String(ON_METADATA.into()), &mut out);
    amf0::encode(&metadata, &mut out);
    // The metadata ends with `filesize`'s number, then the end marker
    // (00 00 09); `duration`'s entry is right before: key length (2),
    // "filesize" (8), number marker (1), then the number (8).
    let filesize_at = out.len().checked_sub(3 + 8)?;
    let duration_at = filesize_at.checked_sub(8 + 2 + "filesize".len() + 1)?;
    for value in values {
        amf0::encode(&value, &mut out);
    }
    Some((
        out,
        SeekFields {
            duration_at,
            filesize_at,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn message(values: &[Value]) -> Vec<u8> {
        let mut out = Vec::new();
        for v in values {
            amf0::encode(v, &mut out);
        }
        out
    }

    fn decoded(body: &[u8]) -> Vec<Value> {
        amf0::decode_all(body, &Limits::default()).unwrap()
    }

    #[test]
    fn duration_and_filesize_move_to_the_end_and_are_filled_in_place() {
        let body = message(&[
            Value::string("@setDataFrame"),
            Value::string("onMetaData"),
            Value::EcmaArray {
                count: 0,
                properties: vec![
                    ("duration".into(), Value::Number(0.0)),
                    ("width".into(), Value::Number(320.0)),
                    ("encoder".into(), Value::string("Lavf")),
                ],
            },
        ]);
        let (mut out, fields) = with_seek_fields(&body, &Limits::default()).unwrap();
        let len = out.len();
        assert!(fields.fill(&mut out, 12.04, 1_234_567));
        assert_eq!(out.len(), len, "filling changes no length");
        let values = decoded(&out);
        assert_eq!(values.len(), 2, "@setDataFrame dropped");
        assert_eq!(values[0].as_str(), Some("onMetaData"));
        let Value::EcmaArray { count, properties } = &values[1] else {
            panic!("{values:?}");
        };
        assert_eq!(*count, 4);
        let keys: Vec<&str> = properties.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["width", "encoder", "duration", "filesize"]);
        assert_eq!(values[1].get("duration"), Some(&Value::Number(12.04)));
        assert_eq!(values[1].get("filesize"), Some(&Value::Number(1_234_567.0)));
        assert_eq!(values[1].get("width"), Some(&Value::Number(320.0)));
    }

    #[test]
    fn objects_missing_metadata_and_trailing_values_are_kept() {
        let body = message(&[
            Value::string("onMetaData"),
            Value::object([("fps", Value::Number(25.0))]),
            Value::string("trailer"),
        ]);
        let (mut out, fields) = with_seek_fields(&body, &Limits::default()).unwrap();
        assert!(fields.fill(&mut out, 3.5, 99));
        let values = decoded(&out);
        assert_eq!(values[1].get("duration"), Some(&Value::Number(3.5)));
        assert_eq!(values[1].get("filesize"), Some(&Value::Number(99.0)));
        assert_eq!(values[1].get("fps"), Some(&Value::Number(25.0)));
        assert_eq!(values[2].as_str(), Some("trailer"));

        let (mut out, fields) =
            with_seek_fields(&message(&[Value::string("onMetaData")]), &Limits::default()).unwrap();
        assert!(fields.fill(&mut out, 1.0, 2));
        assert_eq!(decoded(&out)[1].get("filesize"), Some(&Value::Number(2.0)));
    }

    #[test]
    fn other_data_and_broken_bytes_are_left_alone() {
        let limits = Limits::default();
        let cue = message(&[
            Value::string("onCuePoint"),
            Value::object([("a", Value::Null)]),
        ]);
        assert_eq!(with_seek_fields(&cue, &limits), None);
        let odd = message(&[Value::string("onMetaData"), Value::Number(1.0)]);
        assert_eq!(with_seek_fields(&odd, &limits), None);
        assert_eq!(with_seek_fields(&[0x02, 0x00, 0x0a, b'o'], &limits), None);
        assert_eq!(with_seek_fields(&[], &limits), None);
        let fields = SeekFields {
            duration_at: 4,
            filesize_at: 20,
        };
        assert!(!fields.fill(&mut [0u8; 16], 1.0, 1), "slots past the end");
    }
}
