//! FLV file structure (Adobe FLV spec v10.1, E.2–E.4): the 9-byte header,
//! then tags, each an 11-byte header, the body (an RTMP media message body
//! unchanged) and the 4-byte size of the tag just ended.

use crate::hub::MediaKind;
use bytes::{BufMut, Bytes};
use core::fmt;

/// Bytes of the file header plus the first `PreviousTagSize0`.
pub const FILE_HEADER_LEN: usize = 13;
/// Bytes of a tag header.
pub const TAG_HEADER_LEN: usize = 11;
/// Bytes of the size after each tag.
pub const PREVIOUS_SIZE_LEN: usize = 4;
/// Largest body a tag can carry (24-bit size field).
pub const MAX_BODY: usize = 0xFF_FFFF;

/// The FLV file header with both the audio and video flags, and
/// `PreviousTagSize0` (13 bytes). Players (mpegts.js, ffmpeg) take the
/// flags as a hint only; a stream without audio plays either way.
pub const FILE_HEADER: [u8; FILE_HEADER_LEN] = [b'F', b'L', b'V', 1, 0x05, 0, 0, 0, 9, 0, 0, 0, 0];

/// The FLV tag type of a media kind.
pub fn tag_type(kind: MediaKind) -> u8 {
    match kind {
        MediaKind::Audio => 8,
        MediaKind::Video => 9,
        MediaKind::Data => 18,
    }
}

/// The media kind of an FLV tag type, if it is one.
pub fn kind_of(tag_type: u8) -> Option<MediaKind> {
    match tag_type {
        8 => Some(MediaKind::Audio),
        9 => Some(MediaKind::Video),
        18 => Some(MediaKind::Data),
        _ => None,
    }
}

/// Bytes one tag takes with `body_len` bytes of body.
pub fn tag_len(body_len: usize) -> usize {
    TAG_HEADER_LEN + body_len + PREVIOUS_SIZE_LEN
}

/// Writes one whole tag: header (type, size, timestamp with its extension
/// byte, stream id 0), `body`, previous tag size. Fails without writing if
/// `body` is larger than [`MAX_BODY`].
pub fn write_tag(
    out: &mut impl BufMut,
    kind: MediaKind,
    timestamp: u32,
    body: &[u8],
) -> Result<(), TagError> {
    if body.len() > MAX_BODY {
        return Err(TagError::TooLarge { len: body.len() });
    }
    let size = body.len() as u32;
    out.put_u8(tag_type(kind));
    out.put_uint(u64::from(size), 3);
    // Lower 24 bits, then the upper 8 (TimestampExtended).
    out.put_uint(u64::from(timestamp & 0xFF_FFFF), 3);
    out.put_u8((timestamp >> 24) as u8);
    out.put_uint(0, 3);
    out.put_slice(body);
    out.put_u32(size + TAG_HEADER_LEN as u32);
    Ok(())
}

/// Why FLV bytes could not be written or read.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TagError {
    /// A body longer than a tag can carry.
    TooLarge { len: usize },
    /// Fewer bytes than the structure needs.
    Truncated { needed: usize, have: usize },
    /// Not an FLV file header.
    BadSignature,
    /// A tag type other than audio (8), video (9) or script data (18).
    UnknownType(u8),
    /// The previous-tag-size field disagrees with the tag.
    BadPreviousSize { expected: u32, found: u32 },
}

impl fmt::Display for TagError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TagError::TooLarge { len } => {
                write!(
                    f,
                    "an FLV tag body holds at most {MAX_BODY} bytes, not {len}"
                )
            }
            TagError::Truncated { needed, have } => {
                write!(f, "FLV data truncated: {needed} bytes needed, {have} there")
            }
            TagError::BadSignature => f.write_str("not an FLV header (no \"FLV\" signature)"),
            TagError::UnknownType(t) => write!(f, "unknown FLV tag type {t}"),
            TagError::BadPreviousSize { expected, found } => {
                write!(f, "FLV previous tag size {found}, expected {expected}")
            }
        }
    }
}

/// One FLV tag, borrowed from the bytes it was read from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlvTagView<'a> {
    /// Audio, video or script data.
    pub kind: MediaKind,
    /// Timestamp in ms (extension byte applied).
    pub timestamp: u32,
    /// The body (an RTMP media message body).
    pub body: &'a [u8],
}

impl<'a> FlvTagView<'a> {
    /// Reads the tag at the start of `data` (header, body, previous size);
    /// returns it and the bytes it took.
    pub fn parse(data: &'a [u8]) -> Result<(FlvTagView<'a>, usize), TagError> {
        let truncated = |needed: usize| TagError::Truncated {
            needed,
            have: data.len(),
        };
        let header: &[u8; TAG_HEADER_LEN] = data
            .get(..TAG_HEADER_LEN)
            .and_then(|h| h.try_into().ok())
            .ok_or(truncated(TAG_HEADER_LEN))?;
        let [t, s0, s1, s2, t0, t1, t2, tx, ..] = *header;
        let kind = kind_of(t & 0x1F).ok_or(TagError::UnknownType(t))?;
        let size = u32::from_be_bytes([0, s0, s1, s2]);
        let timestamp = u32::from_be_bytes([tx, t0, t1, t2]);
        let end = TAG_HEADER_LEN + size as usize;
        let body = data.get(TAG_HEADER_LEN..end).ok_or(truncated(end))?;
        let previous: [u8; 4] = data
            .get(end..end + PREVIOUS_SIZE_LEN)
            .and_then(|p| p.try_into().ok())
            .ok_or(truncated(end + PREVIOUS_SIZE_LEN))?;
        let found = u32::from_be_bytes(previous);
        let expected = size + TAG_HEADER_LEN as u32;
        if found != expected {
            return Err(TagError::BadPreviousSize { expected, found });
        }
        Ok((
            FlvTagView {
                kind,
                timestamp,
                body,
            },
            end + PREVIOUS_SIZE_LEN,
        ))
    }
}

