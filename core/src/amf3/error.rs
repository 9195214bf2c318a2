//! Why an AMF3 buffer could not be decoded (or resolved).

use core::fmt;

/// Why an AMF3 buffer could not be decoded, or its references resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeError {
    /// The input ended inside a value (or a length or count points past it).
    Truncated,
    /// A type marker above 0x11, which AMF3 does not define.
    UnknownMarker(u8),
    /// A string, member name, class name or XML text is not valid UTF-8.
    InvalidUtf8,
    /// An object whose traits are externalizable: its body is written by
    /// class-specific code (`IExternalizable.writeExternal`), so it can be
    /// neither read nor delimited without that class.
    Externalizable {
        /// The class alias, for the log line.
        class_name: alloc::string::String,
    },
    /// A string reference to an entry not (yet) in the string table.
    BadStringReference(u32),
    /// A traits reference to an entry not (yet) in the traits table.
    BadTraitsReference(u32),
    /// An object reference to an entry not (yet) in the object table.
    BadObjectReference(u32),
    /// Resolving references met a value that contains itself; such a value
    /// has no tree form (it stays AMF3 where it is carried whole).
    CyclicReference(u32),
    /// Arrays/objects/vectors/dictionaries nest deeper than
    /// `Limits::amf0_max_depth` (AMF3 shares AMF0's bounds).
    TooDeep {
        /// The configured bound.
        max: usize,
    },
    /// More values (and inline strings) than `Limits::amf0_max_values`.
    TooManyValues {
        /// The configured bound.
        max: usize,
    },
    /// String bytes, inline and copied by string and traits references,
    /// would pass twice `Limits::max_message` (or, when resolving, object
    /// references would copy more than `Limits::max_message`).
    TooLarge {
        /// The configured bound, in bytes.
        max: usize,
    },
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Truncated => f.write_str("AMF3 input ends inside a value"),
            DecodeError::UnknownMarker(m) => write!(f, "unknown AMF3 type marker 0x{m:02x}"),
            DecodeError::InvalidUtf8 => f.write_str("AMF3 string is not valid UTF-8"),
            DecodeError::Externalizable { class_name } => write!(
                f,
                "externalizable AMF3 object of class {class_name:?} is not supported \
                 (its body is written by class-specific code)"
            ),
            DecodeError::BadStringReference(i) => {
                write!(f, "AMF3 string reference #{i} is not in the string table")
            }
            DecodeError::BadTraitsReference(i) => {
                write!(f, "AMF3 traits reference #{i} is not in the traits table")
            }
            DecodeError::BadObjectReference(i) => {
                write!(f, "AMF3 object reference #{i} is not in the object table")
            }
            DecodeError::CyclicReference(i) => {
                write!(f, "AMF3 object #{i} contains itself")
            }
            DecodeError::TooDeep { max } => {
                write!(f, "AMF3 values nest deeper than the limit of {max}")
            }
            DecodeError::TooManyValues { max } => {
                write!(f, "AMF3 buffer holds more than the limit of {max} values")
            }
            DecodeError::TooLarge { max } => write!(
                f,
                "AMF3 strings or references would take more than the limit of {max} bytes"
            ),
        }
    }
}

impl core::error::Error for DecodeError {}
