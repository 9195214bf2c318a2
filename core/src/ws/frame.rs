//! WebSocket frames (RFC 6455 §5): header encoding and a streaming server
//! side [`Decoder`] that enforces the framing rules while bytes arrive.
//!
//! The decoder never buffers raw input: header bytes go into a 14-byte
//! array, payload bytes are unmasked straight into the message being
//! assembled (or a 125-byte control buffer). Text is validated as UTF-8
//! incrementally, so an invalid byte fails the connection as soon as it
//! arrives, even mid-frame. Message lengths are checked against the bound
//! from the frame header, before a single payload byte is stored.

use alloc::string::String;
use alloc::vec::Vec;
use bytes::{BufMut, Bytes, BytesMut};
use core::fmt;

/// Close codes tern sends (RFC 6455 §7.4.1).
pub mod close_code {
    /// Normal closure.
    pub const NORMAL: u16 = 1000;
    /// Going away (server shutdown, idle timeout, hub close).
    pub const GOING_AWAY: u16 = 1001;
    /// Protocol error.
    pub const PROTOCOL_ERROR: u16 = 1002;
    /// Data of a type the endpoint cannot accept.
    pub const UNSUPPORTED_DATA: u16 = 1003;
    /// Text that is not UTF-8.
    pub const INVALID_PAYLOAD: u16 = 1007;
    /// Policy violation (tern: connect rejected).
    pub const POLICY_VIOLATION: u16 = 1008;
    /// Message too big.
    pub const MESSAGE_TOO_BIG: u16 = 1009;
    /// Unexpected server condition.
    pub const INTERNAL_ERROR: u16 = 1011;
}

/// Longest control-frame payload.
pub const MAX_CONTROL_PAYLOAD: usize = 125;

/// Longest close reason: a control payload less the 2-byte code.
pub const MAX_CLOSE_REASON: usize = MAX_CONTROL_PAYLOAD - 2;

/// True for a close code a peer may send (RFC 6455 §7.4): 1000–1003,
/// 1007–1011 and the registered/private range 3000–4999. 1004, 1005, 1006,
/// 1015 and everything else are invalid on the wire.
pub fn is_valid_close_code(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1011 | 3000..=4999)
}

/// A frame opcode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Opcode {
    /// 0x0.
    Continuation,
    /// 0x1.
    Text,
    /// 0x2.
    Binary,
    /// 0x8.
    Close,
    /// 0x9.
    Ping,
    /// 0xA.
    Pong,
}

impl Opcode {
    /// The opcode for a 4-bit value; `None` for the reserved ones.
    pub fn from_u8(value: u8) -> Option<Opcode> {
        Some(match value {
            0x0 => Opcode::Continuation,
            0x1 => Opcode::Text,
            0x2 => Opcode::Binary,
            0x8 => Opcode::Close,
            0x9 => Opcode::Ping,
            0xA => Opcode::Pong,
            _ => return None,
        })
    }

    /// The 4-bit wire value.
    pub fn as_u8(self) -> u8 {
        match self {
            Opcode::Continuation => 0x0,
            Opcode::Text => 0x1,
            Opcode::Binary => 0x2,
            Opcode::Close => 0x8,
            Opcode::Ping => 0x9,
            Opcode::Pong => 0xA,
        }
    }

    /// Close, ping and pong.
    pub fn is_control(self) -> bool {
        matches!(self, Opcode::Close | Opcode::Ping | Opcode::Pong)
    }
}

/// A frame header as written on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameHeader {
    /// Final fragment.
    pub fin: bool,
    /// The three RSV bits (bit 2 = RSV1), zero without extensions.
    pub rsv: u8,
    /// Opcode (raw, so reserved values can be written by tests).
    pub opcode: u8,
    /// Masking key (clients must mask; servers never do).
    pub mask: Option<[u8; 4]>,
    /// Payload length.
    pub len: u64,
}