/// Checks the file header (and `PreviousTagSize0`) at the start of `data`;
/// returns the audio/video flags byte and the bytes the header took.
pub fn parse_file_header(data: &[u8]) -> Result<(u8, usize), TagError> {
    let header = data.get(..FILE_HEADER_LEN).ok_or(TagError::Truncated {
        needed: FILE_HEADER_LEN,
        have: data.len(),
    })?;
    match header {
        [b'F', b'L', b'V', _, flags, 0, 0, 0, 9, 0, 0, 0, 0] => Ok((*flags, FILE_HEADER_LEN)),
        _ => Err(TagError::BadSignature),
    }
}

/// Every tag of a file (header first) or of a tag sequence, for tests and
/// tools: `Err` at the first malformed one.
pub fn tags(data: &[u8]) -> Result<alloc::vec::Vec<FlvTagView<'_>>, TagError> {
    let mut rest = data;
    if rest.starts_with(b"FLV") {
        let (_, used) = parse_file_header(rest)?;
        rest = rest.get(used..).unwrap_or_default();
    }
    let mut out = alloc::vec::Vec::new();
    while !rest.is_empty() {
        let (tag, used) = FlvTagView::parse(rest)?;
        out.push(tag);
        rest = rest.get(used..).unwrap_or_default();
    }
    Ok(out)
}

/// One tag as its own buffer (for callers outside a fan-out).
pub fn tag_bytes(kind: MediaKind, timestamp: u32, body: &[u8]) -> Result<Bytes, TagError> {
    let mut out = bytes::BytesMut::with_capacity(tag_len(body.len()));
    write_tag(&mut out, kind, timestamp, body)?;
    Ok(out.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tag_is_header_body_and_previous_size() {
        let bytes = tag_bytes(MediaKind::Video, 0x0102_0304, &[0x17, 0, 0]).unwrap();
        assert_eq!(
            bytes.as_ref(),
            &[
                9, 0, 0, 3, // video, 3 bytes
                0x02, 0x03, 0x04, 0x01, // timestamp 0x020304 + extension 0x01
                0, 0, 0, // stream id
                0x17, 0, 0, // body
                0, 0, 0, 14, // 11 + 3
            ]
        );
        let (view, used) = FlvTagView::parse(&bytes).unwrap();
        assert_eq!(used, bytes.len());
        assert_eq!(view.kind, MediaKind::Video);
        assert_eq!(view.timestamp, 0x0102_0304);
        assert_eq!(view.body, &[0x17, 0, 0]);
    }

    #[test]
    fn audio_and_data_types_and_an_empty_body() {
        let audio = tag_bytes(MediaKind::Audio, 23, &[0xAF, 1]).unwrap();
        assert_eq!(&audio[..8], &[8, 0, 0, 2, 0, 0, 23, 0]);
        let data = tag_bytes(MediaKind::Data, 0, &[]).unwrap();
        assert_eq!(
            data.as_ref(),
            &[18, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 11]
        );
        assert_eq!(FlvTagView::parse(&data).unwrap().0.body, &[] as &[u8]);
    }

    #[test]
    fn the_file_header_reads_back() {
        assert_eq!(parse_file_header(&FILE_HEADER), Ok((5, 13)));
        assert_eq!(
            parse_file_header(b"FLX\x01\x05\0\0\0\x09\0\0\0\0"),
            Err(TagError::BadSignature)
        );
        assert!(matches!(
            parse_file_header(b"FLV"),
            Err(TagError::Truncated { .. })
        ));
    }

    #[test]
    fn malformed_tags_are_typed_errors() {
        let good = tag_bytes(MediaKind::Audio, 1, &[1, 2, 3]).unwrap();
        for cut in 0..good.len() {
            assert!(matches!(
                FlvTagView::parse(&good[..cut]),
                Err(TagError::Truncated { .. })
            ));
        }
        let mut bad = good.to_vec();
        bad[0] = 7;
        assert_eq!(FlvTagView::parse(&bad), Err(TagError::UnknownType(7)));
        let mut bad = good.to_vec();
        let n = bad.len();
        bad[n - 1] = 0;
        assert_eq!(
            FlvTagView::parse(&bad),
            Err(TagError::BadPreviousSize {
                expected: 14,
                found: 0
            })
        );
        assert_eq!(
            write_tag(
                &mut alloc::vec::Vec::new(),
                MediaKind::Video,
                0,
                &alloc::vec![0; MAX_BODY + 1]
            ),
            Err(TagError::TooLarge { len: MAX_BODY + 1 })
        );
    }

    #[test]
    fn a_file_reads_as_its_tags() {
        let mut file = FILE_HEADER.to_vec();
        write_tag(&mut file, MediaKind::Data, 0, b"meta").unwrap();
        write_tag(&mut file, MediaKind::Video, 40, &[0x27, 1]).unwrap();
        let tags = tags(&file).unwrap();
        assert_eq!(tags.len(), 2);
        assert_eq!(tags[1].timestamp, 40);
        assert_eq!(tags[0].body, b"meta");
    }
}
