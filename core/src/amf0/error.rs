//! Why AMF0 (or an embedded AMF3 value) could not be decoded.

use core::fmt;

/// Why an AMF0 buffer could not be decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Amf0Error {
    /// The input ended inside a value (or a length field points past it).
    Truncated,
    /// A type marker above 0x11, which AMF0 does not define.
    UnknownMarker(u8),
    /// A marker the AMF0 specification reserves and no encoder writes:
    /// movieclip (0x04) or recordset (0x0E).
    ReservedMarker(u8),
    /// The object-end marker 0x09 where a value was expected (it may only
    /// follow an empty key inside an object).
    UnexpectedObjectEnd,
    /// A string, key, class name or XML document is not valid UTF-8.
    InvalidUtf8,
    /// Objects/arrays nest deeper than `Limits::amf0_max_depth`.
    TooDeep {
        /// The configured bound.
        max: usize,
    },
    /// More values than `Limits::amf0_max_values` (nested ones, and AMF3
    /// values inside an AVM+ switch, count too).
    TooManyValues {
        /// The configured bound.
        max: usize,
    },
    /// The AMF3 value after an AVM+ switch (0x11) could not be delimited.
    Amf3(Amf3Error),
}

/// Why the AMF3 value following an AVM+ marker could not be delimited.
/// (Truncation, depth and count overruns are reported with the
/// corresponding [`Amf0Error`] variants.)
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Amf3Error {
    /// An AMF3 type marker above 0x11.
    UnknownMarker(u8),
    /// An object whose traits are externalizable: its body is written by
    /// class-specific code, so its length cannot be known.
    Externalizable,
    /// An object refers to a traits entry that was never defined in this
    /// AMF3 value.
    BadTraitsReference(u32),
}

/// The name the AMF0 specification gives a marker, for error messages.
pub(crate) fn marker_name(marker: u8) -> &'static str {
    match marker {
        0x00 => "number",
        0x01 => "boolean",
        0x02 => "string",
        0x03 => "object",
        0x04 => "movieclip",
        0x05 => "null",
        0x06 => "undefined",
        0x07 => "reference",
        0x08 => "ECMA array",
        0x09 => "object end",
        0x0A => "strict array",
        0x0B => "date",
        0x0C => "long string",
        0x0D => "unsupported",
        0x0E => "recordset",
        0x0F => "XML document",
        0x10 => "typed object",
        0x11 => "AVM+",
        _ => "unknown",
    }
}

impl fmt::Display for Amf0Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Amf0Error::Truncated => f.write_str("AMF0 input ends inside a value"),
            Amf0Error::UnknownMarker(m) => write!(f, "unknown AMF0 type marker 0x{m:02x}"),
            Amf0Error::ReservedMarker(m) => write!(
                f,
                "reserved AMF0 type marker 0x{m:02x} ({}) is not supported",
                marker_name(*m)
            ),
            Amf0Error::UnexpectedObjectEnd => {
                f.write_str("AMF0 object-end marker 0x09 where a value was expected")
            }
            Amf0Error::InvalidUtf8 => f.write_str("AMF0 string is not valid UTF-8"),
            Amf0Error::TooDeep { max } => {
                write!(f, "AMF0 objects/arrays nest deeper than the limit of {max}")
            }
            Amf0Error::TooManyValues { max } => {
                write!(f, "AMF0 buffer holds more than the limit of {max} values")
            }
            Amf0Error::Amf3(e) => write!(f, "AMF3 value after AVM+ switch: {e}"),
        }
    }
}

impl fmt::Display for Amf3Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Amf3Error::UnknownMarker(m) => write!(f, "unknown AMF3 type marker 0x{m:02x}"),
            Amf3Error::Externalizable => f.write_str(
                "externalizable AMF3 object: its length cannot be known, so it cannot be carried",
            ),
            Amf3Error::BadTraitsReference(i) => {
                write!(f, "AMF3 object refers to undefined traits #{i}")
            }
        }
    }
}

impl From<Amf3Error> for Amf0Error {
    fn from(e: Amf3Error) -> Self {
        Amf0Error::Amf3(e)
    }
}

impl core::error::Error for Amf0Error {}
impl core::error::Error for Amf3Error {}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn display_names_reserved_markers() {
        assert_eq!(
            Amf0Error::ReservedMarker(0x04).to_string(),
            "reserved AMF0 type marker 0x04 (movieclip) is not supported"
        );
        assert_eq!(
            Amf0Error::ReservedMarker(0x0E).to_string(),
            "reserved AMF0 type marker 0x0e (recordset) is not supported"
        );
        assert_eq!(
            Amf0Error::UnknownMarker(0x12).to_string(),
            "unknown AMF0 type marker 0x12"
        );
        assert_eq!(
            Amf0Error::from(Amf3Error::Externalizable).to_string(),
            "AMF3 value after AVM+ switch: externalizable AMF3 object: its length cannot be known, so it cannot be carried"
        );
        assert_eq!(
            Amf0Error::TooDeep { max: 8 }.to_string(),
            "AMF0 objects/arrays nest deeper than the limit of 8"
        );
    }
}
