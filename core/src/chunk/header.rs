//! Chunk headers on the wire: the basic header (fmt + chunk stream id) and
//! the four message header forms.
//!
//! These are pure views: parsing never looks at chunk stream state, so the
//! decoder can parse a header, check it against its tables and only then
//! consume it.

use bytes::{BufMut, BytesMut};

/// Smallest chunk stream id (0 and 1 are escape codes of the basic header).
pub const MIN_CSID: u32 = 2;
/// Largest chunk stream id (3-byte basic header: 64 + 65535).
pub const MAX_CSID: u32 = 65599;
/// The value of a 3-byte timestamp field announcing a 4-byte extended
/// timestamp after the message header.
pub const EXTENDED_TIMESTAMP: u32 = 0x00FF_FFFF;
/// Largest value of the 3-byte message length field.
pub const MAX_MESSAGE_LENGTH: u32 = 0x00FF_FFFF;

/// The chunk type: which message header form follows the basic header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fmt {
    /// 11 bytes: timestamp, length, type id, stream id.
    Type0 = 0,
    /// 7 bytes: timestamp delta, length, type id.
    Type1 = 1,
    /// 3 bytes: timestamp delta.
    Type2 = 2,
    /// No message header: everything is taken from the chunk stream.
    Type3 = 3,
}

impl Fmt {
    fn from_bits(bits: u8) -> Fmt {
        match bits & 3 {
            0 => Fmt::Type0,
            1 => Fmt::Type1,
            2 => Fmt::Type2,
            _ => Fmt::Type3,
        }
    }
}

/// The chunk basic header: chunk type and chunk stream id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BasicHeader {
    /// Which message header follows.
    pub fmt: Fmt,
    /// Chunk stream id, 2..=65599.
    pub csid: u32,
}

impl BasicHeader {
    /// Parses a basic header from the front of `buf`. Returns the header
    /// and its length (1, 2 or 3), or `None` if `buf` is too short.
    pub fn parse(buf: &[u8]) -> Option<(BasicHeader, usize)> {
        let (&b0, rest) = buf.split_first()?;
        let fmt = Fmt::from_bits(b0 >> 6);
        match b0 & 0x3F {
            0 => {
                let &b1 = rest.first()?;
                Some((
                    BasicHeader {
                        fmt,
                        csid: 64 + u32::from(b1),
                    },
                    2,
                ))
            }
            1 => {
                let &[b1, b2] = rest.first_chunk::<2>()?;
                let csid = 64 + u32::from(u16::from_le_bytes([b1, b2]));
                Some((BasicHeader { fmt, csid }, 3))
            }
            low => Some((
                BasicHeader {
                    fmt,
                    csid: u32::from(low),
                },
                1,
            )),
        }
    }

    /// Length of the shortest basic header for `csid` (which must be valid).
    pub fn encoded_len(csid: u32) -> usize {
        if csid < 64 {
            1
        } else if csid < 320 {
            2
        } else {
            3
        }
    }

    /// Appends the shortest encoding. `csid` must be in 2..=65599 (callers
    /// check); out-of-range ids are truncated, never panic.
    pub fn write(&self, out: &mut BytesMut) {
        let fmt = (self.fmt as u8) << 6;
        let csid = self.csid;
        if csid < 64 {
            out.put_u8(fmt | (csid as u8));
        } else if csid < 320 {
            out.put_u8(fmt);
            out.put_u8((csid - 64) as u8);
        } else {
            out.put_u8(fmt | 1);
            out.put_u16_le(csid.wrapping_sub(64) as u16);
        }
    }
}

/// A chunk message header as it appears on the wire. Timestamp fields are
/// the raw 3-byte values; [`EXTENDED_TIMESTAMP`] means a 4-byte extended
/// timestamp follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MessageHeader {
    /// fmt 0: absolute timestamp and everything else.
    Type0 {
        /// Absolute timestamp field.
        timestamp: u32,
        /// Message length.
        length: u32,
        /// Message type id.
        type_id: u8,
        /// Message stream id (little-endian on the wire).
        stream_id: u32,
    },
    /// fmt 1: same stream id as before.
    Type1 {
        /// Timestamp delta field.
        delta: u32,
        /// Message length.
        length: u32,
        /// Message type id.
        type_id: u8,
    },
    /// fmt 2: same stream id, length and type as before.
    Type2 {
        /// Timestamp delta field.
        delta: u32,
    },
    /// fmt 3: no fields.
    Type3,
}

fn u24(b: [u8; 3]) -> u32 {
    u32::from_be_bytes([0, b[0], b[1], b[2]])
}

impl MessageHeader {
    /// Parses the message header of form `fmt` from the front of `buf`.
    /// Returns it and its length, or `None` if `buf` is too short.
    pub fn parse(fmt: Fmt, buf: &[u8]) -> Option<(MessageHeader, usize)> {
        match fmt {
            Fmt::Type0 => {
                let b: &[u8; 11] = buf.first_chunk()?;
                let [t0, t1, t2, l0, l1, l2, type_id, s0, s1, s2, s3] = *b;
                Some((
                    MessageHeader::Type0 {
                        timestamp: u24([t0, t1, t2]),
                        length: u24([l0, l1, l2]),
                        type_id,
                        stream_id: u32::from_le_bytes([s0, s1, s2, s3]),
                    },
                    11,
                ))
            }
            Fmt::Type1 => {
                let b: &[u8; 7] = buf.first_chunk()?;
                let [t0, t1, t2, l0, l1, l2, type_id] = *b;
                Some((
                    MessageHeader::Type1 {
                        delta: u24([t0, t1, t2]),
                        length: u24([l0, l1, l2]),
                        type_id,
                    },
                    7,
                ))
            }
            Fmt::Type2 => {
                let b: &[u8; 3] = buf.first_chunk()?;
                Some((MessageHeader::Type2 { delta: u24(*b) }, 3))
            }
            Fmt::Type3 => Some((MessageHeader::Type3, 0)),
        }
    }