impl FrameHeader {
    /// Appends the header in its shortest form.
    pub fn encode(&self, out: &mut impl BufMut) {
        out.put_u8((u8::from(self.fin) << 7) | ((self.rsv & 0x7) << 4) | (self.opcode & 0xF));
        let mask_bit = if self.mask.is_some() { 0x80 } else { 0 };
        if self.len <= 125 {
            out.put_u8(mask_bit | self.len as u8);
        } else if let Ok(len) = u16::try_from(self.len) {
            out.put_u8(mask_bit | 126);
            out.put_u16(len);
        } else {
            out.put_u8(mask_bit | 127);
            out.put_u64(self.len);
        }
        if let Some(mask) = self.mask {
            out.put_slice(&mask);
        }
    }
}

/// One whole unmasked server frame (FIN set).
pub fn encode_frame(opcode: Opcode, payload: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(payload.len() + 10);
    FrameHeader {
        fin: true,
        rsv: 0,
        opcode: opcode.as_u8(),
        mask: None,
        len: payload.len() as u64,
    }
    .encode(&mut out);
    out.put_slice(payload);
    out.freeze()
}

/// A frame with any header fields, the payload masked with `header.mask`
/// (what a client sends; used by tests and client tools).
pub fn encode_raw(header: FrameHeader, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 14);
    FrameHeader {
        len: payload.len() as u64,
        ..header
    }
    .encode(&mut out);
    let start = out.len();
    out.extend_from_slice(payload);
    if let Some(mask) = header.mask {
        apply_mask(out.get_mut(start..).unwrap_or_default(), mask, 0);
    }
    out
}

/// The payload of a close frame: code, then `reason` truncated at a char
/// boundary to [`MAX_CLOSE_REASON`] bytes.
pub fn close_payload(code: u16, reason: &str) -> Vec<u8> {
    let mut cut = reason.len().min(MAX_CLOSE_REASON);
    while !reason.is_char_boundary(cut) {
        cut -= 1;
    }
    let mut out = Vec::with_capacity(2 + cut);
    out.extend_from_slice(&code.to_be_bytes());
    out.extend_from_slice(reason.as_bytes().get(..cut).unwrap_or_default());
    out
}

/// XORs `data` with `mask`, `offset` bytes into the payload.
fn apply_mask(data: &mut [u8], mask: [u8; 4], offset: usize) {
    for (b, m) in data.iter_mut().zip(mask.iter().cycle().skip(offset % 4)) {
        *b ^= m;
    }
}

/// A framing rule the peer broke. Each maps to the close code tern sends.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProtocolError {
    /// A client frame without a mask.
    UnmaskedFrame,
    /// RSV bits set with no extension negotiated.
    ReservedBits { rsv: u8 },
    /// Opcode 0x3–0x7 or 0xB–0xF.
    ReservedOpcode { opcode: u8 },
    /// Control frame payload over 125 bytes.
    ControlTooLong { len: u64 },
    /// Control frame without FIN.
    FragmentedControl,
    /// Continuation frame with no message in progress.
    UnexpectedContinuation,
    /// New text/binary frame while a fragmented message is in progress.
    ExpectedContinuation,
    /// 64-bit length with its most significant bit set.
    LengthOverflow,
    /// Text (or a close reason) that is not UTF-8.
    InvalidUtf8,
    /// Message longer than the configured bound.
    MessageTooBig { len: u64, max: usize },
    /// Close payload of exactly one byte.
    BadClosePayload,
    /// A close code that may not be sent.
    InvalidCloseCode { code: u16 },
}

