//! Protocol control messages (types 1, 2, 3, 5, 6): the chunk stream's own
//! housekeeping, always on message stream 0.

use super::cursor::Reader;
use super::{MessageError, type_id};
use alloc::vec::Vec;
use bytes::Bytes;

/// How the receiver of Set Peer Bandwidth treats the new window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BandwidthLimit {
    /// 0: use exactly this window.
    Hard,
    /// 1: use the smaller of this window and the current one.
    Soft,
    /// 2: treat as Hard if the previous limit was Hard, else ignore.
    Dynamic,
}

impl BandwidthLimit {
    /// The wire value.
    pub fn to_u8(self) -> u8 {
        match self {
            BandwidthLimit::Hard => 0,
            BandwidthLimit::Soft => 1,
            BandwidthLimit::Dynamic => 2,
        }
    }

    /// Parses the wire value; anything above 2 is not a limit type.
    pub fn from_u8(v: u8) -> Option<Self> {
        match v {
            0 => Some(BandwidthLimit::Hard),
            1 => Some(BandwidthLimit::Soft),
            2 => Some(BandwidthLimit::Dynamic),
            _ => None,
        }
    }
}

/// A protocol control message. User Control (type 4) is separate:
/// [`UserControl`](super::UserControl).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProtocolControl {
    /// Type 1: chunk size the sender will use from now on (1..=2^31-1).
    SetChunkSize(u32),
    /// Type 2: drop the partly received message on this chunk stream.
    Abort {
        /// Chunk stream id whose partial message is discarded.
        csid: u32,
    },
    /// Type 3: bytes received so far (wrapping), sent each window.
    Acknowledgement {
        /// Total bytes received, modulo 2^32.
        sequence: u32,
    },
    /// Type 5: how many bytes the sender may receive before it acknowledges.
    WindowAckSize(u32),
    /// Type 6: limit the peer's output window.
    SetPeerBandwidth {
        /// Window size in bytes.
        size: u32,
        /// How to apply it.
        limit: BandwidthLimit,
    },
}

impl ProtocolControl {
    /// Parses the payload of a message of type 1, 2, 3, 5 or 6.
    ///
    /// Bytes after the fixed fields are ignored (the spec gives every one of
    /// these a fixed size; extra bytes carry nothing we could use). A Set
    /// Chunk Size of 0 or with the top bit set is refused here, so the chunk
    /// layer never sees it.
    pub fn decode(type_id: u8, payload: &[u8]) -> Result<Self, MessageError> {
        let mut r = Reader::new(payload);
        match type_id {
            type_id::SET_CHUNK_SIZE => {
                let size = r.u32("Set Chunk Size")?;
                if size == 0 || size > 0x7FFF_FFFF {
                    return Err(MessageError::InvalidChunkSize(size));
                }
                Ok(ProtocolControl::SetChunkSize(size))
            }
            type_id::ABORT => Ok(ProtocolControl::Abort {
                csid: r.u32("Abort")?,
            }),
            type_id::ACKNOWLEDGEMENT => Ok(ProtocolControl::Acknowledgement {
                sequence: r.u32("Acknowledgement")?,
            }),
            type_id::WINDOW_ACK_SIZE => Ok(ProtocolControl::WindowAckSize(
                r.u32("Window Acknowledgement Size")?,
            )),
            type_id::SET_PEER_BANDWIDTH => {
                let size = r.u32("Set Peer Bandwidth")?;
                let raw = r.u8("Set Peer Bandwidth limit type")?;
                let limit =
                    BandwidthLimit::from_u8(raw).ok_or(MessageError::InvalidBandwidthLimit(raw))?;
                Ok(ProtocolControl::SetPeerBandwidth { size, limit })
            }
            other => Err(MessageError::UnexpectedType {
                expected: "protocol control",
                type_id: other,
            }),
        }
    }

    /// The message type id this message travels as.
    pub fn type_id(&self) -> u8 {
        match self {
            ProtocolControl::SetChunkSize(_) => type_id::SET_CHUNK_SIZE,
            ProtocolControl::Abort { .. } => type_id::ABORT,
            ProtocolControl::Acknowledgement { .. } => type_id::ACKNOWLEDGEMENT,
            ProtocolControl::WindowAckSize(_) => type_id::WINDOW_ACK_SIZE,
            ProtocolControl::SetPeerBandwidth { .. } => type_id::SET_PEER_BANDWIDTH,
        }
    }

    /// Appends the payload bytes to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match *self {
            ProtocolControl::SetChunkSize(v)
            | ProtocolControl::Abort { csid: v }
            | ProtocolControl::Acknowledgement { sequence: v }
            | ProtocolControl::WindowAckSize(v) => out.extend_from_slice(&v.to_be_bytes()),
            ProtocolControl::SetPeerBandwidth { size, limit } => {
                out.extend_from_slice(&size.to_be_bytes());
                out.push(limit.to_u8());
            }
        }
    }

    /// The payload as a shareable buffer.
    pub fn to_bytes(&self) -> Bytes {
        let mut out = Vec::with_capacity(5);
        self.encode(&mut out);
        Bytes::from(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        crate::message::tests::hex(s)
    }

    #[test]
    fn window_ack_size_vector() {
        // Body of `02 db5565 000004 05 00000000 00989680`.
        let body = hex("00989680");
        let m = ProtocolControl::decode(5, &body).unwrap();
        assert_eq!(m, ProtocolControl::WindowAckSize(10_000_000));
        assert_eq!(m.type_id(), 5);
        assert_eq!(&m.to_bytes()[..], &body[..]);
    }

    #[test]
    fn round_trips() {
        let all = [
            ProtocolControl::SetChunkSize(4096),
            ProtocolControl::Abort { csid: 7 },
            ProtocolControl::Acknowledgement { sequence: u32::MAX },
            ProtocolControl::WindowAckSize(2_500_000),
            ProtocolControl::SetPeerBandwidth {
                size: 2_500_000,
                limit: BandwidthLimit::Dynamic,
            },
            ProtocolControl::SetPeerBandwidth {
                size: 1,
                limit: BandwidthLimit::Hard,
            },
            ProtocolControl::SetPeerBandwidth {
                size: 1,
                limit: BandwidthLimit::Soft,
            },
        ];
        for m in all {
            let b = m.to_bytes();
            assert_eq!(ProtocolControl::decode(m.type_id(), &b).unwrap(), m);
        }
    }

    #[test]
    fn errors() {
        assert_eq!(
            ProtocolControl::decode(1, &[0, 0, 0]),
            Err(MessageError::Truncated {
                what: "Set Chunk Size"
            })
        );
        assert_eq!(
            ProtocolControl::decode(1, &[0, 0, 0, 0]),
            Err(MessageError::InvalidChunkSize(0))
        );
        assert_eq!(
            ProtocolControl::decode(1, &[0x80, 0, 0, 0]),
            Err(MessageError::InvalidChunkSize(0x8000_0000))
        );
        assert_eq!(
            ProtocolControl::decode(6, &[0, 0, 0, 1, 3]),
            Err(MessageError::InvalidBandwidthLimit(3))
        );
        assert!(matches!(
            ProtocolControl::decode(6, &[0, 0, 0, 1]),
            Err(MessageError::Truncated { .. })
        ));
        assert!(matches!(
            ProtocolControl::decode(4, &[0; 6]),
            Err(MessageError::UnexpectedType { type_id: 4, .. })
        ));
    }
}
