//! Aggregate messages (type 22): several FLV tags in one RTMP message.
//!
//! Each tag: type (1), data size (3), timestamp (3 + 1 extension byte),
//! stream id (3), data, previous tag size (4). Sub-message timestamps are
//! taken relative to the first tag and added to the aggregate's own.

use crate::hub::MediaKind;
use bytes::Bytes;

/// One media message from an aggregate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SubMessage {
    pub kind: MediaKind,
    pub timestamp: u32,
    pub payload: Bytes,
}

/// Splits an aggregate; stops at the first malformed tag (what came before
/// is kept). Tags of other types are skipped.
pub(crate) fn split(aggregate_ts: u32, body: &Bytes) -> alloc::vec::Vec<SubMessage> {
    let mut out = alloc::vec::Vec::new();
    let mut pos = 0usize;
    let mut first_ts: Option<u32> = None;
    while let Some(header) = body.get(pos..pos + 11) {
        let [tag_type, s0, s1, s2, t0, t1, t2, t3, ..] = *header else {
            break;
        };
        let size = u32::from_be_bytes([0, s0, s1, s2]) as usize;
        let ts = u32::from_be_bytes([t3, t0, t1, t2]);
        let start = pos + 11;
        let Some(end) = start.checked_add(size) else {
            break;
        };
        if end + 4 > body.len() {
            break;
        }
        let base = *first_ts.get_or_insert(ts);
        let kind = match tag_type {
            8 => Some(MediaKind::Audio),
            9 => Some(MediaKind::Video),
            18 => Some(MediaKind::Data),
            _ => None,
        };
        if let Some(kind) = kind {
            out.push(SubMessage {
                kind,
                timestamp: aggregate_ts.wrapping_add(ts.wrapping_sub(base)),
                payload: body.slice(start..end),
            });
        }
        pos = end + 4;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_tags_and_rebases_timestamps() {
        let mut body = alloc::vec::Vec::new();
        for (t, ts, data) in [
            (9u8, 1000u32, &b"\x17\x01ab"[..]),
            (8, 1020, &b"\xaf\x01"[..]),
        ] {
            body.push(t);
            body.extend_from_slice(&(data.len() as u32).to_be_bytes()[1..]);
            body.extend_from_slice(&ts.to_be_bytes()[1..]);
            body.push((ts >> 24) as u8);
            body.extend_from_slice(&[0, 0, 0]);
            body.extend_from_slice(data);
            body.extend_from_slice(&(11 + data.len() as u32).to_be_bytes());
        }
        let parts = split(5000, &Bytes::from(body.clone()));
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].timestamp, 5000);
        assert_eq!(parts[1].timestamp, 5020);
        assert_eq!(&parts[1].payload[..], b"\xaf\x01");
        // truncated: the complete first tag survives
        body.truncate(body.len() - 3);
        assert_eq!(split(0, &Bytes::from(body)).len(), 1);
    }
}