impl ProtocolError {
    /// The close code tern answers with.
    pub fn close_code(&self) -> u16 {
        match self {
            ProtocolError::InvalidUtf8 => close_code::INVALID_PAYLOAD,
            ProtocolError::MessageTooBig { .. } => close_code::MESSAGE_TOO_BIG,
            _ => close_code::PROTOCOL_ERROR,
        }
    }
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProtocolError::UnmaskedFrame => f.write_str("client frame not masked"),
            ProtocolError::ReservedBits { rsv } => {
                write!(f, "reserved bits {rsv:#05b} set without an extension")
            }
            ProtocolError::ReservedOpcode { opcode } => {
                write!(f, "reserved opcode {opcode:#x}")
            }
            ProtocolError::ControlTooLong { len } => {
                write!(f, "control frame of {len} bytes (at most 125)")
            }
            ProtocolError::FragmentedControl => f.write_str("fragmented control frame"),
            ProtocolError::UnexpectedContinuation => {
                f.write_str("continuation frame without a message to continue")
            }
            ProtocolError::ExpectedContinuation => {
                f.write_str("new message before the fragmented one ended")
            }
            ProtocolError::LengthOverflow => f.write_str("64-bit length with the top bit set"),
            ProtocolError::InvalidUtf8 => f.write_str("text is not valid UTF-8"),
            ProtocolError::MessageTooBig { len, max } => {
                write!(f, "message of at least {len} bytes (at most {max})")
            }
            ProtocolError::BadClosePayload => f.write_str("close payload of one byte"),
            ProtocolError::InvalidCloseCode { code } => write!(f, "invalid close code {code}"),
        }
    }
}

impl core::error::Error for ProtocolError {}

/// What the decoder produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Incoming {
    /// A whole text message (already UTF-8 validated).
    Text(Bytes),
    /// A whole binary message.
    Binary(Bytes),
    /// A ping and its payload.
    Ping(Bytes),
    /// A pong and its payload.
    Pong(Bytes),
    /// A close frame with a valid code (if any) and reason.
    Close { code: Option<u16>, reason: String },
}

/// The frame whose payload is arriving.
#[derive(Clone, Copy, Debug)]
struct Payload {
    fin: bool,
    opcode: Opcode,
    mask: [u8; 4],
    remaining: u64,
    offset: usize,
}

/// A data message being assembled from fragments.
#[derive(Debug)]
struct Partial {
    text: bool,
    data: BytesMut,
    /// Bytes of `data` known to be valid UTF-8 (text only).
    valid: usize,
}

/// Streaming server-side frame decoder.
#[derive(Debug)]
pub struct Decoder {
    max_message: usize,
    header: [u8; 14],
    header_len: usize,
    payload: Option<Payload>,
    message: Option<Partial>,
    control: Vec<u8>,
}

impl Decoder {
    /// A decoder that refuses messages over `max_message` bytes.
    pub fn new(max_message: usize) -> Self {
        Decoder {
            max_message,
            header: [0; 14],
            header_len: 0,
            payload: None,
            message: None,
            control: Vec::new(),
        }
    }

    /// Consumes bytes from the front of `input` until a whole message or
    /// control frame is decoded (returned) or `input` is empty (`Ok(None)`).
    /// After an error the decoder must not be used again.
    pub fn decode(&mut self, input: &mut &[u8]) -> Result<Option<Incoming>, ProtocolError> {
        loop {
            if self.payload.is_none() && !self.read_header(input)? {
                return Ok(None);
            }
            let Some(mut payload) = self.payload else {
                continue;
            };
            let want = usize::try_from(payload.remaining).unwrap_or(usize::MAX);
            let take = want.min(input.len());
            let (chunk, rest) = input.split_at_checked(take).unwrap_or((input, &[]));
            *input = rest;
            if payload.opcode.is_control() {
                let start = self.control.len();
                self.control.extend_from_slice(chunk);
                apply_mask(
                    self.control.get_mut(start..).unwrap_or_default(),
                    payload.mask,
                    payload.offset,
                );
            } else if let Some(message) = &mut self.message {
                let start = message.data.len();
                message.data.extend_from_slice(chunk);
                apply_mask(
                    message.data.get_mut(start..).unwrap_or_default(),
                    payload.mask,
                    payload.offset,
                );
                if message.text {
                    message.valid = validate_utf8(&message.data, message.valid, false)?;
                }
            }
            payload.remaining -= take as u64;
            payload.offset = payload.offset.wrapping_add(take) % 4;
            if payload.remaining > 0 {
                self.payload = Some(payload);
                return Ok(None);
            }
            self.payload = None;
            if let Some(done) = self.finish_frame(payload)? {
                return Ok(Some(done));
            }
        }
    }