    /// The chunk type of this header.
    pub fn fmt(&self) -> Fmt {
        match self {
            MessageHeader::Type0 { .. } => Fmt::Type0,
            MessageHeader::Type1 { .. } => Fmt::Type1,
            MessageHeader::Type2 { .. } => Fmt::Type2,
            MessageHeader::Type3 => Fmt::Type3,
        }
    }

    /// The 3-byte timestamp field, if this form has one.
    pub fn timestamp_field(&self) -> Option<u32> {
        match *self {
            MessageHeader::Type0 { timestamp, .. } => Some(timestamp),
            MessageHeader::Type1 { delta, .. } | MessageHeader::Type2 { delta } => Some(delta),
            MessageHeader::Type3 => None,
        }
    }

    /// Encoded length: 11, 7, 3 or 0.
    pub fn encoded_len(&self) -> usize {
        match self {
            MessageHeader::Type0 { .. } => 11,
            MessageHeader::Type1 { .. } => 7,
            MessageHeader::Type2 { .. } => 3,
            MessageHeader::Type3 => 0,
        }
    }

    /// Appends the header. 24-bit fields keep their low 24 bits.
    pub fn write(&self, out: &mut BytesMut) {
        let put24 = |out: &mut BytesMut, v: u32| {
            let [_, a, b, c] = v.to_be_bytes();
            out.put_slice(&[a, b, c]);
        };
        match *self {
            MessageHeader::Type0 {
                timestamp,
                length,
                type_id,
                stream_id,
            } => {
                put24(out, timestamp);
                put24(out, length);
                out.put_u8(type_id);
                out.put_u32_le(stream_id);
            }
            MessageHeader::Type1 {
                delta,
                length,
                type_id,
            } => {
                put24(out, delta);
                put24(out, length);
                out.put_u8(type_id);
            }
            MessageHeader::Type2 { delta } => put24(out, delta),
            MessageHeader::Type3 => {}
        }
    }
}

/// The 3-byte field for a timestamp or delta `value`: the value itself, or
/// [`EXTENDED_TIMESTAMP`] when it needs the 4-byte extended field.
pub fn timestamp_field(value: u32) -> u32 {
    value.min(EXTENDED_TIMESTAMP)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_header_forms() {
        assert_eq!(
            BasicHeader::parse(&[0x43]),
            Some((
                BasicHeader {
                    fmt: Fmt::Type1,
                    csid: 3
                },
                1
            ))
        );
        assert_eq!(
            BasicHeader::parse(&[0xC0, 0x00]),
            Some((
                BasicHeader {
                    fmt: Fmt::Type3,
                    csid: 64
                },
                2
            ))
        );
        assert_eq!(
            BasicHeader::parse(&[0x01, 0xFF, 0xFF]),
            Some((
                BasicHeader {
                    fmt: Fmt::Type0,
                    csid: 65599
                },
                3
            ))
        );
        // The 3-byte form may also name small ids.
        assert_eq!(
            BasicHeader::parse(&[0x81, 0x01, 0x00]),
            Some((
                BasicHeader {
                    fmt: Fmt::Type2,
                    csid: 65
                },
                3
            ))
        );
        assert_eq!(BasicHeader::parse(&[]), None);
        assert_eq!(BasicHeader::parse(&[0x00]), None);
        assert_eq!(BasicHeader::parse(&[0x01, 0x00]), None);
    }

    #[test]
    fn basic_header_round_trip() {
        for csid in [2, 3, 63, 64, 65, 319, 320, 321, 1000, 65599] {
            for fmt in [Fmt::Type0, Fmt::Type1, Fmt::Type2, Fmt::Type3] {
                let h = BasicHeader { fmt, csid };
                let mut out = BytesMut::new();
                h.write(&mut out);
                assert_eq!(out.len(), BasicHeader::encoded_len(csid));
                assert_eq!(BasicHeader::parse(&out), Some((h, out.len())));
            }
        }
    }

    #[test]
    fn message_header_round_trip() {
        let headers = [
            MessageHeader::Type0 {
                timestamp: 0xDB5565,
                length: 4,
                type_id: 5,
                stream_id: 0x0403_0201,
            },
            MessageHeader::Type1 {
                delta: 0x1E61,
                length: 0x19,
                type_id: 0x14,
            },
            MessageHeader::Type2 {
                delta: EXTENDED_TIMESTAMP,
            },
            MessageHeader::Type3,
        ];
        for h in headers {
            let mut out = BytesMut::new();
            h.write(&mut out);
            assert_eq!(out.len(), h.encoded_len());
            assert_eq!(MessageHeader::parse(h.fmt(), &out), Some((h, out.len())));
            if !out.is_empty() {
                assert_eq!(MessageHeader::parse(h.fmt(), &out[..out.len() - 1]), None);
            }
        }
        // Stream id is little-endian.
        let mut out = BytesMut::new();
        headers[0].write(&mut out);
        assert_eq!(&out[7..], &[1, 2, 3, 4]);
    }
}