    /// Collects header bytes; true once a whole header was read and
    /// `self.payload` set.
    fn read_header(&mut self, input: &mut &[u8]) -> Result<bool, ProtocolError> {
        loop {
            let needed = self.header_needed()?;
            if self.header_len >= needed {
                break;
            }
            let Some((&byte, rest)) = input.split_first() else {
                return Ok(false);
            };
            *input = rest;
            if let Some(slot) = self.header.get_mut(self.header_len) {
                *slot = byte;
            }
            self.header_len += 1;
        }
        let [b0, b1, ..] = self.header;
        let opcode =
            Opcode::from_u8(b0 & 0xF).ok_or(ProtocolError::ReservedOpcode { opcode: b0 & 0xF })?;
        let (len, at) = match b1 & 0x7F {
            126 => {
                let [_, _, hi, lo, ..] = self.header;
                (u64::from(u16::from_be_bytes([hi, lo])), 4)
            }
            127 => {
                let mut raw = [0u8; 8];
                raw.copy_from_slice(self.header.get(2..10).unwrap_or(&[0; 8]));
                (u64::from_be_bytes(raw), 10)
            }
            n => (u64::from(n), 2),
        };
        let mut mask = [0u8; 4];
        mask.copy_from_slice(self.header.get(at..at + 4).unwrap_or(&[0; 4]));
        self.header_len = 0;
        if opcode.is_control() {
            self.control.clear();
        } else {
            let so_far = self.message.as_ref().map_or(0, |m| m.data.len());
            let total = (so_far as u64).saturating_add(len);
            if total > self.max_message as u64 {
                return Err(ProtocolError::MessageTooBig {
                    len: total,
                    max: self.max_message,
                });
            }
            if opcode != Opcode::Continuation {
                self.message = Some(Partial {
                    text: opcode == Opcode::Text,
                    data: BytesMut::new(),
                    valid: 0,
                });
            }
        }
        self.payload = Some(Payload {
            fin: b0 & 0x80 != 0,
            opcode,
            mask,
            remaining: len,
            offset: 0,
        });
        Ok(true)
    }

    /// Header bytes needed given what has arrived; checks every rule that
    /// the bytes so far allow, so a bad frame fails at its first bad byte.
    fn header_needed(&self) -> Result<usize, ProtocolError> {
        if self.header_len < 2 {
            return Ok(2);
        }
        let [b0, b1, ..] = self.header;
        let rsv = (b0 >> 4) & 0x7;
        if rsv != 0 {
            return Err(ProtocolError::ReservedBits { rsv });
        }
        let opcode =
            Opcode::from_u8(b0 & 0xF).ok_or(ProtocolError::ReservedOpcode { opcode: b0 & 0xF })?;
        let fin = b0 & 0x80 != 0;
        let short = b1 & 0x7F;
        if opcode.is_control() {
            if !fin {
                return Err(ProtocolError::FragmentedControl);
            }
            if short > 125 {
                return Err(ProtocolError::ControlTooLong {
                    len: u64::from(short),
                });
            }
        } else if opcode == Opcode::Continuation {
            if self.message.is_none() {
                return Err(ProtocolError::UnexpectedContinuation);
            }
        } else if self.message.is_some() {
            return Err(ProtocolError::ExpectedContinuation);
        }
        if b1 & 0x80 == 0 {
            return Err(ProtocolError::UnmaskedFrame);
        }
        let ext = match short {
            126 => 2,
            127 => 8,
            _ => 0,
        };
        let [_, _, len_top, ..] = self.header;
        if short == 127 && self.header_len >= 3 && len_top & 0x80 != 0 {
            return Err(ProtocolError::LengthOverflow);
        }
        Ok(2 + ext + 4)
    }

    fn finish_frame(&mut self, payload: Payload) -> Result<Option<Incoming>, ProtocolError> {
        match payload.opcode {
            Opcode::Ping => Ok(Some(Incoming::Ping(Bytes::copy_from_slice(&self.control)))),
            Opcode::Pong => Ok(Some(Incoming::Pong(Bytes::copy_from_slice(&self.control)))),
            Opcode::Close => parse_close(&self.control).map(Some),
            Opcode::Text | Opcode::Binary | Opcode::Continuation => {
                if !payload.fin {
                    return Ok(None);
                }
                let Some(message) = self.message.take() else {
                    return Ok(None);
                };
                if message.text {
                    validate_utf8(&message.data, message.valid, true)?;
                    Ok(Some(Incoming::Text(message.data.freeze())))
                } else {
                    Ok(Some(Incoming::Binary(message.data.freeze())))
                }
            }
        }
    }
}

/// Validates `data[valid..]`; returns the new valid prefix length. An
/// incomplete sequence at the end is fine unless `complete`.
fn validate_utf8(data: &[u8], valid: usize, complete: bool) -> Result<usize, ProtocolError> {
    let rest = data.get(valid..).unwrap_or_default();
    match core::str::from_utf8(rest) {
        Ok(_) => Ok(data.len()),
        Err(e) if e.error_len().is_none() && !complete => Ok(valid + e.valid_up_to()),
        Err(_) => Err(ProtocolError::InvalidUtf8),
    }
}

/// Checks a close payload (RFC 6455 §5.5.1, §7.4).
fn parse_close(payload: &[u8]) -> Result<Incoming, ProtocolError> {
    match payload {
        [] => Ok(Incoming::Close {
            code: None,
            reason: String::new(),
        }),
        [_] => Err(ProtocolError::BadClosePayload),
        [hi, lo, reason @ ..] => {
            let code = u16::from_be_bytes([*hi, *lo]);
            if !is_valid_close_code(code) {
                return Err(ProtocolError::InvalidCloseCode { code });
            }
            let reason = core::str::from_utf8(reason).map_err(|_| ProtocolError::InvalidUtf8)?;
            Ok(Incoming::Close {
                code: Some(code),
                reason: String::from(reason),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

    fn client(fin: bool, opcode: Opcode, payload: &[u8]) -> Vec<u8> {
        encode_raw(
            FrameHeader {
                fin,
                rsv: 0,
                opcode: opcode.as_u8(),
                mask: Some(MASK),
                len: 0,
            },
            payload,
        )
    }

    fn decode_all(d: &mut Decoder, bytes: &[u8]) -> Result<Vec<Incoming>, ProtocolError> {
        let mut input = bytes;
        let mut out = Vec::new();
        while let Some(ev) = d.decode(&mut input)? {
            out.push(ev);
        }
        assert!(input.is_empty());
        Ok(out)
    }

    fn decode_bytewise(bytes: &[u8]) -> Result<Vec<Incoming>, ProtocolError> {
        let mut d = Decoder::new(1 << 20);
        let mut out = Vec::new();
        for b in bytes {
            out.extend(decode_all(&mut d, core::slice::from_ref(b))?);
        }
        Ok(out)
    }

    #[test]
    fn rfc_5_7_vectors() {
        // Single-frame unmasked "Hello" (what a server sends).
        assert_eq!(
            &encode_frame(Opcode::Text, b"Hello")[..],
            &[0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]
        );
        // Single-frame masked "Hello".
        let masked = [
            0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
        ];
        assert_eq!(client(true, Opcode::Text, b"Hello"), masked);
        let mut d = Decoder::new(1 << 20);
        assert_eq!(
            decode_all(&mut d, &masked).unwrap(),
            vec![Incoming::Text(Bytes::from_static(b"Hello"))]
        );
        // Fragmented unmasked "Hel" + "lo" on the wire, here masked.
        let mut frag = client(false, Opcode::Text, b"Hel");
        frag.extend(client(true, Opcode::Continuation, b"lo"));
        assert_eq!(
            decode_bytewise(&frag).unwrap(),
            vec![Incoming::Text(Bytes::from_static(b"Hello"))]
        );
        // Unmasked ping "Hello" and its masked pong.
        assert_eq!(
            &encode_frame(Opcode::Ping, b"Hello")[..],
            &[0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]
        );
        assert_eq!(
            client(true, Opcode::Pong, b"Hello"),
            [
                0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58
            ]
        );
        // 256 bytes binary: 0x82 0x7E 0x0100; 64 KiB: 0x82 0x7F 0x0000000000010000.
        let big = encode_frame(Opcode::Binary, &[0u8; 256]);
        assert_eq!(&big[..4], &[0x82, 0x7E, 0x01, 0x00]);
        let huge = encode_frame(Opcode::Binary, &vec![0u8; 65536]);
        assert_eq!(&huge[..10], &[0x82, 0x7F, 0, 0, 0, 0, 0, 1, 0, 0]);
        let payload: Vec<u8> = (0..65536u32).map(|i| i as u8).collect();
        let wire = client(true, Opcode::Binary, &payload);
        assert_eq!(&wire[..10], &[0x82, 0xFF, 0, 0, 0, 0, 0, 1, 0, 0]);
        let mut d = Decoder::new(1 << 20);
        assert_eq!(
            decode_all(&mut d, &wire).unwrap(),
            vec![Incoming::Binary(Bytes::from(payload))]
        );
        let wire = client(true, Opcode::Binary, &[7u8; 256]);
        assert_eq!(&wire[..4], &[0x82, 0xFE, 0x01, 0x00]);
        assert_eq!(
            decode_bytewise(&wire).unwrap(),
            vec![Incoming::Binary(Bytes::from(vec![7u8; 256]))]
        );
    }

    #[test]
    fn control_between_fragments() {
        let mut wire = client(false, Opcode::Text, b"fra");
        wire.extend(client(true, Opcode::Ping, b"p"));
        wire.extend(client(false, Opcode::Continuation, b"gm"));
        wire.extend(client(true, Opcode::Pong, b""));
        wire.extend(client(true, Opcode::Continuation, b"ent"));
        assert_eq!(
            decode_bytewise(&wire).unwrap(),
            vec![
                Incoming::Ping(Bytes::from_static(b"p")),
                Incoming::Pong(Bytes::new()),
                Incoming::Text(Bytes::from_static(b"fragment")),
            ]
        );
    }

    fn error_of(wire: &[u8]) -> ProtocolError {
        let mut d = Decoder::new(64);
        decode_all(&mut d, wire).unwrap_err()
    }

    #[test]
    fn framing_errors_and_codes() {
        let unmasked = encode_frame(Opcode::Text, b"hi");
        let e = error_of(&unmasked);
        assert_eq!(
            (e.clone(), e.close_code()),
            (ProtocolError::UnmaskedFrame, 1002)
        );
        let mut rsv = client(true, Opcode::Text, b"hi");
        rsv[0] |= 0x40;
        assert_eq!(error_of(&rsv), ProtocolError::ReservedBits { rsv: 4 });
        for op in [3u8, 7, 0xB, 0xF] {
            let mut f = client(true, Opcode::Text, b"");
            f[0] = 0x80 | op;
            let e = error_of(&f);
            assert_eq!(e, ProtocolError::ReservedOpcode { opcode: op });
            assert_eq!(e.close_code(), 1002);
        }
        let long_ping = client(true, Opcode::Ping, &[0u8; 126]);
        assert_eq!(
            error_of(&long_ping),
            ProtocolError::ControlTooLong { len: 126 }
        );
        let frag_ping = client(false, Opcode::Ping, b"");
        assert_eq!(error_of(&frag_ping), ProtocolError::FragmentedControl);
        let cont = client(true, Opcode::Continuation, b"x");
        assert_eq!(error_of(&cont), ProtocolError::UnexpectedContinuation);
        let mut two = client(false, Opcode::Text, b"a");
        two.extend(client(true, Opcode::Text, b"b"));
        assert_eq!(error_of(&two), ProtocolError::ExpectedContinuation);
        let bad = client(true, Opcode::Text, &[0xce, 0xba, 0xff]);
        let e = error_of(&bad);
        assert_eq!(
            (e.clone(), e.close_code()),
            (ProtocolError::InvalidUtf8, 1007)
        );
        // Truncated sequence at the end of a message.
        let bad = client(true, Opcode::Text, &[b'a', 0xce]);
        assert_eq!(error_of(&bad), ProtocolError::InvalidUtf8);
        let big = client(true, Opcode::Binary, &[0u8; 65]);
        let e = error_of(&big);
        assert_eq!(e.close_code(), 1009);
        // Fragments adding up over the bound.
        let mut frags = client(false, Opcode::Binary, &[0u8; 40]);
        frags.extend(client(true, Opcode::Continuation, &[0u8; 40]));
        assert_eq!(
            error_of(&frags),
            ProtocolError::MessageTooBig { len: 80, max: 64 }
        );
        // Top bit of a 64-bit length.
        let mut top = vec![0x82, 0xFF, 0x80];
        top.extend([0u8; 11]);
        assert_eq!(error_of(&top), ProtocolError::LengthOverflow);
    }

    #[test]
    fn utf8_fails_fast_mid_frame() {
        // The frame announces 10 bytes; the invalid byte is the 2nd.
        let wire = client(
            true,
            Opcode::Text,
            &[b'a', 0xff, b'b', b'c', b'd', b'e', b'f', b'g', b'h', b'i'],
        );
        let mut d = Decoder::new(1024);
        let mut input = &wire[..8]; // header (6) + 2 payload bytes
        assert_eq!(d.decode(&mut input), Err(ProtocolError::InvalidUtf8));
        // A valid multi-byte char split across fragments is fine.
        let mut ok = client(false, Opcode::Text, &[0xe2, 0x82]);
        ok.extend(client(true, Opcode::Continuation, &[0xac]));
        assert_eq!(
            decode_bytewise(&ok).unwrap(),
            vec![Incoming::Text(Bytes::from("€"))]
        );
    }

    #[test]
    fn close_frames() {
        let close = |payload: &[u8]| {
            let mut d = Decoder::new(64);
            decode_all(&mut d, &client(true, Opcode::Close, payload))
        };
        assert_eq!(
            close(b"").unwrap(),
            vec![Incoming::Close {
                code: None,
                reason: String::new()
            }]
        );
        assert_eq!(close(&[3]).unwrap_err(), ProtocolError::BadClosePayload);
        for code in [
            1000u16, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 4999,
        ] {
            let mut p = code.to_be_bytes().to_vec();
            p.extend_from_slice(b"bye");
            assert_eq!(
                close(&p).unwrap(),
                vec![Incoming::Close {
                    code: Some(code),
                    reason: "bye".into()
                }]
            );
        }
        for code in [0u16, 999, 1004, 1005, 1006, 1012, 1015, 2999, 5000, 65535] {
            let e = close(&code.to_be_bytes()).unwrap_err();
            assert_eq!(e, ProtocolError::InvalidCloseCode { code });
            assert_eq!(e.close_code(), 1002);
        }
        let e = close(&[0x03, 0xe8, 0xff]).unwrap_err();
        assert_eq!(e.close_code(), 1007);
    }

    #[test]
    fn close_reason_truncation() {
        let reason = "é".repeat(100); // 200 bytes
        let p = close_payload(1001, &reason);
        assert_eq!(p.len(), 2 + 122);
        assert!(core::str::from_utf8(&p[2..]).is_ok());
        assert_eq!(close_payload(1000, "ok"), vec![0x03, 0xe8, b'o', b'k']);
    }
}
